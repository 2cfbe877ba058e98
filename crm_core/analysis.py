"""Review views around the core: receivable ageing as ERPs offer it, tier migration, debtor/customer overlap."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .collection import balance_signs, gross_cents
from .issues import WARNING, CrmInputError, Issue, IssueCode
from .ledger import OPENING_BALANCE
from .policy import Policy, aging_bucket_problems
from .values import normalize_text

CURRENT = "current / 未到期"
CREDIT = "credit / 未核销"


def aging(rows: pd.DataFrame, as_of: pd.Timestamp, policy: Policy | None = None,
          buckets: Mapping[str, float] | None = None, basis: str | None = None,
          terms_days: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Open receivables per customer by days past due (账龄) on `as_of`, in int cents: the table
    of `aging_report` (which also returns the notes on receipts naming unknown invoices)."""
    return aging_report(rows, as_of, policy, buckets, basis, terms_days).table


@dataclass(frozen=True)
class Ageing:
    """An ageing table (customer, current, one column per bucket, credit, total; int cents) and
    the issues met on the way (receipts naming an invoice the ledger does not hold)."""

    table: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)
    basis: str = "due_date"


def aging_report(rows: pd.DataFrame, as_of: pd.Timestamp, policy: Policy | None = None,
                 buckets: Mapping[str, float] | None = None, basis: str | None = None,
                 terms_days: Mapping[str, int] | None = None) -> Ageing:
    """Open receivables per customer on `as_of` as ERPs age them (应收账龄), in int cents.

    Documents dated after `as_of` are left out, receipts included. A receipt, credit note or
    write-off whose `applies_to` names an invoice of the same customer settles that invoice first
    (up to its amount; the rest of it settles like any other); everything else settles the oldest
    debts first (invoices and balances brought forward, by due date), so what is still open is the
    newest. A name the ledger does not hold (up to `as_of`) is settled oldest first, with a warning.
    A debt without a due date is due `payment_terms_days` after its date (a balance brought
    forward: on its date), or the customer's own terms where `terms_days` gives them (账期天数,
    the customer file: code -> days; see `due_dates`). `basis` (default: the policy's `aging_basis`): "due_date" counts days
    past due, "document_date" days since the document's date; 0 days or fewer is the current
    column. Columns: customer, current, one per bucket (1-30, 31-60, 61-90, 90+ by default; any
    number), credit (an overpayment, negative), total: the buckets add up to each customer's
    open balance.
    """
    policy = policy or Policy()
    buckets = checked_buckets(buckets or policy.aging_buckets)
    basis = checked_basis(basis or policy.aging_basis)
    day = pd.Timestamp(as_of).normalize()
    as_of = np.datetime64(day)
    rows = rows[rows["date"].to_numpy() <= as_of]
    signed = gross_cents(rows, policy) * balance_signs(rows["type"])
    customers = rows["customer"].to_numpy()
    open_total = pd.Series(signed).groupby(customers).sum()
    named, issues = _named_settlement(rows, signed, day)
    due = due_dates(rows, policy, terms_days)
    counted_from = due if basis == "due_date" else rows["date"].to_numpy()
    debt = pd.DataFrame({"customer": customers, "due": due, "from": counted_from, "gross": signed - named})
    debt = debt[signed > 0].sort_values(["customer", "due"], ascending=[True, False], kind="stable")
    newer = debt.groupby("customer")["gross"].cumsum() - debt["gross"]  # open money on newer debts
    owed = debt["customer"].map(open_total.clip(lower=0)).to_numpy()
    debt["open"] = np.clip(owed - newer.to_numpy(), 0, debt["gross"].to_numpy())
    days = (as_of - debt["from"].to_numpy()).astype("timedelta64[D]").astype("int64")
    labels = aging_columns(buckets)
    edges = np.array([0, *sorted(buckets.values())])  # 0 days or fewer: current
    debt["bucket"] = np.array(labels[:-1], dtype=object)[np.searchsorted(edges, days, side="left")]
    table = debt.pivot_table(index="customer", columns="bucket", values="open", aggfunc="sum", fill_value=0,
                             observed=True)
    table = table.reindex(columns=labels, fill_value=0).reindex(open_total.index, fill_value=0).astype("int64")
    table[CREDIT] = open_total.clip(upper=0).to_numpy()
    table["total"] = table.sum(axis=1)
    table.columns.name = None
    return Ageing(table.reset_index().rename(columns={"index": "customer"}), issues, basis)


