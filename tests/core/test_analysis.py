"""Around the core: ageing, tier migration, debtor/customer overlap, lifetime value."""
import pandas as pd
import pytest

from crm_core.analysis import aging, lifetime_value, overlap, tier_migration
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy


def test_ageing_settles_oldest_invoices_first():
    raw = pd.DataFrame([
        ("2024-01-01", "A", "invoice", 100, "2024-01-31"),   # 150 days past due on 2024-06-29
        ("2024-05-01", "A", "invoice", 100, "2024-05-31"),   # 29 days past due
        ("2024-06-01", "A", "receipt", 113, None),            # pays the January invoice
        ("2024-03-01", "B", "invoice", 200, None),            # due 2024-03-31 by terms: 90 days
    ], columns=["date", "customer", "type", "amount", "due_date"])
    table = aging(normalize_ledger(raw).rows, pd.Timestamp("2024-06-29"), Policy(vat_table={"2000-01-01": 0.13}))
    table = table.set_index("customer")
    assert table.loc["A", "1-30"] == 11300 and table.loc["A", "90+"] == 0
    assert table.loc["B", "61-90"] == 22600
    assert (table["total"] == table[["current / 未到期", "1-30", "31-60", "61-90", "90+", "credit / 未核销"]].sum(axis=1)).all()


def test_tier_migration_matrix():
    matrix = tier_migration(["A", "B", "B", "C", "D"], ["A", "A", "C", "C", "D"], labels="ABCD")
    assert matrix.loc["B", "A"] == 1 and matrix.loc["B", "C"] == 1 and matrix.values.sum() == 5


def test_overlap_of_top_debtors_and_key_customers():
    # 4 customers; top-2 by sales are K1, K2; top-2 debtors are K2, K3
    table = overlap(["K1", "K2", "K3", "K4"], [900, 800, 100, 50], [10, 300, 500, 20], n=2)
    rows = table.set_index("group")
    both = rows.filter(like="are key", axis=0).iloc[0]
    not_key = rows.filter(like="not key", axis=0).iloc[0]
    assert (both["customers"], both["receivables_cents"]) == (1, 300)
    assert (not_key["customers"], not_key["receivables_cents"]) == (1, 500)
    assert rows.iloc[-1]["receivables_cents"] == 830


def test_lifetime_value_of_the_brief_is_180000_not_360000():
    assert lifetime_value(1500, 10) == 180_000
    assert lifetime_value(1500, 10, margin=0.2, retention=0.9, discount_rate=0.08) == pytest.approx(
        sum(1500 * 12 * 0.2 * 0.9**t / 1.08**t for t in range(10)))


def test_one_company_under_three_names_is_flagged():
    from crm_core.analysis import likely_duplicates

    table = likely_duplicates(["C1", "C2", "C3", "C4"],
                              ["华信医药有限公司", "华信医药", " 华信 医药（有限公司）", "仁和医药"])
    assert len(table) == 1
    assert table.loc[0, "customers"] == "C1, C2, C3" and table.loc[0, "count"] == 3


def test_relationship_kpis_between_two_reviews():
    from crm_core.analysis import relationship_kpis

    old = pd.Series({"a": "A", "b": "C", "c": "B", "lost": "D"})
    new = pd.Series({"a": "B", "b": "A", "c": "B", "new": "C"})
    assert relationship_kpis(old, new) == {"new": 1, "lost": 1, "moved_up": 1, "moved_down": 1, "unchanged": 1}


def test_a_customer_sued_by_others_is_at_most_c():
    from crm_core.tiers import cap_tiers

    assert list(cap_tiers(["A", "B", "C", "D", "unrated"], [True, False, True, True, True])) == \
        ["C", "B", "C", "D", "unrated"]


def test_overlap_compares_the_policys_top_n_unless_told():
    customers, sales, balances = ["K1", "K2", "K3", "K4"], [900, 800, 100, 50], [10, 300, 500, 20]
    default = overlap(customers, sales, balances)  # 100 by default: every customer is "top"
    assert default.set_index("group").iloc[2]["customers"] == 4
    by_policy = overlap(customers, sales, balances, policy=Policy(overlap_top_n=2))
    assert by_policy.equals(overlap(customers, sales, balances, n=2))
    assert overlap(customers, sales, balances, n=1, policy=Policy(overlap_top_n=2)).iloc[2]["customers"] == 1
