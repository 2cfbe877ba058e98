"""The register's analytics sheets: KPIs (by tier and by customer, the Dashboard's headline DSO
and CEI), the Ageing sheet's tiers and total, and the Portfolio sheet (relationship KPIs, the
Pareto x rate cross-table, concentration, raise candidates). Each holds the core's figures."""
from __future__ import annotations

import math

import openpyxl
import pytest

from crm_app.register import schema as rs
from crm_app.workbook.builder import build_workbook, write_register
from crm_app.workbook.data import register_data
from crm_app.workbook.kpi_sheet import KPIS, TABLE_TOP
from crm_app.workbook.portfolio_sheet import PORTFOLIO
from crm_core.demo import demo_ledger
from crm_core.ledger import normalize_ledger
from crm_core.receivables import receivable_kpis
from crm_core.trends import TwoPeriods, raise_candidates, raise_evidence
from crm_core.values import units


@pytest.fixture(scope="module")
def data():
    return register_data(normalize_ledger(demo_ledger(), source="demo"), generated_at="2026-01-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def book(data, tmp_path_factory):
    path = write_register(data, tmp_path_factory.mktemp("demo") / "demo_register.xlsx")
    return openpyxl.load_workbook(path)


def _rows(ws, first: int, last_col: int | None = None) -> list[tuple]:
    """Rows from `first` until the first blank in column A."""
    out = []
    for row in ws.iter_rows(min_row=first, max_col=last_col, values_only=True):
        if row[0] is None:
            break
        out.append(row)
    return out


def test_kpis_sheet_totals_are_the_core_s_and_tiers_add_up(data, book):
    ws = book[KPIS]
    tiers = _rows(ws, TABLE_TOP + 1)
    assert [t[0] for t in tiers] == ["A", "B", "C", "D", "合计 Total"]  # the demo has no unrated customer
    total = tiers[-1]
    assert total[1] == len(data.register) == sum(t[1] for t in tiers[:-1])
    core = receivable_kpis(data.rows, data.as_of, 12, data.policy).table.iloc[-1]
    assert total[2] == units(int(core["credit_sales_cents"])) and total[4] == units(int(core["receivables_cents"]))
    assert math.isclose(total[7], core["dso"]) and math.isclose(total[10], core["cei"])
    # tier amounts add up to the total to the cent, the total's ratios come from the sums
    for column in range(2, 7):
        assert round(sum(t[column] for t in tiers[:-1]), 2) == total[column]
    customers = _rows(ws, TABLE_TOP + len(tiers) + 3)
    assert len(customers) == len(data.register) + 1 and customers[-1][0] == "合计 Total"
    assert customers[-1][1:6] == total[2:7]


def test_dashboard_shows_the_headline_dso_and_cei_from_the_kpis_sheet(book):
    dash = book[rs.DASHBOARD]
    rows = {r[0]: r[1] for r in dash.iter_rows(min_col=1, max_col=2, values_only=True) if r[0]}
    dso = next(v for k, v in rows.items() if k.startswith("应收周转天数 DSO"))
    assert dso == '=IF(ISNUMBER(Kpi_dso),Kpi_dso,"")'
    name = book.defined_names["Kpi_dso"].attr_text
    total_row = TABLE_TOP + len(_rows(book[KPIS], TABLE_TOP + 1))
    assert name == f"KPIs!$H${total_row}"


def test_ageing_sheet_has_each_tier_and_the_total(data, book):
    ws = book["Ageing"]
    width = len(data.aging.columns)  # customer, buckets..., total
    customers = _rows(ws, 4, width)
    assert customers[-1][0] == "合计 Total" and len(customers) == len(data.aging) + 1
    total = customers[-1]
    for column in range(1, width):
        assert round(sum(r[column] for r in customers[:-1]), 2) == total[column]
    tiers = [row[width + 1:] for row in ws.iter_rows(min_row=4, max_row=8, values_only=True)]
    assert tiers[-1][0] == "合计 Total" and tiers[-1][1] == len(data.aging)
    assert tiers[-1][2:] == total[1:]  # the tiers' total is the customers' total


def test_portfolio_lists_the_core_s_raise_candidates_with_their_evidence(data, book):
    ws = book[PORTFOLIO]
    start = next(r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 1).value or "").startswith("调增候选"))
    listed = _rows(ws, start + 2)
    chosen = raise_candidates(raise_evidence(data.rows, TwoPeriods.ending_with(data.review.period), data.policy))
    assert [r[0] for r in listed] == chosen["customer"].tolist() and len(listed) > 0
    assert all("raise candidate" in r[7] for r in listed)


def test_portfolio_cross_table_counts_every_customer_once(data, book):
    ws = book[PORTFOLIO]
    start = next(r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 1).value or "").startswith("ABC 等级 x"))
    table = _rows(ws, start + 2, 7)
    assert table[-1][0] == "合计 Total" and table[-1][-1] == len(data.register)
    assert sum(r[-1] for r in table[:-1]) == len(data.register)


def test_the_template_s_analytics_sheets_hold_headers_and_the_note_only(tmp_path):
    path = tmp_path / "template.xlsx"
    path.write_bytes(build_workbook(macros=False))
    book = openpyxl.load_workbook(path)
    for name in (KPIS, PORTFOLIO):
        ws = book[name]
        numbers = [c.coordinate for row in ws.iter_rows() for c in row if isinstance(c.value, (int, float))]
        assert numbers == [] and "crm-addin" in ws["A2"].value


def test_a_register_written_twice_keeps_the_same_analytics(data, tmp_path):
    first = write_register(data, tmp_path / "a.xlsx")
    second = write_register(data, tmp_path / "b.xlsx")
    for name in (KPIS, PORTFOLIO):
        a = [r for r in openpyxl.load_workbook(first)[name].iter_rows(min_row=3, values_only=True)]
        b = [r for r in openpyxl.load_workbook(second)[name].iter_rows(min_row=3, values_only=True)]
        assert a == b


def test_collection_review_shows_the_relationship_kpis_under_the_migration(data, book):
    from crm_core.relationships import relationship_table

    ws = book["Collection"]
    top = next(r for r in range(1, 60) if str(ws.cell(r, 13).value or "").startswith("客户关系指标"))
    core = relationship_table(data.rows, TwoPeriods.ending_with(data.review.period), data.policy)
    shown = [(ws.cell(r, 13).value, ws.cell(r, 17).value) for r in range(top + 3, top + 3 + len(core))]
    assert [n for _, n in shown] == core["customers"].tolist()
    assert shown[2][0] == "新增客户 new customers" and ws.cell(top + 3 + len(core), 13).value.startswith("比率")
    moved = next(r for r in range(1, top) if ws.cell(r, 13).value == "等级变动客户 Customers that moved tier")
    up, down = (dict(shown)[k] for k in ("升级客户 moved up a tier", "降级客户 moved down a tier"))
    previous, now = data.previous_tiers, data.register["rate_tier"].to_numpy()
    assert up + down == int(((previous != "") & (previous != now)).sum()) and moved < top
