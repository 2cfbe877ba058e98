"""Commission on collection (销售提成制, 003; domain.md section 10), per owner in integer cents."""
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.collection import Period
from crm_core.commission import FIGURES, TOTAL, UNASSIGNED, commission, commission_from_ledger
from crm_core.issues import CrmInputError, IssueCode
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy


def owner_row(report, owner):
    return report.by_owner.set_index("owner").loc[owner]


def test_owner_li_of_the_material_gets_2000_less_200_clawed_back():
    report = commission(["C1"], ["Li"], [10_000_000], [11_700_000], [1_170_000], 0.02, 0.17)
    li = owner_row(report, "Li")
    assert li["collections_net_cents"] == 10_000_000 and li["written_off_net_cents"] == 1_000_000
    assert (li["earned_cents"], li["payable_cents"], li["withheld_cents"]) == (200_000, 200_000, 0)
    assert (li["clawed_back_cents"], li["net_payable_cents"]) == (20_000, 180_000)
    assert report.total["net_payable_cents"] == 180_000 and TOTAL.startswith("total")


def test_uncollected_sales_withhold_their_commission_until_collected():
    report = commission(["C1", "C2"], ["Wang", "Wang"], [10_000_000, 5_000_000], [5_850_000, 0], [0, 0], 0.02, 0.17)
    wang = owner_row(report, "Wang")
    assert (wang["earned_cents"], wang["payable_cents"], wang["withheld_cents"]) == (300_000, 100_000, 200_000)
    assert wang["released_cents"] == 0


def test_collections_of_earlier_sales_release_commission_beyond_the_period_s_earnings():
    # pays 117,000 against this year's 50,000 of sales: commission withheld last year is paid now
    zhao = owner_row(commission(["C1"], ["Zhao"], [5_000_000], [11_700_000], [0], 0.02, 0.17), "Zhao")
    assert (zhao["earned_cents"], zhao["payable_cents"]) == (100_000, 200_000)
    assert (zhao["withheld_cents"], zhao["released_cents"]) == (0, 100_000)


def test_commission_is_rounded_once_per_owner_on_the_owner_s_sums():
    # 3 customers of 0.25 each at 2%: per customer 0.005 -> 0.01 each (0.03); per owner 0.75 x 2% = 0.015 -> 0.02
    report = commission(["C1", "C2", "C3"], ["Li"] * 3, [25, 25, 25], [0, 0, 0], [0, 0, 0], 0.02, 0.13)
    assert owner_row(report, "Li")["earned_cents"] == 2
    split = commission(["C1"], ["Li"], [75], [0], [0], 0.02, 0.13)
    assert owner_row(split, "Li")["earned_cents"] == 2


def test_ties_round_half_up_in_exact_arithmetic_never_by_binary_floats():
    # 1.8% of 7.50 is 0.135 exactly; in floats 750 x 0.018 = 13.499999999999998 cents, which rounds down
    assert 750 * 0.018 < 13.5
    assert owner_row(commission(["C"], ["Li"], [750], [0], [0], 0.018, 0.17), "Li")["earned_cents"] == 14
    assert owner_row(commission(["C"], ["Li"], [25], [0], [0], 0.02, 0.17), "Li")["earned_cents"] == 1  # 0.5 cent
    # collections net of VAT are rounded at the cent: 47,122.50 / 1.13 = 41,701.327... -> 41,701.33
    net = owner_row(commission(["C"], ["Li"], [0], [4_712_250], [0], 0.02, 0.13), "Li")["collections_net_cents"]
    assert net == 4_170_133
    # credit notes beyond sales: a negative earning rounds away from zero like Excel's ROUND
    assert owner_row(commission(["C"], ["Li"], [-25], [0], [0], 0.02, 0.17), "Li")["earned_cents"] == -1


def test_owners_are_sorted_with_customers_without_owner_unassigned_last():
    report = commission(["C1", "C2", "C3"], ["王", None, "Li"], [100] * 3, [0] * 3, [0] * 3, 0.1, 0.13)
    assert report.by_owner["owner"].tolist() == ["Li", "王", UNASSIGNED]
    assert report.by_customer.set_index("customer").loc["C2", "owner"] == UNASSIGNED


def test_each_customer_may_carry_its_own_vat_rate():
    report = commission(["C1", "C2"], ["Li", "Li"], [0, 0], [11_700, 11_300], [0, 0], 0.1, [0.17, Fraction(13, 100)])
    assert report.by_customer["collections_net_cents"].tolist() == [10_000, 10_000]


@pytest.mark.parametrize("args, column, row", [
    ((["C1", "C1"], ["Li", "Li"], [1, 1], [0, 0], [0, 0], 0.02, 0.17), "customers", 2),
    ((["C1", ""], ["Li", "Li"], [1, 1], [0, 0], [0, 0], 0.02, 0.17), "customers", 2),
    ((["C1"], ["Li"], [1], [0], [0], 2, 0.17), "rate", None),
    ((["C1"], ["Li"], [1], [0], [0], -0.01, 0.17), "rate", None),
    ((["C1"], ["Li"], [1], [0], [0], 0.02, 17), "vat_rate", None),
    ((["C1", "C2"], ["Li", "Li"], [1, 1], [0, 0], [0, 0], 0.02, [0.17, 1]), "vat_rate", 2),
    ((["C1", "C2"], ["Li"], [1, 1], [0, 0], [0, 0], 0.02, 0.17), "customers", None),
])
def test_bad_input_is_refused_naming_the_column_and_row(args, column, row):
    with pytest.raises(CrmInputError) as caught:
        commission(*args)
    assert (caught.value.issues[0].column, caught.value.issues[0].row) == (column, row)


