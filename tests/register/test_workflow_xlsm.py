"""A macro-enabled register (.xlsm): applying a batch keeps its VBA project byte for byte."""
from __future__ import annotations

import zipfile

import pytest

from crm_app.register.load import load_register
from crm_app.register.workflow import verify
from tests.support.registers import ROLES, ROOT, build_register, run_cli, write_request
from tests.support.signing import sign

pytestmark = pytest.mark.libreoffice


def vba_project(path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/vbaProject.bin")


def test_apply_keeps_the_vba_project(tmp_path, soffice):
    from tests.support.libreoffice import build_macro_workbook

    source = build_register(tmp_path / "plain.xlsx")
    code = (ROOT / "vba" / "Reallocation.bas").read_text(encoding="ascii").split("Option Explicit", 1)[1]
    register = sign(build_macro_workbook(tmp_path / "register.xlsm", {"Reallocation": code}, src=source))
    before = vba_project(register)
    result = run_cli("reallocate", register, "--request", write_request(tmp_path / "r.csv"), *ROLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert vba_project(register) == before
    assert load_register(register).stamp.version == 3 and verify(register) == []
