"""tests.support.xlwings_offline: xlwings' real Windows UDF code, run without Excel."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import xlwings

from tests.support import xlwings_offline as xo

ROOT = Path(__file__).resolve().parents[2]
MODULE = "xlo_demo_udfs"
UDF_SOURCE = '''
import numpy as np
import pandas as pd
import xlwings as xw


@xw.func(category="CRM test")
@xw.arg("x", np.array, ndim=2, doc="A block of numbers")
@xw.ret(expand="table")
def DOUBLE_IT(x):
    """Doubles every number."""
    return x * 2


@xw.func
@xw.arg("x", np.array, ndim=2)
def KIND(x):
    """Type and shape of the argument as the UDF sees it."""
    return f"{type(x).__name__}{x.shape} nan={int(np.isnan(x).sum())}"


@xw.func
@xw.arg("df", pd.DataFrame, index=False, doc="Table with a header row")
@xw.ret(index=False)
def COLUMN_TOTALS(df):
    """Sum of each column, header kept."""
    return df.sum().to_frame().T


@xw.func
def ADD(a, b=10.0):
    """a + b."""
    return a + b


@xw.func
@xw.arg("x", err_to_str=True)
def ERROR_TEXT(x):
    """The argument, error values as text."""
    return x


@xw.func
def ECHO(x):
    """The argument unchanged."""
    return x


@xw.func
def SQUARES(n):
    """n rows of (i, i*i): a plain 2-D return that spills."""
    return [[float(i), float(i * i)] for i in range(int(n))]


@xw.func
def WHERE(caller):
    """Address of the calling range."""
    return caller.address


@xw.func
def FAILS(x):
    """Always raises."""
    raise ValueError("bad customer id")


@xw.func(async_mode="threading")
def SLOW(x):
    """Async UDF."""
    return x
'''


@pytest.fixture(scope="module")
def udf(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("udfs")
    (folder / f"{MODULE}.py").write_text(UDF_SOURCE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        yield xo.import_udf_module(MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(MODULE, None)
        xo.load_windows_xlwings().udf_modules.pop(MODULE, None)


def test_load_is_idempotent_and_binds_windows_decorators() -> None:
    udfs = xo.load_windows_xlwings()
    assert xo.load_windows_xlwings() is udfs
    assert xlwings.func is udfs.xlfunc and xlwings.arg is udfs.xlarg
    assert xlwings.ret is udfs.xlret and xlwings.sub is udfs.xlsub
    assert [e.name for e in xlwings.engines].count("excel") == 1
    assert "pythoncom" not in sys.modules  # the stand-ins do not outlive the import


def test_metadata_has_converter_options_and_docs(udf) -> None:
    info = udf.DOUBLE_IT.__xlfunc__
    (x,) = info["args"]
    assert x["name"] == "x" and x["doc"] == "A block of numbers"
    assert x["options"]["ndim"] == 2 and x["options"]["convert"] is not None
    assert info["ret"] == {"doc": "Doubles every number.", "options": {"expand": "table"}}
    assert info["category"] == "CRM test"


def test_blank_cells_become_nan_and_expand_resizes(udf) -> None:
    cells = xo.call_like_excel(udf.DOUBLE_IT, ((1.0, None), (3.0, 4.0)))
    assert cells == [[2.0, ""], [6.0, 8.0]]  # NaN goes back as an empty string
    assert xo.load_windows_xlwings().cache == {}  # xlwings' resize cache was settled


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 4)])
def test_expand_result_does_not_depend_on_caller_size(udf, shape) -> None:
    cells = xo.call_like_excel(udf.DOUBLE_IT, ((1.0, 2.0), (3.0, 4.0)), caller_shape=shape)
    assert cells == [[2.0, 4.0], [6.0, 8.0]]


def test_scalar_argument_is_2d_array(udf) -> None:
    assert xo.call_like_excel(udf.KIND, 5.0) == "ndarray(1, 1) nan=0"
    assert xo.call_like_excel(udf.KIND, ((1.0,), (None,))) == "ndarray(2, 1) nan=1"


def test_dataframe_in_and_out(udf) -> None:
    table = (("open", "paid"), (100.0, 40.0), (50.0, None))
    assert xo.call_like_excel(udf.COLUMN_TOTALS, table) == [["open", "paid"], [150.0, 40.0]]


def test_omitted_optional_argument_gets_python_default(udf) -> None:
    assert xo.call_like_excel(udf.ADD, 1.0) == 11.0
    assert xo.call_like_excel(udf.ADD, 1.0, 2.0) == 3.0
    with pytest.raises(TypeError):
        xo.call_like_excel(udf.ADD)


@pytest.mark.parametrize("text", sorted(xo.EXCEL_ERROR_CODES))
def test_error_values_arrive_as_none_or_text(udf, text: str) -> None:
    code = xo.EXCEL_ERROR_CODES[text]
    assert xo.call_like_excel(udf.ERROR_TEXT, code) == text
    assert xo.call_like_excel(udf.ERROR_TEXT, ((code, 1.0),)) == [[text, 1.0]]
    assert xo.call_like_excel(udf.ECHO, code) == ""  # None in Python, "" in the cell


def test_nan_none_and_error_text_come_back_as_plain_values(udf) -> None:
    assert xo.call_like_excel(udf.ECHO, math.nan) == ""
    assert xo.call_like_excel(udf.ECHO, None) == ""
    assert xo.call_like_excel(udf.ECHO, "#N/A") == "#N/A"  # text, not an Excel error


def test_plain_2d_return_spills_and_caller_is_a_range(udf) -> None:
    assert xo.call_like_excel(udf.SQUARES, 3.0) == [[0.0, 0.0], [1.0, 1.0], [2.0, 4.0]]
    assert xo.call_like_excel(udf.WHERE) == "$A$1"
    assert xo.call_like_excel(udf.WHERE, caller_shape=(2, 3)) == "$A$1:$C$2"


def test_exceptions_propagate_and_async_is_refused(udf) -> None:
    with pytest.raises(ValueError, match="bad customer id"):
        xo.call_like_excel(udf.FAILS, 1.0)
    with pytest.raises(NotImplementedError):
        xo.call_like_excel(udf.SLOW, 1.0)


def test_generated_vba_wraps_every_udf(udf) -> None:
    vba = xo.generate_vba(MODULE, udf)
    assert "Function DOUBLE_IT(x)" in vba and "Function ADD(a, Optional b)" in vba
    assert 'Py.CallUDF("xlo_demo_udfs", "DOUBLE_IT", Array(x), ActiveWorkbook' in vba
    assert "Function WHERE()" in vba  # caller is filled in by VBA, not the user
    assert "ThisWorkbook" in xo.generate_vba(MODULE, udf, workbook_name="crm.xlsm")


def test_import_udfs_offline_records_module_and_macro_options(udf) -> None:
    imported = xo.import_udfs_offline(MODULE)
    assert imported.vba.startswith('Attribute VB_Name = "xlwings_udfs"')
    assert "Function COLUMN_TOTALS(df)" in imported.vba
    options = {o["Macro"]: o for o in imported.macro_options}
    double = options["'crm_addin.xlam'!DOUBLE_IT"]
    assert double["Description"] == "Doubles every number."
    assert double["ArgumentDescriptions"] == ["A block of numbers"]
    assert double["Category"] == "CRM test"


@pytest.mark.parametrize("name", ["Double", "date", "STRING", "Function", "Application",
                                  "1st", "_x", "a b", "rate%", "回款率", "x" * 256, ""])
def test_invalid_vba_names(name: str) -> None:
    assert not xo.valid_vba_name(name)


@pytest.mark.parametrize("name", ["CRM_RATE", "credit_line2", "x" * 255, "Dated"])
def test_valid_vba_names(name: str) -> None:
    assert xo.valid_vba_name(name)


def test_fresh_process_reloads_noop_module_and_leaves_pywin32_absent(tmp_path: Path) -> None:
    (tmp_path / "xlo_fresh_udfs.py").write_text(
        "import xlwings as xw\n\n@xw.func\ndef f(x):\n    return x * 2\n", encoding="utf-8")
    script = textwrap.dedent("""
        import importlib.util, xlo_fresh_udfs
        assert not hasattr(xlo_fresh_udfs.f, "__xlfunc__")   # Linux no-op decorator
        from tests.support import xlwings_offline as xo
        m = xo.import_udf_module("xlo_fresh_udfs")
        assert hasattr(m.f, "__xlfunc__")
        assert xo.call_like_excel(m.f, 2.0) == 4.0
        assert importlib.util.find_spec("pythoncom") is None
        import xlwings
        xlwings.Range, xlwings.func
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
