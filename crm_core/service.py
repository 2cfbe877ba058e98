"""The service log (000, 004: complaints, 一天以內響應, satisfaction surveys; key customers first):
each case's response and resolution time against the service level of its customer's stage tier
(policy service_response_days, service_resolve_days), and the review per tier.

One rule, computed here and by the Service sheet's native formulas alike:
- a case counts once it has a received date (a date, not text) and a customer code;
- its tier is the customer's stage tier on the Register when that is one of A-E, else NO_TIER
  (a customer not in the register, or without a tier): no service level, never a breach;
- elapsed = (responded, or the as-of date while not responded) - received, in days; a breach is
  elapsed above the tier's days; the same with resolved for the resolution;
- open = received and not resolved; satisfaction is averaged over the scores from 1 to 5.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .contacts import as_day
from .issues import WARNING, Issue, IssueCode
from .policy import Policy
from .schema import Column
from .tiers import STAGE_TIERS
from .values import is_blank, normalize_text

SERVICE = "Service"
SERVICE_COLUMNS: list[Column] = [
    Column("received", "受理时间", "Received", "date"),
    Column("customer", "客户编码", "Code"),
    Column("channel", "方式", "Channel"),
    Column("issue", "问题", "Issue"),
    Column("owner", "负责人", "Owner"),
    Column("responded", "响应时间", "Responded", "date"),
    Column("resolved", "解决时间", "Resolved", "date"),
    Column("satisfaction", "满意度", "Satisfaction (1-5)"),
]
SERVICE_TIERS = STAGE_TIERS  # service is reviewed by the customer's stage tier
NO_TIER = "未分级 no tier"
TOTAL = "合计 Total"
REVIEW_COLUMNS = ["tier", "response_days_limit", "resolve_days_limit", "cases", "open", "response_breaches",
                  "resolve_breaches", "satisfaction"]


@dataclass(frozen=True)
class ServiceLog:
    """Cases that count (received, customer, owner, responded, resolved, satisfaction; `row` the
    sheet row) and every problem found, each naming its row and column."""

    cases: pd.DataFrame
    issues: list[Issue]


def _problem(code: IssueCode, text: str, row: int, column: Column, source: str, warning: bool = False) -> Issue:
    return Issue(code, text, row=row, column=column.label, source=source, severity=WARNING if warning else "error")


def _score(value: object) -> float | None:
    """A satisfaction score the review averages: a number from 1 to 5."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value) if 1 <= float(value) <= 5 else None


def _row_issues(rec: dict, known: set[str], source: str) -> list[Issue]:
    cols = {c.key: c for c in SERVICE_COLUMNS}
    row, out = int(rec["row"]), []
    received = as_day(rec.get("received"))
    if received is None:
        text = "no received date / 未填受理时间" if is_blank(rec.get("received")) else \
            f"{str(rec.get('received'))[:40]!r} is not a date (type it as a date) / 不是日期"
        out.append(_problem(IssueCode.BLANK if is_blank(rec.get("received")) else IssueCode.BAD_DATE, text, row,
                            cols["received"], source))
    code = normalize_text(rec.get("customer"))
    if not code:
        out.append(_problem(IssueCode.BLANK, "no customer code / 未填客户编码", row, cols["customer"], source))
    elif code.lower() not in known:
        out.append(_problem(IssueCode.UNKNOWN_CUSTOMER, f"customer {code!r} is not in the register (no service level) "
                            "/ 客户编码不在登记表中", row, cols["customer"], source, warning=True))
    for key in ("responded", "resolved"):
        value = rec.get(key)
        day = as_day(value)
        if not is_blank(value) and day is None:
            out.append(_problem(IssueCode.BAD_DATE, f"{str(value)[:40]!r} is not a date / 不是日期", row, cols[key],
                                source))
        elif day is not None and received is not None and day < received:
            out.append(_problem(IssueCode.BAD_DATE, f"{cols[key].en.lower()} before it was received / 早于受理时间",
                                row, cols[key], source, warning=True))
    score = rec.get("satisfaction")
    if not is_blank(score) and (_score(score) is None or not float(score).is_integer()):
        out.append(_problem(IssueCode.BAD_NUMBER, f"satisfaction {str(score)[:20]!r} is not a whole score from 1 to 5"
                            " / 满意度应为 1-5 的整数", row, cols["satisfaction"], source, warning=_score(score) is not None))
    return out


