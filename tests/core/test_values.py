"""Cell values as ERPs and Excel deliver them: amounts, dates, names."""
import math
import re
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.values import (
    _PLAIN_TEXT,
    _text_factorize,
    date_column,
    datetime_days,
    money_column,
    money_column_cents,
    normalize_text,
    parse_date,
    parse_money_cents,
    plain_text_mask,
    text_column,
    whole_days,
)


@pytest.mark.parametrize("raw, cents", [
    (1234, 123400), (1234.5, 123450), ("1,234.50", 123450), ("¥1,234.50", 123450),
    ("￥１，２３４．５０", 123450), ("RMB 1 234", 123400), ("(500.00)", -50000), ("500-", -50000),
    ("12.5万", 12_500_000), ("-3万", -3_000_000), ("1.005", 101), (0.1 + 0.2, 30), ("1e3", 100000),
    ("  42 元", 4200), ("$7", 700),
])
def test_money_text_is_understood(raw, cents):
    assert parse_money_cents(raw) == cents


@pytest.mark.parametrize("raw, reason", [
    ("abc", "not a number"), ("", "blank"), ("#N/A", "#N/A"), ("#DIV/0!", "#DIV/0!"),
    (math.inf, "finite"), (float("nan"), "finite"), (True, "TRUE/FALSE"), ("1.2.3", "not a number"),
    ("12万5", "not a number"),
])
def test_bad_money_is_refused_with_a_reason(raw, reason):
    with pytest.raises(ValueError, match=reason.replace("$", r"\$").replace("/", "/")):
        parse_money_cents(raw)


def test_money_column_reports_positions():
    cents, problems = money_column_cents(pd.Series(["1,000", "x", None, 5], dtype=object))
    assert list(cents) == [100000, 0, 0, 500]
    assert set(problems) == {1, 2}


def test_float_column_fast_path_rounds_to_the_cent():
    cents, problems = money_column_cents(pd.Series([1.005, -2.675, 0.1 + 0.2, np.nan]))
    assert list(cents[:3]) == [101, -268, 30]
    assert problems == {3: "amount is blank"}


@pytest.mark.parametrize("raw, expected", [
    ("2024-03-01", "2024-03-01"), ("2024/3/1", "2024-03-01"), ("2024年3月1日", "2024-03-01"),
    ("20240301", "2024-03-01"), (45352, "2024-03-01"), (45352.75, "2024-03-01"),
    ("２０２４－０３－０１", "2024-03-01"), (pd.Timestamp("2024-03-01 13:45"), "2024-03-01"),
    ("2024-03-01 08:30:00", "2024-03-01"),
])
def test_dates_in_many_forms(raw, expected):
    assert parse_date(raw) == pd.Timestamp(expected)


@pytest.mark.parametrize("raw, reason", [
    ("2024-02-30", "does not exist"), ("03/01/2024", "not understood"), (0, "serial"),
    (3_000_000, "serial"), ("#N/A", "#N/A"), ("", "blank"), ("yesterday", "not understood"),
])
def test_impossible_or_ambiguous_dates_are_refused(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(raw)


@pytest.mark.parametrize("raw", ["3024-03-01", "1024-03-01", 2_958_465, pd.Timestamp("2300-01-01"),
                                 np.datetime64("3000-01-01")])
def test_dates_outside_the_accepted_range_are_refused_not_wrapped(raw):
    with pytest.raises(ValueError, match="range|after"):
        parse_date(raw)


def test_typed_date_columns_report_out_of_range_dates():
    """A Parquet or Excel date column with a typo such as 3024 is reported, never wrapped round
    to a date in the 19th century (nanosecond overflow)."""
    typed = pd.Series(pd.array(["2024-03-01", "3024-03-01", None], dtype="datetime64[ms]"))
    dates, problems = date_column(typed)
    assert dates[0] == np.datetime64("2024-03-01")
    assert np.isnat(dates[1]) and "3024-03-01 is out of range" in problems[1]
    assert problems[2] == "date is blank"


def test_date_column_reports_positions():
    dates, problems = date_column(pd.Series(["2024-01-01", "bad", None], dtype=object))
    assert dates[0] == np.datetime64("2024-01-01")
    assert set(problems) == {1, 2}


def test_names_are_normalized():
    assert normalize_text("  ＡＢＣ　 医药  ") == "ABC 医药"
    names, problems = text_column(pd.Series(["x" * 300, 1001.0, "#REF!"], dtype=object))
    assert names[1] == "1001"
    assert "300 characters" in problems[0] and "#REF!" in problems[2]


# Texts an export may hold: plain codes, spaces in every position, full-width and control
# characters, error values, over-long text, blanks.
_TEXTS = st.one_of(st.none(), st.sampled_from(["", " ", "INV-1", "A 1", " A1", "A1 ", "A  1", "#N/A", "#x",
                                                "ＡＢ", "客户 甲", "a\x7f", "tab\t", "x" * 256, "é"]),
                   st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
                   st.text(alphabet="AB1-# ", max_size=5))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXTS, max_size=12), st.integers(0, 3))
