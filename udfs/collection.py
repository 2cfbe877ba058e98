"""Worksheet functions for the collection rate (销售回款率) and the per-customer ledger summary.

UDF parameters carry no type hints on purpose: xlwings reads a hint as the argument's
converter. Every range argument is read 2-D with error cells as text (``err_to_str``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xlwings as xw

from crm_core.collection import FACT_COLUMNS, Period, customer_facts, rate_from_net
from crm_core.issues import CrmInputError, check_invariant, issues_frame
from crm_core.ledger import normalize_ledger
from crm_core.review import default_period
from crm_core.schema import RateStatus
from crm_core.values import is_blank

from . import _excel as ex

RANGE = {"ndim": 2, "err_to_str": True}
POLICY_DOC = "Policy sheet range, 2 columns key | value (optional; built-in policy if omitted) 政策"


@xw.func(category=ex.CATEGORY)
@xw.arg("collections", doc="Cash collected incl. VAT, a number or a range 回款额", **RANGE)
@xw.arg("net_sales", doc="Net sales excl. VAT, same shape as collections 净销售额", **RANGE)
@xw.arg("vat_rate", doc="VAT rate, 0.17 or 17% (optional; policy's current rate) 增值税率", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_collection_rate(collections, net_sales, vat_rate=None, policy=None):
    """Collection rate 回款率 = collections / (net sales x (1 + VAT)), cell by cell; spills. #DIV/0! where net sales are zero or less."""
    cash, sales = _paired(collections, net_sales)
    if not cash or not sales:
        return ""
    shape = (max(len(cash), len(sales)), max(len(cash[0]), len(sales[0])))
    vat = _vat(vat_rate, policy)
    c, c_bad = _block(cash, "collections", shape)
    s, s_bad = _block(sales, "net_sales", shape)
    both_blank = np.isnan(c) & np.isnan(s)
    rate = rate_from_net(np.nan_to_num(c), np.nan_to_num(s), vat)
    out = np.empty(shape, dtype=object)
    out[:] = [[ex.cell(x) for x in row] for row in rate]
    out[np.isnan(rate)] = ex.excel_error(ex.DIV0)
    out[both_blank] = ""
    for (r, k), text in {**s_bad, **c_bad}.items():
        out[r, k] = text
    return out.tolist() if out.size > 1 else out[0, 0]


def _paired(collections, net_sales) -> tuple[ex.Cells, ex.Cells]:
    """Two selections of one shape lose only the trailing rows/columns blank in both: trimmed one
    by one, a column whose last cell is blank could shrink to one cell and be applied to every row."""
    cash, sales = ex.grid(collections, trim=False), ex.grid(net_sales, trim=False)
    if not cash or not sales or (len(cash), len(cash[0])) != (len(sales), len(sales[0])):
        return ex.grid(collections), ex.grid(net_sales)
    both = [[a, b] for a, b in zip(cash, sales)]  # rows of cell pairs
    while both and all(ex.is_blank(c) for pair in both[-1] for c in pair):
        both.pop()
    width = len(cash[0])
    while width and all(ex.is_blank(pair[k][width - 1]) for pair in both for k in (0, 1)):
        width -= 1
    return [p[0][:width] for p in both], [p[1][:width] for p in both]


def _vat(vat_rate, policy) -> float:
    cells = ex.vector(vat_rate, "vat_rate")
    if cells and not is_blank(cells[0]):  # a formula returning "" means: the policy's rate
        try:
            return ex.rate(cells[0], "vat_rate")
        except ValueError as exc:
            raise ex.arg_problem("vat_rate", str(exc)) from None
    table = ex.read_policy(policy).vat_table
    return float(table[max(table)])


def _block(rows, name, shape) -> tuple[np.ndarray, dict[tuple[int, int], str]]:
    """A block of numbers broadcast to `shape` (a single cell applies everywhere), with messages."""
    height, width = len(rows), len(rows[0])
    flat, bad = ex.numbers([c for row in rows for c in row], name)
    values = flat.reshape(height, width)
    try:
        values = np.broadcast_to(values, shape)
    except ValueError:
        raise ex.arg_problem(name, f"{name} is {height}x{width} cells but the other range is "
                                   f"{shape[0]}x{shape[1]}", code=ex.IssueCode.BAD_SHAPE) from None
    messages = {}
    for pos, reason in bad.items():
        r, k = divmod(pos, width)
        text = f"{ex.VALUE} row {r + 1} ({name}): {reason}"
        for rr in (range(shape[0]) if height == 1 else [r]):
            for kk in (range(shape[1]) if width == 1 else [k]):
                messages[(rr, kk)] = text
    return values, messages


