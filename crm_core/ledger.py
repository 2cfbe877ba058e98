"""The ledger: invoices (net of VAT), receipts (VAT included) and credit notes, one row each.

`normalize_ledger` accepts English or Chinese headers and type words, parses every value,
and returns the clean rows plus an issue for every row it could not use: nothing is dropped
without a word. The `row` column keeps the spreadsheet row number of each source row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .issues import WARNING, Issue, IssueCode
from .policy import Policy
from .schema import HEADER_ALIASES
from .values import (
    as_text_array,
    date_column,
    datetime_days,
    is_blank,
    is_text_categorical,
    is_text_column,
    money_column,
    normalize_text,
    normalize_text_column,
    per_category,
    plain_text_mask,
    text_column,
    units,
)

INVOICE, RECEIPT, CREDIT_NOTE = "invoice", "receipt", "credit_note"
# A receivable brought forward (期初余额, VAT included): in the balance, never in the period's sales
# or collections. A bad debt written off (坏账核销): lowers the balance without cash.
OPENING_BALANCE, WRITE_OFF = "opening_balance", "write_off"
TYPES = (INVOICE, RECEIPT, CREDIT_NOTE, OPENING_BALANCE, WRITE_OFF)
# Documents that lower the balance whatever sign they are written with.
REDUCING = (CREDIT_NOTE, WRITE_OFF)

REQUIRED = ("date", "customer", "type", "amount")

TYPE_WORDS: dict[str, str] = {
    **dict.fromkeys(("invoice", "inv", "sale", "sales", "发票", "销售", "开票", "销售发票"), INVOICE),
    **dict.fromkeys(("receipt", "payment", "collection", "cash", "回款", "收款", "收款单"), RECEIPT),
    **dict.fromkeys(("credit note", "credit_note", "credit", "creditnote", "cn", "return", "红字",
                     "退货", "红冲", "红字发票"), CREDIT_NOTE),
    **dict.fromkeys(("opening balance", "opening_balance", "opening", "balance b/f", "brought forward",
                     "期初余额", "期初", "期初应收", "上年结转"), OPENING_BALANCE),
    **dict.fromkeys(("write-off", "write off", "write_off", "writeoff", "bad debt", "坏账核销", "核销",
                     "坏账"), WRITE_OFF),
}


def type_words(kind: str) -> tuple[str, ...]:
    """Every word the reader takes for the document type `kind`, the type's own name first."""
    return (kind, *(w for w, k in TYPE_WORDS.items() if k == kind and w != kind))


@dataclass(frozen=True)
class Ledger:
    """Clean rows: row, date, customer, type, amount_cents, invoice_no, due_date, vat_rate, customer_name
    (and applies_to, the invoice a receipt settles, when the ledger has that column)."""

    rows: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)
    source: str = "ledger"
    input_rows: int = 0
    blank_rows: int = 0
    mapping: dict = field(default_factory=dict, repr=False)  # the user's header -> canonical name
    # the customer column's distinct spellings (raw) and the customer each is read as (clean)
    spellings: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]


def map_headers(columns, source: str = "ledger") -> tuple[dict[str, str], list[Issue]]:
    """Source column name -> canonical name. '金额(万元)' style headers are noted for scaling."""
    lookup = {alias: canon for canon, aliases in HEADER_ALIASES.items() for alias in aliases}
    mapping: dict[str, str] = {}
    for col in columns:
        key = _header_key(col)
        canon = lookup.get(key)
        if canon is None and (key.startswith("金额") or key.startswith("amount")):
            canon = "amount"
        if canon and canon not in mapping.values():
            mapping[col] = canon
    found = set(mapping.values())
    issues = [Issue(IssueCode.MISSING_COLUMN,
                    f"no {need!r} column (accepted headers: {', '.join(HEADER_ALIASES[need][:4])})",
                    row=1, column=need, source=source)
              for need in REQUIRED if need not in found]
    return mapping, issues


def _header_key(col: object) -> str:
    text = normalize_text(col).lower()
    for bracket in ("(", "（", "["):
        text = text.split(bracket)[0].strip() if bracket in text and "万" not in text else text
    return text


# Units an amount header may state, longest first: '金额(万元)' holds amounts in 10,000s.
HEADER_UNITS: tuple[tuple[str, int], ...] = (
    ("亿", 10**8), ("千万", 10**7), ("百万", 10**6), ("十万", 10**5), ("万", 10**4), ("千", 10**3),
    ("10,000", 10**4), ("10k", 10**4), ("million", 10**6), ("thousand", 10**3), ("'000", 10**3),
)


