"""The whole review as one pipeline: ledger -> customer facts -> tiers -> budget -> credit lines."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .analysis import Receivables
from .collection import Period, customer_facts_and_codes
from .credit import allocate_credit, credit_budget_cents
from .issues import WARNING, Issue, IssueCode, check_invariant
from .ledger import Ledger
from .policy import Policy
from .schema import REVIEW_FRAME_COLUMNS
from .tiers import pareto_tiers, policy_rate_tiers, tier_order_with_unrated
from .values import is_text_categorical, per_category, text_cells, units


@dataclass(frozen=True)
class Review:
    register: pd.DataFrame  # REVIEW_FRAME_COLUMNS (the register columns a review computes), one row per customer
    period: Period
    budget_year: int
    budget_cents: int
    net_sales_cents: int
    vat_rate: float
    policy: Policy
    issues: list[Issue] = field(default_factory=list)
    written_off_cents: int = 0  # bad debts written off in the period (坏账核销): no cash, not collections

    @property
    def policy_label(self) -> str:
        return self.policy.label

    def tier_counts(self) -> pd.Series:
        return self.register["rate_tier"].value_counts().reindex(tier_order_with_unrated(self.policy), fill_value=0)

    def summary_lines(self) -> list[str]:
        lines_total = int(self.register["credit_line_cents"].sum())
        counts = ", ".join(f"{t} {n}" for t, n in self.tier_counts().items())
        return [
            f"period / 期间: {self.period}   policy / 政策: {self.policy_label}",
            f"customers / 客户数: {len(self.register)}   by collection-rate tier / 按回款率分级: {counts}",
            f"net sales / 净销售额: {_money(self.net_sales_cents)}",
            f"credit budget {self.budget_year} / 赊销额度预算: {_money(self.net_sales_cents)} x "
            f"{self.policy.credit_ratio:.0%} x (1 + {self.vat_rate:.0%}) = {_money(self.budget_cents)}",
            f"credit lines total / 额度合计: {_money(lines_total)}"
            + ("  (= budget)" if lines_total == self.budget_cents else "  (DIFFERS FROM BUDGET)"),
            self.receivables_line(),
        ]

    def receivables_line(self) -> str:
        owed = Receivables.of(self.register["open_balance_cents"])
        return (f"receivables owed / 应收账款: {_money(owed.owed_cents)} ({owed.debtors} customers); "
                f"customers in credit / 贷方余额: {_money(owed.in_credit_cents)} ({owed.customers_in_credit}); "
                f"net / 净额: {_money(owed.net_cents)}; written off in the period / 本期坏账核销: "
                f"{_money(self.written_off_cents)}")


def default_period(latest: pd.Timestamp | None) -> Period:
    """THE review period when none is given, for every path (a sheet range, a file, partitions):
    the last complete calendar year of a ledger whose last entry is dated `latest` (the material
    reviews the previous year); last year when the ledger has no dated rows (`latest` None or NaT)."""
    if latest is None or pd.isna(latest):
        return Period.year(pd.Timestamp.today().year - 1)
    return Period.year(last_complete_year(pd.Timestamp(latest)))


def default_year(rows: pd.DataFrame) -> int:
    """The year of `default_period` for these ledger rows."""
    return default_period(rows["date"].max() if len(rows) else None).start.year


def last_complete_year(latest: pd.Timestamp) -> int:
    """The year a ledger whose last entry is dated `latest` has complete: a ledger running to late
    December has its own year complete, else the year before."""
    return latest.year if latest.month == 12 and latest.day >= 28 else latest.year - 1


def review_ledger(ledger: Ledger, policy: Policy | None = None, year: int | None = None) -> Review:
    """Collection rates and tiers for `year`, and credit lines for the year after."""
    policy = policy or Policy()
    rows = ledger.rows
    year = year or default_year(rows)
    facts, codes = customer_facts_and_codes(rows, policy, Period.year(year))
    facts["customer_name"] = last_names(rows, facts["customer"], codes)
    return review_facts(facts, year, policy, list(ledger.issues), ledger.source)


def review_facts(facts: pd.DataFrame, year: int, policy: Policy, issues: list[Issue] | None = None,
                 source: str = "ledger") -> Review:
    """Tiers, budget and credit lines from per-customer facts of calendar year `year` (with names):
    the review's second half, shared by whole ledgers and ledgers summed chunk by chunk. `source`
    names the ledger in the review's own issues."""
    facts = facts.copy()
    rates = facts["collection_rate"].to_numpy()
    facts["rate_tier"] = policy_rate_tiers(rates, policy)
    facts["pareto_tier"] = pareto_tiers(facts["net_sales_cents"].to_numpy(), policy=policy)
    net_total = int(facts["net_sales_cents"].sum())
    vat = policy.vat_rate_on(pd.Timestamp(year=year + 1, month=1, day=1))
    budget = credit_budget_cents(max(net_total, 0), policy.credit_ratio, vat)
    facts["credit_line_cents"] = allocate_credit(facts["rate_tier"], facts["net_sales_cents"], budget,
                                                 policy=policy)
    lines_total = int(facts["credit_line_cents"].sum())
    check_invariant(lines_total == budget, "credit lines must add up to the budget",
                    f"lines {units(lines_total):,.2f}, budget {units(budget):,.2f}")
    written_off = int(facts["written_off_cents"].sum()) if "written_off_cents" in facts else 0
    return Review(facts[REVIEW_FRAME_COLUMNS], Period.year(year), year + 1, budget, net_total, vat, policy,
                  [*(issues or []), *_activity_issues(facts, year, source)], written_off)


