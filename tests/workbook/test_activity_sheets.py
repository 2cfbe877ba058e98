"""The Contacts and Service sheets and the FollowUps sheet that reads the contact log: bilingual,
validated inputs; native formulas whose cached values are the core's (and LibreOffice's); the
user's typed rows kept through the workflow's rewrites."""
from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from crm_app.register import schema as rs
from crm_app.workbook.activity_sheets import (
    CHANNEL_LIST,
    follow_up_table,
    read_activity,
    service_table,
    with_demo_activity,
)
from crm_app.workbook.builder import build_workbook, write_register
from crm_app.workbook.data import register_data
from crm_app.workbook.register_sheets import Ctx
from crm_core.contacts import CONTACT_COLUMNS
from crm_core.demo import demo_ledger
from crm_core.ledger import normalize_ledger
from crm_core.service import SERVICE_COLUMNS, open_complaint_customers, read_service

NEEDS = ["有", "有", "潜在", "无", "有", ""]  # with CLOSES: stage tiers A, B, D, E, C and none


@pytest.fixture(scope="module")
def data():
    """A 40-customer register with stage tiers (need, expected close) and the demo's logs."""
    ledger = normalize_ledger(demo_ledger(customers=40, yearly_sales=2_000_000), source="small")
    codes = sorted(ledger.rows["customer"].unique())
    closes = [pd.Timestamp("2026-01-15"), pd.Timestamp("2026-03-01"), None, None, pd.Timestamp("2026-05-01"), None]
    file = pd.DataFrame({"customer": codes, "need": [NEEDS[i % 6] for i in range(len(codes))],
                         "expected_close": [closes[i % 6] for i in range(len(codes))]})
    return with_demo_activity(register_data(ledger, generated_at="2026-01-01T00:00:00+00:00", customer_file=file))


@pytest.fixture(scope="module")
def path(data, tmp_path_factory) -> Path:
    return write_register(data, tmp_path_factory.mktemp("activity") / "register.xlsm")


def ctx_of(data) -> Ctx:
    return Ctx(data.policy, data, len(data.register))


# ----------------------------------------------------------------------------- the template
def test_template_has_the_input_sheets_bilingual_validated_and_protected():
    wb = openpyxl.load_workbook(__import__("io").BytesIO(build_workbook(macros=False)))
    for name, columns in ((rs.CONTACTS, CONTACT_COLUMNS), (rs.SERVICE, SERVICE_COLUMNS)):
        ws = wb[name]
        assert [ws.cell(1, i + 1).value for i in range(len(columns))] == [c.heading for c in columns]
        assert ws.protection.sheet and not ws["A2"].protection.locked and ws["A2"].fill.fgColor.rgb.endswith("FFF2CC")
        rules = {(str(dv.sqref).split(":")[0], dv.type, dv.formula1) for dv in ws.data_validations.dataValidation}
        assert ("A2", "date", "1") in rules and ("B2", "list", "Reg_customer") in rules
        assert {"D2" if name == rs.CONTACTS else "C2"} <= {r[0] for r in rules if r[2] == CHANNEL_LIST}
    assert ("H2", "whole", "1") in {(str(dv.sqref).split(":")[0], dv.type, dv.formula1)
                                    for dv in wb[rs.SERVICE].data_validations.dataValidation}
    follow = wb["FollowUps"]
    assert follow["E2"].value.startswith('=IF($A2="","",IF(_xlfn.MAXIFS(Contacts!$A:$A,Contacts!$B:$B,')


# ----------------------------------------------------------------------------- the filled register
def test_the_logs_are_on_their_sheets_and_read_back(data, path):
    found = read_activity(openpyxl.load_workbook(path))
    assert len(found.contacts) == len(data.activity.contacts) == 150
    assert len(found.service) == len(data.activity.service) == 40
    assert found.contacts["customer"].tolist() == data.activity.contacts["customer"].tolist()


def test_follow_ups_cache_the_cores_values_and_the_dashboard_counts_them(data, path):
    table = follow_up_table(ctx_of(data))
    wb = openpyxl.load_workbook(path, data_only=True)
    ws = wb["FollowUps"]
    late = int((table["days_overdue"] > 0).sum())
    assert late > 0 and ws["L1"].value == late
    dash = wb[rs.DASHBOARD]
    row = next(c.row for c in dash["A"] if isinstance(c.value, str) and "Follow-ups overdue" in c.value)
    assert dash[f"B{row}"].value == late
    for i, rec in enumerate(table.head(12).to_dict("records"), start=2):
        assert ws[f"A{i}"].value == rec["customer"] and (ws[f"D{i}"].value or "") == rec["stage_tier"]
        assert ws[f"E{i}"].value == (None if pd.isna(rec["last_contact"]) else rec["last_contact"].to_pydatetime())
        assert ws[f"H{i}"].value == (None if pd.isna(rec["days_overdue"]) else rec["days_overdue"])
    owners = [c.value for c in ws["K"][4:4 + late]]
    assert len(owners) == late and all(owners)  # the overdue list, by owner


