"""The reallocation workflow on real register files: the reference batch, every refusal, verify."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import pytest

from crm_app.cli.main import main
from crm_app.register.audit import GENESIS, WorkflowCode
from crm_app.register.load import Approval, load_register, read_request_csv, read_request_form
from crm_app.register.schema import AUDIT, REGISTER
from crm_app.register.workflow import (
    RegisterChangedError,
    check_request,
    reallocate,
    verify,
    write_batch,
)
from crm_core.issues import IssueCode
from crm_core.reallocation import Roles
from tests.support.registers import (
    BUDGET,
    REFERENCE_BATCH,
    ROLES,
    build_register,
    write_request,
)
from tests.support.signing import signed_register

Q4 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
ROLES3 = Roles("Sales Director Wang", "GM Li", "Finance Zhao")


@pytest.fixture
def register(tmp_path) -> Path:
    """A register whose standard is signed (Audit row 2): batches start at Audit row 3."""
    return signed_register(tmp_path / "register.xlsx")


def lines_of(path: Path) -> dict[str, int]:
    reg = load_register(path).register
    return dict(zip(reg["customer"], reg["credit_line_cents"]))


def apply(path, lines, now=Q4, roles=ROLES3, tmp=None, **approval):
    request = read_request_csv(write_request(Path(str(path) + ".req.csv"), lines))
    return reallocate(path, request, Approval(roles, **approval), now=now)


def codes(issues) -> set:
    return {i.code for i in issues}


# ---- the reference batch ---------------------------------------------------------------------

def test_reference_batch_through_the_whole_flow(register, tmp_path, capsys):
    before = register.read_bytes()
    request = write_request(tmp_path / "request.csv")
    status = main(["reallocate", str(register), "--request", str(request), *ROLES,
                   "--batch-id", "2011Q2-01", "--request-date", "2026-11-01", "--approval-date", "2026-11-02"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "ok: batch 2011Q2-01 passes" in out and "across tiers" in out and "within tier" in out
    lines = lines_of(register)
    assert (lines["C7"], lines["B117"], lines["C3"], lines["D24"]) == (90_000_000, 48_000_000, 37_000_000, 25_000_000)
    assert sum(lines.values()) == BUDGET * 100 == 936_000_000  # 936万 holds
    loaded = load_register(register)
    assert loaded.stamp.version == 3  # built 1, signed 2, the batch 3
    assert loaded.audit["batch_id"].iloc[0] == "SIGNOFF-2011" and loaded.audit["prev_hash"].iloc[0] == GENESIS
    audit = loaded.audit.iloc[1:]
    assert audit["customer"].tolist() == ["C7", "B117", "C3", "D24"]
    assert audit["change_cents"].tolist() == [10_000_000, -2_000_000, -3_000_000, -5_000_000]
    assert set(audit["batch_id"]) == {"2011Q2-01"}
    assert set(audit["approver"]) == {"GM Li"} and set(audit["recorder"]) == {"Finance Zhao"}
    assert audit["prev_hash"].tolist() == loaded.audit["hash"].iloc[:-1].tolist()
    assert str(audit["request_date"].iloc[0])[:10] == "2026-11-01"
    assert Path(str(register) + ".bak").read_bytes() == before
    assert main(["verify", str(register)]) == 0


def test_tier_drift_and_kinds_of_the_reference_batch(register, tmp_path):
    request = read_request_csv(write_request(tmp_path / "r.csv"))
    report = check_request(load_register(register), request, Approval(ROLES3), now=Q4)
    assert report.ok, report.verdict
    assert report.moves["row"].tolist() == [2, 3, 4, 5]
    drift = report.tier_drift.set_index("tier")["drift_cents"].to_dict()
    assert drift == {"A": 0, "B": -2_000_000, "C": 7_000_000, "D": -5_000_000}


def test_unbalanced_batch_refused_and_file_unchanged(register, tmp_path, capsys):
    before = register.read_bytes()
    backup = Path(str(register) + ".bak")
    signed_backup = backup.read_bytes()  # the sign-off's
    lines = REFERENCE_BATCH[:3] + [("D24", "-40000", "pays late")]
    request = write_request(tmp_path / "request.csv", lines)
    status = main(["reallocate", str(register), "--request", str(request), *ROLES])
    captured = capsys.readouterr()
    assert status != 0
    assert "imbalance +10,000.00" in captured.out and "nothing written" in captured.err
    assert register.read_bytes() == before
    assert backup.read_bytes() == signed_backup


def test_dry_run_writes_nothing(register, tmp_path, capsys):
    before = register.read_bytes()
    request = write_request(tmp_path / "request.csv")
    assert main(["reallocate", str(register), "--request", str(request), *ROLES, "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert register.read_bytes() == before


# ---- refusals --------------------------------------------------------------------------------

def test_second_batch_in_the_same_quarter_refused(register):
    assert apply(register, REFERENCE_BATCH).written
    before = register.read_bytes()
    second = [("A1", "50000", "growth"), ("D30", "-50000", "slow payer")]
    outcome = apply(register, second, now=Q4.replace(day=20))
    assert not outcome.written and IssueCode.QUOTA_USED in codes(outcome.report.issues)
    assert register.read_bytes() == before
    next_quarter = apply(register, second, now=datetime(2027, 1, 5, tzinfo=timezone.utc))
    assert next_quarter.written, next_quarter.report.verdict


def test_same_batch_id_twice_refused(tmp_path):
    path = signed_register(tmp_path / "r.xlsx", policy={"reallocations_per_quarter": 4})
    assert apply(path, REFERENCE_BATCH, batch_id="B-1").written
    other = [("A1", "50000", "growth"), ("D30", "-50000", "slow payer")]
    outcome = apply(path, other, batch_id="B-1")
    assert not outcome.written and WorkflowCode.DUPLICATE_BATCH in codes(outcome.report.issues)
    # without an explicit id the same request on the same day gets the same id: refused too
    assert apply(path, other).written
    again = apply(path, other)
    assert not again.written and WorkflowCode.DUPLICATE_BATCH in codes(again.report.issues)


@pytest.mark.parametrize("roles, code", [
    (Roles("Wang", "", "Zhao"), IssueCode.ROLE_MISSING),
    (Roles("", "", ""), IssueCode.ROLE_MISSING),
    (Roles("Wang", "wang", "Zhao"), IssueCode.ROLES_NOT_DISTINCT),
])
def test_roles_missing_or_not_distinct_refused(register, roles, code):
    before = register.read_bytes()
    outcome = apply(register, REFERENCE_BATCH, roles=roles)
    assert not outcome.written and code in codes(outcome.report.issues)
    assert register.read_bytes() == before


def test_same_person_in_two_roles_allowed_when_policy_says_so(tmp_path):
    path = signed_register(tmp_path / "r.xlsx", policy={"distinct_roles": False})
    assert apply(path, REFERENCE_BATCH, roles=Roles("Wang", "Wang", "Zhao")).written


CUT_BELOW = [("A1", "100000", "growth"), ("D30", "-100000", "line above need")]  # D30 owes 650,000


def test_cut_below_open_balance_refused_by_default(register):
    outcome = apply(register, CUT_BELOW)
    assert not outcome.written
    issue = next(i for i in outcome.report.issues if i.code == IssueCode.BELOW_BALANCE)
    assert issue.row == 3 and "D30" in issue.message


def test_cut_below_open_balance_needs_override_and_reason(tmp_path):
    path = signed_register(tmp_path / "r.xlsx", policy={"cut_below_balance": "override"})
    refused = apply(path, CUT_BELOW)
    assert not refused.written and IssueCode.BELOW_BALANCE in codes(refused.report.issues)
    done = apply(path, CUT_BELOW, override_reason="customer agreed to pay down; GM Li")
    assert done.written, done.report.verdict
    assert set(load_register(path).audit["override_reason"].iloc[1:]) == {"customer agreed to pay down; GM Li"}


def test_unknown_customer_and_bad_amount_named_by_csv_row(register, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("customer,change,reason\nC7,10万,up\n\nX999,-5万,gone\nC3,abc,bad\n", encoding="utf-8")
    request = read_request_csv(path)
    report = check_request(load_register(register), request, Approval(ROLES3), now=Q4)
    where = {(i.code, i.row) for i in report.issues}
    assert (IssueCode.UNKNOWN_CUSTOMER, 4) in where and (IssueCode.BAD_NUMBER, 5) in where
    assert report.moves["row"].tolist() == [2, 4, 5]


def test_dates_in_the_wrong_order_refused(register):
    outcome = apply(register, REFERENCE_BATCH, request_date="2026-11-02", approval_date="2026-11-01")
    assert not outcome.written and WorkflowCode.BAD_DATE in codes(outcome.report.issues)


def test_register_changed_after_load_refused(register, tmp_path):
    request = read_request_csv(write_request(tmp_path / "r.csv"))
    loaded = load_register(register)
    report = check_request(loaded, request, Approval(ROLES3), now=Q4)
    assert report.ok
    other = [("A1", "50000", "growth"), ("D30", "-50000", "slow payer")]
    assert apply(register, other).written  # someone else writes first
    theirs = register.read_bytes()
    with pytest.raises(RegisterChangedError, match="register changed since you loaded it"):
        write_batch(loaded, report, Approval(ROLES3), Q4)
    assert register.read_bytes() == theirs


# ---- the request form ------------------------------------------------------------------------

def test_request_form_on_the_reallocation_sheet(tmp_path):
    path = build_register(tmp_path / "r.xlsx", form=[(c, ch, r) for c, ch, r in REFERENCE_BATCH])
    book = openpyxl.load_workbook(path)
    ws = book["Reallocation"]
    ws["B3"], ws["B4"], ws["B5"] = "Wang", "Li", "Zhao"
    request, fields = read_request_form(book)
    assert request.lines["customer"].tolist() == ["C7", "B117", "C3", "D24"]
    assert request.lines["change_cents"].sum() == 0 and request.issues == []
    assert request.lines["row"].tolist() == [11, 12, 13, 14]  # title, 7 fields, blank, header
    assert (fields["requester"], fields["approver"], fields["recorder"]) == ("Wang", "Li", "Zhao")


# ---- suggest ---------------------------------------------------------------------------------

def test_suggested_request_funds_the_raise_and_applies(register, tmp_path, capsys):
    out = tmp_path / "suggested.csv"
    assert main(["suggest", str(register), "--amount", "10万", "--for", "C7", "--out", str(out)]) == 0
    request = read_request_csv(out)
    assert request.lines["customer"].iloc[0] == "C7" and request.lines["change_cents"].sum() == 0
    assert "C7" not in request.lines["customer"].iloc[1:].tolist()
    assert main(["reallocate", str(register), "--request", str(out), *ROLES]) == 0
    assert main(["verify", str(register)]) == 0


# ---- verify ----------------------------------------------------------------------------------

@pytest.fixture
def applied(register) -> Path:
    assert apply(register, REFERENCE_BATCH).written
    assert verify(register) == []
    return register


def edit(path: Path, change) -> None:
    book = openpyxl.load_workbook(path)
    change(book)
    book.save(path)


def test_verify_detects_an_edited_audit_row(applied, capsys):
    edit(applied, lambda b: b[AUDIT].cell(row=4, column=7, value="someone rewrote the reason"))
    problems = verify(applied)
    assert [(p.code, p.source, p.row) for p in problems] == [(WorkflowCode.HASH_MISMATCH, AUDIT, 4)]
    assert main(["verify", str(applied)]) == 1
    assert "Audit" in capsys.readouterr().out


def test_verify_detects_an_edited_audit_amount(applied):
    edit(applied, lambda b: b[AUDIT].cell(row=3, column=5, value=200000))
    found = {(p.code, p.row) for p in verify(applied)}
    assert (WorkflowCode.HASH_MISMATCH, 3) in found and (WorkflowCode.ENTRY_INCONSISTENT, 3) in found


def test_verify_detects_a_deleted_audit_row(applied):
    edit(applied, lambda b: b[AUDIT].delete_rows(4))
    found = {(p.code, p.source, p.row) for p in verify(applied)}
    assert (WorkflowCode.CHAIN_BROKEN, AUDIT, 4) in found
    assert any(code == WorkflowCode.LINE_MISMATCH and src == REGISTER for code, src, _ in found)


def test_verify_detects_a_deleted_last_audit_row(applied):
    edit(applied, lambda b: b[AUDIT].delete_rows(6))
    found = {(p.code, p.source, p.row) for p in verify(applied)}
    assert (WorkflowCode.LINE_MISMATCH, REGISTER, 9) in found  # D24's line no longer explained


def test_verify_names_a_register_line_changed_outside_the_workflow(applied, capsys):
    credit_col = 13  # 赊销额度 Credit line
    edit(applied, lambda b: b[REGISTER].cell(row=4, column=credit_col, value=1_300_000))  # B5
    problems = verify(applied)
    line = next(p for p in problems if p.code == WorkflowCode.LINE_MISMATCH)
    assert (line.source, line.row, line.column) == (REGISTER, 4, "赊销额度 Credit line") and "B5" in line.message
    assert WorkflowCode.BUDGET_MISMATCH in codes(problems)
    assert main(["verify", str(applied)]) == 1
    out = capsys.readouterr().out
    assert "Register" in out and "B5" in out


def test_apply_refused_on_a_register_that_does_not_verify(applied):
    edit(applied, lambda b: b[REGISTER].cell(row=4, column=13, value=1_300_000))
    before = applied.read_bytes()
    outcome = apply(applied, [("A1", "50000", "growth"), ("D30", "-50000", "slow")],
                    now=datetime(2027, 1, 5, tzinfo=timezone.utc))
    assert not outcome.written and WorkflowCode.LINE_MISMATCH in codes(outcome.report.issues)
    assert applied.read_bytes() == before


def test_audit_table_grows_with_new_entries(tmp_path):
    from openpyxl.worksheet.table import Table

    path = build_register(tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(path)
    book[AUDIT].add_table(Table(displayName="AuditLog", ref="A1:O2"))
    book.save(path)
    from tests.support.signing import sign

    sign(path)  # the sign-off's entry: row 2
    assert apply(path, REFERENCE_BATCH).written
    table = openpyxl.load_workbook(path)[AUDIT].tables["AuditLog"]
    assert table.ref == "A1:O6"
    assert verify(path) == []


def test_verify_detects_all_audit_rows_deleted_and_lines_restored(applied):
    def wipe(book):  # every batch entry; the sign-off's (row 2) stays
        book[AUDIT].delete_rows(3, 4)
        for row, line in ((7, 800_000), (5, 500_000), (6, 400_000), (9, 300_000)):  # C7, B117, C3, D24
            book[REGISTER].cell(row=row, column=13, value=line)
    edit(applied, wipe)
    problems = verify(applied)
    assert [(p.code, p.source) for p in problems] == [(WorkflowCode.CHAIN_BROKEN, "About")]


def test_verify_reports_a_customer_listed_twice(register):
    edit(register, lambda b: b[REGISTER].append(["C7", "copy", None, "C", None, None, None, None, None, None,
                                                  0, 0, 0]))
    problems = verify(register)
    assert (IssueCode.DUPLICATE_CUSTOMER, REGISTER, 11) in {(p.code, p.source, p.row) for p in problems}
