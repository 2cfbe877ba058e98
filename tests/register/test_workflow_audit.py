"""The audit hash chain: any change to any recorded field of any entry is caught at that entry."""
from __future__ import annotations

from datetime import date

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_app.register.audit import GENESIS, HASHED, WorkflowCode, chain, chain_issues, entry_issues

TEXT = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and " " not in s)
ENTRY = st.fixed_dictionaries({
    "timestamp": st.just("2026-11-02T10:00:00+00:00"), "batch_id": TEXT, "customer": TEXT,
    "old_line_cents": st.integers(0, 10**10), "change_cents": st.integers(-10**8, 10**8),
    "new_line_cents": st.integers(0, 10**10), "reason": TEXT, "requester": TEXT, "approver": TEXT,
    "recorder": TEXT, "request_date": st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    "approval_date": st.dates(date(2020, 1, 1), date(2030, 1, 1)), "override_reason": st.just("")})


def frame(entries) -> pd.DataFrame:
    return pd.DataFrame([{**e, "row": r} for r, e in enumerate(entries, start=2)])


@settings(max_examples=60, deadline=None)
@given(st.lists(ENTRY, min_size=1, max_size=6), st.data())
def test_any_edited_field_breaks_the_chain_at_its_row(entries, data):
    chained = chain(entries, GENESIS)
    assert chain_issues(frame(chained)) == []
    k = data.draw(st.integers(0, len(chained) - 1))
    col = data.draw(st.sampled_from(HASHED))
    key = col.key + "_cents" if col.kind == "money" else col.key
    edited = [dict(e) for e in chained]
    value = edited[k][key]
    edited[k][key] = value + 1 if isinstance(value, int) else (
        date(value.year, value.month, value.day % 28 + 1) if isinstance(value, date) else value + "x")
    problems = chain_issues(frame(edited))
    assert (WorkflowCode.HASH_MISMATCH, k + 2) in {(p.code, p.row) for p in problems}


@settings(max_examples=40, deadline=None)
@given(st.lists(ENTRY, min_size=2, max_size=6), st.data())
def test_a_deleted_entry_breaks_the_chain_below_it(entries, data):
    chained = chain(entries, GENESIS)
    k = data.draw(st.integers(0, len(chained) - 2))
    remaining = chained[:k] + chained[k + 1:]
    problems = chain_issues(frame(remaining))
    assert (WorkflowCode.CHAIN_BROKEN, k + 2) in {(p.code, p.row) for p in problems}


def test_entry_arithmetic_and_batch_sums():
    entries = chain([
        {"timestamp": "t", "batch_id": "B1", "customer": "C7", "old_line_cents": 100, "change_cents": 50,
         "new_line_cents": 150},
        {"timestamp": "t", "batch_id": "B1", "customer": "D24", "old_line_cents": 100, "change_cents": -40,
         "new_line_cents": 70}], GENESIS)
    found = {(p.code, p.row) for p in entry_issues(frame(entries))}
    assert (WorkflowCode.ENTRY_INCONSISTENT, 3) in found  # 100 - 40 is not 70
    assert (WorkflowCode.ENTRY_INCONSISTENT, 2) in found  # the batch sums to +10