def test_service_review_caches_the_cores_review(data, path):
    cases, review = service_table(ctx_of(data))
    ws = openpyxl.load_workbook(path, data_only=True)[rs.SERVICE]
    shown = [[ws.cell(r, c).value for c in range(16, 24)] for r in range(2, 2 + len(review))]
    assert [s[0] for s in shown] == review["tier"].tolist()
    assert [s[3:7] for s in shown] == review[["cases", "open", "response_breaches", "resolve_breaches"]].values.tolist()
    assert review["cases"].iloc[-1] == 40 and review["response_breaches"].iloc[-1] > 0
    head = next(c.row for c in ws["P"] if c.value == "未解决投诉客户 Customers with open complaints")
    listed = {ws.cell(r, 16).value for r in range(head + 2, head + 42)} - {None}
    assert listed == open_complaint_customers(cases) and listed


@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_activity_sheets_to_the_cached_values(soffice, path, tmp_path):
    from tests.support.libreoffice import recalculate
    from tests.workbook.test_workbooks import _cache_differences, _errors

    computed = openpyxl.load_workbook(recalculate(path, tmp_path), data_only=True)
    mine = ("FollowUps", rs.CONTACTS, rs.SERVICE, rs.DASHBOARD)
    assert [e for e in _errors(openpyxl.load_workbook(path), computed) if e.startswith(mine)] == []
    assert [d for d in _cache_differences(path, computed) if d.startswith(mine)] == []
    # the recalculation saw the logs: the overdue count and the review are not all blank
    assert computed["FollowUps"]["L1"].value > 0 and computed[rs.SERVICE]["S8"].value == 40


# ----------------------------------------------------------------------------- the workflow's rewrites
def _type_rows(path: Path) -> tuple[list, list]:
    """A contact and a service case typed by a user below the logs (as openpyxl, Excel would save them)."""
    wb = openpyxl.load_workbook(path, keep_vba=True)
    contact = [datetime(2025, 12, 30), wb[rs.REGISTER]["A2"].value, "王芳", "拜访 visit", "typed by hand", "报价", None]
    case = [datetime(2025, 12, 29, 10), wb[rs.REGISTER]["A3"].value, "电话 phone", "typed complaint", "王芳", None, None,
            None]
    for name, row in ((rs.CONTACTS, contact), (rs.SERVICE, case)):
        ws = wb[name]
        r = 2 + len(read_activity(wb).contacts if name == rs.CONTACTS else read_activity(wb).service)
        for c, value in enumerate(row, start=1):
            ws.cell(r, c).value = value
    wb.save(path)
    return contact, case


def _logs(path: Path):
    found = read_activity(openpyxl.load_workbook(path))
    return found.contacts.astype(str).values.tolist(), found.service.astype(str).values.tolist()


def test_a_reallocation_keeps_every_typed_row(data, path, tmp_path):
    from crm_app.register.load import Approval, Request
    from crm_app.register.workflow import reallocate, verify
    from crm_core.reallocation import Roles
    from tests.support.signing import sign

    target = tmp_path / "r.xlsm"
    shutil.copy(path, target)
    contact, case = _type_rows(target)
    before = _logs(target)
    assert len(before[0]) == 151 and before[0][-1][4] == "typed by hand" and before[1][-1][3] == "typed complaint"
    sign(target)
    reg = data.register.assign(headroom=data.register["credit_line_cents"] - data.register["open_balance_cents"])
    down, up = reg.sort_values("headroom", ascending=False)["customer"].iloc[:2]
    lines = pd.DataFrame({"row": [2, 3], "customer": [up, down], "change_cents": [1_000_00, -1_000_00],
                          "reason": ["more orders", ""]})
    outcome = reallocate(target, Request(lines, [], "test"), Approval(Roles("sales director", "CEO", "finance"),
                                                                      None, None, "", ""))
    assert outcome.written, outcome.report.verdict
    assert verify(target) == []
    assert _logs(target) == before
    # the typed case counts in the register's own review once recalculated: here, as the core reads it
    wb = openpyxl.load_workbook(target)
    log = read_service(read_activity(wb).service.assign(row=lambda f: range(2, len(f) + 2)),
                       data.register["customer"])
    assert case[1] in open_complaint_customers(log)


