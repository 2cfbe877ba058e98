"""Where the sales and the receivables sit: Pareto tier x collection-rate tier with the customers
and receivables of each cell (big buyers who pay badly, material 002), and the share of sales and
of receivables the top N customers hold (MM: the top 100 buyers take 83% of sales, the 100
largest debtors hold 780万 of 1000万).

Receivables are as crm_core.analysis.Receivables defines them: what customers with a debit
balance owe; balances in credit are left out of the cells and counted apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .analysis import Receivables, top_n_mask
from .issues import CrmInputError, Issue, IssueCode, check_invariant
from .policy import Policy
from .tiers import tier_order_with_unrated

TOTAL = "total / 合计"
CELL_COLUMNS = ["pareto_tier", "rate_tier", "customers", "receivables_cents"]
SHARE_COLUMNS = ["measure", "n", "customers", "top_cents", "total_cents", "share"]


@dataclass(frozen=True)
class TierCrossTable:
    """Customers and receivables (cents) by Pareto tier (rows) and rate tier (columns), each with
    a total row and column; `in_credit_*`: the customers in credit, left out of the receivables."""

    customers: pd.DataFrame
    receivables_cents: pd.DataFrame
    in_credit_cents: int
    customers_in_credit: int

    def cells(self) -> pd.DataFrame:
        """Every cell (totals included) as a row: CELL_COLUMNS."""
        counts = self.customers.stack().rename("customers")
        money = self.receivables_cents.stack().rename("receivables_cents")
        both = pd.concat([counts, money], axis=1).reset_index()
        both.columns = CELL_COLUMNS
        return both


def tier_cross_table(pareto: Sequence[object], rate: Sequence[object], balances_cents: Sequence[int],
                     pareto_labels: Sequence[str], rate_labels: Sequence[str]) -> TierCrossTable:
    """Count customers and add up receivables owed by (Pareto tier, rate tier). Tiers outside the
    labels given are refused, so no customer falls out of the table unseen."""
    frame = pd.DataFrame({"pareto": np.asarray(pareto, dtype=object), "rate": np.asarray(rate, dtype=object),
                          "balance": np.asarray(balances_cents, dtype="int64")})
    _require_known(frame["pareto"], pareto_labels, "pareto_tiers")
    _require_known(frame["rate"], rate_labels, "rate_tiers")
    frame["owed"] = frame["balance"].clip(lower=0)
    shape = dict(index=list(pareto_labels), columns=list(rate_labels), fill_value=0)
    counts = frame.pivot_table(index="pareto", columns="rate", values="owed", aggfunc="size", fill_value=0)
    money = frame.pivot_table(index="pareto", columns="rate", values="owed", aggfunc="sum", fill_value=0)
    counts = _with_totals(counts.reindex(**shape).astype("int64"))
    money = _with_totals(money.reindex(**shape).astype("int64"))
    owed = Receivables.of(frame["balance"])
    check_invariant(int(money.loc[TOTAL, TOTAL]) == owed.owed_cents and int(counts.loc[TOTAL, TOTAL]) == len(frame),
                    "the cross-table adds up to the receivables and the customers", f"{money.loc[TOTAL, TOTAL]}")
    return TierCrossTable(counts, money, owed.in_credit_cents, owed.customers_in_credit)


def _with_totals(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table[TOTAL] = table.sum(axis=1)
    table.loc[TOTAL] = table.sum(axis=0)
    table.index.name, table.columns.name = "pareto \\ rate", None
    return table.astype("int64")


def _require_known(tiers: pd.Series, labels: Sequence[str], name: str) -> None:
    """Every tier is one of `labels`; each one that is not is named by its row (1 = the first)."""
    unknown = np.flatnonzero(~tiers.astype(str).isin(list(map(str, labels))).to_numpy(dtype=bool))
    if len(unknown):
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"{name}: tier {tiers.iloc[k]!r} is not one of "
                                   f"{', '.join(map(str, labels))} / 等级不在列表中", row=int(k) + 1, column=name)
                             for k in unknown[:20]])


def policy_tier_labels(policy: Policy) -> tuple[list[str], list[str]]:
    """The Pareto tiers and the collection-rate tiers (best first, then unrated) the policy gives."""
    pareto = sorted(policy.pareto_cutoffs, key=policy.pareto_cutoffs.get) + [policy.pareto_rest]
    return pareto, tier_order_with_unrated(policy)


def top_n_shares(sales_cents: Sequence[int], balances_cents: Sequence[int], n: int | None = None,
                 policy: Policy | None = None) -> pd.DataFrame:
    """The share of sales the top n customers by sales make, and the share of receivables owed the
    n largest debtors hold (SHARE_COLUMNS; n: the policy's `overlap_top_n` unless given). Only
    positive sales and debit balances count, in the top and in the total, as in the Pareto tiers."""
    n = int(n if n is not None else (policy or Policy()).overlap_top_n)
    if n < 1:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"n {n} must be 1 or more / 应至少为 1", column="n")])
    lines = [("sales of the top n customers / 前N大客户销售额占比", sales_cents),
             ("receivables of the top n debtors / 前N大欠款客户应收占比", balances_cents)]
    return pd.DataFrame([_top_share(measure, values, n) for measure, values in lines], columns=SHARE_COLUMNS)


def _top_share(measure: str, values_cents: Sequence[int], n: int) -> dict[str, object]:
    values = pd.Series(np.asarray(values_cents, dtype="int64"))
    top = top_n_mask(values, n)
    positive = values.clip(lower=0)
    top_cents, total = int(positive[top].sum()), int(positive.sum())
    return {"measure": measure, "n": n, "customers": int(top.sum()), "top_cents": top_cents,
            "total_cents": total, "share": top_cents / total if total > 0 else float("nan")}