def _ledger(ledger, policy_obj):
    frame = ex.table_frame(ledger, "ledger")
    return normalize_ledger(frame, policy_obj, source="ledger", first_row=2)


def ledger_rows(ledger, policy_obj) -> pd.DataFrame:
    """The clean rows of a ledger range; a ledger with bad rows is refused, naming the first."""
    book = _ledger(ledger, policy_obj)
    if book.errors:
        raise CrmInputError(book.errors)
    return book.rows


def as_of_day(as_of, what: str) -> pd.Timestamp:
    """The as-of date argument, required: `what` says what is taken on it."""
    day = ex.one_date(as_of, "as_of")
    if day is None:
        raise ex.arg_problem("as_of", f"as_of is blank: give the date {what} / 请填写截止日", code=ex.IssueCode.BAD_DATE)
    return day


def _period(rows: pd.DataFrame, period_start, period_end) -> Period:
    start = ex.one_date(period_start, "period_start")
    end = ex.one_date(period_end, "period_end")
    if start is None and end is None:
        return default_period(rows["date"].max() if len(rows) else None)
    if start is None:
        start = end - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    if end is None:
        end = start + pd.DateOffset(years=1) - pd.Timedelta(days=1)
    if end < start:
        raise ex.arg_problem("period_end", f"period_end {end:%Y-%m-%d} is before period_start {start:%Y-%m-%d}",
                             code=ex.IssueCode.BAD_DATE)
    return Period(pd.Timestamp(start), pd.Timestamp(end))


COLLECTIONS_HEADER = ["customer / 客户", "net sales / 净销售额", "collections / 回款额",
                      "collection rate / 回款率", "open balance / 应收余额", "rate note / 说明"]


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc="Ledger range WITH header row: date, customer, type, amount (English or Chinese headers) 台账", **RANGE)
@xw.arg("period_start", doc="First day of the period (optional; default: last complete year in the ledger) 期间开始", **RANGE)
@xw.arg("period_end", doc="Last day of the period, inclusive (optional; default: one year after the start) 期间结束", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_collections(ledger, period_start=None, period_end=None, policy=None):
    """Per-customer table with header: customer, net sales, collections, collection rate 回款率, open balance 应收余额, rate note. Refuses a ledger with bad rows, naming the first."""
    policy_obj = ex.read_policy(policy)
    rows = ledger_rows(ledger, policy_obj)
    facts = customer_facts(rows, policy_obj, _period(rows, period_start, period_end))
    check_invariant(list(facts.columns) == FACT_COLUMNS, "customer facts have the columns FACT_COLUMNS",
                    ", ".join(map(str, facts.columns)))
    return collections_table(facts)


def collections_table(facts: pd.DataFrame) -> ex.Cells:
    """COLLECTIONS_HEADER and a row per customer of `facts` (FACT_COLUMNS): money in currency
    units, #DIV/0! for no rate, and the rate note (the status's label; nothing when rated)."""
    rate = facts["collection_rate"].to_numpy(dtype="float64")
    rate_cells = np.where(np.isnan(rate), ex.excel_error(ex.DIV0), rate)
    notes = [_rate_note(s) for s in facts["rate_status"]]
    return ex.table_out(COLLECTIONS_HEADER, [
        facts["customer"], ex.units(facts["net_sales_cents"]), ex.units(facts["collections_cents"]),
        rate_cells, ex.units(facts["open_balance_cents"]), notes])


def _rate_note(status: object) -> str:
    """A rate status (a member, or its label as a frame's text column holds it) as its note."""
    member = status if isinstance(status, RateStatus) else RateStatus.of(status)
    return member.note if member is not None else str(status)


@xw.func(category=ex.CATEGORY)
@xw.arg("ledger", doc="Ledger range WITH header row: date, customer, type, amount 台账", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_ledger_issues(ledger, policy=None):
    """Every problem found in a ledger range, one row each with header: row, column, severity, message 台账问题. 'no problems' if clean."""
    book = _ledger(ledger, ex.read_policy(policy))
    if not book.issues:
        return "no problems / 无问题"
    table = issues_frame(book.issues)
    return ex.table_out(["row / 行", "column / 列", "severity / 级别", "message / 说明"],
                        [table["row"], table["column"], table["severity"], table["message"]])
