"""Turning cell values from ERP exports and Excel into exact numbers, dates and names.

Money is held as integer cents (int64) so that sums balance exactly; text such as
"¥1,234.50", "１２３４", "(500.00)" or "12.5万" is understood, anything else is reported.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd

from .per_dictionary import per_dictionary

# Excel's day zero: serial 1 is 1900-01-01 and it counts the phantom 1900-02-29.
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31
# Dates a ledger may hold. Later ones are typing errors (3024 for 2024), and would not fit the
# nanosecond dates the tables use: refused with a reason rather than wrapped around.
FIRST_DATE, LAST_DATE = pd.Timestamp("1899-12-30"), pd.Timestamp("2261-12-31")
_DATE_RANGE = f"dates run from {FIRST_DATE:%Y-%m-%d} to {LAST_DATE:%Y-%m-%d}"
_CURRENCY = re.compile(r"(?i)^(rmb|cny|usd|eur|hkd)|(rmb|cny|usd|eur|hkd|元)$|[¥￥$€£]")
_EXCEL_ERRORS = {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!",
                 "#SPILL!", "#CALC!", "#GETTING_DATA"}
MAX_TEXT = 255
# Larger amounts are typing or export errors, and would overflow exact int64 cent sums.
MAX_AMOUNT_CENTS = 10**15  # 10 trillion currency units


def normalize_text(value: object) -> str:
    """Full-width to half-width, trimmed, inner runs of spaces collapsed (NFKC)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""  # pd.NA: a blank in pandas' nullable columns (Parquet files written by pandas)
    text = unicodedata.normalize("NFKC", str(value))
    return " ".join(text.split())


# Printable ASCII and CJK unified ideographs, single-spaced: NFKC leaves such text unchanged,
# so a value matching this is already normalized and not blank; only the rest needs Python.
_PLAIN_TEXT = "[!-~\u4e00-\u9fff]+(?: [!-~\u4e00-\u9fff]+)*"


def plain_text_mask(values: pd.Series) -> np.ndarray:
    """True where a value is text already equal to its `normalize_text` form (vectorized)."""
    if is_text_categorical(values):  # judged once per category (the reader's dictionary)
        return per_category(values, plain_text_mask, missing=False)
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return np.zeros(len(values), dtype=bool)
    if values.dtype != object:  # pandas string columns match in Arrow, not per value in Python
        quick = _printable_ascii_mask(values)
        if quick is not None:
            return quick
        return values.str.fullmatch(_PLAIN_TEXT).fillna(False).to_numpy(dtype=bool)
    match = re.compile(_PLAIN_TEXT).fullmatch
    return np.fromiter((isinstance(v, str) and match(v) is not None for v in values),
                       dtype=bool, count=len(values))


def _printable_ascii_mask(values: pd.Series) -> np.ndarray | None:
    """`plain_text_mask` of an Arrow-backed string column whose characters are all printable ASCII
    without spaces (invoice numbers usually are): then plain means present and not empty. Judged
    on the column's byte buffer in two reductions instead of a regular expression per value;
    None when the column holds anything else (or is not Arrow-backed)."""
    if not hasattr(values.array, "__arrow_array__"):
        return None
    import pyarrow as pa

    column = pa.array(values.array)
    masks = []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return None
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width, count=len(chunk) + 1, offset=chunk.offset * width().itemsize)
        data = chunk.buffers()[2]
        text = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None else np.zeros(0, np.uint8)
        if len(text) and (text.min() < 0x21 or text.max() > 0x7E):  # a space, a control or non-ASCII byte
            return None
        present = np.diff(offsets) > 0
        if chunk.null_count:
            present &= chunk.is_valid().to_numpy(zero_copy_only=False)
        masks.append(present)
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def normalize_text_column(values: pd.Series, plain: np.ndarray | None = None) -> np.ndarray:
    """`normalize_text` of every value (an object array, or the column's own string array for
    pandas string columns); already-normal text is not touched again. A categorical column gives a
    categorical. `plain`: the column's `plain_text_mask`, if the caller has it."""
    if is_text_categorical(values):
        recode, dtype = per_dictionary(values.cat.categories, "normalized",
                                       lambda: _normalized_categories(values.cat.categories))
        return pd.Categorical.from_codes(recode[values.cat.codes.to_numpy()], dtype=dtype, validate=False)
    rest = np.flatnonzero(~(plain_text_mask(values) if plain is None else plain))
    if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
        if len(rest) == 0:  # keep the column's own string storage: no per-value objects at all
            return values.array.copy()  # a new wrapper round the same immutable Arrow buffers
        out = values.copy()
        out.iloc[rest] = [normalize_text(v) for v in values.iloc[rest]]
        return out.array
    out = values.to_numpy(dtype=object, na_value=None).copy()
    if len(rest):
        out[rest] = [normalize_text(v) for v in out[rest]]
    return out


def _normalized_categories(categories: pd.Index) -> tuple[np.ndarray, pd.CategoricalDtype]:
    """A text categorical's categories normalized: each one's new code and the new dtype."""
    categories = pd.Series(categories)
    plain = plain_text_mask(categories)
    clean = normalize_text_column(categories, plain)
    return category_codes(clean, fill="", sort=False, distinct=bool(plain.all()))


def is_text_categorical(values: pd.Series) -> bool:
    """A column of text the file reader dictionary-encoded: a few distinct values, codes per row."""
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(dtype.categories.dtype)


