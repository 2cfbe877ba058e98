"""Headless LibreOffice Calc helpers: recalculate workbooks and run embedded macros; and
Gnumeric's ``ssconvert --recalc`` as a second engine (:func:`recalculate_gnumeric`).

Used by tests and benchmarks on Linux, where there is no Excel.  Every call
starts its own soffice with a throw-away profile, so calls may run
concurrently and never touch the user's LibreOffice settings.

Rules of use:

* Only recalculate *copies*: files LibreOffice saved are for reading values,
  never for shipping (it rewrites styles, names and the VBA project).
* Values come back through ``openpyxl`` (``data_only=True``): formula errors
  are plain strings such as ``"#N/A"``/``"#NAME?"``, booleans are ``bool``,
  dates are ``datetime.datetime``, a formula returning ``""`` reads as None.
* LibreOffice 7.4 lacks XLOOKUP, LET, UNIQUE, FILTER and dynamic-array
  spills: such formulas evaluate to ``"#NAME?"``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from glob import glob
from pathlib import Path
from typing import Any

__all__ = [
    "LibreOfficeError",
    "build_macro_workbook",
    "can_run_macros",
    "find_soffice",
    "find_ssconvert",
    "find_uno_python",
    "recalculate",
    "recalculate_gnumeric",
    "recalculated_values",
    "recalculated_workbook",
    "require_gnumeric",
    "require_libreoffice",
    "run_basic_macro",
]

_RUNNER = Path(__file__).with_name("lo_macro_runner.py")

# Force "always recalculate on load" for xlsx and ods.  The default (1 = never)
# keeps cached values, so a stale or tampered cache would be read back as truth.
_REGISTRY = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Filter/Import/VBA"><prop oor:name="Executable" oor:op="fuse"><value>true</value></prop></item>
</oor:items>
"""


class LibreOfficeError(RuntimeError):
    """soffice is missing, failed, timed out or produced no output."""


# --------------------------------------------------------------------------- discovery


def find_soffice() -> str | None:
    """Path of the soffice binary, or None.  ``CRM_SOFFICE`` overrides the search."""
    override = os.environ.get("CRM_SOFFICE")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    candidates = ["/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice"]
    candidates += sorted(glob("/opt/libreoffice*/program/soffice"), reverse=True)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def find_uno_python() -> str | None:
    """A Python interpreter that can ``import uno`` (``CRM_UNO_PYTHON`` overrides).

    Debian's python3-uno targets the system python3; the official LibreOffice
    tarball bundles its own ``program/python`` instead.
    """
    candidates = [os.environ.get("CRM_UNO_PYTHON", ""), "/usr/bin/python3"]
    soffice = find_soffice()
    if soffice:
        candidates.append(str(Path(os.path.realpath(soffice)).with_name("python")))
    for exe in filter(None, candidates):
        if os.access(exe, os.X_OK) and _imports_uno(exe):
            return exe
    return None


@lru_cache(maxsize=8)  # one probe per interpreter and process: it costs a subprocess
def _imports_uno(python: str) -> bool:
    try:
        proc = subprocess.run([python, "-c", "import uno"], env=_clean_env(),
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def can_run_macros() -> bool:
    """True when both soffice and a python with ``uno`` are available."""
    return find_soffice() is not None and find_uno_python() is not None


def _require_soffice() -> str:
    soffice = find_soffice()
    if soffice is None:
        raise LibreOfficeError("LibreOffice (soffice) not found on PATH or in the usual places")
    return soffice


def _clean_env() -> dict[str, str]:
    # The project interpreter's PYTHONHOME/PYTHONPATH would break the system python / pyuno.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env.setdefault("SAL_USE_VCLPLUGIN", "svp")
    return env


# --------------------------------------------------------------------------- processes


@contextmanager
def _workdir() -> Iterator[Path]:
    """Private temp dir holding a fresh profile (registry pre-written) and work files."""
    root = Path(tempfile.mkdtemp(prefix="crm_lo_"))
    try:
        user = root / "profile" / "user"
        user.mkdir(parents=True)
        (user / "registrymodifications.xcu").write_text(_REGISTRY, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _soffice_cmd(root: Path, *args: str) -> list[str]:
    profile = (root / "profile").as_uri()
    return [_require_soffice(), f"-env:UserInstallation={profile}", "--headless",
            "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck", *args]


def _popen(cmd: list[str], **kw: Any) -> subprocess.Popen:
    # Own session => we can kill the whole tree (oosplash + soffice.bin) by group id.
    return subprocess.Popen(cmd, env=_clean_env(), start_new_session=True, **kw)


def _kill_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop the process group we started (launcher + soffice.bin): wait, SIGTERM, SIGKILL."""
    waits = ((None, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0))
    for sig, wait in waits:
        if proc.poll() is not None:
            return  # the launcher (oosplash) only exits once soffice.bin has
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)  # still our group: the leader is not reaped yet
            except ProcessLookupError:
                return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(cmd: list[str], timeout: float, stdin: str | None = None) -> tuple[int, str, str]:
    proc = _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc, grace=0)
        proc.communicate()
        raise LibreOfficeError(f"timed out after {timeout}s: {' '.join(cmd[:3])} ...") from exc
    finally:
        _kill_group(proc, grace=0)
    return proc.returncode, out, err


# --------------------------------------------------------------------------- recalculation


def recalculate(src: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
                timeout: float = 600) -> Path:
    """Recalculate every formula of ``src`` in LibreOffice; return the new xlsx path.

    ``src`` is copied first and never modified.  The result is
    ``out_dir/<src stem>.xlsx`` (``out_dir`` defaults to a new temp dir that the
    caller owns).  Macros are not kept: the output is for reading values only.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(src)
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="crm_recalc_"))
    target = out_dir / f"{src.stem}.xlsx"
    if target.resolve() == src.resolve():
        raise ValueError(f"recalculate() would overwrite its source {src}; pick another out_dir")
    with _workdir() as root:
        work = root / "in" / src.name  # copy: LibreOffice drops lock files next to its input
        work.parent.mkdir()
        shutil.copy2(src, work)
        produced = _convert(root, work, timeout)
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), target)
    return target


