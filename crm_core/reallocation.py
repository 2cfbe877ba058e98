"""Zero-sum credit-line reallocation (赊销额度调整): check a batch of moves, then apply it.

Pure functions: the workflow (roles, audit log, files) lives outside the core and calls these.
A batch passes when its changes sum to zero, every customer exists and appears once, no line
goes below zero or (policy) below the customer's open balance, the quarter's allowance is not
used up, and the three roles are filled (and distinct, by policy).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode, check_invariant
from .policy import Policy
from .values import normalize_text, units

OK = "ok"
WITHIN = "within tier / 同级调整"
ACROSS = "across tiers / 跨级调整"


@dataclass(frozen=True)
class Roles:
    requester: str = ""
    approver: str = ""
    recorder: str = ""


@dataclass(frozen=True)
class CheckResult:
    """`moves`: one row per request line (customer, tier, old, change, new, kind, message);
    `issues`: everything wrong, each naming its request row; `tier_drift`: per tier, the
    yearly split, the total after the batch and the drift between them (all int cents)."""

    moves: pd.DataFrame
    issues: list[Issue]
    tier_drift: pd.DataFrame
    policy_label: str

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)

    @property
    def verdict(self) -> str:
        """One line for the batch: 'ok ...' or 'refused ...' with the batch-level reasons."""
        return batch_verdict(self.issues, lambda i: i.row is not None)


def batch_verdict(issues: list[Issue], is_line_issue, passed: str = "ok: batch passes / 通过") -> str:
    """'ok' or 'refused' with every batch-level reason and a count of refused request lines."""
    errors = [i for i in issues if i.is_error]
    if not errors:
        return passed
    lines = [i for i in errors if is_line_issue(i)]
    parts = [str(i) if i.source else i.message for i in errors if not is_line_issue(i)]
    if lines:
        parts.append(f"{len({i.row for i in lines})} request line(s) refused, see their messages")
    return "refused / 不通过: " + "; ".join(parts)


@dataclass(frozen=True)
class Register:
    """What a check needs to know about the customers: lines, tiers, balances, yearly split."""

    lines_cents: pd.Series  # index: customer
    tiers: pd.Series
    balances_cents: pd.Series | None = None
    allocated_cents: pd.Series | None = None  # the yearly split, for tier drift
    extra: Mapping[str, object] = field(default_factory=dict)


def check_reallocation(register: Register, request: pd.DataFrame, policy: Policy | None = None,
                       roles: Roles | None = None, batches_this_quarter: int = 0,
                       override_reason: str = "", source: str = "request",
                       first_row: int = 2) -> CheckResult:
    """Check a request (columns customer, change_cents, optional reason and row) against the register.

    Rows are numbered from `first_row` unless the request carries its own `row` column (the
    row numbers of the file or sheet it came from), so issues point at the user's own rows.
    """
    policy = policy or Policy()
    moves = _moves_frame(register, request, first_row)
    issues: list[Issue] = []
    issues += _line_issues(moves, register, policy, override_reason, source)
    issues += _batch_issues(moves, policy, roles, batches_this_quarter, source)
    moves["kind"] = _kinds(moves)
    moves["message"] = _messages(moves, issues)
    drift = tier_drift(register, moves)
    return CheckResult(moves, issues, drift, policy.label)


def apply_reallocation(register: Register, request: pd.DataFrame, **check_args) -> tuple[pd.Series, CheckResult]:
    """New lines after the batch; raises CrmInputError (every issue) when the check fails."""
    result = check_reallocation(register, request, **check_args)
    if not result.ok:
        raise CrmInputError([i for i in result.issues if i.is_error])
    lines = register.lines_cents.copy()
    lines.loc[result.moves["customer"].to_list()] = result.moves["new_cents"].to_numpy(dtype="int64")
    check_invariant(int(lines.sum()) == int(register.lines_cents.sum()), "a zero-sum batch keeps the total of the lines")
    return lines, result


def _moves_frame(register: Register, request: pd.DataFrame, first_row: int) -> pd.DataFrame:
    customers = request["customer"].map(normalize_text).to_numpy(dtype=object)
    change = request["change_cents"].to_numpy(dtype="int64")
    known = register.lines_cents.index.get_indexer(customers) >= 0
    old = register.lines_cents.reindex(customers).fillna(0).to_numpy(dtype="int64")
    tiers = register.tiers.reindex(customers).fillna("").to_numpy(dtype=object)
    balances = (register.balances_cents.reindex(customers).fillna(0).to_numpy(dtype="int64")
                if register.balances_cents is not None else np.zeros(len(customers), dtype="int64"))
    reasons = request["reason"].map(normalize_text) if "reason" in request else pd.Series([""] * len(request))
    rows = (request["row"].to_numpy(dtype="int64") if "row" in request
            else np.arange(first_row, first_row + len(request)))
    return pd.DataFrame({
        "row": rows, "customer": customers,
        "known": known, "tier": tiers, "old_cents": old, "change_cents": change,
        "new_cents": old + change, "balance_cents": balances, "reason": reasons.to_numpy(dtype=object)})


def _line_issues(moves: pd.DataFrame, register: Register, policy: Policy, override_reason: str,
                 source: str) -> list[Issue]:
    issues: list[Issue] = []

    def add(code, mask, text, column="customer"):
        for r in moves.loc[mask].itertuples(index=False):
            issues.append(Issue(code, text(r), row=r.row, column=column, source=source))

    add(IssueCode.UNKNOWN_CUSTOMER, ~moves["known"], lambda r: f"customer {r.customer!r} is not in the register")
    dup = moves["customer"].duplicated(keep="first") & moves["known"]
    first = moves.drop_duplicates("customer").set_index("customer")["row"]
    add(IssueCode.DUPLICATE_CUSTOMER, dup,
        lambda r: f"customer {r.customer!r} already has a line in this request (row {first[r.customer]})")
    add(IssueCode.BELOW_ZERO, moves["known"] & (moves["new_cents"] < 0),
        lambda r: f"{r.customer}: line {_m(r.old_cents)} cut by {_m(-r.change_cents)} would be negative",
        column="change")
    if register.balances_cents is not None and not _below_balance_allowed(policy, override_reason):
        below = moves["known"] & (moves["change_cents"] < 0) & (moves["new_cents"] < moves["balance_cents"])
        add(IssueCode.BELOW_BALANCE, below & (moves["new_cents"] >= 0),
            lambda r: f"{r.customer}: new line {_m(r.new_cents)} is below the open balance "
                      f"{_m(r.balance_cents)} (policy cut_below_balance = {policy.cut_below_balance})",
            column="change")
    return issues


def _below_balance_allowed(policy: Policy, override_reason: str) -> bool:
    if policy.cut_below_balance == "allow":
        return True
    return policy.cut_below_balance == "override" and bool(normalize_text(override_reason))


def _batch_issues(moves: pd.DataFrame, policy: Policy, roles: Roles | None, batches_this_quarter: int,
                  source: str) -> list[Issue]:
    issues: list[Issue] = []
    total = int(moves["change_cents"].sum())
    if len(moves) == 0:
        issues.append(Issue(IssueCode.EMPTY, "the request has no lines", source=source))
    if total != 0:
        raises = int(moves["change_cents"].clip(lower=0).sum())
        cuts = int(-moves["change_cents"].clip(upper=0).sum())
        issues.append(Issue(IssueCode.NOT_ZERO_SUM,
                            f"changes do not sum to zero: raises {_m(raises)} vs cuts {_m(cuts)}, "
                            f"imbalance {_m(total, signed=True)} / 调整合计不为零",
                            column="change", source=source))
    if batches_this_quarter >= policy.reallocations_per_quarter:
        issues.append(Issue(IssueCode.QUOTA_USED,
                            f"this quarter already has {batches_this_quarter} applied batch(es); policy allows "
                            f"{policy.reallocations_per_quarter} per quarter / 本季度调整次数已用完", source=source))
    if roles is not None:
        issues += _role_issues(roles, policy, source)
    return issues


def _role_issues(roles: Roles, policy: Policy, source: str) -> list[Issue]:
    names = {"requester": roles.requester, "approver": roles.approver, "recorder": roles.recorder}
    clean = {k: normalize_text(v) for k, v in names.items()}
    issues = [Issue(IssueCode.ROLE_MISSING, f"{role} is not filled in / 未填写", column=role, source=source)
              for role, name in clean.items() if not name]
    filled = [n.casefold() for n in clean.values() if n]
    if policy.distinct_roles and len(set(filled)) < len(filled):
        issues.append(Issue(IssueCode.ROLES_NOT_DISTINCT,
                            "requester, approver and recorder must be three different people / 三个角色须为不同人员",
                            source=source))
    return issues


def _kinds(moves: pd.DataFrame) -> np.ndarray:
    """Within tier when every move on the other side of the batch is in this customer's tier."""
    raise_tiers = set(moves.loc[moves["change_cents"] > 0, "tier"])
    cut_tiers = set(moves.loc[moves["change_cents"] < 0, "tier"])
    kinds = []
    for tier, change in zip(moves["tier"], moves["change_cents"]):
        other = cut_tiers if change > 0 else raise_tiers
        kinds.append(WITHIN if change != 0 and other <= {tier} else ACROSS if change != 0 else "")
    return np.array(kinds, dtype=object)


