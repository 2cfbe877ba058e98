"""The Dask engine: a ledger file larger than memory, read by Dask in partitions of consecutive
rows, each reviewed by the core's partition function, the results merged pairwise in file order
(`crm_core.partition.merge`) so that only a few partitions' sums are held at a time.

The local threaded scheduler by default; `scheduler="tcp://HOST:8786"` sends the work to a
cluster (the file must be readable at the same path there). Invoice numbers are dropped from
partitions whose numbers rise strictly (`compact`); when they interleave across partitions the
partitions are computed again with their invoice rows, so repeats are found as for a sheet.
"""
from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd

from crm_core.collection import Period
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.ledger import map_headers
from crm_core.partition import InvoicesNeeded, LedgerSums, combine, merge, partition
from crm_core.policy import Policy

from crm_app.engines.inprocess import with_file_header
from crm_app.io.files import _csv_encoding, read_header

CSV_BLOCK_BYTES = 64 * 2**20  # a partition's share of a CSV: ~10^6 rows, ~300 MB once parsed
MERGE_FAN_IN = 2


def ledger_sums(path: Path, policy: Policy, period: Period | None = None, scheduler: str | None = None,
                blocksize: int = CSV_BLOCK_BYTES) -> LedgerSums:
    header = read_header(path)
    frames = _partitions(path, header, blocksize)
    with _client(scheduler):
        try:
            sums = _reduced(frames, policy, path.name, period, compact=True)
        except InvoicesNeeded:
            sums = _reduced(frames, policy, path.name, period, compact=False)
    return with_file_header(sums, header, path.name)


def _reduced(frames, policy: Policy, source: str, period: Period | None, compact: bool) -> LedgerSums:
    level = [dask.delayed(partition)(frame, policy, source, period, compact) for frame in frames]
    while len(level) > 1:  # neighbours merged: file order is kept
        level = [dask.delayed(merge)(*level[i:i + MERGE_FAN_IN]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), MERGE_FAN_IN)]
    (merged,) = dask.compute(*level) if level else ([],)
    return combine([merged] if level else [], policy, source)


def _partitions(path: Path, header, blocksize: int):
    """The file as delayed pandas frames in file order, only the ledger's columns."""
    mapping, _ = map_headers(header.columns)
    columns = list(mapping) or None
    if path.suffix.lower() in (".parquet", ".pq"):
        return dd.read_parquet(path, columns=columns, split_row_groups=True).to_delayed()  # a row group each
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    encoding = "utf-8-sig" if _csv_encoding(path) == "utf8" else "gb18030"
    try:
        frame = dd.read_csv(path, sep=sep, blocksize=blocksize, dtype=object, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False, encoding=encoding, usecols=columns)
    except ValueError as problem:
        raise _unreadable(path, problem) from problem
    return frame.to_delayed()


def _unreadable(path: Path, problem: Exception) -> CrmInputError:
    return CrmInputError([Issue(IssueCode.BAD_SHAPE, (
        f"the dask engine cannot split {path.name} into rows ({str(problem).splitlines()[0][:200]}); "
        "review it with --engine inprocess, which names every malformed line / 文件格式有误"), source=path.name)])


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
