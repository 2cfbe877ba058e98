"""The review sheets and the Dashboard: collection review, credit use, debtor overlap, staff
effort, ageing, follow-ups. Native formulas (LibreOffice-safe) recompute from the Ledger and
the Register, each with the core's value cached. No cell calls the add-in: where a worksheet
function (crm_*) would only repeat a native table it is left out, and the ageing, which only the
core computes, holds its values (green) under one note saying when and how to refresh them.
"""
from __future__ import annotations

import math

import pandas as pd
from openpyxl.chart import BarChart, Reference, ScatterChart, Series
from openpyxl.chart.text import RichText, Text
from openpyxl.chart.title import Title
from openpyxl.drawing.spreadsheet_drawing import AnchorMarker, TwoCellAnchor
from openpyxl.drawing.text import (
    CharacterProperties,
    Paragraph,
    ParagraphProperties,
    RegularTextRun,
    RichTextProperties,
)
from openpyxl.drawing.text import Font as DrawingFont
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from crm_app.workbook import layout
from crm_app.workbook.data import (
    migration,
    overlap_table,
    pareto_labels,
    pareto_points,
    pareto_summary,
    tier_labels,
    tier_summary,
)
from crm_app.workbook.kpi_sheet import headline_figures
from crm_app.workbook.portfolio_sheet import RELATIONSHIP_ROWS, relationship_block
from crm_app.workbook.register_sheets import (
    BALANCE_UP,
    LEDGER_TYPES,
    Ctx,
    L,
    about_values,
    blank_nan,
    footer,
    issues_note,
    ledger_note,
    literal,
    net_sales_total_formula,
    rank_tier_formula,
    reg_col,
    type_list,
    units,
)
from crm_app.workbook.xml_sheet import (
    COUNT,
    DATE,
    DECIMAL,
    FONT_NAME,
    MONEY,
    PERCENT,
    SKIP,
    WHOLE,
    Sheet,
)
from crm_core.analysis import Receivables, aging_columns
from crm_core.receivables import TOTAL, aging_with_total, by_tier

STAFF = "#,##0.0"  # staff (or hours) serving a tier: an input, possibly part-time
RED_FILL = PatternFill("solid", fgColor="F8CBAD")
RED_FONT = Font(color="9C0006")
PERIOD = f'{L("date")},">="&PeriodStart,{L("date")},"<="&PeriodEnd'
UNTIL_END = f'{L("date")},"<="&PeriodEnd'


def _mirror(key: str, r: int) -> str:
    c = reg_col(key)
    return f'=IF(Register!${c}${r}="","",Register!${c}${r})'


def _col_values(ctx: Ctx, values) -> list:
    """Per-row cached values for the mirror rows ('' past the last customer)."""
    return list(values) + [""] * (ctx.cap - len(values))


# ----------------------------------------------------------------------------- Collection review
def _sumifs(value_key: str, types: tuple[str, ...], r: int, where: str) -> str:
    """The first type's sum less the others'."""
    who = literal(f"$A{r}")
    parts = [f'SUM(SUMIFS({L(value_key)},{L("customer")},{who},{L("type")},{type_list(t)},{where}))' for t in types]
    return "-".join(parts)


def _balance_sumifs(r: int) -> str:
    """Open balance (gross) until the period's end: invoices and balances brought forward less
    receipts, credit notes and write-offs, as the core's BALANCE_SIGNS."""
    ups = "+".join(_sumifs("gross", (t,), r, UNTIL_END) for t in BALANCE_UP)
    return ups + "".join("-" + _sumifs("gross", (t,), r, UNTIL_END) for t in LEDGER_TYPES if t not in BALANCE_UP)


def _ledger_sums(ctx: Ctx, sh: Sheet, r: int, get) -> None:
    """Net sales, gross sales, collections and open balance of row r's customer: SUMIFS over the
    Ledger sheet, or the add-in's values (green) when the ledger is not on it."""
    if ctx.ledger_on_sheet:
        sh.formula(f"B{r}", f'=IF($A{r}="","",{net_sales_total_formula(literal(f"$A{r}"))})', get("B"), MONEY)
        sh.formula(f"C{r}", f'=IF($A{r}="","",ROUND({_sumifs("gross", ("invoice", "credit_note"), r, PERIOD)},2))',
                   get("C"), MONEY)
        sh.formula(f"D{r}", f'=IF($A{r}="","",ROUND({_sumifs("amount", ("receipt",), r, PERIOD)},2))', get("D"), MONEY)
        sh.formula(f"G{r}", f'=IF($A{r}="","",ROUND({_balance_sumifs(r)},2))', get("G"), MONEY)
        return
    for col in "BCDG":
        sh.value(f"{col}{r}", get(col), MONEY, fill="addin")


def _tier_formula(ctx: Ctx, cell: str) -> str:
    cutoffs = len(ctx.policy.rate_cutoffs)
    tests = ",".join(f"ROUND({cell},9)>=Lists!$E${i + 2},Lists!$D${i + 2}" for i in range(cutoffs))
    return f"_xlfn.IFS({tests},TRUE,LowestTier)"


