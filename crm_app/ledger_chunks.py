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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from crm_core.collection import Period, collection_rates, customer_facts_and_codes
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
SUM_COLUMNS = ["net_sales_cents", "gross_sales_cents", "collections_cents", "open_balance_cents"]


@dataclass
class Checked:
    """What the first pass learns: every issue, the row numbers refused, counts, the last date."""

    issues: list[Issue] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)
    input_rows: int = 0
    blank_rows: int = 0
    rows_used: int = 0
    latest: pd.Timestamp | None = None


def chunks(path: Path, policy: Policy, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, Ledger]]:
    """The file as (raw, validated) chunks, each numbered from its first row's place in the file."""
    first_row = 2
    for frame in ledger_batches(path, chunk_rows):
        yield frame, normalize_ledger(frame, policy, source=path.name, first_row=first_row, check_duplicates=False)
        first_row += len(frame)


def _spellings(frame: pd.DataFrame) -> np.ndarray:
    """The chunk's distinct raw customer cells, in order of first appearance."""
    mapping, _ = map_headers(frame.columns)
    column = next(col for col, canon in mapping.items() if canon == "customer")
    return np.asarray(frame[column].unique(), dtype=object)


def check_file(path: Path, policy: Policy, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Checked:
    """Pass 1: validate every chunk, then the checks that span chunks."""
    out = Checked()
    invoices: list[pd.DataFrame] = []
    spellings: list[pd.Series] = []
    for frame, ledger in chunks(path, policy, chunk_rows):
        out.input_rows += ledger.input_rows
        out.blank_rows += ledger.blank_rows
        if any(i.code == IssueCode.MISSING_COLUMN for i in ledger.issues):
            out.issues = ledger.issues  # the header is wrong: nothing below it can be read
            return out
        out.issues += [i for i in ledger.issues if i.code not in (IssueCode.MERGED_NAMES, IssueCode.EMPTY)]
        rows = ledger.rows
        out.rows_used += len(rows)
        if len(rows):
            latest = pd.Timestamp(rows["date"].max())
            out.latest = latest if out.latest is None else max(out.latest, latest)
        invoices.append(rows.loc[(rows["type"] == INVOICE).to_numpy() & (rows["invoice_no"] != "").to_numpy(),
                                 ["row", "type", "invoice_no"]])
        spellings.append(pd.Series(_spellings(frame), dtype=object))
    across = duplicate_invoices(pd.concat(invoices, ignore_index=True), path.name) if invoices else []
    out.rows_used -= len(across)
    out.issues += across + _merged_spellings(spellings, path.name)
    if out.input_rows == 0 or out.rows_used == 0 and not out.issues:
        out.issues.append(Issue(IssueCode.EMPTY, "the ledger has no data rows", source=path.name))
    out.issues.sort(key=lambda i: (i.row or 0))
    out.refused = {i.row for i in out.issues if i.is_error and i.row is not None}
    return out


def _merged_spellings(spellings: list[pd.Series], source: str) -> list[Issue]:
    """The merged-spelling warnings of the whole file, from each chunk's distinct spellings."""
    if not spellings:
        return []
    raw = pd.Series(pd.unique(pd.concat(spellings, ignore_index=True).to_numpy(dtype=object)), dtype=object)
    clean, _ = text_column(raw)
    return merged_name_warnings(raw, pd.Series(np.asarray(clean, dtype=object)), source)


def file_facts(path: Path, policy: Policy, period: Period, checked: Checked,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> pd.DataFrame:
    """Pass 2: per-customer facts for the period, summed over chunks, refused rows left out; with
    each customer's last non-empty name."""
    parts = []
    for _, ledger in chunks(path, policy, chunk_rows):
        rows = ledger.rows
        if checked.refused:
            rows = rows.loc[~rows["row"].isin(checked.refused)].reset_index(drop=True)
        if len(rows):
            facts, codes = customer_facts_and_codes(rows, policy, period)
            facts["customer_name"] = last_names(rows, facts["customer"], codes)
            parts.append(facts)
    return combine_facts(parts)


def combine_facts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks' facts -> one row per customer: sums added, the rate recomputed from the sums, the
    name from the last chunk that had one."""
    columns = ["customer", "net_sales_cents", "gross_sales_cents", "collections_cents", "collection_rate",
               "rate_status", "open_balance_cents", "customer_name"]  # as customer_facts orders them
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("customer", "rate_status", "customer_name")
                                          else "float64" if c == "collection_rate" else "int64") for c in columns})
    stacked = pd.concat(parts, ignore_index=True)
    sums = stacked.groupby("customer", sort=True)[SUM_COLUMNS].sum()
    named = stacked.loc[stacked["customer_name"] != "", ["customer", "customer_name"]]
    names = named.drop_duplicates("customer", keep="last").set_index("customer")["customer_name"]
    out = sums.reset_index()
    out["customer"] = out["customer"].astype(object)
    rate, status = collection_rates(out["collections_cents"].to_numpy(), out["gross_sales_cents"].to_numpy())
    out["collection_rate"], out["rate_status"] = rate, status
    out["customer_name"] = out["customer"].map(names).astype(object).fillna("").to_numpy(dtype=object)
    return out[columns]
