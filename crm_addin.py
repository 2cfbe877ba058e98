"""crm-addin: the module Excel's xlwings add-in imports (UDF module) and the macro entry points.

Set this module as "UDF Modules" in the xlwings ribbon or the workbook's xlwings.conf sheet.
Worksheet functions live in udfs/ by topic and are re-exported here, because xlwings registers
the functions found in the imported module. Nothing here holds business rules: the core is
crm_core, the file jobs are crm_app.
"""
from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType

from udfs import UDF_MODULES

# ---------------------------------------------------------------- worksheet functions (UDFs)
# xlwings registers the functions it finds as attributes of this module, so every public UDF
# of every topic module is copied here. A UDF is a function defined in its topic module whose
# name starts with "crm_" (or that xlwings' decorator marked with __xlfunc__).
UDF_NAMES: list[str] = []


def _udfs_of(module: ModuleType) -> dict[str, object]:
    return {name: obj for name, obj in vars(module).items()
            if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", "") == module.__name__
            and (name.startswith("crm_") or hasattr(obj, "__xlfunc__"))}


def _export_udfs() -> None:
    for topic in UDF_MODULES:
        for name, func in _udfs_of(import_module(f"udfs.{topic}")).items():
            if name in UDF_NAMES:
                raise ImportError(f"worksheet function {name} is defined twice (udfs.{topic})")
            globals()[name] = func
            UDF_NAMES.append(name)


_export_udfs()
# ---------------------------------------------------------------- end worksheet functions
from udfs.macros.reallocation import apply_reallocation, check_reallocation_request, sign_off_register, suggest_reallocation_cuts, verify_register  # noqa: E402,F401,I001
from udfs.macros.register import build_review, refresh_register  # noqa: E402,F401,I001


def main(argv: list[str] | None = None) -> int:
    """`python -m crm_addin ...` is the same as the `crm-addin` command."""
    from crm_app.cli.main import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
