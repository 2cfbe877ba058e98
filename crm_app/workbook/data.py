"""What a filled register shows, computed by the core: the values cached in the workbook's cells.

The workbook's formulas recompute the same figures in the spreadsheet; tests recalculate the
file in LibreOffice and compare. Money here is int cents; the writer turns it into units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_core.analysis import aging, aging_columns, first_trade_dates, overlap, tier_migration
from crm_core.collection import customer_facts, gross_cents
from crm_core.contacts import Activity
from crm_core.issues import Issue
from crm_core.ledger import Ledger, normalize_ledger
from crm_core.partition import LedgerSums
from crm_core.policy import Policy
from crm_core.receivables import KpiReport, receivable_kpis
from crm_core.review import Review, review_ledger
from crm_core.tiers import rate_tiers, tier_order_with_unrated
from crm_core.values import is_blank

LOW_USE = 0.30  # a line "far above use" when less than this share of it is used


@dataclass(frozen=True)
class RegisterData:
    """A review plus the per-sheet facts behind it."""

    review: Review
    rows: pd.DataFrame  # clean ledger rows, in the order written to the Ledger sheet
    gross_cents: np.ndarray  # per ledger row, VAT included (receipts as booked)
    facts: pd.DataFrame  # customer_facts for the review period, register order
    previous_tiers: np.ndarray  # rate tier in the year before ('' if unknown)
    aging: pd.DataFrame
    as_of: pd.Timestamp
    generated_at: str
    source: str = ""  # where the ledger's rows are (the file reviewed), named in the notes
    ledger_row_count: int | None = None  # rows of a ledger reviewed by an engine, none of them held here
    signed_off: str = ""  # the sign-off the file records (About signed_off); "" for a register not signed
    kpis: KpiReport | None = None  # the review year's receivables KPIs; None without the ledger's rows
    # the customer file and sales stage inputs by code (crm_app.register.load.read_customer_file's
    # columns); None: all blank (a register built from a ledger alone)
    customer_file: pd.DataFrame | None = None
    # the contact and service logs the Contacts and Service sheets show (crm_core.contacts.Activity);
    # None: both empty (users type them)
    activity: Activity | None = None

    @property
    def policy(self) -> Policy:
        return self.review.policy

    @property
    def issues(self) -> list[Issue]:
        """Every problem found in the ledger, the rows skipped among them."""
        return self.review.issues

    @property
    def rows_skipped(self) -> int:
        return len({i.row for i in self.issues if i.is_error and i.row is not None})

    @property
    def register(self) -> pd.DataFrame:
        return self.review.register


def register_data(ledger: Ledger, policy: Policy | None = None, year: int | None = None,
                  generated_at: str = "", source: str | None = None,
                  customer_file: pd.DataFrame | None = None) -> RegisterData:
    """The review of `ledger` and the facts its sheets show; `source` names where its rows are
    (default: the ledger's own source name). `customer_file` (a frame with a customer column and
    any of the Register's customer file columns) is what the Register shows of each customer; its
    payment terms (terms_days) date the debts the ledger gives no due date."""
    policy = policy or Policy()
    review = review_ledger(ledger, policy, year)
    rows = ledger.rows.reset_index(drop=True)
    facts = customer_facts(rows, policy, review.period)
    facts = facts.set_index("customer").loc[review.register["customer"]].reset_index()
    terms = customer_terms(customer_file)
    ageing = aging(rows, review.period.end, policy, terms_days=terms)
    return RegisterData(review, rows, gross_cents(rows, policy), facts, _previous_tiers(ledger, review),
                        ageing, review.period.end, generated_at,
                        ledger.source if source is None else source, kpis=_year_kpis(rows, review, terms),
                        customer_file=customer_file)


def customer_terms(customer_file: pd.DataFrame | None) -> dict[str, int]:
    """Customer code -> payment terms in days, for the customers whose file gives them."""
    if customer_file is None or "terms_days" not in customer_file:
        return {}
    given = customer_file.dropna(subset=["terms_days"])
    return dict(zip(given["customer"].astype(str), given["terms_days"]))


def customer_file_column(data: RegisterData, key: str) -> list:
    """One customer file column in register order (None where the file gives nothing); trading
    since (首次交易) falls back on the customer's first ledger date."""
    codes = data.register["customer"]
    given = pd.Series([None] * len(codes), dtype=object)
    file = data.customer_file
    if file is not None and key in file and len(file):
        by_code = file.drop_duplicates("customer", keep="first").set_index("customer")[key]
        given = codes.map(by_code).astype(object).reset_index(drop=True)
    values = [None if is_blank(v) else v for v in given]
    if key == "trading_since":
        first = first_trade_dates(data.rows).to_dict()  # none from an engine's sums: no rows come back
        values = [v if v is not None else (None if pd.isna(first.get(c, pd.NaT)) else pd.Timestamp(first[c]))
                  for v, c in zip(values, codes)]
    return values


def _year_kpis(rows: pd.DataFrame, review: Review, terms_days: dict[str, int] | None = None) -> KpiReport:
    """The KPIs of the review year: the twelve months to its end, whatever the policy's kpi_months
    (the register reviews a year; `crm-addin kpis --months` takes other periods), due dates from
    the customer file's terms as the ageing's."""
    return receivable_kpis(rows, review.period.end, 12, review.policy, terms_days)


def register_data_from_sums(sums: LedgerSums, review: Review, generated_at: str = "", source: str = "",
                            customer_file: pd.DataFrame | None = None) -> RegisterData:
    """The register of a ledger reviewed by an engine, from its sums alone: no ledger rows come
    back, so the Ledger sheet stays empty (its note says where the rows are) and the ageing, which
    needs each document, is left to a review of a file that fits in memory."""
    facts = sums.facts(review.period).drop(columns="customer_name")
    facts = facts.set_index("customer").loc[review.register["customer"]].reset_index()
    previous = review.period.start.year - 1
    tiers = ""
    if sums.by_year and (sums.sums["bucket"] == previous).any():
        before = sums.facts(type(review.period).year(previous))
        tiers = pd.Series(rate_tiers(before["collection_rate"].to_numpy(), policy=review.policy), index=before["customer"])
    previous_tiers = review.register["customer"].map(tiers).fillna("").to_numpy(dtype=object) if len(tiers) else \
        np.full(len(review.register), "", dtype=object)
    no_ageing = pd.DataFrame(columns=["customer", *aging_columns(review.policy.aging_buckets), "total"])
    return RegisterData(review, _no_rows(), np.zeros(0, dtype="int64"), facts, previous_tiers, no_ageing,
                        review.period.end, generated_at, source, ledger_row_count=sums.input_rows,
                        customer_file=customer_file)


def _no_rows() -> pd.DataFrame:
    return normalize_ledger(pd.DataFrame({"date": [], "customer": [], "type": [], "amount": []})).rows


def _previous_tiers(ledger: Ledger, review: Review) -> np.ndarray:
    """Rate tiers of the year before the review year, for the migration matrix."""
    start = review.period.start.year - 1
    rows = ledger.rows
    if not (rows["date"].dt.year == start).any():
        return np.full(len(review.register), "", dtype=object)
    facts = customer_facts(rows, review.policy, type(review.period).year(start))
    tiers = pd.Series(rate_tiers(facts["collection_rate"].to_numpy(), policy=review.policy),
                      index=facts["customer"])
    return review.register["customer"].map(tiers).fillna("").to_numpy(dtype=object)


def tier_labels(policy: Policy) -> list[str]:
    """The tiers a customer can get by rate, best first (the rank shares' in rank mode), then the
    unrated label."""
    return tier_order_with_unrated(policy)


def pareto_labels(policy: Policy) -> list[str]:
    return sorted(policy.pareto_cutoffs, key=policy.pareto_cutoffs.get) + [policy.pareto_rest]


def tier_summary(data: RegisterData) -> pd.DataFrame:
    """Per rate tier: customers, net sales, gross sales, collections, lines, balances (cents)."""
    # the yearly allocation is the line itself until a reallocation moves one apart from it
    allocated = data.register.get("allocated_line_cents", data.register["credit_line_cents"])
    reg = data.register.assign(gross_sales_cents=data.facts["gross_sales_cents"].to_numpy(),
                               allocated_cents=allocated.fillna(data.register["credit_line_cents"]))
    util = reg["credit_line_cents"] > 0
    reg = reg.assign(
        over=util & (reg["open_balance_cents"] > reg["credit_line_cents"]),
        low=util & (reg["open_balance_cents"] < LOW_USE * reg["credit_line_cents"]))
    grouped = reg.groupby("rate_tier")
    table = pd.DataFrame({
        "customers": grouped.size(),
        "net_sales_cents": grouped["net_sales_cents"].sum(),
        "gross_sales_cents": grouped["gross_sales_cents"].sum(),
        "collections_cents": grouped["collections_cents"].sum(),
        "open_balance_cents": grouped["open_balance_cents"].sum(),
        "line_cents": grouped["credit_line_cents"].sum(),
        "allocated_cents": grouped["allocated_cents"].sum(),
        "over": grouped["over"].sum(),
        "low": grouped["low"].sum(),
    })
    return table.reindex(tier_labels(data.policy), fill_value=0)


def pareto_summary(data: RegisterData) -> pd.DataFrame:
    reg = data.register
    grouped = reg.groupby("pareto_tier")
    table = pd.DataFrame({"customers": grouped.size(), "net_sales_cents": grouped["net_sales_cents"].sum()})
    return table.reindex(pareto_labels(data.policy), fill_value=0)


def migration(data: RegisterData) -> pd.DataFrame:
    labels = tier_labels(data.policy)
    return tier_migration(data.previous_tiers, data.register["rate_tier"], labels)


def overlap_table(data: RegisterData, n: int | None = None) -> pd.DataFrame:
    """The debtor overlap of the register: top n (the policy's `overlap_top_n`) debtors and customers."""
    reg = data.register
    return overlap(reg["customer"], reg["net_sales_cents"], reg["open_balance_cents"], n, policy=data.policy)


def pareto_points(sales_cents: np.ndarray, points: int = 20) -> list[tuple[float, float]]:
    """Cumulative sales share of the top k% of customers (k = 5%, 10%, ... 100%).

    Mirrors the sheet formula SUMIF(sales, ">="&LARGE(sales, k)) / total, so ties count whole.
    """
    sales = np.sort(np.asarray(sales_cents, dtype="int64"))[::-1]
    total = int(sales.sum())
    out = []
    for i in range(1, points + 1):
        share = i / points
        k = max(int(np.ceil(round(share * len(sales), 9))), 1)
        if len(sales) == 0 or total == 0:
            out.append((share, 0.0))
            continue
        threshold = sales[k - 1]
        out.append((share, int(sales[sales >= threshold].sum()) / total))
    return out
