"""The sales funnel by stage tier A-E (销售漏斗, 003): how many customers a sales target needs at each
stage, and the promotion rates and average deal that plan is built on, measured from history.

Stages as `stage_tiers` gives them (A closing within a month ... E no need; domain.md section 3).
Counts are exact: rates are read as the decimals Excel shows and divided as fractions, so 20 / 0.5
is 40, never 40.0000001 rounded up to 41.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from numbers import Rational
from typing import Sequence

import numpy as np
import pandas as pd

from .collection import Period, customer_facts
from .issues import CrmInputError, Issue, IssueCode
from .policy import FUNNEL_RATE_DEFAULTS, Policy, fraction_problem
from .values import is_blank, normalize_text, shown_decimal

STAGES = ("A", "B", "C", "D", "E")  # best first
# The promotion steps in the order rates are given: from the widest stage up to A.
STEPS = (("E", "D"), ("D", "C"), ("C", "B"), ("B", "A"))
STEP_LABELS = tuple(f"{low}->{high}" for low, high in STEPS)
MAX_CUSTOMERS = 2**53  # counts Excel holds exactly; more is a typing slip in the target or the deal
# Each step's policy key (funnel_rate.E_D ...), in STEPS' order.
POLICY_KEYS = tuple(FUNNEL_RATE_DEFAULTS)
RATE_PARTS = 10_000  # rates in use are whole parts per 10,000: 0.01%, as the sheet shows them
MEASURED = "measured / 实测"
POLICY_DEFAULT = "policy default / 政策默认"


def exact_fraction(value: object, name: str) -> Fraction:
    """A rate or count as an exact fraction: a float as the decimal Excel shows (15 digits: 0.3 is
    3/10, not 0.29999999999999998890), a Decimal or int as it is."""
    if isinstance(value, bool):
        raise _problem(name, f"{name} {value!r} is TRUE/FALSE, not a number")
    if isinstance(value, (Rational, Decimal)):
        return Fraction(value)
    try:
        number = float(value)  # floats, numpy numbers
    except (TypeError, ValueError):
        raise _problem(name, f"{name} {str(value)[:40]!r} is not a number / 不是数字") from None
    if not math.isfinite(number):
        raise _problem(name, f"{name} {value!r} is not a finite number / 不是有效数字")
    return Fraction(shown_decimal(number))


def _problem(column: str, message: str, row: int | None = None) -> CrmInputError:
    return CrmInputError([Issue(IssueCode.BAD_NUMBER, message, row=row, column=column)])


def checked_rates(conversion_rates: Sequence[object]) -> list[Fraction]:
    """The four promotion rates E->D, D->C, C->B, B->A, each in (0, 1]; every bad one named by its
    position (row 1 = E->D)."""
    rates = list(conversion_rates)
    if len(rates) != len(STEPS):
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"conversion_rates: {len(rates)} rate(s) given, 4 needed "
                                   f"({', '.join(STEP_LABELS)}) / 需要 4 个晋级率", column="conversion_rates")])
    issues, out = [], []
    for row, (label, value) in enumerate(zip(STEP_LABELS, rates), start=1):
        what = f"conversion rate {label}"
        if value is None or (isinstance(value, float) and math.isnan(value)):
            issues.append(Issue(IssueCode.BLANK, f"{what} is blank / 晋级率未填写", row=row, column="conversion_rates"))
            continue
        try:
            rate = exact_fraction(value, what)
        except CrmInputError as exc:
            issues += [Issue(i.code, i.message, row=row, column="conversion_rates") for i in exc.issues]
            continue
        if rate <= 0 or rate > 1:  # above 1: the product's rule says how to write a percent
            reason = (fraction_problem(what, float(rate)) if rate > 1 else
                      f"{what}: {float(rate):g} must be above 0 / 晋级率应大于 0")
            issues.append(Issue(IssueCode.BAD_NUMBER, reason, row=row, column="conversion_rates"))
            continue
        out.append(rate)
    if issues:
        raise CrmInputError(issues)
    return out


def funnel_plan(target_sales_cents: int, average_deal_cents: int, conversion_rates: Sequence[object]) -> pd.DataFrame:
    """Customers needed at each stage to reach the target (推算需要多少 A、B、C、D、E 级客户).

    A = target / average deal, each lower stage = the stage above / its promotion rate, rounded up
    at every step (a customer is whole): 1,000,000 / 50,000 with rates E->D 0.5, D->C 0.25,
    C->B 0.5, B->A 0.5 gives A 20, B 40, C 80, D 320, E 640. Rates come in the order E->D, D->C,
    C->B, B->A. Columns: stage, customers, promotion_rate (into the next stage up; NaN for A).
    """
    target, deal = int(target_sales_cents), int(average_deal_cents)
    issues = []
    if target < 0:
        issues.append(Issue(IssueCode.BAD_NUMBER, "target_sales is below 0 / 销售目标不能为负", column="target_sales"))
    if deal <= 0:
        issues.append(Issue(IssueCode.BAD_NUMBER, "average_deal must be above 0 / 平均成交额应大于 0",
                            column="average_deal"))
    try:
        rates = checked_rates(conversion_rates)
    except CrmInputError as exc:
        issues += exc.issues
    if issues:
        raise CrmInputError(issues)
    needed = [_ceil(Fraction(target, deal))]
    for rate in reversed(rates):  # B->A first: B = A / rate(B->A), then C, D, E
        needed.append(_ceil(needed[-1] / rate))
    if needed[-1] > MAX_CUSTOMERS:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"the plan needs {needed[-1]:.3g} E customers: check "
                                   "target_sales, average_deal and the rates / 所需客户数过大，请检查目标、平均成交额和晋级率",
                                   column="target_sales")])
    into_next = [math.nan, *(float(r) for r in reversed(rates))]
    return pd.DataFrame({"stage": list(STAGES), "customers": np.array(needed, dtype="int64"),
                         "promotion_rate": into_next})


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


# ---------------------------------------------------------------- measured from history


def stage_labels(values: Sequence[object], name: str) -> np.ndarray:
    """Stage tiers A-E (any case, full width) or '' for a blank; anything else refused by row."""
    labels = np.array([normalize_text(v).upper() if not is_blank(v) else "" for v in values], dtype=object)
    unknown = np.flatnonzero(~np.isin(labels, [*STAGES, ""]))
    if len(unknown):
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"{name}: {values[pos]!r} is not a stage tier A-E "
                                   "/ 不是 A-E 阶段等级", row=int(pos) + 1, column=name) for pos in unknown])
    return labels


def promotion_rates(earlier_stages: Sequence[object], later_stages: Sequence[object]) -> pd.DataFrame:
    """Promotion rates 晋级率 from two stage snapshots of the same customers (row i is one customer).

    For each step X->Y (E->D, D->C, C->B, B->A): of the customers at stage X in the earlier
    snapshot, the share at Y *or better* in the later one (a customer going from D straight to A
    passed C on the way, so it counts for D->C). Customers that moved down or stayed count as not
    promoted. A customer blank in either snapshot (new since, or no longer staged) is left out of
    every step. Columns: step, from_stage, customers (at X earlier and staged later), promoted,
    rate (NaN where no customer was at X). The rates, in STEPS' order, are what `funnel_plan` takes.
    """
    earlier, later = list(earlier_stages), list(later_stages)
    if len(earlier) != len(later):
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"earlier_stages has {len(earlier)} rows, later_stages "
                                   f"{len(later)}: one row per customer in both / 两期行数应相同",
                                   column="later_stages")])
    before, after = stage_labels(earlier, "earlier_stages"), stage_labels(later, "later_stages")
    rank = {s: i for i, s in enumerate(STAGES)}
    staged = (before != "") & (after != "")
    after_rank = np.array([rank.get(s, len(STAGES)) for s in after])
    rows = []
    for low, high in STEPS:
        at_start = staged & (before == low)
        promoted = at_start & (after_rank <= rank[high])
        count, moved = int(at_start.sum()), int(promoted.sum())
        rows.append({"step": f"{low}->{high}", "from_stage": low, "customers": count, "promoted": moved,
                     "rate": moved / count if count else math.nan})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class AverageDeal:
    """The average deal 平均成交额: mean net sales of `customers` customers in the period, in cents."""

    cents: int
    customers: int


def average_deal(rows: pd.DataFrame, period: Period, policy: Policy | None = None,
                 customers: Sequence[str] | None = None) -> AverageDeal:
    """The average deal for the funnel: what one A customer brings in a period (a year, for a
    yearly target), from the ledger's net sales (customer_facts: invoices less credit notes, net of
    VAT).

    `customers`: those counted (e.g. the customers at stage A at the period's start; blanks and
    repeats ignored); one of them without sales in the period counts as 0 (it was expected to buy). Without `customers`, every
    customer with positive net sales in the period is counted. The mean is rounded half-up to the
    cent; 0 customers gives 0 cents and count 0.
    """
    facts = customer_facts(rows, policy or Policy(), period)
    sales = facts.set_index("customer")["net_sales_cents"]
    if customers is None:
        counted = sales[sales > 0]
    else:
        names = pd.Index([code for code in map(normalize_text, customers) if code], dtype=object).unique()
        counted = sales.reindex(names, fill_value=0)
    if not len(counted):
        return AverageDeal(0, 0)
    total = int(counted.astype("int64").sum())
    mean = (Decimal(total) / Decimal(len(counted))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return AverageDeal(int(mean), int(len(counted)))


def rates_in_use(measured: pd.DataFrame, policy: Policy | None = None) -> pd.DataFrame:
    """The rates a plan is built on (计划所用晋级率): each step's measured rate (`promotion_rates`)
    where some customer at its stage was promoted, else the policy's `funnel_rate` for the step
    (none at the stage, or none promoted: a measured 0 would ask for endless customers). Both to
    0.01%, the measured one rounded half-up. Columns: step, customers, promoted, measured (NaN
    where none was at the stage), policy, rate, source (MEASURED or POLICY_DEFAULT)."""
    policy = policy or Policy()
    table = measured.reset_index(drop=True)
    counts, moved = table["customers"].astype(int).tolist(), table["promoted"].astype(int).tolist()
    shown = [_parts(Fraction(m, c)) / RATE_PARTS if c else math.nan for m, c in zip(moved, counts)]
    defaults = [_parts(exact_fraction(policy.funnel_rates[key], f"funnel_rate.{key}")) / RATE_PARTS
                for key in POLICY_KEYS]
    used = [m > 0 for m in moved]
    return pd.DataFrame({"step": list(STEP_LABELS), "customers": counts, "promoted": moved, "measured": shown,
                         "policy": defaults, "rate": [s if u else d for s, d, u in zip(shown, defaults, used)],
                         "source": [MEASURED if u else POLICY_DEFAULT for u in used]})


def _parts(rate: Fraction) -> int:
    """A rate in whole parts per 10,000, half-up: 1/3 is 3333, 1/32 is 313."""
    scaled = rate * RATE_PARTS
    return (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
