"""`crm-addin doctor` on made-up machines: each frequent breakage is named with its fix, and what
a machine cannot tell is said, never passed."""
from __future__ import annotations

import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from crm_app.cli import doctor
from crm_app.cli.doctor import Machine, Status
from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR
from crm_app.workbook.vba_project import Module, vba_project_bin


def fake_addin(path: Path, version: str) -> Path:
    """An .xlam whose VBA declares XLWINGS_VERSION as xlwings' Main module does."""
    source = f'Attribute VB_Name = "Main"\r\nPublic Const XLWINGS_VERSION As String = "{version}"\r\n'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/vbaProject.bin", vba_project_bin([Module("Main", source)], references=()))
    return path


@pytest.fixture
def windows(tmp_path) -> Machine:
    """A Windows machine on which everything is in order (this Python stands in for its interpreter)."""
    xlstart = tmp_path / "XLSTART"
    xlstart.mkdir()
    fake_addin(xlstart / "xlwings.xlam", "0.37.8")
    config = tmp_path / "xlwings.conf"
    config.write_text(f'"INTERPRETER_WIN","{sys.executable}"\n"UDF MODULES","crm_addin"\n', encoding="utf-8")
    return Machine(windows=True, python=sys.executable, python_bits=64, xlwings_version="0.37.8",
                   user_config=config, xlstart=xlstart, office_bits=64, store_office=False)


def by_topic(machine: Machine) -> dict[str, doctor.Check]:
    return {c.topic.split(" / ")[0]: c for c in doctor.run_checks(machine)}


@pytest.fixture(autouse=True)
def pywin32_answers(monkeypatch):
    """The COM-server probe imports win32com, which only Windows has: answer for the made-up machine."""
    real = doctor._ask
    monkeypatch.setattr(doctor, "_ask", lambda python, code: "ok" if "win32com" in code else real(python, code))


def test_a_machine_in_order_has_no_problem(windows):
    checks = by_topic(windows)
    assert {t: c.status for t, c in checks.items() if c.status is not Status.OK} == {}
    assert "0.37.8" in checks["xlwings add-in"].detail


def test_addin_and_package_versions_out_of_step(windows):
    fake_addin(windows.xlstart / "xlwings.xlam", "0.30.0")
    check = by_topic(windows)["xlwings add-in"]
    assert check.status is Status.PROBLEM and "0.30.0" in check.detail and "0.37.8" in check.detail
    assert check.fix == "xlwings addin install"


def test_addin_not_installed(windows):
    (windows.xlstart / "xlwings.xlam").unlink()
    check = by_topic(windows)["xlwings add-in"]
    assert check.status is Status.PROBLEM and check.fix == "xlwings addin install"


def test_interpreter_that_does_not_exist_and_udf_module_missing(windows, tmp_path):
    windows.user_config.write_text('"INTERPRETER_WIN","C:\\\\Python39\\\\pythonw.exe"\n', encoding="utf-8")
    checks = by_topic(windows)
    assert checks["interpreter"].status is Status.PROBLEM and "pythonw.exe" in checks["interpreter"].detail
    assert checks["UDF modules"].status is Status.PROBLEM and "crm_addin" in checks["UDF modules"].fix


def test_the_registers_conf_sheet_sets_the_udf_module(windows):
    windows.user_config.unlink()
    machine = replace(windows, workbook_conf=doctor.workbook_settings(WORKBOOKS_DIR / TEMPLATE_NAME))
    assert by_topic(machine)["UDF modules"].status is Status.OK


def test_a_config_file_beside_the_workbook_overrides_the_users(windows, tmp_path):
    beside = tmp_path / "beside.conf"
    beside.write_text('"INTERPRETER_WIN","C:\\\\Old\\\\python.exe"\n', encoding="utf-8")
    check = by_topic(replace(windows, folder_config=beside))["interpreter"]
    assert check.status is Status.PROBLEM and "Old" in check.detail


def test_an_interpreter_without_crm_addin(windows, tmp_path):
    bare = tmp_path / "python"
    bare.write_text("#!/bin/sh\nexit 1\n")
    bare.chmod(0o755)
    windows.user_config.write_text(f'"INTERPRETER_WIN","{bare}"\n"UDF MODULES","crm_addin"\n', encoding="utf-8")
    check = by_topic(windows)["crm_addin importable"]
    assert check.status is Status.PROBLEM and check.fix == f'"{bare}" -m pip install crm-addin'


def test_bitness_mismatch_and_store_office(windows):
    checks = by_topic(replace(windows, office_bits=32, store_office=True))
    assert checks["32/64-bit"].status is Status.PROBLEM and "32-bit" in checks["32/64-bit"].fix
    assert checks["Office edition"].status is Status.PROBLEM


def test_com_server_problem_names_pywin32(windows, monkeypatch):
    monkeypatch.setattr(doctor, "_ask", lambda python, code: None if "win32com" in code else "0.37.8")
    check = by_topic(windows)["Python COM server"]
    assert check.status is Status.PROBLEM and "Could not activate Python COM server" in check.detail
    assert "pywin32" in check.fix


def test_on_linux_it_says_what_it_cannot_check(windows):
    linux = replace(windows, windows=False, xlstart=None, office_bits=None)
    checks = by_topic(linux)
    unchecked = {t for t, c in checks.items() if c.status is Status.UNCHECKED}
    assert unchecked == {"xlwings add-in", "Python COM server", "32/64-bit", "Office edition"}
    assert all(c.fix == "" for t, c in checks.items() if t in unchecked)


def test_command_prints_bilingual_lines_and_exits_1_on_a_problem(tmp_path, capsys, monkeypatch):
    from crm_app.cli.main import main

    monkeypatch.setattr(doctor.Path, "home", staticmethod(lambda: tmp_path))  # no user config file
    assert main(["doctor", "--addin", str(fake_addin(tmp_path / "old.xlam", "0.1.0"))]) == 1
    out = capsys.readouterr().out
    assert "[problem / 问题] xlwings add-in / xlwings 加载项: version 0.1.0" in out
    assert "fix / 修复: xlwings addin install" in out
    assert main(["doctor", "--workbook", str(WORKBOOKS_DIR / TEMPLATE_NAME)]) == 0 or sys.platform.startswith("win")


def test_a_workbook_that_is_not_one_is_one_message(tmp_path, capsys):
    from crm_app.cli.main import main

    broken = tmp_path / "register.xlsm"
    broken.write_bytes(b"not a zip")
    assert main(["doctor", "--workbook", str(broken)]) == 2
    said = capsys.readouterr()
    assert "Traceback" not in said.err and [line for line in said.err.splitlines() if "register.xlsm" in line]
