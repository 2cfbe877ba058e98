"""The reference case (X, Y, Z; 936万; C7/B117/C3/D24) through the cell interface.

Every call goes through xlwings' real call_udf with values shaped as VBA passes them.
"""
from __future__ import annotations

import datetime as dt

from tests.support.xlwings_offline import call_like_excel
from udfs._excel import CellError

VAT_2010 = (("vat.1994-01-01", 0.17),)  # a Policy sheet with only 2010's VAT


def col(*values):
    return tuple((v,) for v in values)


def test_xyz_collection_rates(addin):
    rates = call_like_excel(addin.crm_collection_rate, col(140.0, 110.0, 210.0), col(150.0, 85.0, 195.0), 0.17)
    assert [round(r[0], 4) for r in rates] == [0.7977, 1.1061, 0.9204]


def test_xyz_from_a_chinese_ledger_with_collections_table_and_tiers(addin):
    day = dt.datetime
    ledger = (("日期", "客户", "类型", "金额"),
              (day(2010, 3, 1), "X", "发票", 1_500_000.0), (day(2010, 9, 1), "X", "回款", 1_400_000.0),
              (day(2010, 3, 1), "Y", "发票", 850_000.0), (day(2010, 9, 1), "Y", "回款", 1_100_000.0),
              (day(2010, 3, 1), "Z", "发票", 1_950_000.0), (day(2010, 9, 1), "Z", "回款", 2_100_000.0),
              (None, None, None, None), (None, None, None, None))  # trailing empty rows of the selection
    table = call_like_excel(addin.crm_collections, ledger, day(2010, 1, 1), day(2010, 12, 31), VAT_2010)
    assert table[0][:5] == ["customer / 客户", "net sales / 净销售额", "collections / 回款额",
                            "collection rate / 回款率", "open balance / 应收余额"]
    body = table[1:]
    assert [r[0] for r in body] == ["X", "Y", "Z"]
    assert [r[1] for r in body] == [1_500_000.0, 850_000.0, 1_950_000.0]
    assert [r[2] for r in body] == [1_400_000.0, 1_100_000.0, 2_100_000.0]
    assert [round(r[3], 4) for r in body] == [0.7977, 1.1061, 0.9204]
    assert [r[4] for r in body] == [355_000.0, -105_500.0, 181_500.0]  # gross billed minus collected
    tiers = call_like_excel(addin.crm_tier, tuple((r[3],) for r in body))
    assert tiers == [["C"], ["A"], ["B"]]


def test_credit_budget_936_wan(addin):
    assert call_like_excel(addin.crm_credit_budget, 40_000_000.0, 0.2, 0.17) == 9_360_000.0
    # omitted ratio comes from the policy; 2010's VAT from a Policy sheet range
    assert call_like_excel(addin.crm_credit_budget, 40_000_000.0, None, None, VAT_2010) == 9_360_000.0


REGISTER = col("C7", "B117", "C3", "D24", "A1")
LINES = col(500_000.0, 200_000.0, 300_000.0, 400_000.0, 1_000_000.0)
BALANCES = col(450_000.0, 150_000.0, 200_000.0, 250_000.0, 900_000.0)
TIERS = col("C", "B", "C", "D", "A")
REQUEST = col("C7", "B117", "C3", "D24")


def test_reference_reallocation_batch_passes_and_keeps_the_total(addin):
    changes = col(100_000.0, -20_000.0, -30_000.0, -50_000.0)
    messages = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, REQUEST, changes, BALANCES)
    assert messages == [["ok"], ["ok"], ["ok"], ["ok"], ["ok: batch passes / 通过"]]
    new = call_like_excel(addin.crm_reallocate, REGISTER, LINES, REQUEST, changes, BALANCES)
    assert new == [[600_000.0], [180_000.0], [270_000.0], [350_000.0], [1_000_000.0]]
    assert sum(r[0] for r in new) == sum(r[0] for r in LINES)


def test_reference_batch_with_d24_cut_by_40000_is_refused_naming_the_imbalance(addin):
    changes = col(100_000.0, -20_000.0, -30_000.0, -40_000.0)
    messages = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, REQUEST, changes, BALANCES)
    verdict = messages[-1][0]
    assert verdict.startswith("refused")
    assert "imbalance +10,000.00" in verdict and "do not sum to zero" in verdict
    refused = call_like_excel(addin.crm_reallocate, REGISTER, LINES, REQUEST, changes, BALANCES)
    assert isinstance(refused, str) and refused.startswith("#VALUE!") and "imbalance +10,000.00" in refused


def test_reallocation_detail_table_labels_moves_and_totals_the_batch(addin):
    changes = col(100_000.0, -20_000.0, -30_000.0, -50_000.0)
    table = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, REQUEST, changes, BALANCES, TIERS, True)
    assert table[0][0] == "customer / 客户" and table[0][-1] == "message / 说明"
    assert table[1] == ["C7", "C", 500_000.0, 100_000.0, 600_000.0, "across tiers / 跨级调整", "ok"]
    assert table[-1][0] == "batch / 批次" and table[-1][3] == 0.0
    assert table[-1][-1].startswith("ok")


def test_unknown_customer_in_request_is_na(addin):
    changes = col(100_000.0, -100_000.0)
    table = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, col("C7", "X9"), changes, None, None, True)
    assert table[2][0] == "X9"
    assert table[2][2] == CellError("#N/A") and table[2][4] == CellError("#N/A")
    assert "not in the register" in table[2][-1]
    refused = call_like_excel(addin.crm_reallocate, REGISTER, LINES, col("C7", "X9"), changes)
    assert refused.startswith("#N/A row 2") and "'X9'" in refused


def test_cut_below_open_balance_is_refused_on_its_line(addin):
    changes = col(100_000.0, -100_000.0)
    messages = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, col("C7", "B117"), changes, BALANCES)
    assert messages[0] == ["ok"]
    assert "below the open balance" in messages[1][0]
    assert messages[2][0].startswith("refused")


def test_move_kind_is_left_blank_when_no_tiers_are_given(addin):
    changes = col(100_000.0, -20_000.0, -30_000.0, -50_000.0)
    table = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, REQUEST, changes, BALANCES, None, True)
    assert [r[5] for r in table[1:5]] == ["", "", "", ""]
    same_tier = call_like_excel(addin.crm_check_reallocation, REGISTER, LINES, col("C7", "C3"),
                                col(10_000.0, -10_000.0), BALANCES, TIERS, True)
    assert [r[5] for r in same_tier[1:3]] == ["within tier / 同级调整"] * 2
