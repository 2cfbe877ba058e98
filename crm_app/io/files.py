"""Reading users' files and writing them safely.

Ledgers come from CSV (UTF-8 or the GB18030 many Chinese ERPs export), XLSX or Parquet.
Files the user owns are written to a temporary file in the same folder, flushed, and renamed
over the old one, after a backup copy of the old one is kept: a crash leaves old or new, never a mix.
"""
from __future__ import annotations

import codecs
import os
import shutil
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.ledger import HEADER_ALIASES, REQUIRED, Ledger, map_headers, normalize_ledger
from crm_core.policy import Policy
from crm_core.values import distinct_categories, is_blank

LEDGER_SHEETS = ("Ledger", "台账", "ledger", "明细")
# Read as text whatever they look like. Dates are left to Arrow: a column of ISO dates arrives
# as dates, any other spelling stays text for the ledger's own date parser.
_TEXT_COLUMNS = ("customer", "invoice_no", "customer_name", "type", "applies_to")
# Columns with few distinct values are read dictionary-encoded (pandas categoricals): the ledger
# checks and group sums then work per distinct value and on integer codes, not on every row's text.
_CODED_COLUMNS = ("customer", "customer_name", "type")
# Of those, the ones a CSV reader codes as it parses, block by block in its threads: the document
# type has a handful of values, so the blocks' dictionaries merge at no cost, and 10^7 rows took
# 0.1-0.3 s less than coding the text afterwards, in 80 MB less memory. Customers and names are
# coded afterwards, whole: merging 20 blocks' dictionaries of 10^5 names cost more than it saved.
_CSV_CODED_COLUMNS = ("type",)
CSV_BLOCK_BYTES = 1 << 25  # Arrow parses a CSV in blocks of this size (its types come from the first);
# 32 MB rather than 16: half the blocks, half the dictionaries to merge, less memory churn


class UnreadableFileError(CrmInputError):
    """A file that is missing, a folder, or not ours to read: nothing is known about its content,
    so the command line says exit 4 (the machine), not 2 (the data)."""


def readable_file(path: str | Path, what: str = "file") -> Path:
    """`path` if this process can open it for reading; else UnreadableFileError naming it."""
    path = Path(path)
    try:
        with open(path, "rb"):
            return path
    except OSError as exc:
        raise UnreadableFileError([Issue(IssueCode.EMPTY, _open_problem(path, what, exc), source=str(path))]) from None


def _open_problem(path: Path, what: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{what} not found / 找不到文件"
    if os.path.isdir(path):  # Linux says IsADirectoryError, Windows PermissionError
        return f"{what} is a folder, not a file / 这是文件夹"
    if isinstance(exc, PermissionError):
        return f"no permission to read the {what} / 无权读取"
    return f"cannot open the {what}: {exc.strerror or exc} / 无法打开"


def unreadable(path: Path, exc: OSError) -> UnreadableFileError:
    """An error raised while reading, as the issue the command line prints."""
    return UnreadableFileError([Issue(IssueCode.EMPTY, f"cannot read the file: {exc.strerror or exc} "
                                      "/ 无法读取文件", source=str(path))])


def text_problem(head: bytes, what: str = "CSV file") -> str | None:
    """Why a file whose first bytes are `head` cannot be the text file `what` names, when they show it."""
    save_as = "CSV UTF-8" if "CSV" in what else "UTF-8 text"
    if not head:
        return "the file is empty / 文件为空"
    if head.startswith(b"PK\x03\x04"):
        return f"this is a workbook or a zip archive, not a {what}" + \
            (": save the sheet as CSV UTF-8 / 请另存为CSV" if "CSV" in what else " / 不是文本文件")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_mark(head):
        return f"this {what} is UTF-16 text: save it as {save_as} / 请另存为UTF-8编码"
    if b"\x00" in head:
        return f"this is not a {what}: it holds binary data / 不是文本文件"
    return None


def _utf16_without_mark(head: bytes) -> bool:
    """Latin text in UTF-16 has a zero byte in every other place."""
    half = len(head) // 2
    return half >= 4 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * half


def check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise CrmInputError([Issue(IssueCode.EMPTY, "the file is empty / 文件为空", source=path.name)])


def read_table(path: str | Path, sheet: str | None = None, bad_lines: list[Issue] | None = None) -> pd.DataFrame:
    """A raw table from CSV/TSV, XLSX/XLSM or Parquet, codes kept as text.

    A CSV line with more or fewer fields than the header becomes an empty row (so every row keeps
    its number) and an error issue naming its row, added to `bad_lines`. Without that list the
    file is refused when it has such lines: the caller could not tell its user they were left out.
    """
    path = readable_file(path, "ledger file")
    suffix = path.suffix.lower()
    found = _BadLines()
    with reading_errors(path):
        check_not_empty(path)
        if suffix in (".csv", ".txt", ".tsv"):
            frame = _read_csv(path, "\t" if suffix == ".tsv" else ",", found)
        elif suffix in (".xlsx", ".xlsm"):
            frame = _read_excel(path, sheet)
        elif suffix in (".parquet", ".pq"):
            frame = _read_parquet(path)
        else:
            raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"unsupported file type {suffix!r} (use .csv, .xlsx "
                                       "or .parquet) / 不支持的文件类型", source=str(path))])
    _hand_over(found.issues(path.name), bad_lines)
    return frame


