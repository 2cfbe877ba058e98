"""The whole reallocation flow on the register the workbook builder writes (demo data), .xlsx and .xlsm."""
from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from crm_app.register.load import load_register, read_request_csv, request_table
from crm_app.register.schema import REALLOCATION, REALLOCATION_FIELDS, cents_from_cell
from crm_app.register.workflow import verify
from tests.excel.test_macros import FakeBook
from tests.support.registers import ROLES, run_cli
from tests.support.signing import SIGN_ARGS, sign
from udfs.macros import reallocation as macros

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_data():
    from crm_app.workbook.builder import review_register_data
    from crm_core.demo import demo_ledger
    from crm_core.ledger import normalize_ledger
    from crm_core.policy import Policy

    ledger = normalize_ledger(demo_ledger(seed=2010, customers=120), source="demo")
    return review_register_data(ledger, Policy(), None)


def built(demo_data, path: Path) -> Path:
    from crm_app.workbook.builder import write_register

    return write_register(demo_data, path)


def parts(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [n for n in z.namelist() if "vbaProject" in n or "/charts/" in n]


@pytest.mark.parametrize("suffix", ["xlsx", "xlsm"])
def test_suggest_apply_verify_on_the_built_register(demo_data, tmp_path, suffix):
    register = built(demo_data, tmp_path / f"register.{suffix}")
    assert verify(register) == []
    before = load_register(sign(register))
    kept = parts(register)
    raise_to = before.register["customer"].iloc[1]
    request = tmp_path / "request.csv"
    done = run_cli("suggest", register, "--amount", "5万", "--for", raise_to, "--out", request)
    assert done.returncode == 0, done.stderr
    assert read_request_csv(request).lines["change_cents"].sum() == 0
    done = run_cli("reallocate", register, "--request", request, *ROLES)
    assert done.returncode == 0, done.stdout + done.stderr
    after = load_register(register)
    assert after.stamp.version == before.stamp.version + 1
    assert int(after.register["credit_line_cents"].sum()) == cents_from_cell(after.about["budget"])
    assert len(after.audit) == 1 + len(read_request_csv(request).lines)  # the sign-off, the batch
    assert parts(register) == kept  # VBA project and charts survive the rewrite
    assert run_cli("verify", register).returncode == 0


def test_apply_macro_on_the_built_register(demo_data, tmp_path, monkeypatch):
    register = sign(built(demo_data, tmp_path / "register.xlsm"))
    reg = load_register(register).register
    roomy = reg.loc[reg["credit_line_cents"] - reg["open_balance_cents"] >= 1_500_000, "customer"].tolist()
    book = openpyxl.load_workbook(register, keep_vba=True)
    ws = book[REALLOCATION]
    labels = {c.label: c.key for c in REALLOCATION_FIELDS}
    names = {"requester": "Sales Director Wang", "approver": "GM Li", "recorder": "Finance Zhao"}
    for row in ws.iter_rows(max_col=1):
        key = labels.get(row[0].value)
        if key in names:
            ws.cell(row=row[0].row, column=2, value=names[key])
    header, (customer_col, change_col, reason_col) = request_table(ws)
    lines = [(roomy[0], 20000, "growth"), (roomy[1], -12000, "late"), (roomy[2], -8000, "late")]
    for k, (customer, change, reason) in enumerate(lines, start=1):
        ws.cell(row=header + k, column=customer_col + 1, value=customer)
        ws.cell(row=header + k, column=change_col + 1, value=change)
        ws.cell(row=header + k, column=reason_col + 1, value=reason)
    book.save(register)
    log: list = []
    monkeypatch.setattr(macros, "_caller", lambda: FakeBook(register, log))
    report = macros.check_reallocation_request()
    assert report is not None and report.ok, log
    assert macros.apply_reallocation() is True, log
    audit = load_register(register).audit.iloc[1:]  # below the sign-off
    assert audit["customer"].tolist() == [c for c, _, _ in lines]
    assert set(audit["approver"]) == {"GM Li"}
    assert verify(register) == []


@pytest.mark.libreoffice
def test_formulas_recalculate_on_the_new_lines(demo_data, tmp_path, soffice):
    """After an apply the formulas are intact: recalculated, they see the new lines."""
    from crm_app.register.schema import REGISTER, REGISTER_COLUMNS
    from tests.support.libreoffice import recalculated_workbook

    register = sign(built(demo_data, tmp_path / "register.xlsx"))
    errors_before = formula_errors(recalculated_workbook(register))
    reg = load_register(register).register
    roomy = reg.loc[reg["credit_line_cents"] - reg["open_balance_cents"] >= 1_500_000, "customer"].tolist()
    request = tmp_path / "r.csv"
    request.write_text(f"customer,change,reason\n{roomy[0]},15000,up\n{roomy[1]},-15000,down\n", encoding="utf-8")
    assert run_cli("reallocate", register, "--request", request, *ROLES).returncode == 0
    book = recalculated_workbook(register)
    col = {c.key: i for i, c in enumerate(REGISTER_COLUMNS)}
    rows = {r[col["customer"]]: r for r in book[REGISTER].iter_rows(min_row=2, values_only=True)}
    for customer in roomy[:2]:
        row = rows[customer]
        assert row[col["utilisation"]] == pytest.approx(row[col["open_balance"]] / row[col["credit_line"]])
    assert formula_errors(book) <= errors_before  # (LibreOffice lacks the add-in's functions)


def formula_errors(book) -> set[str]:
    return {f"{ws.title}!{c.coordinate}" for ws in book.worksheets for r in ws.iter_rows() for c in r
            if isinstance(c.value, str) and c.value in ("#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#N/A", "#NUM!")}


def test_full_flow_on_the_demo_command_output(tmp_path):
    assert run_cli("demo", "--out", tmp_path, "--quiet").returncode == 0
    (register,) = [p for p in tmp_path.glob("demo_register.*") if p.suffix in (".xlsx", ".xlsm")]
    assert run_cli("verify", register).returncode == 0
    assert run_cli("sign-off", register, *SIGN_ARGS).returncode == 0  # the walkthrough starts with the sign-off
    raise_to = load_register(register).register["customer"].iloc[0]
    request = tmp_path / "request.csv"
    assert run_cli("suggest", register, "--amount", "10万", "--for", raise_to, "--out", request).returncode == 0
    done = run_cli("reallocate", register, "--request", request, *ROLES)
    assert done.returncode == 0, done.stdout + done.stderr
    again = run_cli("reallocate", register, "--request", request, *ROLES)
    assert again.returncode == 2 and "already applied" in again.stdout
    assert run_cli("verify", register).returncode == 0
