"""tests.support.libreoffice: headless recalculation and VBA macros through LibreOffice Calc."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName

from tests.support import libreoffice as lo

pytestmark = pytest.mark.libreoffice

MACROS = '''Function WriteAndReturn(x As Variant) As Variant
    ThisWorkbook.Worksheets(1).Range("B2").Value = x * 2
    WriteAndReturn = "got " & CStr(x)
End Function

Function Several()
    Several = Array(1, "a", True, 2.5)
End Function

Sub Greet(Optional who As String = "world")
    Range("A1").Value = "hello " & who
End Sub
'''


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def formula_book(tmp_path: Path) -> Path:
    """openpyxl workbook (so: no cached values) with the formula kinds the add-in relies on."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Ledger"
    ws.append(["customer", "amount", "paid"])
    for row in (["A", 100, True], ["B", 50, False], ["A", 25, True]):
        ws.append(row)
    wb.defined_names["Amounts"] = DefinedName("Amounts", attr_text="Ledger!$B$2:$B$4")
    ws["E1"] = '=SUMIFS(B2:B4,A2:A4,"A")'
    ws["E2"] = "=SUM(Amounts)"
    ws["E3"] = '=_xlfn.IFS(E1>100,"big",TRUE,"small")'
    ws["E4"] = "=E1>E2"
    ws["E5"] = "=NA()"
    ws["E6"] = '=_xlfn.XLOOKUP("A",A2:A4,B2:B4)'  # not in LibreOffice 7.4
    ws["E7"] = "=DATE(2024,1,31)+1"
    ws["E8"] = '=""'
    path = tmp_path / "formulas.xlsx"
    wb.save(path)
    return path


def test_recalculate_computes_formulas(soffice: str, formula_book: Path, tmp_path: Path) -> None:
    before = _sha(formula_book)
    out = lo.recalculate(formula_book, tmp_path / "out")
    assert out == tmp_path / "out" / "formulas.xlsx"
    assert _sha(formula_book) == before  # source untouched
    ws = openpyxl.load_workbook(out, data_only=True)["Ledger"]
    assert [ws[c].value for c in ("E1", "E2", "E3")] == [125, 175, "big"]
    # Gotchas, pinned: bools stay bool, errors are strings, dates are datetimes, "" is None.
    assert ws["E4"].value is False and ws["C2"].value is True
    assert (ws["E5"].value, ws["E5"].data_type) == ("#N/A", "e")
    assert ws["E6"].value == "#NAME?"
    assert ws["E7"].value == dt.datetime(2024, 2, 1)
    assert ws["E8"].value is None


def test_recalculated_values(soffice: str, formula_book: Path) -> None:
    values = lo.recalculated_values(formula_book)
    assert values["Ledger"]["E1"] == 125
    assert values["Ledger"]["A1"] == "customer"
    assert "E8" not in values["Ledger"]  # empty results are left out


def _patch_cell(src: Path, dst: Path, ref: str, old: str, new: str) -> None:
    """Rewrite one <v> in sheet1.xml, keeping every cached formula value as it was."""
    pattern = re.compile(rf'(<c r="{ref}"[^>]*><v>){old}(</v>)')
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text, n = pattern.subn(rf"\g<1>{new}\g<2>", data.decode("utf-8"))
                assert n == 1
                data = text.encode("utf-8")
            zout.writestr(item, data)


def test_recalculate_ignores_stale_cached_values(soffice: str, formula_book: Path,
                                                 tmp_path: Path) -> None:
    # A LibreOffice-saved file carries cached values; by default LO would keep E1=125.
    cached = lo.recalculate(formula_book, tmp_path / "cached")
    stale = tmp_path / "stale.xlsx"
    _patch_cell(cached, stale, "B2", "100", "1000")
    assert openpyxl.load_workbook(stale, data_only=True)["Ledger"]["E1"].value == 125
    assert lo.recalculated_values(stale)["Ledger"]["E1"] == 1025


def test_recalculate_runs_concurrently(soffice: str, formula_book: Path, tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda i: lo.recalculate(formula_book, tmp_path / f"o{i}"), (1, 2)))
    for out in outs:
        assert openpyxl.load_workbook(out, data_only=True)["Ledger"]["E1"].value == 125


def test_recalculate_errors(soffice: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(lo.LibreOfficeError, match="could not be loaded"):
        lo.recalculate(broken, tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        lo.recalculate(tmp_path / "missing.xlsx")
    ok = tmp_path / "ok.xlsx"
    openpyxl.Workbook().save(ok)
    with pytest.raises(ValueError, match="overwrite"):
        lo.recalculate(ok, tmp_path)


def test_require_libreoffice_skips_or_fails(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_SOFFICE", str(tmp_path / "no-soffice"))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        lo.require_libreoffice()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        lo.require_libreoffice()


# ---------------------------------------------------------------- macros


@pytest.fixture(scope="module")
def macro_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lo.require_libreoffice(macros=True)
    out = tmp_path_factory.mktemp("macros") / "macros.xlsm"
    lo.build_macro_workbook(out, {"Module1": MACROS})
    with zipfile.ZipFile(out) as z:
        assert "xl/vbaProject.bin" in z.namelist()
    return out


def test_run_macro_writes_cell_and_returns(macro_book: Path, tmp_path: Path) -> None:
    before = _sha(macro_book)
    saved = tmp_path / "after.xlsm"
    assert lo.run_basic_macro(macro_book, "Module1", "WriteAndReturn", [21],
                              save_as=saved) == "got 21"
    assert _sha(macro_book) == before
    assert openpyxl.load_workbook(saved)["Sheet1"]["B2"].value == 42
    with zipfile.ZipFile(saved) as z:
        assert "xl/vbaProject.bin" in z.namelist()  # the VBA project survives save_as


def test_run_macro_sub_and_array(macro_book: Path, tmp_path: Path) -> None:
    saved = tmp_path / "greet.xlsx"
    assert lo.run_basic_macro(macro_book, "Module1", "Greet", ["CRM"], save_as=saved) is None
    assert openpyxl.load_workbook(saved)["Sheet1"]["A1"].value == "hello CRM"
    assert lo.run_basic_macro(macro_book, "Module1", "Several") == [1, "a", True, 2.5]


def test_run_macro_missing_proc(macro_book: Path) -> None:
    with pytest.raises(lo.LibreOfficeError, match="could not be found"):
        lo.run_basic_macro(macro_book, "Module1", "NoSuchMacro")