def read_service(records: pd.DataFrame, customers: Sequence[object], source: str = SERVICE) -> ServiceLog:
    """The service log from sheet records (SERVICE_COLUMNS' keys and `row`), checked row by row."""
    known = {normalize_text(c).lower() for c in customers}
    issues: list[Issue] = []
    kept = []
    for rec in records.to_dict("records"):
        issues += _row_issues(rec, known, source)
        received, code = as_day(rec.get("received")), normalize_text(rec.get("customer"))
        if received is not None and code:
            kept.append({"row": int(rec["row"]), "received": received, "customer": code,
                         "owner": normalize_text(rec.get("owner")), "responded": as_day(rec.get("responded")),
                         "resolved": as_day(rec.get("resolved")), "satisfaction": _score(rec.get("satisfaction"))})
    frame = pd.DataFrame(kept, columns=["row", "received", "customer", "owner", "responded", "resolved",
                                        "satisfaction"])
    for key in ("received", "responded", "resolved"):
        frame[key] = pd.to_datetime(frame[key])
    frame["satisfaction"] = frame["satisfaction"].astype("float64")
    return ServiceLog(frame, issues)


def case_tiers(cases: pd.DataFrame, stage_tier_of: Mapping[str, object]) -> np.ndarray:
    """Each case's tier: its customer's stage tier when one of A-E, else NO_TIER."""
    tiers = {normalize_text(k).lower(): normalize_text(v).upper() for k, v in stage_tier_of.items()}
    out = [tiers.get(normalize_text(c).lower(), "") for c in cases["customer"]]
    return np.array([t if t in SERVICE_TIERS else NO_TIER for t in out], dtype=object)


def service_cases(cases: pd.DataFrame, stage_tier_of: Mapping[str, object], as_of: pd.Timestamp,
                  policy: Policy | None = None) -> pd.DataFrame:
    """The cases with tier, response and resolution days (NaN when not yet), each breach (True,
    False, or None without a service level) and open (not resolved)."""
    policy = policy or Policy()
    out = cases.copy()
    out["tier"] = case_tiers(cases, stage_tier_of)
    as_of = pd.Timestamp(as_of)
    for key, limits, name in (("responded", policy.service_response_days, "response"),
                              ("resolved", policy.service_resolve_days, "resolve")):
        done = out[key]
        out[f"{name}_days"] = (done - out["received"]).dt.total_seconds() / 86400
        elapsed = (done.fillna(as_of) - out["received"]).dt.total_seconds() / 86400
        limit = pd.Series([limits.get(t, np.nan) if t != NO_TIER else np.nan for t in out["tier"]],
                          index=out.index, dtype="float64")
        out[f"{name}_breach"] = [None if np.isnan(lim) else bool(e > lim) for e, lim in zip(elapsed, limit)]
    out["open"] = out["resolved"].isna()
    return out


def service_review(cases: pd.DataFrame, policy: Policy | None = None) -> pd.DataFrame:
    """Per tier (A-E, NO_TIER, then TOTAL): the service levels in days, cases, open cases, response
    and resolution breaches, and the average satisfaction (NaN with no score). `cases`: from
    `service_cases`."""
    policy = policy or Policy()
    rows = []
    for tier in [*SERVICE_TIERS, NO_TIER, TOTAL]:
        part = cases if tier == TOTAL else cases[cases["tier"] == tier]
        scores = part["satisfaction"].dropna()
        rows.append({
            "tier": tier,
            "response_days_limit": policy.service_response_days.get(tier, np.nan),
            "resolve_days_limit": policy.service_resolve_days.get(tier, np.nan),
            "cases": len(part), "open": int(part["open"].sum()),
            "response_breaches": int((part["response_breach"] == True).sum()),  # noqa: E712 (None is no level)
            "resolve_breaches": int((part["resolve_breach"] == True).sum()),  # noqa: E712
            "satisfaction": float(scores.mean()) if len(scores) else np.nan,
        })
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)


def open_complaint_customers(service_log: ServiceLog | pd.DataFrame) -> set[str]:
    """Customers with a case received and not resolved (for the Register's flag)."""
    cases = service_log.cases if isinstance(service_log, ServiceLog) else service_log
    return {str(c) for c in cases.loc[cases["resolved"].isna(), "customer"]}
