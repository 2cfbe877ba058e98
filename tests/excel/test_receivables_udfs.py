"""crm_receivable_kpis and the ERP-style crm_aging, called the way Excel calls them (xlwings'
conversion path): the published figures, #DIV/0! where a KPI is not defined, messages naming the argument."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.support.xlwings_offline import MISSING_ARG, call_like_excel

NO_VAT = (("vat.1994-01-01", 0.0),)
HEADER = ("date", "customer", "type", "amount", "due_date", "invoice_no", "applies_to")


def day(*ymd):
    return dt.datetime(*ymd)


LEDGER = (HEADER,
          (day(2024, 3, 1), "X", "opening balance", 5000.0, None, None, None),
          (day(2024, 4, 1), "X", "invoice", 6000.0, day(2024, 4, 15), "F1", None),
          (day(2024, 4, 25), "X", "invoice", 4000.0, day(2024, 5, 25), "F2", None),
          (day(2024, 4, 26), "P", "receipt", 300.0, None, None, None))


def test_the_kpi_table_gives_dso_45_best_12_add_33(addin):
    table = call_like_excel(addin.crm_receivable_kpis, LEDGER, day(2024, 4, 30), 1.0, NO_VAT)
    assert table[0][:4] == ["customer / 客户", "credit sales incl. VAT / 含税赊销额", "opening receivables / 期初应收",
                            "receivables / 期末应收"]
    assert table[0][6:9] == ["DSO days / 应收周转天数", "best possible DSO / 最佳周转天数", "ADD days / 平均逾期天数"]
    x = dict(zip(table[0], table[2]))
    assert table[2][0] == "X" and table[-1][0] == "total / 合计"
    assert (x["DSO days / 应收周转天数"], x["best possible DSO / 最佳周转天数"], x["ADD days / 平均逾期天数"]) == \
        pytest.approx((45, 12, 33))
    assert x["receivables / 期末应收"] == 15_000 and x["current (not yet due) / 未到期"] == 4_000


def test_a_customer_without_credit_sales_shows_div0_not_a_crash(addin):
    table = call_like_excel(addin.crm_receivable_kpis, LEDGER, day(2024, 4, 30), 1.0, NO_VAT)
    prepaid = table[1]
    assert prepaid[0] == "P" and prepaid[3] == -300
    assert all(str(cell) == "#DIV/0!" for cell in prepaid[6:]), prepaid


def test_months_default_to_the_policy_and_blank_as_of_is_refused(addin):
    twelve = call_like_excel(addin.crm_receivable_kpis, LEDGER, day(2024, 4, 30), MISSING_ARG, NO_VAT)
    x = dict(zip(twelve[0], twelve[2]))
    assert x["DSO days / 应收周转天数"] == pytest.approx(15_000 / 10_000 * 366)  # May 2023 - April 2024
    assert call_like_excel(addin.crm_receivable_kpis, LEDGER, None).startswith("#VALUE! as_of is blank")
    said = call_like_excel(addin.crm_receivable_kpis, LEDGER, day(2024, 4, 30), 0.0)
    assert said.startswith("#VALUE!") and "months" in said


def test_aging_with_nine_buckets_and_a_named_invoice(addin):
    ledger = LEDGER + ((day(2024, 6, 20), "X", "receipt", 4000.0, None, None, "F2"),)
    slabs = tuple((float(d),) for d in (30, 60, 90, 120, 180, 270, 360, 540, 720))
    table = call_like_excel(addin.crm_aging, ledger, day(2024, 6, 30), slabs, NO_VAT)
    assert table[0][-4:] == ["541-720", "720+", "credit / 未核销", "total"]
    x = dict(zip(table[0], next(r for r in table if r[0] == "X")))
    assert x["61-90"] == 6_000 and x["121-180"] == 5_000 and x["current / 未到期"] == 0  # F2 settled by name
    bad = call_like_excel(addin.crm_aging, ledger, day(2024, 6, 30), ((30.0,), (-1.0,)))
    assert bad.startswith("#VALUE!") and "whole number of days" in bad
