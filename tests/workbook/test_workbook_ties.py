"""Half-cent VAT ties, recalculated by spreadsheet engines: every gross amount and total the
register's own formulas compute is the core's, to the cent.

47,122.50 x 1.13 = 53,248.425 is a tie; in binary floating point the product is 5324842.4999999995
cents, which LibreOffice 7.4's ROUND takes down while Excel and Gnumeric, rounding the decimal they
show, take it up. The core rounds half-up exactly (domain.md section 7): 53,248.43. The ledger
below is made of such ties (invoices and credit notes ending in .50 at 13%, 17% and 9%, .25 at 6%,
amounts up to a hundred million), balances brought forward and write-offs (never grossed up), and a
net sales total whose credit budget is itself a tie.

LibreOffice recalculates the register as written. Gnumeric reads neither structured table
references nor names built as `A2:INDEX(...)`: it gets a copy whose references are spelled as
plain ranges (the formulas themselves unchanged), so it computes the same cells.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.worksheet.formula import ArrayFormula

from crm_app.register import schema as rs
from crm_app.workbook.builder import write_register
from crm_app.workbook.data import register_data
from crm_app.workbook.register_sheets import LEDGER_COLUMNS, LEDGER_LAST, LEDGER_TABLE
from crm_core.collection import gross_cents
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from tests.support.libreoffice import recalculate, recalculate_gnumeric, require_gnumeric
from tests.workbook.test_workbooks import figure

pytestmark = pytest.mark.filterwarnings("ignore:Workbook contains no default style")  # Gnumeric's files
YEAR = 2024
TIES_13 = ["47122.50", "0.50", "1.50", "2.50", "3.50", "10.50", "99.50", "1234.50", "12345678.50", "98765432.50"]


def _ties_ledger() -> pd.DataFrame:
    rows = []

    def add(day: str, customer: str, kind: str, amount: str, vat: float | None = None) -> None:
        rows.append({"date": day, "customer": customer, "customer_name": f"客户{customer}", "type": kind,
                     "amount": amount, "invoice_no": f"T{len(rows) + 1:05d}", "vat_rate": vat})

    for i, amount in enumerate(TIES_13):  # 13% since 2019-04-01
        add(f"{YEAR}-{i % 9 + 1:02d}-15", f"T{i % 4 + 1}", "invoice", amount)
    for amount in ("2.50", "0.50", "47122.50"):
        add(f"{YEAR}-10-01", "T1", "credit_note", amount)
    add(f"{YEAR}-07-01", "T2", "receipt", "0.57")
    add(f"{YEAR}-07-02", "T3", "receipt", "53248.43")
    for day in ("2017-03-01", "2018-04-30"):  # 17%
        add(day, "T3", "invoice", "47122.50")
        add(day, "T4", "invoice", "0.50")
    add("2018-06-01", "T3", "invoice", "47122.50")  # 16%: no exact ties, near ones
    add("2018-06-02", "T4", "invoice", "0.25")
    add(f"{YEAR}-02-01", "T4", "invoice", "0.25", 0.06)  # the row's own rate: 26.5 cents -> 27
    add(f"{YEAR}-02-02", "T4", "invoice", "0.50", 0.09)  # 54.5 -> 55
    add(f"{YEAR}-02-03", "T2", "credit_note", "0.75", 0.06)
    add(f"{YEAR}-01-01", "T1", "opening_balance", "1000.50")  # as booked: VAT included already
    add(f"{YEAR}-01-01", "T5", "opening_balance", "0.50")
    add(f"{YEAR}-08-01", "T2", "write_off", "0.50")  # as booked, lowers the balance
    frame = pd.DataFrame(rows)
    # one more invoice so that the budget (net x 20% x 1.13, in cents: net x 0.226) is a tie too
    net = _net_cents(frame)
    extra = (250 - net) % 500
    add(f"{YEAR}-12-01", "T5", "invoice", f"{extra // 100}.{extra % 100:02d}")
    return pd.DataFrame(rows)


def _net_cents(frame: pd.DataFrame) -> int:
    in_year = frame["date"].str.startswith(str(YEAR))
    cents = (frame["amount"].map(Decimal) * 100).astype(int)
    return int(cents[in_year & (frame["type"] == "invoice")].sum() - cents[in_year & (frame["type"] == "credit_note")].sum())


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _expected_gross(rows: pd.DataFrame, policy: Policy) -> list[int]:
    """Decimal arithmetic, half-up per document: what a VAT invoice says (the oracle)."""
    out = []
    for rec in rows.itertuples(index=False):
        cents = int(rec.amount_cents)
        if rec.type not in ("invoice", "credit_note"):
            out.append(cents)
            continue
        rate = rec.vat_rate if rec.vat_rate == rec.vat_rate else policy.vat_rate_on(rec.date)
        out.append(_half_up(Decimal(cents) * (1 + Decimal(str(rate)))))
    return out


@pytest.fixture(scope="module")
def ties(tmp_path_factory):
    ledger = normalize_ledger(_ties_ledger(), source="ties")
    assert ledger.issues == []
    data = register_data(ledger, year=YEAR, generated_at="2026-01-01T00:00:00+00:00", source="ties.csv")
    path = write_register(data, tmp_path_factory.mktemp("ties") / "ties.xlsx")
    return data, path


def _cents(value) -> int:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return round(value * 100)


# ----------------------------------------------------------------------------- the core
def test_the_core_rounds_every_tie_half_up(ties):
    data, _ = ties
    rows = data.rows
    assert data.gross_cents.tolist() == _expected_gross(rows, data.policy)
    assert gross_cents(rows, data.policy).tolist() == data.gross_cents.tolist()
    own_rate = rows["vat_rate"].notna().to_numpy()
    by_amount = {key: g for key, g, own in zip(zip(rows["amount_cents"], rows["date"].dt.year, rows["type"].astype(str)),
                                               data.gross_cents, own_rate) if not own}
    assert by_amount[(4712250, YEAR, "invoice")] == 5324843  # 53,248.43
    assert by_amount[(50, YEAR, "invoice")] == 57  # 0.57
    assert by_amount[(4712250, 2017, "invoice")] == 5513333  # 17%: 55,133.325 -> 55,133.33
    assert by_amount[(100050, YEAR, "opening_balance")] == 100050  # as booked
    net = data.review.net_sales_cents
    assert net % 500 == 250  # so the budget is a tie as well
    assert data.review.budget_cents == _half_up(Decimal(net) * Decimal("0.2") * Decimal("1.13"))


# ----------------------------------------------------------------------------- LibreOffice
def _ledger_gross_cents(ws, n: int) -> list[int]:
    return [_cents(ws[f"I{r}"].value) for r in range(2, n + 2)]


def _totals_are_the_cores(computed, data) -> None:
    n = len(data.rows)
    assert _ledger_gross_cents(computed[rs.LEDGER], n) == data.gross_cents.tolist()
    credit = computed[rs.CREDIT]
    assert _cents(credit["C7"].value) == data.review.net_sales_cents  # NetSalesTotal
    assert _cents(credit["C10"].value) == data.review.budget_cents  # Budget: a tie
    col = computed["Collection"]
    facts = data.facts
    for key, letter in (("net_sales_cents", "B"), ("gross_sales_cents", "C"), ("collections_cents", "D"),
                        ("open_balance_cents", "G")):
        assert [_cents(col[f"{letter}{r}"].value) for r in range(2, len(facts) + 2)] == facts[key].tolist(), key
    assert [col[f"I{r}"].value for r in range(2, len(facts) + 2)] == ["OK"] * len(facts)


@pytest.mark.libreoffice
def test_libreoffice_gives_the_cores_cent_on_every_tie(soffice, ties, tmp_path):
    from tests.workbook.test_workbooks import _cache_differences, _errors

    data, path = ties
    computed = openpyxl.load_workbook(recalculate(path, tmp_path), data_only=True)
    assert _errors(openpyxl.load_workbook(path), computed) == []
    _totals_are_the_cores(computed, data)
    dash = computed[rs.DASHBOARD]
    assert figure(dash, "Register matches the ledger") == "OK"
    assert _cents(figure(dash, "Credit lines")) == data.review.budget_cents
    assert _cache_differences(path, computed) == []


# ----------------------------------------------------------------------------- Gnumeric
def plain_references(path: Path, target: Path) -> Path:
    """A copy of the register Gnumeric can read: structured references to the Ledger table and
    the registers' growing names (`A2:INDEX(...)`) spelled as plain ranges; formulas unchanged."""
    wb = openpyxl.load_workbook(path)
    last = wb[rs.LEDGER].max_row
    letters = {header: chr(ord("A") + i) for i, (_, header) in enumerate(LEDGER_COLUMNS)}
    this_row = re.compile(rf"{LEDGER_TABLE}\[\[#This Row\],\[([^\]]+)\]\]")
    column = re.compile(rf"{LEDGER_TABLE}\[([^\]\[#][^\]]*)\]")

    def plain(text: str, row: int) -> str:
        text = this_row.sub(lambda m: f"{letters[m.group(1)]}{row}", text)
        text = column.sub(lambda m: f"{rs.LEDGER}!${letters[m.group(1)]}$2:${letters[m.group(1)]}${last}", text)
        return text.replace(f"{LEDGER_TABLE}[#All]", f"{rs.LEDGER}!$A$1:${LEDGER_LAST}${last}")

    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, ArrayFormula):
                    c.value = ArrayFormula(c.value.ref, plain(c.value.text, c.row))
                elif isinstance(c.value, str) and c.value.startswith("="):
                    c.value = plain(c.value, c.row)
    customers = wb[rs.REGISTER].max_row
    growing = re.compile(r"^(Register!\$([A-Z]+)\$2):INDEX\(.*\)$")
    for name in list(wb.defined_names):
        m = growing.match(wb.defined_names[name].attr_text)
        if m:
            wb.defined_names[name].attr_text = f"{m.group(1)}:${m.group(2)}${customers}"
    for ws in wb.worksheets:
        ws.tables.clear()
    wb.save(target)
    return target


