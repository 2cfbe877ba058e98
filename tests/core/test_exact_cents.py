"""Correct to the cent on ordinary finance input: VAT ties, balances brought forward, write-offs,
the not-yet-due bucket (domain.md sections 7-9)."""
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.analysis import CREDIT, CURRENT, aging
from crm_core.collection import Period, customer_facts, gross_cents, with_vat_cents
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy

VAT13 = Policy(vat_table={"2000-01-01": 0.13})


def ledger(rows, columns=("date", "customer", "type", "amount", "due_date")):
    return normalize_ledger(pd.DataFrame([r + (None,) * (len(columns) - len(r)) for r in rows], columns=columns))


def test_vat_ties_round_half_up_as_on_the_invoice():
    """47,122.50 x 1.13 = 53,248.425 -> 53,248.43 and 0.50 -> 0.57, where a float product rounds down."""
    book = ledger([("2024-01-02", "A", "invoice", 47122.50), ("2024-01-02", "B", "invoice", 0.50)])
    assert gross_cents(book.rows, VAT13).tolist() == [5_324_843, 57]


def test_a_customer_who_paid_exactly_the_invoiced_gross_is_at_100_percent_and_owes_nothing():
    book = ledger([("2024-01-02", "A", "invoice", 47122.50), ("2024-02-01", "A", "receipt", 53248.43)])
    facts = customer_facts(book.rows, VAT13, Period.year(2024)).iloc[0]
    assert facts["collection_rate"] == 1.0 and facts["open_balance_cents"] == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(10**15) + 1, 10**15 - 1), min_size=1, max_size=30),
       st.sampled_from(["0.13", "0.17", "0.16", "0.09", "0.06", "0.03", "0", "0.125", "0.999999"]))
