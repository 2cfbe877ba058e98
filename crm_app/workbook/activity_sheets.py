"""The sales side's input sheets: Contacts (客户追踪日志, the contact log the FollowUps sheet reads)
and Service (服务记录: complaints and requests against the service level of the customer's stage
tier, with its review beside the log).

Users type the logs (yellow, validated); the Service sheet's own columns and review are native
formulas (LibreOffice-safe) with the core's values cached (crm_core.contacts, crm_core.service).
The workflow's rewrites load and save the file with openpyxl, so what users typed stays.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
from openpyxl.formatting.rule import CellIsRule
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from crm_app.register import schema as rs
from crm_app.workbook import layout
from crm_app.workbook.data import RegisterData
from crm_app.workbook.register_sheets import Ctx, footer, literal
from crm_app.workbook.xml_sheet import COUNT, DATE, DECIMAL, SKIP, WHOLE, Sheet, excel_serial
from crm_core.contacts import (
    CHANNELS,
    CONTACT_COLUMNS,
    Activity,
    follow_ups,
    overdue_by_owner,
    read_contacts,
)
from crm_core.demo_activity import demo_activity, demo_customer_file
from crm_core.service import (
    NO_TIER,
    SERVICE_COLUMNS,
    SERVICE_TIERS,
    TOTAL,
    open_complaint_customers,
    read_service,
    service_cases,
    service_review,
)

LOG_ROWS = 1000  # input rows of an empty log; a filled one has its rows and as many again
DAYS = "#,##0.0"
DATE_TIME = "yyyy-mm-dd hh:mm"
CHANNEL_LIST = '"' + ",".join(CHANNELS) + '"'


# ----------------------------------------------------------------------------- what the sheets hold
def activity(ctx: Ctx) -> Activity:
    """The logs of a filled register (empty ones for the template or a register without them)."""
    found = getattr(ctx.data, "activity", None) if ctx.filled else None
    if found is not None:
        return found
    return Activity(pd.DataFrame(columns=[c.key for c in CONTACT_COLUMNS]),
                    pd.DataFrame(columns=[c.key for c in SERVICE_COLUMNS]))


def log_rows(frame: pd.DataFrame) -> int:
    """Input rows laid out for a log of these rows."""
    return max(LOG_ROWS, 2 * len(frame))


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """A log as the sheet's records: its rows numbered as the sheet shows them (from row 2)."""
    return frame.reset_index(drop=True).assign(row=np.arange(2, len(frame) + 2))


def register_stages(ctx: Ctx) -> tuple[list[str], list[str], list[str]]:
    """Codes, stage tiers (as the Register's formula gives them) and owners, in register order."""
    from crm_app.workbook.register_sheets import register_customer_file

    reg = ctx.data.register
    codes = reg["customer"].astype(str).tolist()
    stages = [str(s) for s in register_customer_file(ctx.data).stage]
    owners = [str(o) if isinstance(o, str) else "" for o in reg["owner"]] if "owner" in reg else [""] * len(codes)
    return codes, stages, owners


def follow_up_table(ctx: Ctx) -> pd.DataFrame | None:
    """The core's follow-ups of a filled register (None for the template)."""
    if not ctx.filled:
        return None
    codes, stages, owners = register_stages(ctx)
    log = read_contacts(records(activity(ctx).contacts), codes)
    return follow_ups(log.contacts, codes, stages, owners, ctx.data.as_of, ctx.policy)


