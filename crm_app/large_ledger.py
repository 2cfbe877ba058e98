"""Large-ledger mode: a ledger file too big for a sheet, reviewed by path; only results come back.

Excel stops at 1,048,576 rows, so whole-company ledgers stay in a CSV or Parquet file. The file
is read by Arrow's multi-threaded reader (only the columns the ledger needs), validated by the
same `normalize_ledger` as a sheet range, and reduced to one row per customer. Results are
cached by the file's content hash (SHA-256), the policy fingerprint and the period, in memory
and on disk, so recalculating a workbook whose ledger file has not changed is instant.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from crm_core.collection import Period, customer_facts
from crm_core.issues import CrmInputError, Issue, IssueCode, issues_frame
from crm_core.ledger import Ledger
from crm_core.policy import Policy
from crm_core.review import Review, last_complete_year, review_facts, review_ledger

from . import ledger_chunks
from .allocator import memory_kept_for_reuse
from .files import read_table, validated_ledger

CACHE_VERSION = "2"  # bump when cached tables change meaning
LARGE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq")
_MEMORY: OrderedDict[str, "Result"] = OrderedDict()
_MEMORY_SLOTS = 16
_DIGESTS: dict[tuple, str] = {}


@dataclass(frozen=True)
class Result:
    """One cached answer: a per-customer table, scalars, the ledger's issues, and provenance."""

    table: pd.DataFrame
    meta: dict
    issues: list[Issue] = field(default_factory=list)
    digest: str = ""
    from_cache: str = ""  # "", "memory" or "disk"
    seconds: float = 0.0


# ---------------------------------------------------------------- reading


# Files up to this size are hashed before anything else (0.05 s or less), so a touched or copied
# file answers from the cache. A larger one is hashed beside its validation, which leaves a core
# free, instead of before it: a touched large file is computed again once, a new one ~10% sooner.
HASH_FIRST_MAX_BYTES = 64 * 2**20
_HASH_BLOCK = 16 * 2**20  # large reads: the hashing thread seldom waits for the GIL


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes; re-hashed only when size, mtime, inode or change time change
    (remembered in memory and in the cache folder: a new process does not hash an unchanged file)."""
    key = _stat_key(path)
    known = _known_digest(key)
    if known is None:
        known = _hash_file(path)
        _remember_digest(key, known)
    return known


def _known_digest(key: tuple) -> str | None:
    if key not in _DIGESTS:
        known = _disk_digest(key)
        if known is None:
            return None
        _DIGESTS[key] = known
    return _DIGESTS[key]


def _remember_digest(key: tuple, digest: str) -> None:
    _DIGESTS[key] = digest
    _disk_digest_store(key, digest)


def _hash_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        block = bytearray(min(_HASH_BLOCK, os.fstat(handle.fileno()).st_size + 1))  # small files: a small block
        view = memoryview(block)
        while size := handle.readinto(block):
            digest.update(view[:size])
    return digest.hexdigest()


class _HashBeside:
    """A file's digest computed in a second thread, started when the caller says the file has
    been read: Arrow's reader keeps both cores busy, the validation after it mostly one."""

    def __init__(self, path: str | os.PathLike[str]):
        self._path = path
        self._thread: threading.Thread | None = None
        self._outcome: list = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="crm-addin hash", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome.append(_hash_file(self._path))
        except OSError as problem:
            self._outcome.append(problem)

    def result(self) -> str:
        self.start()
        self._thread.join()
        if isinstance(self._outcome[0], OSError):
            raise self._outcome[0]
        return self._outcome[0]


def _stat_key(path: str | os.PathLike[str]) -> tuple:
    """What changes whenever the file's content does. The change time too: copy tools may keep a
    file's size and set its mtime back, but cannot set the change time."""
    stat = os.stat(path)
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def _digest_file(key: tuple) -> Path:
    return cache_dir() / (hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32] + ".digest")


