"""Worksheet functions for receivables KPIs: DSO, countback DSO, ADD, CEI (crm_core.kpis), and the
whole KPI table per customer from a ledger (crm_core.receivables)."""
from __future__ import annotations

import numpy as np
import xlwings as xw

from crm_core import kpis
from crm_core.receivables import KPI_HEADER, KPI_MONEY, KPI_RATIOS, checked_months, receivable_kpis

from . import _excel as ex
from .collection import POLICY_DOC, RANGE, as_of_day, ledger_rows

CREDIT_SALES_DOC = "Credit sales in the period, VAT included 含税赊销额"


def _one(value, name: str) -> float:
    """One cell as a number, required: a range of several cells is refused, not read by its first."""
    if len(ex.vector(value, name)) > 1:
        raise ex.arg_problem(name, f"{name} must be one cell")
    return ex.one_number(value, name)


def _column(value, name: str) -> list[float]:
    cells = ex.vector(value, name)
    values, bad = ex.numbers(cells, name)
    ex.require(bad, name)
    return [float(v) for v in values]


@xw.func(category=ex.CATEGORY)
@xw.arg("receivables", doc="Receivables at the period end 期末应收账款", **RANGE)
@xw.arg("credit_sales", doc=CREDIT_SALES_DOC, **RANGE)
@xw.arg("days", doc="Days in the period, e.g. 30, 90, 365 期间天数", **RANGE)
@ex.shows_errors
def crm_dso(receivables, credit_sales, days):
    """Days sales outstanding DSO 应收账款周转天数 = receivables / credit sales (VAT included) x days: 15,000 / 10,000 x 30 = 45."""
    return kpis.dso(_one(receivables, "receivables"), _one(credit_sales, "credit_sales"), _one(days, "days"))


@xw.func(category=ex.CATEGORY)
@xw.arg("receivables", doc="Receivables at the period end 期末应收账款", **RANGE)
@xw.arg("monthly_sales", doc="Credit sales per month, VAT included, NEWEST month first 各月含税赊销额(最近月在前)", **RANGE)
@xw.arg("month_days", doc="Days of each month, same rows (optional; 30 each) 各月天数", **RANGE)
@ex.shows_errors
def crm_dso_countback(receivables, monthly_sales, month_days=None):
    """Countback DSO 倒推法: months of sales taken from the receivables, newest first, the last one prorated: 212,000 vs 100,000/80,000/70,000 = 73.71 days."""
    sales = _column(monthly_sales, "monthly_sales")
    days = _column(month_days, "month_days") if ex.vector(month_days, "month_days") else None
    return kpis.dso_countback(_one(receivables, "receivables"), sales, days)


@xw.func(category=ex.CATEGORY)
@xw.arg("receivables", doc="Receivables at the period end 期末应收账款", **RANGE)
@xw.arg("current_receivables", doc="Of which not yet due 其中未到期", **RANGE)
@xw.arg("credit_sales", doc=CREDIT_SALES_DOC, **RANGE)
@xw.arg("days", doc="Days in the period 期间天数", **RANGE)
@ex.shows_errors
def crm_add(receivables, current_receivables, credit_sales, days):
    """Average days delinquent ADD 平均逾期天数 = DSO - best possible DSO (current receivables / credit sales x days): 45 - 12 = 33."""
    return kpis.average_days_delinquent(_one(receivables, "receivables"),
                                        _one(current_receivables, "current_receivables"),
                                        _one(credit_sales, "credit_sales"), _one(days, "days"))


@xw.func(category=ex.CATEGORY)
@xw.arg("opening_receivables", doc="Receivables at the period start 期初应收账款", **RANGE)
@xw.arg("credit_sales", doc=CREDIT_SALES_DOC, **RANGE)
@xw.arg("closing_receivables", doc="Receivables at the period end 期末应收账款", **RANGE)
@xw.arg("closing_current", doc="Of the closing receivables, those not yet due 期末未到期", **RANGE)
@xw.arg("months", doc="Months in the period 月数", **RANGE)
@ex.shows_errors
def crm_cei(opening_receivables, credit_sales, closing_receivables, closing_current, months):
    """Collection effectiveness index CEI 回款有效性指数 = (opening + sales/N - closing) / (opening + sales/N - closing current): 55.93% in the CRF example."""
    return kpis.collection_effectiveness(_one(opening_receivables, "opening_receivables"),
                                         _one(credit_sales, "credit_sales"),
                                         _one(closing_receivables, "closing_receivables"),
                                         _one(closing_current, "closing_current"), _one(months, "months"))


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc="Ledger range WITH header row: date, customer, type, amount, due date (optional) 台账", **RANGE)
@xw.arg("as_of", doc="Date the KPIs are taken on (the period ends on it) 截止日", **RANGE)
@xw.arg("months", doc="Months of credit sales up to as_of (optional; policy kpi_months, 12) 月数", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_receivable_kpis(ledger, as_of, months=None, policy=None):
    """Receivables KPIs 应收指标 per customer and in total, with header: credit sales, receivables, current, DSO, best DSO, ADD, CEI, % current, turnover, bad-debt ratio; #DIV/0! where not defined."""
    pol = ex.read_policy(policy)
    rows, day = ledger_rows(ledger, pol), as_of_day(as_of, "the KPIs are taken on")
    count = ex.one_number(months, "months", default=float(pol.kpi_months))
    table = receivable_kpis(rows, day, checked_months(count), pol).table
    money = [ex.units(table[f"{key}_cents"]) for key in KPI_MONEY]
    ratios = [np.where(np.isnan(r), ex.excel_error(ex.DIV0), r) for r in (table[k].to_numpy(dtype="float64")
                                                                          for k in KPI_RATIOS)]
    return ex.table_out(KPI_HEADER, [table["customer"], *money, *ratios])
