"""Each worksheet function of the catalogue, called the way Excel calls it."""
from __future__ import annotations

import datetime as dt

import pytest

from crm_core.policy import Policy
from crm_core.schema import RateStatus
from tests.support.xlwings_offline import EXCEL_ERROR_CODES, MISSING_ARG, call_like_excel


def col(*values):
    return tuple((v,) for v in values)


def day(*ymd):
    return dt.datetime(*ymd)


def dates_of(cells):
    return [c.date() if isinstance(c, dt.datetime) else c for c in cells]



def test_tier_by_policy_cutoffs_with_unrated_blanks_and_error_cells(addin):
    rates = col(0.95, 0.9499999999, 0.85, 0.70, 0.69, None, EXCEL_ERROR_CODES["#DIV/0!"], 1.2)
    tiers = call_like_excel(addin.crm_tier, rates)
    assert [t[0] for t in tiers] == ["A", "A", "B", "C", "D", "unrated", "unrated", "A"]


def test_tier_with_own_cutoffs_labels_and_rank_mode(addin):
    rates = col(0.9, 0.8, 0.7, 0.6, 0.5)
    own = call_like_excel(addin.crm_tier, rates, col(0.85, 0.65), col("good", "fair", "poor"))
    assert [t[0] for t in own] == ["good", "fair", "fair", "poor", "poor"]
    ranked = call_like_excel(addin.crm_tier, rates, MISSING_ARG, MISSING_ARG, "rank")
    assert [t[0] for t in ranked] == ["A", "B", "B", "C", "D"]
    wrong = call_like_excel(addin.crm_tier, rates, col(0.85, 0.65), col("good", "poor"))
    assert wrong == "#VALUE! labels: 2 label(s) given, 3 needed"


def test_tier_of_a_row_spills_across(addin):
    assert call_like_excel(addin.crm_tier, ((0.96, 0.5),)) == [["A", "D"]]


def test_pareto_tier(addin):
    tiers = call_like_excel(addin.crm_pareto_tier, col(700.0, 200.0, 60.0, 40.0, 0.0))
    assert [t[0] for t in tiers] == ["A", "B", "C", "C", "C"]
    own = call_like_excel(addin.crm_pareto_tier, col(700.0, 200.0, 60.0, 40.0), col(0.5,), col("key", "other"))
    assert [t[0] for t in own] == ["key", "other", "other", "other"]


def test_stage_tier_and_follow_up(addin):
    as_of = day(2024, 1, 1)
    needs = col("有", "yes", "明确", "潜在", "无", "有", "maybe?")
    close = col(day(2024, 1, 20), day(2024, 3, 1), day(2024, 6, 30), None, None, day(2025, 1, 1), None)
    tiers = call_like_excel(addin.crm_stage_tier, needs, close, as_of)
    assert [t[0] for t in tiers[:6]] == ["A", "B", "C", "D", "E", "D"]
    assert tiers[6][0].startswith("#VALUE! row 7 (need): 'maybe?'")
    due = call_like_excel(addin.crm_follow_up_due, col("A", "B", "C", "D", "E"),
                          col(*[day(2024, 1, 1)] * 5), day(2024, 1, 10))
    assert dates_of(r[0] for r in due) == [dt.date(2024, 1, 2), dt.date(2024, 1, 8), dt.date(2024, 1, 16),
                                           dt.date(2024, 1, 31), ""]
    assert [r[1] for r in due] == [8.0, 2.0, 0.0, 0.0, ""]


def test_allocate_credit_adds_up_to_the_budget(addin):
    customers = col("A1", "B1", "C1", "D1", "U1")
    tiers = col("A", "B", "C", "D", "unrated")
    sales = col(5_000_000.0, 3_000_000.0, 1_500_000.0, 500_000.0, None)
    lines = call_like_excel(addin.crm_allocate_credit, customers, tiers, sales, 9_360_000.0)
    assert [r[0] for r in lines] == [4_680_000.0, 2_808_000.0, 1_404_000.0, 468_000.0, 0.0]
    cod = call_like_excel(addin.crm_allocate_credit, customers, tiers, sales, 9_360_000.0,
                          (("tier", "weight"), ("D", 0.0)), 1000.0)
    values = [r[0] for r in cod]
    assert values[3] == 0.0 and sum(values) == 9_360_000.0
    assert all(v % 1000 == 0 for v in values)


def test_suggest_cuts_total_exactly_the_amount_and_respect_balances(addin):
    customers = col("C7", "B117", "C3", "D24")
    lines = col(500_000.0, 200_000.0, 300_000.0, 400_000.0)
    balances = col(450_000.0, 150_000.0, 200_000.0, 250_000.0)
    rates = col(1.0, 0.6, 0.8, None)
    table = call_like_excel(addin.crm_suggest_cuts, customers, lines, balances, rates, 100_000.0, "C7")
    assert table[0][:2] == ["customer / 客户", "cut / 调减"]
    cuts = {r[0]: r[1] for r in table[1:]}
    assert sum(cuts.values()) == 100_000.0 and "C7" not in cuts
    assert cuts["B117"] <= 50_000.0  # never below the open balance
    short = call_like_excel(addin.crm_suggest_cuts, customers, lines, balances, rates, 10_000_000.0)
    assert short.startswith("#VALUE!") and "可调减额度不足" in short


