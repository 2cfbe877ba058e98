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
