"""The saved package made the way Excel writes it: rows, shared strings, styles, fixed dates.

openpyxl writes each workbook's frame (sheets' settings, tables, charts, validations, styles);
`fill_sheets` puts in the rows `xml_sheet.Sheet` rendered (formulas with their cached values),
the shared-strings table they refer to, and the package dates of the template (building twice
gives the same bytes). `finish_package` makes what openpyxl wrote acceptable to Excel's file
rules, for the builder and for every read-modify-write of the workflow: openpyxl writes a
font's children in an order the schema forbids (Excel's own order is b, i, ... name, family,
charset, scheme) and stamps the save time into the document's properties. A macro workbook gets
the register's VBA project, ribbon part and the buttons' drawing (`add_macro_parts`); openpyxl
keeps these parts when it rewrites the file but drops the ribbon's package relationship, which
`_finish` puts back.

Parts are edited as XML documents (minidom: it keeps every namespace declaration and prefix as
written, where ElementTree renames them), except the sheets' `<sheetData>`, which the renderer
streams: a sheet of a million rows is never one string.
"""
from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol
from xml.dom import minidom
from xml.etree import ElementTree as ET
from xml.parsers import expat

from openpyxl.packaging.core import DocumentProperties
from openpyxl.utils import column_index_from_string
from openpyxl.xml.functions import tostring

from crm_app.workbook.ribbon import CUSTOM_UI_PART, CUSTOM_UI_REL
from crm_app.workbook.sheet_buttons import VML_PART, VML_TYPE
from crm_app.workbook.xml_sheet import MAIN_NS, SharedStrings, value_xml

# Fixed document dates: the template's content does not depend on the day it was built.
FIXED_DATE = datetime(2025, 1, 1)
_ZIP_TIME = (2025, 1, 1, 0, 0, 0)
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHARED_STRINGS = "xl/sharedStrings.xml"
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_SST_REL = _DOC_REL_NS + "/sharedStrings"
VBA_PART = "xl/vbaProject.bin"
_ROOT_RELS = "_rels/.rels"
_CONTENT_TYPES = "[Content_Types].xml"
# CT_Font's sequence, the order Excel writes (and the Open XML SDK validates).
FONT_ORDER = ("b", "i", "strike", "condense", "extend", "outline", "shadow", "u", "vertAlign", "sz",
              "color", "name", "family", "charset", "scheme")
# Sheets of more rows than this are deflated at level 1, not 6: a quarter of the time for a file
# about a quarter larger (a 20,000-customer register: 0.4 s and 14 MB against 1.6 s and 11 MB).
FAST_DEFLATE_ROWS = 10_000
_CHUNK_CHARS = 1 << 20


class RenderedSheet(Protocol):
    def dimension(self) -> str: ...
    def render(self) -> Iterable[str | bytes]: ...
    def row_count(self) -> int: ...


def fill_sheets(data: bytes, sheets: Mapping[str, RenderedSheet], strings: SharedStrings,
                macro_parts: tuple[bytes, bytes, bytes] | None = None) -> bytes:
    """Return the package `data` (saved by openpyxl with these sheets' rows left empty) with each
    sheet's rendered rows in its `<sheetData>` and dimension, the shared strings, fonts in the
    schema's order and the fixed document dates; `macro_parts` (VBA project, customUI part, buttons'
    drawing) replace the VBA project openpyxl carried over and add the ribbon and the buttons."""
    files, names = _read(data)
    if macro_parts is not None:
        add_macro_parts(files, names, *macro_parts)
    paths = sheet_parts(files)
    fast = set()
    for title, sheet in sheets.items():
        part = paths[title]
        files[part] = _filled(files[part], sheet)
        if sheet.row_count() > FAST_DEFLATE_ROWS:
            fast.add(part)
    _add_shared_strings(files, names, strings)
    return _finish(files, names, fast)


def save_book(book, path: str | Path, values: Mapping[tuple[str, int, int], object] | None = None,
              recalculate: bool = True) -> None:
    """Save an openpyxl workbook the workflow changed (read, modified, written back) to `path`, as
    Excel would store it: text in a shared-strings table (openpyxl 3.1 writes every text inline,
    which Excel rewrites on its first save), fonts in the schema's order, and the formulas of
    `values` ((sheet, row, column) -> value) storing their values. `recalculate`: the file asks
    Excel to recalculate it on open, as it must when a formula stores no value."""
    values = values or {}
    book.calculation.fullCalcOnLoad = recalculate
    buffer = io.BytesIO()
    book.save(buffer)
    files, names = _read(buffer.getvalue())
    by_sheet: dict[str, dict[tuple[int, int], object]] = {}
    for (title, r, c), value in values.items():
        by_sheet.setdefault(title, {})[(r, c)] = value
    strings = SharedStrings()
    for title, part in sheet_parts(files).items():
        files[part] = stored_cells(files[part], by_sheet.get(title, {}), strings)
    _add_shared_strings(files, names, strings)
    Path(path).write_bytes(_finish(files, names, fixed_date=False))


