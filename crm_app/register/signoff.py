"""Signing the year's credit standard (签字确认): `crm-addin sign-off` and the SignOff macro.

The CEO, the CFO and the sales director sign the standard once a year (每年编制一次，由 CEO、CFO、
销售总监共同签字确认). Signing writes the SignOff sheet (crm_app.register.standard) and one Audit
entry carrying its digest, through the same write as a batch (`workflow.commit`: lock, atomic
save, version, re-read and verify). A second sign-off of the same year is refused; a new
standard within the year is an amendment (`amend` with a reason) by the same three roles.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from crm_app.register.audit import AuditKey, WorkflowCode
from crm_app.register.load import LoadedRegister, Stamp, load_register, parse_day
from crm_app.register.schema import ABOUT, AUDIT
from crm_app.register.standard import (
    ROLE_NAMES,
    Signers,
    Standard,
    build_standard,
    standard_entries,
    write_standard_sheet,
)
from crm_app.register.temporary import pending_expiry
from crm_app.register.workflow import (
    commit,
    current_lines,
    reached,
    set_about,
    verify_loaded,
    with_lines,
)
from crm_core.issues import CrmInputError, Issue
from crm_core.values import normalize_text

SOURCE = "sign-off"


@dataclass(frozen=True)
class SignOffOutcome:
    standard: Standard
    stamp: Stamp
    expired: list[str]  # temporary batches reversed first


def sign_off(path: str | Path, signers: Signers, signed_on: object = None, *, amend: bool = False,
             reason: str = "", key: AuditKey | None = None, now: datetime | None = None,
             source: str = SOURCE) -> SignOffOutcome:
    """Record the register's standard as signed by the three; raises CrmInputError (every reason,
    nothing written) when the names, the date, the year or the register's own health do not allow it."""
    now = now or datetime.now().astimezone()
    loaded = load_register(path)
    reached("loaded")
    day, issues = _day(signed_on, now.date(), source)
    clean = Signers(*(normalize_text(n) for n in (signers.ceo, signers.cfo, signers.sales_director)))
    issues += signer_issues(clean, source)
    batch_id, found = standard_id(loaded, amend, normalize_text(reason), source)
    issues += found
    issues += [i for i in verify_loaded(loaded, key, writing=True, amending=amend) if i.is_error]
    if issues:
        raise CrmInputError(issues)
    expiry = pending_expiry(loaded.audit, current_lines(loaded), now.date(), now)
    standard = build_standard(with_lines(loaded, expiry.lines), batch_id, clean, day, normalize_text(reason))
    entries = expiry.entries + [standard_entry(standard, now)]
    signed = f"{standard.year} · {standard.signers.text()} · {standard.signed_on.isoformat()}"
    stamp = commit(loaded, entries, expiry.lines, key, edits=(lambda book: write_standard_sheet(book, standard),
                                                             lambda book: set_about(loaded, "signed_off", signed)))
    return SignOffOutcome(standard, stamp, expiry.batches)


def signer_issues(signers: Signers, source: str = SOURCE) -> list[Issue]:
    """Three names, filled in and of three different people (compared as normalised, any case)."""
    names = {"ceo": signers.ceo, "cfo": signers.cfo, "sales_director": signers.sales_director}
    issues = [Issue(WorkflowCode.SIGNOFF, f"the {ROLE_NAMES[role]} is not filled in / 未填写签字人", column=role,
                    source=source) for role, name in names.items() if not normalize_text(name)]
    filled = [normalize_text(n).casefold() for n in names.values() if normalize_text(n)]
    if len(set(filled)) < len(filled):
        issues.append(Issue(WorkflowCode.SIGNOFF, "the CEO, the CFO and the sales director must be three different "
                            "people / 三位签字人须为不同人员", source=source))
    return issues


def _day(value: object, today: date, source: str) -> tuple[date, list[Issue]]:
    day, issues = parse_day(value, "date", source, today)
    if not issues and day > today:
        issues.append(Issue(WorkflowCode.BAD_DATE, f"the sign-off date {day} is in the future / 签字日期不能晚于今天",
                            column="date", source=source))
    return day, issues


def standard_id(loaded: LoadedRegister, amend: bool, reason: str, source: str = SOURCE) -> tuple[str, list[Issue]]:
    """SIGNOFF-<year> for the year's sign-off, AMEND-<year>-<n> for its n-th amendment."""
    if reason and not amend:
        return "", [Issue(WorkflowCode.SIGNOFF, "a reason is for an amendment: add --amend / 修订原因仅用于修订",
                          column="reason", source=source)]
    try:
        year = int(str(loaded.about.get("budget_year")).strip())
    except ValueError:
        return "", [Issue(WorkflowCode.SIGNOFF, f"the About sheet's budget_year {loaded.about.get('budget_year')!r} "
                          "is not a year / 额度年度无效", row=loaded.about_rows.get("budget_year"), column="B",
                          source=ABOUT)]
    same = standard_entries(loaded.audit)
    same = same.loc[[normalize_text(b).split("-")[1] == str(year) for b in same["batch_id"]]] if len(same) else same
    if not amend and len(same):
        return "", [Issue(WorkflowCode.SIGNOFF, f"the {year} standard is already signed (Audit row "
                          f"{int(same['row'].iloc[0])}); a new standard within the year is an amendment: "
                          "--amend --reason TEXT / 本年度已签字，修订请用 --amend", row=int(same["row"].iloc[0]),
                          source=AUDIT)]
    if amend and not len(same):
        return "", [Issue(WorkflowCode.SIGNOFF, f"the {year} standard is not signed yet: sign it off first, then "
                          "amend it / 尚未签字，无可修订", source=source)]
    if amend and not reason:
        return "", [Issue(WorkflowCode.SIGNOFF, "an amendment needs its reason (--reason TEXT) / 修订须说明原因",
                          column="reason", source=source)]
    return (f"AMEND-{year}-{len(same)}" if amend else f"SIGNOFF-{year}"), []


def standard_entry(standard: Standard, now: datetime) -> dict[str, object]:
    """The Audit entry of a standard: no customer, the budget as old and new line, no change."""
    return {"timestamp": now.isoformat(timespec="seconds"), "batch_id": standard.batch_id, "customer": "",
            "old_line_cents": standard.budget_cents, "change_cents": 0, "new_line_cents": standard.budget_cents,
            "reason": standard.entry_reason(), "requester": standard.signers.ceo, "approver": standard.signers.cfo,
            "recorder": standard.signers.sales_director, "request_date": standard.signed_on,
            "approval_date": standard.signed_on, "override_reason": standard.reason}
