"""The register workbook's contract: sheet names, column keys and labels, the About stamp.

Everything that reads or writes a register (the CLI, the macros, the workbook builder, verify)
goes through these definitions, so a column renamed here is renamed everywhere. Headers are
in row 1 in two lines, Chinese over English (`Column.heading`); registers written before have
them on one line ("中文 English"), and readers compare headers with whitespace collapsed, so both
read. Data start in row 2. Money is stored in currency units with two decimals and read back
as integer cents.
"""
from __future__ import annotations

from decimal import Decimal

import pandas as pd

from crm_core.issues import Issue, IssueCode
from crm_core.schema import MONEY, Column
from crm_core.schema import REGISTER_COLUMNS as REGISTER_COLUMNS  # declared once, in the core
from crm_core.values import normalize_text, parse_money_cents, units

TEMPLATE_VERSION = 1

REGISTER = "Register"
LEDGER = "Ledger"
POLICY = "Policy"
CREDIT = "Credit"
REALLOCATION = "Reallocation"
AUDIT = "Audit"
DASHBOARD = "Dashboard"
ABOUT = "About"
CONTACTS = "Contacts"  # the contact log users type (crm_core.contacts)
SERVICE = "Service"  # the service log users type (crm_core.service)

# The register's columns (REGISTER_COLUMNS, of Column records) are declared in crm_core.schema,
# with the review's frame and the review workbook's Register sheet derived from them.

# After them, the workflow's own columns: the temporary part of a line still in force (the sum
# of the customer's temporary batches not yet reversed) and the first of their end dates. A review
# does not compute them, so readers do not require them: a register written before has none, and
# the first temporary batch adds them (crm_app.register.temporary).
TEMPORARY_COLUMNS = [
    Column("temporary_part", "临时额度", "Temporary part", MONEY),
    Column("temporary_until", "临时额度截止", "Temporary until", "date"),
]

# Then the customer file and the sales stage (客户档案, 销售阶段; domain.md sections 3 and 10):
# what the finance staff type about each customer, and the tenure computed from it. The stage
# tier (a REGISTER_COLUMNS column) is a formula on the need and the expected close. Readers do not
# require these either: a register written before has none (`read_customer_file`).
CUSTOMER_FILE_COLUMNS = [
    Column("need", "需求", "Need"),
    Column("expected_close", "预计成交", "Expected close", "date"),
    Column("address", "地址", "Address"),
    Column("phone", "电话", "Phone"),
    Column("contact", "联系人", "Contact person"),
    Column("terms_days", "账期天数", "Terms (days)", "int"),
    Column("trading_since", "首次交易", "Trading since", "date"),
    Column("tenure", "合作年限", "Tenure (years)", "int"),
    Column("credit_notes", "信用状况", "Credit standing"),
]
CUSTOMER_FILE_BY_KEY = {c.key: c for c in CUSTOMER_FILE_COLUMNS}
CUSTOMER_FILE_INPUTS = tuple(c.key for c in CUSTOMER_FILE_COLUMNS if c.key != "tenure")


AUDIT_COLUMNS = [
    Column("timestamp", "时间", "Timestamp"),
    Column("batch_id", "批次号", "Batch id"),
    Column("customer", "客户编码", "Code"),
    Column("old_line", "原额度", "Old line", "money"),
    Column("change", "调整额", "Change", "money"),
    Column("new_line", "新额度", "New line", "money"),
    Column("reason", "原因", "Reason"),
    Column("requester", "申请人", "Requester"),
    Column("approver", "审批人", "Approver"),
    Column("recorder", "记录人", "Recorder"),
    Column("request_date", "申请日期", "Request date", "date"),
    Column("approval_date", "审批日期", "Approval date", "date"),
    Column("override_reason", "例外说明", "Override reason"),
    Column("prev_hash", "前一行哈希", "Previous hash"),
    Column("hash", "哈希", "Hash"),
]

# About sheet: key in column A, value in column B, from row 2 (row 1 is a header).
ABOUT_KEYS = {
    "template_version": "模板版本 Template version",
    "register_version": "登记表版本 Register version (+1 on every change)",
    "budget_year": "额度年度 Budget year",
    "budget": "赊销额度预算 Credit budget",
    "review_period": "评审期间 Review period",
    "policy_label": "政策 Policy",
    "generated_at": "生成时间 Generated at",
    "review_rows": "复核表行数 Customers the review sheets cover (more: run BuildReview)",
    # written by each reallocation; verify compares it with the Audit sheet's last hash, so
    # deleting the newest entries is caught too (absent in registers no batch has touched)
    "audit_head": "审计链末端 Audit chain head (hash of the last Audit row)",
    # written by sign-off: the Dashboard shows it
    "signed_off": "签字确认 Credit standard signed off (year, signers, date)",
}
UNSIGNED = "未签字 not signed: reallocations start after crm-addin sign-off (SignOff macro) / 尚未签字确认"


