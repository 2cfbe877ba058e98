"""The Excel macros with xlwings replaced by a fake caller that points at a real register file.

The fake only records what Excel would be asked to do (save, close, reopen, alert, cell writes);
the workflow behind the macros runs for real on the file.
"""
from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest

import crm_addin
from crm_app.register.load import load_register
from crm_app.register.schema import REALLOCATION
from crm_app.register.workflow import verify
from tests.support.registers import REFERENCE_BATCH, ROOT, build_register
from tests.support.signing import sign
from udfs.macros import reallocation as macros

ROLE_CELLS = {"B3": "Sales Director Wang", "B4": "GM Li", "B5": "Finance Zhao"}


class FakeRange:
    def __init__(self, sheet, address):
        self.sheet, self.address = sheet, address

    @property
    def value(self):
        return self.sheet.cells.get(self.address)

    @value.setter
    def value(self, value):
        self.sheet.cells[self.address] = value


class FakeSheet:
    def __init__(self):
        self.cells: dict[tuple[int, int], object] = {}

    def range(self, address):
        return FakeRange(self, address)


class FakeApp:
    def __init__(self, log):
        self.log = log
        self.books = self

    def alert(self, text, title=""):
        self.log.append(("alert", text))

    def open(self, fullname):
        self.log.append(("open", fullname))
        return FakeBook(fullname, self.log, self)


class FakeBook:
    def __init__(self, fullname, log, app=None):
        self.fullname, self.log = str(fullname), log
        self.app = app or FakeApp(log)
        self.sheets = {REALLOCATION: FakeSheet()}

    def save(self):
        self.log.append(("save", self.fullname))

    def close(self):
        self.log.append(("close", self.fullname))


@pytest.fixture
def excel(tmp_path, monkeypatch):
    """A signed register whose form holds the reference batch, and the fake calling workbook."""
    path = build_register(tmp_path / "register.xlsx", form=REFERENCE_BATCH)
    fill_form(path, ROLE_CELLS)
    sign(path)
    log: list[tuple[str, object]] = []
    book = FakeBook(path, log)
    monkeypatch.setattr(macros, "_caller", lambda: book)
    return path, book, log


def fill_form(path: Path, cells: dict[str, object]) -> None:
    book = openpyxl.load_workbook(path)
    for address, value in cells.items():
        book[REALLOCATION][address] = value
    book.save(path)


def alerts(log) -> list[str]:
    return [text for kind, text in log if kind == "alert"]


def test_apply_macro_applies_the_form_and_reopens_the_book(excel):
    path, _, log = excel
    assert macros.apply_reallocation() is True
    assert [kind for kind, _ in log] == ["save", "close", "open", "alert"]
    assert "applied batch" in alerts(log)[0]
    loaded = load_register(path)
    assert loaded.stamp.version == 3 and loaded.audit["customer"].tolist() == ["", "C7", "B117", "C3", "D24"]
    assert set(loaded.audit["requester"].iloc[1:]) == {"Sales Director Wang"}
    assert verify(path) == []


def test_apply_macro_refuses_without_closing_or_writing(excel):
    path, _, log = excel
    fill_form(path, {"B4": ""})  # approver missing
    before = path.read_bytes()
    assert macros.apply_reallocation() is False
    assert [kind for kind, _ in log] == ["save", "alert"]
    assert "approver is not filled in" in alerts(log)[0] and "nothing applied" in alerts(log)[0]
    assert path.read_bytes() == before


def test_check_macro_reports_an_unbalanced_request(excel):
    path, _, log = excel
    fill_form(path, {"B14": -40000})  # D24's change, row 14 of the form
    before = path.read_bytes()
    report = macros.check_reallocation_request()
    assert report is not None and not report.ok
    assert "imbalance +10,000.00" in alerts(log)[0]
    assert path.read_bytes() == before


def test_suggest_macro_fills_cuts_below_the_raise(excel):
    path, book, log = excel
    book_ = openpyxl.load_workbook(path)
    ws = book_[REALLOCATION]
    for row in range(12, 15):  # keep only C7 +100000
        ws.cell(row=row, column=1, value=None)
        ws.cell(row=row, column=2, value=None)
        ws.cell(row=row, column=3, value=None)
    book_.save(path)
    assert macros.suggest_reallocation_cuts() > 0
    cells = book.sheets[REALLOCATION].cells
    customers = [cells.get((r, 1)) for r in range(11, 20) if cells.get((r, 1))]
    changes = [cells.get((r, 2)) for r in range(11, 20) if cells.get((r, 1))]
    assert customers[0] == "C7" and "C7" not in customers[1:]
    assert round(sum(changes), 2) == 0
    assert "proposed" in alerts(log)[0]