def aging_columns(buckets: Mapping[str, float]) -> list[str]:
    """The ageing table's money columns before the total: current, each bucket, the open-ended
    last bucket, credit."""
    ordered = sorted(buckets, key=buckets.get)
    return [CURRENT, *ordered, f"{int(max(buckets.values()))}+", CREDIT]


def buckets_from_limits(limits: Sequence[float]) -> dict[str, float]:
    """Bucket upper days (30, 60, 90, in any order) -> labelled buckets {1-30: 30, 31-60: 60,
    61-90: 90}; past the last, the open-ended 90+ follows. Nine slabs to 720 days are as good."""
    days = sorted(int(d) if float(d).is_integer() else d for d in limits)
    buckets = checked_buckets({str(d): float(d) for d in days}, "buckets")
    ends = [int(d) for d in sorted(buckets.values())]
    starts = [1] + [d + 1 for d in ends[:-1]]
    return {f"{a}-{b}": float(b) for a, b in zip(starts, ends)}


def checked_buckets(buckets: Mapping[str, float], name: str = "aging_bucket") -> dict[str, float]:
    """The buckets as a dict, or every reason they cannot be used (the policy's own rule)."""
    buckets = {str(k): float(v) for k, v in dict(buckets).items()}
    problems = aging_bucket_problems(buckets, name)
    if problems:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, p, column=name) for p in problems])
    return buckets


def checked_basis(basis: str) -> str:
    """'due_date' or 'document_date' (also 'due', 'document', 到期日, 单据日期)."""
    word = normalize_text(basis).lower().replace("-", "_").replace(" ", "_")
    found = _BASIS_WORDS.get(word)
    if found is None:
        raise CrmInputError([Issue(IssueCode.BAD_POLICY, f"aging_basis {basis!r} is not due_date or document_date "
                                   "/ 账龄起算应为 due_date（到期日）或 document_date（单据日期）", column="aging_basis")])
    return found


_BASIS_WORDS = {**dict.fromkeys(("due_date", "due", "到期日", "到期日期"), "due_date"),
                **dict.fromkeys(("document_date", "document", "invoice_date", "单据日期", "开票日期"), "document_date")}


def _named_settlement(rows: pd.DataFrame, signed: np.ndarray, as_of: pd.Timestamp) -> tuple[np.ndarray, list[Issue]]:
    """Per row, the part of a debt settled by the credits whose `applies_to` names its invoice
    number (never more than the debt), and a warning for each name that matches no debt of the
    same customer: that credit is settled oldest first instead."""
    settled = np.zeros(len(rows), dtype="int64")
    if "applies_to" not in rows or not len(rows):
        return settled, []
    names = rows["applies_to"].to_numpy(dtype=object)
    naming = np.flatnonzero((signed < 0) & (names != ""))
    if not len(naming):
        return settled, []
    numbers = rows["invoice_no"].to_numpy(dtype=object)
    debts = np.flatnonzero((signed > 0) & (numbers != ""))
    position = pd.Series(debts, index=numbers[debts])
    position = position[~position.index.duplicated(keep="first")]
    target = position.reindex(names[naming]).to_numpy(dtype="float64")
    customers = rows["customer"].to_numpy(dtype=object)
    found = ~np.isnan(target)
    found[found] = customers[target[found].astype("int64")] == customers[naming[found]]
    claims = pd.Series(-signed[naming[found]]).groupby(target[found].astype("int64")).sum()
    at = claims.index.to_numpy()
    settled[at] = np.minimum(claims.to_numpy(), signed[at])
    rownums = rows["row"].to_numpy()
    issues = [Issue(IssueCode.UNKNOWN_INVOICE,
                    f"applies_to {names[pos]!r}: customer {customers[pos]!r} has no invoice of that number up "
                    f"to {as_of:%Y-%m-%d}; settled against the oldest debts instead / 未找到核销发票，按账龄先后核销",
                    row=int(rownums[pos]), column="applies_to", severity=WARNING)
              for pos in naming[~found]]
    return settled, issues