def header_lookup(columns: list[Column]) -> dict[str, str]:
    """Label, English name or key (case-insensitive) -> key, so hand-edited headers still match."""
    lookup: dict[str, str] = {}
    for col in columns:
        for name in (col.label, col.en, col.zh, col.key):
            lookup[normalize_text(name).lower()] = col.key
    return lookup


def cents_from_cell(value: object) -> int | None:
    """Money cell (currency units) -> int cents, as `parse_money_cents` reads every amount (the
    15 digits Excel shows, half-up at the cent); None for blank. Raises ValueError if not a number:
    a register's money cells hold numbers, never text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{value!r} is not an amount")
    try:
        return parse_money_cents(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an amount: {exc}") from None


def cell_from_cents(cents: int | None) -> float | None:
    return None if cents is None else units(cents)


def sheet_records(ws, columns: list[Column], sheet: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Rows of a sheet as a DataFrame keyed by column key (money as `<key>_cents` int64),
    with a `row` column holding the sheet row, and an issue for each unreadable cell."""
    rows = ws.iter_rows(values_only=True)
    header = next(rows, ())
    lookup = header_lookup(columns)
    positions = {lookup[normalize_text(h).lower()]: i for i, h in enumerate(header)
                 if h is not None and normalize_text(h).lower() in lookup}
    missing = [c for c in columns if c.key not in positions]
    issues = [Issue(IssueCode.MISSING_COLUMN, f"no column {c.label!r}", row=1, column=c.label, source=sheet)
              for c in missing]
    records = []
    for r, values in enumerate(rows, start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        record = {"row": r}
        for col in columns:
            pos = positions.get(col.key)
            value = values[pos] if pos is not None and pos < len(values) else None
            record.update(_read_cell(col, value, r, sheet, issues))
        records.append(record)
    names = ["row"] + [c.frame_key for c in columns]
    return pd.DataFrame(records, columns=names), issues


def _read_cell(col: Column, value: object, row: int, sheet: str, issues: list[Issue]) -> dict[str, object]:
    if col.kind != MONEY:
        return {col.key: normalize_text(value) if col.kind == "text" else value}
    try:
        cents = cents_from_cell(value)
    except ValueError as exc:
        issues.append(Issue(IssueCode.BAD_NUMBER, str(exc), row=row, column=col.label, source=sheet))
        cents = None
    return {col.frame_key: cents}


def read_about(ws) -> dict[str, object]:
    about: dict[str, object] = {}
    for key, value, *_ in ws.iter_rows(min_row=2, values_only=True):
        if key is not None:
            about[str(key).strip()] = value
    return about


# Reallocation sheet (调整申请): a request form. Each field is a label cell ("申请人 Requester")
# with its value in the next non-blank cell to the right; the request lines are a table whose
# header row holds the REQUEST_COLUMNS labels, one line per customer below it. Readers find
# labels anywhere on the sheet, so the layout may change without breaking them.
REALLOCATION_FIELDS = [
    Column("batch_id", "批次号", "Batch id"),
    Column("requester", "申请人", "Requester"),
    Column("approver", "审批人", "Approver"),
    Column("recorder", "记录人", "Recorder"),
    Column("request_date", "申请日期", "Request date", "date"),
    Column("approval_date", "审批日期", "Approval date", "date"),
    Column("override_reason", "例外说明", "Override reason"),
]
REQUEST_COLUMNS = [
    Column("customer", "客户编码", "Code"),
    Column("change", "调整额", "Change", "money"),
    Column("reason", "原因", "Reason"),
]


def template_issues(about: dict[str, object], source: str = ABOUT) -> list[Issue]:
    """Refuse a register made from a template this version does not understand.

    Version 1 is the first template; an older register without a stamp is not guessed at, and
    a newer one (made by a later crm-addin) is refused rather than half-understood.
    """
    raw = about.get("template_version")
    try:
        version = int(float(str(raw).strip()))
    except (ValueError, OverflowError):  # OverflowError: 'inf
        return [Issue(IssueCode.BAD_SHAPE, f"template version {raw!r} is missing or unreadable: this workbook "
                      "was not made from a crm-addin register template / 非本工具模板", column="template_version",
                      source=source)]
    if version > TEMPLATE_VERSION:
        return [Issue(IssueCode.BAD_SHAPE, f"register made from template version {version}, newer than this "
                      f"crm-addin understands ({TEMPLATE_VERSION}); upgrade crm-addin / 请升级", column="template_version",
                      source=source)]
    if version < TEMPLATE_VERSION:  # pragma: no cover - no older template exists yet
        return [Issue(IssueCode.BAD_SHAPE, f"register made from template version {version}; rebuild it with "
                      "`crm-addin build-workbooks` / 请用新模板重建", column="template_version", source=source)]
    return []
