"""Shared pytest fixtures.  Each section belongs to one area; add yours in its own section."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- LibreOffice (tests.support.libreoffice)


@pytest.fixture(scope="session")
def soffice() -> str:
    """Path of soffice; skips the test when LibreOffice is missing (fails instead when CI=true)."""
    from tests.support.libreoffice import require_libreoffice

    return require_libreoffice()


# ---------------------------------------------------------------- end LibreOffice


# ---------------------------------------------------------------- the add-in under xlwings' Windows decorators


@pytest.fixture(scope="session")
def addin():
    """crm_addin imported under xlwings' real Windows decorators (tests.support.xlwings_offline):
    its worksheet functions carry the metadata Excel's add-in reads, and are called as Excel would."""
    from tools import build_vba

    return build_vba.load_addin()


# ---------------------------------------------------------------- end add-in