def test_vectorized_text_shortcuts_agree_with_normalize_text(values, start):
    """The byte-buffer and plain-text shortcuts decide exactly what normalize_text would."""
    for dtype in ("str", object):
        column = pd.Series(values, dtype=dtype).iloc[start:]  # a slice: Arrow offsets not at zero
        plain = plain_text_mask(column)
        expected = np.array([isinstance(v, str) and re.fullmatch(_PLAIN_TEXT, v) is not None for v in column],
                            dtype=bool)
        assert (plain == expected).all()
        assert all(normalize_text(v) == v != "" for v in column[plain])  # plain means already normal
        names, problems = text_column(column)
        for pos, raw in enumerate(column):
            clean = normalize_text(raw)
            bad = not clean or len(clean) > 255 or clean.upper() in {"#N/A", "#REF!"}
            assert (pos in problems) == bad or clean.startswith("#")
            if not bad and not clean.startswith("#"):
                assert names[pos] == clean


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), max_size=30), st.sampled_from(["s", "ms", "us", "ns"]),
       st.booleans())
def test_whole_days_is_numpys_cast_to_days(numbers, unit, with_nat):
    """The integer shortcut floors to the day exactly as numpy's cast does, before 1970 too."""
    stamps = np.array(numbers + ([np.iinfo("int64").min] if with_nat else []), dtype="int64").view(f"M8[{unit}]")
    assert np.array_equal(whole_days(stamps), stamps.astype("datetime64[D]"), equal_nan=True)


def test_datetime_days_of_typed_columns_with_and_without_blanks():
    for unit in ("s", "ms", "ns"):
        stamps = pd.Series(np.array(["1969-12-31T23:59", "2024-02-29T12:00", "1900-01-01"], dtype=f"M8[{unit}]"))
        days, problems = datetime_days(stamps)
        assert days.dtype == "M8[ns]" and not problems
        assert days.astype(str).tolist()[:2] == ["1969-12-31T00:00:00.000000000", "2024-02-29T00:00:00.000000000"]
        with_blank, _ = datetime_days(pd.concat([stamps, pd.Series([pd.NaT], dtype=stamps.dtype)]))
        assert np.array_equal(with_blank[:3], days) and np.isnat(with_blank[3])


UNITS = [1, 1_000, 10_000, 10**8]


def decimal_cents(amount: Decimal, scale: int) -> int | None:
    """The rule written out with Python's Decimal: scale, then half-up at the cent; None past the limit."""
    exact = amount * scale * 100
    return None if abs(exact) >= 10**15 else int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# Amounts with up to six decimals (at most 15 significant digits, as Excel keeps), and exact
# half-cent ties once scaled.
six_decimals = st.builds(lambda units, places: Decimal(units).scaleb(-places),
                         st.integers(-(10**13), 10**13), st.integers(0, 6)).filter(
    lambda d: len(d.as_tuple().digits) <= 15)
half_cent_ties = st.builds(lambda cents, scale: (Decimal(cents) + Decimal("0.5")) / 100 / scale,
                           st.integers(-(10**11), 10**11), st.sampled_from(UNITS))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(six_decimals, half_cent_ties), min_size=1, max_size=20), st.sampled_from(UNITS),
       st.sampled_from(["float", "text"]))
def test_amounts_under_any_unit_are_scaled_then_rounded_half_up_exactly(amounts, scale, form):
    """Float cells (the column fast path) and text cells alike give Decimal's cents; past the
    limit a problem and 0; every amount finer than a cent after scaling carries a rounding note."""
    cells = [float(a) for a in amounts] if form == "float" else [str(a) for a in amounts]
    column = money_column(pd.Series(cells, dtype="float64" if form == "float" else object), scale)
    for pos, amount in enumerate(amounts):
        expected = decimal_cents(amount, scale)
        assert column.cents[pos] == (0 if expected is None else expected), (amount, scale)
        assert (pos in column.problems) == (expected is None)
        finer = expected is not None and amount * scale * 100 != expected
        assert (pos in column.rounded) == finer, (amount, scale)


