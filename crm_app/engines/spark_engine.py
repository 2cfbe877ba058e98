"""The Spark engine (`pip install 'crm-addin[spark]'`, `--engine spark [--master URL]`): a ledger
file's partitions computed in a Spark session, local[*] unless a master is given.

Spark schedules; the core decides. Each Spark task gives its rows to the core's partition function
(`crm_core.partition.partition`), the per-customer sums are added up by a Spark aggregation, and
the rest of the partials (issues, numbered invoices, spellings, names) come back to the driver, in
file order, for the core's `combine`. The answer is the in-process engine's, row numbers and all:

- CSV is read by Spark's text source, which cuts a file into byte ranges at line ends (blocks) and
  keeps empty lines, split at "\\n" only so that each line keeps its bytes (a CRLF's "\\r", a quoted
  cell's line break). Blocks are put in file order by their byte offset (input_file_block_start),
  whatever order tasks finish in. A task parses its block with Arrow and the in-process reader's
  own options (crm_app.io.files: encoding UTF-8 or GB18030, text columns kept as text, lines with
  the wrong number of fields as empty rows and numbered issues), the header line put before it.
- Arrow types a column from all of a file's values, a task only from its block's: a column read as
  numbers in one block and as text in another is read again, in the blocks that differ, as the
  whole file would have it (the first type of Arrow's inference order that every block takes).
- A quoted cell whose line break falls on a block boundary cannot be parsed in two halves: when
  the quotes before a boundary do not pair up, the file is read again as one block.
- Parquet: tasks of consecutive row groups, each read by Arrow as the in-process reader reads the
  whole file (Spark's own Parquet reader refuses nanosecond timestamps, pandas 2's default, and
  hands dates and time zones over its own way).
- Partitions whose invoice numbers rise keep only their span (`partition(compact=True)`); when the
  spans interleave, `combine` asks for the invoices and the blocks that dropped them are run again.

The file must be readable at the same path on the driver and on every executor (a local file in
local mode; a shared folder on a cluster). On a cluster, the executors need Python with pandas
and pyarrow; the add-in's code is shipped to them by the session.
"""
from __future__ import annotations

import atexit
import os
import pickle
import re
import shutil
import sys
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial as bound
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import SparkSession

from crm_app.engines.inprocess import with_file_header
from crm_app.io.files import (
    _BadLines,
    _csv_header,
    _csv_options,
    _parquet_columns,
    _table_frame,
    check_not_empty,
    readable_file,
    reading_errors,
    stored_dictionary_columns,
    unreadable,
)
from crm_core.collection import Period
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.partition import SUMS_COLUMNS, InvoicesNeeded, LedgerSums, Partial, combine, partition
from crm_core.policy import Policy

LOCAL = "local[*]"
PARQUET_BLOCK_BYTES = 1 << 27  # row groups per task, by compressed size (Spark's maxPartitionBytes)
BLOB_BYTES = 1 << 26  # a pickled partial travels in binary cells of at most this size
# Arrow's type inference order (arrow/csv/inference_internal.h): a column is of the first of these
# types that all its values convert to. Text columns are read as text whatever they hold.
KINDS = (pa.null(), pa.int64(), pa.bool_(), pa.float64(), pa.date32(), pa.time32("s"), pa.timestamp("s"),
         pa.timestamp("ns"), pa.timestamp("s", tz="UTC"), pa.timestamp("ns", tz="UTC"), pa.string(), pa.binary())
OUTPUT = pa.schema([("block", pa.int64()), ("part", pa.int64()), ("seq", pa.int64()), ("blob", pa.binary()),
                    ("customer", pa.string()), ("bucket", pa.int64()), ("kind", pa.int64()), ("rows", pa.int64()),
                    ("amount_cents", pa.int64()), ("gross_cents", pa.int64())])
OUTPUT_DDL = ("block long, part long, seq long, blob binary, customer string, bucket long, kind long, "
              "rows long, amount_cents long, gross_cents long")
