"""Receivables KPIs against the credit profession's published examples (domain.md section 9)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core import kpis
from crm_core.issues import CrmInputError
from tests.support.xlwings_offline import MISSING_ARG, call_like_excel


def test_dso_of_the_example_is_45_days():
    assert kpis.dso(15_000, 10_000, 30) == 45


def test_countback_dso_of_the_example_is_73_71_days():
    assert kpis.dso_countback(212_000, [100_000, 80_000, 70_000]) == pytest.approx(30 + 30 + 32 / 70 * 30)
    assert round(kpis.dso_countback(212_000, [100_000, 80_000, 70_000]), 2) == 73.71


def test_countback_counts_each_months_own_days_and_a_month_without_sales_whole():
    assert kpis.dso_countback(150, [100, 0, 100], [31, 28, 31]) == pytest.approx(31 + 28 + 0.5 * 31)
    assert kpis.dso_countback(0, [100]) == 0


def test_countback_refuses_receivables_beyond_the_months_given():
    with pytest.raises(CrmInputError, match="give earlier months"):
        kpis.dso_countback(300, [100, 100])


def test_add_of_the_example_is_33_days():
    assert kpis.best_possible_dso(4_000, 10_000, 30) == 12
    assert kpis.average_days_delinquent(15_000, 4_000, 10_000, 30) == pytest.approx(33)


def test_cei_of_the_example_is_55_93_percent():
    assert round(kpis.collection_effectiveness(6_200, 10_890, 6_340, 3_590, 3), 4) == 0.5593


@pytest.mark.parametrize("call, argument", [
    (lambda: kpis.dso(1, 0, 30), "credit_sales"), (lambda: kpis.dso(1, 10, 0), "days"),
    (lambda: kpis.average_days_delinquent(10, 20, 100, 30), "current_receivables"),
    (lambda: kpis.collection_effectiveness(1, 1, 1, 2, 3), "closing_current"),
    (lambda: kpis.collection_effectiveness(1, 1, 1, 0, 0), "months"),
    (lambda: kpis.dso_countback(1, [1, -1]), "monthly_sales"),
    (lambda: kpis.dso_countback(1, [1, 1], [30]), "month_days"),
])
def test_impossible_inputs_are_refused_naming_the_argument(call, argument):
    with pytest.raises(CrmInputError) as caught:
        call()
    assert caught.value.issues[0].column == argument


@given(st.floats(0, 1), st.lists(st.floats(1, 1e8), min_size=1, max_size=12))
def test_countback_days_never_exceed_the_months_given_and_grow_with_receivables(share, sales):
    receivables = share * sum(sales)  # at most the sales of the months given
    days = kpis.dso_countback(receivables, sales)
    assert 0 <= days <= 30 * len(sales) + 1e-9
    assert kpis.dso_countback(receivables / 2, sales) <= days + 1e-9



def col(*values):
    return tuple((v,) for v in values)


def test_the_worksheet_functions_give_the_published_figures(addin):
    assert call_like_excel(addin.crm_dso, 15_000.0, 10_000.0, 30.0) == 45
    assert round(call_like_excel(addin.crm_dso_countback, 212_000.0, col(100_000.0, 80_000.0, 70_000.0),
                                 MISSING_ARG), 2) == 73.71
    assert call_like_excel(addin.crm_add, 15_000.0, 4_000.0, 10_000.0, 30.0) == pytest.approx(33)
    assert round(call_like_excel(addin.crm_cei, 6_200.0, 10_890.0, 6_340.0, 3_590.0, 3.0), 4) == 0.5593


def test_the_worksheet_functions_refuse_naming_the_argument(addin):
    said = call_like_excel(addin.crm_dso, 15_000.0, 0.0, 30.0)
    assert said.startswith("#VALUE!") and "credit_sales" in said
    assert "days is blank" in call_like_excel(addin.crm_dso, 15_000.0, 10_000.0, None)
    assert "must be one cell" in call_like_excel(addin.crm_dso, col(1.0, 2.0), 10_000.0, 30.0)