def due_dates(rows: pd.DataFrame, policy: Policy | None = None,
              terms_days: Mapping[str, int] | None = None) -> np.ndarray:
    """Each row's due date: the ledger's, else its date plus the customer's payment terms
    (`terms_days`: code -> days, 账期天数 on the customer file; a customer not in it, or with no
    terms, takes the policy's `payment_terms_days`); a balance brought forward is due on its date.
    Terms must be whole days, 0 or more."""
    policy = policy or Policy()
    due = rows["due_date"].to_numpy().copy()
    no_due = np.isnat(due)
    terms = np.full(len(rows), int(policy.payment_terms_days), dtype="int64")
    if terms_days:
        own = pd.Series(checked_terms(terms_days), dtype="float64")
        mapped = rows["customer"].map(own).to_numpy(dtype="float64")
        terms = np.where(np.isnan(mapped), terms, np.nan_to_num(mapped)).astype("int64")
    terms[(rows["type"] == OPENING_BALANCE).to_numpy()] = 0
    due[no_due] = rows["date"].to_numpy()[no_due] + terms[no_due].astype("timedelta64[D]")
    return due


def checked_terms(terms_days: Mapping[str, object]) -> dict[str, int]:
    """Customer code -> whole days of payment terms; blanks left out (the policy's terms apply).
    Raises CrmInputError naming every customer whose terms are not a whole number of days >= 0."""
    out: dict[str, int] = {}
    issues = []
    for code, days in terms_days.items():
        if days is None or (isinstance(days, float) and np.isnan(days)) or (isinstance(days, str) and not days.strip()):
            continue
        try:
            value = float(days)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(days, bool) or not np.isfinite(value) or value < 0 or not value.is_integer():
            issues.append(Issue(IssueCode.BAD_NUMBER, f"customer {code!r}: payment terms {days!r} are not a whole "
                                "number of days, 0 or more / 账期天数应为非负整数", column="terms_days"))
            continue
        out[str(code)] = int(value)
    if issues:
        raise CrmInputError(issues)
    return out


@dataclass(frozen=True)
class Receivables:
    """The one definition of receivables (应收账款): what customers with a debit balance owe.
    Customers in credit (贷方余额: prepaid or overpaid) are counted apart, never netted in silently."""

    owed_cents: int
    debtors: int
    in_credit_cents: int  # zero or negative
    customers_in_credit: int

    @property
    def net_cents(self) -> int:
        """Open balance net of credits (应收净额)."""
        return self.owed_cents + self.in_credit_cents

    @classmethod
    def of(cls, balances_cents: Sequence[float]) -> "Receivables":
        balances = np.asarray(balances_cents, dtype="int64")
        owed, credit = balances > 0, balances < 0
        return cls(int(balances[owed].sum()), int(owed.sum()), int(balances[credit].sum()), int(credit.sum()))


