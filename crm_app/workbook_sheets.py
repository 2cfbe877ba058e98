"""The register's data sheets: Register, Ledger, Policy, Lists, Credit, Reallocation, Audit, About.

Layout follows `register_schema` (the contract other commands read). Formulas use only
functions LibreOffice 7.4 computes, except the add-in (crm_*) array columns, which are green.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableFormula, TableStyleInfo

from crm_core.policy import Policy

from . import register_schema as rs
from .workbook_data import LOW_USE, RegisterData, pareto_labels, tier_labels, tier_summary
from .workbook_sheet import ADDIN_FILL, DATE, MONEY, PERCENT, SKIP, UNLOCKED, Sheet

TEMPLATE_ROWS = 500  # customer rows the review sheets are laid out for (more when filled)
REQUEST_ROWS = 30
LEDGER_TABLE = "tblLedger"
LEDGER_COLUMNS = [  # key, header (Chinese first, then the key the ledger reader also accepts)
    ("date", "日期 (date)"), ("customer", "客户编码 (customer)"), ("customer_name", "客户名称 (customer_name)"),
    ("type", "类型 (type)"), ("amount", "金额 (amount)"), ("invoice_no", "发票号 (invoice_no)"),
    ("due_date", "到期日 (due_date)"), ("vat_rate", "税率 (vat_rate)"), ("gross", "含税额 (gross)"),
]
LEDGER_TYPES = ("invoice", "receipt", "credit_note")
STAGE_TIERS = ("A", "B", "C", "D", "E")


def literal(ref: str, equals: bool = True) -> str:
    """A cell's text as a criterion that matches only itself: SUMIFS/COUNTIF/MATCH would read
    '=...', '<...', '*' and '?' in a customer code as operators or wildcards."""
    escaped = f'SUBSTITUTE(SUBSTITUTE(SUBSTITUTE({ref},"~","~~"),"*","~*"),"?","~?")'
    return f'"="&{escaped}' if equals else escaped


def L(key: str) -> str:
    """Structured reference to a Ledger table column."""
    return f"{LEDGER_TABLE}[{dict(LEDGER_COLUMNS)[key]}]"


def reg_col(key: str) -> str:
    return get_column_letter([c.key for c in rs.REGISTER_COLUMNS].index(key) + 1)


@dataclass
class Ctx:
    """What every sheet builder needs: the data (None for the empty template) and positions."""

    policy: Policy
    data: RegisterData | None
    cap: int
    sheets: dict[str, Sheet] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # defined name -> reference
    policy_rows: dict[str, int] = field(default_factory=dict)
    validations: list[tuple[str, DataValidation]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return 0 if self.data is None else len(self.data.register)

    @property
    def filled(self) -> bool:
        return self.data is not None

    def cached(self, value: object) -> object:
        return value if self.filled else SKIP

    def row_value(self, values, i: int, blank: object = "") -> object:
        """Cached value of mirror row i: the data's value, or blank past the last customer."""
        if not self.filled:
            return SKIP
        return values[i] if i < self.n else blank

    def name(self, name: str, sheet: str, ref: str) -> None:
        self.names[name] = f"'{sheet}'!{ref}" if not sheet.isidentifier() else f"{sheet}!{ref}"

    def validate(self, sheet: str, rng: str, dv: DataValidation) -> None:
        dv.add(rng)
        self.validations.append((sheet, dv))

    def rows(self) -> range:
        return range(2, self.cap + 2)

    def reg_range(self, key: str) -> str:
        return "Reg_" + key


def units(cents) -> float | None:
    if cents is None or (isinstance(cents, float) and np.isnan(cents)):
        return None
    return int(cents) / 100