def _convert(root: Path, work: Path, timeout: float) -> Path:
    out = root / "out"
    cmd = _soffice_cmd(root, "--calc", "--convert-to", "xlsx:Calc MS Excel 2007 XML",
                       "--outdir", str(out), str(work))
    code, stdout, stderr = _run(cmd, timeout)
    produced = out / f"{work.stem}.xlsx"
    # soffice often exits 0 after "Error: source file could not be loaded": check the file.
    if code != 0 or not produced.is_file():
        raise LibreOfficeError(
            f"LibreOffice conversion of {work.name} failed (exit {code}).\n"
            f"stdout: {stdout.strip()}\nstderr: {stderr.strip()}")
    return produced


def recalculated_workbook(src: str | os.PathLike[str], timeout: float = 600):
    """Recalculate ``src`` and return an openpyxl ``Workbook`` loaded with ``data_only=True``."""
    import openpyxl  # lazy: keep this module importable without openpyxl

    with tempfile.TemporaryDirectory(prefix="crm_recalc_") as tmp:
        path = recalculate(src, tmp, timeout)
        return openpyxl.load_workbook(path, data_only=True)


def recalculated_values(src: str | os.PathLike[str], timeout: float = 600
                        ) -> dict[str, dict[str, Any]]:
    """``{sheet: {"A1": value}}`` of every non-empty cell after recalculation."""
    wb = recalculated_workbook(src, timeout)
    return {
        ws.title: {c.coordinate: c.value for row in ws.iter_rows() for c in row
                   if c.value is not None}
        for ws in wb.worksheets
    }


# --------------------------------------------------------------------------- macros


