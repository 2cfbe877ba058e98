"""The Portfolio review sheet (客户组合): where the receivables sit by Pareto tier and
collection-rate tier, how concentrated sales and debts are, and the raise candidates with their
evidence; and, for the Collection review, how the customer base moved between last year and the
review year (relationship KPIs).

Each block is the core's (crm_core.relationships, .concentration, .trends), values under one note
as on the Ageing sheet. Fixed-size blocks come first and the candidates, as many as there are, last.
"""
from __future__ import annotations

import math

from openpyxl.utils import get_column_letter

from crm_app.workbook import layout
from crm_app.workbook.register_sheets import Ctx, footer, units
from crm_app.workbook.xml_sheet import COUNT, MONEY, PERCENT, Sheet
from crm_core.concentration import TOTAL, policy_tier_labels, tier_cross_table, top_n_shares
from crm_core.issues import check_invariant
from crm_core.relationships import relationship_table
from crm_core.trends import TwoPeriods, raise_candidates, raise_evidence

PORTFOLIO = "Portfolio"
CANDIDATE_HEADINGS = ["客户编码\nCode", "上年销售额\nSales last year", "本年销售额\nSales this year", "销售增长\nSales growth",
                      "上年回款率\nRate last year", "本年回款率\nRate this year", "回款率变化\nRate change (pts)",
                      "依据\nEvidence"]


def build_portfolio(ctx: Ctx, sh: Sheet) -> None:
    from crm_app.workbook.review_sheets import addin_note  # the same note as the Ageing sheet's

    sh.label("A1", "客户组合 Portfolio: receivables by tier, concentration, raise candidates", title=True)
    layout.note(sh, "A2", addin_note(ctx, None), kind="addin", lines=2, wrap=False)
    periods = _periods(ctx)
    r = _cross_table(ctx, sh, 4)
    r = _shares(ctx, sh, r + 2)
    _candidates(ctx, sh, r + 2, periods)
    layout.fit_widths(sh, least={"A": 44, **{get_column_letter(c): 14 for c in range(2, 9)}}, most=60, skip=[1, 2])
    layout.print_setup(sh, landscape=True, footer=footer(ctx))
    sh.protect()


def _periods(ctx: Ctx) -> TwoPeriods | None:
    return TwoPeriods.ending_with(ctx.data.review.period) if ctx.filled and len(ctx.data.rows) else None


def _title(sh: Sheet, ref: str, text: str) -> None:
    sh.label(ref, text, head=True)


RELATIONSHIP_ROWS = 14  # the relationship block's rows below its title: note, header, twelve measures
RATES_NOTE = ("比率：新增、留存、流失按上期客户，升降级按留存客户，其余按截至期末有交易的客户 / rates: new, retained and "
              "lost of last period's customers; up, down and same of the retained; the rest of those trading by the end")


def relationship_block(ctx: Ctx, sh: Sheet, top: int) -> int:
    """On the Collection review, under the tier migration (columns M-R): new, retained, lost, up
    and down customers; long-standing; active, sleeping and lost by recency. The measure's name in
    M runs on over N-P; the count in Q, the rate in R. The last row used."""
    periods = _periods(ctx)
    when = f" ({periods.last} → {periods.this})" if periods else ""
    sh.label(f"M{top}", f"客户关系指标 Relationship KPIs, last year against the review year{when}")
    layout.note(sh, f"M{top + 1}", addin_note_text(ctx), kind="addin", wrap=False)
    sh.label(f"M{top + 2}", "指标 Measure", head=True)
    sh.label(f"Q{top + 2}", "客户数 Customers", head=True)
    sh.label(f"R{top + 2}", "比率 Rate", head=True)
    if periods is not None:
        table = relationship_table(ctx.data.rows, periods, ctx.policy)
        check_invariant(len(table) == RELATIONSHIP_ROWS - 2, "the relationship block is laid out for its measures")
        for i, rec in enumerate(table.to_dict("records"), start=top + 3):
            sh.value(f"M{i}", _two_words(rec["measure"]), fill="addin")
            sh.value(f"Q{i}", int(rec["customers"]), COUNT, fill="addin")
            if _number(rec["rate"]) is not None:
                sh.value(f"R{i}", _number(rec["rate"]), PERCENT, fill="addin")
    sh.label(f"M{top + RELATIONSHIP_ROWS + 1}", RATES_NOTE, note=True)
    return top + RELATIONSHIP_ROWS + 1


