"""The shipped register template and the demo register: contract, reproducibility, protection,
validations, macros, and (with LibreOffice) recalculation against the core's numbers."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.formula import ArrayFormula

from crm_app.register import schema as rs
from crm_app.workbook.builder import (
    TEMPLATE_NAME,
    WORKBOOKS_DIR,
    build_workbook,
    quickstart_template,
    write_register,
)
from crm_app.workbook.data import register_data, tier_labels
from crm_app.workbook.register_sheets import (
    NEED_LIST,
    Ctx,
    flags_formula,
    reg_col,
    stage_formula,
    tenure_formula,
)
from crm_core.demo import demo_ledger
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy

TEMPLATE = WORKBOOKS_DIR / TEMPLATE_NAME
ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "Err:", "#ERR")


@pytest.fixture(scope="module")
def data():
    return register_data(normalize_ledger(demo_ledger(), source="demo"), generated_at="2026-01-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def demo_path(data, tmp_path_factory) -> Path:
    return write_register(data, tmp_path_factory.mktemp("demo") / "demo_register.xlsm")


@pytest.fixture(scope="module")
def small():
    """A 40-customer register, for the tests that open and save the file several times."""
    ledger = normalize_ledger(demo_ledger(customers=40, yearly_sales=2_000_000), source="small")
    return register_data(ledger, generated_at="2026-01-01T00:00:00+00:00")


# ----------------------------------------------------------------------------- reproducible, current
def workbook_content(payload: bytes) -> dict:
    """What a user sees and formulas use: cells, names, validations, protection, tables, VBA."""
    wb = openpyxl.load_workbook(io.BytesIO(payload), keep_vba=True)
    sheets = {}
    for ws in wb.worksheets:
        cells = {c.coordinate: (c.value.ref, c.value.text) if isinstance(c.value, ArrayFormula) else c.value
                 for row in ws.iter_rows() for c in row if c.value is not None}
        sheets[ws.title] = {
            "cells": cells, "state": ws.sheet_state, "protected": ws.protection.sheet,
            "validations": sorted((str(dv.sqref), dv.type, dv.formula1) for dv in ws.data_validations.dataValidation),
            "tables": sorted((t.displayName, t.ref) for t in ws.tables.values()),
            "conditional": sorted(str(r.sqref) for r in ws.conditional_formatting),
            "unlocked": sorted(c.coordinate for row in ws.iter_rows() for c in row if not c.protection.locked),
        }
    names = {n: d.attr_text for n, d in wb.defined_names.items()}
    # the VBA project comes from the installed xlwings' quickstart workbook; its modules are
    # checked by test_embedded_vba_is_the_excel_made_quickstart_project
    return {"sheets": sheets, "names": names, "macros": wb.vba_archive is not None}


def test_building_twice_gives_the_same_bytes():
    assert build_workbook() == build_workbook()


def test_committed_template_is_current():
    """Fails when workbooks/ is stale: run `crm-addin build-workbooks`."""
    fresh = build_workbook()
    shipped = TEMPLATE.read_bytes()
    if fresh != shipped:  # bytes can differ across openpyxl versions; the content must not
        assert workbook_content(fresh) == workbook_content(shipped), "run crm-addin build-workbooks"


def test_build_workbooks_check_command(tmp_path, capsys):
    from crm_app.cli.main import main

    assert main(["build-workbooks", "--out", str(tmp_path), "--check"]) == 1
    assert main(["build-workbooks", "--out", str(tmp_path)]) == 0
    assert main(["build-workbooks", "--out", str(tmp_path), "--check"]) == 0


# ----------------------------------------------------------------------------- the contract
def test_template_follows_the_register_contract():
    wb = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    for sheet in (rs.REGISTER, rs.LEDGER, rs.POLICY, rs.CREDIT, rs.REALLOCATION, rs.AUDIT, rs.DASHBOARD, rs.ABOUT):
        assert sheet in wb.sheetnames
    shown = [*rs.REGISTER_COLUMNS, *rs.TEMPORARY_COLUMNS, *rs.CUSTOMER_FILE_COLUMNS]  # the workflow fills the temporary ones
    header = [c.value for c in wb[rs.REGISTER][1]][:len(shown)]
    assert header == [c.heading for c in shown]  # "中文\nEnglish", shown in two lines
    assert [" ".join(h.split()) for h in header] == [c.label for c in shown]
    assert [c.value for c in wb[rs.AUDIT][1]] == [c.heading for c in rs.AUDIT_COLUMNS]
    assert wb[rs.AUDIT].max_row == 1
    about = rs.read_about(wb[rs.ABOUT])
    assert set(rs.ABOUT_KEYS) - {"audit_head"} <= set(about) and about["template_version"] == rs.TEMPLATE_VERSION
    pairs = [(k, v) for k, v in wb[rs.POLICY].iter_rows(min_row=2, max_col=2, values_only=True)]
    assert Policy.from_pairs(pairs) == Policy()
    assert {k for k, _ in pairs} == {k for k, _ in Policy().to_pairs()}


def test_policy_sheet_round_trips_a_changed_policy(data):
    policy = Policy(credit_ratio=0.25, vat_table={"2019-04-01": 0.13, "1994-01-01": 0.17})
    wb = openpyxl.load_workbook(io.BytesIO(build_workbook(policy=policy)))
    pairs = [(k, v) for k, v in wb[rs.POLICY].iter_rows(min_row=2, max_col=2, values_only=True)]
    assert Policy.from_pairs(pairs) == policy


def test_demo_register_is_a_valid_workflow_input(demo_path, data):
    from crm_app.register.load import load_register, read_request_form
    from crm_app.register.workflow import verify

    loaded = load_register(demo_path)
    assert loaded.issues == []
    assert len(loaded.register) == len(data.register)
    assert int(loaded.register["credit_line_cents"].sum()) == data.review.budget_cents
    assert int(loaded.register["allocated_line_cents"].sum()) == data.review.budget_cents
    assert loaded.about["budget"] == data.review.budget_cents / 100
    assert loaded.about["register_version"] == 1
    assert len(loaded.audit) == 0
    assert verify(demo_path) == []
    request, fields = read_request_form(openpyxl.load_workbook(demo_path))
    # the form's fields, and beside them the end date of a temporary batch
    assert request.lines.empty and set(fields) == {c.key for c in rs.REALLOCATION_FIELDS} | {"until"}


def test_demo_register_reallocation_applies(demo_path, tmp_path, data):
    """The workflow's reallocate runs on the demo register: one raise, two cuts, budget kept."""
    import shutil

    import pandas as pd

    from crm_app.register.load import Approval, Request
    from crm_app.register.workflow import reallocate, verify
    from crm_core.reallocation import Roles
    from tests.support.signing import sign

    path = tmp_path / "r.xlsm"
    shutil.copy(demo_path, path)
    sign(path)  # reallocations wait for the year's sign-off
    headroom = data.register["credit_line_cents"] - data.register["open_balance_cents"]
    reg = data.register.assign(headroom=headroom).sort_values("headroom", ascending=False)
    down1, down2, up = reg["customer"].iloc[:3]
    lines = pd.DataFrame({"row": [2, 3, 4], "customer": [up, down1, down2],
                          "change_cents": [100_000_00, -60_000_00, -40_000_00], "reason": ["C7-like", "", ""]})
    approval = Approval(Roles("sales director", "CEO", "finance"), None, None, "", "")
    outcome = reallocate(path, Request(lines, [], "test"), approval)
    if not outcome.written:  # a cut below the open balance is refused by the default policy
        pytest.skip(f"demo lines refused: {outcome.report.verdict}")
    assert verify(path) == []


