"""The Funnel review sheet (销售漏斗, 003): the promotion rates E->D, D->C, C->B, B->A measured from
an earlier stage snapshot against the Register's stage tiers, the average deal, and how many A..E
customers a sales target needs (crm_core.funnel), against the customers at each stage now.

Native formulas throughout, each with the core's value cached, so the plan recalculates in Excel
and LibreOffice without Python: the earlier snapshot is an input table (customer code and stage
tier, pasted from last quarter's register); a step no earlier customer was promoted on takes the
policy's `funnel_rate` instead, and the sheet says which. The target defaults to the review
year's net sales and the average deal to the mean net sales of the customers with sales; both are
inputs to type over. The counts are whole-number arithmetic (rates in parts per 10,000, amounts
in cents), so they are the core's to the customer. The pyramid is a chart beside the plan.
"""
from __future__ import annotations

import pandas as pd
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.worksheet.datavalidation import DataValidation

from crm_app.workbook import layout
from crm_app.workbook.register_sheets import TEMPLATE_ROWS, Ctx, footer, literal, units
from crm_app.workbook.xml_sheet import COUNT, MONEY, PERCENT, SKIP, Sheet
from crm_core.funnel import (
    POLICY_KEYS,
    RATE_PARTS,
    STAGES,
    STEPS,
    funnel_plan,
    promotion_rates,
    rates_in_use,
)
from crm_core.issues import CrmInputError

FUNNEL = "Funnel"
INPUT_ROW = 4  # the target and average deal, under their header
RATES_TOP = 9  # the promotion rates' header row (one row a step below it)
PLAN_TOP = 16  # the plan's header row (one row a stage below it, A first)
SNAPSHOT_TOP = 24  # the earlier snapshot's header row (input rows below it)
STAGE_LIST = "{" + ",".join(f'"{s}"' for s in STAGES) + "}"
HOW = ("晋级率：上期阶段（下表黄色，从上季度登记表粘贴客户编码和阶段等级）对比登记表现在的阶段等级；某一步无客户晋级时用政策 "
       "funnel_rate。计划：A = 目标 / 平均成交额，下一级 = 上一级 / 晋级率，每步向上取整。 / Promotion rates: the "
       "earlier snapshot (yellow table below: paste customer codes and stage tiers from last quarter's register) "
       "against the Register's stage tiers now; a step on which no customer was promoted uses the policy's "
       "funnel_rate. Plan: A = target / average deal, each stage below = the one above / its rate, rounded up.")


def floor_div(num: str, den: str) -> str:
    """floor(num / den) of whole numbers as a formula, exact in a spreadsheet's floating point:
    the quotient's INT is corrected by the sign of the remainder (num - q x den, exact below 2^53),
    so 60.00000000000001 from a rounded division never becomes 61."""
    q = f"INT(({num})/({den}))"
    return f"({q}-IF(({num})-{q}*({den})<0,1,0))"


def ceil_div(num: str, den: str) -> str:
    """ceil(num / den) of whole numbers (den > 0), exact as `floor_div`."""
    return floor_div(f"({num})+({den})-1", den)


def build_funnel(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "销售漏斗 Sales funnel: promotion rates, average deal and the customers a target needs", title=True)
    layout.note(sh, "A2", HOW, kind="body", wrap=False)
    rows = _snapshot_rows(ctx)
    figures = _figures(ctx)
    _inputs(ctx, sh, figures)
    _rates(ctx, sh, rows, figures)
    _plan(ctx, sh, figures)
    _snapshot(ctx, sh, rows)
    _pyramid(ctx, sh)
    layout.fit_widths(sh, least={"A": 14, "B": 16, "C": 16, "D": 14, "E": 14, "F": 14, "G": 14, "H": 14, "I": 18},
                      skip=[1, 2, INPUT_ROW - 1, RATES_TOP - 1, PLAN_TOP - 1, SNAPSHOT_TOP - 1], most=30)
    sh.ws.freeze_panes = "A4"
    layout.print_setup(sh, landscape=True, area=f"A1:Q{PLAN_TOP + len(STAGES)}",
                       footer=footer(ctx) + " · 上期阶段表未打印 / the earlier snapshot is not printed")
    sh.protect()


