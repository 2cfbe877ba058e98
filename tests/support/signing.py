"""Signed registers for the workflow tests: reallocations are refused until the year's standard is signed.

`signed_register` is tests.support.registers.build_register followed by the sign-off of the
three signers below; `sign` signs any register (the built template too).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from crm_app.register.audit import AuditKey
from crm_app.register.signoff import sign_off
from crm_app.register.standard import Signers
from tests.support.registers import build_register

SIGNERS = Signers("CEO Chen", "CFO Liu", "Sales Director Wang")
SIGN_DATE = "2026-01-05"
SIGNED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
SIGN_ARGS = ["--ceo", SIGNERS.ceo, "--cfo", SIGNERS.cfo, "--sales-director", SIGNERS.sales_director,
             "--date", SIGN_DATE]


def sign(path: Path, key: AuditKey | None = None, now: datetime = SIGNED_AT) -> Path:
    sign_off(path, SIGNERS, SIGN_DATE, key=key, now=now)
    return path


def signed_register(path: Path, policy: dict[str, object] | None = None, form: list | None = None,
                    key: AuditKey | None = None) -> Path:
    return sign(build_register(path, policy=policy, form=form), key=key)
