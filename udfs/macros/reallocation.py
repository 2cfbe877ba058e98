"""Excel macro entry points for the reallocation workflow (called by vba/Reallocation.bas via RunPython).

Each macro finds the calling workbook, reads the request form from the saved file, and runs the
same crm_app.register.workflow functions as the command line; no business rule lives here. Excel keeps
the open file locked, so applying closes the workbook, writes, and opens the new version again.
A keyed audit chain's key comes from the file the environment variable CRM_AUDIT_KEY_FILE names.

SignOff reads its fields from the Reallocation sheet, each a label with the value in the next
cell to its right: 首席执行官 CEO, 首席财务官 CFO, 销售总监 Sales director, 签字日期 Sign-off date
(blank: today) and, for an amendment of the year's signed standard, 修订原因 Amendment reason.
"""
from __future__ import annotations

from pathlib import Path

import openpyxl

from crm_app.io.files import file_problem
from crm_app.register.audit import AuditKey, read_key
from crm_app.register.load import (
    Approval,
    Request,
    approval_from_form,
    load_register,
    read_request_form,
    read_signoff_form,
    request_table,
)
from crm_app.register.schema import REALLOCATION
from crm_app.register.signoff import sign_off, signer_issues
from crm_app.register.standard import Signers
from crm_app.register.workflow import (
    CheckReport,
    check_request,
    reallocate,
    suggest_request,
    verify_report,
)
from crm_core.issues import CrmInputError
from crm_core.reallocation import OK
from crm_core.values import units

TITLE = "crm-addin 赊销额度调整"
MAX_LINES_SHOWN = 15


def _caller():
    """The workbook that ran the macro (a seam the tests replace)."""
    import xlwings as xw

    return xw.Book.caller()


def _alert(book, text: str) -> None:
    book.app.alert(text, title=TITLE)


def _saved_path(book) -> Path:
    """Save first, so what is checked and applied is exactly what the user sees in the form."""
    book.save()
    return Path(book.fullname)


def _form(path: Path) -> tuple[Request, Approval]:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    request, fields = read_request_form(book)
    return request, approval_from_form(fields)


def summary(report: CheckReport) -> str:
    """The check as a few lines for a message box: refused lines first, then the verdict."""
    moves = report.moves
    bad = moves[moves["message"] != OK]
    lines = [f"row {r.row} {r.customer} {units(r.change_cents):+,.2f} ({r.kind}): {r.message}"
             for r in bad.head(MAX_LINES_SHOWN).itertuples(index=False)]
    if len(bad) > MAX_LINES_SHOWN:
        lines.append(f"... and {len(bad) - MAX_LINES_SHOWN} more")
    drift = "; ".join(f"{t} {units(d):+,.2f}" for t, d in zip(report.tier_drift["tier"],
                                                            report.tier_drift["drift_cents"]))
    return "\n".join(lines + [f"tier drift / 各级偏离: {drift}", report.verdict])


def _checked_form(book, applying: bool) -> tuple[Path, Request, Approval, CheckReport]:
    """Save the workbook, read its request form and check it (raises CrmInputError)."""
    path = _saved_path(book)
    request, approval = _form(path)
    report = check_request(load_register(path, for_writing=False), request, approval, applying=applying,
                           key=read_key())
    return path, request, approval, report


def check_reallocation_request() -> CheckReport | None:
    """Check the request on the Reallocation sheet without changing anything / 检查调整申请."""
    book = _caller()
    try:
        report = _checked_form(book, applying=False)[3]
    except CrmInputError as exc:
        _alert(book, f"cannot check / 无法检查:\n{exc}")
        return None
    _alert(book, summary(report))
    return report


def apply_reallocation() -> bool:
    """Check and apply the request on the Reallocation sheet, recorded in the Audit sheet / 执行调整."""
    book = _caller()
    try:
        path, request, approval, report = _checked_form(book, applying=True)
    except CrmInputError as exc:
        _alert(book, f"nothing applied / 未执行:\n{exc}")
        return False
    if not report.ok:
        _alert(book, "nothing applied / 未执行\n" + summary(report))
        return False
    app = book.app
    book.close()  # Excel locks an open workbook: release it so the new version can replace it
    try:
        written, text = _apply(path, request, approval)
    finally:  # whatever happens, the user gets the workbook back
        reopened = app.books.open(str(path))
    _alert(reopened, text)
    return written


def _apply(path: Path, request: Request, approval: Approval) -> tuple[bool, str]:
    try:
        outcome = reallocate(path, request, approval, key=read_key())
    except CrmInputError as exc:  # RegisterChangedError included
        return False, f"nothing applied / 未执行:\n{exc}"
    except OSError as exc:  # a locked or read-only register on a shared drive: the atomic write left it as it was
        return False, f"nothing applied / 未执行:\n{file_problem(exc)}"
    if not outcome.written:
        return False, "nothing applied / 未执行\n" + summary(outcome.report)
    return True, f"applied batch {outcome.report.batch_id}, register version {outcome.stamp.version} / 已执行"


