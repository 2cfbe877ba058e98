"""The categorical helpers the partition sums rely on: the union of categoricals' categories
(Arrow's hash) and a categorical's categories sorted (Arrow's sort) must give what pandas' own
union and sorted factorize give, missing cells included."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.values import sorted_categorical, union_codes

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
@given(st.lists(cells, max_size=20))
def test_sorted_categorical_is_pandas_sorted_factorize(values):
    column = _categorical(values)
    ordered = sorted_categorical(column)
    assert list(ordered.cat.categories) == sorted(ordered.cat.categories)
    assert ordered.astype(object).where(ordered.notna(), None).tolist() == values
    expected_codes, expected = pd.factorize(pd.Series(values, dtype=object), sort=True)
    used = np.unique(ordered.cat.codes[ordered.cat.codes >= 0])
    assert list(ordered.cat.categories[used]) == list(expected)