def build_collection(ctx: Ctx, sh: Sheet) -> None:
    source = "(ledger)" if ctx.ledger_on_sheet else "(加载项 add-in)"
    layout.header(sh, 1, 1, ["客户编码 Code", f"净销售额 Net sales {source}", f"含税销售额 Gross sales {source}",
                             f"回款额 Collections {source}", "回款率 Collection rate", "回款等级 Tier by rate",
                             f"应收余额 Open balance {source}", "上年等级 Previous tier",
                             "与登记表一致 Matches register", "ABC等级 Pareto tier"])
    if not ctx.ledger_on_sheet:
        sh.label("T1", ledger_note(ctx), note=True)
    d = ctx.data
    cached = _collection_cached(ctx) if d is not None else {}
    last = ctx.cap + 1
    for r in ctx.rows():
        i = r - 2
        get = (lambda col, i=i: cached[col][i]) if cached else (lambda col, i=i: SKIP)
        sh.formula(f"A{r}", _mirror("customer", r), get("A"))
        _ledger_sums(ctx, sh, r, get)
        sh.formula(f"E{r}", f'=IF(OR($A{r}="",N(C{r})<=0),"",D{r}/C{r})', get("E"), PERCENT)
        by_rank = rank_tier_formula(f"E{r}", f"$E$2:$E${last}", len(ctx.policy.rank_shares))
        sh.formula(f"F{r}", f'=IF($A{r}="","",IF(E{r}="",Unrated,IF(TierMode="rank",{by_rank},'
                            f'{_tier_formula(ctx, f"E{r}")})))', get("F"))
        prev = d.previous_tiers[i] if d is not None and i < ctx.n else None
        sh.value(f"H{r}", prev or None, unlocked=True)
        sh.formula(f"I{r}", f'=IF($A{r}="","",IF(AND(F{r}=Register!${reg_col("rate_tier")}${r},'
                            f'ROUND(B{r}-N(Register!${reg_col("net_sales")}${r}),2)=0,'
                            f'ROUND(D{r}-N(Register!${reg_col("collections")}${r}),2)=0,'
                            f'ROUND(G{r}-N(Register!${reg_col("open_balance")}${r}),2)=0),"OK","≠"))', get("I"))
        # the core's Pareto tier, as the Register holds it (sales ranks need every customer's sales)
        sh.formula(f"J{r}", _mirror("pareto_tier", r), get("J"))
    _collection_summary(ctx, sh, last)
    layout.fit_widths(sh, least={**{c: 15 for c in "BCDG"}, **{c: 15 for c in "OPQ"}, "M": 12},
                      fixed={"L": 3, **({} if ctx.ledger_on_sheet else {"T": 120})}, skip=_collection_texts(ctx),
                      most=30)
    sh.ws.freeze_panes = "B2"
    # the customers' rows (none in the template: its 500 rows of formulas print blank) and the summary
    summary_end = _relationships_top(ctx) + RELATIONSHIP_ROWS + 1
    layout.print_setup(sh, landscape=True, title_rows="1:1", area=f"A1:R{max(ctx.n + 1, summary_end)}",
                       footer=footer(ctx))
    sh.protect()


def _collection_cached(ctx: Ctx) -> dict[str, list]:
    """Each column's cached values, per mirror row ('' past the last customer)."""
    d, facts = ctx.data, ctx.data.facts
    cached = {
        "A": facts["customer"].tolist(), "B": [units(v) for v in facts["net_sales_cents"]],
        "C": [units(v) for v in facts["gross_sales_cents"]], "D": [units(v) for v in facts["collections_cents"]],
        "E": [blank_nan(v) for v in facts["collection_rate"]], "F": d.register["rate_tier"].tolist(),
        "G": [units(v) for v in facts["open_balance_cents"]], "I": ["OK"] * ctx.n,
        "J": d.register["pareto_tier"].tolist(),
    }
    return {k: _col_values(ctx, v) for k, v in cached.items()}


def _collection_texts(ctx: Ctx) -> list[str]:
    """The summary area's titles and sentences in column M, which run on to the right (not measured)."""
    top = 3 + len(tier_labels(ctx.policy)) + 3
    kpis = _relationships_top(ctx)
    return ["M1", f"M{top - 1}", f"M{top + len(tier_labels(ctx.policy)) + 2}", "T1",
            *(f"M{r}" for r in range(kpis, kpis + RELATIONSHIP_ROWS + 2))]


def _relationships_top(ctx: Ctx) -> int:
    """The relationship KPIs' title row: two rows under the migration's last line."""
    return 3 + len(tier_labels(ctx.policy)) + 3 + len(tier_labels(ctx.policy)) + 4


def _collection_summary(ctx: Ctx, sh: Sheet, last: int) -> None:
    labels = tier_labels(ctx.policy)
    summary = tier_summary(ctx.data) if ctx.filled else None
    sh.label("M1", "按回款等级汇总 By tier (from the ledger)", title=True)
    layout.header(sh, 2, 13, ["等级 Tier", "客户数 Customers", "净销售额 Net sales", "含税销售额 Gross sales",
                              "回款额 Collections", "回款率 Rate"])
    rng = {c: f"${c}$2:${c}${last}" for c in "BCDFH"}
    for i, tier in enumerate(labels):
        r = 3 + i
        s = summary.loc[tier] if summary is not None else None
        get = (lambda v: v) if s is not None else (lambda v: SKIP)
        gross = int(s["gross_sales_cents"]) if s is not None else 0
        coll = int(s["collections_cents"]) if s is not None else 0
        sh.formula(f"M{r}", f"=Lists!$A${i + 2}", get(tier))
        sh.formula(f"N{r}", f"=COUNTIF({rng['F']},M{r})", get(int(s["customers"]) if s is not None else 0), COUNT)
        sh.formula(f"O{r}", f"=SUMIF({rng['F']},M{r},{rng['B']})", get(units(s["net_sales_cents"]) if s is not None else 0), MONEY)
        sh.formula(f"P{r}", f"=SUMIF({rng['F']},M{r},{rng['C']})", get(units(gross)), MONEY)
        sh.formula(f"Q{r}", f"=SUMIF({rng['F']},M{r},{rng['D']})", get(units(coll)), MONEY)
        sh.formula(f"R{r}", f'=IF(P{r}>0,Q{r}/P{r},"")', get(coll / gross if gross > 0 else ""), PERCENT)
    tot = 3 + len(labels)
    sh.label(f"M{tot}", "合计 Total")
    for col, key in (("N", "customers"), ("O", "net_sales_cents"), ("P", "gross_sales_cents"), ("Q", "collections_cents")):
        value = SKIP if summary is None else (int(summary[key].sum()) if key == "customers" else units(summary[key].sum()))
        sh.formula(f"{col}{tot}", f"=SUM({col}3:{col}{tot - 1})", value, COUNT if col == "N" else MONEY)
    _migration(ctx, sh, tot + 3, last, labels)


