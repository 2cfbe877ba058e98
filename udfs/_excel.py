"""The Excel boundary shared by every worksheet function: ranges in, cells out, errors as values.

A UDF receives ranges as rows of cells (tuples of tuples or lists, None for blanks, error
cells as their text because every range argument is read with ``err_to_str``) and returns
rows of cells. Nothing here holds a business rule; money crosses as currency units on the
sheet and integer cents in the core.
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
import math
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.policy import Policy, fraction_problem
from crm_core.values import (
    THOUSANDS_GROUPED,
    date_column,
    excel_error_text,
    factorize_cells,
    is_blank,
    money_column_cents,
    normalize_text,
    parse_date,
    text_column,
)
from crm_core.values import units as _units

_log = logging.getLogger(__name__)
CATEGORY = "CRM"
Cells = list[list[Any]]

# SCODEs of Excel's error values (XlCVError 2000-2042 as the HRESULT 0x800A07xx).
ERROR_SCODES: dict[str, int] = {
    "#NULL!": -2146826288, "#DIV/0!": -2146826281, "#VALUE!": -2146826273, "#REF!": -2146826265,
    "#NAME?": -2146826259, "#NUM!": -2146826252, "#N/A": -2146826246,
}
_VT_ERROR = 10
NA, DIV0, VALUE = "#N/A", "#DIV/0!", "#VALUE!"


# ----------------------------------------------------------------- error values


class CellError:
    """An Excel error value (#N/A, #DIV/0!...) where pywin32 is absent (tests, Linux)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"CellError({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellError) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@functools.lru_cache(maxsize=None)
def _error_class() -> type:
    """On Windows, a win32com VARIANT of type VT_ERROR: pywin32 hands it to Excel as CVErr,
    so the cell holds a real error value (ISNA, IFERROR and SUM treat it as Excel's own)."""
    try:
        from win32com.client import VARIANT  # type: ignore[import-not-found]
    except ImportError:
        return CellError

    class ExcelError(VARIANT, CellError):
        __slots__ = ()

        def __init__(self, text: str):
            CellError.__init__(self, text)
            VARIANT.__init__(self, _VT_ERROR, ERROR_SCODES[text])

    return ExcelError


@functools.lru_cache(maxsize=None)
def excel_error(text: str) -> CellError:
    """The error value `text` (one of ERROR_SCODES) as a UDF should return it in a cell."""
    if text not in ERROR_SCODES:
        raise KeyError(text)
    return _error_class()(text)


def error_prefix(issue: Issue) -> str:
    return NA if issue.code == IssueCode.UNKNOWN_CUSTOMER else VALUE


def issue_text(issue: Issue) -> str:
    """'#VALUE! row 7: amount 'abc' is not a number' - what the cell says about one problem."""
    where = f" row {issue.row}" if issue.row is not None else ""
    column = issue.column or ""
    if column and not issue.message.startswith(column) and issue.row is not None:
        where += f" ({issue.column_label})"
    return f"{error_prefix(issue)}{where}: {issue.message}" if where else f"{error_prefix(issue)} {issue.message}"


def problems_text(issues: Sequence[Issue], more_hint: str = "") -> str:
    errors = [i for i in issues if i.is_error] or list(issues)
    text = issue_text(errors[0]) if errors else f"{VALUE} the input is not usable"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem(s){more_hint})"
    return text


