"""What Excel's xlwings add-in sees of our UDFs, reproduced on a machine without Excel.

Why this exists: the add-in runs on Windows, where ``@xw.func``/``@xw.arg``/``@xw.ret``
attach the metadata (``f.__xlfunc__``) that ``xlwings.udfs`` turns into the
``xlwings_udfs`` VBA module, and where every worksheet call goes through
``xlwings.udfs.call_udf`` and xlwings' converters.  On Linux (CI, the build) those
decorators are no-ops and ``xlwings.udfs`` does not even import, because pywin32 is
missing.  So tests that only call the plain Python functions would miss what users get:
argument docs, converter options, NaN/None/error handling, the returned cell grid and
the generated VBA.

This module runs xlwings' *own* Windows code instead of imitating it:

* ``load_windows_xlwings()`` imports ``xlwings.udfs`` against tiny stand-ins for
  ``pythoncom``/``pywintypes``/``win32com`` (removed from ``sys.modules`` again right
  after the import, so other code still sees "no pywin32"), points ``xw.func`` & co. at
  the real Windows decorators and registers the Windows engine's value cleaning
  (compiled from ``xlwings/_xlwindows.py``, which itself cannot be imported here).
* ``call_like_excel()`` runs the real ``call_udf`` with a fake caller cell, including
  xlwings' delayed resize for ``@xw.ret(expand=...)``.
* ``generate_vba()`` / ``import_udfs_offline()`` run the real VBA generator/importer
  against a recording fake workbook.

Process-wide effects: after ``load_windows_xlwings()`` the xlwings decorators stay
bound to the Windows ones and an ``"excel"`` engine (not activated) is registered.
``call_like_excel()`` patches ``xlwings._xlwindows``/``xlwings.com_server`` only while
it runs, so it is not thread-safe.
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as dt
import importlib
import importlib.util
import io
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlwings

DEFAULT_WORKBOOK = "crm_addin.xlam"
# What VBA hands over for an omitted Optional argument (DISP_E_PARAMNOTFOUND);
# call_udf swaps in the Python default.
MISSING_ARG = -2147352572
# Excel's CVErr values as they reach Python through pywin32 (plain ints).
EXCEL_ERROR_CODES: dict[str, int] = {
    "#DIV/0!": -2146826281,
    "#N/A": -2146826246,
    "#NAME?": -2146826259,
    "#NULL!": -2146826288,
    "#NUM!": -2146826252,
    "#REF!": -2146826265,
    "#VALUE!": -2146826273,
}

_UDFS: types.ModuleType | None = None
_IMPORTED_BEFORE: frozenset[str] = frozenset()  # modules that may carry no-op decorators
_RELOADED: set[str] = set()
_LOOP: asyncio.AbstractEventLoop | None = None
_DECORATORS = {"func": "xlfunc", "arg": "xlarg", "ret": "xlret", "sub": "xlsub", "script": "xlsub"}
# Pure-Python parts of xlwings/_xlwindows.py that decide how cell values are cleaned.
_WINDOWS_VALUE_CODE = ("time_types", "cell_errors", "_com_time_to_datetime",
                       "_datetime_to_com_time", "_clean_value_data_element", "Engine")


# ----------------------------------------------------------------- pywin32 stand-ins


class _ComError(Exception):
    """Stand-in for pywintypes.com_error."""


class _TimeZoneInfo:
    @staticmethod
    def utc() -> dt.tzinfo:  # win32timezone.TimeZoneInfo.utc()
        return dt.timezone.utc


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name, "offline stand-in (tests.support.xlwings_offline)")
    mod.__dict__.update(attrs)
    return mod


def _pywin32_stand_ins() -> dict[str, types.ModuleType]:
    client = _module("win32com.client", Dispatch=lambda obj, *a, **k: obj)  # no COM: identity
    return {
        "pythoncom": _module(
            "pythoncom",
            CoInitialize=lambda *a: None,
            IID_IDispatch="IID_IDispatch",
            # ComRange marshals the caller to other threads; in one process the object will do.
            CoMarshalInterThreadInterfaceInStream=lambda iid, obj: obj,
            CoGetInterfaceAndReleaseStream=lambda stream, iid: stream,
        ),
        "pywintypes": _module("pywintypes", com_error=_ComError, IID=str,
                              TimeType=dt.datetime),  # pywin32's COM date subclasses datetime
        "win32com": _module("win32com", client=client),
        "win32com.client": client,
    }


@contextlib.contextmanager
def _modules_in_sys(mods: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put modules into sys.modules for the block only, restoring what was there."""
    saved = {name: sys.modules.get(name) for name in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


# ----------------------------------------------------------------- Windows engine


def _binds(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.If):
        return set().union(*(_binds(n) for n in node.body))
    return set()


def _windows_value_code() -> dict[str, Any]:
    """Compile the value-cleaning code of xlwings/_xlwindows.py without importing it.

    Importing that module needs real Windows DLLs (ctypes.windll, pythoncom.__file__),
    but how blanks, dates, NaN and error codes are converted lives in a few pure-Python
    definitions; running those keeps us in step with the installed xlwings.
    """
    import numpy as np
    import pandas as pd

    path = importlib.util.find_spec("xlwings._xlwindows").origin
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    body = [n for n in tree.body if _binds(n) & set(_WINDOWS_VALUE_CODE)]
    ns: dict[str, Any] = {
        "__name__": "xlwings._xlwindows", "dt": dt, "np": np, "pd": pd,
        "pywintypes": _pywin32_stand_ins()["pywintypes"],
        "win32timezone": _module("win32timezone", TimeZoneInfo=_TimeZoneInfo),
        "np_datetime_to_datetime": xlwings.utils.np_datetime_to_datetime,
    }
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    missing = set(_WINDOWS_VALUE_CODE) - ns.keys()
    if missing:
        raise ImportError(f"xlwings {xlwings.__version__}: _xlwindows lacks {sorted(missing)}")
    return ns


def _register_excel_engine() -> None:
    # conversion.read/write(None, ...) (the UDF path) look up engines["excel"].
    if "excel" not in [engine.name for engine in xlwings.engines]:
        xlwings.engines.add(xlwings.Engine(impl=_windows_value_code()["Engine"]()))


# ----------------------------------------------------------------- public: loading


def load_windows_xlwings() -> types.ModuleType:
    """Import the real ``xlwings.udfs`` and bind ``xw.func``/``arg``/``ret``/``sub`` to it."""
    global _UDFS, _IMPORTED_BEFORE
    if _UDFS is None:
        with _modules_in_sys(_pywin32_stand_ins()):
            udfs = importlib.import_module("xlwings.udfs")
        _register_excel_engine()
        _IMPORTED_BEFORE = frozenset(sys.modules)
        _UDFS = udfs
    for public, real in _DECORATORS.items():  # cheap, and survives an xlwings reload
        setattr(xlwings, public, getattr(_UDFS, real))
    for real in set(_DECORATORS.values()):
        if hasattr(xlwings, real):
            setattr(xlwings, real, getattr(_UDFS, real))
    return _UDFS


def import_udf_module(name: str) -> types.ModuleType:
    """Import (or reload, if imported with the no-op decorators) a UDF module."""
    udfs = load_windows_xlwings()
    if name in _IMPORTED_BEFORE and name in sys.modules and name not in _RELOADED:
        importlib.reload(sys.modules[name])
        udfs.udf_modules.pop(name, None)  # xlwings must cache the reloaded module
    _RELOADED.add(name)
    # xlwings' own loader: caches the module and reloads it when the file changes.
    return udfs.get_udf_module(name, None)


# ----------------------------------------------------------------- fake caller cell


class _FakeApp:
    pid = 1


class _FakeBook:
    name = "Book1.xlsx"
    app = _FakeApp()


class _FakeSheet:
    """A worksheet that remembers the formulas xlwings writes while resizing."""

    name = "Sheet1"
    book = _FakeBook()

    def __init__(self) -> None:
        self.formulas: dict[tuple[int, int, int, int], str] = {}
        self.array_formulas: dict[tuple[int, int, int, int], str] = {}

    def range(self, first: _FakeRange, last: _FakeRange) -> _FakeRange:
        return _FakeRange(self, first.row, first.col,
                          last.row + last.nrows - first.row, last.col + last.ncols - first.col)


@dataclass(eq=False)
class _FakeRange:
    """Plays both pywin32's Range COM object and xlwings' ``_xlwindows.Range`` impl."""

    sheet: _FakeSheet
    row: int
    col: int
    nrows: int
    ncols: int
    options: dict = field(default_factory=dict)
    CLSID = None

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.row, self.col, self.nrows, self.ncols)

    @property
    def api(self) -> _FakeRange:
        return self

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    def __len__(self) -> int:
        return self.nrows * self.ncols

    def __call__(self, row: int, col: int) -> _FakeRange:
        return _FakeRange(self.sheet, self.row + row - 1, self.col + col - 1, 1, 1)

    @property
    def address(self) -> str:
        first = f"${xlwings.utils.col_name(self.col)}${self.row}"
        if self.nrows == self.ncols == 1:
            return first
        last_col = xlwings.utils.col_name(self.col + self.ncols - 1)
        return f"{first}:${last_col}${self.row + self.nrows - 1}"

    @property
    def formula(self) -> str:
        return self.sheet.formulas.get(self.key, "")

    @formula.setter
    def formula(self, value: str) -> None:
        self.sheet.formulas[self.key] = value

    formula2 = formula

    @property
    def formula_array(self) -> str:
        return self.sheet.array_formulas.get(self.key, "")

    @formula_array.setter
    def formula_array(self, value: str) -> None:
        self.sheet.array_formulas[self.key] = value

    def clear_contents(self) -> None:
        self.sheet.formulas.pop(self.key, None)
        self.sheet.array_formulas.pop(self.key, None)


