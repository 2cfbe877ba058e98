"""Ledgers longer than a sheet, the rows --skip-bad-rows leaves out, and the sheet writer behind
both: the register is written, says where the ledger's rows are, and never sums a sheet that
does not hold them. Sheets are made short (workbook_sheet.SHEET_ROWS) so the tests stay small."""
from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.worksheet.formula import ArrayFormula

from crm_app.cli.main import main
from crm_app.io.files import read_table
from crm_app.register import schema as rs
from crm_app.workbook import xml_sheet as workbook_sheet
from crm_app.workbook.builder import build_workbook, write_register
from crm_app.workbook.data import register_data
from crm_app.workbook.package import fill_sheets
from crm_app.workbook.xml_sheet import DATE, MONEY, SKIP, Sheet, Styles
from crm_core.demo import demo_ledger
from crm_core.issues import issues_frame
from crm_core.ledger import normalize_ledger
from tests.workbook.test_workbooks import figure

SHORT_SHEET = 120  # rows of a pretend sheet: 119 ledger rows fit below the header


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """About 200 rows for 10 customers, balances brought forward included."""
    frame = demo_ledger(customers=10, yearly_sales=2_000_000)
    assert len(frame) > SHORT_SHEET
    return frame


@pytest.fixture
def ledger_csv(raw, tmp_path) -> Path:
    path = tmp_path / "ledger.csv"
    raw.to_csv(path, index=False)
    return path


@pytest.fixture
def short_sheets(monkeypatch):
    monkeypatch.setattr(workbook_sheet, "SHEET_ROWS", SHORT_SHEET)


def _formulas(wb) -> dict[str, dict[str, str]]:
    """Every formula of the workbook by sheet and cell (array formulas by their anchor)."""
    out: dict[str, dict[str, str]] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                text = c.value.text if isinstance(c.value, ArrayFormula) else c.value
                if isinstance(text, str) and text.startswith("="):
                    out.setdefault(ws.title, {})[c.coordinate] = text
    return out


def _cents(value) -> int:
    return round(value * 100)


def _column_a(ws) -> list[str]:
    """The texts in column A (the Dashboard's figures and notes)."""
    return [c.value for c in ws["A"] if isinstance(c.value, str)]


# ----------------------------------------------------------------------------- longer than a sheet
def test_a_ledger_longer_than_a_sheet_is_reviewed_and_the_register_says_where_its_rows_are(
        short_sheets, raw, ledger_csv, tmp_path, capsys):
    out = tmp_path / "register.xlsm"
    assert main(["review", str(ledger_csv), "--out", str(out), "--quiet"]) == 0
    n, source = len(raw), str(ledger_csv.resolve())
    err = capsys.readouterr().err
    assert f"{n:,} rows" in err and source in err and "0 of them are on the Ledger sheet" in err

    wb = openpyxl.load_workbook(out, keep_vba=True)
    ledger = wb[rs.LEDGER]
    assert ledger.max_row == 2 and ledger["A2"].value is None  # none of the rows, the table ready for input
    assert [t.ref for t in ledger.tables.values()] == ["A1:J2"]
    note = ledger["K1"].value
    assert f"{n:,}" in note and source in note and "0 of them" in note and "台账共" in note
    about = rs.read_about(wb[rs.ABOUT])
    assert (about["ledger_rows"], about["ledger_rows_on_sheet"], about["ledger_source"]) == (n, 0, source)
    assert about["ledger_note"] == note and note in _column_a(wb[rs.DASHBOARD])

    # nothing outside the Ledger sheet sums it: those cells hold the add-in's values instead
    formulas = _formulas(wb)
    summing = {s: [c for c, f in cells.items() if "tblLedger" in f] for s, cells in formulas.items() if s != rs.LEDGER}
    assert {s: c for s, c in summing.items() if c} == {}
    data = register_data(normalize_ledger(read_table(ledger_csv), source=ledger_csv.name))
    values = openpyxl.load_workbook(out, data_only=True)
    credit = values[rs.CREDIT]
    assert "C7" not in formulas[rs.CREDIT] and _cents(credit["C7"].value) == data.review.net_sales_cents
    assert _cents(credit["C10"].value) == data.review.budget_cents and credit["C15"].value == "OK"
    col = values["Collection"]
    facts = data.facts
    for key, letter in (("net_sales_cents", "B"), ("gross_sales_cents", "C"), ("collections_cents", "D"),
                        ("open_balance_cents", "G")):
        assert [_cents(col[f"{letter}{r}"].value) for r in range(2, len(facts) + 2)] == facts[key].tolist(), key
    ageing = values["Ageing"]
    assert ageing["A3"].value == "客户编码\nCode" and "Ageing" not in formulas
    total = len(data.aging.columns)  # the customers' total column (the by-tier table is to its right)
    assert sum(_cents(ageing.cell(row=r, column=total).value or 0)
               for r in range(4, 4 + len(data.aging))) == int(data.aging["total"].sum())
    assert _cents(ageing.cell(row=4 + len(data.aging), column=total).value) == int(data.aging["total"].sum())

    from crm_app.register.load import load_register
    from crm_app.register.workflow import verify

    loaded = load_register(out)
    assert loaded.issues == [] and int(loaded.register["credit_line_cents"].sum()) == data.review.budget_cents
    assert verify(out) == []


