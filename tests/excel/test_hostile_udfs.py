"""The bad-input catalogue through the worksheet functions, called the way Excel calls them.

Every case goes through xlwings' own call path (call_like_excel) with the values VBA hands over:
tuples of row tuples, None for a blank, floats for numbers and Excel's error codes for error
cells (read with err_to_str, so they reach the functions as '#N/A' text). Each case ends in a
correct result or one message naming the row and column; never a traceback text, never a
silently wrong number. A hypothesis fuzz then throws messy ranges at the same functions.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.xlwings_offline import EXCEL_ERROR_CODES, call_like_excel
from udfs._excel import CellError

NA, DIV0 = EXCEL_ERROR_CODES["#N/A"], EXCEL_ERROR_CODES["#DIV/0!"]
HEADER = ("date", "customer", "type", "amount")
WAN_HEADER = ("日期", "客户", "类型", "金额(万元)")
D = dt.datetime(2024, 3, 1)
PERIOD_START = dt.datetime(2024, 1, 1)
LONG = "x" * 10_000


@dataclass(frozen=True)
class Case:
    """A ledger range and what crm_collections must give: {customer: (net sales, collections)}
    or the (row, column) its one message names."""

    name: str
    rows: tuple
    totals: dict = field(default_factory=dict)
    where: tuple[int, str] | None = None
    header: tuple = HEADER


def inv(amount, customer="A", date=D, kind="invoice"):
    return (date, customer, kind, amount)


LEDGER_CASES = [
    Case("thousands separators", (inv("1,234,567.89"),), {"A": (1_234_567.89, 0)}),
    Case("full-width digits", (inv("１２３４"),), {"A": (1234, 0)}),
    Case("full-width digits and separators", (inv("１，２３４．５"),), {"A": (1234.5, 0)}),
    Case("yuan sign", (inv("¥1,000"),), {"A": (1000, 0)}),
    Case("RMB and 元", (inv("RMB1000元"),), {"A": (1000, 0)}),
    Case("万 in the cell", (inv("3万"),), {"A": (30_000, 0)}),
    Case("万-denominated header", (inv(1.5), inv("2.5")), {"A": (40_000, 0)}, header=WAN_HEADER),
    Case("万 header with receipts", (inv(1.0), inv(1.13, kind="回款")), {"A": (10_000, 11_300)},
         header=WAN_HEADER),
    Case("decimal comma", (inv("1.234,56"),), where=(2, "amount")),  # would be 1.23
    Case("comma not grouping thousands", (inv(1.0), inv("1,23")), where=(3, "amount")),  # would be 123
    Case("accounting negative (500)", (inv("(500)"),), where=(2, "amount")),
    Case("negative invoice", (inv(100.0), inv(-5.0)), where=(3, "amount")),
    Case("negative receipt", (inv(-5.0, kind="receipt"),), where=(2, "amount")),
    Case("negative credit note reduces sales", (inv(100.0), inv(-30.0, kind="红字")), {"A": (70, 0)}),
    Case("NaN amount", (inv(math.nan),), where=(2, "amount")),
    Case("inf amount", (inv(100.0), inv(math.inf)), where=(3, "amount")),
    Case("-inf amount", (inv(-math.inf),), where=(2, "amount")),
    Case("text 1e999 amount", (inv("1e999"),), where=(2, "amount")),
    Case("implausibly large amount", (inv(1e20),), where=(2, "amount")),
    Case("blank amount", (inv(100.0), inv(None)), where=(3, "amount")),
    Case("#N/A amount", (inv(NA),), where=(2, "amount")),
    Case("#DIV/0! amount", (inv(100.0), inv(DIV0)), where=(3, "amount")),
    Case("#N/A date", (inv(1.0, date=NA),), where=(2, "date")),
    Case("#N/A customer", (inv(1.0, customer=NA),), where=(2, "customer")),
    Case("#DIV/0! type", (inv(1.0), (D, "A", DIV0, 1.0)), where=(3, "type")),
    Case("Excel serial date", (inv(1.0, date=45352.0),), {"A": (1, 0)}),
    Case("Excel serial date with a time", (inv(1.0, date=45352.75),), {"A": (1, 0)}),
    Case("serial date outside the period", (inv(1.0), inv(5.0, date=45000.0)), {"A": (1, 0)}),
    Case("ISO text date", (inv(1.0, date="2024-03-01"),), {"A": (1, 0)}),
    Case("slash text date", (inv(1.0, date="2024/3/1"),), {"A": (1, 0)}),
    Case("Chinese text date", (inv(1.0, date="2024年3月1日"),), {"A": (1, 0)}),
    Case("compact text date", (inv(1.0, date="20240301"),), {"A": (1, 0)}),
    Case("dotted text date", (inv(1.0, date="2024.3.1"),), {"A": (1, 0)}),
    Case("full-width text date", (inv(1.0, date="２０２４－０３－０１"),), {"A": (1, 0)}),
    Case("ambiguous day/month date", (inv(1.0, date="02/01/2024"),), where=(2, "date")),
    Case("30 February", (inv(1.0), inv(1.0, date="2024-02-30")), where=(3, "date")),
    Case("29 February of a common year", (inv(1.0, date="2023-02-29"),), where=(2, "date")),
    Case("month 13", (inv(1.0, date="2024-13-01"),), where=(2, "date")),
    Case("year typed 3024", (inv(1.0, date="3024-03-01"),), where=(2, "date")),
    Case("serial beyond the accepted range", (inv(1.0, date=200_000.0),), where=(2, "date")),
    Case("negative serial date", (inv(1.0, date=-5.0),), where=(2, "date")),
    Case("words as a date", (inv(1.0, date="soon"),), where=(2, "date")),
    Case("TRUE as a date", (inv(1.0, date=True),), where=(2, "date")),
    Case("blank date", (inv(1.0), inv(1.0, date=None)), where=(3, "date")),
    Case("mixed amount types", (inv(1.0), inv("2"), inv("¥3"), inv(4)), {"A": (10, 0)}),
    # TRUE == 1 in Python: a TRUE below a 1 must not borrow the 1's value
    Case("TRUE in a column of numbers", (inv(1.0), inv("2"), inv(True)), where=(4, "amount")),
    Case("FALSE in a column of numbers", (inv(0.0), inv(False)), where=(3, "amount")),
    Case("mixed date types", (inv(1.0), inv(2.0, date=45353.0), inv(3.0, date="2024年3月3日")), {"A": (6, 0)}),
    Case("numbers as customer codes", (inv(1.0, customer=1001.0), inv(2.0, customer="1001")), {"1001": (3, 0)}),
    Case("customers differing by outer spaces", (inv(1.0, customer="A公司"), inv(2.0, customer=" A公司 "),
                                                 inv(3.0, customer="\u3000A公司\u3000")), {"A公司": (6, 0)}),
    Case("customers differing by runs of inner spaces", (inv(1.0, customer="A 公司"), inv(2.0, customer="A  公司"),
                                                         inv(3.0, customer="A\u3000公司")), {"A 公司": (6, 0)}),
    Case("customers differing by full-width letters", (inv(1.0, customer="ABC"), inv(2.0, customer="ＡＢＣ")),
         {"ABC": (3, 0)}),
    Case("10k-character customer", (inv(1.0), inv(1.0, customer=LONG)), where=(3, "customer")),
    Case("10k-character amount", (inv("1" * 10_000),), where=(2, "amount")),
    Case("10k-character type", ((D, "A", LONG, 1.0),), where=(2, "type")),
    Case("10k-character date", (inv(1.0, date=LONG),), where=(2, "date")),
    Case("blank customer", (inv(1.0), inv(1.0, customer="   ")), where=(3, "customer")),
    Case("unknown document type", ((D, "A", "gift", 1.0),), where=(2, "type")),
    Case("blank row inside the ledger", (inv(1.0), (None, None, None, None), inv(2.0)), {"A": (3, 0)}),
    Case("header only", (), where=None),
    Case("only receipts", (inv(117.0, kind="receipt"), inv(3.0, customer="B", kind="收款")),
         {"A": (0, 117), "B": (0, 3)}),
]



def assert_clean_message(text: object) -> str:
    assert isinstance(text, str), text
    assert text.startswith(("#VALUE!", "#N/A")), text
    assert "Traceback" not in text and "unexpected" not in text and "please report" not in text, text
    return text


def flat(totals: dict) -> dict:
    """{customer: (sales, collections)} -> {(customer, 0): sales, ...}: pytest.approx compares
    flat mappings only (nested ones are refused by recent pytest)."""
    return {(name, k): v for name, pair in totals.items() for k, v in enumerate(pair)}


@pytest.mark.parametrize("case", LEDGER_CASES, ids=[c.name for c in LEDGER_CASES])
def test_ledger_catalogue_through_crm_collections(addin, case):
    result = call_like_excel(addin.crm_collections, (case.header, *case.rows), PERIOD_START)
    if case.totals:
        assert isinstance(result, list), result
        got = {r[0]: (r[1], r[2]) for r in result[1:]}
        assert flat(got) == pytest.approx(flat(case.totals)), got
        for row in result[1:]:
            if row[1] > 0:
                assert row[3] == pytest.approx(row[2] / (row[1] * 1.13))
            else:  # no sales: no rate, said so, never a division error
                assert row[3] == CellError("#DIV/0!") and row[5]
        return
    text = assert_clean_message(result)
    if case.where is None:
        assert "no data rows" in text
        return
    row, column = case.where
    assert text.startswith(f"#VALUE! row {row}"), text
    assert column in text, text
    issues = call_like_excel(addin.crm_ledger_issues, (case.header, *case.rows))
    assert (float(row), column, "error") in {tuple(r[:3]) for r in issues[1:]}, issues


def test_a_wan_cell_under_a_wan_header_is_not_scaled_twice(addin):
    result = call_like_excel(addin.crm_collections, (WAN_HEADER, inv("1.5万")), PERIOD_START)
    if isinstance(result, str):  # refused as ambiguous: fine too
        assert result.startswith("#VALUE! row 2") and "amount" in result
    else:
        assert result[1][1] == pytest.approx(15_000)


def test_merged_spellings_are_reported_as_a_warning(addin):
    rows = (HEADER, inv(1.0, customer="A公司"), inv(2.0, customer="Ａ公司 "))
    issues = call_like_excel(addin.crm_ledger_issues, rows)
    assert issues[1][1:3] == ["customer", "warning"] and "'A公司'" in issues[1][3]


def col(*values):
    return tuple((v,) for v in values)


# collections cell, expected rate against net sales 150 at VAT 17% (None: a message for row 1)
RATE_CASES = [
    ("plain number", 140.0, 140 / 175.5),
    ("thousands separators", "1,400", 1400 / 175.5),
    ("full-width digits", "１４０", 140 / 175.5),
    ("percent text", "14000%", 140 / 175.5),
    ("blank is nothing collected", None, 0.0),
    ("currency sign", "¥140", None),
    ("decimal comma", "1.234,56", None),
    ("words", "abc", None),
    ("#N/A", NA, None),
    ("#DIV/0!", DIV0, None),
    ("TRUE", True, None),
    ("inf", math.inf, None),
    ("text 1e999", "1e999", None),
    ("10k characters", LONG, None),
]


@pytest.mark.parametrize("name, cash, expected", RATE_CASES, ids=[c[0] for c in RATE_CASES])
def test_rate_catalogue_through_crm_collection_rate(addin, name, cash, expected):
    out = call_like_excel(addin.crm_collection_rate, col(140.0, cash), col(150.0, 150.0), 0.17)
    assert out[0][0] == pytest.approx(140 / 175.5)  # the good neighbour is untouched
    if expected is None:
        text = assert_clean_message(out[1][0])
        assert text.startswith("#VALUE! row 2 (collections)") and len(text) < 200, text
    else:
        assert out[1][0] == pytest.approx(expected)


def test_rate_without_sales_is_div0_and_a_true_below_a_one_is_refused(addin):
    out = call_like_excel(addin.crm_collection_rate, col(1.0, True, 5.0), col(150.0, 150.0, 0.0), 0.17)
    assert out[0][0] == pytest.approx(1 / 175.5)
    assert out[1][0] == "#VALUE! row 2 (collections): value True is TRUE/FALSE, not a number"
    assert out[2][0] == CellError("#DIV/0!")


def test_sales_given_as_infinity_give_no_rate(addin):
    out = call_like_excel(addin.crm_collection_rate, col(140.0), col(math.inf), 0.17)
    assert assert_clean_message(out).startswith("#VALUE! row 1 (net_sales)")


# Totals below are counted in the layers: README's reliability section quotes them.
UDF_CASES = len(LEDGER_CASES) + len(RATE_CASES)

# ----------------------------------------------------------------- fuzz through the UDF path

FUZZ_EXAMPLES = 300  # per fuzz test; README's reliability section quotes it
CELLS = {
    "date": [D, 45352.0, "2024/3/1", "2024年3月1日", "2024-02-30", "soon", None, NA, True, -1.0, LONG],
    "customer": ["A", " A ", "Ａ", "B公司", "=1+1", 1001.0, "", None, NA, DIV0, LONG, True],
    "type": ["invoice", "发票", "receipt", "回款", "红字", "gift", None, NA, 7.0],
    "amount": [100.0, 99.99, "1,234.5", "¥88", "１２３", "3万", "(10)", 0.0, -5.0, "abc", None, NA, DIV0,
               math.inf, math.nan, True, False, "1e999", 1e20],
}
messy_row = st.tuples(*[st.one_of(st.sampled_from(v), st.floats(-1e6, 1e6), st.text(max_size=8))
                        if k == "amount" else st.sampled_from(v) for k, v in CELLS.items()])


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messy_row, max_size=25))
def test_messy_ledger_ranges_account_for_every_row(addin, rows):
    """Every data row is either counted in crm_collections' totals or named by crm_ledger_issues."""
    ledger = (HEADER, *rows)
    issues = call_like_excel(addin.crm_ledger_issues, ledger)
    result = call_like_excel(addin.crm_collections, ledger, PERIOD_START)
    named = set()
    if isinstance(issues, list):
        named = {int(r[0]) for r in issues[1:] if r[2] == "error" and r[0] != ""}
        assert all(2 <= r <= len(rows) + 1 for r in named)
    if named:
        text = assert_clean_message(result)
        assert text.startswith(f"#VALUE! row {min(named)}"), (text, named)
        return
    if isinstance(result, str):  # nothing usable at all: only blank rows
        assert_clean_message(result)
        assert "no data rows" in result and all(all(c in (None, "") for c in r) for r in rows)
        return
    expected = _expected_totals(rows)
    got = (sum(r[1] for r in result[1:]), sum(r[2] for r in result[1:]))
    assert got == pytest.approx(expected, abs=0.005)