LEDGER = (("date", "customer", "type", "amount", "due date"),
          (day(2024, 1, 1), "X", "invoice", 1000.0, day(2024, 1, 31)),
          (day(2024, 3, 1), "X", "invoice", 500.0, None),
          (day(2024, 3, 5), "X", "receipt", 300.0, None),
          (day(2024, 2, 1), "Y", "invoice", 200.0, None))


def test_aging_table(addin):
    table = call_like_excel(addin.crm_aging, LEDGER, day(2024, 5, 1), MISSING_ARG, (("vat.1994-01-01", 0.13),))
    assert table[0] == ["customer / 客户", "current / 未到期", "1-30", "31-60", "61-90", "90+", "credit / 未核销", "total"]
    x = table[1]
    assert x[0] == "X" and x[-1] == pytest.approx(1000 * 1.13 + 500 * 1.13 - 300)
    assert sum(x[1:-1]) == pytest.approx(x[-1])
    own = call_like_excel(addin.crm_aging, LEDGER, day(2024, 5, 1), col(30.0, 60.0))
    assert own[0] == ["customer / 客户", "current / 未到期", "1-30", "31-60", "60+", "credit / 未核销", "total"]
    assert call_like_excel(addin.crm_aging, LEDGER, None).startswith("#VALUE!")


def test_tier_migration_matrix(addin):
    table = call_like_excel(addin.crm_tier_migration, col("A", "B", "C", "D", "B"), col("A", "A", "D", "C", "B"))
    assert table[0] == ["old \\ new / 原\\新", "A", "B", "C", "D"]
    assert table[2] == ["B", 1.0, 1.0, 0.0, 0.0]
    assert sum(sum(r[1:]) for r in table[1:]) == 5


def test_overlap_of_top_debtors_and_key_customers(addin):
    table = call_like_excel(addin.crm_overlap, col("a", "b", "c", "d"), col(100.0, 80.0, 5.0, 1.0),
                            col(10.0, 20.0, 60.0, 0.0), 2.0)
    assert table[0] == ["group / 分组", "customers / 客户数", "receivables owed / 应收账款", "share / 占比"]
    groups = {r[0].split(" / ")[0]: r[1:] for r in table[1:]}
    assert groups["top debtors that are key customers"][:2] == [1.0, 20.0]
    assert groups["top debtors that are not key customers"][:2] == [1.0, 60.0]
    assert groups["all customers"][1] == 90.0


def test_lifetime_value(addin):
    assert call_like_excel(addin.crm_lifetime_value, 1500.0, 10.0) == 180_000.0
    assert call_like_excel(addin.crm_lifetime_value, 1500.0, 10.0, 0.5) == 90_000.0


def test_version_and_policy(addin):
    assert isinstance(call_like_excel(addin.crm_version), str)
    assert call_like_excel(addin.crm_policy_label) == Policy().label
    sheet = (("key", "value"), ("name", "strict"), ("credit_ratio", 0.1))
    assert call_like_excel(addin.crm_policy_label, sheet).startswith("strict@")
    table = call_like_excel(addin.crm_policy_table, sheet)
    assert table[0] == ["key / 键", "value / 值"]
    assert ["credit_ratio", 0.1] in table
    # the table is itself a valid Policy sheet
    assert call_like_excel(addin.crm_policy_label, tuple(tuple(r) for r in table)) == \
        call_like_excel(addin.crm_policy_label, sheet)


def test_collections_default_period_is_the_last_complete_year(addin):
    ledger = (("date", "customer", "type", "amount"),
              (day(2023, 5, 1), "X", "invoice", 100.0), (day(2024, 2, 1), "X", "invoice", 50.0))
    table = call_like_excel(addin.crm_collections, ledger)
    assert table[1][:3] == ["X", 100.0, 0.0]
    assert table[1][3] == 0.0  # 2023: sales, nothing collected
    no_sales = call_like_excel(addin.crm_collections, ledger, day(2022, 1, 1))
    assert no_sales[1][-1] == RateStatus.NO_SALES.label == "no sales in period / 期内无销售"


def test_dates_as_serial_numbers_and_money_as_currency_cells(addin):
    """TODAY() and date cells passed through a formula arrive as serial numbers; cells formatted
    as currency arrive from pywin32 as Decimal."""
    from decimal import Decimal

    tiers = call_like_excel(addin.crm_stage_tier, col("有",), col(45_306.0,), 45_292.0)  # 2024-01-15, 2024-01-01
    assert tiers == "A"
    assert call_like_excel(addin.crm_credit_budget, Decimal("40000000.00"), 0.2, 0.17) == 9_360_000.0
    rates = call_like_excel(addin.crm_collection_rate, col(Decimal("140")), col(Decimal("150")), 0.17)
    assert round(rates, 4) == 0.7977


def test_lifetime_value_refuses_implausible_inputs_instead_of_computing_for_ever(addin):
    assert call_like_excel(addin.crm_lifetime_value, 1500.0, 1e300) == "#VALUE! years 1e+300 is outside 0..100"
    assert call_like_excel(addin.crm_lifetime_value, 1500.0, 10.0, 1.0, 1.5).startswith("#VALUE! retention")


def test_duplicate_names(addin):
    table = call_like_excel(addin.crm_duplicate_names, col("C1", "C2", "C3", "C4"),
                            col("华信医药有限公司", "华信 医药", "仁和医药", None))
    assert table[0][0].startswith("customers")
    assert table[1][0] == "C1, C2" and table[1][2] == 2.0
    assert len(table) == 2
    none = call_like_excel(addin.crm_duplicate_names, col("C1", "C2"), col("甲", "乙"))
    assert none[1][0].startswith("none")
