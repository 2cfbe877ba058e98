"""A fast writer for the register's sheets: labels, inputs, formulas with their cached values.

openpyxl keeps a Python object per cell and serialises each through ElementTree, about 50 µs a
cell: a register of 20,000 customers (a million cells) took most of a minute. A `Sheet` keeps its
cells as small lists and writes the sheet's rows (`<sheetData>`) itself in one pass (`render`),
each formula with the value Python computed for it (Excel's cached `<v>`), so the file shows
numbers even where nothing recalculates. openpyxl still writes the rest of the sheet (column
widths, protection, validations, tables, charts) and the styles, from the style ids `Styles`
registers with it; `package.fill_sheets` puts the rendered rows and their shared strings into
the saved package.

Text is always written as a shared string, even when it starts with '=' (no formula injection from data).
"""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Iterable, Iterator, Sequence

from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import column_index_from_string, get_column_letter, range_boundaries

from crm_core.issues import check_invariant

MONEY = "#,##0.00"
PERCENT = "0.00%"
DATE = "yyyy-mm-dd"
COUNT = "#,##0"
WHOLE = "0"  # a year, a day count shown without a thousands separator
DECIMAL = "0.00"  # a weight, a ratio that is not a share
# Microsoft YaHei (微软雅黑) is on every Windows since Vista whatever its language (DengXian is an
# optional feature outside Chinese Windows) and comes with Office for Mac; charset 134 (GB2312)
# and family 2 (sans serif) let Excel pick a CJK sans font where it is missing. LibreOffice
# falls back to the installed CJK sans (WenQuanYi Micro Hei, Noto Sans CJK).
FONT_NAME = "Microsoft YaHei"
FONT_SIZE = 10
LINE_POINTS = 14  # height of one line of 10-point YaHei text in a row
BODY_FONT = Font(name=FONT_NAME, size=FONT_SIZE, family=2, charset=134)  # the workbook's default font
HEAD_FONT = Font(name=FONT_NAME, size=FONT_SIZE, family=2, charset=134, bold=True, color="FFFFFF")
HEAD_FILL = PatternFill("solid", fgColor="305496")
TITLE_FONT = Font(name=FONT_NAME, size=14, family=2, charset=134, bold=True)
# a plain warning: the sheet is not the whole story
NOTE_FONT = Font(name=FONT_NAME, size=FONT_SIZE, family=2, charset=134, bold=True, color="9C0006")
# what the add-in computed and when: a remark, not a warning
ADDIN_NOTE_FONT = Font(name=FONT_NAME, size=9, family=2, charset=134, italic=True, color="375623")
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")  # inputs are yellow
ADDIN_FILL = PatternFill("solid", fgColor="E2EFDA")  # add-in (Python) results are green
UNLOCKED = Protection(locked=False)
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
HEAD_ALIGN = Alignment(wrap_text=True, vertical="center", horizontal="center")  # "中文\nEnglish"
SKIP = object()  # no cached value
# Rows of a worksheet in Excel and LibreOffice; read when used, so tests can pretend sheets are short.
SHEET_ROWS = 1_048_576

FONTS = {"head": HEAD_FONT, "title": TITLE_FONT, "note": NOTE_FONT, "addin": ADDIN_NOTE_FONT, "body": BODY_FONT}
FILLS = {"head": HEAD_FILL, "input": INPUT_FILL, "addin": ADDIN_FILL}
# "wrap" is the headers' (Sheet.label(head=True)): centred, wrapped; "top": long text, wrapped
ALIGNS = {"wrap": HEAD_ALIGN, "top": WRAP_TOP}
_FILL_KEYS = {id(v): k for k, v in FILLS.items()}
# style key: (number format, font, fill, alignment, unlocked)
PLAIN = (None, None, None, None, False)
_REF = re.compile(r"([A-Z]{1,3})([0-9]+)$")
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # not XML, or not UTF-8
_EXCEL_EPOCH = datetime(1899, 12, 30)
_COLUMNS: dict[str, int] = {}
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")


def xml_text(text: str) -> str:
    """Element text: escaped, characters XML cannot hold dropped."""
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    return xml_escape(text)