@pytest.mark.libreoffice
def test_a_register_without_its_ledger_recalculates_to_the_cores_figures(
        soffice, short_sheets, raw, ledger_csv, tmp_path):
    """Recalculated (LibreOffice), no cell quietly sums the empty Ledger sheet: the budget, the
    collection review and the Dashboard's checks still agree with the core to the cent."""
    from tests.support.libreoffice import recalculate

    out = tmp_path / "register.xlsx"
    data = register_data(normalize_ledger(read_table(ledger_csv), source=ledger_csv.name), source=str(ledger_csv))
    write_register(data, out)
    from tests.workbook.test_workbooks import _cache_differences, _errors

    computed = openpyxl.load_workbook(recalculate(out, tmp_path / "lo"), data_only=True)
    assert _errors(openpyxl.load_workbook(out), computed) == []  # the add-in's crm_* cells aside
    assert _cache_differences(out, computed) == []
    credit = computed[rs.CREDIT]
    assert _cents(credit["C7"].value) == data.review.net_sales_cents
    assert _cents(credit["C10"].value) == data.review.budget_cents
    assert credit["C15"].value == "OK"
    col = computed["Collection"]
    n = len(data.facts)
    assert [_cents(col[f"G{r}"].value) for r in range(2, n + 2)] == data.facts["open_balance_cents"].tolist()
    assert all(col[f"I{r}"].value == "OK" for r in range(2, n + 2))
    dash = computed[rs.DASHBOARD]
    assert _cents(figure(dash, "Credit lines")) == data.review.budget_cents
    assert figure(dash, "Register matches the ledger") == "OK" == figure(dash, "Review sheets cover all customers")


def test_the_sheet_limit_is_the_boundary(raw, monkeypatch):
    data = register_data(normalize_ledger(raw, source="demo"), source="/data/ledger.csv")
    n = len(data.rows)
    for limit, on_sheet in ((n + 1, True), (n, False)):  # header + n rows fit in n + 1
        monkeypatch.setattr(workbook_sheet, "SHEET_ROWS", max(limit, 200) if on_sheet else limit)
        wb = openpyxl.load_workbook(io.BytesIO(build_workbook(data, macros=False)))
        about = rs.read_about(wb[rs.ABOUT])
        assert about["ledger_rows_on_sheet"] == (n if on_sheet else 0), limit
        assert wb[rs.LEDGER].max_row == (n + 1 if on_sheet else 2)


def test_a_ledger_that_fits_is_all_on_the_ledger_sheet(raw, ledger_csv, tmp_path):
    out = tmp_path / "register.xlsx"
    assert main(["review", str(ledger_csv), "--out", str(out), "--quiet"]) == 0
    data = register_data(normalize_ledger(read_table(ledger_csv), source=ledger_csv.name))
    wb = openpyxl.load_workbook(out)
    values = openpyxl.load_workbook(out, data_only=True)
    ledger, cached = wb[rs.LEDGER], values[rs.LEDGER]
    n = len(data.rows)
    assert ledger.max_row == n + 1 and ledger["K1"].value is None
    assert [_cents(cached[f"E{r}"].value) for r in range(2, n + 2)] == data.rows["amount_cents"].tolist()
    assert [_cents(cached[f"I{r}"].value) for r in range(2, n + 2)] == data.gross_cents.tolist()
    assert [ledger[f"D{r}"].value for r in range(2, n + 2)] == data.rows["type"].astype(str).tolist()
    assert all(ledger[f"I{r}"].value.startswith("=IF(") for r in range(2, n + 2))
    assert [ledger[f"A{r}"].value for r in range(2, 5)] == [d.to_pydatetime() for d in data.rows["date"][:3]]
    assert ledger["A2"].number_format == DATE and ledger["E2"].number_format == MONEY
    about = rs.read_about(wb[rs.ABOUT])
    assert about["ledger_rows"] == about["ledger_rows_on_sheet"] == n
    assert any("all on the Ledger sheet" in text for text in _column_a(wb[rs.DASHBOARD]))
    assert "tblLedger" in wb[rs.CREDIT]["C7"].value  # the native sum, since the rows are there


