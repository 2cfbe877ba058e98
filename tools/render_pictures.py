"""Pictures of the demo register for the documentation: ``python -m tools.render_pictures [--out DIR]``.

Builds the demo register (``crm-addin demo``) in a temporary folder, prints it to PDF with
headless LibreOffice showing the stored values (as Excel shows the file it opens), and renders
with poppler's pdftoppm at 80 dpi the Dashboard's first page (the whole Dashboard once it fits one
page, as tests/workbook/test_print.py requires) to ``DIR/dashboard.png`` and the Register's first
page to ``DIR/register.png`` (``DIR`` defaults to docs/images).  Sheets are found by the PDF's
outline, which Calc writes with one entry per sheet.  Needs LibreOffice and poppler-utils.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from crm_app.cli.main import main as crm_addin
from tests.support.pdf_print import print_pdf, read_pdf, render_png

ROOT = Path(__file__).resolve().parents[1]
PICTURES = {"dashboard.png": "Dashboard", "register.png": "Register"}  # file -> sheet, first page


def render(out: Path) -> list[Path]:
    """Write the pictures into ``out``; return their paths."""
    with tempfile.TemporaryDirectory(prefix="crm-pictures-") as tmp:
        if crm_addin(["demo", "--out", tmp, "--quiet"]) != 0:
            raise RuntimeError("crm-addin demo failed")
        printout = read_pdf(print_pdf(Path(tmp) / "demo_register.xlsm", tmp, recalc=False))
        return [render_png(printout.pdf, printout.sheets[sheet].start, out / name)
                for name, sheet in PICTURES.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder of the PNGs")
    for path in render(parser.parse_args(argv).out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
