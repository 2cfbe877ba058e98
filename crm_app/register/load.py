"""Reading a register workbook and a reallocation request (CSV or the Reallocation sheet form).

A loaded register carries its version stamp (About.register_version and the sha256 of the file
bytes it was parsed from), so a writer can tell whether the file changed since.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd

from crm_app.io.files import (
    NOT_UTF8_OR_GB18030,
    csv_text,
    readable_file,
    text_problem,
    workbook_errors,
)
from crm_app.register.audit import WorkflowCode
from crm_app.register.schema import (
    ABOUT,
    AUDIT,
    AUDIT_COLUMNS,
    CUSTOMER_FILE_COLUMNS,
    POLICY,
    REALLOCATION,
    REALLOCATION_FIELDS,
    REGISTER,
    REGISTER_COLUMNS,
    REQUEST_COLUMNS,
    header_lookup,
    sheet_records,
    template_issues,
)
from crm_app.register.standard import (
    SIGNER_FIELDS,
    SIGNOFF,
    Standard,
    credit_figures,
    read_standard_sheet,
)
from crm_core.issues import WARNING, CrmInputError, Issue, IssueCode
from crm_core.policy import Policy
from crm_core.reallocation import Roles
from crm_core.schema import CUSTOMER_TABLE_ALIASES, DATE, INT, Column
from crm_core.tiers import need_kind
from crm_core.values import is_blank, normalize_text, parse_date, parse_money_cents


@dataclass(frozen=True)
class Stamp:
    version: int
    sha256: str


@dataclass
class LoadedRegister:
    """A register as read from disk. `book` is the openpyxl workbook the writer edits and saves."""

    path: Path
    stamp: Stamp
    book: object
    register: pd.DataFrame
    audit: pd.DataFrame
    about: dict[str, object]
    about_rows: dict[str, int]
    policy: Policy
    issues: list[Issue] = field(default_factory=list)
    values: object = None  # the read-only workbook of cached values the frames came from
    policy_rows: dict[str, int] = field(default_factory=dict)  # Policy sheet row of each key given there
    signed: Standard | None = None  # the standard the SignOff sheet shows, when it has one and it reads
    has_signoff_sheet: bool = False
    credit: dict[str, tuple[object, str]] = field(default_factory=dict)  # Credit figures behind the budget
    # the customer file and sales stage inputs (CUSTOMER_FILE_COLUMNS) by sheet row; blank for a
    # register written before them. Values that do not read are warnings of their own, apart from
    # `issues`: a mistyped need or phone is no reason for verify to fail or a batch to wait.
    customer_file: pd.DataFrame = field(default_factory=lambda: _no_customer_file())
    customer_file_issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """Request lines (row, customer, change_cents, reason) with the problems found reading them."""

    lines: pd.DataFrame
    issues: list[Issue]
    source: str


@dataclass(frozen=True)
class Approval:
    """Who asked, approved and recorded, and when (dates as given; parsed by the check)."""

    roles: Roles
    request_date: object = None
    approval_date: object = None
    override_reason: str = ""
    batch_id: str = ""
    until: object = None  # a temporary batch's end date (blank: a lasting batch)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_register(path: str | Path, for_writing: bool = True) -> LoadedRegister:
    """Parse the register from one read of the file, so the stamp matches what was parsed.

    Values come from the cells' cached results (formulas as last calculated); `book`, loaded
    only `for_writing`, keeps the formulas and, for .xlsm, the VBA project.
    """
    path = readable_file(path, "register file")
    data = path.read_bytes()
    if not data:
        raise CrmInputError([Issue(IssueCode.EMPTY, "the file is empty / 文件为空", source=path.name)])
    with workbook_errors(path.name):  # openpyxl reads lazily: parsing the sheets can fail too
        values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        _require_register_sheets(values, path.name)
        issues: list[Issue] = []
        register, found = sheet_records(values[REGISTER], REGISTER_COLUMNS, REGISTER)
        issues += found + _blank_lines(register)
        customer_file, file_issues = read_customer_file(values[REGISTER])
        audit, found = sheet_records(values[AUDIT], AUDIT_COLUMNS, AUDIT)
        issues += found
        about, about_rows = _about(values[ABOUT])
        issues += template_issues(about)
        version, found = _version(about, about_rows)
        issues += found
        policy, policy_rows, found = _policy(values)
        issues += found
        signed, found = _signed(values)
        issues += found
        credit = credit_figures(values)
        book = (openpyxl.load_workbook(io.BytesIO(data), keep_vba=path.suffix.lower() == ".xlsm")
                if for_writing else None)
    stamp = Stamp(version, hashlib.sha256(data).hexdigest())
    return LoadedRegister(path, stamp, book, register, audit, about, about_rows, policy, issues, values,
                          policy_rows, signed, SIGNOFF in values.sheetnames, credit, customer_file, file_issues)


def _no_customer_file() -> pd.DataFrame:
    return pd.DataFrame(columns=["row", "customer", *(c.key for c in CUSTOMER_FILE_COLUMNS)])


def read_customer_file(ws) -> tuple[pd.DataFrame, list[Issue]]:
    """The Register's customer file and sales stage columns (those it has; a register written
    before them has none, and that is no problem): one row per customer code, dates as
    Timestamps, terms as whole days, with a warning naming the row and column of each value
    that cannot be used (an unknown need word, a date or terms that do not read). A value that
    does not read is left blank, so the policy's terms and the stage rule's blanks apply."""
    found, issues = sheet_records(ws, [REGISTER_COLUMNS[0], *CUSTOMER_FILE_COLUMNS], REGISTER)
    issues = [i for i in issues if i.code != IssueCode.MISSING_COLUMN]
    found = found[found["customer"].map(normalize_text) != ""].reset_index(drop=True)
    for col in CUSTOMER_FILE_COLUMNS:
        readers = {DATE: _file_date, INT: _file_days}
        if col.key == "need":
            cells = [_file_need(v, r, col, issues) for r, v in zip(found["row"], found[col.key])]
        elif col.kind in readers and col.key != "tenure":
            cells = [readers[col.kind](v, r, col, issues) for r, v in zip(found["row"], found[col.key])]
        else:
            continue
        found[col.key] = pd.Series(cells, index=found.index, dtype=object)
    return found, issues


def _file_issue(code: IssueCode, message: str, row: int, col: Column, issues: list[Issue]) -> None:
    issues.append(Issue(code, message, row=int(row), column=col.label, source=REGISTER, severity=WARNING))


def _file_need(value: object, row: int, col: Column, issues: list[Issue]) -> str:
    text = normalize_text(value)
    if text and not need_kind(value):
        _file_issue(IssueCode.UNKNOWN_TYPE, f"{text[:40]!r} is not 有 yes, 潜在 potential or 无 no: the stage tier "
                    "stays blank / 需求应为 有、潜在 或 无", row, col, issues)
        return ""
    return text


def _file_date(value: object, row: int, col: Column, issues: list[Issue]) -> pd.Timestamp | None:
    if is_blank(value):
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        _file_issue(IssueCode.BAD_DATE, f"{str(value)[:40]!r} is not a date ({exc}) / 日期无法识别", row, col, issues)
        return None


def _file_days(value: object, row: int, col: Column, issues: list[Issue]) -> int | None:
    if is_blank(value):
        return None
    try:
        days = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        days = float("nan")
    if not (days >= 0 and days.is_integer()):
        _file_issue(IssueCode.BAD_NUMBER, f"{str(value)[:40]!r} is not a whole number of days, 0 or more: the "
                    "policy's payment_terms_days apply / 账期天数应为非负整数", row, col, issues)
        return None
    return int(days)


def _signed(values) -> tuple[Standard | None, list[Issue]]:
    if SIGNOFF not in values.sheetnames:
        return None, []
    return read_standard_sheet(values[SIGNOFF])


def _require_register_sheets(book, source: str) -> None:
    """One message for a workbook that is not a register (one made by another tool, say)."""
    missing = [s for s in (REGISTER, AUDIT, ABOUT) if s not in book.sheetnames]
    if missing:
        has = ", ".join(repr(s) for s in book.sheetnames[:8]) + (", ..." if len(book.sheetnames) > 8 else "")
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"the workbook has no sheet {', '.join(map(repr, missing))}: "
                                   f"it is not a crm-addin register (its sheets: {has}) / 非本工具登记表",
                                   source=source)])


def _blank_lines(register: pd.DataFrame) -> list[Issue]:
    """Lines and balances must hold numbers; a blank is often a formula Excel never calculated."""
    issues = []
    for col in REGISTER_COLUMNS:
        if col.key not in ("allocated_line", "credit_line", "open_balance"):
            continue
        for row in register.loc[register[col.key + "_cents"].isna(), "row"]:
            issues.append(Issue(IssueCode.BLANK, f"{col.label} has no value (if it is a formula, open the "
                                "register in Excel and save it) / 无数值", row=int(row), column=col.label,
                                source=REGISTER))
    return issues


def _about(ws) -> tuple[dict[str, object], dict[str, int]]:
    about: dict[str, object] = {}
    rows: dict[str, int] = {}
    for r, (key, value, *_) in enumerate(ws.iter_rows(min_row=2, max_col=2, values_only=True), start=2):
        if key is not None and str(key).strip():
            about[str(key).strip()] = value
            rows[str(key).strip()] = r
    return about, rows


def _version(about: dict[str, object], rows: dict[str, int]) -> tuple[int, list[Issue]]:
    value = about.get("register_version")
    if value is None:
        return 0, []
    try:
        return int(str(value).strip()), []
    except ValueError:
        return 0, [Issue(WorkflowCode.BAD_STAMP, f"register_version {value!r} is not a whole number",
                         row=rows.get("register_version"), column="B", source=ABOUT)]


def _policy(book) -> tuple[Policy, dict[str, int], list[Issue]]:
    """The register's own Policy sheet (key in A, value in B, from row 2) rules; default if absent.
    Also the row of each key, for naming the cell where it differs from the signed standard."""
    if POLICY not in book.sheetnames:
        return Policy(), {}, []
    rows = [(r, k, v) for r, (k, v, *_) in enumerate(book[POLICY].iter_rows(min_row=2, max_col=2, values_only=True),
                                                      start=2)
            if k is not None and str(k).strip()]
    pairs = [(k, v) for _, k, v in rows]
    where = {str(k).strip(): r for r, k, _ in rows}
    try:
        return (Policy.from_pairs(pairs, source=POLICY) if pairs else Policy()), where, []
    except CrmInputError as exc:
        return Policy(), where, exc.issues


# ---- requests ------------------------------------------------------------------------------

# Headers a request CSV may use besides the register's own labels (客户编码 Code, 调整额 Change,
# 原因 Reason), as the ledger accepts several (crm_core.ledger.HEADER_ALIASES). Matched after
# normalizing and dropping a bracketed note: 调整金额(元) is 调整金额.
REQUEST_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer": CUSTOMER_TABLE_ALIASES,
    "change": ("change", "change amount", "调整额", "调整金额", "变动额"),
    "reason": ("reason", "原因", "调整原因", "说明"),
}


def read_request_csv(path: str | Path) -> Request:
    """A CSV `customer,change,reason` (UTF-8 or GB18030; English or Chinese headers); rows
    numbered as the file shows them."""
    path = readable_file(path, "request file")
    text = _request_text(path)
    reader = csv.reader(io.StringIO(text))
    records, overfull, row = [], [], 1
    try:
        header = next(reader, [])
        positions = _positions(header, path.name, row=1)
        # rows counted as a spreadsheet shows the file: a blank line is a row, a quoted line break is not
        for row, values in enumerate(reader, start=2):
            if any(not is_blank(v) for v in values[len(header):]):
                values, problem = _overfull_line(values, len(header), positions, row, path.name)
                overfull += [problem] if problem else []
            records.append((row, [csv_text(values[p]) if p is not None and p < len(values) else None
                                  for p in positions]))
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"not a readable CSV line: {exc}", row=row + 1,
                                   source=path.name)]) from exc
    request = _request(records, path.name)
    return Request(request.lines, sorted(request.issues + overfull, key=lambda i: i.row or 0), request.source)


# What follows the change field when the change held an unquoted thousands separator: 1,000
THOUSANDS_REST = re.compile(r"\d{3}(\.\d*)?")


def _overfull_line(values: list[str], width: int, positions: list[int | None], row: int,
                   source: str) -> tuple[list[str], Issue | None]:
    """A line with more filled fields than the header. A comma in the reason, when it is the last
    column, is free text (`C7,100000,rate up, sales up`): its fields are joined back. One in the
    change (`C7,1,000,up`, an unquoted thousands separator) would make it 1.00: refused."""
    _, change, reason = positions
    after_change = values[change + 1].strip() if change + 1 < len(values) else ""
    if reason == width - 1 and change < reason and not THOUSANDS_REST.fullmatch(after_change):
        return values[:reason] + [",".join(values[reason:]).rstrip(",")], None
    return values, Issue(IssueCode.BAD_SHAPE, f"the line has {len(values)} fields where the header has {width} "
                         "(a comma in a number not in quotes? write 1000 or \"1,000\") / 字段数与表头不符",
                         row=row, column="change", source=source)


def _request_text(path: Path) -> str:
    raw = path.read_bytes()
    problem = text_problem(raw[:65536], what="request CSV")
    if problem:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, problem, source=path.name)])
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CrmInputError([Issue(IssueCode.BAD_SHAPE, NOT_UTF8_OR_GB18030, source=path.name)])


def _request_lookup() -> dict[str, str]:
    lookup = header_lookup(REQUEST_COLUMNS)
    for key, aliases in REQUEST_HEADER_ALIASES.items():
        lookup.update({normalize_text(a).lower(): key for a in aliases})
    return lookup


def _request_header_key(cell: object) -> str:
    text = normalize_text(cell).lower()
    for bracket in ("(", "（", "["):
        text = text.split(bracket)[0].strip() if bracket in text else text
    return text


def _positions(header, source: str, row: int) -> list[int | None]:
    lookup = _request_lookup()
    found: dict[str, int] = {}
    for i, h in enumerate(header):
        key = lookup.get(normalize_text(h).lower()) or lookup.get(_request_header_key(h))
        if key and key not in found:
            found[key] = i
    missing = [c for c in REQUEST_COLUMNS if c.key in ("customer", "change") and c.key not in found]
    if len(missing) == 2 and not found:  # another file altogether: one message, not one per column
        has = ", ".join(repr(normalize_text(h)[:30]) for h in header[:6] if not is_blank(h)) or "nothing"
        raise CrmInputError([Issue(IssueCode.MISSING_COLUMN, "not a reallocation request: the header row should "
                                   f"name customer, change, reason (or 客户编码, 调整额, 原因); it has {has} "
                                   "/ 不是调整申请", row=row, source=source)])
    if missing:
        raise CrmInputError([Issue(IssueCode.MISSING_COLUMN, f"no column {c.key!r} (or {c.label!r})",
                                   row=row, column=c.key, source=source) for c in missing])
    return [found.get(c.key) for c in REQUEST_COLUMNS]


def _request(records: list[tuple[int, list[object]]], source: str) -> Request:
    rows, issues = [], []
    for row, (customer, change, reason) in records:
        if all(is_blank(v) for v in (customer, change, reason)):
            continue
        name = normalize_text(customer)
        if not name:
            issues.append(Issue(IssueCode.BLANK, "customer is blank", row=row, column="customer", source=source))
        try:
            cents = parse_money_cents(change)
        except ValueError as exc:
            issues.append(Issue(IssueCode.BAD_NUMBER, str(exc), row=row, column="change", source=source))
            cents = 0
        rows.append({"row": row, "customer": name, "change_cents": cents, "reason": normalize_text(reason)})
    lines = pd.DataFrame(rows, columns=["row", "customer", "change_cents", "reason"])
    lines["change_cents"] = lines["change_cents"].astype("int64")
    return Request(lines, issues, source)


# Form fields beyond the template's REALLOCATION_FIELDS, found by their label wherever a user
# (or a later template) puts them on the Reallocation sheet.
UNTIL_FIELD = Column("until", "截止日期", "Until", "date")


def read_request_form(book) -> tuple[Request, dict[str, object]]:
    """The Reallocation sheet: labelled fields (roles, dates, batch id) and the request table."""
    ws = _reallocation_sheet(book)
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    return _form_table(ws, grid), _form_fields(grid, REALLOCATION_FIELDS + [UNTIL_FIELD])


def read_signoff_form(book) -> dict[str, object]:
    """The sign-off fields (CEO, CFO, 销售总监 Sales director, 签字日期 Sign-off date, 修订原因
    Amendment reason) from the Reallocation sheet: each a label cell with the value to its right."""
    grid = [list(r) for r in _reallocation_sheet(book).iter_rows(values_only=True)]
    return _form_fields(grid, SIGNER_FIELDS)


def _reallocation_sheet(book):
    if REALLOCATION not in book.sheetnames:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"the workbook has no sheet {REALLOCATION!r}",
                                   source=REALLOCATION)])
    return book[REALLOCATION]


def _form_fields(grid: list[list[object]], columns: list[Column]) -> dict[str, object]:
    lookup = header_lookup(columns)
    fields: dict[str, object] = {}
    for values in grid:
        for i, value in enumerate(values):
            key = lookup.get(normalize_text(value).lower().rstrip(":：").strip()) if isinstance(value, str) else None
            if key and key not in fields:
                fields[key] = next((v for v in values[i + 1:i + 4] if not is_blank(v)), None)
    return fields


def request_table(ws) -> tuple[int, list[int | None]]:
    """Sheet row of the request table's header and the 0-based column of customer, change, reason."""
    lookup = header_lookup(REQUEST_COLUMNS)
    for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
        keys = {lookup.get(normalize_text(v).lower()) for v in values if isinstance(v, str)}
        if {"customer", "change"} <= keys:
            return r, _positions(values, REALLOCATION, row=r)
    raise CrmInputError([Issue(IssueCode.MISSING_COLUMN, "no request table (a header row with "
                               "客户编码 Code and 调整额 Change) on the sheet", source=REALLOCATION)])


def _form_table(ws, grid: list[list[object]]) -> Request:
    header, positions = request_table(ws)
    records = [(header + k, [vals[p] if p is not None and p < len(vals) else None for p in positions])
               for k, vals in enumerate(grid[header:], start=1)]
    return _request(records, REALLOCATION)


def approval_from_form(fields: dict[str, object]) -> Approval:
    text = {k: normalize_text(fields.get(k)) for k in ("requester", "approver", "recorder",
                                                          "override_reason", "batch_id")}
    return Approval(Roles(text["requester"], text["approver"], text["recorder"]),
                    fields.get("request_date"), fields.get("approval_date"),
                    text["override_reason"], text["batch_id"], fields.get("until"))


def parse_day(value: object, column: str, source: str, default: date) -> tuple[date, list[Issue]]:
    if is_blank(value):
        return default, []
    try:
        return parse_date(value).date(), []
    except ValueError as exc:
        return default, [Issue(WorkflowCode.BAD_DATE, str(exc), column=column, source=source)]
