"""The reference case of the domain brief (MM, 2010/2011), reproduced by the core."""
import pandas as pd
import pytest

from crm_core.collection import Period, customer_facts, rate_from_net
from crm_core.credit import allocate_credit, credit_budget_cents
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.reallocation import Register, apply_reallocation, check_reallocation
from crm_core.tiers import rate_tiers

WAN = 10_000 * 100  # one 万 in cents


def reference_ledger() -> pd.DataFrame:
    """X, Y, Z of the brief, in units of 万, invoiced and paid during 2010 (VAT 17%)."""
    rows = [
        ("2010-03-01", "X", "发票", 150 * 10_000), ("2010-06-01", "X", "回款", 140 * 10_000),
        ("2010-04-01", "Y", "发票", 85 * 10_000), ("2010-07-01", "Y", "回款", 110 * 10_000),
        ("2010-05-01", "Z", "发票", 195 * 10_000), ("2010-08-01", "Z", "回款", 210 * 10_000),
    ]
    return pd.DataFrame(rows, columns=["日期", "客户", "类型", "金额"])


def test_xyz_collection_rates_from_the_ledger():
    ledger = normalize_ledger(reference_ledger())
    assert ledger.issues == []
    facts = customer_facts(ledger.rows, Policy(), Period.year(2010)).set_index("customer")
    assert facts.loc["X", "collection_rate"] == pytest.approx(140 / (150 * 1.17))
    assert round(facts.loc["X", "collection_rate"] * 100, 2) == 79.77
    assert round(facts.loc["Y", "collection_rate"] * 100, 2) == 110.61
    assert round(facts.loc["Z", "collection_rate"] * 100, 2) == 92.04
    assert facts.loc["X", "net_sales_cents"] == 150 * WAN
    assert facts.loc["X", "gross_sales_cents"] == 1_755_000 * 100  # 175.5万 billed with VAT


def test_xyz_tiers_under_the_default_policy():
    rates = rate_from_net([140, 110, 210], [150, 85, 195], 0.17)
    assert list(rate_tiers(rates)) == ["C", "A", "B"]


def test_vat_is_applied_by_invoice_date():
    policy = Policy()
    assert policy.vat_rate_on("2010-06-30") == 0.17
    assert policy.vat_rate_on("2018-04-30") == 0.17
    assert policy.vat_rate_on("2018-05-01") == 0.16
    assert policy.vat_rate_on("2019-03-31") == 0.16
    assert policy.vat_rate_on("2019-04-01") == 0.13


def test_budget_2011_is_936_wan():
    assert credit_budget_cents(4000 * WAN, 0.20, 0.17) == 936 * WAN


def reference_register() -> Register:
    customers = ["C7", "B117", "C3", "D24", "A1"]
    tiers = ["C", "B", "C", "D", "A"]
    sales = [500, 800, 400, 300, 2000]  # 万, 4000万 in all
    budget = credit_budget_cents(4000 * WAN, 0.20, 0.17)
    lines = allocate_credit(tiers, [s * WAN for s in sales], budget)
    index = pd.Index(customers)
    return Register(pd.Series(lines, index=index), pd.Series(tiers, index=index),
                    balances_cents=pd.Series([0] * 5, index=index),
                    allocated_cents=pd.Series(lines, index=index))


def request(changes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"customer": list(changes), "change_cents": [v * 100 for v in changes.values()],
                         "reason": "reference case"})


def test_reference_batch_passes_and_keeps_the_total():
    register = reference_register()
    assert int(register.lines_cents.sum()) == 936 * WAN
    batch = request({"C7": 100_000, "B117": -20_000, "C3": -30_000, "D24": -50_000})
    new_lines, result = apply_reallocation(register, batch)
    assert result.ok, result.verdict
    assert int(new_lines.sum()) == 936 * WAN
    assert new_lines["C7"] == register.lines_cents["C7"] + 100_000 * 100
    kinds = dict(zip(result.moves["customer"], result.moves["kind"]))
    assert kinds["C3"].startswith("within") and kinds["D24"].startswith("across")
    drift = result.tier_drift.set_index("tier")["drift_cents"]
    assert drift["C"] == 70_000 * 100 and drift["B"] == -20_000 * 100 and drift["D"] == -50_000 * 100


def test_reference_batch_with_d24_cut_by_4_wan_is_refused_naming_the_imbalance():
    batch = request({"C7": 100_000, "B117": -20_000, "C3": -30_000, "D24": -40_000})
    result = check_reallocation(reference_register(), batch)
    assert not result.ok
    assert "imbalance +10,000.00" in result.verdict
    assert "do not sum to zero" in result.verdict
