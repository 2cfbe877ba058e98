"""A thin writer over an openpyxl sheet: labels, inputs, formulas with their cached values.

Every formula written through `formula`/`array` may carry the value Python computed for it;
`Sheet.cache` collects them for `workbook_cache.cache_values`. Text is always written as text,
even when it starts with '=' (no formula injection from data).
"""
from __future__ import annotations

from typing import Sequence

from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.formula import ArrayFormula

MONEY = "#,##0.00"
PERCENT = "0.00%"
DATE = "yyyy-mm-dd"
COUNT = "#,##0"
HEAD_FONT = Font(bold=True, color="FFFFFF")
HEAD_FILL = PatternFill("solid", fgColor="305496")
TITLE_FONT = Font(bold=True, size=14)
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")  # inputs are yellow
ADDIN_FILL = PatternFill("solid", fgColor="E2EFDA")  # add-in (Python) results are green
UNLOCKED = Protection(locked=False)
SKIP = object()  # no cached value


class Sheet:
    def __init__(self, ws):
        self.ws = ws
        self.cache: dict[str, object] = {}

    @property
    def title(self) -> str:
        return self.ws.title

    def label(self, ref: str, text: str, head: bool = False, title: bool = False) -> None:
        cell = self.ws[ref]
        cell.value, cell.data_type = text, "s"
        if head:
            cell.font, cell.fill = HEAD_FONT, HEAD_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        if title:
            cell.font = TITLE_FONT

    def header(self, row: int, first_col: int, labels: Sequence[str]) -> None:
        for i, text in enumerate(labels):
            self.label(f"{get_column_letter(first_col + i)}{row}", text, head=True)

    def value(self, ref: str, value: object, fmt: str | None = None, unlocked: bool = False) -> None:
        cell = self.ws[ref]
        cell.value = value
        if isinstance(value, str):
            cell.data_type = "s"
        self._style(cell, fmt, unlocked)

    def formula(self, ref: str, text: str, cached: object = SKIP, fmt: str | None = None,
                unlocked: bool = False) -> None:
        assert text.startswith("="), text
        cell = self.ws[ref]
        cell.value = text
        if cached is not SKIP:
            self.cache[ref] = cached
        self._style(cell, fmt, unlocked)

    def array(self, ref: str, text: str, values: Sequence[Sequence[object]] | None = None,
              fmt: str | None = None) -> None:
        """A legacy (Ctrl+Shift+Enter) array formula over `ref`, the form every Excel accepts for
        a UDF that returns a table; `values` fill the range as Excel stores the last results."""
        min_col, min_row, max_col, max_row = range_boundaries(ref)
        anchor = f"{get_column_letter(min_col)}{min_row}"
        self.ws[anchor] = ArrayFormula(ref, text if text.startswith("=") else "=" + text)
        for r in range(min_row, max_row + 1):
            for c in range(min_col, max_col + 1):
                cell = self.ws.cell(row=r, column=c)
                cell.fill = ADDIN_FILL
                if fmt:
                    cell.number_format = fmt
                if values is None:
                    continue
                i, j = r - min_row, c - min_col
                v = values[i][j] if i < len(values) and j < len(values[i]) else "#N/A"
                if cell.coordinate == anchor:
                    self.cache[anchor] = v
                elif v is not None and v != "":
                    self.value(cell.coordinate, v, fmt)

    def widths(self, widths: dict[str, float]) -> None:
        for col, width in widths.items():
            self.ws.column_dimensions[col].width = width

    def protect(self) -> None:
        """Locked cells read-only (no password: protection guards against slips, not people);
        sorting, filtering and resizing stay allowed."""
        p = self.ws.protection
        p.sheet = True
        p.sort = p.autoFilter = p.formatColumns = p.formatRows = False

    @staticmethod
    def _style(cell, fmt: str | None, unlocked: bool) -> None:
        if fmt:
            cell.number_format = fmt
        if unlocked:
            cell.protection = UNLOCKED
            cell.fill = INPUT_FILL