def amount_scale(header: object) -> int:
    """The unit an amount header states in brackets: 元 1, 千元 1,000, 万元 10,000, 亿元 10^8
    (also 百万元, 千万元, 'Amount (10k)', 'Amount (thousands)'); none stated means 元."""
    text = normalize_text(header).lower()
    unit = re.search(r"[(\[](.*?)[)\]]", text)
    stated = unit.group(1) if unit else text
    return next((scale for word, scale in HEADER_UNITS if word in stated), 1)


def normalize_ledger(frame: pd.DataFrame, policy: Policy | None = None, source: str = "ledger",
                     first_row: int = 2, check_duplicates: bool = True) -> Ledger:
    """Validate and convert a raw ledger table. `first_row` is the sheet row of the first data row.
    `check_duplicates=False` leaves repeated invoice numbers to the caller (a ledger reviewed in
    partitions checks them across all of them)."""
    ledger = check_rows(frame, policy, source, first_row)
    if any(i.code == IssueCode.MISSING_COLUMN for i in ledger.issues):
        return ledger
    rows, issues = ledger.rows, list(ledger.issues)
    issues += merged_name_warnings(ledger.spellings, source)
    if check_duplicates:
        repeats = duplicate_invoices(rows, source)
        refused = {i.row for i in repeats}
        rows = rows.loc[~rows["row"].isin(refused)].reset_index(drop=True) if refused else rows
        issues += repeats
    issues = ledger_wide_issues(issues, len(frame), len(rows), source)
    return replace(ledger, rows=rows, issues=with_headers(issues, ledger.mapping))


def check_rows(frame: pd.DataFrame, policy: Policy | None = None, source: str = "ledger",
               first_row: int = 2) -> Ledger:
    """The rules that look at one row at a time: every cell parsed, refused rows left out, the
    issues numbered from `first_row`. What needs the whole ledger (repeated invoice numbers,
    spellings of one customer, an empty ledger) is `normalize_ledger`'s, or `partition`'s."""
    policy = policy or Policy()
    mapping, issues = map_headers(frame.columns, source)
    if issues:
        return Ledger(_empty_rows(), issues, source, len(frame), 0)
    raw = frame.rename(columns=mapping)[list(mapping.values())].reset_index(drop=True)
    scale = amount_scale(next(c for c, v in mapping.items() if v == "amount"))
    blank = _blank_rows(raw)
    if blank.any():  # copying ten million rows to drop none is not free
        raw = raw.loc[~blank].reset_index(drop=True)
        rownums = np.flatnonzero(~blank).astype("int64", copy=False)
    else:
        rownums = np.arange(len(blank), dtype="int64")
    rownums += first_row
    parsed, bad, distinct = _parse_columns(raw, scale, policy, rownums, source)
    issues += bad
    # copy=False: the columns are fresh arrays; stacking same-typed ones into blocks would copy
    # hundreds of megabytes of a large ledger for nothing
    rows = pd.DataFrame({"row": rownums, **parsed}, copy=False)
    spellings = customer_spellings(raw["customer"], rows["customer"], distinct)
    failed = {i.row for i in issues if i.is_error and i.row is not None}
    rows = rows.loc[~rows["row"].isin(failed)].reset_index(drop=True) if failed else rows
    return Ledger(rows, with_headers(issues, mapping), source, len(frame), int(blank.sum()), mapping, spellings)


def ledger_wide_issues(issues: list[Issue], input_rows: int, rows_used: int, source: str) -> list[Issue]:
    """A ledger's issues in row order, with the note that it has no data rows when so: the last
    step of every review, whole or in partitions."""
    issues = list(issues)
    if input_rows == 0 or rows_used == 0 and not issues:
        issues.append(Issue(IssueCode.EMPTY, "the ledger has no data rows", source=source))
    issues.sort(key=lambda i: (i.row or 0))
    return issues


def with_headers(issues: list[Issue], mapping: dict[str, str]) -> list[Issue]:
    """Each issue names its column by the user's own header too (金额 beside amount)."""
    headers = {canon: str(col) for col, canon in mapping.items() if str(col) != canon}
    return [replace(i, header=headers[i.column]) if i.column in headers else i for i in issues]