def _disk_digest(key: tuple) -> str | None:
    try:
        text = _digest_file(key).read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        return None
    return text if len(text) == 64 else None


def _disk_digest_store(key: tuple, digest: str) -> None:
    target = _digest_file(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(digest, encoding="ascii")
        os.replace(tmp, target)
    except OSError:
        pass  # not remembered: the file is only hashed again next time


def read_ledger_file(path: str | os.PathLike[str], policy: Policy | None = None,
                     file_read: Callable[[], None] | None = None) -> Ledger:
    """Read and validate a CSV/TSV or Parquet ledger of any length (same rules as a sheet range);
    `file_read()` is called between the two."""
    path = Path(path)
    if path.suffix.lower() not in LARGE_SUFFIXES:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"unsupported file type {path.suffix.lower()!r} for a "
                                   "large ledger (use .csv or .parquet)", source=path.name)])
    bad_lines: list[Issue] = []  # malformed CSV lines: listed with every other row's problems
    raw = read_table(path, bad_lines=bad_lines)
    if file_read is not None:
        file_read()
    return validated_ledger(raw, bad_lines, policy, path.name)


# ---------------------------------------------------------------- cache


def cache_dir() -> Path:
    """CRM_ADDIN_CACHE if set, else the user's cache folder (LOCALAPPDATA on Windows)."""
    if os.environ.get("CRM_ADDIN_CACHE"):
        return Path(os.environ["CRM_ADDIN_CACHE"])
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "crm-addin" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crm-addin"


@functools.cache
def code_fingerprint() -> str:
    """Hash of the code that turns a ledger file into results (the core, the file reader, the
    chunked reader and this module): an upgraded or edited add-in never answers from results its
    old rules computed."""
    import crm_core

    from . import files

    sources = sorted(Path(crm_core.__file__).parent.glob("*.py")) + [
        Path(files.__file__), Path(ledger_chunks.__file__), Path(__file__)]
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def clear_memory_cache() -> None:
    _MEMORY.clear()
    _DIGESTS.clear()


def cached(kind: str, path: str | os.PathLike[str], policy: Policy, params: dict,
           produce: Callable[[Callable[[], None]], Result], use_cache: bool = True) -> Result:
    """The result of `produce(file_read)` (which reads the file and calls `file_read()` once it has)
    for this file content, policy and parameters."""
    start = time.perf_counter()
    stat_key = _stat_key(path)
    digest = _known_digest(stat_key)
    if digest is None and stat_key[1] <= HASH_FIRST_MAX_BYTES:
        digest = _hash_file(path)  # not content_digest: the file was just stat'ed and looked up
        _remember_digest(stat_key, digest)
    if digest is not None and use_cache:
        key = _cache_key(kind, digest, policy, params)
        hit, source = _MEMORY.get(key), "memory"
        if hit is None:
            hit, source = _disk_load(key), "disk"
        if hit is not None:
            _remember(key, hit)
            return Result(hit.table, hit.meta, hit.issues, digest, source, time.perf_counter() - start)
    hashing = _HashBeside(path) if digest is None else None
    with memory_kept_for_reuse():
        result = produce(hashing.start if hashing else lambda: None)
    if hashing:
        digest = hashing.result()
    result = Result(result.table, result.meta, result.issues, digest, "", time.perf_counter() - start)
    if _stat_key(path) != stat_key:  # changed while it was read: neither digest nor answer is kept
        return result
    if hashing:
        _remember_digest(stat_key, digest)
    if use_cache:
        key = _cache_key(kind, digest, policy, params)
        _remember(key, result)
        _disk_store(key, result)
    return result


def _cache_key(kind: str, digest: str, policy: Policy, params: dict) -> str:
    return hashlib.sha256(json.dumps([CACHE_VERSION, code_fingerprint(), kind, digest, policy.fingerprint, params],
                                     sort_keys=True, default=str).encode()).hexdigest()[:32]


