"""Worksheet functions for the review views: ageing, tier migration, debtor overlap, lifetime value."""
from __future__ import annotations

import numpy as np
import xlwings as xw

from crm_core.analysis import (
    aging,
    buckets_from_limits,
    lifetime_value,
    likely_duplicates,
    overlap,
    tier_migration,
)
from crm_core.policy import Policy

from . import _excel as ex
from .collection import POLICY_DOC, RANGE, as_of_day, ledger_rows


def _buckets(value) -> dict[str, float] | None:
    """2 columns label | upper days, or 1 column of upper days (30;60;90 -> 1-30, 31-60, 61-90 days past due)."""
    rows = ex.grid(value)
    if not rows:
        return None
    if len(rows[0]) >= 2:
        return ex.label_map(value, "buckets")
    limits, bad = ex.numbers([r[0] for r in rows], "buckets")
    ex.require(bad, "buckets")
    return buckets_from_limits([x for x in limits if not np.isnan(x)])


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc="Ledger range WITH header row: date, customer, type, amount, due date (optional) 台账", **RANGE)
@xw.arg("as_of", doc="Date the ageing is taken on 账龄截止日", **RANGE)
@xw.arg("buckets", doc="Upper days of each bucket, e.g. 30;60;90, or 2 columns label | days (optional; policy) 账龄区间", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_aging(ledger, as_of, buckets=None, policy=None):
    """Receivable ageing 应收账龄 per customer on as_of, with header: customer, current (未到期), days past due 1-30, 31-60, 61-90, 90+, credit (未核销), total."""
    pol = ex.read_policy(policy)
    rows, day = ledger_rows(ledger, pol), as_of_day(as_of, "the ageing is taken on")
    table = aging(rows, day, pol, _buckets(buckets))
    money = [c for c in table.columns if c != "customer"]
    return ex.table_out(["customer / 客户"] + [str(c) for c in money],
                        [table["customer"]] + [ex.units(table[c]) for c in money])


@xw.func(category=ex.CATEGORY)
@xw.arg("old_tiers", doc="Each customer's tier in the earlier period 原等级", **RANGE)
@xw.arg("new_tiers", doc="Tier in the later period, same rows 新等级", **RANGE)
@xw.arg("labels", doc="Tier labels in display order, e.g. A;B;C;D (optional; those found) 等级", **RANGE)
@ex.shows_errors
def crm_tier_migration(old_tiers, new_tiers, labels=None):
    """Tier migration 等级迁移 matrix: customers counted by old tier (rows) and new tier (columns), with header row and column."""
    cols = ex.aligned(old_tiers=old_tiers, new_tiers=new_tiers)
    old, new = cols["old_tiers"], cols["new_tiers"]
    order = [str(v) for v in ex.texts(ex.vector(labels, "labels"), "labels")] or None
    table = tier_migration(ex.texts(old, "old_tiers", allow_blank=True),
                           ex.texts(new, "new_tiers", allow_blank=True), order)
    header = ["old \\ new / 原\\新"] + [str(c) for c in table.columns]
    return [header] + [[str(idx)] + [float(n) for n in row] for idx, row in zip(table.index, table.to_numpy())]


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc="Customer codes, one column 客户", **RANGE)
@xw.arg("sales", doc="Each customer's sales, same rows 销售额", **RANGE)
@xw.arg("balances", doc="Each customer's open receivables, same rows 应收余额", **RANGE)
@xw.arg("n", doc="How many top debtors and top customers to compare (optional; policy overlap_top_n, 100) 前N名", **RANGE)
@ex.shows_errors
def crm_overlap(customers, sales, balances, n=None):
    """Top-n debtors 大额欠款 against top-n customers by sales 重点客户: customers and receivables owed (debit balances; credits left out) of each group, with header."""
    cols = ex.aligned(customers=customers, sales=sales, balances=balances)
    names = ex.texts(cols["customers"], "customers")
    sale_cells, balance_cells = cols["sales"], cols["balances"]
    top = ex.vector(n, "n")
    count = Policy().overlap_top_n if not top or top[0] is None else ex.number(top[0], "n")
    if count < 1 or count != int(count):
        raise ex.arg_problem("n", f"n {count:g} must be a whole number of at least 1")
    table = overlap(names, ex.money_cents(sale_cells, "sales", blank_as_zero=True),
                    ex.money_cents(balance_cells, "balances", blank_as_zero=True), int(count))
    return ex.table_out(["group / 分组", "customers / 客户数", "receivables owed / 应收账款", "share / 占比"],
                        [table["group"], table["customers"], ex.units(table["receivables_cents"]), table["share"]])


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc="Customer codes, one column 客户编码", **RANGE)
@xw.arg("names", doc="Customer names, same rows 客户名称", **RANGE)
@xw.arg("addresses", doc="Addresses, same rows (optional) 地址", **RANGE)
@xw.arg("phones", doc="Phone numbers, same rows; several in a cell split by / or ; (optional) 电话", **RANGE)
@ex.shows_errors
def crm_duplicate_names(customers, names, addresses=None, phones=None):
    """Duplicate check 客户重复检查: codes that are one company, by name (spaces, width, 有限公司/Co. Ltd), phone or address, with header and the reason; "none" if none."""
    cols = ex.aligned(customers=customers, names=names, addresses=addresses, phones=phones)
    table = likely_duplicates(ex.texts(cols["customers"], "customers"),
                              ex.texts(cols["names"], "names", allow_blank=True),
                              ex.texts(cols["addresses"], "addresses", allow_blank=True),
                              ex.texts(cols["phones"], "phones", allow_blank=True))
    header = ["customers / 客户编码", "names / 名称", "count / 数量", "reasons / 原因"]
    if table.empty:
        return [header, ["none / 无", "", "", ""]]
    return ex.table_out(header, [table["customers"], table["names"], table["count"], table["reasons"]])


