"""The register's sales sheets (domain.md section 10): the Funnel (promotion rates from an earlier
stage snapshot against the Register's stage tiers, the average deal, the customers a target needs,
recalculated natively in LibreOffice to the core's counts) and the Commission sheet (per owner and
quarter, the core's figures: owner Li 2,000 payable, 200 clawed back, 1,800 net)."""
from __future__ import annotations

import re
import zipfile
from dataclasses import replace

import openpyxl
import pandas as pd
import pytest

from crm_app.register import schema as rs
from crm_app.workbook.builder import SHEETS, write_register
from crm_app.workbook.commission_sheet import COMMISSION, TABLE_TOP
from crm_app.workbook.data import register_data
from crm_app.workbook.funnel_sheet import (
    FUNNEL,
    INPUT_ROW,
    PLAN_TOP,
    RATES_TOP,
    SNAPSHOT_TOP,
    ceil_div,
    floor_div,
)
from crm_app.workbook.register_sheets import reg_col
from crm_core.commission import commission_from_ledger
from crm_core.demo import demo_ledger
from crm_core.funnel import average_deal, funnel_plan, promotion_rates, rates_in_use
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.values import units

STAMP = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def small():
    ledger = normalize_ledger(demo_ledger(customers=40, yearly_sales=2_000_000), source="small")
    return register_data(ledger, generated_at=STAMP)


@pytest.fixture(scope="module")
def small_path(small, tmp_path_factory):
    return write_register(small, tmp_path_factory.mktemp("sales") / "small.xlsx")


def _column(ws, col: str, first: int, last: int) -> list:
    return [ws[f"{col}{r}"].value for r in range(first, last + 1)]


# ---------------------------------------------------------------- policy keys


def test_funnel_rates_are_policy_keys_named_when_wrong():
    assert Policy().funnel_rates == {"E_D": 0.5, "D_C": 0.25, "C_B": 0.5, "B_A": 0.5}
    pairs = [(k, v) for k, v in Policy().to_pairs() if not k.startswith("funnel_rate.")]
    with pytest.raises(CrmInputError) as missing:
        Policy.from_pairs([*pairs, ("funnel_rate.E_D", 0.5)])
    assert "funnel_rate.D_C is missing" in str(missing.value)
    for value, says in ((0, "must be above 0"), (1.5, "write 1.5%"), (0.12345, "more than 4 decimals")):
        with pytest.raises(CrmInputError, match=re.escape(says)):
            Policy().with_values(funnel_rates={"E_D": value, "D_C": 0.25, "C_B": 0.5, "B_A": 0.5}).validate()
    with pytest.raises(CrmInputError, match="no such step"):
        Policy().with_values(funnel_rates={**Policy().funnel_rates, "A_Z": 0.5}).validate()
    assert Policy.from_pairs([("funnel_rate.E_D", "40%"), ("funnel_rate.D_C", 0.2), ("funnel_rate.C_B", 0.5),
                              ("funnel_rate.B_A", 1)]).funnel_rates["E_D"] == 0.4


def test_rates_in_use_take_the_measured_rate_only_where_someone_was_promoted():
    measured = promotion_rates(["E", "E", "E", "D", "C", "B"], ["D", "E", "A", "D", "B", ""])
    used = rates_in_use(measured)
    assert used["measured"].tolist()[:3] == [0.6667, 0.0, 1.0]  # 2 of 3, half-up to 0.01%
    assert used["rate"].tolist() == [0.6667, 0.25, 1.0, 0.5]  # D->C none promoted, B->A none staged: the policy's
    assert used["source"].str.startswith("measured").tolist() == [True, False, True, False]