# ---------------------------------------------------------------- what the core says


def _figures(ctx: Ctx) -> dict[str, object] | None:
    """The core's target, average deal, rates in use, plan and current counts (None: the template).
    A filled register's earlier snapshot is empty: every step takes the policy's rate."""
    if not ctx.filled:
        return None
    d = ctx.data
    reg = d.register
    sales = reg["net_sales_cents"].to_numpy(dtype="int64")
    target = int(d.review.net_sales_cents)
    deal = _mean_half_up(sales[sales > 0])
    rates = rates_in_use(promotion_rates([], []), ctx.policy)
    try:
        plan = funnel_plan(target, deal, rates["rate"]) if deal > 0 else None
    except CrmInputError:  # a negative target: the sheet shows no plan either
        plan = None
    now = _stages_now(ctx)
    return {"target": target, "deal": deal, "with_sales": int((sales > 0).sum()), "rates": rates, "plan": plan,
            "now": now}


def _mean_half_up(cents) -> int:
    """The mean of whole cents rounded half-up (crm_core.funnel.average_deal's rounding); 0 for none."""
    n, total = len(cents), int(sum(int(c) for c in cents))
    return (2 * total + n) // (2 * n) if n else 0


def _stages_now(ctx: Ctx) -> dict[str, int]:
    """Customers at each stage tier as the Register's stage column gives them (its formula on the
    need and the expected close date, whose values the core caches there)."""
    from crm_app.workbook.register_sheets import register_customer_file

    tiers = pd.Series([str(s) for s in register_customer_file(ctx.data).stage], dtype=object).str.strip().str.upper()
    return {s: int((tiers == s).sum()) for s in STAGES}


# ---------------------------------------------------------------- blocks


def _inputs(ctx: Ctx, sh: Sheet, figures: dict | None) -> None:
    r = INPUT_ROW
    sh.label(f"A{r - 1}", "输入 Inputs (黄色可改 yellow: type over the defaults)", head=True)
    deal = _deal_formula()
    rows = [
        ("FunnelTarget", "销售目标 Target sales (default: the review year's net sales, Credit sheet)", "=NetSalesTotal",
         figures and units(figures["target"]), MONEY, True),
        ("FunnelDeal", "平均成交额 Average deal (default: mean net sales of the customers with sales)", deal,
         figures and units(figures["deal"]), MONEY, True),
        (None, "有销售的客户 Customers with sales (Register)", '=COUNTIF(Reg_net_sales,">0")',
         figures and figures["with_sales"], COUNT, False),
    ]
    for i, (name, label, formula, cached, fmt, is_input) in enumerate(rows):
        row = r + i
        sh.label(f"A{row}", label)
        sh.formula(f"E{row}", formula, cached if figures else SKIP, fmt, unlocked=is_input)
        if name:
            ctx.name(name, FUNNEL, f"$E${row}")
    for row in (r, r + 1):
        ctx.validate(FUNNEL, f"E{row}", DataValidation(type="decimal", operator="between", formula1="0",
                                                         formula2="1E+15", showErrorMessage=True,
                                                         error="An amount, 0 or more / 金额"))


def _deal_formula() -> str:
    """The mean net sales of customers with positive sales, half-up at the cent, in whole cents."""
    cents, n = 'ROUND(SUMIF(Reg_net_sales,">0")*100,0)', 'COUNTIF(Reg_net_sales,">0")'
    return f"=IF({n}=0,0,{floor_div(f'2*{cents}+{n}', f'2*{n}')}/100)"