@pytest.fixture
def gnumeric() -> str:
    return require_gnumeric()


def test_gnumeric_gives_the_cores_cent_on_every_tie(gnumeric, ties, tmp_path):
    data, path = ties
    copy = plain_references(path, tmp_path / "plain.xlsx")
    assert "tblLedger" not in "".join(c.value for ws in openpyxl.load_workbook(copy).worksheets
                                      for row in ws.iter_rows() for c in row
                                      if isinstance(c.value, str) and c.value.startswith("="))
    computed = openpyxl.load_workbook(recalculate_gnumeric(copy, tmp_path / "out"), data_only=True)
    _totals_are_the_cores(computed, data)
    # and every other cell it computes is the value cached in the register
    formulas, cached = openpyxl.load_workbook(path), openpyxl.load_workbook(path, data_only=True)
    differ = []
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if not (isinstance(c.value, str) and c.value.startswith("=")) or "crm_" in c.value:
                    continue
                mine, theirs = cached[ws.title][c.coordinate].value, computed[ws.title][c.coordinate].value
                if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
                    if abs(mine - theirs) > 1e-9 * max(1.0, abs(mine)):
                        differ.append(f"{ws.title}!{c.coordinate}: {mine!r} vs {theirs!r}")
                elif (mine or None) != (theirs or None) and not (isinstance(theirs, str) and theirs.startswith("#")):
                    differ.append(f"{ws.title}!{c.coordinate}: {mine!r} vs {theirs!r}")
    assert differ == []