@pytest.mark.parametrize("num, den", [(60, 1), (200000, 3333), (199999, 10000), (5, 5), (0, 7), (2**52, 3)])
def test_floor_and_ceil_formulas_are_exact_whole_number_division(num, den):
    """The sheet's INT-with-remainder division, evaluated with Python floats as a spreadsheet does."""
    def evaluate(formula: str) -> int:
        text = formula.replace("INT(", "int(").replace("IF(", "_if(").replace("<0,", "<0 and True,")
        return eval(text, {"int": lambda x: int(x // 1), "_if": lambda c, a, b: a if c else b})

    assert evaluate(floor_div(str(num), str(den))) == num // den
    assert evaluate(ceil_div(str(num), str(den))) == -(-num // den)


# ---------------------------------------------------------------- the Funnel sheet


def test_funnel_sheet_caches_the_cores_plan_at_the_policy_rates(small, small_path):
    ws = openpyxl.load_workbook(small_path, data_only=True)[FUNNEL]
    target, deal = ws[f"E{INPUT_ROW}"].value, ws[f"E{INPUT_ROW + 1}"].value
    assert target == units(small.review.net_sales_cents)
    core_deal = average_deal(small.rows, small.review.period, small.policy)
    assert deal == units(core_deal.cents) and ws[f"E{INPUT_ROW + 2}"].value == core_deal.customers
    rates = _column(ws, "F", RATES_TOP + 1, RATES_TOP + 4)
    assert rates == [0.5, 0.25, 0.5, 0.5]  # no earlier snapshot in a new review: the policy's, and said so
    assert set(_column(ws, "G", RATES_TOP + 1, RATES_TOP + 4)) == {"政策默认 policy default"}
    plan = funnel_plan(small.review.net_sales_cents, core_deal.cents, rates)
    assert _column(ws, "B", PLAN_TOP + 1, PLAN_TOP + 5) == plan["customers"].tolist()
    assert _column(ws, "C", PLAN_TOP + 1, PLAN_TOP + 5) == [0] * 5  # no stage tiers typed in the Register yet
    formulas = openpyxl.load_workbook(small_path)[FUNNEL]
    assert formulas[f"E{INPUT_ROW}"].value == "=NetSalesTotal" and not formulas[f"E{INPUT_ROW}"].protection.locked
    assert "ROUNDUP" not in formulas[f"B{PLAN_TOP + 2}"].value and "INT(" in formulas[f"B{PLAN_TOP + 2}"].value
    assert formulas[f"E{RATES_TOP + 1}"].value.startswith("=ROUND(Policy!$B$")
    assert not formulas[f"A{SNAPSHOT_TOP + 1}"].protection.locked and formulas.protection.sheet


def test_funnel_pyramid_is_a_centred_horizontal_stacked_bar(small_path):
    with zipfile.ZipFile(small_path) as z:
        charts = [z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/charts/chart")]
    funnel = [c for c in charts if "Sales funnel" in c]
    assert len(funnel) == 1
    xml = funnel[0]
    assert '<barDir val="bar"/>' in xml and '<grouping val="stacked"/>' in xml and '<overlap val="100"/>' in xml
    assert "<a:noFill/>" in xml  # the offset series is invisible
    assert f"Funnel'!$E${PLAN_TOP + 1}:$E${PLAN_TOP + 5}" in xml or f"Funnel!$E${PLAN_TOP + 1}" in xml
    assert '<orientation val="maxMin"/>' in xml  # A on top
    assert re.search(r"<a:t>[\u4e00-\u9fff]+.* [A-Za-z]", xml) and 'rot="-' not in xml


def _snapshot_book(small, path, tmp_path, earlier, now, target=None, deal=None):
    """`path` with the Register's stage tiers and the Funnel's earlier snapshot typed in (what a
    user does), saved as a copy for LibreOffice; returns that copy and the codes used."""
    book = openpyxl.load_workbook(path)
    codes = small.register["customer"].tolist()[:len(now)]
    register, funnel = book[rs.REGISTER], book[FUNNEL]
    col = reg_col("stage_tier")
    for i, stage in enumerate(now):
        assert register[f"A{i + 2}"].value == codes[i]
        register[f"{col}{i + 2}"] = stage
    for i, (code, stage) in enumerate(earlier):
        funnel[f"A{SNAPSHOT_TOP + 1 + i}"] = code
        funnel[f"B{SNAPSHOT_TOP + 1 + i}"] = stage
    if target is not None:
        funnel[f"E{INPUT_ROW}"], funnel[f"E{INPUT_ROW + 1}"] = target, deal
    copy = tmp_path / "typed.xlsx"
    book.save(copy)
    return copy, codes


def _core_plan(small, earlier, codes, now, target_cents, deal_cents):
    stage_now = dict(zip(codes, now))
    measured = promotion_rates([s for _, s in earlier], [stage_now.get(c, "") for c, _ in earlier])
    rates = rates_in_use(measured, small.policy)
    return rates, funnel_plan(target_cents, deal_cents, rates["rate"])


@pytest.mark.libreoffice
def test_funnel_recalculates_in_libreoffice_to_a_20_b_40_c_80_d_320_e_640(soffice, small, small_path, tmp_path):
    from tests.support.libreoffice import recalculate

    # now: D,E | C,D,D,D | B,C | A,B -> E->D 1 of 2, D->C 1 of 4, C->B 1 of 2, B->A 1 of 2
    now = ["D", "E", "C", "D", "D", "D", "B", "C", "A", "B"]
    then = ["E", "E", "D", "D", "D", "D", "C", "C", "B", "B"]
    codes = small.register["customer"].tolist()[:len(now) + 1]
    earlier = [*zip(codes, then), ("NOT-A-CUSTOMER", "E"), (codes[-1], None)]
    copy, codes = _snapshot_book(small, small_path, tmp_path, earlier, now, target=1_000_000, deal=50_000)
    ws = openpyxl.load_workbook(recalculate(copy, tmp_path / "out"), data_only=True)[FUNNEL]
    rates, plan = _core_plan(small, earlier, codes, now, 100_000_000, 5_000_000)
    assert rates["rate"].tolist() == [0.5, 0.25, 0.5, 0.5] and set(rates["source"]) == {"measured / 实测"}
    assert _column(ws, "B", RATES_TOP + 1, RATES_TOP + 4) == [2, 4, 2, 2]
    assert _column(ws, "C", RATES_TOP + 1, RATES_TOP + 4) == [1, 1, 1, 1]
    assert _column(ws, "F", RATES_TOP + 1, RATES_TOP + 4) == rates["rate"].tolist()
    assert set(_column(ws, "G", RATES_TOP + 1, RATES_TOP + 4)) == {"实测 measured"}
    assert _column(ws, "B", PLAN_TOP + 1, PLAN_TOP + 5) == plan["customers"].tolist() == [20, 40, 80, 320, 640]
    assert _column(ws, "C", PLAN_TOP + 1, PLAN_TOP + 5) == [1, 2, 2, 4, 1]  # the Register's stages now
    assert _column(ws, "D", PLAN_TOP + 1, PLAN_TOP + 5) == [19, 38, 78, 316, 639]
    assert _column(ws, "E", PLAN_TOP + 1, PLAN_TOP + 5) == [310, 300, 280, 160, 0]


@pytest.mark.libreoffice
def test_funnel_recalculates_to_the_core_where_rates_are_fractions_and_a_step_falls_back(soffice, small, small_path,
                                                                                        tmp_path):
    """E->D 1 of 3 (33.33%), D->C 1 of 2 (one straight to A), C->B none staged (the policy's 50%), B->A 1 of 3;
    the default target and average deal (formulas over the Register), recalculated."""
    from tests.support.libreoffice import recalculate

    now = ["D", "E", "E", "D", "B", "A", "B", "A"]
    then = ["E", "E", "E", "D", "B", "B", "B", "D"]
    codes = small.register["customer"].tolist()[:len(now)]
    earlier = list(zip(codes, then))
    copy, codes = _snapshot_book(small, small_path, tmp_path, earlier, now)
    ws = openpyxl.load_workbook(recalculate(copy, tmp_path / "out"), data_only=True)[FUNNEL]
    deal = average_deal(small.rows, small.review.period, small.policy).cents
    assert ws[f"E{INPUT_ROW}"].value == units(small.review.net_sales_cents) and ws[f"E{INPUT_ROW + 1}"].value == \
        units(deal)
    rates, plan = _core_plan(small, earlier, codes, now, small.review.net_sales_cents, deal)
    assert rates["rate"].tolist() == [0.3333, 0.5, 0.5, 0.3333]
    assert _column(ws, "F", RATES_TOP + 1, RATES_TOP + 4) == rates["rate"].tolist()
    assert _column(ws, "G", RATES_TOP + 1, RATES_TOP + 4)[2] == "政策默认 policy default"
    assert _column(ws, "B", PLAN_TOP + 1, PLAN_TOP + 5) == plan["customers"].tolist()


# ---------------------------------------------------------------- the Commission sheet


@pytest.fixture(scope="module")
def owners_data():
    """domain.md section 10's owner Li, an owner Wang who has collected 40%, a customer without an owner."""
    raw = pd.DataFrame({
        "date": ["2017-01-10", "2017-03-10", "2017-06-10", "2017-02-10", "2017-05-10", "2017-02-10", "2017-11-05"],
        "customer": ["L1", "L1", "L1", "W1", "W1", "U1", "U1"],
        "type": ["invoice", "receipt", "write_off", "invoice", "receipt", "invoice", "receipt"],
        "amount": [100000, 117000, 11700, 50000, 23400, 1000, 10]})
    data = register_data(normalize_ledger(raw, source="sales"), year=2017, generated_at=STAMP)
    register = data.register.assign(owner=data.register["customer"].map({"L1": "Li", "W1": "Wang"}).fillna(""))
    return replace(data, review=replace(data.review, register=register))


def test_commission_sheet_li_2000_payable_200_clawed_back_1800_net(owners_data, tmp_path):
    path = write_register(owners_data, tmp_path / "owners.xlsx")
    ws = openpyxl.load_workbook(path, data_only=True)[COMMISSION]
    assert "2017-01-01..2017-12-31" in ws["A1"].value and ws["D3"].value == 0.02
    rows = {r[0]: r[1:11] for r in ws.iter_rows(min_row=TABLE_TOP + 1, max_row=TABLE_TOP + 4, max_col=11,
                                                values_only=True)}
    assert list(rows) == ["Li", "Wang", "unassigned / 未分配", "合计 Total"]
    # customers, net sales, collections and write-offs excl. VAT, earned, payable, withheld, released, clawed back, net
    assert rows["Li"] == (1, 100000, 100000, 10000, 2000, 2000, 0, 0, 200, 1800)
    assert rows["Wang"][4:7] == (1000, 400, 600)
    core = commission_from_ledger(owners_data.rows, {"L1": "Li", "W1": "Wang"}, owners_data.review.period)
    assert rows["合计 Total"][-1] == units(core.total["net_payable_cents"])
    assert "crm-addin" in ws["A2"].value  # the add-in's values, said as on the Ageing and KPIs sheets
    quarters = [r for r in ws.iter_rows(min_row=TABLE_TOP + 8, max_col=12, values_only=True) if r[0]]
    li = {r[0]: r[2:] for r in quarters if r[1] == "Li"}
    assert list(li) == ["2017-01-01..2017-03-31", "2017-04-01..2017-06-30", "2017-07-01..2017-09-30",
                        "2017-10-01..2017-12-31"]
    # invoiced and collected in the first quarter, written off in the second, nothing after
    assert [v[-1] for v in li.values()] == [2000, -200, 0, 0]
    fills = {ws.cell(TABLE_TOP + 1, c).fill.fgColor.rgb for c in range(1, 12)}
    assert fills == {"00E2EFDA"}  # green: computed by the add-in


def test_sales_sheets_are_in_the_register_and_in_the_template(tmp_path):
    from crm_app.workbook.builder import build_workbook

    assert SHEETS.index(FUNNEL) < SHEETS.index(COMMISSION) < SHEETS.index(rs.ABOUT)
    path = tmp_path / "template.xlsx"
    path.write_bytes(build_workbook(macros=False))
    book = openpyxl.load_workbook(path)
    assert book[FUNNEL][f"B{PLAN_TOP + 1}"].value.startswith("=IF(") and book[COMMISSION].protection.sheet
    assert "需要 crm-addin" in book[COMMISSION]["A2"].value
    assert book[rs.POLICY]["B2"].value is not None
    policy_keys = {book[rs.POLICY][f"A{r}"].value: book[rs.POLICY][f"B{r}"] for r in range(2, 80)}
    assert policy_keys["funnel_rate.D_C"].value == 0.25 and policy_keys["funnel_rate.D_C"].number_format == "0.00%"


ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "Err:", "#ERR")


@pytest.fixture(scope="module")
def staged(small):
    """The small register with a customer file giving five customers a need and an expected close:
    stage tiers A, B, D (potential), E (no need), D (beyond six months) in the Register's formula."""
    day = small.as_of
    codes = small.register["customer"].tolist()[:5]
    file = pd.DataFrame({"customer": codes, "need": ["有", "有", "潜在", "无", "有"],
                         "expected_close": [day + pd.Timedelta(days=10), day + pd.Timedelta(days=60), None, None,
                                            day + pd.Timedelta(days=400)]})
    ledger = normalize_ledger(demo_ledger(customers=40, yearly_sales=2_000_000), source="small")
    return register_data(ledger, generated_at=STAMP, customer_file=file)


@pytest.mark.libreoffice
def test_funnel_and_commission_recalculate_to_their_cached_values_and_the_template_to_no_errors(
        soffice, staged, tmp_path):
    from crm_app.workbook.builder import build_workbook
    from tests.support.libreoffice import recalculate

    path = write_register(staged, tmp_path / "staged.xlsx")
    cached = openpyxl.load_workbook(path, data_only=True)
    assert _column(cached[FUNNEL], "C", PLAN_TOP + 1, PLAN_TOP + 5) == [1, 1, 0, 2, 1]  # A, B, C, D, E now
    computed = openpyxl.load_workbook(recalculate(path, tmp_path / "filled"), data_only=True)
    for name in (FUNNEL, COMMISSION):
        differ = [f"{name}!{c.coordinate}: cached {c.value!r}, recalculated {computed[name][c.coordinate].value!r}"
                  for row in cached[name].iter_rows() for c in row
                  if c.value is not None and c.value != computed[name][c.coordinate].value]
        assert differ == []
    template = tmp_path / "template.xlsx"
    template.write_bytes(build_workbook(macros=False))
    fresh = openpyxl.load_workbook(recalculate(template, tmp_path / "template"), data_only=True)
    for name in (FUNNEL, COMMISSION):
        found = [f"{name}!{c.coordinate}={c.value}" for row in fresh[name].iter_rows() for c in row
                 if isinstance(c.value, str) and c.value.startswith(ERRORS)]
        assert found == []
    assert [fresh[FUNNEL][f"F{r}"].value for r in range(RATES_TOP + 1, RATES_TOP + 5)] == [0.5, 0.25, 0.5, 0.5]
