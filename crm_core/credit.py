"""The yearly credit budget (赊销额度预算) and its allocation to tiers and customers.

Budget = last year's net sales x credit ratio x (1 + VAT). The budget is split between tiers
by sales share x tier weight, then within a tier by sales. Lines are rounded to the policy's
unit with largest remainders, so they always add up to the budget exactly.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode
from .policy import Policy


def credit_budget_cents(net_sales_cents: int, ratio: float, vat_rate: float) -> int:
    """Exact in decimal: 4000万 x 20% x 1.17 = 936万, not 935.9999...万."""
    budget = Decimal(int(net_sales_cents)) * Decimal(str(ratio)) * (1 + Decimal(str(vat_rate)))
    return int(budget.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate_credit(tiers: Sequence[str], sales_cents: Sequence[float], budget_cents: int,
                    weights: Mapping[str, float] | None = None, unit_cents: int | None = None,
                    policy: Policy | None = None) -> np.ndarray:
    """Credit line per customer (int64 cents), summing exactly to `budget_cents`.

    A customer's share is its sales x its tier's weight over the total of that product, which is
    the same as splitting by tier sales share x weight and then by sales within the tier.
    Tiers without a weight (e.g. 'unrated') and customers without positive sales get nothing.
    """
    policy = policy or Policy()
    weights = dict(weights if weights is not None else policy.tier_weights)
    unit = int(unit_cents if unit_cents is not None else round(policy.credit_rounding * 100))
    tier_arr = np.asarray(tiers, dtype=object)
    w = np.array([float(weights.get(str(t), 0.0)) for t in tier_arr]) if len(tier_arr) else np.zeros(0)
    basis = np.clip(np.nan_to_num(np.asarray(sales_cents, dtype="float64")), 0, None) * w
    return largest_remainder(basis, int(budget_cents), unit)


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