_SUMMED = ("rows", "amount_cents", "gross_cents")


def ledger_sums(path: Path, policy: Policy, period: Period | None = None, master: str | None = None,
                blocksize: int | None = None, conf: dict | None = None) -> LedgerSums:
    """The ledger file's sums and issues, computed by Spark. `master`: a Spark master URL (default
    local[*], or the session this process already has); `blocksize`: bytes per task (default:
    Spark's spark.sql.files.maxPartitionBytes for CSV, 128 MB of row groups for Parquet); `conf`:
    Spark settings for a session this call starts (spark.driver.memory, ...)."""
    job, header = _job(Path(path), policy, period, blocksize)
    spark = session(master, conf)
    passes: list = []  # each pass's persisted output, and the blocks whose result it gives
    try:
        with _quiet(), _partition_bytes(spark, job), _job_failures(spark):
            job, blocks = _settled(spark, job, passes)
            totals = _totals(passes)
            try:
                sums = _combined(job, blocks, totals)
            except InvoicesNeeded:  # numbers interleave across blocks: the repeat check needs the rows
                job = replace(job, compact=False, only=frozenset(b for b, r in blocks.items() if r.partial.compacted))
                blocks |= _pass(spark, job, passes)
                sums = _combined(job, blocks, totals)  # the sums do not depend on compacting
    finally:
        _unpersist(passes)
    return with_file_header(sums, header, job.source)


def _combined(job: _Job, blocks: dict[int, _Block], totals: pd.DataFrame) -> LedgerSums:
    """The core's reductions over the blocks in file order, the sums Spark added up given to the first."""
    partials, reader_issues, rows = [], [], 0
    for block in sorted(blocks):  # a malformed line's row: where its block starts, plus its own
        result = blocks[block]
        reader_issues += [replace(i, row=int(i.row) + rows) for i in result.bad_lines]
        partials.append(result.partial)
        rows += result.partial.input_rows
    if not partials:  # a Parquet file without row groups
        partials = [_parquet_block(job, None)[0].partial]
    partials[0] = replace(partials[0], sums=totals)  # the sums add up: all of them on one partial
    return combine(partials, job.policy, job.source, reader_issues=reader_issues)


# ---------------------------------------------------------------- the session


_session: SparkSession | None = None  # the session this module started


def session(master: str | None = None, conf: dict | None = None) -> SparkSession:
    """The process's Spark session: the one already running (when `master` is not given or is
    its master), else a new one on `master` (default local[*]). One per process: a session this
    module started on another master is stopped first."""
    global _session
    current = _session if _alive(_session) else SparkSession.getActiveSession()
    if current is not None and _alive(current):
        if master is None or current.sparkContext.master == master:
            return current
        if current is not _session:
            raise CrmInputError([Issue(IssueCode.BAD_SHAPE, (
                f"this process already runs a Spark session on {current.sparkContext.master}; "
                f"cannot start one on {master} / 已有Spark会话"))])
        current.stop()
    _session = _started(master or LOCAL, dict(conf or {}))
    return _session


@contextmanager
def _job_failures(spark: SparkSession) -> Iterator[None]:
    """A Spark whose JVM died during the job (most often of memory: a local driver has 1 GB unless
    told otherwise) said as such, not as py4j's "connection refused"."""
    from py4j.protocol import Py4JError

    memory = spark.sparkContext.getConf().get("spark.driver.memory", "1g")
    try:
        yield
    except (Py4JError, ConnectionError) as problem:
        if _alive(spark) and not isinstance(problem, ConnectionError) and "OutOfMemory" not in str(problem):
            raise
        stop()
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, (
            f"Spark stopped during the job (driver memory {memory}; a local driver that runs out of memory "
            "ends this way): give it more, e.g. --driver-memory 8g / Spark 作业中止（内存不足？）"))]) from problem


