"""Credit reallocation workflow (赊销额度调整): check a request against a register, apply it, verify.

The rules are crm_core's; this module adds what a file needs: the version stamp, the audit chain
(keyed with an AuditKey when one is given), the quarter's count read from the Audit sheet, an
atomic write under a lock, and a re-read and verify after writing. A batch is applied only once
the year's standard is signed (crm_app.register.signoff), and is checked against the signed
standard, not the Policy sheet; verify names every difference from it (crm_app.register.standard).
Temporary batches that ended are reversed first by the next write (crm_app.register.temporary).
The CLI and the Excel macros both call these functions.

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
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
from filelock import FileLock, Timeout
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter, range_boundaries

from crm_app.io.files import atomic_path, backup_path
from crm_app.register.audit import (
    KEY_ENV,
    RESERVED_PREFIXES,
    AuditKey,
    WorkflowCode,
    chain,
    check_chain,
    customer_entries,
    entry_issues,
    is_expiry,
    is_standard,
    last_hash,
)
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
    ABOUT_KEYS,
    AUDIT,
    AUDIT_COLUMNS,
    REGISTER,
    REGISTER_COLUMNS,
    cents_from_cell,
    header_lookup,
)
from crm_app.register.standard import (
    SIGNOFF,
    Standard,
    effective_policy,
    is_signed,
    standard_issues,
)
from crm_app.register.temporary import (
    Expiry,
    below_zero,
    pending_expiry,
    register_column_issues,
    temporary_notes,
    temporary_parts,
    temporary_sheet_issues,
    until_text,
    write_register_columns,
    write_temporary_sheet,
)
from crm_app.workbook.stored_values import rebuild_sheets, save_rewritten
from crm_core.issues import ERROR, WARNING, CrmInputError, Issue, IssueCode
from crm_core.reallocation import OK, Register, batch_verdict, check_reallocation
from crm_core.suggest import suggest_cuts
from crm_core.values import is_blank, normalize_text, units

CHANGED = "register changed since you loaded it / 登记表已被他人修改"
BUSY = "someone else is writing the register; try again / 登记表正被他人修改"
LOCK_WAIT_SECONDS = 30.0  # how long a second writer waits for the lock before it is told "busy"
_LABEL = {c.key: c.label for c in REGISTER_COLUMNS}
_AUDIT_LABEL = {c.key: c.label for c in AUDIT_COLUMNS}
KEY_ID = "audit_key_id"  # About: which key the chain is keyed with (never the key itself)
# About keys the workflow writes that the template's About sheet may lack: their meaning, for column C
ABOUT_MEANINGS = {KEY_ID: "审计密钥编号 Audit key id (names the key the chain is keyed with; the key itself is "
                          "never stored)"}


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
    expiry: Expiry = field(default_factory=Expiry)  # reversals of ended temporary batches, written first
    until: date | None = None  # a temporary batch's end date

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


def reached(point: str) -> None:
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
    """Distinct batches whose entries were applied in `now`'s calendar quarter (a sign-off and
    the automatic reversal of a temporary batch are not reallocations: not counted)."""
    quarter = (now.year, (now.month - 1) // 3)
    seen = set()
    for batch, stamp in zip(audit["batch_id"], audit["timestamp"]):
        if is_standard(batch) or is_expiry(batch):
            continue
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
                  now: datetime | None = None, *, applying: bool = True, key: AuditKey | None = None) -> CheckReport:
    """Every check before a write: the core's batch rules under the signed policy, dates, batch id,
    the register's own health, and that its standard is signed (`applying`; a check alone only
    warns). Temporary batches whose end date has come are reversed first (`CheckReport.expiry`)
    and the request is checked against the lines after that."""
    now = now or datetime.now().astimezone()
    expiry = pending_expiry(loaded.audit, current_lines(loaded), now.date(), now)
    result = check_reallocation(core_register(with_lines(loaded, expiry.lines)), request.lines,
                                effective_policy(loaded), approval.roles, batches_in_quarter(loaded.audit, now),
                                approval.override_reason, source=request.source)
    issues, moves = result.issues, result.moves
    request_day, approval_day, date_issues = _dates(approval, now.date(), request.source)
    until, until_issues = _until(approval, approval_day, request.source)
    batch_id = normalize_text(approval.batch_id) or default_batch_id(request, approval, approval_day)
    issues = request.issues + issues + date_issues + until_issues + _batch_id_issues(loaded, batch_id, request.source)
    issues += below_zero(expiry, set(moves["customer"]), request.source)
    issues += _health(loaded, key, applying) + _signoff_gate(loaded, applying)
    moves["message"] = _messages(moves, issues, request.source)
    return CheckReport(moves, issues, result.tier_drift, batch_id, request_day, approval_day,
                       result.policy_label, request.source, expiry, until)


def current_lines(loaded: LoadedRegister) -> dict[str, int]:
    reg = loaded.register.drop_duplicates("customer")
    return dict(zip(reg["customer"], reg["credit_line_cents"].fillna(0).astype("int64").map(int)))


def with_lines(loaded: LoadedRegister, lines: dict[str, int]) -> LoadedRegister:
    """The register as it would read with these customers' lines changed (in memory only)."""
    if not lines:
        return loaded
    reg = loaded.register.copy()
    reg["credit_line_cents"] = [lines.get(c, v) for c, v in zip(reg["customer"], reg["credit_line_cents"])]
    return replace(loaded, register=reg)


