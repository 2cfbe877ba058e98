"""A small register workbook that follows crm_app.register.schema, for the workflow tests.

Budget = 40,000,000 x 20% x 1.17 = 9,360,000 (936万), split over C7, B117, C3, D24 and others.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl

from crm_app.register.schema import (
    ABOUT,
    ABOUT_KEYS,
    AUDIT,
    AUDIT_COLUMNS,
    POLICY,
    REALLOCATION,
    REALLOCATION_FIELDS,
    REGISTER,
    REGISTER_COLUMNS,
    REQUEST_COLUMNS,
    TEMPLATE_VERSION,
)

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 40_000_000 * 20 // 100 * 117 // 100  # 9,360,000
assert BUDGET == 9_360_000
# customer, tier, yearly allocation = starting line, open balance, collection rate
CUSTOMERS = [
    ("A1", "A", 2_000_000, 1_500_000, 0.99),
    ("A2", "A", 1_800_000, 1_000_000, 0.97),
    ("B5", "B", 1_200_000, 600_000, 0.90),
    ("B117", "B", 500_000, 300_000, 0.80),
    ("C3", "C", 400_000, 200_000, 0.72),
    ("C7", "C", 800_000, 700_000, 0.93),
    ("C9", "C", 1_660_000, 400_000, 0.75),
    ("D24", "D", 300_000, 100_000, 0.55),
    ("D30", "D", 700_000, 650_000, 0.60),
]
assert sum(c[2] for c in CUSTOMERS) == BUDGET
REFERENCE_BATCH = [("C7", "100000", "rate improved, sales growing"), ("B117", "-20,000", "pays late"),
                   ("C3", "-3万", "pays late"), ("D24", "-50000", "pays late")]
ROLES = ["--requester", "Sales Director Wang", "--approver", "GM Li", "--recorder", "Finance Zhao"]


def build_register(path: Path, policy: dict[str, object] | None = None, form: list | None = None) -> Path:
    """Write a register (.xlsx) with Register, Audit, About, Policy and Reallocation sheets."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = REGISTER
    ws.append([c.label for c in REGISTER_COLUMNS])
    for code, tier, line, balance, rate in CUSTOMERS:
        values = {"customer": code, "customer_name": f"Customer {code}", "rate_tier": tier,
                  "collection_rate": rate, "open_balance": balance, "allocated_line": line,
                  "credit_line": line, "utilisation": balance / line}
        ws.append([values.get(c.key) for c in REGISTER_COLUMNS])
    wb.create_sheet(AUDIT).append([c.label for c in AUDIT_COLUMNS])
    about = wb.create_sheet(ABOUT)
    about.append(["key", "value", "说明 Meaning"])
    stamp = {"template_version": TEMPLATE_VERSION, "register_version": 1, "budget_year": 2011,
             "budget": BUDGET, "policy_label": "default"}
    for key, value in stamp.items():
        about.append([key, value, ABOUT_KEYS[key]])
    pol = wb.create_sheet(POLICY)
    pol.append(["key", "value"])
    for key, value in (policy or {}).items():
        pol.append([key, value])
    write_form(wb.create_sheet(REALLOCATION), form or [])
    wb.save(path)
    return path


def write_form(ws, lines, fields: dict[str, object] | None = None) -> None:
    """The request form: labelled fields at the top, the request table below a header row."""
    fields = fields or {}
    ws.append(["赊销额度调整申请 Credit reallocation request"])
    for col in REALLOCATION_FIELDS:
        ws.append([col.label, fields.get(col.key)])
    ws.append([])
    ws.append([c.label for c in REQUEST_COLUMNS])
    for line in lines:
        ws.append(list(line))


def write_request(path: Path, lines=REFERENCE_BATCH) -> Path:
    text = "customer,change,reason\n" + "".join(f'{c},"{ch}",{r}\n' for c, ch, r in lines)
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crm_app", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_fixture_follows_the_contract(tmp_path):
    from crm_app.register.load import load_register
    from crm_app.register.workflow import verify

    path = build_register(tmp_path / "r.xlsx")
    loaded = load_register(path)
    assert loaded.issues == []
    assert int(loaded.register["credit_line_cents"].sum()) == BUDGET * 100
    assert loaded.stamp.version == 1
    assert verify(path) == []