def stop() -> None:
    """Stop the session this module started, if it runs."""
    global _session
    if _alive(_session):
        _session.stop()
    _session = None


def _alive(spark: SparkSession | None) -> bool:
    return spark is not None and getattr(spark.sparkContext, "_jsc", None) is not None


def _started(master: str, conf: dict) -> SparkSession:
    local = master == "local" or master.startswith("local[")  # (local-cluster runs executors apart)
    settings = {"spark.app.name": "crm-addin", "spark.ui.showConsoleProgress": "false"}
    environment = {}
    if local:  # one machine: few shuffle partitions, no web UI, results as large as memory allows
        settings |= {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": str(_local_cores(master)),
                     "spark.driver.maxResultSize": "0", **_local_driver_memory(),
                     "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_quiet_log_config()}"}
        # the JVM and its Python workers: this Python, this code, no warning about a loopback name
        environment = {"PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
                       "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
                       "PYTHONPATH": os.pathsep.join(p for p in (_code_root(), os.environ.get("PYTHONPATH")) if p)}
    builder = SparkSession.builder.master(master)
    for key, value in (settings | conf).items():
        builder = builder.config(key, value)
    try:
        with _environment(environment), _quiet():
            spark = builder.getOrCreate()
    except Exception as problem:  # no Java, a master that does not answer, a bad setting
        first = (str(problem).strip().splitlines() or [type(problem).__name__])[0]
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, (
            f"the spark engine could not start Spark on {master}: {first[:300]} (Java 17 or later installed, "
            "JAVA_HOME set?) / 无法启动Spark"))]) from problem
    spark.sparkContext.setLogLevel("ERROR")
    if not local:
        spark.sparkContext.addPyFile(_code_zip())
    return spark


def _local_driver_memory(machine_bytes: int | None = None) -> dict[str, str]:
    """A local session's driver heap, where its executors live: half of this machine's memory
    (at least Spark's 1 GB), not Spark's 1 GB default, which runs out near 10^8 rows. A ceiling
    the JVM grows into, not memory taken at start. {} where the memory cannot be known (Spark's
    default stands); `--driver-memory` overrides it."""
    if machine_bytes is None:
        try:
            machine_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # Windows has no sysconf
            return {}
    return {"spark.driver.memory": f"{max(1, machine_bytes // 2**31)}g"}


def _local_cores(master: str) -> int:
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not found or not found.group(1):
        return 1 if master.strip() == "local" else max(1, os.cpu_count() or 1)
    return max(1, os.cpu_count() or 1) if found.group(1) == "*" else max(1, int(found.group(1)))


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in the environment while the JVM starts (it and its workers keep them)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet() -> Iterator[None]:
    """PySpark warns about pandas 3 on every Arrow call; this engine hands Spark no pandas frame."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.spark.name = org.apache.spark
logger.spark.level = error
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
"""  # Spark's own loggers set apart, as the root: else Spark prints that it sets a default
_scratch: list[str] = []


def _scratch_dir() -> Path:
    if not _scratch:
        _scratch.append(tempfile.mkdtemp(prefix="crm-addin-spark-"))
        atexit.register(shutil.rmtree, _scratch[0], True)
    return Path(_scratch[0])


def _quiet_log_config() -> Path:
    """A log4j2 configuration that prints errors only (Spark's own prints every warning)."""
    path = _scratch_dir() / "log4j2.properties"
    if not path.exists():
        path.write_text(_LOG4J, encoding="utf-8")
    return path


def _code_root() -> str:
    """The folder the crm_core and crm_app packages are imported from."""
    import crm_core

    return str(Path(crm_core.__file__).resolve().parents[1])


