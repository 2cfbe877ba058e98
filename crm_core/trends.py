"""Year-over-year evidence for a credit-line raise (调增依据): each customer's collection rate and
sales in two periods, their change and direction, and the raise candidates, the customers whose
rate improved and whose sales grew (C7 in the reference case, domain.md section 5).

Both periods' facts come from `customer_facts`, the review's own per-customer sums, so a rate
here is the rate the review shows for that period.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from .collection import Period, customer_facts
from .issues import CrmInputError, Issue, IssueCode
from .policy import Policy
from .values import units

# Rates are compared after rounding to 9 places (as tiers are), so float noise is no change.
_RATE_PLACES = 9

EVIDENCE_COLUMNS = ["customer", "sales_last_cents", "sales_this_cents", "sales_change_cents", "sales_growth",
                    "sales_direction", "rate_last", "rate_this", "rate_change", "rate_direction", "candidate",
                    "evidence"]


class Direction(StrEnum):
    """Which way a figure moved between the two periods; each member is its bilingual label."""

    UP = "up / 上升"
    DOWN = "down / 下降"
    FLAT = "unchanged / 持平"
    NONE = "no comparison / 无法比较"  # a rate missing in a period (no sales): nothing to compare


@dataclass(frozen=True)
class TwoPeriods:
    """The two periods compared: `last` (the earlier) and `this`."""

    last: Period
    this: Period

    @classmethod
    def ending_with(cls, this: Period) -> "TwoPeriods":
        """`this` and the same dates a year earlier (the material compares calendar years)."""
        year = pd.DateOffset(years=1)
        return cls(Period(this.start - year, this.end - year), this)

    def check(self) -> None:
        """Periods that overlap would count a document in both: refused, naming the argument."""
        if self.last.end >= self.this.start:
            raise CrmInputError([Issue(IssueCode.BAD_DATE, f"last year's period {self.last} must end before this "
                                       f"year's {self.this} starts / 上年期间须早于本年期间", column="last_period")])


def raise_evidence(rows: pd.DataFrame, periods: TwoPeriods, policy: Policy | None = None) -> pd.DataFrame:
    """Per customer of the ledger (EVIDENCE_COLUMNS): sales (net, cents) and collection rate in both
    periods, their change and direction, whether it is a raise candidate and the evidence in words.

    A candidate's rate rose by more than the policy's `raise_rate_gain` and its sales grew by more
    than `raise_sales_growth` of last year's (both 0 by default: any rise, any growth). A customer
    without sales in either period has no rate there and is never a candidate."""
    policy = policy or Policy()
    periods.check()
    last = customer_facts(rows, policy, periods.last)
    this = customer_facts(rows, policy, periods.this, customers=pd.Index(last["customer"], dtype=object))
    frame = pd.DataFrame({"customer": last["customer"].to_numpy(dtype=object),
                          "sales_last_cents": last["net_sales_cents"].to_numpy(dtype="int64"),
                          "sales_this_cents": this["net_sales_cents"].to_numpy(dtype="int64"),
                          "rate_last": last["collection_rate"].to_numpy(dtype="float64"),
                          "rate_this": this["collection_rate"].to_numpy(dtype="float64")})
    frame["sales_change_cents"] = frame["sales_this_cents"] - frame["sales_last_cents"]
    frame["sales_growth"] = _growth(frame["sales_change_cents"].to_numpy(), frame["sales_last_cents"].to_numpy())
    frame["sales_direction"] = _directions(frame["sales_change_cents"].to_numpy(dtype="float64"))
    frame["rate_change"] = np.round(frame["rate_this"] - frame["rate_last"], _RATE_PLACES)
    frame["rate_direction"] = _directions(frame["rate_change"].to_numpy())
    frame["candidate"] = _candidates(frame, policy)
    frame["evidence"] = [evidence_text(r) for r in frame.itertuples(index=False)]
    return frame[EVIDENCE_COLUMNS]


def raise_candidates(evidence: pd.DataFrame) -> pd.DataFrame:
    """The candidates of a `raise_evidence` table, the largest rate gain first (then sales growth)."""
    chosen = evidence[evidence["candidate"].to_numpy(dtype=bool)]
    return chosen.sort_values(["rate_change", "sales_change_cents", "customer"],
                              ascending=[False, False, True], kind="stable").reset_index(drop=True)


def _growth(change: np.ndarray, base: np.ndarray) -> np.ndarray:
    """change / base where last year's sales are positive; NaN where growth means nothing."""
    out = np.full(len(base), np.nan)
    np.divide(change.astype("float64"), base.astype("float64"), out=out, where=base > 0)
    return out


def _directions(change: np.ndarray) -> np.ndarray:
    out = np.full(len(change), Direction.NONE, dtype=object)
    out[change > 0] = Direction.UP
    out[change < 0] = Direction.DOWN
    out[change == 0] = Direction.FLAT
    return out


def _candidates(frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Rate up by more than the gain and sales up by more than the growth share, both measurable."""
    rate_gain = frame["rate_change"].to_numpy() > round(policy.raise_rate_gain, _RATE_PLACES)
    last = frame["sales_last_cents"].to_numpy(dtype="int64")
    # growth compared in cents: change > share x last year's sales, no division by a small base
    grew = frame["sales_change_cents"].to_numpy(dtype="float64") > policy.raise_sales_growth * last
    return rate_gain & grew & (last > 0)


def evidence_text(row) -> str:
    """One customer's evidence in words (a row of a `raise_evidence` table): its changes, then the verdict."""
    return f"{change_text(row)}; {verdict_text(row)}"


def change_text(row) -> str:
    """'collection rate 78.0% -> 86.0% (+8.0 pts); sales 400,000.00 -> 500,000.00 (+25.0%)'."""
    rate = _rate_words(row.rate_last, row.rate_this, row.rate_change)
    sales = f"sales {units(row.sales_last_cents):,.2f} -> {units(row.sales_this_cents):,.2f}"
    if not np.isnan(row.sales_growth):
        sales += f" ({row.sales_growth:+.1%})"
    return f"{rate}; {sales}"


def verdict_text(row) -> str:
    """Whether the customer is a raise candidate, and if not why not."""
    if row.candidate:
        return "raise candidate: rate improved, sales grew / 调增候选：回款率提高，销售增长"
    return "NOT a raise candidate / 非调增候选: " + _not_candidate(row)


def _rate_words(last: float, this: float, change: float) -> str:
    shown = [f"{r:.1%}" if not np.isnan(r) else "none / 无" for r in (last, this)]
    words = f"collection rate {shown[0]} -> {shown[1]}"
    return words + (f" ({change * 100:+.1f} pts)" if not np.isnan(change) else "")


def _not_candidate(row) -> str:
    if np.isnan(row.rate_change):
        return "no rate in one of the periods (no sales) / 某期无销售，无法比较回款率"
    reasons = []
    if row.rate_direction != Direction.UP:
        reasons.append("rate did not improve / 回款率未提高")
    if row.sales_direction != Direction.UP:
        reasons.append("sales did not grow / 销售未增长")
    return "; ".join(reasons) or "gains below the policy's raise thresholds / 增幅未达政策标准"