def _migration(ctx: Ctx, sh: Sheet, top: int, last: int, labels: list[str]) -> None:
    """Previous year's tier (rows) against this year's (columns), counted natively; the add-in's
    crm_tier_migration gives the same table (not repeated here as values)."""
    sh.label(f"M{top - 1}", "等级迁移 Tier migration: previous year (rows) -> this year (columns)")
    matrix = migration(ctx.data) if ctx.filled else None
    sh.label(f"M{top}", "上年\\本年 prev \\ new", head=True)
    cols = [chr(ord("N") + j) for j in range(len(labels))]
    for j, tier in enumerate(labels):
        sh.formula(f"{cols[j]}{top}", f"=Lists!$A${j + 2}", ctx.cached(tier))
    for i, old in enumerate(labels):
        r = top + 1 + i
        sh.formula(f"M{r}", f"=Lists!$A${i + 2}", ctx.cached(old))
        for j, new in enumerate(labels):
            value = int(matrix.loc[old, new]) if matrix is not None else SKIP
            sh.formula(f"{cols[j]}{r}", f"=COUNTIFS($H$2:$H${last},$M{r},$F$2:$F${last},{cols[j]}${top})", value, COUNT)
    r = top + len(labels) + 2
    sh.label(f"M{r}", "等级变动客户 Customers that moved tier")
    moved = SKIP
    if ctx.filled:
        prev, new = ctx.data.previous_tiers, ctx.data.register["rate_tier"].to_numpy()
        moved = int(((prev != "") & (prev != new)).sum())
    sh.formula(f"P{r}", f'=SUMPRODUCT(($H$2:$H${last}<>"")*($H$2:$H${last}<>$F$2:$F${last}))', moved, COUNT)
    relationship_block(ctx, sh, r + 2)


# ----------------------------------------------------------------------------- Credit use
def build_credit_use(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "额度使用 Credit use by tier: exposure against line", title=True)
    layout.header(sh, 3, 1, ["等级 Tier", "客户数 Customers", "赊销额度 Credit lines", "应收余额 Open balance",
                             "使用率 Utilisation", "超额客户 Over limit", "额度闲置 Line far above use",
                             "年度分配 Yearly allocation", "偏离 Drift"])
    labels = tier_labels(ctx.policy)
    summary = tier_summary(ctx.data) if ctx.filled else None
    t, ln, bal = "Reg_rate_tier", "Reg_credit_line", "Reg_open_balance"
    for i, tier in enumerate(labels):
        r = 4 + i
        s = summary.loc[tier] if summary is not None else None
        get = (lambda v: v) if s is not None else (lambda v: SKIP)
        line = int(s["line_cents"]) if s is not None else 0
        open_ = int(s["open_balance_cents"]) if s is not None else 0
        sh.formula(f"A{r}", f"=Lists!$A${i + 2}", get(tier))
        sh.formula(f"B{r}", f"=COUNTIF({t},A{r})", get(int(s["customers"]) if s is not None else 0), COUNT)
        sh.formula(f"C{r}", f"=SUMIF({t},A{r},{ln})", get(units(line)), MONEY)
        sh.formula(f"D{r}", f"=SUMIF({t},A{r},{bal})", get(units(open_)), MONEY)
        sh.formula(f"E{r}", f'=IF(C{r}>0,D{r}/C{r},"")', get(open_ / line if line > 0 else ""), PERCENT)
        sh.formula(f"F{r}", f"=SUMPRODUCT(({t}=A{r})*({ln}>0)*({bal}>{ln}))", get(int(s["over"]) if s is not None else 0), COUNT)
        sh.formula(f"G{r}", f"=SUMPRODUCT(({t}=A{r})*({ln}>0)*({bal}<LowUse*{ln}))", get(int(s["low"]) if s is not None else 0), COUNT)
        sh.formula(f"H{r}", f"=SUMIF({t},A{r},Reg_allocated_line)", get(units(s["allocated_cents"]) if s is not None else 0), MONEY)
        drift = line - int(s["allocated_cents"]) if s is not None else 0
        sh.formula(f"I{r}", f"=ROUND(C{r}-H{r},2)", get(units(drift)), MONEY)
    tot = 4 + len(labels)
    sh.label(f"A{tot}", "合计 Total")
    for col, fmt in zip("BCDFGHI", (COUNT, MONEY, MONEY, COUNT, COUNT, MONEY, MONEY)):
        value = SKIP
        if summary is not None:
            key = {"B": "customers", "C": "line_cents", "D": "open_balance_cents", "F": "over", "G": "low",
                   "H": "allocated_cents"}.get(col)
            drift = units(summary["line_cents"].sum() - summary["allocated_cents"].sum())
            value = drift if key is None else (units(summary[key].sum()) if fmt == MONEY else int(summary[key].sum()))
        sh.formula(f"{col}{tot}", f"=SUM({col}4:{col}{tot - 1})", value, fmt)
    layout.fit_widths(sh, least={"A": 10, **{c: 16 for c in "CDHI"}}, skip=[1])
    layout.print_setup(sh, landscape=True, one_page=True, footer=footer(ctx))
    sh.protect()


# ----------------------------------------------------------------------------- Overlap
OVERLAP_ROWS = 14  # header row of the per-customer helper table