def _code_zip() -> str:
    """crm_core and crm_app zipped, for executors that do not have the add-in installed."""
    target = _scratch_dir() / "crm_addin_code.zip"
    root = Path(_code_root())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in ("crm_core", "crm_app"):
            for file in sorted((root / package).rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix in (".py", ".toml"):
                    archive.write(file, file.relative_to(root).as_posix())
    return str(target)


# ---------------------------------------------------------------- the job: what every task needs


@dataclass(frozen=True)
class _Job:
    path: str  # absolute, for Spark and the tasks
    source: str  # the file's name, in the issues
    shown: str  # the path as given, in a message that the file cannot be read
    policy: Policy
    period: Period | None
    blocksize: int | None
    csv: tuple | None = None  # the in-process reader's Arrow (read, parse, convert) options
    header_line: bytes = b""  # the file's first line, put before every block but the first
    size: int = 0
    ends_with_newline: bool = True
    whole: bool = False  # the file read as one block
    forced: dict = field(default_factory=dict)  # column -> the Arrow type the whole file gives it
    only: frozenset | None = None  # the blocks to compute (None: all)
    compact: bool = True  # partitions whose invoice numbers rise keep only their span (crm_core.partition)
    groups: tuple = ()  # Parquet: the row groups of each task
    columns: list | None = None  # Parquet: the ledger's columns
    dictionary_columns: tuple = ()  # Parquet: those read as stored, dictionary-encoded (io.files)


def _job(path: Path, policy: Policy, period: Period | None, blocksize: int | None) -> tuple[_Job, pd.DataFrame]:
    """What the tasks need to read the file as the in-process reader does, and a frame whose
    attrs hold the file's header (for the message about a header that is not a ledger's). The
    checks the in-process reader makes first (a missing, empty or not-text file) are made here,
    with its messages."""
    path = readable_file(path, "ledger file")
    job = _Job(str(path.resolve()), path.name, str(path), policy, period, blocksize)
    header = pd.DataFrame()
    with reading_errors(path):
        check_not_empty(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            header.attrs["header"] = pq.read_schema(path).names
            return _parquet_job(job, path), header
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        options = _csv_options(path, sep, bad_lines=_BadLines())
        header.attrs["header"] = _csv_header(path, sep)[1]
        with open(path, "rb") as handle:
            first = handle.readline()
            handle.seek(-1, os.SEEK_END)
            last = handle.read(1)
    # a header whose quotes do not pair up holds a line break: no line of it can stand for it
    job = replace(job, csv=options, header_line=first.rstrip(b"\n"), size=path.stat().st_size,
                  ends_with_newline=last == b"\n", whole=first.count(b'"') % 2 == 1)
    return job, header


def _parquet_job(job: _Job, path: Path) -> _Job:
    """Consecutive row groups per task, up to the block size (at least one each)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    mapping = _parquet_columns(path)
    limit = job.blocksize or PARQUET_BLOCK_BYTES
    groups, current, size = [], [], 0
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        bytes_ = sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if current and size + bytes_ > limit:
            groups.append(tuple(current))
            current, size = [], 0
        current.append(index)
        size += bytes_
    if current:
        groups.append(tuple(current))
    return replace(job, groups=tuple(groups), columns=list(mapping) or None,
                   dictionary_columns=tuple(stored_dictionary_columns(path, mapping)))


# ---------------------------------------------------------------- the driver's passes


@dataclass(frozen=True)
class _Block:
    """One block's result, pickled by its task."""

    partial: Partial | None = None  # its sums travel apart, in the task's output rows
    bad_lines: list[Issue] = field(default_factory=list)  # numbered within the block (header = row 1)
    quotes: int = 0  # '"' in the block's lines (CSV)
    types: dict = field(default_factory=dict)  # column -> the Arrow type of the block's values (CSV)
    error: tuple[str, str] | None = None  # ("os" or "value", message): the block could not be read


def _settled(spark: SparkSession, job: _Job, passes: list) -> tuple[_Job, dict[int, _Block]]:
    """Every block's result, read as the whole file reads: blocks read again where a quoted line
    break spans two of them (then as one) or where they typed a column differently."""
    blocks = _pass(spark, job, passes)
    if job.csv is not None and not job.whole and not _quotes_pair_up(blocks):
        _unpersist(passes)  # what was read of the halves of a quoted cell says nothing
        job = replace(job, whole=True)
        blocks = _pass(spark, job, passes)
    for _ in range(len(KINDS) * (1 + max((len(r.types) for r in blocks.values()), default=0))):
        _raise_read_error(job, blocks)
        forced, redo = _agreed_types(blocks, job.forced)
        if not redo:
            return job, blocks
        job = replace(job, forced=forced, only=frozenset(redo))
        blocks |= _pass(spark, job, passes)
    raise RuntimeError("column types did not settle")  # pragma: no cover - each pass loosens a type


def _pass(spark: SparkSession, job: _Job, passes: list) -> dict[int, _Block]:
    """Run the tasks over the file (or over `job.only`'s blocks); their results by block."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    mapped = _input(spark, job).mapInArrow(bound(_task, job), OUTPUT_DDL).persist(StorageLevel.MEMORY_AND_DISK)
    passes.append([mapped, set()])
    found = mapped.where(F.col("blob").isNotNull()).select("block", "seq", "blob").toArrow()
    blocks = _unpickled(found)
    for earlier in passes[:-1]:  # the blocks this pass computes again are no longer theirs
        earlier[1] -= set(blocks)
    passes[-1][1] = set(blocks)
    return blocks


def _input(spark: SparkSession, job: _Job):
    from pyspark.sql import functions as F

    if job.csv is None:  # Parquet: one row per task, each in its own Spark partition
        tasks = spark.range(0, len(job.groups), 1, max(1, len(job.groups)))
        return tasks if job.only is None else tasks.where(F.col("id").isin(sorted(job.only)))
    options = {"wholetext": True} if job.whole else {"lineSep": "\n"}  # (text() resets what .option() set)
    lines = spark.read.text(_spark_path(job.path), **options).select(
        F.col("value").cast("binary").alias("line"), F.input_file_block_start().alias("start"),
        F.input_file_block_length().alias("length"))
    return lines if job.only is None else lines.where(F.col("start").isin(sorted(job.only)))


def _spark_path(path: str) -> str:
    """A local path as Spark reads it: no default file system but this one's, no glob patterns."""
    return "file://" + re.sub(r"([\\\[\]{}*?])", r"\\\1", path)


@contextmanager
def _partition_bytes(spark: SparkSession, job: _Job) -> Iterator[None]:
    """Spark's CSV block size for the duration of the job, when one is given."""
    if job.csv is None or not job.blocksize:
        yield
        return
    key = "spark.sql.files.maxPartitionBytes"
    before = spark.conf.get(key, None)
    spark.conf.set(key, str(int(job.blocksize)))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _unpickled(found: pa.Table) -> dict[int, _Block]:
    keys = found.column("block").to_numpy()
    seqs = found.column("seq").to_numpy()
    blobs = found.column("blob")
    blocks: dict[int, _Block] = {}
    order = np.lexsort((seqs, keys))
    for block in np.unique(keys):
        at = order[keys[order] == block]
        blocks[int(block)] = pickle.loads(b"".join(blobs[int(i)].as_py() for i in at))
    return blocks


def _raise_read_error(job: _Job, blocks: dict[int, _Block]) -> None:
    """The first block that could not be read, with the in-process reader's message for the file."""
    error = next((blocks[b].error for b in sorted(blocks) if blocks[b].error is not None), None)
    if error is None:
        return
    kind, message = error
    if kind == "os":
        raise unreadable(Path(job.shown), OSError(message))
    raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"cannot read the file: {message}", source=job.shown)])


