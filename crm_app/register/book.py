"""Writes a review as a register workbook: Register (one row per customer), Summary and Issues."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from crm_app.io.files import atomic_path
from crm_core import schema
from crm_core.issues import issues_frame
from crm_core.review import Review
from crm_core.values import units

MONEY = "#,##0.00"
PERCENT = "0.00%"
_FORMATS = {schema.MONEY: MONEY, schema.RATE: PERCENT}
# (frame column, header, number format) of the review's Register sheet: the register columns a
# review computes (crm_core.schema.REVIEW_COLUMNS), labelled as in the register workbook.
REGISTER_HEADERS = [(c.frame_key, c.label, _FORMATS.get(c.kind)) for c in schema.REVIEW_COLUMNS]
_HEAD = Font(bold=True, color="FFFFFF")
_FILL = PatternFill("solid", fgColor="305496")


def set_text(cell: Cell, value: object) -> None:
    """Write a value; text always stays text, even when it starts with '=' (no formula injection)."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def cell_value(column: str, value: object) -> object:
    if column.endswith(schema.CENTS_SUFFIX):
        return units(value)
    if isinstance(value, float) and value != value:  # NaN: leave the cell empty
        return None
    return value


def write_register_sheet(ws, register: pd.DataFrame) -> None:
    for col, (_, label, _) in enumerate(REGISTER_HEADERS, start=1):
        cell = ws.cell(row=1, column=col)
        set_text(cell, label)
        cell.font, cell.fill = _HEAD, _FILL
    for r, record in enumerate(register[[k for k, _, _ in REGISTER_HEADERS]].itertuples(index=False), start=2):
        for c, (key, _, fmt) in enumerate(REGISTER_HEADERS, start=1):
            cell = ws.cell(row=r, column=c)
            set_text(cell, cell_value(key, record[c - 1]))
            if fmt:
                cell.number_format = fmt
    for c in range(1, len(REGISTER_HEADERS) + 1):
        ws.column_dimensions[get_column_letter(c)].width = 18
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = ws.dimensions


ISSUE_HEADERS = ["来源 Source", "行 Row", "列 Column", "严重性 Severity", "代码 Code", "说明 Message"]
ISSUE_ROWS = 100_000  # problems listed; the rest are counted


def write_issues_sheet(ws, issues) -> None:
    """The review's problems, one a row (source, row, column, severity, code, message)."""
    for col, label in enumerate(ISSUE_HEADERS, start=1):
        cell = ws.cell(row=1, column=col)
        set_text(cell, label)
        cell.font, cell.fill = _HEAD, _FILL
    table = issues_frame(list(issues)[:ISSUE_ROWS])
    for r, record in enumerate(table.itertuples(index=False), start=2):
        for c, value in enumerate(record, start=1):
            if c == 2:
                value = None if value is None or value != value else int(value)
            set_text(ws.cell(row=r, column=c), value if value != "" else None)
    if not len(table):
        set_text(ws.cell(row=2, column=1), "无问题 / no problems found")
    elif len(issues) > len(table):
        set_text(ws.cell(row=1, column=8), f"first {len(table):,} of {len(issues):,} listed / 只列出前 {len(table):,} 个")
    for col, width in zip("ABCDEF", (18, 9, 14, 10, 18, 90)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"


def write_review_workbook(review: Review, target: str | Path, notes: Sequence[str] = ()) -> Path:
    """Write the review atomically (temporary file, then rename; the old file kept as .bak);
    `notes` are lines put before the summary (where the ledger is, how many rows it has)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Register"
    write_register_sheet(ws, review.register)
    summary = wb.create_sheet("Summary")
    for r, line in enumerate([*notes, *review.summary_lines()], start=1):
        set_text(summary.cell(row=r, column=1), line)
    summary.column_dimensions["A"].width = 110
    write_issues_sheet(wb.create_sheet("Issues"), review.issues)
    with atomic_path(target) as tmp:
        wb.save(tmp)
    return Path(target)