def _remember(key: str, result: Result) -> None:
    _MEMORY[key] = result
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_SLOTS:
        _MEMORY.popitem(last=False)


def _disk_store(key: str, result: Result) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        result.table.to_parquet(tmp.with_suffix(".table"), index=False)
        issues_frame(result.issues).to_parquet(tmp.with_suffix(".issues"), index=False)
        tmp.with_suffix(".meta").write_text(json.dumps(result.meta, default=str), encoding="utf-8")
        for part in ("table", "issues", "meta"):  # meta last: its presence marks a complete entry
            os.replace(tmp.with_suffix(f".{part}"), folder / f"{key}.{part}")
    except (OSError, ImportError, ValueError):
        pass  # a cache that cannot be written only costs time next recalculation


def _disk_load(key: str) -> Result | None:
    folder = cache_dir()
    if not (folder / f"{key}.meta").exists():
        return None
    try:
        meta = json.loads((folder / f"{key}.meta").read_text(encoding="utf-8"))
        table = pd.read_parquet(folder / f"{key}.table")
        issues = _issues_from_frame(pd.read_parquet(folder / f"{key}.issues"))
    except (OSError, ImportError, ValueError, KeyError):
        return None
    return Result(table, meta, issues)


def _issues_from_frame(frame: pd.DataFrame) -> list[Issue]:
    return [Issue(IssueCode(r.code), r.message, None if pd.isna(r.row) else int(r.row), r.column or None,
                  r.source or None, r.severity) for r in frame.itertuples(index=False)]


# ---------------------------------------------------------------- jobs


def file_facts(path: str | os.PathLike[str], policy: Policy | None = None,
               period_start: pd.Timestamp | None = None, period_end: pd.Timestamp | None = None,
               use_cache: bool = True, chunk_rows: int | None = None) -> Result:
    """Per-customer facts (crm_core.collection.FACT_COLUMNS) for the period; default: the last
    complete year in the file. `meta` holds the period and the row counts. `chunk_rows`: read
    in chunks of that many rows (default: only files too large to read whole)."""
    policy = policy or Policy()
    chunk_rows = chunk_rows or chunk_rows_for(path)

    def produce(file_read: Callable[[], None]) -> Result:
        if chunk_rows:
            file_read()  # hashing beside the chunks: they are read while checked, by a second thread
            given = None if period_start is None and period_end is None else \
                resolve_period(None, period_start, period_end)
            checked = ledger_chunks.check_file(Path(path), policy, given, chunk_rows)
            period = given or resolve_period(checked.latest, None, None)
            facts = _chunked_facts(path, policy, period, given is None, checked, chunk_rows)
            facts = facts.drop(columns="customer_name")
            meta, issues = _checked_meta(checked), checked.issues
        else:
            ledger = read_ledger_file(path, policy, file_read)
            period = resolve_period(_latest(ledger.rows), period_start, period_end)
            facts, meta, issues = customer_facts(ledger.rows, policy, period), _ledger_meta(ledger), ledger.issues
        return Result(facts, meta | {"period_start": f"{period.start:%Y-%m-%d}",
                                     "period_end": f"{period.end:%Y-%m-%d}"}, issues)

    params = {"start": period_start, "end": period_end}
    return cached("facts", path, policy, params, produce, use_cache)


