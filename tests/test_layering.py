"""The core stays pure: importing it must not reach xlwings, openpyxl or the Excel boundary."""
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "crm_core"
FORBIDDEN = ("xlwings", "openpyxl", "udfs", "crm_app", "crm_addin", "win32com")


def test_importing_every_core_module_loads_nothing_from_the_excel_side():
    modules = [f"crm_core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=CORE.parent)
    assert out.stdout.strip() == "", f"core imports {out.stdout.strip()}"
    assert len(modules) >= 10


def test_core_sources_do_not_name_the_excel_side():
    for path in CORE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("import xlwings", "import openpyxl", "from openpyxl", "from xlwings"):
            assert name not in text, f"{path.name} contains {name!r}"