def _health(loaded: LoadedRegister, key: AuditKey | None, applying: bool) -> list[Issue]:
    """verify's findings; a check alone (not applying) reports a keyed chain it could not check
    as a warning, since it writes nothing."""
    issues = verify_loaded(loaded, key, writing=True)
    if applying:
        return issues
    return [replace(i, severity=WARNING) if i.code == WorkflowCode.KEY_NEEDED else i for i in issues]


def _signoff_gate(loaded: LoadedRegister, applying: bool) -> list[Issue]:
    """Before the year's standard is signed nothing is applied (named as the SignOff sheet it lacks)."""
    if is_signed(loaded):
        return []
    year = normalize_text(loaded.about.get("budget_year")) or "the year"
    return [Issue(WorkflowCode.UNSIGNED, f"the {year} credit standard is not signed off: "
                  + ("run `crm-addin sign-off REGISTER --ceo .. --cfo .. --sales-director ..` (or the SignOff macro) "
                     "before applying a batch / 额度标准尚未签字确认，请先签字" if applying else
                     "this check is only a check; applying needs `crm-addin sign-off` (or the SignOff macro) first "
                     "/ 额度标准尚未签字确认，仅作检查"),
                  source=SIGNOFF, severity=ERROR if applying else WARNING)]


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


def _until(approval: Approval, approval_day: date, source: str) -> tuple[date | None, list[Issue]]:
    """A temporary batch's end date: after the approval date."""
    if is_blank(approval.until):
        return None, []
    until, issues = parse_day(approval.until, "until", source, approval_day)
    if not issues and until <= approval_day:
        issues.append(Issue(WorkflowCode.TEMPORARY, f"end date {until} is not after the approval date {approval_day} "
                            "/ 临时额度截止日期须晚于审批日期", column="until", source=source))
    return until, issues


def _batch_id_issues(loaded: LoadedRegister, batch_id: str, source: str) -> list[Issue]:
    if batch_id.upper().startswith(RESERVED_PREFIXES):
        return [Issue(WorkflowCode.DUPLICATE_BATCH, f"batch ids starting {', '.join(RESERVED_PREFIXES)} are the "
                      "workflow's own (sign-off, amendment, expiry) / 批次号前缀保留", column="batch_id", source=source)]
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

@dataclass(frozen=True)
class VerifyReport:
    """verify's findings, the sign-off it checked against (None: unsigned) and the chain's keying
    ('unkeyed', 'keyed', 'unchecked': keyed but no key given, 'wrong key')."""

    issues: list[Issue]
    standard: Standard | None
    signed: bool
    chain_state: str
    key_id: str
    temporary: list[str]

    def notes(self) -> list[str]:
        """What verify checked, in a few lines: the sign-off, the chain's keying, temporary parts."""
        if self.standard is not None:
            lines = [f"sign-off checked / 已核对签字: {self.standard.year} {self.standard.summary()}"]
        elif self.signed:
            lines = ["sign-off: recorded but unreadable (see below) / 签字记录无法读取"]
        else:
            lines = ["unsigned: no sign-off of the year's standard; reallocate refuses until `crm-addin sign-off` "
                     "/ 额度标准尚未签字确认"]
        lines.append(CHAIN_NOTES[self.chain_state].format(key_id=self.key_id))
        return lines + self.temporary