def _rates(ctx: Ctx, sh: Sheet, rows: int, figures: dict | None) -> None:
    top = RATES_TOP
    sh.label(f"A{top - 1}", "晋级率 Promotion rates: earlier snapshot (table below) -> Register now", head=True)
    layout.header(sh, top, 1, ["晋级 Step", "期初客户数 Customers at the stage then", "已晋级 Promoted (to it or better)",
                               "实测晋级率 Measured rate", "政策默认 Policy default", "所用晋级率 Rate used",
                               "来源 Source"])
    first, last = SNAPSHOT_TOP + 1, SNAPSHOT_TOP + rows
    then, now = f"$D${first}:$D${last}", f"$E${first}:$E${last}"
    table = figures["rates"] if figures else None
    for i, ((low, high), key) in enumerate(zip(STEPS, POLICY_KEYS)):
        r = top + 1 + i
        rec = table.iloc[i] if table is not None else None
        get = (lambda v: v) if rec is not None else (lambda v: SKIP)
        policy_row = ctx.policy_rows[f"funnel_rate.{key}"]
        sh.label(f"A{r}", f"{low}->{high}")
        sh.formula(f"B{r}", f'=COUNTIFS({then},{STAGES.index(low) + 1},{now},">0")', get(_int(rec, "customers")), COUNT)
        sh.formula(f"C{r}", f'=COUNTIFS({then},{STAGES.index(low) + 1},{now},"<={STAGES.index(high) + 1}")',
                   get(_int(rec, "promoted")), COUNT)
        measured = floor_div(f"2*C{r}*{RATE_PARTS}+B{r}", f"2*B{r}")
        sh.formula(f"D{r}", f'=IF(B{r}>0,{measured}/{RATE_PARTS},"")',
                   get(_blank_nan(rec["measured"]) if rec is not None else ""), PERCENT)
        sh.formula(f"E{r}", f"=ROUND(Policy!$B${policy_row},4)", get(rec["policy"] if rec is not None else 0), PERCENT)
        sh.formula(f"F{r}", f"=IF(C{r}>0,D{r},E{r})", get(rec["rate"] if rec is not None else 0), PERCENT)
        sh.formula(f"G{r}", f'=IF(C{r}>0,"实测 measured","政策默认 policy default")',
                   get(_source(rec["source"]) if rec is not None else ""))


def _plan(ctx: Ctx, sh: Sheet, figures: dict | None) -> None:
    """A..E: customers needed (each rounded up), at the stage now (Register), gap, the chart's offset."""
    top = PLAN_TOP
    sh.label(f"A{top - 1}", "计划 Plan: customers the target needs at each stage, against the Register now", head=True)
    layout.header(sh, top, 1, ["阶段 Stage", "所需客户数 Customers needed", "现有客户数 Customers now (Register)",
                               "缺口 Gap (needed - now)", "图表偏移 Chart offset (centres the bars)"])
    plan = figures["plan"] if figures else None
    needed = [int(v) for v in plan["customers"]] if plan is not None else None
    widest = max(needed) if needed else 0
    tc, dc = "ROUND(FunnelTarget*100,0)", "ROUND(FunnelDeal*100,0)"
    first, last = top + 1, top + len(STAGES)
    for i, stage in enumerate(STAGES):
        r = first + i
        if i == 0:
            formula = f'=IF(OR({dc}<=0,{tc}<0),"",{ceil_div(tc, dc)})'
        else:  # the stage above over the rate of the step into it: B from B->A (the last step), C from C->B...
            rate_row = RATES_TOP + len(STEPS) - i + 1
            parts = f"ROUND(F{rate_row}*{RATE_PARTS},0)"
            formula = f'=IF(OR(B{r - 1}="",{parts}<=0),"",{ceil_div(f"B{r - 1}*{RATE_PARTS}", parts)})'
        now = figures["now"][stage] if figures else 0
        sh.label(f"A{r}", stage)
        cached = (needed[i] if needed else "") if figures else SKIP
        sh.formula(f"B{r}", formula, cached, COUNT)
        sh.formula(f"C{r}", f'=COUNTIF(Reg_stage_tier,"{stage}")', ctx.cached(now), COUNT)
        sh.formula(f"D{r}", f'=IF(B{r}="","",B{r}-C{r})', ((needed[i] - now) if needed else "") if figures else SKIP,
                   COUNT)
        sh.formula(f"E{r}", f'=IF(B{r}="",0,(MAX($B${first}:$B${last})-B{r})/2)',
                   ((widest - needed[i]) / 2 if needed else 0) if figures else SKIP, "#,##0.0")