# ----------------------------------------------------------------------------- protection, validation
def test_inputs_unlocked_everything_else_protected(demo_path):
    wb = openpyxl.load_workbook(demo_path)
    for name in (rs.REGISTER, rs.POLICY, rs.CREDIT, rs.REALLOCATION, rs.AUDIT, rs.DASHBOARD, rs.ABOUT,
                 "Collection", "CreditUse", "Overlap", "Effort", "Ageing", "FollowUps"):
        assert wb[name].protection.sheet, name
    reg = wb[rs.REGISTER]
    assert not reg["C2"].protection.locked  # owner
    assert reg["M2"].protection.locked  # credit line: changed only through reallocation
    assert not wb[rs.POLICY]["B2"].protection.locked and wb[rs.POLICY]["A2"].protection.locked
    assert not wb[rs.REALLOCATION]["B4"].protection.locked  # requester
    assert not wb[rs.LEDGER].protection.sheet  # the ledger is pasted in


def test_validations_on_inputs(demo_path):
    wb = openpyxl.load_workbook(demo_path)
    reg = {str(dv.sqref).split(":")[0]: (dv.type, dv.formula1) for dv in wb[rs.REGISTER].data_validations.dataValidation}
    assert reg["D2"] == ("list", "RateTiers") and reg["E2"] == ("list", "ParetoTiers")
    assert "F2" not in reg  # the stage tier is a formula on the need (S) and the expected close (T)
    assert reg["S2"][0] == "list" and "潜在" in reg["S2"][1] and reg["T2"][0] == "date"
    assert reg["O2"][0] == "date" and reg["M2"][0] == "decimal"
    types = {dv.type for dv in wb[rs.REALLOCATION].data_validations.dataValidation}
    assert {"list", "decimal", "date"} <= types
    ledger = {dv.type for dv in wb[rs.LEDGER].data_validations.dataValidation}
    assert {"list", "date", "decimal"} <= ledger
    assert wb[rs.REGISTER].conditional_formatting and wb["FollowUps"].conditional_formatting


def test_named_ranges_point_at_existing_sheets(demo_path):
    wb = openpyxl.load_workbook(demo_path)
    for name, defined in wb.defined_names.items():
        for sheet, _ in defined.destinations if ":INDEX(" not in defined.attr_text else []:
            assert sheet in wb.sheetnames, name
        assert "#REF!" not in defined.attr_text, name


def test_charts_on_the_dashboard_and_the_funnel(demo_path):
    book = openpyxl.load_workbook(demo_path)
    assert len(book[rs.DASHBOARD]._charts) == 3
    assert len(book["Funnel"]._charts) == 1  # the pyramid
    with zipfile.ZipFile(demo_path) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 4


# ----------------------------------------------------------------------------- cached values
def test_demo_caches_values_for_every_formula(demo_path, data):
    """Every formula cell carries its value (Excel's <v>), so the file shows numbers anywhere."""
    import re

    from crm_app.workbook.package import sheet_parts

    with zipfile.ZipFile(demo_path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    empty = re.compile(r'<c r="([A-Z]+[0-9]+)"[^>]*><f[^>]*>[^<]*</f><v\s*/></c>')
    uncached = {sheet: empty.findall(files[part].decode("utf-8")) for sheet, part in sheet_parts(files).items()}
    assert {s: refs for s, refs in uncached.items() if refs} == {}
    values = openpyxl.load_workbook(demo_path, data_only=True)
    assert values[rs.CREDIT]["C10"].value == data.review.budget_cents / 100  # the budget, readable without Python


def test_demo_cli_writes_a_macro_register_and_the_ledger(tmp_path, capsys):
    from crm_app.cli.main import main

    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "demo_register.xlsm").exists() and (tmp_path / "demo_ledger.csv").exists()
    with zipfile.ZipFile(tmp_path / "demo_register.xlsm") as z:
        assert "xl/vbaProject.bin" in z.namelist()