def read_header(path: str | Path) -> pd.DataFrame:
    """A CSV/TSV or Parquet ledger's header alone, as an empty table (its cells in attrs["header"])."""
    path = readable_file(path, "ledger file")
    with reading_errors(path):
        check_not_empty(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        else:
            names = _csv_header(path, "\t" if path.suffix.lower() == ".tsv" else ",")[1]
    frame = pd.DataFrame(columns=[str(n) for n in names])
    frame.attrs["header"] = list(names)
    return frame


@contextmanager
def reading_errors(path: Path) -> Iterator[None]:
    """Reading a ledger file: what goes wrong becomes one message naming the file (CrmInputError),
    never a traceback; the machine's refusals (locked, missing) stay OSErrors the CLI reports."""
    try:
        yield
    except CrmInputError:
        raise
    except OSError as exc:  # before ValueError: Arrow's I/O errors are both
        raise unreadable(path, exc) from exc
    except (ValueError, UnicodeError, ImportError) as exc:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"cannot read the file: {exc}", source=str(path))]) from exc


def _hand_over(issues: list[Issue], bad_lines: list[Issue] | None) -> None:
    if bad_lines is not None:
        bad_lines.extend(issues)
    elif issues:
        raise CrmInputError(issues)


class _BadLines:
    """Arrow's invalid_row_handler: CSV lines whose field count is not the header's. Each is
    skipped and recorded by its row number (header = row 1, as Arrow counts rows, blank lines and
    quoted line breaks as a spreadsheet would). Only a read on one thread knows the numbers: on
    several, the first such line stops the read (`unnumbered`) and the file is read again on one."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[int, int]] = {}  # row -> (fields, fields in the header)
        self.threads, self.unnumbered = True, False

    def __call__(self, row) -> str:
        if row.number is None or row.number < 0:
            self.unnumbered = True
            return "error"
        self.rows[row.number] = (row.actual_columns, row.expected_columns)
        return "skip"

    def read_on_one_thread(self) -> None:
        self.threads, self.unnumbered = False, False

    def issues(self, source: str) -> list[Issue]:
        return [Issue(IssueCode.BAD_SHAPE, f"the line has {fields} fields where the header has {wanted} "
                      "(a comma in a number or name not in quotes?) / 字段数与表头不符", row=row, source=source)
                for row, (fields, wanted) in sorted(self.rows.items())]

    def with_empty_rows(self, table, first_row: int, last: bool = False):
        """`table`, whose records start at row `first_row`, with an empty row at each skipped line
        among them; `last`: also at those after its last record (the end of the file)."""
        import pyarrow as pa

        end, at = first_row + len(table), []
        for row in sorted(r for r in self.rows if r >= first_row):
            if not (row < end or last and row == end):
                break
            at.append(row - first_row)
            end += 1
        if not at:
            return table
        empty = np.zeros(len(table) + len(at), dtype=bool)
        empty[at] = True
        index = np.zeros(len(empty), dtype=np.int64)
        index[~empty] = np.arange(len(table))
        return table.take(pa.array(index, mask=empty))  # a masked index takes an all-null row


def _read_csv(path: Path, sep: str, found: _BadLines) -> pd.DataFrame:
    """Arrow's multi-threaded reader, only the ledger's columns. Text columns stay text (codes
    such as 00123 keep their zeros); only '' is a blank; empty lines are kept as blank rows so
    that row numbers in messages are the file's own."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(path, *_csv_options(path, sep, bad_lines=found), memory_pool=jemalloc_pool())
    except pa.ArrowInvalid:
        if not found.unnumbered:
            raise
        found.read_on_one_thread()
        table = pacsv.read_csv(path, *_csv_options(path, sep, bad_lines=found), memory_pool=jemalloc_pool())
    frame = _table_frame(found.with_empty_rows(table, 2, last=True))
    frame.attrs["header"] = _csv_header(path, sep)[1]  # Arrow read only the ledger's columns
    return frame


def read_csv_block(block: bytes, path: Path, first: bool) -> tuple[pd.DataFrame, list[Issue]]:
    """One block of a CSV file's lines (the first holds the header) read as `read_table` reads
    the whole file: the same column types, an empty row for each malformed line, and those lines'
    issues numbered from 0 at the block's first record (the caller places them)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    encoding, header = _csv_header(path, sep)
    found = _BadLines()
    if not block:  # Dask's byte reader may end a file with an empty block
        return pd.DataFrame({str(h): pd.Series(dtype=object) for h in header}), []

    def read():
        read_options, parse, convert = _csv_options(path, sep, bad_lines=found)
        read_options.column_names, read_options.skip_rows = [str(h) for h in header], 1 if first else 0
        return pacsv.read_csv(pa.BufferReader(block), read_options, parse, convert, memory_pool=jemalloc_pool())

    try:
        table = read()
    except pa.ArrowInvalid:
        if not found.unnumbered:
            raise
        found.read_on_one_thread()
        table = read()
    first_record = 2 if first else 1  # as Arrow numbers the block's lines, the header line 1
    frame = _table_frame(found.with_empty_rows(table, first_record, last=True))
    issues = [replace(i, row=i.row - first_record) for i in found.issues(path.name)]
    return frame, issues


def jemalloc_pool():
    """Arrow's jemalloc pool, where pyarrow has it (its Linux and macOS wheels), unless
    ARROW_DEFAULT_MEMORY_POOL names a pool; else None (Arrow's default). Arrow's default pool on
    Linux, mimalloc, gives what is freed back to the system within milliseconds and takes it again
    as fresh pages, which the kernel must clear; jemalloc keeps them for reuse. The CSV readers
    allocate from it: they build and drop about three times the table in parsing buffers (10^7
    rows read in 2.1-2.6 s, 2.4-3.4 s of it in the kernel, against 1.6 s). The in-process engine
    makes it the process's pool (`use_jemalloc_pool`)."""
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # Windows wheels: mimalloc and the system allocator only
        return None


def use_jemalloc_pool() -> None:
    """Make `jemalloc_pool` Arrow's default pool in this process, for every later read and
    kernel. A file reviewed whole moves several times its size through Arrow's buffers (the
    Parquet reader's decompression buffers, the columns handed to pandas, the checks' kernels):
    10^7 rows in fresh processes, alternating, from Parquet 2.50-2.91 s (1.2 s in the kernel)
    against 3.05-3.86 s (2.0-2.9 s), from CSV 3.46-4.00 s against 3.91-4.33 s, for about 250 MB
    more at the peak. Not for the Dask engine's partitions: 10^8 rows there took 59-61 s with it
    against 57-59 s without."""
    import pyarrow as pa

    pool = jemalloc_pool()
    if pool is not None and pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)


