"""Temporary reallocations (临时额度): a batch that ends on a date, and its automatic reversal.

A temporary batch's entries carry its end date in their override reason, as `until YYYY-MM-DD`
(followed by `; <approver's override reason>` when there is one): text every register's Audit
sheet already has a column for, covered by the entry's hash, so old registers read and verify
as before. On or after the end date the next write (a reallocation or a sign-off) first
reverses the batch as its own batch EXPIRE-<batch>: each customer's change taken back, so it
sums to zero both ways. The Temporary sheet lists the temporary parts still in force, batch by
batch; the Register shows, on each line that carries one, the temporary part and its first end
date (TEMPORARY_COLUMNS). verify checks both against the Audit log.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd
from openpyxl.styles import Font

from crm_app.register.audit import EXPIRE_PREFIX, WorkflowCode, is_expiry, is_standard
from crm_app.register.cells import set_text
from crm_app.register.schema import (
    AUDIT,
    REGISTER,
    REGISTER_COLUMNS,
    TEMPORARY_COLUMNS,
    cents_from_cell,
    header_lookup,
)
from crm_core.issues import Issue
from crm_core.schema import DATE
from crm_core.values import normalize_text, units

TEMPORARY = "Temporary"
UNTIL = re.compile(r"^until (\d{4}-\d{2}-\d{2})(?:; (.*))?$")
HEADER = ("客户编码 Code", "临时调整 Temporary part", "截止日期 Until", "批次号 Batch id")


def until_text(until: date | None, override_reason: str) -> str:
    """The override reason a batch's entries record: the end date first, when there is one."""
    if until is None:
        return override_reason
    return f"until {until.isoformat()}" + (f"; {override_reason}" if override_reason else "")


def end_date(override_reason: object) -> date | None:
    match = UNTIL.match(normalize_text(override_reason))
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


@dataclass(frozen=True)
class Expiry:
    """The reversals a write makes first: entries (unchained) and each customer's line after them."""

    entries: list[dict[str, object]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)


def temporary_parts(audit: pd.DataFrame) -> pd.DataFrame:
    """Per temporary batch not yet reversed, per customer: the change still in force and its end date."""
    columns = ["batch_id", "customer", "change_cents", "until", "row"]
    if not len(audit):
        return pd.DataFrame(columns=columns)
    expired = {normalize_text(b)[len(EXPIRE_PREFIX):] for b in audit["batch_id"] if is_expiry(b)}
    rows = []
    for entry in audit.to_dict("records"):
        batch = normalize_text(entry["batch_id"])
        until = end_date(entry["override_reason"])
        if until is None or batch in expired or is_standard(batch) or is_expiry(batch):
            continue
        rows.append({"batch_id": batch, "customer": entry["customer"], "change_cents": int(entry["change_cents"]),
                     "until": until, "row": entry["row"]})
    frame = pd.DataFrame(rows, columns=columns)
    if not len(frame):
        return frame
    grouped = frame.groupby(["batch_id", "customer"], sort=False).agg(
        change_cents=("change_cents", "sum"), until=("until", "first"), row=("row", "min")).reset_index()
    return grouped.loc[grouped["change_cents"] != 0].reset_index(drop=True)


def pending_expiry(audit: pd.DataFrame, lines: dict[str, int], today: date, now: datetime) -> Expiry:
    """The reversal of every temporary batch whose end date has come, oldest first."""
    parts = temporary_parts(audit)
    due = parts.loc[[u <= today for u in parts["until"]]] if len(parts) else parts
    if not len(due):
        return Expiry()
    current, entries, batches = dict(lines), [], []
    roles = _roles(audit)
    for batch, group in due.groupby("batch_id", sort=False):
        batches.append(batch)
        for rec in group.to_dict("records"):
            entries.append(_reversal(rec, current, roles.get(batch, {}), now))
    changed = {e["customer"]: current[e["customer"]] for e in entries}
    return Expiry(entries, changed, batches)


def _roles(audit: pd.DataFrame) -> dict[str, dict[str, object]]:
    first = audit.drop_duplicates("batch_id")
    return {normalize_text(r["batch_id"]): r for r in first.to_dict("records")}


