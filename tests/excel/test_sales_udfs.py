"""The sales-side worksheet functions through xlwings' own call path: funnel plan, promotion rates,
commission on collection, and the duplicate check with phone and address."""
from tests.support.xlwings_offline import EXCEL_ERROR_CODES, MISSING_ARG, call_like_excel


def col(*values):
    return tuple((v,) for v in values)


def test_funnel_plan_of_the_material(addin):
    table = call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 50_000.0, col(0.5, 0.25, 0.5, 0.5))
    assert table[0][0] == "stage / 阶段" and len(table) == 6
    assert [(r[0], r[1]) for r in table[1:]] == [("A", 20.0), ("B", 40.0), ("C", 80.0), ("D", 320.0), ("E", 640.0)]
    assert [r[2] for r in table[1:]] == ["", 0.5, 0.5, 0.25, 0.5]


def test_funnel_rates_may_be_one_row_percent_text_or_shown_decimals(addin):
    as_row = call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 50_000.0, (("50%", 0.25, 0.5, "0.5"),))
    assert [r[1] for r in as_row[1:]] == [20.0, 40.0, 80.0, 320.0, 640.0]
    exact = call_like_excel(addin.crm_funnel_plan, 2_100.0, 100.0, col(0.7, 0.7, 0.35, 0.7))
    assert exact[2][1] == 30.0  # 21 / 0.7, never 31


def test_funnel_refuses_naming_the_argument_and_row(addin):
    assert call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 0.0, col(0.5, 0.25, 0.5, 0.5)).startswith(
        "#VALUE! average_deal must be above 0")
    said = call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 50_000.0, col(0.5, 1.5, 0.5, 0.5))
    assert said.startswith("#VALUE! row 2 (conversion_rates): conversion rate D->C: 1.5 is above 1")
    assert call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 50_000.0, col(0.5, "abc", 0.5, 0.5)).startswith(
        "#VALUE! row 2 (conversion_rates): value 'abc' is not a number")
    assert "4 needed" in call_like_excel(addin.crm_funnel_plan, 1_000_000.0, 50_000.0, col(0.5, 0.25))
    assert "target_sales" in call_like_excel(addin.crm_funnel_plan, "lots", 50_000.0, col(0.5, 0.25, 0.5, 0.5))


def test_promotion_rates_from_two_snapshots(addin):
    table = call_like_excel(addin.crm_promotion_rates, col("E", "E", "d", "C", None, "B"),
                            col("D", "E", "A", "C", "B", None))
    assert table[0][0] == "step / 晋级"
    assert [r[:4] for r in table[1:4]] == [["E->D", 2.0, 1.0, 0.5], ["D->C", 1.0, 1.0, 1.0], ["C->B", 1.0, 0.0, 0.0]]
    assert table[4][:3] == ["B->A", 0.0, 0.0] and str(table[4][3]) == "#DIV/0!"
    said = call_like_excel(addin.crm_promotion_rates, col("E", "F"), col("D", "E"))
    assert said.startswith("#VALUE! row 2: earlier_stages: 'F' is not a stage tier A-E")


def test_commission_of_owner_li_with_a_total_row(addin):
    table = call_like_excel(addin.crm_commission, col("C1", "C2", "C3"), col("Li", "Li", "Wang"),
                            col(60_000.0, 40_000.0, 50_000.0), col(117_000.0, None, "29,250"),
                            col(None, 11_700.0, None), "2%", 0.17)
    header = [h.split(" / ")[0] for h in table[0]]
    assert header == ["owner", "customers", "net sales", "collections excl. VAT", "written off excl. VAT", "earned",
                      "payable", "withheld", "released from earlier periods", "clawed back", "net payable"]
    li, wang, total = (dict(zip(header, row)) for row in table[1:])
    assert (li["earned"], li["payable"], li["clawed back"], li["net payable"]) == (2000.0, 2000.0, 200.0, 1800.0)
    assert (wang["earned"], wang["payable"], wang["withheld"]) == (1000.0, 500.0, 500.0)
    assert total["owner"] == "total / 合计" and total["net payable"] == 2300.0 and total["customers"] == 3.0


