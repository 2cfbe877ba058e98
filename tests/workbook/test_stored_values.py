"""A register the workflow rewrote still stores every formula's value it can know exactly: read
by openpyxl (as a previewer or a mail client reads it), it shows the numbers LibreOffice
computes, and where a value cannot be known it stores none rather than a stale one."""
from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from crm_app.cli.main import main
from crm_app.register import schema as rs
from crm_app.workbook.stored_values import Formulas, dirty_formulas, precedents, same
from tests.support.libreoffice import recalculated_workbook
from tests.support.signing import SIGN_ARGS


@pytest.fixture(scope="module")
def reallocated(tmp_path_factory) -> Path:
    """The demo register after one reallocation batch applied from the command line."""
    folder = tmp_path_factory.mktemp("stored")
    assert main(["demo", "--out", str(folder), "--quiet"]) == 0
    register = folder / "demo_register.xlsm"
    request = folder / "request.csv"
    assert main(["sign-off", str(register), *SIGN_ARGS]) == 0
    assert main(["suggest", str(register), "--for", "C0007", "--amount", "100000", "--out", str(request)]) == 0
    assert main(["reallocate", str(register), "--request", str(request), "--requester", "Sales director",
                 "--approver", "General manager", "--recorder", "Finance"]) == 0
    return register


def formula_cells(path: Path) -> dict[tuple[str, str], str]:
    book = openpyxl.load_workbook(path)
    return {(ws.title, c.coordinate): str(c.value) for ws in book.worksheets for row in ws.iter_rows()
            for c in row if c.data_type == "f"}


def test_after_a_reallocation_the_stored_values_are_libreoffices(reallocated, soffice):
    stored = openpyxl.load_workbook(reallocated, data_only=True)
    computed = recalculated_workbook(reallocated)
    formulas = formula_cells(reallocated)
    differ = []
    for sheet, ref in formulas:
        mine, theirs = stored[sheet][ref].value, computed[sheet][ref].value
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
            if not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9):
                differ.append((sheet, ref, mine, theirs))
        elif not same(mine, theirs) and not (isinstance(theirs, str) and theirs.startswith("#")):
            differ.append((sheet, ref, mine, theirs))  # an add-in formula LibreOffice cannot compute is not compared
    assert differ == []


def unstored_formulas(path: Path) -> dict[str, list[str]]:
    """Formula cells that store no value, by sheet: an empty <v> on a cell with no type (a formula
    whose value is "" stores it as t="str")."""
    from crm_app.workbook.package import sheet_parts

    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    cell = re.compile(r'<c r="([A-Z]+[0-9]+)"([^>]*)><f[^>]*>[^<]*</f>(?:<v/>|<v></v>)?</c>')
    return {sheet: [ref for ref, attrs in cell.findall(files[part].decode()) if " t=" not in attrs]
            for sheet, part in sheet_parts(files).items()}


def test_after_a_reallocation_the_file_stores_text_once_and_a_value_for_the_formulas(reallocated):
    with zipfile.ZipFile(reallocated) as z:
        sheets = [z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert "xl/sharedStrings.xml" in z.namelist()
    assert not any(b'"inlineStr"' in xml for xml in sheets)
    missing = {sheet: refs for sheet, refs in unstored_formulas(reallocated).items() if refs}
    assert missing == {}
    assert not openpyxl.load_workbook(reallocated).calculation.fullCalcOnLoad  # nothing to recalculate on open
    stored = openpyxl.load_workbook(reallocated, data_only=True)
    assert isinstance(stored["CreditUse"]["C4"].value, (int, float))  # tier A's lines: it reads the moved ones


def test_a_formula_depends_on_a_cell_through_names_tables_and_other_formulas():
    names = {"Lines": "Register!$M$2:$M$10"}
    tables = {"tblLedger": ("Ledger", "A1:I50")}
    formulas = Formulas()
    for cell, text, sheet in [(("Credit", 5, 3), "=SUM(Lines)", "Credit"),
                              (("Dashboard", 2, 2), "=Credit!C5*2", "Dashboard"),
                              (("Register", 2, 5), "=SUMIFS(tblLedger[Amount],tblLedger[Code],A2)", "Register"),
                              (("Register", 3, 14), '=IF(N(M3)>0,K3/M3,"")', "Register")]:
        formulas.text[cell] = text
        formulas.areas[cell] = precedents(text, sheet, names, tables)
    dirty = dirty_formulas(formulas, {("Register", 3, 13)})
    assert dirty == {("Credit", 5, 3), ("Dashboard", 2, 2), ("Register", 3, 14)}
    assert dirty_formulas(formulas, {("Ledger", 40, 5)}) == {("Register", 2, 5)}
    assert dirty_formulas(formulas, {("Register", 11, 13)}) == set()  # below the name's range


def test_a_request_typed_on_the_form_leaves_the_forms_formulas_without_a_stale_value(tmp_path):
    """The rebuild knows no typed request: the form's formulas that read the lines store nothing
    (Excel recalculates them on open), every other formula keeps a value."""
    from crm_app.register.load import load_register
    from crm_app.workbook.stored_values import rebuild_sheets, save_rewritten

    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    path = tmp_path / "demo_register.xlsm"
    loaded = load_register(path)
    form = loaded.book[rs.REALLOCATION]
    first = next(r for r in range(1, 40) if form.cell(r, 1).value and "客户编码" in str(form.cell(r, 1).value)) + 1
    form.cell(first, 1).value = "C0007"  # a request line typed by a user
    register = loaded.book[rs.REGISTER]
    register["M2"].value = register["M2"].value  # nothing moved: only the form changed
    out = tmp_path / "out.xlsm"
    missing = save_rewritten(loaded.book, out, loaded.values, lambda: rebuild_sheets(loaded.book, path))
    assert missing > 0
    stored = openpyxl.load_workbook(out, data_only=True)
    assert stored[rs.REALLOCATION].cell(first, 4).value is None  # the old line of C0007: not stale
    assert openpyxl.load_workbook(out).calculation.fullCalcOnLoad


def test_a_reallocation_keeps_the_forms_buttons(reallocated):
    from tests.workbook.test_sheet_buttons import buttons, package

    found = buttons(package(reallocated.read_bytes()))
    assert [macro for _, macro, _ in found] == ["[0]!CheckReallocation", "[0]!ApplyReallocation",
                                                "[0]!SuggestReallocationCuts", "[0]!SignOff"]
