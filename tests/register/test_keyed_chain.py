"""A keyed audit chain: HMAC-SHA256 with a key from a file that never enters the workbook.

Without the key nobody can make an edited chain consistent; verify says whether it checked a
keyed chain, an unkeyed one, or could not check (no key, or the wrong one).
"""
from __future__ import annotations

import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from crm_app.register.audit import (
    GENESIS,
    KEY_ENV,
    AuditKey,
    WorkflowCode,
    chain,
    check_chain,
    entry_hash,
    key_id,
    read_key,
)
from crm_app.register.load import load_register
from crm_app.register.schema import ABOUT, AUDIT, REGISTER
from crm_app.register.workflow import verify, verify_report
from crm_core.issues import CrmInputError
from tests.register.test_signoff import CREDIT_LINE, OTHER, about_row, apply, edit, found, rechain
from tests.support.registers import build_register
from tests.support.signing import sign, signed_register

KEY = AuditKey(b"0123456789abcdef-the-chain-key")
OTHER_KEY = AuditKey(b"fedcba9876543210-another-key!")
ENTRY = {"timestamp": "2026-11-02T10:00:00+00:00", "batch_id": "B1", "customer": "C7", "old_line_cents": 100,
         "change_cents": 0, "new_line_cents": 100, "reason": "r", "requester": "a", "approver": "b", "recorder": "c",
         "request_date": None, "approval_date": None, "override_reason": ""}


def frame(entries) -> pd.DataFrame:
    return pd.DataFrame([{**e, "row": r} for r, e in enumerate(entries, start=2)])


# ---- pure --------------------------------------------------------------------------------------

def test_a_keyed_hash_is_an_hmac_and_the_key_id_reveals_nothing():
    plain, keyed = entry_hash(ENTRY, GENESIS), entry_hash(ENTRY, GENESIS, KEY)
    assert plain != keyed and keyed != entry_hash(ENTRY, GENESIS, OTHER_KEY)
    assert KEY.key_id == key_id(KEY.secret) and len(KEY.key_id) == 16 and KEY.secret.hex()[:16] != KEY.key_id
    assert "0123456789" not in repr(KEY)


def test_a_mixed_chain_is_plain_up_to_its_first_keyed_entry():
    plain = chain([ENTRY, {**ENTRY, "batch_id": "B2"}], GENESIS)
    keyed = chain([{**ENTRY, "batch_id": "B3"}], plain[-1]["hash"], KEY)
    audit = frame(plain + keyed)
    checked = check_chain(audit, KEY, KEY.key_id)
    assert checked.issues == [] and checked.state == "keyed" and checked.keyed_from == 4
    unchecked = check_chain(audit, None, KEY.key_id)
    assert unchecked.state == "unchecked" and [i.code for i in unchecked.issues] == [WorkflowCode.KEY_NEEDED]
    wrong = check_chain(audit, OTHER_KEY, KEY.key_id)
    assert wrong.state == "wrong key" and "does not match the chain's key id" in wrong.issues[0].message
    # a plain entry appended after keyed ones: written without the key
    forged = chain([{**ENTRY, "batch_id": "B4"}], keyed[-1]["hash"])
    bad = check_chain(frame(plain + keyed + forged), KEY, KEY.key_id)
    assert [(i.code, i.row) for i in bad.issues] == [(WorkflowCode.HASH_MISMATCH, 5)]


def test_the_key_comes_from_the_file_or_the_environment(tmp_path):
    path = tmp_path / "audit.key"
    path.write_bytes(KEY.secret + b"\n")
    assert read_key(path) == KEY  # a trailing line break is not part of the key
    assert read_key(environ={KEY_ENV: str(path)}) == KEY
    assert read_key(environ={}) is None
    path.write_bytes(b"short\n")
    with pytest.raises(CrmInputError, match="at least 16"):
        read_key(path)


# ---- on files ----------------------------------------------------------------------------------

@pytest.fixture
def keyed(tmp_path) -> Path:
    path = signed_register(tmp_path / "register.xlsx", key=KEY)
    assert apply_keyed(path).written
    return path


def apply_keyed(path: Path, lines=None, now=None):
    from crm_app.register.load import Approval, read_request_csv
    from crm_app.register.workflow import reallocate
    from tests.register.test_signoff import Q4, REFERENCE_BATCH, ROLES3
    from tests.support.registers import write_request

    request = read_request_csv(write_request(Path(str(path) + ".req.csv"), lines or REFERENCE_BATCH))
    return reallocate(path, request, Approval(ROLES3), now=now or Q4, key=KEY)


def test_a_keyed_register_verifies_with_its_key_and_names_what_was_checked(keyed):
    loaded = load_register(keyed)
    assert loaded.about["audit_key_id"] == KEY.key_id
    report = verify_report(keyed, KEY)
    assert report.issues == [] and report.chain_state == "keyed"
    assert f"keyed chain (key id {KEY.key_id}): HMACs checked" in report.notes()[1]