def xml_escape(text: str) -> str:
    """Escaped element text of a string known to hold only characters XML allows (a formula)."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


class SharedStrings:
    """The workbook's shared-strings table (xl/sharedStrings.xml): every distinct text once, cells
    refer to it by index, as Excel stores text (a file of inline strings Excel rewrites on its
    first save)."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.references = 0

    def index(self, text: str) -> int:
        """The table index of `text` (added when new); counts one more cell referring to it."""
        self.references += 1
        i = self._index.get(text)
        if i is None:
            i = self._index[text] = len(self._index)
        return i

    def cell(self, text: str) -> str:
        """A text cell's type and value: ' t="s"><v>n</v>' (the part after its reference and style)."""
        return f' t="s"><v>{self.index(text)}</v>'

    def xml(self) -> Iterator[bytes]:
        """The part's bytes: texts in index order, leading or trailing spaces kept."""
        yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN_NS}" '
               f'count="{self.references}" uniqueCount="{len(self._index)}">').encode()
        batch = []
        for text in self._index:
            space = ' xml:space="preserve"' if text != text.strip() else ""
            batch.append(f"<si><t{space}>{xml_text(text)}</t></si>")
            if len(batch) == 10_000:
                yield "".join(batch).encode("utf-8")
                batch = []
        yield ("".join(batch) + "</sst>").encode("utf-8")


def split_ref(ref: str) -> tuple[str, int, int]:
    """'AB12' -> ('AB', 12, 28)."""
    letters = ref.rstrip("0123456789")
    col = _COLUMNS.get(letters)
    if col is None:
        if _REF.match(ref) is None:
            raise ValueError(f"not a cell reference: {ref!r}")
        col = _COLUMNS[letters] = column_index_from_string(letters)
    return letters, int(ref[len(letters):]), col


def excel_serial(value: date | datetime) -> float | int:
    """Days since 1899-12-30 (Excel's date numbers from March 1900 on), whole for a date."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    days = value - _EXCEL_EPOCH
    return days.days if not days.seconds and not days.microseconds else days.total_seconds() / 86400


def value_cell(ref: str, style: str, value: object, strings: SharedStrings) -> str | None:
    """A constant cell's XML; None for an empty one (None or '', as openpyxl writes them)."""
    if type(value) is float:
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>' if math.isfinite(value) else None
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return f'<c r="{ref}"{style}{strings.cell(value)}</c>'
    if isinstance(value, bool):
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (datetime, date)):
        return f'<c r="{ref}"{style}><v>{excel_serial(value)}</v></c>'
    if isinstance(value, float):
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>' if math.isfinite(value) else None
    if isinstance(value, int):
        return f'<c r="{ref}"{style}><v>{int(value)}</v></c>'
    return f'<c r="{ref}"{style}{strings.cell(str(value))}</c>'


def value_xml(value: object) -> tuple[str, str]:
    """(type attribute, <v> text) of a cached value, as Excel writes them."""
    if isinstance(value, bool):
        return ' t="b"', "1" if value else "0"
    if isinstance(value, (datetime, date)):
        day = datetime(value.year, value.month, value.day)
        return "", repr(float((day - _EXCEL_EPOCH).days))
    if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return "", repr(float(value)) if isinstance(value, float) else str(int(value))
    if isinstance(value, str) and value in ERRORS:
        return ' t="e"', value
    return ' t="str"', xml_text("" if value is None else str(value))


def cached_xml(value: object) -> tuple[str, str]:
    """(type attribute, <v> text) of a formula's cached value."""
    if type(value) is float and math.isfinite(value):
        return "", repr(value)
    if isinstance(value, str) and value not in ERRORS:
        return ' t="str"', xml_text(value)
    return value_xml(value)


class Styles:
    """Style ids of the workbook's cell formats (openpyxl writes styles.xml from them)."""

    def __init__(self, wb):
        self.wb = wb
        self._ids: dict[tuple, int] = {}
        self.attrs: dict[tuple, str] = {PLAIN: ""}  # key -> ' s="n"'
        self.frozen = False  # set once styles.xml is written

    def attr(self, key: tuple) -> str:
        """The cell's ` s="n"` attribute ('' for the default style)."""
        known = self.attrs.get(key)
        if known is not None:
            return known
        sid = self._ids.get(key)
        if sid is None:
            if self.frozen:
                raise RuntimeError(f"style {key} first used after the workbook was saved")
            fmt, font, fill, align, unlocked = key
            cell = Cell(self.wb.worksheets[0])  # a scratch cell: registers fonts, fills, formats
            if fmt:
                cell.number_format = fmt
            if font:
                cell.font = FONTS[font]
            if fill:
                cell.fill = FILLS[fill]
            if align:
                cell.alignment = ALIGNS[align]
            if unlocked:
                cell.protection = UNLOCKED
            sid = self._ids[key] = self.wb._cell_styles.add(cell._style)
        self.attrs[key] = f' s="{sid}"' if sid else ""
        return self.attrs[key]


