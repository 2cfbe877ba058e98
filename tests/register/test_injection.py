"""Formula and macro injection: text that looks like a formula stays text; files read are never run."""
import openpyxl
import pandas as pd
import pytest

from crm_app.cli.main import main
from crm_app.io.files import csv_safe, read_ledger

HOSTILE = ["=1+1", "+2+3", "-4+5", "@SUM(1,2)", "=HYPERLINK(\"http://evil.example\",\"x\")",
           "=cmd|' /C calc'!A0"]


def hostile_ledger(tmp_path):
    rows = ["日期,客户,客户名称,类型,金额"]
    for n, name in enumerate(HOSTILE):
        quoted = '"' + name.replace('"', '""') + '"'
        rows.append(f"2024-01-0{n + 1},{quoted},{quoted},发票,100")
    path = tmp_path / "hostile.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def register_texts(path):
    ws = openpyxl.load_workbook(path)["Register"]
    return {c.value: c.data_type for row in ws.iter_rows(min_row=2, max_col=2) for c in row}


def test_formula_like_names_are_written_as_text(tmp_path):
    out = tmp_path / "out.xlsx"
    assert main(["review", str(hostile_ledger(tmp_path)), "--year", "2024", "--out", str(out), "--quiet"]) == 0
    cells = register_texts(out)
    for name in HOSTILE:
        assert cells.get(name) == "s", f"{name!r} was not written as text"


@pytest.mark.libreoffice
def test_formula_like_names_stay_text_in_a_real_spreadsheet(tmp_path, soffice):
    from tests.support.libreoffice import recalculated_workbook

    out = tmp_path / "out.xlsx"
    assert main(["review", str(hostile_ledger(tmp_path)), "--year", "2024", "--out", str(out), "--quiet"]) == 0
    ws = recalculated_workbook(out)["Register"]
    seen = [ws.cell(row=r, column=1) for r in range(2, 2 + len(HOSTILE))]
    assert sorted(c.value for c in seen) == sorted(HOSTILE)
    assert all(c.data_type == "s" for c in seen)


def test_csv_cells_are_defused():
    assert [csv_safe(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert csv_safe("ABC") == "ABC" and csv_safe(-5) == -5


def test_formulas_in_a_ledger_file_are_not_evaluated_and_links_not_followed(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Ledger"
    ws.append(["date", "customer", "type", "amount"])
    ws.append(["2024-01-02", "A", "invoice", 100])
    ws.append(["2024-01-03", "A", "invoice", "=1+1"])                         # no cached value
    ws.append(["2024-01-04", "A", "invoice", "='[other.xlsx]Sheet1'!$A$1"])    # external link
    path = tmp_path / "ledger.xlsx"
    wb.save(path)
    ledger = read_ledger(path)
    assert list(ledger.rows["row"]) == [2]
    assert {(i.row, i.column) for i in ledger.errors} == {(3, "amount"), (4, "amount")}


def test_macro_workbook_is_read_as_values_only(tmp_path):
    """An .xlsm ledger is read through openpyxl, which never runs its VBA project."""
    from pathlib import Path

    import xlwings

    template = Path(xlwings.__file__).with_name("quickstart.xlsm")
    wb = openpyxl.load_workbook(template, keep_vba=True)
    ws = wb.worksheets[0]
    ws.title = "Ledger"
    for row in (["date", "customer", "type", "amount"], ["2024-01-02", "A", "invoice", 5]):
        ws.append(row)
    path = tmp_path / "ledger.xlsm"
    wb.save(path)
    frame = pd.read_excel(path, sheet_name="Ledger")
    assert list(frame.columns) == ["date", "customer", "type", "amount"]
    assert len(read_ledger(path).rows) == 1
