"""Worksheet functions for the sales side: the funnel plan and promotion rates by stage tier
(销售漏斗, crm_core.funnel) and commission on collection per owner (销售提成, crm_core.commission)."""
from __future__ import annotations

import numpy as np
import xlwings as xw

from crm_core.commission import BASES, FIGURES, TOTAL, commission
from crm_core.funnel import average_deal, funnel_plan, promotion_rates

from . import _excel as ex
from .collection import POLICY_DOC, RANGE, _period, _vat, ledger_rows

FUNNEL_HEADER = ["stage / 阶段", "customers needed / 所需客户数", "promotion rate into the stage above / 晋级率"]
PROMOTION_HEADER = ["step / 晋级", "customers at the start / 期初客户数", "promoted / 晋级客户数", "promotion rate / 晋级率"]
COMMISSION_HEADER = ["owner / 业务员", "customers / 客户数", "net sales / 净销售额", "collections excl. VAT / 不含税回款",
                     "written off excl. VAT / 不含税坏账核销", "earned / 应计提成", "payable / 可兑现提成",
                     "withheld / 暂扣提成", "released from earlier periods / 兑现以前期间提成",
                     "clawed back / 坏账扣回", "net payable / 实发提成"]


@xw.func(category=ex.CATEGORY)
@xw.arg("target_sales", doc="Sales target for the period, excl. VAT 销售目标", **RANGE)
@xw.arg("average_deal", doc="Average deal: net sales one A customer brings in the period 平均成交额", **RANGE)
@xw.arg("conversion_rates", doc="4 promotion rates in the order E->D, D->C, C->B, B->A, a column or a row 晋级率", **RANGE)
@ex.shows_errors
def crm_funnel_plan(target_sales, average_deal, conversion_rates):
    """Funnel plan 销售漏斗: A, B, C, D, E customers a target needs, rounded up at each step (1,000,000 / 50,000, rates 0.5;0.25;0.5;0.5: A 20, B 40, C 80, D 320, E 640), with header."""
    rates, bad = ex.numbers(ex.vector(conversion_rates, "conversion_rates"), "conversion_rates")
    ex.require(bad, "conversion_rates")
    plan = funnel_plan(ex.one_money_cents(target_sales, "target_sales"),
                       ex.one_money_cents(average_deal, "average_deal"), list(rates))
    return ex.table_out(FUNNEL_HEADER, [plan["stage"], plan["customers"], plan["promotion_rate"]])


@xw.func(category=ex.CATEGORY)
@xw.arg("earlier_stages", doc="Each customer's stage tier A-E at the first snapshot, one column 期初阶段等级", **RANGE)
@xw.arg("later_stages", doc="The same customers' stage tier at the second snapshot, same rows 期末阶段等级", **RANGE)
@ex.shows_errors
def crm_promotion_rates(earlier_stages, later_stages):
    """Promotion rates 晋级率 E->D, D->C, C->B, B->A: share of a stage's customers at the first snapshot at the next stage or better at the second, with header; blanks left out."""
    cols = ex.aligned(earlier_stages=earlier_stages, later_stages=later_stages)
    table = promotion_rates(ex.texts(cols["earlier_stages"], "earlier_stages", allow_blank=True),
                            ex.texts(cols["later_stages"], "later_stages", allow_blank=True))
    rate = table["rate"].to_numpy(dtype="float64")
    return ex.table_out(PROMOTION_HEADER, [table["step"], table["customers"], table["promoted"],
                                           np.where(np.isnan(rate), ex.excel_error(ex.DIV0), rate)])


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc="Ledger range WITH header row: date, customer, type, amount 台账", **RANGE)
@xw.arg("customers", doc="Customers counted, e.g. those at stage A at the period start (optional; every customer with sales) 客户", **RANGE)
@xw.arg("period_start", doc="First day of the period (optional; default: last complete year in the ledger) 期间开始", **RANGE)
@xw.arg("period_end", doc="Last day of the period, inclusive (optional; one year after the start) 期间结束", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_average_deal(ledger, customers=None, period_start=None, period_end=None, policy=None):
    """Average deal 平均成交额 for the funnel: mean net sales in the period of the customers given (one without sales counts 0), or of every customer with sales."""
    pol = ex.read_policy(policy)
    rows = ledger_rows(ledger, pol)
    named = ex.vector(customers, "customers")
    deal = average_deal(rows, _period(rows, period_start, period_end), pol,
                        list(ex.texts(named, "customers", allow_blank=True)) if named else None)
    return ex.units(deal.cents)


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc="Customer codes, one column 客户编码", **RANGE)
@xw.arg("owners", doc="Each customer's owner (sales person), same rows 业务员", **RANGE)
@xw.arg("net_sales", doc="Net sales excl. VAT in the period, same rows 净销售额", **RANGE)
@xw.arg("collections", doc="Cash collected incl. VAT in the period, same rows 回款额", **RANGE)
@xw.arg("write_offs", doc="Bad debts written off incl. VAT in the period, same rows 坏账核销", **RANGE)
@xw.arg("rate", doc="Commission rate, 0.02 or 2% 提成比例", **RANGE)
@xw.arg("vat_rate", doc="VAT rate, 0.17 or 17% (optional; policy's current rate) 增值税率", **RANGE)
@ex.shows_errors
def crm_commission(customers, owners, net_sales, collections, write_offs, rate, vat_rate=None):
    """Commission on collection 销售提成 per owner with header and total: earned on net sales, payable on collections excl. VAT, withheld, clawed back on write-offs, net payable."""
    cols = ex.aligned(customers=customers, owners=owners, net_sales=net_sales, collections=collections,
                      write_offs=write_offs)
    amounts = {name: ex.money_cents(cols[name], name, blank_as_zero=True)
               for name in ("net_sales", "collections", "write_offs")}
    report = commission(ex.texts(cols["customers"], "customers"), ex.texts(cols["owners"], "owners", allow_blank=True),
                        amounts["net_sales"], amounts["collections"], amounts["write_offs"],
                        ex.one_number(rate, "rate"), _vat(vat_rate, None))
    table = report.by_owner
    money = [*BASES, *FIGURES]
    body = ex.table_out(COMMISSION_HEADER, [table["owner"], table["customers"], *(ex.units(table[c]) for c in money)])
    total = [TOTAL, float(report.total["customers"]), *(ex.units(report.total[c]) for c in money)]
    return body + [[ex.cell(v) for v in total]]
