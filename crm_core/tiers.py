"""Customer tiers (客户等级): ABCD by collection rate, Pareto ABC by sales, A-E by sales stage.

All functions take whole columns and return whole columns. Cut-offs and shares are fractions
(0.95, not 95: see `policy.fraction_problem`); a mapping pairs each label with its own cut-off,
and `pair_cutoffs` pairs a list of cut-offs typed in any order with labels given best first.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode
from .policy import Policy, require_fractions, require_shares
from .values import normalize_text

# Rates are compared after rounding to 9 places so that 0.95 computed as 0.9499999999 is A.
_RATE_PLACES = 9


def pair_cutoffs(bounds: Sequence[float], labels: Sequence[str], best: str = "highest",
                 name: str = "cutoffs") -> dict[str, float]:
    """Cut-offs in any order paired with `labels` given best first: the highest bound goes with
    the best label for rates (0.70;0.85;0.95 with A;B;C is A >= 95%), the lowest for Pareto's
    cumulative shares (`best="lowest"`: 0.9;0.7 with A;B is A up to 70%).

    Why sort: a list of bounds has one sensible pairing with ranked labels, so the order the
    bounds were typed in must not change a tier. A bound given twice would leave a tier empty.
    """
    require_fractions(name, bounds)
    values = sorted((float(b) for b in bounds), reverse=best == "highest")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"{name}: {twice[0]:g} is given twice; each tier "
                                   "needs its own cut-off / 分级标准重复", column=name)])
    return dict(zip(labels, values, strict=True))


def rate_tiers(rates: Sequence[float] | np.ndarray, cutoffs: Mapping[str, float] | None = None,
               lowest: str | None = None, unrated: str | None = None,
               policy: Policy | None = None) -> np.ndarray:
    """ABCD by collection rate, lower bounds inclusive (A >= 95%, B >= 85%, C >= 70%, else D).

    NaN rates (no sales) get the `unrated` label. Cut-offs above 1 (95 for 95%) are refused.
    """
    policy = policy or Policy()
    cutoffs = dict(cutoffs or policy.rate_cutoffs)
    require_fractions("cutoffs", cutoffs.values())
    lowest = lowest or policy.lowest_tier
    unrated = unrated or policy.unrated_label
    ordered = sorted(cutoffs.items(), key=lambda kv: kv[1])  # ascending thresholds
    bounds = np.array([v for _, v in ordered])
    labels = np.array([lowest] + [k for k, _ in ordered], dtype=object)
    values = np.round(np.asarray(rates, dtype="float64"), _RATE_PLACES)
    idx = np.searchsorted(bounds, np.where(np.isnan(values), -np.inf, values), side="right")
    return np.where(np.isnan(values), unrated, labels[idx]).astype(object)


def rank_tiers(rates: Sequence[float] | np.ndarray, shares: Mapping[str, float] | None = None,
               unrated: str | None = None, policy: Policy | None = None) -> np.ndarray:
    """Tier by rank: best 20% A, next 30% B, next 30% C, last 20% D (shares are policy).

    Equal rates always share a tier (the one of their best-placed member). Shares are fractions
    adding up to 1.
    """
    policy = policy or Policy()
    shares = dict(shares or policy.rank_shares)
    require_shares("shares", list(shares.values()))
    unrated = unrated or policy.unrated_label
    values = np.asarray(rates, dtype="float64")
    rated = ~np.isnan(values)
    out = np.full(len(values), unrated, dtype=object)
    n = int(rated.sum())
    if n == 0:
        return out
    ranks = pd.Series(values[rated]).rank(method="min", ascending=False).to_numpy() - 1
    edges = np.cumsum(list(shares.values())) * n
    idx = np.searchsorted(np.round(edges, 9), ranks, side="right")
    labels = np.array(list(shares), dtype=object)
    out[rated] = labels[np.minimum(idx, len(labels) - 1)]
    return out


def policy_rate_tiers(rates: Sequence[float] | np.ndarray, policy: Policy | None = None) -> np.ndarray:
    """Tiers by collection rate as the review assigns them: by the cut-offs, or by rank when the
    policy's tier_mode is rank. Every view that tiers customers by rate goes through here."""
    policy = policy or Policy()
    return rank_tiers(rates, policy=policy) if policy.tier_mode == "rank" else rate_tiers(rates, policy=policy)


def rate_tier_order(policy: Policy | None = None) -> list[str]:
    """The collection-rate tiers the policy gives, best first (rank mode: its rank shares'
    labels); the unrated label is not among them."""
    policy = policy or Policy()
    return list(policy.rank_shares) if policy.tier_mode == "rank" else policy.rate_tier_labels()


def tier_order_with_unrated(policy: Policy | None = None) -> list[str]:
    """`rate_tier_order` and then the unrated label: every tier a customer can have, best first."""
    policy = policy or Policy()
    return [*rate_tier_order(policy), policy.unrated_label]