def resolve_period(latest: pd.Timestamp | None, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Period:
    """A year from whichever end is given; else the last complete year up to the ledger's `latest`
    date (last year if the ledger has no rows)."""
    if start is None and end is None:
        if latest is None:
            return Period.year(pd.Timestamp.today().year - 1)
        return Period.year(last_complete_year(latest))
    if start is None:
        start = end - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    if end is None:
        end = start + pd.DateOffset(years=1) - pd.Timedelta(days=1)
    return Period(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize())


def _latest(rows: pd.DataFrame) -> pd.Timestamp | None:
    return pd.Timestamp(rows["date"].max()) if len(rows) else None


def review_file(path: str | os.PathLike[str], policy: Policy | None = None, year: int | None = None,
                use_cache: bool = True, chunk_rows: int | None = None) -> tuple[Review, Result]:
    """The whole review (rates, tiers, credit lines) of a ledger file, cached like `file_facts`."""
    policy = policy or Policy()
    chunk_rows = chunk_rows or chunk_rows_for(path)

    def produce(file_read: Callable[[], None]) -> Result:
        if chunk_rows:
            file_read()
            given = None if year is None else Period.year(year)
            checked = ledger_chunks.check_file(Path(path), policy, given, chunk_rows)
            meta, issues = _checked_meta(checked), checked.issues
            if meta["errors"]:
                return Result(pd.DataFrame(), meta | {"refused": True}, issues)
            period = given or resolve_period(checked.latest, None, None)
            facts = _chunked_facts(path, policy, period, given is None, checked, chunk_rows)
            review = review_facts(facts, period.start.year, policy, issues)
        else:
            ledger = read_ledger_file(path, policy, file_read)
            meta, issues = _ledger_meta(ledger), ledger.issues
            if ledger.errors:  # a review of a ledger with refused rows is the caller's choice, not ours
                return Result(pd.DataFrame(), meta | {"refused": True}, issues)
            review = review_ledger(ledger, policy, year)
        return Result(review.register, meta | {
            "period_start": f"{review.period.start:%Y-%m-%d}", "period_end": f"{review.period.end:%Y-%m-%d}",
            "budget_year": review.budget_year, "budget_cents": review.budget_cents,
            "net_sales_cents": review.net_sales_cents, "vat_rate": review.vat_rate,
            "written_off_cents": review.written_off_cents}, issues)

    result = cached("review", path, policy, {"year": year}, produce, use_cache)
    if result.meta.get("refused"):
        raise CrmInputError([i for i in result.issues if i.is_error])
    meta = result.meta
    period = Period(pd.Timestamp(meta["period_start"]), pd.Timestamp(meta["period_end"]))
    review = Review(result.table, period, int(meta["budget_year"]), int(meta["budget_cents"]),
                    int(meta["net_sales_cents"]), float(meta["vat_rate"]), policy, list(result.issues),
                    int(meta.get("written_off_cents", 0)))
    return review, result


# Above these sizes a file is read in chunks: whole, 10^7 rows take ~2 GB (~200 bytes a row).
CHUNKED_ABOVE_ROWS = 20_000_000
CSV_BYTES_PER_ROW = 65  # a typical ledger CSV line, for judging a CSV's rows by its size


def chunk_rows_for(path: str | os.PathLike[str]) -> int | None:
    """`ledger_chunks.DEFAULT_CHUNK_ROWS` for a file of more than CHUNKED_ABOVE_ROWS rows, else None:
    read it whole. The CRM_ADDIN_CHUNK_ROWS setting decides instead: chunks of that many rows, or
    0 for always whole (faster where memory allows: 10^7 rows take about 2 GB)."""
    forced = os.environ.get("CRM_ADDIN_CHUNK_ROWS", "").strip()
    if forced.isdigit():
        return int(forced) or None
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(path).metadata.num_rows
        else:
            rows = path.stat().st_size // CSV_BYTES_PER_ROW
    except (OSError, ValueError, ImportError):
        return None  # unreadable: the whole-file reader says why
    return ledger_chunks.DEFAULT_CHUNK_ROWS if rows > CHUNKED_ABOVE_ROWS else None


def _chunked_facts(path, policy: Policy, period: Period, by_year: bool, checked: ledger_chunks.Checked,
                   chunk_rows: int) -> pd.DataFrame:
    """The period's facts from the pass that checked the file; a second pass only when rows it
    summed were refused at the end (repeated invoice numbers)."""
    if checked.needs_second_pass:
        return ledger_chunks.file_facts(Path(path), policy, period, checked, chunk_rows)
    return ledger_chunks.summed_facts(checked, period, period.start.year if by_year else None)


def _checked_meta(checked: ledger_chunks.Checked) -> dict:
    return _meta(checked.input_rows, checked.rows_used, checked.blank_rows, checked.issues) | {"read_in_chunks": True}


def _ledger_meta(ledger: Ledger) -> dict:
    return _meta(ledger.input_rows, len(ledger.rows), ledger.blank_rows, ledger.issues)


def _meta(input_rows: int, rows_used: int, blank_rows: int, issues: list[Issue]) -> dict:
    """Row counts of a read (whole or in chunks) as the cache stores them."""
    return {"input_rows": int(input_rows), "rows_used": int(rows_used), "blank_rows": int(blank_rows),
            "errors": int(np.sum([i.is_error for i in issues]))}


# ---------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    from .cli import whole_number, year_argument

    cmd = subparsers.add_parser("review-file", help="review a ledger file of any length (CSV, Parquet), "
                                "cached by content / 大台账评审", description=(
        "Large-ledger mode: review a CSV or Parquet ledger of any length (files above "
        f"{CHUNKED_ABOVE_ROWS:,} rows are read in chunks); results are cached by the file's content. "
        "A ledger with bad rows is refused, the rows listed. / 大台账模式：按内容缓存结果，错误行列出后拒绝。"))
    cmd.add_argument("ledger", help="ledger file (.csv, .tsv or .parquet) with date, customer, type, amount "
                     "/ 台账文件")
    cmd.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    cmd.add_argument("--year", type=year_argument,
                     help="year reviewed (default: last complete year in the ledger) / 评审年度")
    cmd.add_argument("--out", help="register to write: .xlsx workbook, .csv or .parquet (default: none) / 输出文件")
    cmd.add_argument("--no-cache", action="store_true", help="ignore and do not write the result cache / 不用缓存")
    cmd.add_argument("--chunk-rows", type=whole_number(1), help="read the file in chunks of this many rows, so "
                     f"memory stays bounded (default: chunks of {ledger_chunks.DEFAULT_CHUNK_ROWS:,} above "
                     f"{CHUNKED_ABOVE_ROWS:,} rows) / 分块读取")
    cmd.set_defaults(func=cmd_review_file)


def cmd_review_file(args) -> int:
    from .cli import EXIT_OK, load_policy, print_issues

    policy = load_policy(args.policy)
    review, result = review_file(args.ledger, policy, args.year, use_cache=not args.no_cache,
                                 chunk_rows=args.chunk_rows)
    print_issues(review.issues)
    rows = result.meta.get("input_rows", 0)
    how = f"from the {result.from_cache} cache" if result.from_cache else \
        f"{rows:,} rows, {rows / max(result.seconds, 1e-9):,.0f} rows/s"
    print(f"reviewed in {result.seconds:.2f} s ({how}); file sha256 {result.digest[:12]}", file=sys.stderr)
    if args.out:
        _write_register(review, Path(args.out), ledger_lines(args.ledger, result.meta))
    print("\n".join(review.summary_lines()))
    return EXIT_OK


def ledger_lines(path: str | os.PathLike[str], meta: dict) -> list[str]:
    """Where the ledger is and how many of its rows were used, for the register's Summary."""
    rows, used = int(meta.get("input_rows", 0)), int(meta.get("rows_used", 0))
    where = os.path.realpath(path)
    return [f"台账 {where}：{rows:,} 行，使用 {used:,} 行（本工作簿只含每位客户的结果） / ledger: {where}, "
            f"{rows:,} rows, {used:,} used (this workbook holds the per-customer results only)"]


def _write_register(review: Review, target: Path, notes: list[str] | None = None) -> None:
    if target.suffix.lower() == ".parquet":
        review.register.to_parquet(target, index=False)
    elif target.suffix.lower() == ".csv":
        review.register.to_csv(target, index=False, encoding="utf-8-sig")
    else:
        from .register_book import write_review_workbook

        write_review_workbook(review, target, notes or [])