def is_text_column(values: pd.Series) -> bool:
    """A column typed as text: a pandas string column or a categorical of text, not an object
    column (whose cells may be numbers or TRUE as well)."""
    return values.dtype != object and pd.api.types.is_string_dtype(values.dtype) or is_text_categorical(values)


def per_category(values: pd.Series, judge, missing: bool) -> np.ndarray:
    """`judge` (a whole-column test) applied to the categories once and spread to the rows;
    missing cells (code -1) get `missing`."""
    per = np.append(np.asarray(judge(pd.Series(values.cat.categories)), dtype=bool), missing)
    return per[values.cat.codes.to_numpy()]


def union_codes(columns: list[pd.Series]) -> tuple[np.ndarray, pd.Index]:
    """Categoricals of text as one column: each row's code (int64, -1 for missing) into the union
    of their categories, numbered by first appearance. Only the categories are factorized, by
    Arrow (`_text_factorize`; pandas' `union_categoricals` takes ten times as long for 10^6), and
    categories that several columns share are factorized once."""
    categories = [np.asarray(c.cat.categories, dtype=object) for c in columns]
    distinct = list({id(c): c for c in categories}.values())  # columns sharing one array (a partial's
    # sums and names do) have it hashed once; the arrays stay referenced, so their ids are theirs
    positions, union = _text_factorize(np.concatenate(distinct) if distinct else np.zeros(0, object), sort=False)
    starts = np.cumsum([0] + [len(c) for c in distinct])
    lookup = {id(c): np.append(positions[start:start + len(c)], -1).astype("int64")  # code -1: the -1 slot
              for c, start in zip(distinct, starts)}
    codes = [lookup[id(c)][column.cat.codes.to_numpy()] for column, c in zip(columns, categories)]
    return np.concatenate(codes) if codes else np.zeros(0, "int64"), pd.Index(union, dtype=object)


def text_cells(column: pd.Series, positions: np.ndarray) -> np.ndarray:
    """The column's cells at `positions` as an object array. A categorical's are taken from its
    categories by code (pandas' own conversion goes through its Arrow-backed categories and takes
    half a second for 10^6 names); a missing cell is None."""
    if not is_text_categorical(column):
        return column.iloc[positions].to_numpy(dtype=object)
    if not len(column.cat.categories):  # a column of blanks only
        return np.full(len(positions), None, dtype=object)
    cells, missing = _category_cells(column, positions)
    cells = cells.to_numpy(dtype=object)  # only these made
    return np.where(missing, None, cells) if missing.any() else cells


def text_values(column: pd.Series, positions: np.ndarray):
    """`text_cells` as pandas text, for a table: a categorical's taken from its categories by
    Arrow, not made into Python strings that building the table would turn back into Arrow text."""
    if not is_text_categorical(column) or not isinstance(column.cat.categories.dtype, pd.StringDtype) \
            or not len(column.cat.categories):
        return text_cells(column, positions)
    cells, missing = _category_cells(column, positions)
    return (cells.where(~missing, None) if missing.any() else cells).array


def _category_cells(column: pd.Series, positions: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """A text categorical's cells at `positions` as its categories (a missing cell, code -1, as
    the first category), and where the missing ones are."""
    codes = column.cat.codes.to_numpy()[positions]
    return column.cat.categories.take(np.maximum(codes, 0)), codes < 0


def as_text_array(values):
    """Distinct text for a table's column: pandas' Arrow text as it is, anything else as objects."""
    if isinstance(getattr(values, "dtype", None), pd.StringDtype):
        return values.array if isinstance(values, (pd.Index, pd.Series)) else values
    return np.asarray(values, dtype=object)


def sorted_categorical(column: pd.Series) -> pd.Series:
    """A categorical of text with its categories sorted (code-point order, as Python sorts), by
    Arrow's sort (`_text_factorize`): pandas' sorts through Python strings."""
    rank, ordered = _text_factorize(np.asarray(column.cat.categories, dtype=object), sort=True)
    rank = np.append(rank, -1).astype("int64")  # code -1 (missing) stays missing
    return pd.Series(pd.Categorical.from_codes(rank[column.cat.codes.to_numpy()], validate=False,
                                               dtype=distinct_categories(pd.Index(ordered, dtype=object))),
                     index=column.index, name=column.name)


def text_categorical(codes: np.ndarray, labels, fill: str = "", sort: bool = True,
                     distinct: bool = False) -> pd.Categorical:
    """Each row's text as a categorical: labels[code], code -1 meaning `fill`. Categories are
    distinct and, unless `sort` is False, sorted, so that sorting or grouping by them is sorting
    or grouping by the text (customer codes need that; names, looked up by row, do not).
    `distinct`: the caller knows no two labels are equal (a reader's dictionary that normalizing
    left unchanged), so unsorted they are the categories as they stand, not hashed again."""
    recode, dtype = category_codes(labels, fill, sort, distinct)
    return pd.Categorical.from_codes(recode[codes], dtype=dtype, validate=False)


def category_codes(labels, fill: str = "", sort: bool = True,
                   distinct: bool = False) -> tuple[np.ndarray, pd.CategoricalDtype]:
    """`text_categorical`'s work on the labels alone: each label's code (one more slot at the end,
    for code -1) and the categories' dtype, so rows are coded by one take. Labels held as Arrow
    text (a reader's dictionary) stay Arrow text: 10^6 of them took 0.4 s to turn into Python
    strings and back."""
    text = _arrow_labels(labels, fill)
    source = np.append(np.asarray(labels, dtype=object), fill) if text is None else text
    if distinct and not sort:  # what factorizing gives: the labels in order, `fill` last unless among them
        filled = np.flatnonzero(source[:-1] == fill if text is None else _arrow_equal(text[:-1], fill))
        label_codes = np.arange(len(source), dtype=np.intp)
        if len(filled):
            label_codes[-1] = filled[0]
        categories = source[:-1] if len(filled) else source
    else:
        label_codes, categories = _text_factorize(source, sort)
    # codes of the categorical's own width, valid by construction: one pass over the rows
    width = len(categories)
    label_codes = label_codes.astype(np.int8 if width < 2**7 else np.int16 if width < 2**15 else np.int32)
    if text is not None:
        categories = pd.array(categories, dtype="str")  # a wrapper round Arrow's buffers
    return label_codes, distinct_categories(categories)


def _arrow_equal(text, value: str) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.equal(text, value).to_numpy(zero_copy_only=False)


def _arrow_labels(labels, fill: str):
    """Labels held as pandas' Arrow text, with `fill` appended, as one Arrow array (None for
    labels held otherwise, or with missing values)."""
    if not isinstance(getattr(labels, "dtype", None), pd.StringDtype) or labels.dtype.storage != "pyarrow":
        return None
    import pyarrow as pa

    text = pa.array(labels.array if isinstance(labels, (pd.Index, pd.Series)) else labels)
    if text.null_count:
        return None
    text = text.cast(pa.string()) if text.type != pa.string() else text
    return pa.concat_arrays([text, pa.array([fill], type=pa.string())])


def distinct_categories(categories: np.ndarray) -> pd.CategoricalDtype:
    """The dtype of categories known to be distinct, without pandas hashing them all again to
    check (hundreds of thousands of customer names, once per chunk of a large ledger)."""
    fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)  # pandas 2.2 to 3.1 have it
    if fastpath is None:  # pragma: no cover - a later pandas without it: the checked way
        return pd.CategoricalDtype(categories)
    return fastpath(pd.Index(categories), ordered=False)