def run_basic_macro(path: str | os.PathLike[str], module: str, proc: str,
                    args: Sequence[Any] = (), timeout: float = 120,
                    save_as: str | os.PathLike[str] | None = None,
                    library: str = "VBAProject") -> Any:
    """Run ``library.module.proc`` embedded in ``path`` (xlsm/ods); return its JSON-able result.

    A copy of ``path`` is loaded with macros enabled (MacroExecutionMode 4), so
    the original is untouched; pass ``save_as`` (.xlsm/.xlsx/.ods) to keep the
    document as the macro left it.  VBA imported from an xlsm lives in the
    library named after the VBA project, normally ``VBAProject``.  Subs return None.

    LibreOffice headless swallows Basic errors, so None can also mean: an
    unhandled runtime error, or a compile error in *any* module of the library
    (then every call returns None; xlwings' own ``xlwings.bas`` does not compile
    in LibreOffice 7.4).  Date and Currency results also arrive as None: return
    ``CDbl(...)``/``Format(...)`` instead.  Have test macros return a value.
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(src)
    request = {"op": "run", "module": module, "proc": proc, "args": list(args),
               "library": library}
    return _uno_job(src, request, timeout, save_as)


def build_macro_workbook(out_path: str | os.PathLike[str], modules: Mapping[str, str],
                         src: str | os.PathLike[str] | None = None, timeout: float = 120,
                         project: str = "VBAProject") -> Path:
    """Write an .xlsm whose vbaProject.bin holds ``modules`` ({name: VBA code}).

    For test fixtures only: LibreOffice writes the file (its own VBA exporter,
    VBA-compatibility mode), so never ship the result.  ``src`` is an optional
    workbook to start from; the default is an empty sheet.
    """
    out = Path(out_path)
    request = {"op": "build", "modules": dict(modules), "project": project}
    _uno_job(Path(src) if src else None, request, timeout, out)
    if not out.is_file():
        raise LibreOfficeError(f"LibreOffice did not write {out}")
    return out


def _uno_job(src: Path | None, request: dict[str, Any], timeout: float,
             save_as: str | os.PathLike[str] | None) -> Any:
    """Start soffice on a private pipe, let the system-python runner drive it, always kill it."""
    python = find_uno_python()
    if python is None:
        raise LibreOfficeError("no Python with the 'uno' module (Debian: apt-get install python3-uno)")
    with _workdir() as root:
        doc = None
        if src is not None:
            doc = root / "in" / src.name
            doc.parent.mkdir()
            shutil.copy2(src, doc)
        pipe = f"crm_lo_{uuid.uuid4().hex}"
        request.update(pipe=pipe, connect_timeout=timeout, doc=str(doc) if doc else None,
                       save_as=str(Path(save_as).resolve()) if save_as else None)
        office = _popen(_soffice_cmd(root, f"--accept=pipe,name={pipe};urp;"),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code, out, err = _run([python, str(_RUNNER)], timeout, json.dumps(request))
        finally:
            _kill_group(office)
    return _parse_reply(code, out, err)


def _parse_reply(code: int, out: str, err: str) -> Any:
    try:
        reply = json.loads(out)
    except ValueError:
        raise LibreOfficeError(f"macro runner failed (exit {code}): {err.strip() or out}") from None
    if not reply.get("ok"):
        raise LibreOfficeError(f"macro failed: {reply.get('error')}\n{reply.get('traceback', '')}")
    return reply["result"]


# --------------------------------------------------------------------------- tests


def require_libreoffice(macros: bool = False) -> str:
    """soffice path for tests; skip when missing, but fail when ``CI=true`` (CI must have it).

    ``macros=True`` also requires a Python with ``uno`` (see :func:`can_run_macros`).
    """
    import pytest  # lazy: the product never needs pytest

    soffice = find_soffice()
    if soffice is None:
        reason = "LibreOffice (soffice) not installed: apt-get install libreoffice-calc-nogui"
    elif macros and find_uno_python() is None:
        reason = "LibreOffice macros need python3-uno: apt-get install python3-uno"
    else:
        return soffice
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required because CI=true)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- Gnumeric


def find_ssconvert() -> str | None:
    """Path of Gnumeric's ssconvert, or None.  ``CRM_SSCONVERT`` overrides the search."""
    override = os.environ.get("CRM_SSCONVERT")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("ssconvert")


def recalculate_gnumeric(src: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
                         timeout: float = 600) -> Path:
    """Recalculate every formula of ``src`` in Gnumeric (``ssconvert --recalc``); return the new
    xlsx path (``out_dir/<src stem>.xlsx``).

    Gnumeric rounds like Excel (half-up on the decimal a cell shows) where LibreOffice 7.4 does
    not, but it reads neither structured table references (``tblLedger[...]``) nor names built
    as ``A2:INDEX(...)`` ranges: such cells come back as errors.  A copy is converted (an .xlsm
    is read as .xlsx); ``src`` is never modified.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(src)
    ssconvert = find_ssconvert()
    if ssconvert is None:
        raise LibreOfficeError("Gnumeric (ssconvert) not found on PATH")
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="crm_gnumeric_"))
    target = out_dir / f"{src.stem}.xlsx"
    if target.resolve() == src.resolve():
        raise ValueError(f"recalculate_gnumeric() would overwrite its source {src}; pick another out_dir")
    with _workdir() as root:
        work = root / "in" / f"{src.stem}.xlsx"
        work.parent.mkdir()
        shutil.copy2(src, work)
        produced = root / "out.xlsx"
        env_home = root / "home"
        env_home.mkdir()
        code, stdout, stderr = _run(["env", f"HOME={env_home}", ssconvert, "--recalc", str(work), str(produced)],
                                    timeout)
        if code != 0 or not produced.is_file():
            raise LibreOfficeError(f"Gnumeric conversion of {src.name} failed (exit {code}).\n"
                                   f"stdout: {stdout.strip()}\nstderr: {stderr.strip()}")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), target)
    return target


def require_gnumeric() -> str:
    """ssconvert path for tests; skip when missing, but fail when ``CI=true`` (CI must have it)."""
    import pytest  # lazy: the product never needs pytest

    ssconvert = find_ssconvert()
    if ssconvert is not None:
        return ssconvert
    reason = "Gnumeric (ssconvert) not installed: apt-get install gnumeric"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required because CI=true)", pytrace=False)
    pytest.skip(reason)
