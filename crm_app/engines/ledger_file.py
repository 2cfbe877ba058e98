"""A ledger file reviewed by path, on any engine; only results come back, cached by content.

Excel stops at 1,048,576 rows, so whole-company ledgers stay in a CSV or Parquet file. An engine
(`crm_app.engines`) computes the core's partition sums; the review's second half is the core's
(`crm_core.review.review_facts`), as for a sheet. Results are cached (`crm_app.io.cache`) under
the file's content hash, the policy, the parameters and the code's version.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from crm_app.engines import engine_module
from crm_app.io import cache
from crm_app.io.files import read_table, validated_ledger
from crm_core.collection import Period
from crm_core.issues import CrmInputError, Issue, IssueCode, errors_only
from crm_core.ledger import Ledger
from crm_core.partition import LedgerSums
from crm_core.policy import Policy
from crm_core.review import Review, review_facts

LARGE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq")


@dataclass(frozen=True)
class Result:
    """One answer: a per-customer table, scalars, the ledger's issues, and provenance."""

    table: pd.DataFrame
    meta: dict
    issues: list[Issue] = field(default_factory=list)
    digest: str = ""
    from_cache: str = ""  # "" or "disk"
    seconds: float = 0.0
    sums: LedgerSums | None = None  # the review's sums (per customer, kind and year), for a register workbook


def read_ledger_file(path: str | os.PathLike[str], policy: Policy | None = None) -> Ledger:
    """Read and validate a CSV/TSV or Parquet ledger's rows (same rules as a sheet range)."""
    path = checked_path(path)
    bad_lines: list[Issue] = []  # malformed CSV lines: listed with every other row's problems
    return validated_ledger(read_table(path, bad_lines=bad_lines), bad_lines, policy, path.name)


def checked_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in LARGE_SUFFIXES:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"unsupported file type {path.suffix.lower()!r} for a "
                                   "large ledger (use .csv or .parquet)", source=path.name)])
    return path


def file_facts(path: str | os.PathLike[str], policy: Policy | None = None,
               period_start: pd.Timestamp | None = None, period_end: pd.Timestamp | None = None,
               use_cache: bool = True, engine: str = "inprocess", **engine_options) -> Result:
    """Per-customer facts (crm_core.collection.FACT_COLUMNS) for the period; default: the last
    complete year in the file. `meta` holds the period and the row counts."""
    policy = policy or Policy()
    given = None if period_start is None and period_end is None else resolve_period(period_start, period_end)

    def produce() -> Result:
        sums = _sums(path, policy, given, engine, engine_options)
        period = given or sums.default_period()
        facts = sums.facts(period).drop(columns="customer_name")
        return Result(facts, _meta(sums) | _period_meta(period), sums.issues)

    return _cached("facts", path, policy, {"start": period_start, "end": period_end}, produce, use_cache)


def review_file(path: str | os.PathLike[str], policy: Policy | None = None, year: int | None = None,
                use_cache: bool = True, engine: str = "inprocess", **engine_options) -> tuple[Review, Result]:
    """The whole review (rates, tiers, credit lines) of a ledger file; refused, its bad rows
    named, when any row is bad."""
    policy = policy or Policy()

    def produce() -> Result:
        sums = _sums(path, policy, None, engine, engine_options)
        meta = _meta(sums)
        if meta["errors"]:  # a review of a ledger with refused rows is the caller's choice, not ours
            return Result(pd.DataFrame(), meta | {"refused": True}, sums.issues)
        period = Period.year(year) if year else sums.default_period()
        review = review_facts(sums.facts(period), period.start.year, policy, sums.issues, Path(path).name)
        return Result(review.register, meta | _period_meta(review.period) | {
            "budget_year": review.budget_year, "budget_cents": review.budget_cents,
            "net_sales_cents": review.net_sales_cents, "vat_rate": review.vat_rate,
            "written_off_cents": review.written_off_cents}, review.issues, sums=sums)

    result = _cached("review", path, policy, {"year": year}, produce, use_cache)
    if result.meta.get("refused"):
        raise CrmInputError(errors_only(result.issues))
    meta = result.meta
    period = Period(pd.Timestamp(meta["period_start"]), pd.Timestamp(meta["period_end"]))
    review = Review(result.table, period, int(meta["budget_year"]), int(meta["budget_cents"]),
                    int(meta["net_sales_cents"]), float(meta["vat_rate"]), policy, list(result.issues),
                    int(meta.get("written_off_cents", 0)))
    return review, result


def resolve_period(start: pd.Timestamp | None, end: pd.Timestamp | None) -> Period:
    """A year from whichever end is given."""
    if start is None:
        start = end - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    if end is None:
        end = start + pd.DateOffset(years=1) - pd.Timedelta(days=1)
    return Period(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize())


def _sums(path, policy: Policy, period: Period | None, engine: str, options: dict) -> LedgerSums:
    return engine_module(engine).ledger_sums(checked_path(path), policy, period, **options)


def _cached(kind: str, path, policy: Policy, params: dict, produce, use_cache: bool) -> Result:
    """`produce()`'s result for this file content, policy and parameters, from the cache when
    it has it. Engine options (where the work runs) are not part of the key: every engine gives
    the same answer."""
    start = time.perf_counter()
    path = checked_path(path)
    before = cache.stat_key(path)  # a missing or locked file: the OSError says so to the caller
    digest = cache.content_digest(path) if use_cache else ""
    key = cache.result_key(kind, digest, policy.fingerprint, params)
    if use_cache and isinstance(hit := cache.load(key), Result):
        return replace(hit, digest=digest, from_cache="disk", seconds=time.perf_counter() - start)
    result = produce()
    result = replace(result, digest=digest, from_cache="", seconds=time.perf_counter() - start)
    if use_cache and cache.stat_key(path) == before:  # changed while read: the answer is not kept
        cache.save(key, result)
    return result


def _meta(sums: LedgerSums) -> dict:
    return {"input_rows": int(sums.input_rows), "rows_used": int(sums.rows_used), "blank_rows": int(sums.blank_rows),
            "errors": int(np.sum([i.is_error for i in sums.issues]))}


def _period_meta(period: Period) -> dict:
    return {"period_start": f"{period.start:%Y-%m-%d}", "period_end": f"{period.end:%Y-%m-%d}"}
