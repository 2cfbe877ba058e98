"""What every `crm-addin` command says and how it ends: the one table of exit statuses, the one
printer of issues, and progress messages. crm_app.cli.main re-exports these names; a command
module may import them from either."""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import pandas as pd

from crm_core.issues import issues_frame

# The exit statuses: one table for the code, `crm-addin --help` and README.md (a test compares them).
EXIT_OK = 0
EXIT_DIFFERENCES = 1  # verify, or a --check, found a file not as it should be
EXIT_INPUT = 2  # bad input, or a batch its checks refused: nothing written
EXIT_CHANGED = 3  # the register changed since it was loaded, or another writer holds it
EXIT_SYSTEM = 4  # a file missing, a folder, not ours to read, a full disk; or memory
EXIT_USAGE = 64  # BSD's EX_USAGE: argparse's own 2 would read as bad input
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done / 完成",
    EXIT_DIFFERENCES: "verify or a --check found differences / 校验发现差异",
    EXIT_INPUT: "bad input or a refused batch; nothing written / 输入有误或批次被拒，未写入",
    EXIT_CHANGED: "the register changed since it was loaded, or another writer holds it / 登记表已被修改或锁定",
    EXIT_SYSTEM: "a file cannot be read or written, or memory ran out / 文件无法读写或内存不足",
    EXIT_USAGE: "wrong command-line arguments / 命令参数错误",
    EXIT_INTERRUPTED: "interrupted (Ctrl+C); files already written stay as they were / 已中断",
}
ISSUES_SHOWN = 50  # a ledger with 100,000 bad rows: the first of them, and how many more


class Progress:
    """Stage messages with elapsed time on stderr, so long runs show they are moving."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.start = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def row_number(value: object) -> int | None:
    """A row as a message shows it: an integer, or None for no row (None, NaN, pd.NA), never 3.0."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def row_text(value: object) -> str:
    """A row for a table cell: its number, or blank."""
    row = row_number(value)
    return "" if row is None else str(row)


def issues_table(issues) -> str:
    """The issues as a text table (source, row, column, severity, code, message), rows as integers
    (a column holding None would print 3.0 and NaN)."""
    frame = issues_frame(issues)
    frame["row"] = [row_text(r) for r in frame["row"]]
    return frame.to_string(index=False)


def print_issues(issues, limit: int | None = ISSUES_SHOWN, stream=None, *, table: bool = False) -> None:
    """Every problem, the first `limit` of them (None: all), on `stream` (default stderr, looked up
    now: a test may have replaced it). Each on its own line, where (file, row, column) and what;
    or, with `table`, as one table (verify's report)."""
    stream = stream or sys.stderr
    issues = list(issues)
    if not issues:
        return
    shown = issues if limit is None else issues[:limit]
    if table:
        print(issues_table(shown), file=stream)
    else:
        print(f"{len(issues)} problem(s) / 问题:", file=stream)
        for issue in shown:
            print(f"  {issue.severity}: {replace(issue, row=row_number(issue.row))}", file=stream)
    if len(issues) > len(shown):
        print(f"  ... and {len(issues) - len(shown)} more", file=stream)