def tier_migration(old: Sequence[object], new: Sequence[object], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Counts of customers by old tier (rows) and new tier (columns)."""
    old_s = pd.Series(list(old), dtype=object).fillna("").astype(str).str.strip()
    new_s = pd.Series(list(new), dtype=object).fillna("").astype(str).str.strip()
    labels = list(labels) if labels else sorted(set(old_s) | set(new_s) - {""}) or [""]
    table = pd.crosstab(old_s, new_s).reindex(index=labels, columns=labels, fill_value=0)
    table.index.name, table.columns.name = "old \\ new", None
    return table.astype("int64")


def overlap(customers: Sequence[str], sales_cents: Sequence[float], balances_cents: Sequence[float],
            n: int | None = None, policy: Policy | None = None) -> pd.DataFrame:
    """Top-n debtors against top-n customers by sales, with the receivables each group holds
    (n: the policy's `overlap_top_n`, 100, unless given).

    Groups: large debtors that are key customers, large debtors that are not, and the rest.
    """
    n = int(n if n is not None else (policy or Policy()).overlap_top_n)
    frame = pd.DataFrame({"customer": list(customers), "sales": np.asarray(sales_cents, dtype="float64"),
                          "balance": np.asarray(balances_cents, dtype="float64")})
    key = top_n_mask(frame["sales"], n)
    debtor = top_n_mask(frame["balance"], n)
    groups = {
        "top debtors that are key customers / 大额欠款且为重点客户": debtor & key,
        "top debtors that are not key customers / 大额欠款非重点客户": debtor & ~key,
        "all top debtors / 前N大欠款客户": debtor,
        "other customers / 其他客户": ~debtor,
        "all customers / 全部客户": np.ones(len(frame), dtype=bool),
    }
    rows = [{"group": g, "customers": int(m.sum()), "receivables_cents": int(frame.loc[m, "balance"].clip(lower=0).sum())}
            for g, m in groups.items()]
    out = pd.DataFrame(rows)
    total = max(out["receivables_cents"].iloc[-1], 1)
    out["share"] = out["receivables_cents"] / total
    return out


def top_n_mask(values: pd.Series, n: int) -> np.ndarray:
    """The n largest positive values (ties broken by position)."""
    order = np.argsort(-values.to_numpy(), kind="stable")[:n]
    mask = np.zeros(len(values), dtype=bool)
    mask[order] = True
    return mask & (values.to_numpy() > 0)


def lifetime_value(monthly_revenue: float, years: float, margin: float = 1.0, retention: float = 1.0,
                   discount_rate: float = 0.0) -> float:
    """Customer lifetime value: monthly revenue x 12 x years in the simple form (1,500 x 12 x 10
    = 180,000), with margin, yearly retention and discounting for the proper version."""
    yearly = monthly_revenue * 12 * margin
    whole_years = int(years)
    value = sum(yearly * retention**t / (1 + discount_rate) ** t for t in range(whole_years))
    return value + yearly * (years - whole_years) * retention**whole_years / (1 + discount_rate) ** whole_years


_COMPANY_SUFFIXES = ("有限责任公司", "有限責任公司", "股份有限公司", "有限公司", "总公司", "總公司", "分公司", "公司",
                     "集团", "集團", "co ltd", "co., ltd.", "co.,ltd.", "company limited", "limited", "ltd", "inc",
                     "corp", "co")


def name_key(name: object) -> str:
    """A loose key for spotting one company entered under several names: case, spaces,
    punctuation, full-width forms and common company suffixes (simplified or traditional) are ignored."""
    text = re.sub(r"[()\[\]]", "", normalize_text(name).lower())
    for suffix in _COMPANY_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return re.sub(r"[\W_]+", "", text)


# A phone cell may hold several numbers; an extension after 转/分机/ext/x/# is not part of the line.
_PHONE_SEPARATORS = re.compile(r"[/,;、，；]|\bor\b|或")
_EXTENSION = re.compile(r"(转|轉|分机|分機|ext\.?|(?<=\d)\s*x(?=\s*\d)|#).*$", re.IGNORECASE)
_MOBILE = re.compile(r"1[3-9]\d{9}")
MIN_PHONE_DIGITS = 7  # a shorter number is an extension or incomplete: not distinctive


def phone_keys(phone: object) -> list[str]:
    """The numbers in a phone cell, normalised so that one line written differently matches.

    Digits only (full-width too); a country prefix +86 / 0086 (or 86 before an 11-digit mobile) is
    dropped; a landline keeps its trunk zero: 0351-7654321, (0351) 765 4321, +86 351 7654321 and
    3517654321 (a number cell that lost the zero: 9-11 digits, not a mobile) are all 03517654321.
    A number without area code (7-8 digits) matches only the same number without area code, and
    other countries keep their code (+852...). Shorter than 7 digits or one digit repeated
    (00000000): not a number that identifies anyone, left out.
    """
    keys = []
    for part in _PHONE_SEPARATORS.split(normalize_text(phone)):
        key = _phone_key(_EXTENSION.sub("", part.strip()))
        if key and key not in keys:
            keys.append(key)
    return keys


def _phone_key(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+") or digits.startswith("00")
    digits = digits[2:] if digits.startswith("00") else digits
    if international or (digits.startswith("86") and _MOBILE.fullmatch(digits[2:])):
        if not digits.startswith("86"):
            return f"+{digits}" if len(digits) >= MIN_PHONE_DIGITS else ""
        digits = digits[2:]
    if digits.startswith("0") and _MOBILE.fullmatch(digits[1:]):
        digits = digits[1:]  # 0 dialled before a mobile from another city
    if not digits.startswith("0") and not _MOBILE.fullmatch(digits) and 9 <= len(digits) <= 11:
        digits = "0" + digits  # an area code without its trunk zero
    if len(digits) < MIN_PHONE_DIGITS or len(set(digits)) == 1:
        return ""
    return digits


_COUNTRY_WORDS = re.compile(r"^(中华人民共和国|中華人民共和國|中国|中國|china|prc)")
# Administrative words that one clerk writes and another leaves out: 山西省太原市 = 山西太原.
_ADMIN_WORDS = re.compile(r"[省市区區县縣]")
MIN_ADDRESS_CHARS = 6  # "太原" or "同上" identifies nobody


def address_key(address: object) -> str:
    """An address normalised for comparison: full-width forms, case, spaces and punctuation
    ignored, a leading country name dropped, 省/市/区/县 ignored (written or left out), 號 = 号;
    '' when shorter than MIN_ADDRESS_CHARS (not distinctive). Traditional and simplified forms of
    other characters are not matched."""
    text = re.sub(r"[\W_]+", "", normalize_text(address).lower()).replace("號", "号")
    text = _ADMIN_WORDS.sub("", _COUNTRY_WORDS.sub("", text))
    return text if len(text) >= MIN_ADDRESS_CHARS else ""


# What links two codes, in the order reasons are listed.
DUPLICATE_REASONS = {"name": "same name / 名称相同", "phone": "same phone / 电话相同",
                     "address": "same address / 地址相同"}


def likely_duplicates(customers: Sequence[str], names: Sequence[str], addresses: Sequence[object] | None = None,
                      phones: Sequence[object] | None = None) -> pd.DataFrame:
    """Groups of customer codes that are probably one company (客户重复检查, 004: 山西煤業, 山西煤礦 and
    山西煤產品總公司 entered as three customers).

    Two codes are linked when their names share a `name_key`, their phones share a number
    (`phone_keys`) or their addresses an `address_key`; a group is every code linked to another,
    directly or through a third (C1 shares C2's phone, C2 shares C3's address: one group of three).
    Columns: customers (sorted codes), names, count, reasons (each shared key with the codes that
    share it). Groups come in the order of their first code.
    """
    frame = pd.DataFrame({"customer": list(customers), "name": list(names)})
    keyed = _duplicate_keys(frame, addresses, phones)
    if keyed.empty:
        return pd.DataFrame(columns=["customers", "names", "count", "reasons"])
    group_of = _linked_groups(keyed)
    keyed["group"] = keyed["customer"].map(group_of)
    frame = frame[frame["customer"].isin(group_of.index)].assign(group=lambda f: f["customer"].map(group_of))
    out = frame.groupby("group").agg(customers=("customer", lambda s: ", ".join(sorted(set(s)))),
                                     names=("name", lambda s: " | ".join(dict.fromkeys(str(n) for n in s if n))),
                                     count=("customer", "nunique"))
    out["reasons"] = _reasons(keyed)
    return out.sort_values("customers", kind="stable").reset_index(drop=True)


def _duplicate_keys(frame: pd.DataFrame, addresses: Sequence[object] | None,
                    phones: Sequence[object] | None) -> pd.DataFrame:
    """The name, phone and address keys the codes of `frame` (customer, name) share (`_shared_keys`)."""
    blank = [None] * len(frame)
    return _shared_keys(frame["customer"], {
        "name": [[k] if k else [] for k in frame["name"].map(name_key)],
        "phone": [phone_keys(p) for p in (phones if phones is not None else blank)],
        "address": [[k] if k else [] for k in map(address_key, addresses if addresses is not None else blank)]})


DUPLICATE_FLAG = "可能重复 possible duplicate of"
DUPLICATES_NAMED = 5  # codes a flag names; a bigger group is counted ("+12 more")


def duplicate_flags(customers: Sequence[str], names: Sequence[str], addresses: Sequence[object] | None = None,
                    phones: Sequence[object] | None = None) -> list[str]:
    """Per customer, in the order given, the Register's flag for a likely duplicate
    (`likely_duplicates`): '可能重复 possible duplicate of C0123 (same phone / 电话相同)', naming the
    other codes of its group and what this code shares with them; '' for a code in no group."""
    codes = [str(c) for c in customers]
    frame = pd.DataFrame({"customer": codes, "name": list(names)})
    keyed = _duplicate_keys(frame, addresses, phones)
    if keyed.empty:
        return [""] * len(codes)
    group_of = _linked_groups(keyed)
    members = pd.Series(group_of.index, index=group_of.to_numpy()).groupby(level=0).agg(lambda s: sorted(set(s)))
    kinds = keyed.groupby("customer")["kind"].agg(set)
    out = []
    for code in codes:
        if code not in group_of.index:
            out.append("")
            continue
        others = [c for c in members[group_of[code]] if c != code]
        named = ", ".join(others[:DUPLICATES_NAMED]) + (f" +{len(others) - DUPLICATES_NAMED} more / 等"
                                                        if len(others) > DUPLICATES_NAMED else "")
        why = "; ".join(text for kind, text in DUPLICATE_REASONS.items() if kind in kinds[code])
        out.append(f"{DUPLICATE_FLAG} {named} ({why})")
    return out


def first_trade_dates(rows: pd.DataFrame) -> pd.Series:
    """Each customer's first ledger date (首次交易 when the customer file gives none), by code."""
    if not len(rows):
        return pd.Series(dtype="datetime64[ns]")
    return rows.groupby("customer", observed=True)["date"].min()


def tenure_years(since: Sequence[object], as_of: pd.Timestamp) -> list[int | None]:
    """Whole years of trading (合作年限) from `since` to `as_of`, as Excel's DATEDIF(since, as_of,
    "y") counts them (a year is complete on its anniversary); None where `since` is no date or
    after `as_of`."""
    day = pd.Timestamp(as_of).normalize()
    out: list[int | None] = []
    for value in pd.to_datetime(pd.Series(list(since), dtype=object), errors="coerce"):
        if pd.isna(value) or value.normalize() > day:
            out.append(None)
            continue
        start = value.normalize()
        out.append(day.year - start.year - int((day.month, day.day) < (start.month, start.day)))
    return out


def _shared_keys(customers: pd.Series, keys: dict[str, list[list[str]]]) -> pd.DataFrame:
    """(customer, kind, key) for every key that at least two different codes share."""
    parts = [pd.DataFrame({"customer": customers, "kind": kind, "key": values}).explode("key")
             for kind, values in keys.items()]
    found = pd.concat(parts, ignore_index=True).dropna(subset=["key"]).drop_duplicates()
    shared = found.groupby(["kind", "key"])["customer"].transform("nunique") > 1
    return found[shared].reset_index(drop=True)


def _linked_groups(keyed: pd.DataFrame) -> pd.Series:
    """Each linked code's group number (its component in the graph of shared keys), by union-find."""
    parent: dict[object, object] = {}

    def root(code):
        while parent.setdefault(code, code) != code:
            parent[code] = parent[parent[code]]  # halve the path
            code = parent[code]
        return code

    for members in keyed.groupby(["kind", "key"])["customer"]:
        first, *rest = members[1].tolist()
        for code in rest:
            parent[root(code)] = root(first)
    roots = pd.Series({code: root(code) for code in keyed["customer"].unique()})
    return pd.Series(pd.factorize(roots)[0], index=roots.index)


def _reasons(keyed: pd.DataFrame) -> pd.Series:
    """Per group: each shared key with the codes sharing it, names first, then phones, addresses."""
    links = keyed.groupby(["group", "kind", "key"])["customer"].agg(lambda s: ", ".join(sorted(set(s))))
    links = links.reset_index()
    links["order"] = links["kind"].map({kind: n for n, kind in enumerate(DUPLICATE_REASONS)})
    links["text"] = links["kind"].map(DUPLICATE_REASONS) + " " + links["key"] + " (" + links["customer"] + ")"
    links = links.sort_values(["group", "order", "key"], kind="stable")
    return links.groupby("group")["text"].agg("; ".join)


def relationship_kpis(old_tiers: pd.Series, new_tiers: pd.Series, order: Sequence[str] = "ABCD") -> dict[str, int]:
    """New customers, customers lost, moved up and moved down a tier between two reviews.

    Series are indexed by customer; tiers outside `order` (e.g. 'unrated') count as present
    but not ranked.
    """
    rank = {t: i for i, t in enumerate(order)}
    both = old_tiers.index.intersection(new_tiers.index)
    old_rank = old_tiers.reindex(both).map(rank)
    new_rank = new_tiers.reindex(both).map(rank)
    ranked = old_rank.notna() & new_rank.notna()
    return {
        "new": int(len(new_tiers.index.difference(old_tiers.index))),
        "lost": int(len(old_tiers.index.difference(new_tiers.index))),
        "moved_up": int((new_rank[ranked] < old_rank[ranked]).sum()),
        "moved_down": int((new_rank[ranked] > old_rank[ranked]).sum()),
        "unchanged": int((new_rank[ranked] == old_rank[ranked]).sum()),
    }
