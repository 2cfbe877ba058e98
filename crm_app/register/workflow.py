"""Credit reallocation workflow (赊销额度调整): check a request against a register, apply it, verify.

The rules are crm_core's; this module adds what a file needs: the version stamp, the audit chain,
the quarter's count read from the Audit sheet, an atomic write under a lock, and a re-read and
verify after writing. The CLI and the Excel macros both call these functions.

The lock (`register_lock`) is a `filelock.FileLock` on REGISTER.lock beside the register: an
operating-system lock (flock, or LockFileEx on Windows), not a marker file, because the system
drops it when the process dies, so a crash never leaves a stale lock behind that would refuse
every later writer. A second writer waits at most LOCK_WAIT_SECONDS for it, then is told the
register is busy (RegisterChangedError: exit 3 on the command line); a writer that gets the lock
after another one wrote is told the register changed since it was loaded. Nothing is written
in either case.

A write passes named checkpoints (CHECKPOINTS: loaded, edited, saved, before_rename, renamed);
the functions in `checkpoints` are called with each name as it is reached. The list is empty,
so by default nothing happens there; a caller may append an observer (a progress display, or
the crash tests' tooling in tests/support/crash_points.py, which kills or pauses the process).
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
from filelock import FileLock, Timeout
from openpyxl.utils import get_column_letter, range_boundaries

from crm_app.io.files import atomic_path, backup_path
from crm_app.register.audit import WorkflowCode, chain, chain_issues, entry_issues, last_hash
from crm_app.register.cells import set_text
from crm_app.register.load import (
    Approval,
    LoadedRegister,
    Request,
    Stamp,
    file_sha256,
    load_register,
    parse_day,
)
from crm_app.register.schema import (
    ABOUT,
    AUDIT,
    AUDIT_COLUMNS,
    REGISTER,
    REGISTER_COLUMNS,
    cents_from_cell,
    header_lookup,
)
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.reallocation import OK, Register, batch_verdict, check_reallocation
from crm_core.suggest import suggest_cuts
from crm_core.values import normalize_text, units

CHANGED = "register changed since you loaded it / 登记表已被他人修改"
BUSY = "someone else is writing the register; try again / 登记表正被他人修改"
LOCK_WAIT_SECONDS = 30.0  # how long a second writer waits for the lock before it is told "busy"
_LABEL = {c.key: c.label for c in REGISTER_COLUMNS}
_AUDIT_LABEL = {c.key: c.label for c in AUDIT_COLUMNS}


class RegisterChangedError(CrmInputError):
    """Another writer changed the register between our load and our write: nothing was written."""


@dataclass(frozen=True)
class CheckReport:
    """One row per request line (row, customer, tier, old, change, new, kind, message), every
    issue (request lines, roles, dates, register), tier drift, and the batch id to be recorded."""

    moves: pd.DataFrame
    issues: list[Issue]
    tier_drift: pd.DataFrame
    batch_id: str
    request_date: date
    approval_date: date
    policy_label: str
    request_source: str

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)

    @property
    def verdict(self) -> str:
        own = self.request_source
        return batch_verdict(self.issues, lambda i: i.row is not None and i.source == own,
                             passed=f"ok: batch {self.batch_id} passes / 通过")


@dataclass(frozen=True)
class Outcome:
    report: CheckReport
    written: bool
    stamp: Stamp | None = None


# ---- checkpoints -----------------------------------------------------------------------------

# The points a write passes, in order: the register read; the book changed in memory; the new
# version saved to a temporary file under the lock; the check that nobody else wrote, passed;
# the new version in place of the old.
CHECKPOINTS = ("loaded", "edited", "saved", "before_rename", "renamed")
# Observers called with each checkpoint's name as a write reaches it; none by default.
checkpoints: list[Callable[[str], None]] = []


def _reached(point: str) -> None:
    """Tell the observers in `checkpoints` (looked up now, so a caller may replace the list)."""
    for observer in list(checkpoints):
        observer(point)


# ---- check -----------------------------------------------------------------------------------

def core_register(loaded: LoadedRegister) -> Register:
    reg = loaded.register.drop_duplicates("customer").set_index("customer")
    return Register(lines_cents=reg["credit_line_cents"].fillna(0).astype("int64"),
                    tiers=reg["rate_tier"].fillna(""),
                    balances_cents=reg["open_balance_cents"].fillna(0).astype("int64"),
                    allocated_cents=reg["allocated_line_cents"].fillna(0).astype("int64"))


def batches_in_quarter(audit: pd.DataFrame, now: datetime) -> int:
    """Distinct batches whose entries were applied in `now`'s calendar quarter."""
    quarter = (now.year, (now.month - 1) // 3)
    seen = set()
    for batch, stamp in zip(audit["batch_id"], audit["timestamp"]):
        try:
            when = datetime.fromisoformat(str(stamp))
        except ValueError:
            continue  # an unreadable timestamp breaks the chain check instead
        if (when.year, (when.month - 1) // 3) == quarter:
            seen.add(batch)
    return len(seen)


def default_batch_id(request: Request, approval: Approval, day: date) -> str:
    """Same request, roles and day -> same id, so re-running a batch is recognised and refused."""
    content = json.dumps([request.lines[["customer", "change_cents"]].values.tolist(),
                          [approval.roles.requester, approval.roles.approver, approval.roles.recorder]],
                         ensure_ascii=False, default=str)
    return f"{day:%Y%m%d}-{hashlib.sha256(content.encode()).hexdigest()[:8]}"


def check_request(loaded: LoadedRegister, request: Request, approval: Approval,
                  now: datetime | None = None) -> CheckReport:
    """Every check before a write: the core's batch rules, dates, batch id, and the register's own health."""
    now = now or datetime.now().astimezone()
    result = check_reallocation(core_register(loaded), request.lines, loaded.policy, approval.roles,
                                batches_in_quarter(loaded.audit, now), approval.override_reason,
                                source=request.source)
    issues, moves = result.issues, result.moves
    request_day, approval_day, date_issues = _dates(approval, now.date(), request.source)
    batch_id = normalize_text(approval.batch_id) or default_batch_id(request, approval, approval_day)
    issues = request.issues + issues + date_issues + _batch_id_issues(loaded, batch_id, request.source)
    issues += verify_loaded(loaded)
    moves["message"] = _messages(moves, issues, request.source)
    return CheckReport(moves, issues, result.tier_drift, batch_id, request_day, approval_day,
                       result.policy_label, request.source)


def _dates(approval: Approval, today: date, source: str) -> tuple[date, date, list[Issue]]:
    request_day, issues = parse_day(approval.request_date, "request_date", source, today)
    approval_day, more = parse_day(approval.approval_date, "approval_date", source, today)
    issues += more
    if approval_day < request_day:
        issues.append(Issue(WorkflowCode.BAD_DATE, f"approval date {approval_day} is before the request "
                            f"date {request_day} / 审批日期早于申请日期", column="approval_date", source=source))
    if max(request_day, approval_day) > today:
        issues.append(Issue(WorkflowCode.BAD_DATE, "request and approval dates cannot be in the future "
                            "/ 日期不能晚于今天", column="approval_date", source=source))
    return request_day, approval_day, issues


def _batch_id_issues(loaded: LoadedRegister, batch_id: str, source: str) -> list[Issue]:
    rows = loaded.audit.loc[loaded.audit["batch_id"] == batch_id, "row"]
    if rows.empty:
        return []
    return [Issue(WorkflowCode.DUPLICATE_BATCH, f"batch {batch_id!r} was already applied (Audit row "
                  f"{int(rows.iloc[0])}) / 该批次已执行", column="batch_id", source=source)]


def _messages(moves: pd.DataFrame, issues: list[Issue], source: str) -> list[str]:
    by_row: dict[int, list[str]] = {}
    for issue in issues:
        if issue.row is not None and issue.source == source:
            by_row.setdefault(issue.row, []).append(issue.message)
    return ["; ".join(by_row[r]) if r in by_row else OK for r in moves["row"]]


# ---- verify ----------------------------------------------------------------------------------

def verify(path: str | Path) -> list[Issue]:
    """Everything wrong with a register: read problems, audit chain, lines vs log, total vs budget."""
    return verify_loaded(load_register(path, for_writing=False))


def verify_loaded(loaded: LoadedRegister) -> list[Issue]:
    issues = list(loaded.issues)
    issues += chain_issues(loaded.audit) + entry_issues(loaded.audit) + _head_issues(loaded)
    issues += _line_issues(loaded.register, loaded.audit)
    issues += _budget_issues(loaded)
    return issues


def _head_issues(loaded: LoadedRegister) -> list[Issue]:
    """About.audit_head, when present, is the hash of the newest Audit entry."""
    head = normalize_text(loaded.about.get("audit_head"))
    if "audit_head" not in loaded.about or head == last_hash(loaded.audit):
        return []
    return [Issue(WorkflowCode.CHAIN_BROKEN, "the Audit sheet does not end with the entry the register "
                  "recorded last: entries were deleted or added at the end / 审计记录末尾被删改",
                  row=loaded.about_rows.get("audit_head"), column="B", source=ABOUT)]


def _line_issues(register: pd.DataFrame, audit: pd.DataFrame) -> list[Issue]:
    issues: list[Issue] = []
    applied = audit.groupby("customer")["change_cents"].sum() if len(audit) else pd.Series(dtype="int64")
    known = set(register["customer"])
    for rec in register.to_dict("records"):
        line, allocated = rec["credit_line_cents"], rec["allocated_line_cents"]
        if _missing(line) or _missing(allocated):
            continue
        expected = int(allocated) + int(applied.get(rec["customer"], 0))
        if int(line) != expected:
            issues.append(Issue(WorkflowCode.LINE_MISMATCH,
                                f"{rec['customer']}: credit line {units(int(line)):,.2f} is not the yearly "
                                f"allocation plus applied changes ({units(expected):,.2f}) / 额度与审计记录不符",
                                row=rec["row"], column=_LABEL["credit_line"], source=REGISTER))
    for rec in register.loc[register["customer"].duplicated()].to_dict("records"):
        issues.append(Issue(IssueCode.DUPLICATE_CUSTOMER, f"customer {rec['customer']!r} has more than one "
                            "row / 客户重复", row=rec["row"], column=_LABEL["customer"], source=REGISTER))
    for rec in audit.loc[~audit["customer"].isin(known)].to_dict("records"):
        issues.append(Issue(WorkflowCode.LINE_MISMATCH, f"customer {rec['customer']!r} is not in the Register",
                            row=rec["row"], column=_AUDIT_LABEL["customer"], source=AUDIT))
    return issues


def _budget_issues(loaded: LoadedRegister) -> list[Issue]:
    row = loaded.about_rows.get("budget")
    try:
        budget = cents_from_cell(loaded.about.get("budget"))
    except ValueError as exc:
        return [Issue(WorkflowCode.BAD_STAMP, f"budget: {exc}", row=row, column="B", source=ABOUT)]
    if budget is None:
        return [Issue(WorkflowCode.BAD_STAMP, "the About sheet has no budget", row=row, column="B", source=ABOUT)]
    issues = []
    for key in ("credit_line", "allocated_line"):
        total = int(loaded.register[f"{key}_cents"].fillna(0).sum())
        if total != budget:
            issues.append(Issue(WorkflowCode.BUDGET_MISMATCH,
                                f"{_LABEL[key]} total {units(total):,.2f} is not the budget {units(budget):,.2f} "
                                f"(difference {units(total - budget):+,.2f}) / 合计不等于预算",
                                row=row, column="B", source=ABOUT))
    return issues


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


# ---- apply -----------------------------------------------------------------------------------

def reallocate(path: str | Path, request: Request, approval: Approval, *, now: datetime | None = None,
               dry_run: bool = False) -> Outcome:
    """Check the request; when it passes (and not a dry run) write it. Nothing is written on failure.

    Raises RegisterChangedError when someone else wrote the register after we loaded it, or held
    its lock for longer than LOCK_WAIT_SECONDS.
    """
    now = now or datetime.now().astimezone()
    loaded = load_register(path)
    _reached("loaded")
    report = check_request(loaded, request, approval, now)
    if dry_run or not report.ok:
        return Outcome(report, False)
    stamp = write_batch(loaded, report, approval, now)
    return Outcome(report, True, stamp)


def write_batch(loaded: LoadedRegister, report: CheckReport, approval: Approval, now: datetime) -> Stamp:
    entries = chain(_entries(report, approval, now), last_hash(loaded.audit))
    _write_lines(loaded, report.moves)
    _append_audit(loaded, entries)
    version = loaded.stamp.version + 1
    _set_about(loaded, "register_version", version)
    _set_about(loaded, "audit_head", entries[-1]["hash"])
    _reached("edited")
    try:
        with register_lock(loaded.path), atomic_path(loaded.path) as tmp:
            loaded.book.save(tmp)
            _reached("saved")
            if file_sha256(loaded.path) != loaded.stamp.sha256:
                raise RegisterChangedError([Issue(WorkflowCode.REGISTER_CHANGED, CHANGED, source=loaded.path.name)])
            _reached("before_rename")
    except OSError as exc:  # e.g. Windows refuses to replace a file another program holds open
        raise CrmInputError([Issue(WorkflowCode.REGISTER_CHANGED, f"cannot replace the register ({exc}); "
                                   "is it open in Excel? nothing written / 无法写入", source=loaded.path.name)]) from exc
    _reached("renamed")
    return _check_written(loaded.path, version, report)


@contextmanager
def register_lock(path: Path, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock on REGISTER.lock, next to the register, for the block; waiting at
    most `wait` seconds (default LOCK_WAIT_SECONDS) for another writer to let go of it, after
    which RegisterChangedError says the register is busy. An operating-system lock, released
    when the process dies (see the module's docstring)."""
    path = Path(path)
    lock = FileLock(path.with_name(path.name + ".lock"), timeout=LOCK_WAIT_SECONDS if wait is None else wait,
                    fallback_to_soft=False)  # a marker file would outlive a killed writer
    try:
        lock.acquire()
    except Timeout:  # a TimeoutError, so an OSError: said here, not taken for a disk problem
        raise RegisterChangedError([Issue(WorkflowCode.REGISTER_CHANGED, BUSY, source=path.name)]) from None
    try:
        yield
    finally:
        lock.release()


def _entries(report: CheckReport, approval: Approval, now: datetime) -> list[dict[str, object]]:
    stamp = now.isoformat(timespec="seconds")
    roles = approval.roles
    return [{"timestamp": stamp, "batch_id": report.batch_id, "customer": m.customer,
             "old_line_cents": int(m.old_cents), "change_cents": int(m.change_cents),
             "new_line_cents": int(m.new_cents), "reason": m.reason, "requester": roles.requester,
             "approver": roles.approver, "recorder": roles.recorder,
             "request_date": report.request_date, "approval_date": report.approval_date,
             "override_reason": approval.override_reason}
            for m in report.moves.itertuples(index=False)]


def _columns(ws, columns) -> dict[str, int]:
    lookup = header_lookup(columns)
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    return {lookup[k]: i + 1 for i, h in enumerate(header)
            if h is not None and (k := normalize_text(h).lower()) in lookup}


def _write_lines(loaded: LoadedRegister, moves: pd.DataFrame) -> None:
    ws = loaded.book[REGISTER]
    cols = _columns(ws, REGISTER_COLUMNS)
    rows = dict(zip(loaded.register["customer"], loaded.register["row"]))
    balances = dict(zip(loaded.register["customer"], loaded.register["open_balance_cents"]))
    for m in moves.itertuples(index=False):
        row = rows[m.customer]
        ws.cell(row=row, column=cols["credit_line"]).value = units(int(m.new_cents))
        util = ws.cell(row=row, column=cols["utilisation"]) if "utilisation" in cols else None
        if util is not None and isinstance(util.value, (int, float)) and not _missing(balances[m.customer]):
            util.value = int(balances[m.customer]) / int(m.new_cents) if m.new_cents else None


def _append_audit(loaded: LoadedRegister, entries: list[dict[str, object]]) -> None:
    ws = loaded.book[AUDIT]
    cols = _columns(ws, AUDIT_COLUMNS)
    start = int(loaded.audit["row"].max()) + 1 if len(loaded.audit) else 2
    for r, entry in enumerate(entries, start=start):
        for col in AUDIT_COLUMNS:
            cell = ws.cell(row=r, column=cols[col.key])
            if col.kind == "money":
                cell.value = units(int(entry[col.frame_key]))
                cell.number_format = "#,##0.00"
            elif col.kind == "date":
                cell.value = entry[col.key]
                cell.number_format = "yyyy-mm-dd"
            else:
                set_text(cell, normalize_text(entry[col.key]))
    _extend_tables(ws, start + len(entries) - 1)


def _extend_tables(ws, last_row: int) -> None:
    """An Excel table over the Audit sheet grows to take the new entries."""
    for table in ws.tables.values():
        min_col, min_row, max_col, max_row = range_boundaries(table.ref)
        if min_row == 1 and max_row < last_row:
            table.ref = f"{get_column_letter(min_col)}1:{get_column_letter(max_col)}{last_row}"
            if table.autoFilter is not None:
                table.autoFilter.ref = table.ref


def _set_about(loaded: LoadedRegister, key: str, value: object) -> None:
    ws = loaded.book[ABOUT]
    row = loaded.about_rows.get(key) or ws.max_row + 1
    set_text(ws.cell(row=row, column=1), key)
    ws.cell(row=row, column=2).value = value


def _check_written(path: Path, version: int, report: CheckReport) -> Stamp:
    """Re-read what was written: the new lines, the version and the whole register must verify."""
    reread = load_register(path, for_writing=False)
    problems = verify_loaded(reread)
    lines = dict(zip(reread.register["customer"], reread.register["credit_line_cents"]))
    problems += [Issue(WorkflowCode.LINE_MISMATCH, f"{m.customer}: written line is not {units(m.new_cents):,.2f}",
                       source=REGISTER) for m in report.moves.itertuples(index=False)
                 if lines.get(m.customer) != m.new_cents]
    if reread.stamp.version != version:
        problems.append(Issue(WorkflowCode.BAD_STAMP, f"register_version reads {reread.stamp.version}, "
                              f"expected {version}", source=ABOUT))
    if problems:
        raise CrmInputError([Issue(p.code, f"after writing: {p.message} (previous version kept in "
                                   f"{backup_path(path).name})", p.row, p.column, p.source) for p in problems])
    return reread.stamp


# ---- suggestion ------------------------------------------------------------------------------

def suggest_request(path: str | Path, amount_cents: int, exclude: list[str] | tuple[str, ...] = (),
                    for_customer: str = "") -> pd.DataFrame:
    """A request (customer, change_cents, reason) cutting lines to fund `amount_cents`; with
    `for_customer`, the raise line comes first and that customer is never cut."""
    loaded = load_register(path, for_writing=False)
    foreign = [i for i in loaded.issues if i.column == "template_version"]
    if foreign:  # a template this version does not understand: propose nothing from it
        raise CrmInputError(foreign)
    reg = loaded.register
    if for_customer and for_customer not in set(reg["customer"]):
        raise CrmInputError([Issue(IssueCode.UNKNOWN_CUSTOMER, f"customer {for_customer!r} is not in the register",
                                   column="customer", source=REGISTER)])
    rates = pd.to_numeric(reg["collection_rate"], errors="coerce").to_numpy(dtype="float64")
    unit = max(1, loaded.policy.credit_unit_cents)
    excluded = list(exclude) + ([for_customer] if for_customer else [])
    cuts = suggest_cuts(reg["customer"].tolist(), reg["credit_line_cents"].fillna(0).astype("int64").tolist(),
                        reg["open_balance_cents"].fillna(0).astype("int64").tolist(), rates, amount_cents,
                        exclude=excluded, unit_cents=unit)
    lines = [{"customer": c, "change_cents": -int(cut), "reason": why}
             for c, cut, why in zip(cuts["customer"], cuts["cut_cents"], cuts["why"])]
    if for_customer:
        lines.insert(0, {"customer": for_customer, "change_cents": int(amount_cents), "reason": ""})
    return pd.DataFrame(lines, columns=["customer", "change_cents", "reason"])


__all__ = ["BUSY", "CHANGED", "CHECKPOINTS", "CheckReport", "Outcome", "RegisterChangedError", "batches_in_quarter",
           "check_request", "checkpoints", "reallocate", "register_lock", "suggest_request", "verify",
           "verify_loaded", "write_batch"]
