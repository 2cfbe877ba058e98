"""Stored formula values for a register the workflow rewrote, so that a previewer, a mail client
or openpyxl still reads numbers after a reallocation or a refresh.

openpyxl keeps a formula or its last value, never both: a workbook it reads and writes back
stores no value for any formula. Spreadsheet engines that could recompute them are not at hand
(no Excel; Python evaluators we tried missed defined names or took a minute for a demo
register), so the values come from what is known exactly:

- a formula none of whose precedents changed (followed through other formulas, defined names
  and tables) keeps the value the file stored before the write;
- a formula that depends on a changed cell takes the value the builder computes for the same
  cell in a register built again from the file's own ledger, policy and lines, but only when
  that formula is the builder's (same text) and every precedent agrees: each constant equal in
  both, each unchanged formula's value equal to the one stored, each changed formula itself
  agreeing this way;
- anything else stores no value, and the file asks Excel to recalculate on open. No value is
  ever guessed: a blank is shown rather than a stale number.

Precedents come from openpyxl's formula tokenizer, taken generously (a whole table for a
structured reference, every range a defined name's formula mentions): a superset can only
send more cells to the second rule, never keep a stale value.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
from openpyxl.formula import Tokenizer
from openpyxl.utils import range_boundaries
from openpyxl.worksheet.formula import ArrayFormula

from crm_app.io.files import read_table
from crm_app.register import schema as rs
from crm_app.workbook.data import register_data
from crm_app.workbook.package import save_book
from crm_app.workbook.xml_sheet import SKIP
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy

Cell = tuple[str, int, int]  # sheet title, row, column
Area = tuple[str, int, int, int, int]  # sheet title, first column, first row, last column, last row
MAX_ROW, MAX_COL = 1_048_576, 16_384


@dataclass
class Formulas:
    """A workbook's formula cells: text and precedent areas, by cell."""

    text: dict[Cell, str] = field(default_factory=dict)
    areas: dict[Cell, list[Area]] = field(default_factory=dict)
    # the other cells of an array formula's range -> its first cell (openpyxl loads them blank)
    members: dict[Cell, Cell] = field(default_factory=dict)


def formula_text(cell) -> str | None:
    """The formula of an openpyxl cell ('=...'), None for a constant (text that merely starts
    with '=' included)."""
    if cell.data_type != "f":
        return None
    value = cell.value
    if isinstance(value, ArrayFormula):
        return value.text if value.text.startswith("=") else "=" + value.text
    return value if isinstance(value, str) else None


def read_formulas(book) -> Formulas:
    names = {name: dn.attr_text for name, dn in book.defined_names.items()}
    tables = {t.name: (ws.title, t.ref) for ws in book.worksheets for t in ws.tables.values()}
    found = Formulas()
    for ws in book.worksheets:
        for (r, c), cell in ws._cells.items():
            text = formula_text(cell)
            if text is not None:
                found.text[(ws.title, r, c)] = text
                found.areas[(ws.title, r, c)] = precedents(text, ws.title, names, tables)
            if isinstance(cell.value, ArrayFormula) and cell.value.ref:
                c1, r1, c2, r2 = range_boundaries(cell.value.ref)
                found.members.update({(ws.title, rr, cc): (ws.title, r, c) for rr in range(r1, r2 + 1)
                                      for cc in range(c1, c2 + 1) if (rr, cc) != (r, c)})
    return found


def precedents(text: str, sheet: str, names: Mapping[str, str], tables: Mapping[str, tuple[str, str]],
                depth: int = 0) -> list[Area]:
    """Every area the formula reads (a superset: see the module docstring)."""
    spans = _range_spans(text)
    if spans is None:  # a formula the tokenizer cannot split: it may read anything
        return [("*", 1, 1, MAX_COL, MAX_ROW)]
    areas: list[Area] = []
    for start, end in spans:
        areas.extend(_areas(text[start:end], sheet, names, tables, depth))
    return areas


_SPANS: dict[str, list[tuple[int, int]] | None] = {}
_DIGITS = str.maketrans("123456789", "000000000")


def _range_spans(text: str) -> list[tuple[int, int]] | None:
    """Where the formula's references are (start, end). openpyxl's tokenizer takes about a
    millisecond a formula; formulas that differ only in their digits (row numbers, one per row)
    split alike, so each shape is tokenized once."""
    shape = text.translate(_DIGITS)
    if shape not in _SPANS:
        try:
            tokens = Tokenizer(text).items
        except Exception:
            _SPANS[shape] = None
            return None
        spans, at = [], 1  # after the '='
        for token in tokens:
            at = text.index(token.value, at) if token.value else at
            if token.type == "OPERAND" and token.subtype == "RANGE":
                spans.append((at, at + len(token.value)))
            at += len(token.value)
        _SPANS[shape] = spans
    return _SPANS[shape]


