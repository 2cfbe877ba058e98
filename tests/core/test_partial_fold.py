"""`PartialFold`: partials added one at a time, in file order, reduce to what `combine` makes of
them all at once: the same issues (code, row, column, message, in order), counts, sums, names
and last date, whatever the slicing, and however often the running sums are compacted."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.partition import InvoicesNeeded, PartialFold, _Cells, combine, partition
from crm_core.policy import Policy

CELLS = {
    "date": ["2023-06-30", "2024-01-05", "2024/2/29", "2024年3月1日", "2024-12-30", "2025-02-01", "", "soon"],
    "customer": ["A", " A ", "Ａ", "B公司", "B公司 ", "C", "", "#N/A"],
    "type": ["invoice", "发票", " 收款 ", "receipt", "红字", "gift"],
    "amount": ["100", "99.99", "1,234.56", "0.005", "(10)", "abc", ""],
    "customer_name": ["", "甲", " 甲 ", "乙"],
    "invoice_no": ["", "INV1", " INV1 ", "INV2", "INV3", "INV4"],
}
ROWS = st.lists(st.one_of(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in CELLS.items()}),
                          st.just(dict.fromkeys(CELLS, ""))), max_size=30)


def _slices(table: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    edges = [0, *sorted({min(c, len(table)) for c in cuts}), len(table)]
    return [table.iloc[a:b].reset_index(drop=True) for a, b in zip(edges, edges[1:]) if b > a] or [table]


def _reduced(partials, policy):
    try:
        return combine(partials, policy, "fold.csv")
    except InvoicesNeeded:
        return "invoices needed"


def _folded(partials, policy):
    fold = PartialFold()
    for partial in partials:
        fold.add(partial)
    return _reduced([fold.result()], policy)


def _same(folded, combined) -> None:
    if isinstance(combined, str):
        assert folded == combined
        return
    assert [(i.code, i.row, i.column, i.message) for i in folded.issues] == \
        [(i.code, i.row, i.column, i.message) for i in combined.issues]
    assert (folded.input_rows, folded.blank_rows, folded.rows_used, folded.latest, folded.by_year) == \
        (combined.input_rows, combined.blank_rows, combined.rows_used, combined.latest, combined.by_year)
    key = ["customer", "kind", "bucket"]

    def cells(sums):
        return sums.astype({"customer": object}).sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(cells(folded.sums), cells(combined.sums), check_dtype=False)
    pd.testing.assert_series_equal(folded.names.sort_index(), combined.names.sort_index())
    if combined.rows_used:
        pd.testing.assert_frame_equal(folded.facts(), combined.facts())


@settings(max_examples=150, deadline=None)
@given(ROWS, st.lists(st.integers(0, 30), max_size=6), st.booleans(), st.booleans(),
       st.sampled_from([None, ("2024-03-01", "2025-02-28")]))
def test_folding_partials_one_by_one_is_combining_them_at_once(rows, cuts, compact, tiny_waiting, period):
    """`tiny_waiting`: the running sums compacted after every partial, not only at the end."""
    from crm_core.collection import Period

    table = pd.DataFrame(rows, columns=list(CELLS), dtype=object).replace("", None)
    policy = Policy()
    period = Period(pd.Timestamp(period[0]), pd.Timestamp(period[1])) if period else None
    partials = [partition(part, policy, "fold.csv", period, compact=compact) for part in _slices(table, cuts)]
    original = _Cells.MIN_WAITING
    _Cells.MIN_WAITING = 0 if tiny_waiting else original
    try:
        folded = _folded(partials, policy)
    finally:
        _Cells.MIN_WAITING = original
    _same(folded, _reduced(partials, policy))


def test_a_spelling_merged_across_partials_is_reported_in_order_of_first_appearance():
    table = pd.DataFrame({"date": ["2024-01-05"] * 5, "customer": ["B ", "A", "Ａ", "B", " A "],
                          "type": ["invoice"] * 5, "amount": ["1"] * 5})
    partials = [partition(table.iloc[[i]].reset_index(drop=True)) for i in range(5)]
    fold = PartialFold()
    for partial in partials:
        fold.add(partial)
    messages = [i.message for i in combine([fold.result()]).issues]
    assert messages == [i.message for i in combine(partials).issues]
    assert any("'A', 'Ａ', ' A '" in m for m in messages), messages


def test_a_wrong_header_in_any_partial_is_the_answer():
    good = pd.DataFrame({"date": ["2024-01-05"], "customer": ["A"], "type": ["invoice"], "amount": ["1"]})
    wrong = good.rename(columns={"amount": "sum"})
    folded = PartialFold().add(partition(good)).add(partition(wrong)).add(partition(good)).result()
    assert folded.header_problem
    assert [i.column for i in combine([folded]).errors] == [i.column for i in combine([partition(wrong)]).errors]


@pytest.mark.parametrize("parts", [1, 3])
def test_cells_sum_each_key_once_however_often_they_are_compacted(parts, monkeypatch):
    monkeypatch.setattr(_Cells, "MIN_WAITING", 0)
    rng = np.random.default_rng(parts)
    cells, keys, values = _Cells(), [], []
    for _ in range(parts * 4):
        key = rng.choice(80, 40, replace=False)  # distinct within a batch, as a partial's cells are
        value = rng.integers(-10**12, 10**12, 40)
        cells.add(key, value, value, value)
        keys.append(key)
        values.append(value)
    summed_keys, totals, *_ = cells.total()
    expected = pd.Series(np.concatenate(values)).groupby(np.concatenate(keys)).sum()
    assert dict(zip(summed_keys.tolist(), totals.tolist())) == expected.to_dict()


def test_a_customers_last_name_is_from_its_last_row_across_partials_and_invoices():
    """Numbered invoices' names reach `combine` apart from the fold's names: rows decide."""
    first = pd.DataFrame({"date": ["2024-01-05"] * 2, "customer": ["A", "B"], "type": ["receipt", "invoice"],
                          "amount": ["1", "1"], "customer_name": ["甲", "乙"], "invoice_no": ["", "INV1"]})
    second = pd.DataFrame({"date": ["2024-01-06"] * 2, "customer": ["B", "A"], "type": ["receipt", "invoice"],
                           "amount": ["1", "1"], "customer_name": ["丙", "丁"], "invoice_no": ["", "INV2"]})
    partials = [partition(first, compact=False), partition(second, compact=False)]
    folded = combine([PartialFold().add(partials[0]).add(partials[1]).result()])
    assert folded.names.to_dict() == combine(partials).names.to_dict() == {"A": "丁", "B": "丙"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["", "INV1", "INV2", "INV3", "INV10", "B7"]), min_size=1, max_size=12),
       st.lists(st.integers(0, 12), max_size=3))
def test_invoice_numbers_held_in_chunks_are_judged_as_in_one(numbers, cuts):
    """A CSV reader hands the invoice numbers over in its blocks' chunks: whether they rise, and
    their span, are what the same numbers in one array give."""
    import pyarrow as pa

    edges = sorted({0, len(numbers), *(min(c, len(numbers)) for c in cuts)})
    chunked = pa.chunked_array([pa.array(numbers[a:b], type=pa.string()) for a, b in zip(edges, edges[1:])],
                               type=pa.string())
    table = {"date": ["2024-03-01"] * len(numbers), "customer": ["A"] * len(numbers),
             "type": ["invoice"] * len(numbers), "amount": ["100"] * len(numbers)}
    whole = pa.table({**table, "invoice_no": pa.array(numbers, type=pa.string())}).to_pandas()
    in_chunks = pa.table({**table, "invoice_no": chunked}).to_pandas()
    held = pa.array(in_chunks["invoice_no"].array)
    assert (held.num_chunks if isinstance(held, pa.ChunkedArray) else 1) == len(edges) - 1
    one, other = partition(whole, Policy()), partition(in_chunks, Policy())
    assert (other.compacted, other.invoice_span) == (one.compacted, one.invoice_span)
    rising = [n for n in numbers if n]
    assert one.compacted == all(a < b for a, b in zip(rising, rising[1:]))
