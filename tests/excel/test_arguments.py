"""Arguments that used to mislead silently: each is understood as meant or refused with one message
naming the argument, in the core (so worksheet functions, CLI and macros all get it).

The one rule for rates and shares (cut-offs, Pareto cut-offs, rank shares, credit ratio, VAT):
a fraction from 0 to 1. A number above 1 (95 for 95%) is refused, never read as a percent.
"""
from __future__ import annotations

import inspect
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.credit import allocate_credit, credit_budget_cents
from crm_core.issues import CrmInputError
from crm_core.policy import Policy
from crm_core.review import review_facts
from crm_core.tiers import pair_cutoffs, pareto_tiers, rank_tiers, rate_tiers
from tests.support.xlwings_offline import MISSING_ARG, call_like_excel

RATES = (0.96, 0.65, 0.90, 0.75, 0.95, 0.70)
EXPECTED = ["A", "D", "B", "C", "A", "C"]  # A >= 95%, B >= 85%, C >= 70%, else D


def col(*values):
    return tuple((v,) for v in values)



# ----------------------------------------------------------------- cut-offs in any order


@pytest.mark.parametrize("order", list(itertools.permutations((0.95, 0.85, 0.70))))
def test_crm_tier_understands_cutoffs_in_any_order(addin, order):
    tiers = call_like_excel(addin.crm_tier, col(*RATES), col(*order))
    assert [t[0] for t in tiers] == EXPECTED


def test_crm_tier_pairs_own_labels_best_first_whatever_the_cutoff_order(addin):
    tiers = call_like_excel(addin.crm_tier, col(0.9, 0.7, 0.5), col(0.65, 0.85), col("good", "fair", "poor"))
    assert [t[0] for t in tiers] == ["good", "fair", "poor"]


def test_crm_pareto_tier_understands_cutoffs_in_any_order(addin):
    sales = col(700.0, 200.0, 60.0, 40.0)
    assert call_like_excel(addin.crm_pareto_tier, sales, col(0.9, 0.7)) == \
        call_like_excel(addin.crm_pareto_tier, sales, col(0.7, 0.9)) == [["A"], ["B"], ["C"], ["C"]]


def test_a_cutoff_given_twice_is_refused_not_an_empty_tier(addin):
    result = call_like_excel(addin.crm_tier, col(*RATES), col(0.95, 0.95, 0.70))
    assert result.startswith("#VALUE! cutoffs: 0.95 is given twice")


def test_a_label_given_twice_is_refused(addin):
    result = call_like_excel(addin.crm_tier, col(*RATES), MISSING_ARG, col("A", "B", "C", "A"))
    assert result.startswith("#VALUE! labels: 'A' is given twice")


@settings(max_examples=200, deadline=None)
@given(st.permutations([0.95, 0.85, 0.70]), st.lists(st.floats(0, 2, allow_nan=False), max_size=30))
def test_any_permutation_of_rate_cutoffs_gives_the_same_tiers(bounds, rates):
    assert list(rate_tiers(rates, pair_cutoffs(bounds, ["A", "B", "C"]), lowest="D")) == list(rate_tiers(rates))


@settings(max_examples=200, deadline=None)
@given(st.permutations([0.7, 0.9]), st.lists(st.floats(0, 1e9, allow_nan=False), max_size=30))
def test_any_permutation_of_pareto_cutoffs_gives_the_same_tiers(bounds, sales):
    assert list(pareto_tiers(sales, pair_cutoffs(bounds, ["A", "B"], best="lowest"), rest="C")) \
        == list(pareto_tiers(sales))


# ----------------------------------------------------------------- whole-number percents


