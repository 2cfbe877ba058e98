"""Worksheet functions for customer tiers (客户等级): by collection rate, Pareto by sales, by sales stage.

Results line up with the input column (no header), so they can sit beside it.
"""
from __future__ import annotations

import numpy as np
import xlwings as xw

from crm_core.policy import require_shares
from crm_core.tiers import (
    follow_up_due,
    pair_cutoffs,
    pareto_tiers,
    rank_tiers,
    rate_tiers,
    stage_tiers,
)

from . import _excel as ex
from .collection import POLICY_DOC, RANGE


def _labels(value, count: int, default: list[str], name: str) -> list[str]:
    cells = ex.vector(value, name)
    labels = [str(v) for v in ex.texts(cells, name)] if cells else list(default)
    if len(labels) != count:
        raise ex.arg_problem(name, f"{name}: {len(labels)} label(s) given, {count} needed", code=ex.IssueCode.BAD_SHAPE)
    twice = [t for n, t in enumerate(labels) if t in labels[:n]]
    if twice:  # two tiers under one label would silently merge
        raise ex.arg_problem(name, f"{name}: {twice[0]!r} is given twice / 等级重复", code=ex.IssueCode.BAD_SHAPE)
    return labels


def _fractions(value, name: str) -> list[float] | None:
    cells = ex.vector(value, name)
    if not cells:
        return None
    values, bad = ex.numbers(cells, name)
    ex.require(bad, name)
    return [float(v) for v in values if not np.isnan(v)]


