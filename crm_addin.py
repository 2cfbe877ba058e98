"""crm-addin: the module Excel's xlwings add-in imports (UDF module) and the macro entry points.

Set this module as "UDF Modules" in the xlwings ribbon or the workbook's xlwings.conf sheet.
Worksheet functions live in udfs/ by topic and are re-exported here, because xlwings registers
the functions found in the imported module. Nothing here holds business rules: the core is
crm_core, the file jobs are crm_app.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """`python -m crm_addin ...` is the same as the `crm-addin` command."""
    from crm_app.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
