"""Commission on collection (销售提成制, 003): earned on net sales, paid once the sale is collected
(兑现 on 回笼), clawed back when a bad debt is written off (坏账核销); per owner, in integer cents.

Owner Li: net sales 100,000, collections 117,000 at 17% VAT (100,000 net), a write-off of 11,700
(10,000 net), rate 2%: earned 2,000, payable 2,000, clawed back 200, net payable 1,800.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .collection import Period, customer_facts
from .funnel import exact_fraction
from .issues import CrmInputError, Issue, IssueCode
from .policy import Policy, fraction_problem
from .values import is_blank, normalize_text

UNASSIGNED = "unassigned / 未分配"
TOTAL = "total / 合计"
# Per customer: the bases, net of VAT and rounded half-up at the cent like a document amount.
BASES = ["net_sales_cents", "collections_net_cents", "written_off_net_cents"]
# Per owner: the commission figures, each rate x the owner's summed base, rounded once.
FIGURES = ["earned_cents", "payable_cents", "withheld_cents", "released_cents", "clawed_back_cents",
           "net_payable_cents"]


@dataclass(frozen=True)
class CommissionReport:
    """`by_owner`: owner, customers, BASES and FIGURES (int cents), owners sorted, UNASSIGNED last;
    `total`: the same summed over the owners (what is paid out is what the owners get, so the
    total is never recomputed from the grand bases); `by_customer`: customer, owner, BASES."""

    by_owner: pd.DataFrame
    total: dict[str, int]
    by_customer: pd.DataFrame


def commission(customers: Sequence[object], owners: Sequence[object], net_sales_cents: Sequence[int],
               collections_cents: Sequence[int], write_offs_cents: Sequence[int], rate: object,
               vat_rate: object | Sequence[object]) -> CommissionReport:
    """Commission per owner (销售提成) from each customer's period totals; row i is one customer.

    - bases per customer: net sales as given (excl. VAT); collections and write-offs (incl. VAT)
      net of VAT, amount / (1 + vat_rate), rounded half-up at the cent. `vat_rate`: one rate or one
      per customer (0.17 or an exact fraction).
    - per owner, each rounded half-up at the cent once, on the owner's summed bases (an owner's
      commission does not depend on how the sales are split between customers):
      earned = rate x net sales; payable = rate x collections net of VAT; withheld = earned -
      payable where positive (earned, not yet collected); released = payable - earned where
      positive (collections of earlier periods' sales, whose commission was withheld then: paid,
      not capped); clawed back = rate x write-offs net of VAT; net payable = payable - clawed back
      (negative: to deduct from the next payment).
    - a blank owner is UNASSIGNED; customers must be named, each once.
    """
    frame = _customer_frame(customers, owners, net_sales_cents, collections_cents, write_offs_cents)
    share = _checked_rate(rate)
    gross_up = _gross_up(vat_rate, len(frame))  # 1 + VAT, per customer
    frame["collections_net_cents"] = _net_of_vat(frame.pop("collections_cents"), gross_up)
    frame["written_off_net_cents"] = _net_of_vat(frame.pop("write_offs_cents"), gross_up)
    by_owner = _owner_figures(frame, share)
    total = {c: int(by_owner[c].sum()) for c in ["customers", *BASES, *FIGURES]}
    return CommissionReport(by_owner, total, frame[["customer", "owner", *BASES]].astype({c: "int64" for c in BASES}))


def _owner_figures(frame: pd.DataFrame, share: Fraction) -> pd.DataFrame:
    """Per owner: customers, the summed BASES and FIGURES, UNASSIGNED last."""
    sums = frame.groupby("owner", sort=True).agg(customers=("customer", "size"),
                                                  **{b: (b, _exact_sum) for b in BASES})
    sums = sums.iloc[np.argsort((sums.index == UNASSIGNED), kind="stable")]
    by_owner = sums.reset_index()
    for name, base in (("earned_cents", "net_sales_cents"), ("payable_cents", "collections_net_cents"),
                       ("clawed_back_cents", "written_off_net_cents")):
        by_owner[name] = np.array([_half_up(share * int(cents)) for cents in by_owner[base]], dtype="int64")
    difference = by_owner["earned_cents"] - by_owner["payable_cents"]
    by_owner["withheld_cents"] = difference.clip(lower=0)
    by_owner["released_cents"] = (-difference).clip(lower=0)
    by_owner["net_payable_cents"] = by_owner["payable_cents"] - by_owner["clawed_back_cents"]
    return by_owner[["owner", "customers", *BASES, *FIGURES]].astype({c: "int64" for c in BASES})


def commission_from_ledger(rows: pd.DataFrame, owners_by_customer: Mapping[str, str], period: Period,
                           policy: Policy | None = None) -> CommissionReport:
    """`commission` from a normalised ledger (crm_core.ledger) for one period, at the policy's
    `commission_rate`: net sales, collections and written-off amounts (the write-off document type,
    坏账核销) per customer as the review sums them (`customer_facts`).

    Collections and write-offs are taken net of VAT at each customer's own rate for the period,
    gross sales / net sales of its invoices (the collection rate's own gross-up, so payable =
    rate x net sales x collection rate); a customer without positive sales in the period at the
    VAT rate in force on the period's last day. Every customer of the ledger counts in its owner's
    customers (with zeros when it did nothing in the period); customers missing from
    `owners_by_customer` are UNASSIGNED, never dropped.
    """
    policy = policy or Policy()
    facts = customer_facts(rows, policy, period)
    owners = {normalize_text(k): normalize_text(v) for k, v in owners_by_customer.items()}
    net, gross = facts["net_sales_cents"].to_numpy(), facts["gross_sales_cents"].to_numpy()
    fallback = exact_fraction(policy.vat_rate_on(period.end), "vat_rate")
    own_rate = (net > 0) & (gross > 0)
    vat = [Fraction(int(g) - int(n), int(n)) if ok else fallback for n, g, ok in zip(net, gross, own_rate)]
    return commission(facts["customer"], [owners.get(c, "") for c in facts["customer"]], net,
                      facts["collections_cents"], facts["written_off_cents"], policy.commission_rate, vat)


# ---------------------------------------------------------------- input and exact arithmetic


def _customer_frame(customers, owners, net_sales, collections, write_offs) -> pd.DataFrame:
    columns = {"customers": list(customers), "owners": list(owners), "net_sales": list(net_sales),
               "collections": list(collections), "write_offs": list(write_offs)}
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"ranges have different numbers of rows: {shown} "
                                   "/ 各列行数不同", column="customers")])
    codes = [normalize_text(c) for c in columns["customers"]]
    issues = [Issue(IssueCode.BLANK, "customers is blank / 客户编码为空", row=pos + 1, column="customers")
              for pos, code in enumerate(codes) if not code]
    seen: dict[str, int] = {}
    for pos, code in enumerate(codes):
        if code and code in seen:
            issues.append(Issue(IssueCode.DUPLICATE_CUSTOMER, f"customer {code!r} is also on row {seen[code]}: one "
                                "row per customer / 客户重复", row=pos + 1, column="customers"))
        seen.setdefault(code, pos + 1)
    if issues:
        raise CrmInputError(issues)
    return pd.DataFrame({
        "customer": np.array(codes, dtype=object),
        "owner": np.array([UNASSIGNED if is_blank(o) or not normalize_text(o) else normalize_text(o)
                           for o in columns["owners"]], dtype=object),
        "net_sales_cents": _ints(columns["net_sales"]), "collections_cents": _ints(columns["collections"]),
        "write_offs_cents": _ints(columns["write_offs"])})


def _ints(cents: Sequence[int]) -> np.ndarray:
    """Python ints (exact at any size) in an object column."""
    return np.array([int(c) for c in cents], dtype=object)


def _checked_rate(rate: object) -> Fraction:
    share = exact_fraction(rate, "rate")
    problem = fraction_problem("rate", float(share))
    if problem:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"commission {problem}",
                                   column="rate")])
    return share


def _gross_up(vat_rate: object | Sequence[object], n: int) -> list[Fraction]:
    """1 + VAT per customer, exact: one rate for every customer, or one per customer (row named)."""
    if not isinstance(vat_rate, (list, tuple, np.ndarray, pd.Series)):
        return [1 + _checked_vat(vat_rate, None)] * n
    rates = list(vat_rate)
    if len(rates) != n:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"vat_rate: {len(rates)} rates for {n} customers "
                                   "/ 税率个数与客户数不同", column="vat_rate")])
    issues, out = [], []
    for row, value in enumerate(rates, start=1):
        try:
            out.append(1 + _checked_vat(value, row))
        except CrmInputError as exc:
            issues += exc.issues
    if issues:
        raise CrmInputError(issues)
    return out


def _checked_vat(value: object, row: int | None) -> Fraction:
    vat = exact_fraction(value, "vat_rate")
    problem = fraction_problem("vat_rate", float(vat), below_one=True)
    if problem:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, problem, row=row, column="vat_rate")])
    return vat


def _net_of_vat(amounts: pd.Series, gross_up: Sequence[Fraction]) -> np.ndarray:
    """amount / (1 + VAT) per customer, half-up at the cent: 117,000 at 17% is 100,000 exactly.
    Whole columns of Python ints (object arrays): exact at any size, where int64 products overflow."""
    over = np.array([g.denominator for g in gross_up], dtype=object)
    under = np.array([g.numerator for g in gross_up], dtype=object)
    return _half_up_quotient(amounts.to_numpy(dtype=object) * over, under)


def _half_up_quotient(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator (> 0) rounded half away from zero, element-wise in Python ints."""
    magnitude = (2 * np.abs(numerator) + denominator) // (2 * denominator)
    return np.where(numerator < 0, -magnitude, magnitude)


def _exact_sum(values: pd.Series) -> int:
    return sum((int(v) for v in values), 0)


def _half_up(value: Fraction) -> int:
    """Round half away from zero at the cent, as Excel's ROUND and a VAT invoice do."""
    magnitude = (2 * abs(value.numerator) + value.denominator) // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude
