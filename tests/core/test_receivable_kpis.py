"""Receivables KPIs per customer and in total from a ledger (crm_core.receivables), against the credit
profession's published examples (domain.md section 9) and the invariants that tie them to the ageing."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crm_core.analysis import CURRENT, aging
from crm_core.collection import Period
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.receivables import (
    KPI_COLUMNS,
    TOTAL,
    kpi_period,
    kpis_by_tier,
    receivable_kpis,
    review_tiers,
)

NO_VAT = Policy(vat_table={"2000-01-01": 0.0})
COLUMNS = ["date", "customer", "type", "amount", "due_date"]


def ledger(*rows, policy=NO_VAT):
    frame = pd.DataFrame([r + (None,) * (len(COLUMNS) - len(r)) for r in rows], columns=COLUMNS)
    return normalize_ledger(frame, policy).rows


# The CRF's DSO example in April 2024 (30 days): credit sales 10,000, receivables 15,000 of which 4,000 current.
DSO_EXAMPLE = (("2024-03-01", "X", "opening balance", 5_000),
               ("2024-04-01", "X", "invoice", 6_000, "2024-04-15"),
               ("2024-04-25", "X", "invoice", 4_000, "2024-05-25"))
# The CEI example over April-June 2024: opening 6,200, sales 10,890, closing 6,340, closing current 3,590.
CEI_EXAMPLE = (("2024-03-15", "Y", "opening balance", 6_200),
               ("2024-04-10", "Y", "invoice", 4_550, "2024-05-10"),
               ("2024-06-01", "Y", "invoice", 2_750, "2024-06-15"),
               ("2024-06-20", "Y", "invoice", 3_590, "2024-07-20"),
               ("2024-06-25", "Y", "receipt", 10_750))


def row_of(report, customer):
    return report.table.set_index("customer").loc[customer]


def test_dso_45_best_dso_12_and_add_33_of_the_example():
    report = receivable_kpis(ledger(*DSO_EXAMPLE), pd.Timestamp("2024-04-30"), 1, NO_VAT)
    x = row_of(report, "X")
    assert (x["credit_sales_cents"], x["receivables_cents"], x["current_cents"]) == (1_000_000, 1_500_000, 400_000)
    assert report.days == 30 and report.period == Period(pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-30"))
    assert (x["dso"], x["best_dso"], x["add"]) == pytest.approx((45, 12, 33))
    assert x["current_share"] == pytest.approx(4_000 / 15_000) and x["turnover"] == pytest.approx(10_000 / 15_000)


def test_cei_55_93_percent_of_the_example():
    report = receivable_kpis(ledger(*CEI_EXAMPLE), pd.Timestamp("2024-06-30"), 3, NO_VAT)
    y = row_of(report, "Y")
    assert (y["opening_cents"], y["credit_sales_cents"], y["receivables_cents"], y["current_cents"]) == \
        (620_000, 1_089_000, 634_000, 359_000)
    assert round(y["cei"], 4) == 0.5593


def test_bad_debt_ratio_is_write_offs_over_credit_sales_with_vat():
    # the commission example: 100,000 net at 17% is 117,000 billed; 11,700 written off
    rows = ledger(("2010-03-01", "C", "invoice", 100_000), ("2010-09-01", "C", "write-off", 11_700),
                  policy=Policy())
    c = row_of(receivable_kpis(rows, pd.Timestamp("2010-12-31"), policy=Policy()), "C")
    assert (c["credit_sales_cents"], c["written_off_cents"]) == (11_700_000, 1_170_000)
    assert c["bad_debt_ratio"] == pytest.approx(0.10)


def test_credit_sales_are_grossed_up_per_document_half_up_as_the_collection_rate_does():
    rows = ledger(("2024-03-01", "V", "invoice", 47_122.50), ("2024-03-02", "V", "invoice", 0.50), policy=Policy())
    v = row_of(receivable_kpis(rows, pd.Timestamp("2024-12-31"), policy=Policy()), "V")
    assert v["credit_sales_cents"] == 5_324_843 + 57  # 53,248.43 + 0.57
    assert v["receivables_cents"] == v["credit_sales_cents"]


def test_a_customer_without_credit_sales_has_no_dso_and_no_crash():
    rows = ledger(*DSO_EXAMPLE, ("2024-04-10", "P", "receipt", 300), ("2023-01-05", "Q", "opening balance", 800))
    report = receivable_kpis(rows, pd.Timestamp("2024-04-30"), 1, NO_VAT)
    prepaid, old_debt = row_of(report, "P"), row_of(report, "Q")
    assert prepaid["receivables_cents"] == -30_000
    for key in ("dso", "best_dso", "add", "cei", "current_share", "turnover", "bad_debt_ratio"):
        assert math.isnan(prepaid[key]), key
    assert math.isnan(old_debt["dso"]) and old_debt["cei"] == 0.0  # 800 owed, nothing collected: CEI 0%
    assert list(report.table.columns) == KPI_COLUMNS


def test_the_period_is_the_months_ending_on_the_as_of_date():
    assert kpi_period(pd.Timestamp("2024-12-31"), 12) == Period.year(2024)
    assert kpi_period(pd.Timestamp("2024-04-30"), 1) == Period(pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-30"))
    assert kpi_period(pd.Timestamp("2024-02-29"), 12).start == pd.Timestamp("2023-03-01")
    assert kpi_period(pd.Timestamp("2024-06-15"), 12).start == pd.Timestamp("2023-06-16")


def test_months_default_to_the_policy_and_bad_ones_are_refused():
    rows = ledger(*DSO_EXAMPLE)
    assert receivable_kpis(rows, pd.Timestamp("2024-04-30"), policy=NO_VAT).months == 12
    assert receivable_kpis(rows, pd.Timestamp("2024-04-30"), policy=NO_VAT.with_values(kpi_months=1)).days == 30
    for bad in (0, 1.5, 121, "x"):
        with pytest.raises(CrmInputError, match="months"):
            receivable_kpis(rows, pd.Timestamp("2024-04-30"), bad, NO_VAT)


def test_a_balance_brought_forward_inside_the_period_is_opening_not_sales():
    report = receivable_kpis(ledger(*DSO_EXAMPLE), pd.Timestamp("2024-04-30"), 12, NO_VAT)
    x = row_of(report, "X")
    assert (x["opening_cents"], x["credit_sales_cents"]) == (500_000, 1_000_000)


def test_an_as_of_date_in_the_past_ignores_later_documents():
    rows = ledger(*DSO_EXAMPLE, ("2024-05-03", "X", "receipt", 15_000), ("2024-05-04", "X", "invoice", 9_000))
    later_left_out = receivable_kpis(rows, pd.Timestamp("2024-04-30"), 1, NO_VAT).table
    assert later_left_out.equals(receivable_kpis(ledger(*DSO_EXAMPLE), pd.Timestamp("2024-04-30"), 1, NO_VAT).table)


def test_the_total_row_computes_its_kpis_from_the_sums():
    report = receivable_kpis(ledger(*DSO_EXAMPLE, *CEI_EXAMPLE), pd.Timestamp("2024-06-30"), 3, NO_VAT)
    body, total = report.table.iloc[:-1], report.table.iloc[-1]
    assert total["customer"] == TOTAL
    assert total["dso"] == pytest.approx(total["receivables_cents"] / total["credit_sales_cents"] * report.days)
    assert total["dso"] != pytest.approx(body["dso"].mean())


def test_kpis_per_tier_add_up_to_the_total():
    rows = ledger(*DSO_EXAMPLE, *CEI_EXAMPLE, ("2023-02-01", "X", "invoice", 1_000), ("2023-05-01", "X", "receipt", 1_000))
    report = receivable_kpis(rows, pd.Timestamp("2024-06-30"), 3, NO_VAT)
    tiers = review_tiers(rows, pd.Timestamp("2024-06-30"), report.table["customer"].iloc[:-1], NO_VAT)
    assert tiers.to_dict() == {"X": "A", "Y": "unrated"}
    tiered = kpis_by_tier(report, tiers, NO_VAT).set_index("tier")
    assert list(tiered.index) == ["A", "unrated", TOTAL]
    assert tiered.loc[TOTAL, "dso"] == pytest.approx(report.table.iloc[-1]["dso"])
    assert tiered.loc["unrated", "cei"] == pytest.approx(row_of(report, "Y")["cei"])


# ----------------------------------------------------------------------------- invariants


DOCUMENT = st.tuples(st.integers(0, 500), st.sampled_from(["A", "B", "C", "D"]),
                     st.sampled_from(["invoice", "invoice", "receipt", "credit note", "write-off", "opening balance"]),
                     st.integers(1, 10**7), st.integers(0, 90))


@settings(max_examples=40, deadline=None)
@given(st.lists(DOCUMENT, min_size=1, max_size=40), st.integers(0, 520), st.integers(1, 24))
def test_kpis_agree_with_the_ageing_and_with_each_other(docs, as_of_day, months):
    start = pd.Timestamp("2023-01-01")
    rows = ledger(*[(start + pd.Timedelta(days=d), c, k, cents / 100, start + pd.Timedelta(days=d + terms))
                    for d, c, k, cents, terms in docs], policy=Policy())
    as_of = start + pd.Timedelta(days=as_of_day)
    report = receivable_kpis(rows, as_of, months, Policy())
    table = report.table
    assume(not table.empty)
    body, total = table.iloc[:-1].set_index("customer"), table.iloc[-1]
    ageing = aging(rows, as_of, Policy()).set_index("customer")
    assert body["receivables_cents"].to_dict() == ageing["total"].to_dict()
    assert body["current_cents"].to_dict() == ageing[CURRENT].to_dict()
    for column in [c for c in KPI_COLUMNS if c.endswith("_cents")]:
        assert total[column] == body[column].sum()
    for frame in (body, table):
        defined = frame["dso"].notna()
        assert np.allclose(frame.loc[defined, "add"], frame.loc[defined, "dso"] - frame.loc[defined, "best_dso"])
        assert (frame["dso"].isna() == (frame["credit_sales_cents"] <= 0)).all()
        owed = frame["receivables_cents"] > 0
        assert frame.loc[~owed, ["current_share", "turnover"]].isna().all().all()
        assert (frame["cei"].dropna() <= 1 + 1e-12).all()
    # a customer's current part is part of what it owes; in the total, credits are netted (as on the
    # Ageing sheet), so only without customers in credit is the total's share at most 100%
    assert body.loc[body["receivables_cents"] > 0, "current_share"].between(0, 1).all()
    if (body["receivables_cents"] >= 0).all() and total["receivables_cents"] > 0:
        assert 0 <= total["current_share"] <= 1


def test_a_customers_own_payment_terms_date_its_debts_as_the_ageing_does():
    """An invoice without a due date is due after the customer's terms when the customer file
    gives them (the Register's 账期天数), else after the policy's payment_terms_days."""
    rows = ledger(("2024-11-20", "X", "invoice", 1_000), ("2024-11-20", "Y", "invoice", 2_000))
    as_of = pd.Timestamp("2024-12-31")
    policy_terms = receivable_kpis(rows, as_of, 1, NO_VAT).table.set_index("customer")
    own_terms = receivable_kpis(rows, as_of, 1, NO_VAT, terms_days={"X": 60}).table.set_index("customer")
    assert policy_terms.loc["X", "current_cents"] == 0  # 41 days after the invoice, 30-day terms
    assert own_terms.loc["X", "current_cents"] == 100_000  # 60-day terms: not yet due
    assert own_terms.loc["Y", "current_cents"] == policy_terms.loc["Y", "current_cents"] == 0
    ageing = aging(rows, as_of, NO_VAT, terms_days={"X": 60}).set_index("customer")
    assert ageing.loc["X", CURRENT] == own_terms.loc["X", "current_cents"]