def shows_errors(func: Callable) -> Callable:
    """Bad input never reaches the cell as a traceback: it becomes one message naming the row.

    The wrapper takes what `func` takes, keywords included (`crm_tier(rates, mode="rank")` from
    Python); `functools.wraps` keeps the signature visible to xlwings' decorators. A call that
    does not fit the signature is a programming error, so it raises TypeError as usual instead
    of becoming a cell message.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if kwargs:  # Excel passes positionals only; bind just to refuse a wrong keyword loudly
            signature.bind(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except CrmInputError as exc:
            return problems_text(exc.issues)
        except ValueError as exc:
            return f"{VALUE} {exc}"
        except Exception as exc:  # noqa: BLE001 - a cell must show something readable
            _log.exception("worksheet function %s failed", func.__name__)
            return f"{VALUE} unexpected {type(exc).__name__}: {exc} (please report)"
    guarded.__crm_udf__ = True
    return guarded


def arg_problem(name: str, message: str, row: int | None = None,
                code: IssueCode = IssueCode.BAD_NUMBER) -> CrmInputError:
    return CrmInputError([Issue(code, message, row=row, column=name)])


# ----------------------------------------------------------------- ranges in


def grid(value: Any, trim: bool = True) -> Cells:
    """A range value as rows of cells; trailing blank rows and columns dropped (unless `trim` is False)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return [[value]]
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in value]
    width = max((len(r) for r in rows), default=0)
    rows = [r + [None] * (width - len(r)) for r in rows]
    if not trim:
        return rows
    while rows and all(is_blank(c) for c in rows[-1]):
        rows.pop()
    while width and all(is_blank(r[width - 1]) for r in rows):
        width -= 1
        rows = [r[:width] for r in rows]
    return rows


def vector(value: Any, name: str, trim: bool = True) -> list[Any]:
    """One column (or one row) of cells; a block of several columns and rows is refused."""
    rows = grid(value, trim)
    if not rows:
        return []
    if len(rows[0]) == 1:
        return [r[0] for r in rows]
    if len(rows) == 1:
        return list(rows[0])
    raise arg_problem(name, f"{name} must be a single column or row, not {len(rows)}x{len(rows[0])} cells",
                      code=IssueCode.BAD_SHAPE)


def same_length(**columns: Sequence[Any]) -> int:
    """Columns that go together must have as many rows (trailing blanks aside)."""
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise arg_problem(next(iter(columns)), f"ranges have different numbers of rows: {shown}",
                          code=IssueCode.BAD_SHAPE)
    return next(iter(lengths.values()), 0)


def aligned(**values: Any) -> dict[str, list[Any]]:
    """Columns that sit side by side (customers, tiers, sales...): trailing rows are dropped only
    where every column is blank, so a blank last amount still belongs to the last customer.
    An omitted optional or an all-blank range counts as a column of blanks."""
    raw = {name: (vector(v, name, trim=False) if grid(v) else None) for name, v in values.items()}
    used = 0
    for cells in raw.values():
        filled = [i for i, c in enumerate(cells or []) if not is_blank(c)]
        used = max(used, filled[-1] + 1 if filled else 0)
    out: dict[str, list[Any]] = {}
    for name, cells in raw.items():
        cells = [None] * used if cells is None else cells
        if len(cells) < used:  # a shorter selection than its neighbours: say so
            shown = ", ".join(f"{n} {len(c)}" for n, c in raw.items() if c is not None)
            raise arg_problem(name, f"ranges have different numbers of rows: {shown}", code=IssueCode.BAD_SHAPE)
        out[name] = cells[:used]
    return out


def number(value: Any, what: str = "value") -> float:
    """One cell as a number: numbers, '17%' and '1,234.5' text. NaN for a blank."""
    if is_blank(value):
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is TRUE/FALSE, not a number")
    if isinstance(value, (int, float, Decimal, np.integer, np.floating)):
        return float(value)
    err = excel_error_text(value)
    if err:
        raise ValueError(f"cell holds the error value {err}")
    text = normalize_text(value)
    if "," in text and not THOUSANDS_GROUPED.fullmatch(text.rstrip("%")):  # '1.234,56' is not 1.23
        raise ValueError(f"{what} {str(value)[:40]!r}: commas may only group thousands (1,234.56)")
    text = text.replace(",", "")
    scale = 100.0 if text.endswith("%") else 1.0
    try:
        return float(text.rstrip("%")) / scale
    except ValueError:
        raise ValueError(f"{what} {str(value)[:40]!r} is not a number") from None


def _series(cells: Sequence[Any]) -> pd.Series:
    """Cells as a Series: all-number columns become float64 (NaN blanks) for the fast paths."""
    series = pd.Series(list(cells), dtype=object)
    numeric = series.map(lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))
    return series.astype("float64") if len(series) and numeric.all() else series


