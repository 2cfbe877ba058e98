"""Which credit lines to cut to fund a raise: lines far above use first, then poor payers.

Never cuts a line below the customer's open balance; the cuts add up to exactly the amount.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode, check_invariant
from .policy import Policy
from .values import units


def suggest_cuts(customers: Sequence[str], lines_cents: Sequence[int], balances_cents: Sequence[int],
                 rates: Sequence[float], amount_cents: int, exclude: Sequence[str] = (),
                 unit_cents: int = 1, policy: Policy | None = None) -> pd.DataFrame:
    """Proposed cuts (customer, cut_cents, headroom_cents, utilisation, rate, why), largest priority first.

    Priority = unused share of the line + shortfall of the collection rate below 100%, so a
    line that is barely used and a customer that pays late are both drawn on early.
    Cuts are whole `unit_cents` except possibly the last, which makes the total exact. The
    reasons name a line used less than the policy's `cut_low_use` and a rate below `cut_low_rate`.
    """
    policy = policy or Policy()
    names = np.asarray(customers, dtype=object)
    lines = np.asarray(lines_cents, dtype="int64")
    balances = np.clip(np.asarray(balances_cents, dtype="int64"), 0, None)
    rate = np.asarray(rates, dtype="float64")
    headroom = np.clip(lines - balances, 0, None) // unit_cents * unit_cents
    headroom[np.isin(names, list(exclude))] = 0
    available = int(headroom.sum())
    if amount_cents <= 0:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, "the amount to fund must be positive", column="amount")])
    if available < amount_cents:
        raise CrmInputError([Issue(IssueCode.NOT_ENOUGH_HEADROOM,
                                   f"only {units(available):,.2f} can be cut without going below open balances; "
                                   f"{units(amount_cents):,.2f} asked / 可调减额度不足", column="amount")])
    utilisation = np.divide(balances, lines, out=np.ones(len(lines)), where=lines > 0)
    shortfall = np.clip(1 - np.nan_to_num(rate, nan=1.0), 0, 1)
    priority = (1 - np.clip(utilisation, 0, 1)) + shortfall
    order = np.lexsort((np.arange(len(names)), -headroom, -priority))
    order = order[headroom[order] > 0]
    before = np.cumsum(headroom[order]) - headroom[order]
    cut = np.clip(amount_cents - before, 0, headroom[order])
    take = cut > 0
    chosen = order[take]
    frame = pd.DataFrame({
        "customer": names[chosen], "cut_cents": cut[take].astype("int64"),
        "headroom_cents": headroom[chosen], "utilisation": utilisation[chosen], "rate": rate[chosen]})
    frame["why"] = [_why(u, r, policy) for u, r in zip(frame["utilisation"], frame["rate"])]
    total = int(frame["cut_cents"].sum())
    check_invariant(total == amount_cents, "suggested cuts must add up to the amount",
                    f"{units(total):,.2f} cut for {units(amount_cents):,.2f}")
    return frame


def _why(utilisation: float, rate: float, policy: Policy) -> str:
    reasons = []
    if utilisation < policy.cut_low_use:
        reasons.append(f"line {utilisation:.0%} used / 额度使用率低")
    if not np.isnan(rate) and rate < policy.cut_low_rate:
        reasons.append(f"collection rate {rate:.1%} / 回款率低")
    return "; ".join(reasons) or "headroom above open balance / 额度高于应收余额"
