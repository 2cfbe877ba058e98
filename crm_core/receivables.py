"""Receivables analytics from a ledger, as a credit manager reads them: the KPIs per customer, per
tier and in total (DSO, best possible DSO, ADD, CEI, % current, turnover, bad-debt ratio), and the
ageing per tier and in total.

Nothing here has a formula or a balance rule of its own: the amounts come from the ageing
(crm_core.analysis.aging: receivables, current) and the customer facts (crm_core.collection:
credit sales with VAT, write-offs), the ratios from crm_core.kpis, the tiers from crm_core.tiers
as the review assigns them. So a customer's receivables here are its total on the Ageing sheet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import kpis
from .analysis import CURRENT, aging, aging_report
from .collection import Period, customer_facts, gross_cents
from .issues import CrmInputError, Issue, IssueCode, check_invariant
from .ledger import OPENING_BALANCE
from .policy import KPI_MONTHS_LIMIT, Policy
from .review import default_year
from .tiers import policy_rate_tiers, tier_order_with_unrated
from .values import units

TOTAL = "total / 合计"
# The KPI table's columns and their headers. Money is int cents under `<key>_cents`, the rest floats
# (NaN where a KPI is not defined: no credit sales, no receivables).
KPI_MONEY = {
    "credit_sales": "credit sales incl. VAT / 含税赊销额",
    "opening": "opening receivables / 期初应收",
    "receivables": "receivables / 期末应收",
    "current": "current (not yet due) / 未到期",
    "written_off": "written off / 坏账核销",
}
KPI_RATIOS = {
    "dso": "DSO days / 应收周转天数",
    "best_dso": "best possible DSO / 最佳周转天数",
    "add": "ADD days / 平均逾期天数",
    "cei": "CEI / 回款有效性指数",
    "current_share": "% current / 未到期占比",
    "turnover": "turnover / 周转率",
    "bad_debt_ratio": "bad-debt ratio / 坏账率",
}
KPI_HEADER = ["customer / 客户", *KPI_MONEY.values(), *KPI_RATIOS.values()]
KPI_COLUMNS = ["customer", *(f"{k}_cents" for k in KPI_MONEY), *KPI_RATIOS]


@dataclass(frozen=True)
class KpiReport:
    """The KPIs of the `months` ending on `period.end`: `table` has KPI_COLUMNS, a row per customer
    and the TOTAL row last; `issues`: the ageing's notes (receipts naming unknown invoices)."""

    table: pd.DataFrame
    period: Period
    months: int
    issues: list[Issue] = field(default_factory=list)

    @property
    def days(self) -> int:
        return period_days(self.period)

    def summary_line(self) -> str:
        total = self.table.iloc[-1]
        return (f"period / 期间: {self.period} ({self.months} months, {self.days} days)   "
                f"receivables / 应收: {units(int(total['receivables_cents'])):,.2f}   "
                f"DSO: {_shown(total['dso'], '{:.1f} days')}   CEI: {_shown(total['cei'], '{:.2%}')}")


def kpi_period(as_of: pd.Timestamp, months: int) -> Period:
    """The `months` whole months ending on `as_of` (inclusive): 12 months to 2024-12-31 is the
    year 2024, one month to 2024-04-30 is April, 12 months to 2024-06-15 start on 2023-06-16."""
    end = pd.Timestamp(as_of).normalize()
    return Period(end + pd.Timedelta(days=1) - pd.DateOffset(months=months), end)


def period_days(period: Period) -> int:
    return (period.end - period.start).days + 1


def checked_months(months: object) -> int:
    """Months of a KPI period: a whole number from 1 to KPI_MONTHS_LIMIT."""
    try:
        value = float(months)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not (value.is_integer() and 1 <= value <= KPI_MONTHS_LIMIT):
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"months {months!r} must be a whole number from 1 to "
                                   f"{KPI_MONTHS_LIMIT} / 月数应为 1 到 {KPI_MONTHS_LIMIT} 的整数", column="months")])
    return int(value)