def _csv_options(path: Path, sep: str, bad_lines: _BadLines | None = None):
    """Arrow's read/parse/convert options for a ledger CSV (UTF-8, else GB18030). `bad_lines`:
    the handler of lines with the wrong number of fields (it says whether to use threads)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    encoding, header = _csv_header(path, sep)
    mapping, _ = map_headers(header)
    coded = pa.dictionary(pa.int32(), pa.string())  # Arrow's CSV reader codes in int32 only
    text = {col: coded if canon in _CSV_CODED_COLUMNS else pa.string()
            for col, canon in mapping.items() if canon in _TEXT_COLUMNS}
    return (pacsv.ReadOptions(encoding=encoding, block_size=CSV_BLOCK_BYTES,
                              use_threads=bad_lines is None or bad_lines.threads),
            pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=False, invalid_row_handler=bad_lines),
            pacsv.ConvertOptions(column_types=text, include_columns=list(mapping) or None, null_values=[""],
                                 strings_can_be_null=True, quoted_strings_can_be_null=True))


def _csv_header(path: Path, sep: str) -> tuple[str, list]:
    """Arrow's name of the file's encoding, and the header's cells."""
    encoding = _csv_encoding(path)
    return encoding, list(pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8-sig" if encoding == "utf8"
                                      else encoding).columns)


ENCODING_SAMPLE_BYTES = 1 << 20


def _csv_encoding(path: Path) -> str:
    """Arrow's name of the file's encoding: UTF-8 if its header reads as UTF-8, else GB18030. A
    header in plain ASCII says nothing of the names below it: the first megabyte decides then
    (not the whole file: a stray byte far down must stay an error, not turn every name to GB18030)."""
    with open(path, "rb") as handle:
        head = handle.read(ENCODING_SAMPLE_BYTES)
    problem = text_problem(head)
    if problem:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, problem, source=path.name)])
    header = head.split(b"\n", 1)[0]
    sample = head if header.isascii() else header
    for encoding in ("utf-8", "gb18030"):
        try:  # incremental: the sample may end inside a character
            codecs.getincrementaldecoder(encoding)().decode(sample, final=len(head) < ENCODING_SAMPLE_BYTES)
        except UnicodeDecodeError:
            continue
        return "utf8" if encoding == "utf-8" else encoding
    raise CrmInputError([Issue(IssueCode.BAD_SHAPE, NOT_UTF8_OR_GB18030, source=path.name)])


NOT_UTF8_OR_GB18030 = "the file is neither UTF-8 nor GB18030 text: save it as CSV UTF-8 / 编码既不是UTF-8也不是GB18030"


