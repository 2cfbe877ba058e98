"""Bad input, blanks and error cells through the cell interface: a clear value, never a traceback."""
from __future__ import annotations

import datetime as dt
import sys
import types

import pytest

from tests.support.xlwings_offline import EXCEL_ERROR_CODES, MISSING_ARG, call_like_excel
from udfs import _excel
from udfs._excel import CellError

LEDGER_HEADER = ("date", "customer", "type", "amount")


def col(*values):
    return tuple((v,) for v in values)



def test_bad_amount_in_a_ledger_names_its_row(addin):
    ledger = (LEDGER_HEADER,
              *[(dt.datetime(2024, 1, d), "X", "invoice", 100.0) for d in range(1, 6)],
              (dt.datetime(2024, 1, 6), "X", "invoice", "abc"))  # sheet row 7
    result = call_like_excel(addin.crm_collections, ledger, dt.datetime(2024, 1, 1))
    assert result == "#VALUE! row 7: amount 'abc' is not a number"


def test_every_ledger_problem_is_listed_by_crm_ledger_issues(addin):
    ledger = (LEDGER_HEADER, (dt.datetime(2024, 1, 1), "X", "??", "abc"), (None, "Y", "invoice", 5.0))
    table = call_like_excel(addin.crm_ledger_issues, ledger)
    assert table[0][0] == "row / 行"
    rows = {(r[0], r[1]) for r in table[1:]}
    assert {(2.0, "type"), (2.0, "amount"), (3.0, "date")} <= rows
    assert call_like_excel(addin.crm_ledger_issues, (LEDGER_HEADER, (dt.datetime(2024, 1, 1), "X", "发票", 1.0))) \
        == "no problems / 无问题"
    summary = call_like_excel(addin.crm_collections, ledger)
    assert summary.startswith("#VALUE! row 2") and "more problem(s)" in summary


def test_missing_ledger_column_is_reported_not_raised(addin):
    result = call_like_excel(addin.crm_collections, (("date", "customer", "amount"), (dt.datetime(2024, 1, 1), "X", 1.0)))
    assert result.startswith("#VALUE! row 1") and "'type'" in result


def test_element_wise_rate_marks_only_the_bad_cells(addin):
    rates = call_like_excel(addin.crm_collection_rate, col(140.0, "abc", 5.0, None, EXCEL_ERROR_CODES["#N/A"]),
                            col(150.0, 100.0, 0.0, None, 10.0), 0.17)
    assert round(rates[0][0], 4) == 0.7977
    assert rates[1][0] == "#VALUE! row 2 (collections): value 'abc' is not a number"
    assert rates[2][0] == CellError("#DIV/0!")  # no sales: no rate, never a division error
    assert rates[3][0] == ""  # a blank row inside the selection stays blank
    assert rates[4][0] == "#VALUE! row 5 (collections): cell holds the error value #N/A"


def test_rate_accepts_a_block_and_a_single_vat_cell_and_text_percentages(addin):
    block = call_like_excel(addin.crm_collection_rate, ((140.0, 110.0), (210.0, None)),
                            ((150.0, 85.0), (195.0, None)), "17%")
    assert [[round(x, 4) if isinstance(x, float) else x for x in row] for row in block] == [
        [0.7977, 1.1061], [0.9204, ""]]
    mismatch = call_like_excel(addin.crm_collection_rate, col(1.0, 2.0, 3.0), col(1.0, 2.0), 0.17)
    assert mismatch == "#VALUE! net_sales is 2x1 cells but the other range is 3x1"


def test_omitted_optionals_use_the_policy(addin):
    # VBA passes "missing" for an omitted Optional; xlwings swaps in the Python default
    omitted = call_like_excel(addin.crm_collection_rate, 113.0, 100.0, MISSING_ARG, MISSING_ARG)
    assert omitted == pytest.approx(1.0)  # policy's current VAT, 13%
    sheet = (("key", "value"), ("vat.1994-01-01", 0.17))
    assert call_like_excel(addin.crm_collection_rate, 117.0, 100.0, MISSING_ARG, sheet) == pytest.approx(1.0)


def test_a_bad_policy_range_names_its_row(addin):
    result = call_like_excel(addin.crm_policy_label, (("key", "value"), ("credit_ratiox", 0.1)))
    assert result == "#VALUE! row 1 (key): unknown policy key 'credit_ratiox'"
    bad_value = call_like_excel(addin.crm_policy_label, (("credit_ratio", "lots"),))
    assert bad_value.startswith("#VALUE!") and "credit_ratio" in bad_value


