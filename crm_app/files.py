"""Reading users' files and writing them safely.

Ledgers come from CSV (UTF-8 or the GB18030 many Chinese ERPs export), XLSX or Parquet.
Files the user owns are written to a temporary file in the same folder, flushed, and renamed
over the old one, after a backup copy of the old one is kept: a crash leaves old or new, never a mix.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.ledger import HEADER_ALIASES, Ledger, map_headers, normalize_ledger
from crm_core.policy import Policy
from crm_core.values import is_blank

LEDGER_SHEETS = ("Ledger", "台账", "ledger", "明细")
# Read as text whatever they look like. Dates are left to Arrow: a column of ISO dates arrives
# as dates, any other spelling stays text for the ledger's own date parser.
_TEXT_COLUMNS = ("customer", "invoice_no", "customer_name", "type")
# Columns with few distinct values are read dictionary-encoded (pandas categoricals): the ledger
# checks and group sums then work per distinct value and on integer codes, not on every row's text.
_CODED_COLUMNS = ("customer", "customer_name", "type")
CSV_BLOCK_BYTES = 1 << 25  # Arrow parses a CSV in blocks of this size (its types come from the first);
# 32 MB rather than 16: half the blocks, half the dictionaries to merge, less memory churn


def read_table(path: str | Path, sheet: str | None = None) -> pd.DataFrame:
    """A raw table from CSV/TSV, XLSX/XLSM or Parquet, codes kept as text."""
    path = Path(path)
    if not path.exists():
        raise CrmInputError([Issue(IssueCode.EMPTY, "file not found", source=str(path))])
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".xlsx", ".xlsm"):
            return _read_excel(path, sheet)
        if suffix in (".parquet", ".pq"):
            return _read_parquet(path)
    except (ValueError, OSError, UnicodeError, ImportError) as exc:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"cannot read the file: {exc}", source=str(path))]) from exc
    raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"unsupported file type {suffix!r} (use .csv, .xlsx or .parquet)",
                               source=str(path))])


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    """Arrow's multi-threaded reader, only the ledger's columns. Text columns stay text (codes
    such as 00123 keep their zeros); only '' is a blank; empty lines are kept as blank rows so
    that row numbers in messages are the file's own."""
    import pyarrow.csv as pacsv

    return _table_frame(_dictionary_encoded(pacsv.read_csv(path, *_csv_options(path, sep))))


def _dictionary_encoded(table):
    """The customer, name and type columns dictionary-encoded, two columns at a time. Arrow's CSV
    reader could encode them itself, but block by block, with each block's dictionary merged
    afterwards: measured on a 10^7-row CSV, reading them as text and then encoding each whole
    column takes about half the CPU time."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.compute as pc

    mapping, _ = map_headers(table.column_names)
    coded = [col for col, canon in mapping.items() if canon in _CODED_COLUMNS
             and (pa.types.is_string(table.schema.field(col).type) or pa.types.is_large_string(table.schema.field(col).type))]
    if not coded:  # Parquet batches come encoded already
        return table
    with ThreadPoolExecutor(2, thread_name_prefix="crm-encode") as pool:  # Arrow's kernels release the GIL
        encoded = list(pool.map(lambda col: pc.dictionary_encode(table.column(col)), coded))
    for col, column in zip(coded, encoded):
        table = table.set_column(table.schema.get_field_index(col), col, column)
    return table


def _csv_options(path: Path, sep: str, all_text: bool = False, skip_rows: int = 0):
    """Arrow's read/parse/convert options for a ledger CSV (UTF-8, else GB18030). `all_text`:
    every ledger column as text; `skip_rows`: data rows to skip below the header."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    for encoding in ("utf8", "gb18030"):
        try:
            header = pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8-sig" if encoding == "utf8"
                                 else encoding).columns
        except UnicodeDecodeError:
            continue
        mapping, _ = map_headers(header)
        text = {col: pa.string() for col, canon in mapping.items() if canon in _TEXT_COLUMNS or all_text}
        return (pacsv.ReadOptions(encoding=encoding, block_size=CSV_BLOCK_BYTES, skip_rows_after_names=skip_rows),
                pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=False),
                pacsv.ConvertOptions(column_types=text, include_columns=list(mapping) or None, null_values=[""],
                                     strings_can_be_null=True, quoted_strings_can_be_null=True))
    raise UnicodeError("the file is neither UTF-8 nor GB18030 text")


