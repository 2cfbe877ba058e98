"""Print workbooks to PDF with headless LibreOffice and read the pages back with poppler.

A printout shows what no cell value does: ``###`` where a number is wider than its column, error
values a viewer would show, sheets spread over hundreds of pages.  Two ways to print
(:func:`print_pdf`):

* stored values (``recalc=False``): a fresh LibreOffice profile, whose default is never to
  recalculate OOXML files on load, so the cached values print, as a viewer or Excel without the
  add-in shows them;
* recalculated (``recalc=True``): tests.support.libreoffice's profile, which forces recalculation
  on load (OOXMLRecalcMode 0): what the formulas give without the add-in's functions.

Calc's PDF has one outline entry per printed sheet at its first page (``pdftohtml -xml``), which
gives each sheet's pages (:attr:`Printout.sheets`).  Needs poppler-utils (pdftotext, pdftohtml,
pdftoppm).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.libreoffice import LibreOfficeError, _run, _soffice_cmd, _workdir

__all__ = ["ERROR_MARKS", "Hit", "Printout", "describe_hits", "error_hits", "find_poppler", "print_pdf", "read_pdf",
           "render_png", "require_poppler"]

# What a printed cell shows instead of a value: too narrow a column, Excel's and Calc's errors.
ERROR_MARKS = ("###", "#NAME?", "#VALUE!", "#REF!", "#DIV/0!", "#N/A", "Err:")
POPPLER = ("pdftotext", "pdftohtml", "pdftoppm")


@dataclass(frozen=True)
class Printout:
    pdf: Path
    pages: list[str] = field(repr=False)  # the text of each page: pages[0] is page 1
    sheets: dict[str, range] = field(repr=False)  # printed sheet -> its pages (from 1), in order

    def sheet_of(self, page: int) -> str:
        return next((name for name, pages in self.sheets.items() if page in pages), "?")


@dataclass(frozen=True)
class Hit:
    mark: str
    page: int
    sheet: str
    line: str


# --------------------------------------------------------------------------- tools


def find_poppler() -> str | None:
    """Path of pdftotext when all of poppler's tools used here are on PATH, else None."""
    found = [shutil.which(tool) for tool in POPPLER]
    return found[0] if all(found) else None


def require_poppler() -> str:
    """pdftotext's path for tests; skip when missing, but fail when ``CI=true`` (CI must have it)."""
    import pytest  # lazy: the product never needs pytest

    found = find_poppler()
    if found is not None:
        return found
    reason = "poppler's pdftotext/pdftohtml/pdftoppm not installed: apt-get install poppler-utils"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required because CI=true)", pytrace=False)
    pytest.skip(reason)


def _poppler(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


# --------------------------------------------------------------------------- printing


@contextmanager
def _default_profile() -> Iterator[Path]:
    """Like libreoffice._workdir, but the profile starts empty: LibreOffice's own defaults."""
    root = Path(tempfile.mkdtemp(prefix="crm_lo_pdf_"))
    try:
        (root / "profile").mkdir()
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_pdf(src: str | os.PathLike[str], out_dir: str | os.PathLike[str], recalc: bool,
              timeout: float = 900) -> Path:
    """Print every sheet of a copy of ``src`` to ``out_dir/<stem>.pdf``; ``recalc`` as above."""
    src, out_dir = Path(src), Path(out_dir)
    with (_workdir() if recalc else _default_profile()) as root:
        work = root / "in" / src.name  # a copy: LibreOffice drops lock files beside its input
        work.parent.mkdir()
        shutil.copy2(src, work)
        cmd = _soffice_cmd(root, "--calc", "--convert-to", "pdf", "--outdir", str(root / "out"), str(work))
        code, stdout, stderr = _run(cmd, timeout)
        produced = root / "out" / f"{work.stem}.pdf"
        if code != 0 or not produced.is_file():  # soffice may exit 0 having written nothing
            raise LibreOfficeError(f"LibreOffice could not print {src.name} (exit {code}).\n"
                                   f"stdout: {stdout.strip()}\nstderr: {stderr.strip()}")
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(str(produced), out_dir / produced.name))


def read_pdf(pdf: str | os.PathLike[str]) -> Printout:
    """Each page's text (laid out as printed) and each sheet's pages."""
    pdf = Path(pdf)
    pages = _poppler("pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-").split("\f")[:-1]
    outline = _poppler("pdftohtml", "-xml", "-i", "-stdout", "-q", "-f", "1", "-l", "1", str(pdf))
    starts = [(html.unescape(name), int(page))
              for page, name in re.findall(r'<item page="(\d+)">([^<]*)</item>', outline)]
    ends = [page for _, page in starts[1:]] + [len(pages) + 1]
    return Printout(pdf, pages, {name: range(start, end) for (name, start), end in zip(starts, ends)})


def error_hits(printout: Printout) -> list[Hit]:
    """Every error mark printed, with its page, sheet and line of text."""
    return [Hit(mark, number, printout.sheet_of(number), line.strip()[:160])
            for number, text in enumerate(printout.pages, start=1) for line in text.splitlines()
            for mark in ERROR_MARKS for _ in range(line.count(mark))]


def describe_hits(hits: list[Hit], shown: int = 40) -> str:
    """Counts per mark, then each page and line with a mark (how many times), the first ``shown``."""
    counts = Counter(h.mark for h in hits)
    places = Counter(hits)
    lines = [", ".join(f"{mark} x{n}" for mark, n in counts.most_common())]
    lines += [f"  page {h.page} ({h.sheet}): {h.mark}{f' x{n}' if n > 1 else ''} in {h.line!r}"
              for h, n in list(places.items())[:shown]]
    if len(places) > shown:
        lines.append(f"  ... and {len(places) - shown} more lines with marks")
    return "\n".join(lines)


def render_png(pdf: str | os.PathLike[str], page: int, png: str | os.PathLike[str], dpi: int = 80) -> Path:
    """Page ``page`` of ``pdf`` as the PNG image ``png``."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    _poppler("pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
             str(pdf), str(png.with_suffix("")))
    return png