def test_unknown_customer_gives_na(addin):
    result = call_like_excel(addin.crm_suggest_cuts, col("A", "B"), col(100.0, 100.0), col(0.0, 0.0),
                             col(1.0, 1.0), 50.0, "Z")
    assert result.startswith("#N/A") and "'Z'" in result


def test_ranges_of_different_lengths_are_named(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("A1", "B1"), col("A",), col(1.0, 2.0), 100.0)
    assert result.startswith("#VALUE!") and "customers 2, tiers 1, net_sales 2" in result


def test_duplicate_customer_names_both_rows(addin):
    result = call_like_excel(addin.crm_allocate_credit, col("A1", "A1"), col("A", "B"), col(1.0, 2.0), 100.0)
    assert result == "#VALUE! row 2 (customers): customer 'A1' is already on row 1"


def test_a_block_where_a_column_is_expected_is_refused(addin):
    result = call_like_excel(addin.crm_tier, ((0.9, 0.8), (0.7, 0.6)))
    assert result.startswith("#VALUE!") and "single column or row" in result


@pytest.mark.parametrize("name", ["crm_collections", "crm_tier", "crm_pareto_tier", "crm_stage_tier",
                                  "crm_follow_up_due", "crm_credit_budget", "crm_allocate_credit",
                                  "crm_check_reallocation", "crm_reallocate", "crm_suggest_cuts", "crm_aging",
                                  "crm_tier_migration", "crm_overlap", "crm_lifetime_value",
                                  "crm_collection_rate", "crm_ledger_issues"])
def test_half_typed_formula_in_the_wizard_never_raises(addin, name):
    """The function wizard calls the UDF with blank required arguments while the user types."""
    func = getattr(addin, name)
    required = [a for a in func.__xlfunc__["args"] if "optional" not in a]
    result = call_like_excel(func, *([None] * len(required)))
    cells = [c for row in result for c in row] if isinstance(result, list) else [result]
    assert all(not isinstance(c, str) or "Traceback" not in c for c in cells)


def test_garbage_never_raises(addin):
    for name in addin.UDF_NAMES:
        func = getattr(addin, name)
        args = [a for a in func.__xlfunc__["args"] if "optional" not in a]
        result = call_like_excel(func, *([(("x", True), (None, -1.5))] * len(args)))
        cells = [c for row in result for c in row] if isinstance(result, list) else [result]
        assert not any(isinstance(c, str) and "unexpected" in c for c in cells), (name, cells)


def test_error_value_is_a_com_vt_error_variant_when_pywin32_is_present(monkeypatch):
    """On Windows pywin32 turns win32com.client.VARIANT(VT_ERROR, scode) into a real error cell."""
    class VARIANT:  # what win32com.client.VARIANT looks like (a plain Python class)
        def __init__(self, vt, value):
            self.varianttype, self.value = vt, value

    client = types.ModuleType("win32com.client")
    client.VARIANT = VARIANT
    win32com = types.ModuleType("win32com")
    win32com.client = client
    monkeypatch.setitem(sys.modules, "win32com", win32com)
    monkeypatch.setitem(sys.modules, "win32com.client", client)
    _excel._error_class.cache_clear()
    _excel.excel_error.cache_clear()
    try:
        na = _excel.excel_error("#N/A")
        assert isinstance(na, VARIANT) and na.varianttype == 10 and na.value == EXCEL_ERROR_CODES["#N/A"]
        assert _excel.excel_error("#DIV/0!").value == EXCEL_ERROR_CODES["#DIV/0!"]
        assert str(na) == "#N/A"
    finally:
        monkeypatch.undo()
        _excel._error_class.cache_clear()
        _excel.excel_error.cache_clear()
    assert type(_excel.excel_error("#N/A")) is CellError


def test_error_codes_agree_with_xlwings_offline():
    assert _excel.ERROR_SCODES == EXCEL_ERROR_CODES


def test_overflowing_numbers_show_num_error(addin):
    assert call_like_excel(addin.crm_collection_rate, 1.0, 1.5e308, 0.5) == 0.0
    assert call_like_excel(addin.crm_collection_rate, 1e308, 1e-300, 0.17) == CellError("#NUM!")