def ledger_batches(path: str | Path, rows: int) -> Iterator[pd.DataFrame]:
    """A CSV/TSV or Parquet ledger as raw tables of about `rows` rows each, in file order, read
    as `read_table` reads the whole file; for files larger than memory."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            yield from _parquet_batches(path, rows)
        else:
            yield from _csv_batches(path, "\t" if path.suffix.lower() == ".tsv" else ",", rows)
    except (ValueError, OSError, UnicodeError, ImportError) as exc:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"cannot read the file: {exc}", source=str(path))]) from exc


def _parquet_batches(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    mapping, coded = _parquet_columns(path)
    source = pq.ParquetFile(path, read_dictionary=coded)
    columns = list(mapping) or None
    done = 0
    for groups in _row_group_runs(source.metadata, rows):
        if source.metadata.row_group(groups[0]).num_rows > rows:  # one group larger than a chunk
            for batch in source.iter_batches(batch_size=rows, row_groups=groups, columns=columns):
                done += len(batch)
                yield _batches_frame([batch])
        else:  # whole row groups, read by Arrow's threads: faster than batch by batch
            table = source.read_row_groups(groups, columns=columns, use_threads=True)
            if len(table):
                done += len(table)
                yield _table_frame(table)
    if not done:  # no rows at all: the header still says what is missing
        yield pd.DataFrame(columns=source.schema_arrow.names)


def _row_group_runs(metadata, rows: int) -> Iterator[list[int]]:
    """Consecutive row groups gathered until they hold `rows` rows (the last one may go past);
    a group larger than `rows` on its own."""
    run: list[int] = []
    size = 0
    for group in range(metadata.num_row_groups):
        count = metadata.row_group(group).num_rows
        if run and count > rows:
            yield run
            run, size = [], 0
        run.append(group)
        size += count
        if size >= rows:
            yield run
            run, size = [], 0
    if run:
        yield run


def _csv_batches(path: Path, sep: str, rows: int) -> Iterator[pd.DataFrame]:
    """Arrow's streaming reader fixes a column's type from the first block; a later cell that does
    not fit (text in a column of numbers) restarts the reading after the rows already handed out,
    with every column as text from there on."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    done, all_text = 0, False
    while True:
        pending: list = []
        try:
            reader = pacsv.open_csv(path, *_csv_options(path, sep, all_text, skip_rows=done))
            for batch in reader:
                pending.append(batch)
                if sum(len(b) for b in pending) >= rows:
                    frame, pending = _batches_frame(pending), []
                    done += len(frame)
                    yield frame
            if pending or not done:  # a header without rows still says what is missing
                yield _batches_frame(pending) if pending else reader.schema.empty_table().to_pandas()
            return
        except pa.ArrowInvalid:
            if all_text:
                raise
            all_text = True  # read again from the first row not yet handed out


def _batches_frame(batches: list) -> pd.DataFrame:
    import pyarrow as pa

    return _table_frame(_dictionary_encoded(pa.Table.from_batches(batches)))


def _table_frame(table) -> pd.DataFrame:
    """An Arrow table as pandas: header byte-order marks dropped, Arrow's buffers freed as it goes,
    dates as datetime64 rather than one Python date object per row."""
    table = table.rename_columns([c.lstrip("\ufeff") for c in table.column_names])
    return table.to_pandas(self_destruct=True, date_as_object=False)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    mapping, coded = _parquet_columns(path)
    return _table_frame(pq.read_table(path, columns=list(mapping) or None, read_dictionary=coded))


def _parquet_columns(path: Path) -> tuple[dict, list[str]]:
    """The ledger's columns in a Parquet file, and those of them to read dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    mapping, _ = map_headers(schema.names)
    coded = [col for col, canon in mapping.items() if canon in _CODED_COLUMNS
             and (pa.types.is_string(schema.field(col).type) or pa.types.is_large_string(schema.field(col).type))]
    return mapping, coded


def _read_excel(path: Path, sheet: str | None) -> pd.DataFrame:
    """The sheet's stored values, cell for cell. openpyxl only reads values: macros never run and
    external links are not followed. Not pandas' reader: it turns cells reading NA, NULL or n/a
    into blanks (a customer coded NA would vanish) and, in pandas 2, TRUE into 1."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        names = book.sheetnames
        chosen = sheet or next((s for s in LEDGER_SHEETS if s in names), names[0])
        if chosen not in names:
            raise ValueError(f"no sheet {chosen!r} (sheets: {', '.join(names)})")
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
    """Read and validate a ledger file; issues name the file, its row and column."""
    frame = read_table(path, sheet)
    return normalize_ledger(frame, policy, source=Path(path).name)


def file_problem(exc: OSError) -> str:
    """One line for a file the machine would not let us read or write (locked, read-only, full disk)."""
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot read or write{where}: {exc.strerror or exc} / 无法读写文件"


def accepted_headers() -> str:
    return "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in HEADER_ALIASES.items())


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