def pareto_tiers(values: Sequence[float] | np.ndarray, cutoffs: Mapping[str, float] | None = None,
                 rest: str | None = None, policy: Policy | None = None) -> np.ndarray:
    """Pareto ABC by sales: A = the largest customers making the first 70% of the total, B the
    next 20%, C the rest. A customer belongs to the tier in which its cumulative share starts,
    so the customer that crosses 70% is still A. Zero or negative sales are always the last tier.
    Cut-offs are fractions (0.7, not 70).
    """
    policy = policy or Policy()
    cutoffs = dict(cutoffs or policy.pareto_cutoffs)
    require_fractions("cutoffs", cutoffs.values())
    rest = rest or policy.pareto_rest
    sales = np.nan_to_num(np.asarray(values, dtype="float64"), nan=0.0)
    positive = np.clip(sales, 0, None)
    total = positive.sum()
    out = np.full(len(sales), rest, dtype=object)
    if total <= 0:
        return out
    order = np.argsort(-positive, kind="stable")
    before = (np.cumsum(positive[order]) - positive[order]) / total  # share before this customer
    bounds = np.array(sorted(cutoffs.values()))
    labels = np.array(sorted(cutoffs, key=cutoffs.get) + [rest], dtype=object)
    tiers = labels[np.searchsorted(np.round(bounds, 12), np.round(before, 12), side="right")]
    tiers[positive[order] <= 0] = rest
    out[order] = tiers
    return out


# The A-E tiers by sales stage, best first: A-C by expected close, D potential or later, E no need.
STAGE_TIERS = ("A", "B", "C", "D", "E")

NEED_WORDS = {
    "clear": ("yes", "y", "clear", "true", "1", "有", "明确", "是", "有需求", "明确需求"),
    "potential": ("potential", "maybe", "possible", "潜在", "可能", "潜在需求"),
    "none": ("no", "n", "none", "false", "0", "无", "否", "没有", "无需求"),
}
_NEED = {w: k for k, words in NEED_WORDS.items() for w in words}


def need_kind(value: object) -> str:
    """'clear', 'potential', 'none', or '' when the word is not understood."""
    if isinstance(value, bool):
        return "clear" if value else "none"
    return _NEED.get(normalize_text(value).lower(), "")


def stage_tiers(needs: Sequence[object], expected_close: Sequence[object], as_of: pd.Timestamp,
                policy: Policy | None = None) -> np.ndarray:
    """A-E by sales stage: A closes within 1 month, B within 3, C within 6; D potential need or
    later than 6 months; E no need. Unknown need words give '' (the caller reports them).
    """
    policy = policy or Policy()
    kinds = np.array([need_kind(v) for v in needs], dtype=object)
    close = pd.to_datetime(pd.Series(list(expected_close), dtype=object), errors="coerce").to_numpy()
    as_of = pd.Timestamp(as_of).normalize()
    out = np.full(len(kinds), "D", dtype=object)
    months = sorted(policy.stage_months.items(), key=lambda kv: kv[1])
    clear = kinds == "clear"
    assigned = np.zeros(len(kinds), dtype=bool)
    for label, limit in months:
        horizon = np.datetime64(as_of + pd.DateOffset(months=int(limit)))
        hit = clear & ~assigned & ~np.isnat(close) & (close <= horizon)
        out[hit] = label
        assigned |= hit
    out[kinds == "none"] = "E"
    out[kinds == ""] = ""
    return out


def follow_up_due(stage: Sequence[object], last_contact: Sequence[object],
                  policy: Policy | None = None) -> np.ndarray:
    """Next follow-up date from the cadence (A daily, B weekly, C 15 days, D 30 days, E none).

    NaT where the tier needs no follow-up or the last contact is unknown.
    """
    policy = policy or Policy()
    days = np.array([policy.follow_up_days.get(str(s).strip().upper(), np.nan) for s in stage], dtype="float64")
    last = pd.to_datetime(pd.Series(list(last_contact), dtype=object), errors="coerce").to_numpy()
    delta = np.where(np.isnan(days), 0, days).astype("int64").astype("timedelta64[D]")
    due = last + delta
    due[np.isnan(days)] = np.datetime64("NaT")
    return due.astype("datetime64[ns]")


def cap_tiers(tiers: Sequence[object], capped: Sequence[bool], cap: str = "C",
              order: Sequence[str] = "ABCD") -> np.ndarray:
    """Tiers no better than `cap` where `capped` is true (e.g. a customer sued by other
    suppliers is at most C even if it pays us on time); other tiers unchanged."""
    rank = {t: i for i, t in enumerate(order)}
    out = np.asarray(tiers, dtype=object).copy()
    flags = np.asarray(capped, dtype=bool)
    better = np.array([rank.get(str(t), len(order)) < rank[cap] for t in out], dtype=bool)
    out[flags & better] = cap
    return out
