"""Collection rate (销售回款率) and open receivables per customer for a period.

    collection_rate = collections / (net_sales x (1 + VAT rate))

VAT is applied invoice by invoice at the rate in force on the invoice date (or the row's own
rate), so the denominator is the gross amount billed. Sums are exact integer cents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ledger import CREDIT_NOTE, INVOICE, RECEIPT, REDUCING, TYPES, WRITE_OFF
from .policy import Policy

# Float sums of int64 cents are exact below 2**53 cents (90 trillion currency units).
_EXACT_LIMIT = 2**53

NO_SALES = "no sales in period / 期内无销售"
NEGATIVE_SALES = "credit notes exceed sales / 红字超过销售"
RATED = "ok"
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


def _gross_as_floats(rows: pd.DataFrame, policy: Policy) -> np.ndarray:
    """`gross_cents` as float64, for float group sums: whole numbers, each exact (amounts stay
    below MAX_AMOUNT_CENTS, 10**15, VAT rates below 100%, and twice 10**15 is below 2**53)."""
    return gross_cents(rows, policy).astype("float64")


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
    names, sums, codes = customer_sums(rows, policy, period, customers)
    net, gross_sales, collections, written_off, balance = sums.T
    rate, status = collection_rates(collections, gross_sales)
    return pd.DataFrame({
        "customer": names, "net_sales_cents": net, "gross_sales_cents": gross_sales,
        "collections_cents": collections, "collection_rate": rate, "rate_status": status,
        "open_balance_cents": balance, "written_off_cents": written_off}), codes


def customer_sums(rows: pd.DataFrame, policy: Policy, period: Period,
                  customers: pd.Index | None = None) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """The customers, their net sales, gross sales, collections, bad debts written off in the period
    and open balance at its end, in cents (an (n, 5) int64 array, SUM_COLUMNS' order) and each row's position among the customers (-1: none):
    `customer_facts` without the rates, which is what chunks of a large ledger add up."""
    codes, names = _customer_codes(rows, customers)
    n = len(names)
    sums = _class_sums(rows, policy, period, codes, n)
    if sums is None:
        sums = _masked_sums(rows, policy, period, codes, n)
    return names, np.column_stack(sums).astype("int64", copy=False), codes


_KINDS = TYPES  # the order of a clean ledger's type categories
_CLASSES = 3 * len(_KINDS)  # kind x (before / in / after the period)
# How each kind of document moves the open balance (gross): up for invoices and balances brought
# forward, down for receipts, credit notes and write-offs.
BALANCE_SIGNS = np.array([-1 if kind in (RECEIPT, *REDUCING) else 1 for kind in _KINDS], dtype="int64")


def _class_sums(rows: pd.DataFrame, policy: Policy, period: Period, codes: np.ndarray, n: int,
                block_rows: int = 1 << 20):
    """Net sales, gross sales, collections and balance per customer from two group sums: each row
    falls in one of 15 classes (type x before / in / after the period), so amounts and gross amounts
    are summed once per customer and class instead of once per measure. None when the ledger is
    not a clean one (types other than TYPES) or totals could lose exactness in floats.

    Rows are taken `block_rows` at a time: the keys, gross amounts and float copies of a block
    stay in the CPU's cache instead of taking ~300 MB of fresh memory for 10^7 rows."""
    kinds = rows["type"]
    if not (isinstance(kinds.dtype, pd.CategoricalDtype) and tuple(kinds.cat.categories) == _KINDS):
        return None
    kind = kinds.cat.codes.to_numpy()
    if len(kind) and kind.min() < 0 or not _float_sums_exact(rows["amount_cents"].to_numpy(dtype="int64")):
        return None
    by_amount, by_gross = np.zeros(_CLASSES * n), np.zeros(_CLASSES * n)
    gross_largest = gross_magnitude = 0.0
    for start in range(0, len(rows), block_rows):
        block = slice(start, start + block_rows)
        part = rows.iloc[block]
        gross = _gross_as_floats(part, policy)
        magnitudes = np.abs(gross)  # once for both bounds
        gross_largest = max(gross_largest, float(magnitudes.max()))
        gross_magnitude += float(magnitudes.sum())
        key = _class_keys(codes[block], kind[block], part["date"].to_numpy(), period)
        amount = part["amount_cents"].to_numpy(dtype="int64")
        keep = codes[block] >= 0
        if not keep.all():
            key, amount, gross = key[keep], amount[keep], gross[keep]
        by_amount += np.bincount(key, weights=amount, minlength=_CLASSES * n)
        by_gross += np.bincount(key, weights=gross, minlength=_CLASSES * n)
    if not (gross_largest * len(rows) < _EXACT_LIMIT or gross_magnitude < _EXACT_LIMIT / 2):
        return None
    by_amount, by_gross = (np.rint(sums).astype("int64").reshape(n, len(_KINDS), 3) for sums in (by_amount, by_gross))
    inv, rec, cn = (_KINDS.index(k) for k in (INVOICE, RECEIPT, CREDIT_NOTE))
    net = by_amount[:, inv, 1] - by_amount[:, cn, 1]
    gross_sales = by_gross[:, inv, 1] - by_gross[:, cn, 1]
    collections = by_amount[:, rec, 1]
    written_off = by_amount[:, _KINDS.index(WRITE_OFF), 1]
    until_end = by_gross[:, :, 0] + by_gross[:, :, 1]
    balance = until_end @ BALANCE_SIGNS
    return net, gross_sales, collections, written_off, balance


def _class_keys(codes: np.ndarray, kind: np.ndarray, dates: np.ndarray, period: Period) -> np.ndarray:
    """Each row's class: customer x kind x (0 before, 1 in, 2 after the period)."""
    key = codes * _CLASSES
    key += kind * np.int8(3)
    key += dates >= np.datetime64(period.start)
    key += dates > np.datetime64(period.end)
    return key


def _float_sums_exact(cents: np.ndarray) -> bool:
    """Float sums of these cents are exact (every partial sum below 2**53)? Decided by a bound."""
    if len(cents) == 0:
        return True
    largest = max(abs(int(cents.min())), abs(int(cents.max())))
    return largest * len(cents) < _EXACT_LIMIT or _absolute_sum(cents) < _EXACT_LIMIT / 2


def _absolute_sum(cents: np.ndarray, block: int = 1 << 20) -> float:
    """sum(|cents|) in float64, a block at a time: no temporary array as long as the column."""
    return sum(float(np.abs(cents[start:start + block]).sum(dtype="float64"))
               for start in range(0, len(cents), block))


def _masked_sums(rows: pd.DataFrame, policy: Policy, period: Period, codes: np.ndarray, n: int):
    """The four measures one masked group sum at a time, exact at any size."""
    # masks straight from the column: to_numpy() of a categorical would build one str per row
    is_receipt = (rows["type"] == RECEIPT).to_numpy(dtype=bool)
    is_credit = (rows["type"] == CREDIT_NOTE).to_numpy(dtype=bool)
    is_invoice = (rows["type"] == INVOICE).to_numpy(dtype=bool)
    in_period = _between(rows["date"].to_numpy(), period)
    until_end = rows["date"].to_numpy() <= np.datetime64(period.end)
    amount = rows["amount_cents"].to_numpy(dtype="int64")
    gross = gross_cents(rows, policy)
    sign = np.where(is_credit, -1, 1)
    sales_mask = in_period & (is_invoice | is_credit)
    net = _sum_by(codes, np.where(sales_mask, amount * sign, 0), n)
    gross_sales = _sum_by(codes, np.where(sales_mask, gross * sign, 0), n)
    collections = _sum_by(codes, np.where(in_period & is_receipt, amount, 0), n)
    is_write_off = (rows["type"] == WRITE_OFF).to_numpy(dtype=bool)
    written_off = _sum_by(codes, np.where(in_period & is_write_off, amount, 0), n)
    balance = _sum_by(codes, np.where(until_end, gross * balance_signs(rows["type"]), 0), n)
    return net, gross_sales, collections, written_off, balance


def balance_signs(kinds: pd.Series) -> np.ndarray:
    """Each document's sign in the open balance (+1 or -1; 0 for a type outside TYPES)."""
    codes = pd.Categorical(kinds, categories=_KINDS).codes
    return np.append(BALANCE_SIGNS, 0)[codes]


def collection_rates(collections_cents: np.ndarray, gross_sales_cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rate where gross sales are positive; NaN and a reason elsewhere (never a division error)."""
    gross = np.asarray(gross_sales_cents, dtype="float64")
    ok = gross > 0
    rate = np.full(len(gross), np.nan)
    np.divide(np.asarray(collections_cents, dtype="float64"), gross, out=rate, where=ok)
    status = np.where(ok, RATED, np.where(gross < 0, NEGATIVE_SALES, NO_SALES)).astype(object)
    return rate, status


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


def _between(dates: np.ndarray, period: Period) -> np.ndarray:
    return (dates >= np.datetime64(period.start)) & (dates <= np.datetime64(period.end))


def _sum_by(codes: np.ndarray, cents: np.ndarray, n: int) -> np.ndarray:
    """Group sums of int64 cents; bincount is the fastest exact path while totals stay below 2**53."""
    keep = codes >= 0
    if keep.all():  # every row has a customer: no need to copy the columns
        keep = slice(None)
    if not _float_sums_exact(cents):
        out = np.zeros(n, dtype=object)
        np.add.at(out, codes[keep], cents[keep].astype(object))
        return out.astype("int64")
    return np.rint(np.bincount(codes[keep], weights=cents[keep], minlength=n)).astype("int64")