def _blank_rows(raw: pd.DataFrame) -> np.ndarray:
    blank = np.ones(len(raw), dtype=bool)
    for col in raw.columns:
        if not blank.any():  # a short-circuiting test: no position list of ten million rows
            break
        still = np.flatnonzero(blank)  # only rows blank so far can still be wholly blank
        blank[still] = blank_mask(raw[col] if len(still) == len(raw) else raw[col].iloc[still])
    return blank


def blank_mask(values: pd.Series) -> np.ndarray:
    """True where a cell is empty (None, NaN, NaT or only spaces); judged once per distinct value."""
    if is_text_categorical(values):
        return per_category(values, blank_mask, missing=True)
    if not (pd.api.types.is_string_dtype(values.dtype) or values.dtype == object):
        return values.isna().to_numpy(dtype=bool)  # numbers and dates: only NaN/NaT are blank
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    blank_unique = np.ones(len(uniques) + 1, dtype=bool)
    plain = plain_text_mask(pd.Series(uniques))
    blank_unique[:-1][plain] = False
    rest = np.flatnonzero(~plain)
    blank_unique[rest] = [is_blank(uniques[k]) for k in rest]
    return blank_unique[codes]


def _parse_columns(raw: pd.DataFrame, scale: int, policy: Policy, rownums: np.ndarray, source: str):
    issues: list[Issue] = []

    def report(column: str, problems: dict[int, str], header: str) -> None:
        issues.extend(Issue(IssueCode.BAD_DATE if "date" in column else IssueCode.BAD_NUMBER
                            if column in ("amount", "vat_rate") else IssueCode.BLANK,
                            reason, row=int(rownums[pos]), column=header, source=source)
                      for pos, reason in problems.items())

    out: dict[str, object] = {}
    out["date"], bad = date_column(raw["date"])
    report("date", bad, "date")
    distinct: dict = {}
    out["customer"], bad = text_column(raw["customer"], distinct)
    report("customer", bad, "customer")
    out["type"], type_issues = _types(raw["type"], rownums, source)
    issues += type_issues
    money = money_column(raw["amount"], scale)
    bad = money.problems
    report("amount", bad, "amount")
    issues.extend(Issue(IssueCode.ROUNDED, note, row=int(rownums[pos]), column="amount", source=source,
                        severity=WARNING) for pos, note in money.rounded.items())
    out["amount_cents"] = money.cents
    issues += _sign_rules(out["type"], out["amount_cents"], policy, rownums, source, bad)
    out.update(_optional_columns(raw, rownums, source, issues, report))
    return out, issues, distinct


def _optional_columns(raw, rownums, source, issues, report) -> dict[str, object]:
    out: dict[str, object] = {}
    n = len(raw)
    if "invoice_no" in raw:
        out["invoice_no"] = normalize_text_column(raw["invoice_no"])
    else:
        out["invoice_no"] = np.full(n, "", dtype=object)
    if "applies_to" in raw:  # optional, and kept only when given: no column of blanks for 10^7 rows
        out["applies_to"] = normalize_text_column(raw["applies_to"])
    if "due_date" in raw and pd.api.types.is_datetime64_any_dtype(raw["due_date"].dtype):
        out["due_date"], bad = datetime_days(raw["due_date"])  # blanks stay NaT
        report("due_date", bad, "due_date")
    else:
        out["due_date"] = np.full(n, np.datetime64("NaT", "ns"))
    if "due_date" in raw and not pd.api.types.is_datetime64_any_dtype(raw["due_date"].dtype):
        present = ~blank_mask(raw["due_date"])
        dates, bad = date_column(raw["due_date"][present])
        out["due_date"][present] = dates
        positions = np.flatnonzero(present)
        report("due_date", {int(positions[p]): r for p, r in bad.items()}, "due_date")
    # No rate of its own: one NaN seen n times (a read-only view), not 80 MB for 10^7 rows.
    out["vat_rate"] = np.broadcast_to(np.float64(np.nan), n)
    if "vat_rate" in raw:
        out["vat_rate"] = _vat_column(raw["vat_rate"], rownums, source, issues)
    names = raw["customer_name"] if "customer_name" in raw else pd.Series([""] * n)
    out["customer_name"] = normalize_text_column(names)
    return out


