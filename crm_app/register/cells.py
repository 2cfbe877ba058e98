"""Writing the cells of a register workbook the add-in edits in place (openpyxl)."""
from __future__ import annotations

from openpyxl.cell import Cell


def set_text(cell: Cell, value: object) -> None:
    """Write a value; text always stays text, even when it starts with '=' (no formula injection)."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