def _quotes_pair_up(blocks: dict[int, _Block]) -> bool:
    """Whether every boundary between blocks falls outside quotes (an even count before it)."""
    counts = [blocks[b].quotes for b in sorted(blocks)][:-1]
    return not (np.cumsum(counts, dtype=np.int64) % 2).any() if counts else True


def _agreed_types(blocks: dict[int, _Block], forced: dict) -> tuple[dict, list[int]]:
    """The types the whole file would give the columns its blocks typed differently, and the
    blocks whose values were read as another type."""
    forced, redo = dict(forced), set()
    columns = {c for result in blocks.values() for c in result.types}
    for column in sorted(columns):
        seen = {block: result.types[column] for block, result in blocks.items() if column in result.types}
        if len(set(seen.values())) <= 1:
            continue
        wanted = KINDS[max(_kind(t) for t in seen.values())]
        forced[column] = wanted
        redo |= {block for block, kind in seen.items() if kind != wanted}
    return forced, sorted(redo)


def _kind(arrow_type: pa.DataType) -> int:
    return KINDS.index(arrow_type) if arrow_type in KINDS else KINDS.index(pa.string())


def _totals(passes: list) -> pd.DataFrame:
    """The per-customer sums of the blocks' final results, added up by Spark."""
    from pyspark.sql import functions as F

    parts = [mapped.where(F.col("blob").isNull() & F.col("block").isin(sorted(keep)))
             for mapped, keep in passes if keep]
    if not parts:
        return _sums_frame(OUTPUT.empty_table())
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    summed = rows.groupBy("customer", "bucket", "kind").agg(*(F.sum(c).alias(c) for c in _SUMMED))
    return _sums_frame(summed.toArrow())


