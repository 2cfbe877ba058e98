"""Reading a ledger: headers in two languages, every bad row reported with its row and column."""
import pandas as pd

from crm_core.collection import Period, customer_facts
from crm_core.issues import IssueCode
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy


def frame(rows, columns=("date", "customer", "type", "amount")):
    return pd.DataFrame(rows, columns=list(columns), dtype=object)


def test_english_and_chinese_headers_and_type_words():
    raw = frame([("2024-01-02", "A", "Invoice", 100), ("2024-01-03", "A", "收款", 113),
                 ("2024-01-04", "A", "红字", 10), ("2024-01-05", "A", "Credit Note", 5)],
                ["日期", "客户", "类型", "金额"])
    ledger = normalize_ledger(raw)
    assert ledger.issues == []
    assert list(ledger.rows["type"]) == ["invoice", "receipt", "credit_note", "credit_note"]
    facts = customer_facts(ledger.rows, Policy(), Period.year(2024))
    assert facts.loc[0, "net_sales_cents"] == 8500  # credit notes reduce net sales


def test_every_bad_row_is_reported_with_spreadsheet_row_and_column():
    raw = frame([("2024-01-02", "A", "invoice", 100),   # row 2, fine
                 ("2024-13-01", "A", "invoice", 100),   # row 3, bad date
                 ("2024-01-02", "", "receipt", 100),    # row 4, unmatched receipt
                 ("2024-01-02", "B", "gift", 100),      # row 5, unknown type
                 ("2024-01-02", "B", "invoice", "abc")])  # row 6, bad amount
    ledger = normalize_ledger(raw, source="march.csv")
    found = {(i.row, i.column, i.code) for i in ledger.issues}
    assert found == {(3, "date", IssueCode.BAD_DATE), (4, "customer", IssueCode.BLANK),
                     (5, "type", IssueCode.UNKNOWN_TYPE), (6, "amount", IssueCode.BAD_NUMBER)}
    assert str(ledger.issues[-1]).startswith("march.csv, row 6, column amount:")
    assert list(ledger.rows["row"]) == [2]
    # every input row is used or reported
    assert len(ledger.rows) + len({i.row for i in ledger.errors}) == len(raw)


def test_missing_columns_are_named():
    ledger = normalize_ledger(frame([("2024-01-02", "A", 1)], ["date", "customer", "amount"]))
    assert [i.column for i in ledger.issues] == ["type"]
    assert "no 'type' column" in ledger.issues[0].message


def test_duplicate_invoice_numbers_name_the_first_row():
    raw = frame([("2024-01-02", "A", "invoice", 1, "INV1"), ("2024-01-03", "A", "invoice", 2, "INV1"),
                 ("2024-01-04", "A", "receipt", 2, "INV1")],
                ["date", "customer", "type", "amount", "发票号"])
    ledger = normalize_ledger(raw)
    assert [(i.row, i.code) for i in ledger.errors] == [(3, IssueCode.DUPLICATE_INVOICE)]
    assert "row 2" in ledger.errors[0].message


def test_blank_rows_are_skipped_and_counted():
    raw = frame([("2024-01-02", "A", "invoice", 1), (None, None, None, None), ("", " ", None, None)])
    ledger = normalize_ledger(raw)
    assert ledger.issues == [] and ledger.blank_rows == 2 and len(ledger.rows) == 1


def test_wan_header_scales_amounts():
    raw = frame([("2024-01-02", "A", "invoice", 1.5)], ["date", "customer", "type", "金额(万元)"])
    assert normalize_ledger(raw).rows.loc[0, "amount_cents"] == 1_500_000


def test_negative_amounts_follow_the_policy():
    raw = frame([("2024-01-02", "A", "invoice", -100), ("2024-01-03", "A", "credit note", -10)])
    refused = normalize_ledger(raw)
    assert [(i.row, i.code) for i in refused.errors] == [(2, IssueCode.NEGATIVE_AMOUNT)]
    allowed = normalize_ledger(raw, Policy(negative_amounts="allow"))
    assert allowed.errors == [] and list(allowed.rows["amount_cents"]) == [-10000, 1000]


def test_spellings_differing_by_spaces_or_width_are_one_customer_with_a_warning():
    raw = frame([("2024-01-02", "ＡＢＣ 医药", "invoice", 1), ("2024-01-02", "ABC  医药 ", "invoice", 1)])
    ledger = normalize_ledger(raw)
    assert ledger.errors == [] and set(ledger.rows["customer"]) == {"ABC 医药"}
    assert [i.code for i in ledger.issues] == [IssueCode.MERGED_NAMES]


def test_per_row_vat_overrides_the_table():
    raw = frame([("2024-01-02", "A", "invoice", 100, "6%"), ("2024-01-02", "B", "invoice", 100, None)],
                ["date", "customer", "type", "amount", "税率"])
    facts = customer_facts(normalize_ledger(raw).rows, Policy(), Period.year(2024)).set_index("customer")
    assert facts.loc["A", "gross_sales_cents"] == 10600 and facts.loc["B", "gross_sales_cents"] == 11300


def test_empty_and_receipts_only_ledgers():
    empty = normalize_ledger(frame([]))
    assert [i.code for i in empty.issues] == [IssueCode.EMPTY]
    only_receipts = normalize_ledger(frame([("2024-01-02", "A", "receipt", 50)]))
    facts = customer_facts(only_receipts.rows, Policy(), Period.year(2024))
    assert facts.loc[0, "rate_status"].startswith("no sales")
    assert pd.isna(facts.loc[0, "collection_rate"])
    assert facts.loc[0, "open_balance_cents"] == -5000  # a prepayment


def test_open_balance_counts_everything_up_to_the_period_end():
    raw = frame([("2023-12-01", "A", "invoice", 100), ("2024-02-01", "A", "receipt", 50),
                 ("2025-01-05", "A", "invoice", 999)])
    facts = customer_facts(normalize_ledger(raw).rows, Policy(), Period.year(2024))
    assert facts.loc[0, "open_balance_cents"] == 11300 - 5000
    assert facts.loc[0, "net_sales_cents"] == 0  # the 2023 invoice is outside the period


def test_an_amount_too_large_once_scaled_by_a_wan_header_is_refused_not_overflowed():
    """9.3e12 万 is 9.3e18 cents: past int64, it once came out as a negative invoice."""
    raw = frame([("2024-01-02", "A", "invoice", 9.3e12), ("2024-01-03", "B", "invoice", 1_000_000_000),
                 ("2024-01-04", "C", "invoice", 999_999_999.99)], ["date", "customer", "type", "金额(万元)"])
    ledger = normalize_ledger(raw)  # the limit is 10^13 currency units: 10^9 万 reaches it
    assert [(i.row, i.column) for i in ledger.issues] == [(2, "amount"), (3, "amount")]
    assert all("implausibly large" in i.message for i in ledger.issues)
    assert ledger.rows["amount_cents"].tolist() == [99_999_999_999 * 10_000]


def test_a_cell_saying_wan_under_a_wan_header_is_not_scaled_twice():
    raw = frame([("2024-01-02", "A", "invoice", 1.5), ("2024-01-03", "A", "invoice", "2万")],
                ["date", "customer", "type", "金额(万元)"])
    assert list(normalize_ledger(raw).rows["amount_cents"]) == [1_500_000, 2_000_000]