class Sheet:
    """One sheet's cells: `value`, `label`, `formula`, `array`, then `render` them once."""

    def __init__(self, ws, styles: Styles | None = None, strings: SharedStrings | None = None):
        self.ws = ws
        self.styles = styles or Styles(ws.parent)
        self.strings = strings or SharedStrings()  # the workbook's: one table for all its sheets
        self._rows: dict[int, dict[int, list]] = {}  # row -> column -> [letters, kind, a, b, style]
        self._blocks: list[tuple[int, int, int, Iterable[str | bytes]]] = []  # first, last row, last col, XML
        self._heights: dict[int, float] = {}  # row -> height in points (rows are written here, not by openpyxl)

    @property
    def title(self) -> str:
        return self.ws.title

    # ------------------------------------------------------------------ writing
    def _put(self, ref: str, kind: str, a: object, b: object, style: tuple) -> None:
        letters = ref.rstrip("0123456789")  # split_ref, inline: a million calls
        col = _COLUMNS.get(letters)
        if col is None:
            letters, row, col = split_ref(ref)
        else:
            row = int(ref[len(letters):])
        cells = self._rows.get(row)
        if cells is None:
            cells = self._rows[row] = {}
        cells[col] = [letters, kind, a, b, style]

    def label(self, ref: str, text: str, head: bool = False, title: bool = False, note: bool = False) -> None:
        style = PLAIN
        if head:
            style = (None, "head", "head", "wrap", False)
        elif title or note:
            style = (None, "title" if title else "note", None, None, False)
        self._put(ref, "v", str(text), None, style)

    def header(self, row: int, first_col: int, labels: Sequence[str]) -> None:
        for i, text in enumerate(labels):
            self.label(f"{get_column_letter(first_col + i)}{row}", text, head=True)

    def value(self, ref: str, value: object, fmt: str | None = None, unlocked: bool = False,
              fill: str | None = None) -> None:
        """A constant; `unlocked`: an input (yellow); `fill`: 'addin' for a value Python computed."""
        self._put(ref, "v", value, None, (fmt, None, "input" if unlocked else fill, None, unlocked))

    def formula(self, ref: str, text: str, cached: object = SKIP, fmt: str | None = None,
                unlocked: bool = False) -> None:
        check_invariant(text.startswith("="), "a formula cell's text starts with '='", text)
        self._put(ref, "f", text, cached, (fmt, None, "input" if unlocked else None, None, unlocked))

    def array(self, ref: str, text: str, values: Sequence[Sequence[object]] | None = None,
              fmt: str | None = None) -> None:
        """A legacy (Ctrl+Shift+Enter) array formula over `ref`, the form every Excel accepts for
        a UDF that returns a table; `values` fill the range as Excel stores the last results."""
        min_col, min_row, max_col, max_row = range_boundaries(ref)
        style = (fmt, None, "addin", None, False)
        text = text if text.startswith("=") else "=" + text
        for r in range(min_row, max_row + 1):
            i = r - min_row
            row = values[i] if values is not None and i < len(values) else None
            for c in range(min_col, max_col + 1):
                j = c - min_col
                cell = f"{get_column_letter(c)}{r}"
                v = SKIP if values is None else (row[j] if row is not None and j < len(row) else "#N/A")
                if r == min_row and c == min_col:
                    self._put(cell, "a", (ref, text), v, style)
                else:
                    self._put(cell, "v", None if v is SKIP or v == "" else v, None, style)

    def style(self, ref: str, fmt: str | None = None, fill: PatternFill | str | None = None,
              unlocked: bool | None = None) -> None:
        """Change one cell's format, fill or protection (an empty cell is created)."""
        letters, row, col = split_ref(ref)
        cell = self._rows.get(row, {}).get(col)
        if cell is None:
            self._put(ref, "v", None, None, PLAIN)
            cell = self._rows[row][col]
        old_fmt, font, old_fill, align, old_unlocked = cell[4]
        fill = _FILL_KEYS.get(id(fill), fill) if fill is not None else old_fill
        cell[4] = (fmt or old_fmt, font, fill, align, old_unlocked if unlocked is None else unlocked)

    def rows_xml(self, first: int, last: int, last_col: int, rows: Iterable[str | bytes]) -> None:
        """Rows `first`..`last` given as ready `<row>` XML, text or UTF-8 (a ledger's million
        rows): no cell of this sheet may fall among them."""
        self._blocks.append((first, last, last_col, rows))

    def height(self, row: int, points: float) -> None:
        """A row's height in points, e.g. for a two-line header (15 points a line of 11-point text)."""
        self._heights[row] = points

    def widths(self, widths: dict[str, float]) -> None:
        for col, width in widths.items():
            self.ws.column_dimensions[col].width = width

    def protect(self) -> None:
        """Locked cells read-only (no password: protection guards against slips, not people);
        sorting, filtering and resizing stay allowed."""
        p = self.ws.protection
        p.sheet = True
        p.sort = p.autoFilter = p.formatColumns = p.formatRows = False

    def style_attr(self, fmt: str | None = None, fill: str | None = None) -> str:
        return self.styles.attr((fmt, None, fill, None, False))

    # ------------------------------------------------------------------ rendering
    def register_styles(self) -> None:
        """Give every format this sheet's cells use its style id: before the workbook is saved,
        which writes the styles."""
        # in the cells' order, not a set's: style ids (and so the file's bytes) must not depend on
        # the interpreter's string hashing
        keys = dict.fromkeys(cell[4] for cells in self._rows.values() for cell in cells.values())
        for key in keys:
            self.styles.attr(key)

    def row_count(self) -> int:
        return len(self._rows) + sum(b[1] - b[0] + 1 for b in self._blocks)

    def dimension(self) -> str:
        rows = list(self._rows) + [b[0] for b in self._blocks] + [b[1] for b in self._blocks]
        if not rows:
            return "A1"
        cols = [c for cells in self._rows.values() for c in cells] + [b[2] for b in self._blocks]
        return f"A1:{get_column_letter(max(cols))}{max(rows)}"

    def render(self) -> Iterable[str | bytes]:
        """The rows of `<sheetData>`, in order, as XML pieces (text, or UTF-8 for rows given whole)."""
        blocks = sorted(self._blocks, key=lambda b: b[0])
        rows = sorted(self._rows)
        k = 0
        for first, last, _, lines in blocks:
            while k < len(rows) and rows[k] < first:
                yield self._row_xml(rows[k])
                k += 1
            if k < len(rows) and rows[k] <= last:
                raise ValueError(f"{self.title}: cell row {rows[k]} inside rows {first}-{last} written whole")
            yield from lines
        for r in rows[k:]:
            yield self._row_xml(r)

    def _row_xml(self, r: int) -> str:
        cells = self._rows[r]
        attrs, attr = self.styles.attrs, self.styles.attr
        height = self._heights.get(r)
        out = [f'<row r="{r}" ht="{height:g}" customHeight="1">' if height else f'<row r="{r}">']
        add = out.append
        for c in sorted(cells):
            letters, kind, a, b, style = cells[c]
            ref = f"{letters}{r}"
            s = attrs.get(style)
            if s is None:
                s = attr(style)
            if kind == "v":
                xml = value_cell(ref, s, a, self.strings)
                if xml is not None:
                    add(xml)
                elif s:
                    add(f'<c r="{ref}"{s}/>')
            elif kind == "f":
                if b is SKIP:
                    add(f'<c r="{ref}"{s}><f>{xml_escape(a[1:])}</f><v/></c>')
                else:
                    t, v = cached_xml(b)
                    add(f'<c r="{ref}"{s}{t}><f>{xml_escape(a[1:])}</f><v>{v}</v></c>')
            else:
                t, v = ("", "") if b is SKIP else cached_xml(b)
                add(f'<c r="{ref}"{s}{t}><f t="array" ref="{a[0]}">{xml_escape(a[1][1:])}</f>'
                    + (f"<v>{v}</v></c>" if b is not SKIP else "<v/></c>"))
        add("</row>")
        return "".join(out)