def _sums_frame(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False).astype(object if c == "customer" else "int64")
                         for c in SUMS_COLUMNS})


def _unpersist(passes: list) -> None:
    while passes:
        passes.pop()[0].unpersist()


# ---------------------------------------------------------------- the tasks


def _task(job: _Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One Spark partition: each block in it read, checked and summed by the core."""
    from pyspark import TaskContext

    part = TaskContext.get().partitionId()
    if job.csv is None:
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield from _output(int(index), part, _parquet_block(job, int(index)))
        return
    for start, length, lines in _csv_pieces(batches):
        yield from _output(start, part, _csv_block(job, start, length, lines))


def _csv_pieces(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, int, list[bytes]]]:
    """The partition's lines, block by block (a partition may hold several small ones)."""
    batches = list(batches)
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    del batches
    starts = table.column("start").to_numpy()
    bounds = [0, *(np.flatnonzero(np.diff(starts)) + 1).tolist(), len(starts)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi > lo:
            piece = table.slice(lo, hi - lo)
            yield int(starts[lo]), int(piece.column("length")[0].as_py()), piece.column("line").to_pylist()


def _csv_block(job: _Job, start: int, length: int, lines: list[bytes]) -> tuple[_Block, pd.DataFrame | None]:
    if job.whole:
        text = lines[0] if lines else b""
        quotes = 0
    else:
        body = b"\n".join(lines)
        quotes = body.count(b'"')
        last = start + length >= job.size
        text = body + (b"\n" if not last or job.ends_with_newline else b"")
        if start > 0:
            text = job.header_line + b"\n" + text
    del lines
    try:
        frame, bad_lines, types = _csv_frame(job, text)
    except OSError as problem:
        return _Block(quotes=quotes, error=("os", problem.strerror or str(problem))), None
    except (ValueError, UnicodeError) as problem:
        return _Block(quotes=quotes, error=("value", str(problem))), None
    del text
    partial = partition(frame, job.policy, job.source, job.period, job.compact)
    return _Block(replace(partial, sums=partial.sums.iloc[:0]), bad_lines, quotes, types), partial.sums


def _csv_frame(job: _Job, text: bytes) -> tuple[pd.DataFrame, list[Issue], dict]:
    """The block as the in-process reader reads a file (crm_app.io.files._read_csv), with the
    types the whole file gives its columns where known."""
    found = _BadLines()
    try:
        table = _arrow_csv(job, text, job.forced, found)
    except pa.ArrowInvalid:
        if not job.forced:
            raise
        settled = {column: _first_type(job, text, column, kind) for column, kind in job.forced.items()}
        if settled == job.forced:
            raise
        found = _BadLines()
        table = _arrow_csv(job, text, settled, found)
    text_columns = set(job.csv[2].column_types)
    types = {name: table.schema.field(name).type for name in table.column_names if name not in text_columns}
    table = found.with_empty_rows(table, 2, last=True)
    return _table_frame(table), found.issues(job.source), types


def _first_type(job: _Job, text: bytes, column: str, kind: pa.DataType) -> pa.DataType:
    """The first type from `kind` on, in Arrow's order, that the block's `column` converts to."""
    for candidate in KINDS[KINDS.index(kind):]:
        try:
            _arrow_csv(job, text, {column: candidate}, _BadLines(), columns=[column])
        except pa.ArrowInvalid:
            continue
        return candidate
    return pa.binary()  # pragma: no cover - bytes always convert to bytes


def _arrow_csv(job: _Job, text: bytes, types: dict, found: _BadLines, columns: list | None = None) -> pa.Table:
    import pyarrow.csv as pacsv

    read, parse, convert = (pickle.loads(pickle.dumps(o)) for o in job.csv)  # fresh copies to change
    read.use_threads = False  # Spark runs the tasks side by side; one thread numbers bad lines
    parse.invalid_row_handler = found
    convert.column_types = {**convert.column_types, **types}
    if columns is not None:
        convert.include_columns = columns
    return pacsv.read_csv(pa.BufferReader(text), read_options=read, parse_options=parse, convert_options=convert)


def _parquet_block(job: _Job, index: int | None) -> tuple[_Block, pd.DataFrame | None]:
    """Task `index`'s row groups (None: none, for a file without any), as the in-process reader
    reads the file (crm_app.io.files._read_parquet)."""
    import pyarrow.parquet as pq

    groups = [] if index is None else list(job.groups[index])
    try:
        source = pq.ParquetFile(job.path, read_dictionary=list(job.dictionary_columns))
        table = source.read_row_groups(groups, columns=job.columns)
    except OSError as problem:
        return _Block(error=("os", problem.strerror or str(problem))), None
    except ValueError as problem:
        return _Block(error=("value", str(problem))), None
    partial = partition(_table_frame(table), job.policy, job.source, job.period, job.compact)
    return _Block(replace(partial, sums=partial.sums.iloc[:0])), partial.sums


def _output(block: int, part: int, result) -> Iterator[pa.RecordBatch]:
    """A block's result as output rows: the pickled partial in pieces, then its sums."""
    result, sums = result
    blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    for seq, at in enumerate(range(0, max(len(blob), 1), BLOB_BYTES)):
        yield _rows(block, part, seq, 1, blob=[blob[at:at + BLOB_BYTES]])
    if sums is not None and len(sums):
        yield _rows(block, part, 0, len(sums), sums=sums)


def _rows(block: int, part: int, seq: int, count: int, blob: list | None = None,
          sums: pd.DataFrame | None = None) -> pa.RecordBatch:
    def constant(value: int) -> pa.Array:
        return pa.array(np.full(count, value, dtype=np.int64))

    columns = {"block": constant(block), "part": constant(part), "seq": constant(seq),
               "blob": pa.array(blob, pa.binary()) if blob is not None else pa.nulls(count, pa.binary())}
    if sums is None:
        columns |= {c: pa.nulls(count, OUTPUT.field(c).type) for c in SUMS_COLUMNS}
    else:
        columns |= {"customer": pa.array(sums["customer"].to_numpy(dtype=object), pa.string())}
        columns |= {c: pa.array(sums[c].to_numpy(dtype=np.int64)) for c in SUMS_COLUMNS if c != "customer"}
    return pa.RecordBatch.from_arrays([columns[c] for c in OUTPUT.names], schema=OUTPUT)
