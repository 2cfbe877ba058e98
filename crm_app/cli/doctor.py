"""`crm-addin doctor`: checks what most often breaks an xlwings installation, each line ok or a
problem with the one command that fixes it.

What xlwings users report most: "Could not activate Python COM server" (pywin32 missing from the
interpreter Excel starts), 32/64-bit Office against the other Python, the add-in and the Python
package at different versions, Office from the Microsoft Store (xlwings' COM calls do not reach
it), and xlwings.conf naming another interpreter or no UDF module. The checks read files and,
on Windows, the registry; they never start Excel. Where this machine cannot tell (no Excel, not
Windows) the line says so instead of passing.
"""
from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from enum import Enum
from importlib import metadata
from pathlib import Path

UDF_MODULE = "crm_addin"
ADDIN_NAME = "xlwings.xlam"
CONF_SHEET = "xlwings.conf"


class Status(Enum):
    OK = "ok / 正常"
    PROBLEM = "problem / 问题"
    UNCHECKED = "not checked / 未检查"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it stands, and the command that fixes it."""

    topic: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{self.status.value}] {self.topic}: {self.detail}"
        return text + (f"\n    fix / 修复: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Machine:
    """What the checks look at, gathered once (tests pass another machine's)."""

    windows: bool
    python: str  # the interpreter running this command
    python_bits: int
    xlwings_version: str | None
    user_config: Path  # ~/.xlwings/xlwings.conf
    xlstart: Path | None  # Excel's per-user start-up folder, where `xlwings addin install` copies the add-in
    addin: Path | None = None  # an add-in file to check instead (e.g. the one you distribute)
    office_bits: int | None = None  # from the registry, None when unknown
    store_office: bool = False
    workbook_conf: dict[str, str] = field(default_factory=dict)  # a workbook's xlwings.conf sheet
    folder_config: Path | None = None  # the xlwings.conf file beside that workbook


def this_machine(workbook: Path | None = None, addin: Path | None = None) -> Machine:
    windows = sys.platform.startswith("win")
    appdata = os.environ.get("APPDATA")
    return Machine(
        windows=windows, python=sys.executable, python_bits=struct.calcsize("P") * 8,
        xlwings_version=_version("xlwings"),
        user_config=Path.home() / ".xlwings" / "xlwings.conf",
        xlstart=Path(appdata) / "Microsoft" / "Excel" / "XLSTART" if windows and appdata else None, addin=addin,
        office_bits=_office_bits() if windows else None,
        store_office=_store_office() if windows else False,
        workbook_conf=workbook_settings(workbook) if workbook else {},
        folder_config=workbook.parent / "xlwings.conf" if workbook else None)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------- settings
def read_conf(path: Path) -> dict[str, str]:
    """xlwings' user config file: lines `"KEY","VALUE"`, keys compared in upper case."""
    if not path.is_file():
        return {}
    pairs = re.findall(r'^"([^"]+)","(.*)"\s*$', path.read_text(encoding="utf-8", errors="replace"), re.M)
    return {key.upper(): value for key, value in pairs}


def workbook_settings(path: Path) -> dict[str, str]:
    """The workbook's xlwings.conf sheet (column A key, column B value); it overrides the user file."""
    import openpyxl

    from crm_app.io.files import readable_file, workbook_errors

    with workbook_errors(str(path)):  # a file that is not a workbook: one message naming it
        book = openpyxl.load_workbook(readable_file(path, "workbook"), read_only=True, keep_vba=False)
        try:
            if CONF_SHEET not in book.sheetnames:
                return {}
            rows = book[CONF_SHEET].iter_rows(min_row=1, max_col=2, values_only=True)
            return {str(k).upper(): "" if v is None else str(v) for k, v in rows if k}
        finally:
            book.close()


def settings(machine: Machine) -> dict[str, str]:
    """The settings xlwings uses: the user file, overridden by an xlwings.conf file beside the
    workbook, overridden by the workbook's sheet (a blank value there leaves the setting unset)."""
    merged = read_conf(machine.user_config)
    if machine.folder_config is not None:
        merged.update(read_conf(machine.folder_config))
    merged.update({k: v for k, v in machine.workbook_conf.items() if v})
    return merged


# ----------------------------------------------------------------------------- the checks
def run_checks(machine: Machine) -> list[Check]:
    conf = settings(machine)
    interpreter = configured_interpreter(machine, conf)
    return [check_package(machine), check_addin(machine), check_udf_modules(conf),
            check_interpreter(machine, interpreter), check_importable(machine, interpreter),
            check_com_server(machine, interpreter), check_bitness(machine), check_store_office(machine)]


def check_package(machine: Machine) -> Check:
    if machine.xlwings_version is None:
        return Check("xlwings package / xlwings 包", Status.PROBLEM, "not installed in this Python / 未安装",
                     f'"{machine.python}" -m pip install xlwings')
    return Check("xlwings package / xlwings 包", Status.OK, f"{machine.xlwings_version} ({machine.python})")


def check_addin(machine: Machine) -> Check:
    topic = "xlwings add-in / xlwings 加载项"
    if machine.xlstart is None and machine.addin is None:
        return Check(topic, Status.UNCHECKED, "not Windows: Excel's XLSTART folder is looked for on Windows "
                     "only (--addin FILE checks a file's version) / 非 Windows 系统，无法检查加载项")
    addin = machine.addin or machine.xlstart / ADDIN_NAME
    if not addin.is_file():
        return Check(topic, Status.PROBLEM, f"not installed ({addin} missing) / 未安装", "xlwings addin install")
    found = addin_version(addin)
    if found is None:
        return Check(topic, Status.UNCHECKED, f"found {addin}, but no XLWINGS_VERSION could be read from it "
                     "(not xlwings' add-in, or oletools missing: pip install oletools) / 无法读取版本")
    if found != machine.xlwings_version:
        return Check(topic, Status.PROBLEM, f"version {found} at {addin}, but the Python package is "
                     f"{machine.xlwings_version} / 加载项与 Python 包版本不一致", "xlwings addin install")
    return Check(topic, Status.OK, f"{found} at {addin}, the same as the package / 与 Python 包一致")


def addin_version(path: Path) -> str | None:
    """XLWINGS_VERSION as the add-in's VBA declares it (None when it cannot be read)."""
    try:
        from oletools.olevba import VBA_Parser
    except ImportError:
        return None
    try:
        parser = VBA_Parser(str(path))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    try:
        for _, _, _, code in parser.extract_macros():
            match = re.search(r'XLWINGS_VERSION\s+As\s+String\s*=\s*"([^"]+)"', code)
            if match:
                return match.group(1)
    finally:
        parser.close()
    return None


def check_udf_modules(conf: dict[str, str]) -> Check:
    topic = "UDF modules / 函数模块"
    modules = [m.strip() for m in conf.get("UDF MODULES", "").split(";") if m.strip()]
    if UDF_MODULE in modules:
        return Check(topic, Status.OK, f"{';'.join(modules)} includes {UDF_MODULE}")
    where = "the workbook's xlwings.conf sheet or ~/.xlwings/xlwings.conf"
    return Check(topic, Status.PROBLEM, f"{UDF_MODULE} is not among the UDF modules ({where}) / 未设置函数模块",
                 f'xlwings config create --force, then add the line "UDF MODULES","{UDF_MODULE}" to '
                 "~/.xlwings/xlwings.conf (or use the register, whose xlwings.conf sheet sets it)")


def configured_interpreter(machine: Machine, conf: dict[str, str]) -> str | None:
    """The interpreter xlwings will start: INTERPRETER_WIN (Windows) or INTERPRETER_MAC, else
    the conda environment's python, else None (xlwings then uses the `python` on PATH)."""
    key = "INTERPRETER_WIN" if machine.windows else "INTERPRETER_MAC"
    if conf.get(key) or conf.get("INTERPRETER"):
        return conf.get(key) or conf.get("INTERPRETER")
    if conf.get("CONDA PATH"):
        env = conf.get("CONDA ENV") or "base"
        base = Path(conf["CONDA PATH"]) if env == "base" else Path(conf["CONDA PATH"]) / "envs" / env
        return str(base / ("python.exe" if machine.windows else "bin/python"))
    return None


def check_interpreter(machine: Machine, interpreter: str | None) -> Check:
    topic = "interpreter / 解释器"
    if interpreter is None:
        return Check(topic, Status.OK, "not set: xlwings starts the python on PATH / 未设置，使用 PATH 中的 python")
    if not Path(interpreter).is_file():
        return Check(topic, Status.PROBLEM, f"{interpreter} (from xlwings.conf) does not exist / 解释器不存在",
                     f'xlwings config create --force  (sets the interpreter to "{machine.python}")')
    return Check(topic, Status.OK, f"{interpreter}")


def check_importable(machine: Machine, interpreter: str | None) -> Check:
    topic = f"{UDF_MODULE} importable / 可导入"
    python = interpreter or machine.python
    if not Path(python).is_file():
        return Check(topic, Status.UNCHECKED, f"no interpreter to try ({python}) / 无法检查")
    found = _ask(python, f"import {UDF_MODULE}, xlwings; print(xlwings.__version__)")
    if found is None:
        return Check(topic, Status.PROBLEM, f"{python} cannot import {UDF_MODULE} and xlwings / 无法导入",
                     f'"{python}" -m pip install crm-addin')
    return Check(topic, Status.OK, f"by {python} (xlwings {found})")


def check_com_server(machine: Machine, interpreter: str | None) -> Check:
    topic = "Python COM server / COM 服务"
    if not machine.windows:
        return Check(topic, Status.UNCHECKED, "Windows only (pywin32) / 仅限 Windows")
    python = interpreter or machine.python
    if _ask(python, "import win32com.server.register; print('ok')") is None:
        return Check(topic, Status.PROBLEM, f"pywin32 missing or broken in {python}: Excel says \"Could not "
                     "activate Python COM server\" / pywin32 缺失", f'"{python}" -m pip install --force-reinstall pywin32')
    return Check(topic, Status.OK, f"pywin32 importable by {python}")


def check_bitness(machine: Machine) -> Check:
    topic = "32/64-bit / 位数"
    if machine.office_bits is None:
        why = "Office's bitness is read from the Windows registry" if not machine.windows else "Office not found in the registry"
        return Check(topic, Status.UNCHECKED, f"{why}; Python is {machine.python_bits}-bit / 无法读取 Office 位数")
    if machine.office_bits != machine.python_bits:
        return Check(topic, Status.PROBLEM, f"Office is {machine.office_bits}-bit, Python {machine.python_bits}-bit: "
                     "UDFs and the COM server need both alike / Office 与 Python 位数不一致",
                     f"install the {machine.office_bits}-bit Python from python.org, then pip install crm-addin xlwings")
    return Check(topic, Status.OK, f"Office and Python both {machine.python_bits}-bit")


def check_store_office(machine: Machine) -> Check:
    topic = "Office edition / Office 版本"
    if not machine.windows:
        return Check(topic, Status.UNCHECKED, "the Microsoft Store edition exists on Windows only / 仅限 Windows")
    if machine.store_office:
        return Check(topic, Status.PROBLEM, "Office from the Microsoft Store: xlwings cannot reach it / "
                     "应用商店版 Office 不受支持",
                     "install Office from office.com (Click-to-Run) instead of the Microsoft Store version")
    return Check(topic, Status.OK, "not the Microsoft Store version")


def _ask(python: str, code: str) -> str | None:
    """What `python -c code` prints, None when it fails."""
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _office_bits() -> int | None:  # pragma: no cover - Windows only
    import winreg

    keys = [(r"SOFTWARE\Microsoft\Office\ClickToRun\Configuration", "Platform"),
            (r"SOFTWARE\Microsoft\Office\16.0\Outlook", "Bitness")]
    for key, value in keys:
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
                found = str(winreg.QueryValueEx(handle, value)[0]).lower()
        except OSError:
            continue
        return 64 if found in ("x64", "64") else 32
    return None


def _store_office() -> bool:  # pragma: no cover - Windows only
    apps = Path(os.environ.get("ProgramFiles", r"C:\Program Files")) / "WindowsApps"
    try:
        return any(apps.glob("Microsoft.Office.Desktop*"))
    except OSError:  # the folder is not listable for most users
        return False


# ----------------------------------------------------------------------------- command line
def cmd_doctor(args: argparse.Namespace) -> int:
    machine = this_machine(Path(args.workbook) if args.workbook else None, Path(args.addin) if args.addin else None)
    checks = run_checks(machine)
    for check in checks:
        print(check.line())
    problems = sum(c.status is Status.PROBLEM for c in checks)
    unchecked = sum(c.status is Status.UNCHECKED for c in checks)
    print(f"{problems} problem(s), {unchecked} not checked on this machine / {problems} 个问题，{unchecked} 项未检查")
    return 1 if problems else 0


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check the xlwings installation for the add-in / 检查 xlwings 安装",
                       description="Check the xlwings add-in and package versions, the interpreter and UDF "
                                   "modules in xlwings.conf, that crm_addin imports, 32/64-bit and the Office "
                                   "edition; each problem with the command that fixes it. Exit 1 when a "
                                   "problem is found. / 检查 xlwings 加载项、解释器、函数模块与位数。")
    p.add_argument("--workbook", metavar="FILE",
                   help="also read this workbook's xlwings.conf sheet (it overrides the user's file) / 工作簿")
    p.add_argument("--addin", metavar="FILE",
                   help="check this xlwings.xlam instead of the one in Excel's XLSTART folder / 指定加载项文件")
    p.set_defaults(func=cmd_doctor)