def test_a_repeated_customer_names_the_first_row_too():
    with pytest.raises(CrmInputError) as caught:
        commission(["C1", "C2", "C1"], ["Li"] * 3, [1] * 3, [0] * 3, [0] * 3, 0.02, 0.17)
    assert caught.value.issues[0].code == IssueCode.DUPLICATE_CUSTOMER and "row 1" in caught.value.issues[0].message


cents = st.integers(-10**11, 10**11)
customer_rows = st.lists(st.tuples(st.sampled_from(["Li", "Wang", "Zhao", None]), cents, cents, cents),
                         min_size=1, max_size=12)


@given(customer_rows, st.integers(0, 1000), st.sampled_from([0.0, 0.13, 0.16, 0.17]))
def test_net_payable_is_payable_less_clawed_back_and_the_total_is_the_sum_of_the_owners(rows, permille, vat):
    report = commission([f"C{n}" for n in range(len(rows))], [r[0] for r in rows], [r[1] for r in rows],
                        [r[2] for r in rows], [r[3] for r in rows], permille / 1000, vat)
    owners = report.by_owner
    assert (owners["net_payable_cents"] == owners["payable_cents"] - owners["clawed_back_cents"]).all()
    assert (owners["earned_cents"] - owners["withheld_cents"] + owners["released_cents"]
            == owners["payable_cents"]).all()
    assert ((owners["withheld_cents"] >= 0) & (owners["released_cents"] >= 0)).all()
    for column in ["customers", *FIGURES]:
        assert report.total[column] == int(owners[column].sum())
    assert report.total["customers"] == len(rows)


@given(customer_rows, st.integers(0, 1000))
def test_nothing_is_paid_beyond_what_was_earned_unless_collections_exceed_sales(rows, permille):
    report = commission([f"C{n}" for n in range(len(rows))], [r[0] for r in rows], [r[1] for r in rows],
                        [r[2] for r in rows], [r[3] for r in rows], permille / 1000, 0.17)
    for owner in report.by_owner.itertuples():
        if owner.collections_net_cents <= owner.net_sales_cents:
            assert owner.payable_cents <= owner.earned_cents and owner.released_cents == 0


@given(st.lists(st.integers(0, 10**10), min_size=1, max_size=8), st.integers(0, 1000))
def test_an_owner_s_commission_does_not_depend_on_how_the_sales_are_split(sales, permille):
    split = commission([f"C{n}" for n in range(len(sales))], ["Li"] * len(sales), sales, [0] * len(sales),
                       [0] * len(sales), permille / 1000, 0.17)
    whole = commission(["C"], ["Li"], [sum(sales)], [0], [0], permille / 1000, 0.17)
    assert split.total["earned_cents"] == whole.total["earned_cents"]


# ---------------------------------------------------------------- from the ledger


def li_ledger(extra=()):
    frame = pd.DataFrame([
        ("2010-01-10", "C1", "opening balance", 11_700), ("2010-03-01", "C1", "invoice", 100_000),
        ("2010-06-01", "C1", "receipt", 117_000), ("2010-12-01", "C1", "write-off", 11_700),
        ("2010-05-01", "C9", "invoice", 10_000), *extra],
        columns=["date", "customer", "type", "amount"])
    ledger = normalize_ledger(frame)
    assert ledger.errors == []
    return ledger.rows


def test_the_material_s_case_from_a_ledger_with_the_write_off_document_type():
    report = commission_from_ledger(li_ledger(), {"C1": "Li"}, Period.year(2010), Policy())
    li = owner_row(report, "Li")
    assert (li["earned_cents"], li["payable_cents"], li["clawed_back_cents"], li["net_payable_cents"]) == (
        200_000, 200_000, 20_000, 180_000)
    unassigned = owner_row(report, UNASSIGNED)  # C9 has no owner: shown, never dropped
    assert (unassigned["earned_cents"], unassigned["withheld_cents"]) == (20_000, 20_000)


def test_the_ledger_form_takes_the_policy_rate_and_each_customer_s_own_vat():
    policy = Policy().with_values(commission_rate=0.05)
    report = commission_from_ledger(li_ledger(), {"C1": "Li", "C9": "Li"}, Period.year(2010), policy)
    assert owner_row(report, "Li")["earned_cents"] == 550_000
    # 2019 invoices straddle the VAT change: the receipt is taken net at the customer's own mix
    rows = normalize_ledger(pd.DataFrame([
        ("2019-03-01", "C1", "invoice", 100), ("2019-05-01", "C1", "invoice", 100),
        ("2019-06-01", "C1", "receipt", 229), ("2019-07-01", "C2", "receipt", 113)],
        columns=["date", "customer", "type", "amount"])).rows
    report = commission_from_ledger(rows, {"C1": "Li", "C2": "Wang"}, Period.year(2019), Policy())
    assert owner_row(report, "Li")["collections_net_cents"] == 20_000  # 229 / 1.145: fully collected
    assert owner_row(report, "Wang")["collections_net_cents"] == 10_000  # no 2019 sales: 13% on 2019-12-31
    assert owner_row(report, "Wang")["released_cents"] == 200


def test_documents_outside_the_period_do_not_count():
    report = commission_from_ledger(li_ledger([("2011-01-05", "C1", "receipt", 50_000)]), {"C1": "Li"},
                                    Period.year(2010), Policy())
    assert owner_row(report, "Li")["collections_net_cents"] == 10_000_000


def test_the_policy_refuses_a_commission_rate_above_100_percent():
    with pytest.raises(CrmInputError, match="commission_rate"):
        Policy.from_pairs([("commission_rate", 2)])