def _areas(ref: str, sheet: str, names, tables, depth: int) -> list[Area]:
    if "[" in ref:  # a structured reference: the whole table
        title, table_ref = tables.get(ref.split("[", 1)[0], ("*", "A1:XFD1048576"))
        return [(title, *range_boundaries(table_ref))]
    if "!" in ref:
        sheet, ref = ref.rsplit("!", 1)
        sheet = sheet.strip("'").replace("''", "'")
    if ref in names and depth < 5:
        return precedents("=" + names[ref], sheet, names, tables, depth + 1)
    try:
        c1, r1, c2, r2 = range_boundaries(ref.replace("$", ""))
    except ValueError:  # a name we do not know, an external reference: it may read anything
        return [("*", 1, 1, MAX_COL, MAX_ROW)]
    return [(sheet, c1 or 1, r1 or 1, c2 or MAX_COL, r2 or MAX_ROW)]


def changed_cells(book, old_values: Mapping[Cell, object], formulas: Formulas) -> set[Cell]:
    """Constants that differ from what the file held before (written, cleared or added); an
    array formula's cells are the formula's, not constants."""
    changed = set()
    for ws in book.worksheets:
        for (r, c), cell in ws._cells.items():
            key = (ws.title, r, c)
            if key not in formulas.text and key not in formulas.members and not same(cell.value, old_values.get(key)):
                changed.add(key)
    cells = {ws.title: ws._cells for ws in book.worksheets}
    for key in old_values:  # cells the write removed
        found = cells.get(key[0])
        if key not in formulas.members and (found is None or (key[1], key[2]) not in found):
            changed.add(key)
    return changed


def dirty_formulas(formulas: Formulas, changed: set[Cell]) -> set[Cell]:
    """Formula cells that depend, directly or through other formulas, on a changed cell."""
    dirty: set[Cell] = set()
    frontier = set(changed)
    while frontier:
        rows = _rows_by_column(frontier)
        reached = {key for key, areas in formulas.areas.items()
                   if key not in dirty and any(_touches(area, rows) for area in areas)}
        dirty |= reached
        frontier = reached
    return dirty


def _rows_by_column(cells: set[Cell]) -> dict[str, dict[int, list[int]]]:
    """sheet -> column -> sorted rows of `cells` (an area is then checked by bisecting)."""
    out: dict[str, dict[int, list[int]]] = {}
    for title, r, c in cells:
        out.setdefault(title, {}).setdefault(c, []).append(r)
    for columns in out.values():
        for rows in columns.values():
            rows.sort()
    return out


def _touches(area: Area, rows: Mapping[str, Mapping[int, list[int]]]) -> bool:
    title, c1, r1, c2, r2 = area
    sheets = rows.values() if title == "*" else [rows.get(title, {})]
    for columns in sheets:
        for c, found in columns.items():
            if c1 <= c <= c2:
                i = bisect_left(found, r1)
                if i < len(found) and found[i] <= r2:
                    return True
    return False


def same(a: object, b: object) -> bool:
    """Two cell values alike as a spreadsheet shows them (blank and '' alike, numbers by value,
    dates by day and time)."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return a == b


def _plain(value: object) -> object:
    if value is None or value == "" or value is SKIP:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return value


@dataclass
class Rebuilt:
    """The builder's cells of a register built again: constants, formula texts, cached values."""

    constants: dict[Cell, object]
    formulas: dict[Cell, str]
    cached: dict[Cell, object]
    unknown_rows: dict[str, list[tuple[int, int]]]  # rows the builder wrote whole (the ledger), per sheet
    extent: dict[str, tuple[int, int]] = field(default_factory=dict)  # last row and column, per sheet


def rebuilt_cells(sheets: Mapping[str, object]) -> Rebuilt:
    """The cells of the builder's `Sheet`s (crm_app.workbook.xml_sheet), before rendering."""
    constants, texts, cached, unknown = {}, {}, {}, {}
    for title, sheet in sheets.items():
        for r, cells in sheet._rows.items():
            for c, (_, kind, a, b, _) in cells.items():
                if kind == "v":
                    constants[(title, r, c)] = a
                else:
                    texts[(title, r, c)] = a if kind == "f" else a[1]
                    cached[(title, r, c)] = b
        unknown[title] = [(first, last) for first, last, _, _ in sheet._blocks]
    extent: dict[str, tuple[int, int]] = {}
    for title, r, c in (*constants, *texts):
        last = extent.get(title, (1, 1))
        extent[title] = (max(last[0], r), max(last[1], c))
    return Rebuilt(constants, texts, cached, unknown, extent)