def receivable_kpis(rows: pd.DataFrame, as_of: pd.Timestamp, months: int | None = None,
                    policy: Policy | None = None, terms_days: Mapping[str, int] | None = None) -> KpiReport:
    """Per customer and in total, over the `months` (default: the policy's `kpi_months`, 12)
    ending on `as_of`: credit sales with VAT (invoices less credit notes dated in the period),
    receivables at the start and at `as_of` and the current part (by due date, whatever the
    ageing basis), write-offs in the period, and the KPIs of crm_core.kpis. CEI takes the opening
    receivables (`opening_receivables`), sales / months, the closing receivables and the closing
    current. Receivables are net of credits (a customer in credit counts negative, as on the Ageing
    sheet). Customers are those with a document up to `as_of`. `terms_days`: customer -> payment
    terms dating the debts the ledger gives no due date (the ageing's, `analysis.due_dates`)."""
    policy = policy or Policy()
    months = checked_months(months if months is not None else policy.kpi_months)
    period = kpi_period(as_of, months)
    closing = aging_report(rows, period.end, policy, basis="due_date", terms_days=terms_days)
    amounts = _kpi_amounts(rows, closing.table, period, policy, terms_days)
    table = kpi_table(_with_total(amounts), period_days(period), months)
    return KpiReport(table, period, months, closing.issues)


def _kpi_amounts(rows: pd.DataFrame, closing: pd.DataFrame, period: Period, policy: Policy,
                 terms_days: Mapping[str, int] | None = None) -> pd.DataFrame:
    customers = pd.Index(closing["customer"], dtype=object)
    facts = customer_facts(rows, policy, period, customers)
    amounts = pd.DataFrame({
        "customer": customers,
        "credit_sales_cents": facts["gross_sales_cents"].to_numpy(),
        "opening_cents": opening_receivables(rows, period, customers, policy, terms_days),
        "receivables_cents": closing["total"].to_numpy(),
        "current_cents": closing[CURRENT].to_numpy(),
        "written_off_cents": facts["written_off_cents"].to_numpy(),
    })
    check_invariant(bool((facts["open_balance_cents"].to_numpy() == amounts["receivables_cents"].to_numpy()).all()),
                    "the ageing total is the open balance of the customer facts")
    return amounts.astype({c: "int64" for c in amounts.columns if c.endswith("_cents")})


def opening_receivables(rows: pd.DataFrame, period: Period, customers: pd.Index, policy: Policy,
                        terms_days: Mapping[str, int] | None = None) -> np.ndarray:
    """Each customer's receivables at the start of `period`: its ageing total at the end of the day
    before, plus balances brought forward (期初余额) dated inside the period, which are owed from
    before it (a yearly ERP export dates them on its first day) and are no sales of the period."""
    before = aging(rows, period.start - pd.Timedelta(days=1), policy, basis="due_date", terms_days=terms_days)
    opening = before.set_index("customer")["total"].reindex(customers, fill_value=0).to_numpy(dtype="int64")
    dates = rows["date"].to_numpy()
    brought = rows[(rows["type"] == OPENING_BALANCE).to_numpy() & (dates >= np.datetime64(period.start))
                   & (dates <= np.datetime64(period.end))]
    if len(brought):
        sums = pd.Series(gross_cents(brought, policy)).groupby(brought["customer"].to_numpy()).sum()
        opening = opening + sums.reindex(customers, fill_value=0).to_numpy(dtype="int64")
    return opening


def kpi_table(amounts: pd.DataFrame, days: int, months: int) -> pd.DataFrame:
    """The KPI ratios of each row of money amounts (in cents; the unit cancels), by crm_core.kpis;
    NaN where one is not defined (no credit sales, no receivables, a customer in credit)."""
    ratios = [_row_ratios(row, days, months) for row in amounts.itertuples(index=False)]
    frame = pd.DataFrame(ratios, columns=list(KPI_RATIOS), index=amounts.index, dtype="float64")
    return pd.concat([amounts, frame], axis=1)