@pytest.mark.parametrize("func, args, message", [
    ("crm_tier", (col(*RATES), col(95.0, 85.0, 70.0)), "#VALUE! cutoffs: 95 is above 1; write 95% or 0.95"),
    ("crm_tier", (col(*RATES), col(20.0, 30.0, 30.0, 20.0), MISSING_ARG, "rank"),
     "#VALUE! cutoffs: 20 is above 1; write 20% or 0.2"),
    ("crm_pareto_tier", (col(700.0, 300.0), col(70.0, 90.0)), "#VALUE! cutoffs: 70 is above 1; write 70% or 0.7"),
    ("crm_credit_budget", (40_000_000.0, 20.0, 0.17), "#VALUE! ratio: 20 is above 1; write 20% or 0.2"),
    ("crm_credit_budget", (40_000_000.0, 0.2, 17.0), "#VALUE! vat_rate: 17 is above 1; write 17% or 0.17"),
    ("crm_credit_budget", (40_000_000.0, 0.2, 1.0), "#VALUE! vat_rate: 1 is not below 1; write 1% or 0.01"),
    ("crm_collection_rate", (117.0, 100.0, 17.0), "#VALUE! vat_rate: 17 is above 1; write 17% or 0.17"),
])
def test_a_whole_number_percent_is_refused_naming_the_argument(addin, func, args, message):
    result = call_like_excel(getattr(addin, func), *args)
    assert isinstance(result, str) and result.startswith(message), result
    assert " / " in result  # bilingual, like the rest of the product's messages


def test_percent_cells_and_fractions_are_the_same(addin):
    assert call_like_excel(addin.crm_credit_budget, 40_000_000.0, "20%", "17%") == 9_360_000.0
    assert call_like_excel(addin.crm_credit_budget, 40_000_000.0, 0.2, 0.17) == 9_360_000.0
    tiers = call_like_excel(addin.crm_tier, col(*RATES), col("95%", "85%", "70%"))
    assert [t[0] for t in tiers] == EXPECTED


def test_rank_shares_must_add_up_to_one(addin):
    result = call_like_excel(addin.crm_tier, col(*RATES), col(0.2, 0.3, 0.3, 0.1), MISSING_ARG, "rank")
    assert result.startswith("#VALUE! cutoffs: the shares add up to 0.9, not 1")


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 1e6, exclude_min=True, allow_nan=False))
def test_every_rate_above_one_is_refused_by_the_core(x):
    for call, name in [(lambda: credit_budget_cents(10**9, x, 0.13), "ratio"),
                       (lambda: credit_budget_cents(10**9, 0.2, x), "vat_rate"),
                       (lambda: rate_tiers([0.5], {"A": x, "B": 0.5}), "cutoffs"),
                       (lambda: pareto_tiers([1.0], {"A": x}), "cutoffs"),
                       (lambda: rank_tiers([0.5], {"A": x, "B": 1 - x}), "shares")]:
        with pytest.raises(CrmInputError) as info:
            call()
        assert info.value.issues[0].column == name
        assert info.value.issues[0].message.startswith(f"{name}: ")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12), st.floats(0, 1), st.floats(0, 1, exclude_max=True))
def test_every_fraction_is_accepted_by_the_budget(sales, ratio, vat):
    assert credit_budget_cents(sales, ratio, vat) >= 0


# ----------------------------------------------------------------- the policy, same rule


@pytest.mark.parametrize("key, value", [("credit_ratio", 20), ("vat.2019-04-01", 17), ("rate_cutoff.A", 95),
                                        ("pareto_cutoff.A", 70), ("rank_share.A", 20)])
def test_a_policy_percent_written_as_a_whole_number_is_refused_naming_the_key(key, value):
    with pytest.raises(CrmInputError) as info:
        Policy.from_pairs([(key, value)])
    assert info.value.issues[0].message.startswith(f"{key}: {value} is above 1; write {value}% or ")


