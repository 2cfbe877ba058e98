"""The review sheets and the Dashboard: collection review, credit use, debtor overlap, staff
effort, ageing, follow-ups. Native formulas (LibreOffice-safe) recompute from the Ledger and
the Register; green ranges are the add-in's array functions, with the core's values cached.
"""
from __future__ import annotations

from openpyxl.chart import BarChart, Reference, ScatterChart, Series
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from crm_app.workbook.data import (
    migration,
    overlap_table,
    pareto_labels,
    pareto_points,
    pareto_summary,
    tier_labels,
    tier_summary,
)
from crm_app.workbook.register_sheets import (
    BALANCE_UP,
    LEDGER_TYPES,
    Ctx,
    L,
    blank_nan,
    issues_note,
    ledger_note,
    literal,
    net_sales_total_formula,
    rank_tier_formula,
    reg_col,
    units,
)
from crm_app.workbook.xml_sheet import COUNT, DATE, MONEY, PERCENT, SKIP, Sheet
from crm_core.analysis import Receivables, aging_columns

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
    parts = [f'SUMIFS({L(value_key)},{L("customer")},{who},{L("type")},"{t}",{where})' for t in types]
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
    sh.header(1, 1, ["客户编码 Code", f"净销售额 Net sales {source}", f"含税销售额 Gross sales {source}",
                     f"回款额 Collections {source}", "回款率 Collection rate", "回款等级 Tier by rate",
                     f"应收余额 Open balance {source}", "上年等级 Previous tier",
                     "与登记表一致 Matches register", "ABC等级(加载项) Pareto tier (add-in)",
                     "回款等级(加载项) Tier (add-in)"])
    if not ctx.ledger_on_sheet:
        sh.label("T1", ledger_note(ctx), note=True)
    sh.widths({c: 15 for c in "ABCDEFGHIJK"})
    d = ctx.data
    facts = d.facts if d is not None else None
    cached = {}
    if facts is not None:
        rate = [blank_nan(v) for v in facts["collection_rate"]]
        cached = {
            "A": facts["customer"].tolist(), "B": [units(v) for v in facts["net_sales_cents"]],
            "C": [units(v) for v in facts["gross_sales_cents"]], "D": [units(v) for v in facts["collections_cents"]],
            "E": rate, "F": d.register["rate_tier"].tolist(), "G": [units(v) for v in facts["open_balance_cents"]],
            "I": ["OK"] * ctx.n,
        }
        cached = {k: _col_values(ctx, v) for k, v in cached.items()}
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
    pareto = [[t] for t in _col_values(ctx, d.register["pareto_tier"])] if d is not None else None
    tiers = [[t] for t in _col_values(ctx, d.register["rate_tier"])] if d is not None else None
    sh.array(f"J2:J{last}", "crm_pareto_tier(Reg_net_sales,,,PolicyTable)", pareto)
    sh.array(f"K2:K{last}", "crm_tier(Reg_collection_rate,,,,PolicyTable)", tiers)
    _collection_summary(ctx, sh, last)
    sh.ws.freeze_panes = "B2"
    sh.protect()