def _table_frame(table) -> pd.DataFrame:
    """An Arrow table as pandas: header byte-order marks dropped, Arrow's buffers freed as it goes,
    dates as datetime64 rather than one Python date object per row, the customer, name and type
    columns (and any column stored dictionary-encoded) as categoricals (`_categorical`), two
    columns at a time while the rest converts.

    The text columns are encoded here, each whole column at once, not by Arrow's readers: a CSV
    reader encodes block by block and a Parquet reader row group by row group, with the
    dictionaries merged afterwards, and merging the dictionaries of 10^6 customers took 1.7 s a
    column. Columns a Parquet file stores dictionary-encoded (`stored_dictionary_columns`) come
    with a dictionary per row group, merged by Arrow's `unify_dictionaries`."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    table = table.rename_columns([c.lstrip("\ufeff") for c in table.column_names])
    mapping, _ = map_headers(table.column_names)
    coded = [name for name, kind in zip(table.column_names, table.schema.types) if pa.types.is_dictionary(kind)
             or mapping.get(name) in _CODED_COLUMNS and (pa.types.is_string(kind) or pa.types.is_large_string(kind))]
    names = table.column_names  # the table is unusable once converted with self_destruct
    columns = [table.column(name) for name in coded]
    table = table.drop_columns(coded) if coded else table  # converted, its buffers free as it goes
    with ThreadPoolExecutor(2, thread_name_prefix="crm-encode") as pool:  # Arrow's kernels release the GIL
        converting = pool.map(_categorical, columns)
        del columns
        frame = table.to_pandas(self_destruct=True, date_as_object=False)
        categoricals = dict(zip(coded, converting))
    for position, name in enumerate(names):
        if name in categoricals:
            frame.insert(position, name, categoricals[name])
    return frame


def _categorical(column) -> pd.Categorical:
    """A text or dictionary-encoded Arrow column as a pandas categorical, built from its codes.
    Arrow's own conversion first merges the chunks' dictionaries and pandas then checks the
    categories are distinct: measured on 10^7 rows of 10^6 customers, 2.3 s against 0.1 s here.
    Text is encoded whole, by one `dictionary_encode` whose chunks share its dictionary; chunks
    with dictionaries of their own are merged first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    chunks = column.chunks
    if not chunks:
        return pd.Categorical.from_codes([], dtype=distinct_categories(pd.Index([], dtype="str")), validate=False)
    if not all(_same_array(chunk.dictionary, chunks[-1].dictionary) for chunk in chunks[:-1]):
        chunks = column.unify_dictionaries().chunks  # a Parquet file's row groups: one dictionary each
    codes = np.concatenate([pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False) for chunk in chunks])
    categories = pd.Index(chunks[-1].dictionary.to_pandas(), copy=False)
    return pd.Categorical.from_codes(codes, dtype=distinct_categories(categories), validate=False)


def _same_array(one, other) -> bool:
    """The same Arrow data (one dictionary shared by chunks), else equal values."""
    same_buffers = [b.address if b is not None else None for b in one.buffers()] == \
        [b.address if b is not None else None for b in other.buffers()]
    return len(one) == len(other) and one.offset == other.offset and same_buffers or one.equals(other)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    frame = read_parquet_row_groups(path, None)
    frame.attrs["header"] = pq.read_schema(path).names  # only the ledger's columns were read
    return frame


def parquet_row_group_runs(path: Path, rows: int) -> list[list[int]]:
    """The file's row groups as runs of consecutive ones of at least `rows` rows (the last may have
    fewer): a writer's small row groups (DuckDB's hold 122,880 rows) are read a run at a time."""
    import pyarrow.parquet as pq

    with reading_errors(path):
        meta = pq.read_metadata(path)
    runs, run, size = [], [], 0
    for group in range(meta.num_row_groups):
        run.append(group)
        size += meta.row_group(group).num_rows
        if size >= rows:
            runs.append(run)
            run, size = [], 0
    return runs + [run] if run else runs


def read_parquet_row_groups(path: Path, groups: list[int] | None) -> pd.DataFrame:
    """The ledger's columns of some row groups of a Parquet file (None: all of them), read as the
    whole file is: an engine's partition of the file gets the same columns and types."""
    import pyarrow.parquet as pq

    mapping = _parquet_columns(path)
    source = pq.ParquetFile(path, read_dictionary=stored_dictionary_columns(path, mapping))
    columns = list(mapping) or None
    return _table_frame(source.read(columns=columns) if groups is None else source.read_row_groups(groups, columns=columns))


DICTIONARY_BYTES_PER_ROW = 4  # uncompressed: a column chunk this small holds dictionary codes only