def _messages(moves: pd.DataFrame, issues: list[Issue]) -> np.ndarray:
    by_row: dict[int, list[str]] = {}
    for issue in issues:
        if issue.row is not None:
            by_row.setdefault(issue.row, []).append(issue.message)
    return np.array(["; ".join(by_row[r]) if r in by_row else OK for r in moves["row"]], dtype=object)


def tier_drift(register: Register, moves: pd.DataFrame) -> pd.DataFrame:
    """Each tier's total now, after the batch, and against the yearly split (int cents)."""
    known = moves[moves["known"]]
    now = register.lines_cents.groupby(register.tiers.reindex(register.lines_cents.index)).sum()
    delta = known.groupby("tier")["change_cents"].sum()
    base = (register.allocated_cents.groupby(register.tiers.reindex(register.allocated_cents.index)).sum()
            if register.allocated_cents is not None else now)
    tiers = sorted(set(now.index) | set(delta.index) | set(base.index))
    frame = pd.DataFrame(index=pd.Index(tiers, name="tier"))
    frame["allocated_cents"] = base.reindex(tiers).fillna(0).astype("int64")
    frame["before_cents"] = now.reindex(tiers).fillna(0).astype("int64")
    frame["after_cents"] = frame["before_cents"] + delta.reindex(tiers).fillna(0).astype("int64")
    frame["drift_cents"] = frame["after_cents"] - frame["allocated_cents"]
    return frame.reset_index()


def _m(cents: int, signed: bool = False) -> str:
    text = f"{units(abs(cents)):,.2f}"
    if signed:
        return ("+" if cents > 0 else "-" if cents < 0 else "") + text
    return ("-" if cents < 0 else "") + text
