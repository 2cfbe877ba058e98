"""The demo register and a BuildReview workbook print cleanly: no error values or ``###`` on any
page, the Dashboard on one page, the whole register in a sane number of pages.

Printed by LibreOffice twice (tests.support.pdf_print): with stored values, as a viewer or Excel
without the add-in shows the file, and recalculated on load.  Each book is printed once per way.
"""
from __future__ import annotations

import pytest

from tests.support import pdf_print as pp
from tests.workbook.test_open_xml import demo_register, review_workbook

pytestmark = [pytest.mark.slow, pytest.mark.libreoffice]

DASHBOARD_TITLE = "客户分级与赊销额度 Customer tiers and credit lines"  # review_sheets.build_dashboard's A1
MAX_PAGES = 60


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict:
    demo = demo_register(tmp_path_factory.mktemp("demo"))
    return {"demo register": demo, "BuildReview workbook": review_workbook(demo, tmp_path_factory.mktemp("review"))}


@pytest.fixture(scope="module", params=[(book, way) for book in ("demo register", "BuildReview workbook")
                                        for way in ("stored values", "recalculated")],
                ids=lambda p: f"{p[0]}, {p[1]}")
def printout(request, books, tmp_path_factory, soffice) -> pp.Printout:
    pp.require_poppler()
    book, way = request.param
    out = tmp_path_factory.mktemp("pdf")
    return pp.read_pdf(pp.print_pdf(books[book], out, recalc=way == "recalculated"))


def test_no_error_values_or_hashes_in_print(printout):
    hits = pp.error_hits(printout)
    assert len(hits) == 0, f"{printout.pdf.name}: {pp.describe_hits(hits)}"


def test_dashboard_prints_on_one_page(printout):
    assert "Dashboard" in printout.sheets, f"no Dashboard among the printed sheets {list(printout.sheets)}"
    pages = printout.sheets["Dashboard"]
    titled = [n for n, text in enumerate(printout.pages, start=1) if DASHBOARD_TITLE in text]
    assert pages.start in titled, f"the Dashboard's title is on pages {titled}, its sheet starts on {pages.start}"
    assert len(pages) == 1, f"the Dashboard prints on {len(pages)} pages ({pages.start}-{pages.stop - 1})"


def test_whole_register_prints_in_a_sane_number_of_pages(printout):
    pages = len(printout.pages)
    per_sheet = ", ".join(f"{name} {len(numbers)}" for name, numbers in printout.sheets.items())
    assert pages < MAX_PAGES, f"{printout.pdf.name} prints on {pages} pages: {per_sheet}"
