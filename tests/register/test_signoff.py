"""The year's signed credit standard: sign-off, amendments, verify against the standard, tampering.

The test register (tests.support.registers): budget 936万 for 2011 over nine customers; signed
by CEO Chen, CFO Liu and Sales Director Wang (tests.support.signing), the sign-off is Audit
row 2 and the reference batch, when applied, rows 3-6.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import openpyxl
import pytest

from crm_app.register.audit import GENESIS, WorkflowCode, chain
from crm_app.register.load import Approval, load_register, read_request_csv
from crm_app.register.schema import ABOUT, AUDIT, AUDIT_COLUMNS, POLICY, REGISTER
from crm_app.register.signoff import sign_off, signer_issues
from crm_app.register.standard import SIGNOFF, Signers, value_text
from crm_app.register.workflow import reallocate, verify, verify_report
from crm_core.issues import CrmInputError, IssueCode
from crm_core.reallocation import Roles
from tests.support.registers import (
    BUDGET,
    CUSTOMERS,
    REFERENCE_BATCH,
    build_register,
    write_request,
)
from tests.support.signing import SIGN_DATE, SIGNERS, sign, signed_register

Q4 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
ROLES3 = Roles("Sales Director Wang", "GM Li", "Finance Zhao")
OTHER = [("A1", "50000", "growth"), ("D30", "-50000", "slow payer")]
CREDIT_LINE, ALLOCATED = 13, 12  # Register columns (1-based) of 赊销额度 and 年度分配


def apply(path: Path, lines=REFERENCE_BATCH, now: datetime = Q4, **approval):
    request = read_request_csv(write_request(Path(str(path) + ".req.csv"), lines))
    return reallocate(path, request, Approval(ROLES3, **approval), now=now)


def edit(path: Path, change) -> None:
    book = openpyxl.load_workbook(path)
    change(book)
    book.save(path)


def found(path: Path, **kw) -> set[tuple]:
    return {(p.code, p.source, p.row) for p in verify(path, **kw)}


def codes(issues) -> set:
    return {i.code for i in issues}


def about_row(book, key: str) -> int:
    return next(r[0].row for r in book[ABOUT].iter_rows(min_row=2) if r[0].value == key)


def policy_row(book, key: str) -> int:
    ws = book[POLICY]
    for r in ws.iter_rows(min_row=2):
        if r[0].value == key:
            return r[0].row
    ws.append([key, None])
    return ws.max_row


def rechain(path: Path) -> None:
    """What a forger without a key does after editing the Audit sheet: recompute every hash."""
    audit = load_register(path).audit
    records = [{k: v for k, v in e.items() if k not in ("prev_hash", "hash")} for e in audit.to_dict("records")]
    chained = chain(records, GENESIS)
    cols = {c.key: k for k, c in enumerate(AUDIT_COLUMNS, start=1)}

    def write(book):
        for entry in chained:
            book[AUDIT].cell(row=entry["row"], column=cols["prev_hash"], value=entry["prev_hash"])
            book[AUDIT].cell(row=entry["row"], column=cols["hash"], value=entry["hash"])
        book[ABOUT].cell(row=about_row(book, "audit_head"), column=2, value=chained[-1]["hash"] if chained else GENESIS)
    edit(path, write)


@pytest.fixture
def signed(tmp_path) -> Path:
    return signed_register(tmp_path / "register.xlsx")


@pytest.fixture
def applied(signed) -> Path:
    assert apply(signed).written
    assert verify(signed) == []
    return signed


# ---- before the sign-off ---------------------------------------------------------------------

def test_an_unsigned_register_refuses_a_batch_naming_the_sign_off(tmp_path):
    register = build_register(tmp_path / "register.xlsx")
    before = register.read_bytes()
    outcome = apply(register)
    assert not outcome.written and WorkflowCode.UNSIGNED in codes(outcome.report.issues)
    assert "crm-addin sign-off" in outcome.report.verdict and "SignOff macro" in outcome.report.verdict
    assert register.read_bytes() == before


def test_a_check_of_an_unsigned_register_still_checks_with_a_warning(tmp_path):
    register = build_register(tmp_path / "register.xlsx")
    request = read_request_csv(write_request(tmp_path / "r.csv"))
    outcome = reallocate(register, request, Approval(ROLES3), now=Q4, dry_run=True)
    assert outcome.report.ok and not outcome.written
    warning = next(i for i in outcome.report.issues if i.code == WorkflowCode.UNSIGNED)
    assert not warning.is_error and "not signed off" in warning.message
    assert verify(register) == []  # an unsigned register (the demo's) still verifies


# ---- the sign-off ----------------------------------------------------------------------------

def test_sign_off_records_the_standard_on_its_sheet_and_in_the_chain(tmp_path):
    register = build_register(tmp_path / "register.xlsx", policy={"credit_rounding": 1000})
    sign(register)
    outcome = load_register(register)
    standard = outcome.signed
    assert standard is not None and standard.batch_id == "SIGNOFF-2011" and standard.year == 2011
    assert standard.signers == SIGNERS and standard.signed_on == date(2026, 1, 5)
    assert standard.budget_cents == BUDGET * 100
    assert dict(standard.lines) == {c: line * 100 for c, _, line, _, _ in CUSTOMERS}
    assert {t: (n, total) for t, n, total in standard.tiers} == {
        "A": (2, 380_000_000), "B": (2, 170_000_000), "C": (3, 286_000_000), "D": (2, 100_000_000)}
    assert dict(standard.policy)["credit_rounding"] == "1000" and dict(standard.policy)["reallocations_per_quarter"] == "1"
    assert standard.fingerprint == outcome.policy.fingerprint
    entry = outcome.audit.iloc[0]
    assert (entry["batch_id"], entry["customer"], entry["change_cents"]) == ("SIGNOFF-2011", "", 0)
    assert entry["old_line_cents"] == entry["new_line_cents"] == BUDGET * 100
    assert entry["reason"] == f"签字确认 sign-off 2011 · standard sha256:{standard.digest}"
    assert (entry["requester"], entry["approver"], entry["recorder"]) == ("CEO Chen", "CFO Liu", "Sales Director Wang")
    assert outcome.stamp.version == 2 and outcome.about["audit_head"] == entry["hash"]
    sheet = openpyxl.load_workbook(register)[SIGNOFF]
    labels = [r[0] for r in sheet.iter_rows(values_only=True)]
    assert {"首席执行官 CEO", "首席财务官 CFO", "销售总监 Sales director", "等级划分 Tier split", "政策 Policy (as signed)",
            "客户年度额度 Signed yearly lines"} <= set(labels)
    assert sheet.protection.sheet and sheet.column_dimensions["A"].width >= 24
    report = verify_report(register)
    assert report.issues == [] and report.standard.digest == standard.digest
    assert "CEO Chen" in report.notes()[0] and "2026-01-05" in report.notes()[0] and "unkeyed" in report.notes()[1]


@pytest.mark.parametrize("signers, says", [
    (Signers("Chen", "", "Wang"), "CFO is not filled in"),
    (Signers("Chen", " chen ", "Wang"), "three different people"),
    (Signers("Ｃｈｅｎ", "Liu", "CHEN"), "three different people"),  # full-width and capitals: one person
])
def test_three_different_people_sign(signers, says):
    assert says in " ".join(i.message for i in signer_issues(signers))


def test_signers_are_checked_before_anything_is_written(tmp_path):
    register = build_register(tmp_path / "register.xlsx")
    before = register.read_bytes()
    with pytest.raises(CrmInputError, match="three different people"):
        sign_off(register, Signers("Chen", "chen", "Wang"), SIGN_DATE)
    with pytest.raises(CrmInputError, match="in the future"):
        sign_off(register, SIGNERS, "2099-01-01")
    assert register.read_bytes() == before


def test_one_sign_off_per_year_and_an_amendment_needs_a_reason(signed):
    before = signed.read_bytes()
    with pytest.raises(CrmInputError, match="already signed.*--amend"):
        sign(signed)
    with pytest.raises(CrmInputError, match="needs its reason"):
        sign_off(signed, SIGNERS, SIGN_DATE, amend=True)
    with pytest.raises(CrmInputError, match="reason is for an amendment"):
        sign_off(signed, SIGNERS, SIGN_DATE, reason="why not")
    assert signed.read_bytes() == before


def test_nothing_to_amend_before_the_sign_off(tmp_path):
    with pytest.raises(CrmInputError, match="not signed yet"):
        sign_off(build_register(tmp_path / "r.xlsx"), SIGNERS, SIGN_DATE, amend=True, reason="x")


def test_a_register_that_does_not_verify_is_not_signed(tmp_path):
    register = build_register(tmp_path / "register.xlsx")
    edit(register, lambda b: b[REGISTER].cell(row=4, column=CREDIT_LINE, value=1_300_000))
    with pytest.raises(CrmInputError, match="credit line"):
        sign(register)
    assert SIGNOFF not in openpyxl.load_workbook(register).sheetnames


# ---- the checks use the signed standard ------------------------------------------------------

def test_a_policy_edit_by_hand_no_longer_lets_a_second_batch_through(applied):
    """The hole of issue 18: reallocations_per_quarter 1 -> 2 on the Policy sheet, and verify passed."""
    def two_per_quarter(book):
        book[POLICY].cell(row=policy_row(book, "reallocations_per_quarter"), column=2, value=2)
    edit(applied, two_per_quarter)
    problems = verify(applied)
    diff = next(p for p in problems if p.code == WorkflowCode.STANDARD_CHANGED)
    assert (diff.source, diff.row, diff.column) == (POLICY, 2, "B")
    assert "reallocations_per_quarter: signed 1, found 2" in diff.message
    before = applied.read_bytes()
    second = apply(applied, OTHER, now=Q4.replace(day=20))
    assert not second.written
    assert {IssueCode.QUOTA_USED, WorkflowCode.STANDARD_CHANGED} <= codes(second.report.issues)  # signed rule: 1
    assert applied.read_bytes() == before


def test_an_amendment_adopts_a_policy_change(applied):
    edit(applied, lambda b: b[POLICY].cell(row=policy_row(b, "reallocations_per_quarter"), column=2, value=2))
    outcome = sign_off(applied, SIGNERS, "2026-11-10", amend=True, reason="board allows two batches a quarter",
                       now=Q4.replace(day=10))
    assert outcome.standard.batch_id == "AMEND-2011-1"
    assert dict(outcome.standard.policy)["reallocations_per_quarter"] == "2"
    loaded = load_register(applied)
    entry = loaded.audit.iloc[-1]
    assert entry["override_reason"] == "board allows two batches a quarter" and entry["reason"].startswith("修订 amendment")
    assert loaded.signed.batch_id == "AMEND-2011-1" and verify(applied) == []
    assert apply(applied, OTHER, now=Q4.replace(day=20)).written  # the amended standard allows it
    assert verify(applied) == []


def test_lines_after_the_sign_off_are_the_signed_lines_plus_the_batches(applied):
    loaded = load_register(applied)
    signed = loaded.signed.line_of()
    lines = dict(zip(loaded.register["customer"], loaded.register["credit_line_cents"]))
    moved = dict(zip(loaded.audit["customer"].iloc[1:], loaded.audit["change_cents"].iloc[1:]))
    assert lines == {c: signed[c] + moved.get(c, 0) for c in signed}
    assert sum(lines.values()) == loaded.signed.budget_cents


# ---- tampering, each named by verify ---------------------------------------------------------

def _set_policy(book):
    book[POLICY].cell(row=policy_row(book, "cut_below_balance"), column=2, value="allow")


def _edit_signoff_line(book):
    ws = book[SIGNOFF]
    row = next(r[0].row for r in ws.iter_rows() if r[0].value == "C7")
    ws.cell(row=row, column=2, value=900_000)


def _signoff_entry(column: int, value):
    return lambda book: book[AUDIT].cell(row=2, column=column, value=value)


TAMPERING = {
    # what is changed: (the edit, recompute the unkeyed chain afterwards, what verify names)
    "policy key": (_set_policy, False, (WorkflowCode.STANDARD_CHANGED, POLICY)),
    "register line": (lambda b: b[REGISTER].cell(row=4, column=CREDIT_LINE, value=1_300_000), False,
                      (WorkflowCode.LINE_MISMATCH, REGISTER, 4)),
    "yearly allocation": (lambda b: b[REGISTER].cell(row=4, column=ALLOCATED, value=1_300_000), False,
                          (WorkflowCode.LINE_MISMATCH, REGISTER, 4)),
    "About budget": (lambda b: b[ABOUT].cell(row=about_row(b, "budget"), column=2, value=9_000_000), False,
                     (WorkflowCode.STANDARD_CHANGED, ABOUT, 5)),
    "sign-off entry edited": (_signoff_entry(8, "CEO Someone"), False, (WorkflowCode.HASH_MISMATCH, AUDIT, 2)),
    "sign-off entry edited, chain recomputed": (_signoff_entry(8, "CEO Someone"), True,
                                                (WorkflowCode.SIGNOFF_TAMPERED, AUDIT, 2)),
    "sign-off entry moved to another year": (_signoff_entry(2, "SIGNOFF-2012"), True,
                                             (WorkflowCode.SIGNOFF_TAMPERED, AUDIT, 2)),
    "sign-off entry deleted": (lambda b: b[AUDIT].delete_rows(2), True, (WorkflowCode.SIGNOFF_TAMPERED, SIGNOFF)),
    "SignOff sheet edited": (_edit_signoff_line, False, (WorkflowCode.SIGNOFF_TAMPERED, SIGNOFF)),
    "SignOff sheet deleted": (lambda b: b.remove(b[SIGNOFF]), False, (WorkflowCode.SIGNOFF_TAMPERED, AUDIT, 2)),
    "budget year changed": (lambda b: b[ABOUT].cell(row=about_row(b, "budget_year"), column=2, value=2012), False,
                            (WorkflowCode.SIGNOFF_TAMPERED, ABOUT, 4)),
}


@pytest.mark.parametrize("what", list(TAMPERING))
def test_tampering_is_named_by_verify_and_refuses_a_batch(applied, what):
    change, recompute, expected = TAMPERING[what]
    edit(applied, change)
    if recompute:
        rechain(applied)
    problems = verify(applied)
    named = {(p.code, p.source, p.row)[:len(expected)] for p in problems}
    assert expected in named, (what, [str(p) for p in problems])
    before = applied.read_bytes()
    outcome = apply(applied, OTHER, now=datetime(2027, 1, 5, tzinfo=timezone.utc))
    assert not outcome.written and applied.read_bytes() == before


def test_each_policy_difference_names_key_signed_value_and_value_found(signed):
    def two_keys(book):
        book[POLICY].cell(row=policy_row(book, "credit_ratio"), column=2, value=0.25)
        book[POLICY].cell(row=policy_row(book, "distinct_roles"), column=2, value=False)
    edit(signed, two_keys)
    said = {p.message.split(";")[0] for p in verify(signed) if p.code == WorkflowCode.STANDARD_CHANGED}
    assert said == {"policy credit_ratio: signed 0.2, found 0.25", "policy distinct_roles: signed true, found false"}


def test_value_text_is_one_form_whatever_the_spreadsheet_gave_back():
    assert [value_text(v) for v in (1, 1.0, 0.2, True, "cutoff", " x ")] == ["1", "1", "0.2", "true", "cutoff", "x"]


# ---- the SignOff macro -----------------------------------------------------------------------

def test_sign_off_macro_reads_the_names_from_the_reallocation_sheet(tmp_path, monkeypatch):
    from tests.excel.test_macros import FakeBook, alerts
    from udfs.macros import reallocation as macros

    register = build_register(tmp_path / "register.xlsx")
    log: list = []
    monkeypatch.setattr(macros, "_caller", lambda: FakeBook(register, log))
    assert macros.sign_off_register() is False  # no names on the form: told where to put them
    assert [k for k, _ in log] == ["save", "alert"] and "首席执行官 CEO" in alerts(log)[0]

    def fill(book):
        ws = book["Reallocation"]
        for row, (label, value) in enumerate([("首席执行官 CEO", "Chen"), ("首席财务官 CFO", "Liu"),
                                              ("销售总监 Sales director", "Wang"),
                                              ("签字日期 Sign-off date", datetime(2026, 1, 5))], start=20):
            ws.cell(row=row, column=5, value=label)
            ws.cell(row=row, column=6, value=value)
    edit(register, fill)
    log.clear()
    assert macros.sign_off_register() is True, alerts(log)
    assert [k for k, _ in log] == ["save", "close", "open", "alert"] and "signed SIGNOFF-2011" in alerts(log)[0]
    assert load_register(register).signed.signers == Signers("Chen", "Liu", "Wang")
    log.clear()
    assert macros.verify_register() is True and "sign-off checked" in alerts(log)[0]


# ---- signed registers through LibreOffice ----------------------------------------------------

@pytest.mark.libreoffice
@pytest.mark.parametrize("what", ["resave alone", "policy key", "SignOff sheet edited", "sign-off entry edited"])
def test_a_signed_register_edited_and_saved_by_libreoffice(applied, tmp_path, soffice, what):
    from tests.support.libreoffice import recalculate

    change, expected = {
        "resave alone": (None, None),
        "policy key": (_set_policy, (WorkflowCode.STANDARD_CHANGED, POLICY)),
        "SignOff sheet edited": (_edit_signoff_line, (WorkflowCode.SIGNOFF_TAMPERED, SIGNOFF)),
        "sign-off entry edited": (_signoff_entry(8, "CEO Someone"), (WorkflowCode.HASH_MISMATCH, AUDIT)),
    }[what]
    if change is not None:
        edit(applied, change)
    resaved = recalculate(applied, tmp_path / "resaved")
    problems = verify(resaved)
    if expected is None:  # another spreadsheet program opening and saving it is not tampering
        assert problems == [] and load_register(resaved).signed.digest == load_register(applied).signed.digest
    else:
        assert expected in {(p.code, p.source) for p in problems}, [str(p) for p in problems]


def test_a_policy_key_newer_than_the_signed_standard_counts_at_its_default(tmp_path):
    """A standard signed by an earlier crm-addin lacks the keys added since: they are not
    differences while the Policy sheet leaves them at their default, and are once it changes one."""
    from dataclasses import replace

    from crm_app.register.standard import _policy_differences

    path = signed_register(tmp_path / "register.xlsx")
    loaded = load_register(path)
    older = replace(loaded.signed, policy=tuple(p for p in loaded.signed.policy if p[0] != "commission_rate"))
    assert _policy_differences(loaded, older) == []
    book = openpyxl.load_workbook(path)
    book[POLICY].append(["commission_rate", 0.05])
    book.save(path)
    issues = _policy_differences(load_register(path), older)
    assert [i.message.split(";")[0] for i in issues] == ["policy commission_rate: signed 0.02, found 0.05"]
