"""The portfolio worksheet functions through xlwings' own call path: raise candidates, relationship
KPIs, recency, the Pareto x rate cross-table and the top-N shares."""
import datetime as dt

import pytest

from tests.core.test_trends import reference_frame
from tests.support.xlwings_offline import MISSING_ARG, call_like_excel

HEADER = ("date", "customer", "type", "amount")


def ledger_range(frame=None):
    """The reference ledger as Excel hands a range over: rows of cells, numbers as floats."""
    frame = reference_frame() if frame is None else frame
    return (HEADER,) + tuple((d, c, t, float(a)) for d, c, t, a in frame.itertuples(index=False))


def col(*values):
    return tuple((v,) for v in values)


def test_raise_candidates_lists_c7_with_its_evidence(addin):
    table = call_like_excel(addin.crm_raise_candidates, ledger_range(), *[MISSING_ARG] * 6)
    assert table[0][0] == "customer / 客户" and len(table) == 2
    c7 = dict(zip([h.split(" / ")[0] for h in table[0]], table[1]))
    assert c7["customer"] == "C7" and c7["raise candidate"] is True
    assert (c7["sales last year"], c7["sales this year"], c7["sales change"]) == (400_000.0, 500_000.0, 100_000.0)
    assert c7["sales growth"] == pytest.approx(0.25)
    assert (c7["rate last year"], c7["rate this year"]) == (pytest.approx(0.78), pytest.approx(0.86))
    assert c7["rate direction"] == "up / 上升" and c7["evidence"].startswith("collection rate 78.0% -> 86.0%")


def test_all_customers_and_periods_given_as_dates(addin):
    table = call_like_excel(addin.crm_raise_candidates, ledger_range(), dt.datetime(2010, 1, 1), MISSING_ARG,
                            dt.datetime(2009, 1, 1), dt.datetime(2009, 12, 31), "all", MISSING_ARG)
    assert [r[0] for r in table[1:]] == ["B117", "C3", "C7", "D24", "L1", "N1"]
    assert [r[9] for r in table[1:]] == [False, False, True, False, False, False]
    assert table[5][6] == "" and table[5][8] == "no comparison / 无法比较"  # L1: no rate this year, a blank cell


def test_no_candidate_says_none_and_a_wrong_word_is_named(addin):
    none = call_like_excel(addin.crm_raise_candidates, ledger_range(), *[MISSING_ARG] * 5,
                           (("key", "value"), ("raise_rate_gain", 0.5)))
    assert none[1][0] == "none / 无"
    said = call_like_excel(addin.crm_raise_candidates, ledger_range(), *[MISSING_ARG] * 4, "some", MISSING_ARG)
    assert said.startswith("#VALUE!") and "show 'some'" in said


def test_overlapping_periods_and_a_bad_ledger_row_are_named(addin):
    said = call_like_excel(addin.crm_raise_candidates, ledger_range(), dt.datetime(2010, 1, 1), MISSING_ARG,
                           dt.datetime(2009, 6, 1), MISSING_ARG, MISSING_ARG, MISSING_ARG)
    assert said.startswith("#VALUE!") and "must end before" in said
    rows = list(ledger_range())
    rows[3] = ("2009-03-01", "C7", "invoice", "abc")
    said = call_like_excel(addin.crm_raise_candidates, tuple(rows), *[MISSING_ARG] * 6)
    assert said.startswith("#VALUE! row 4") and "abc" in said


def test_relationship_kpis(addin):
    table = call_like_excel(addin.crm_relationship_kpis, ledger_range(), *[MISSING_ARG] * 6)
    assert table[0] == ["measure / 指标", "customers / 客户数", "rate / 比率", "rate of / 比率基数"]
    found = {r[0]: r[1:] for r in table[1:]}
    assert found["new customers / 新增客户"][:2] == [1.0, pytest.approx(0.2)]
    assert found["moved up a tier / 升级客户"][:2] == [1.0, pytest.approx(0.25)]
    assert found["customers this period / 本期客户"][1] == ""  # no base, no rate


