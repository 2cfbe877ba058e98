"""Temporary reallocations (临时额度): a batch with an end date, reversed by the first write on or after it.

And the property of the signed standard: whatever sequence of batches (lasting or temporary),
amendments and expiries, every line = its signed line + the changes applied since the (latest)
standard, and the lines add up to the signed budget.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_app.register.audit import WorkflowCode, customer_entries
from crm_app.register.load import Approval, load_register, read_request_csv
from crm_app.register.schema import REGISTER, TEMPORARY_COLUMNS
from crm_app.register.signoff import sign_off
from crm_app.register.standard import standard_entries
from crm_app.register.temporary import TEMPORARY, end_date, until_text
from crm_app.register.workflow import batches_in_quarter, reallocate, verify, verify_report
from crm_core.values import normalize_text
from tests.support.registers import BUDGET, CUSTOMERS, write_request
from tests.support.signing import SIGNERS, signed_register

ROLES3 = ("Sales Director Wang", "GM Li", "Finance Zhao")
NOV = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
ROOMY = {"reallocations_per_quarter": 99, "cut_below_balance": "allow"}


def apply(path: Path, lines, now: datetime, until=None, batch_id: str = ""):
    from crm_core.reallocation import Roles

    request = read_request_csv(write_request(Path(str(path) + ".req.csv"), lines))
    return reallocate(path, request, Approval(Roles(*ROLES3), until=until, batch_id=batch_id), now=now)


def lines_of(path: Path) -> dict[str, int]:
    reg = load_register(path).register
    return dict(zip(reg["customer"], reg["credit_line_cents"]))


@pytest.fixture
def signed(tmp_path) -> Path:
    return signed_register(tmp_path / "register.xlsx", policy=ROOMY)


def test_the_end_date_lives_in_the_override_reason():
    assert until_text(date(2026, 12, 31), "") == "until 2026-12-31"
    assert until_text(date(2026, 12, 31), "GM Li agreed") == "until 2026-12-31; GM Li agreed"
    assert until_text(None, "GM Li agreed") == "GM Li agreed"
    assert end_date("until 2026-12-31; GM Li agreed") == date(2026, 12, 31) and end_date("until soon") is None


def test_a_temporary_batch_is_listed_then_reversed_by_the_next_write_after_its_end(signed):
    start = lines_of(signed)
    done = apply(signed, [("C7", "100000", "peak season"), ("D24", "-100000", "pays late")], NOV,
                 until="2026-12-31", batch_id="T1")
    assert done.written, done.report.verdict
    audit = load_register(signed).audit
    assert set(audit.loc[audit["batch_id"] == "T1", "override_reason"]) == {"until 2026-12-31"}
    listed = list(openpyxl.load_workbook(signed)[TEMPORARY].iter_rows(min_row=3, values_only=True))
    assert [(c, v, d.date(), b) for c, v, d, b in listed] == [
        ("C7", 100_000, date(2026, 12, 31), "T1"), ("D24", -100_000, date(2026, 12, 31), "T1")]
    report = verify_report(signed)
    assert report.issues == [] and any("C7: +100,000.00 until 2026-12-31" in n for n in report.notes())
    # before the end date another write leaves it in force
    assert apply(signed, [("A1", "10000", "x"), ("A2", "-10000", "y")], NOV.replace(day=20)).written
    assert lines_of(signed)["C7"] == start["C7"] + 10_000_000
    # the first write on the end date reverses it first, as its own zero-sum batch
    later = apply(signed, [("A1", "-10000", "x"), ("A2", "10000", "y")], datetime(2026, 12, 31, tzinfo=timezone.utc))
    assert later.written and later.report.expiry.batches == ["T1"]
    assert lines_of(signed) == start
    audit = load_register(signed).audit
    expired = audit.loc[audit["batch_id"] == "EXPIRE-T1"]
    assert expired["customer"].tolist() == ["C7", "D24"] and expired["change_cents"].tolist() == [-10_000_000, 10_000_000]
    assert expired["row"].max() < audit.loc[audit["batch_id"] == later.report.batch_id, "row"].min()
    assert "temporary batch T1 ended" in expired["reason"].iloc[0]
    assert list(openpyxl.load_workbook(signed)[TEMPORARY].iter_rows(min_row=3, values_only=True)) == []
    assert verify(signed) == []
    assert batches_in_quarter(audit, datetime(2026, 12, 31)) == 3  # T1 and two batches; not the expiry


def test_an_end_date_not_after_the_approval_is_refused(signed):
    outcome = apply(signed, [("C7", "1000", "x"), ("D24", "-1000", "y")], NOV, until="2026-11-02")
    assert not outcome.written and WorkflowCode.TEMPORARY in {i.code for i in outcome.report.issues}


def test_an_expiry_that_would_take_a_line_below_zero_must_be_covered_by_the_batch(signed):
    assert apply(signed, [("C3", "100000", "temp"), ("A1", "-100000", "x")], NOV, until="2026-12-01").written
    assert apply(signed, [("C3", "-450000", "cut"), ("A2", "450000", "x")], NOV.replace(day=5)).written  # C3: 50,000
    december = datetime(2026, 12, 2, tzinfo=timezone.utc)
    refused = apply(signed, [("A1", "1000", "x"), ("A2", "-1000", "y")], december)
    assert not refused.written and "include C3 in this batch" in refused.report.verdict
    covered = apply(signed, [("C3", "60000", "keep it"), ("A2", "-60000", "y")], december)
    assert covered.written, covered.report.verdict
    assert lines_of(signed)["C3"] == 1_000_000 and verify(signed) == []


def test_an_amendment_on_the_end_date_reverses_the_temporary_batch_first(signed):
    assert apply(signed, [("C7", "100000", "temp"), ("D24", "-100000", "x")], NOV, until="2026-11-30").written
    outcome = sign_off(signed, SIGNERS, "2026-11-30", amend=True, reason="mid-year review",
                       now=datetime(2026, 11, 30, tzinfo=timezone.utc))
    assert outcome.expired == [load_register(signed).audit["batch_id"].iloc[1]]
    assert dict(outcome.standard.lines)["C7"] == 80_000_000  # signed without the ended temporary part
    assert verify(signed) == []


def register_temporary(path: Path) -> dict[str, tuple]:
    """The Register's temporary columns, by customer, for the lines that show something."""
    ws = openpyxl.load_workbook(path)[REGISTER]
    header = [normalize_text(h) for h in next(ws.iter_rows(max_row=1, values_only=True))]
    if normalize_text(TEMPORARY_COLUMNS[0].heading) not in header:
        return {}
    part, until = (header.index(normalize_text(c.heading)) for c in TEMPORARY_COLUMNS)
    return {row[0]: (row[part], row[until].date() if row[until] else None)
            for row in ws.iter_rows(min_row=2, values_only=True)
            if row[0] and (row[part] is not None or row[until] is not None)}