def _expected_totals(rows) -> tuple[float, float]:
    """Sales and collections of the rows dated in 2024, recomputed from the core's own reading."""
    import pandas as pd

    from crm_core.ledger import normalize_ledger

    frame = pd.DataFrame([[_as_text(c) for c in r] for r in rows], columns=list(HEADER), dtype=object)
    book = normalize_ledger(frame)
    assert len(book.rows) + book.blank_rows == len(rows)  # no row dropped without a word
    used = book.rows
    used = used[used["date"].dt.year == 2024]
    kind = used["type"].astype(str)
    sign = kind.map({"invoice": 1, "credit_note": -1, "receipt": 0}).astype("int64")
    return (float((sign * used["amount_cents"]).sum()) / 100,
            float(used.loc[kind == "receipt", "amount_cents"].sum()) / 100)


def _as_text(cell):
    return {NA: "#N/A", DIV0: "#DIV/0!"}.get(cell, cell) if isinstance(cell, int) else cell


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(CELLS["amount"]), st.sampled_from(CELLS["amount"])),
                min_size=1, max_size=20))
def test_messy_rate_ranges_give_a_rate_or_a_message_per_cell(addin, pairs):
    """crm_collection_rate: each row a finite rate, blank, #DIV/0! or a message naming that row."""
    cash, sales = col(*[p[0] for p in pairs]), col(*[p[1] for p in pairs])
    out = call_like_excel(addin.crm_collection_rate, cash, sales, 0.17)
    cells = [out] if not isinstance(out, list) else [r[0] for r in out]
    assert len(cells) <= len(pairs)
    for n, value in enumerate(cells, start=1):
        if isinstance(value, str) and value:
            assert_clean_message(value)
            assert value.startswith(f"#VALUE! row {n} ("), (n, value)
        elif isinstance(value, float):
            assert math.isfinite(value)
        else:
            assert value == "" or value == CellError("#DIV/0!"), value