def build_overlap(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "欠款重叠 Debtor overlap: top-N debtors vs key customers (top-N by sales)", title=True)
    top_n = ctx.policy.overlap_top_n
    sh.label("A3", "N (前N名 top N: Policy overlap_top_n)")
    sh.formula("B3", "=TopN", ctx.cached(top_n), COUNT)  # the Policy sheet's value (defined name TopN)
    h, first = OVERLAP_ROWS, OVERLAP_ROWS + 1
    last = h + ctx.cap
    sh.label(f"A{h - 1}", "客户明细 Per customer (helper rows for the table above; not printed)")
    layout.header(sh, h, 1, ["客户编码 Code", "净销售额 Net sales", "应收余额 Open balance", "重点客户 Key (1/0)",
                             "大额欠款 Top debtor (1/0)"])
    table = overlap_table(ctx.data) if ctx.filled else None
    reg = ctx.data.register if ctx.filled else None
    key = debtor = codes = sales = balances = None
    if reg is not None:
        from crm_core.analysis import top_n_mask  # the core's own top-n rule (ties by position)

        key = top_n_mask(reg["net_sales_cents"].astype("float64"), top_n).astype(int)
        debtor = top_n_mask(reg["open_balance_cents"].astype("float64"), top_n).astype(int)
        codes = reg["customer"].tolist()
        sales = [units(v) for v in reg["net_sales_cents"].tolist()]
        balances = [units(v) for v in reg["open_balance_cents"].tolist()]
    for i, r in enumerate(range(first, last + 1)):
        src = i + 2
        have = reg is not None and i < ctx.n
        blank = "" if reg is not None else SKIP
        sh.formula(f"A{r}", _mirror("customer", src), codes[i] if have else blank)
        sh.formula(f"B{r}", f'=IF($A{r}="","",N(Register!${reg_col("net_sales")}${src}))',
                   sales[i] if have else blank, MONEY)
        sh.formula(f"C{r}", f'=IF($A{r}="","",N(Register!${reg_col("open_balance")}${src}))',
                   balances[i] if have else blank, MONEY)
        sh.formula(f"D{r}", f'=IF($A{r}="","",IF(AND(B{r}>0,COUNTIF($B${first}:$B${last},">"&B{r})<TopN),1,0))',
                   int(key[i]) if have else blank, WHOLE)
        sh.formula(f"E{r}", f'=IF($A{r}="","",IF(AND(C{r}>0,COUNTIF($C${first}:$C${last},">"&C{r})<TopN),1,0))',
                   int(debtor[i]) if have else blank, WHOLE)
    rng = {c: f"${c}${first}:${c}${last}" for c in "ACDE"}
    a, c, dd, e = rng["A"], rng["C"], rng["D"], rng["E"]
    groups = [
        (f"=COUNTIFS({e},1,{dd},1)", f'=SUMIFS({c},{e},1,{dd},1,{c},">0")'),
        (f"=COUNTIFS({e},1,{dd},0)", f'=SUMIFS({c},{e},1,{dd},0,{c},">0")'),
        (f"=COUNTIF({e},1)", f'=SUMIFS({c},{e},1,{c},">0")'),
        (f"=COUNTIF({e},0)", f'=SUMIFS({c},{e},0,{c},">0")'),
        (f'=COUNTIF({a},"?*")', f'=SUMIF({c},">0")'),
    ]
    layout.header(sh, 5, 1, ["组别 Group", "客户数 Customers", "应收账款 Receivables owed (debit balances)", "占比 Share"])
    names = list(table["group"]) if table is not None else [
        "top debtors that are key customers / 大额欠款且为重点客户", "top debtors that are not key customers / 大额欠款非重点客户",
        "all top debtors / 前N大欠款客户", "other customers / 其他客户", "all customers / 全部客户"]
    for i, (count_f, sum_f) in enumerate(groups):
        r = 6 + i
        row = table.iloc[i] if table is not None else None
        sh.label(f"A{r}", names[i])
        sh.formula(f"B{r}", count_f, int(row["customers"]) if row is not None else SKIP, COUNT)
        sh.formula(f"C{r}", sum_f, units(row["receivables_cents"]) if row is not None else SKIP, MONEY)
        sh.formula(f"D{r}", f"=IF($C$10>0,C{r}/$C$10,0)", float(row["share"]) if row is not None else SKIP, PERCENT)
    # the add-in's crm_overlap gives this same table: it is not repeated here as values
    layout.fit_widths(sh, least={"A": 40, "B": 12, "C": 18, "D": 12, "E": 12}, skip=[1, 3, h - 1], most=56)
    layout.print_setup(sh, one_page=True, area="A1:D10",
                       footer=footer(ctx) + " · 客户明细未打印 / the per-customer rows are not printed")
    sh.protect()


# ----------------------------------------------------------------------------- Effort
def build_effort(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "人力投入与销售贡献 Staff effort vs sales share by Pareto tier", title=True)
    sh.label("A2", "销售人员数 (黄色) is an input: staff (or hours) serving each tier")
    layout.header(sh, 3, 1, ["ABC等级 Pareto tier", "客户数 Customers", "客户占比 Customer share", "净销售额 Net sales",
                             "销售占比 Sales share", "销售人员 Staff", "人员占比 Staff share", "人员/销售 Effort vs sales"])
    labels = pareto_labels(ctx.policy)
    summary = pareto_summary(ctx.data) if ctx.filled else None
    first, last = 4, 3 + len(labels)
    total_c = int(summary["customers"].sum()) if summary is not None else 0
    total_s = int(summary["net_sales_cents"].sum()) if summary is not None else 0
    for i, tier in enumerate(labels):
        r = first + i
        s = summary.loc[tier] if summary is not None else None
        get = (lambda v: v) if s is not None else (lambda v: SKIP)
        n, sales = (int(s["customers"]), int(s["net_sales_cents"])) if s is not None else (0, 0)
        sh.formula(f"A{r}", f"=Lists!$B${i + 2}", get(tier))
        sh.formula(f"B{r}", f"=COUNTIF(Reg_pareto_tier,A{r})", get(n), COUNT)
        sh.formula(f"C{r}", f"=IF(SUM($B${first}:$B${last})>0,B{r}/SUM($B${first}:$B${last}),0)",
                   get(n / total_c if total_c else 0), PERCENT)
        sh.formula(f"D{r}", f"=SUMIF(Reg_pareto_tier,A{r},Reg_net_sales)", get(units(sales)), MONEY)
        sh.formula(f"E{r}", f"=IF(SUM($D${first}:$D${last})>0,D{r}/SUM($D${first}:$D${last}),0)",
                   get(sales / total_s if total_s else 0), PERCENT)
        sh.value(f"F{r}", None, STAFF, unlocked=True)
        sh.formula(f"G{r}", f'=IF(SUM($F${first}:$F${last})>0,F{r}/SUM($F${first}:$F${last}),"")', get(""), PERCENT)
        sh.formula(f"H{r}", f'=IF(AND(G{r}<>"",E{r}>0),G{r}/E{r},"")', get(""), DECIMAL)
    ctx.validate("Effort", f"F{first}:F{last}", DataValidation(type="decimal", operator="greaterThanOrEqual",
                                                               formula1="0", allow_blank=True,
                                                               showErrorMessage=True, error="A number >= 0"))
    layout.fit_widths(sh, least={"A": 12, **{c: 14 for c in "BCDEFGH"}, "D": 16}, skip=[1, 2])
    layout.print_setup(sh, landscape=True, one_page=True, footer=footer(ctx))
    sh.protect()


