"""Ledger files larger than memory, read in chunks: the same rows, issues and results as reading
the whole file. Memory holds one chunk plus what spans chunks: the invoice numbers (for repeats)
and the per-customer sums.

Each chunk is validated by the same `normalize_ledger`, numbered with its rows' places in the
file. What one chunk cannot see is done across chunks: invoice numbers repeated in another chunk,
customer spellings that merge across chunks, an empty ledger. Two passes: the first validates
every row (and finds the last complete year if none is given); the second sums each chunk's
per-customer facts for the period, leaving out every refused row, and the sums are combined.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from crm_core.collection import FACT_COLUMNS, SUM_COLUMNS, Period, collection_rates, customer_sums
from crm_core.issues import Issue, IssueCode
from crm_core.ledger import (
    INVOICE,
    Ledger,
    duplicate_invoices,
    map_headers,
    merged_name_warnings,
    normalize_ledger,
)
from crm_core.policy import Policy
from crm_core.review import last_names
from crm_core.values import text_column

from .files import ledger_batches

DEFAULT_CHUNK_ROWS = 2_000_000
PERIOD_MEASURES = len(SUM_COLUMNS) - 1  # all but the open balance, the last column


@dataclass
class Checked:
    """What one pass over the chunks learns: every issue, the row numbers refused, counts, the
    last date, and the per-customer sums for the period (each calendar year when no period is
    given), valid unless `needs_second_pass` (a repeated invoice number must be taken out)."""

    issues: list[Issue] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)
    input_rows: int = 0
    blank_rows: int = 0
    rows_used: int = 0
    latest: pd.Timestamp | None = None
    # Customers are numbered in order of first sight (a dict, not a hashed index rebuilt per chunk);
    # sums are kept as each chunk's (customer numbers, int64 sums) and added exactly at the end.
    customers: dict[str, int] = field(default_factory=dict)
    sums: dict[object, list] = field(default_factory=dict)  # period or year -> [(numbers, sums)]
    steps: dict[int, list] = field(default_factory=dict)  # year -> balance added by that year
    names: list = field(default_factory=list)  # by customer number: the last non-empty name
    needs_second_pass: bool = False


def chunks(path: Path, policy: Policy, chunk_rows: int,
           bad_lines: list[Issue] | None = None) -> Iterator[tuple[pd.DataFrame, Ledger]]:
    """The file as (raw, validated) chunks, each numbered from its first row's place in the file.
    Repeated invoice numbers are left to the caller, who sees the whole file. CSV lines with the
    wrong number of fields are empty rows in the chunks and issues in `bad_lines` (see
    `files.read_table`)."""
    first_row = 2
    for frame in _read_ahead(ledger_batches(path, chunk_rows, bad_lines)):
        yield frame, normalize_ledger(frame, policy, source=path.name, first_row=first_row, check_duplicates=False)
        first_row += len(frame)


def _read_ahead(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The same frames, the next one read in a second thread while this one is checked: Arrow
    reads and decodes without holding the GIL, so reading and checking share the two cores."""
    with ThreadPoolExecutor(1, thread_name_prefix="crm-read") as pool:
        upcoming = pool.submit(next, frames, None)
        try:
            while (frame := upcoming.result()) is not None:
                upcoming = pool.submit(next, frames, None)
                yield frame
        finally:
            upcoming.cancel()


def _spellings(frame: pd.DataFrame) -> np.ndarray:
    """The chunk's distinct raw customer cells, in order of first appearance."""
    mapping, _ = map_headers(frame.columns)
    column = next(col for col, canon in mapping.items() if canon == "customer")
    return np.asarray(frame[column].unique(), dtype=object)