def test_verify_macro_reports_problems(excel):
    path, _, log = excel
    assert macros.verify_register() is True
    book = openpyxl.load_workbook(path)
    book["Register"].cell(row=4, column=13, value=1)
    book.save(path)
    assert macros.verify_register() is False
    assert "Register, row 4" in alerts(log)[-1]


def test_vba_module_calls_only_exported_macros():
    text = (ROOT / "vba" / "Reallocation.bas").read_text(encoding="ascii")
    called = re.findall(r'RunPython "import crm_addin; crm_addin\.(\w+)\(\)"', text)
    assert set(called) == {"apply_reallocation", "check_reallocation_request", "sign_off_register",
                           "suggest_reallocation_cuts", "verify_register"}
    for name in called:
        assert getattr(crm_addin, name) is getattr(macros, name)
    for sub in re.findall(r"(?ms)^Sub \w+\(\)\n(.*?)^End Sub", text.replace("\r\n", "\n")):
        assert len(sub.strip().splitlines()) <= 3  # a few lines each: no rules in VBA


def test_apply_macro_reports_a_register_changed_meanwhile_and_reopens(excel, monkeypatch):
    path, _, log = excel
    real = macros.reallocate
    reached: list[str] = []

    def someone_else_writes_meanwhile(p, request, approval, **options):
        from crm_app.register import workflow

        def write_between_load_and_save(point):
            if point == "loaded":  # another writer saves the register right after our load
                book = openpyxl.load_workbook(p)
                book["About"]["B3"] = 7
                book.save(p)
            reached.append(point)

        monkeypatch.setattr(workflow, "checkpoints", [*workflow.checkpoints, write_between_load_and_save])
        return real(p, request, approval, **options)

    monkeypatch.setattr(macros, "reallocate", someone_else_writes_meanwhile)
    assert macros.apply_reallocation() is False
    assert [kind for kind, _ in log] == ["save", "close", "open", "alert"]
    assert "register changed since you loaded it" in alerts(log)[0]
    assert reached == ["loaded", "edited", "saved"]  # the other wrote after our load; ours stopped before renaming
    loaded = load_register(path)
    assert loaded.stamp.version == 7 and len(loaded.audit) == 1  # theirs kept (the sign-off only), ours not written


def test_apply_macro_reopens_the_book_even_when_the_workflow_fails(excel, monkeypatch):
    path, _, log = excel

    def broken(*args, **options):
        raise RuntimeError("disk full")

    monkeypatch.setattr(macros, "reallocate", broken)
    with pytest.raises(RuntimeError):
        macros.apply_reallocation()
    assert [kind for kind, _ in log] == ["save", "close", "open"]


def test_apply_macro_reports_a_locked_register_and_reopens(excel, monkeypatch):
    """A register another user holds open on a shared drive: a message naming the file, no traceback."""
    path, _, log = excel

    def locked(*args, **options):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(macros, "reallocate", locked)
    assert macros.apply_reallocation() is False
    assert [kind for kind, _ in log] == ["save", "close", "open", "alert"]
    assert "nothing applied" in alerts(log)[0] and str(path) in alerts(log)[0]


def test_refresh_macro_gives_the_workbook_back_whatever_happens(tmp_path, monkeypatch):
    from udfs.macros import register as macros_review

    log: list[tuple[str, object]] = []
    path = tmp_path / "register.xlsm"
    monkeypatch.setattr(macros_review, "_caller", lambda: FakeBook(path, log))

    def read_only(target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(macros_review, "refresh_register_file", read_only)
    assert macros_review.refresh_register() is False
    assert [kind for kind, _ in log] == ["save", "close", "open", "alert"]
    assert "nothing changed" in alerts(log)[0] and "Permission denied" in alerts(log)[0]

    def broken(target):
        raise RuntimeError("bug")

    log.clear()
    monkeypatch.setattr(macros_review, "refresh_register_file", broken)
    with pytest.raises(RuntimeError):
        macros_review.refresh_register()
    assert [kind for kind, _ in log] == ["save", "close", "open"]  # reopened before the error surfaces