# ----------------------------------------------------------------------------- Ageing
AGEING_TOP = 3  # the table's header row; the add-in's note is above it
AGEING_FUNCTION = "=crm_aging(tblLedger[#All],AsOf,,PolicyTable)"


def build_ageing(ctx: Ctx, sh: Sheet) -> None:
    """The ageing needs each document's due date and what paid it: the core computes it (no
    native formula would be short enough), so a filled register holds its values, green, under
    one note saying when and how to refresh; the template holds the note alone."""
    sh.label("A1", "账龄 Receivables ageing by days past due (as of the Credit sheet's date)", title=True)
    columns = aging_columns(ctx.policy.aging_buckets)
    layout.header(sh, AGEING_TOP, 1, ["客户编码 Code", *(_ageing_heading(c) for c in columns), "合计 Total"])
    last_col = get_column_letter(len(columns) + 2)
    layout.note(sh, "A2", addin_note(ctx, AGEING_FUNCTION if ctx.ledger_on_sheet else None), kind="addin", lines=2,
                wrap=False)
    rows = 0
    tier_first = len(columns) + 4  # the by-tier table, right of the customers' after a blank column
    layout.header(sh, AGEING_TOP, tier_first, ["等级 Tier", "客户数 Customers", *(_ageing_heading(c) for c in columns),
                                               "合计 Total"])
    if ctx.filled and len(ctx.data.aging):  # none for a ledger reviewed by an engine: no documents here
        values = [[rec[0]] + [units(v) for v in rec[1:]] for rec in ctx.data.aging.itertuples(index=False)]
        _values_table(sh, AGEING_TOP + 1, values, MONEY)
        rows = len(values)
        total = aging_with_total(ctx.data.aging).iloc[-1]
        _values_table(sh, AGEING_TOP + 1 + rows, [["合计 Total", *(units(v) for v in total.iloc[1:])]], MONEY)
        _ageing_by_tier(ctx, sh, tier_first)
    ctx.name("Addin_Ageing", "Ageing", f"$A${AGEING_TOP + 1}:${last_col}${AGEING_TOP + max(rows, 1)}")
    last_tier_col = tier_first + len(columns) + 2
    layout.fit_widths(sh, least={"A": 12, **{get_column_letter(c): 14 for c in range(2, last_tier_col + 1)}},
                      skip=[1, 2])
    sh.ws.freeze_panes = f"B{AGEING_TOP + 1}"
    layout.print_setup(sh, title_rows=f"{AGEING_TOP}:{AGEING_TOP}", footer=footer(ctx))
    sh.protect()


def _ageing_by_tier(ctx: Ctx, sh: Sheet, first_col: int) -> None:
    """Each tier's ageing (the Register's tiers) and the total, beside the customers'."""
    reg = ctx.data.register
    tiers = pd.Series(reg["rate_tier"].to_numpy(), index=reg["customer"].to_numpy())
    table = by_tier(ctx.data.aging, tiers, ctx.policy)
    for i, rec in enumerate(table.itertuples(index=False), start=AGEING_TOP + 1):
        label = "合计 Total" if rec[0] == TOTAL else rec[0]
        cells = [(label, None), (int(rec[1]), COUNT), *((units(v), MONEY) for v in rec[2:])]
        for j, (value, fmt) in enumerate(cells, start=first_col):
            sh.value(f"{get_column_letter(j)}{i}", value, fmt, fill="addin")


def _ageing_heading(column: str) -> str:
    """'current / 未到期' -> '未到期 current'; a bucket '1-30' -> '逾期 1-30 天 1-30 days late'."""
    if " / " in column:
        en, zh = column.split(" / ", 1)
        return f"{zh}\n{en}"
    return f"逾期 {column} 天\n{column} days late"


def addin_note(ctx: Ctx, function: str | None) -> str:
    """The one note over a block of values the add-in computed: when, and how to refresh them;
    in the template, that the block needs the add-in. `function`: the worksheet function that
    gives the same table, for who has the add-in (None where it would not: the ledger is elsewhere)."""
    how = f"\n函数 function: {function}" if function else ""
    if not ctx.filled:
        return f"需要 crm-addin 加载项：运行 Build review 生成 / needs the crm-addin add-in: run Build review{how}"
    when = ctx.data.generated_at or "the review"
    text = (f"由 crm-addin 计算（生成于 {when}），不随本表重算；刷新：运行 Build review / computed by crm-addin at "
            f"{when}, not recalculated with the sheet; refresh with Build review{how}")
    note = None if ctx.ledger_on_sheet else ledger_note(ctx)
    return f"{text}\n{note}" if note else text


def _values_table(sh: Sheet, top: int, values: list[list], fmt: str) -> None:
    """A table of the add-in's values from column A, row `top` (green: computed by Python)."""
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            sh.value(f"{get_column_letter(j + 1)}{top + i}", value, fmt if isinstance(value, (int, float)) else None,
                     fill="addin")