def stored_dictionary_columns(path: Path, mapping: dict) -> list[str]:
    """The customer, name and type columns the file stores dictionary-encoded in every row group,
    which Arrow then reads as codes and one dictionary per row group (0.2 s for 10^7 rows of 10^5
    customers, against 0.8 s to read the text and 2 s to encode it). A writer falls back to plain
    text when a row group's dictionary outgrows its page (about 10^5 names): read as a dictionary,
    such a column would be encoded again row by row, slower than reading it as text. Its data pages
    then take more than DICTIONARY_BYTES_PER_ROW uncompressed bytes a row, where codes take at most 3."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    wanted = {col for col, canon in mapping.items() if canon in _CODED_COLUMNS}
    sizes = {col: [] for col in wanted}
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema in wanted:
                coded = chunk.has_dictionary_page and \
                    chunk.total_uncompressed_size < DICTIONARY_BYTES_PER_ROW * max(row_group.num_rows, 1)
                sizes[chunk.path_in_schema].append(coded)
    return sorted(col for col, coded in sizes.items() if coded and all(coded))


def _parquet_columns(path: Path) -> dict:
    """The ledger's columns in a Parquet file (its header -> the canonical names)."""
    import pyarrow.parquet as pq

    return map_headers(pq.read_schema(path).names)[0]


def _read_excel(path: Path, sheet: str | None) -> pd.DataFrame:
    """The sheet's stored values, cell for cell. openpyxl only reads values: macros never run and
    external links are not followed. Not pandas' reader: it turns cells reading NA, NULL or n/a
    into blanks (a customer coded NA would vanish) and, in pandas 2, TRUE into 1."""
    import openpyxl

    with workbook_errors(path.name):
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
        try:
            names = book.sheetnames
            chosen = sheet or next((s for s in LEDGER_SHEETS if s in names), names[0])
            if chosen not in names:
                raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"no sheet {chosen!r} (sheets: {', '.join(names)})",
                                           source=path.name)])
            rows = [list(r) for r in book[chosen].iter_rows(values_only=True)]
        finally:
            book.close()
    while rows and all(is_blank(v) for v in rows[-1]):
        rows.pop()  # formatted but empty rows below the data
    if not rows:
        return pd.DataFrame()
    width = max(len(r) for r in rows)
    rows = [r + [None] * (width - len(r)) for r in rows]
    return pd.DataFrame(rows[1:], columns=_header_names(rows[0]), dtype=object)


@contextmanager
def workbook_errors(source: str) -> Iterator[None]:
    """What openpyxl raises for a file that is not a sound workbook (not a zip, cut short, a zip
    of something else, broken XML inside), as one issue naming the file. openpyxl reads lazily:
    the block must hold the reading of the cells too, not only the opening."""
    import zlib

    from openpyxl.utils.exceptions import InvalidFileException

    try:
        yield
    except CrmInputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, SyntaxError, InvalidFileException,
            ValueError, TypeError) as exc:  # the last two: openpyxl's checks of values in the XML
        raise _not_a_workbook(source, exc) from exc


def _not_a_workbook(source: str, exc: Exception) -> CrmInputError:
    reason = "it is not a zip file" if isinstance(exc, zipfile.BadZipFile) and "not a zip" in str(exc) else \
        f"{type(exc).__name__}: {exc}"
    return CrmInputError([Issue(IssueCode.BAD_SHAPE, f"not a readable Excel workbook (.xlsx/.xlsm): {reason}; "
                                "is it cut short, or saved in another format? / 不是可读取的Excel工作簿",
                                source=source)])


def _header_names(cells: list) -> list:
    """Header cells as column names: blanks named by position, repeats numbered (amount, amount.1)."""
    names, seen = [], {}
    for pos, cell in enumerate(cells):
        name = f"Unnamed: {pos}" if is_blank(cell) else cell
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(f"{name}.{count}" if count else name)
    return names


def read_ledger(path: str | Path, policy: Policy | None = None, sheet: str | None = None) -> Ledger:
    """Read and validate a ledger file; issues name the file, its row and column. Malformed CSV
    lines are error issues on their rows, as bad values are."""
    bad_lines: list[Issue] = []
    frame = read_table(path, sheet, bad_lines)
    return validated_ledger(frame, bad_lines, policy, Path(path).name)


def validated_ledger(frame: pd.DataFrame, bad_lines: list[Issue], policy: Policy | None, source: str) -> Ledger:
    """A table `read_table` read, validated: its issues, one for a header that is not a ledger's,
    and the malformed lines the reader found."""
    ledger = normalize_ledger(frame, policy, source=source)
    return with_bad_lines(_one_header_issue(ledger, frame), bad_lines)