def _snapshot(ctx: Ctx, sh: Sheet, rows: int) -> None:
    """The earlier snapshot: codes and stage tiers typed or pasted (yellow); each customer's stage
    now from the Register, and both stages' places A=1 ... E=5 (blank: not staged then or now)."""
    top = SNAPSHOT_TOP
    sh.label(f"A{top - 1}", "上期阶段 Earlier snapshot: paste customer codes and their stage tiers then (e.g. last "
                            "quarter's register)", head=True)
    layout.header(sh, top, 1, ["客户编码 Code", "上期阶段 Stage then", "现在阶段 Stage now (Register)",
                               "上期序号 Place then (A=1)", "现在序号 Place now (A=1)"])
    blank = ctx.cached("")
    for r in range(top + 1, top + 1 + rows):
        sh.value(f"A{r}", None, unlocked=True)
        sh.value(f"B{r}", None, unlocked=True)
        found = f"MATCH({literal(f'$A{r}', equals=False)},Reg_customer,0)"
        sh.formula(f"C{r}", f'=IF($A{r}="","",IFERROR(INDEX(Reg_stage_tier,{found})&"",""))', blank)
        sh.formula(f"D{r}", f'=IF(OR($A{r}="",$B{r}=""),"",IFERROR(MATCH($B{r},{STAGE_LIST},0),""))', blank)
        sh.formula(f"E{r}", f'=IF(D{r}="","",IFERROR(MATCH($C{r},{STAGE_LIST},0),""))', blank)
    ctx.validate(FUNNEL, f"B{top + 1}:B{top + rows}", DataValidation(
        type="list", formula1="StageTiers", allow_blank=True, showErrorMessage=True,
        error="A stage tier A-E / 请选择阶段等级 A-E"))


def _snapshot_rows(ctx: Ctx) -> int:
    """Input rows for the earlier snapshot: one per customer the review sheets cover."""
    return max(ctx.cap, TEMPLATE_ROWS)


def _pyramid(ctx: Ctx, sh: Sheet) -> None:
    """The plan as a pyramid: a horizontal stacked bar of an invisible offset (half the difference
    to the widest stage) and the customers needed, A on top."""
    from crm_app.workbook.review_sheets import _look, _rich_title

    ws, first, last = sh.ws, PLAN_TOP + 1, PLAN_TOP + len(STAGES)
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap, chart.gapWidth = "bar", "stacked", 100, 30
    chart.add_data(Reference(ws, min_col=5, min_row=PLAN_TOP, max_row=last), titles_from_data=True)
    chart.add_data(Reference(ws, min_col=2, min_row=PLAN_TOP, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    offset, needed = chart.series
    offset.graphicalProperties = GraphicalProperties(noFill=True)
    offset.graphicalProperties.line.noFill = True
    needed.graphicalProperties = GraphicalProperties(solidFill="305496")
    needed.dLbls = DataLabelList(showVal=True)
    chart.legend = None
    _look(chart, "销售漏斗 Sales funnel: customers needed by stage", "阶段 Stage", "客户数 Customers")
    chart.x_axis.scaling.orientation = "maxMin"  # A, the fewest, at the top
    chart.y_axis.delete = True  # the offset makes the value axis meaningless: the bars carry their counts
    chart.y_axis.majorGridlines = None
    chart.title = _rich_title("销售漏斗 Sales funnel: customers needed by stage", 1100)
    chart.height, chart.width = 8.5, 13
    chart.anchor = f"I{PLAN_TOP - 12}"
    ws.add_chart(chart)


def _int(rec, key: str) -> int:
    return int(rec[key]) if rec is not None else 0


def _blank_nan(value: float) -> object:
    return "" if value != value else float(value)


def _source(source: str) -> str:
    from crm_core.funnel import MEASURED

    return "实测 measured" if source == MEASURED else "政策默认 policy default"
