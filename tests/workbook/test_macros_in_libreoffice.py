"""LibreOffice opens the register, imports the embedded VBA project (built from vba/*.bas, never
by LibreOffice) and runs its macros with the expected results: the nearest this machine comes to
Excel running them. The RunPython macros need Excel with the xlwings add-in; the plain-VBA
functions below them run anywhere."""
from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

from crm_app.register import schema as rs
from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR
from tests.support import libreoffice as lo

pytestmark = [pytest.mark.libreoffice, pytest.mark.slow]

TEMPLATE = WORKBOOKS_DIR / TEMPLATE_NAME
DEMO_TIMEOUT = 900  # the demo register is recalculated on load: minutes on a busy 2-core machine


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from crm_app.cli.main import main

    lo.require_libreoffice(macros=True)
    folder = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(folder), "--quiet"]) == 0
    return folder / "demo_register.xlsm"


def over_limit(path: Path) -> int:
    """Customers whose open balance is above their credit line, from the register's stored values."""
    rows = openpyxl.load_workbook(path, data_only=True, read_only=True)[rs.REGISTER].iter_rows(values_only=True)
    header = [" ".join(str(h).split()) if h else "" for h in next(rows)]
    line, balance = header.index("赊销额度 Credit line"), header.index("应收余额 Open balance")
    numbers = (int, float)
    return sum(1 for r in rows if r[0] and isinstance(r[line], numbers) and isinstance(r[balance], numbers)
               and 0 < r[line] < r[balance])


def test_count_over_limit_runs_from_the_embedded_project_on_the_demo_register(demo, tmp_path):
    copy = Path(shutil.copy2(demo, tmp_path / "demo_copy.xlsm"))
    expected = over_limit(copy)
    assert expected > 0  # the demo has customers over their line: a 0 would prove nothing
    assert lo.run_basic_macro(copy, "Register", "CountOverLimit", timeout=DEMO_TIMEOUT) == expected


def test_request_change_cents_sums_the_form_of_the_template(tmp_path):
    lo.require_libreoffice(macros=True)
    book = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    form = book[rs.REALLOCATION]
    for row, (customer, change) in enumerate([("C7", 100000), ("B117", -20000), ("C3", -30000), ("D24", -40000.5)], 13):
        form.cell(row=row, column=1, value=customer)
        form.cell(row=row, column=2, value=change)
    book.save(tmp_path / "form.xlsm")
    assert lo.run_basic_macro(tmp_path / "form.xlsm", "Register", "RequestChangeCents") == 999950  # +9,999.50
