"""The sales funnel (003): customers a target needs per stage, promotion rates and the average deal."""
from decimal import Decimal
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.collection import Period
from crm_core.funnel import average_deal, funnel_plan, promotion_rates
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger


def counts(plan) -> dict[str, int]:
    return dict(zip(plan["stage"], plan["customers"].tolist()))


def test_the_material_s_target_needs_20_a_40_b_80_c_320_d_640_e():
    plan = funnel_plan(100_000_000, 5_000_000, [0.5, 0.25, 0.5, 0.5])  # 1,000,000 / 50,000 in cents
    assert counts(plan) == {"A": 20, "B": 40, "C": 80, "D": 320, "E": 640}
    assert plan["promotion_rate"].tolist()[1:] == [0.5, 0.5, 0.25, 0.5]  # B->A, C->B, D->C, E->D


def test_each_step_rounds_up_a_whole_customer():
    plan = funnel_plan(100_000_000, 3_000_000, [0.5, 0.5, 0.5, 0.5])  # 33.3 A customers
    assert counts(plan) == {"A": 34, "B": 68, "C": 136, "D": 272, "E": 544}
    assert counts(funnel_plan(1_000, 300, [1, 1, 1, 0.75]))["B"] == 6  # ceil(4 / 0.75) = ceil(5.33)


def test_rates_are_exact_decimals_not_binary_floats():
    # 21 / 0.7 in floats is 30.000000000000004, which a float ceil makes 31
    assert 21 / 0.7 > 30
    plan = funnel_plan(2_100, 100, [0.7, 0.7, 0.35, 0.7])
    assert counts(plan) == {"A": 21, "B": 30, "C": 86, "D": 123, "E": 176}
    assert counts(funnel_plan(2_100, 100, [Decimal("0.7"), Fraction(7, 10), 0.35, "0.7"])) == counts(plan)
    assert counts(funnel_plan(4_200, 100, [1, 1, 1, 0.35]))["B"] == 120  # 42 / 0.35, not 120.00000000000001


def test_a_zero_target_needs_nobody_and_a_rate_of_one_keeps_the_count():
    assert counts(funnel_plan(0, 100, [0.5, 0.5, 0.5, 0.5])) == dict.fromkeys("ABCDE", 0)
    assert set(counts(funnel_plan(1_000, 100, [1, 1, 1, 1])).values()) == {10}


@pytest.mark.parametrize("call, column, row", [
    (lambda: funnel_plan(100, 0, [0.5] * 4), "average_deal", None),
    (lambda: funnel_plan(100, -5, [0.5] * 4), "average_deal", None),
    (lambda: funnel_plan(-100, 5, [0.5] * 4), "target_sales", None),
    (lambda: funnel_plan(100, 5, [0.5, 0, 0.5, 0.5]), "conversion_rates", 2),
    (lambda: funnel_plan(100, 5, [0.5, 0.5, 1.5, 0.5]), "conversion_rates", 3),
    (lambda: funnel_plan(100, 5, [0.5, 0.5, 0.5, -0.1]), "conversion_rates", 4),
    (lambda: funnel_plan(100, 5, [float("nan"), 0.5, 0.5, 0.5]), "conversion_rates", 1),
    (lambda: funnel_plan(100, 5, [0.5, 0.5, 0.5]), "conversion_rates", None),
])
def test_impossible_inputs_are_refused_naming_the_argument(call, column, row):
    with pytest.raises(CrmInputError) as caught:
        call()
    assert (caught.value.issues[0].column, caught.value.issues[0].row) == (column, row)


def test_a_plan_beyond_what_excel_counts_exactly_is_refused():
    with pytest.raises(CrmInputError, match="check target_sales"):
        funnel_plan(10**15, 1, [0.01] * 4)


def test_every_bad_rate_is_named_at_once():
    with pytest.raises(CrmInputError) as caught:
        funnel_plan(100, 0, [0, 2, None, "x"])
    assert [(i.column, i.row) for i in caught.value.issues] == [
        ("average_deal", None), ("conversion_rates", 1), ("conversion_rates", 2), ("conversion_rates", 3),
        ("conversion_rates", 4)]
    assert "1.5" not in str(caught.value) and "2% or 0.02" in str(caught.value)


