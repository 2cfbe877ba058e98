"""Relationship KPIs (material 001: 新增客户量(率), 升级客户量(率)), tenure and recency."""
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.collection import Period
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.relationships import Recency, customer_recency, relationship_table, tier_moves
from crm_core.trends import TwoPeriods
from tests.core.test_trends import PERIODS, reference_rows


def ledger_rows(rows) -> pd.DataFrame:
    ledger = normalize_ledger(pd.DataFrame(rows, columns=["date", "customer", "type", "amount"]))
    assert ledger.errors == []
    return ledger.rows


def test_tier_moves_of_the_reference_ledger():
    # 2009: C7 C (78%), B117 B (90%), C3 C (70%), D24 D (60%), L1 A; 2010: C7 B, B117 C, C3 C, D24 D, N1 A
    moves = tier_moves(reference_rows(), PERIODS)
    assert (moves.customers_last, moves.customers_this) == (5, 5)
    assert (moves.new, moves.lost, moves.retained) == (1, 1, 4)
    assert (moves.moved_up, moves.moved_down, moves.unchanged) == (1, 1, 2)


def test_the_table_gives_counts_and_rates_of_their_bases():
    table = relationship_table(reference_rows(), PERIODS).set_index("measure")
    rate = table["rate"]
    assert rate["new customers / 新增客户"] == pytest.approx(1 / 5)
    assert rate["lost: no sales this period / 流失客户(本期无销售)"] == pytest.approx(1 / 5)
    assert rate["retained customers / 留存客户"] == pytest.approx(4 / 5)
    assert rate["moved up a tier / 升级客户"] == pytest.approx(1 / 4)
    assert rate["moved down a tier / 降级客户"] == pytest.approx(1 / 4)
    assert math.isnan(rate["customers this period / 本期客户"])
    recency = table.iloc[-3:]
    assert recency["customers"].sum() == 6  # every customer trading by 2010-12-31 has one status
    assert table.loc["customers of 3 years or more / 老客户(满3年)", "customers"] == 0


def test_rank_mode_moves_by_rank_tiers():
    moves = tier_moves(reference_rows(), PERIODS, Policy().with_values(tier_mode="rank"))
    assert moves.retained == 4 and moves.moved_up + moves.moved_down + moves.unchanged == 4


RECENCY_ROWS = [
    ("2010-10-03", "A", "invoice", 100),   # 90 days before 2011-01-01: still active
    ("2010-10-02", "B", "invoice", 100),   # 91 days: sleeping
    ("2010-01-01", "C", "invoice", 100),   # 365 days: still sleeping
    ("2009-12-31", "D", "invoice", 100),   # 366 days: lost
    ("2010-12-20", "E", "receipt", 100),   # a receipt is no trade: not listed
    ("2008-01-01", "F", "opening balance", 100), ("2010-12-01", "F", "invoice", 100),  # 3 whole years
    ("2008-01-02", "G", "invoice", 100), ("2010-12-15", "G", "invoice", 100),  # 2 years, 364 days
    ("2011-02-01", "H", "invoice", 100),   # after the date: not yet a customer
    ("2010-06-01", "I", "invoice", 100), ("2010-12-31", "I", "opening balance", 100),  # a later export's balance
    ("2010-12-01", "J", "opening balance", 100),  # no invoice: recency from the balance, at least 31 days
]


def test_recency_and_tenure_at_the_thresholds():
    table = customer_recency(ledger_rows(RECENCY_ROWS), pd.Timestamp("2011-01-01")).set_index("customer")
    assert list(table.index) == ["A", "B", "C", "D", "F", "G", "I", "J"]
    assert table["days_since_trade"].to_dict() == {"A": 90, "B": 91, "C": 365, "D": 366, "F": 31, "G": 17,
                                                   "I": 214, "J": 31}
    assert table["recency"].to_dict() == {"A": Recency.ACTIVE, "B": Recency.SLEEPING, "C": Recency.SLEEPING,
                                          "D": Recency.LOST, "F": Recency.ACTIVE, "G": Recency.ACTIVE,
                                          "I": Recency.SLEEPING, "J": Recency.ACTIVE}
    assert table.loc["F", "first_trade"] == pd.Timestamp("2008-01-01")
    assert table.loc["I", "last_trade"] == pd.Timestamp("2010-06-01")  # the last invoice, not the balance
    assert table["years_trading"].to_dict() == {"A": 0, "B": 0, "C": 1, "D": 1, "F": 3, "G": 2, "I": 0, "J": 0}
    assert list(table.index[table["long_standing"]]) == ["F"]


def test_recency_thresholds_are_policy():
    policy = Policy().with_values(sleeping_after_days=30, lost_after_days=91, long_standing_years=2)
    table = customer_recency(ledger_rows(RECENCY_ROWS), pd.Timestamp("2011-01-01"), policy).set_index("customer")
    assert table.loc[["A", "B", "C"], "recency"].tolist() == [Recency.SLEEPING, Recency.SLEEPING, Recency.LOST]
    assert sorted(table.index[table["long_standing"]]) == ["F", "G"]


@pytest.mark.parametrize("pairs, says", [
    ([("sleeping_after_days", 365), ("lost_after_days", 365)], "must be more than sleeping_after_days"),
    ([("long_standing_years", 0)], "long_standing_years: 0 must be 1 or more"),
    ([("raise_rate_gain", 5)], "raise_rate_gain: 5 is above 1"),
])
def test_impossible_thresholds_are_refused_naming_the_key(pairs, says):
    with pytest.raises(CrmInputError) as caught:
        Policy.from_pairs(pairs)
    assert says in str(caught.value)


presence = st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 1.5)), st.one_of(st.none(), st.floats(0, 1.5))),
                    min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(presence)
def test_new_plus_retained_are_this_periods_customers_and_lost_plus_retained_last_periods(customers):
    rows = [("2011-06-30", "Z", "receipt", 1)]  # at least one row
    for n, rates in enumerate(customers):
        for year, rate in zip((2009, 2010), rates):
            if rate is not None:
                rows += [(f"{year}-04-01", f"K{n}", "invoice", 1000), (f"{year}-05-01", f"K{n}", "receipt", round(1170 * rate, 2))]
    moves = tier_moves(ledger_rows(rows), TwoPeriods.ending_with(Period.year(2010)))
    assert moves.new + moves.retained == moves.customers_this == sum(r[1] is not None for r in customers)
    assert moves.lost + moves.retained == moves.customers_last == sum(r[0] is not None for r in customers)