CHAIN_NOTES = {
    "unkeyed": "unkeyed chain: anyone can recompute it; use --key-file to key it / 审计链未加密钥，任何人可重算",
    "keyed": "keyed chain (key id {key_id}): HMACs checked with the key / 已用密钥校验审计链",
    "unchecked": "keyed chain (key id {key_id}): hashes NOT checked, no key given (--key-file or "
                 f"{KEY_ENV}) / 审计链已加密钥，未校验",
    "wrong key": "keyed chain (key id {key_id}): the key given is not its key; hashes NOT checked / 密钥不符",
}


def verify(path: str | Path, key: AuditKey | None = None) -> list[Issue]:
    """Everything wrong with a register: read problems, audit chain, lines vs log, total vs budget,
    and everything that differs from its signed standard."""
    return verify_loaded(load_register(path, for_writing=False), key)


def verify_report(path: str | Path, key: AuditKey | None = None) -> VerifyReport:
    return inspect_register(load_register(path, for_writing=False), key)


def verify_loaded(loaded: LoadedRegister, key: AuditKey | None = None, *, writing: bool = False,
                  amending: bool = False) -> list[Issue]:
    return inspect_register(loaded, key, writing=writing, amending=amending).issues


def inspect_register(loaded: LoadedRegister, key: AuditKey | None = None, *, writing: bool = False,
            amending: bool = False) -> VerifyReport:
    """verify's checks. `writing`: a key on an unkeyed chain starts keying it (no issue);
    `amending`: Policy keys that differ from the signed ones are what the amendment adopts."""
    recorded = normalize_text(loaded.about.get(KEY_ID))
    checked = check_chain(loaded.audit, key, recorded, loaded.about_rows.get(KEY_ID), writing)
    issues = list(loaded.issues) + checked.issues + entry_issues(loaded.audit) + _head_issues(loaded)
    signed = is_signed(loaded)
    if signed:
        issues += standard_issues(loaded, policy=not amending)
    if not signed or loaded.signed is None:
        issues += _line_issues(loaded.register, loaded.audit)
    issues += _register_issues(loaded.register, loaded.audit) + _budget_issues(loaded)
    if loaded.values is not None:
        issues += temporary_sheet_issues(loaded.values, loaded.audit) + register_column_issues(loaded.values, loaded.audit)
    return VerifyReport(issues, loaded.signed, signed, checked.state, recorded or (key.key_id if key else ""),
                        temporary_notes(loaded.audit))


def _head_issues(loaded: LoadedRegister) -> list[Issue]:
    """About.audit_head, when present, is the hash of the newest Audit entry."""
    head = normalize_text(loaded.about.get("audit_head"))
    if "audit_head" not in loaded.about or head == last_hash(loaded.audit):
        return []
    return [Issue(WorkflowCode.CHAIN_BROKEN, "the Audit sheet does not end with the entry the register "
                  "recorded last: entries were deleted or added at the end / 审计记录末尾被删改",
                  row=loaded.about_rows.get("audit_head"), column="B", source=ABOUT)]


def _line_issues(register: pd.DataFrame, audit: pd.DataFrame) -> list[Issue]:
    """Unsigned registers: every line = its yearly allocation + the changes applied."""
    issues: list[Issue] = []
    moves = customer_entries(audit)
    applied = moves.groupby("customer")["change_cents"].sum() if len(moves) else pd.Series(dtype="int64")
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
    return issues


def _register_issues(register: pd.DataFrame, audit: pd.DataFrame) -> list[Issue]:
    """A customer listed twice; an Audit entry for a customer the Register does not have."""
    issues = [Issue(IssueCode.DUPLICATE_CUSTOMER, f"customer {rec['customer']!r} has more than one row / 客户重复",
                    row=rec["row"], column=_LABEL["customer"], source=REGISTER)
              for rec in register.loc[register["customer"].duplicated()].to_dict("records")]
    moves = customer_entries(audit)
    if len(moves):
        for rec in moves.loc[~moves["customer"].isin(set(register["customer"]))].to_dict("records"):
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
               dry_run: bool = False, key: AuditKey | None = None) -> Outcome:
    """Check the request; when it passes (and not a dry run) write it. Nothing is written on failure.

    Raises RegisterChangedError when someone else wrote the register after we loaded it, or held
    its lock for longer than LOCK_WAIT_SECONDS.
    """
    now = now or datetime.now().astimezone()
    loaded = load_register(path)
    reached("loaded")
    report = check_request(loaded, request, approval, now, applying=not dry_run, key=key)
    if dry_run or not report.ok:
        return Outcome(report, False)
    stamp = write_batch(loaded, report, approval, now, key)
    return Outcome(report, True, stamp)