def recomputed(book, formulas: Formulas, dirty: set[Cell], old_values: Mapping[Cell, object],
               rebuilt: Rebuilt | None) -> dict[Cell, object]:
    """Values for the formula cells: unchanged ones as stored before, changed ones from the
    rebuild where it agrees (module docstring); cells left out store nothing."""
    # a formula whose stored value reads blank may store "" or nothing: the rebuild has to agree
    dirty = dirty | {cell for cell in formulas.text if cell not in old_values}
    dirty |= {m for m, anchor in formulas.members.items() if anchor in dirty}
    values = {cell: old_values[cell] for cell in (*formulas.text, *formulas.members)
              if cell not in dirty and cell in old_values}
    if rebuilt is None:
        return values
    verdicts: dict[Cell, bool] = {}
    area_verdicts: dict[Area, bool] = {}  # a range many formulas read (a register column) is checked once
    extent = {ws.title: (ws.max_row, ws.max_column) for ws in book.worksheets}  # openpyxl counts anew each time

    def area_agrees(area: Area) -> bool:
        if area not in area_verdicts:
            area_verdicts[area] = _area_agrees(book, area, formulas, dirty, old_values, rebuilt, agrees, extent)
        return area_verdicts[area]

    def agrees(cell: Cell) -> bool:
        if cell not in verdicts:
            verdicts[cell] = False  # (no formula reads itself; this guards a circular file anyway)
            verdicts[cell] = (rebuilt.formulas.get(cell) == formulas.text[cell]
                              and rebuilt.cached.get(cell, SKIP) is not SKIP
                              and all(area_agrees(area) for area in formulas.areas[cell]))
        return verdicts[cell]

    for cell in dirty:
        anchor = formulas.members.get(cell)
        if anchor is None and agrees(cell):
            values[cell] = rebuilt.cached[cell]
        elif anchor is not None and agrees(anchor) and rebuilt.constants.get(cell) is not None:
            values[cell] = rebuilt.constants[cell]
    return values


def _area_agrees(book, area: Area, formulas: Formulas, dirty, old_values, rebuilt: Rebuilt, agrees,
                 extent: Mapping[str, tuple[int, int]]) -> bool:
    title, c1, r1, c2, r2 = area
    if title == "*" or title not in book.sheetnames:
        return False
    if any(first <= r2 and r1 <= last for first, last in rebuilt.unknown_rows.get(title, [])):
        return False  # rows the builder wrote whole: their cells are not at hand to compare
    ws = book[title]
    last_row, last_col = rebuilt.extent.get(title, (1, 1))
    r2, c2 = min(r2, max(extent[title][0], last_row)), min(c2, max(extent[title][1], last_col))
    for r in range(r1, r2 + 1):
        for c in range(c1, c2 + 1):
            cell = (title, r, c)
            anchor = formulas.members.get(cell)
            if anchor is not None:
                ok = agrees(anchor) if anchor in dirty else same(rebuilt.constants.get(cell), old_values.get(cell))
            elif cell in formulas.text:
                ok = agrees(cell) if cell in dirty else (
                    cell in rebuilt.formulas and same(rebuilt.cached.get(cell), old_values.get(cell)))
            else:
                found = ws._cells.get((r, c))
                ok = cell not in rebuilt.formulas and same(rebuilt.constants.get(cell),
                                                           None if found is None else found.value)
            if not ok:
                return False
    return True


# ----------------------------------------------------------------------------- the workflow's saves
def save_rewritten(book, path, before, rebuild: Callable[[], Mapping[str, object] | None] | None = None) -> int:
    """Save `book` (read from the workbook `before`, a read-only openpyxl workbook of stored
    values, then changed) to `path`, storing every formula value known exactly (module docstring).
    `rebuild` lays out the register again from the file's own inputs (`rebuild_sheets`). Returns
    how many formulas store no value; when some do not, the file asks Excel to recalculate on open."""
    old = read_stored_values(before)
    formulas = read_formulas(book)
    dirty = dirty_formulas(formulas, changed_cells(book, old, formulas))
    rebuilt = None
    if rebuild is not None:
        try:
            sheets = rebuild()
        except (CrmInputError, KeyError, ValueError, TypeError):
            # the file's ledger or policy does not review, or a sheet was reshaped by hand: the
            # write goes on, and the cells that would need the rebuild store nothing
            sheets = None
        rebuilt = rebuilt_cells(sheets) if sheets is not None else None
    values = recomputed(book, formulas, dirty, old, rebuilt)
    save_book(book, path, values, recalculate=len(values) < len(formulas.text))
    return len(formulas.text) - len(values)