def test_the_register_shows_each_line_s_temporary_part_until_it_is_reversed(signed):
    assert apply(signed, [("C7", "100000", "peak"), ("D24", "-100000", "x")], NOV, until="2026-12-31").written
    assert apply(signed, [("C7", "50000", "more"), ("A1", "-50000", "x")], NOV.replace(day=3), until="2026-12-15").written
    assert register_temporary(signed) == {"C7": (150_000, date(2026, 12, 15)), "A1": (-50_000, date(2026, 12, 15)),
                                          "D24": (-100_000, date(2026, 12, 31))}
    assert verify(signed) == []
    # the first write after 15 December takes back the second batch: C7 keeps the first part only
    later = apply(signed, [("A2", "1000", "x"), ("B5", "-1000", "y")], datetime(2026, 12, 16, tzinfo=timezone.utc))
    assert later.written, later.report.verdict
    assert register_temporary(signed) == {"C7": (100_000, date(2026, 12, 31)), "D24": (-100_000, date(2026, 12, 31))}
    assert apply(signed, [("A2", "-1000", "x"), ("B5", "1000", "y")], datetime(2026, 12, 31, tzinfo=timezone.utc)).written
    assert register_temporary(signed) == {} and verify(signed) == []


def test_a_register_without_the_columns_gets_them_with_its_first_temporary_batch(signed):
    def headers() -> list[str]:
        ws = openpyxl.load_workbook(signed)[REGISTER]
        return [normalize_text(h) for h in next(ws.iter_rows(max_row=1, values_only=True))]

    assert normalize_text(TEMPORARY_COLUMNS[0].heading) not in headers()  # as registers written before them
    assert apply(signed, [("A1", "1000", "x"), ("A2", "-1000", "y")], NOV).written
    assert normalize_text(TEMPORARY_COLUMNS[0].heading) not in headers()  # a lasting batch adds nothing
    assert apply(signed, [("C7", "100000", "peak"), ("D24", "-100000", "x")], NOV, until="2026-12-31").written
    assert register_temporary(signed) == {"C7": (100_000, date(2026, 12, 31)), "D24": (-100_000, date(2026, 12, 31))}
    assert headers()[-2:] == [normalize_text(c.heading) for c in TEMPORARY_COLUMNS] and verify(signed) == []