def write_batch(loaded: LoadedRegister, report: CheckReport, approval: Approval, now: datetime,
                key: AuditKey | None = None) -> Stamp:
    """The checked batch (after the reversals of temporary batches that ended) into the register."""
    entries = report.expiry.entries + _entries(report, approval, now)
    lines = {**report.expiry.lines, **dict(zip(report.moves["customer"], report.moves["new_cents"].map(int)))}
    return commit(loaded, entries, lines, key)


def commit(loaded: LoadedRegister, entries: list[dict[str, object]], lines: dict[str, int],
           key: AuditKey | None = None, edits: tuple[Callable[[object], None], ...] = ()) -> Stamp:
    """Write entries (chained, keyed when a key is given) and the new lines, run `edits` on the
    book, bump the version, then save under the lock atomically, re-read and verify. Every write
    of the workflow (a batch, a sign-off) goes through here."""
    _key_gate(loaded, key)
    entries = chain(entries, last_hash(loaded.audit), key)
    _write_lines(loaded, lines)
    _append_audit(loaded, entries)
    parts = temporary_parts(_with_entries(loaded.audit, entries))
    write_temporary_sheet(loaded.book, parts)
    write_register_columns(loaded.book, dict(zip(loaded.register["customer"], loaded.register["row"])),
                           temporary_parts(loaded.audit), parts)
    for edit in edits:
        edit(loaded.book)
    version = loaded.stamp.version + 1
    set_about(loaded, "register_version", version)
    set_about(loaded, "audit_head", entries[-1]["hash"])
    if key is not None:
        set_about(loaded, KEY_ID, key.key_id)
    reached("edited")
    try:
        with register_lock(loaded.path), atomic_path(loaded.path) as tmp:
            save_rewritten(loaded.book, tmp, loaded.values, lambda: rebuild_sheets(loaded.book, loaded.path))
            reached("saved")
            if file_sha256(loaded.path) != loaded.stamp.sha256:
                raise RegisterChangedError([Issue(WorkflowCode.REGISTER_CHANGED, CHANGED, source=loaded.path.name)])
            reached("before_rename")
    except OSError as exc:  # e.g. Windows refuses to replace a file another program holds open
        raise CrmInputError([Issue(WorkflowCode.REGISTER_CHANGED, f"cannot replace the register ({exc}); "
                                   "is it open in Excel? nothing written / 无法写入", source=loaded.path.name)]) from exc
    reached("renamed")
    return _check_written(loaded.path, version, lines, key)


def _with_entries(audit: pd.DataFrame, entries: list[dict[str, object]]) -> pd.DataFrame:
    """The Audit log as it reads after the write (rows numbered as on the sheet)."""
    frames = [f for f in (audit.drop(columns="row"), pd.DataFrame(entries)) if len(f)]
    combined = pd.concat(frames, ignore_index=True) if frames else audit
    return combined.assign(row=range(2, len(combined) + 2))


def _key_gate(loaded: LoadedRegister, key: AuditKey | None) -> None:
    """Once a chain is keyed every new entry is: a write without the key (or with another) is refused."""
    recorded = normalize_text(loaded.about.get(KEY_ID))
    row = loaded.about_rows.get(KEY_ID)
    if recorded and key is None:
        raise CrmInputError([Issue(WorkflowCode.KEY_NEEDED, f"the chain is keyed (key id {recorded}): every new entry "
                                   f"must be keyed; give --key-file FILE or set {KEY_ENV}; nothing written "
                                   "/ 审计链已加密钥，请提供密钥", row=row, column="B", source=ABOUT)])
    if recorded and key.key_id != recorded:
        raise CrmInputError([Issue(WorkflowCode.KEY_MISMATCH, f"the key does not match the chain's key id ({recorded}); "
                                   "nothing written / 密钥与审计链不符", row=row, column="B", source=ABOUT)])
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
    override = until_text(report.until, normalize_text(approval.override_reason))
    return [{"timestamp": stamp, "batch_id": report.batch_id, "customer": m.customer,
             "old_line_cents": int(m.old_cents), "change_cents": int(m.change_cents),
             "new_line_cents": int(m.new_cents), "reason": m.reason, "requester": roles.requester,
             "approver": roles.approver, "recorder": roles.recorder,
             "request_date": report.request_date, "approval_date": report.approval_date,
             "override_reason": override}
            for m in report.moves.itertuples(index=False)]


