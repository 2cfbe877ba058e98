"""The register's data sheets: Register, Ledger, Policy, Lists, Credit, Reallocation, Audit, About.

Layout follows `register_schema` (the contract other commands read). Formulas use only
functions LibreOffice 7.4 computes; none calls the add-in (crm_*), so nothing shows #NAME? where
it is not installed. Green cells hold values Python computed. Headers read "中文\nEnglish".
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableFormula, TableStyleInfo

from crm_app.register import schema as rs
from crm_app.register.load import UNTIL_FIELD
from crm_app.register.standard import SIGNER_FIELDS
from crm_app.workbook import layout
from crm_app.workbook import xml_sheet as workbook_sheet
from crm_app.workbook.data import (
    LOW_USE,
    RegisterData,
    customer_file_column,
    pareto_labels,
    tier_labels,
    tier_summary,
)
from crm_app.workbook.xml_sheet import (
    ADDIN_FILL,
    COUNT,
    DATE,
    DECIMAL,
    MONEY,
    PERCENT,
    SKIP,
    WHOLE,
    SharedStrings,
    Sheet,
    xml_text,
)
from crm_core import schema as cs
from crm_core.analysis import duplicate_flags, tenure_years
from crm_core.collection import GROSSED_UP
from crm_core.issues import issues_frame
from crm_core.ledger import TYPE_WORDS, TYPES, type_words
from crm_core.policy import KEY_NOTES, Policy
from crm_core.tiers import NEED_WORDS, STAGE_TIERS, rate_tier_order, stage_tiers
from crm_core.values import is_blank
from crm_core.values import units as money_units

TEMPLATE_ROWS = 500  # customer rows the review sheets are laid out for (more when filled)
REQUEST_ROWS = 30
LEDGER_TABLE = "tblLedger"
# The Ledger sheet's columns in sheet order: the ledger's fields (crm_core.schema.LEDGER_COLUMNS),
# then the computed gross amount, then the invoice a receipt settles (核销发票号, blank when the
# ledger names none: the ageing settles oldest first). (key, header): headers are the Chinese name
# and the key, both among the headers the ledger reader accepts.
LEDGER_SHEET_KEYS = ("date", "customer", "customer_name", "type", "amount", "invoice_no", "due_date", "vat_rate")
LEDGER_COLUMNS = [(c.key, cs.sheet_header(c))
                  for c in [*(cs.LEDGER_BY_KEY[k] for k in LEDGER_SHEET_KEYS), cs.GROSS, cs.LEDGER_BY_KEY["applies_to"]]]
LEDGER_LAST = get_column_letter(len(LEDGER_COLUMNS))
LEDGER_TYPES = TYPES  # invoice, receipt, credit_note, opening_balance, write_off
# How each type moves the open balance (gross): up for invoices and balances brought forward, down
# for receipts, credit notes and write-offs (the core's BALANCE_SIGNS).
BALANCE_UP = ("invoice", "opening_balance")
ISSUES = "Issues"
ISSUE_ROWS = 100_000  # problems listed on the Issues sheet; the rest are counted


def literal(ref: str, equals: bool = True) -> str:
    """A cell's text as a criterion that matches only itself: SUMIFS/COUNTIF/MATCH would read
    '=...', '<...', '*' and '?' in a customer code as operators or wildcards."""
    escaped = f'SUBSTITUTE(SUBSTITUTE(SUBSTITUTE({ref},"~","~~"),"*","~*"),"?","~?")'
    return f'"="&{escaped}' if equals else escaped


@functools.lru_cache(maxsize=None)
def L(key: str) -> str:
    """Structured reference to a Ledger table column."""
    return f"{LEDGER_TABLE}[{dict(LEDGER_COLUMNS)[key]}]"


# The Register's columns in sheet order: the register's, the workflow's temporary columns, then
# the customer file and sales stage (crm_app.register.schema).
REGISTER_SHOWN = [*rs.REGISTER_COLUMNS, *rs.TEMPORARY_COLUMNS, *rs.CUSTOMER_FILE_COLUMNS]


@functools.lru_cache(maxsize=None)
def reg_col(key: str) -> str:
    """The Register column letter of a key (a register column, temporary or customer file column)."""
    return get_column_letter([c.key for c in REGISTER_SHOWN].index(key) + 1)


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
    # What the core computed once for several sheets (the service cases: Register flags, Service sheet)
    computed: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return 0 if self.data is None else len(self.data.register)

    @property
    def filled(self) -> bool:
        return self.data is not None

    @property
    def ledger_rows(self) -> int:
        if self.data is None:
            return 0
        return len(self.data.rows) if self.data.ledger_row_count is None else self.data.ledger_row_count

    @property
    def ledger_on_sheet(self) -> bool:
        """Whether the Ledger sheet holds the whole ledger (always, for the empty template). A
        ledger longer than a sheet stays where it is: none of its rows go on the sheet, and cells
        that would sum the sheet hold the add-in's values instead."""
        return self.ledger_rows <= ledger_capacity() and (self.data is None or self.data.ledger_row_count is None)

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
    """A money cell's value: currency units (crm_core.values.units), None (no value) for None or NaN."""
    if cents is None or (isinstance(cents, float) and np.isnan(cents)):
        return None
    return money_units(cents)


