"""Worksheet functions for zero-sum credit-line reallocation (赊销额度调整) and cut suggestions.

Pure checks: applying a batch, the audit log and the approval roles belong to the
reallocation workflow (macros), never to a cell formula.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xlwings as xw

from crm_core.reallocation import Register, apply_reallocation, check_reallocation
from crm_core.suggest import suggest_cuts

from . import _excel as ex
from .collection import POLICY_DOC, RANGE

REGISTER_DOCS = {
    "customers": "Register: customer codes, one column 客户",
    "lines": "Register: current credit line of each customer, same rows 赊销额度",
    "request_customers": "Request: customer of each request line 调整客户",
    "request_changes": "Request: change of each line, + raise / - cut, same rows 调整金额",
    "balances": "Register: open receivable balance of each customer (optional; not checked if omitted) 应收余额",
}


def _register(customers, lines, balances, tiers=None) -> Register:
    cols = ex.aligned(customers=customers, lines=lines, balances=balances, tiers=tiers)
    names = ex.texts(cols["customers"], "customers")
    index = pd.Index(names, dtype=object)
    line_cents = pd.Series(ex.money_cents(cols["lines"], "lines", blank_as_zero=True), index=index)
    balance = None
    if ex.grid(balances):
        balance = pd.Series(ex.money_cents(cols["balances"], "balances", blank_as_zero=True), index=index)
    tier_series = pd.Series(ex.texts(cols["tiers"], "tiers", allow_blank=True), index=index, dtype=object)
    if index.duplicated().any():
        dup = index[index.duplicated()][0]
        raise ex.arg_problem("customers", f"customer {dup!r} appears twice in the register",
                             row=int(np.flatnonzero(index == dup)[1]) + 1, code=ex.IssueCode.DUPLICATE_CUSTOMER)
    return Register(line_cents, tier_series, balance)


def _request(request_customers, request_changes) -> pd.DataFrame:
    cols = ex.aligned(request_customers=request_customers, request_changes=request_changes)
    names = ex.texts(cols["request_customers"], "request_customers")
    return pd.DataFrame({"customer": names,
                         "change_cents": ex.money_cents(cols["request_changes"], "request_changes")})


CHECK_HEADER = ["customer / 客户", "tier / 等级", "old line / 原额度", "change / 调整", "new line / 新额度",
                "kind / 类型", "message / 说明"]


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc=REGISTER_DOCS["customers"], **RANGE)
@xw.arg("lines", doc=REGISTER_DOCS["lines"], **RANGE)
@xw.arg("request_customers", doc=REGISTER_DOCS["request_customers"], **RANGE)
@xw.arg("request_changes", doc=REGISTER_DOCS["request_changes"], **RANGE)
@xw.arg("balances", doc=REGISTER_DOCS["balances"], **RANGE)
@xw.arg("tiers", doc="Register: tier of each customer, to label moves within/across tiers (optional) 客户等级", **RANGE)
@xw.arg("detail", doc="TRUE: table with header (customer, tier, old, change, new, kind, message); FALSE (default): messages only 明细", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_check_reallocation(customers, lines, request_customers, request_changes, balances=None, tiers=None,
                           detail=False, policy=None):
    """Checks a reallocation batch 额度调整: one message per request line ('ok' or why not), then the batch verdict (sum zero, lines >= 0, >= open balance)."""
    pol = ex.read_policy(policy)
    register = _register(customers, lines, balances, tiers)
    result = check_reallocation(register, _request(request_customers, request_changes), policy=pol,
                                first_row=1)
    moves = result.moves
    if not _flag(detail):
        return [[m] for m in moves["message"]] + [[result.verdict]]
    unknown = ~moves["known"].to_numpy()
    na = ex.excel_error(ex.NA)
    old = np.where(unknown, na, ex.units(moves["old_cents"]))
    new = np.where(unknown, na, ex.units(moves["new_cents"]))
    kinds = moves["kind"] if ex.grid(tiers) else [""] * len(moves)  # no tiers given: kind unknown
    table = ex.table_out(CHECK_HEADER, [moves["customer"], moves["tier"], old, ex.units(moves["change_cents"]),
                                        new, kinds, moves["message"]])
    total = int(moves["change_cents"].sum())
    return table + [["batch / 批次", "", "", ex.units(total), "", "", result.verdict]]


def _flag(value) -> bool:
    cells = ex.vector(value, "detail")
    if not cells or cells[0] is None:
        return False
    if isinstance(cells[0], bool):
        return cells[0]
    text = ex.normalize_text(cells[0]).lower()
    if text in ("true", "1", "yes", "是", "1.0"):
        return True
    if text in ("false", "0", "no", "否", "0.0"):
        return False
    raise ex.arg_problem("detail", f"detail {cells[0]!r} is not TRUE or FALSE")


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc=REGISTER_DOCS["customers"], **RANGE)
@xw.arg("lines", doc=REGISTER_DOCS["lines"], **RANGE)
@xw.arg("request_customers", doc=REGISTER_DOCS["request_customers"], **RANGE)
@xw.arg("request_changes", doc=REGISTER_DOCS["request_changes"], **RANGE)
@xw.arg("balances", doc=REGISTER_DOCS["balances"], **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_reallocate(customers, lines, request_customers, request_changes, balances=None, policy=None):
    """New credit lines 调整后额度 after a zero-sum batch, one column beside the customers; the total is unchanged. A refused batch gives its reason instead."""
    pol = ex.read_policy(policy)
    register = _register(customers, lines, balances)
    new_lines, _ = apply_reallocation(register, _request(request_customers, request_changes), policy=pol,
                                      first_row=1)
    return ex.column_out(ex.units(new_lines.to_numpy()), ex.is_horizontal(customers))


SUGGEST_HEADER = ["customer / 客户", "cut / 调减", "headroom / 可调减", "line used / 额度使用率",
                  "collection rate / 回款率", "why / 理由"]


@xw.func(category=ex.CATEGORY)
@xw.arg("customers", doc=REGISTER_DOCS["customers"], **RANGE)
@xw.arg("lines", doc=REGISTER_DOCS["lines"], **RANGE)
@xw.arg("balances", doc="Open receivable balance of each customer, same rows 应收余额", **RANGE)
@xw.arg("rates", doc="Collection rate of each customer, same rows (blank: not judged) 回款率", **RANGE)
@xw.arg("amount", doc="Increase to fund, in currency units 需调增额度", **RANGE)
@xw.arg("exclude", doc="Customers not to cut, e.g. the one being raised (optional) 排除客户", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_suggest_cuts(customers, lines, balances, rates, amount, exclude=None, policy=None):
    """Proposes line cuts 建议调减 funding an increase: lines far above use and poor payers first, never below the open balance, totalling the amount exactly."""
    pol = ex.read_policy(policy)
    cells = ex.aligned(customers=customers, lines=lines, balances=balances, rates=rates)
    names = ex.texts(cells["customers"], "customers")
    rate_values, bad = ex.numbers(cells["rates"], "rates", errors_as_blank=True)
    ex.require(bad, "rates")
    skip = ex.texts(ex.vector(exclude, "exclude"), "exclude", allow_blank=True)
    unknown = [s for s in skip if s and s not in set(names)]
    if unknown:
        raise ex.arg_problem("exclude", f"customer {unknown[0]!r} is not in the register",
                             code=ex.IssueCode.UNKNOWN_CUSTOMER)
    cuts = suggest_cuts(names, ex.money_cents(cells["lines"], "lines", blank_as_zero=True),
                        ex.money_cents(cells["balances"], "balances", blank_as_zero=True), rate_values,
                        ex.one_money_cents(amount, "amount"), exclude=[s for s in skip if s],
                        unit_cents=pol.credit_unit_cents, policy=pol)
    return ex.table_out(SUGGEST_HEADER, [cuts["customer"], ex.units(cuts["cut_cents"]),
                                         ex.units(cuts["headroom_cents"]), cuts["utilisation"], cuts["rate"],
                                         cuts["why"]])
