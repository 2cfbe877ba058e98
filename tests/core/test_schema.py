"""Declared once (crm_core.schema): the register's columns, the ledger's headers, the rate status;
the one conversion from cents to currency units; invariants that raise a named error."""
from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crm_core import schema
from crm_core.issues import CrmInputError, InvariantError
from crm_core.schema import RateStatus
from crm_core.values import MAX_AMOUNT_CENTS, SHOWN_DIGITS, parse_money_cents, units

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- cents -> units
def excel_shows(value: float) -> Decimal:
    """The decimal Excel shows for a float: its first 15 significant digits."""
    return Decimal(format(value, f".{SHOWN_DIGITS}g"))


@settings(max_examples=2000, deadline=None)
@given(st.integers(-(MAX_AMOUNT_CENTS - 1), MAX_AMOUNT_CENTS - 1))
@example(0)
@example(1)
@example(-1)
@example(5)
@example(10**15 - 1)
@example(-(10**15 - 1))
@example(123_456_789_012_345)
@example(2**53 // 100)
def test_units_are_exact_as_excel_shows_them_up_to_10_to_the_15_cents(cents):
    value = units(cents)
    assert type(value) is float
    assert excel_shows(value) == Decimal(cents).scaleb(-2)  # 1234.56, not 1234.5599999999999
    assert parse_money_cents(value) == cents  # and the way back gives the same cents
    assert float(units(np.array([cents], dtype="int64"))[0]) == value  # arrays: the same floats


def test_units_of_the_limit_itself_and_of_every_kind_of_input():
    assert units(MAX_AMOUNT_CENTS) == 1e13 and excel_shows(units(MAX_AMOUNT_CENTS)) == Decimal("1E+13")
    assert units(np.int64(123456)) == 1234.56 and type(units(np.int64(123456))) is float
    assert units(7) == 0.07 and units(-5) == -0.05  # the float nearest the decimal, as 0.07 typed in a cell
    column = units(pd.Series([1, 250, -99], dtype="int64"))
    assert isinstance(column, np.ndarray) and column.dtype == np.float64 and column.tolist() == [0.01, 2.5, -0.99]
    floats = units(np.array([150.0, np.nan]))
    assert floats[0] == 1.5 and np.isnan(floats[1])
    assert units([100, 200]).tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------- rate status
def test_rate_status_members_are_their_bilingual_labels():
    assert RateStatus.NO_SALES.label == "no sales in period / 期内无销售"
    assert RateStatus.NEGATIVE_SALES.label == "credit notes exceed sales / 红字超过销售"
    assert RateStatus.RATED.label == "ok"
    for member in RateStatus:  # a frame or sheet holding a member shows its label
        assert str(member) == f"{member}" == member.label
    assert RateStatus.RATED.note == "" and RateStatus.NO_SALES.note == RateStatus.NO_SALES.label


def test_rate_status_is_found_again_from_the_text_a_sheet_shows():
    assert RateStatus.of("no sales in period / 期内无销售") is RateStatus.NO_SALES
    assert RateStatus.of(" 红字超过销售 ") is RateStatus.NEGATIVE_SALES
    assert RateStatus.of("OK") is RateStatus.RATED
    assert RateStatus.of("no_sales") is RateStatus.NO_SALES
    assert RateStatus.of("something else") is None and RateStatus.of(None) is None


def test_customer_facts_give_each_customer_a_rate_status():
    from crm_core.collection import (
        NEGATIVE_SALES,
        NO_SALES,
        RATED,
        collection_rates,
        customer_facts,
    )
    from crm_core.ledger import normalize_ledger
    from crm_core.policy import Policy

    rows = normalize_ledger(pd.DataFrame([
        ("2024-03-01", "A", "invoice", 100), ("2024-04-01", "A", "receipt", 113),
        ("2023-03-01", "B", "invoice", 100),
        ("2024-03-01", "C", "invoice", 100), ("2024-04-01", "C", "credit_note", 300),
    ], columns=["date", "customer", "type", "amount"]), Policy(negative_amounts="allow")).rows
    facts = customer_facts(rows, Policy(), schema_period(2024)).set_index("customer")
    assert [facts.loc[c, "rate_status"] for c in "ABC"] == [RATED, NO_SALES, NEGATIVE_SALES]
    # pandas keeps the column as text (the labels, as before); code compares it with members
    assert facts["rate_status"].tolist() == ["ok", "no sales in period / 期内无销售", "credit notes exceed sales / 红字超过销售"]
    assert (facts["rate_status"] == RateStatus.RATED).tolist() == [True, False, False]
    assert [RateStatus(s) for s in facts["rate_status"]] == [RATED, NO_SALES, NEGATIVE_SALES]
    result = collection_rates(np.array([113, 0]), np.array([113, 0]))
    assert result.rate[0] == 1.0 and np.isnan(result.rate[1])  # a record: named fields
    assert result.status.tolist() == [RateStatus.RATED, RateStatus.NO_SALES]


def schema_period(year):
    from crm_core.collection import Period

    return Period.year(year)


def test_the_collections_table_shows_the_status_label_as_the_rate_note():
    from udfs.collection import collections_table

    facts = pd.DataFrame({"customer": ["A", "B", "C"], "net_sales_cents": [100, 0, 5], "collections_cents": [0, 0, 0],
                          "collection_rate": [0.0, np.nan, np.nan], "open_balance_cents": [0, 0, 0],
                          # a member, and text as a cache might give it back
                          "rate_status": [RateStatus.RATED, RateStatus.NO_SALES, "credit notes exceed sales / 红字超过销售"]})
    table = collections_table(facts)
    assert [row[-1] for row in table[1:]] == ["", RateStatus.NO_SALES.label, RateStatus.NEGATIVE_SALES.label]
    assert [type(row[-1]) for row in table[1:]] == [str, str, str]


# ----------------------------------------------------------------------------- columns declared once
def test_the_review_frame_and_both_workbooks_derive_from_one_column_list():
    from crm_app.cli.review_file import register_table
    from crm_app.register import schema as rs

    assert rs.REGISTER_COLUMNS is schema.REGISTER_COLUMNS and rs.Column is schema.Column
    frame_columns = schema.REVIEW_FRAME_COLUMNS  # what Review.register holds
    assert frame_columns == ["customer", "customer_name", "net_sales_cents", "collections_cents",
                             "collection_rate", "rate_status", "rate_tier", "pareto_tier",
                             "open_balance_cents", "credit_line_cents"]
    labels = {c.frame_key: c.label for c in schema.REGISTER_COLUMNS}
    frame = pd.DataFrame({key: [12345] if key.endswith("_cents") else ["x"] for key in frame_columns})
    table = register_table(frame)  # review-file's CSV and Parquet: the Register's labels, in units
    assert list(table.columns) == [labels[key] for key in frame_columns]
    assert table[labels["net_sales_cents"]].tolist() == [123.45] and table[labels["customer"]].tolist() == ["x"]


def test_money_columns_are_cents_in_the_core_and_units_in_the_workbook():
    money = [c for c in schema.REGISTER_COLUMNS if c.kind == schema.MONEY]
    assert [c.frame_key for c in money] == ["net_sales_cents", "collections_cents", "open_balance_cents",
                                            "allocated_line_cents", "credit_line_cents"]
    assert schema.cents_key("credit_line") == "credit_line_cents"
    assert schema.REGISTER_BY_KEY["rate_status"].frame_key == "rate_status"


def test_the_ledger_headers_are_the_readers_own():
    from crm_app.workbook.register_sheets import LEDGER_COLUMNS
    from crm_core import ledger

    assert schema.HEADER_ALIASES == ledger.HEADER_ALIASES
    assert list(schema.HEADER_ALIASES) == list(ledger.HEADER_ALIASES)
    for column in schema.LEDGER_COLUMNS:  # the sheet header's two names are both accepted
        assert column.key in column.aliases and column.zh in column.aliases
    headers = [header for _, header in LEDGER_COLUMNS]
    assert headers == ["日期 (date)", "客户编码 (customer)", "客户名称 (customer_name)", "类型 (type)", "金额 (amount)",
                       "发票号 (invoice_no)", "到期日 (due_date)", "税率 (vat_rate)", "含税额 (gross)",
                       "核销发票号 (applies_to)"]
    mapping, issues = ledger.map_headers(headers)
    assert issues == [] and mapping == {h: k for k, h in LEDGER_COLUMNS if k != "gross"}


# ----------------------------------------------------------------------------- the default period
def test_one_rule_for_the_default_review_period():
    from crm_core import partition
    from crm_core.collection import Period
    from crm_core.review import default_period, default_year

    assert default_period(pd.Timestamp("2024-12-28")) == Period.year(2024)
    assert default_period(pd.Timestamp("2024-12-27")) == Period.year(2023)
    assert default_period(None) == default_period(pd.NaT) == Period.year(pd.Timestamp.today().year - 1)
    for latest in (pd.Timestamp("2024-12-31"), pd.Timestamp("2024-06-30"), None):
        assert partition.default_period(latest) == default_period(latest)
    rows = pd.DataFrame({"date": pd.to_datetime(["2023-05-01", "2024-02-01"])})
    assert default_year(rows) == 2023 and default_year(rows.iloc[:0]) == pd.Timestamp.today().year - 1


# ----------------------------------------------------------------------------- invariants
def _facts(n=3):
    return pd.DataFrame({"customer": [f"C{i}" for i in range(n)], "customer_name": [""] * n,
                         "net_sales_cents": [100_000 * (i + 1) for i in range(n)],
                         "collections_cents": [113_000 * (i + 1) for i in range(n)],
                         "collection_rate": [1.0] * n, "rate_status": [RateStatus.RATED] * n,
                         "open_balance_cents": [0] * n})


def test_credit_lines_not_adding_up_to_the_budget_raise_the_named_error(monkeypatch):
    from crm_core import review
    from crm_core.policy import Policy

    good = review.review_facts(_facts(), 2023, Policy())
    assert int(good.register["credit_line_cents"].sum()) == good.budget_cents
    real = review.allocate_credit
    monkeypatch.setattr(review, "allocate_credit", lambda *a, **k: real(*a, **k) + np.array([1, 0, 0]))
    with pytest.raises(InvariantError, match="credit lines must add up to the budget") as caught:
        review.review_facts(_facts(), 2023, Policy())
    assert caught.value.invariant == "credit lines must add up to the budget"
    assert caught.value.detail == "lines 1,356.01, budget 1,356.00"


def test_the_invariant_check_also_runs_under_python_O():
    """`assert` is removed by `python -O`; the named check is not."""
    code = ("import numpy as np\n"
            "from crm_core import review\n"
            "from crm_core.issues import InvariantError\n"
            "from crm_core.policy import Policy\n"
            "from tests.core.test_schema import _facts\n"
            "real = review.allocate_credit\n"
            "review.allocate_credit = lambda *a, **k: real(*a, **k) - np.array([0, 0, 1])\n"
            "try:\n"
            "    review.review_facts(_facts(), 2023, Policy())\n"
            "except InvariantError as exc:\n"
            "    print('raised', exc.invariant)\n")
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "raised credit lines must add up to the budget", done.stderr[-2000:]


def test_invariant_errors_are_not_input_errors():
    """A broken invariant is a bug to report: a worksheet function shows it as unexpected, the
    command line does not blame the data."""
    assert issubclass(InvariantError, RuntimeError)
    assert not issubclass(InvariantError, (ValueError, CrmInputError))


def test_a_formula_without_its_equals_sign_is_refused_by_name():
    from crm_app.workbook.xml_sheet import Sheet

    class Stub:
        pass

    with pytest.raises(InvariantError, match="starts with '='"):
        Sheet.formula(Stub(), "A1", "SUM(A2:A3)")


# ----------------------------------------------------------------------------- suggested cuts
def test_suggested_cuts_beyond_the_headroom_are_refused():
    from crm_core.suggest import suggest_cuts

    with pytest.raises(CrmInputError, match="only 1.00 can be cut without going below open balances; 2.00 asked"):
        suggest_cuts(["A"], [300], [200], [1.0], 200)


def test_the_reasons_for_a_cut_follow_the_policy():
    from crm_core.policy import Policy
    from crm_core.suggest import suggest_cuts

    args = (["A"], [1000], [400], [0.8], 100)  # 40% of the line used, 80% collected
    assert suggest_cuts(*args)["why"][0] == "line 40% used / 额度使用率低; collection rate 80.0% / 回款率低"
    strict = Policy(cut_low_use=0.3, cut_low_rate=0.75)
    assert suggest_cuts(*args, policy=strict)["why"][0] == "headroom above open balance / 额度高于应收余额"