def _vat_column(values: pd.Series, rownums, source, issues) -> np.ndarray:
    """Per-row VAT override: 0.13, 13 or '13%'. Blank means 'by the policy table'."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    rates = np.array([_vat_rate(u) for u in uniques] + [np.nan])
    out = rates[codes]
    for pos in np.flatnonzero(out < 0):
        issues.append(Issue(IssueCode.BAD_NUMBER,
                            f"vat_rate: {values.iloc[pos]!r} is not a VAT rate (write 13% or 0.13)",
                            row=int(rownums[pos]), column="vat_rate", source=source))
    return np.where(out < 0, np.nan, out)


def _vat_rate(value: object) -> float:
    """NaN for blank, -1 for unusable, else the rate as a fraction."""
    if is_blank(value):
        return np.nan
    try:
        rate = float(normalize_text(value).rstrip("%"))
    except ValueError:
        return -1.0
    rate = rate / 100 if rate >= 1 else rate
    return rate if 0 <= rate < 1 else -1.0


def _types(values: pd.Series, rownums, source) -> tuple[pd.Categorical, list[Issue]]:
    """Type words -> (canonical type per row as a categorical of TYPES, unknown ones missing; issues)."""
    codes, uniques = pd.factorize(values)  # blanks get code -1, which picks the final slot
    words = [TYPE_WORDS.get(normalize_text(u).lower(), "") for u in uniques]
    kind = np.array([TYPES.index(w) if w else -1 for w in words] + [-1], dtype="int8")[codes]
    issues = [Issue(IssueCode.UNKNOWN_TYPE,
                    f"type {_shown(values.iloc[pos])} is not invoice/发票, receipt/回款, credit note/红字, "
                    "opening balance/期初余额 or write-off/坏账核销",
                    row=int(rownums[pos]), column="type", source=source)
              for pos in np.flatnonzero(kind < 0)]
    # built from codes: pd.Categorical of the words would hash every row's string again
    return pd.Categorical.from_codes(kind, categories=TYPES, validate=False), issues


def _shown(value: object) -> str:
    return "(blank)" if is_blank(value) else repr(value)


def _sign_rules(types: pd.Categorical, cents, policy, rownums, source, amount_bad) -> list[Issue]:
    """Credit notes and write-offs lower the balance whatever their sign; a balance brought forward
    may be negative (a customer in credit); other negatives obey the policy."""
    kind = types.codes
    reducing = np.isin(kind, [TYPES.index(t) for t in REDUCING])
    np.abs(cents, out=cents, where=reducing)
    if policy.negative_amounts == "allow":
        return []
    negative = (cents < 0) & ~reducing & (kind != TYPES.index(OPENING_BALANCE))
    named = [*TYPES, "amount"]  # code -1 (an unknown type) picks the last
    return [Issue(IssueCode.NEGATIVE_AMOUNT,
                  f"amount: negative {named[kind[pos]]} ({units(cents[pos]):,.2f}); book returns as "
                  "credit notes (红字), or set policy negative_amounts = allow",
                  row=int(rownums[pos]), column="amount", source=source)
            for pos in np.flatnonzero(negative) if int(pos) not in amount_bad]


def customer_spellings(raw_names: pd.Series, clean: pd.Series, distinct: dict | None = None) -> pd.DataFrame:
    """The distinct raw customer cells (as text, in order of first appearance) with the customer
    each is read as; `clean` is aligned with `raw_names`. `distinct`: the distinct raw names and
    their clean forms, if `text_column` already has them (spares hashing the column again)."""
    if distinct and distinct.get("factorize"):  # the same values pd.factorize would give, parsed
        uniques, clean_first = distinct["uniques"], distinct["parsed"]
    else:
        codes, uniques = pd.factorize(raw_names, use_na_sentinel=True)
        firsts = pd.Series(codes).drop_duplicates()  # codes number values by first appearance
        clean_first = clean.iloc[firsts[firsts >= 0].index.to_numpy()].to_numpy()
    # Distinct text is distinct pairs already; other cells (numbers, TRUE) may print alike
    text = is_text_column(raw_names)
    raw = as_text_array(uniques) if text else pd.Series(uniques, dtype=object).astype(str).to_numpy()
    pairs = pd.DataFrame({"raw": raw, "clean": as_text_array(clean_first)})  # as Arrow text: a
    # partial holds its spellings until merged, a fifth of the memory Python strings take
    pairs = pairs[(pairs["clean"] != "").to_numpy(dtype=bool)]
    return pairs.reset_index(drop=True) if text else pairs.drop_duplicates(ignore_index=True)


def merged_name_warnings(spellings: pd.DataFrame | None, source: str) -> list[Issue]:
    """Spellings that differ only by spaces or full-width characters are one customer: say so.
    `spellings`: `customer_spellings` of the whole ledger, or of its partitions concatenated."""
    if spellings is None or spellings.empty:
        return []
    # a name written two ways has a spelling that is not its clean form: only such names are looked
    # at (hashing every customer's spelling pair took seconds for 10^6 customers)
    differs = (spellings["raw"] != spellings["clean"]).to_numpy(dtype=bool)
    if not differs.any():
        return []
    spellings = spellings[spellings["clean"].isin(spellings["clean"][differs]).to_numpy(dtype=bool)]
    pairs = spellings.drop_duplicates()
    pairs = pairs[pairs["clean"].duplicated(keep=False)]  # only names with several spellings
    counts = pairs.groupby("clean")["raw"].agg(list)
    return [Issue(IssueCode.MERGED_NAMES,
                  f"customer spellings {', '.join(repr(s) for s in spellings[:4])} are treated as one "
                  f"customer {name!r}", column="customer", source=source, severity=WARNING)
            for name, spellings in counts.items() if len(spellings) > 1]

def duplicate_invoices(rows: pd.DataFrame, source: str) -> list[Issue]:
    mask = ((rows["type"] == INVOICE) & (rows["invoice_no"] != "")).to_numpy()
    numbers = rows["invoice_no"].to_numpy()[mask] if rows["invoice_no"].dtype == object \
        else rows["invoice_no"].array[mask]
    if _all_distinct_sorted(numbers):  # the usual case, decided without hashing millions of strings
        return []
    # one factorize finds the repeats (duplicated() on Arrow strings hashes ~3x slower)
    codes, uniques = pd.factorize(numbers, use_na_sentinel=True)
    if len(uniques) == len(codes):
        return []
    if (codes < 0).any():  # missing numbers: let duplicated() judge them as before
        return _duplicate_invoices_slow(rows, mask, source)
    dup = pd.Series(codes).duplicated(keep="first").to_numpy()
    rownums = rows["row"].to_numpy()[mask]
    firsts = np.flatnonzero(~dup)
    first_row = np.empty(len(uniques), dtype=rownums.dtype)
    first_row[codes[firsts]] = rownums[firsts]
    at = np.flatnonzero(dup)
    return [Issue(IssueCode.DUPLICATE_INVOICE,
                  f"invoice number {numbers[pos]!r} already used on row {first_row[codes[pos]]}",
                  row=int(rownums[pos]), column="invoice_no", source=source)
            for pos in at]


def _all_distinct_sorted(numbers) -> bool:
    """True if Arrow-backed text holds no repeats and no missing values, judged by sorting
    (neighbours compared) rather than hashing: a hash table of millions of distinct strings costs
    several times as much. False means "not known", never "has repeats"."""
    if not hasattr(numbers, "__arrow_array__") or len(numbers) < 2:
        return False
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pandas string columns come with pyarrow
        return False
    values = pa.array(numbers)
    if values.null_count:
        return False
    if pc.all(pc.less(values[:-1], values[1:])).as_py():
        return True  # numbered in file order, as ERPs export them: one pass, no sort
    ordered = values.take(pc.sort_indices(values))
    if isinstance(ordered, pa.ChunkedArray):
        ordered = ordered.combine_chunks()
    return not pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py()


def _duplicate_invoices_slow(rows: pd.DataFrame, mask: np.ndarray, source: str) -> list[Issue]:
    invoices = rows.loc[mask, ["row", "invoice_no"]]
    dup = invoices["invoice_no"].duplicated(keep="first")
    if not dup.any():
        return []
    first_row = invoices.drop_duplicates("invoice_no").set_index("invoice_no")["row"]
    return [Issue(IssueCode.DUPLICATE_INVOICE,
                  f"invoice number {no!r} already used on row {first_row[no]}",
                  row=int(r), column="invoice_no", source=source)
            for r, no in invoices.loc[dup, ["row", "invoice_no"]].itertuples(index=False)]


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "row": pd.Series(dtype="int64"), "date": pd.Series(dtype="datetime64[ns]"),
        "customer": pd.Series(dtype=object), "type": pd.Categorical([], categories=TYPES),
        "amount_cents": pd.Series(dtype="int64"), "invoice_no": pd.Series(dtype=object),
        "due_date": pd.Series(dtype="datetime64[ns]"), "vat_rate": pd.Series(dtype="float64"),
        "customer_name": pd.Series(dtype=object)})
