"""Sales-stage tiers on the review date, per-customer payment terms, tenure and the duplicate flag
(domain.md sections 3 and 10): the core rules the Register's columns show."""
from __future__ import annotations

import pandas as pd
import pytest

from crm_core.analysis import (
    aging,
    checked_terms,
    due_dates,
    duplicate_flags,
    first_trade_dates,
    tenure_years,
)
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.tiers import stage_tiers

AS_OF = pd.Timestamp("2025-12-31")


@pytest.mark.parametrize(("need", "close", "tier"), [
    ("有", "2026-01-31", "A"),  # within 1 month: EDATE(2025-12-31, 1) = 2026-01-31
    ("yes", "2026-02-01", "B"),
    ("有", "2026-03-31", "B"),
    ("有", "2026-06-30", "C"),
    ("有", "2026-07-01", "D"),  # later than 6 months
    ("有", None, "D"),  # a clear need with no date yet
    ("潜在", "2026-01-15", "D"),  # potential need, whatever the date
    ("potential", None, "D"),
    ("无", "2026-01-15", "E"),
    ("no", None, "E"),
    ("", None, ""),
    ("maybe not", None, ""),  # not understood: blank, reported by the reader
])
def test_stage_tier_from_need_and_expected_close(need, close, tier):
    assert stage_tiers([need], [close], AS_OF).tolist() == [tier]


def test_stage_horizons_are_policy():
    policy = Policy().with_values(stage_months={"A": 2.0, "B": 3.0, "C": 6.0})
    assert stage_tiers(["有"], ["2026-02-20"], AS_OF, policy=policy).tolist() == ["A"]
    assert stage_tiers(["有"], ["2026-02-20"], AS_OF).tolist() == ["B"]


def _ledger() -> pd.DataFrame:
    raw = pd.DataFrame({
        "date": ["2025-10-01", "2025-10-01", "2025-10-01", "2025-01-01"],
        "customer": ["C1", "C2", "C3", "C3"],
        "type": ["invoice", "invoice", "invoice", "opening_balance"],
        "amount": [1000, 1000, 1000, 500],
        "vat_rate": [0, 0, 0, 0],
    })
    return normalize_ledger(raw).rows


def test_customer_terms_override_the_policy_for_due_dates():
    rows = _ledger()
    due = pd.Series(due_dates(rows, Policy(), {"C2": 90, "C3": 0}), index=rows["customer"].to_numpy())
    assert due.tolist() == [pd.Timestamp("2025-10-31"),  # C1: the policy's 30 days
                            pd.Timestamp("2025-12-30"),  # C2: its own 90 days
                            pd.Timestamp("2025-10-01"),  # C3: cash on delivery
                            pd.Timestamp("2025-01-01")]  # a balance brought forward: due on its date


def test_customer_terms_move_the_ageing():
    rows = _ledger()
    on = pd.Timestamp("2025-12-15")
    plain = aging(rows, on, Policy()).set_index("customer")
    own = aging(rows, on, Policy(), terms_days={"C1": 90}).set_index("customer")
    assert plain.loc["C1", "current / 未到期"] == 0 and own.loc["C1", "current / 未到期"] == 1000_00
    assert (plain.loc["C2"] == own.loc["C2"]).all()


@pytest.mark.parametrize("bad", [-1, 1.5, "thirty", True, float("inf")])
def test_bad_terms_are_refused_naming_the_customer(bad):
    with pytest.raises(CrmInputError) as err:
        checked_terms({"C9": bad})
    assert "C9" in str(err.value.issues[0].message) and err.value.issues[0].column == "terms_days"


def test_blank_terms_take_the_policy():
    assert checked_terms({"C1": None, "C2": "", "C3": 45.0}) == {"C3": 45}


def test_tenure_counts_whole_years_to_the_review_date():
    since = ["2020-12-31", "2021-01-01", "2025-12-31", "2026-01-01", None, "not a date"]
    assert tenure_years(since, AS_OF) == [5, 4, 0, None, None, None]


def test_trading_since_defaults_to_the_first_ledger_date():
    first = first_trade_dates(_ledger())
    assert first.to_dict() == {"C1": pd.Timestamp("2025-10-01"), "C2": pd.Timestamp("2025-10-01"),
                               "C3": pd.Timestamp("2025-01-01")}


def test_duplicate_flag_names_the_other_codes_and_the_reason():
    """C0123 and C0300 share a name stem, C0123 and C0400 a phone, C0400 and C0200 an address:
    one group of four (linked through each other), each flag naming what its own code shares."""
    flags = duplicate_flags(["C0123", "C0200", "C0300", "C0400"],
                            ["山西煤业有限公司", "太原物流", "山西煤业", "北京康泰"],
                            [None, "太原市迎泽区新建路10号", None, "太原迎泽区新建路 10 号"],
                            ["0351-1234567", None, None, "(0351) 123 4567"])
    assert flags == [
        "可能重复 possible duplicate of C0200, C0300, C0400 (same name / 名称相同; same phone / 电话相同)",
        "可能重复 possible duplicate of C0123, C0300, C0400 (same address / 地址相同)",
        "可能重复 possible duplicate of C0123, C0200, C0400 (same name / 名称相同)",
        "可能重复 possible duplicate of C0123, C0200, C0300 (same phone / 电话相同; same address / 地址相同)",
    ]


def test_no_duplicates_no_flags():
    assert duplicate_flags(["C1", "C2"], ["甲公司", "乙公司"]) == ["", ""]


def test_a_big_group_is_counted_not_listed():
    codes = [f"C{i:02d}" for i in range(10)]
    flags = duplicate_flags(codes, [f"公司{chr(0x4e00 + 37 * i)}{i}" for i in range(10)], None, ["0351-1234567"] * 10)
    assert flags[0] == "可能重复 possible duplicate of C01, C02, C03, C04, C05 +4 more / 等 (same phone / 电话相同)"