def test_gross_up_is_decimal_half_up_at_any_size(cents, rate):
    """Python's Decimal as the judge, half away from zero like Excel's ROUND, up to the amount limit."""
    expected = [int((Decimal(c) * (1 + Decimal(rate))).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                for c in cents]
    assert with_vat_cents(np.array(cents, dtype="int64"), float(rate)).tolist() == expected


def test_half_cent_ties_of_a_whole_ledger_match_decimal():
    """Every x.50 invoice at 13% is a tie: the grossed cents agree with Decimal on each."""
    amounts = [k + 0.5 for k in range(0, 5000, 7)]
    book = ledger([("2024-03-01", f"C{i}", "invoice", a) for i, a in enumerate(amounts)])
    expected = [int((Decimal(str(a)) * 100 * Decimal("1.13")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                for a in amounts]
    assert gross_cents(book.rows, VAT13).tolist() == expected


def test_a_balance_brought_forward_is_owed_but_neither_sales_nor_collections():
    book = ledger([("2024-01-01", "A", "期初余额", 50_000), ("2024-03-01", "A", "invoice", 10_000),
                   ("2024-04-01", "A", "receipt", 61_300)])
    assert book.errors == []
    facts = customer_facts(book.rows, VAT13, Period.year(2024)).iloc[0]
    assert facts["net_sales_cents"] == 1_000_000 and facts["collections_cents"] == 6_130_000
    assert facts["open_balance_cents"] == 0  # paid last year's debt and this year's invoice


def test_a_write_off_lowers_the_balance_and_is_not_a_collection():
    book = ledger([("2024-03-01", "A", "invoice", 10_000), ("2024-09-01", "A", "坏账核销", -11_300)])
    facts = customer_facts(book.rows, VAT13, Period.year(2024)).iloc[0]
    assert facts["collections_cents"] == 0 and facts["open_balance_cents"] == 0
    assert facts["collection_rate"] == 0.0 and facts["written_off_cents"] == 1_130_000  # counted as bad debt


def test_write_offs_add_up_alike_whole_and_in_chunks(tmp_path):
    """The dask engine's partitions sum the same five measures as the whole-ledger path."""
    from crm_app.engines.ledger_file import file_facts
    from crm_core.demo import demo_ledger

    raw = demo_ledger(seed=3, customers=300, yearly_sales=3_000_000)
    assert (raw["type"] == "write-off").any() and (raw["type"] == "opening balance").any()
    path = tmp_path / "ledger.csv"
    raw.to_csv(path, index=False)
    whole = customer_facts(normalize_ledger(raw).rows, Policy(), Period.year(2025)).set_index("customer")
    for engine, options in (("inprocess", {}), ("dask", {"blocksize": 5000})):
        kept = file_facts(path, period_start=pd.Timestamp("2025-01-01"), period_end=pd.Timestamp("2025-12-31"),
                          use_cache=False, engine=engine, **options).table
        kept = kept.set_index("customer")
        for column in ("written_off_cents", "open_balance_cents", "collections_cents", "net_sales_cents"):
            assert kept[column].tolist() == whole[column].tolist(), (column, engine)


def test_opening_credit_balances_are_allowed_other_negatives_follow_the_policy():
    book = ledger([("2024-01-01", "A", "opening balance", -500), ("2024-01-02", "B", "invoice", -1)])
    assert [(i.row, i.code.value) for i in book.errors] == [(3, "negative_amount")]


def test_ageing_has_a_not_yet_due_bucket_a_credit_column_and_ignores_later_documents():
    book = ledger([
        ("2024-01-01", "A", "opening balance", 1_000, "2024-01-01"),  # 180 days past due
        ("2024-06-20", "A", "invoice", 1_000, "2024-07-20"),           # not yet due on 2024-06-29
        ("2024-06-01", "B", "receipt", 500),                           # a prepayment: a credit
        ("2024-07-15", "A", "receipt", 2_130),                         # after the as-of date
        ("2024-05-01", "C", "invoice", 100, "2024-05-31"),             # 29 days past due
        ("2024-06-01", "C", "write-off", 113),                         # written off
    ])
    table = aging(book.rows, pd.Timestamp("2024-06-29"), VAT13).set_index("customer")
    assert table.loc["A", CURRENT] == 113_000 and table.loc["A", "90+"] == 100_000
    assert table.loc["A", "total"] == 213_000
    assert table.loc["B", CREDIT] == -50_000 and table.loc["B", "total"] == -50_000
    assert table.loc["C", "total"] == 0
    money = [c for c in table.columns if c != "total"]
    facts = customer_facts(book.rows[book.rows["date"] <= "2024-06-29"], VAT13,
                           Period(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-06-29"))).set_index("customer")
    assert (table[money].sum(axis=1) == table["total"]).all()
    assert (table["total"] == facts["open_balance_cents"]).all()


HEADERS = {"金额(元)": 1, "金额(千元)": 1_000, "金额(万元)": 10_000, "金额(亿元)": 10**8, "金额": 1}
six_places = st.builds(lambda units, places: Decimal(units).scaleb(-places),
                       st.integers(0, 10**12), st.integers(0, 6))
ties = st.builds(lambda cents: (Decimal(cents) + Decimal("0.5")) / 100, st.integers(0, 10**9))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(HEADERS)), st.lists(st.one_of(six_places, ties), min_size=1, max_size=12),
       st.sampled_from(["number", "text"]))
def test_a_ledger_under_any_unit_header_holds_decimal_half_up_cents(header, amounts, form):
    """Through the whole ledger path: the header's unit, then half-up at the cent (Decimal as the
    judge); amounts past the limit refused naming their row; rounded ones warned about by row."""
    scale = HEADERS[header]
    if form == "number":
        amounts = [a for a in amounts if len(a.normalize().as_tuple().digits) <= 15]  # what a float keeps
    cells = [float(a) if form == "number" else str(a) for a in amounts]
    raw = pd.DataFrame({"date": "2024-01-02", "customer": "A", "type": "invoice", header: cells})
    book = normalize_ledger(raw)
    kept = iter(book.rows["amount_cents"].tolist())
    refused = {i.row for i in book.errors}
    rounded = {i.row for i in book.issues if i.code.value == "rounded"}
    for row, amount in enumerate(amounts, start=2):
        exact = amount * scale * 100
        if abs(exact) >= 10**15:
            assert row in refused
            continue
        assert next(kept) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert (row in rounded) == (exact != exact.to_integral_value())
