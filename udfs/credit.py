"""Worksheet functions for the yearly credit budget (赊销额度预算) and its split into credit lines."""
from __future__ import annotations

import xlwings as xw

from crm_core.credit import allocate_credit, credit_budget_cents
from crm_core.values import parse_money_cents

from . import _excel as ex
from .collection import POLICY_DOC, RANGE


@xw.func(category=ex.CATEGORY)
@xw.arg("net_sales", doc="Last year's net sales excl. VAT, in currency units 上年净销售额", **RANGE)
@xw.arg("ratio", doc="Credit ratio, 20% or 0.2 (20 is refused; optional; policy credit_ratio) 赊销比例", **RANGE)
@xw.arg("vat_rate", doc="VAT rate, 17% or 0.17 (17 is refused; optional; policy's current rate) 增值税率", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_credit_budget(net_sales, ratio=None, vat_rate=None, policy=None):
    """Yearly credit budget 赊销额度预算 = net sales x credit ratio x (1 + VAT), exact to the cent: 40,000,000 x 20% x 1.17 = 9,360,000."""
    pol = ex.read_policy(policy)
    sales = ex.one_money_cents(net_sales, "net_sales")
    share = ex.one_number(ratio, "ratio", pol.credit_ratio)  # the core refuses 20 for 20%
    vat = ex.one_number(vat_rate, "vat_rate", float(pol.vat_table[max(pol.vat_table)]), read=ex.rate)
    return ex.units(credit_budget_cents(sales, share, vat))


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc="Customer codes, one column, no duplicates 客户", **RANGE)
@xw.arg("tiers", doc="Each customer's tier, same rows 客户等级", **RANGE)
@xw.arg("net_sales", doc="Each customer's net sales last year, same rows 净销售额", **RANGE)
@xw.arg("budget", doc="Credit budget to split, 0 or more (e.g. from crm_credit_budget) 赊销额度预算", **RANGE)
@xw.arg("tier_weights", doc="2 columns tier | weight (a factor, not a %), e.g. D | 0 for cash on delivery; tiers not named keep the policy weight; a tier with no weight is refused, 'unrated' gets 0 (optional) 等级权重", **RANGE)
@xw.arg("rounding", doc="Lines are whole multiples of this, e.g. 1000 (optional; policy credit_rounding) 取整单位", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_allocate_credit(customers, tiers, net_sales, budget, tier_weights=None, rounding=None, policy=None):
    """Credit line 赊销额度 per customer: budget split by sales x tier weight, rounded, adding up to the budget exactly; unrated customers get 0. One column beside the customers."""
    pol = ex.read_policy(policy)
    cols = ex.aligned(customers=customers, tiers=tiers, net_sales=net_sales)
    names = ex.texts(cols["customers"], "customers")
    tier_cells, sales_cells = cols["tiers"], cols["net_sales"]
    _no_duplicates(names)
    labels = ex.texts(tier_cells, "tiers", allow_blank=True)
    sales = ex.money_cents(sales_cells, "net_sales", blank_as_zero=True)
    total = ex.one_money_cents(budget, "budget")
    given = ex.label_map(tier_weights, "tier_weights")
    weights = {**pol.tier_weights, **given} if given else None  # a range overrides the tiers it names
    unit = ex.one_number(rounding, "rounding", pol.credit_rounding)
    unit_cents = _whole_cents(unit)
    if unit <= 0 or unit_cents is None:
        raise ex.arg_problem("rounding", f"rounding {unit:g} must be a positive amount in whole cents")
    lines = allocate_credit(labels, sales, total, weights=weights, unit_cents=unit_cents, policy=pol)
    return ex.column_out(ex.units(lines), ex.is_horizontal(customers))


def _whole_cents(amount: float) -> int | None:
    """The amount in cents if it is a whole number of them (as Excel shows it), else None."""
    try:
        cents = parse_money_cents(amount)
    except ValueError:  # NaN, infinite, implausibly large
        return None
    return cents if ex.units(cents) == amount else None


def _no_duplicates(names) -> None:
    seen: dict[str, int] = {}
    issues = []
    for pos, name in enumerate(names, start=1):
        if name in seen:
            issues.append(ex.Issue(ex.IssueCode.DUPLICATE_CUSTOMER,
                                   f"customer {name!r} is already on row {seen[name]}", row=pos, column="customers"))
        seen.setdefault(name, pos)
    if issues:
        raise ex.CrmInputError(issues)