@pytest.mark.parametrize("header, cell, cents", [
    ("金额(万元)", 8.3442, 8_344_200), ("金额(万元)", 1.234567, 1_234_567), ("金额（千元）", 1.5, 150_000),
    ("金额(亿元)", 0.0123456789, 123_456_789), ("金额(元)", 47122.5, 4_712_250), ("金额(万元)", "2万", 2_000_000),
    ("金额(万元)", "0.1亿", 1_000_000_000), ("amount", "1亿", 10**10), ("金额(万元)", "1.23456789", 1_234_568),
])
def test_unit_headers_scale_before_rounding(header, cell, cents):
    from crm_core.ledger import normalize_ledger

    raw = pd.DataFrame({"date": ["2024-01-02"], "customer": ["A"], "type": ["invoice"], header: [cell]})
    assert normalize_ledger(raw).rows["amount_cents"].tolist() == [cents]


def test_an_amount_finer_than_a_cent_is_rounded_with_a_warning_naming_the_row():
    from crm_core.issues import IssueCode
    from crm_core.ledger import normalize_ledger

    raw = pd.DataFrame({"date": ["2024-01-02"] * 2, "customer": ["A"] * 2, "type": ["invoice"] * 2,
                        "金额(万元)": [1.0, 1.23456789]})
    ledger = normalize_ledger(raw)
    assert ledger.errors == [] and ledger.rows["amount_cents"].tolist() == [1_000_000, 1_234_568]
    assert [(i.code, i.row, i.column, i.severity) for i in ledger.issues] == [(IssueCode.ROUNDED, 3, "amount", "warning")]
    assert "12,345.68" in ledger.issues[0].message


def test_rounding_notes_stop_at_a_limit_and_count_the_rest(monkeypatch):
    import crm_core.values as values

    monkeypatch.setattr(values, "ROUNDED_NOTES", 3)
    column = money_column(pd.Series([0.001] * 5))
    assert sorted(column.rounded) == [0, 1, 2] and "2 more amounts" in column.rounded[2]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**62), 2**62), st.integers(-30_000, 120_000).map(lambda d: d * 86_400 + 1),
                          st.just(np.iinfo("int64").min)), max_size=30),
       st.sampled_from(["s", "ms", "us", "ns"]))
def test_datetime_days_is_the_plain_rule(numbers, unit):
    """Days by numpy's casts: out of range -> NaT and a problem at its position, NaT stays NaT."""
    scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    numbers = [n if n == np.iinfo("int64").min or abs(n) > 2**62 // scale else n * scale for n in numbers]
    stamps = np.array(numbers, dtype="int64").view(f"M8[{unit}]")
    days, problems = datetime_days(pd.Series(stamps))
    expected = stamps.astype("datetime64[D]")
    with np.errstate(invalid="ignore"):
        outside = (expected < np.datetime64("1899-12-30")) | (expected > np.datetime64("2261-12-31"))
    assert sorted(problems) == np.flatnonzero(outside).tolist()
    expected[outside] = np.datetime64("NaT")
    assert days.dtype == "M8[ns]" and np.array_equal(days, expected.astype("M8[ns]"), equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6),
                          st.integers(-10**9, 10**9).map(lambda c: c / 100),
                          st.sampled_from([0.005, -0.005, 1.005, -2.675, 1e13, -1e13, 9.99e12, -0.0, 0.1 + 0.2])),
                max_size=25), st.sampled_from(UNITS))
def test_float_amounts_round_as_the_written_rule_says(values, scale):
    """Any float, as Excel shows it (15 significant digits), scaled, half away from zero at the
    cent, refused beyond the limit: the vectorized column path against Decimal one by one."""
    floats = np.array(values, dtype="float64")
    column = money_column(pd.Series(floats), scale)
    for pos, value in enumerate(values):
        expected = decimal_cents(Decimal(format(value, ".15g")), scale) if math.isfinite(value) else None
        assert column.cents[pos] == (0 if expected is None else expected), (value, scale)
        assert (pos in column.problems) == (expected is None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4), max_size=30))
def test_text_factorize_is_pandas_factorize(texts):
    """Sorted: Arrow's byte-wise sort of UTF-8 gives Python's order of strings, numbered from 0;
    unsorted: numbered by first appearance. (Python as the judge, not pandas: pandas 2.2 takes
    '\x00' for '' when it factorizes.)"""
    labels = np.array(texts + [""], dtype=object)
    for sort, expected_uniques in ((True, sorted(set(labels))), (False, list(dict.fromkeys(labels)))):
        codes, uniques = _text_factorize(labels, sort)
        assert list(uniques) == expected_uniques
        assert codes.tolist() == [expected_uniques.index(t) for t in labels]