def blank_nan(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value


# ----------------------------------------------------------------------------- Register
REGISTER_FORMATS = {"money": MONEY, "rate": PERCENT, "date": DATE}
REGISTER_INPUTS = ("customer_name", "owner", "stage_tier", "last_reviewed")
REGISTER_WIDTHS = {"customer": 12, "customer_name": 22, "rate_status": 18, "flags": 24}


def build_register(ctx: Ctx, sh: Sheet) -> None:
    sh.header(1, 1, [c.label for c in rs.REGISTER_COLUMNS])
    for i, col in enumerate(rs.REGISTER_COLUMNS, start=1):
        sh.widths({get_column_letter(i): REGISTER_WIDTHS.get(col.key, 14)})
    if ctx.filled:
        write_register_rows(ctx, sh)
    last = max(ctx.cap, TEMPLATE_ROWS) + 1
    for col in rs.REGISTER_COLUMNS:
        c = reg_col(col.key)
        # grows and shrinks with the customer codes in column A, so the add-in gets no blank rows
        ctx.names["Reg_" + col.key] = f"Register!${c}$2:INDEX(Register!${c}:${c},MAX(2,COUNTA(Register!$A:$A)))"
    for key in REGISTER_INPUTS:  # only rows that exist: an empty styled cell would count as a row
        for r in range(2, ctx.n + 2):
            sh.ws[f"{reg_col(key)}{r}"].protection = UNLOCKED
    lists = {"rate_tier": "RateTiers", "pareto_tier": "ParetoTiers", "stage_tier": "StageTiers"}
    for key, listname in lists.items():
        ctx.validate("Register", f"{reg_col(key)}2:{reg_col(key)}{last}",
                     DataValidation(type="list", formula1=listname, allow_blank=True,
                                    error="Pick a tier from the list / 请从列表选择等级", showErrorMessage=True))
    for key in ("net_sales", "collections", "open_balance", "allocated_line", "credit_line"):
        ctx.validate("Register", f"{reg_col(key)}2:{reg_col(key)}{last}",
                     DataValidation(type="decimal", operator="between", formula1="-1E+15", formula2="1E+15",
                                    allow_blank=True, error="An amount / 金额", showErrorMessage=True))
    ctx.validate("Register", f"{reg_col('last_reviewed')}2:{reg_col('last_reviewed')}{last}",
                 DataValidation(type="date", operator="greaterThan", formula1="1", allow_blank=True,
                                error="A date / 日期", showErrorMessage=True))
    sh.ws.freeze_panes = "C2"
    sh.ws.auto_filter.ref = f"A1:{reg_col('flags')}{max(ctx.n + 1, 2)}"
    sh.protect()


def register_flags(open_cents: int, line_cents: int) -> str:
    """The Flags formula's result: over limit, or line far above use."""
    if line_cents > 0 and open_cents > line_cents:
        return "超额 over limit"
    if line_cents > 0 and open_cents < LOW_USE * line_cents:
        return "额度闲置 line far above use"
    return ""


def write_register_rows(ctx: Ctx, sh: Sheet) -> None:
    reg = ctx.data.register
    period = str(ctx.data.review.period)
    reviewed = ctx.data.review.period.end.to_pydatetime()
    k, m, n_ = reg_col("open_balance"), reg_col("credit_line"), reg_col("utilisation")
    for i, rec in enumerate(reg.itertuples(index=False)):
        r = i + 2
        row = rec._asdict()
        values = {
            "customer": row["customer"], "customer_name": row["customer_name"], "owner": None,
            "rate_tier": row["rate_tier"], "pareto_tier": row["pareto_tier"], "stage_tier": None,
            "net_sales": units(row["net_sales_cents"]), "collections": units(row["collections_cents"]),
            "collection_rate": None if np.isnan(row["collection_rate"]) else float(row["collection_rate"]),
            "rate_status": row["rate_status"], "open_balance": units(row["open_balance_cents"]),
            "allocated_line": units(row["credit_line_cents"]), "credit_line": units(row["credit_line_cents"]),
            "last_reviewed": reviewed,
        }
        for key, value in values.items():
            kind = next(c.kind for c in rs.REGISTER_COLUMNS if c.key == key)
            sh.value(f"{reg_col(key)}{r}", value, REGISTER_FORMATS.get(kind))
        line, bal = int(row["credit_line_cents"]), int(row["open_balance_cents"])
        sh.formula(f"{n_}{r}", f'=IF(N({m}{r})>0,{k}{r}/{m}{r},"")', bal / line if line > 0 else "", PERCENT)
        sh.formula(f"{reg_col('flags')}{r}",
                   f'=IF(AND(N({m}{r})>0,N({k}{r})>N({m}{r})),"超额 over limit",'
                   f'IF(AND(N({m}{r})>0,N({k}{r})<LowUse*N({m}{r})),"额度闲置 line far above use",""))',
                   register_flags(bal, line))
    del period


def register_conditional_formats(ctx: Ctx, sh: Sheet) -> None:
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import Font as F
    from openpyxl.styles import PatternFill as P

    k, m = reg_col("open_balance"), reg_col("credit_line")
    red = FormulaRule(formula=[f"AND(N(${m}2)>0,N(${k}2)>N(${m}2))"], fill=P("solid", fgColor="F8CBAD"),
                      font=F(color="9C0006"))
    sh.ws.conditional_formatting.add(f"A2:{reg_col('flags')}{max(ctx.cap, TEMPLATE_ROWS) + 1}", red)


# ----------------------------------------------------------------------------- Ledger
def build_ledger(ctx: Ctx, sh: Sheet) -> None:
    sh.header(1, 1, [h for _, h in LEDGER_COLUMNS])
    sh.widths({"A": 12, "B": 12, "C": 22, "D": 12, "E": 14, "F": 16, "G": 12, "H": 8, "I": 14})
    rows = ctx.data.rows if ctx.filled else None
    count = max(len(rows), 1) if rows is not None else 1
    gross_f = ('=IF({a}="","",IF({t}="receipt",{a},ROUND(ROUND({a}*100,0)*(1+IF({v}="",LOOKUP({d},VatFrom,VatRate),{v})),0)/100))'
               .format(t=_this("type"), a=_this("amount"), v=_this("vat_rate"), d=_this("date")))
    if rows is not None:
        _ledger_values(sh, rows)
    gross = ctx.data.gross_cents if ctx.filled else []
    for i in range(count):
        sh.formula(f"I{i + 2}", gross_f, units(gross[i]) if i < len(gross) else SKIP, MONEY)
    ref = f"A1:I{count + 1}"
    table = Table(displayName=LEDGER_TABLE, ref=ref)
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    table._initialise_columns()
    for column, (key, header) in zip(table.tableColumns, LEDGER_COLUMNS):
        column.name = header
        if key == "gross":
            column.calculatedColumnFormula = TableFormula(attr_text=gross_f[1:])
    sh.ws.add_table(table)
    last = max(count + 1, 5000)
    ctx.validate("Ledger", f"D2:D{last}", DataValidation(type="list", formula1=f'"{",".join(LEDGER_TYPES)}"',
                                                         allow_blank=True, showErrorMessage=True,
                                                         error="invoice, receipt or credit_note"))
    for col in ("A", "G"):
        ctx.validate("Ledger", f"{col}2:{col}{last}", DataValidation(
            type="date", operator="greaterThan", formula1="1", allow_blank=True, showErrorMessage=True,
            error="A date / 日期"))
    ctx.validate("Ledger", f"E2:E{last}", DataValidation(type="decimal", operator="between", formula1="-1E+15",
                                                         formula2="1E+15", allow_blank=True,
                                                         showErrorMessage=True, error="An amount / 金额"))
    sh.ws.freeze_panes = "A2"


def _this(key: str) -> str:
    return f"{LEDGER_TABLE}[[#This Row],[{dict(LEDGER_COLUMNS)[key]}]]"


def _ledger_values(sh: Sheet, rows: pd.DataFrame) -> None:
    ws = sh.ws
    for i, rec in enumerate(rows.itertuples(index=False), start=2):
        ws.cell(row=i, column=1, value=rec.date.to_pydatetime()).number_format = DATE
        for col, text in ((2, rec.customer), (3, rec.customer_name), (4, rec.type), (6, rec.invoice_no)):
            cell = ws.cell(row=i, column=col, value=text if text else None)
            cell.data_type = "s"
        ws.cell(row=i, column=5, value=int(rec.amount_cents) / 100).number_format = MONEY
        if not pd.isna(rec.due_date):
            ws.cell(row=i, column=7, value=pd.Timestamp(rec.due_date).to_pydatetime()).number_format = DATE
        if not pd.isna(rec.vat_rate):
            ws.cell(row=i, column=8, value=float(rec.vat_rate))


# ----------------------------------------------------------------------------- Policy + Lists
def policy_pairs(policy: Policy) -> list[tuple[str, object]]:
    """`Policy.to_pairs()` with the VAT rows sorted by date (the sheet's LOOKUP needs that)."""
    pairs = policy.to_pairs()
    vat = sorted(p for p in pairs if p[0].startswith("vat."))
    out, placed = [], False
    for key, value in pairs:
        if key.startswith("vat."):
            if not placed:
                out += vat
                placed = True
            continue
        out.append((key, value))
    return out


def build_policy(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "# 键 key", head=True)
    sh.label("B1", "值 value", head=True)
    sh.widths({"A": 26, "B": 14})
    for r, (key, value) in enumerate(policy_pairs(ctx.policy), start=2):
        sh.label(f"A{r}", key)
        sh.value(f"B{r}", value, "0.00%" if key.startswith(("vat.", "rate_cutoff.", "pareto_cutoff.",
                                                                  "rank_share.")) else None, unlocked=True)
        ctx.policy_rows[key] = r
    last = 1 + len(ctx.policy_rows)
    ctx.name("PolicyTable", "Policy", f"$A$1:$B${last}")
    for key, name in (("credit_ratio", "CreditRatio"), ("unrated_label", "Unrated"), ("lowest_tier", "LowestTier"),
                      ("pareto_rest", "ParetoRest"), ("tier_mode", "TierMode")):
        ctx.name(name, "Policy", f"$B${ctx.policy_rows[key]}")
    sh.ws.freeze_panes = "A2"
    sh.protect()


def _prefixed(ctx: Ctx, prefix: str, order: list[str] | None = None) -> list[int]:
    rows = {k.split(".", 1)[1]: r for k, r in ctx.policy_rows.items() if k.startswith(prefix + ".")}
    return [rows[k] for k in (order or list(rows))]


def build_lists(ctx: Ctx, sh: Sheet) -> None:
    """Hidden helper sheet: validation lists and policy tables in the shape formulas need."""
    p = ctx.policy
    cut_rows = _prefixed(ctx, "rate_cutoff", p.rate_tier_labels()[:-1])
    tiers = [f"=MID(Policy!$A${r},13,20)" for r in cut_rows] + ["=LowestTier", "=Unrated"]
    tier_values = tier_labels(p)
    sh.header(1, 1, ["回款等级 Rate tiers", "ABC等级 Pareto tiers", "阶段等级 Stage tiers", "等级 Tier",
                     "下限 Cut-off", "", "", "生效日期 VAT from", "税率 VAT", "等级 Tier", "权重 Weight",
                     "阶段 Stage", "跟进天数 Follow-up days", "", "排名等级 Rank tier", "累计比例 Cumulative share"])
    for i, (f, v) in enumerate(zip(tiers, tier_values)):
        sh.formula(f"A{i + 2}", f, ctx.cached(v))
    ctx.name("RateTiers", "Lists", f"$A$2:$A${len(tiers) + 1}")
    pareto_rows = _prefixed(ctx, "pareto_cutoff", pareto_labels(p)[:-1])
    pareto = [f"=MID(Policy!$A${r},15,20)" for r in pareto_rows] + ["=ParetoRest"]
    for i, (f, v) in enumerate(zip(pareto, pareto_labels(p))):
        sh.formula(f"B{i + 2}", f, ctx.cached(v))
    ctx.name("ParetoTiers", "Lists", f"$B$2:$B${len(pareto) + 1}")
    for i, t in enumerate(STAGE_TIERS):
        sh.value(f"C{i + 2}", t)
    ctx.name("StageTiers", "Lists", f"$C$2:$C${len(STAGE_TIERS) + 1}")
    for i, r in enumerate(cut_rows):
        sh.formula(f"D{i + 2}", f"=A{i + 2}", ctx.cached(tier_values[i]))
        sh.formula(f"E{i + 2}", f"=Policy!$B${r}", ctx.cached(p.rate_cutoffs[tier_values[i]]))
    _policy_table(ctx, sh, "vat", ("H", "I"), "VatFrom", "VatRate", date_key=True)
    _policy_table(ctx, sh, "tier_weight", ("J", "K"), "WeightTier", "WeightValue")
    _policy_table(ctx, sh, "follow_up_days", ("L", "M"), "FollowTier", "FollowDays")
    _rank_shares(ctx, sh)
    sh.ws.sheet_state = "hidden"
    sh.protect()


RANK_COLUMNS = ("O", "P")  # Lists: rank-mode tier, cumulative share of customers up to it


def _rank_shares(ctx: Ctx, sh: Sheet) -> None:
    """Rank mode's tiers with their cumulative shares (0.2, 0.5, 0.8, 1.0), from the Policy rows."""
    tier_col, share_col = RANK_COLUMNS
    rows = _prefixed(ctx, "rank_share")
    cumulative = np.cumsum(list(ctx.policy.rank_shares.values()))
    for i, (src, label) in enumerate(zip(rows, ctx.policy.rank_shares)):
        r = i + 2
        sh.formula(f"{tier_col}{r}", f"=MID(Policy!$A${src},12,20)", ctx.cached(label))
        above = f"{share_col}{r - 1}+" if i else ""
        sh.formula(f"{share_col}{r}", f"={above}Policy!$B${src}", ctx.cached(float(cumulative[i])))


def rank_tier_formula(cell: str, rates: str, shares: int) -> str:
    """The core's `rank_tiers` as a formula: a rate's place among the rated (ties share the best
    place, as RANK gives) against the cumulative shares x the number rated, rounded as the core."""
    tier_col, share_col = RANK_COLUMNS
    place, rated = f"(RANK({cell},{rates},0)-1)", f"COUNT({rates})"
    formula = f"Lists!${tier_col}${shares + 1}"
    for r in range(shares, 1, -1):  # from the last tier inwards: IF(place < edge, tier, <later tiers>)
        edge = f"ROUND(Lists!${share_col}${r}*{rated},9)"
        formula = f"IF({place}<{edge},Lists!${tier_col}${r},{formula})"
    return formula


def _policy_table(ctx: Ctx, sh: Sheet, prefix: str, cols: tuple[str, str], key_name: str, value_name: str,
                  date_key: bool = False) -> None:
    pairs = [(k, v) for k, v in policy_pairs(ctx.policy) if k.startswith(prefix + ".")]
    start = len(prefix) + 2
    for i, (key, value) in enumerate(pairs):
        r, src = i + 2, ctx.policy_rows[key]
        label = key.split(".", 1)[1]
        if date_key:
            day = pd.Timestamp(label).to_pydatetime()
            sh.formula(f"{cols[0]}{r}", f"=DATE(VALUE(MID(Policy!$A${src},{start},4)),VALUE(MID(Policy!$A${src},{start + 5},2)),"
                                        f"VALUE(MID(Policy!$A${src},{start + 8},2)))", ctx.cached(day), DATE)
        else:
            sh.formula(f"{cols[0]}{r}", f"=MID(Policy!$A${src},{start},20)", ctx.cached(label))
        sh.formula(f"{cols[1]}{r}", f"=Policy!$B${src}", ctx.cached(value))
    last = len(pairs) + 1
    ctx.name(key_name, "Lists", f"${cols[0]}$2:${cols[0]}${last}")
    ctx.name(value_name, "Lists", f"${cols[1]}$2:${cols[1]}${last}")


# ----------------------------------------------------------------------------- Credit
CREDIT_TIER_ROW = 18  # header row of the tier split table
CREDIT_LINES_GAP = 3


def credit_lines_header_row(ctx: Ctx) -> int:
    return CREDIT_TIER_ROW + len(tier_labels(ctx.policy)) + 1 + CREDIT_LINES_GAP


def net_sales_total_formula(customer: str | None = None) -> str:
    who = f"{L('customer')},{customer}," if customer else ""
    period = f'{L("date")},">="&PeriodStart,{L("date")},"<="&PeriodEnd'
    return (f'ROUND(SUMIFS({L("amount")},{who}{L("type")},"invoice",{period})'
            f'-SUMIFS({L("amount")},{who}{L("type")},"credit_note",{period}),2)')


def build_credit(ctx: Ctx, sh: Sheet) -> None:
    d = ctx.data
    sh.label("A1", "赊销额度 Credit budget and lines", title=True)
    sh.widths({"A": 4, "B": 34, "C": 18, "D": 16, "E": 16, "F": 18, "G": 18, "H": 18, "I": 16})
    year = d.review.period.start.year if d else None
    budget = units(d.review.budget_cents) if d else None
    lines_total = units(int(d.register["credit_line_cents"].sum())) if d else None
    rows = [
        ("ReviewYear", "评审年度 Review year", "=YEAR(TODAY())-1" if not d else year, None, True),
        ("PeriodStart", "期间开始 Period start", "=DATE(ReviewYear,1,1)", d and d.review.period.start.to_pydatetime(), False),
        ("PeriodEnd", "期间结束 Period end", "=DATE(ReviewYear,12,31)", d and d.review.period.end.to_pydatetime(), False),
        ("AsOf", "评估日期 As of (ageing, follow-ups)", "=PeriodEnd", d and d.as_of.to_pydatetime(), True),
        ("NetSalesTotal", "净销售额合计 Net sales (ledger)", "=" + net_sales_total_formula(), d and units(d.review.net_sales_cents), False),
        ("BudgetVat", "预算年度增值税率 VAT for the budget year", "=LOOKUP(DATE(ReviewYear+1,1,1),VatFrom,VatRate)", d and d.review.vat_rate, False),
        ("BudgetRatio", "赊销比例 Credit ratio", "=CreditRatio", d and ctx.policy.credit_ratio, False),
        ("Budget", "赊销额度预算 Credit budget", "=ROUND(MAX(NetSalesTotal,0)*BudgetRatio*(1+BudgetVat),2)", budget, False),
        ("BudgetAddin", "加载项核对 Budget by the add-in (crm_credit_budget)", "=crm_credit_budget(NetSalesTotal,BudgetRatio,BudgetVat)", budget, False),
        ("LowUse", "额度闲置阈值 Line far above use below", LOW_USE, None, True),
        ("LinesTotal", "额度合计 Credit lines total", f"=SUM({ctx.reg_range('credit_line')})", lines_total, False),
        ("LinesDiff", "额度合计-预算 Lines minus budget", "=ROUND(LinesTotal-Budget,2)", d and 0.0, False),
        ("LinesCheck", "额度=预算 Lines equal the budget", '=IF(LinesDiff=0,"OK","≠")', d and "OK", False),
    ]
    fmts = {"PeriodStart": DATE, "PeriodEnd": DATE, "AsOf": DATE, "BudgetVat": PERCENT, "BudgetRatio": PERCENT,
            "LowUse": PERCENT, "ReviewYear": "0"}
    for r, (name, label, content, cached, is_input) in enumerate(rows, start=3):
        sh.label(f"B{r}", label)
        fmt = fmts.get(name, MONEY)
        if isinstance(content, str) and content.startswith("="):
            sh.formula(f"C{r}", content, cached if d else SKIP, fmt, unlocked=is_input)
        else:
            sh.value(f"C{r}", content, fmt, unlocked=is_input)
        if name == "BudgetAddin":
            sh.ws[f"C{r}"].fill = ADDIN_FILL
        ctx.name(name, "Credit", f"$C${r}")
    ctx.validate("Credit", "C3", DataValidation(type="whole", operator="between", formula1="1990", formula2="2200",
                                                showErrorMessage=True, error="A year / 年度"))
    ctx.validate("Credit", "C6", DataValidation(type="date", operator="greaterThan", formula1="1",
                                                showErrorMessage=True, error="A date / 日期"))
    _credit_tiers(ctx, sh)
    _credit_lines(ctx, sh)
    sh.protect()


def _credit_tiers(ctx: Ctx, sh: Sheet) -> None:
    h = CREDIT_TIER_ROW
    sh.label(f"B{h - 1}", "按等级分配 Split by tier (sales share x tier weight)")
    sh.header(h, 2, ["等级 Tier", "权重 Weight", "净销售额 Net sales", "加权基数 Weighted basis", "占比 Share",
                     "等级预算 Tier budget", "年度分配 Yearly allocation", "现行额度 Lines now", "偏离 Drift"])
    labels = tier_labels(ctx.policy)
    summary = tier_summary(ctx.data) if ctx.filled else None
    first, last = h + 1, h + len(labels)
    weights = {t: ctx.policy.tier_weights.get(t, 0.0) for t in labels}
    basis_total = sum(int(summary.loc[t, "net_sales_cents"]) * weights[t] for t in labels) if ctx.filled else 0
    for i, tier in enumerate(labels):
        r = first + i
        s = summary.loc[tier] if ctx.filled else None
        sales = int(s["net_sales_cents"]) if ctx.filled else 0
        share = sales * weights[tier] / basis_total if ctx.filled and basis_total else 0.0
        get = (lambda v: v) if ctx.filled else (lambda v: SKIP)
        sh.formula(f"B{r}", f"=Lists!$A${i + 2}", get(tier))
        sh.formula(f"C{r}", f"=IFERROR(INDEX(WeightValue,MATCH(B{r},WeightTier,0)),0)", get(weights[tier]), "0.00")
        sh.formula(f"D{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_net_sales)", get(sales / 100), MONEY)
        sh.formula(f"E{r}", f"=D{r}*C{r}", get(sales * weights[tier] / 100), MONEY)
        sh.formula(f"F{r}", f"=IF(SUM($E${first}:$E${last})>0,E{r}/SUM($E${first}:$E${last}),0)", get(share), PERCENT)
        sh.formula(f"G{r}", f"=ROUND(Budget*F{r},2)", get(round(ctx.data.review.budget_cents * share) / 100
                                                             if ctx.filled else 0), MONEY)
        sh.formula(f"H{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_allocated_line)",
                   get(int(s["allocated_cents"]) / 100 if ctx.filled else 0), MONEY)
        sh.formula(f"I{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_credit_line)",
                   get(int(s["line_cents"]) / 100 if ctx.filled else 0), MONEY)
        sh.formula(f"J{r}", f"=ROUND(I{r}-H{r},2)", get(0.0), MONEY)


def _credit_lines(ctx: Ctx, sh: Sheet) -> None:
    h = credit_lines_header_row(ctx)
    sh.label(f"B{h - 1}", "客户额度 Lines per customer (green: recomputed by the add-in, crm_allocate_credit)")
    sh.header(h, 2, ["客户编码 Code", "回款等级 Tier", "净销售额 Net sales", "年度分配 Yearly allocation",
                     "现行额度 Credit line", "加载项分配 Allocation by the add-in"])
    reg = ctx.data.register if ctx.filled else None
    cols = [("B", "customer", None), ("C", "rate_tier", None), ("D", "net_sales", MONEY),
            ("E", "allocated_line", MONEY), ("F", "credit_line", MONEY)]
    for i, r in enumerate(range(h + 1, h + 1 + ctx.cap)):
        src = i + 2
        for col, key, fmt in cols:
            rc = reg_col(key)
            cached = SKIP
            if ctx.filled:
                if i >= ctx.n:
                    cached = ""
                elif key in ("customer", "rate_tier"):
                    cached = reg[key].iloc[i]
                else:
                    cached = units(reg["credit_line_cents" if key != "net_sales" else "net_sales_cents"].iloc[i])
            sh.formula(f"{col}{r}", f'=IF(Register!${rc}${src}="","",Register!${rc}${src})', cached, fmt)
    end = h + ctx.cap
    values = ([[units(v)] for v in reg["credit_line_cents"]] + [[""]] * (ctx.cap - ctx.n)) if ctx.filled else None
    sh.array(f"G{h + 1}:G{end}", "crm_allocate_credit(Reg_customer,Reg_rate_tier,Reg_net_sales,Budget,,,PolicyTable)",
             values, MONEY)


# ----------------------------------------------------------------------------- Reallocation
FORM_ROW = 3  # first field row
def request_header_row() -> int:
    return FORM_ROW + len(rs.REALLOCATION_FIELDS) + 2


def build_reallocation(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "赊销额度调整申请 Credit-line reallocation request", title=True)
    sh.widths({"A": 20, "B": 18, "C": 30, "D": 16, "E": 16, "F": 12, "G": 30, "H": 34, "I": 30, "J": 16})
    for r, col in enumerate(rs.REALLOCATION_FIELDS, start=FORM_ROW):
        sh.label(f"A{r}", col.label)
        sh.value(f"B{r}", None, DATE if col.kind == "date" else None, unlocked=True)
        if col.kind == "date":
            ctx.validate("Reallocation", f"B{r}", DataValidation(type="date", operator="greaterThan", formula1="1",
                                                                 allow_blank=True, showErrorMessage=True,
                                                                 error="A date / 日期"))
    h = request_header_row()
    first, last = h + 1, h + REQUEST_ROWS
    sh.header(h, 1, [c.label for c in rs.REQUEST_COLUMNS] + ["原额度 Old line", "新额度 New line",
                                                              "回款等级 Tier", "检查 Check",
                                                              "加载项检查 Add-in check (crm_check_reallocation)"])
    sh.array(f"H{first}:H{last + 1}", f"crm_check_reallocation(Reg_customer,Reg_credit_line,A{first}:A{last},"
                                      f"B{first}:B{last},Reg_open_balance,Reg_rate_tier,FALSE,PolicyTable)")
    for r in range(first, last + 1):
        for col in "ABC":
            sh.value(f"{col}{r}", None, MONEY if col == "B" else None, unlocked=True)
        found = f"MATCH({literal(f'$A{r}', equals=False)},Reg_customer,0)"
        same = literal(f"$A{r}")
        sh.formula(f"D{r}", f'=IF($A{r}="","",IFERROR(INDEX(Reg_credit_line,{found}),""))', ctx.cached(""), MONEY)
        sh.formula(f"E{r}", f'=IF(OR($A{r}="",D{r}=""),"",ROUND(D{r}+N(B{r}),2))', ctx.cached(""), MONEY)
        sh.formula(f"F{r}", f'=IF($A{r}="","",IFERROR(INDEX(Reg_rate_tier,{found}),""))', ctx.cached(""))
        sh.formula(f"G{r}", f'=IF($A{r}="","",IF(D{r}="","客户不存在 unknown customer",IF(COUNTIF($A${first}:$A${last},{same})>1,'
                            f'"重复 listed twice",IF(E{r}<0,"额度为负 below zero",IF(E{r}<N(INDEX(Reg_open_balance,{found})),'
                            f'"低于应收余额 below balance","OK")))))', ctx.cached(""))
    ctx.validate("Reallocation", f"A{first}:A{last}", DataValidation(type="list", formula1="Reg_customer",
                                                                     allow_blank=True, showErrorMessage=True,
                                                                     error="A customer code from the Register"))
    ctx.validate("Reallocation", f"B{first}:B{last}", DataValidation(type="decimal", operator="between",
                                                                     formula1="-1E+15", formula2="1E+15",
                                                                     allow_blank=True, showErrorMessage=True,
                                                                     error="An amount / 金额"))
    red = PatternFill("solid", fgColor="F8CBAD")
    sh.ws.conditional_formatting.add(f"G{first}:G{last}", FormulaRule(
        formula=[f'AND(G{first}<>"",G{first}<>"OK")'], fill=red))
    sh.ws.conditional_formatting.add(f"J{FORM_ROW + 1}", FormulaRule(formula=[f'J{FORM_ROW + 1}<>"OK"'], fill=red))
    checks = [
        ("调整合计 Sum of changes", f"=ROUND(SUM(B{first}:B{last}),2)", 0.0, MONEY),
        ("合计为零 Changes sum to zero", f'=IF(J{FORM_ROW}=0,"OK","≠ 0")', "OK", None),
        ("调增合计 Total raised", f'=SUMIF(B{first}:B{last},">0")', 0.0, MONEY),
        ("调整行数 Lines", f'=COUNTIF(A{first}:A{last},"?*")', 0, "0"),
        ("有问题的行 Lines with a problem",
         f'=COUNTIF(G{first}:G{last},"?*")-COUNTIF(G{first}:G{last},"OK")', 0, "0"),
    ]
    for i, (label, f, cached, fmt) in enumerate(checks):
        r = FORM_ROW + i
        sh.label(f"I{r}", label)
        sh.formula(f"J{r}", f, ctx.cached(cached), fmt)
    sh.protect()


# ----------------------------------------------------------------------------- Audit + About
def build_audit(ctx: Ctx, sh: Sheet) -> None:
    sh.header(1, 1, [c.label for c in rs.AUDIT_COLUMNS])
    for i in range(len(rs.AUDIT_COLUMNS)):
        sh.widths({get_column_letter(i + 1): 16})
    sh.ws.freeze_panes = "A2"
    sh.protect()


def about_values(ctx: Ctx) -> dict[str, object]:
    d = ctx.data
    return {
        "template_version": rs.TEMPLATE_VERSION,
        "register_version": 1,
        "budget_year": d.review.budget_year if d else None,
        "budget": units(d.review.budget_cents) if d else None,
        "review_period": str(d.review.period) if d else None,
        "policy_label": d.review.policy_label if d else ctx.policy.label,
        "generated_at": d.generated_at if d else None,
        "review_rows": ctx.cap,
    }


def build_about(ctx: Ctx, sh: Sheet) -> None:
    sh.header(1, 1, ["键 key", "值 value", "说明 meaning"])
    sh.widths({"A": 20, "B": 26, "C": 50})
    # audit_head is absent until the first reallocation batch writes it
    for r, (key, value) in enumerate(about_values(ctx).items(), start=2):
        sh.label(f"A{r}", key)
        sh.value(f"B{r}", value, MONEY if key == "budget" else None)
        sh.label(f"C{r}", rs.ABOUT_KEYS[key])
    sh.protect()