def test_review_and_review_file_give_the_same_register(raw, ledger_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ADDIN_CACHE", str(tmp_path / "cache"))
    book, table = tmp_path / "register.xlsx", tmp_path / "register.csv"
    assert main(["review", str(ledger_csv), "--out", str(book), "--quiet"]) == 0
    assert main(["review-file", str(ledger_csv), "--out", str(table), "--no-cache"]) == 0
    from crm_app.register.load import load_register
    from crm_core.schema import REVIEW_COLUMNS
    from crm_core.values import parse_money_cents

    labels = {c.frame_key: c.label for c in REVIEW_COLUMNS}  # the CSV: the Register's labels, in units
    sheet = load_register(book).register.set_index("customer")
    frame = pd.read_csv(table, dtype={labels["customer"]: str}).set_index(labels["customer"])
    assert sheet.index.tolist() == frame.index.tolist()
    for key in ("net_sales_cents", "collections_cents", "open_balance_cents", "credit_line_cents"):
        cents = [parse_money_cents(v) for v in frame[labels[key]]]
        assert sheet[key].astype("int64").tolist() == cents, key
    assert (sheet["rate_tier"] == frame[labels["rate_tier"]]).all()


def test_review_file_workbook_names_its_ledger_and_lists_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ADDIN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "ledger.csv"
    path.write_text("date,customer,type,amount\n2024-03-01,C1,invoice,100.005\n2024-04-01,C1,receipt,50\n",
                    encoding="utf-8")
    out = tmp_path / "register.xlsx"
    assert main(["review-file", str(path), "--year", "2024", "--out", str(out), "--no-cache"]) == 0
    wb = openpyxl.load_workbook(out)
    about = {row[0].value: row[1].value for row in wb["About"].iter_rows(min_row=1, max_col=2)}
    assert about["ledger_source"] == str(path.resolve()) and about["ledger_rows"] == 2
    issues = normalize_ledger(read_table(path), source=path.name).issues
    assert issues, "an amount finer than a cent is rounded with a warning"
    listed = [[c.value for c in row] for row in wb["Issues"].iter_rows(min_row=2, max_col=6)]
    assert listed == [[i.source, i.row, i.column, i.severity, i.code.value, i.message] for i in issues]


# ----------------------------------------------------------------------------- rows skipped
BAD_LEDGER = """date,customer,type,amount
2024-03-01,C1,invoice,100
2024-13-01,C1,invoice,50
2024-03-02,C2,bogus,10
2024-03-03,C2,invoice,abc
2024-03-04,C2,receipt,50
2024-03-05,C2,invoice,200
"""


def test_skipped_rows_are_listed_in_the_register(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_LEDGER, encoding="utf-8")
    out = tmp_path / "register.xlsx"
    assert main(["review", str(path), "--out", str(out), "--quiet"]) == 2  # refused without the flag
    assert not out.exists()
    assert main(["review", str(path), "--year", "2024", "--out", str(out), "--quiet", "--skip-bad-rows"]) == 0
    issues = normalize_ledger(read_table(path), source=path.name).issues
    skipped = sorted({i.row for i in issues if i.is_error})
    assert skipped == [3, 4, 5]
    wb = openpyxl.load_workbook(out)
    sheet = wb["Issues"]
    assert [" ".join(c.value.split()) for c in sheet[1][:6]] == ["来源 Source", "行 Row", "列 Column", "严重性 Severity",
                                                                  "代码 Code", "说明 Message"]
    listed = [[c.value for c in row] for row in sheet.iter_rows(min_row=2, max_col=6)]
    expected = issues_frame(issues)
    assert listed == [[s, int(r), c, sev, code, m] for s, r, c, sev, code, m in expected.itertuples(index=False)]
    assert {r[1] for r in listed if r[3] == "error"} == set(skipped)
    assert "3 row(s) skipped" in sheet["H1"].value
    assert any("3 row(s) skipped" in text for text in _column_a(wb[rs.DASHBOARD]))
    about = rs.read_about(wb[rs.ABOUT])
    assert (about["issues"], about["rows_skipped"]) == (len(issues), 3)
    assert "Issues sheet" in capsys.readouterr().err
    from crm_app.register.workflow import verify

    assert verify(out) == []


def test_a_clean_ledger_says_so_on_the_issues_sheet(raw):
    data = register_data(normalize_ledger(raw, source="demo"))
    wb = openpyxl.load_workbook(io.BytesIO(build_workbook(data, macros=False)))
    assert wb["Issues"].max_row == 1 and "No problems" in wb["Issues"]["H1"].value


# ----------------------------------------------------------------------------- the sheet writer
def test_the_sheet_writer_round_trips_what_openpyxl_reads(tmp_path):
    wb = openpyxl.Workbook()
    sheet = Sheet(wb.active, Styles(wb))
    sheet.label("A1", "=HYPERLINK(1)", head=True)
    sheet.value("A2", "  padded  ")
    sheet.value("A3", "bell\x07 & <tag>")
    sheet.value("A4", 12.5, MONEY, unlocked=True)
    sheet.value("A5", 7)
    sheet.value("A6", True)
    sheet.value("A7", datetime(2024, 2, 29), DATE)
    sheet.value("A8", "")  # empty, as openpyxl leaves it
    sheet.formula("B1", '=IF(A4>1,"big & <bold>","")', "big & <bold>")
    sheet.formula("B2", "=A4>1", True)
    sheet.formula("B3", "=1/0", "#DIV/0!")
    sheet.formula("B4", "=A4*2", 25.0, MONEY)
    sheet.formula("B5", "=NOW()")  # no cached value
    sheet.array("C1:C3", "=crm_x(A1:A3)", [[1.5], ["two"], [None]])
    sheet.style("D9", fmt=DATE)
    sheet.rows_xml(20, 21, 2, ['<row r="20"><c r="A20"><v>1</v></c></row>', '<row r="21"><c r="B21"><v>2</v></c></row>'])
    sheet.register_styles()
    buffer = io.BytesIO()
    wb.save(buffer)
    path = tmp_path / "w.xlsx"
    path.write_bytes(fill_sheets(buffer.getvalue(), {sheet.title: sheet}, sheet.strings))
    f, v = openpyxl.load_workbook(path).active, openpyxl.load_workbook(path, data_only=True).active
    assert (f["A1"].value, f["A1"].data_type, f["A1"].font.b) == ("=HYPERLINK(1)", "s", True)
    assert [f[c].value for c in ("A2", "A3", "A4", "A5", "A6", "A7", "A8")] == [
        "  padded  ", "bell & <tag>", 12.5, 7, True, datetime(2024, 2, 29), None]
    assert f["A4"].number_format == MONEY and not f["A4"].protection.locked and f["A5"].protection.locked
    assert f["B1"].value == '=IF(A4>1,"big & <bold>","")' and v["B1"].value == "big & <bold>"
    assert (v["B2"].value, v["B3"].value, v["B4"].value, v["B5"].value) == (True, "#DIV/0!", 25.0, None)
    assert isinstance(f["C1"].value, ArrayFormula) and f["C1"].value.ref == "C1:C3"
    assert [v[c].value for c in ("C1", "C2", "C3")] == [1.5, "two", None]
    assert f["D9"].number_format == DATE
    assert (v["A20"].value, v["B21"].value) == (1, 2)
    assert f.dimensions == "A1:D21"


def test_the_sheet_writer_refuses_cells_among_rows_given_whole():
    wb = openpyxl.Workbook()
    sheet = Sheet(wb.active, Styles(wb))
    sheet.value("A5", 1)
    sheet.rows_xml(4, 6, 1, ['<row r="4"/>'])
    with pytest.raises(ValueError, match="inside rows 4-6"):
        list(sheet.render())
    assert SKIP is workbook_sheet.SKIP


def test_the_register_bench_runs():
    """bench/run.py register (the speed figure of bench/README.md) still runs; nothing timed here."""
    import subprocess
    import sys

    run = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    out = subprocess.run([sys.executable, str(run), "--no-save", "register", "--rows", "3000", "--repeat", "1"],
                         capture_output=True, text=True, timeout=300, cwd=run.parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "3,000 rows" in out.stdout and "on the Ledger sheet" in out.stdout


def test_refresh_register_of_a_register_without_its_ledger_says_where_the_rows_are(
        short_sheets, raw, ledger_csv, tmp_path, capsys):
    """RefreshRegister reviews the Ledger sheet: with the ledger left in its file it would review
    nothing, so it refuses naming the file instead of 'the ledger has no data rows'."""
    from crm_core.issues import CrmInputError
    from udfs.macros.register import refresh_register_file

    out = tmp_path / "register.xlsm"
    assert main(["review", str(ledger_csv), "--out", str(out), "--quiet"]) == 0
    with pytest.raises(CrmInputError, match="not on the Ledger sheet but in .*ledger.csv"):
        refresh_register_file(out)
