"""The shipped workbooks: the customer register template (workbooks/crm_register.xlsm) and the
filled register `crm-addin demo` and `crm-addin review` write.

One builder makes both: without data it lays out the empty template, with a review it fills
the same layout and caches every formula's value (computed by the core), so the file shows
numbers even where nothing recalculates. The macro-enabled form starts from xlwings' quickstart
workbook (its xlwings.conf sheet) and carries the register's own VBA project, built from the
sources in vba/ (`vba_project`), with a document module for the workbook and every sheet under
the sheet's codeName (shRegister, ...), and the "CRM 客户信用" ribbon tab (`ribbon`).
"""
from __future__ import annotations

import argparse
import io
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.workbook.defined_name import DefinedName

from crm_app.io.files import atomic_path
from crm_app.register import schema as rs
from crm_app.workbook import xml_sheet as workbook_sheet
from crm_app.workbook.activity_sheets import build_contacts, build_service
from crm_app.workbook.commission_sheet import COMMISSION, build_commission
from crm_app.workbook.data import RegisterData, register_data
from crm_app.workbook.funnel_sheet import FUNNEL, build_funnel
from crm_app.workbook.kpi_sheet import KPIS, build_kpis
from crm_app.workbook.package import fill_sheets
from crm_app.workbook.portfolio_sheet import PORTFOLIO, build_portfolio
from crm_app.workbook.register_sheets import (
    ISSUES,
    TEMPLATE_ROWS,
    Ctx,
    build_about,
    build_audit,
    build_credit,
    build_issues,
    build_ledger,
    build_lists,
    build_policy,
    build_reallocation,
    build_register,
    issues_note,
    ledger_note,
    register_conditional_formats,
)
from crm_app.workbook.review_sheets import (
    build_ageing,
    build_collection,
    build_credit_use,
    build_dashboard,
    build_effort,
    build_follow_ups,
    build_overlap,
)
from crm_app.workbook.ribbon import custom_ui_xml
from crm_app.workbook.sheet_buttons import VML_PART, buttons_vml, sheet_widths
from crm_app.workbook.vba_project import register_modules, vba_project_bin
from crm_app.workbook.xml_sheet import BODY_FONT, SharedStrings, Sheet, Styles
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.policy import Policy

WORKBOOKS_DIR = Path(__file__).resolve().parents[2] / "workbooks"
TEMPLATE_NAME = "crm_register.xlsm"
# Sheet order as the user sees it; the contract's sheets first, then the review sheets.
SHEETS = [rs.DASHBOARD, rs.REGISTER, rs.LEDGER, rs.POLICY, rs.CREDIT, rs.REALLOCATION, rs.AUDIT,
          "Collection", "CreditUse", "Overlap", "Effort", "Ageing", KPIS, PORTFOLIO, FUNNEL, COMMISSION, "FollowUps", rs.CONTACTS, rs.SERVICE, ISSUES, rs.ABOUT, "Lists"]
XLWINGS_CONF = "xlwings.conf"
EXCEL_CALC_ID = 191029  # the calcId Excel 2019 and Microsoft 365 write
UDF_MODULE = "crm_addin"


def quickstart_template() -> Path:
    """The Excel-made macro workbook that ships inside the xlwings package."""
    from importlib.util import (
        find_spec,  # located, not imported: only the Excel layer imports xlwings
    )

    return Path(find_spec("xlwings").origin).with_name("quickstart.xlsm")


def _new_book(macros: bool) -> openpyxl.Workbook:
    if not macros:
        wb = openpyxl.Workbook()
        wb.active.title = rs.DASHBOARD
        return _in_body_font(wb)
    wb = _in_body_font(openpyxl.load_workbook(quickstart_template(), keep_vba=True))
    first, conf = wb.worksheets[0], wb.worksheets[1]
    first.title = rs.DASHBOARD  # keeps its VBA code name (Sheet1)
    conf.title = XLWINGS_CONF
    conf.print_area = "A1:B12"  # its settings, not the quickstart's empty page grid
    for row in conf.iter_rows(min_row=1, max_row=12, max_col=2):
        if row[0].value == "UDF Modules":
            row[1].value = UDF_MODULE
        elif row[0].value == "Interpreter_Win":
            row[1].value = None  # use the add-in's interpreter setting
    return wb