def _reversal(part: dict, current: dict[str, int], batch: dict, now: datetime) -> dict[str, object]:
    customer, change = part["customer"], -int(part["change_cents"])
    old = int(current.get(customer, 0))
    current[customer] = old + change
    return {"timestamp": now.isoformat(timespec="seconds"), "batch_id": EXPIRE_PREFIX + part["batch_id"],
            "customer": customer, "old_line_cents": old, "change_cents": change, "new_line_cents": old + change,
            "reason": f"到期冲回 temporary batch {part['batch_id']} ended {part['until'].isoformat()}",
            "requester": batch.get("requester", ""), "approver": batch.get("approver", ""),
            "recorder": batch.get("recorder", ""), "request_date": part["until"], "approval_date": part["until"],
            "override_reason": ""}


def below_zero(expiry: Expiry, batch_customers: set[str], source: str) -> list[Issue]:
    """A reversal that takes a line below zero, unless this write's batch moves that line too
    (the batch's own check then sees the line after the reversal)."""
    return [Issue(WorkflowCode.TEMPORARY, f"{customer}: the end of temporary batch(es) {', '.join(expiry.batches)} "
                  f"takes the line to {units(line):,.2f}; include {customer} in this batch to keep it at 0 or "
                  "more / 临时额度到期后额度为负", column="customer", source=source)
            for customer, line in expiry.lines.items() if line < 0 and customer not in batch_customers]


# ---- the Temporary sheet -------------------------------------------------------------------------

def write_temporary_sheet(book, parts: pd.DataFrame) -> None:
    """List the temporary parts in force (made the first time a temporary batch is written)."""
    if TEMPORARY not in book.sheetnames and not len(parts):
        return
    if TEMPORARY in book.sheetnames:
        ws = book[TEMPORARY]
        ws.delete_rows(1, ws.max_row)
    else:
        index = book.sheetnames.index(AUDIT) + 1 if AUDIT in book.sheetnames else len(book.sheetnames)
        ws = book.create_sheet(TEMPORARY, index)
    set_text(ws.cell(row=1, column=1), "临时额度 Temporary parts of credit lines (reversed on their end date by "
             "the next write) / 到期后由下一次写入自动冲回")
    ws.cell(row=1, column=1).font = Font(bold=True)
    for k, label in enumerate(HEADER, start=1):
        set_text(ws.cell(row=2, column=k), label)
        ws.cell(row=2, column=k).font = Font(bold=True)
    for r, part in enumerate(parts.to_dict("records"), start=3):
        set_text(ws.cell(row=r, column=1), part["customer"])
        ws.cell(row=r, column=2, value=units(int(part["change_cents"]))).number_format = "#,##0.00"
        day = part["until"]
        ws.cell(row=r, column=3, value=datetime(day.year, day.month, day.day)).number_format = "yyyy-mm-dd"
        set_text(ws.cell(row=r, column=4), part["batch_id"])
    for col, width in zip("ABCD", (18, 22, 14, 28)):
        ws.column_dimensions[col].width = width
    ws.protection.sheet = True


def temporary_sheet_issues(values_book, audit: pd.DataFrame) -> list[Issue]:
    """The Temporary sheet, when there is one, lists exactly what the Audit log says is in force."""
    if TEMPORARY not in values_book.sheetnames:
        return []
    shown = {(normalize_text(c), _cents(v), normalize_text(b))
             for c, v, _, b, *_ in values_book[TEMPORARY].iter_rows(min_row=3, max_col=4, values_only=True)
             if normalize_text(c)}
    logged = {(p["customer"], p["change_cents"], p["batch_id"]) for p in temporary_parts(audit).to_dict("records")}
    if shown == logged:
        return []
    return [Issue(WorkflowCode.TEMPORARY, "the Temporary sheet does not list the temporary parts the Audit log "
                  f"holds ({len(logged)} in force): it was edited / 临时额度表与审计记录不符", source=TEMPORARY)]


def _cents(value: object) -> int | None:
    try:
        return cents_from_cell(value)
    except ValueError:
        return None


