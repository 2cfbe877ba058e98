"""The in-process engine: the file read whole by Arrow's multi-threaded reader (only the columns
a ledger needs), then cut into consecutive slices of rows that the core's partition function
checks and sums side by side, one thread per core, and the core's reductions combine in file
order. The default for sheet ranges and for files that fit in memory (10^7 rows take about 1.5 GB).

Threads, not processes: the slices are views of the one table read (nothing is copied or
pickled), and the partition function's work is numpy's and Arrow's, which let go of the GIL.
A ledger of fewer than `SLICE_ROWS` rows per thread is one partition: threads would only cost.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from crm_app.io.files import one_header_issue, read_table, use_jemalloc_pool
from crm_core.collection import Period
from crm_core.issues import Issue
from crm_core.partition import InvoicesNeeded, LedgerSums, Partial, combine, partition
from crm_core.policy import Policy

SLICE_ROWS = 1_000_000  # the least rows worth a thread of their own
MAX_THREADS = 8


def ledger_sums(path: Path, policy: Policy, period: Period | None = None, threads: int | None = None) -> LedgerSums:
    use_jemalloc_pool()  # the reader's buffers, the table and the checks' kernels reuse memory
    bad_lines: list[Issue] = []  # lines Arrow could not split into the header's fields
    frame = read_table(path, bad_lines=bad_lines)
    slices = row_slices(frame, threads)
    partials = _partials(slices, policy, path.name, period)
    try:
        sums = combine(partials, policy, path.name, reader_issues=bad_lines)
    except InvoicesNeeded:  # the slices' invoice numbers interleave: the repeat check needs their rows
        partials = _partials(slices, policy, path.name, period, first=partials)
        sums = combine(partials, policy, path.name, reader_issues=bad_lines)
    return with_file_header(sums, frame, path.name)


def row_slices(frame: pd.DataFrame, threads: int | None = None) -> list[pd.DataFrame]:
    """The table as consecutive slices, one per thread (at least SLICE_ROWS rows each)."""
    threads = threads or min(os.cpu_count() or 1, MAX_THREADS)
    count = max(1, min(threads, len(frame) // SLICE_ROWS))
    edges = [len(frame) * i // count for i in range(count + 1)]
    return [frame.iloc[start:end] for start, end in zip(edges, edges[1:])]


def _partials(slices: list[pd.DataFrame], policy: Policy, source: str, period: Period | None,
              first: list[Partial] | None = None) -> list[Partial]:
    """The partition function on every slice, compacting their invoices; given the `first`
    answers, only the compacted ones are computed again, keeping their invoice rows."""
    def one(n: int) -> Partial:
        if first is not None and not first[n].compacted:
            return first[n]
        return partition(slices[n], policy, source, period, compact=first is None)

    if len(slices) == 1:
        return [one(0)]
    with ThreadPoolExecutor(len(slices), thread_name_prefix="crm-partition") as pool:
        return list(pool.map(one, range(len(slices))))


def with_file_header(sums: LedgerSums, frame, source: str) -> LedgerSums:
    """One message for a file whose header is not a ledger's, naming what the header has."""
    return replace(sums, issues=one_header_issue(sums.issues, frame, source))