@xw.func(category=ex.CATEGORY)
@xw.arg("monthly_revenue", doc="Revenue per month from the customer 月收入", **RANGE)
@xw.arg("years", doc="Expected years as a customer 预期年数", **RANGE)
@xw.arg("margin", doc="Gross margin, e.g. 0.25 (optional; 1 = revenue) 毛利率", **RANGE)
@xw.arg("retention", doc="Share of customers kept each year, e.g. 0.9 (optional; 1) 留存率", **RANGE)
@xw.arg("discount_rate", doc="Yearly discount rate, e.g. 0.08 (optional; 0) 折现率", **RANGE)
@ex.shows_errors
def crm_lifetime_value(monthly_revenue, years, margin=None, retention=None, discount_rate=None):
    """Customer lifetime value 客户终身价值 = monthly revenue x 12 x years (1,500 a month for 10 years = 180,000), with margin, retention and discounting."""
    def one(value, name, default=None):
        cells = ex.vector(value, name)
        if not cells or cells[0] is None:
            if default is None:
                raise ex.arg_problem(name, f"{name} is blank")
            return default
        try:
            return ex.number(cells[0], name)
        except ValueError as exc:
            raise ex.arg_problem(name, str(exc)) from None
    args = {"monthly_revenue": one(monthly_revenue, "monthly_revenue"), "years": one(years, "years"),
            "margin": one(margin, "margin", 1.0), "retention": one(retention, "retention", 1.0),
            "discount_rate": one(discount_rate, "discount_rate", 0.0)}
    for name, (low, high) in LTV_BOUNDS.items():
        if not low <= args[name] <= high:
            raise ex.arg_problem(name, f"{name} {args[name]:g} is outside {low:g}..{high:g}")
    return lifetime_value(*args.values())


# Plausible ranges; a years value of 1e9 would otherwise keep the cell computing for minutes.
LTV_BOUNDS = {"monthly_revenue": (-1e13, 1e13), "years": (0.0, 100.0), "margin": (-10.0, 10.0),
              "retention": (0.0, 1.0), "discount_rate": (-0.99, 10.0)}