@xw.func(category=ex.CATEGORY)
@xw.arg("rates", doc="Collection rates, one column; blanks and error cells are unrated 回款率", **RANGE)
@xw.arg("cutoffs", doc="Lower bounds in any order, as fractions or %: 95%;85%;70% (95 is refused; rank mode: shares 20%;30%;30%;20%) 分级标准", **RANGE)
@xw.arg("labels", doc="Tier labels, best first (the highest cut-off goes with the first), one more than cutoffs (rank mode: one per share) 等级", **RANGE)
@xw.arg("mode", doc="'cutoff' (default from policy) or 'rank' (best 20%, next 30%...) 分级方式", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_tier(rates, cutoffs=None, labels=None, mode=None, policy=None):
    """Customer tier 客户等级 by collection rate: A >= 95%, B >= 85%, C >= 70%, else D (policy); or by rank. Blank rate: 'unrated'."""
    pol = ex.read_policy(policy)
    cells = ex.vector(rates, "rates")
    values, bad = ex.numbers(cells, "rates", errors_as_blank=True)
    ex.require(bad, "rates")
    mode_cells = ex.vector(mode, "mode")
    how = ex.normalize_text(mode_cells[0] if mode_cells else pol.tier_mode).lower()
    given = _fractions(cutoffs, "cutoffs")
    if how == "rank":
        shares = given or list(pol.rank_shares.values())
        require_shares("cutoffs", shares)  # the shares arrive in the cutoffs argument
        names = _labels(labels, len(shares), list(pol.rank_shares), "labels")
        tiers = rank_tiers(values, dict(zip(names, shares)), policy=pol)
    elif how == "cutoff":
        bounds = given or [pol.rate_cutoffs[t] for t in pol.rate_tier_labels()[:-1]]
        names = _labels(labels, len(bounds) + 1, pol.rate_tier_labels(), "labels")
        tiers = rate_tiers(values, pair_cutoffs(bounds, names[:-1]), lowest=names[-1], policy=pol)
    else:
        raise ex.arg_problem("mode", f"mode {how!r} is not 'cutoff' or 'rank'")
    return ex.column_out(tiers, ex.is_horizontal(rates))


@xw.func(category=ex.CATEGORY)
@xw.arg("values", doc="Sales per customer, one column 销售额", **RANGE)
@xw.arg("cutoffs", doc="Cumulative shares closing each tier, any order, as fractions or %: 70%;90% (70 is refused; optional; policy) 累计占比", **RANGE)
@xw.arg("labels", doc="Tier labels, best first (the lowest cut-off goes with the first), one more than cutoffs, e.g. A;B;C (optional) 等级", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_pareto_tier(values, cutoffs=None, labels=None, policy=None):
    """Pareto ABC tier by sales 价值分级: A = customers making the first 70% of sales, B the next 20%, C the rest (policy)."""
    pol = ex.read_policy(policy)
    cells = ex.vector(values, "values")
    sales, bad = ex.numbers(cells, "values")
    ex.require(bad, "values")
    default_labels = sorted(pol.pareto_cutoffs, key=pol.pareto_cutoffs.get) + [pol.pareto_rest]
    bounds = _fractions(cutoffs, "cutoffs") or sorted(pol.pareto_cutoffs.values())
    names = _labels(labels, len(bounds) + 1, default_labels if len(bounds) + 1 == len(default_labels)
                    else [chr(65 + i) for i in range(len(bounds) + 1)], "labels")
    tiers = pareto_tiers(sales, pair_cutoffs(bounds, names[:-1], best="lowest"), rest=names[-1], policy=pol)
    return ex.column_out(tiers, ex.is_horizontal(values))


@xw.func(category=ex.CATEGORY)
@xw.arg("need", doc="Need per customer: yes/有 (clear), potential/潜在, no/无 需求", **RANGE)
@xw.arg("expected_close", doc="Expected closing date of the deal, same rows as need 预计成交日期", **RANGE)
@xw.arg("as_of", doc="Date the stage is judged on (optional; today) 评估日期", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_stage_tier(need, expected_close, as_of=None, policy=None):
    """Sales-stage tier 销售阶段等级 A-E: A closes within 1 month, B 3, C 6; D potential or later; E no need."""
    pol = ex.read_policy(policy)
    cols = ex.aligned(need=need, expected_close=expected_close)
    needs, close_cells = cols["need"], cols["expected_close"]
    close, bad = ex.dates(close_cells, "expected_close")
    ex.require(bad, "expected_close", ex.IssueCode.BAD_DATE)
    day = ex.one_date(as_of, "as_of", ex.today())
    tiers = stage_tiers(needs, list(close), day, policy=pol)
    out = np.array(tiers, dtype=object)
    for pos in np.flatnonzero(out == ""):
        out[pos] = (f"{ex.VALUE} row {pos + 1} (need): {str(needs[pos])[:40]!r} is not yes/有, "
                    "potential/潜在 or no/无")
    return ex.column_out(out, ex.is_horizontal(need))


@xw.func(category=ex.CATEGORY)
@xw.arg("stage_tiers", doc="Sales-stage tiers A-E (from crm_stage_tier) 销售阶段等级", **RANGE)
@xw.arg("last_contact", doc="Date of the last follow-up, same rows 上次跟进日期", **RANGE)
@xw.arg("as_of", doc="Date overdue days are counted to (optional; today) 评估日期", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_follow_up_due(stage_tiers, last_contact, as_of=None, policy=None):
    """Two columns: next follow-up date 下次跟进日期 (A daily, B weekly, C 15 d, D 30 d, E none) and days overdue 逾期天数 (0 if not due)."""
    pol = ex.read_policy(policy)
    cols = ex.aligned(stage_tiers=stage_tiers, last_contact=last_contact)
    tiers, last_cells = cols["stage_tiers"], cols["last_contact"]
    last, bad = ex.dates(last_cells, "last_contact")
    ex.require(bad, "last_contact", ex.IssueCode.BAD_DATE)
    labels = ex.texts(tiers, "stage_tiers", allow_blank=True)
    due = follow_up_due(labels, list(last), policy=pol)
    day = np.datetime64(ex.one_date(as_of, "as_of", ex.today()), "ns")
    late = np.where(np.isnat(due), np.nan, np.clip((day - due).astype("timedelta64[D]").astype("float64"), 0, None))
    if not len(tiers):
        return ""
    return [[ex.cell(d), ex.cell(n)] for d, n in zip(due, late)]
