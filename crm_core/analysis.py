"""Review views around the core: receivable ageing, tier migration, debtor/customer overlap."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .collection import balance_signs, gross_cents
from .ledger import OPENING_BALANCE
from .policy import Policy
from .values import normalize_text

CURRENT = "current / 未到期"
CREDIT = "credit / 未核销"


def aging(rows: pd.DataFrame, as_of: pd.Timestamp, policy: Policy | None = None,
          buckets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Open receivables per customer by days past due (账龄) on `as_of`, in int cents.

    Documents dated after `as_of` are left out. Receipts, credit notes and write-offs settle the
    oldest debts first (invoices and balances brought forward, by due date), so what is still open
    is the newest. A debt without a due date is due `payment_terms_days` after its date (a balance
    brought forward: on its date). Columns: customer, current (not yet due), one per bucket of days
    past due (1-30, 31-60, 61-90, 90+ by default), credit (an overpayment, negative), total: the
    buckets add up to each customer's open balance.
    """
    policy = policy or Policy()
    buckets = dict(buckets or policy.aging_buckets)
    as_of = np.datetime64(pd.Timestamp(as_of).normalize())
    rows = rows[rows["date"].to_numpy() <= as_of]
    signed = gross_cents(rows, policy) * balance_signs(rows["type"])
    customers = rows["customer"].to_numpy()
    open_total = pd.Series(signed).groupby(customers).sum()
    debt = pd.DataFrame({"customer": customers, "due": _due_dates(rows, policy), "gross": signed})
    debt = debt[debt["gross"] > 0].sort_values(["customer", "due"], ascending=[True, False])
    newer = debt.groupby("customer")["gross"].cumsum() - debt["gross"]  # open money on newer debts
    owed = debt["customer"].map(open_total.clip(lower=0)).to_numpy()
    debt["open"] = np.clip(owed - newer.to_numpy(), 0, debt["gross"].to_numpy())
    days = (as_of - debt["due"].to_numpy()).astype("timedelta64[D]").astype("int64")
    labels = aging_columns(buckets)
    edges = np.array([0, *sorted(buckets.values())])  # 0 days or fewer past due: not yet due
    debt["bucket"] = np.array(labels[:-1], dtype=object)[np.searchsorted(edges, days, side="left")]
    table = debt.pivot_table(index="customer", columns="bucket", values="open", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=labels, fill_value=0).reindex(open_total.index, fill_value=0).astype("int64")
    table[CREDIT] = open_total.clip(upper=0).to_numpy()
    table["total"] = table.sum(axis=1)
    return table.reset_index().rename(columns={"index": "customer"})


def aging_columns(buckets: Mapping[str, float]) -> list[str]:
    """The ageing table's money columns before the total: current, each bucket, the open-ended
    last bucket, credit."""
    ordered = sorted(buckets, key=buckets.get)
    return [CURRENT, *ordered, f"{int(max(buckets.values()))}+", CREDIT]


def _due_dates(rows: pd.DataFrame, policy: Policy) -> np.ndarray:
    due = rows["due_date"].to_numpy().copy()
    no_due = np.isnat(due)
    terms = np.where((rows["type"] == OPENING_BALANCE).to_numpy(), 0, int(policy.payment_terms_days))
    due[no_due] = rows["date"].to_numpy()[no_due] + terms[no_due].astype("timedelta64[D]")
    return due


@dataclass(frozen=True)
class Receivables:
    """The one definition of receivables (应收账款): what customers with a debit balance owe.
    Customers in credit (贷方余额: prepaid or overpaid) are counted apart, never netted in silently."""

    owed_cents: int
    debtors: int
    in_credit_cents: int  # zero or negative
    customers_in_credit: int

    @property
    def net_cents(self) -> int:
        """Open balance net of credits (应收净额)."""
        return self.owed_cents + self.in_credit_cents

    @classmethod
    def of(cls, balances_cents: Sequence[float]) -> "Receivables":
        balances = np.asarray(balances_cents, dtype="int64")
        owed, credit = balances > 0, balances < 0
        return cls(int(balances[owed].sum()), int(owed.sum()), int(balances[credit].sum()), int(credit.sum()))


