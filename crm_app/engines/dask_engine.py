"""The Dask engine: a ledger file larger than memory, read by Dask in partitions of consecutive
rows, each reviewed by the core's partition function, the results added in file order to one
running total (`crm_core.partition.PartialFold`, a chain of tasks), so that only the total and
the partitions in flight are held.

The local threaded scheduler by default; `scheduler="tcp://HOST:8786"` sends the work to a
cluster (the file must be readable at the same path there). A CSV is split at line ends; a
block holding an odd number of quote characters ends or starts inside a quoted cell (a line
break in a name or a memo: RFC 4180 doubles a quote inside a cell, so the parity is exact), and
then the file is split again at the line ends outside quotes, found by the blocks' quote counts
(one more pass over the file, only for such a ledger). Invoice numbers are dropped from
partitions whose numbers rise strictly (`compact`); when they interleave across partitions the
partitions are computed again with their invoice rows, so repeats are found as for a sheet.
"""
from __future__ import annotations

from pathlib import Path

import dask
from dask.bytes import read_bytes

from crm_app.engines.inprocess import with_file_header
from crm_app.io.files import (
    parquet_row_group_runs,
    read_csv_block,
    read_header,
    read_parquet_row_groups,
)
from crm_core.collection import Period
from crm_core.partition import InvoicesNeeded, LedgerSums, Partial, PartialFold, combine, partition
from crm_core.policy import Policy

CSV_BLOCK_BYTES = 64 * 2**20  # a partition's share of a CSV: ~10^6 rows
# A Parquet partition: consecutive row groups of at least this many rows. Fewer, larger partitions
# see each customer fewer times (per-customer costs dominate on a million customers); each one in
# flight holds its rows, so memory sets the ceiling.
PARQUET_PARTITION_ROWS = 1 << 22  # 10^8 rows: 74 s at 2.9 GB peak; 1 << 20: 131 s; 1 << 23: 4.3 GB


def ledger_sums(path: Path, policy: Policy, period: Period | None = None, scheduler: str | None = None,
                blocksize: int = CSV_BLOCK_BYTES) -> LedgerSums:
    header = read_header(path)
    with _client(scheduler):
        quotes_checked, compact = False, True
        while True:
            try:
                sums = _reduced(path, blocksize, policy, period, compact, quotes_checked)
                break
            except InvoicesNeeded:
                compact = False
            except QuotedLineBreak:
                quotes_checked = True
    return with_file_header(sums, header, path.name)


class QuotedLineBreak(Exception):
    """A CSV block boundary fell inside a quoted cell: the file is split again (module docstring)."""


def _reduced(path: Path, blocksize: int, policy: Policy, period: Period | None, compact: bool,
             quotes_checked: bool) -> LedgerSums:
    total = dask.delayed(PartialFold)()
    for partial in _partials(path, blocksize, policy, period, compact, quotes_checked):
        total = dask.delayed(_added)(total, partial)  # in file order: a chain
    (merged,) = dask.compute(dask.delayed(PartialFold.result)(total))
    return combine([merged], policy, path.name)


def _added(total: PartialFold, partial: Partial) -> PartialFold:
    """The running total with one more partial. The total is updated in place: each one is
    the input of exactly one task, the next link of the chain."""
    return total.add(partial)


def _partials(path: Path, blocksize: int, policy: Policy, period: Period | None, compact: bool,
              quotes_checked: bool = False) -> list:
    """The core's partition function on each partition of the file, as delayed results in file order.
    Parquet: runs of row groups (PARQUET_PARTITION_ROWS); CSV: blocks of whole lines, by Dask's byte reader. Each is read by
    the same reader as a whole file (types, dictionary-coded columns, malformed lines and all:
    Dask's Parquet reader gave the customers as text, which the checks then hash row by row);
    `quotes_checked`: consecutive blocks joined where a quoted cell spans them."""
    if path.suffix.lower() in (".parquet", ".pq"):
        runs = parquet_row_group_runs(path, PARQUET_PARTITION_ROWS) or [None]  # no row groups: read whole
        return [dask.delayed(_parquet_partial)(path, run, policy, period, compact) for run in runs]
    _, (blocks,) = read_bytes(str(path), delimiter=b"\n", blocksize=blocksize, sample=False)
    if quotes_checked:
        blocks = [dask.delayed(b"".join)(run) for run in _outside_quotes(blocks)]
    return [dask.delayed(_csv_partial)(block, path, n == 0, policy, period, compact, quotes_checked)
            for n, block in enumerate(blocks)]


def _outside_quotes(blocks: list) -> list[list]:
    """The blocks in runs of consecutive ones, each run ending at a line end outside quotes (a run
    left open at the end of the file is the reader's to report, as for a whole file)."""
    odd = dask.compute(*[dask.delayed(_odd_quotes)(block) for block in blocks])
    runs, run, inside = [], [], False
    for block, flips in zip(blocks, odd):
        run.append(block)
        inside ^= flips
        if not inside:
            runs.append(run)
            run = []
    return runs + [run] if run else runs


def _odd_quotes(block: bytes) -> bool:
    return block.count(b'"') % 2 == 1


def _parquet_partial(path: Path, groups: list[int] | None, policy: Policy, period: Period | None, compact: bool):
    return partition(read_parquet_row_groups(path, groups), policy, path.name, period, compact)


def _csv_partial(block: bytes, path: Path, first: bool, policy: Policy, period: Period | None, compact: bool,
                 quotes_checked: bool = False):
    if not quotes_checked and _odd_quotes(block):
        raise QuotedLineBreak()
    frame, bad_lines = read_csv_block(block, path, first)
    return partition(frame, policy, path.name, period, compact, reader_issues=bad_lines)


class _client:
    """The cluster's client for the job when a scheduler address is given; else the local scheduler."""

    def __init__(self, address: str | None):
        self.address, self.client = address, None

    def __enter__(self):
        if self.address:
            from distributed import Client

            self.client = Client(self.address)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
