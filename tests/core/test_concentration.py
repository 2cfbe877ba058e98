"""Pareto tier x collection-rate tier (big buyers who pay badly) and the top-N shares (MM's 83% / 780万)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.analysis import Receivables
from crm_core.concentration import TOTAL, policy_tier_labels, tier_cross_table, top_n_shares
from crm_core.issues import CrmInputError
from crm_core.policy import Policy
from crm_core.tiers import pareto_tiers, rate_tiers

SALES = [600_00, 200_00, 100_00, 60_00, 40_00]  # cents
RATES = [0.60, 0.96, 0.86, np.nan, 0.75]
BALANCES = [500_00, 100_00, -30_00, 20_00, 0]
PARETO_LABELS, RATE_LABELS = policy_tier_labels(Policy())


def test_the_policy_labels():
    assert PARETO_LABELS == ["A", "B", "C"] and RATE_LABELS == ["A", "B", "C", "D", "unrated"]


def test_the_big_buyer_who_pays_badly_sits_in_pareto_a_rate_d():
    pareto = pareto_tiers(SALES)  # A1 and A2 make the first 70%, B1 the next 20%
    assert list(pareto) == ["A", "A", "B", "C", "C"]
    rate = rate_tiers(RATES)
    assert list(rate) == ["D", "A", "B", "unrated", "C"]
    table = tier_cross_table(pareto, rate, BALANCES, PARETO_LABELS, RATE_LABELS)
    assert table.customers.loc["A", "D"] == 1 and table.receivables_cents.loc["A", "D"] == 500_00
    assert table.receivables_cents.loc["A", "A"] == 100_00
    assert table.customers.loc["B", "B"] == 1 and table.receivables_cents.loc["B", "B"] == 0  # in credit: left out
    assert table.receivables_cents.loc["C", "unrated"] == 20_00
    assert table.receivables_cents.loc[TOTAL, TOTAL] == 620_00 and table.customers.loc[TOTAL, TOTAL] == 5
    assert table.receivables_cents.loc["A", TOTAL] == 600_00 and table.customers.loc[TOTAL, "D"] == 1
    assert (table.in_credit_cents, table.customers_in_credit) == (-30_00, 1)
    cells = table.cells()
    assert len(cells) == 4 * 6 and list(cells.columns) == ["pareto_tier", "rate_tier", "customers", "receivables_cents"]


def test_a_tier_outside_the_labels_is_refused_naming_its_row():
    with pytest.raises(CrmInputError) as caught:
        tier_cross_table(["A", "Z"], ["A", "B"], [1, 2], PARETO_LABELS, RATE_LABELS)
    issue = caught.value.issues[0]
    assert (issue.row, issue.column) == (2, "pareto_tiers") and "'Z'" in issue.message


tiers = st.lists(st.tuples(st.sampled_from(PARETO_LABELS), st.sampled_from(RATE_LABELS),
                           st.integers(-10**9, 10**9)), max_size=40)


@settings(max_examples=100, deadline=None)
@given(tiers)
def test_the_cells_add_up_to_the_margins_and_the_margins_to_the_totals(rows):
    pareto, rate, balances = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    table = tier_cross_table(pareto, rate, balances, PARETO_LABELS, RATE_LABELS)
    for frame in (table.customers, table.receivables_cents):
        inner = frame.loc[PARETO_LABELS, RATE_LABELS]
        assert (inner.sum(axis=1) == frame.loc[PARETO_LABELS, TOTAL]).all()
        assert (inner.sum(axis=0) == frame.loc[TOTAL, RATE_LABELS]).all()
        assert inner.to_numpy().sum() == frame.loc[TOTAL, TOTAL]
    owed = Receivables.of(balances)
    assert table.customers.loc[TOTAL, TOTAL] == len(rows)
    assert table.receivables_cents.loc[TOTAL, TOTAL] == owed.owed_cents
    assert table.in_credit_cents == owed.in_credit_cents


def test_top_n_shares_of_sales_and_receivables():
    table = top_n_shares(SALES, BALANCES, n=2).set_index("n", drop=False)
    sales, debts = table.iloc[0], table.iloc[1]
    assert (sales["top_cents"], sales["total_cents"], sales["share"]) == (800_00, 1000_00, pytest.approx(0.8))
    assert (debts["top_cents"], debts["total_cents"]) == (600_00, 620_00)  # the credit counts in neither
    assert debts["share"] == pytest.approx(600 / 620)


def test_mm_the_100_largest_debtors_hold_780_wan_of_1000_wan():
    wan = 10_000 * 100
    balances = [78 * wan // 10] * 100 + [22 * wan // 350 * 10] * 350  # 7.8万 each, the rest about 6,286 each
    table = top_n_shares([0] * 450, balances, policy=Policy())  # n: the policy's overlap_top_n, 100
    debts = table.iloc[1]
    assert debts["n"] == 100 and debts["customers"] == 100 and debts["top_cents"] == 780 * wan
    assert round(debts["share"], 2) == 0.78
    assert math.isnan(table.iloc[0]["share"])  # no sales: no share, never a division error


def test_n_must_be_at_least_one():
    with pytest.raises(CrmInputError) as caught:
        top_n_shares([1], [1], n=0)
    assert caught.value.issues[0].column == "n"
