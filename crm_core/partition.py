"""A ledger's review as one partition function and a few ledger-wide reductions.

Every path that reviews a ledger (a sheet range, a file read whole, Dask or Spark partitions of a
file larger than memory) splits it into partitions of consecutive rows, calls `partition` on
each and `combine` on the results in file order (an engine holding too many to keep adds them
up first with `PartialFold`); no engine implements a ledger rule itself.

A partition yields what is added up across partitions: per customer x document kind x calendar
year (or before / in / after a given period) the number of rows, the amounts and the amounts with
VAT, in integer cents (`crm_core.collection.class_cells`). The rules that need the whole ledger are
reductions over the partitions' small by-products: repeated invoice numbers (from the numbered
invoices), spellings merged into one customer (from each partition's distinct spellings), an
empty ledger, the last date (which sets the default review year), and each customer's last name.

Rows are numbered within a partition from 0; `combine` places them by the row counts of the
partitions before, so an engine need not know where a partition starts before reading it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .collection import (
    FACT_COLUMNS,
    PERIOD_BUCKET,
    TYPES,
    Buckets,
    ClassCells,
    ClassSums,
    Period,
    _customer_codes,
    class_cells,
    facts_table,
    gross_cents,
    measures,
    period_buckets,
    year_buckets,
)
from .issues import Issue, IssueCode
from .ledger import (
    INVOICE,
    Ledger,
    check_rows,
    duplicate_invoices,
    ledger_wide_issues,
    merged_name_warnings,
)
from .policy import Policy
from .review import default_period
from .values import distinct_categories, is_text_categorical, text_values, union_codes

# The columns of a partition's sums: one row per customer x kind x bucket that has rows.
SUMS_COLUMNS = ["customer", "bucket", "kind", "rows", "amount_cents", "gross_cents"]
# A partition's numbered invoices: what the repeat check needs, and what a refused one had added.
INVOICE_COLUMNS = ["row", "invoice_no", "date", "customer", "bucket", "amount_cents", "vat_rate", "customer_name"]
NAME_COLUMNS = ["customer", "row", "customer_name"]  # each customer's last named row


@dataclass(frozen=True)
class Partial:
    """What one partition of consecutive ledger rows contributes (rows numbered from 0)."""

    input_rows: int
    blank_rows: int
    issues: list[Issue]  # the row-by-row rules' findings, and a wrong header
    sums: pd.DataFrame  # SUMS_COLUMNS
    invoices: pd.DataFrame  # INVOICE_COLUMNS
    names: pd.DataFrame  # NAME_COLUMNS, from the rows that are not numbered invoices
    spellings: pd.DataFrame  # distinct raw customer cells and the customer each is read as
    latest: pd.Timestamp | None  # the last date among rows no repeated invoice number can refuse
    by_year: bool  # buckets are calendar years (else before / in / after the period given)
    # Compacted: the invoice numbers rose strictly, so only the first and last are kept (None
    # without numbered invoices); their dates and names are in `latest` and `names`.
    compacted: bool = False
    invoice_span: tuple | None = None
    overlapping: bool = False  # compacted partitions whose numbers interleave: repeats are possible

    @property
    def header_problem(self) -> bool:
        return any(i.code == IssueCode.MISSING_COLUMN for i in self.issues)


def partition(frame: pd.DataFrame, policy: Policy | None = None, source: str = "ledger",
              period: Period | None = None, compact: bool = True, reader_issues: list[Issue] | None = None) -> Partial:
    """The partition function: check a raw ledger table row by row and sum it by customer, kind
    and bucket (calendar years, or the given period's before / in / after).

    `compact`: when the numbered invoices' numbers rise strictly (as ERPs export them) no repeat
    can be inside the partition, so only their span is kept; what an engine holds for many
    partitions then stays small, and `combine` compares spans (see `PartialFold`). `reader_issues`:
    lines of this partition the file reader could not split into cells (numbered from 0 like its
    rows), which it gave as empty rows."""
    policy = policy or Policy()
    ledger = check_rows(frame, policy, source, first_row=0)
    if reader_issues and not any(i.code == IssueCode.MISSING_COLUMN for i in ledger.issues):
        ledger = replace(ledger, issues=ledger.issues + list(reader_issues),
                         blank_rows=ledger.blank_rows - len(reader_issues))
    rows = ledger.rows
    dates = rows["date"].to_numpy()
    buckets = year_buckets(dates) if period is None else period_buckets(dates, period)
    codes, customers = _customer_codes(rows, None)
    sums = class_cells(rows, policy, codes, len(customers), buckets)
    customers = distinct_categories(customers)  # one dtype for sums and names: an engine codes them once
    numbered = (rows["type"] == INVOICE).to_numpy(dtype=bool) & (rows["invoice_no"] != "").to_numpy(dtype=bool)
    common = dict(input_rows=ledger.input_rows, blank_rows=ledger.blank_rows, issues=ledger.issues,
                  sums=_long_sums(customers, sums, buckets), spellings=_spellings(ledger), by_year=period is None)
    span = _rising_span(rows["invoice_no"], numbered) if compact else False
    if span is not False:
        return Partial(**common, invoices=_invoices(rows.iloc[:0], buckets.labels[:0]),
                       names=_last_names(rows, codes, customers),
                       latest=pd.Timestamp(dates.max()) if len(dates) else None, compacted=True, invoice_span=span)
    unnumbered = dates[~numbered]
    return Partial(**common, invoices=_invoices(rows.loc[numbered], buckets.labels[buckets.codes[numbered]]),
                   names=_last_names(rows, np.where(numbered, -1, codes), customers),
                   latest=pd.Timestamp(unnumbered.max()) if len(unnumbered) else None)


def _rising_span(numbers: pd.Series, numbered: np.ndarray):
    """(first, last) of the numbered invoices' numbers if they rise strictly (None without any);
    False when they do not."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not numbered.any():
        return None
    values = _arrow_text(numbers, chunked=True).filter(pa.array(numbered))
    if values.null_count or (len(values) > 1 and not pc.all(pc.less(values[:-1], values[1:])).as_py()):
        return False
    return values[0].as_py(), values[-1].as_py()


class InvoicesNeeded(Exception):
    """Compacted partitions whose invoice numbers interleave: the repeat check needs their rows
    (the engine runs the partitions again without compacting)."""


class PartialFold:
    """Partials of consecutive rows added one at a time, in file order, to one running total, so
    an engine can reduce any number of partitions holding only the total and the partitions in
    flight: `fold = PartialFold(); fold.add(p) ...; fold.result()` is the partials as one Partial.

    A partial costs about what its own sums cost, however many came before. Its customers are
    numbered in order of first appearance (`_Numbering`), and its sums added under integer keys
    (customer, kind, bucket) to sorted totals (`_Cells`). A pairwise tree of merges hashed the
    customers' text again at every level: at 10^8 rows it held 3.7 GB and took as long as the
    partitions. Neither Arrow nor pandas has a public hash table that grows, so the customers known
    are hashed again per partial, by Arrow, in C++ and outside the GIL; a Python dict took as long,
    holding the GIL the partition functions running beside it need.

    Spellings: only what `merged_name_warnings` reads is kept, in order of first appearance: the
    spellings that differ from the customer they are read as, and of the customers written as
    they are read, those that also have another spelling (chosen at the end)."""

    BUCKET_STRIDE = 1 << 16  # more distinct buckets than this in one ledger: refused (a bucket is a year)

    def __init__(self) -> None:
        self.problem: Partial | None = None  # the first partial with a wrong header: the answer
        self.count = 0
        self.input_rows = self.blank_rows = 0
        self.issues: list[Issue] = []
        self.invoices: list[pd.DataFrame] = []
        self.latest: list[pd.Timestamp | None] = []
        self.by_year = True
        self.compacted_kinds: set[bool] = set()
        self.spans: list[tuple] = []  # the first and the last invoice span
        self.overlapping = False
        self.customers = _Numbering()
        self.bucket_of: dict[int, int] = {}
        self.bucket_labels: list[int] = []
        self.cells = _Cells()
        self.last_row = np.zeros(0, dtype="int64")  # per customer number: the last named row (-1: none)
        self.last_name = np.zeros(0, dtype=object)
        self.differing: dict[tuple, int] = {}  # (raw, clean) -> order of first appearance
        self.plain_first = np.zeros(0, dtype="int64")  # per customer number: first written as read (-1: never)

    def add(self, partial: Partial) -> PartialFold:
        if self.problem is not None:
            return self
        if partial.header_problem:
            self.problem = partial
            return self
        offset, self.count = self.input_rows, self.count + 1
        if self.count == 1:
            self.by_year = partial.by_year
        self.input_rows += partial.input_rows
        self.blank_rows += partial.blank_rows
        self.issues += [_moved(i, offset) for i in partial.issues]
        if len(partial.invoices):
            self.invoices.append(_rows_moved(partial.invoices, offset))
        self.latest.append(partial.latest)
        self._add_invoice_span(partial)
        numbers = {}  # a partial's sums and names share their categories: numbered once
        self._add_sums(partial.sums, numbers)
        self._add_names(_rows_moved(partial.names, offset), numbers)
        self._add_spellings(partial.spellings, numbers)
        return self

    def _add_invoice_span(self, partial: Partial) -> None:
        self.compacted_kinds.add(partial.compacted)
        span = partial.invoice_span
        self.overlapping |= partial.overlapping or len(self.compacted_kinds) > 1 or (
            span is not None and bool(self.spans) and not self.spans[-1][1] < span[0])
        if span is not None:
            self.spans = [self.spans[0], span] if self.spans else [span]

    def _numbers(self, column: pd.Series, cache: dict) -> np.ndarray:
        """The column's customers as numbers in the fold's numbering (new ones added)."""
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories, codes = column.cat.categories, column.cat.codes.to_numpy()
        else:
            codes, categories = pd.factorize(column.to_numpy(dtype=object))
        key = id(categories)
        if key not in cache:
            text = _arrow_text(categories)
            cache[key] = (np.append(self._numbered(text), -1), text, categories)  # the Index kept: its id stays unique
        return cache[key][0][codes]

    def _spelling_numbers(self, texts, cache: dict) -> np.ndarray:
        """The numbers of customers written as `texts` (Arrow), looked up among the partial's own
        customers first: a hash of those is a third of the size of the fold's."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not cache:
            return self._numbered(texts)
        numbers, categories, _ = next(iter(cache.values()))
        found = np.asarray(pc.fill_null(pc.index_in(texts, value_set=categories), -1), dtype="int64")
        result = numbers[found]  # -1 (not found) picks the -1 appended
        missing = np.flatnonzero(result < 0)
        if len(missing):
            result[missing] = self._numbered(texts.take(pa.array(missing)))
        return result

    def _numbered(self, values) -> np.ndarray:
        numbers = self.customers.numbers(values)
        size = len(self.customers)
        self.last_row = _grown(self.last_row, size, -1)
        self.last_name = _grown(self.last_name, size, None)
        self.plain_first = _grown(self.plain_first, size, -1)
        return numbers

    def _add_sums(self, sums: pd.DataFrame, cache: dict) -> None:
        if not len(sums):
            return
        customers = self._numbers(sums["customer"], cache)
        codes, labels = pd.factorize(sums["bucket"].to_numpy(dtype="int64"))
        for label in labels.tolist():
            if label not in self.bucket_of:
                if len(self.bucket_labels) == self.BUCKET_STRIDE:
                    raise ValueError(f"a ledger has more than {self.BUCKET_STRIDE} time buckets")
                self.bucket_of[label] = len(self.bucket_labels)
                self.bucket_labels.append(label)
        buckets = np.array([self.bucket_of[label] for label in labels.tolist()], dtype="int64")[codes]
        key = (customers * len(TYPES) + sums["kind"].to_numpy(dtype="int64")) * self.BUCKET_STRIDE + buckets
        self.cells.add(key, *(sums[c].to_numpy(dtype="int64") for c in ("rows", "amount_cents", "gross_cents")))

    def _add_names(self, names: pd.DataFrame, cache: dict) -> None:
        """A later partial's rows come later in the file: its named rows replace the earlier ones."""
        if not len(names):
            return
        customers = self._numbers(names["customer"], cache)
        self.last_row[customers] = names["row"].to_numpy(dtype="int64")
        self.last_name[customers] = names["customer_name"].to_numpy(dtype=object)

    def _add_spellings(self, spellings: pd.DataFrame, cache: dict) -> None:
        if not len(spellings):
            return
        first = self.count << 32  # order of first appearance: (partial, position)
        differs = (spellings["raw"] != spellings["clean"]).to_numpy(dtype=bool)
        plain = np.flatnonzero(~differs)
        customers = self._spelling_numbers(_arrow_text(spellings["clean"]).take(plain), cache)
        new = self.plain_first[customers] < 0
        self.plain_first[customers[new]] = first + plain[new]
        for position in np.flatnonzero(differs).tolist():
            pair = (spellings["raw"].iat[position], spellings["clean"].iat[position])
            self.differing.setdefault(pair, first + position)

    def result(self) -> Partial:
        if self.problem is not None:
            return self.problem
        key, rows, amount, gross = self.cells.total()
        keep = rows > 0
        key, rows, amount, gross = key[keep], rows[keep], amount[keep], gross[keep]
        cell_customers = key // (len(TYPES) * self.BUCKET_STRIDE)
        named = np.flatnonzero(self.last_row >= 0)
        named = named[np.argsort(self.last_row[named], kind="stable")]  # in row order
        used = np.zeros(len(self.customers), dtype=bool)
        used[cell_customers] = used[named] = True
        renumber = np.cumsum(used) - 1
        # one dtype for sums and names, as a partition's: `combine` codes them by one union
        categories = distinct_categories(pd.Index(self.customers.values(used), dtype=object))
        labels = np.asarray(self.bucket_labels, dtype="int64")
        compacted = self.compacted_kinds == {True}
        return Partial(
            input_rows=self.input_rows, blank_rows=self.blank_rows, issues=self.issues,
            sums=pd.DataFrame({
                "customer": _customer_column(renumber[cell_customers], categories),
                "bucket": labels[key % self.BUCKET_STRIDE],
                "kind": key // self.BUCKET_STRIDE % len(TYPES),
                "rows": rows, "amount_cents": amount, "gross_cents": gross}),
            invoices=_concat(self.invoices, INVOICE_COLUMNS),
            names=pd.DataFrame({"customer": _customer_column(renumber[named], categories),
                                "row": self.last_row[named],
                                "customer_name": pd.Series(self.last_name[named], dtype=object)}),
            spellings=self._spellings(),
            latest=_latest(self.latest, np.zeros(0, dtype="datetime64[ns]")),
            by_year=self.by_year, compacted=compacted, overlapping=self.overlapping,
            invoice_span=(self.spans[0][0], self.spans[-1][1]) if self.spans and compacted else None)

    def _spellings(self) -> pd.DataFrame:
        """The differing spellings, and the plain ones of customers that have a differing one."""
        import pyarrow as pa

        pairs = list(self.differing.items())
        cleans = list({clean for _, clean in self.differing})
        numbers = self.customers.find(pa.array(cleans, type=pa.string())).tolist()
        for clean, number in zip(cleans, numbers):
            if number >= 0 and self.plain_first[number] >= 0:
                pairs.append(((clean, clean), int(self.plain_first[number])))
        pairs.sort(key=lambda pair: pair[1])
        return pd.DataFrame({"raw": pd.Series([raw for (raw, _), _ in pairs], dtype=object),
                             "clean": pd.Series([clean for (_, clean), _ in pairs], dtype=object)})


class _Numbering:
    """Customers numbered in order of first appearance; a batch is looked up by Arrow's hash of
    the customers known so far (C++, without the GIL: a Python dict lookup per customer took as
    long as the partition function itself)."""

    def __init__(self) -> None:
        import pyarrow as pa

        self.known = pa.array([], type=pa.string())

    def __len__(self) -> int:
        return len(self.known)

    def find(self, values) -> np.ndarray:
        """The numbers of `values` (an Arrow string array), -1 for those not numbered yet."""
        import pyarrow.compute as pc

        return np.asarray(pc.fill_null(pc.index_in(values, value_set=self.known), -1), dtype="int64")

    def numbers(self, values) -> np.ndarray:
        """The numbers of `values`, the new ones numbered after the known ones."""
        import pyarrow as pa
        import pyarrow.compute as pc

        numbers = self.find(values)
        new = np.flatnonzero(numbers < 0)
        if len(new):
            fresh = pc.dictionary_encode(values.take(pa.array(new)), null_encoding="encode")  # first appearance order
            numbers[new] = len(self.known) + np.asarray(fresh.indices, dtype="int64")
            self.known = pa.concat_arrays([self.known, fresh.dictionary])
        return numbers

    def values(self, mask: np.ndarray) -> np.ndarray:
        """The customers where `mask` is set, as Python strings, in number order."""
        import pyarrow as pa

        return self.known.filter(pa.array(mask)).to_numpy(zero_copy_only=False)


class _Cells:
    """Integer-keyed sums. The keys seen so far are kept sorted: a batch's keys are found among
    them by binary search, in sorted order so the search stays in cache, and added in place. Keys
    not seen before wait, and are merged in by one sort when they outgrow the total. Hashing the
    total with the batch (pandas' factorize) cost three times as much once it held 5 x 10^6 cells."""

    MIN_WAITING = 1 << 20  # rows: below this, merging costs more in calls than in rows

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype="int64")
        self.sums = [np.zeros(0, dtype="int64") for _ in range(3)]
        self.waiting: list[tuple[np.ndarray, ...]] = []
        self.waiting_rows = 0

    def add(self, key: np.ndarray, *values: np.ndarray) -> None:
        """`key`: distinct within one batch (one partial's cells)."""
        order = np.argsort(key)
        key = key[order]
        values = [value[order] for value in values]
        at = np.searchsorted(self.keys, key)
        found = at < len(self.keys)
        found[found] = self.keys[at[found]] == key[found]
        for total, value in zip(self.sums, values):
            total[at[found]] += value[found]
        new = ~found
        if new.any():
            self.waiting.append((key[new], *(value[new] for value in values)))
            self.waiting_rows += int(new.sum())
        if self.waiting_rows > max(len(self.keys), self.MIN_WAITING):
            self._merge()

    def _merge(self) -> None:
        columns = [np.concatenate(column) for column in zip((self.keys, *self.sums), *self.waiting)]
        order = np.argsort(columns[0], kind="stable")
        keys = columns[0][order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype="int64")
        self.keys = keys[starts]
        self.sums = [np.add.reduceat(column[order], starts) if len(starts) else column for column in columns[1:]]
        self.waiting, self.waiting_rows = [], 0

    def total(self) -> tuple[np.ndarray, ...]:
        """The keys, sorted, and their sums."""
        if self.waiting:
            self._merge()
        return (self.keys, *self.sums)