def service_table(ctx: Ctx) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The core's cases (with tiers, days, breaches) and review of a filled register, computed
    once per build (the Register's complaint flags and the Service sheet both read them)."""
    if not ctx.filled:
        return None
    if "service" not in ctx.computed:
        codes, stages, _ = register_stages(ctx)
        log = read_service(records(activity(ctx).service), codes)
        cases = service_cases(log.cases, dict(zip(codes, stages)), ctx.data.as_of, ctx.policy)
        ctx.computed["service"] = cases, service_review(cases, ctx.policy)
    return ctx.computed["service"]


def read_activity(book) -> Activity | None:
    """The logs a saved register holds (its Contacts and Service sheets), for a register built
    again from the file; None when it has neither sheet."""
    if rs.CONTACTS not in book.sheetnames and rs.SERVICE not in book.sheetnames:
        return None
    frames = []
    for name, columns in ((rs.CONTACTS, CONTACT_COLUMNS), (rs.SERVICE, SERVICE_COLUMNS)):
        keys = [c.key for c in columns]
        if name not in book.sheetnames:
            frames.append(pd.DataFrame(columns=keys))
            continue
        ws = book[name]
        rows = [list(r[:len(keys)]) for r in ws.iter_rows(min_row=2, max_col=len(keys), values_only=True)]
        while rows and all(v is None or v == "" for v in rows[-1]):
            rows.pop()
        frames.append(pd.DataFrame(rows, columns=keys))
    return Activity(*frames)


def _cell(value: object) -> object:
    """A log value as a cell holds it: a date as a datetime, blanks as None."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
        return None if pd.isna(stamp) else stamp.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _inputs(sh: Sheet, frame: pd.DataFrame, columns: Sequence, rows: int, formats: dict[str, str]) -> None:
    """The log's cells and the empty input rows below them: yellow, unlocked."""
    for i in range(rows):
        rec = frame.iloc[i] if i < len(frame) else None
        for j, col in enumerate(columns, start=1):
            value = _cell(rec[col.key]) if rec is not None and col.key in rec else None
            sh.value(f"{get_column_letter(j)}{i + 2}", value, formats.get(col.key), unlocked=True)


def _date_rule(ctx: Ctx, sheet: str, rng: str) -> None:
    ctx.validate(sheet, rng, DataValidation(type="date", operator="greaterThan", formula1="1", allow_blank=True,
                                            showErrorMessage=True, error="A date / 日期"))


def _lists(ctx: Ctx, sheet: str, customer: str, channel: str) -> None:
    ctx.validate(sheet, customer, DataValidation(
        type="list", formula1="Reg_customer", allow_blank=True, showErrorMessage=True,
        errorTitle="客户编码 Code", error="A customer code of the Register / 请填写登记表中的客户编码"))
    ctx.validate(sheet, channel, DataValidation(
        type="list", formula1=CHANNEL_LIST, allow_blank=True, showErrorMessage=True,
        errorTitle="方式 Channel", error=" / ".join(CHANNELS)))


# ----------------------------------------------------------------------------- Contacts
def build_contacts(ctx: Ctx, sh: Sheet) -> None:
    """The contact log: one row a contact, typed by the sales staff (the FollowUps sheet reads the
    last one of each customer)."""
    log = activity(ctx).contacts
    rows = log_rows(log)
    layout.header(sh, 1, 1, [c.heading for c in CONTACT_COLUMNS])
    _inputs(sh, log, CONTACT_COLUMNS, rows, {"date": DATE, "next_date": DATE})
    last = rows + 1
    for col in "AG":
        _date_rule(ctx, rs.CONTACTS, f"{col}2:{col}{last}")
    _lists(ctx, rs.CONTACTS, f"B2:B{last}", f"D2:D{last}")
    layout.fit_widths(sh, least={"A": 12, "B": 12, "C": 10, "D": 14, "E": 36, "F": 28, "G": 12}, skip=[1], most=48)
    sh.ws.freeze_panes = "A2"
    sh.ws.auto_filter.ref = f"A1:G{max(len(log), 1) + 1}"
    layout.print_setup(sh, landscape=True, title_rows="1:1", area=f"A1:G{max(len(log), 1) + 1}", footer=footer(ctx))
    sh.protect()


# ----------------------------------------------------------------------------- Service
# The Service sheet: the log in A-H, its computed columns in I-N, the review from column P.
COMPUTED = ["等级 Tier", "响应天数 Response days", "解决天数 Resolution days", "响应超时 Response late",
            "解决超时 Resolution late", "未解决 Open"]
REVIEW_COL = 16  # P
REVIEW_HEADINGS = ["等级 Tier", "响应时限(天) Respond within (days)", "解决时限(天) Resolve within (days)",
                   "受理数 Cases", "未解决 Open", "响应超时 Response breaches", "解决超时 Resolution breaches",
                   "平均满意度 Average satisfaction"]
REVIEW_TIERS = [*SERVICE_TIERS, NO_TIER]


def _review_refs() -> tuple[str, str, str, str]:
    """The review's tier, response-limit and resolve-limit ranges (tier rows, no-tier row included)."""
    first, last = 2, 1 + len(REVIEW_TIERS)
    p, q, r = (get_column_letter(REVIEW_COL + k) for k in range(3))
    return f"${p}${first}:${p}${last}", f"${q}${first}:${q}${last}", f"${r}${first}:${r}${last}", p


def _case_formulas(r: int) -> list[tuple[str, str]]:
    """(column, formula) of the computed cells of log row r (module docstring of crm_core.service)."""
    tiers, respond, resolve, _ = _review_refs()
    counted = f"AND(ISNUMBER($A{r}),$B{r}<>\"\")"
    found = f'""&INDEX(Reg_stage_tier,MATCH({literal(f"$B{r}", equals=False)},Reg_customer,0))'
    tier = f'IFERROR(INDEX({tiers},MATCH({found},{tiers},0)),"{NO_TIER}")'

    def late(done: str, limits: str) -> str:
        limit = f"INDEX({limits},MATCH($I{r},{tiers},0))"
        elapsed = f"IF(ISNUMBER({done}),{done},AsOf)-$A{r}"
        return f'=IF($I{r}="","",IF(ISNUMBER({limit}),IF({elapsed}>{limit},1,0),""))'

    return [("I", f'=IF({counted},IF($B{r}="","",{tier}),"")'),
            ("J", f'=IF(AND($I{r}<>"",ISNUMBER($F{r})),$F{r}-$A{r},"")'),
            ("K", f'=IF(AND($I{r}<>"",ISNUMBER($G{r})),$G{r}-$A{r},"")'),
            ("L", late(f"$F{r}", respond)), ("M", late(f"$G{r}", resolve)),
            ("N", f'=IF($I{r}="","",IF(ISNUMBER($G{r}),0,1))')]


def _case_values(cases: pd.DataFrame | None, rows: int) -> dict[int, list[object]]:
    """Sheet row -> the computed cells' cached values ('' for rows that do not count)."""
    out: dict[int, list[object]] = {r: [""] * 6 for r in range(2, rows + 2)}
    if cases is None:
        return out
    for rec in cases.to_dict("records"):
        def flag(v):
            return "" if v is None else int(bool(v))

        def days(v):
            return "" if v is None or np.isnan(v) else float(v)

        out[int(rec["row"])] = [rec["tier"], days(rec["response_days"]), days(rec["resolve_days"]),
                                flag(rec["response_breach"]), flag(rec["resolve_breach"]), int(bool(rec["open"]))]
    return out


def build_service(ctx: Ctx, sh: Sheet) -> None:
    """The service log (typed), each case's tier, days and breaches, and the review per tier."""
    log = activity(ctx).service
    rows = log_rows(log)
    computed = service_table(ctx)
    layout.header(sh, 1, 1, [*(c.heading for c in SERVICE_COLUMNS), *COMPUTED])
    _inputs(sh, log, SERVICE_COLUMNS, rows, {"received": DATE_TIME, "responded": DATE_TIME, "resolved": DATE_TIME,
                                             "satisfaction": WHOLE})
    values = _case_values(computed[0] if computed else None, rows)
    fmts = [None, DAYS, DAYS, WHOLE, WHOLE, WHOLE]
    for r in range(2, rows + 2):
        for (col, text), value, fmt in zip(_case_formulas(r), values[r], fmts):
            sh.formula(f"{col}{r}", text, value if ctx.filled else SKIP, fmt)
    last = rows + 1
    for cols in ("A", "F", "G"):
        _date_rule(ctx, rs.SERVICE, f"{cols}2:{cols}{last}")
    _lists(ctx, rs.SERVICE, f"B2:B{last}", f"C2:C{last}")
    ctx.validate(rs.SERVICE, f"H2:H{last}", DataValidation(type="whole", operator="between", formula1="1",
                                                           formula2="5", allow_blank=True, showErrorMessage=True,
                                                           error="1-5 满意度 (5 = very satisfied)"))
    for col in "LM":
        sh.ws.conditional_formatting.add(f"{col}2:{col}{last}", CellIsRule(operator="equal", formula=["1"],
                                                                           fill=_red()[0], font=_red()[1]))
    _service_review(ctx, sh, last, computed)
    layout.fit_widths(sh, least={"A": 16, "B": 12, "C": 12, "D": 30, "E": 10, "F": 16, "G": 16, "H": 9,
                                 "I": 14, "P": 16, "Q": 12, "R": 12}, skip=[1], most=40)
    sh.ws.freeze_panes = "A2"
    # the log and the review beside it (its open-complaint list runs down column P)
    shown = max(len(log), len(REVIEW_TIERS) + 6 + (len(open_complaint_customers(computed[0])) if computed else 0))
    layout.print_setup(sh, landscape=True, title_rows="1:1", area=f"A1:W{shown + 1}", footer=footer(ctx))
    sh.protect()


def _red():
    from crm_app.workbook.review_sheets import RED_FILL, RED_FONT

    return RED_FILL, RED_FONT


def _service_review(ctx: Ctx, sh: Sheet, last: int, computed) -> None:
    """Per tier: the service levels (the Policy sheet's), cases, open, breaches, satisfaction."""
    review = computed[1] if computed else None
    layout.header(sh, 1, REVIEW_COL, REVIEW_HEADINGS)
    cols = [get_column_letter(REVIEW_COL + k) for k in range(len(REVIEW_HEADINGS))]
    p = cols[0]
    span = {c: f"${c}$2:${c}${last}" for c in "HILMN"}
    for i, tier in enumerate([*REVIEW_TIERS, TOTAL]):
        r = 2 + i
        rec = review.iloc[i] if review is not None else None
        sh.label(f"{p}{r}", tier)
        for j, prefix in ((1, "service_response_days"), (2, "service_resolve_days")):
            key = f"{prefix}.{tier}"
            if key in ctx.policy_rows:
                sh.formula(f"{cols[j]}{r}", f"=Policy!$B${ctx.policy_rows[key]}",
                           ctx.cached(float(getattr(ctx.policy, prefix)[tier])), DECIMAL)
        if tier == TOTAL:
            first, end = 2, 1 + len(REVIEW_TIERS)
            sums = [f"=SUM({c}{first}:{c}{end})" for c in cols[3:7]]
            avg = f'=IFERROR(AVERAGEIFS({span["H"]},{span["I"]},"?*",{span["H"]},">=1",{span["H"]},"<=5"),"")'
        else:
            who = f"{span['I']},${p}{r}"
            sums = [f"=COUNTIF({who})", f"=COUNTIFS({who},{span['N']},1)", f"=COUNTIFS({who},{span['L']},1)",
                    f"=COUNTIFS({who},{span['M']},1)"]
            avg = f'=IFERROR(AVERAGEIFS({span["H"]},{who},{span["H"]},">=1",{span["H"]},"<=5"),"")'
        keys = ["cases", "open", "response_breaches", "resolve_breaches"]
        for col, text, key in zip(cols[3:7], sums, keys):
            sh.formula(f"{col}{r}", text, ctx.cached(int(rec[key]) if rec is not None else 0), COUNT)
        score = rec["satisfaction"] if rec is not None else np.nan
        sh.formula(f"{cols[7]}{r}", avg, ctx.cached("" if np.isnan(score) else float(score)), DECIMAL)
    _open_complaints(ctx, sh, 4 + len(REVIEW_TIERS), computed)


def _open_complaints(ctx: Ctx, sh: Sheet, top: int, computed) -> None:
    """The customers with open complaints (received, not resolved): the add-in's list, green."""
    from crm_app.workbook.portfolio_sheet import addin_note_text

    p = get_column_letter(REVIEW_COL)
    sh.label(f"{p}{top}", "未解决投诉客户 Customers with open complaints", head=True)
    layout.note(sh, f"{p}{top + 1}", addin_note_text(ctx), kind="addin", wrap=False)
    if computed is None:
        return
    for i, code in enumerate(sorted(open_complaint_customers(computed[0])), start=top + 2):
        sh.value(f"{p}{i}", code, fill="addin")


# ----------------------------------------------------------------------------- FollowUps
def overdue_list(ctx: Ctx, sh: Sheet, table: pd.DataFrame | None, top: int, first_col: int) -> None:
    """The overdue customers by owner (the add-in's values, green), headed at row `top`."""
    from crm_app.workbook.portfolio_sheet import addin_note_text

    heads = ["负责人 Owner", "客户编码 Code", "阶段等级 Stage tier", "下次跟进 Due", "逾期天数 Days overdue"]
    layout.note(sh, f"{get_column_letter(first_col)}{top - 1}", addin_note_text(ctx), kind="addin", wrap=False)
    layout.header(sh, top, first_col, heads)
    if table is None:
        return
    for i, rec in enumerate(overdue_by_owner(table).to_dict("records"), start=top + 1):
        cells = [(rec["owner"] or "未分配 unassigned", None), (rec["customer"], None), (rec["stage_tier"], None),
                 (rec["due"].to_pydatetime(), DATE), (float(rec["days_overdue"]), DAYS)]
        for j, (value, fmt) in enumerate(cells, start=first_col):
            sh.value(f"{get_column_letter(j)}{i}", value, fmt, fill="addin")


def follow_up_formulas(r: int) -> list[tuple[str, str, str | None]]:
    """(column, formula, format) of FollowUps row r's last contact, stated next date, due date and
    days overdue (crm_core.contacts' rule), from the Contacts sheet."""
    code = literal(f"$A{r}")
    last = f"_xlfn.MAXIFS(Contacts!$A:$A,Contacts!$B:$B,{code})"
    stated = f"_xlfn.MAXIFS(Contacts!$G:$G,Contacts!$B:$B,{code},Contacts!$A:$A,$E{r})"
    cadence = f"$E{r}+INDEX(FollowDays,MATCH($D{r},FollowTier,0))"
    due = (f'=IF($E{r}="","",IF(ISNUMBER(MATCH($D{r},FollowTier,0)),IF($F{r}="",{cadence},MIN($F{r},{cadence})),'
           f'IF($F{r}="","",$F{r})))')
    return [("E", f'=IF($A{r}="","",IF({last}=0,"",{last}))', DATE),
            ("F", f'=IF($E{r}="","",IF({stated}=0,"",{stated}))', DATE),
            ("G", due, DATE),
            ("H", f'=IF($G{r}="","",MAX(0,AsOf-$G{r}))', DAYS)]


def follow_up_values(table: pd.DataFrame | None, i: int) -> list[object]:
    """Row i's cached last contact, stated next date, due date and days overdue ('' for none)."""
    if table is None or i >= len(table):
        return [""] * 4
    rec = table.iloc[i]

    def day(v):  # a time of day kept (as a serial number: a cached date is stored as its day)
        if pd.isna(v):
            return ""
        stamp = pd.Timestamp(v)
        return stamp.to_pydatetime() if stamp == stamp.normalize() else excel_serial(stamp.to_pydatetime())

    late = rec["days_overdue"]
    return [day(rec["last_contact"]), day(rec["stated_next"]), day(rec["due"]), "" if pd.isna(late) else float(late)]


def overdue_count(table: pd.DataFrame | None) -> int:
    return 0 if table is None else int((table["days_overdue"] > 0).sum())


def with_demo_activity(data: RegisterData) -> RegisterData:
    """`data` with the demo's seeded contact and service logs and, unless `data` has a customer
    file, the demo's with owners (crm_core.demo_activity). That file gives no payment terms, so the
    review's ageing stands."""
    reg = data.register
    data = replace(data, activity=demo_activity(reg["customer"], reg["net_sales_cents"], data.as_of))
    if data.customer_file is not None:
        return data
    file = demo_customer_file(reg["customer"], reg["net_sales_cents"], data.as_of)
    register = reg.assign(owner=reg["customer"].map(file.set_index("customer")["owner"]))
    return replace(data, customer_file=file.drop(columns="owner"), review=replace(data.review, register=register))