def addin_note_text(ctx: Ctx) -> str:
    """One line: the block holds the add-in's values, of when."""
    if not ctx.filled:
        return "需要 crm-addin：运行 Build review 生成 / needs crm-addin: run Build review"
    return f"由 crm-addin 计算（{ctx.data.generated_at or 'the review'}） / computed by crm-addin"


def _cross_table(ctx: Ctx, sh: Sheet, top: int) -> int:
    """Customers and receivables owed by Pareto tier (rows) x collection-rate tier (columns): the
    big buyers who pay badly sit in row A, right-hand columns."""
    _title(sh, f"A{top}", "ABC 等级 x 回款等级 Pareto tier x collection-rate tier: customers | receivables owed")
    pareto_labels, rate_labels = policy_tier_labels(ctx.policy)
    columns = [*rate_labels, "合计 Total"]
    layout.header(sh, top + 1, 1, ["ABC 等级 \\ 回款等级 Pareto \\ rate", *columns])
    layout.header(sh, top + 1, len(columns) + 3, ["应收 Receivables", *columns])
    if not ctx.filled:
        return top + 1
    reg = ctx.data.register
    table = tier_cross_table(reg["pareto_tier"], reg["rate_tier"], reg["open_balance_cents"], pareto_labels, rate_labels)
    for i, label in enumerate(table.customers.index, start=top + 2):
        shown = "合计 Total" if label == TOTAL else label
        _row(sh, i, [(shown, None), *((int(v), COUNT) for v in table.customers.loc[label])])
        _row(sh, i, [(shown, None), *((units(int(v)), MONEY) for v in table.receivables_cents.loc[label])],
             first_col=len(columns) + 3)
    return top + 1 + len(table.customers)


def _shares(ctx: Ctx, sh: Sheet, top: int) -> int:
    n = ctx.policy.overlap_top_n
    _title(sh, f"A{top}", f"集中度 Concentration: the top {n} (policy overlap_top_n)")
    layout.header(sh, top + 1, 1, ["指标 Measure", "客户数 Customers", "前N合计 Top n", "全部 All", "占比 Share"])
    if not ctx.filled:
        return top + 1
    reg = ctx.data.register
    table = top_n_shares(reg["net_sales_cents"], reg["open_balance_cents"], n, ctx.policy)
    for i, rec in enumerate(table.to_dict("records"), start=top + 2):
        _row(sh, i, [(_two_words(rec["measure"]), None), (int(rec["customers"]), COUNT),
                     (units(int(rec["top_cents"])), MONEY), (units(int(rec["total_cents"])), MONEY),
                     (_number(rec["share"]), PERCENT)])
    return top + 1 + len(table)


def _candidates(ctx: Ctx, sh: Sheet, top: int, periods: TwoPeriods | None) -> int:
    """Customers whose collection rate improved and whose sales grew (C7 in the reference case)."""
    _title(sh, f"A{top}", "调增候选 Raise candidates: collection rate improved and sales grew (policy raise_rate_gain, "
           "raise_sales_growth)")
    layout.header(sh, top + 1, 1, CANDIDATE_HEADINGS)
    if periods is None:
        return top + 1
    chosen = raise_candidates(raise_evidence(ctx.data.rows, periods, ctx.policy))
    for i, rec in enumerate(chosen.to_dict("records"), start=top + 2):
        _row(sh, i, [(rec["customer"], None), (units(int(rec["sales_last_cents"])), MONEY),
                     (units(int(rec["sales_this_cents"])), MONEY), (_number(rec["sales_growth"]), PERCENT),
                     (_number(rec["rate_last"]), PERCENT), (_number(rec["rate_this"]), PERCENT),
                     (_points(rec["rate_change"]), "0.0"), (rec["evidence"], None)])
    if not len(chosen):
        sh.label(f"A{top + 2}", "无 none: no customer's rate improved while its sales grew / 无调增候选")
    return top + 1 + max(len(chosen), 1)


def _row(sh: Sheet, r: int, cells: list[tuple[object, str | None]], first_col: int = 1) -> None:
    for j, (value, fmt) in enumerate(cells, start=first_col):
        if value is not None:
            sh.value(f"{get_column_letter(j)}{r}", value, fmt if not isinstance(value, str) else None, fill="addin")


def _two_words(text: str) -> str:
    """'new customers / 新增客户' -> '新增客户 new customers', Chinese first as every label here."""
    if " / " not in text:
        return text
    en, zh = text.split(" / ", 1)
    return f"{zh} {en}"


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _points(change: float) -> float | None:
    value = _number(change)
    return None if value is None else value * 100

