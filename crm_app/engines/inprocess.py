"""The in-process engine: the file read whole by Arrow's multi-threaded reader (only the columns
a ledger needs) and reviewed as one partition. The default for sheet ranges and for files that
fit in memory (10^7 rows take about 1.5 GB)."""
from __future__ import annotations

from pathlib import Path

from crm_app.io.files import one_header_issue, read_table
from crm_core.collection import Period
from crm_core.issues import Issue
from crm_core.partition import LedgerSums, combine, partition
from crm_core.policy import Policy


def ledger_sums(path: Path, policy: Policy, period: Period | None = None) -> LedgerSums:
    bad_lines: list[Issue] = []  # lines Arrow could not split into the header's fields
    frame = read_table(path, bad_lines=bad_lines)
    sums = combine([partition(frame, policy, path.name, period)], policy, path.name, reader_issues=bad_lines)
    return with_file_header(sums, frame, path.name)


def with_file_header(sums: LedgerSums, frame, source: str) -> LedgerSums:
    """One message for a file whose header is not a ledger's, naming what the header has."""
    from dataclasses import replace

    return replace(sums, issues=one_header_issue(sums.issues, frame, source))
