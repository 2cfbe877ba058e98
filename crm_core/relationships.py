"""Relationship KPIs (客户关系指标, material 001: 新增客户量(率), 升级客户量(率)): customers new, retained,
lost, moved up and down a collection-rate tier between two periods; customers of three years or
more; active, sleeping and lost customers by how long ago they last bought.

A customer of a period is one with a collection rate in it (sales in the period), as the review
rates it. A trade is an invoice or a balance brought forward (which shows the customer bought
before the ledger starts); receipts, credit notes and write-offs are not trades. Tenure counts from
the first trade, recency from the last invoice (a customer without one: from its balance brought
forward, so its recency is at least that long).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from .analysis import relationship_kpis
from .collection import customer_facts
from .ledger import INVOICE, OPENING_BALANCE
from .policy import Policy
from .schema import RateStatus
from .tiers import policy_rate_tiers, rate_tier_order
from .trends import TwoPeriods

TRADES = (INVOICE, OPENING_BALANCE)
RECENCY_COLUMNS = ["customer", "first_trade", "last_trade", "days_since_trade", "years_trading",
                   "long_standing", "recency"]
KPI_COLUMNS = ["measure", "customers", "rate", "rate_of"]


class Recency(StrEnum):
    """A customer's status by the days since its last trade (policy `sleeping_after_days`,
    `lost_after_days`); each member is its bilingual label."""

    ACTIVE = "active / 活跃"
    SLEEPING = "sleeping / 沉睡"
    LOST = "lost / 流失"


def period_tiers(facts: pd.DataFrame, policy: Policy) -> pd.Series:
    """The collection-rate tier of each customer rated in `facts` (customer_facts), by the policy's
    tier mode as the review tiers them; customers without a rate are left out."""
    rated = facts[facts["rate_status"] == RateStatus.RATED]
    rates = rated["collection_rate"].to_numpy(dtype="float64")
    tiers = policy_rate_tiers(rates, policy)
    return pd.Series(tiers, index=pd.Index(rated["customer"], dtype=object), dtype=object)


@dataclass(frozen=True)
class TierMoves:
    """Customers of each period and how they moved between them (counts)."""

    customers_last: int
    customers_this: int
    new: int
    lost: int
    moved_up: int
    moved_down: int
    unchanged: int

    @property
    def retained(self) -> int:
        return self.moved_up + self.moved_down + self.unchanged


def tier_moves(rows: pd.DataFrame, periods: TwoPeriods, policy: Policy | None = None) -> TierMoves:
    """New (rated this period, not last), lost (rated last period, not this), and the retained
    customers moved up, down or not between collection-rate tiers (crm_core.analysis.relationship_kpis)."""
    policy = policy or Policy()
    periods.check()
    last = period_tiers(customer_facts(rows, policy, periods.last), policy)
    this = period_tiers(customer_facts(rows, policy, periods.this), policy)
    counts = relationship_kpis(last, this, order=rate_tier_order(policy))
    return TierMoves(len(last), len(this), counts["new"], counts["lost"], counts["moved_up"], counts["moved_down"],
                     counts["unchanged"])


def customer_recency(rows: pd.DataFrame, as_of: pd.Timestamp, policy: Policy | None = None) -> pd.DataFrame:
    """Per customer with a trade on or before `as_of` (RECENCY_COLUMNS): first trade (invoice or
    balance brought forward), last trade (the last invoice), days since the last, whole years since the first, long-standing (at least `long_standing_years`) and
    the recency status (active, sleeping after `sleeping_after_days`, lost after `lost_after_days`)."""
    policy = policy or Policy()
    day = pd.Timestamp(as_of).normalize()
    trades = rows[rows["type"].isin(TRADES).to_numpy(dtype=bool) & (rows["date"] <= day).to_numpy(dtype=bool)]
    first = trades.groupby("customer", observed=True, sort=True)["date"].min()
    last = _last_purchase(trades).reindex(first.index).fillna(first)
    days = (day - last).dt.days.to_numpy(dtype="int64")
    years = _whole_years(first, day)
    status = np.full(len(days), Recency.ACTIVE, dtype=object)
    status[days > policy.sleeping_after_days] = Recency.SLEEPING
    status[days > policy.lost_after_days] = Recency.LOST
    return pd.DataFrame({"customer": first.index.to_numpy(dtype=object), "first_trade": first.to_numpy(),
                         "last_trade": last.to_numpy(), "days_since_trade": days, "years_trading": years,
                         "long_standing": years >= policy.long_standing_years, "recency": status})


def _last_purchase(trades: pd.DataFrame) -> pd.Series:
    """Each customer's last invoice date. A customer with none has bought before its balance brought
    forward, so that date stands in (the caller's fillna): recency is then at least that long."""
    invoices = trades[(trades["type"] == INVOICE).to_numpy(dtype=bool)]
    return invoices.groupby("customer", observed=True, sort=True)["date"].max()


def _whole_years(first: pd.Series, day: pd.Timestamp) -> np.ndarray:
    """Completed years from each date to `day` (a birthday count: 2008-03-01 to 2011-02-28 is 2)."""
    before_anniversary = (first.dt.month > day.month) | ((first.dt.month == day.month) & (first.dt.day > day.day))
    return (day.year - first.dt.year - before_anniversary.astype("int64")).to_numpy(dtype="int64")


def relationship_table(rows: pd.DataFrame, periods: TwoPeriods, policy: Policy | None = None,
                       as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """The relationship KPIs as rows (KPI_COLUMNS): measure, customers, rate (NaN where its base is
    empty) and what the rate is a share of. Tenure and recency are taken on `as_of` (default: the
    end of this period).

    Rates: new, lost and retained per customer of last period (新增/流失/留存率); moved up, down and
    unchanged per retained customer; long-standing and recency per customer trading by `as_of`."""
    policy = policy or Policy()
    moves = tier_moves(rows, periods, policy)
    recency = customer_recency(rows, as_of if as_of is not None else periods.this.end, policy)
    known = len(recency)
    of_last, of_retained, of_known = ("customers last period / 上期客户", "retained customers / 留存客户",
                                      "customers trading by the date / 截至当日有交易的客户")
    lines = [
        ("customers last period / 上期客户", moves.customers_last, None, ""),
        ("customers this period / 本期客户", moves.customers_this, None, ""),
        ("new customers / 新增客户", moves.new, moves.customers_last, of_last),
        ("retained customers / 留存客户", moves.retained, moves.customers_last, of_last),
        ("lost: no sales this period / 流失客户(本期无销售)", moves.lost, moves.customers_last, of_last),
        ("moved up a tier / 升级客户", moves.moved_up, moves.retained, of_retained),
        ("moved down a tier / 降级客户", moves.moved_down, moves.retained, of_retained),
        ("same tier / 等级不变", moves.unchanged, moves.retained, of_retained),
        (f"customers of {policy.long_standing_years} years or more / 老客户(满{policy.long_standing_years}年)",
         int(recency["long_standing"].sum()), known, of_known),
        *[(label, int((recency["recency"] == status).sum()), known, of_known)
          for status, label in recency_labels(policy).items()],
    ]
    return pd.DataFrame([{"measure": m, "customers": int(n), "rate": _share(n, base), "rate_of": of}
                         for m, n, base, of in lines], columns=KPI_COLUMNS)


def recency_labels(policy: Policy) -> dict[Recency, str]:
    """Each recency status with the policy's thresholds in words."""
    sleeping, lost = policy.sleeping_after_days, policy.lost_after_days
    return {Recency.ACTIVE: f"active: traded in the last {sleeping} days / 活跃客户({sleeping}天内有交易)",
            Recency.SLEEPING: f"sleeping: last trade {sleeping + 1}-{lost} days ago / 沉睡客户({sleeping + 1}-{lost}天)",
            Recency.LOST: f"lost: no trade for more than {lost} days / 流失客户(超过{lost}天无交易)"}


def _share(count: int, base: int | None) -> float:
    return count / base if base else float("nan")