# ----------------------------------------------------------------------------- Follow-ups
def build_follow_ups(ctx: Ctx, sh: Sheet) -> None:
    """Who is due for a follow-up: the Register's owner and stage tier, the last contact the
    Contacts sheet logs and the due date from the tier's cadence (crm_core.contacts' rule), natively
    with the core's values cached; beside them the overdue customers by owner (the add-in's list)."""
    from crm_app.workbook import activity_sheets as act

    layout.header(sh, 1, 1, ["客户编码 Code", "客户名称 Name", "负责人 Owner", "阶段等级 Stage tier",
                             "最近跟进 Last contact", "约定下次 Next date stated", "下次跟进 Next due",
                             "逾期天数 Days overdue"])
    table = act.follow_up_table(ctx)
    reg = ctx.data.register if ctx.filled else None
    codes = reg["customer"].tolist() if reg is not None else None
    names = reg["customer_name"].tolist() if reg is not None else None
    formulas = {r: act.follow_up_formulas(r) for r in ctx.rows()}
    for r in ctx.rows():
        i = r - 2
        have = reg is not None and i < ctx.n
        blank = "" if reg is not None else SKIP
        sh.formula(f"A{r}", _mirror("customer", r), codes[i] if have else blank)
        sh.formula(f"B{r}", _mirror("customer_name", r), names[i] if have else blank)
        sh.formula(f"C{r}", _mirror("owner", r), table["owner"].iat[i] if have else blank)
        sh.formula(f"D{r}", _mirror("stage_tier", r), table["stage_tier"].iat[i] if have else blank)
        values = act.follow_up_values(table, i)
        for (col, text, fmt), value in zip(formulas[r], values):
            sh.formula(f"{col}{r}", text, value if reg is not None else SKIP, fmt)
    last = ctx.cap + 1
    sh.label("K1", "逾期跟进 Overdue follow-ups")
    sh.formula("L1", f'=COUNTIF(H2:H{last},">0")', ctx.cached(act.overdue_count(table)), COUNT)
    act.overdue_list(ctx, sh, table, 4, 11)
    sh.ws.conditional_formatting.add(f"H2:H{last}", CellIsRule(operator="greaterThan", formula=["0"],
                                                               fill=RED_FILL, font=RED_FONT))
    layout.fit_widths(sh, least={"A": 12, "B": 20, "C": 10, "E": 12, "F": 12, "G": 12, "H": 10, "K": 28, "L": 12,
                                 "M": 10, "N": 12, "O": 10}, skip=[1, 3], most=40)
    sh.ws.freeze_panes = "B2"
    sh.ws.auto_filter.ref = f"A1:H{max(ctx.n, 1) + 1}"
    layout.print_setup(sh, title_rows="1:1", area=f"A1:O{max(ctx.n, 1) + 1}", footer=footer(ctx))
    sh.protect()


# ----------------------------------------------------------------------------- Dashboard
DASH_TOP = 3  # header row of the figures, the tier table and the Pareto table
TIER_COLUMNS = "DEFGH"  # tier, customers, lines and balances in 10k (万元), use
PARETO_COLUMNS = "JK"
CHART_ROW = 27  # the charts' first row at least: below the tables and notes, side by side, on one page
NOTES_END = "H"  # the notes under the figures span A:H, left of the Pareto points
RATE_NOTE = "回款率=回款额/含税销售额 · the rate uses sales including VAT"
MACROS_NOTE = ("宏 Macros: 启用宏即见功能区“CRM 客户信用” / enable macros for the CRM 客户信用 ribbon tab (an .xlsx: "
               "import vba/*.bas). 黄色=输入 yellow = input, 绿色=加载项 green = computed by crm-addin")


def build_dashboard(ctx: Ctx, sh: Sheet, collection_last: int) -> None:
    sh.label("A1", "客户分级与赊销额度 Customer tiers and credit lines", title=True)
    layout.header(sh, DASH_TOP, 1, ["指标 Measure", "数值 Value"])
    r = DASH_TOP + 1
    for label, f, value, fmt in _dashboard_figures(ctx, collection_last):
        if f is None:  # a sentence under the figure it explains
            layout.note(sh, f"A{r}", label, kind="body", lines=layout.note_lines(label, DASH_WIDTHS["A"] + DASH_WIDTHS["B"]))
            layout.merge(sh, f"A{r}:B{r}")
        else:
            sh.formula(f"B{r}", f, ctx.cached(value), fmt)
            if _figure_label(sh, f"A{r}", label):
                layout.restyle(sh, f"B{r}", align="top")  # level with the label's first line
        r += 1
    chart_row = max(CHART_ROW, _dashboard_notes(ctx, sh, r + 1) + 1)  # never over a note
    _tier_table(ctx, sh)
    _pareto_table(ctx, sh)
    _charts(ctx, sh, len(tier_labels(ctx.policy)), chart_row)
    sh.widths(DASH_WIDTHS)
    layout.print_setup(sh, landscape=True, one_page=True, area=f"A1:K{chart_row + CHART_ROWS}", footer=footer(ctx))
    sh.protect()


DASH_WIDTHS = {"A": 46, "B": 18, "C": 2, "D": 9, "E": 11, "F": 14, "G": 15, "H": 10, "I": 2, "J": 19, "K": 15}


def _figure_label(sh: Sheet, ref: str, text: str) -> bool:
    """A figure's name; one too long for column A wraps, its row as tall as the lines (True)."""
    lines = layout.note_lines(text, DASH_WIDTHS["A"])
    if lines > 1:
        layout.note(sh, ref, text, kind="body", lines=lines)
    else:
        sh.label(ref, text)
    return lines > 1