def check_file(path: Path, policy: Policy, period: Period | None = None,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Checked:
    """One pass: validate every chunk and sum its facts, then the checks that span chunks."""
    out = Checked()
    invoices: list[pd.DataFrame] = []
    spellings: list[pd.Series] = []
    bad_lines: list[Issue] = []  # malformed CSV lines: reported with every other row's problems
    for frame, ledger in chunks(path, policy, chunk_rows, bad_lines):
        out.input_rows += ledger.input_rows
        out.blank_rows += ledger.blank_rows
        if any(i.code == IssueCode.MISSING_COLUMN for i in ledger.issues):
            out.issues = ledger.issues  # the header is wrong: nothing below it can be read
            return out
        out.issues += [i for i in ledger.issues if i.code not in (IssueCode.MERGED_NAMES, IssueCode.EMPTY)]
        rows = ledger.rows
        out.rows_used += len(rows)
        numbered = (rows["type"] == INVOICE).to_numpy() & (rows["invoice_no"] != "").to_numpy()
        if len(rows):
            _add_facts(out, rows, policy, period)
            if not numbered.all():  # rows no repeat can refuse
                out.latest = _later(out.latest, rows["date"].to_numpy()[~numbered].max())
        invoices.append(rows.loc[numbered, ["row", "type", "invoice_no", "date"]])
        spellings.append(pd.Series(_spellings(frame), dtype=object))
    invoices_all = pd.concat(invoices, ignore_index=True) if invoices else pd.DataFrame()
    repeats = duplicate_invoices(invoices_all, path.name) if invoices else []
    if len(invoices_all):  # the last date among the numbered invoices that stay
        kept = ~invoices_all["row"].isin({i.row for i in repeats}).to_numpy()
        if kept.any():
            out.latest = _later(out.latest, invoices_all["date"].to_numpy()[kept].max())
    out.rows_used -= len(repeats)
    out.needs_second_pass = bool(repeats)  # the sums hold those rows: sum again without them
    out.blank_rows -= len(bad_lines)  # read as empty rows, but they were not blank
    out.issues += bad_lines + repeats + _merged_spellings(spellings, path.name)
    if out.input_rows == 0 or out.rows_used == 0 and not out.issues:
        out.issues.append(Issue(IssueCode.EMPTY, "the ledger has no data rows", source=path.name))
    out.issues.sort(key=lambda i: (i.row or 0))
    out.refused = {i.row for i in out.issues if i.is_error and i.row is not None}
    return out


def _later(latest: pd.Timestamp | None, date) -> pd.Timestamp:
    date = pd.Timestamp(date)
    return date if latest is None else max(latest, date)


def _add_facts(out: Checked, rows: pd.DataFrame, policy: Policy, period: Period | None) -> None:
    """Add a chunk's per-customer sums: for the period; or, none given yet, for each calendar year
    the chunk has rows in, with the open balance kept as the step each year adds to it (the
    balance at the end of year Y is then the sum of the steps up to Y, over all chunks)."""
    if period is not None:
        customers, sums, codes = customer_sums(rows, policy, period)
        numbers = _numbers(out, customers)
        out.sums.setdefault(period, []).append((numbers, sums))
    else:
        previous = None
        for year in np.unique(rows["date"].dt.year.to_numpy()):
            customers, sums, codes = customer_sums(rows, policy, Period.year(int(year)))
            numbers = _numbers(out, customers) if previous is None else numbers
            out.sums.setdefault(year, []).append((numbers, sums[:, :PERIOD_MEASURES]))
            balance = sums[:, PERIOD_MEASURES:]  # every customer of the chunk, every year
            out.steps.setdefault(year, []).append((numbers, balance if previous is None else balance - previous))
            previous = balance
    names = last_names(rows, customers, codes)
    named = names != ""
    for number, name in zip(numbers[named].tolist(), names[named].tolist()):
        out.names[number] = name  # a later chunk's name wins


def _numbers(out: Checked, customers: pd.Index) -> np.ndarray:
    """Each customer's number, new customers numbered on from the last."""
    known = out.customers
    numbers = np.fromiter((known.setdefault(c, len(known)) for c in customers.tolist()), dtype=np.intp,
                          count=len(customers))
    out.names.extend([""] * (len(known) - len(out.names)))
    return numbers


def _total(parts: list, customers: int, columns: int) -> np.ndarray:
    """Exact int64 sums by customer number of every chunk's part (never through floats)."""
    total = np.zeros((customers, columns), dtype="int64")
    for numbers, sums in parts:
        total[numbers] += sums  # a chunk numbers each customer once: no repeats within a part
    return total


def _merged_spellings(spellings: list[pd.Series], source: str) -> list[Issue]:
    """The merged-spelling warnings of the whole file, from each chunk's distinct spellings."""
    if not spellings:
        return []
    raw = pd.Series(pd.unique(pd.concat(spellings, ignore_index=True).to_numpy(dtype=object)), dtype=object)
    clean, _ = text_column(raw)
    return merged_name_warnings(raw, pd.Series(np.asarray(clean, dtype=object)), source)


def summed_facts(checked: Checked, period: Period, year: int | None = None) -> pd.DataFrame:
    """The facts of `period` from the pass's sums: the period's own sums, or for calendar year
    `year` that year's sums with the balance steps of every year up to it."""
    n = len(checked.customers)
    if year is None:
        totals = _total(checked.sums.get(period, []), n, len(SUM_COLUMNS))
    else:
        totals = np.zeros((n, len(SUM_COLUMNS)), dtype="int64")
        totals[:, :PERIOD_MEASURES] = _total(checked.sums.get(year, []), n, PERIOD_MEASURES)
        totals[:, PERIOD_MEASURES] = _total([p for y, parts in checked.steps.items() if y <= year for p in parts],
                                            n, 1)[:, 0]
    customers = np.array(list(checked.customers), dtype=object)
    order = np.argsort(customers, kind="stable")  # sorted, as a whole ledger's customers are
    table = pd.DataFrame(totals[order], columns=SUM_COLUMNS)
    table.insert(0, "customer", customers[order])
    table["customer_name"] = np.array(checked.names, dtype=object)[order]
    return _with_rates(table)


def file_facts(path: Path, policy: Policy, period: Period, checked: Checked,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> pd.DataFrame:
    """Second pass, when the first pass's sums hold rows refused at the end (repeated invoice
    numbers): per-customer facts for the period, summed over chunks, refused rows left out."""
    again = Checked()
    for _, ledger in chunks(path, policy, chunk_rows, bad_lines=[]):  # the first pass reported them
        rows = ledger.rows.loc[~ledger.rows["row"].isin(checked.refused)].reset_index(drop=True)
        if len(rows):
            _add_facts(again, rows, policy, period)
    return summed_facts(again, period)


def _with_rates(table: pd.DataFrame) -> pd.DataFrame:
    columns = [*FACT_COLUMNS, "customer_name"]  # as customer_facts orders them
    table["customer"] = table["customer"].astype(object)
    rate, status = collection_rates(table["collections_cents"].to_numpy(), table["gross_sales_cents"].to_numpy())
    table["collection_rate"], table["rate_status"] = rate, status
    return table[columns]