def _text_factorize(labels: np.ndarray, sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize(labels, sort=sort)` for an object array of str, by Arrow: sorted, several
    times faster on the ~10^5 customer codes of a large ledger, read chunk by chunk (UTF-8 byte
    order is code-point order, so the order is Python's); unsorted, by Arrow's hash, which,
    unlike pandas 2.2's, tells '\x00' from ''. Labels given as an Arrow array (of text, no
    missing values) give their distinct values as one too."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pandas' string columns come with pyarrow
        return pd.factorize(labels, sort=sort)
    arrow = isinstance(labels, pa.Array)
    try:
        text = labels if arrow else pa.array(labels, type=pa.string())
    except (TypeError, ValueError, pa.ArrowException):  # not all text: pandas decides
        return pd.factorize(labels, sort=sort)
    if not arrow and (len(text) == 0 or text.null_count):
        return pd.factorize(labels, sort=sort)

    def out(values):
        return values if arrow else values.to_numpy(zero_copy_only=False)
    if not sort:  # numbered by first appearance, as pd.factorize numbers them
        encoded = pc.dictionary_encode(text)
        return encoded.indices.to_numpy().astype(np.intp), out(encoded.dictionary)
    order = pc.sort_indices(text).to_numpy()
    ordered = text.take(order)
    starts = np.ones(len(text), dtype=bool)  # where a new distinct value begins in sorted order
    starts[1:] = pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    codes = np.empty(len(text), dtype=np.intp)
    codes[order] = np.cumsum(starts) - 1
    return codes, out(ordered.filter(pa.array(starts)))


def is_blank(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT or (isinstance(value, str) and not value.strip()):
        return True
    return False


def excel_error_text(value: object) -> str | None:
    """The error value's text (e.g. '#N/A') if the cell held an Excel error, else None."""
    if isinstance(value, str) and value.strip().upper() in _EXCEL_ERRORS:
        return value.strip().upper()
    name = type(value).__name__
    if name in ("CellError", "ErrorValue"):  # xlwings/pywin32 error objects
        return str(value)
    return None


# Units a ledger states in its amount header or in a cell ('12.5万', '1亿'): amounts are scaled to
# currency units (元) first and rounded to the cent after, so 8.3442 under 金额(万元) is 83,442.00.
CELL_UNITS = {"亿": 10**8, "万": 10**4}
# Excel shows, compares and rounds a number by its first 15 significant digits: that decimal is the
# amount a float cell holds (0.1 + 0.2 is 0.3, 2.675 is 2.675 though its binary value is below it).
SHOWN_DIGITS = 15
# Per-row notes about amounts rounded to the cent; past this many, one note counts the rest.
ROUNDED_NOTES = 1000


@dataclass(frozen=True)
class MoneyColumn:
    """A column of amounts as int64 cents. `problems`: position -> why the cell cannot be used
    (its cents are 0); `rounded`: position -> note for amounts finer than a cent, rounded half-up."""

    cents: np.ndarray
    problems: dict[int, str]
    rounded: dict[int, str]


def parse_money_cents(value: object, scale: int = 1) -> int:
    """One amount -> integer cents, in units of `scale` (a header's 万元: 10,000) unless the text
    states its own unit ('12.5万', '1亿'). Scaled first, rounded half-up at the cent after.
    Raises ValueError with a user-facing reason."""
    return _amount_cents(value, scale)[0]


def _amount_cents(value: object, scale: int) -> tuple[int, bool]:
    """(cents, finer than a cent before rounding) of one cell."""
    err = excel_error_text(value)
    if err:
        raise ValueError(f"cell holds the error value {err}")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a TRUE/FALSE value, not an amount")
    if isinstance(value, (int, np.integer)):
        return _decimal_to_cents(Decimal(int(value)) * scale)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return _decimal_to_cents(shown_decimal(float(value)) * scale)
    if isinstance(value, Decimal):
        return _decimal_to_cents(value * scale)
    amount, own_unit = _text_amount(str(value))
    return _decimal_to_cents(amount if own_unit else amount * scale)


def units(cents):
    """Integer cents -> currency units (float64) for display and Excel cells: 123456 -> 1234.56.
    The one conversion that way; `parse_money_cents` is the one back.

    The result is the float nearest to the exact amount (cents / 100 correctly rounded), so for
    every amount up to MAX_AMOUNT_CENTS (10^15 cents: at most 15 significant digits) Excel, which
    shows 15 significant digits, shows exactly the decimal amount, and `parse_money_cents` reads
    the float back as the same cents. A scalar gives a float; an array, Series or list a float64
    array (NaN stays NaN, for columns of floats)."""
    if np.ndim(cents) == 0 and not isinstance(cents, np.ndarray):
        if isinstance(cents, (float, np.floating)):
            return float(cents) / 100
        return int(cents) / 100  # Python's int / int is correctly rounded at any size
    values = np.asarray(cents)
    if values.dtype.kind not in "iuf":
        values = values.astype("float64")
    return values.astype("float64", copy=False) / 100


def shown_decimal(value: float) -> Decimal:
    """The decimal Excel shows for a float: its first 15 significant digits."""
    return Decimal(format(value, f".{SHOWN_DIGITS}g"))


def _decimal_to_cents(amount: Decimal) -> tuple[int, bool]:
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a finite number")
    if abs(amount) * 100 >= MAX_AMOUNT_CENTS:
        raise ValueError(_too_large(amount))
    exact = amount * 100
    cents = exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(cents), cents != exact


THOUSANDS_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def _text_amount(raw: str) -> tuple[Decimal, bool]:
    """Amount text -> (exact decimal amount, whether the text stated its own unit)."""
    text = normalize_text(raw).replace(" ", "")
    if not text:
        raise ValueError("amount is blank")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    text = _CURRENCY.sub("", text)
    if text.endswith("-") and not text.startswith("-"):  # some ERPs put the sign last
        negative, text = not negative, text[:-1]
    unit = CELL_UNITS.get(text[-1:]) if text else None
    if unit:
        text = text[:-1]
    if "," in text and not THOUSANDS_GROUPED.fullmatch(text):  # '1.234,56' or '1,23' would be misread
        raise ValueError(f"amount {_quote(raw)}: commas may only group thousands (1,234.56); "
                         "a decimal comma is not accepted")
    text = text.replace(",", "")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
        raise ValueError(f"amount {_quote(raw)} is not a number")
    try:
        amount = Decimal(text) * (unit or 1)
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise ValueError(f"amount {_quote(raw)} is not a number") from exc
    return (-amount if negative else amount), unit is not None


def _quote(raw: object) -> str:
    text = str(raw)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def money_column_cents(values: pd.Series, scale: int = 1) -> tuple[np.ndarray, dict[int, str]]:
    """`money_column` without the rounding notes: (cents, {position: reason})."""
    column = money_column(values, scale)
    return column.cents, column.problems


def money_column(values: pd.Series, scale: int = 1) -> MoneyColumn:
    """A whole column of amounts in units of `scale` -> exact cents, vectorized for numbers.
    Every cell follows `parse_money_cents`: scaled, then rounded half-up at the cent."""
    dtype = values.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if values.hasnans:  # pandas' nullable Int64 with blanks: judged as floats, blanks reported
            return _float_column(values.to_numpy(dtype="float64", na_value=np.nan), scale)
        ints = values.to_numpy(dtype="int64")
        if (np.abs(ints) < MAX_AMOUNT_CENTS // (100 * scale)).all():
            return MoneyColumn(ints * (100 * scale), {}, {})
        return _cell_by_cell(values.astype(object), scale)
    if pd.api.types.is_float_dtype(dtype):
        return _float_column(values.to_numpy(dtype="float64", na_value=np.nan), scale)
    return _cell_by_cell(values, scale)


def _cell_by_cell(values: pd.Series, scale: int) -> MoneyColumn:
    """Each distinct cell parsed once (ledgers repeat amounts), then spread to its rows."""
    codes, uniques = factorize_cells(values)
    cents = np.zeros(len(uniques) + 1, dtype=np.int64)  # the extra slot serves blanks (code -1)
    finer = np.zeros(len(uniques) + 1, dtype=bool)
    reasons = {-1: "amount is blank"}
    for k, raw in enumerate(uniques):
        try:
            cents[k], finer[k] = _amount_cents(raw, scale)
        except ValueError as exc:
            reasons[k] = str(exc)
    problems = {int(pos): reasons[int(codes[pos])]
                for pos in np.flatnonzero(np.isin(codes, list(reasons)))}
    rounded = _rounding_notes(np.flatnonzero(finer[codes]), lambda pos: uniques[codes[pos]],
                              cents[codes], scale)
    return MoneyColumn(cents[codes], problems, rounded)


def _float_column(floats: np.ndarray, scale: int) -> MoneyColumn:
    """Floats as Excel shows them (15 significant digits), scaled and rounded half-up at the cent,
    in integer arithmetic; the few values float arithmetic cannot decide go one by one. In place
    where it can: a large ledger's column is tens of megabytes."""
    scaled = np.abs(floats)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled *= float(100 * scale)
        bad = ~(scaled < MAX_AMOUNT_CENTS)  # NaN and inf fail the test too
    problems = {int(i): _float_problem(floats[i], scale) for i in np.flatnonzero(bad)}
    scaled[bad] = 0.0
    cents, rest = _whole_cents(scaled)
    finer = np.zeros(len(floats), dtype=bool)
    if len(rest):  # amounts finer than a cent, or too close to one for the quick test
        part = np.abs(floats[rest])
        digits, exponent, unsure = _shown_significand(part)
        cents[rest], finer[rest] = _digits_to_cents(digits, exponent - (SHOWN_DIGITS - 1) + _power_of_ten(100 * scale))
        for pos, value in zip(rest[unsure], part[unsure]):
            cents[pos], finer[pos] = _decimal_to_cents(shown_decimal(float(value)) * scale)
    np.negative(cents, out=cents, where=floats < 0)
    rounded = _rounding_notes(np.flatnonzero(finer), lambda pos: floats[pos], cents, scale)
    return MoneyColumn(cents, problems, rounded)


def _whole_cents(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The quick test ledgers almost always pass, on |x| x scale x 100 (changed in place): where it
    is a whole number n up to float error (within 4e-16 of itself: a float's product errs by at
    most 2.3e-16), the decimal n cents has at most 15 digits and lies within half a unit of x's
    15th digit (5e-16 of x), so it is the decimal Excel shows: n cents exactly, nothing rounded.
    Returns the cents and the positions left for the exact path."""
    whole = np.rint(scaled)
    off = np.subtract(scaled, whole, out=np.empty_like(scaled))
    np.abs(off, out=off)
    scaled *= 4e-16
    rest = np.flatnonzero(off > scaled)
    del off
    return whole.astype(np.int64), rest


def _power_of_ten(number: int) -> int:
    exponent = len(str(number)) - 1
    if number != 10**exponent:
        raise ValueError(f"an amount unit must be a power of ten, not {number}")
    return exponent


_FLOAT_POWERS = np.array([float(10**k) for k in range(23)])  # exact: 10^22 is the last such float
_INT_POWERS = np.array([10**k for k in range(19)], dtype=np.int64)


def _shown_significand(magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each value as digits x 10^(exponent - 14), digits its first 15 significant digits (an
    integer in [10^14, 10^15); 0 for 0). `unsure` marks values whose 16th digit sits too close to
    a 5 for float arithmetic to round (and values beyond 10^+-22): they are read by Decimal."""
    zero = magnitude == 0
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.where(zero, 1.0, magnitude))).astype(np.int64)
    digits, unsure = _digits_at(magnitude, exponent)
    off = ((digits >= 10**SHOWN_DIGITS) | (digits < 10**(SHOWN_DIGITS - 1))) & ~zero
    if off.any():  # log10 can land one off beside a power of ten
        exponent[off] += np.where(digits[off] >= 10**SHOWN_DIGITS, 1, -1)
        digits[off], unsure[off] = _digits_at(magnitude[off], exponent[off])
    digits[zero], exponent[zero], unsure[zero] = 0, SHOWN_DIGITS - 1, False
    return digits, exponent, unsure


def _digits_at(magnitude: np.ndarray, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shift = (SHOWN_DIGITS - 1) - exponent
    unsure = np.abs(shift) > 22
    power = _FLOAT_POWERS[np.minimum(np.abs(shift), 22)]
    scaled = np.where(shift >= 0, magnitude * power, magnitude / power)  # each correctly rounded
    # scaled < 10^15 < 2^50, so its error is below 1/16: a fraction that far from .5 rounds surely
    unsure |= np.abs(scaled - np.floor(scaled) - 0.5) < 0.07
    return np.floor(scaled + 0.5).astype(np.int64), unsure


def _digits_to_cents(digits: np.ndarray, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """digits x 10^exponent cents, rounded half-up to whole cents, and whether that rounded."""
    cents = np.zeros(len(digits), dtype=np.int64)
    finer = np.zeros(len(digits), dtype=bool)
    up = exponent >= 0  # bounded: digits x 10^exponent stays below the amount limit
    cents[up] = digits[up] * _INT_POWERS[np.minimum(exponent[up], 18)]
    down = np.flatnonzero(~up & (exponent >= -18))
    divisor = _INT_POWERS[-exponent[down]]
    cents[down] = (digits[down] + divisor // 2) // divisor
    finer[down] = digits[down] % divisor != 0
    tiny = ~up & (exponent < -18)  # below 10^-3 of a cent: rounds to 0
    finer[tiny] = digits[tiny] != 0
    return cents, finer


def _rounding_notes(positions: np.ndarray, shown, cents: np.ndarray, scale: int) -> dict[int, str]:
    """A note per amount rounded to the cent (the first ROUNDED_NOTES of them; the last note
    counts the rest), naming the value as written and the amount it became."""
    unit = f" x {scale:,}" if scale != 1 else ""
    notes = {int(pos): f"amount {_shown_amount(shown(pos))}{unit} is finer than a cent: rounded "
                       f"half-up to {units(cents[pos]):,.2f} / 金额精确到分（四舍五入）"
             for pos in positions[:ROUNDED_NOTES]}
    if len(positions) > ROUNDED_NOTES:
        last = int(positions[ROUNDED_NOTES - 1])
        notes[last] += f"; {len(positions) - ROUNDED_NOTES:,} more amounts after this row were rounded too"
    return notes


def _shown_amount(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return format(float(value), f".{SHOWN_DIGITS}g")
    return _quote(value)


def _too_large(value) -> str:
    return f"amount {value:,.2f} is implausibly large (limit {units(MAX_AMOUNT_CENTS):,.0f})"


def _float_problem(value: float, scale: int = 1) -> str:
    if np.isnan(value):
        return "amount is blank"
    if not np.isfinite(value):
        return f"{value} is not a finite number"
    return _too_large(float(value) * scale)



def factorize_cells(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize, except that TRUE/FALSE stay apart from 1 and 0 (Python holds True == 1, so
    plain factorize would give a TRUE cell the parse of a 1 above it)."""
    if _holds_no_bools(values.dtype):  # spares a per-cell look at columns of ten million rows
        return pd.factorize(values, use_na_sentinel=True)
    flags = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool) if len(values) else None
    if flags is None or not flags.any():
        return pd.factorize(values, use_na_sentinel=True)
    keys = values.where(~flags, values.map(lambda v: ("TRUE/FALSE", bool(v))))
    codes, _ = pd.factorize(keys, use_na_sentinel=True)
    present = np.flatnonzero(codes >= 0)
    _, first = np.unique(codes[present], return_index=True)  # codes number values by first appearance
    return codes, values.to_numpy(dtype=object)[present[first]]


def _holds_no_bools(dtype) -> bool:
    """Typed columns (text, non-bool numbers, dates) cannot hold a TRUE/FALSE cell."""
    api = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):  # factorized by codes: judged by what the categories hold
        return api.is_string_dtype(dtype.categories.dtype) and not api.is_object_dtype(dtype.categories.dtype)
    if api.is_object_dtype(dtype) or api.is_bool_dtype(dtype):
        return False
    return api.is_string_dtype(dtype) or api.is_numeric_dtype(dtype) or api.is_datetime64_any_dtype(dtype)


def _blank_reason(parse) -> str:
    """What `parse` says of a blank cell ("date is blank"), so a blank reads the same whether the
    column came typed (a Parquet date) or as text."""
    try:
        parse("")
    except (ValueError, TypeError) as exc:
        return str(exc) if isinstance(exc, ValueError) else "value is blank"
    return "value is blank"


def _mapped(values: pd.Series, parse, dtype, fill, as_text: bool = False,
            distinct: dict | None = None, unchanged=None) -> tuple[np.ndarray, dict[int, object]]:
    """Parse each distinct value once (ledgers repeat values a lot), then broadcast.
    `unchanged(uniques)`, if given, marks distinct values known to parse to themselves (a
    vectorized test), which are not passed to `parse`.

    `as_text`: return a pandas string array (what a DataFrame makes of an all-text object
    column anyway) instead of one object pointer per row. `distinct`, if given, receives the
    distinct values ("uniques", numbered by first appearance), their parses ("parsed") and
    whether they are exactly `pd.factorize`'s ("factorize": no TRUE/FALSE kept apart)."""
    codes, uniques = factorize_cells(values)
    parsed, reasons = _parsed_distinct(uniques, parse, dtype, fill, _same_mask(uniques, unchanged))
    parsed = np.append(parsed, np.array([fill], dtype=dtype))  # the extra slot serves blanks (code -1)
    out = pd.array(parsed, dtype="str").take(codes) if as_text else parsed[codes]  # -1 takes the last slot
    if distinct is not None:
        distinct.update(uniques=uniques, parsed=parsed[:-1], factorize=_holds_no_bools(values.dtype))
    return out, _cell_problems(codes, reasons, parse)


def _same_mask(uniques, unchanged) -> np.ndarray | None:
    """`unchanged(uniques)`, the values known to parse to themselves (None: not known)."""
    return np.asarray(unchanged(uniques), dtype=bool) if unchanged is not None and len(uniques) else None


def _parsed_distinct(uniques, parse, dtype, fill, same: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Each distinct value parsed (`fill` where `parse` refuses it), and why each refused one was
    (position -> reason). `same` (`_same_mask`) marks values taken as they are, not parsed."""
    parsed = np.empty(len(uniques), dtype=dtype)
    todo = range(len(uniques))
    if same is not None:
        parsed[same] = np.asarray(uniques, dtype=object)[same]
        todo = np.flatnonzero(~same).tolist()
    reasons: dict[int, str] = {}
    for k in todo:
        try:
            parsed[k] = parse(uniques[k])
        except ValueError as exc:
            parsed[k] = fill
            reasons[k] = str(exc)
    return parsed, reasons


def _cell_problems(codes: np.ndarray, reasons: dict[int, str], parse) -> dict[int, str]:
    """Position -> why, for cells coded -1 (blank) and cells whose code `parse` refused (`reasons`):
    blanks first, then the refused cells by code in `reasons`' order, each in row order."""
    problems: dict[int, str] = {}
    if (codes < 0).any():
        blank_reason = _blank_reason(parse)
        problems.update((int(pos), blank_reason) for pos in np.flatnonzero(codes < 0))
    if reasons:
        refused = np.fromiter(reasons, dtype=np.int64)
        bad = np.flatnonzero(np.isin(codes, refused))
        rank = dict(zip(refused.tolist(), range(len(refused))))
        order = np.argsort([rank[int(code)] for code in codes[bad]], kind="stable")
        problems.update((int(pos), reasons[int(codes[pos])]) for pos in bad[order])
    return problems


def _mapped_categories(values: pd.Series, parse, step: str, fill: str, distinct: dict | None = None,
                       unchanged=None) -> tuple[pd.Categorical, dict[int, str]]:
    """`_mapped(..., as_text=True)` for a text categorical: its categories parsed (`step` names
    `parse`, for `per_dictionary`: slices of one column share the work), then its rows recoded by
    one take. Categories no row uses are parsed too, and stay categories: codes, not text, are
    what rows hold, and `distinct` receives only the values the rows hold."""
    categories = values.cat.categories
    recode, dtype, reasons = per_dictionary(categories, step,
                                            lambda: _parsed_categories(categories, parse, fill, unchanged))
    codes = values.cat.codes.to_numpy()
    out = pd.Categorical.from_codes(recode[codes], dtype=dtype, validate=False)
    if distinct is not None:  # as pd.factorize gives them: by first appearance
        used = pd.unique(codes[codes >= 0])
        parsed = dtype.categories.take(recode[used])  # each one's parse (or `fill`)
        distinct.update(uniques=categories.take(used), parsed=parsed, factorize=_holds_no_bools(values.dtype))
    return out, _cell_problems(codes, reasons, parse)


def _parsed_categories(categories: pd.Index, parse, fill: str, unchanged) -> tuple:
    """Every category parsed: each one's code in the parsed categorical (and a last slot, code -1,
    for `fill`), its dtype, and the reason for each category `parse` refused (position -> why)."""
    held = pd.Series(categories)
    same = _same_mask(held, unchanged)
    if unchanged is not None and (same is None or same.all()):  # the usual case: the categories are
        return (*category_codes(pd.Index(categories, copy=False), fill), {})  # their own parses, as held
    parsed, reasons = _parsed_distinct(held, parse, object, fill, same)
    recode, dtype = category_codes(parsed, fill)
    return recode, dtype, reasons


def parse_date(value: object) -> pd.Timestamp:
    """Date from a datetime, an Excel serial number or text (2024-03-01, 2024/3/1, 2024年3月1日, 20240301)."""
    err = excel_error_text(value)
    if err:
        raise ValueError(f"cell holds the error value {err}")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, (pd.Timestamp, datetime, date, np.datetime64)):
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValueError("date is blank")
        return _in_range(stamp.normalize())
    if isinstance(value, (int, float, np.integer, np.floating)):
        if float(value).is_integer() and 10_000_101 <= value <= 99_991_231:
            return _text_to_date(str(int(value)))  # 20240301 read as a number (a CSV column of them)
        return _serial_to_date(float(value))
    return _text_to_date(str(value))


def _serial_to_date(serial: float) -> pd.Timestamp:
    if not math.isfinite(serial) or serial < 1 or serial > EXCEL_MAX_SERIAL:
        raise ValueError(f"{serial:g} is not a date (Excel serial numbers run from 1 to {EXCEL_MAX_SERIAL})")
    if serial > (LAST_DATE - EXCEL_EPOCH).days:
        raise ValueError(f"{serial:.0f} is a date after {LAST_DATE:%Y-%m-%d} ({_DATE_RANGE})")
    return EXCEL_EPOCH + pd.Timedelta(days=int(serial))


def _in_range(stamp: pd.Timestamp) -> pd.Timestamp:
    if not FIRST_DATE <= stamp <= LAST_DATE:
        raise ValueError(f"date {stamp:%Y-%m-%d} is out of range ({_DATE_RANGE})")
    return stamp


_DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


def _text_to_date(raw: str) -> pd.Timestamp:
    text = normalize_text(raw)
    if not text:
        raise ValueError("date is blank")
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    elif re.fullmatch(r"\d+(\.\d+)?", text):
        return _serial_to_date(float(text))
    match = _DATE_TEXT.match(text)
    if not match:
        raise ValueError(f"date {_quote(raw)} is not understood (write it as YYYY-MM-DD)")
    year, month, day = (int(g) for g in match.groups())
    try:
        stamp = pd.Timestamp(year=year, month=month, day=day)
    except ValueError as exc:
        raise ValueError(f"date {_quote(raw)} does not exist ({exc})") from exc
    return _in_range(stamp)


def date_column(values: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
    """A whole column -> (datetime64[ns] array, {position: reason})."""
    values = _numpy_dates(values)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        arr, problems = datetime_days(values)
        problems.update({int(i): "date is blank" for i in np.flatnonzero(np.isnat(arr)) if int(i) not in problems})
        return arr, problems
    nat = np.datetime64("NaT", "ns")
    out, problems = _mapped(values, lambda v: parse_date(v).to_datetime64(), "datetime64[ns]", nat)
    return out, problems


def _numpy_dates(values: pd.Series) -> pd.Series:
    """Arrow date columns (as Dask and Spark hand Parquet dates over) as NumPy datetimes."""
    dtype = values.dtype
    if not (isinstance(dtype, pd.ArrowDtype) and dtype.kind == "M"):
        return values
    import pyarrow as pa

    arrow = pa.array(values.array)
    if pa.types.is_date(arrow.type):
        arrow = arrow.cast(pa.timestamp("ms"))
    elif arrow.type.tz is not None:
        return values  # a time zone: datetime_days drops it
    return pd.Series(arrow.to_numpy(zero_copy_only=False), index=values.index, name=values.name)


def datetime_days(values: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
    """A datetime column -> (datetime64[ns] at midnight of each day, time zone dropped, NaT kept;
    {position: reason} for dates out of range, which become NaT)."""
    values = _numpy_dates(values)
    stamps = pd.to_datetime(values).dt.tz_localize(None) if getattr(values.dt, "tz", None) else values
    days = stamps.to_numpy()  # in the column's own unit: going to days first spares one full pass
    if days.dtype.kind != "M":
        days = stamps.to_numpy(dtype="datetime64[ns]")
    numbers, blank = _day_numbers(days)  # this function's own array: changed in place
    days = numbers.view("datetime64[D]")
    if blank is not None:  # a day in range stands in for NaT (a due date is blank on every receipt):
        numbers[blank] = _FIRST_DAY.astype("int64")  # the checks and scaling then need no mask
    problems = {}
    if not _all_in_range(numbers):
        outside = (days < _FIRST_DAY) | (days > _LAST_DAY)
        problems = {int(i): f"date {days[i]} is out of range ({_DATE_RANGE})" for i in np.flatnonzero(outside)}
        numbers[outside] = _FIRST_DAY.astype("int64")
        blank = outside if blank is None else blank | outside
    numbers *= _NS_PER_DAY  # every day is in range now, so nanoseconds cannot overflow
    if blank is not None:
        numbers[blank] = _NAT
    return numbers.view("datetime64[ns]"), problems


_NAT = np.iinfo("int64").min  # NaT's integer, in every unit
_NS_PER_DAY = 86_400 * 10**9
_PER_DAY = {"s": 86_400, "ms": 86_400 * 10**3, "us": 86_400 * 10**6, "ns": _NS_PER_DAY}


def whole_days(stamps: np.ndarray) -> np.ndarray:
    """`stamps.astype("datetime64[D]")` (the day each instant falls on), by integer floor division:
    numpy's datetime cast takes several times as long on millions of rows."""
    days, blank = _day_numbers(stamps)
    if blank is not None:
        days[blank] = _NAT
    return days.view("datetime64[D]")


def _day_numbers(stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Each instant's day as an integer since 1970 (a new array), and where `stamps` are NaT (None:
    nowhere), their days left unspecified for the caller to fill."""
    blank = np.isnat(stamps) if _has_nat(stamps) else None
    unit = np.datetime_data(stamps.dtype)[0]
    if unit not in _PER_DAY:
        return stamps.astype("datetime64[D]").view("int64"), blank
    return stamps.view("int64") // _PER_DAY[unit], blank


def _has_nat(stamps: np.ndarray) -> bool:
    return len(stamps) > 0 and int(stamps.view("int64").min()) == _NAT


_FIRST_DAY, _LAST_DAY = (stamp.to_datetime64().astype("datetime64[D]") for stamp in (FIRST_DATE, LAST_DATE))


def _all_in_range(days: np.ndarray) -> bool:
    """No day (integers since 1970, no NaT among them) outside FIRST_DATE..LAST_DATE, by two reductions."""
    if not len(days):
        return True
    return bool(days.min() >= _FIRST_DAY.astype("int64") and days.max() <= _LAST_DAY.astype("int64"))


def text_column(values: pd.Series, distinct: dict | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Names and codes: normalized text; blanks, error values and over-long text are reported.
    `distinct`: see `_mapped`."""
    def parse(raw: object) -> str:
        err = excel_error_text(raw)
        if err:
            raise ValueError(f"cell holds the error value {err}")
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # codes typed as numbers come back from Excel as floats
        text = normalize_text(raw)
        if not text:
            raise ValueError("value is blank")
        if len(text) > MAX_TEXT:
            raise ValueError(f"text is {len(text)} characters long (at most {MAX_TEXT})")
        return text
    if is_text_categorical(values):  # the reader's dictionary parsed once, for every slice of it
        return _mapped_categories(values, parse, "text", "", distinct, unchanged=_parses_to_itself)
    # Text already held as a pandas string column stays one: no Python object per row.
    return _mapped(values, parse, object, "", as_text=is_text_column(values), distinct=distinct,
                   unchanged=_parses_to_itself)


def _parses_to_itself(uniques) -> np.ndarray:
    """Distinct values that `text_column` would return unchanged: plain text (already normalized,
    not blank) that is not too long and cannot be an error value (those start with '#')."""
    texts = uniques if isinstance(uniques, pd.Series) else pd.Series(np.asarray(uniques, dtype=object))
    same = np.array(plain_text_mask(texts), dtype=bool)  # writable
    if same.any():
        strings = texts[same]
        same[same] = ((strings.str.len() <= MAX_TEXT) & ~strings.str.startswith("#")).to_numpy(dtype=bool)
    return same