def _arrow_text(column: pd.Series, chunked: bool = False):
    """A text column as an Arrow string array, without a Python object per cell when it is Arrow
    already. `chunked`: as the chunks it is held in (a CSV reader's blocks), not copied into one
    array: filtering and comparing 5x10^6 invoice numbers in 10 chunks took 0.04 s, against 0.39 s
    copied first."""
    import pyarrow as pa

    array = column.array
    values = pa.array(array) if hasattr(array, "__arrow_array__") else pa.array(column.to_numpy(dtype=object), type=pa.string())
    if isinstance(values, pa.ChunkedArray) and not chunked:
        values = values.combine_chunks()
    return values.cast(pa.string())


def _grown(array: np.ndarray, size: int, fill) -> np.ndarray:
    """`array` with room for `size` entries (doubling: amortized once per entry), new ones `fill`."""
    if size <= len(array):
        return array
    grown = np.full(max(size, 2 * len(array)), fill, dtype=array.dtype)
    grown[:len(array)] = array
    return grown


def _sums_and_names(sums: list[pd.DataFrame], names: list[pd.DataFrame],
                    refused_invoices: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`_summed` and `_last_per_customer` of the partials' sums and names, their customers coded
    by one union (a partial's sums and names share their categories: hashed once, not twice)."""
    if refused_invoices is not None and len(refused_invoices):  # rare: their own codes
        return _summed(sums, refused_invoices), _last_per_customer(names)
    sums, names = [f for f in sums if len(f)], [f for f in names if len(f)]  # an empty one may be untyped
    codes, customers = _customer_codes_of([f["customer"] for f in sums + names])
    at = sum(len(f) for f in sums)
    return _summed(sums, coded=(codes[:at], customers)), _last_per_customer(names, coded=(codes[at:], customers))


def _last_per_customer(frames: list[pd.DataFrame], coded: tuple[np.ndarray, pd.Index] | None = None) -> pd.DataFrame:
    """Each customer's last named row (the highest row number; of equal ones the last frame's),
    in row order. Customers as codes (`_customer_codes_of`: from the categories alone when the
    frames are partitions'), not a group-by over every row's text: 4 s for 10^6 customers.
    `coded`: the frames' customers already coded, row for row."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return _concat([], NAME_COLUMNS)
    codes, customers = coded or _customer_codes_of([f["customer"] for f in frames])
    rows = np.concatenate([f["row"].to_numpy(dtype="int64") for f in frames])
    last = np.full(len(customers) + 1, np.iinfo(np.int64).min)  # code -1 (no customer) in the last slot
    np.maximum.at(last, codes, rows)
    keep = np.flatnonzero((rows == last[codes]) & (codes >= 0))
    keep = keep[np.argsort(rows[keep], kind="stable")]
    keep = keep[~pd.Series(codes[keep]).duplicated(keep="last").to_numpy()]  # one row named twice
    names = np.concatenate([f["customer_name"].to_numpy(dtype=object) for f in frames])
    return pd.DataFrame({"customer": _customer_column(codes[keep], customers), "row": rows[keep],
                         "customer_name": pd.Series(names[keep], dtype=object)})  # not re-inferred as str


def _customer_column(codes: np.ndarray, customers: pd.Index | pd.CategoricalDtype) -> pd.Categorical:
    """Customers by their codes into `customers` (distinct, or their dtype), as the categorical
    partials carry."""
    dtype = customers if isinstance(customers, pd.CategoricalDtype) else distinct_categories(customers)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _long_sums(customers: pd.CategoricalDtype, sums: ClassCells, buckets: Buckets) -> pd.DataFrame:
    """The occupied cells of the (customer, kind, bucket) classes as rows."""
    customer, kind, bucket = sums.position()
    return pd.DataFrame({
        "customer": _customer_column(customer, customers), "bucket": buckets.labels[bucket],
        "kind": kind, "rows": sums.rows, "amount_cents": sums.amount, "gross_cents": sums.gross})


def _invoices(part: pd.DataFrame, buckets: np.ndarray) -> pd.DataFrame:
    """The numbered invoices as the repeat check needs them; the amounts with VAT are worked out
    in `combine` for the few that are refused."""
    table = part[[c for c in INVOICE_COLUMNS if c != "bucket"]].reset_index(drop=True)
    return table.assign(bucket=np.asarray(buckets, dtype="int64"))


def _last_names(rows: pd.DataFrame, codes: np.ndarray, customers: pd.CategoricalDtype) -> pd.DataFrame:
    """Each customer's last named row among the rows with a code (-1: not counted)."""
    from .review import last_named_positions

    positions = last_named_positions(rows, codes, len(customers.categories))
    has = np.flatnonzero(positions >= 0)
    return pd.DataFrame({
        "customer": _customer_column(has, customers),
        "row": rows["row"].to_numpy(dtype="int64")[positions[has]],
        "customer_name": text_values(rows["customer_name"], positions[has])})


def _spellings(ledger: Ledger) -> pd.DataFrame:
    return ledger.spellings if ledger.spellings is not None else pd.DataFrame({"raw": [], "clean": []}, dtype=object)


# ---------------------------------------------------------------- reductions


@dataclass(frozen=True)
class LedgerSums:
    """A whole ledger reduced: its issues and counts, and sums any review period is taken from."""

    sums: pd.DataFrame  # SUMS_COLUMNS, one row per customer x kind x bucket
    names: pd.Series  # customer -> last name
    issues: list[Issue] = field(default_factory=list)
    input_rows: int = 0
    blank_rows: int = 0
    rows_used: int = 0
    latest: pd.Timestamp | None = None
    by_year: bool = True

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]

    def default_period(self) -> Period:
        return default_period(self.latest)

    def facts(self, period: Period | None = None) -> pd.DataFrame:
        """FACT_COLUMNS and customer_name for `period` (a calendar year when the sums are by year;
        default: the last complete year), customers sorted."""
        period = period or self.default_period()
        if self.by_year:
            if period != Period.year(period.start.year):
                raise ValueError(f"sums by calendar year cannot give the period {period}")
            label = period.start.year
        else:
            label = PERIOD_BUCKET
        customers, cells, labels = _dense(self.sums)
        table = facts_table(customers, measures(cells, labels, label))
        table["customer_name"] = self.names.reindex(customers).fillna("").to_numpy(dtype=object)
        return table[[*FACT_COLUMNS, "customer_name"]]


def combine(partials: list[Partial], policy: Policy | None = None, source: str = "ledger",
            first_row: int = 2, reader_issues: list[Issue] | None = None) -> LedgerSums:
    """The partitions, in ledger order, reduced to the whole ledger's sums and issues. `first_row`:
    the sheet row of the first partition's first row. `reader_issues`: lines the file reader could
    not split into cells (already numbered; the reader gave them as empty rows)."""
    policy = policy or Policy()
    if any(p.overlapping for p in partials) or len({p.compacted for p in partials}) > 1 or _interleave(partials):
        raise InvoicesNeeded()
    offsets = first_row + np.cumsum([0] + [p.input_rows for p in partials])[:-1]
    input_rows = sum(p.input_rows for p in partials)
    header = next((p for p in partials if p.header_problem), None)
    if header is not None:  # a wrong header: nothing below it can be read
        return LedgerSums(_empty_sums(), pd.Series(dtype=object), header.issues, input_rows, 0, 0, None, header.by_year)
    issues = [_moved(i, offset) for p, offset in zip(partials, offsets) for i in p.issues]
    invoices = _concat([_rows_moved(p.invoices, offset) for p, offset in zip(partials, offsets)], INVOICE_COLUMNS)
    repeats = duplicate_invoices(invoices.assign(type=INVOICE), source)
    refused = invoices["row"].isin({i.row for i in repeats}).to_numpy() if repeats else np.zeros(len(invoices), bool)
    reader_issues = list(reader_issues or [])
    issues += reader_issues + repeats
    spellings = pd.concat([p.spellings for p in partials], ignore_index=True) if partials else None
    issues += merged_name_warnings(spellings, source)
    rows_used = sum(int(p.sums["rows"].sum()) for p in partials) - len(repeats)
    issues = ledger_wide_issues(issues, input_rows, rows_used, source)
    named_invoices = invoices.loc[~refused & (invoices["customer_name"] != "").to_numpy(dtype=bool), NAME_COLUMNS]
    sums, names = _sums_and_names([p.sums for p in partials],
                                  [_rows_moved(p.names, offset) for p, offset in zip(partials, offsets)]
                                  + [named_invoices], _with_gross(invoices.loc[refused], policy))
    return LedgerSums(
        sums=sums,
        # objects as they are: pandas 3 would re-encode a million names and customers as Arrow text
        names=pd.Series(names["customer_name"].to_numpy(dtype=object), dtype=object,
                        index=pd.Index(names["customer"].to_numpy(dtype=object), dtype=object)),
        issues=issues, input_rows=input_rows,
        blank_rows=sum(p.blank_rows for p in partials) - len(reader_issues), rows_used=rows_used,
        latest=_latest([p.latest for p in partials], invoices["date"].to_numpy()[~refused]),
        by_year=partials[0].by_year if partials else True)


def ledger_sums(frame: pd.DataFrame, policy: Policy | None = None, source: str = "ledger",
                first_row: int = 2, period: Period | None = None) -> LedgerSums:
    """A ledger table reviewed as one partition (a sheet range, a file read whole)."""
    return combine([partition(frame, policy, source, period)], policy, source, first_row)


def _interleave(partials: list[Partial]) -> bool:
    spans = [p.invoice_span for p in partials if p.compacted and p.invoice_span is not None]
    return any(not a[1] < b[0] for a, b in zip(spans, spans[1:]))


def _moved(issue: Issue, offset: int) -> Issue:
    return issue if issue.row is None else replace(issue, row=int(issue.row + offset))


def _rows_moved(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    return frame.assign(row=frame["row"].to_numpy(dtype="int64") + int(offset))


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("row", "bucket") else object) for c in columns})
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _with_gross(invoices: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    if not len(invoices):
        return invoices.assign(gross_cents=np.zeros(0, dtype="int64"))
    return invoices.assign(gross_cents=gross_cents(invoices.assign(type=INVOICE), policy))


def _summed(parts: list[pd.DataFrame], refused_invoices: pd.DataFrame | None = None,
            coded: tuple[np.ndarray, pd.Index] | None = None) -> pd.DataFrame:
    """The partitions' sums added by customer, kind and bucket, less what refused invoices added.
    `coded`: the parts' customers already coded, row for row (without refused invoices)."""
    if refused_invoices is not None and len(refused_invoices):
        taken_out = refused_invoices.assign(kind=TYPES.index(INVOICE), rows=1)
        negated = taken_out[SUMS_COLUMNS].copy()
        for column in ("rows", "amount_cents", "gross_cents"):
            negated[column] = -negated[column].to_numpy(dtype="int64")
        parts = [*parts, negated]
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_sums()
    codes, customers = coded or _customer_codes_of([p["customer"] for p in parts])
    if len(parts) == 1:  # one partial's cells are distinct already (SUMS_COLUMNS): nothing to add up
        return _recoded_sums(parts[0], codes, customers)
    table = pd.concat([p.drop(columns="customer") for p in parts], ignore_index=True)
    bucket_codes, buckets = pd.factorize(table["bucket"].to_numpy(dtype="int64"), sort=True)
    kinds = len(TYPES)
    key = (codes * len(buckets) + bucket_codes) * kinds + table["kind"].to_numpy(dtype="int64")
    group, keys = pd.factorize(key)
    totals = {}
    for column in ("rows", "amount_cents", "gross_cents"):
        totals[column] = np.zeros(len(keys), dtype="int64")
        np.add.at(totals[column], group, table[column].to_numpy(dtype="int64"))
    keep = totals["rows"] > 0
    keys = keys[keep]
    return pd.DataFrame({
        "customer": _customer_column(keys // (kinds * len(buckets)), customers),
        "bucket": buckets[keys // kinds % len(buckets)].astype("int64"), "kind": keys % kinds,
        **{column: total[keep] for column, total in totals.items()}})


def _recoded_sums(sums: pd.DataFrame, codes: np.ndarray, customers: pd.Index) -> pd.DataFrame:
    """One partial's sums, as `_summed` gives them: its customers coded into `customers`."""
    keep = sums["rows"].to_numpy(dtype="int64") > 0
    return pd.DataFrame({
        "customer": _customer_column(codes[keep], customers),
        **{column: sums[column].to_numpy(dtype="int64")[keep] for column in SUMS_COLUMNS[1:]}})


def _customer_codes_of(columns: list[pd.Series]) -> tuple[np.ndarray, pd.Index]:
    """The rows' customers as codes (int64) into their distinct values. From the categories alone
    when every column is a categorical of text (partitions' sums are): Arrow hashes only the
    distinct customers, not every row, and nothing is sorted (the facts sort once, at the end)."""
    if all(is_text_categorical(c) for c in columns):
        return union_codes(columns)
    values = np.concatenate([c.to_numpy(dtype=object) for c in columns])
    codes, uniques = pd.factorize(values)
    return codes.astype("int64"), pd.Index(uniques, dtype=object)


def _empty_sums() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "customer" else "int64") for c in SUMS_COLUMNS})


def _latest(latest: list[pd.Timestamp | None], invoice_dates: np.ndarray) -> pd.Timestamp | None:
    dates = [d for d in latest if d is not None]
    if len(invoice_dates):
        dates.append(pd.Timestamp(invoice_dates.max()))
    return max(dates) if dates else None


def _dense(sums: pd.DataFrame) -> tuple[pd.Index, ClassSums, np.ndarray]:
    """The long sums back as (customer, kind, bucket) arrays, customers sorted."""
    codes, customers = _customer_codes(sums, None)
    bucket_codes, labels = pd.factorize(sums["bucket"].to_numpy(dtype="int64"), sort=True)
    # one row per cell (LedgerSums): the rows are the occupied cells, numbered as ClassCells numbers them
    cell = (codes.astype("int64") * len(TYPES) + sums["kind"].to_numpy(dtype="int64")) * len(labels) + bucket_codes
    cells = ClassCells(cell, *(sums[c].to_numpy(dtype="int64") for c in ("rows", "amount_cents", "gross_cents")),
                       shape=(len(customers), len(TYPES), len(labels)))
    return customers, cells.dense(), np.asarray(labels, dtype="int64")