def test_without_the_key_the_hashes_are_not_checked_and_verify_says_so(keyed):
    report = verify_report(keyed)
    assert report.chain_state == "unchecked" and "NOT checked" in report.notes()[1]
    assert [(i.code, i.source) for i in report.issues] == [(WorkflowCode.KEY_NEEDED, ABOUT)]
    assert "its hashes were NOT checked" in report.issues[0].message


def test_a_wrong_key_is_named(keyed):
    problems = verify(keyed, OTHER_KEY)
    assert [p.code for p in problems] == [WorkflowCode.KEY_MISMATCH]
    assert "the key does not match the chain's key id" in problems[0].message


def test_a_keyed_chain_refuses_a_write_without_its_key(keyed):
    before = keyed.read_bytes()
    outcome = apply(keyed, OTHER, now=datetime(2027, 1, 5, tzinfo=timezone.utc))
    assert not outcome.written and WorkflowCode.KEY_NEEDED in {i.code for i in outcome.report.issues}
    assert keyed.read_bytes() == before
    assert apply_keyed(keyed, OTHER, now=datetime(2027, 1, 5, tzinfo=timezone.utc)).written


def test_an_edit_made_consistent_without_the_key_is_caught_with_it(keyed):
    """The forger edits a line and its entry and recomputes every hash, as sha256: the HMACs no longer hold."""
    def forge(book):
        book[REGISTER].cell(row=7, column=CREDIT_LINE, value=950_000)  # C7: +150,000 instead of +100,000
        book[AUDIT].cell(row=3, column=5, value=150_000)
        book[AUDIT].cell(row=3, column=6, value=950_000)
        book[AUDIT].cell(row=4, column=5, value=-70_000)  # B117 pays for it
        book[AUDIT].cell(row=4, column=6, value=430_000)
        book[REGISTER].cell(row=5, column=CREDIT_LINE, value=430_000)
    edit(keyed, forge)
    rechain(keyed)
    problems = verify(keyed, KEY)
    assert [(p.code, p.source) for p in problems] == [(WorkflowCode.HASH_MISMATCH, ABOUT)]
    assert "no Audit entry is keyed with it: the chain was rewritten without the key" in problems[0].message


def test_a_plain_entry_after_keyed_ones_is_named_by_its_row(keyed):
    """The forger rewrites only the newest entry (and the head): plain sha256 after keyed entries."""
    from crm_app.register.audit import entry_hash

    entry = load_register(keyed).audit.iloc[-1].to_dict()
    entry["reason"] = "pays very late"
    forged = entry_hash(entry, entry["prev_hash"])

    def forge(book):
        book[AUDIT].cell(row=6, column=7, value="pays very late")
        book[AUDIT].cell(row=6, column=15, value=forged)
        book[ABOUT].cell(row=about_row(book, "audit_head"), column=2, value=forged)
    edit(keyed, forge)
    problems = verify(keyed, KEY)
    assert [(p.code, p.source, p.row) for p in problems] == [(WorkflowCode.HASH_MISMATCH, AUDIT, 6)]
    assert "written without the key" in problems[0].message


def test_deleting_the_key_id_does_not_unkey_the_chain(keyed):
    edit(keyed, lambda b: b[ABOUT].delete_rows(about_row(b, "audit_key_id")))
    without = found(keyed)  # checked as plain sha256: every keyed entry fails
    assert {(WorkflowCode.HASH_MISMATCH, AUDIT, r) for r in range(2, 7)} <= without
    with_key = verify(keyed, KEY)
    assert any(p.code == WorkflowCode.KEY_MISMATCH and "audit_key_id: it was deleted" in p.message for p in with_key)


def test_keying_starts_with_the_first_keyed_write(tmp_path):
    path = signed_register(tmp_path / "register.xlsx")  # a plain sign-off
    assert verify(path, KEY)[0].code == WorkflowCode.NOT_KEYED  # a key given, nothing keyed: said, exit 1
    assert apply_keyed(path).written
    report = verify_report(path, KEY)
    assert report.issues == [] and report.chain_state == "keyed"
    assert load_register(path).about["audit_key_id"] == KEY.key_id


def test_the_key_never_enters_the_workbook(keyed):
    with zipfile.ZipFile(keyed) as z:
        blob = b"".join(z.read(n) for n in z.namelist())
    assert KEY.secret not in blob and KEY.secret.hex().encode() not in blob
    assert KEY.key_id.encode() in blob


def test_a_sign_off_on_a_keyed_register_needs_the_key(keyed):
    from crm_app.register.signoff import sign_off
    from tests.support.signing import SIGNERS

    with pytest.raises(CrmInputError, match="NOT checked"):
        sign_off(keyed, SIGNERS, "2026-11-10", amend=True, reason="x")
    assert sign_off(keyed, SIGNERS, "2026-11-10", amend=True, reason="x", key=KEY).standard.batch_id == "AMEND-2011-1"
    assert verify(keyed, KEY) == []


def test_an_unsigned_register_may_be_signed_with_a_key(tmp_path):
    path = sign(build_register(tmp_path / "r.xlsx"), key=KEY)
    assert verify_report(path, KEY).chain_state == "keyed"