def _in_body_font(wb: openpyxl.Workbook) -> openpyxl.Workbook:
    """Plain cells in the register's font (one Excel on Chinese Windows has, for Latin and CJK
    text alike), not the Calibri of a new workbook: the default font is the first one."""
    wb._fonts = IndexedList([BODY_FONT, *list(wb._fonts)[1:]])
    wb._named_styles["Normal"].font = BODY_FONT
    return wb


def build_workbook(data: RegisterData | None = None, policy: Policy | None = None,
                   macros: bool = True) -> bytes:
    """The register as file bytes: empty template when `data` is None, filled otherwise."""
    wb, sheets, strings = lay_out(data, policy, macros)
    buffer = io.BytesIO()
    wb.save(buffer)  # every cell of these sheets is theirs: openpyxl wrote their frames only
    return fill_sheets(buffer.getvalue(), sheets, strings, macro_parts(wb) if macros else None)


def macro_parts(wb: openpyxl.Workbook) -> tuple[bytes, bytes, bytes]:
    """The register's VBA project (read from vba/ now), its ribbon part and the Reallocation
    sheet's buttons."""
    code_names = [ws.sheet_properties.codeName for ws in wb.worksheets]
    buttons = buttons_vml(sheet_widths(wb[rs.REALLOCATION]))
    return vba_project_bin(register_modules(code_names)), custom_ui_xml(), buttons


def _name_code_modules(wb: openpyxl.Workbook) -> None:
    """Every sheet's codeName (its document module's name) made from its title, "sh" + the title's
    words (shRegister, shXlwingsConf): a sheet added later renames no other sheet's module, as
    Excel's Sheet1, Sheet2, ... numbering in sheet order would."""
    for ws in wb.worksheets:
        ws.sheet_properties.codeName = code_name(ws.title)


def code_name(title: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    name = "sh" + "".join(w[0].upper() + w[1:] for w in words)
    if len(name) > 31 or len(name) == 2:
        raise ValueError(f"sheet {title!r} gives no VBA code name (ASCII words, 29 characters at most)")
    return name


def lay_out(data: RegisterData | None = None, policy: Policy | None = None,
            macros: bool = True) -> tuple[openpyxl.Workbook, dict[str, Sheet], SharedStrings]:
    """The register's workbook frame and its sheets' cells, not yet rendered."""
    policy = data.policy if data is not None else (policy or Policy())
    cap = len(data.register) if data is not None else TEMPLATE_ROWS  # mirror rows
    _check_fits(cap)
    ctx = Ctx(policy, data, cap)
    wb = _new_book(macros)
    styles, strings = Styles(wb), SharedStrings()
    for name in SHEETS:
        ws = wb[name] if name in wb.sheetnames else wb.create_sheet(name)
        ctx.sheets[name] = Sheet(ws, styles, strings)
    if macros:
        wb.move_sheet(XLWINGS_CONF, offset=len(wb.sheetnames) - 1 - wb.sheetnames.index(XLWINGS_CONF))
        _name_code_modules(wb)
        wb[rs.REALLOCATION].legacy_drawing = VML_PART  # the buttons' drawing (macro_parts)
    s = ctx.sheets
    build_policy(ctx, s[rs.POLICY])
    build_lists(ctx, s["Lists"])
    build_register(ctx, s[rs.REGISTER])
    register_conditional_formats(ctx, s[rs.REGISTER])
    build_ledger(ctx, s[rs.LEDGER])
    build_credit(ctx, s[rs.CREDIT])
    build_reallocation(ctx, s[rs.REALLOCATION])
    build_audit(ctx, s[rs.AUDIT])
    build_collection(ctx, s["Collection"])
    build_credit_use(ctx, s["CreditUse"])
    build_overlap(ctx, s["Overlap"])
    build_effort(ctx, s["Effort"])
    build_ageing(ctx, s["Ageing"])
    build_kpis(ctx, s[KPIS])
    build_portfolio(ctx, s[PORTFOLIO])
    build_funnel(ctx, s[FUNNEL])
    build_commission(ctx, s[COMMISSION])
    build_follow_ups(ctx, s["FollowUps"])
    build_contacts(ctx, s[rs.CONTACTS])
    build_service(ctx, s[rs.SERVICE])
    build_issues(ctx, s[ISSUES])
    build_dashboard(ctx, s[rs.DASHBOARD], ctx.cap + 1)
    build_about(ctx, s[rs.ABOUT])
    _finish(wb, ctx)
    for sheet in s.values():
        sheet.register_styles()
    styles.frozen = True
    return wb, s, strings


# Rows above a sheet's customer rows (the Credit sheet's lines start below its budget and tiers).
HEADER_ROWS = 100


def _check_fits(customers: int) -> None:
    """One customer a row: a register of more customers than a sheet has rows cannot be laid out
    (the ledger can: it is left in its file)."""
    room = workbook_sheet.SHEET_ROWS - HEADER_ROWS
    if customers > room:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"{customers:,} customers are more than one register sheet "
                                   f"holds ({room:,}): write the register as .csv or .parquet with review-file "
                                   "--out / 客户数超过工作表行数")])