def temporary_notes(audit: pd.DataFrame) -> list[str]:
    """One line per temporary part in force, for verify's report."""
    return [f"{p['customer']}: {units(p['change_cents']):+,.2f} until {p['until']} (batch {p['batch_id']}) "
            f"/ 临时额度" for p in temporary_parts(audit).to_dict("records")]


# ---- the Register's temporary columns -------------------------------------------------------------

def parts_by_customer(parts: pd.DataFrame) -> dict[str, tuple[int, date]]:
    """Per customer: the temporary part of the line in force (all its batches) and the first end date."""
    if not len(parts):
        return {}
    grouped = parts.groupby("customer", sort=False).agg(change_cents=("change_cents", "sum"), until=("until", "min"))
    return {customer: (int(rec.change_cents), rec.until) for customer, rec in grouped.iterrows()}


def write_register_columns(book, customer_rows: dict[str, int], before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Show the temporary parts in force on the Register: clear the lines that carried one
    (`before`), fill the lines that carry one now (`after`). A register without the columns gets
    them after its last column with its first temporary batch."""
    shown = parts_by_customer(after)
    ws = book[REGISTER]
    columns = _register_columns(ws, add=bool(shown))
    if columns is None:
        return
    part_col, until_col = columns
    for customer in set(parts_by_customer(before)) - set(shown):
        for col in (part_col, until_col):
            ws.cell(row=customer_rows[customer], column=col).value = None
    for customer, (cents, until) in shown.items():
        row = customer_rows[customer]
        ws.cell(row=row, column=part_col, value=units(cents)).number_format = "#,##0.00"
        ws.cell(row=row, column=until_col, value=datetime(until.year, until.month, until.day)).number_format = "yyyy-mm-dd"


def _register_columns(ws, add: bool) -> tuple[int, int] | None:
    found = _header_positions(ws, TEMPORARY_COLUMNS)
    if len(found) == len(TEMPORARY_COLUMNS):
        return found["temporary_part"], found["temporary_until"]
    if not add:
        return None
    last = max((c.column for c in next(ws.iter_rows(min_row=1, max_row=1)) if c.value is not None), default=0)
    for k, col in enumerate(TEMPORARY_COLUMNS, start=last + 1):
        set_text(ws.cell(row=1, column=k), col.heading)
        ws.cell(row=1, column=k).font = Font(bold=True)
    return last + 1, last + 2


def _header_positions(ws, columns) -> dict[str, int]:
    lookup = header_lookup(columns)
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    return {lookup[k]: i + 1 for i, h in enumerate(header)
            if h is not None and (k := normalize_text(h).lower()) in lookup}


def register_column_issues(values_book, audit: pd.DataFrame) -> list[Issue]:
    """The Register's temporary columns, when it has them, show exactly what the Audit log holds
    in force: each line that differs is named by its row and column."""
    ws = values_book[REGISTER]
    positions = _header_positions(ws, [REGISTER_COLUMNS[0], *TEMPORARY_COLUMNS])
    if len(positions) < 1 + len(TEMPORARY_COLUMNS):
        return []
    logged = parts_by_customer(temporary_parts(audit))
    issues = []
    for r, values in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
        customer = normalize_text(_at(values, positions["customer"]))
        if not customer:
            continue
        cents, until = logged.get(customer, (None, None))
        raw = (_at(values, positions["temporary_part"]), _at(values, positions["temporary_until"]))
        shown = (_cents(raw[0]), _day(raw[1]))
        for col, want, got, cell in zip(TEMPORARY_COLUMNS, (cents, until), shown, raw):
            if want != got:
                found = _shown(got, col) if got is not None or cell is None else repr(cell)
                issues.append(Issue(WorkflowCode.TEMPORARY, f"{customer}: {col.label} shows {found}, the "
                                    f"Audit log holds {_shown(want, col)} in force: it was edited / 与审计记录不符",
                                    row=r, column=col.label, source=REGISTER))
    return issues


def _at(values: tuple, position: int) -> object:
    return values[position - 1] if position - 1 < len(values) else None


def _day(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _shown(value: object, column) -> str:
    if value is None:
        return "nothing"
    return value.isoformat() if column.kind == DATE else f"{units(value):,.2f}"