def _dashboard_figures(ctx: Ctx, collection_last: int) -> list[tuple[str, str | None, object, str | None]]:
    """(label, formula, cached value, format) per row; formula None: a note on the row above."""
    d = ctx.data
    reg = d.register if d is not None else None
    summary = tier_summary(d) if d is not None else None
    # The review sheets mirror the register's first `cap` rows: beyond that their sums would
    # quietly leave customers out, so the overall rate refuses and a check says why.
    beyond = f'COUNTIF(Reg_customer,"?*")>{ctx.cap}'
    gross = f"SUM(Collection!$C$2:$C${collection_last})"
    owed = Receivables.of(reg["open_balance_cents"]) if d else None
    gross_cents = int(d.facts["gross_sales_cents"].sum()) if d else 0
    about_policy = 2 + list(about_values(ctx)).index("policy_label")
    about_signed = 2 + list(about_values(ctx)).index("signed_off")
    return [
        ("期间开始 Period start", "=PeriodStart", d and d.review.period.start.to_pydatetime(), DATE),
        ("期间结束 Period end", "=PeriodEnd", d and d.review.period.end.to_pydatetime(), DATE),
        ("政策 Policy (as on the About sheet)", f"=About!$B${about_policy}",
         d.review.policy_label if d else ctx.policy.label, None),
        ("签字确认 Credit standard signed off (as on the About sheet)", f"=About!$B${about_signed}",
         about_values(ctx)["signed_off"], None),
        ("客户数 Customers", '=COUNTIF(Reg_customer,"?*")', len(reg) if d else 0, COUNT),
        ("净销售额 Net sales (excl. VAT)", "=SUM(Reg_net_sales)", units(reg["net_sales_cents"].sum()) if d else 0, MONEY),
        ("含税销售额 Gross sales = net x (1 + VAT)", f"={gross}", units(gross_cents) if d else 0, MONEY),
        ("回款额 Collections (incl. VAT)", "=SUM(Reg_collections)", units(reg["collections_cents"].sum()) if d else 0,
         MONEY),
        ("总体回款率 Overall collection rate",
         f'=IF({beyond},"≠",IF({gross}>0,SUM(Reg_collections)/{gross},""))',
         _ratio(reg["collections_cents"].sum(), gross_cents) if d else "", PERCENT),
        (RATE_NOTE, None, None, None),
        *headline_figures(ctx),
        ("应收账款 Receivables owed (debit balances)", '=SUMIF(Reg_open_balance,">0")',
         units(owed.owed_cents) if d else 0, MONEY),
        ("贷方余额 Customers in credit (prepaid)", '=SUMIF(Reg_open_balance,"<0")',
         units(owed.in_credit_cents) if d else 0, MONEY),
        ("应收净额 Net open balance", "=SUM(Reg_open_balance)", units(owed.net_cents) if d else 0, MONEY),
        ("赊销额度预算 Credit budget", "=Budget", units(d.review.budget_cents) if d else 0, MONEY),
        ("额度合计 Credit lines", "=SUM(Reg_credit_line)", units(reg["credit_line_cents"].sum()) if d else 0, MONEY),
        ("超额客户 Customers over limit", "=SUMPRODUCT((Reg_credit_line>0)*(Reg_open_balance>Reg_credit_line))",
         int(summary["over"].sum()) if d else 0, COUNT),
        ("逾期跟进 Follow-ups overdue (Contacts log)", "=FollowUps!$L$1",
         _overdue_follow_ups(ctx), COUNT),
        ("台账核对 Register matches the ledger" + ("" if ctx.ledger_on_sheet else " (add-in values)"),
         f'=IF(COUNTIF(Collection!$I$2:$I${collection_last},"≠")=0,"OK","≠")', "OK", None),
        (f"复核表覆盖 Review sheets cover all customers (rows 2-{ctx.cap + 1}; else run BuildReview)",
         f'=IF({beyond},"≠","OK")', "OK", None),
    ]


def _overdue_follow_ups(ctx: Ctx) -> int:
    from crm_app.workbook.activity_sheets import follow_up_table, overdue_count

    return overdue_count(follow_up_table(ctx))


def _dashboard_notes(ctx: Ctx, sh: Sheet, top: int) -> int:
    """How to add the macros, where the ledger's rows are, and what was left out of it: one merged,
    wrapped line each, across the figures and the tier table (the Pareto points go on beside them);
    returns the row after the last."""
    notes = [(MACROS_NOTE, "body"), (ledger_note(ctx), "note" if not ctx.ledger_on_sheet else "body"),
             (issues_note(ctx), "note" if ctx.filled and ctx.data.issues else "body")]
    width = sum(w for c, w in DASH_WIDTHS.items() if c <= NOTES_END)
    shown = [n for n in notes if n[0]]
    for r, (text, kind) in enumerate(shown, start=top):
        layout.note(sh, f"A{r}", text, kind=kind, lines=layout.note_lines(text, width))
        layout.merge(sh, f"A{r}:{NOTES_END}{r}")
    return top + len(shown)


def _tier_table(ctx: Ctx, sh: Sheet) -> None:
    """Per rate tier: customers, credit lines and open balances in 万元 (10,000s: what the chart
    shows), and use; natively from the Register."""
    d = ctx.data
    summary = tier_summary(d) if d is not None else None
    t, c, ln, bal, use = TIER_COLUMNS
    layout.header(sh, DASH_TOP, 4, ["等级 Tier", "客户数 Customers", "额度 (万元) Lines (10k)",
                                    "余额 (万元) Balance (10k)", "使用率 Use"])
    for i, tier in enumerate(tier_labels(ctx.policy)):
        r = DASH_TOP + 1 + i
        s = summary.loc[tier] if summary is not None else None
        line = units(int(s["line_cents"])) if s is not None else 0.0
        owed = units(int(s["open_balance_cents"])) if s is not None else 0.0
        sh.formula(f"{t}{r}", f"=Lists!$A${i + 2}", ctx.cached(tier))
        sh.formula(f"{c}{r}", f"=COUNTIF(Reg_rate_tier,{t}{r})", ctx.cached(int(s["customers"]) if d else 0), COUNT)
        sh.formula(f"{ln}{r}", f"=SUMIF(Reg_rate_tier,{t}{r},Reg_credit_line)/10000", ctx.cached(line / 10000), TEN_K)
        sh.formula(f"{bal}{r}", f"=SUMIF(Reg_rate_tier,{t}{r},Reg_open_balance)/10000", ctx.cached(owed / 10000), TEN_K)
        sh.formula(f"{use}{r}", f'=IF({ln}{r}>0,{bal}{r}/{ln}{r},"")', ctx.cached(owed / line if line > 0 else ""),
                   PERCENT)


TEN_K = "#,##0.0"  # amounts in 万元 (10,000s), one decimal


def _ratio(part, whole) -> object:
    """The sheet's IF(whole>0, part/whole, "")."""
    return int(part) / int(whole) if int(whole) > 0 else ""


def _pareto_table(ctx: Ctx, sh: Sheet, points: int = 20) -> None:
    """The Pareto curve's points: the origin, then the top 5%, 10%, ... 100% of customers."""
    x, y = PARETO_COLUMNS
    layout.header(sh, DASH_TOP, 10, ["客户占比 Share of customers", "销售累计占比 Share of sales"])
    curve = pareto_points(ctx.data.register["net_sales_cents"].to_numpy()) if ctx.filled else None
    sh.value(f"{x}{DASH_TOP + 1}", 0.0, "0%")
    sh.value(f"{y}{DASH_TOP + 1}", 0.0, "0.0%")
    for i in range(points):
        r = DASH_TOP + 2 + i
        sh.value(f"{x}{r}", (i + 1) / points, "0%")
        sh.formula(f"{y}{r}", f'=IF(SUM(Reg_net_sales)<=0,0,SUMIF(Reg_net_sales,">="&LARGE(Reg_net_sales,'
                              f'MAX(1,ROUNDUP({x}{r}*COUNT(Reg_net_sales),0))),Reg_net_sales)/SUM(Reg_net_sales))',
                   ctx.cached(curve[i][1] if curve else 0), "0.0%")