def numbers(cells: Sequence[Any], name: str, errors_as_blank: bool = False) -> tuple[np.ndarray, dict[int, str]]:
    """A column of numbers (NaN for blanks) and {position: reason} for cells that are not."""
    series = _series(cells)
    if series.dtype == "float64":
        return _finite(series.to_numpy(), {})
    if errors_as_blank:
        series = series.map(lambda v: None if excel_error_text(v) else v)
    codes, uniques = factorize_cells(series)
    parsed = np.full(len(uniques) + 1, np.nan)
    reasons: dict[int, str] = {}
    for k, raw in enumerate(uniques):  # once per distinct value
        try:
            parsed[k] = number(raw)
        except ValueError as exc:
            reasons[k] = str(exc)
    bad = {int(pos): reasons[k] for k in reasons for pos in np.flatnonzero(codes == k)}
    return _finite(parsed[codes], bad)


def _finite(values: np.ndarray, bad: dict[int, str]) -> tuple[np.ndarray, dict[int, str]]:
    """Excel has no infinity: one arriving (or text such as '1e999') is refused, never computed with."""
    for pos in np.flatnonzero(np.isinf(values)):
        bad[int(pos)] = f"value {values[pos]} is not a finite number"
    return np.where(np.isinf(values), np.nan, values), bad


def rate(value: Any, what: str) -> float:
    """A VAT rate as 0.17 or 17% (a percent cell, or the text '17%'). 17 and 1 are refused, not
    read as percents: the product's one rule for rates (crm_core.policy.fraction_problem)."""
    x = number(value, what)
    problem = fraction_problem(what, x, below_one=True)
    if problem:
        raise ValueError(problem)
    return x


def require(bad: dict[int, str], name: str, code: IssueCode = IssueCode.BAD_NUMBER, first_row: int = 1) -> None:
    """Raise every problem of a column at once, rows numbered from the top of the selection."""
    if bad:
        raise CrmInputError([Issue(code, reason, row=pos + first_row, column=name)
                             for pos, reason in sorted(bad.items())])


def money_cents(cells: Sequence[Any], name: str, blank_as_zero: bool = False) -> np.ndarray:
    """A column of amounts in currency units -> int64 cents; every bad cell reported."""
    series = _series(cells)
    if blank_as_zero:
        series = series.where(~series.map(is_blank).astype(bool), 0) if len(series) else series
    cents, bad = money_column_cents(series)
    require(bad, name)
    return cents


def one_money_cents(value: Any, name: str) -> int:
    cells = vector(value, name)
    if len(cells) != 1:
        raise arg_problem(name, f"{name} must be one cell")
    return int(money_cents(cells, name)[0])


def texts(cells: Sequence[Any], name: str, allow_blank: bool = False) -> np.ndarray:
    """Customer codes and labels: normalized text ('C7'), numbers typed as codes kept whole."""
    values, bad = text_column(pd.Series(list(cells), dtype=object))
    if allow_blank:
        bad = {pos: reason for pos, reason in bad.items() if reason != "value is blank"}
    bad = {pos: (f"{name} is blank" if reason == "value is blank" else reason) for pos, reason in bad.items()}
    require(bad, name, IssueCode.BLANK)
    return values


def dates(cells: Sequence[Any], name: str) -> tuple[np.ndarray, dict[int, str]]:
    """datetime64 column (NaT for blanks) and {position: reason} for cells that are not dates."""
    series = pd.Series(list(cells), dtype=object)
    present = ~series.map(is_blank).astype(bool).to_numpy() if len(series) else np.zeros(0, dtype=bool)
    out = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]")
    parsed, bad = date_column(series[present].reset_index(drop=True))
    out[present] = parsed
    positions = np.flatnonzero(present)
    return out, {int(positions[p]): reason for p, reason in bad.items()}