# ----------------------------------------------------------------------------- the formulas alone
def _tie_amounts(rate: str, count: int = 3) -> list[int]:
    """Cents c with c x (1 + rate) exactly half a cent over a whole cent, from 1 cent to 10^12."""
    factor = Decimal(1) + Decimal(rate)
    out = []
    for magnitude in range(0, 13):
        c, found = 10**magnitude, 0
        while found < count:
            if (Decimal(c) * factor) % 1 == Decimal("0.5"):
                out.append(c)
                found += 1
            c += 1
        # an amount just beside a tie must not be pulled onto it
        out.append(c + 1)
    return out


def formula_book(path: Path) -> tuple[Path, list[int], list[int]]:
    """The Ledger sheet's gross formula and the Credit sheet's budget formula, as shipped but with
    plain references (so every engine reads them), over ties from a cent to ten billion."""
    from crm_app.workbook.register_sheets import BUDGET_FORMULA, gross_formula

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Ties"
    lists = wb.create_sheet("Lists")
    for r, (day, rate) in enumerate(Policy().vat_table.items(), start=2):
        lists[f"A{r}"], lists[f"B{r}"] = pd.Timestamp(day).to_pydatetime(), rate
    from openpyxl.workbook.defined_name import DefinedName

    wb.defined_names["VatFrom"] = DefinedName("VatFrom", attr_text="Lists!$A$2:$A$4")
    wb.defined_names["VatRate"] = DefinedName("VatRate", attr_text="Lists!$B$2:$B$4")
    cases = [(c, "2024-03-01", None, "0.13") for c in _tie_amounts("0.13")]
    cases += [(c, "2017-03-01", None, "0.17") for c in _tie_amounts("0.17", 1)]
    cases += [(c, "2024-03-01", 0.09, "0.09") for c in _tie_amounts("0.09", 1)]
    cases += [(c, "2024-03-01", 0.06, "0.06") for c in _tie_amounts("0.06", 1)]
    expected = []
    for r, (cents, day, own, rate) in enumerate(cases, start=2):
        ws[f"A{r}"], ws[f"D{r}"], ws[f"E{r}"] = pd.Timestamp(day).to_pydatetime(), "invoice", cents / 100
        ws[f"H{r}"] = own
        ws[f"I{r}"] = gross_formula(f"E{r}", f"D{r}", f"H{r}", f"A{r}")
        expected.append(_half_up(Decimal(cents) * (1 + Decimal(rate))))
    budgets = []
    # net sales N cents with N x 20% x 1.13 = N x 0.226 a tie: N = 250 (mod 500); and N + 1 beside it
    nets = [n + d for n in [250, 4712250, *(10**m + 250 for m in range(3, 15))] for d in (0, 1)]
    for r, net in enumerate(nets, start=2):
        ws[f"K{r}"], ws[f"L{r}"], ws[f"M{r}"] = net / 100, 0.2, 0.13
        text = BUDGET_FORMULA
        for name, ref in (("NetSalesTotal", f"K{r}"), ("BudgetRatio", f"L{r}"), ("BudgetVat", f"M{r}")):
            text = text.replace(name, ref)
        ws[f"N{r}"] = text
        budgets.append(_half_up(Decimal(net) * Decimal("0.2") * Decimal("1.13")))
    wb.save(path)
    return path, expected, budgets


@pytest.mark.parametrize("engine", [pytest.param("libreoffice", marks=pytest.mark.libreoffice), "gnumeric"])
def test_the_formulas_round_ties_half_up_from_a_cent_to_ten_billion(engine, tmp_path, request):
    if engine == "libreoffice":
        request.getfixturevalue("soffice")
        run = recalculate
    else:
        require_gnumeric()
        run = recalculate_gnumeric
    path, expected, budgets = formula_book(tmp_path / "formulas.xlsx")
    ws = openpyxl.load_workbook(run(path, tmp_path / "out"), data_only=True)["Ties"]
    got = [_cents(ws[f"I{r}"].value) for r in range(2, 2 + len(expected))]
    wrong = [(ws[f"E{r}"].value, g, e) for r, g, e in zip(range(2, 2 + len(expected)), got, expected) if g != e]
    assert wrong == []
    assert [_cents(ws[f"N{r}"].value) for r in range(2, 2 + len(budgets))] == budgets


def test_require_gnumeric_skips_or_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_SSCONVERT", str(tmp_path / "no-ssconvert"))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_gnumeric()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_gnumeric()