def test_verify_names_the_row_and_column_of_an_edited_temporary_cell(signed):
    assert apply(signed, [("C7", "100000", "peak"), ("D24", "-100000", "x")], NOV, until="2026-12-31").written
    book = openpyxl.load_workbook(signed)
    ws = book[REGISTER]
    header = [normalize_text(h) for h in next(ws.iter_rows(max_row=1, values_only=True))]
    until = header.index(normalize_text(TEMPORARY_COLUMNS[1].heading)) + 1
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=1).value == "C7")
    ws.cell(row=row, column=until).value = datetime(2027, 6, 30)  # the end date moved by hand
    book.save(signed)
    issues = verify(signed)
    assert [(i.row, i.column, i.source) for i in issues] == [(row, TEMPORARY_COLUMNS[1].label, REGISTER)]
    assert "2027-06-30" in issues[0].message and "2026-12-31" in issues[0].message


# ---- the property ----------------------------------------------------------------------------

CODES = [c for c, *_ in CUSTOMERS]
STEP = st.one_of(
    st.tuples(st.just("batch"), st.sampled_from(CODES), st.sampled_from(CODES), st.integers(1, 400_000),
              st.one_of(st.none(), st.integers(1, 20))),  # lasting, or temporary for up to 20 days
    st.tuples(st.just("amend")),
    st.tuples(st.just("wait"), st.integers(10, 60)),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(STEP, min_size=2, max_size=5))
def test_any_sequence_keeps_lines_at_the_signed_lines_plus_the_changes(tmp_path_factory, steps):
    path = signed_register(tmp_path_factory.mktemp("seq") / "register.xlsx", policy=ROOMY)
    now = datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)
    model, temporary = lines_of(path), []  # the lines we expect; (end date, {customer: change}) in force
    for n, step in enumerate(steps):
        now += timedelta(days=1)
        if step[0] == "wait":
            now += timedelta(days=step[1])
            continue
        if step[0] == "batch":
            _, up, down, amount, days = step
            if up == down:
                continue
            until = (now + timedelta(days=days)).date().isoformat() if days else None
            written = apply(path, [(up, str(amount), "up"), (down, str(-amount), "down")], now, until=until,
                            batch_id=f"P{n}").written
            moves = {up: amount * 100, down: -amount * 100}
        else:
            written = bool(sign_off(path, SIGNERS, now.date().isoformat(), amend=True, reason=f"review {n}", now=now))
            moves = {}
        if written:
            temporary = expire(model, temporary, now.date())
            for customer, change in moves.items():
                model[customer] += change
            if step[0] == "batch" and until:
                temporary.append((date.fromisoformat(until), moves))
        assert_signed_invariants(path, model)


def expire(model: dict[str, int], temporary: list, today: date) -> list:
    for until, moves in temporary:
        if until <= today:
            for customer, change in moves.items():
                model[customer] -= change
    return [(u, m) for u, m in temporary if u > today]


def assert_signed_invariants(path: Path, model: dict[str, int]) -> None:
    assert verify(path) == []
    loaded = load_register(path)
    lines = dict(zip(loaded.register["customer"], loaded.register["credit_line_cents"]))
    assert lines == model
    standard_row = int(standard_entries(loaded.audit)["row"].iloc[-1])
    moves = customer_entries(loaded.audit)
    after = moves.loc[moves["row"] > standard_row].groupby("customer")["change_cents"].sum()
    signed = loaded.signed.line_of()
    assert lines == {c: signed[c] + int(after.get(c, 0)) for c in signed}
    assert sum(lines.values()) == loaded.signed.budget_cents == BUDGET * 100
