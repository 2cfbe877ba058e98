"""Collection rate (销售回款率) and open receivables per customer for a period.

    collection_rate = collections / (net_sales x (1 + VAT rate))

VAT is applied invoice by invoice at the rate in force on the invoice date (or the row's own
rate), so the denominator is the gross amount billed. Sums are exact integer cents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from .ledger import CREDIT_NOTE, INVOICE, RECEIPT, REDUCING, TYPES, WRITE_OFF
from .policy import Policy
from .schema import RateStatus
from .values import is_text_categorical, sorted_categorical

# Float sums of int64 cents are exact below 2**53 cents (90 trillion currency units).
_EXACT_LIMIT = 2**53

# Each customer's rate status (`rate_status`): a RateStatus, shown (and kept by pandas) as its label.
NO_SALES, NEGATIVE_SALES, RATED = RateStatus.NO_SALES, RateStatus.NEGATIVE_SALES, RateStatus.RATED
# Documents booked net of VAT; the rest (receipts, balances brought forward, write-offs) include it.
GROSSED_UP = (INVOICE, CREDIT_NOTE)

FACT_COLUMNS = ["customer", "net_sales_cents", "gross_sales_cents", "collections_cents",
                "collection_rate", "rate_status", "open_balance_cents", "written_off_cents"]
# The measures `customer_sums` adds up per customer, in its columns' order: the period's first,
# the open balance at the period's end last.
SUM_COLUMNS = ["net_sales_cents", "gross_sales_cents", "collections_cents", "written_off_cents",
               "open_balance_cents"]


@dataclass(frozen=True)
class Period:
    start: pd.Timestamp
    end: pd.Timestamp  # inclusive

    @classmethod
    def year(cls, year: int) -> "Period":
        return cls(pd.Timestamp(year=year, month=1, day=1), pd.Timestamp(year=year, month=12, day=31))

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"


def gross_cents(rows: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Each row's amount including VAT (int64 cents): invoices and credit notes grossed up at
    their rate, rounded half-up per document; every other document as booked (receipts, balances
    brought forward and write-offs already include VAT)."""
    vat = rows["vat_rate"].to_numpy(dtype="float64")
    missing = np.isnan(vat)
    amount = rows["amount_cents"].to_numpy(dtype="int64")
    if missing.all():  # the usual case: no row gives its own rate
        vat = _vat_by_day(policy, rows["date"].to_numpy())
    elif missing.any():
        vat = vat.copy()
        vat[missing] = _vat_by_day(policy, rows["date"].to_numpy()[missing])
    grossed = with_vat_cents(amount, vat)
    as_booked = ~(rows["type"].isin(GROSSED_UP)).to_numpy(dtype=bool)
    np.copyto(grossed, amount, where=as_booked)
    return grossed


# VAT rates are exact to a millionth (0.0001%): 13% is 130,000 parts per million.
VAT_PARTS = 10**6