def one_number(value: Any, name: str, default: float | None = None, read: Callable = number) -> float:
    """One cell read by `read` (`number`, or `rate` for VAT); a blank is `default`, or is refused
    naming the argument when there is none."""
    cells = vector(value, name)
    if not cells or is_blank(cells[0]):
        if default is None:
            raise arg_problem(name, f"{name} is blank")
        return default
    try:
        return read(cells[0], name)
    except ValueError as exc:
        raise arg_problem(name, str(exc)) from None


def one_date(value: Any, name: str, default: pd.Timestamp | None = None) -> pd.Timestamp | None:
    cells = vector(value, name)
    if not cells or is_blank(cells[0]):
        return default
    try:
        return parse_date(cells[0])
    except ValueError as exc:
        raise arg_problem(name, f"{name}: {exc}", code=IssueCode.BAD_DATE) from None


def today() -> pd.Timestamp:
    return pd.Timestamp.today().normalize()


def table_frame(value: Any, name: str) -> pd.DataFrame:
    """A range whose first row holds the headers -> DataFrame of the raw cells (row 1 = header)."""
    rows = grid(value)
    if not rows:
        raise arg_problem(name, f"{name} is empty: select it with its header row", code=IssueCode.EMPTY)
    headers = [normalize_text(h) or f"column {i + 1}" for i, h in enumerate(rows[0])]
    return pd.DataFrame(rows[1:], columns=headers, dtype=object)


def label_map(value: Any, name: str) -> dict[str, float] | None:
    """A 2-column range of label and number (tier weights, cut-offs, buckets); None if omitted."""
    rows = [r for r in grid(value) if not all(is_blank(c) for c in r)]
    if not rows:
        return None
    if len(rows[0]) < 2:
        raise arg_problem(name, f"{name} needs two columns: label and value", code=IssueCode.BAD_SHAPE)
    out: dict[str, float] = {}
    for n, row in enumerate(rows, start=1):
        try:
            out[normalize_text(row[0])] = number(row[1], name)
        except ValueError as exc:
            if n == 1:  # a header row such as 'tier | weight'
                continue
            raise arg_problem(name, str(exc), row=n) from None
    return out


def read_policy(value: Any) -> Policy:
    """The Policy sheet's key/value columns (a header row 'key | value' is skipped); default if omitted."""
    rows = grid(value)
    if not rows:
        return Policy()
    if len(rows[0]) < 2:
        raise arg_problem("policy", "policy needs two columns: key and value", code=IssueCode.BAD_POLICY)
    pairs = [(r[0], r[1]) for n, r in enumerate(rows)
             if not (n == 0 and normalize_text(r[0]).lower().split(" / ")[0] in ("key", "键", "policy key"))]
    return Policy.from_pairs(pairs, source="policy")


# ----------------------------------------------------------------- cells out


def units(cents: Any) -> Any:
    """int cents -> currency units for the sheet (crm_core.values.units: a float, or a float64 array)."""
    return _units(cents)


def cell(value: Any) -> Any:
    """One value as Excel takes it: floats, text, datetimes, error values; blank for NaN/NaT/None."""
    if isinstance(value, CellError) or isinstance(value, str):
        return value
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        stamp = pd.Timestamp(value)
        return "" if pd.isna(stamp) else stamp.to_pydatetime()
    if isinstance(value, (dt.date, dt.datetime)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, Decimal)):
        x = float(value)
        if math.isinf(x):
            return excel_error("#NUM!")
        return "" if math.isnan(x) else x
    return str(value)


def column_out(values: Iterable[Any], horizontal: bool = False) -> Cells:
    """A vector result, spilling down (or across, when the input was a row)."""
    cells = [cell(v) for v in values]
    if not cells:
        return [[""]]
    return [cells] if horizontal else [[c] for c in cells]


def table_out(header: Sequence[str], columns: Sequence[Iterable[Any]]) -> Cells:
    """A table result with its header row."""
    body = [list(r) for r in zip(*[list(c) for c in columns])]
    return [list(header)] + [[cell(v) for v in row] for row in body]


def is_horizontal(value: Any) -> bool:
    rows = grid(value)
    return len(rows) == 1 and len(rows[0]) > 1