# ----------------------------------------------------------------------------- charts
CHART_ROWS = 15
# The charts' column spans on the Dashboard: tier counts under the figures, credit use under the
# tier table, the Pareto curve under its points.
CHART_SPANS = {"counts": (0, 1), "use": (1, 7), "pareto": (7, 11)}
GAP = 60_000  # EMU (about 1.7 mm) between two charts


def _charts(ctx: Ctx, sh: Sheet, tiers: int, row: int) -> None:
    """The three charts side by side from `row` (1-based)."""
    ws, first, last = sh.ws, DASH_TOP + 1, DASH_TOP + tiers
    counts = BarChart()
    counts.add_data(Reference(ws, min_col=5, min_row=DASH_TOP, max_row=last), titles_from_data=True)
    counts.set_categories(Reference(ws, min_col=4, min_row=first, max_row=last))
    counts.legend = None
    _look(counts, "客户等级分布 Customers by tier", "回款等级 Tier", "客户数 Customers")
    _value_axis(counts.y_axis, _scale(_tier_counts(ctx), whole=True))
    use = BarChart()
    use.add_data(Reference(ws, min_col=6, max_col=7, min_row=DASH_TOP, max_row=last), titles_from_data=True)
    use.set_categories(Reference(ws, min_col=4, min_row=first, max_row=last))
    use.legend.position = "b"
    _look(use, "额度使用 Credit lines and open balances by tier", "回款等级 Tier", "万元 (10,000s)")
    _value_axis(use.y_axis, _scale(_tier_amounts(ctx)))
    curve = ScatterChart()
    curve.scatterStyle = "lineMarker"  # required by the schema; openpyxl leaves it out unless set
    xs = Reference(ws, min_col=10, min_row=first, max_row=first + 20)
    curve.series.append(Series(Reference(ws, min_col=11, min_row=DASH_TOP, max_row=first + 20), xs,
                               title_from_data=True))
    curve.legend = None
    _look(curve, "帕累托曲线 Pareto curve", "客户占比 Share of customers", "销售占比 Share of sales")
    for axis in (curve.x_axis, curve.y_axis):  # shares: 0% to 100%, never beyond
        _value_axis(axis, (0.0, 1.0, 0.2), "0%")
    for name, chart in (("counts", counts), ("use", use), ("pareto", curve)):
        _place(ws, chart, *CHART_SPANS[name], row)


def _tier_counts(ctx: Ctx) -> float:
    return float(tier_summary(ctx.data)["customers"].max()) if ctx.filled else 0.0


def _tier_amounts(ctx: Ctx) -> float:
    """The largest line or balance of a tier, in 万元."""
    if not ctx.filled:
        return 0.0
    summary = tier_summary(ctx.data)
    return max(int(summary["line_cents"].max()), int(summary["open_balance_cents"].max()), 0) / 1_000_000


def _scale(top: float, whole: bool = False) -> tuple[float, float, float]:
    """(min, max, major unit) of a value axis from 0 to just above `top`, in about five steps of
    1, 2 or 5 x 10^k (whole numbers for counts); 0 to 10 by 2 with no data (the template)."""
    if top <= 0:
        return 0.0, 10.0, 2.0
    raw = top / 5
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0) if whole else step
    return 0.0, math.ceil(top / step) * step, step


def _value_axis(axis, scale: tuple[float, float, float], fmt: str | None = None) -> None:
    low, high, step = scale
    axis.scaling.min, axis.scaling.max, axis.majorUnit = low, high, step
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    axis.number_format = fmt or ("#,##0." + "0" * decimals if decimals else "#,##0")


def _look(chart, title: str, x_title: str, y_title: str) -> None:
    """Bilingual titles in the workbook's font, axes shown, labels level (never rotated)."""
    chart.title = _rich_title(title, 1100)
    chart.x_axis.title, chart.y_axis.title = _rich_title(x_title, 900), _rich_title(y_title, 900)
    for axis in (chart.x_axis, chart.y_axis):
        axis.delete = False  # openpyxl 3.1 would leave the axes out
        axis.txPr = RichText(bodyPr=RichTextProperties(rot=0, vert="horz"),
                             p=[Paragraph(pPr=ParagraphProperties(defRPr=_chars(800)), endParaRPr=_chars(800))])
    chart.height, chart.width = 7.5, 9


def _chars(size: int, bold: bool = False) -> CharacterProperties:
    face = DrawingFont(typeface=FONT_NAME)
    return CharacterProperties(sz=size, b=bold, latin=face, ea=face)


def _rich_title(text: str, size: int) -> Title:
    run = RegularTextRun(rPr=_chars(size, bold=True), t=text)
    body = RichText(bodyPr=RichTextProperties(rot=0, vert="horz"),
                    p=[Paragraph(pPr=ParagraphProperties(defRPr=_chars(size, bold=True)), r=[run])])
    return Title(tx=Text(rich=body), overlay=False)


def _place(ws, chart, first_col: int, end_col: int, row: int) -> None:
    """Anchor a chart over columns [first_col, end_col) (0-based) of the CHART_ROWS from `row`."""
    start = AnchorMarker(col=first_col, colOff=GAP if first_col else 0, row=row - 1, rowOff=0)
    end = AnchorMarker(col=end_col, colOff=0, row=row - 1 + CHART_ROWS, rowOff=0)
    chart.anchor = TwoCellAnchor(_from=start, to=end)
    ws.add_chart(chart)


def conditional_red(ws, rng: str, formula: str) -> None:
    from openpyxl.formatting.rule import FormulaRule

    ws.conditional_formatting.add(rng, FormulaRule(formula=[formula], fill=RED_FILL, font=RED_FONT))



