"""Worksheet functions for the customer portfolio: raise candidates (调增候选), relationship KPIs
(客户关系指标), recency, the Pareto x rate-tier cross-table and the top-N shares."""
from __future__ import annotations

import xlwings as xw

from crm_core.concentration import policy_tier_labels, tier_cross_table, top_n_shares
from crm_core.relationships import customer_recency, relationship_table
from crm_core.trends import TwoPeriods, raise_candidates, raise_evidence

from . import _excel as ex
from .collection import POLICY_DOC, RANGE, _period, ledger_rows

LEDGER_DOC = "Ledger range WITH header row: date, customer, type, amount 台账"
THIS_START_DOC = "First day of this year's period (optional; default: last complete year in the ledger) 本期开始"
THIS_END_DOC = "Last day of this year's period, inclusive (optional; one year after the start) 本期结束"
LAST_START_DOC = "First day of last year's period (optional; default: this period a year earlier) 上期开始"
LAST_END_DOC = "Last day of last year's period, inclusive (optional) 上期结束"


def _periods(rows, this_start, this_end, last_start, last_end) -> TwoPeriods:
    this = _period(rows, this_start, this_end)
    if not ex.vector(last_start, "last_start") and not ex.vector(last_end, "last_end"):
        return TwoPeriods.ending_with(this)
    return TwoPeriods(_period(rows, last_start, last_end), this)


def _choice(value, name: str, choices: dict[str, str], default: str) -> str:
    """A word argument read in English or Chinese (e.g. all / 全部), or `default` when blank."""
    cells = ex.vector(value, name)
    word = ex.normalize_text(cells[0]).lower() if cells and not ex.is_blank(cells[0]) else default
    if word not in choices:
        raise ex.arg_problem(name, f"{name} {word!r} is not one of {', '.join(sorted(set(choices.values())))}")
    return choices[word]


RAISE_HEADER = ["customer / 客户", "sales last year / 上年销售额", "sales this year / 本年销售额",
                "sales change / 销售变化", "sales growth / 销售增长率", "rate last year / 上年回款率",
                "rate this year / 本年回款率", "rate change / 回款率变化", "rate direction / 回款率趋势",
                "raise candidate / 调增候选", "evidence / 依据"]