def test_a_refresh_keeps_every_typed_row(path, tmp_path):
    from udfs.macros.register import refresh_register_file

    target = tmp_path / "f.xlsm"
    shutil.copy(path, target)
    _type_rows(target)
    before = _logs(target)
    refresh_register_file(target)
    assert _logs(target) == before


def test_a_register_without_logs_shows_empty_ones(data):
    bare = replace(data, activity=None)
    ctx = ctx_of(bare)
    assert follow_up_table(ctx)["last_contact"].isna().all()
    assert service_table(ctx)[1]["cases"].iloc[-1] == 0


def _awkward(data):
    """Logs with what users type by mistake: a date as text, a lower-case code, one not in the
    register, a time of day, a serial number, two contacts on the last day, a score of 7 or 'good'."""
    from crm_core.contacts import Activity

    contacts = pd.DataFrame([
        (datetime(2025, 12, 1, 15, 30), "C0001", None), ("2025-12-05", "C0001", None),
        (datetime(2025, 12, 3), "c0002", datetime(2025, 12, 4)), (datetime(2025, 12, 3), "C0002", datetime(2025, 12, 10)),
        (datetime(2025, 12, 3), "ZZ9", None), (datetime(2025, 12, 10), "C0004", datetime(2025, 12, 15)),
        (45992, "C0005", None), (datetime(2025, 12, 20), "C0006", datetime(2025, 12, 21))],
        columns=["date", "customer", "next_date"]).assign(who="李明", channel="pigeon", summary="s", next_step=None)
    service = pd.DataFrame([
        (datetime(2025, 12, 1, 9), "C0001", datetime(2025, 12, 2, 15), None, 7),
        ("yesterday", "C0002", None, None, None),
        (datetime(2025, 12, 2), "C0003", datetime(2025, 12, 1), datetime(2025, 12, 3), "good"),
        (datetime(2025, 11, 1), "ZZ9", None, None, 5), (datetime(2025, 12, 20), "c0005", datetime(2025, 12, 20),
                                                       datetime(2025, 12, 21), 4.5)],
        columns=["received", "customer", "responded", "resolved", "satisfaction"]).assign(
        channel="电话 phone", issue="x", owner="王芳")
    return replace(data, activity=Activity(contacts[[c.key for c in CONTACT_COLUMNS]],
                                           service[[c.key for c in SERVICE_COLUMNS]]))


def test_awkward_logs_follow_the_rule(data):
    ctx = ctx_of(_awkward(data))
    t = follow_up_table(ctx).set_index("customer")
    assert t.loc["C0001", "last_contact"] == pd.Timestamp("2025-12-01 15:30")  # the text date left out
    assert t.loc["C0001", "due"] == pd.Timestamp("2025-12-02 15:30")  # A: a day later, to the minute
    assert t.loc["C0002", "stated_next"] == pd.Timestamp("2025-12-10") and t.loc["C0002", "stage_tier"] == "B"
    assert t.loc["C0004", "due"] == pd.Timestamp("2025-12-15")  # E: the promise alone
    assert t.loc["C0005", "last_contact"] == pd.Timestamp("2025-12-01")  # a serial number is a date
    review = service_table(ctx)[1].set_index("tier")
    assert review.loc["A", ["cases", "open", "response_breaches", "resolve_breaches"]].tolist() == [1, 1, 1, 1]
    assert np.isnan(review.loc["A", "satisfaction"]) and review.loc["C", "satisfaction"] == 4.5
    assert review.loc["合计 Total", "cases"] == 4  # the case received 'yesterday' does not count


@pytest.mark.libreoffice
def test_libreoffice_agrees_with_the_core_on_awkward_logs(soffice, data, tmp_path):
    from tests.support.libreoffice import recalculate
    from tests.workbook.test_workbooks import _cache_differences, _errors

    path = write_register(_awkward(data), tmp_path / "awkward.xlsx")
    out = tmp_path / "lo"
    out.mkdir()
    computed = openpyxl.load_workbook(recalculate(path, out), data_only=True)
    mine = ("FollowUps", rs.CONTACTS, rs.SERVICE, rs.DASHBOARD)
    assert [e for e in _errors(openpyxl.load_workbook(path), computed) if e.startswith(mine)] == []
    assert [d for d in _cache_differences(path, computed) if d.startswith(mine)] == []
    assert computed[rs.SERVICE]["S8"].value == 4 and computed[rs.SERVICE]["U2"].value == 1
