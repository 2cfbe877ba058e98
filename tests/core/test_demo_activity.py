"""The demo's customer file: every stage tier held, an owner for every customer, and exactly the
planted pairs that share a phone or an address found as likely duplicates."""
from __future__ import annotations

import pandas as pd
import pytest

from crm_core.analysis import likely_duplicates
from crm_core.demo import demo_ledger
from crm_core.demo_activity import DUPLICATE_PAIRS, STAFF, demo_customer_file
from crm_core.ledger import normalize_ledger
from crm_core.review import review_ledger
from crm_core.tiers import stage_tiers


@pytest.fixture(scope="module")
def review():
    return review_ledger(normalize_ledger(demo_ledger(), source="demo"))


@pytest.fixture(scope="module")
def file(review):
    reg = review.register
    return demo_customer_file(reg["customer"], reg["net_sales_cents"], review.period.end)


def test_every_stage_tier_is_held_and_every_customer_has_an_owner(review, file):
    tiers = pd.Series(stage_tiers(file["need"], file["expected_close"], review.period.end))
    counts = tiers.value_counts()
    assert set(counts.index) == set("ABCDE") and counts.min() >= 10
    assert counts["A"] < counts["D"]  # a funnel: few close within the month
    assert set(file["owner"]) == set(STAFF)
    assert file["customer"].tolist() == review.register["customer"].tolist()


def test_only_the_planted_pairs_share_a_phone_or_an_address(review, file):
    names = review.register["customer_name"]
    by_contact = likely_duplicates(file["customer"], [f"n{i}" for i in range(len(file))], file["address"], file["phone"])
    assert len(by_contact) == DUPLICATE_PAIRS and set(by_contact["count"]) == {2}
    # the demo's names are distinct companies: no group by name alone
    assert likely_duplicates(file["customer"], names).empty


def test_the_same_customers_give_the_same_file(review, file):
    reg = review.register
    again = demo_customer_file(reg["customer"], reg["net_sales_cents"], review.period.end)
    pd.testing.assert_frame_equal(again, file)