def _activity_issues(facts: pd.DataFrame, year: int, source: str) -> list[Issue]:
    """A warning when customers exist but nothing is dated in the year reviewed: every one is then
    unrated and the budget 0, which is a year mistyped (or the wrong file) far more often than a
    year without trade."""
    flows = facts[["net_sales_cents", "collections_cents"]].to_numpy()
    if len(facts) == 0 or flows.any():
        return []
    return [Issue(IssueCode.NO_ACTIVITY, f"no sales and no collections are dated in {year}: every customer is "
                  f"unrated and the {year + 1} credit budget is 0; check the year reviewed "
                  f"/ {year} 年没有销售和回款记录，请检查评审年度", severity=WARNING, source=source)]


def last_names(rows: pd.DataFrame, customers: pd.Series, codes: np.ndarray | None = None,
               block_rows: int = 1 << 20) -> np.ndarray:
    """Each customer's last non-empty name. `codes`: each row's position in `customers`
    (distinct, as `customer_facts` numbers them), which spares hashing the customer column again;
    `block_rows`: see `last_named_positions`."""
    if codes is None:
        codes = pd.Index(customers, dtype=object).get_indexer(rows["customer"])
    positions = last_named_positions(rows, codes, len(customers), block_rows)
    has = np.flatnonzero(positions >= 0)
    names = np.full(len(customers), "", dtype=object)
    names[has] = text_cells(rows["customer_name"], positions[has])
    return names


def last_named_positions(rows: pd.DataFrame, codes: np.ndarray, n: int, block_rows: int = 1 << 20) -> np.ndarray:
    """Each of `n` customers' last row position with a name (-1: none); rows with code -1 do not
    count. The rows are looked at `block_rows` at a time (no position arrays as long as the ledger)."""
    last = np.full(n, -1, dtype="int64")
    names = rows["customer_name"]
    # a categorical's names judged once per category: comparing slices of it hashes its categories each time
    named_rows = per_category(names, lambda text: text != "", missing=False) if is_text_categorical(names) else None
    for start in range(0, len(rows), block_rows):
        block = slice(start, start + block_rows)
        given = named_rows[block] if named_rows is not None else (names.iloc[block] != "").to_numpy(dtype=bool)
        named = np.flatnonzero(given & (codes[block] >= 0))
        np.maximum.at(last, codes[block][named], named + start)
    return last


def _money(cents: int) -> str:
    return f"{units(cents):,.2f}"
