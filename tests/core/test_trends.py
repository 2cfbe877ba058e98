"""Raise candidates (调增候选): C7's collection rate improved and its sales grew (domain.md section 5)."""
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.collection import Period
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.review import review_ledger
from crm_core.trends import Direction, TwoPeriods, raise_candidates, raise_evidence

PERIODS = TwoPeriods.ending_with(Period.year(2010))


def paid(customer: str, year: int, net: int, rate: float) -> list[tuple]:
    """An invoice of `net` (VAT 17% in 2009-2010) and a receipt of rate x the gross amount."""
    return [(f"{year}-03-01", customer, "invoice", net), (f"{year}-09-01", customer, "receipt", round(net * 1.17 * rate, 2))]


def reference_frame() -> pd.DataFrame:
    """C7 pays better and buys more; B117 buys more but pays worse; C3 pays better but buys less;
    D24 is unchanged; N1 is new in 2010; L1 stopped buying after 2009."""
    rows = (paid("C7", 2009, 400_000, 0.78) + paid("C7", 2010, 500_000, 0.86)
            + paid("B117", 2009, 800_000, 0.90) + paid("B117", 2010, 900_000, 0.80)
            + paid("C3", 2009, 300_000, 0.70) + paid("C3", 2010, 250_000, 0.75)
            + paid("D24", 2009, 200_000, 0.60) + paid("D24", 2010, 200_000, 0.60)
            + paid("N1", 2010, 50_000, 1.0) + paid("L1", 2009, 60_000, 1.0)
            + [("2010-12-31", "C7", "receipt", 0)])  # the ledger runs to year end: 2010 is complete
    return pd.DataFrame(rows, columns=["date", "customer", "type", "amount"])


def reference_rows() -> pd.DataFrame:
    ledger = normalize_ledger(reference_frame())
    assert ledger.errors == []
    return ledger.rows


def evidence(policy: Policy | None = None) -> pd.DataFrame:
    return raise_evidence(reference_rows(), PERIODS, policy).set_index("customer")


def test_c7_is_the_raise_candidate_with_its_evidence():
    found = evidence()
    c7 = found.loc["C7"]
    assert (c7["sales_last_cents"], c7["sales_this_cents"]) == (40_000_000, 50_000_000)
    assert c7["sales_change_cents"] == 10_000_000 and c7["sales_growth"] == pytest.approx(0.25)
    assert (c7["rate_last"], c7["rate_this"]) == (pytest.approx(0.78), pytest.approx(0.86))
    assert c7["rate_change"] == pytest.approx(0.08)
    assert c7["rate_direction"] == Direction.UP and c7["sales_direction"] == Direction.UP
    assert c7["evidence"] == ("collection rate 78.0% -> 86.0% (+8.0 pts); sales 400,000.00 -> 500,000.00 (+25.0%); "
                              "raise candidate: rate improved, sales grew / 调增候选：回款率提高，销售增长")
    assert list(raise_candidates(raise_evidence(reference_rows(), PERIODS))["customer"]) == ["C7"]


def test_the_others_are_not_candidates_and_say_why():
    found = evidence()
    assert not found.loc[["B117", "C3", "D24", "N1", "L1"], "candidate"].any()
    assert found.loc["B117", "rate_direction"] == Direction.DOWN and "rate did not improve" in found.loc["B117", "evidence"]
    assert found.loc["C3", "sales_direction"] == Direction.DOWN and "sales did not grow" in found.loc["C3", "evidence"]
    assert found.loc["D24", "rate_direction"] == Direction.FLAT and found.loc["D24", "sales_direction"] == Direction.FLAT
    for new_or_lost in ("N1", "L1"):
        assert found.loc[new_or_lost, "rate_direction"] == Direction.NONE
        assert "no rate in one of the periods" in found.loc[new_or_lost, "evidence"]
    assert math.isnan(found.loc["N1", "sales_growth"])  # nothing last year to grow from


def test_each_years_rate_is_the_rate_the_review_of_that_year_shows():
    found = evidence()
    for year, column in ((2009, "rate_last"), (2010, "rate_this")):
        review = review_ledger(normalize_ledger(reference_frame()), year=year)
        rated = review.register.set_index("customer")["collection_rate"].dropna()
        assert found.loc[rated.index, column].to_numpy() == pytest.approx(rated.to_numpy())


@pytest.mark.parametrize("key, value, c7_stays", [("raise_rate_gain", 0.05, True), ("raise_rate_gain", 0.08, False),
                                                  ("raise_sales_growth", 0.2, True), ("raise_sales_growth", 0.25, False)])
def test_the_policy_thresholds_are_strict_lower_bounds(key, value, c7_stays):
    assert bool(evidence(Policy().with_values(**{key: value})).loc["C7", "candidate"]) is c7_stays


def test_periods_default_to_the_same_dates_a_year_earlier_and_must_not_overlap():
    assert PERIODS.last == Period.year(2009)
    with pytest.raises(CrmInputError) as caught:
        raise_evidence(reference_rows(), TwoPeriods(Period.year(2010), Period.year(2010)))
    assert caught.value.issues[0].column == "last_period"


years = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)), min_size=2, max_size=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(years, min_size=1, max_size=8))
def test_a_candidate_always_paid_better_and_bought_more(customers):
    rows = []
    for n, ((sales_a, cash_a), (sales_b, cash_b)) in enumerate(customers):
        for year, sales, cash in ((2009, sales_a, cash_a), (2010, sales_b, cash_b)):
            rows += [(f"{year}-02-01", f"K{n}", "invoice", sales / 100), (f"{year}-05-01", f"K{n}", "receipt", cash / 100)]
    ledger = normalize_ledger(pd.DataFrame(rows, columns=["date", "customer", "type", "amount"]))
    found = raise_evidence(ledger.rows, PERIODS)
    assert (found["sales_change_cents"] == found["sales_this_cents"] - found["sales_last_cents"]).all()
    chosen = found[found["candidate"]]
    assert (chosen["rate_this"] > chosen["rate_last"]).all()
    assert (chosen["sales_this_cents"] > chosen["sales_last_cents"]).all()
    assert set(raise_candidates(found)["customer"]) == set(chosen["customer"])