def _row_ratios(row, days: int, months: int) -> list[float]:
    sales, opening, closing = float(row.credit_sales_cents), float(row.opening_cents), float(row.receivables_cents)
    current, written_off = float(row.current_cents), float(row.written_off_cents)
    dso = _defined(kpis.dso, closing, sales, days)
    best = _defined(kpis.best_possible_dso, current, sales, days)
    return [dso, best, dso - best,  # ADD = DSO - best possible DSO, also for a customer in credit
            _defined(kpis.collection_effectiveness, opening, sales, closing, current, months),
            _defined(kpis.current_share, current, closing),
            _defined(kpis.receivables_turnover, sales, closing),
            _defined(kpis.bad_debt_ratio, written_off, sales)]


def _defined(kpi: Callable[..., float], *args: float) -> float:
    """The KPI, or NaN where it is not defined (the formula refuses its inputs): never an error."""
    try:
        return float(kpi(*args))
    except CrmInputError:
        return math.nan


def _with_total(amounts: pd.DataFrame) -> pd.DataFrame:
    """The rows and a TOTAL row summing every integer column (money in cents, counts); its KPIs
    are computed from those sums, never averaged."""
    total = {c: (int(amounts[c].sum()) if pd.api.types.is_integer_dtype(amounts[c]) else TOTAL) for c in amounts}
    return pd.concat([amounts, pd.DataFrame([total])], ignore_index=True).astype(amounts.dtypes.to_dict())


# ----------------------------------------------------------------------------- by tier


def review_tiers(rows: pd.DataFrame, as_of: pd.Timestamp, customers: Sequence[object], policy: Policy | None = None,
                 year: int | None = None) -> pd.Series:
    """Each customer's tier by collection rate as the review assigns it (cut-offs or rank, by the
    policy) for `year`, by default the last complete year of the ledger up to `as_of`; customers
    without sales that year are `unrated_label`."""
    policy = policy or Policy()
    rows = rows[rows["date"].to_numpy() <= np.datetime64(pd.Timestamp(as_of).normalize())]
    year = year or default_year(rows)
    index = pd.Index(list(customers), dtype=object)
    rates = customer_facts(rows, policy, Period.year(year), index)["collection_rate"].to_numpy()
    return pd.Series(policy_rate_tiers(rates, policy), index=index, name="tier")


def by_tier(table: pd.DataFrame, tiers: pd.Series, policy: Policy | None = None) -> pd.DataFrame:
    """A per-customer table (ageing or KPI amounts; no total row) summed per tier, in tier order,
    with the number of customers and a TOTAL row: column `tier` replaces `customer`."""
    policy = policy or Policy()
    rows = table[table["customer"] != TOTAL]
    money = [c for c in rows.columns if c != "customer" and pd.api.types.is_integer_dtype(rows[c])]
    labels = tiers.reindex(rows["customer"]).fillna(policy.unrated_label).to_numpy()
    grouped = rows[money].groupby(labels).sum()
    known = tier_order_with_unrated(policy)
    order = [t for t in known if t in grouped.index] + sorted(set(grouped.index) - set(known))
    out = grouped.reindex(order).reset_index(names="customer")
    out.insert(1, "customers", pd.Series(labels).value_counts().reindex(order).to_numpy(dtype="int64"))
    return _with_total(out).rename(columns={"customer": "tier"})


def kpis_by_tier(report: KpiReport, tiers: pd.Series, policy: Policy | None = None) -> pd.DataFrame:
    """The KPIs per tier and in total: each tier's amounts summed, its ratios computed from the sums."""
    amounts = report.table[["customer", *(f"{k}_cents" for k in KPI_MONEY)]]
    summed = by_tier(amounts, tiers, policy)
    return kpi_table(summed, report.days, report.months)


def aging_with_total(table: pd.DataFrame) -> pd.DataFrame:
    """An ageing table (per customer) with the TOTAL row: the buckets still add up to the total."""
    return _with_total(table)


def _shown(value: float, form: str) -> str:
    return "n/a" if value is None or math.isnan(value) else form.format(value)
