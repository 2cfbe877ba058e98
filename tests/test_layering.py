"""The layers import only downwards: core <- io <- engines <- register, workbook, cli; only the
Excel layer (udfs/, its macros, crm_addin.py) imports xlwings; no installed module imports the
test tooling or pytest."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "crm_core"
EXCEL_LIBRARIES = ("xlwings", "win32com", "pywintypes")
TEST_TOOLING = ("pytest", "hypothesis", "tests", "tools")

# What each layer may import of the project (first two name parts); anything else is a breach.
ALLOWED = {
    "crm_core": {"crm_core"},
    "crm_app.io": {"crm_core", "crm_app.io"},
    "crm_app.engines": {"crm_core", "crm_app.io", "crm_app.engines"},
    "crm_app.register": {"crm_core", "crm_app.io", "crm_app.engines", "crm_app.register", "crm_app.workbook"},
    "crm_app.workbook": {"crm_core", "crm_app.io", "crm_app.workbook", "crm_app.register"},
    "crm_app.cli": {"crm_core", "crm_app"},
    "udfs": {"crm_core", "udfs", "crm_app.engines"},  # worksheet functions: the core, and files via engines
    "udfs.macros": {"crm_core", "crm_app", "udfs"},  # macros run the app's workflows
    "crm_addin": {"udfs", "crm_app.cli"},  # the UDF module Excel imports: the udfs re-exported, and the CLI
}
EXCEL_LAYERS = ("udfs", "udfs.macros", "crm_addin")


def project_imports(path: Path) -> set[str]:
    """Every module the file imports (relative imports resolved), as written."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module)
    return found


def layer_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "udfs" and len(parts) > 2 and parts[1] == "macros":
        return "udfs.macros"
    return parts[0] if parts[0] in ("crm_core", "udfs", "crm_addin") else ".".join(parts[:2])


def installed_sources() -> list[Path]:
    return [ROOT / "crm_addin.py", *(p for folder in ("crm_core", "crm_app", "udfs") for p in (ROOT / folder).rglob("*.py"))]


def test_every_layer_imports_only_the_layers_below_it():
    breaches = []
    for path in installed_sources():
        layer = layer_of(path)
        if layer not in ALLOWED:  # crm_app/__init__.py, __main__.py: the entry point
            assert path.parent == ROOT / "crm_app", f"{path} is in no layer"
            continue
        for name in project_imports(path):
            top = ".".join(name.split(".")[:2]) if name.startswith("crm_app.") else name.split(".")[0]
            project = top.split(".")[0] in ("crm_core", "crm_app", "udfs", "crm_addin")
            if project and not any(top == a or top.startswith(a + ".") or name.startswith(a + ".") or name == a
                                   for a in ALLOWED[layer]):
                breaches.append(f"{path.relative_to(ROOT)} ({layer}) imports {name}")
    assert not breaches, "\n".join(breaches)


def test_only_the_excel_layer_imports_xlwings():
    for path in installed_sources():
        if layer_of(path) in EXCEL_LAYERS:
            continue
        bad = {n for n in project_imports(path) if n.split(".")[0] in EXCEL_LIBRARIES}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_no_installed_module_imports_the_test_tooling():
    for path in installed_sources():
        bad = {n for n in project_imports(path) if n.split(".")[0] in TEST_TOOLING}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_every_core_module_loads_nothing_from_the_excel_side():
    modules = [f"crm_core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    forbidden = ("xlwings", "openpyxl", "udfs", "crm_app", "crm_addin", "win32com")
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"core imports {out.stdout.strip()}"
    assert len(modules) >= 10


def test_the_layer_check_catches_a_breach(tmp_path, monkeypatch):
    """The checker itself: a core module importing the app is reported."""
    fake = ROOT / "crm_core" / "_layering_probe.py"
    fake.write_text("from crm_app.io import files\n", encoding="utf-8")
    try:
        try:
            test_every_layer_imports_only_the_layers_below_it()
        except AssertionError as breach:
            assert "_layering_probe.py (crm_core) imports crm_app.io" in str(breach)
        else:
            raise AssertionError("the breach was not reported")
    finally:
        fake.unlink()