SHOW = {"candidates": "candidates", "候选": "candidates", "all": "all", "全部": "all"}


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc=LEDGER_DOC, **RANGE)
@xw.arg("this_start", doc=THIS_START_DOC, **RANGE)
@xw.arg("this_end", doc=THIS_END_DOC, **RANGE)
@xw.arg("last_start", doc=LAST_START_DOC, **RANGE)
@xw.arg("last_end", doc=LAST_END_DOC, **RANGE)
@xw.arg("show", doc="'candidates' (default: customers whose rate improved and sales grew) or 'all' customers 显示", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_raise_candidates(ledger, this_start=None, this_end=None, last_start=None, last_end=None, show=None,
                         policy=None):
    """Raise candidates 调增候选: customers whose collection rate improved and sales grew from last year to this, with header: sales and rate in both years, changes, evidence."""
    pol = ex.read_policy(policy)
    rows = ledger_rows(ledger, pol)
    evidence = raise_evidence(rows, _periods(rows, this_start, this_end, last_start, last_end), pol)
    if _choice(show, "show", SHOW, "candidates") == "candidates":
        evidence = raise_candidates(evidence)
        if evidence.empty:
            return [RAISE_HEADER, ["none / 无"] + [""] * (len(RAISE_HEADER) - 1)]
    return ex.table_out(RAISE_HEADER, [
        evidence["customer"], ex.units(evidence["sales_last_cents"]), ex.units(evidence["sales_this_cents"]),
        ex.units(evidence["sales_change_cents"]), evidence["sales_growth"], evidence["rate_last"],
        evidence["rate_this"], evidence["rate_change"], [str(d) for d in evidence["rate_direction"]],
        evidence["candidate"].astype(bool), evidence["evidence"]])


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc=LEDGER_DOC, **RANGE)
@xw.arg("this_start", doc=THIS_START_DOC, **RANGE)
@xw.arg("this_end", doc=THIS_END_DOC, **RANGE)
@xw.arg("last_start", doc=LAST_START_DOC, **RANGE)
@xw.arg("last_end", doc=LAST_END_DOC, **RANGE)
@xw.arg("as_of", doc="Date tenure and recency are taken on (optional; the end of this period) 截止日", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_relationship_kpis(ledger, this_start=None, this_end=None, last_start=None, last_end=None, as_of=None,
                          policy=None):
    """Relationship KPIs 客户关系指标 with header: new, retained, lost, up- and downgraded customers between two periods, long-standing, active/sleeping/lost; counts and rates."""
    pol = ex.read_policy(policy)
    rows = ledger_rows(ledger, pol)
    table = relationship_table(rows, _periods(rows, this_start, this_end, last_start, last_end), pol,
                               ex.one_date(as_of, "as_of"))
    return ex.table_out(["measure / 指标", "customers / 客户数", "rate / 比率", "rate of / 比率基数"],
                        [table["measure"], table["customers"], table["rate"], table["rate_of"]])


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc=LEDGER_DOC, **RANGE)
@xw.arg("as_of", doc="Date the recency is taken on (optional; the last date in the ledger) 截止日", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_customer_recency(ledger, as_of=None, policy=None):
    """Per customer with header: first and last trade (invoice or balance brought forward), days since, years trading, long-standing, active / sleeping / lost 活跃/沉睡/流失."""
    pol = ex.read_policy(policy)
    rows = ledger_rows(ledger, pol)
    day = ex.one_date(as_of, "as_of", default=rows["date"].max() if len(rows) else None)
    if day is None:
        return "none / 无"
    table = customer_recency(rows, day, pol)
    return ex.table_out(["customer / 客户", "first trade / 首次交易", "last trade / 最近交易",
                         "days since / 距今天数", "years trading / 交易年数", "long-standing / 老客户",
                         "recency / 状态"],
                        [table["customer"], table["first_trade"], table["last_trade"], table["days_since_trade"],
                         table["years_trading"], table["long_standing"].astype(bool),
                         [str(s) for s in table["recency"]]])


MEASURES = {"customers": "customers", "客户数": "customers", "receivables": "receivables", "应收账款": "receivables",
            "both": "both", "全部": "both"}


@xw.func(category=ex.CATEGORY)
@xw.arg("pareto_tiers", doc="Each customer's Pareto tier by sales (A/B/C), one column 帕累托等级", **RANGE)
@xw.arg("rate_tiers", doc="Each customer's collection-rate tier (A-D or unrated), same rows 回款率等级", **RANGE)
@xw.arg("balances", doc="Each customer's open balance, same rows; credits are left out 应收余额", **RANGE)
@xw.arg("measure", doc="'customers', 'receivables' or 'both' (default: both, one block under the other) 指标", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_tier_cross_table(pareto_tiers, rate_tiers, balances, measure=None, policy=None):
    """Pareto tier x collection-rate tier 帕累托x回款率: customers and receivables owed in each cell, with totals (big buyers who pay badly)."""
    pol = ex.read_policy(policy)
    cols = ex.aligned(pareto_tiers=pareto_tiers, rate_tiers=rate_tiers, balances=balances)
    pareto_labels, rate_labels = policy_tier_labels(pol)
    table = tier_cross_table(ex.texts(cols["pareto_tiers"], "pareto_tiers"), ex.texts(cols["rate_tiers"], "rate_tiers"),
                             ex.money_cents(cols["balances"], "balances", blank_as_zero=True),
                             pareto_labels, rate_labels)
    which = _choice(measure, "measure", MEASURES, "both")
    blocks = []
    if which in ("customers", "both"):
        blocks.append(_matrix("customers / 客户数", table.customers, float))
    if which in ("receivables", "both"):
        blocks.append(_matrix("receivables / 应收账款", table.receivables_cents, ex.units))
    width = len(blocks[0][0])
    return blocks[0] + ([[""] * width] + blocks[1] if len(blocks) > 1 else [])


def _matrix(title: str, frame, convert) -> ex.Cells:
    header = [f"{title}: Pareto \\ rate / 帕累托\\回款率"] + [str(c) for c in frame.columns]
    return [header] + [[str(idx)] + [ex.cell(convert(v)) for v in row] for idx, row in zip(frame.index, frame.to_numpy())]


@xw.func(category=ex.CATEGORY)
@xw.arg("sales", doc="Each customer's sales, one column 销售额", **RANGE)
@xw.arg("balances", doc="Each customer's open balance, same rows 应收余额", **RANGE)
@xw.arg("n", doc="How many top customers and top debtors (optional; policy overlap_top_n, 100) 前N名", **RANGE)
@ex.shows_errors
def crm_top_share(sales, balances, n=None):
    """Concentration 集中度 with header: share of sales made by the top n customers, share of receivables owed held by the n largest debtors (MM: 83%, 78%)."""
    cols = ex.aligned(sales=sales, balances=balances)
    top = ex.vector(n, "n")
    count = None if not top or ex.is_blank(top[0]) else ex.one_number(n, "n")
    if count is not None and (count < 1 or count != int(count)):
        raise ex.arg_problem("n", f"n {count:g} must be a whole number of at least 1")
    table = top_n_shares(ex.money_cents(cols["sales"], "sales", blank_as_zero=True),
                         ex.money_cents(cols["balances"], "balances", blank_as_zero=True),
                         None if count is None else int(count))
    return ex.table_out(["measure / 指标", "n / 前N名", "customers / 客户数", "top n / 前N名合计", "total / 合计",
                         "share / 占比"],
                        [table["measure"], table["n"], table["customers"], ex.units(table["top_cents"]),
                         ex.units(table["total_cents"]), table["share"]])

