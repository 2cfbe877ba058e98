"""Receivables KPIs as the credit profession defines them (the Credit Research Foundation's
definitions, domain.md section 9): DSO, countback DSO, best possible DSO, ADD, CEI, % current,
turnover and the bad-debt ratio. The same figures per customer from a ledger: crm_core.receivables.

Credit sales include VAT, as the CRF counts taxes in credit sales (and as the collection rate
grosses sales up); "current" receivables are those not yet due. Inputs are plain numbers in
currency units (or cents: every KPI here is a ratio of amounts, so the unit cancels).
"""
from __future__ import annotations

import math
from typing import Sequence

from .issues import CrmInputError, Issue, IssueCode

DEFAULT_MONTH_DAYS = 30


def dso(receivables: float, credit_sales: float, days: float) -> float:
    """Days sales outstanding 应收账款周转天数 = receivables / credit sales x days (15,000 / 10,000 x 30 = 45)."""
    _require_positive("credit_sales", credit_sales)
    _require_positive("days", days)
    return receivables / credit_sales * days


def best_possible_dso(current_receivables: float, credit_sales: float, days: float) -> float:
    """Best possible DSO = current (not yet due) receivables / credit sales x days (4,000 / 10,000 x 30 = 12)."""
    return dso(current_receivables, credit_sales, days)


def average_days_delinquent(receivables: float, current_receivables: float, credit_sales: float,
                            days: float) -> float:
    """ADD 平均逾期天数 = DSO - best possible DSO (45 - 12 = 33)."""
    if current_receivables > receivables:
        raise _problem("current_receivables", f"current receivables {current_receivables:,.2f} exceed the "
                       f"receivables {receivables:,.2f}: the current part is included in them / 未到期部分不能大于应收总额")
    return dso(receivables, credit_sales, days) - best_possible_dso(current_receivables, credit_sales, days)


def dso_countback(receivables: float, monthly_sales: Sequence[float],
                  month_days: Sequence[float] | None = None) -> float:
    """Countback DSO 倒推法: take each month's credit sales from the receivables, newest month first,
    counting that month's days, and prorate the month that covers the rest: 212,000 against
    100,000 / 80,000 / 70,000 in 30-day months is 30 + 30 + 32/70 x 30 = 73.71 days. A month
    without sales counts whole. Receivables beyond all the months given are refused: the answer
    would depend on months not given."""
    sales = [float(s) for s in monthly_sales]
    days = [float(d) for d in month_days] if month_days is not None else [DEFAULT_MONTH_DAYS] * len(sales)
    if len(days) != len(sales):
        raise _problem("month_days", f"month_days has {len(days)} values for {len(sales)} months / 天数与月份数不一致")
    for name, values in (("monthly_sales", sales), ("month_days", days)):
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise _problem(name, f"{name} must be 0 or more / 不能为负")
    left, counted = float(receivables), 0.0
    for month_sales, month_days_ in zip(sales, days):
        if left <= 0:
            return counted
        if left >= month_sales:
            left -= month_sales
            counted += month_days_
        else:
            return counted + left / month_sales * month_days_
    if left > 0:
        raise _problem("monthly_sales", f"receivables exceed the credit sales of the {len(sales)} months given by "
                       f"{left:,.2f}: give earlier months too / 应收超过所给月份的销售额")
    return counted


def collection_effectiveness(opening_receivables: float, credit_sales: float, closing_receivables: float,
                             closing_current: float, months: float) -> float:
    """CEI 回款有效性指数 = (opening + sales/N - closing) / (opening + sales/N - closing current), over N
    months: 6,200 opening, 10,890 sales over 3 months, 6,340 closing, 3,590 current: 3,490 / 6,240 = 55.93%."""
    _require_positive("months", months)
    if closing_current > closing_receivables:
        raise _problem("closing_current", "closing current receivables exceed the closing receivables / 期末未到期大于期末应收")
    collectible = opening_receivables + credit_sales / months
    denominator = collectible - closing_current
    if denominator <= 0:
        raise _problem("closing_current", "nothing was collectible in the period (opening + sales/N <= current) "
                       "/ 本期无可回收款项")
    return (collectible - closing_receivables) / denominator


def current_share(current_receivables: float, receivables: float) -> float:
    """% current 未到期占比 = current (not yet due) receivables / receivables (4,000 / 15,000 = 26.67%)."""
    _require_positive("receivables", receivables)
    return current_receivables / receivables


def receivables_turnover(credit_sales: float, receivables: float) -> float:
    """Receivables turnover 应收账款周转率 = credit sales / closing receivables (10,000 / 15,000 = 0.67 in the period)."""
    _require_positive("receivables", receivables)
    return credit_sales / receivables


def bad_debt_ratio(written_off: float, credit_sales: float) -> float:
    """Bad-debt ratio 坏账率 = bad debts written off / credit sales (11,700 / 117,000 = 10%)."""
    _require_positive("credit_sales", credit_sales)
    return written_off / credit_sales


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise _problem(name, f"{name} must be above 0, not {value:g} / 必须大于 0")


def _problem(name: str, message: str) -> CrmInputError:
    return CrmInputError([Issue(IssueCode.BAD_NUMBER, f"{name}: {message}", column=name)])