def finish_package(data: bytes) -> bytes:
    """A package openpyxl saved (a workflow's write), with fonts in the schema's order."""
    files, names = _read(data)
    return _finish(files, names, fixed_date=False)


def _read(data: bytes) -> tuple[dict[str, object], list[str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        names = src.namelist()
        return {n: src.read(n) for n in names}, names


def add_macro_parts(files: dict[str, object], names: list[str], vba_project: bytes, custom_ui: bytes,
                    buttons: bytes) -> None:
    """The package's VBA project replaced by `vba_project`, the ribbon part `custom_ui` added (its
    relationship is added by `_finish`) and the buttons' VML drawing, which the sheet openpyxl
    wrote already links to (`sheet_buttons`)."""
    if VBA_PART not in files:
        raise ValueError("the package has no VBA project to replace: not saved as a macro workbook")
    files[VBA_PART] = vba_project
    for part, content in ((CUSTOM_UI_PART, custom_ui), (VML_PART, buttons)):
        files[part] = content
        if part not in names:
            names.append(part)
    _declare_default(files, "vml", VML_TYPE)


def _declare_default(files: dict[str, object], extension: str, content_type: str) -> None:
    """[Content_Types].xml with a Default for `extension`, unless it has one."""
    types = minidom.parseString(files[_CONTENT_TYPES])
    if any(d.getAttribute("Extension") == extension for d in types.getElementsByTagName("Default")):
        return
    default = types.createElementNS(types.documentElement.namespaceURI, "Default")
    default.setAttribute("Extension", extension)
    default.setAttribute("ContentType", content_type)
    first_override = next(iter(types.getElementsByTagName("Override")), None)
    types.documentElement.insertBefore(default, first_override)  # Defaults come first
    files[_CONTENT_TYPES] = types.toxml(encoding="UTF-8")


def _relate_ribbon(files: dict[str, object]) -> None:
    """The package relationship to the ribbon part, when the package holds one and lacks it."""
    if CUSTOM_UI_PART not in files:
        return
    rels = minidom.parseString(files[_ROOT_RELS])
    found = rels.getElementsByTagName("Relationship")
    if any(r.getAttribute("Type") == CUSTOM_UI_REL for r in found):
        return
    _append(rels, "Relationship", Id=_new_id(found), Type=CUSTOM_UI_REL, Target=CUSTOM_UI_PART)
    files[_ROOT_RELS] = rels.toxml(encoding="UTF-8")


def _new_id(relationships) -> str:
    ids = {r.getAttribute("Id") for r in relationships}
    return next(f"rId{n}" for n in range(1, len(ids) + 2) if f"rId{n}" not in ids)


def _finish(files: dict[str, object], names: list[str], fast: Iterable[str] = (), fixed_date: bool = True) -> bytes:
    _relate_ribbon(files)
    if "xl/styles.xml" in files:
        files["xl/styles.xml"] = fonts_in_order(files["xl/styles.xml"])
    if fixed_date and "docProps/core.xml" in files:
        files["docProps/core.xml"] = fixed_dates(files["docProps/core.xml"])
    return fix_zip(files, names, fast)


def sheet_parts(files: Mapping[str, object]) -> dict[str, str]:
    """Sheet title -> its part name inside the package."""
    book = ET.fromstring(files["xl/workbook.xml"])
    rels = ET.fromstring(files["xl/_rels/workbook.xml.rels"])
    targets = {}
    for rel in rels.iter(f"{{{_REL_NS}}}Relationship"):
        target = rel.get("Target", "")
        targets[rel.get("Id")] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return {sheet.get("name"): targets[sheet.get(f"{{{_DOC_REL_NS}}}id")]
            for sheet in book.iter(f"{{{MAIN_NS}}}sheet")}


def fonts_in_order(styles: bytes) -> bytes:
    """styles.xml with each font's children (cell and conditional-format fonts) in CT_Font's order."""
    doc = minidom.parseString(styles)
    rank = {name: i for i, name in enumerate(FONT_ORDER)}
    for font in doc.getElementsByTagNameNS(MAIN_NS, "font"):
        children = [n for n in font.childNodes if n.nodeType == n.ELEMENT_NODE]
        for child in sorted(children, key=lambda n: rank.get(n.localName, len(rank))):
            font.appendChild(child)  # moves it to the end: appended in order, they end up in order
    return doc.toxml(encoding="UTF-8")


def fixed_dates(core: bytes) -> bytes:
    """docProps/core.xml created and modified on the fixed date (openpyxl stamps the save time)."""
    props = DocumentProperties.from_tree(ET.fromstring(core))
    props.created = props.modified = FIXED_DATE
    return tostring(props.to_tree())


def _add_shared_strings(files: dict[str, object], names: list[str], strings: SharedStrings) -> None:
    """The table as the package's last part (rows render lazily and add to it), with its content
    type and its relationship from the workbook."""
    types = minidom.parseString(files["[Content_Types].xml"])
    if not any(o.getAttribute("PartName") == "/" + SHARED_STRINGS for o in types.getElementsByTagName("Override")):
        _append(types, "Override", PartName="/" + SHARED_STRINGS, ContentType=_SST_TYPE)
        files["[Content_Types].xml"] = types.toxml(encoding="UTF-8")
    rels = minidom.parseString(files["xl/_rels/workbook.xml.rels"])
    found = rels.getElementsByTagName("Relationship")
    if not any(r.getAttribute("Type") == _SST_REL for r in found):
        _append(rels, "Relationship", Id=_new_id(found), Type=_SST_REL, Target="sharedStrings.xml")
        files["xl/_rels/workbook.xml.rels"] = rels.toxml(encoding="UTF-8")
    if SHARED_STRINGS in names:
        names.remove(SHARED_STRINGS)
    names.append(SHARED_STRINGS)
    files[SHARED_STRINGS] = strings.xml()


def _append(doc: minidom.Document, tag: str, **attrs: str) -> None:
    """A child of the document's root element, in the root's (default) namespace."""
    root = doc.documentElement
    node = doc.createElementNS(root.namespaceURI, tag)
    for name, value in attrs.items():
        node.setAttribute(name, value)
    root.appendChild(node)


_SHEET_DATA = (b"<sheetData/>", b"<sheetData />", b"<sheetData></sheetData>")


def _filled(xml: bytes, sheet: RenderedSheet) -> Iterator[bytes]:
    """The sheet part with `sheet`'s rows in its empty `<sheetData>` and its dimension set."""
    at = [(xml.find(empty), empty) for empty in _SHEET_DATA if xml.find(empty) >= 0]
    if len(at) != 1:
        raise ValueError("the sheet already has rows: only empty sheets are filled")
    start, empty = at[0]
    head = xml[:start]
    dim = head.find(b"<dimension ")
    if dim >= 0:
        end = head.index(b">", dim) + 1
        head = head[:dim] + f'<dimension ref="{sheet.dimension()}" />'.encode() + head[end:]
    yield head + b"<sheetData>"
    batch: list[str] = []
    size = 0
    for piece in sheet.render():
        if isinstance(piece, bytes):  # rows rendered whole, already encoded
            if batch:
                yield "".join(batch).encode("utf-8")
                batch, size = [], 0
            yield piece
            continue
        batch.append(piece)
        size += len(piece)
        if size >= _CHUNK_CHARS:
            yield "".join(batch).encode("utf-8")
            batch, size = [], 0
    yield "".join(batch).encode("utf-8") + b"</sheetData>" + xml[start + len(empty):]


def stored_cells(xml: bytes, values: Mapping[tuple[int, int], object], strings: SharedStrings) -> bytes:
    """A sheet part openpyxl wrote, with its inline texts moved to `strings` and the formula cells
    of `values` ((row, column) -> value) storing their values; every other element, attribute and
    namespace declaration copied as written (an expat pass: a sheet's XML is never held as a tree)."""
    writer = _CellWriter(values, strings)
    parser = expat.ParserCreate()  # no namespace processing: prefixes and declarations pass as written
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.StartElementHandler = writer.start
    parser.EndElementHandler = writer.end
    parser.CharacterDataHandler = writer.text
    parser.Parse(xml, True)
    return writer.result()


class _CellWriter:
    """expat handlers that copy a sheet, rewriting its `<c>` cells as `stored_cells` says."""

    def __init__(self, values: Mapping[tuple[int, int], object], strings: SharedStrings):
        self.values, self.strings = values, strings
        self.out: list[str] = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n']
        self.open = False  # a start tag written without its '>' (closed as '/>' if nothing follows)
        self.cell: list[tuple] | None = None  # a cell's events, ("s", name, attrs) ("t", text) ("e", name)

    def start(self, name: str, attrs: list[str]) -> None:
        if self.cell is not None or name == "c":
            self.cell = (self.cell or []) + [("s", name, attrs)]
            return
        self._tag(name, attrs)

    def end(self, name: str) -> None:
        if self.cell is None:
            self._end(name)
            return
        self.cell.append(("e", name))
        if name == "c":
            events, self.cell = self.cell, None
            self._cell(events)

    def text(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(("t", data))
            return
        self._close_open()
        self.out.append(_escape(data))

    def _tag(self, name: str, attrs: list[str]) -> None:
        self._close_open()
        self.out.append(f"<{name}{_attributes(attrs)}")
        self.open = True

    def _end(self, name: str) -> None:
        if self.open:
            self.out.append("/>")
            self.open = False
        else:
            self.out.append(f"</{name}>")

    def _close_open(self) -> None:
        if self.open:
            self.out.append(">")
            self.open = False

    def _cell(self, events: list[tuple]) -> None:
        attrs = events[0][2]
        kind = attrs[attrs.index("t") + 1] if "t" in attrs[::2] else None
        key = _cell_key(attrs[attrs.index("r") + 1]) if self.values and "r" in attrs[::2] else None
        if kind == "inlineStr" and not any(e[0] == "s" and e[1] == "r" for e in events):  # rich text stays inline
            pairs = dict(zip(attrs[::2], attrs[1::2]))
            pairs["t"] = "s"
            events = [("s", "c", _flat(pairs)), ("s", "v", []),
                      ("t", str(self.strings.index(_text_of(events, "t")))), ("e", "v"), ("e", "c")]
        elif key in self.values:
            events = self._with_value(events, self.values[key])
        self._close_open()
        self.out.append(_serialised(events))

    @staticmethod
    def _with_value(events: list[tuple], value: object) -> list[tuple]:
        """The cell's events storing `value`: its formula kept (a cell of an array formula's range
        has none), its type set from the value."""
        pairs = dict(zip(events[0][2][::2], events[0][2][1::2]))
        t, v = value_xml(value)
        pairs.pop("t", None)
        if t:
            pairs["t"] = t.split('"')[1]
        formula = next((e for e in events if e[0] == "s" and e[1] == "f"), None)
        kept = [formula, ("t", _text_of(events, "f")), ("e", "f")] if formula is not None else []
        return [("s", "c", _flat(pairs)), *kept, ("s", "v", []), ("t", _unescape(v)), ("e", "v"), ("e", "c")]

    def result(self) -> bytes:
        return "".join(self.out).encode("utf-8")


def _serialised(events: list[tuple]) -> str:
    """A cell's events as XML: an element with nothing inside written as an empty tag."""
    out = []
    last = len(events) - 1
    for i, event in enumerate(events):
        if event[0] == "s":
            empty = i < last and events[i + 1][0] == "e"
            out.append(f"<{event[1]}{_attributes(event[2])}{'/>' if empty else '>'}")
        elif event[0] == "e":
            if events[i - 1][0] != "s":
                out.append(f"</{event[1]}>")
        else:
            out.append(_escape(event[1]))
    return "".join(out)


def _text_of(events: list[tuple], element: str) -> str:
    """The text inside every `element` among a cell's events, end to end."""
    depth, parts = 0, []
    for event in events:
        if event[0] == "s" and event[1] == element:
            depth += 1
        elif event[0] == "e" and event[1] == element:
            depth -= 1
        elif event[0] == "t" and depth:
            parts.append(event[1])
    return "".join(parts)


def _unescape(text: str) -> str:
    """value_xml's text is escaped already; the writer escapes what it writes."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _flat(pairs: Mapping[str, str]) -> list[str]:
    return [item for pair in pairs.items() for item in pair]


def _attributes(attrs: list[str]) -> str:
    return "".join(f' {attrs[i]}="{_escape_attr(attrs[i + 1])}"' for i in range(0, len(attrs), 2))


_ATTR_SPECIAL = frozenset('&<>"\n\r\t')


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(text: str) -> str:
    if not _ATTR_SPECIAL.intersection(text):
        return text
    return (_escape(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
            .replace("\t", "&#9;"))


def _cell_key(ref: str) -> tuple[int, int] | None:
    letters = ref.rstrip("0123456789")
    if not letters or letters == ref:
        return None
    return int(ref[len(letters):]), column_index_from_string(letters)


def fix_zip(files: Mapping[str, bytes | Iterable[bytes]], order: list[str], fast: Iterable[str] = ()) -> bytes:
    """Zip the parts in `order` with a fixed timestamp (same input, same bytes). A part may be
    given as an iterable of byte chunks (a sheet of a million rows is never one string); the
    `fast` ones are deflated at level 1."""
    out = io.BytesIO()
    fast = set(fast)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 1 if name in fast else None
            info.external_attr = 0o644 << 16
            part = files[name]
            if isinstance(part, (bytes, bytearray)):
                dst.writestr(info, part)
                continue
            with dst.open(info, "w", force_zip64=True) as stream:
                for chunk in part:
                    stream.write(chunk)
    return out.getvalue()