def read_stored_values(values_book) -> dict[Cell, object]:
    """Every non-blank cell's stored value of a workbook opened with openpyxl's data_only."""
    out: dict[Cell, object] = {}
    for ws in values_book.worksheets:
        for r, row in enumerate(ws.iter_rows(min_row=1, min_col=1, values_only=True), start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    out[(ws.title, r, c)] = value
    return out


def rebuild_sheets(book, path: Path) -> dict[str, object] | None:
    """The register laid out again from what the file holds now: its Ledger and Policy sheets
    reviewed, its Register's credit lines as they stand."""
    from crm_app.workbook.builder import lay_out

    if not {rs.LEDGER, rs.POLICY, rs.REGISTER} <= set(book.sheetnames):
        return None  # not a register the builder made: nothing to rebuild from
    ledger, policy, year = review_inputs(book, path)
    customer_file, activity = typed_inputs(book)
    data = register_data(ledger, policy, year, customer_file=customer_file)
    found, _ = rs.sheet_records(book[rs.REGISTER], rs.REGISTER_COLUMNS, rs.REGISTER)
    lines = found.drop_duplicates("customer").set_index("customer")
    register = data.review.register.copy()
    for key in ("credit_line_cents", "allocated_line_cents"):
        if key in lines:
            known = register["customer"].map(lines[key])
            register[key] = known.where(known.notna(), register.get(key, register["credit_line_cents"]))
    if "owner" in lines:  # typed on the Register
        register["owner"] = register["customer"].map(lines["owner"])
    about = rs.read_about(book[rs.ABOUT]) if rs.ABOUT in book.sheetnames else {}
    signed = about.get("signed_off")
    data = replace(data, review=replace(data.review, register=register),
                   signed_off="" if signed in (None, rs.UNSIGNED) else str(signed),
                   activity=activity)
    _, sheets, _ = lay_out(data, macros=path.suffix.lower() == ".xlsm")
    return sheets


def typed_inputs(book) -> tuple[pd.DataFrame | None, object]:
    """What users typed in a register besides its Ledger and Policy sheets, for a register built
    again from it: the Register's customer file (None without a Register) and the contact and
    service logs (`activity_sheets.read_activity`)."""
    from crm_app.register.load import read_customer_file
    from crm_app.workbook.activity_sheets import read_activity

    customer_file = read_customer_file(book[rs.REGISTER])[0] if rs.REGISTER in book.sheetnames else None
    return customer_file, read_activity(book)


def review_inputs(book, path: Path) -> tuple[object, Policy, int | None]:
    """The ledger (from the Ledger sheet of the file at `path`), policy and year of a register."""
    pairs = [(k, v) for k, v, *_ in book[rs.POLICY].iter_rows(min_row=2, max_col=2, values_only=True)
             if k is not None]
    policy = Policy.from_pairs(pairs, source=rs.POLICY)
    ledger_is_on_the_sheet(book)
    ledger = normalize_ledger(read_table(path, sheet=rs.LEDGER), policy, source=rs.LEDGER)
    if ledger.errors:
        raise CrmInputError(ledger.errors)
    year = book[rs.CREDIT]["C3"].value if rs.CREDIT in book.sheetnames else None
    return ledger, policy, int(year) if isinstance(year, (int, float)) and not isinstance(year, bool) else None


def ledger_is_on_the_sheet(book) -> None:
    """A register whose ledger was longer than a sheet holds it in its file, not on the Ledger
    sheet: reviewing the sheet would review nothing, so say where the rows are."""
    about = rs.read_about(book[rs.ABOUT]) if rs.ABOUT in book.sheetnames else {}
    rows, on_sheet = about.get("ledger_rows"), about.get("ledger_rows_on_sheet")
    if isinstance(rows, (int, float)) and isinstance(on_sheet, (int, float)) and on_sheet < rows:
        where = about.get("ledger_source") or "its file"
        raise CrmInputError([Issue(IssueCode.EMPTY, f"the ledger ({int(rows):,} rows) is not on the Ledger sheet but in "
                                   f"{where}: review it there with crm-addin review or review-file / 台账不在台账表中",
                                   source=rs.LEDGER)])