def blank_nan(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value


def ledger_capacity() -> int:
    """Ledger rows a sheet holds below its header."""
    return workbook_sheet.SHEET_ROWS - 1


def ledger_note(ctx: Ctx) -> str | None:
    """Where the ledger's rows are, in both languages; None for the empty template."""
    if not ctx.filled:
        return None
    n, source = ctx.ledger_rows, ctx.data.source or "the ledger file / 台账文件"
    if ctx.ledger_on_sheet:
        return f"台账 {n:,} 行，全部在 Ledger 表（来自 {source}） / Ledger: {n:,} rows, all on the Ledger sheet (from {source})"
    return (f"台账共 {n:,} 行，超过一张工作表可容纳的 {ledger_capacity():,} 行：Ledger 表载入 0 行（0 / {n:,}），"
            f"全部行在 {source}；汇总台账的单元格（绿色）显示加载项的计算值。 / The ledger has {n:,} rows, more than "
            f"a sheet holds ({ledger_capacity():,}): 0 of them are on the Ledger sheet; all rows are in {source}. "
            "Cells that would sum the Ledger sheet (green) show the add-in's values instead.")


def footer(ctx: Ctx) -> str:
    """What every printed page says at its foot besides the sheet and page: the review period and
    the policy, or that this is the empty template."""
    if not ctx.filled:
        return "crm-addin 客户登记表模板 / register template"
    return f"期间 Period {ctx.data.review.period} · 政策 Policy {ctx.data.review.policy_label}"


def issues_note(ctx: Ctx) -> str | None:
    """How many problems the ledger had and how many rows were skipped; None for the template."""
    if not ctx.filled:
        return None
    issues, skipped = ctx.data.issues, ctx.data.rows_skipped
    if not issues:
        return "台账无问题 / No problems found in the ledger"
    errors = sum(i.is_error for i in issues)
    return (f"台账问题 {len(issues):,} 个（错误 {errors:,}，跳过 {skipped:,} 行），见 Issues 表 / "
            f"{len(issues):,} problem(s) in the ledger ({errors:,} error(s), {skipped:,} row(s) skipped): "
            "see the Issues sheet")


# ----------------------------------------------------------------------------- Register
REGISTER_FORMATS = {"money": MONEY, "rate": PERCENT, "date": DATE}
# the stage tier is a formula on the need and the expected close (`stage_formula`)
REGISTER_INPUTS = ("customer_name", "owner", "last_reviewed", *rs.CUSTOMER_FILE_INPUTS)
# Widths the empty template needs for what users type (a filled register fits its content).
KIND_WIDTHS = {"money": 15, "rate": 10, "date": 12}
REGISTER_WIDTHS = {"customer": 12, "customer_name": 22, "owner": 10, "rate_status": 14, "flags": 24,
                   "need": 8, "address": 24, "phone": 14, "contact": 10, "terms_days": 9, "credit_notes": 20}
NEED_LIST = '"有,潜在,无,yes,potential,no"'  # what the need column's list offers (the rule reads more words)


def build_register(ctx: Ctx, sh: Sheet) -> None:
    # the workflow fills the temporary columns (crm_app.register.temporary); the customer file
    # columns come after them, so a register written before either keeps its letters
    shown = REGISTER_SHOWN
    layout.header(sh, 1, 1, [c.heading for c in shown])
    if ctx.filled:
        write_register_rows(ctx, sh)
    least = {get_column_letter(i): REGISTER_WIDTHS.get(c.key, KIND_WIDTHS.get(c.kind, 8))
             for i, c in enumerate(shown, start=1)}
    layout.fit_widths(sh, least=least, most=40)
    last = max(ctx.cap, TEMPLATE_ROWS) + 1
    for col in [*rs.REGISTER_COLUMNS, *rs.CUSTOMER_FILE_COLUMNS]:
        c = reg_col(col.key)
        # grows and shrinks with the customer codes in column A, so the add-in gets no blank rows
        ctx.names["Reg_" + col.key] = f"Register!${c}$2:INDEX(Register!${c}:${c},MAX(2,COUNTA(Register!$A:$A)))"
    for key in REGISTER_INPUTS:  # only rows that exist: an empty styled cell would count as a row
        c = reg_col(key)
        for r in range(2, ctx.n + 2):
            sh.style(f"{c}{r}", unlocked=True)
    lists = {"rate_tier": "RateTiers", "pareto_tier": "ParetoTiers"}
    for key, listname in lists.items():
        ctx.validate("Register", f"{reg_col(key)}2:{reg_col(key)}{last}",
                     DataValidation(type="list", formula1=listname, allow_blank=True,
                                    error="Pick a tier from the list / 请从列表选择等级", showErrorMessage=True))
    _customer_file_validations(ctx, last)
    for key in ("net_sales", "collections", "open_balance", "allocated_line", "credit_line"):
        ctx.validate("Register", f"{reg_col(key)}2:{reg_col(key)}{last}",
                     DataValidation(type="decimal", operator="between", formula1="-1E+15", formula2="1E+15",
                                    allow_blank=True, error="An amount / 金额", showErrorMessage=True))
    for key in ("last_reviewed", "expected_close", "trading_since"):
        ctx.validate("Register", f"{reg_col(key)}2:{reg_col(key)}{last}",
                     DataValidation(type="date", operator="greaterThan", formula1="1", allow_blank=True,
                                    error="A date / 日期", showErrorMessage=True))
    sh.ws.freeze_panes = "C2"
    sh.ws.auto_filter.ref = f"A1:{get_column_letter(len(shown))}{max(ctx.n + 1, 2)}"
    layout.print_setup(sh, landscape=True, title_rows="1:1", footer=footer(ctx))
    # the credit columns and the customer file side by side, each page with the code and name
    sh.ws.page_setup.fitToWidth, sh.ws.print_title_cols = 2, "A:B"
    sh.protect()


def _customer_file_validations(ctx: Ctx, last: int) -> None:
    """The need from its list, the payment terms in whole days (the dates go with the others)."""
    need, terms = reg_col("need"), reg_col("terms_days")
    ctx.validate("Register", f"{need}2:{need}{last}", DataValidation(
        type="list", formula1=NEED_LIST, allow_blank=True, showErrorMessage=True, showInputMessage=True,
        errorTitle="需求 Need", error="有 yes, 潜在 potential or 无 no / 请选择 有、潜在 或 无",
        promptTitle="需求 Need", prompt="有 yes / 潜在 potential / 无 no: with the expected close, gives the stage tier"))
    ctx.validate("Register", f"{terms}2:{terms}{last}", DataValidation(
        type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True, showErrorMessage=True,
        error="Whole days, 0 or more / 账期天数为非负整数"))


OPEN_COMPLAINT = "未结投诉 open complaint"


def register_flags(open_cents: int, line_cents: int, duplicate: str = "", open_complaint: bool = False) -> str:
    """The Flags formula's result: over limit, or line far above use; an open complaint on the
    Service sheet; the likely duplicate note (`duplicate_flags`); joined by "; "."""
    flag = ""
    if line_cents > 0 and open_cents > line_cents:
        flag = "超额 over limit"
    elif line_cents > 0 and open_cents < LOW_USE * line_cents:
        flag = "额度闲置 line far above use"
    return "; ".join(part for part in (flag, OPEN_COMPLAINT if open_complaint else "", duplicate) if part)


def flags_formula(r: int, duplicate: str = "", complaints: bool = False) -> str:
    """The Flags cell of row r: `register_flags` as a formula. `complaints`: the workbook has the
    Service sheet, whose column N is 1 on a case still open. The duplicate note is Python's
    (names, phones and addresses compared loosely), held as text in the formula."""
    k, m = reg_col("open_balance"), reg_col("credit_line")
    flag = (f'IF(AND(N({m}{r})>0,N({k}{r})>N({m}{r})),"超额 over limit",'
            f'IF(AND(N({m}{r})>0,N({k}{r})<LowUse*N({m}{r})),"额度闲置 line far above use",""))')
    if complaints:
        code = literal(f"{reg_col('customer')}{r}")
        open_case = f'IF(COUNTIFS(Service!$B:$B,{code},Service!$N:$N,1)>0,"{OPEN_COMPLAINT}","")'
        flag = f'{flag}&IF(AND({flag}<>"",{open_case}<>""),"; ","")&{open_case}'
    if not duplicate:
        return "=" + flag
    # a text constant in a formula holds at most 255 characters: longer notes are joined from parts
    text = "&".join('"' + duplicate[i:i + 200].replace('"', '""') + '"' for i in range(0, len(duplicate), 200))
    return f'={flag}&IF({flag}="","","; ")&{text}'


def open_complaints(ctx: Ctx) -> set[str]:
    """Register codes with a case open on the Service sheet (the core's reading of the log)."""
    from crm_app.workbook.activity_sheets import service_table  # that module builds on this one

    table = service_table(ctx)
    if table is None:
        return set()
    cases = table[0]
    return {str(c) for c in cases.loc[cases["open"].astype(bool), "customer"]}


def stage_formula(policy: Policy, policy_rows: Mapping[str, int], r: int) -> str:
    """The stage tier of row r from its need and expected close, as `crm_core.tiers.stage_tiers`
    decides it: a clear need closing within stage_months.A months of AsOf (EDATE, whole months as
    the core counts them) is A, then B, C; a clear need later or with no date, or a potential
    need, is D; no need is E; a blank or unknown need word, blank. The horizons are the Policy
    sheet's cells (`policy_rows`: key -> its row there), so the tier follows a policy change."""
    need, close = f"{reg_col('need')}{r}", f"{reg_col('expected_close')}{r}"
    word = literal(f'TRIM({need}&"")', equals=False)

    def said(kind: str) -> str:
        return f'ISNUMBER(MATCH({word},{{{",".join(f"{chr(34)}{w}{chr(34)}" for w in NEED_WORDS[kind])}}},0))'

    months = sorted(policy.stage_months.items(), key=lambda kv: kv[1])
    tier = '"D"'
    for label, _ in reversed(months):
        row = policy_rows[f"stage_months.{label}"]
        tier = f'IF({close}<=EDATE(AsOf,Policy!$B${row}),"{label}",{tier})'
    clear = f'IF(ISNUMBER({close}),{tier},"D")'
    return f'=IF({said("clear")},{clear},IF({said("potential")},"D",IF({said("none")},"E","")))'


def write_register_rows(ctx: Ctx, sh: Sheet) -> None:
    reg = ctx.data.register
    reviewed = ctx.data.review.period.end.to_pydatetime()
    k, m, n_, flags = reg_col("open_balance"), reg_col("credit_line"), reg_col("utilisation"), reg_col("flags")
    lines, balances = reg["credit_line_cents"].tolist(), reg["open_balance_cents"].tolist()
    # the columns the review computes, by the core's frame key (money in cents: shown in units)
    columns = {c.key: _register_cells(c, reg[c.frame_key]) for c in cs.REVIEW_COLUMNS}
    # this year's allocation is the line until changed (a register built again after reallocations
    # carries both, crm_app.workbook.stored_values)
    allocated = reg["allocated_line_cents"] if "allocated_line_cents" in reg else reg["credit_line_cents"]
    columns["allocated_line"] = _register_cells(cs.Column("allocated_line", "", "", cs.MONEY), allocated)
    columns["last_reviewed"] = [reviewed] * len(reg)
    if "owner" in reg:  # typed in a register built again from its file, or the demo's
        columns["owner"] = [None if is_blank(o) else str(o) for o in reg["owner"]]
    kinds = {c.key: c.kind for c in rs.REGISTER_COLUMNS}
    placed = [(reg_col(key), REGISTER_FORMATS.get(kinds[key]), values) for key, values in columns.items()]
    file = register_customer_file(ctx.data)
    codes, complained = reg["customer"].astype(str).tolist(), open_complaints(ctx)
    for i, (line, bal) in enumerate(zip(lines, balances)):
        r = i + 2
        for col, fmt, values in placed:
            sh.value(f"{col}{r}", values[i], fmt)
        line, bal = int(line), int(bal)
        sh.formula(f"{n_}{r}", f'=IF(N({m}{r})>0,{k}{r}/{m}{r},"")', bal / line if line > 0 else "", PERCENT)
        duplicate, code = file.duplicates[i], codes[i]
        sh.formula(f"{flags}{r}", flags_formula(r, duplicate, complaints=True),
                   register_flags(bal, line, duplicate, code in complained))
    _write_customer_file(ctx, sh, file)


@dataclass(frozen=True)
class CustomerFileCells:
    """What the Register's customer file and stage columns show, in register order."""

    inputs: dict[str, list]  # input key -> cell values (None: blank)
    stage: list[str]  # the stage tier the formula gives ('' for a blank or unknown need)
    tenure: list[int | None]
    duplicates: list[str]  # the Flags column's duplicate note ('' for none)


def register_customer_file(data: RegisterData) -> CustomerFileCells:
    """The customer file columns (blank when the data carry none; trading since from the first
    ledger date) and what the core computes from them: the stage tier on AsOf, the tenure, the
    likely duplicates by name, phone and address."""
    inputs = {key: customer_file_column(data, key) for key in rs.CUSTOMER_FILE_INPUTS}
    inputs = {key: [_cell_date(v) if rs.CUSTOMER_FILE_BY_KEY[key].kind == cs.DATE else v for v in values]
              for key, values in inputs.items()}
    stage = stage_tiers([v if v is not None else "" for v in inputs["need"]], inputs["expected_close"],
                        data.as_of, policy=data.policy).tolist()
    tenure = tenure_years(inputs["trading_since"], data.as_of)
    reg = data.register
    duplicates = duplicate_flags(reg["customer"].tolist(), reg["customer_name"].tolist(),
                                 inputs["address"], inputs["phone"])
    return CustomerFileCells(inputs, stage, tenure, duplicates)


def _cell_date(value: object) -> object:
    if value is None:
        return None
    stamp = pd.Timestamp(value) if not isinstance(value, str) else pd.NaT
    return value if pd.isna(stamp) else stamp.to_pydatetime()


def tenure_formula(r: int) -> str:
    """Whole years from trading since to AsOf (`crm_core.analysis.tenure_years`)."""
    since = f"{reg_col('trading_since')}{r}"
    return f'=IF(OR(N({since})=0,N({since})>AsOf),"",DATEDIF({since},AsOf,"y"))'


def _write_customer_file(ctx: Ctx, sh: Sheet, file: CustomerFileCells) -> None:
    """The inputs (yellow, unlocked), the stage tier and tenure as formulas with the core's values."""
    stage, tenure = reg_col("stage_tier"), reg_col("tenure")
    fmts = {cs.DATE: DATE, cs.INT: WHOLE}
    for key, values in file.inputs.items():
        col, fmt = reg_col(key), fmts.get(rs.CUSTOMER_FILE_BY_KEY[key].kind)
        for i, value in enumerate(values):
            sh.value(f"{col}{i + 2}", value, fmt, unlocked=True)
    for i in range(len(file.stage)):
        r = i + 2
        sh.formula(f"{stage}{r}", stage_formula(ctx.policy, ctx.policy_rows, r), file.stage[i])
        sh.formula(f"{tenure}{r}", tenure_formula(r),
                   "" if file.tenure[i] is None else file.tenure[i], WHOLE)


def _register_cells(column: cs.Column, values: pd.Series) -> list:
    """A review column's cell values: money in currency units, rates with no value (NaN) blank."""
    if column.kind == cs.MONEY:
        return money_units(values.to_numpy(dtype="int64")).tolist()
    if column.kind == cs.RATE:
        return [None if np.isnan(v) else float(v) for v in values.tolist()]
    return values.tolist()


def register_conditional_formats(ctx: Ctx, sh: Sheet) -> None:
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import Font as F
    from openpyxl.styles import PatternFill as P

    k, m = reg_col("open_balance"), reg_col("credit_line")
    red = FormulaRule(formula=[f"AND(N(${m}2)>0,N(${k}2)>N(${m}2))"], fill=P("solid", fgColor="F8CBAD"),
                      font=F(color="9C0006"))
    sh.ws.conditional_formatting.add(f"A2:{reg_col('flags')}{max(ctx.cap, TEMPLATE_ROWS) + 1}", red)


# ----------------------------------------------------------------------------- Ledger
def type_list(*kinds: str) -> str:
    """An array constant of every word the reader takes for these document types
    ({"invoice","inv",...,"发票"}): the sheet's sums count a row typed 发票 as the review does.
    Excel's SUMIFS and MATCH compare text without case, as the reader does."""
    return "{" + ",".join(f'"{w}"' for kind in kinds for w in type_words(kind)) + "}"


def gross_formula(amount: str, kind: str, vat: str, day: str) -> str:
    """The gross amount of one ledger row, as the core computes it (`gross_cents`): invoices and
    credit notes grossed up at their rate (the row's own, else the policy's on its date) and
    rounded half-up per document; every other type (receipts, balances brought forward,
    write-offs) as booked. Same cent in Excel, LibreOffice and Gnumeric: the VAT on the amount's
    whole cents is rounded to 4 decimals of a cent before the cent, so a tie such as 4,712,250 x
    13% = 612,592.5 (612592.4999999999 in binary, which LibreOffice 7.4's ROUND takes down) is
    exactly .5 and goes up. Exact for VAT rates given to 0.01% and amounts up to 10^11."""
    rate = f'IF({vat}="",LOOKUP({day},VatFrom,VatRate),{vat})'
    cents = f"ROUND({amount}*100,0)"
    grossed = f"({cents}+ROUND(ROUND({cents}*{rate},4),0))/100"
    test = f"ISNUMBER(MATCH({kind},{type_list(*GROSSED_UP)},0))"
    return f'=IF({amount}="","",IF({test},{grossed},{amount}))'


LEDGER_PRINTED = 40  # ledger rows printed (the print area); the file holds them all


def build_ledger(ctx: Ctx, sh: Sheet) -> None:
    # one line each: a table's headers are its columns' names in structured references
    sh.header(1, 1, [h for _, h in LEDGER_COLUMNS])
    rows = ctx.data.rows if ctx.filled and ctx.ledger_on_sheet else None
    _ledger_widths(sh, rows)
    count = max(len(rows), 1) if rows is not None else 1
    gross_f = gross_formula(_this("amount"), _this("type"), _this("vat_rate"), _this("date"))
    if rows is not None and len(rows):
        sh.rows_xml(2, len(rows) + 1, len(LEDGER_COLUMNS), ledger_rows_xml(sh, rows, ctx.data.gross_cents, gross_f))
    else:  # the table's one row: empty, its gross column ready for what the user types
        sh.formula("I2", gross_f, "" if ctx.filled else SKIP, MONEY)
    note = ledger_note(ctx)
    if note and not ctx.ledger_on_sheet:  # beside the table, not in it: the readers see no column
        sh.label("K1", note, note=True)
        sh.widths({"K": 120})
    ref = f"A1:{LEDGER_LAST}{count + 1}"
    table = Table(displayName=LEDGER_TABLE, ref=ref)
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    table._initialise_columns()
    for column, (key, header) in zip(table.tableColumns, LEDGER_COLUMNS):
        column.name = header
        if key == "gross":
            column.calculatedColumnFormula = TableFormula(attr_text=gross_f[1:])
    sh.ws.add_table(table)
    _ledger_validations(ctx)
    sh.ws.freeze_panes = "A2"
    _ledger_print(ctx, sh, count)


def _ledger_widths(sh: Sheet, rows: pd.DataFrame | None) -> None:
    """Widths for the header and for the widest amount, code and name the rows hold."""
    widths = {"A": 12, "B": 13, "C": 22, "D": 14, "E": 15, "F": 16, "G": 12, "H": 10, "I": 15, "J": 16}
    if rows is not None and len(rows):
        cents = int(np.abs(rows["amount_cents"].to_numpy(dtype="int64")).max())
        biggest = units(cents + cents // 4)  # the gross column adds VAT
        widths["E"] = widths["I"] = max(15, len(f"-{biggest:,.2f}") + 2)
        for col, key in (("B", "customer"), ("C", "customer_name"), ("F", "invoice_no"), ("J", "applies_to")):
            if key not in rows:
                continue
            sample = rows[key].head(layout.SAMPLE_ROWS).astype(str)
            widths[col] = min(max(widths[col], max((layout.text_width(v) for v in sample), default=0) + 2), 40)
    for col, (_, head) in zip("ABCDEFGHIJ", LEDGER_COLUMNS):
        widths[col] = max(widths[col], layout.text_width(head) + 4)  # room for the filter button
    sh.widths(widths)


def ledger_type_words() -> list[str]:
    """Every type word the ledger reader accepts (crm_core.ledger.TYPE_WORDS), the five canonical
    ones first: what the Ledger sheet's type list offers."""
    return list(dict.fromkeys([*LEDGER_TYPES, *TYPE_WORDS]))


def _ledger_validations(ctx: Ctx) -> None:
    """The type list, dates and amounts, on whole columns: the table grows with what is pasted."""
    last = workbook_sheet.SHEET_ROWS
    words = ", ".join(LEDGER_TYPES)
    ctx.validate("Ledger", f"D2:D{last}", DataValidation(
        type="list", formula1="LedgerTypes", allow_blank=True, showErrorMessage=True, showInputMessage=True,
        errorTitle="类型 Type", error=f"{words}, 发票, 回款, 红字 ... (见 Lists 表 / see the Lists sheet)",
        promptTitle="类型 Type", prompt=f"{words}; 本表公式按这五种写法汇总 / the sheet's sums read these five"))
    for col in ("A", "G"):
        ctx.validate("Ledger", f"{col}2:{col}{last}", DataValidation(
            type="date", operator="greaterThan", formula1="1", allow_blank=True, showErrorMessage=True,
            error="A date / 日期"))
    ctx.validate("Ledger", f"E2:E{last}", DataValidation(type="decimal", operator="between", formula1="-1E+15",
                                                         formula2="1E+15", allow_blank=True,
                                                         showErrorMessage=True, error="An amount / 金额"))


def _ledger_print(ctx: Ctx, sh: Sheet, count: int) -> None:
    """Only the first rows print: a ledger of thousands of rows is read on screen or in its file."""
    shown, total = min(count, LEDGER_PRINTED), ctx.ledger_rows if ctx.ledger_on_sheet else 0
    extra = f" · 打印前 {shown:,} 行，共 {total:,} 行 / first {shown:,} of {total:,} rows printed" if total > shown else ""
    layout.print_setup(sh, landscape=True, title_rows="1:1", area=f"A1:{LEDGER_LAST}{shown + 1}", footer=footer(ctx) + extra)


def _this(key: str) -> str:
    return f"{LEDGER_TABLE}[[#This Row],[{dict(LEDGER_COLUMNS)[key]}]]"


LEDGER_BLOCK_ROWS = 100_000  # rows rendered at a time (about 90 MB of XML)


def ledger_rows_xml(sh: Sheet, rows: pd.DataFrame, gross_cents: np.ndarray, formula: str) -> Iterator[bytes]:
    """The Ledger sheet's rows 2.. as XML: date, code, name, type, amount, invoice number, due
    date, VAT rate, and the gross formula with the core's gross amount cached. Built column by
    column with Arrow's string kernels, a block of rows at a time, the next block in a second
    thread while the last is compressed (both let go of the GIL): a million rows in seconds."""
    date_s, money_s = sh.style_attr(DATE), sh.style_attr(MONEY)  # styles first: they are written before the rows
    return _ahead(_ledger_blocks(rows, gross_cents, formula, date_s, money_s, sh.strings))


def _ahead(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """`blocks`, each computed in a worker thread while the one before is consumed."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="crm-ledger-xml") as pool:
        pending = pool.submit(next, blocks, None)
        while (block := pending.result()) is not None:
            pending = pool.submit(next, blocks, None)
            yield block


def _ledger_blocks(rows: pd.DataFrame, gross_cents: np.ndarray, formula: str, date_s: str,
                   money_s: str, strings: SharedStrings) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.compute as pc

    gross_f = f"<f>{xml_text(formula[1:])}</f>"
    texts = {key: _text_cells(rows[key], strings) for key in ("customer", "customer_name", "type", "invoice_no",
                                                              "applies_to") if key in rows}
    for start in range(0, len(rows), LEDGER_BLOCK_ROWS):
        block = slice(start, start + LEDGER_BLOCK_ROWS)
        part = rows.iloc[block]
        r = pa.array(np.arange(start + 2, start + 2 + len(part), dtype="int64")).cast(pa.string())

        def cell(col: str, style: str, inner, r=r):
            joined = pc.binary_join_element_wise(f'<c r="{col}', r, f'"{style}', inner, "</c>", "")
            return pc.fill_null(joined, "")  # no value: no cell

        cells = [
            cell("A", date_s, pc.binary_join_element_wise("><v>", _serials(part["date"]), "</v>", "")),
            *(cell(col, "", texts[key][block]) for col, key in (("B", "customer"), ("C", "customer_name"),
                                                                 ("D", "type"))),
            cell("E", money_s, _number_v(money_units(part["amount_cents"].to_numpy(dtype="int64")))),
            cell("F", "", texts["invoice_no"][block]),
            cell("G", date_s, pc.binary_join_element_wise("><v>", _serials(part["due_date"]), "</v>", "")),
            cell("H", "", _number_v(part["vat_rate"].to_numpy(dtype="float64"))),
            cell("I", money_s, _number_v(money_units(np.asarray(gross_cents[block], dtype="int64")), gross_f)),
            *([cell("J", "", texts["applies_to"][block])] if "applies_to" in texts else []),
        ]
        xml = pc.binary_join_element_wise('<row r="', r, '">', *cells, "</row>", "")
        yield _string_bytes(xml)


def _serials(days: pd.Series):
    """Excel date numbers of a date column as Arrow strings (null for no date)."""
    import pyarrow as pa

    values = days.to_numpy(dtype="datetime64[ns]")
    serial = values.astype("datetime64[D]").astype("int64") + 25569  # 1970-01-01 is day 25569
    return pa.array(serial, mask=np.isnat(values)).cast(pa.string())


def _number_v(values: np.ndarray, formula: str = ""):
    """'><f>..</f><v>x</v>' per number, shortest text that reads back the same double (null
    for NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(values, mask=np.isnan(values)).cast(pa.string())
    return pc.binary_join_element_wise(f">{formula}<v>", text, "</v>", "")


def _text_cells(values: pd.Series, strings: SharedStrings):
    """' t="s"><v>n</v>' per value, its index in the shared strings (null for a blank): each
    distinct value looked up once."""
    import pyarrow as pa

    codes, distinct = pd.factorize(values.astype("object"), use_na_sentinel=True)
    shown = pa.array([_shared(v, strings) for v in distinct.tolist()], type=pa.string())
    cells = shown.take(pa.array(codes, mask=codes < 0))
    # each cell counts as a reference, not each distinct value
    strings.references += (len(cells) - cells.null_count) - (len(shown) - shown.null_count)
    return cells


def _shared(value: object, strings: SharedStrings) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return strings.cell(str(value))


def _string_bytes(array) -> bytes:
    """The UTF-8 bytes of all the strings of an Arrow string array, end to end (no nulls)."""
    import pyarrow as pa

    array = array.cast(pa.large_string()) if array.type != pa.large_string() else array
    offsets = np.frombuffer(array.buffers()[1], dtype="int64")[array.offset:array.offset + len(array) + 1]
    return array.buffers()[2][int(offsets[0]):int(offsets[-1])].to_pybytes()


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


# How the Policy sheet shows each key's value: rates and shares as percentages, counts of days,
# batches or customers as counts, an amount as money, a weight with two decimals.
POLICY_PERCENT_KEYS = ("vat.", "rate_cutoff.", "pareto_cutoff.", "rank_share.", "cut_low_use", "cut_low_rate",
                       "credit_ratio", "raise_rate_gain", "raise_sales_growth", "commission_rate", "funnel_rate.")
POLICY_COUNT_KEYS = ("payment_terms_days", "reallocations_per_quarter", "overlap_top_n", "follow_up_days.",
                     "service_response_days.", "service_resolve_days.",
                     "aging_bucket.", "kpi_months", "long_standing_years", "sleeping_after_days", "lost_after_days")
POLICY_FORMATS = {"credit_rounding": MONEY, "tier_weight.": DECIMAL, "stage_months.": "0.0"}  # months: 1.5 is one and a half
POLICY_WIDTHS = {"A": 28, "B": 14, "C": 80}


def policy_format(key: str) -> str | None:
    if key.startswith(POLICY_PERCENT_KEYS):
        return PERCENT
    if key.startswith(POLICY_COUNT_KEYS):
        return COUNT
    return next((fmt for prefix, fmt in POLICY_FORMATS.items() if key.startswith(prefix)), None)


def policy_meaning(key: str, defaults: dict[str, object]) -> str:
    """What a Policy key means (crm_core.policy.KEY_NOTES, by key or section) and its default."""
    meaning = KEY_NOTES.get(key) or KEY_NOTES.get(key.split(".", 1)[0], "")
    if key not in defaults:
        return f"{meaning} · 默认无此项 / not in the default policy"
    return f"{meaning} · 默认 default: {_shown_default(key, defaults[key])}"


def _shown_default(key: str, value: object) -> str:
    fmt = policy_format(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if fmt == PERCENT:
        return f"{value * 100:g}%"
    return f"{value:,.2f}" if fmt in (MONEY, DECIMAL) else f"{value:g}"


def build_policy(ctx: Ctx, sh: Sheet) -> None:
    # "# 键": the add-in's policy reader skips a first row whose key starts with '#'
    layout.header(sh, 1, 1, ["# 键 key", "值 value", "说明 Meaning (默认 default)"])
    sh.widths(POLICY_WIDTHS)
    defaults = dict(Policy().to_pairs())
    for r, (key, value) in enumerate(policy_pairs(ctx.policy), start=2):
        sh.label(f"A{r}", key)
        sh.value(f"B{r}", value, policy_format(key), unlocked=True)
        meaning = policy_meaning(key, defaults)
        layout.note(sh, f"C{r}", meaning, kind="body", lines=layout.note_lines(meaning, POLICY_WIDTHS["C"]))
        for col in "AB":  # level with the meaning's first line
            layout.restyle(sh, f"{col}{r}", align="top")
        ctx.policy_rows[key] = r
    last = 1 + len(ctx.policy_rows)
    ctx.name("PolicyTable", "Policy", f"$A$1:$B${last}")
    for key, name in (("credit_ratio", "CreditRatio"), ("unrated_label", "Unrated"), ("lowest_tier", "LowestTier"),
                      ("pareto_rest", "ParetoRest"), ("tier_mode", "TierMode"), ("overlap_top_n", "TopN")):
        ctx.name(name, "Policy", f"$B${ctx.policy_rows[key]}")
    sh.ws.freeze_panes = "A2"
    layout.print_setup(sh, title_rows="1:1", footer=footer(ctx))
    sh.protect()


def _prefixed(ctx: Ctx, prefix: str, order: list[str] | None = None) -> list[int]:
    rows = {k.split(".", 1)[1]: r for k, r in ctx.policy_rows.items() if k.startswith(prefix + ".")}
    return [rows[k] for k in (order or list(rows))]


def build_lists(ctx: Ctx, sh: Sheet) -> None:
    """Hidden helper sheet: validation lists and policy tables in the shape formulas need."""
    p = ctx.policy
    cut_rows = _prefixed(ctx, "rate_cutoff", p.rate_tier_labels()[:-1])
    tiers = _rate_tier_formulas(ctx, cut_rows)
    tier_values = tier_labels(p)
    layout.header(sh, 1, 1, ["回款等级 Rate tiers", "ABC等级 Pareto tiers", "阶段等级 Stage tiers", "等级 Tier",
                             "下限 Cut-off", "", "", "生效日期 VAT from", "税率 VAT", "等级 Tier", "权重 Weight",
                             "阶段 Stage", "跟进天数 Follow-up days", "", "排名等级 Rank tier",
                             "累计比例 Cumulative share", "", "台账类型 Ledger type words"])
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
    for i, (r, tier) in enumerate(zip(cut_rows, p.rate_tier_labels())):
        sh.formula(f"D{i + 2}", f"=MID(Policy!$A${r},13,20)", ctx.cached(tier))
        sh.formula(f"E{i + 2}", f"=Policy!$B${r}", ctx.cached(p.rate_cutoffs[tier]), PERCENT)
    _policy_table(ctx, sh, "vat", ("H", "I"), "VatFrom", "VatRate", date_key=True)
    _policy_table(ctx, sh, "tier_weight", ("J", "K"), "WeightTier", "WeightValue")
    _policy_table(ctx, sh, "follow_up_days", ("L", "M"), "FollowTier", "FollowDays")
    _rank_shares(ctx, sh)
    words = ledger_type_words()
    for i, word in enumerate(words):
        sh.value(f"{TYPE_WORDS_COLUMN}{i + 2}", word)
    ctx.name("LedgerTypes", "Lists", f"${TYPE_WORDS_COLUMN}$2:${TYPE_WORDS_COLUMN}${len(words) + 1}")
    layout.fit_widths(sh, least={"H": 12})
    layout.print_setup(sh, landscape=True, title_rows="1:1", footer=footer(ctx))
    sh.ws.sheet_state = "hidden"
    sh.protect()


def _rate_tier_formulas(ctx: Ctx, cut_rows: list[int]) -> list[str]:
    """Lists!A, the tiers a customer can get by rate, best first, then the unrated label: the
    cut-offs' tiers and the lowest tier, or in rank mode the rank shares' tiers, as TierMode on the
    Policy sheet says. The review sheets summarise by these rows, so they follow the policy's mode;
    as many rows as the mode the workbook was built in has (a sheet edit of TierMode to a mode with
    more tiers needs BuildReview)."""
    by_cutoff = [f"MID(Policy!$A${r},13,20)" for r in cut_rows] + ["LowestTier"]
    by_rank = [f"MID(Policy!$A${r},12,20)" for r in _prefixed(ctx, "rank_share")]
    count = len(rate_tier_order(ctx.policy))
    pad = ['""'] * count
    return [f'=IF(TierMode="rank",{rank},{cut})' for rank, cut in zip((by_rank + pad)[:count], (by_cutoff + pad)[:count])
            ] + ["=Unrated"]


TYPE_WORDS_COLUMN = "R"  # Lists: the ledger's type words (LedgerTypes), the Ledger sheet's type list


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
        sh.formula(f"{share_col}{r}", f"={above}Policy!$B${src}", ctx.cached(float(cumulative[i])), PERCENT)


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
        sh.formula(f"{cols[1]}{r}", f"=Policy!$B${src}", ctx.cached(value), policy_format(key))
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
    return (f'ROUND(SUM(SUMIFS({L("amount")},{who}{L("type")},{type_list("invoice")},{period}))'
            f'-SUM(SUMIFS({L("amount")},{who}{L("type")},{type_list("credit_note")},{period})),2)')


# The budget to the cent as the core's `credit_budget_cents` gives it (half-up, exact in decimal):
# net sales in whole cents times ratio x (1 + VAT) in millionths, split at a million cents so that
# every product is an exact whole number in a spreadsheet's floating point, whatever the size
# (the remainder as N - 10^6 x INT(N / 10^6): old Excel's MOD refuses quotients from 2^27).
_NET_CENTS = "ROUND(MAX(NetSalesTotal,0)*100,0)"
_MILLIONS = f"INT({_NET_CENTS}/1000000)"
_FACTOR = "ROUND(BudgetRatio*(1+BudgetVat)*1000000,0)"
BUDGET_FORMULA = (f"=({_MILLIONS}*{_FACTOR}"
                  f"+ROUND(({_NET_CENTS}-{_MILLIONS}*1000000)*{_FACTOR}/1000000,0))/100")
ADDIN_VALUE = "加载项数值：台账不在 Ledger 表 / add-in value: the ledger is not on the Ledger sheet"
BUDGET_HOW = "= 净销售额 x 赊销比例 x (1 + 增值税率) / net sales x credit ratio x (1 + VAT), to the cent"


def build_credit(ctx: Ctx, sh: Sheet) -> None:
    d = ctx.data
    native = ctx.ledger_on_sheet
    sh.label("A1", "赊销额度 Credit budget and lines", title=True)
    year = d.review.period.start.year if d else None
    budget = units(d.review.budget_cents) if d else None
    lines_total = units(int(d.register["credit_line_cents"].sum())) if d else None
    rows = [
        ("ReviewYear", "评审年度 Review year", "=YEAR(TODAY())-1" if not d else year, None, True),
        ("PeriodStart", "期间开始 Period start", "=DATE(ReviewYear,1,1)", d and d.review.period.start.to_pydatetime(), False),
        ("PeriodEnd", "期间结束 Period end", "=DATE(ReviewYear,12,31)", d and d.review.period.end.to_pydatetime(), False),
        ("AsOf", "评估日期 As of (ageing, follow-ups)", "=PeriodEnd", d and d.as_of.to_pydatetime(), True),
        ("NetSalesTotal", "净销售额合计 Net sales (ledger)",
         "=" + net_sales_total_formula() if native else units(d.review.net_sales_cents),
         d and units(d.review.net_sales_cents), False),
        ("BudgetVat", "预算年度增值税率 VAT for the budget year", "=LOOKUP(DATE(ReviewYear+1,1,1),VatFrom,VatRate)", d and d.review.vat_rate, False),
        ("BudgetRatio", "赊销比例 Credit ratio", "=CreditRatio", d and ctx.policy.credit_ratio, False),
        ("Budget", "赊销额度预算 Credit budget", BUDGET_FORMULA, budget, False),
        (None, "算式 How", BUDGET_HOW, None, False),
        ("LowUse", "额度闲置阈值 Line far above use below", LOW_USE, None, True),
        ("LinesTotal", "额度合计 Credit lines total", f"=SUM({ctx.reg_range('credit_line')})", lines_total, False),
        ("LinesDiff", "额度合计-预算 Lines minus budget", "=ROUND(LinesTotal-Budget,2)", d and 0.0, False),
        ("LinesCheck", "额度=预算 Lines equal the budget", '=IF(LinesDiff=0,"OK","≠")', d and "OK", False),
    ]
    fmts = {"PeriodStart": DATE, "PeriodEnd": DATE, "AsOf": DATE, "BudgetVat": PERCENT, "BudgetRatio": PERCENT,
            "LowUse": PERCENT, "ReviewYear": WHOLE}
    for r, (name, label, content, cached, is_input) in enumerate(rows, start=3):
        sh.label(f"B{r}", label)
        fmt = fmts.get(name, MONEY)
        if name is None:  # text beside the figures, overflowing into the empty cells right of it
            sh.label(f"C{r}", content)
            continue
        if isinstance(content, str) and content.startswith("="):
            sh.formula(f"C{r}", content, cached if d else SKIP, fmt, unlocked=is_input)
        else:
            sh.value(f"C{r}", content, fmt, unlocked=is_input)
        if name == "NetSalesTotal" and not native:
            sh.style(f"C{r}", fill=ADDIN_FILL)
            sh.label(f"D{r}", ADDIN_VALUE, note=True)
        ctx.name(name, "Credit", f"$C${r}")
    ctx.validate("Credit", "C3", DataValidation(type="whole", operator="between", formula1="1990", formula2="2200",
                                                showErrorMessage=True, error="A year / 年度"))
    ctx.validate("Credit", "C6", DataValidation(type="date", operator="greaterThan", formula1="1",
                                                showErrorMessage=True, error="A date / 日期"))
    _credit_tiers(ctx, sh)
    _credit_lines(ctx, sh)
    # not measured: the text rows that overflow to the right (the budget's formula, section titles)
    texts = {3 + [r[0] for r in rows].index(None), 7, CREDIT_TIER_ROW - 1, credit_lines_header_row(ctx) - 1}
    money = len(f"{units(d.review.net_sales_cents):,.2f}") + 3 if d else 16
    layout.fit_widths(sh, least={"C": max(16, money), **{c: 15 for c in "DEFGHIJ"}}, fixed={"A": 3}, skip=texts)
    # the budget and its split print; the lines per customer are the Register's, printed there
    last = CREDIT_TIER_ROW + len(tier_labels(ctx.policy))
    layout.print_setup(sh, landscape=True, area=f"A1:J{last}",
                       footer=footer(ctx) + " · 客户额度见 Register 表 / lines per customer: see the Register")
    sh.protect()


def _credit_tiers(ctx: Ctx, sh: Sheet) -> None:
    h = CREDIT_TIER_ROW
    sh.label(f"B{h - 1}", "按等级分配 Split by tier (sales share x tier weight)")
    layout.header(sh, h, 2, ["等级 Tier", "权重 Weight", "净销售额 Net sales", "加权基数 Weighted basis", "占比 Share",
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
        # a tier the Policy sheet gives no weight is said, never a silent 0 (0 = cash on delivery);
        # unrated customers (no sales, no rate) get no line unless the policy weights them
        sh.formula(f"C{r}", f'=IFERROR(INDEX(WeightValue,MATCH(B{r},WeightTier,0)),IF(B{r}=Unrated,0,"无权重 no weight"))',
                   get(weights[tier]), DECIMAL)
        sh.formula(f"D{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_net_sales)", get(units(sales)), MONEY)
        sh.formula(f"E{r}", f"=D{r}*C{r}", get(units(sales * weights[tier])), MONEY)
        sh.formula(f"F{r}", f"=IF(SUM($E${first}:$E${last})>0,E{r}/SUM($E${first}:$E${last}),0)", get(share), PERCENT)
        sh.formula(f"G{r}", f"=ROUND(Budget*F{r},2)", get(units(round(ctx.data.review.budget_cents * share))
                                                             if ctx.filled else 0), MONEY)
        sh.formula(f"H{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_allocated_line)",
                   get(units(s["allocated_cents"]) if ctx.filled else 0), MONEY)
        sh.formula(f"I{r}", f"=SUMIF(Reg_rate_tier,B{r},Reg_credit_line)",
                   get(units(s["line_cents"]) if ctx.filled else 0), MONEY)
        drift = int(s["line_cents"]) - int(s["allocated_cents"]) if ctx.filled else 0
        sh.formula(f"J{r}", f"=ROUND(I{r}-H{r},2)", get(units(drift)), MONEY)


def _credit_lines(ctx: Ctx, sh: Sheet) -> None:
    h = credit_lines_header_row(ctx)
    sh.label(f"B{h - 1}", "客户额度 Lines per customer (from the Register)")
    layout.header(sh, h, 2, ["客户编码 Code", "回款等级 Tier", "净销售额 Net sales", "年度分配 Yearly allocation",
                             "现行额度 Credit line"])
    reg = ctx.data.register if ctx.filled else None
    cols = [("B", "customer", None), ("C", "rate_tier", None), ("D", "net_sales", MONEY),
            ("E", "allocated_line", MONEY), ("F", "credit_line", MONEY)]
    cached = {}
    if reg is not None:
        lines = [units(v) for v in reg["credit_line_cents"].tolist()]
        cached = {"customer": reg["customer"].tolist(), "rate_tier": reg["rate_tier"].tolist(),
                  "net_sales": [units(v) for v in reg["net_sales_cents"].tolist()],
                  "allocated_line": lines, "credit_line": lines}
    placed = [(col, reg_col(key), cached.get(key), fmt) for col, key, fmt in cols]
    for i, r in enumerate(range(h + 1, h + 1 + ctx.cap)):
        src = i + 2
        for col, rc, values, fmt in placed:
            value = SKIP if values is None else (values[i] if i < ctx.n else "")
            sh.formula(f"{col}{r}", f'=IF(Register!${rc}${src}="","",Register!${rc}${src})', value, fmt)


# ----------------------------------------------------------------------------- Reallocation
FORM_ROW = 3  # first field row
REALLOCATION_NOTE = ("G 列逐行检查；整批检查（季度次数、审批角色、等级偏离）请运行 CheckReallocation 宏（需要 crm-addin）/ "
                     "Column G checks each line; the CheckReallocation macro (needs crm-addin) checks the whole batch")
def _side_fields(ctx: Ctx, sh: Sheet) -> None:
    """Beside the form: the end date of a temporary batch, and the names and date the SignOff
    macro records (each label with its value to its right, read by label)."""
    sh.widths({"L": 24, "M": 22})
    sh.label(f"L{FORM_ROW - 1}", "临时调整 / 签字确认 Temporary batch · sign-off", head=True)
    _form_fields(ctx, sh, [UNTIL_FIELD, *SIGNER_FIELDS], "L", "M")


def _form_fields(ctx: Ctx, sh: Sheet, columns: list[cs.Column], label: str, value: str) -> None:
    """Labelled input fields from FORM_ROW down: the label in column `label`, the value to its right."""
    for r, col in enumerate(columns, start=FORM_ROW):
        sh.label(f"{label}{r}", col.label)
        sh.value(f"{value}{r}", None, DATE if col.kind == "date" else None, unlocked=True)
        if col.kind == "date":
            ctx.validate("Reallocation", f"{value}{r}", DataValidation(
                type="date", operator="greaterThan", formula1="1", allow_blank=True, showErrorMessage=True,
                error="A date / 日期"))


def request_header_row() -> int:
    return FORM_ROW + len(rs.REALLOCATION_FIELDS) + 2


def build_reallocation(ctx: Ctx, sh: Sheet) -> None:
    sh.label("A1", "赊销额度调整申请 Credit-line reallocation request", title=True)
    sh.widths({"A": 22, "B": 18, "C": 32, "D": 16, "E": 16, "F": 12, "G": 26, "H": 3, "I": 30, "J": 16})
    _form_fields(ctx, sh, rs.REALLOCATION_FIELDS, "A", "B")
    _side_fields(ctx, sh)
    h = request_header_row()
    first, last = h + 1, h + REQUEST_ROWS
    # The add-in's check (crm_check_reallocation) is not a column here: without the add-in it would
    # show #NAME? as soon as a line is typed. Column G checks each line natively; the whole batch
    # (allowance per quarter, roles, tier drift) is checked by the CheckReallocation macro.
    layout.note(sh, f"A{h - 1}", REALLOCATION_NOTE, kind="body", wrap=False)
    layout.header(sh, h, 1, [c.heading for c in rs.REQUEST_COLUMNS] + ["原额度 Old line", "新额度 New line",
                                                                      "回款等级 Tier", "检查 Check"])
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
        ("调整行数 Lines", f'=COUNTIF(A{first}:A{last},"?*")', 0, COUNT),
        ("有问题的行 Lines with a problem",
         f'=COUNTIF(G{first}:G{last},"?*")-COUNTIF(G{first}:G{last},"OK")', 0, COUNT),
    ]
    for i, (label, f, cached, fmt) in enumerate(checks):
        r = FORM_ROW + i
        sh.label(f"I{r}", label)
        sh.formula(f"J{r}", f, ctx.cached(cached), fmt)
    layout.print_setup(sh, landscape=True, one_page=True, footer=footer(ctx))
    sh.protect()


# ----------------------------------------------------------------------------- Audit + About
# The Audit sheet's widths by column key: an ISO timestamp, a batch id, codes, amounts, reasons
# (wrapped), people, dates and the 64-digit hashes.
AUDIT_WIDTHS = {"timestamp": 20, "batch_id": 22, "customer": 12, "old_line": 15, "change": 15, "new_line": 15,
                "reason": 36, "requester": 12, "approver": 12, "recorder": 12, "request_date": 12,
                "approval_date": 12, "override_reason": 30, "prev_hash": 18, "hash": 18}
AUDIT_FORMATS = {"money": MONEY, "date": DATE}


def build_audit(ctx: Ctx, sh: Sheet) -> None:
    layout.header(sh, 1, 1, [c.heading for c in rs.AUDIT_COLUMNS])
    for i, col in enumerate(rs.AUDIT_COLUMNS, start=1):
        letter = get_column_letter(i)
        sh.widths({letter: AUDIT_WIDTHS.get(col.key, 14)})
        # the rows the workflow appends take the column's look: amounts, dates, reasons wrapped
        dim = sh.ws.column_dimensions[letter]
        if col.kind in AUDIT_FORMATS:
            dim.number_format = AUDIT_FORMATS[col.kind]
        if col.key in ("reason", "override_reason"):
            dim.alignment = workbook_sheet.WRAP_TOP
    sh.ws.freeze_panes = "A2"
    layout.print_setup(sh, landscape=True, title_rows="1:1", footer=footer(ctx))
    sh.protect()


# About rows beyond the register contract (rs.ABOUT_KEYS): where the ledger is and what was left out.
ABOUT_LEDGER_KEYS = {
    "ledger_rows": "台账行数 Ledger rows reviewed",
    "ledger_rows_on_sheet": "台账表行数 Ledger rows on the Ledger sheet (fewer: the ledger is longer than a sheet)",
    "ledger_source": "台账来源 Where the ledger rows are",
    "ledger_note": "台账说明 Ledger note",
    "issues": "台账问题 Problems found in the ledger (listed on the Issues sheet)",
    "rows_skipped": "跳过的行 Ledger rows skipped as unusable (see the Issues sheet)",
}


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
        "signed_off": (d.signed_off if d else "") or rs.UNSIGNED,
        "ledger_rows": ctx.ledger_rows if d else None,
        "ledger_rows_on_sheet": (ctx.ledger_rows if ctx.ledger_on_sheet else 0) if d else None,
        "ledger_source": (d.source or None) if d else None,
        "ledger_note": ledger_note(ctx),
        "issues": len(d.issues) if d else None,
        "rows_skipped": d.rows_skipped if d else None,
    }


ABOUT_FORMATS = {"budget": MONEY, "template_version": WHOLE, "register_version": WHOLE, "budget_year": WHOLE,
                 "review_rows": COUNT, "ledger_rows": COUNT, "ledger_rows_on_sheet": COUNT, "issues": COUNT,
                 "rows_skipped": COUNT}
ABOUT_WIDTHS = {"A": 22, "B": 44, "C": 60}


def build_about(ctx: Ctx, sh: Sheet) -> None:
    layout.header(sh, 1, 1, ["键 key", "值 value", "说明 meaning"])
    sh.widths(ABOUT_WIDTHS)
    meanings = rs.ABOUT_KEYS | ABOUT_LEDGER_KEYS
    # audit_head is absent until the first reallocation batch writes it
    for r, (key, value) in enumerate(about_values(ctx).items(), start=2):
        sh.label(f"A{r}", key)
        lines = max(layout.note_lines(str(value or ""), ABOUT_WIDTHS["B"]),
                    layout.note_lines(meanings[key], ABOUT_WIDTHS["C"]))
        if isinstance(value, str) and lines > 1:  # a long note or path: wrapped, the row as tall as it
            layout.note(sh, f"B{r}", value, kind="body")
        else:
            sh.value(f"B{r}", value, ABOUT_FORMATS.get(key))
        layout.note(sh, f"C{r}", meanings[key], kind="body", lines=lines if lines > 1 else None)
    layout.print_setup(sh, title_rows="1:1", footer=footer(ctx))
    sh.protect()


ISSUE_HEADERS = {"source": "来源 Source", "row": "行 Row", "column": "列 Column", "severity": "严重性 Severity",
                 "code": "代码 Code", "message": "说明 Message"}


def build_issues(ctx: Ctx, sh: Sheet) -> None:
    """Every problem found in the ledger, one a row (the rows `--skip-bad-rows` left out among
    them: severity error), as `crm_core.issues.issues_frame` gives them."""
    layout.header(sh, 1, 1, list(ISSUE_HEADERS.values()))
    sh.widths({"A": 18, "B": 9, "C": 14, "D": 10, "E": 18, "F": 90, "H": 70})
    sh.ws.freeze_panes = "A2"
    shown = ctx.data.issues[:min(ISSUE_ROWS, workbook_sheet.SHEET_ROWS - 1)] if ctx.filled else []
    layout.print_setup(sh, landscape=True, title_rows="1:1", area=f"A1:F{len(shown) + 1}", footer=footer(ctx))
    if not ctx.filled:
        sh.protect()
        return
    issues = ctx.data.issues
    shown = issues[:min(ISSUE_ROWS, workbook_sheet.SHEET_ROWS - 1)]
    table = issues_frame(shown)
    columns = [table[key].tolist() for key in ISSUE_HEADERS]
    for i, record in enumerate(zip(*columns)):
        r = i + 2
        for col, value in zip("ABCDEF", record):
            if col == "B":
                value = None if value is None or value != value else int(value)
            sh.value(f"{col}{r}", value if value != "" else None, WHOLE if col == "B" else None)
    sh.label("H1", issues_note(ctx), note=bool(issues))
    if len(shown) < len(issues):
        sh.label("H2", f"只列出前 {len(shown):,} 个，另有 {len(issues) - len(shown):,} 个未列出 / the first {len(shown):,} "
                       f"are listed; {len(issues) - len(shown):,} more are not", note=True)
    sh.ws.auto_filter.ref = f"A1:F{max(len(shown) + 1, 2)}"
    sh.protect()