@given(st.integers(0, 10**7), st.integers(1, 10**9),
       st.lists(st.integers(1, 100), min_size=4, max_size=4))
def test_each_stage_is_the_smallest_count_whose_promotions_fill_the_stage_above(target, deal, percents):
    plan = counts(funnel_plan(target, deal, [p / 100 for p in percents]))
    assert plan["A"] * deal >= target > (plan["A"] - 1) * deal
    for (low, high), percent in zip([("E", "D"), ("D", "C"), ("C", "B"), ("B", "A")], percents):
        assert plan[low] * percent >= plan[high] * 100 > (plan[low] - 1) * percent


# ---------------------------------------------------------------- promotion rates


def test_promotion_counts_customers_reaching_the_next_stage_or_better():
    earlier = ["E", "E", "E", "E", "D", "D", "C", "B", "B", "A", None, "D"]
    later = ["D", "A", "E", "E", "C", "E", "B", "A", "B", "A", "A", None]
    table = promotion_rates(earlier, later).set_index("step")
    assert table.loc["E->D", ["customers", "promoted"]].tolist() == [4, 2]  # E -> D and E -> A
    assert table.loc["D->C", ["customers", "promoted"]].tolist() == [2, 1]  # the blank-later D left out
    assert table.loc["C->B", "rate"] == 1 and table.loc["B->A", "rate"] == 0.5
    assert table["rate"].tolist() == [0.5, 0.5, 1.0, 0.5]


def test_measured_rates_feed_the_plan_and_a_stage_nobody_held_has_no_rate():
    table = promotion_rates(["E", "E", "D", "d", "C", "B"], ["D", "E", "C", "E", "B", "a"])
    assert table["rate"].tolist() == [0.5, 0.5, 1.0, 1.0]
    assert counts(funnel_plan(1_000, 100, table["rate"]))["E"] == 40
    empty = promotion_rates(["E"], ["D"]).set_index("step")
    assert pd.isna(empty.loc["B->A", "rate"]) and empty.loc["B->A", "customers"] == 0


def test_unknown_stages_and_snapshots_of_different_lengths_are_refused_by_row():
    with pytest.raises(CrmInputError) as caught:
        promotion_rates(["E", "X", "D"], ["D", "E", "F"])
    assert [(i.column, i.row) for i in caught.value.issues] == [("earlier_stages", 2)]
    with pytest.raises(CrmInputError, match="one row per customer"):
        promotion_rates(["E", "D"], ["D"])


# ---------------------------------------------------------------- the average deal


def ledger_rows():
    frame = pd.DataFrame([
        ("2010-02-01", "A1", "invoice", 60_000), ("2010-03-01", "A1", "credit note", 10_000),
        ("2010-04-01", "A2", "invoice", 30_000), ("2010-05-01", "A3", "receipt", 5_000),
        ("2009-05-01", "A3", "invoice", 99_999), ("2010-06-01", "A4", "invoice", 0.01)],
        columns=["date", "customer", "type", "amount"])
    ledger = normalize_ledger(frame)
    assert ledger.errors == []
    return ledger.rows


def test_average_deal_is_the_mean_net_sales_of_the_customers_counted():
    year = Period.year(2010)
    every_buyer = average_deal(ledger_rows(), year)  # A1 50,000, A2 30,000, A4 0.01
    assert (every_buyer.cents, every_buyer.customers) == (2_666_667, 3)  # 80,000.01 / 3, half-up
    a_stage = average_deal(ledger_rows(), year, customers=["A1", "A2", "A3"])  # A3 bought nothing in 2010
    assert (a_stage.cents, a_stage.customers) == (2_666_667, 3)
    assert average_deal(ledger_rows(), year, customers=["A1"]).cents == 5_000_000
    assert average_deal(ledger_rows(), Period.year(2011)).customers == 0