def with_vat_cents(cents: np.ndarray, vat_rate: np.ndarray | float) -> np.ndarray:
    """cents x (1 + VAT rate), rounded half-up at the cent (away from zero, as Excel's ROUND and a
    VAT invoice do), in integers: 4,712,250 x 1.13 = 5,324,842.5 -> 5,324,843, where a float
    product (5324842.4999999995) would round down. The VAT is split as whole millions of cents
    times the rate plus the rest, so no product overflows int64 below the amount limit."""
    parts = np.rint(np.asarray(vat_rate, dtype="float64") * VAT_PARTS).astype("int64")
    magnitude = np.abs(np.asarray(cents, dtype="int64"))
    millions, rest = np.divmod(magnitude, VAT_PARTS)
    vat = millions * parts
    vat += (rest * parts + VAT_PARTS // 2) // VAT_PARTS
    vat += magnitude
    return np.negative(vat, out=vat, where=np.asarray(cents) < 0)


_DAY_NS = 86_400 * 10**9


def _vat_by_day(policy: Policy, dates: np.ndarray) -> np.ndarray | np.floating:
    """`policy.vat_rates(dates)`, cheaply for a ledger's dates (whole days, no NaT): one rate (a
    scalar) when no rate change falls between the first and the last date, as in a year's ledger;
    else looked up once per calendar day (a few hundred days, not millions of rows)."""
    stamps = np.asarray(dates, dtype="datetime64[ns]")
    if len(stamps) == 0:
        return policy.vat_rates(stamps)
    ns = stamps.view("int64")
    first, last = int(ns.min()), int(ns.max())
    if first == np.iinfo("int64").min:
        return policy.vat_rates(stamps)  # NaT: row by row
    changes = np.array(sorted(policy.vat_table), dtype="datetime64[ns]").view("int64")
    if not ((changes > first) & (changes <= last)).any():
        return policy.vat_rates(stamps[:1])[0]
    if len(stamps) < 100_000 or last - first > 400 * 366 * _DAY_NS:
        return policy.vat_rates(stamps)  # few rows, or centuries of dates: row by row
    day = (ns - first) // _DAY_NS  # floor division by a constant is cheap; `%` is ten times dearer
    if not np.array_equal(day * _DAY_NS + first, ns):
        return policy.vat_rates(stamps)  # times of day: row by row
    days = (np.arange((last - first) // _DAY_NS + 1, dtype="int64") * _DAY_NS + first).view("datetime64[ns]")
    return policy.vat_rates(days)[day]


def customer_facts(rows: pd.DataFrame, policy: Policy, period: Period,
                   customers: pd.Index | None = None) -> pd.DataFrame:
    """One row per customer: net sales, gross sales, collections, rate, status, open balance.

    Customers are those in the ledger (sorted) unless `customers` is given; a customer with no
    invoices in the period has no rate and a reason in `rate_status`.
    """
    return customer_facts_and_codes(rows, policy, period, customers)[0]


def customer_facts_and_codes(rows: pd.DataFrame, policy: Policy, period: Period,
                             customers: pd.Index | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """`customer_facts`, and each row's position in its customer column (-1: none)."""
    codes, names = _customer_codes(rows, customers)
    buckets = period_buckets(rows["date"].to_numpy(), period)
    sums = class_sums(rows, policy, codes, len(names), buckets)
    return facts_table(names, measures(sums, buckets.labels, PERIOD_BUCKET)), codes


def facts_table(customers, sums: np.ndarray) -> pd.DataFrame:
    """FACT_COLUMNS from the customers and their (n, 5) measures in SUM_COLUMNS' order."""
    net, gross_sales, collections, written_off, balance = np.asarray(sums, dtype="int64").reshape(-1, 5).T
    rate, status = collection_rates(collections, gross_sales)
    return pd.DataFrame({
        "customer": np.asarray(customers, dtype=object), "net_sales_cents": net, "gross_sales_cents": gross_sales,
        "collections_cents": collections, "collection_rate": rate, "rate_status": status,
        "open_balance_cents": balance, "written_off_cents": written_off})


_KINDS = TYPES  # the order of a clean ledger's type categories
# How each kind of document moves the open balance (gross): up for invoices and balances brought
# forward, down for receipts, credit notes and write-offs.
BALANCE_SIGNS = np.array([-1 if kind in (RECEIPT, *REDUCING) else 1 for kind in _KINDS], dtype="int64")


# ---------------------------------------------------------------- sums by customer, kind and time


@dataclass(frozen=True)
class Buckets:
    """How rows are split in time before summing: each row's bucket number and the buckets' labels
    (ascending). For a period the labels are BEFORE, PERIOD_BUCKET and AFTER; for calendar years
    they are the years the rows fall in, so any year's facts can be taken from one pass."""

    codes: np.ndarray  # each row's bucket, 0 .. len(labels) - 1
    labels: np.ndarray  # int64, ascending


BEFORE, PERIOD_BUCKET, AFTER = 0, 1, 2


def period_buckets(dates: np.ndarray, period: Period) -> Buckets:
    codes = (dates >= np.datetime64(period.start)).astype("int8")
    codes += dates > np.datetime64(period.end)
    return Buckets(codes, np.array([BEFORE, PERIOD_BUCKET, AFTER], dtype="int64"))


def year_buckets(dates: np.ndarray) -> Buckets:
    """Buckets by calendar year, numbered densely among the years present (a stray date decades
    away adds one bucket, not decades of empty ones). Years are looked up by day in a table
    spanning the dates: converting every date to a year costs ten times as much."""
    ns = np.asarray(dates, dtype="datetime64[ns]").view("int64")
    if len(ns) == 0:
        return Buckets(np.zeros(0, dtype="int16"), np.zeros(0, dtype="int64"))
    days = ns // _DAY_NS
    first = int(days.min())
    span = np.arange(first, int(days.max()) + 1, dtype="int64").view("datetime64[D]")
    year_of_day = span.astype("datetime64[Y]").astype("int64") + 1970
    labels = np.unique(year_of_day)
    codes = np.searchsorted(labels, year_of_day).astype("int16")[days - first]
    present = np.bincount(codes, minlength=len(labels)) > 0
    if present.all():
        return Buckets(codes, labels)
    dense = (np.cumsum(present) - 1).astype("int16")
    return Buckets(dense[codes], labels[present])


@dataclass(frozen=True)
class ClassSums:
    """Per customer x kind (TYPES' order) x time bucket: rows, amounts and amounts with VAT, in
    int64 cents (each an (n, kinds, buckets) array). Every measure of the review is a sum of
    these cells, so partitions of a ledger are combined by adding them."""

    rows: np.ndarray
    amount: np.ndarray
    gross: np.ndarray


@dataclass(frozen=True)
class ClassCells:
    """The classes of `ClassSums` that have rows, as flat cell numbers (customer-major, ascending:
    customer x (kinds x buckets) + kind x buckets + bucket) and their sums. A partition of a
    ledger with many customers occupies few of its classes (10^6 customers, 4 x 10^6 rows: 1.5 of
    10 million), and the partition hands on only these."""

    cell: np.ndarray  # int64
    rows: np.ndarray
    amount: np.ndarray
    gross: np.ndarray
    shape: tuple[int, int, int]  # customers, kinds, buckets

    def position(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each cell's (customer, kind, bucket)."""
        _, kinds, buckets = self.shape
        return self.cell // (kinds * buckets), self.cell // buckets % kinds, self.cell % buckets

    def dense(self) -> ClassSums:
        arrays = []
        for values in (self.rows, self.amount, self.gross):
            full = np.zeros(int(np.prod(self.shape)), dtype="int64")
            full[self.cell] = values
            arrays.append(full.reshape(self.shape))
        return ClassSums(*arrays)


def class_sums(rows: pd.DataFrame, policy: Policy, codes: np.ndarray, n: int, buckets: Buckets,
               block_rows: int = 1 << 20, exact_only: bool = False) -> ClassSums:
    """`class_cells` as dense (customer, kind, bucket) arrays."""
    return class_cells(rows, policy, codes, n, buckets, block_rows, exact_only).dense()


def class_cells(rows: pd.DataFrame, policy: Policy, codes: np.ndarray, n: int, buckets: Buckets,
                block_rows: int = 1 << 20, exact_only: bool = False) -> ClassCells:
    """Sum every row into its class (customer x kind x bucket) with one group sum per column.

    Float group sums (bincount) are used while a bound proves them exact, else int64 ones. Rows
    are taken `block_rows` at a time: the keys, gross amounts and float copies of a block stay in
    the CPU's cache instead of taking ~300 MB of fresh memory for 10^7 rows; a block has at least
    as many rows as there are classes, since each block's group sums span every class (10^6
    customers have 10^7 classes). With one block, its group sums are the totals, and only the
    occupied classes are rounded and kept: at 10^6 customers that spares ~500 MB of fresh memory
    a partition. Rows of another type or without a customer (code -1) count nowhere."""
    kind = _kind_codes(rows["type"])
    classes = len(_KINDS) * len(buckets.labels)
    amounts = rows["amount_cents"].to_numpy(dtype="int64")
    floats = not exact_only and _float_sums_exact(amounts) and _float_sums_exact(amounts, factor=2)
    cells = classes * n
    block_rows = max(block_rows, cells)
    totals = None
    for start in range(0, len(rows), block_rows):
        block = slice(start, start + block_rows)
        key = _class_keys(codes[block], kind[block], buckets.codes[block], len(buckets.labels))
        amount, gross = amounts[block], gross_cents(rows.iloc[block], policy)
        keep = key >= 0
        if not keep.all():
            key, amount, gross = key[keep], amount[keep], gross[keep]
        sums = [np.bincount(key, minlength=cells)]
        for values in (amount, gross):
            if floats:
                sums.append(np.bincount(key, weights=values, minlength=cells))
            else:
                sums.append(np.zeros(cells, dtype="int64"))
                np.add.at(sums[-1], key, values)
        if totals is None:
            totals = sums
        else:
            for total, part in zip(totals, sums):
                total += part
    if totals is None:
        totals = [np.zeros(cells, dtype="float64" if floats and k else "int64") for k in range(3)]
    occupied = np.flatnonzero(totals[0])
    amount_sums, gross_sums = (np.rint(t[occupied]).astype("int64") if floats else t[occupied] for t in totals[1:])
    return ClassCells(occupied, totals[0][occupied], amount_sums, gross_sums, (n, len(_KINDS), len(buckets.labels)))


def _kind_codes(kinds: pd.Series) -> np.ndarray:
    if isinstance(kinds.dtype, pd.CategoricalDtype) and tuple(kinds.cat.categories) == _KINDS:
        return kinds.cat.codes.to_numpy()
    return pd.Categorical(kinds, categories=_KINDS).codes


def _class_keys(codes: np.ndarray, kind: np.ndarray, bucket: np.ndarray, buckets: int) -> np.ndarray:
    """Each row's class number, customer-major; -1 for a row without a customer or known kind."""
    key = codes.astype("int64") * (len(_KINDS) * buckets)
    key += kind.astype("int64") * buckets
    key += bucket
    key[(codes < 0) | (kind < 0)] = -1
    return key


def measures(sums: ClassSums, labels: np.ndarray, label: int) -> np.ndarray:
    """The (n, 5) measures (SUM_COLUMNS) of bucket `label`: net sales, gross sales, collections and
    write-offs in it, and the open balance at its end (every bucket up to it, signed by kind)."""
    inside = np.asarray(labels) == label
    until = np.asarray(labels) <= label
    amount = sums.amount[:, :, inside].sum(axis=2)
    gross = sums.gross[:, :, inside].sum(axis=2)
    inv, rec, cn, wo = (_KINDS.index(k) for k in (INVOICE, RECEIPT, CREDIT_NOTE, WRITE_OFF))
    balance = sums.gross[:, :, until].sum(axis=2) @ BALANCE_SIGNS
    return np.column_stack([amount[:, inv] - amount[:, cn], gross[:, inv] - gross[:, cn],
                            amount[:, rec], amount[:, wo], balance]).astype("int64", copy=False)


def _float_sums_exact(cents: np.ndarray, factor: int = 1) -> bool:
    """Float sums of these cents (times `factor`, which bounds the amounts with VAT: VAT rates
    are below 100%) are exact, every partial sum below 2**53? Decided by a bound."""
    if len(cents) == 0:
        return True
    largest = max(abs(int(cents.min())), abs(int(cents.max()))) * factor
    return largest * len(cents) < _EXACT_LIMIT or _absolute_sum(cents) * factor < _EXACT_LIMIT / 2


def _absolute_sum(cents: np.ndarray, block: int = 1 << 20) -> float:
    """sum(|cents|) in float64, a block at a time: no temporary array as long as the column."""
    return sum(float(np.abs(cents[start:start + block]).sum(dtype="float64"))
               for start in range(0, len(cents), block))


def balance_signs(kinds: pd.Series) -> np.ndarray:
    """Each document's sign in the open balance (+1 or -1; 0 for a type outside TYPES)."""
    codes = pd.Categorical(kinds, categories=_KINDS).codes
    return np.append(BALANCE_SIGNS, 0)[codes]


class CollectionRates(NamedTuple):
    """Per customer: the collection rate (NaN where there is none) and its RateStatus."""

    rate: np.ndarray  # float64
    status: np.ndarray  # object array of RateStatus members


def collection_rates(collections_cents: np.ndarray, gross_sales_cents: np.ndarray) -> CollectionRates:
    """Rate where gross sales are positive; NaN and a reason elsewhere (never a division error)."""
    gross = np.asarray(gross_sales_cents, dtype="float64")
    ok = gross > 0
    rate = np.full(len(gross), np.nan)
    np.divide(np.asarray(collections_cents, dtype="float64"), gross, out=rate, where=ok)
    status = np.full(len(gross), NO_SALES, dtype=object)
    status[gross < 0] = NEGATIVE_SALES
    status[ok] = RATED
    return CollectionRates(rate, status)


def rate_from_net(collections: np.ndarray, net_sales: np.ndarray, vat_rate: np.ndarray | float) -> np.ndarray:
    """Element-wise rate from totals already summed (the worksheet form): NaN where sales <= 0."""
    with np.errstate(over="ignore"):  # inf from absurd totals: the worksheet layer shows #NUM!
        gross = np.asarray(net_sales, dtype="float64") * (1.0 + np.asarray(vat_rate, dtype="float64"))
        out = np.full(np.broadcast(gross, np.asarray(collections)).shape, np.nan)
        np.divide(np.asarray(collections, dtype="float64"), gross, out=out, where=gross > 0)
    return out


def _customer_codes(rows: pd.DataFrame, customers: pd.Index | None) -> tuple[np.ndarray, pd.Index]:
    if customers is None:
        column = rows["customer"]
        if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.categories.is_monotonic_increasing:
            return _used_category_codes(column)
        if is_text_categorical(column):  # sorted by Arrow: many times pandas' speed on 10^6 names
            return _used_category_codes(sorted_categorical(column))
        codes, names = pd.factorize(column, sort=True)
        return codes, pd.Index(names, dtype=object)
    names = pd.Index(customers, dtype=object)
    return names.get_indexer(rows["customer"]), names


def _used_category_codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """What `pd.factorize(column, sort=True)` gives for a categorical with sorted categories,
    from its codes alone: the categories in use, renumbered in order (no hashing of rows)."""
    codes = column.cat.codes.to_numpy().astype("intp")  # once: bincount would convert them anyway
    present = codes >= 0
    used = np.bincount(codes[present] if not present.all() else codes,
                       minlength=len(column.cat.categories)) > 0
    names = pd.Index(column.cat.categories[used], dtype=object)
    if used.all() and present.all():
        return codes, names  # the usual case: the codes are the numbers already
    renumber = np.append(np.cumsum(used) - 1, -1).astype("intp")  # code -1 stays -1
    return renumber[codes], names