def _columns(ws, columns) -> dict[str, int]:
    lookup = header_lookup(columns)
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    return {lookup[k]: i + 1 for i, h in enumerate(header)
            if h is not None and (k := normalize_text(h).lower()) in lookup}


def _write_lines(loaded: LoadedRegister, lines: dict[str, int]) -> None:
    ws = loaded.book[REGISTER]
    cols = _columns(ws, REGISTER_COLUMNS)
    rows = dict(zip(loaded.register["customer"], loaded.register["row"]))
    balances = dict(zip(loaded.register["customer"], loaded.register["open_balance_cents"]))
    for customer, cents in lines.items():
        row = rows[customer]
        ws.cell(row=row, column=cols["credit_line"]).value = units(int(cents))
        util = ws.cell(row=row, column=cols["utilisation"]) if "utilisation" in cols else None
        if util is not None and isinstance(util.value, (int, float)) and not _missing(balances[customer]):
            util.value = int(balances[customer]) / int(cents) if cents else None


WRAPPED_AUDIT = ("reason", "override_reason")


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
                if col.key in WRAPPED_AUDIT:  # a reason reads whole, as the column's own style has it
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    _extend_tables(ws, start + len(entries) - 1)


def _extend_tables(ws, last_row: int) -> None:
    """An Excel table over the Audit sheet grows to take the new entries."""
    for table in ws.tables.values():
        min_col, min_row, max_col, max_row = range_boundaries(table.ref)
        if min_row == 1 and max_row < last_row:
            table.ref = f"{get_column_letter(min_col)}1:{get_column_letter(max_col)}{last_row}"
            if table.autoFilter is not None:
                table.autoFilter.ref = table.ref


def set_about(loaded: LoadedRegister, key: str, value: object) -> None:
    ws = loaded.book[ABOUT]
    row = loaded.about_rows.get(key)
    if row is None:  # a new key: its row at the end, with its meaning beside it
        row = loaded.about_rows[key] = ws.max_row + 1
        meaning = ABOUT_MEANINGS.get(key) or ABOUT_KEYS.get(key)
        if meaning:
            set_text(ws.cell(row=row, column=3), meaning)
    set_text(ws.cell(row=row, column=1), key)
    ws.cell(row=row, column=2).value = value


def _check_written(path: Path, version: int, lines: dict[str, int], key: AuditKey | None) -> Stamp:
    """Re-read what was written: the new lines, the version and the whole register must verify."""
    reread = load_register(path, for_writing=False)
    problems = verify_loaded(reread, key)
    written = dict(zip(reread.register["customer"], reread.register["credit_line_cents"]))
    problems += [Issue(WorkflowCode.LINE_MISMATCH, f"{customer}: written line is not {units(cents):,.2f}",
                       source=REGISTER) for customer, cents in lines.items() if written.get(customer) != cents]
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
    unit = max(1, effective_policy(loaded).credit_unit_cents)
    excluded = list(exclude) + ([for_customer] if for_customer else [])
    cuts = suggest_cuts(reg["customer"].tolist(), reg["credit_line_cents"].fillna(0).astype("int64").tolist(),
                        reg["open_balance_cents"].fillna(0).astype("int64").tolist(), rates, amount_cents,
                        exclude=excluded, unit_cents=unit)
    lines = [{"customer": c, "change_cents": -int(cut), "reason": why}
             for c, cut, why in zip(cuts["customer"], cuts["cut_cents"], cuts["why"])]
    if for_customer:
        lines.insert(0, {"customer": for_customer, "change_cents": int(amount_cents), "reason": ""})
    return pd.DataFrame(lines, columns=["customer", "change_cents", "reason"])


__all__ = ["BUSY", "CHANGED", "CHECKPOINTS", "CheckReport", "Outcome", "RegisterChangedError", "VerifyReport",
           "batches_in_quarter", "check_request", "checkpoints", "commit", "inspect_register", "reallocate", "register_lock",
           "suggest_request", "verify", "verify_loaded", "verify_report", "with_lines", "write_batch"]
