"""The categorical helpers the partition sums rely on: the union of categoricals' categories
(Arrow's hash) and a categorical's categories sorted (Arrow's sort) must give what pandas' own
union and sorted factorize give, missing cells included; the shortcuts taken for categories
known to be distinct or shared must give what the long way gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.values import sorted_categorical, text_categorical, text_cells, union_codes

# text as ledgers hold it: codes, Chinese names, look-alikes that differ by a space or case
cells = st.one_of(st.none(), st.sampled_from(["A", "a", "A ", "客户甲", "客户乙", "", "0012", "12", "\u00e9"]),
                  st.text(max_size=4))
columns = st.lists(st.lists(cells, max_size=12), min_size=1, max_size=4)


def _categorical(values: list) -> pd.Series:
    return pd.Series(pd.Categorical(values), dtype="category")


@settings(max_examples=200, deadline=None)
@given(columns)
def test_union_codes_name_every_row_by_its_own_text(parts):
    series = [_categorical(values) for values in parts]
    codes, categories = union_codes(series)
    rows = [v for values in parts for v in values]
    assert len(codes) == len(rows)
    assert categories.is_unique
    for code, value in zip(codes, rows):
        assert (code == -1) if value is None else categories[code] == value


@settings(max_examples=200, deadline=None)
@given(columns, st.data())
def test_union_codes_of_columns_sharing_categories_are_each_columns_own(parts, data):
    """A partial's sums and names share one categories array: hashed once, each row still named by its text."""
    shared = pd.Index(pd.unique(pd.Series([v for values in parts for v in values if v is not None], dtype=object)),
                      dtype=object)
    series = [pd.Series(pd.Categorical(values, categories=shared)) for values in parts]
    series += [series[data.draw(st.integers(0, len(series) - 1))] for _ in range(data.draw(st.integers(0, 3)))]
    codes, categories = union_codes(series)
    rows = [v for column in series for v in column.tolist()]
    assert len(codes) == len(rows) and categories.is_unique
    for code, value in zip(codes, rows):
        assert (code == -1) if pd.isna(value) else categories[code] == value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=3), unique=True, max_size=8), st.data())
def test_distinct_labels_give_the_categorical_the_long_way_gives(labels, data):
    """Labels known to be distinct (a dictionary normalizing left unchanged) are the categories as they stand."""
    codes = np.array(data.draw(st.lists(st.integers(-1, len(labels) - 1), max_size=12)), dtype=np.intp)
    fill = data.draw(st.sampled_from(["", *labels[:1]]))
    quick = text_categorical(codes, labels, fill=fill, sort=False, distinct=True)
    slow = text_categorical(codes, labels, fill=fill, sort=False)
    assert list(quick.astype(object)) == list(slow.astype(object))
    assert list(quick.categories) == list(slow.categories) and pd.Index(quick.categories).is_unique
    assert list(text_cells(pd.Series(quick), np.arange(len(codes)))) == list(quick.astype(object))


@settings(max_examples=200, deadline=None)
@given(st.lists(cells, max_size=20))
def test_sorted_categorical_is_pandas_sorted_factorize(values):
    column = _categorical(values)
    ordered = sorted_categorical(column)
    assert list(ordered.cat.categories) == sorted(ordered.cat.categories)
    assert ordered.astype(object).where(ordered.notna(), None).tolist() == values
    expected_codes, expected = pd.factorize(pd.Series(values, dtype=object), sort=True)
    used = np.unique(ordered.cat.codes[ordered.cat.codes >= 0])
    assert list(ordered.cat.categories[used]) == list(expected)


def _reader_categorical(values: list) -> pd.Series:
    """A text column as the file readers give it: Arrow-held categories in order of appearance."""
    present = [v for v in values if v is not None]
    categories = pd.Index(pd.unique(pd.Series(present, dtype=object)), dtype="str")
    return pd.Series(pd.Categorical(values, categories=categories))


messy = st.one_of(cells, st.sampled_from(["#N/A", " 客户甲", "Ａ", "x" * 300, "a  b"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(messy, max_size=20))
def test_text_column_of_a_readers_categorical_is_the_cells_own(values):
    """The categorical path parses each category once for all slices: cells, problems and the
    distinct spellings are those of the same cells as Python objects."""
    from crm_core.values import text_column

    seen, expected_seen = {}, {}
    got, problems = text_column(_reader_categorical(values), seen)
    expected, expected_problems = text_column(pd.Series(values, dtype=object), expected_seen)
    assert list(np.asarray(got, dtype=object)) == list(np.asarray(expected, dtype=object))
    assert problems == expected_problems
    assert list(np.asarray(seen["uniques"], dtype=object)) == list(np.asarray(expected_seen["uniques"], dtype=object))
    assert list(np.asarray(seen["parsed"], dtype=object)) == list(np.asarray(expected_seen["parsed"], dtype=object))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=3), max_size=8), st.booleans(), st.booleans(), st.sampled_from(["", "A"]))
def test_labels_held_as_arrow_text_code_as_python_strings_do(labels, sort, distinct, fill):
    from crm_core.values import category_codes

    if distinct:
        labels = list(dict.fromkeys(labels))
    codes, dtype = category_codes(pd.array(labels, dtype="str"), fill, sort=sort, distinct=distinct)
    expected_codes, expected = category_codes(np.array(labels, dtype=object), fill, sort=sort, distinct=distinct)
    assert codes.tolist() == expected_codes.tolist()
    assert list(dtype.categories) == list(expected.categories)


@settings(max_examples=100, deadline=None)
@given(st.lists(cells, max_size=12), st.data())
def test_text_values_are_text_cells(values, data):
    from crm_core.values import text_values

    column = _reader_categorical(values)
    positions = np.array(data.draw(st.lists(st.integers(0, max(len(values) - 1, 0)), max_size=8)) if values else [],
                         dtype=np.intp)
    got = pd.Series(text_values(column, positions), dtype=object)
    expected = text_cells(column, positions)
    assert [None if pd.isna(v) else v for v in got] == list(expected)
