"""The Register's customer file and sales stage (issue 20): need and expected close giving the
stage tier as a native formula, the customer file columns, tenure, the duplicate flag, and
registers written before these columns still going through the workflow."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crm_app.register import schema as rs
from crm_app.register.load import load_register
from crm_app.register.workflow import verify
from crm_app.workbook.builder import write_register
from crm_app.workbook.data import register_data
from crm_app.workbook.register_sheets import reg_col, register_customer_file
from crm_core.analysis import tenure_years
from crm_core.issues import IssueCode
from crm_core.ledger import normalize_ledger
from crm_core.tiers import stage_tiers

AS_OF = pd.Timestamp("2025-12-31")  # the review date of a 2025 review
CODES = [f"C0{i}" for i in range(1, 9)]
# need, expected close: every tier and each horizon's edge (EDATE(2025-12-31, 1) = 2026-01-31)
STAGES = [("有", "2026-01-31"), ("yes", "2026-02-01"), ("有", "2026-06-30"), ("有", "2026-07-01"),
          ("潜在", "2026-01-10"), ("无", None), (None, None), ("有", None)]


def _ledger():
    rows = []
    for i, code in enumerate(CODES):
        start = "2019-05-20" if i == 0 else f"2025-0{1 + i % 9}-15"
        rows += [(start, code, "invoice", 10_000 + 1000 * i), ("2025-11-30", code, "invoice", 5000),
                 ("2025-12-10", code, "receipt", round((10_000 + 1000 * i) * 1.13, 2) + 5000)]
    raw = pd.DataFrame(rows, columns=["date", "customer", "type", "amount"])
    raw["customer_name"] = raw["customer"].map(dict(zip(CODES, ["山西煤业有限公司", "山西煤业", "太原物流", "北京康泰",
                                                                 "上海金鹰", "广州天和", "深圳华强", "杭州西湖"])))
    raw["vat_rate"] = 0.13
    return normalize_ledger(raw, source="file.csv")


def _customer_file() -> pd.DataFrame:
    return pd.DataFrame({
        "customer": CODES,
        "need": [n for n, _ in STAGES],
        "expected_close": [pd.Timestamp(c) if c else None for _, c in STAGES],
        "phone": [None, None, "0351-1234567", None, None, None, "(0351) 123 4567", None],
        "address": ["太原市迎泽区新建路10号", None, None, None, None, None, None, None],
        "contact": ["王经理", None, None, None, None, None, None, None],
        "terms_days": [60, None, None, None, 0, None, None, None],
        "trading_since": [None, pd.Timestamp("2015-03-01"), None, None, None, None, None, None],
        "credit_notes": ["按时付款 pays on time", None, None, None, None, None, None, None],
    })


@pytest.fixture(scope="module")
def data():
    return register_data(_ledger(), year=2025, generated_at="2026-01-01T00:00:00+00:00",
                         customer_file=_customer_file())


@pytest.fixture(scope="module")
def path(data, tmp_path_factory) -> Path:
    return write_register(data, tmp_path_factory.mktemp("file") / "register.xlsx")


def _column(ws, key: str) -> list:
    col = reg_col(key)
    return [ws[f"{col}{r}"].value for r in range(2, len(CODES) + 2)]


def test_columns_follow_the_register_contract(path):
    ws = openpyxl.load_workbook(path)[rs.REGISTER]
    header = [ws.cell(row=1, column=c).value for c in range(1, ws.max_column + 1)]
    labels = [c.heading for c in [*rs.REGISTER_COLUMNS, *rs.TEMPORARY_COLUMNS, *rs.CUSTOMER_FILE_COLUMNS]]
    assert header == labels
    assert "账期天数\nTerms (days)" in header and "合作年限\nTenure (years)" in header


def test_cached_values_are_the_cores(path, data):
    ws = openpyxl.load_workbook(path, data_only=True)[rs.REGISTER]
    assert _column(ws, "customer") == CODES
    assert [v or "" for v in _column(ws, "stage_tier")] == ["A", "B", "C", "D", "D", "E", "", "D"]
    first = [datetime(2019, 5, 20), datetime(2015, 3, 1)] + [datetime(2025, 1 + i % 9, 15) for i in range(2, 8)]
    assert _column(ws, "trading_since") == first  # the file's, else the first ledger date
    assert _column(ws, "tenure") == [6, 10, 0, 0, 0, 0, 0, 0]
    assert _column(ws, "terms_days")[:2] == [60, None] and _column(ws, "contact")[0] == "王经理"
    flags = _column(ws, "flags")
    assert "可能重复 possible duplicate of C02 (same name / 名称相同)" in flags[0]
    assert flags[2].endswith("可能重复 possible duplicate of C07 (same phone / 电话相同)")
    assert all("可能重复" not in f for f in (flags[3], flags[4], flags[5], flags[7]) if f)


def test_stage_tier_and_tenure_are_formulas_on_the_inputs(path):
    ws = openpyxl.load_workbook(path)[rs.REGISTER]
    stage, tenure = ws[f"{reg_col('stage_tier')}2"].value, ws[f"{reg_col('tenure')}2"].value
    assert stage.startswith("=") and f"{reg_col('need')}2" in stage and "EDATE(AsOf,Policy!$B$" in stage
    assert tenure.startswith("=") and 'DATEDIF(' in tenure and "AsOf" in tenure


def test_inputs_are_yellow_unlocked_and_validated(path):
    ws = openpyxl.load_workbook(path)[rs.REGISTER]
    for key in rs.CUSTOMER_FILE_INPUTS:
        cell = ws[f"{reg_col(key)}3"]
        assert not cell.protection.locked, key
        assert cell.fill.fgColor.rgb.endswith("FFF2CC"), key
    for key in ("stage_tier", "tenure"):
        assert ws[f"{reg_col(key)}3"].protection.locked, key
    rules = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
    need = rules[f"{reg_col('need')}2"]
    assert need.type == "list" and "有" in need.formula1 and "潜在" in need.formula1
    assert rules[f"{reg_col('expected_close')}2"].type == "date"
    assert rules[f"{reg_col('trading_since')}2"].type == "date"
    terms = rules[f"{reg_col('terms_days')}2"]
    assert (terms.type, terms.operator, terms.formula1) == ("whole", "greaterThanOrEqual", "0")
    assert f"{reg_col('stage_tier')}2" not in rules  # computed, not picked


def test_customer_terms_date_the_ageing(data):
    plain = register_data(_ledger(), year=2025).aging.set_index("customer")
    own = data.aging.set_index("customer")
    # C01 owes 650 of the 5,650 invoiced on 2025-11-30: with 60 days' terms not yet due on 2025-12-31
    assert plain.loc["C01", "current / 未到期"] == 0
    assert own.loc["C01", "current / 未到期"] > 0
    assert own.loc["C01", "total"] == plain.loc["C01", "total"]


def test_the_loader_reads_the_customer_file(path):
    loaded = load_register(path)
    assert loaded.issues == [] and loaded.customer_file_issues == []
    file = loaded.customer_file.set_index("customer")
    assert file.loc["C01", "need"] == "有" and file.loc["C01", "terms_days"] == 60
    assert file.loc["C02", "expected_close"] == pd.Timestamp("2026-02-01")
    assert file.loc["C03", "phone"] == "0351-1234567"
    # what the loader reads is what a register is built from again: the same cells
    again = register_data(_ledger(), year=2025, customer_file=loaded.customer_file)
    shown = register_customer_file(again)
    assert shown == register_customer_file(register_data(_ledger(), year=2025, customer_file=_customer_file()))
    assert shown.stage == ["A", "B", "C", "D", "D", "E", "", "D"]


def test_bad_customer_file_values_are_named_by_row_and_column(path, tmp_path):
    wb = openpyxl.load_workbook(path)
    ws = wb[rs.REGISTER]
    ws[f"{reg_col('need')}3"] = "maybe later"
    ws[f"{reg_col('expected_close')}4"] = "soon"
    ws[f"{reg_col('terms_days')}5"] = -3
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    loaded = load_register(bad)
    found = {(i.row, i.column, i.code) for i in loaded.customer_file_issues}
    assert found == {(3, "需求 Need", IssueCode.UNKNOWN_TYPE), (4, "预计成交 Expected close", IssueCode.BAD_DATE),
                     (5, "账期天数 Terms (days)", IssueCode.BAD_NUMBER)}
    assert not any(i.is_error for i in loaded.customer_file_issues)
    assert "maybe later" in next(i.message for i in loaded.customer_file_issues if i.row == 3)
    assert loaded.issues == [] and verify(bad) == []  # the credit workflow is not held up by them
    file = loaded.customer_file.set_index("customer")
    assert file.loc["C02", "need"] == "" and file.loc["C04", "terms_days"] is None


def _older_register(path: Path, target: Path) -> Path:
    """The register as written before the customer file: no such columns, the stage typed."""
    wb = openpyxl.load_workbook(path, keep_vba=path.suffix == ".xlsm")
    ws = wb[rs.REGISTER]
    first = openpyxl.utils.column_index_from_string(reg_col("need"))
    stage = reg_col("stage_tier")
    for r in range(2, len(CODES) + 2):
        ws[f"{stage}{r}"] = "B"
    ws.delete_cols(first, len(rs.CUSTOMER_FILE_COLUMNS))
    wb.save(target)
    return target


def test_an_older_register_loads_and_verifies(path, tmp_path):
    old = _older_register(path, tmp_path / "old.xlsx")
    header = [c.value for c in openpyxl.load_workbook(old)[rs.REGISTER][1]]
    assert "需求\nNeed" not in header
    loaded = load_register(old)
    assert [i for i in loaded.issues if i.code == IssueCode.MISSING_COLUMN] == []
    assert loaded.issues == []
    assert (loaded.customer_file["need"] == "").all() and len(loaded.customer_file) == len(CODES)
    assert loaded.customer_file["terms_days"].isna().all()
    assert verify(old) == []


def test_an_older_register_reallocates(data, tmp_path):
    from crm_app.register.load import Approval, Request
    from crm_app.register.workflow import reallocate
    from crm_core.reallocation import Roles
    from tests.support.signing import sign

    built = write_register(data, tmp_path / "new.xlsm")
    old = _older_register(built, tmp_path / "old.xlsm")
    sign(old)
    reg = data.register.assign(headroom=data.register["credit_line_cents"] - data.register["open_balance_cents"])
    down, up = reg.sort_values("headroom", ascending=False)["customer"].iloc[:2]
    lines = pd.DataFrame({"row": [2, 3], "customer": [up, down], "change_cents": [100_00, -100_00],
                          "reason": ["more business", ""]})
    outcome = reallocate(old, Request(lines, [], "test"), Approval(Roles("sales director", "CEO", "finance")))
    assert outcome.written, outcome.report.moves["message"].tolist()
    assert verify(old) == []


@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_cores_stage_tiers_and_tenure(soffice, path, tmp_path):
    """The inputs changed (openpyxl keeps no cached value, so every formula is recalculated) and the
    review date moved: LibreOffice's stage tiers and tenures are the core's for the new inputs."""
    from tests.support.libreoffice import recalculate

    wb = openpyxl.load_workbook(path)
    ws = wb[rs.REGISTER]
    needs = ["有", "yes", " 潜在 ", "NO", "有", "y*", "明确", "有"]  # y*: no wildcard
    # on 2026-02-28 the horizons are 2026-03-28, 05-28 and 08-28 (EDATE, as the core's DateOffset)
    closes = [datetime(2026, 3, 28), datetime(2026, 3, 29), None, datetime(2026, 1, 1), datetime(2026, 8, 28),
              None, datetime(2025, 6, 30), datetime(2026, 5, 29)]
    since = [datetime(2016, 2, 29), None, datetime(2026, 3, 1), datetime(2020, 2, 28)] + [None] * 4
    for r, (n, c, s) in enumerate(zip(needs, closes, since), start=2):
        ws[f"{reg_col('need')}{r}"], ws[f"{reg_col('expected_close')}{r}"] = n, c
        ws[f"{reg_col('trading_since')}{r}"] = s
    day = datetime(2026, 2, 28)
    (sheet, ref), = wb.defined_names["AsOf"].destinations
    wb[sheet][ref.replace("$", "")] = day
    edited = tmp_path / "edited.xlsx"
    wb.save(edited)
    computed = openpyxl.load_workbook(recalculate(edited, tmp_path / "out"), data_only=True)[rs.REGISTER]
    want = stage_tiers(needs, closes, pd.Timestamp(day)).tolist()
    assert want == ["A", "B", "D", "E", "C", "", "A", "C"]
    assert [v or "" for v in _column(computed, "stage_tier")] == want
    tenure = tenure_years(since, pd.Timestamp(day))
    assert tenure[:4] == [9, None, None, 6]  # 2016-02-29: its tenth anniversary is not yet reached
    assert [None if v in (None, "") else v for v in _column(computed, "tenure")] == tenure
    # the flags (limits and the duplicate note) as the core writes them
    cached = openpyxl.load_workbook(path, data_only=True)[rs.REGISTER]
    assert [v or "" for v in _column(computed, "flags")] == [v or "" for v in _column(cached, "flags")]
    assert any("可能重复" in (v or "") for v in _column(computed, "flags"))


def test_a_long_duplicate_note_stays_within_excels_text_constants():
    from crm_app.workbook.register_sheets import flags_formula, register_flags

    note = "可能重复 possible duplicate of " + ", ".join(f"CUSTOMER-{i:045d}" for i in range(5)) + ' ("x")'
    formula = flags_formula(7, note)
    constants = re.findall(r'"((?:[^"]|"")*)"', formula)
    assert max(len(c) for c in constants) <= 255 and len(note) > 255
    assert "".join(c.replace('""', '"') for c in constants[-2:]) == note
    assert register_flags(0, 0, note) == note and register_flags(200, 100, note) == f"超额 over limit; {note}"