# ----------------------------------------------------------------------------- VBA
def _modules(path: Path) -> dict[str, str]:
    olevba = pytest.importorskip("oletools.olevba")
    parser = olevba.VBA_Parser(str(path))
    try:
        return {name.rsplit(".", 1)[0]: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def test_embedded_vba_is_the_registers_own_project(demo_path):
    """The template and a filled register carry the same VBA project, built from vba/*.bas (the
    quickstart's sample module is gone); test_vba_project checks it module by module."""
    assert _vba_bin(demo_path) == _vba_bin(TEMPLATE) != _vba_bin(quickstart_template())
    modules = _modules(TEMPLATE)
    assert {"ThisWorkbook", "Register", "Reallocation", "Ribbon", "xlwings_udfs"} <= set(modules)
    assert "Module1" not in modules
    wb = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    conf = {r[0]: r[1] for r in wb["xlwings.conf"].iter_rows(max_col=2, values_only=True) if r[0]}
    assert conf["UDF Modules"] == "crm_addin"


def _vba_bin(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/vbaProject.bin")


def test_register_bas_calls_python_for_the_data_macros():
    code = (Path(__file__).resolve().parents[2] / "vba" / "Register.bas").read_text(encoding="utf-8")
    assert code.startswith('Attribute VB_Name = "Register"')
    assert 'RunPython "import crm_addin; crm_addin.refresh_register()"' in code
    assert 'RunPython "import crm_addin; crm_addin.build_review()"' in code
    import crm_addin

    assert callable(crm_addin.refresh_register) and callable(crm_addin.build_review)


def test_template_calls_no_add_in_function_and_names_only_real_ones():
    """No formula of the template calls the add-in (no #NAME? without it); the functions its notes
    name (the ageing's: run it with the add-in) exist in the UDF module."""
    import re

    import crm_addin

    wb = openpyxl.load_workbook(TEMPLATE)
    named, calls = set(), []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                text = c.value.text if isinstance(c.value, ArrayFormula) else c.value
                if isinstance(text, str) and text.startswith("=") and "crm_" in text:
                    calls.append(f"{ws.title}!{c.coordinate}")
                elif isinstance(text, str):
                    named |= set(re.findall(r"\b(crm_[a-z_]+)\(", text))
    assert calls == []
    assert "crm_aging" in named and all(callable(getattr(crm_addin, name, None)) for name in named), named
    assert "needs the crm-addin add-in" in wb["Ageing"]["A2"].value


# ----------------------------------------------------------------------------- Python macros, offline
def test_refresh_register_keeps_lines_and_bumps_the_version(small, tmp_path):

    from crm_app.register.load import load_register
    from crm_app.register.workflow import verify
    from udfs.macros.register import build_review_file, refresh_register_file

    data = small
    path = write_register(data, tmp_path / "reg.xlsm")
    result = refresh_register_file(path)
    assert (result.updated, result.added, result.version) == (len(data.register), 0, 2)
    loaded = load_register(path)
    assert int(loaded.register["credit_line_cents"].sum()) == data.review.budget_cents
    assert verify(path) == []
    review = build_review_file(path)
    assert review.name == f"reg_review_{data.review.budget_year}.xlsm"
    assert load_register(review).issues == []


# ----------------------------------------------------------------------------- LibreOffice
def _udf_cells(ws) -> set[str]:
    from openpyxl.utils import get_column_letter, range_boundaries

    cells = set()
    for row in ws.iter_rows():
        for c in row:
            if isinstance(c.value, ArrayFormula) and "crm_" in c.value.text:
                a, b, cc, d = range_boundaries(c.value.ref)
                cells |= {f"{get_column_letter(x)}{y}" for x in range(a, cc + 1) for y in range(b, d + 1)}
            elif isinstance(c.value, str) and "crm_" in c.value and c.value.startswith("="):
                cells.add(c.coordinate)
    return cells


def _recalculated(path: Path, tmp_path: Path):
    from tests.support.libreoffice import recalculate

    return openpyxl.load_workbook(recalculate(path, tmp_path), data_only=True)


def _errors(formulas, computed) -> list[str]:
    found = []
    for ws in formulas.worksheets:
        skip = _udf_cells(ws)  # LibreOffice cannot run the add-in's functions
        for row in computed[ws.title].iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith(ERRORS) and c.coordinate not in skip:
                    found.append(f"{ws.title}!{c.coordinate}={c.value}")
    return found


@pytest.mark.libreoffice
def test_template_recalculates_without_errors(soffice, tmp_path):
    computed = _recalculated(TEMPLATE, tmp_path)
    assert set(computed.sheetnames) >= {rs.REGISTER, rs.CREDIT, rs.DASHBOARD}
    assert _errors(openpyxl.load_workbook(TEMPLATE), computed) == []
    # what LibreOffice read back: protection, list validations on named ranges, every name
    assert computed[rs.REGISTER].protection.sheet and not computed[rs.LEDGER].protection.sheet
    lists = {dv.formula1 for dv in computed[rs.REGISTER].data_validations.dataValidation if dv.type == "list"}
    assert lists == {"RateTiers", "ParetoTiers", NEED_LIST}
    assert set(computed.defined_names) >= set(openpyxl.load_workbook(TEMPLATE).defined_names)


@pytest.mark.libreoffice
@pytest.mark.slow
def test_demo_recalculates_to_the_cached_values_and_the_cores_cents(soffice, demo_path, data, tmp_path):
    computed = _recalculated(demo_path, tmp_path)
    assert _errors(openpyxl.load_workbook(demo_path), computed) == []
    assert _cache_differences(demo_path, computed) == []
    _native_totals_equal_the_core(computed, data)


@pytest.mark.libreoffice
def test_awkward_ledger_recalculates_to_the_cached_values(soffice, tmp_path):
    """Codes that look like formulas or wildcards, a customer with receipts only, a credit note
    larger than the sales: the sheet's formulas still agree with the core, cell by cell."""
    import pandas as pd

    raw = pd.DataFrame({
        "date": ["2024-03-01", "2024-04-01", "2024-05-02", "2024-06-01", "2024-07-01", "2024-02-01", "2024-02-03",
                 "2024-02-04"],
        "customer": ["=HYPERLINK(1)", "B2", "B2", "Z9", "Z9", "C*", "C?", "C1"],
        "customer_name": ["=evil", "乙", "乙", "", "", "丙", "丁", "戊"],
        "type": ["invoice", "invoice", "receipt", "receipt", "credit_note", "invoice", "invoice", "invoice"],
        "amount": [1000.01, 250.5, 100, 50, 10, 0.01, 3.33, 7.77],
    })
    data = register_data(normalize_ledger(raw, source="awkward"), year=2024)
    path = write_register(data, tmp_path / "awkward.xlsm")
    computed = _recalculated(path, tmp_path)
    assert _errors(openpyxl.load_workbook(path), computed) == []
    assert _cache_differences(path, computed) == []
    cell = openpyxl.load_workbook(path)[rs.REGISTER]["A2"]
    assert (cell.value, cell.data_type) == ("=HYPERLINK(1)", "s")  # text, not a formula


@pytest.mark.libreoffice
def test_a_ledger_typed_in_the_readers_other_words_sums_as_the_review_does(soffice, tmp_path):
    """The Ledger sheet's list offers every word the reader takes (发票, 回款, 红字, 期初余额, 核销,
    ...): rows typed so count in the sheet's own sums, gross column and budget exactly as the review
    counts them, recalculated in LibreOffice."""
    import pandas as pd

    from crm_core.ledger import TYPE_WORDS

    raw = pd.DataFrame({
        "date": ["2024-01-01", "2024-03-01", "2024-04-01", "2024-05-02", "2024-06-01", "2024-07-01"],
        "customer": ["A1", "A1", "A1", "A1", "B2", "B2"],
        "type": ["opening_balance", "invoice", "receipt", "credit_note", "invoice", "write_off"],
        "amount": [500, 1000.01, 800, 10, 250.5, 20],
    })
    data = register_data(normalize_ledger(raw, source="words"), year=2024)
    path = write_register(data, tmp_path / "words.xlsm")
    book = openpyxl.load_workbook(path, keep_vba=True)
    ledger = book[rs.LEDGER]
    chinese = {kind: next(w for w, k in TYPE_WORDS.items() if k == kind and not w.isascii())
               for kind in set(TYPE_WORDS.values())}
    for r in range(2, len(raw) + 2):
        ledger[f"D{r}"].value = chinese[ledger[f"D{r}"].value]
    book.save(path)
    computed = _recalculated(path, tmp_path)
    _native_totals_equal_the_core(computed, data)
    gross = [_cents(computed[rs.LEDGER][f"I{r}"].value) for r in range(2, len(raw) + 2)]
    assert gross == [int(c) for c in data.gross_cents]


def _cache_differences(path: Path, computed) -> list[str]:
    formulas = openpyxl.load_workbook(path)
    cached = openpyxl.load_workbook(path, data_only=True)
    differ = []
    for ws in formulas.worksheets:
        skip = _udf_cells(ws)
        for row in ws.iter_rows():
            for c in row:
                if not (isinstance(c.value, str) and c.value.startswith("=")) or c.coordinate in skip:
                    continue
                mine, theirs = cached[ws.title][c.coordinate].value, computed[ws.title][c.coordinate].value
                if isinstance(mine, float) and isinstance(theirs, (int, float)):
                    same = abs(mine - theirs) <= 1e-9 * max(1.0, abs(theirs))
                else:
                    same = (mine or None) == (theirs or None)
                if not same:
                    differ.append(f"{ws.title}!{c.coordinate}: cached {mine!r}, LibreOffice {theirs!r}")
    return differ


def _cents(value) -> int:
    return round(value * 100)


def _figure_row(dash, english: str) -> int:
    """The Dashboard row whose figure is named `english` (the labels read "中文 English ...")."""
    rows = [c.row for c in dash["A"] if isinstance(c.value, str) and english in c.value]
    assert len(rows) == 1, f"{english!r} labels rows {rows}"
    return rows[0]


def figure(dash, english: str):
    """The value of a Dashboard figure, found by its English name."""
    return dash.cell(row=_figure_row(dash, english), column=2).value


def figure_label(dash, english: str) -> str:
    return dash.cell(row=_figure_row(dash, english), column=1).value


def _native_totals_equal_the_core(computed, data) -> None:
    review, facts = data.review, data.facts
    credit = computed[rs.CREDIT]
    assert _cents(credit["C7"].value) == review.net_sales_cents  # NetSalesTotal from the Ledger sheet
    assert _cents(credit["C10"].value) == review.budget_cents  # Budget
    assert credit["C15"].value == "OK"  # lines equal the budget
    col = computed["Collection"]
    n = len(facts)
    for key, letter in (("net_sales_cents", "B"), ("gross_sales_cents", "C"), ("collections_cents", "D"),
                        ("open_balance_cents", "G")):
        sheet = [_cents(col[f"{letter}{r}"].value) for r in range(2, n + 2)]
        assert sheet == facts[key].tolist(), key
    assert [col[f"F{r}"].value for r in range(2, n + 2)] == review.register["rate_tier"].tolist()
    assert all(col[f"I{r}"].value == "OK" for r in range(2, n + 2))
    dash = computed[rs.DASHBOARD]
    assert _cents(figure(dash, "Net sales")) == review.net_sales_cents
    assert _cents(figure(dash, "Gross sales")) == int(facts["gross_sales_cents"].sum())
    assert _cents(figure(dash, "Credit lines")) == review.budget_cents
    owed = review.register["open_balance_cents"]
    assert (_cents(figure(dash, "Receivables owed")), _cents(figure(dash, "Customers in credit")),
            _cents(figure(dash, "Net open balance"))) == (owed[owed > 0].sum(), owed[owed < 0].sum(), owed.sum())
    assert figure(dash, "Register matches the ledger") == "OK"
    assert figure(dash, "Review sheets cover all customers") == "OK"
    assert figure(dash, "Policy") == review.policy_label  # as the About sheet has it
    assert figure(dash, "Period start").date() == review.period.start.date()
    overlap = computed["Overlap"]
    from crm_app.workbook.data import overlap_table

    table = overlap_table(data)
    assert [overlap[f"B{r}"].value for r in range(6, 11)] == table["customers"].tolist()
    assert [_cents(overlap[f"C{r}"].value) for r in range(6, 11)] == table["receivables_cents"].tolist()


@pytest.mark.libreoffice
@pytest.mark.slow
def test_register_bas_checks_run_in_libreoffice(tmp_path, small):
    import re

    from tests.support.libreoffice import build_macro_workbook, require_libreoffice, run_basic_macro

    require_libreoffice(macros=True)
    data = small
    plain = tmp_path / "plain.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(build_workbook(data, macros=False)))
    form = wb[rs.REALLOCATION]
    header = next(r for r in range(1, 40) if " ".join(str(form[f"B{r}"].value).split()) == "调整额 Change")
    for i, change in enumerate((100_000, -20_000, -30_000, -50_000)):
        form[f"A{header + 1 + i}"] = data.register["customer"].iloc[i]
        form[f"B{header + 1 + i}"] = change
    wb.save(plain)
    code = (Path(__file__).resolve().parents[2] / "vba" / "Register.bas").read_text(encoding="utf-8")
    code = re.sub(r"^Attribute .*\n", "", code, flags=re.M)  # the exporter adds its own
    book = build_macro_workbook(tmp_path / "macro.xlsm", {"Register": code}, src=plain)
    reg = data.register
    over = int(((reg["credit_line_cents"] > 0) & (reg["open_balance_cents"] > reg["credit_line_cents"])).sum())
    assert run_basic_macro(book, "Register", "CountOverLimit") == over
    assert run_basic_macro(book, "Register", "RequestChangeCents") == 0


def test_vba_sources_are_ascii():
    """The VBA editor imports .bas files in the machine's ANSI code page: anything beyond ASCII
    (Chinese comments or strings) turns into garbage on a Western or Chinese Windows alike."""
    for path in sorted((Path(__file__).resolve().parents[2] / "vba").glob("*.bas")):
        path.read_bytes().decode("ascii")


@pytest.mark.libreoffice
@pytest.mark.slow
def test_vba_sources_survive_a_vba_project_round_trip(tmp_path):
    """Every vba/*.bas imported into a VBA project (LibreOffice's exporter, test-only) and read
    back with oletools equals its source: what users import is what runs."""
    import re

    from tests.support.libreoffice import build_macro_workbook, require_libreoffice

    require_libreoffice(macros=True)
    sources = {}
    for path in sorted((Path(__file__).resolve().parents[2] / "vba").glob("*.bas")):
        code = path.read_text(encoding="ascii")
        name = re.search(r'^Attribute VB_Name = "([^"]+)"', code, re.M).group(1)
        sources[name] = re.sub(r"^Attribute .*\r?\n", "", code, flags=re.M)
    assert "Register" in sources
    book = build_macro_workbook(tmp_path / "all.xlsm", sources)
    embedded = _modules(book)

    def lines(code: str) -> list[str]:
        out = [x.rstrip() for x in code.replace("\r\n", "\n").split("\n") if not x.startswith("Attribute ")]
        while out and not out[-1]:
            out.pop()
        return out

    for name, code in sources.items():
        assert lines(embedded[name]) == lines(code), name


def test_refresh_register_adds_new_customers_from_the_ledger(small, tmp_path):
    from crm_app.register.load import load_register
    from crm_app.register.workflow import verify
    from udfs.macros.register import refresh_register_file

    path = write_register(small, tmp_path / "reg.xlsx")
    wb = openpyxl.load_workbook(path)
    ledger = wb[rs.LEDGER]
    row = ledger.max_row + 1
    day = small.review.period.end.to_pydatetime()  # in the review year the Credit sheet names
    for col, value in enumerate([day, "N001", "新客户", "invoice", 1234.56], start=1):
        ledger.cell(row=row, column=col, value=value)
    wb.save(path)
    result = refresh_register_file(path)
    assert result.added == 1
    # the filled register's review sheets were laid out for its customers: the new one is beyond
    assert result.review_rows == len(small.register) and result.customers == len(small.register) + 1
    assert "run BuildReview" in result.text()
    loaded = load_register(path)
    new = loaded.register.set_index("customer").loc["N001"]
    assert new["credit_line_cents"] == 0 and new["net_sales_cents"] == 123456
    assert int(loaded.register["credit_line_cents"].sum()) == small.review.budget_cents
    assert verify(path) == []
    # the new row gets the formulas every row has: stage tier, tenure, flags; trading since
    # from its first ledger date
    book = openpyxl.load_workbook(path)
    reg = book[rs.REGISTER]
    r = next(c.row for c in reg["A"] if c.value == "N001")
    policy_rows = {k: i for i, (k,) in enumerate(book[rs.POLICY].iter_rows(max_col=1, values_only=True), start=1)}
    assert reg[f"{reg_col('stage_tier')}{r}"].value == stage_formula(small.policy, policy_rows, r)
    assert reg[f"{reg_col('tenure')}{r}"].value == tenure_formula(r)
    assert reg[f"{reg_col('flags')}{r}"].value == flags_formula(r, complaints=True)
    assert reg[f"{reg_col('trading_since')}{r}"].value == day
    # the same formulas as the builder's rows (row 2's, moved to row r)
    assert reg[f"{reg_col('stage_tier')}2"].value == stage_formula(small.policy, policy_rows, 2)


@pytest.mark.libreoffice
def test_rank_mode_tiers_recalculate_natively_to_the_cores(soffice, tmp_path):
    """With policy tier_mode = rank the Collection sheet's own formula ranks the rates (ties
    share the best place) and agrees with the core customer by customer, so the register check
    stays OK; a customer without sales stays unrated."""
    import pandas as pd

    paid = {"P1": 100, "P2": 100, "P3": 100, "Q1": 90, "Q2": 45, "R1": 80, "R2": 70, "S1": 60, "S2": 10, "T1": 0}
    rows = []
    for code, pct in paid.items():
        rows.append(("2024-03-01", code, "invoice", 1000.0))
        if pct:
            rows.append(("2024-04-01", code, "receipt", round(1000 * 1.13 * pct / 100, 2)))
    rows.append(("2024-05-01", "U1", "receipt", 10.0))  # receipts only: no rate
    raw = pd.DataFrame(rows, columns=["date", "customer", "type", "amount"])
    data = register_data(normalize_ledger(raw, source="rank"), Policy(tier_mode="rank"), year=2024)
    tiers = data.register.set_index("customer")["rate_tier"]
    assert tiers[["P1", "P2", "P3"]].nunique() == 1 and tiers["U1"] == Policy().unrated_label
    path = write_register(data, tmp_path / "rank.xlsm")
    (tmp_path / "out").mkdir()
    col = _recalculated(path, tmp_path / "out")["Collection"]
    n = len(data.register)
    assert {col[f"A{r}"].value: col[f"F{r}"].value for r in range(2, n + 2)} == tiers.to_dict()
    assert all(col[f"I{r}"].value == "OK" for r in range(2, n + 2))


@pytest.mark.libreoffice
def test_rank_mode_tiers_of_their_own_are_the_summaries_rows(soffice, tmp_path):
    """Rank shares may name tiers the cut-offs do not (S, A, B): the review's counts, the
    Collection sheet's summary and the Credit sheet's split are by those tiers, so no customer's
    sales drop out of a total; recalculated in LibreOffice, each row equals the core's sums."""
    from crm_app.workbook.data import tier_summary
    from crm_app.workbook.register_sheets import CREDIT_TIER_ROW
    from crm_core.values import units

    policy = Policy().with_values(tier_mode="rank", rank_shares={"S": 0.2, "A": 0.3, "B": 0.5},
                                  tier_weights={"S": 2.0, "A": 1.0, "B": 0.5})
    data = register_data(normalize_ledger(demo_ledger(customers=60, yearly_sales=3_000_000), source="rank"), policy)
    expected = ["S", "A", "B", policy.unrated_label]
    assert tier_labels(policy) == expected
    summary = tier_summary(data)
    assert list(data.review.tier_counts().index) == expected
    assert summary["net_sales_cents"].sum() == data.register["net_sales_cents"].sum()
    assert (summary.loc[["S", "A", "B"], "customers"] > 0).all()
    path = write_register(data, tmp_path / "rank.xlsx")
    (tmp_path / "out").mkdir()
    book = _recalculated(path, tmp_path / "out")
    lists, col, credit = book["Lists"], book["Collection"], book[rs.CREDIT]
    assert [lists[f"A{r}"].value for r in range(2, 6)] == expected
    for i, tier in enumerate(expected):
        assert col[f"M{3 + i}"].value == tier
        assert col[f"N{3 + i}"].value == summary.loc[tier, "customers"]
        assert col[f"O{3 + i}"].value == pytest.approx(units(summary.loc[tier, "net_sales_cents"]), abs=0.005)
        r = CREDIT_TIER_ROW + 1 + i
        assert credit[f"B{r}"].value == tier
        assert credit[f"D{r}"].value == pytest.approx(units(summary.loc[tier, "net_sales_cents"]), abs=0.005)
    total = sum(credit[f"G{CREDIT_TIER_ROW + 1 + i}"].value for i in range(len(expected)))
    assert total == pytest.approx(units(data.review.budget_cents), abs=0.05)


def test_a_register_grown_past_its_review_sheets_says_so_in_the_spreadsheet(soffice, small, tmp_path):
    """RefreshRegister can add customers below the rows the review sheets mirror; the Dashboard's
    overall rate then refuses (it would leave them out) and its coverage check names the fix."""
    from udfs.macros.register import refresh_register_file

    path = write_register(small, tmp_path / "reg.xlsx")
    wb = openpyxl.load_workbook(path)
    ledger = wb[rs.LEDGER]
    row, day = ledger.max_row + 1, small.review.period.end.to_pydatetime()
    for col, value in enumerate([day, "N001", "新客户", "invoice", 1234.56], start=1):
        ledger.cell(row=row, column=col, value=value)
    wb.save(path)
    refresh_register_file(path)
    (tmp_path / "out").mkdir()
    dash = _recalculated(path, tmp_path / "out")[rs.DASHBOARD]
    assert "BuildReview" in figure_label(dash, "Review sheets cover all customers")
    assert figure(dash, "Review sheets cover all customers") == "≠"
    assert figure(dash, "Overall collection rate") == "≠"  # not a rate that leaves N001 out


# ----------------------------------------------------------------------------- add-in columns
def _addin_arguments(text: str) -> tuple[str, list[str]]:
    name, _, rest = text.lstrip("=").partition("(")
    return name, [a.strip() for a in rest[:-1].split(",")]


def _cells(values, ref: str) -> tuple:
    """A range of the (cached) workbook as VBA hands it to xlwings: tuples of rows, None for blanks."""
    from openpyxl.utils import range_boundaries

    sheet, _, cells = ref.rpartition("!")
    ws = values[sheet.strip("'")]
    min_col, min_row, max_col, max_row = range_boundaries(cells.replace("$", ""))
    rows = ws.iter_rows(min_row=min_row, max_row=max_row, min_col=min_col, max_col=max_col, values_only=True)
    out = tuple(tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in row) for row in rows)
    return out[0][0] if len(out) == 1 and len(out[0]) == 1 else out


def _argument(arg: str, values, names: dict[str, str], sheet: str, n: int):
    from tests.support.xlwings_offline import MISSING_ARG

    if arg == "":
        return MISSING_ARG
    if arg in ("TRUE", "FALSE"):
        return arg == "TRUE"
    if arg == "tblLedger[#All]":
        ledger = values[rs.LEDGER]
        return _cells(values, f"{rs.LEDGER}!A1:J{ledger.max_row}")
    if arg.startswith("Reg_"):  # the dynamic name: its column, as long as the customer codes
        column = names[arg].split("!")[1].split(":")[0].replace("$", "").rstrip("0123456789")
        return _cells(values, f"{rs.REGISTER}!{column}2:{column}{n + 1}")
    if arg in names:
        return _cells(values, names[arg])
    return _cells(values, arg if "!" in arg else f"{sheet}!{arg}")


def _same(mine, theirs) -> bool:
    import datetime as dt

    if isinstance(theirs, dt.datetime) and isinstance(mine, dt.datetime):
        return mine.date() == theirs.date()
    if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
        return abs(mine - theirs) <= 1e-9 * max(1.0, abs(theirs))
    return (mine if mine not in ("", None) else None) == (theirs if theirs not in ("", None) else None)


def _same_tables(values, sheet: str, top_left: str, table) -> list[str]:
    """Where the cached cells from `top_left` differ from `table` (rows of values)."""
    from openpyxl.utils import column_index_from_string
    from openpyxl.utils.cell import coordinate_from_string, get_column_letter

    letters, row = coordinate_from_string(top_left)
    col, wrong = column_index_from_string(letters), []
    for i, out_row in enumerate(table):
        for j, theirs in enumerate(out_row):
            mine = values[sheet].cell(row=row + i, column=col + j).value
            if not _same(mine, theirs):
                wrong.append(f"{sheet}!{get_column_letter(col + j)}{row + i}: cached {mine!r}, add-in {theirs!r}")
    return wrong


def test_no_cell_calls_the_add_in_and_its_functions_give_the_sheets_values(small, tmp_path, addin):
    """A filled register holds no crm_* formula (no #NAME? where the add-in is missing): the
    ageing, which only the core computes, holds the values its worksheet function returns (named
    in the block's note), and every other crm_* function returns, from the workbook's own
    ranges, exactly the table a native formula shows: so a live Excel with the add-in agrees."""
    from openpyxl.utils import range_boundaries

    from crm_app.workbook.register_sheets import credit_lines_header_row
    from tests.support.xlwings_offline import call_like_excel

    path = write_register(small, tmp_path / "small.xlsx")
    formulas, values = openpyxl.load_workbook(path), openpyxl.load_workbook(path, data_only=True)
    calls = [c.coordinate for ws in formulas.worksheets for row in ws.iter_rows() for c in row
             if isinstance(c.value, ArrayFormula) or (isinstance(c.value, str) and c.value.startswith("=crm_"))]
    assert calls == []
    names = {k: v.attr_text for k, v in formulas.defined_names.items()}
    n, last = len(small.register), len(small.register) + 1
    ageing_call = values["Ageing"]["A2"].value.split("function: ")[1].split("\n")[0]
    ageing_top = names["Addin_Ageing"].split("!")[1].split(":")[0].replace("$", "")
    lines_top = credit_lines_header_row(Ctx(small.policy, small, n)) + 1
    migration_top = 3 + len(tier_labels(small.policy)) + 4  # the native matrix's first tier row
    checks = [  # (sheet the call is made on, call, top-left of the table it must equal, header rows to drop)
        ("Ageing", ageing_call, ageing_top, 1),
        ("Overlap", "=crm_overlap(Reg_customer,Reg_net_sales,Reg_open_balance,TopN)", "A6", 1),
        ("Collection", f"=crm_tier_migration($H$2:$H${last},$F$2:$F${last},RateTiers)", f"M{migration_top}", 1),
        ("Collection", "=crm_pareto_tier(Reg_net_sales,,,PolicyTable)", "J2", 0),
        ("Collection", "=crm_tier(Reg_collection_rate,,,,PolicyTable)", "F2", 0),
        ("Credit", "=crm_allocate_credit(Reg_customer,Reg_rate_tier,Reg_net_sales,Budget,,,PolicyTable)",
         f"E{lines_top}", 0),
        ("Credit", "=crm_credit_budget(NetSalesTotal,BudgetRatio,BudgetVat)", "C10", 0),
        ("FollowUps", f"=crm_follow_up_due(D2:D{last},E2:E{last},AsOf,PolicyTable)", "F2", 0),
    ]
    wrong = []
    for sheet, call, top_left, header in checks:
        name, args = _addin_arguments(call)
        got = call_like_excel(getattr(addin, name), *[_argument(a, values, names, sheet, n) for a in args])
        got = got if isinstance(got, list) else [[got]]
        assert len(got) > header, (call, got)
        wrong += [f"{name}: {w}" for w in _same_tables(values, sheet, top_left, got[header:])]
    assert wrong[:40] == [], "\n".join(wrong[:40])
    min_col, min_row, max_col, max_row = range_boundaries(names["Addin_Ageing"].split("!")[1].replace("$", ""))
    assert max_row - min_row + 1 == len(small.aging)  # the named block is the ageing's rows


# ----------------------------------------------------------------------------- legible, print-ready
def test_headers_are_two_lines_and_old_one_line_registers_still_read(demo_path, tmp_path):
    """Headers read "中文\\nEnglish" in a row tall enough for both lines; a register written before
    (one-line "中文 English" headers) still loads, verifies and takes a request."""
    import shutil

    from crm_app.register.load import load_register, read_request_form
    from crm_app.register.workflow import verify

    wb = openpyxl.load_workbook(demo_path)
    reg = wb[rs.REGISTER]
    assert reg["D1"].value == "回款等级\nTier by rate" and reg.row_dimensions[1].height >= 30
    assert wb[rs.AUDIT]["A1"].value == "时间\nTimestamp"
    old = tmp_path / "old.xlsm"
    shutil.copy(demo_path, old)
    book = openpyxl.load_workbook(old, keep_vba=True)
    for ws in (book[rs.REGISTER], book[rs.AUDIT], book[rs.REALLOCATION]):
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and "\n" in c.value and not c.value.startswith("="):
                    c.value = " ".join(c.value.split())
    book.save(old)
    assert openpyxl.load_workbook(old)[rs.REGISTER]["D1"].value == "回款等级 Tier by rate"
    loaded = load_register(old)
    assert loaded.issues == [] and len(loaded.register) == len(load_register(demo_path).register)
    assert verify(old) == []
    request, fields = read_request_form(openpyxl.load_workbook(old))
    # the form's fields, and beside them the end date of a temporary batch
    assert request.lines.empty and set(fields) == {c.key for c in rs.REALLOCATION_FIELDS} | {"until"}


def test_every_figure_has_a_number_format(demo_path):
    """No number shows in General: money, rates, counts and dates each have their format."""
    wb = openpyxl.load_workbook(demo_path, data_only=True)
    general = [f"{ws.title}!{c.coordinate}" for ws in wb.worksheets if ws.title != "xlwings.conf"
               for row in ws.iter_rows() for c in row
               if isinstance(c.value, (int, float)) and not isinstance(c.value, bool) and c.number_format == "General"]
    assert general == []


def test_policy_sheet_shows_values_by_kind_and_says_what_each_key_means():
    from crm_core.policy import KEY_NOTES

    ws = openpyxl.load_workbook(TEMPLATE)[rs.POLICY]
    rows = {ws[f"A{r}"].value: r for r in range(2, ws.max_row + 1)}
    fmt = {key: ws[f"B{r}"].number_format for key, r in rows.items()}
    assert fmt["credit_ratio"] == fmt["vat.2019-04-01"] == "0.00%"
    assert fmt["overlap_top_n"] == fmt["payment_terms_days"] == fmt["follow_up_days.A"] == "#,##0"
    assert fmt["credit_rounding"] == "#,##0.00" and fmt["tier_weight.A"] == "0.00"
    meaning = ws[f"C{rows['credit_ratio']}"].value
    assert meaning.startswith(KEY_NOTES["credit_ratio"]) and meaning.endswith("默认 default: 20%")
    assert ws[f"C{rows['rate_cutoff.A']}"].value.startswith(KEY_NOTES["rate_cutoff"])
    assert ws[f"C{rows['overlap_top_n']}"].value.endswith("默认 default: 100")
    assert " ".join(ws["C1"].value.split()) == "说明 Meaning (默认 default)"


def test_ledger_type_list_offers_every_word_the_reader_accepts_on_whole_columns():
    from crm_app.workbook import xml_sheet
    from crm_app.workbook.register_sheets import ledger_type_words
    from crm_core.ledger import TYPE_WORDS, TYPES

    wb = openpyxl.load_workbook(TEMPLATE)
    ref = wb.defined_names["LedgerTypes"].attr_text
    sheet, cells = ref.split("!")
    offered = [c.value for row in wb[sheet][cells.replace("$", "")] for c in row]
    assert offered == ledger_type_words() and offered[:len(TYPES)] == list(TYPES)
    assert set(offered) == set(TYPE_WORDS) | set(TYPES) and {"发票", "回款", "红字"} <= set(offered)
    validations = {str(dv.sqref): dv for dv in wb[rs.LEDGER].data_validations.dataValidation}
    last = xml_sheet.SHEET_ROWS
    assert validations[f"D2:D{last}"].formula1 == "LedgerTypes"
    assert {f"A2:A{last}", f"G2:G{last}", f"E2:E{last}"} <= set(validations)  # dates, amounts: as it grows
    raw = [{"date": "2024-01-01", "customer": "K", "type": word, "amount": 1} for word in offered]
    import pandas as pd

    assert normalize_ledger(pd.DataFrame(raw)).errors == []  # every word offered is read


def test_every_sheet_prints_to_the_page_width_with_its_name_period_and_page(demo_path):
    wb = openpyxl.load_workbook(demo_path)
    for ws in wb.worksheets:
        if ws.title == "xlwings.conf":
            continue
        setup = ws.page_setup
        pages_wide = 2 if ws.title == rs.REGISTER else 1  # the register's many columns: two pages
        assert (setup.fitToWidth, ws.sheet_properties.pageSetUpPr.fitToPage) == (pages_wide, True), ws.title
        assert ws.oddFooter.left.text == "&A" and ws.oddFooter.right.text == "&P / &N", ws.title
        assert "Period 2025-01-01..2025-12-31" in ws.oddFooter.center.text, ws.title
    assert wb[rs.REGISTER].print_title_cols == "$A:$B"  # code and name on each page
    dash = wb[rs.DASHBOARD]
    assert (dash.page_setup.fitToHeight, dash.page_setup.orientation) == (1, "landscape")
    for name in (rs.REGISTER, rs.AUDIT, "Collection", "FollowUps", rs.POLICY, rs.ABOUT):
        assert wb[name].print_title_rows == "$1:$1", name
    ledger = wb[rs.LEDGER]  # thousands of rows: only the first 40 print, and the foot says so
    assert ledger.print_area.endswith("$A$1:$J$41") and "first 40 of" in ledger.oddFooter.center.text


def _chart_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [z.read(n).decode("utf-8") for n in sorted(z.namelist()) if n.startswith("xl/charts/chart")]


def test_charts_start_at_zero_in_readable_units_and_both_languages(demo_path):
    import re

    charts = _chart_xml(demo_path)
    pareto = next(c for c in charts if "scatterChart" in c)
    assert '<scatterStyle val="lineMarker"/>' in pareto
    for axis in re.findall(r"<valAx>.*?</valAx>", pareto):  # shares: 0% to 100%, none to 120%
        assert '<max val="1"/>' in axis and '<min val="0"/>' in axis and 'formatCode="0%"' in axis
    counts = next(c for c in charts if "Customers by tier" in c)
    unit = float(re.search(r'<majorUnit val="([0-9.]+)"/>', counts).group(1))
    assert unit == int(unit) and 'formatCode="#,##0"' in counts and '<min val="0"/>' in counts
    use = next(c for c in charts if "Credit lines and open balances" in c)
    assert "万元 (10,000s)" in use and '<min val="0"/>' in use
    for chart in charts:  # bilingual titles, level labels
        assert re.search(r"<a:t>[\u4e00-\u9fff]+.* [A-Za-z]", chart)
        assert 'rot="-' not in chart
    # the template has no data: fixed axes (0 to 10 by 2), never "0, 1, 1"
    empty = next(c for c in _chart_xml(TEMPLATE) if "Customers by tier" in c)
    assert '<max val="10"/>' in empty and '<majorUnit val="2"/>' in empty


def test_the_ageing_holds_the_cores_values_under_one_note(demo_path, data):
    formulas, values = openpyxl.load_workbook(demo_path), openpyxl.load_workbook(demo_path, data_only=True)
    ageing = values["Ageing"]
    note = ageing["A2"].value
    assert "computed by crm-addin at 2026-01-01T00:00:00+00:00" in note and "Build review" in note
    assert not [c for row in formulas["Ageing"].iter_rows() for c in row
                if isinstance(c.value, str) and c.value.startswith("=")]
    first = ageing["A4"]
    assert first.value == data.aging["customer"].iloc[0] and first.fill.fgColor.rgb.endswith("E2EFDA")
    assert ageing["A4"].value is not None and ageing[f"A{3 + len(data.aging)}"].value is not None


def test_two_line_headers_and_widths_count_wide_characters():
    from crm_app.workbook.layout import text_width, two_lines

    assert two_lines("净销售额 Net sales (ledger)") == "净销售额\nNet sales (ledger)"
    assert two_lines("余额 (万元) Balance (10k)") == "余额 (万元)\nBalance (10k)"
    assert two_lines("already\ntwo") == "already\ntwo" and two_lines("Code") == "Code"
    assert text_width("回款率 Rate") == 11


def test_the_invoice_a_receipt_settles_is_kept_on_the_ledger_sheet(tmp_path):
    """核销发票号 (applies_to) is a Ledger sheet column: the ageing cached from the file and the one
    a later Build review computes from the sheet settle the receipt against the same invoice."""
    import pandas as pd

    from crm_app.workbook.stored_values import review_inputs
    from crm_core.analysis import aging

    raw = pd.DataFrame({"date": ["2025-01-05", "2025-11-20", "2025-12-01"], "customer": ["K1"] * 3,
                        "type": ["invoice", "invoice", "receipt"], "amount": [1000, 2000, 2260],
                        "invoice_no": ["I1", "I2", "R1"], "applies_to": [None, None, "I2"]})
    data = register_data(normalize_ledger(raw), Policy(), 2025)
    path = write_register(data, tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(path)
    assert book[rs.LEDGER]["J1"].value == "核销发票号 (applies_to)" and book[rs.LEDGER]["J4"].value == "I2"
    ledger, policy, _ = review_inputs(book, path)
    again = aging(ledger.rows, data.as_of, policy)
    assert again.equals(data.aging) and int(again["total"].iloc[0]) == 113_000
    # I1 is what stays open (90+ days late); oldest first would have left I2 (1-30 days late)
    assert int(again["90+"].iloc[0]) == 113_000 and int(again["1-30"].iloc[0]) == 0