def test_customer_recency_defaults_to_the_last_date_in_the_ledger(addin):
    table = call_like_excel(addin.crm_customer_recency, ledger_range(), MISSING_ARG, MISSING_ARG)
    rows = {r[0]: r for r in table[1:]}
    assert rows["L1"][2].date() == dt.date(2009, 3, 1) and rows["L1"][6] == "lost / 流失"  # 670 days by 2010-12-31
    assert rows["C7"][3] == 305.0 and rows["C7"][6] == "sleeping / 沉睡"
    as_of = call_like_excel(addin.crm_customer_recency, ledger_range(), dt.datetime(2010, 3, 1), MISSING_ARG)
    assert {r[0]: r[6] for r in as_of[1:]}["C7"] == "active / 活跃"


def test_tier_cross_table_both_blocks_and_one(addin):
    pareto, rate, balances = col("A", "A", "B", "C", "C"), col("D", "A", "B", "unrated", "C"), \
        col(500.0, 100.0, -30.0, 20.0, None)
    both = call_like_excel(addin.crm_tier_cross_table, pareto, rate, balances, MISSING_ARG, MISSING_ARG)
    assert both[0][0].startswith("customers / 客户数") and both[0][1:] == ["A", "B", "C", "D", "unrated", "total / 合计"]
    assert both[1] == ["A", 1.0, 0.0, 0.0, 1.0, 0.0, 2.0] and both[5] == [""] * 7
    assert both[6][0].startswith("receivables / 应收账款") and both[7] == ["A", 100.0, 0.0, 0.0, 500.0, 0.0, 600.0]
    assert both[-1] == ["total / 合计", 100.0, 0.0, 0.0, 500.0, 20.0, 620.0]
    money = call_like_excel(addin.crm_tier_cross_table, pareto, rate, balances, "应收账款", MISSING_ARG)
    assert money == both[6:]
    said = call_like_excel(addin.crm_tier_cross_table, pareto, col("D", "A", "B", "E", "C"), balances,
                           MISSING_ARG, MISSING_ARG)
    assert said.startswith("#VALUE! row 4") and "'E'" in said


def test_top_share(addin):
    table = call_like_excel(addin.crm_top_share, col(600.0, 200.0, 100.0, 60.0, 40.0),
                            col(500.0, 100.0, -30.0, 20.0, 0.0), 2.0)
    assert table[1][1:] == [2.0, 2.0, 800.0, 1000.0, pytest.approx(0.8)]
    assert table[2][1:] == [2.0, 2.0, 600.0, 620.0, pytest.approx(600 / 620)]
    assert "whole number" in call_like_excel(addin.crm_top_share, col(1.0), col(1.0), 1.5)


@pytest.mark.parametrize("name", ["crm_raise_candidates", "crm_relationship_kpis", "crm_customer_recency",
                                  "crm_tier_cross_table", "crm_top_share"])
def test_half_typed_formula_in_the_wizard_never_raises(addin, name):
    func = getattr(addin, name)
    required = [a for a in func.__xlfunc__["args"] if "optional" not in a]
    result = call_like_excel(func, *([None] * len(required)))
    cells = [c for row in result for c in row] if isinstance(result, list) else [result]
    assert all(not isinstance(c, str) or ("Traceback" not in c and "unexpected" not in c) for c in cells), cells


def test_every_range_is_read_2d_with_error_cells_as_text(addin):
    """What tests/excel/test_udfs_metadata.py holds the range topics to, for this topic."""
    names = [n for n in addin.UDF_NAMES if getattr(addin, n).__module__ == "udfs.portfolio"]
    assert sorted(names) == ["crm_customer_recency", "crm_raise_candidates", "crm_relationship_kpis",
                             "crm_tier_cross_table", "crm_top_share"]
    for name in names:
        info = getattr(addin, name).__xlfunc__
        for arg in info["args"]:
            assert arg["options"].get("ndim") == 2 and arg["options"].get("err_to_str") is True, (name, arg["name"])
            assert "convert" not in arg["options"], (name, arg["name"])
        assert "expand" not in info["ret"]["options"], name