def test_commission_takes_the_policy_vat_when_omitted_and_names_bad_cells(addin):
    current = call_like_excel(addin.crm_commission, col("C1"), col("Li"), col(100.0), col(113.0), col(None),
                              0.1, MISSING_ARG)
    assert current[1][3] == 100.0  # the policy's current rate, 13%
    said = call_like_excel(addin.crm_commission, col("C1", "C2"), col("Li", "Li"), col(1.0, "x"), col(None, None),
                           col(None, None), 0.02, 0.17)
    assert said == "#VALUE! row 2 (net_sales): amount 'x' is not a number"
    said = call_like_excel(addin.crm_commission, col("C1", "C1"), col("Li", "Li"), col(1.0, 2.0), col(None, None),
                           col(None, None), 0.02, 0.17)
    assert said.startswith("#VALUE! row 2 (customers): customer 'C1' is also on row 1")
    assert call_like_excel(addin.crm_commission, col("C1"), col("Li"), col(1.0), col(None), col(None), 2.0,
                           0.17).startswith("#VALUE! commission rate: 2 is above 1")
    assert "vat_rate" in call_like_excel(addin.crm_commission, col("C1"), col("Li"), col(1.0), col(None), col(None),
                                         0.02, 17.0)
    error = call_like_excel(addin.crm_commission, col("C1"), col("Li"), col(EXCEL_ERROR_CODES["#N/A"]), col(None),
                            col(None), 0.02, 0.17)
    assert error.startswith("#VALUE! row 1 (net_sales)") and "#N/A" in error


def test_duplicate_names_with_phone_and_address(addin):
    table = call_like_excel(addin.crm_duplicate_names, col("C1", "C2", "C3", "C4"),
                            col("山西煤業", "山西煤礦", "山西煤產品總公司", "仁和医药"),
                            col("山西省太原市迎泽大街100号", None, "山西太原迎泽大街100號", None),
                            col(None, 3517654321.0, "+86 351 7654321", "0351-7654322"))
    assert table[0] == ["customers / 客户编码", "names / 名称", "count / 数量", "reasons / 原因"]
    assert table[1][:3] == ["C1, C2, C3", "山西煤業 | 山西煤礦 | 山西煤產品總公司", 3.0] and len(table) == 2
    assert "same phone / 电话相同 03517654321 (C2, C3)" in table[1][3]
    assert "same address / 地址相同" in table[1][3]
    names_only = call_like_excel(addin.crm_duplicate_names, col("C1", "C2", "C3"), col(*["山西煤業", "山西煤礦",
                                                                                        "山西煤產品總公司"]))
    assert names_only[1][0] == "none / 无"
    short = call_like_excel(addin.crm_duplicate_names, col("C1", "C2"), col("甲", "乙"), col("x",), MISSING_ARG)
    assert short.startswith("#VALUE!") and "different numbers of rows" in short


LEDGER = (("date", "customer", "type", "amount"),
          ("2010-02-01", "A1", "invoice", 60_000.0), ("2010-03-01", "A1", "credit note", 10_000.0),
          ("2010-04-01", "A2", "invoice", 30_000.0), ("2010-05-01", "A3", "receipt", 5_000.0),
          ("2010-12-31", "A2", "receipt", 0.0))


def test_average_deal_from_a_ledger_range(addin):
    assert call_like_excel(addin.crm_average_deal, LEDGER, *[MISSING_ARG] * 4) == 40_000.0  # A1 50,000, A2 30,000
    assert call_like_excel(addin.crm_average_deal, LEDGER, col("A1", "A2", "A3", None), MISSING_ARG, MISSING_ARG,
                           MISSING_ARG) == round(80_000 / 3, 2)  # A3 bought nothing: counts 0
    rows = list(LEDGER)
    rows[2] = ("2010-03-01", "A1", "invoice", "abc")
    said = call_like_excel(addin.crm_average_deal, tuple(rows), *[MISSING_ARG] * 4)
    assert said.startswith("#VALUE! row 3") and "abc" in said
