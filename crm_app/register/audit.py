"""The Audit sheet's hash chain (审计链): one entry per changed credit line, each chained to the last.

An entry's hash is sha256 over its canonical text plus the previous entry's hash, so editing,
inserting or deleting an entry breaks the chain from that row on. Pure functions over records.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import Enum
from typing import Iterable, Mapping

import pandas as pd

from crm_app.register.schema import AUDIT, AUDIT_COLUMNS
from crm_core.issues import Issue
from crm_core.values import normalize_text, units

GENESIS = "0" * 64
HASHED = [c for c in AUDIT_COLUMNS if c.key not in ("prev_hash", "hash")]


class WorkflowCode(str, Enum):
    """Issue codes of the reallocation workflow and of verify (beside crm_core's IssueCode)."""

    DUPLICATE_BATCH = "duplicate_batch"
    REGISTER_CHANGED = "register_changed"
    CHAIN_BROKEN = "chain_broken"
    HASH_MISMATCH = "hash_mismatch"
    ENTRY_INCONSISTENT = "entry_inconsistent"
    LINE_MISMATCH = "line_mismatch"
    BUDGET_MISMATCH = "budget_mismatch"
    BAD_STAMP = "bad_stamp"
    BAD_DATE = "bad_date"


def canonical_value(kind: str, value: object) -> str:
    """The one text form of a cell that survives a save and re-read (money in cents, dates ISO)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if kind == "money":
        return str(int(value))
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat()
        return normalize_text(value)
    return normalize_text(value)


def canonical_text(entry: Mapping[str, object]) -> str:
    """`entry` is keyed like sheet_records' output: money columns as `<key>_cents`."""
    fields = [canonical_value(c.kind, entry.get(c.key + "_cents" if c.kind == "money" else c.key))
              for c in HASHED]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def entry_hash(entry: Mapping[str, object], prev_hash: str) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical_text(entry)).encode("utf-8")).hexdigest()


def chain(entries: Iterable[Mapping[str, object]], prev_hash: str) -> list[dict[str, object]]:
    """New entries with prev_hash and hash filled in, continuing from `prev_hash`."""
    out = []
    for entry in entries:
        row = dict(entry)
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = entry_hash(row, prev_hash)
        out.append(row)
    return out


def last_hash(audit: pd.DataFrame) -> str:
    return str(audit["hash"].iloc[-1]) if len(audit) else GENESIS


def chain_issues(audit: pd.DataFrame) -> list[Issue]:
    """Every broken link: an entry whose prev_hash is not the hash above it, or whose hash is wrong."""
    issues: list[Issue] = []
    label = {c.key: c.label for c in AUDIT_COLUMNS}
    expected_prev = GENESIS
    for entry in audit.to_dict("records"):
        row = entry["row"]
        if entry["prev_hash"] != expected_prev:
            issues.append(Issue(WorkflowCode.CHAIN_BROKEN,
                                "previous-hash does not match the entry above: an entry was deleted, "
                                "inserted or reordered here / 审计链断开", row=row,
                                column=label["prev_hash"], source=AUDIT))
        if entry["hash"] != entry_hash(entry, entry["prev_hash"]):
            issues.append(Issue(WorkflowCode.HASH_MISMATCH,
                                "hash does not match the entry's content: the entry was edited / 审计记录被修改",
                                row=row, column=label["hash"], source=AUDIT))
        expected_prev = entry["hash"]
    return issues


def entry_issues(audit: pd.DataFrame) -> list[Issue]:
    """Arithmetic inside the log: new = old + change, each batch sums to zero."""
    issues: list[Issue] = []
    label = {c.key: c.label for c in AUDIT_COLUMNS}
    for entry in audit.to_dict("records"):
        old, change, new = entry["old_line_cents"], entry["change_cents"], entry["new_line_cents"]
        if None in (old, change, new) or any(v != v for v in (old, change, new)):
            continue  # unreadable money is reported by sheet_records
        if int(old) + int(change) != int(new):
            issues.append(Issue(WorkflowCode.ENTRY_INCONSISTENT,
                                f"old line {units(int(old)):,.2f} + change {units(int(change)):,.2f} "
                                f"is not the new line {units(int(new)):,.2f}", row=entry["row"],
                                column=label["new_line"], source=AUDIT))
    if len(audit):
        sums = audit.groupby("batch_id", sort=False).agg(total=("change_cents", "sum"), row=("row", "min"))
        for batch, rec in sums.iterrows():
            if int(rec["total"]) != 0:
                issues.append(Issue(WorkflowCode.ENTRY_INCONSISTENT,
                                    f"batch {batch!r} does not sum to zero ({units(int(rec['total'])):+,.2f})",
                                    row=int(rec["row"]), column=label["change"], source=AUDIT))
    return issues
