"""The yearly credit budget (赊销额度预算) and its allocation to tiers and customers.

Budget = last year's net sales x credit ratio x (1 + VAT). The budget is split between tiers
by sales share x tier weight, then within a tier by sales. Lines are rounded to the policy's
unit with largest remainders, so they always add up to the budget exactly. The credit ratio and
VAT are fractions (0.2, not 20: see `policy.fraction_problem`); tier weights are plain factors.
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode
from .policy import Policy, require_fractions
from .values import units


def credit_budget_cents(net_sales_cents: int, ratio: float, vat_rate: float) -> int:
    """Exact in decimal: 4000万 x 20% x 1.17 = 936万, not 935.9999...万.

    A ratio of 20 or a VAT of 17 is refused (a budget of 2000% of sales is never meant).
    """
    if net_sales_cents < 0:
        raise _problem("net_sales", "net_sales must not be negative / 净销售额不能为负")
    require_fractions("ratio", [ratio])
    require_fractions("vat_rate", [vat_rate], below_one=True)
    budget = Decimal(int(net_sales_cents)) * Decimal(str(ratio)) * (1 + Decimal(str(vat_rate)))
    return int(budget.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate_credit(tiers: Sequence[str], sales_cents: Sequence[float], budget_cents: int,
                    weights: Mapping[str, float] | None = None, unit_cents: int | None = None,
                    policy: Policy | None = None) -> np.ndarray:
    """Credit line per customer (int64 cents), summing exactly to `budget_cents`.

    A customer's share is its sales x its tier's weight over the total of that product, which is
    the same as splitting by tier sales share x weight and then by sales within the tier.
    Customers without positive sales get nothing; so does the policy's unrated status (no sales
    in the period, so no rate) unless `weights` names it. Any other tier without a weight is
    refused rather than given 0: a weight of 0 (cash on delivery) must be said, not implied by
    a typo. A negative budget is refused.
    """
    policy = policy or Policy()
    weights = dict(weights if weights is not None else policy.tier_weights)
    unit = int(unit_cents if unit_cents is not None else policy.credit_unit_cents)
    if budget_cents < 0:
        raise _problem("budget", f"budget {units(budget_cents):,.2f} must not be negative / 额度预算不能为负")
    w = tier_weight_column(tiers, weights, policy.unrated_label)
    basis = np.clip(np.nan_to_num(np.asarray(sales_cents, dtype="float64")), 0, None) * w
    return largest_remainder(basis, int(budget_cents), unit)


def tier_weight_column(tiers: Sequence[object], weights: Mapping[str, float], unrated: str) -> np.ndarray:
    """Each customer's tier weight; every tier but `unrated` must have one (0 allowed)."""
    bad = [_bad_weight(t, float(w)) for t, w in weights.items() if not (math.isfinite(float(w)) and float(w) >= 0)]
    if bad:
        raise CrmInputError(bad)
    # a column's own conversion, not list(): that makes a Python string per customer (0.9 s for 10^6)
    cells = tiers.to_numpy(dtype=object) if isinstance(tiers, (pd.Series, pd.Index)) else list(tiers)
    codes, labels = pd.factorize(pd.Series(cells, dtype=object).fillna("").astype(str))
    known = {unrated: 0.0, **{str(k): float(v) for k, v in weights.items()}}
    firsts = np.unique(codes, return_index=True)[1]  # factorize numbers labels by first appearance
    missing = [_no_weight(label, int(firsts[k])) for k, label in enumerate(labels) if label not in known]
    if missing:
        raise CrmInputError(missing)
    return np.array([known[t] for t in labels], dtype="float64")[codes]


def _bad_weight(tier: str, weight: float) -> Issue:
    shown = "blank" if math.isnan(weight) else f"{weight:g}"
    return Issue(IssueCode.BAD_NUMBER, f"tier_weights: the weight of {tier!r} is {shown}; it must be 0 or more "
                 "(0 = cash on delivery) / 权重应为 0 或正数", column="tier_weights")


def _no_weight(label: str, pos: int) -> Issue:
    if not label.strip():
        what = "tiers is blank: give the customer a tier / 等级为空"
    else:
        what = (f"tier {label!r} has no weight in tier_weights (policy tier_weight.{label}); give it one, "
                f"0 = cash on delivery / 等级 {label!r} 没有权重")
    return Issue(IssueCode.BAD_POLICY, what, row=pos + 1, column="tiers")


def _problem(name: str, message: str) -> CrmInputError:
    return CrmInputError([Issue(IssueCode.BAD_NUMBER, message, column=name)])


def largest_remainder(basis: np.ndarray, total_cents: int, unit_cents: int = 1) -> np.ndarray:
    """Split `total_cents` in proportion to `basis`, in whole units, summing exactly to the total.

    Whole units go by largest remainder (ties to the larger basis, then the earlier row); cents
    left over when the total is not a multiple of the unit go to the largest share.
    """
    basis = np.asarray(basis, dtype="float64")
    out = np.zeros(len(basis), dtype="int64")
    weight_total = basis.sum()
    if len(basis) == 0 or weight_total <= 0 or total_cents == 0:
        if total_cents and len(basis):
            raise CrmInputError([Issue(IssueCode.BAD_POLICY, "nothing to allocate to: no customer has sales "
                                       "in a tier with a weight above 0 / 无可分配额度的客户", column="tier_weight")])
        return out
    units, odd_cents = divmod(int(total_cents), int(unit_cents))
    quota = basis / weight_total * units
    floors = np.floor(quota).astype("int64")
    short = units - int(floors.sum())  # may be -1/+1 off through float error; both handled
    order = np.lexsort((np.arange(len(basis)), -basis, -(quota - floors)))
    if short > 0:
        floors[order[:short]] += 1
    elif short < 0:
        takers = [i for i in order[::-1] if floors[i] > 0][: -short]
        floors[takers] -= 1
    out = floors * unit_cents
    if odd_cents:
        out[int(np.argmax(basis))] += odd_cents
    return out


def tier_split(tiers: Sequence[str], lines_cents: Sequence[int]) -> pd.Series:
    """Total credit per tier (int cents), tiers in sorted order."""
    frame = pd.DataFrame({"tier": np.asarray(tiers, dtype=object), "line": np.asarray(lines_cents, dtype="int64")})
    return frame.groupby("tier", sort=True)["line"].sum()