def _finish(wb: openpyxl.Workbook, ctx: Ctx) -> None:
    for name, ref in sorted(ctx.names.items()):
        wb.defined_names[name] = DefinedName(name, attr_text=ref)
    for sheet, dv in ctx.validations:
        ctx.sheets[sheet].ws.add_data_validation(dv)
    wb.active = wb.sheetnames.index(rs.DASHBOARD)
    # Every formula's value is stored (computed by the core, checked against LibreOffice by the
    # tests), so the file is not recalculated on open: a full recalculation where the add-in is not
    # installed would turn what needs Python into errors. The calculation engine id is Excel 2019's
    # (Excel recalculates a file saved by an older engine on open, whatever the flag says).
    wb.calculation.fullCalcOnLoad = False
    wb.calculation.calcId = EXCEL_CALC_ID
    stamp = datetime(2025, 1, 1)
    wb.properties.creator = wb.properties.lastModifiedBy = "crm-addin"
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.title = "crm-addin customer register 客户登记表"


def write_register(data: RegisterData, target: str | Path) -> Path:
    """Fill the register template with a review and write it atomically (.xlsm keeps macros)."""
    target = Path(target)
    payload = build_workbook(data, macros=target.suffix.lower() == ".xlsm")
    with atomic_path(target) as tmp:
        tmp.write_bytes(payload)
    return target


def review_register_data(ledger, policy: Policy, year: int | None, source: str | None = None,
                         customer_file=None) -> RegisterData:
    """The review of `ledger`, stamped now; `source` is where its rows are (the file's path);
    `customer_file`: the Register's customer file columns (`register_data`)."""
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return register_data(ledger, policy, year, generated_at=now, source=source, customer_file=customer_file)


def register_notes(data: RegisterData) -> list[str]:
    """What the command line says besides the summary: where a ledger longer than a sheet is, and
    that the rows skipped are listed in the register (the same notes the workbook carries)."""
    ctx = Ctx(data.policy, data, len(data.register))
    notes = [] if ctx.ledger_on_sheet else [ledger_note(ctx)]
    if data.issues:
        notes.append(issues_note(ctx))
    return notes


# ----------------------------------------------------------------------------- command line
def build_templates(out: Path) -> list[Path]:
    target = out / TEMPLATE_NAME
    payload = build_workbook()
    if target.exists() and target.read_bytes() == payload:
        return [target]
    with atomic_path(target, backup=False) as tmp:
        tmp.write_bytes(payload)
    return [target]


def default_out_dir() -> Path:
    """The checkout's workbooks/ when run from the source tree; an installed package has no such
    folder of its own (it would be inside site-packages), so there it is ./workbooks."""
    return WORKBOOKS_DIR if (WORKBOOKS_DIR.parent / "setup.cfg").exists() else Path("workbooks")


def cmd_build_workbooks(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.check:
        stale = [p for p in [out / TEMPLATE_NAME] if not p.exists() or p.read_bytes() != build_workbook()]
        for path in stale:
            print(f"stale: {path} (run crm-addin build-workbooks) / 模板需要重新生成", file=sys.stderr)
        if not stale:
            print(f"{out / TEMPLATE_NAME} is current / 模板为最新")
        return 1 if stale else 0
    for path in build_templates(out):
        print(f"written {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("build-workbooks", help="write the register template into workbooks/ / 生成模板",
                       description="Write the empty register template workbooks/crm_register.xlsm; --check only "
                                   "compares (exit 1 when out of date). / 生成空白登记表模板。")
    p.add_argument("--out", default=str(default_out_dir()),
                   help="folder (default: the project's workbooks/ in a source checkout, else ./workbooks) / 输出文件夹")
    p.add_argument("--check", action="store_true",
                   help="only check that the files there are current (exit 1 if not) / 仅检查是否最新")
    p.set_defaults(func=cmd_build_workbooks)