def suggest_reallocation_cuts() -> int:
    """Fill the request table with cuts that fund its raise lines (positive changes) / 建议调减.

    The raise lines stay; the suggested cuts replace the other lines. The workbook is not saved:
    the director reviews the proposal, edits it, and applies it.
    """
    book = _caller()
    try:
        path = _saved_path(book)
        request, _ = _form(path)
        raises = request.lines[request.lines["change_cents"] > 0]
        amount = int(raises["change_cents"].sum())
        if not amount:
            raise CrmInputError([])
        cuts = suggest_request(path, amount, exclude=raises["customer"].tolist())
    except CrmInputError as exc:
        _alert(book, f"no suggestion / 无建议: {str(exc) or 'enter the raise lines (positive changes) first'}")
        return 0
    rows = [[c, units(ch), r] for c, ch, r in zip(raises["customer"], raises["change_cents"], raises["reason"])]
    rows += [[c, units(ch), r] for c, ch, r in zip(cuts["customer"], cuts["change_cents"], cuts["reason"])]
    _fill_table(book, path, rows, last_row=int(request.lines["row"].max()))
    _alert(book, f"{len(cuts)} cut(s) proposed for {units(amount):,.2f}; review, then apply / 已填入建议")
    return len(cuts)


def _fill_table(book, path: Path, rows: list[list[object]], last_row: int) -> None:
    """Write the lines below the table header in the open workbook, blanking the old lines."""
    header_row, columns = request_table(openpyxl.load_workbook(path, read_only=True)[REALLOCATION])
    sheet = book.sheets[REALLOCATION]
    clear = last_row - header_row
    for k, col in enumerate(columns):
        if col is None:
            continue
        for r in range(max(clear, len(rows))):
            value = rows[r][k] if r < len(rows) else None
            sheet.range((header_row + 1 + r, col + 1)).value = excel_text(value)


def excel_text(value: object) -> object:
    """Excel enters a value written through COM as if typed: text starting with =, +, - or @
    would become a formula. A leading apostrophe keeps it text (Excel does not store the mark)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def verify_register() -> bool:
    """Verify the saved register: audit chain, sign-off, lines against the log, total against the budget / 校验."""
    book = _caller()
    try:
        report = verify_report(_saved_path(book), read_key())
        problems, notes = report.issues, report.notes()
    except CrmInputError as exc:
        problems, notes = exc.issues, []
    head = "\n".join(notes)
    if not problems:
        _alert(book, f"register verifies / 校验通过\n{head}")
        return True
    shown = "\n".join(str(p) for p in problems[:MAX_LINES_SHOWN])
    more = f"\n... and {len(problems) - MAX_LINES_SHOWN} more" if len(problems) > MAX_LINES_SHOWN else ""
    _alert(book, f"{len(problems)} problem(s) / 校验未通过:\n{head}\n{shown}{more}")
    return False


def sign_off_register() -> bool:
    """Sign the year's credit standard with the names and date on the Reallocation sheet / 签字确认."""
    book = _caller()
    try:
        path = _saved_path(book)
        fields = read_signoff_form(openpyxl.load_workbook(path, read_only=True, data_only=True))
        signers = Signers(*(str(fields.get(k) or "") for k in ("ceo", "cfo", "sales_director")))
        problems = signer_issues(signers, REALLOCATION)
        if problems:
            raise CrmInputError(problems)
        key = read_key()
    except CrmInputError as exc:
        _alert(book, f"nothing signed / 未签字:\n{exc}\n{SIGNOFF_FORM_HINT}")
        return False
    app = book.app
    book.close()  # Excel locks an open workbook: release it so the new version can replace it
    try:
        written, text = _sign(path, signers, fields, key)
    finally:  # whatever happens, the user gets the workbook back
        reopened = app.books.open(str(path))
    _alert(reopened, text)
    return written


SIGNOFF_FORM_HINT = ("On the Reallocation sheet, put each name to the right of its label: 首席执行官 CEO, 首席财务官 CFO, "
                     "销售总监 Sales director; optionally 签字日期 Sign-off date, and 修订原因 Amendment reason for an "
                     "amendment / 请在调整申请表填写签字人")


def _sign(path: Path, signers: Signers, fields: dict[str, object], key: AuditKey | None) -> tuple[bool, str]:
    reason = str(fields.get("amend_reason") or "").strip()
    try:
        outcome = sign_off(path, signers, fields.get("signed_on"), amend=bool(reason), reason=reason, key=key,
                           source=REALLOCATION)
    except CrmInputError as exc:
        return False, f"nothing signed / 未签字:\n{exc}"
    except OSError as exc:
        return False, f"nothing signed / 未签字:\n{file_problem(exc)}"
    standard = outcome.standard
    return True, (f"signed {standard.summary()}, register version {outcome.stamp.version} / 已签字确认\n"
                  f"standard sha256:{standard.digest}")