def _background_loop() -> asyncio.AbstractEventLoop:
    """The event loop xlwings' COM server runs in a thread (async UDFs, delayed resize)."""
    global _LOOP
    if _LOOP is None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="xlwings-offline-loop",
                         daemon=True).start()
        _LOOP = loop
    return _LOOP


def _drain(loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
    """Wait until every task xlwings scheduled on the loop has finished."""
    async def others_done() -> None:
        me = asyncio.current_task()
        while pending := [t for t in asyncio.all_tasks() if t is not me and not t.done()]:
            await asyncio.wait(pending)

    asyncio.run_coroutine_threadsafe(others_done(), loop).result(timeout)


@contextlib.contextmanager
def _windows_runtime() -> Iterator[None]:
    """What call_udf reaches for besides its arguments: the pywin32 Range wrapper
    (``xlwings._xlwindows``) and the COM server's event loop (``xlwings.com_server``)."""
    xlwin = _module("xlwings._xlwindows", Range=lambda xl: xl, BOOK_CALLER=None,
                    is_range_instance=lambda obj: False)  # arguments arrive as values
    server = _module("xlwings.com_server", loop=_background_loop())
    missing = object()
    saved = getattr(xlwings, "_xlwindows", missing)
    with _modules_in_sys({"xlwings._xlwindows": xlwin, "xlwings.com_server": server}):
        xlwings._xlwindows = xlwin
        try:
            yield
        finally:
            if saved is missing:
                del xlwings._xlwindows
            else:
                xlwings._xlwindows = saved


# ----------------------------------------------------------------- public: calling


def _vba_args(info: dict, args: Sequence[Any]) -> tuple:
    """Lay values out like the wrapper's ``Array(...)``: hidden args (``caller``,
    ``vba=...``) get VBA's value, omitted optionals the missing marker."""
    given, out = list(args), []
    for arg in info["args"]:
        if arg["vararg"]:
            out += given
            given = []
        elif arg["name"] == "caller" or arg["vba"]:
            out.append(None)  # VBA passes Nothing; call_udf puts the caller Range there
        elif given:
            out.append(given.pop(0))
        elif "optional" in arg:
            out.append(MISSING_ARG)
        else:
            raise TypeError(f"{info['name']}() missing argument {arg['name']!r}")
    if given:
        raise TypeError(f"{info['name']}() got {len(given)} argument(s) too many")
    return tuple(out)


def _settle_resize(call: Callable[[_FakeRange], Any], sheet: _FakeSheet) -> Any:
    """Finish xlwings' legacy resize for ``expand``: let its delayed task rewrite the
    array formula, then recalculate that range the way Excel would."""
    _drain(_background_loop())
    if len(sheet.array_formulas) != 1:
        raise RuntimeError("xlwings did not resize the formula (see the 'xlwings.udfs' log)")
    return call(_FakeRange(sheet, *next(iter(sheet.array_formulas))))


def _call_udf(udfs: types.ModuleType, func: Callable, vba_args: tuple,
              caller_shape: tuple[int, int]) -> list:
    name, module_name = func.__xlfunc__["name"], func.__module__
    sheet = _FakeSheet()
    caller = _FakeRange(sheet, 1, 1, *caller_shape)
    caller.formula = f"={name}()"  # what the delayed resize copies to the new range
    if getattr(udfs.get_udf_module(module_name, None), name, None) is not func:
        raise ValueError(f"{name} is not the function xlwings would load from "
                         f"{module_name}; re-import it with import_udf_module()")

    def call(rng: _FakeRange) -> list:
        return udfs.call_udf(module_name, name, vba_args, None, rng)

    cached = set(udfs.cache)
    result = call(caller)
    # With expand, call_udf keeps its cache entry only when it scheduled a resize.
    if func.__xlfunc__["ret"]["options"].get("expand") and set(udfs.cache) - cached:
        result = _settle_resize(call, sheet)
    return result


def call_like_excel(func: Callable, *args: Any,
                    caller_shape: tuple[int, int] | None = None) -> Any:
    """Run a UDF through xlwings' real ``call_udf``; return the cells Excel would show.

    ``args`` are shaped as VBA delivers them: scalars, or tuples of row tuples with
    None for blanks, floats for numbers and ``EXCEL_ERROR_CODES`` ints for errors.
    ``caller_shape`` is the size of the range holding the formula (default: one cell,
    where a returned 2-D array spills).  The result is a scalar for a 1x1 result,
    otherwise a list of rows.  Exceptions propagate (Excel would show their text).
    """
    udfs = load_windows_xlwings()
    info = getattr(func, "__xlfunc__", None)
    if info is None:
        raise TypeError(f"{func!r} has no __xlfunc__; load it with import_udf_module()")
    if info["async_mode"]:
        raise NotImplementedError("async_mode UDFs need a running Excel")
    vba_args = _vba_args(info, args)
    cached = set(udfs.cache)
    with _windows_runtime():
        try:
            result = _call_udf(udfs, func, vba_args, caller_shape or (1, 1))
        finally:  # never leave a half-finished resize behind in xlwings' cache
            for key in set(udfs.cache) - cached:
                udfs.cache.pop(key, None)
    # Like XLPython.CallUDF (com_server, not importable here), a 1x1 result is a scalar.
    if isinstance(result, list) and len(result) == 1 and len(result[0]) == 1:
        return result[0][0]
    return result


# ----------------------------------------------------------------- public: VBA


def _fake_workbook(name: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(Name=name)


def generate_vba(module_name: str, module: types.ModuleType, *,
                 workbook_name: str = DEFAULT_WORKBOOK) -> str:
    """The VBA that xlwings' ``generate_vba_wrapper`` writes for ``module``'s UDFs.

    ``workbook_name`` matters: an ``.xlam`` gets ``ActiveWorkbook``, others ``ThisWorkbook``.
    """
    udfs = load_windows_xlwings()
    out = io.StringIO()
    udfs.generate_vba_wrapper(module_name, module, out, _fake_workbook(workbook_name))
    return out.getvalue()


@dataclass
class ImportedUdfs:
    """What xlwings' "Import Functions" would put into the workbook."""

    vba: str  # the whole xlwings_udfs module as imported (header included)
    macro_options: list[dict[str, Any]]  # one Application.MacroOptions call per UDF


class _RecordingWorkbook:
    """Just enough of a COM Workbook for ``xlwings.udfs.import_udfs``."""

    def __init__(self, name: str, excel_version: str) -> None:
        self.Name = name
        self.imported: list[str] = []
        self.macro_options: list[dict[str, Any]] = []
        components = types.SimpleNamespace(
            Remove=lambda component: None,
            Import=lambda path: self.imported.append(Path(path).read_text()),
        )
        self.VBProject = types.SimpleNamespace(VBComponents=_Callable(components))
        self.Application = types.SimpleNamespace(
            Version=excel_version,
            MacroOptions=lambda macro, **kw: self.macro_options.append({"Macro": macro, **kw}),
        )


class _Callable(types.SimpleNamespace):
    """``VBComponents("name")`` is a call in COM and an attribute holder too."""

    def __init__(self, inner: types.SimpleNamespace) -> None:
        super().__init__(**vars(inner))

    def __call__(self, name: str) -> str:
        return name


def import_udfs_offline(module_names: str | Sequence[str], *,
                        workbook_name: str = DEFAULT_WORKBOOK,
                        excel_version: str = "16.0") -> ImportedUdfs:
    """Run xlwings' real ``import_udfs`` against a recording workbook."""
    udfs = load_windows_xlwings()
    names = [module_names] if isinstance(module_names, str) else list(module_names)
    for name in names:
        import_udf_module(name)  # cached, so import_udfs skips its embedded-code lookup
    book = _RecordingWorkbook(workbook_name, excel_version)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Imported functions ..."
        udfs.import_udfs(";".join(names), book)
    return ImportedUdfs(vba=book.imported[0], macro_options=book.macro_options)


# ----------------------------------------------------------------- public: VBA names

# MS-VBAL reserved identifiers (statement/marker keywords, operators, reserved names,
# special forms, types, literals, implementation-reserved) plus Object and Property.
VBA_RESERVED: frozenset[str] = frozenset(name.lower() for name in """
    Boolean Byte Currency Date Decimal Double Integer Long LongLong LongPtr Object Single
    String Variant Any
    Call Case Close Const Declare DefBool DefByte DefCur DefDate DefDbl DefDec DefInt DefLng
    DefLngLng DefLngPtr DefObj DefSng DefStr DefVar Dim Do Else ElseIf End EndIf Enum Erase
    Error Event Exit For Friend Function Get Global GoSub GoTo If Implements Input Let Lock
    Loop LSet Next On Open Option Print Private Property Public Put RaiseEvent ReDim Rem
    Resume Return RSet Seek Select Set Static Stop Sub Type Unlock Wend While With Write
    As ByRef ByVal Each In New Shared Until WithEvents Optional ParamArray Preserve Spc Tab
    Then To
    AddressOf And Eqv Imp Is Like Mod Not Or TypeOf Xor
    Abs CBool CByte CCur CDate CDbl CDec CInt CLng CLngLng CLngPtr CSng CStr CVar CVErr
    Debug DoEvents Fix Int Len LenB Me PSet Scale Sgn Array Circle InputB LBound UBound
    True False Nothing Empty Null Attribute LineInput CDecl
""".split())
# Names the generated wrapper itself uses; an argument or UDF called so would shadow them.
WRAPPER_NAMES: frozenset[str] = frozenset(
    {"application", "activeworkbook", "thisworkbook", "range", "err", "xlpy", "py",
     "failed", "argsarray", "k", "xlwings_udfs"})
_VBA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}")


def valid_vba_name(name: str) -> bool:
    """True if ``name`` can be a VBA function/argument name in the generated wrapper."""
    folded = name.lower()
    return (bool(_VBA_NAME.fullmatch(name)) and folded not in VBA_RESERVED
            and folded not in WRAPPER_NAMES)