def with_bad_lines(ledger: Ledger, bad_lines: list[Issue]) -> Ledger:
    """The ledger with the malformed lines the reader left out, whose empty stand-in rows are
    not counted as blank rows of the file. Under a header that lacks a needed column they are
    left out: a field count measured against the wrong header says nothing."""
    if not bad_lines or any(i.code == IssueCode.MISSING_COLUMN for i in ledger.issues):
        return ledger
    return replace(ledger, issues=sorted(ledger.issues + bad_lines, key=lambda i: i.row or 0),
                   blank_rows=max(0, ledger.blank_rows - len(bad_lines)))


def _one_header_issue(ledger: Ledger, frame: pd.DataFrame) -> Ledger:
    return replace(ledger, issues=one_header_issue(ledger.issues, frame, ledger.source))


def one_header_issue(issues: list[Issue], frame: pd.DataFrame, source: str) -> list[Issue]:
    """Several needed columns missing is most often a file that is not a ledger (another
    workbook, the wrong sheet, a header row lower down): one message saying which and what the
    header does name, rather than one per missing column."""
    missing = [i.column for i in issues if i.code == IssueCode.MISSING_COLUMN]
    if len(missing) < 2:
        return issues
    header = [str(c) for c in frame.attrs.get("header", frame.columns) if not str(c).startswith("Unnamed: ")]
    shown = ", ".join(repr(c[:30]) for c in header[:6]) + (", ..." if len(header) > 6 else "") or "nothing"
    lead = "not a ledger: " if len(missing) == len(REQUIRED) else ""
    names = ", ".join(missing[:-1]) + " or " + missing[-1]
    issue = Issue(IssueCode.MISSING_COLUMN, f"{lead}no {names} column (accepted headers: {accepted_headers(missing)}); "
                  f"the header has {shown} / 未找到台账表头", row=1, source=source)
    return [issue, *(i for i in issues if i.code != IssueCode.MISSING_COLUMN)]


def file_problem(exc: OSError) -> str:
    """One line for a file the machine would not let us read or write (locked, read-only, full disk)."""
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot read or write{where}: {exc.strerror or exc} / 无法读写文件"


def accepted_headers(columns=None) -> str:
    return "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in HEADER_ALIASES.items() if columns is None or k in columns)


@contextmanager
def atomic_path(target: str | Path, backup: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success, keep a backup and rename it over `target`.

    The temporary file is removed if the writer fails, so the old file stays untouched. The
    backup is itself written beside and renamed, so a crash never leaves a half-copied backup;
    temporary files left by a killed writer are swept once they are stale.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix + ".tmp", dir=target.parent)
    except OSError as exc:  # name the file the user asked for, not our temporary
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file 0600; give the result the permissions the old file (or umask) had
    os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask())
    try:
        yield tmp
        _fsync(tmp)
        if backup and target.exists():
            _copy_atomically(target, backup_path(target))
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


STALE_TEMPORARY_SECONDS = 3600  # no writer takes an hour; an older temporary was left by a crash


def _sweep_stale_temporaries(target: Path) -> None:
    now = time.time()
    for leftover in target.parent.glob(f".{target.stem}.*{target.suffix}.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                leftover.unlink()
        except OSError:  # another process swept it first, or it is not ours to remove
            continue


def _copy_atomically(source: Path, destination: Path) -> None:
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        shutil.copy2(source, partial)
        os.replace(partial, destination)
    finally:
        if partial.exists():
            partial.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def backup_path(target: Path) -> Path:
    return target.with_name(target.name + ".bak")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Text that a spreadsheet would run as a formula (=, +, -, @, tab, CR) gets a leading quote."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_text(value: object) -> object:
    """The inverse of csv_safe for a CSV cell read back: "'=X" -> "=X" (other text unchanged)."""
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in FORMULA_STARTS:
        return value[1:]
    return value
