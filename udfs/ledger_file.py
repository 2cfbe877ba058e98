"""Worksheet functions over a ledger FILE (CSV or Parquet, any length), its path typed in a cell.

For ledgers longer than a sheet allows (1,048,576 rows): the file is read and reduced outside
Excel and only the per-customer table comes back. Results are cached by the file's content
hash, so recalculation is instant while the file is unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

import xlwings as xw

from crm_app.engines.ledger_file import file_facts
from crm_core.issues import CrmInputError, IssueCode, errors_only

from . import _excel as ex
from .collection import POLICY_DOC, RANGE, collections_table

PATH_DOC = "Cell holding the ledger file's full path (.csv, .tsv or .parquet) 台账文件路径"


@xw.func(category=ex.CATEGORY)
@xw.arg("path", doc=PATH_DOC, **RANGE)
@xw.arg("period_start", doc="First day of the period (optional; default: last complete year in the file) 期间开始", **RANGE)
@xw.arg("period_end", doc="Last day of the period, inclusive (optional; default: one year after the start) 期间结束", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_collections_file(path, period_start=None, period_end=None, policy=None):
    """Like CRM_COLLECTIONS, from a CSV/Parquet ledger file of any length: one row per customer 大台账回款率. Cached by file content; refuses a file with bad rows, naming the first."""
    file = ledger_path(path)
    policy_obj = ex.read_policy(policy)
    start = ex.one_date(period_start, "period_start")
    end = ex.one_date(period_end, "period_end")
    if start is not None and end is not None and end < start:
        raise ex.arg_problem("period_end", f"period_end {end:%Y-%m-%d} is before period_start {start:%Y-%m-%d}",
                             code=IssueCode.BAD_DATE)
    result = file_facts(file, policy_obj, start, end)
    if errors_only(result.issues):
        raise CrmInputError(errors_only(result.issues))
    return collections_table(result.table)


def ledger_path(value) -> Path:
    """The file named in the cell: ~ and %VARS% expanded; it must exist."""
    cells = ex.vector(value, "path")
    if not cells or not isinstance(cells[0], str) or not cells[0].strip():
        raise ex.arg_problem("path", "path: type the ledger file's full path in the cell", code=IssueCode.EMPTY)
    file = Path(os.path.expandvars(os.path.expanduser(cells[0].strip().strip('"'))))
    if not file.is_file():
        raise ex.arg_problem("path", f"path: no file {str(file)!r}", code=IssueCode.EMPTY)
    return file
