"""The KPIs review sheet: DSO, best possible DSO, ADD, CEI, % current, turnover and the bad-debt
ratio of the review year, by tier and by customer (crm_core.receivables), and the headline DSO
and CEI the Dashboard shows.

Like the ageing, these need each document's due date and what paid it, so the core computes them
and a filled register holds their values (green) under one note saying when and how to refresh;
the template holds the note alone. A blank ratio is one not defined (no credit sales, nothing owed).
"""
from __future__ import annotations

import math

import pandas as pd
from openpyxl.utils import get_column_letter

from crm_app.workbook import layout
from crm_app.workbook.register_sheets import Ctx, footer, units
from crm_app.workbook.xml_sheet import COUNT, DECIMAL, MONEY, PERCENT, Sheet
from crm_core.receivables import KPI_MONEY, KPI_RATIOS, TOTAL, kpis_by_tier

KPIS = "KPIs"
KPI_FUNCTION = "=crm_receivable_kpis(tblLedger[#All],AsOf,,PolicyTable)"
TABLE_TOP = 4  # the by-tier table's header row; the title and the add-in's note are above it
DAYS = "#,##0.0"
# each ratio's format: days, shares, and turnover (times a year)
RATIO_FORMATS = {"dso": DAYS, "best_dso": DAYS, "add": DAYS, "cei": PERCENT, "current_share": PERCENT,
                 "turnover": DECIMAL, "bad_debt_ratio": PERCENT}
HEADLINE = ("dso", "cei")  # the KPIs the Dashboard shows


def build_kpis(ctx: Ctx, sh: Sheet) -> None:
    """By tier (with the customer count) over by customer, each ending in the total row."""
    from crm_app.workbook.review_sheets import addin_note  # the same note as the Ageing sheet's

    report = ctx.data.kpis if ctx.filled else None
    sh.label("A1", "应收账款指标 Receivables KPIs: DSO, ADD, CEI" + (f" ({report.period}, {report.days} days)"
                                                              if report is not None else ""), title=True)
    layout.note(sh, "A2", addin_note(ctx, KPI_FUNCTION if ctx.ledger_on_sheet else None), kind="addin", lines=2,
                wrap=False)
    if ctx.filled and report is None:
        layout.note(sh, "A3", "需要台账明细：引擎评审的台账请用 crm-addin kpis / needs the ledger's documents: for a "
                    "ledger reviewed by an engine run crm-addin kpis", kind="note", wrap=False)
    tiers = kpis_by_tier(report, _register_tiers(ctx), ctx.policy) if report is not None else None
    first = _table(sh, TABLE_TOP, "等级 Tier", tiers, with_count=True)
    _table(sh, first + 2, "客户编码 Code", report.table if report is not None else None, with_count=False)
    headline = TABLE_TOP + (len(tiers) if tiers is not None else 1)  # the by-tier table's total row
    for key in HEADLINE:
        ctx.name(f"Kpi_{key}", KPIS, f"${_column_of(key, with_count=True)}${headline}")
    widths = {"A": 14, **{get_column_letter(c): 14 for c in range(2, len(KPI_MONEY) + len(KPI_RATIOS) + 3)}}
    layout.fit_widths(sh, least=widths, skip=[1, 2, 3])
    sh.ws.freeze_panes = f"B{TABLE_TOP + 1}"
    layout.print_setup(sh, landscape=True, title_rows=f"{TABLE_TOP}:{TABLE_TOP}", footer=footer(ctx))
    sh.protect()


def _register_tiers(ctx: Ctx) -> pd.Series:
    """The tier the Register shows for each customer: the by-tier rows add up the Register's tiers."""
    reg = ctx.data.register
    return pd.Series(reg["rate_tier"].to_numpy(), index=reg["customer"].to_numpy())


def _table(sh: Sheet, top: int, first_heading: str, table: pd.DataFrame | None, with_count: bool) -> int:
    """A header at `top`, the rows below it; the last row written (the header's, when empty)."""
    headings = [first_heading, *(["客户数 Customers"] if with_count else []),
                *(_two_lines(t) for t in KPI_MONEY.values()), *(_two_lines(t) for t in KPI_RATIOS.values())]
    layout.header(sh, top, 1, headings)
    if table is None:
        return top
    label = "tier" if with_count else "customer"
    for i, rec in enumerate(table.to_dict("records"), start=top + 1):
        cells = [(_label(rec[label]), None), *([(int(rec["customers"]), COUNT)] if with_count else []),
                 *((units(int(rec[f"{k}_cents"])), MONEY) for k in KPI_MONEY),
                 *((_ratio(rec[k]), RATIO_FORMATS[k]) for k in KPI_RATIOS)]
        for j, (value, fmt) in enumerate(cells, start=1):
            sh.value(f"{get_column_letter(j)}{i}", value, fmt if value is not None else None, fill="addin")
    return top + len(table)


def _column_of(key: str, with_count: bool) -> str:
    return get_column_letter(2 + int(with_count) + len(KPI_MONEY) + list(KPI_RATIOS).index(key))


def _two_lines(text: str) -> str:
    """'DSO days / 应收周转天数' -> '应收周转天数\\nDSO days', as every header of the register."""
    en, zh = text.split(" / ", 1)
    return f"{zh}\n{en}"


def _label(value: object) -> str:
    return "合计 Total" if value == TOTAL else str(value)


def _ratio(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def headline_figures(ctx: Ctx) -> list[tuple[str, str, object, str]]:
    """The Dashboard's KPI rows (label, formula, cached value, format): the KPIs sheet's total."""
    report = ctx.data.kpis if ctx.filled else None
    total = report.table.iloc[-1] if report is not None else None
    labels = {"dso": "应收周转天数 DSO, days (KPIs sheet)", "cei": "回款有效性指数 CEI (KPIs sheet)"}
    return [(labels[key], f'=IF(ISNUMBER(Kpi_{key}),Kpi_{key},"")',
             _ratio(total[key]) if total is not None and _ratio(total[key]) is not None else "", RATIO_FORMATS[key])
            for key in HEADLINE]
