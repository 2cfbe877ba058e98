"""Ageing as ERPs offer it (domain.md section 9): due-date or document-date basis, any number of
buckets, receipts that name the invoice they settle, an as-of date in the past, per tier and in total."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.analysis import (
    CREDIT,
    CURRENT,
    aging,
    aging_columns,
    aging_report,
    buckets_from_limits,
)
from crm_core.collection import balance_signs, gross_cents
from crm_core.issues import CrmInputError, IssueCode
from crm_core.ledger import Ledger, normalize_ledger
from crm_core.policy import Policy
from crm_core.receivables import TOTAL, aging_with_total, by_tier, review_tiers
from crm_core.review import review_ledger

NO_VAT = Policy(vat_table={"2000-01-01": 0.0})
AS_OF = pd.Timestamp("2024-06-30")
NINE_SLABS = [30, 60, 90, 120, 180, 270, 360, 540, 720]
COLUMNS = ["date", "customer", "type", "amount", "due_date", "invoice_no", "applies_to"]


def ledger(*rows, policy=NO_VAT):
    frame = pd.DataFrame([r + (None,) * (len(COLUMNS) - len(r)) for r in rows], columns=COLUMNS)
    return normalize_ledger(frame, policy).rows


def by_customer(table):
    return table.set_index("customer")


def money_columns(table):
    return [c for c in table.columns if c not in ("customer", "tier", "customers", "total")]


# ----------------------------------------------------------------------------- buckets


def test_nine_slabs_to_720_days_each_take_their_invoice():
    buckets = buckets_from_limits(NINE_SLABS)
    assert list(buckets) == ["1-30", "31-60", "61-90", "91-120", "121-180", "181-270", "271-360", "361-540",
                             "541-720"]
    ages = {"1-30": 10, "31-60": 45, "61-90": 90, "91-120": 91, "121-180": 150, "181-270": 200, "271-360": 360,
            "361-540": 400, "541-720": 720, "720+": 721}
    rows = ledger(*[(AS_OF - pd.Timedelta(days=age), "A", "invoice", 100 * (k + 1), AS_OF - pd.Timedelta(days=age))
                    for k, age in enumerate(ages.values())])
    table = by_customer(aging(rows, AS_OF, NO_VAT, buckets)).loc["A"]
    assert [table[label] for label in ages] == [10_000 * (k + 1) for k in range(len(ages))]
    assert aging_columns(buckets) == [CURRENT, *buckets, "720+", CREDIT]
    assert table["total"] == sum(10_000 * (k + 1) for k in range(len(ages)))


def test_the_policy_holds_nine_buckets_and_they_round_trip(tmp_path):
    from crm_app.workbook.register_sheets import policy_pairs

    policy = Policy(aging_buckets=buckets_from_limits(NINE_SLABS), aging_basis="document_date")
    path = tmp_path / "policy.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    assert Policy.load(path) == policy  # the TOML file
    assert Policy.from_pairs(policy_pairs(policy)) == policy  # the Policy sheet's key | value rows
    assert "aging_basis" in dict(policy.to_pairs()) and "aging_bucket.541-720" in dict(policy.to_pairs())


@pytest.mark.parametrize("pairs, says", [
    ([("aging_bucket.1-30", -30)], "whole number of days above 0"),
    ([("aging_bucket.1-30", 30.5)], "whole number of days above 0"),
    ([("aging_bucket.a", 30), ("aging_bucket.b", 30)], "end of two buckets"),
    ([("aging_basis", "posting")], "aging_basis must be one of document_date, due_date"),
    ([("kpi_months", 0)], "kpi_months: 0 must be from 1 to 120"),
])
def test_bad_ageing_policy_values_are_refused_by_key(pairs, says):
    with pytest.raises(CrmInputError, match=says):
        Policy.from_pairs(pairs)


def test_bucket_limits_in_any_order_and_bad_ones_refused():
    assert buckets_from_limits([90, 30, 60]) == {"1-30": 30.0, "31-60": 60.0, "61-90": 90.0}
    for bad in ([0, 30], [30, -5], [15.5]):
        with pytest.raises(CrmInputError, match="whole number of days"):
            buckets_from_limits(bad)


# ----------------------------------------------------------------------------- basis


def test_document_date_basis_counts_days_since_the_document():
    rows = ledger(("2024-05-01", "A", "invoice", 100, "2024-08-31"))  # 60 days old, not yet due
    due = by_customer(aging(rows, AS_OF, NO_VAT)).loc["A"]
    assert due[CURRENT] == 10_000
    document = by_customer(aging(rows, AS_OF, NO_VAT, basis="document_date")).loc["A"]
    assert document["31-60"] == 10_000 and document[CURRENT] == 0
    by_policy = aging(rows, AS_OF, NO_VAT.with_values(aging_basis="document_date"))
    assert by_policy.equals(aging(rows, AS_OF, NO_VAT, basis="document_date"))
    with pytest.raises(CrmInputError, match="due_date or document_date"):
        aging(rows, AS_OF, NO_VAT, basis="posting")


# ----------------------------------------------------------------------------- settlement


OLD_AND_NEW = (("2024-01-01", "A", "invoice", 100, "2024-01-31", "F1"),   # 151 days past due
               ("2024-06-01", "A", "invoice", 100, "2024-06-20", "F2"))   # 10 days past due


def test_a_receipt_settles_the_oldest_invoice_unless_it_names_one():
    oldest_first = by_customer(aging(ledger(*OLD_AND_NEW, ("2024-06-25", "A", "receipt", 100)), AS_OF, NO_VAT))
    assert (oldest_first.loc["A", "1-30"], oldest_first.loc["A", "90+"]) == (10_000, 0)
    named = by_customer(aging(ledger(*OLD_AND_NEW, ("2024-06-25", "A", "receipt", 100, None, None, "F2")),
                              AS_OF, NO_VAT))
    assert (named.loc["A", "1-30"], named.loc["A", "90+"]) == (0, 10_000)


def test_the_applies_to_header_in_chinese_is_read():
    frame = pd.DataFrame({"日期": ["2024-01-01", "2024-06-01", "2024-06-25"], "客户": ["A"] * 3,
                          "类型": ["发票", "发票", "回款"], "金额": [100, 100, 100], "发票号": ["F1", "F2", ""],
                          "到期日": ["2024-01-31", "2024-06-20", ""], "核销发票号": ["", "", " F2 "]})
    rows = normalize_ledger(frame, NO_VAT).rows
    assert list(rows["applies_to"]) == ["", "", "F2"]
    assert by_customer(aging(rows, AS_OF, NO_VAT)).loc["A", "90+"] == 10_000


def test_paying_more_than_the_named_invoice_settles_the_rest_oldest_first():
    rows = ledger(*OLD_AND_NEW, ("2024-03-01", "A", "invoice", 100, "2024-04-15", "F3"),
                  ("2024-06-25", "A", "receipt", 150, None, None, "F2"))
    table = by_customer(aging(rows, AS_OF, NO_VAT)).loc["A"]
    assert (table["1-30"], table["90+"], table["61-90"], table["total"]) == (0, 5_000, 10_000, 15_000)


@pytest.mark.parametrize("name, row", [("F9", 4), ("G1", 4)], ids=["unknown number", "another customer's"])
def test_a_receipt_naming_an_invoice_not_found_is_settled_oldest_first_with_a_warning(name, row):
    rows = ledger(*OLD_AND_NEW, ("2024-02-01", "B", "invoice", 100, None, "G1"),
                  ("2024-06-25", "A", "receipt", 100, None, None, name))
    report = aging_report(rows, AS_OF, NO_VAT)
    without = aging(ledger(*OLD_AND_NEW, ("2024-02-01", "B", "invoice", 100, None, "G1"),
                           ("2024-06-25", "A", "receipt", 100)), AS_OF, NO_VAT)
    assert report.table.equals(without)
    [issue] = report.issues
    assert (issue.code, issue.row, issue.column, issue.is_error) == (IssueCode.UNKNOWN_INVOICE, row + 1,
                                                                     "applies_to", False)
    assert repr(name) in issue.message and "oldest" in issue.message


def test_an_invoice_dated_after_the_as_of_date_cannot_be_settled_yet():
    rows = ledger(("2024-06-01", "A", "invoice", 100, "2024-06-20", "F1"),
                  ("2024-06-25", "A", "receipt", 30, None, None, "F2"),
                  ("2024-07-05", "A", "invoice", 100, "2024-08-05", "F2"))
    report = aging_report(rows, AS_OF, NO_VAT)
    assert by_customer(report.table).loc["A", "1-30"] == 7_000 and len(report.issues) == 1


def test_an_as_of_date_in_the_past_leaves_out_later_receipts_and_invoices():
    rows = ledger(*OLD_AND_NEW, ("2024-07-15", "A", "receipt", 200, None, None, "F1"),
                  ("2024-07-20", "A", "invoice", 50, None, "F3"))
    past = by_customer(aging(rows, AS_OF, NO_VAT)).loc["A"]
    assert (past["90+"], past["1-30"], past["total"]) == (10_000, 10_000, 20_000)
    later = by_customer(aging(rows, pd.Timestamp("2024-07-31"), NO_VAT)).loc["A"]
    assert (later["total"], later[CURRENT]) == (5_000, 5_000)


def test_an_overpayment_is_a_credit_so_the_buckets_add_up_to_the_balance():
    table = aging(ledger(OLD_AND_NEW[0], ("2024-06-25", "A", "receipt", 130, None, None, "F1")), AS_OF, NO_VAT)
    row = by_customer(table).loc["A"]
    assert row[CREDIT] == -3_000 and row["total"] == -3_000 and row[money_columns(table)].sum() == -3_000


# ----------------------------------------------------------------------------- per tier and in total


def tiered_ledger():
    rows = []
    for customer, paid in (("A1", 100), ("A2", 96), ("B1", 90), ("D1", 10)):
        rows += [("2023-03-01", customer, "invoice", 100, None, f"{customer}-1"),
                 ("2023-09-01", customer, "receipt", paid),
                 ("2024-05-01", customer, "invoice", 50, "2024-05-31", f"{customer}-2")]
    rows.append(("2024-06-01", "N1", "invoice", 70, "2024-07-01", "N1-1"))  # new this year: unrated
    return ledger(*rows)


def test_ageing_per_tier_sums_the_customers_of_each_tier_as_the_review_tiers_them():
    rows = tiered_ledger()
    table = aging(rows, AS_OF, NO_VAT)
    tiers = review_tiers(rows, AS_OF, table["customer"], NO_VAT)
    review = review_ledger(Ledger(rows), NO_VAT, 2023).register.set_index("customer")["rate_tier"]
    assert tiers.to_dict() == review.to_dict() == {"A1": "A", "A2": "A", "B1": "B", "D1": "D", "N1": "unrated"}
    tiered = by_tier(table, tiers, NO_VAT).set_index("tier")
    assert list(tiered.index) == ["A", "B", "D", "unrated", TOTAL]
    assert list(tiered["customers"]) == [2, 1, 1, 1, 5]
    assert tiered.loc["A", "total"] == table.set_index("customer").loc[["A1", "A2"], "total"].sum()
    assert tiered.loc[TOTAL, "total"] == table["total"].sum()
    assert (tiered.loc[TOTAL, money_columns(tiered.reset_index())] == tiered.drop(index=TOTAL)[
        money_columns(tiered.reset_index())].sum()).all()


def test_the_total_row_adds_up_every_column():
    table = aging_with_total(aging(tiered_ledger(), AS_OF, NO_VAT))
    assert table["customer"].iloc[-1] == TOTAL
    body, total = table.iloc[:-1], table.iloc[-1]
    for column in money_columns(table) + ["total"]:
        assert total[column] == body[column].sum()


def test_the_existing_callers_keep_their_table():
    rows = tiered_ledger()
    table = aging(rows, AS_OF, NO_VAT)
    assert list(table.columns) == ["customer", *aging_columns(NO_VAT.aging_buckets), "total"]
    assert table.equals(aging_report(rows, AS_OF, NO_VAT).table)


# ----------------------------------------------------------------------------- invariants


DOCUMENT = st.tuples(st.integers(0, 400), st.sampled_from(["A", "B", "C"]),
                     st.sampled_from(["invoice", "receipt", "credit note", "write-off", "opening balance"]),
                     st.integers(1, 10**6), st.integers(0, 120), st.integers(-1, 12))


def random_ledger(docs):
    start = pd.Timestamp("2024-01-01")
    rows = []
    for k, (day, customer, kind, cents, terms, names) in enumerate(docs):
        date = start + pd.Timedelta(days=day)
        rows.append((date, customer, kind, cents / 100, date + pd.Timedelta(days=terms),
                     f"N{k}" if kind in ("invoice", "opening balance") else None,
                     f"N{names}" if names >= 0 and kind != "invoice" else None))
    return ledger(*rows, policy=Policy())


@settings(max_examples=60, deadline=None)
@given(st.lists(DOCUMENT, min_size=1, max_size=40), st.integers(0, 450),
       st.sampled_from(["due_date", "document_date"]), st.lists(st.integers(1, 800), min_size=1, max_size=9))
def test_buckets_always_add_up_to_the_balance_whatever_settles_what(docs, as_of_day, basis, limits):
    rows = random_ledger(docs)
    as_of = pd.Timestamp("2024-01-01") + pd.Timedelta(days=as_of_day)
    buckets = buckets_from_limits(limits)
    table = aging(rows, as_of, Policy(), buckets, basis).set_index("customer")
    plain = aging(rows.drop(columns="applies_to"), as_of, Policy(), buckets, basis).set_index("customer")
    money = table.drop(columns="total")
    assert (money.sum(axis=1) == table["total"]).all()
    assert (money.drop(columns=CREDIT) >= 0).all().all() and (table[CREDIT] <= 0).all()
    assert table["total"].equals(plain["total"])  # naming invoices moves money between buckets, never the balance
    kept = rows[rows["date"] <= as_of]
    balance = pd.Series(gross_cents(kept, Policy()) * balance_signs(kept["type"])).groupby(
        kept["customer"].to_numpy()).sum()
    assert table["total"].to_dict() == {k: int(v) for k, v in balance.items()}
    assert np.all((table[CREDIT] < 0) <= (money.drop(columns=CREDIT).sum(axis=1) == 0))