def test_a_policy_file_with_credit_ratio_20_is_refused(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text("credit_ratio = 20\n[vat]\n\"2019-04-01\" = 17\n", encoding="utf-8")
    with pytest.raises(CrmInputError) as info:
        Policy.load(path)
    messages = [i.message for i in info.value.issues]
    assert any(m.startswith("credit_ratio: 20 is above 1") for m in messages)
    assert any(m.startswith("vat.2019-04-01: 17 is above 1") for m in messages)
    assert all(i.source == str(path) for i in info.value.issues)


def test_a_policy_may_write_percent_text():
    policy = Policy.from_pairs([("credit_ratio", "20%"), ("vat.2019-04-01", "13%")])
    assert policy.credit_ratio == pytest.approx(0.2) and policy.vat_table == {"2019-04-01": pytest.approx(0.13)}


def test_the_policy_sheet_of_a_udf_is_refused_the_same_way(addin):
    result = call_like_excel(addin.crm_credit_budget, 40_000_000.0, MISSING_ARG, MISSING_ARG,
                             (("key", "value"), ("credit_ratio", 20.0)))
    assert result.startswith("#VALUE! credit_ratio: 20 is above 1; write 20% or 0.2")


# ----------------------------------------------------------------- budget and tier weights


def test_a_negative_budget_is_refused_naming_budget(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("K1", "K2"), col("A", "B"), col(2.0, 3.0), -5.0)
    assert result.startswith("#VALUE! budget -5.00 must not be negative")
    with pytest.raises(CrmInputError) as info:
        allocate_credit(["A"], [100], -1)
    assert info.value.issues[0].column == "budget"


def test_a_tier_without_a_weight_is_refused_naming_tier_and_argument(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("K1", "K2", "K3"), col("A", "E", "E"),
                             col(2.0, 3.0, 5.0), 100.0)
    assert result.startswith("#VALUE! row 2 (tiers): tier 'E' has no weight in tier_weights"), result
    with pytest.raises(CrmInputError, match="tier 'X' has no weight"):
        allocate_credit(["A", "X"], [100, 100], 200, weights={"A": 1.0})


def test_a_blank_tier_is_refused(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("K1", "K2"), col("A", None), col(2.0, 3.0), 100.0)
    assert result.startswith("#VALUE! row 2: tiers is blank")


def test_a_blank_weight_is_refused_not_computed_with(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("K1", "K2"), col("A", "D"), col(2.0, 3.0), 100.0,
                             (("tier", "weight"), ("D", None)))
    assert result.startswith("#VALUE! tier_weights: the weight of 'D' is blank"), result


def test_unrated_gets_no_line_and_an_explicit_zero_weight_is_cash_on_delivery(addin):
    lines = call_like_excel(addin.crm_allocate_credit, col("K1", "K2", "K3"), col("A", "D", "unrated"),
                            col(2.0, 3.0, None), 100.0, (("tier", "weight"), ("D", 0.0)))
    assert [r[0] for r in lines] == [100.0, 0.0, 0.0]
    assert list(allocate_credit(["A", "unrated"], [100, 50], 100, weights={"A": 1.0})) == [100, 0]
    named = allocate_credit(["A", "unrated"], [100, 50], 150, weights={"A": 1.0, "unrated": 1.0}, unit_cents=1)
    assert list(named) == [100, 50]  # a weight given to the unrated status is used


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=4).filter(lambda t: t.strip() and t not in ("A", "unrated")))
def test_any_tier_missing_from_the_weights_is_refused(label):
    with pytest.raises(CrmInputError) as info:
        allocate_credit(["A", label], [100, 100], 200, weights={"A": 1.0})
    issue = info.value.issues[0]
    assert issue.row == 2 and issue.column == "tiers" and repr(label) in issue.message


def test_the_register_review_still_gives_unrated_customers_nothing():
    """The register passes the unrated status to allocate_credit: it must get 0, not an error."""
    facts = pd.DataFrame({"customer": ["K1", "K2", "K3"], "customer_name": ["", "", ""],
                          "net_sales_cents": [300_00, 100_00, 0], "collections_cents": [0, 0, 0],
                          "collection_rate": [0.97, 0.6, np.nan], "rate_status": ["", "", ""],
                          "open_balance_cents": [0, 0, 0]})
    review = review_facts(facts, 2024, Policy())
    assert list(review.register["rate_tier"]) == ["A", "D", "unrated"]
    assert review.register["credit_line_cents"].iloc[2] == 0
    assert review.register["credit_line_cents"].sum() == review.budget_cents > 0


# ----------------------------------------------------------------- keyword arguments from Python


def test_worksheet_functions_take_the_keyword_arguments_their_signature_shows():
    from udfs.credit import crm_credit_budget
    from udfs.tiers import crm_tier

    rates = col(0.9, 0.5, 0.8)
    assert crm_tier(rates, mode="rank") == crm_tier(rates, None, None, "rank")
    assert [r[0] for r in crm_tier(rates=rates, cutoffs=col(0.6, 0.85), labels=col("x", "y", "z"))] \
        == ["x", "z", "y"]
    assert crm_credit_budget(40_000_000.0, vat_rate=0.17) == 9_360_000.0
    assert list(inspect.signature(crm_tier).parameters) == ["rates", "cutoffs", "labels", "mode", "policy"]
    with pytest.raises(TypeError):
        crm_tier(rates, mood="rank")  # a typo from Python is a programming error, not a cell message