def tier_migration(old: Sequence[object], new: Sequence[object], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Counts of customers by old tier (rows) and new tier (columns)."""
    old_s = pd.Series(list(old), dtype=object).fillna("").astype(str).str.strip()
    new_s = pd.Series(list(new), dtype=object).fillna("").astype(str).str.strip()
    labels = list(labels) if labels else sorted(set(old_s) | set(new_s) - {""}) or [""]
    table = pd.crosstab(old_s, new_s).reindex(index=labels, columns=labels, fill_value=0)
    table.index.name, table.columns.name = "old \\ new", None
    return table.astype("int64")


def overlap(customers: Sequence[str], sales_cents: Sequence[float], balances_cents: Sequence[float],
            n: int | None = None, policy: Policy | None = None) -> pd.DataFrame:
    """Top-n debtors against top-n customers by sales, with the receivables each group holds
    (n: the policy's `overlap_top_n`, 100, unless given).

    Groups: large debtors that are key customers, large debtors that are not, and the rest.
    """
    n = int(n if n is not None else (policy or Policy()).overlap_top_n)
    frame = pd.DataFrame({"customer": list(customers), "sales": np.asarray(sales_cents, dtype="float64"),
                          "balance": np.asarray(balances_cents, dtype="float64")})
    key = top_n_mask(frame["sales"], n)
    debtor = top_n_mask(frame["balance"], n)
    groups = {
        "top debtors that are key customers / 大额欠款且为重点客户": debtor & key,
        "top debtors that are not key customers / 大额欠款非重点客户": debtor & ~key,
        "all top debtors / 前N大欠款客户": debtor,
        "other customers / 其他客户": ~debtor,
        "all customers / 全部客户": np.ones(len(frame), dtype=bool),
    }
    rows = [{"group": g, "customers": int(m.sum()), "receivables_cents": int(frame.loc[m, "balance"].clip(lower=0).sum())}
            for g, m in groups.items()]
    out = pd.DataFrame(rows)
    total = max(out["receivables_cents"].iloc[-1], 1)
    out["share"] = out["receivables_cents"] / total
    return out


def top_n_mask(values: pd.Series, n: int) -> np.ndarray:
    """The n largest positive values (ties broken by position)."""
    order = np.argsort(-values.to_numpy(), kind="stable")[:n]
    mask = np.zeros(len(values), dtype=bool)
    mask[order] = True
    return mask & (values.to_numpy() > 0)


def lifetime_value(monthly_revenue: float, years: float, margin: float = 1.0, retention: float = 1.0,
                   discount_rate: float = 0.0) -> float:
    """Customer lifetime value: monthly revenue x 12 x years in the simple form (1,500 x 12 x 10
    = 180,000), with margin, yearly retention and discounting for the proper version."""
    yearly = monthly_revenue * 12 * margin
    whole_years = int(years)
    value = sum(yearly * retention**t / (1 + discount_rate) ** t for t in range(whole_years))
    return value + yearly * (years - whole_years) * retention**whole_years / (1 + discount_rate) ** whole_years


_COMPANY_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "分公司", "公司", "集团",
                     "co ltd", "co., ltd.", "co.,ltd.", "company limited", "limited", "ltd", "inc", "corp", "co")


def name_key(name: object) -> str:
    """A loose key for spotting one company entered under several names: case, spaces,
    punctuation, full-width forms and common company suffixes are ignored."""
    text = re.sub(r"[()\[\]]", "", normalize_text(name).lower())
    for suffix in _COMPANY_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return re.sub(r"[\W_]+", "", text)


def likely_duplicates(customers: Sequence[str], names: Sequence[str]) -> pd.DataFrame:
    """Groups of customer codes whose names share a `name_key` (客户重复检查)."""
    frame = pd.DataFrame({"customer": list(customers), "name": list(names)})
    frame["key"] = frame["name"].map(name_key)
    frame = frame[frame["key"] != ""]
    groups = frame.groupby("key").filter(lambda g: g["customer"].nunique() > 1)
    out = groups.groupby("key").agg(customers=("customer", lambda s: ", ".join(sorted(set(s)))),
                                    names=("name", lambda s: " | ".join(dict.fromkeys(s))),
                                    count=("customer", "nunique"))
    return out.reset_index(drop=True)


def relationship_kpis(old_tiers: pd.Series, new_tiers: pd.Series, order: Sequence[str] = "ABCD") -> dict[str, int]:
    """New customers, customers lost, moved up and moved down a tier between two reviews.

    Series are indexed by customer; tiers outside `order` (e.g. 'unrated') count as present
    but not ranked.
    """
    rank = {t: i for i, t in enumerate(order)}
    both = old_tiers.index.intersection(new_tiers.index)
    old_rank = old_tiers.reindex(both).map(rank)
    new_rank = new_tiers.reindex(both).map(rank)
    ranked = old_rank.notna() & new_rank.notna()
    return {
        "new": int(len(new_tiers.index.difference(old_tiers.index))),
        "lost": int(len(old_tiers.index.difference(new_tiers.index))),
        "moved_up": int((new_rank[ranked] < old_rank[ranked]).sum()),
        "moved_down": int((new_rank[ranked] > old_rank[ranked]).sum()),
        "unchanged": int((new_rank[ranked] == old_rank[ranked]).sum()),
    }