def _collection_summary(ctx: Ctx, sh: Sheet, last: int) -> None:
    labels = tier_labels(ctx.policy)
    summary = tier_summary(ctx.data) if ctx.filled else None
    sh.label("M1", "按回款等级汇总 By tier (from the ledger)", title=True)
    sh.header(2, 13, ["等级 Tier", "客户数 Customers", "净销售额 Net sales", "含税销售额 Gross sales",
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
    top = r + 2
    sh.label(f"M{top}", "加载项 Add-in (crm_tier_migration)")
    values = None
    if matrix is not None:
        values = [["old \\ new / 原\\新"] + labels] + [[old] + [float(v) for v in matrix.loc[old]] for old in labels]
    end_col = chr(ord("M") + len(labels))
    sh.array(f"M{top + 1}:{end_col}{top + 1 + len(labels)}",
             f"crm_tier_migration($H$2:$H${last},$F$2:$F${last},RateTiers)", values)


# ----------------------------------------------------------------------------- Credit use
def build_credit_use(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "额度使用 Credit use by tier: exposure against line", title=True)
    sh.header(3, 1, ["等级 Tier", "客户数 Customers", "赊销额度 Credit lines", "应收余额 Open balance",
                     "使用率 Utilisation", "超额客户 Over limit", "额度闲置 Line far above use",
                     "年度分配 Yearly allocation", "偏离 Drift"])
    sh.widths({c: 16 for c in "ABCDEFGHI"})
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
        sh.formula(f"I{r}", f"=ROUND(C{r}-H{r},2)", get(0.0), MONEY)
    tot = 4 + len(labels)
    sh.label(f"A{tot}", "合计 Total")
    for col, fmt in zip("BCDFGHI", (COUNT, MONEY, MONEY, COUNT, COUNT, MONEY, MONEY)):
        value = SKIP
        if summary is not None:
            key = {"B": "customers", "C": "line_cents", "D": "open_balance_cents", "F": "over", "G": "low",
                   "H": "allocated_cents"}.get(col)
            value = 0.0 if key is None else (units(summary[key].sum()) if fmt == MONEY else int(summary[key].sum()))
        sh.formula(f"{col}{tot}", f"=SUM({col}4:{col}{tot - 1})", value, fmt)
    sh.protect()


# ----------------------------------------------------------------------------- Overlap
OVERLAP_ROWS = 14  # header row of the per-customer helper table


def build_overlap(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "欠款重叠 Debtor overlap: top-N debtors vs key customers (top-N by sales)", title=True)
    top_n = ctx.policy.overlap_top_n
    sh.label("A3", "N (前N名 top N: Policy overlap_top_n)")
    sh.formula("B3", "=TopN", ctx.cached(top_n), "0")  # the Policy sheet's value (defined name TopN)
    sh.widths({"A": 44, "B": 14, "C": 18, "D": 12, "E": 12, "F": 44, "G": 12, "H": 18, "I": 12})
    h, first = OVERLAP_ROWS, OVERLAP_ROWS + 1
    last = h + ctx.cap
    sh.header(h, 1, ["客户编码 Code", "净销售额 Net sales", "应收余额 Open balance", "重点客户 Key (1/0)",
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
                   int(key[i]) if have else blank, "0")
        sh.formula(f"E{r}", f'=IF($A{r}="","",IF(AND(C{r}>0,COUNTIF($C${first}:$C${last},">"&C{r})<TopN),1,0))',
                   int(debtor[i]) if have else blank, "0")
    rng = {c: f"${c}${first}:${c}${last}" for c in "ACDE"}
    a, c, dd, e = rng["A"], rng["C"], rng["D"], rng["E"]
    groups = [
        (f"=COUNTIFS({e},1,{dd},1)", f'=SUMIFS({c},{e},1,{dd},1,{c},">0")'),
        (f"=COUNTIFS({e},1,{dd},0)", f'=SUMIFS({c},{e},1,{dd},0,{c},">0")'),
        (f"=COUNTIF({e},1)", f'=SUMIFS({c},{e},1,{c},">0")'),
        (f"=COUNTIF({e},0)", f'=SUMIFS({c},{e},0,{c},">0")'),
        (f'=COUNTIF({a},"?*")', f'=SUMIF({c},">0")'),
    ]
    sh.header(5, 1, ["组别 Group", "客户数 Customers", "应收账款 Receivables owed (debit balances)", "占比 Share"])
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
    sh.label("F4", "加载项 Add-in (crm_overlap)")
    values = None
    if table is not None:
        values = [["group / 分组", "customers / 客户数", "receivables owed / 应收账款", "share / 占比"]] + [
            [g, int(n), units(cents), float(s)] for g, n, cents, s in table.itertuples(index=False)]
    sh.array("F5:I10", "crm_overlap(Reg_customer,Reg_net_sales,Reg_open_balance,TopN)", values)
    sh.protect()


# ----------------------------------------------------------------------------- Effort
def build_effort(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "人力投入与销售贡献 Staff effort vs sales share by Pareto tier", title=True)
    sh.label("A2", "销售人员数 (黄色) is an input: staff (or hours) serving each tier")
    sh.header(3, 1, ["ABC等级 Pareto tier", "客户数 Customers", "客户占比 Customer share", "净销售额 Net sales",
                     "销售占比 Sales share", "销售人员 Staff", "人员占比 Staff share", "人员/销售 Effort vs sales"])
    sh.widths({c: 16 for c in "ABCDEFGH"})
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
        sh.value(f"F{r}", None, "0", unlocked=True)
        sh.formula(f"G{r}", f'=IF(SUM($F${first}:$F${last})>0,F{r}/SUM($F${first}:$F${last}),"")', get(""), PERCENT)
        sh.formula(f"H{r}", f'=IF(AND(G{r}<>"",E{r}>0),G{r}/E{r},"")', get(""), "0.00")
    ctx.validate("Effort", f"F{first}:F{last}", DataValidation(type="decimal", operator="greaterThanOrEqual",
                                                               formula1="0", allow_blank=True,
                                                               showErrorMessage=True, error="A number >= 0"))
    sh.protect()


# ----------------------------------------------------------------------------- Ageing
def build_ageing(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "账龄 Receivables ageing by days past due (add-in: crm_aging; as of the Credit sheet's date)",
             title=True)
    buckets = ctx.policy.aging_buckets
    width = len(aging_columns(buckets)) + 2  # customer, current, each bucket, 90+, credit, total
    values = None
    if ctx.filled:
        table = ctx.data.aging
        header = ["customer / 客户"] + [str(c) for c in table.columns[1:]]
        values = [header] + [[rec[0]] + [units(v) for v in rec[1:]] for rec in table.itertuples(index=False)]
    rows = len(values) if values is not None else ctx.cap + 1
    end_col = chr(ord("A") + width - 1)
    if ctx.ledger_on_sheet:
        sh.array(f"A3:{end_col}{rows + 2}", "crm_aging(tblLedger[#All],AsOf,,PolicyTable)", values, MONEY)
    else:  # crm_aging over the Ledger sheet would see none of the ledger: the add-in's values, said so
        sh.label("A2", ledger_note(ctx), note=True)
        _values_table(sh, 3, values, MONEY)
    sh.widths({chr(ord("A") + i): 14 for i in range(width)})
    sh.protect()


def _values_table(sh: Sheet, top: int, values: list[list], fmt: str) -> None:
    """A table of the add-in's values from column A, row `top` (green: computed by Python)."""
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            sh.value(f"{chr(ord('A') + j)}{top + i}", value, fmt if isinstance(value, (int, float)) else None,
                     fill="addin")


# ----------------------------------------------------------------------------- Follow-ups
def build_follow_ups(ctx: Ctx, sh: Sheet) -> None:
    sh.header(1, 1, ["客户编码 Code", "客户名称 Name", "负责人 Owner", "阶段等级 Stage tier", "最近跟进 Last contact",
                     "下次跟进 Next due", "逾期天数 Days overdue", "下次跟进(加载项) Next due (add-in)",
                     "逾期天数(加载项) Days overdue (add-in)"])
    sh.widths({"A": 12, "B": 22, "C": 12, "D": 10, "E": 12, "F": 12, "G": 10, "H": 14, "I": 12, "K": 26, "L": 10})
    reg = ctx.data.register if ctx.filled else None
    reviewed = ctx.data.review.period.end.to_pydatetime() if ctx.filled else None
    codes = reg["customer"].tolist() if reg is not None else None
    names = reg["customer_name"].tolist() if reg is not None else None
    for r in ctx.rows():
        i = r - 2
        have = reg is not None and i < ctx.n
        blank = "" if reg is not None else SKIP
        sh.formula(f"A{r}", _mirror("customer", r), codes[i] if have else blank)
        sh.formula(f"B{r}", _mirror("customer_name", r), names[i] if have else blank)
        sh.formula(f"C{r}", _mirror("owner", r), blank)
        sh.formula(f"D{r}", _mirror("stage_tier", r), blank)
        sh.formula(f"E{r}", _mirror("last_reviewed", r), reviewed if have else blank, DATE)
        sh.formula(f"F{r}", f'=IF(OR($A{r}="",$D{r}="",$E{r}=""),"",IFERROR($E{r}+INDEX(FollowDays,MATCH($D{r},FollowTier,0)),""))',
                   blank, DATE)
        sh.formula(f"G{r}", f'=IF($F{r}="","",MAX(0,AsOf-$F{r}))', blank, "0")
    last = ctx.cap + 1
    values = [["", ""]] * ctx.cap if ctx.filled else None
    sh.array(f"H2:I{last}", f"crm_follow_up_due(D2:D{last},E2:E{last},AsOf,PolicyTable)", values)
    for r in ctx.rows():
        sh.style(f"H{r}", fmt=DATE)
    sh.label("K1", "逾期跟进 Overdue follow-ups")
    sh.formula("L1", f'=COUNTIF(G2:G{last},">0")', ctx.cached(0), COUNT)
    sh.ws.conditional_formatting.add(f"G2:G{last}", CellIsRule(operator="greaterThan", formula=["0"],
                                                               fill=RED_FILL, font=RED_FONT))
    sh.ws.freeze_panes = "B2"
    sh.protect()


# ----------------------------------------------------------------------------- Dashboard
def build_dashboard(ctx: Ctx, sh: Sheet, collection_last: int) -> None:
    d = ctx.data
    sh.label("A1", "客户分级与赊销额度 Customer tiers and credit lines", title=True)
    sh.widths({"A": 34, "B": 18, "C": 3, "D": 12, "E": 12, "F": 3, "G": 14, "H": 16, "I": 3, "J": 12})
    reg = d.register if d is not None else None
    summary = tier_summary(d) if d is not None else None
    # The review sheets mirror the register's first `cap` rows: beyond that their sums would
    # quietly leave customers out, so the overall rate refuses and a check says why.
    beyond = f'COUNTIF(Reg_customer,"?*")>{ctx.cap}'
    owed = Receivables.of(reg["open_balance_cents"]) if d else None
    kpis = [
        ("客户数 Customers", '=COUNTIF(Reg_customer,"?*")', len(reg) if d else 0, COUNT),
        ("净销售额 Net sales", "=SUM(Reg_net_sales)", units(reg["net_sales_cents"].sum()) if d else 0, MONEY),
        ("回款额 Collections", "=SUM(Reg_collections)", units(reg["collections_cents"].sum()) if d else 0, MONEY),
        ("总体回款率 Overall collection rate",
         f'=IF({beyond},"≠",IF(SUM(Collection!$C$2:$C${collection_last})>0,'
         f'SUM(Reg_collections)/SUM(Collection!$C$2:$C${collection_last}),""))',
         _ratio(reg["collections_cents"].sum(), d.facts["gross_sales_cents"].sum()) if d else "", PERCENT),
        ("应收账款 Receivables owed (customers with a debit balance)", '=SUMIF(Reg_open_balance,">0")',
         units(owed.owed_cents) if d else 0, MONEY),
        ("贷方余额 Customers in credit (prepaid or overpaid)", '=SUMIF(Reg_open_balance,"<0")',
         units(owed.in_credit_cents) if d else 0, MONEY),
        ("应收净额 Net open balance", "=SUM(Reg_open_balance)", units(owed.net_cents) if d else 0, MONEY),
        ("赊销额度预算 Credit budget", "=Budget", units(d.review.budget_cents) if d else 0, MONEY),
        ("额度合计 Credit lines", "=SUM(Reg_credit_line)", units(reg["credit_line_cents"].sum()) if d else 0, MONEY),
        ("超额客户 Customers over limit", "=SUMPRODUCT((Reg_credit_line>0)*(Reg_open_balance>Reg_credit_line))",
         int(summary["over"].sum()) if d else 0, COUNT),
        ("逾期跟进 Follow-ups overdue", "=FollowUps!$L$1", 0, COUNT),
        ("台账核对 Register matches the ledger" + ("" if ctx.ledger_on_sheet else
                                                   " (加载项数值 add-in values: the ledger is not on the Ledger sheet)"),
         f'=IF(COUNTIF(Collection!$I$2:$I${collection_last},"≠")=0,"OK","≠")', "OK", None),
        (f"复核表覆盖 Review sheets cover all customers (rows 2-{ctx.cap + 1}; else run BuildReview)",
         f'=IF({beyond},"≠","OK")', "OK", None),
    ]
    for r, (label, f, value, fmt) in enumerate(kpis, start=3):
        sh.label(f"A{r}", label)
        sh.formula(f"B{r}", f, ctx.cached(value), fmt)
    sh.label("A16", "宏 Macros: VBA editor > File > Import vba/Register.bas and vba/Reallocation.bas; "
                    "xlwings ribbon > Import Functions (UDF module crm_addin). 黄色=输入 yellow = input, "
                    "绿色=加载项 green = add-in")
    for ref, note in (("A17", ledger_note(ctx)), ("A18", issues_note(ctx))):
        if note:  # where the ledger's rows are, and what was left out of it
            sh.label(ref, note, note=not ctx.ledger_on_sheet if ref == "A17" else bool(d.issues))
    labels = tier_labels(ctx.policy)
    sh.header(3, 4, ["等级 Tier", "客户数 Customers"])
    for i, tier in enumerate(labels):
        r = 4 + i
        sh.formula(f"D{r}", f"=Lists!$A${i + 2}", ctx.cached(tier))
        sh.formula(f"E{r}", f"=COUNTIF(Reg_rate_tier,D{r})",
                   ctx.cached(int(summary.loc[tier, "customers"]) if d else 0), COUNT)
    _pareto_table(ctx, sh)
    _charts(ctx, sh, len(labels))
    sh.protect()


def _ratio(part, whole) -> object:
    """The sheet's IF(whole>0, part/whole, "")."""
    return int(part) / int(whole) if int(whole) > 0 else ""


def _pareto_table(ctx: Ctx, sh: Sheet, points: int = 20) -> None:
    sh.header(3, 7, ["客户占比 Customers", "销售累计占比 Sales share"])
    curve = pareto_points(ctx.data.register["net_sales_cents"].to_numpy()) if ctx.filled else None
    for i in range(points):
        r = 4 + i
        sh.value(f"G{r}", (i + 1) / points, "0%")
        sh.formula(f"H{r}", f'=IF(SUM(Reg_net_sales)<=0,0,SUMIF(Reg_net_sales,">="&LARGE(Reg_net_sales,'
                            f'MAX(1,ROUNDUP(G{r}*COUNT(Reg_net_sales),0))),Reg_net_sales)/SUM(Reg_net_sales))',
                   ctx.cached(curve[i][1] if curve else 0), PERCENT)


def _charts(ctx: Ctx, sh: Sheet, tiers: int) -> None:
    ws = sh.ws
    bar = BarChart()
    bar.title, bar.y_axis.title = "客户等级分布 Tier distribution", "customers"
    bar.add_data(Reference(ws, min_col=5, min_row=3, max_row=3 + tiers), titles_from_data=True)
    bar.set_categories(Reference(ws, min_col=4, min_row=4, max_row=3 + tiers))
    bar.height, bar.width = 7, 12
    ws.add_chart(bar, "A21")
    curve = ScatterChart()
    curve.title, curve.style = "帕累托曲线 Pareto curve", 13
    curve.scatterStyle = "lineMarker"  # required by the schema; openpyxl leaves it out unless set
    curve.x_axis.title, curve.y_axis.title = "share of customers", "share of sales"
    xs = Reference(ws, min_col=7, min_row=4, max_row=23)
    series = Series(Reference(ws, min_col=8, min_row=3, max_row=23), xs, title_from_data=True)
    curve.series.append(series)
    curve.height, curve.width = 7, 12
    ws.add_chart(curve, "G28")
    use = BarChart()
    use.title = "额度使用 Credit use by tier"
    credit_use = ctx.sheets["CreditUse"].ws
    use.add_data(Reference(credit_use, min_col=3, max_col=4, min_row=3, max_row=3 + tiers), titles_from_data=True)
    use.set_categories(Reference(credit_use, min_col=1, min_row=4, max_row=3 + tiers))
    use.height, use.width = 7, 12
    ws.add_chart(use, "A37")


def conditional_red(ws, rng: str, formula: str) -> None:
    from openpyxl.formatting.rule import FormulaRule

    ws.conditional_formatting.add(rng, FormulaRule(formula=[formula], fill=RED_FILL, font=RED_FONT))



