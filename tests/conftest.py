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
