"""Every workbook the add-in writes is valid Open XML that Excel opens without repairing it.

Two validators (tests.support.ooxml_validators): openxml-audit, whose verdict predicts what Excel
does on open, and Microsoft's Open XML SDK validator.  Five files: the shipped template, the demo
register, that register after `crm-addin reallocate`, a BuildReview workbook and the register
after RefreshRegister.  Each file is built once per module and each validator runs once on it.
"""
from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font

from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR
from tests.support import ooxml_validators as ov
from tests.support.registers import ROLES, run_cli
from tests.support.signing import SIGN_ARGS

pytestmark = pytest.mark.slow


def cli(*args: object) -> str:
    """Run `crm-addin ARGS` from this checkout; fail naming the command and what it printed."""
    done = run_cli(*map(str, args), timeout=300)
    command = " ".join(map(str, args))
    assert done.returncode == 0, f"crm-addin {command} -> exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def demo_register(folder: Path) -> Path:
    """`crm-addin demo --out folder`: the filled register."""
    cli("demo", "--out", folder, "--quiet")
    return folder / "demo_register.xlsm"


def copy_of(register: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(register, folder / "register.xlsm"))


def reallocated(register: Path, folder: Path) -> Path:
    """README's walkthrough: suggest cuts to raise C0007 by 100,000, then apply them."""
    path, request = copy_of(register, folder), folder / "request.csv"
    cli("sign-off", path, *SIGN_ARGS)  # reallocations start once the year's standard is signed
    cli("suggest", path, "--for", "C0007", "--amount", "100000", "--out", request)
    cli("reallocate", path, "--request", request, *ROLES)
    return path


def review_workbook(register: Path, folder: Path) -> Path:
    """The BuildReview macro's workbook, written beside a copy of the register."""
    from udfs.macros.register import build_review_file

    return build_review_file(copy_of(register, folder))


def refreshed(register: Path, folder: Path) -> Path:
    """The register after the RefreshRegister macro (re-read from its Ledger sheet)."""
    from udfs.macros.register import refresh_register_file

    path = copy_of(register, folder)
    refresh_register_file(path)
    return path


BUILDS: dict[str, Callable[[Path, Path], Path]] = {
    "demo register": lambda demo, _: demo,
    "after reallocate": reallocated,
    "BuildReview workbook": review_workbook,
    "after RefreshRegister": refreshed,
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_register(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module", params=["template", *BUILDS])
def workbook(request, tmp_path_factory) -> Path:
    if request.param == "template":
        return WORKBOOKS_DIR / TEMPLATE_NAME
    demo = request.getfixturevalue("demo")
    return BUILDS[request.param](demo, tmp_path_factory.mktemp(request.param.split()[-1]))


def test_open_xml_sdk_finds_no_errors(workbook):
    ov.require_ooxml_validate()
    report = ov.sdk_validate(workbook)
    assert not report.errors, report.summary()


def test_openxml_audit_predicts_excel_opens_it_clean(workbook):
    ov.require_openxml_audit()
    report = ov.audit(workbook)
    assert report.verdict == "opens-clean" and not report.errors, report.summary()


def fonts_out_of_order(path: Path) -> Path:
    """A workbook whose second font has <b> after <sz>: a fault Excel repairs on open."""
    book = openpyxl.Workbook()
    book.active["A1"].font = Font(bold=True, size=12)
    book.save(path.with_suffix(".tmp"))
    with zipfile.ZipFile(path.with_suffix(".tmp")) as src, zipfile.ZipFile(path, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/styles.xml":
                data = data.replace(b'<font><b val="1"/><sz val="12"/></font>', b'<font><sz val="12"/><b val="1"/></font>')
            out.writestr(item, data)
    return path


def test_both_validators_catch_a_known_fault(tmp_path):
    """Guards the checks above against passing because a validator looked at nothing."""
    ov.require_openxml_audit()
    ov.require_ooxml_validate()
    bad = fonts_out_of_order(tmp_path / "bad.xlsx")
    sdk, audit = ov.sdk_validate(bad), ov.audit(bad)
    for report in (sdk, audit):
        assert any(f.part == "/xl/styles.xml" and f.where.endswith("font[2]") for f in report.errors), report.summary()
    assert audit.verdict != "opens-clean"
