"""`crm-addin sign-off`, and what reallocate and verify say about the signed standard and the key."""
from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from crm_app.cli.main import EXIT_DIFFERENCES, EXIT_INPUT, EXIT_OK, EXIT_USAGE, main
from crm_app.register.audit import KEY_ENV
from crm_app.register.load import load_register
from tests.support.registers import ROLES, build_register, write_request
from tests.support.signing import SIGN_ARGS

KEY = b"0123456789abcdef-the-chain-key\n"


@pytest.fixture
def register(tmp_path) -> Path:
    return build_register(tmp_path / "register.xlsx")


def run(argv, capsys) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def reallocate(register: Path, capsys, *extra) -> tuple[int, str, str]:
    request = write_request(register.with_name("request.csv"))
    return run(["reallocate", register, "--request", request, *ROLES, *extra], capsys)


def test_reallocate_before_the_sign_off_is_refused_naming_the_command(register, capsys):
    status, out, err = reallocate(register, capsys)
    assert status == EXIT_INPUT and "crm-addin sign-off" in out and "nothing written" in err
    status, out, _ = reallocate(register, capsys, "--dry-run")
    assert status == EXIT_OK and "not signed off" in out and "dry run" in out
    status, out, _ = run(["verify", register], capsys)
    assert status == EXIT_OK and out.startswith("unsigned: no sign-off")


def test_sign_off_then_reallocate_then_verify(register, capsys):
    status, out, _ = run(["sign-off", register, *SIGN_ARGS], capsys)
    assert status == EXIT_OK, out
    assert "signed SIGNOFF-2011, signed 2026-01-05 by CEO CEO Chen, CFO CFO Liu" in out and "9,360,000.00" in out
    assert reallocate(register, capsys)[0] == EXIT_OK
    status, out, _ = run(["verify", register], capsys)
    assert status == EXIT_OK
    lines = out.splitlines()
    assert lines[0].startswith("sign-off checked / 已核对签字: 2011 SIGNOFF-2011, signed 2026-01-05")
    assert lines[1].startswith("unkeyed chain: anyone can recompute it; use --key-file")
    assert "lines match the signed standard" in lines[-1]


@pytest.mark.parametrize("args, says", [
    (["--ceo", "Chen", "--cfo", "chen", "--sales-director", "Wang"], "three different people"),
    (["--ceo", "Chen", "--cfo", "Liu", "--sales-director", "Wang", "--date", "2099-01-01"], "in the future"),
    (["--ceo", "Chen", "--cfo", "Liu", "--sales-director", "Wang", "--date", "someday"], "date"),
    (["--ceo", "Chen", "--cfo", "Liu", "--sales-director", "Wang", "--amend"], "not signed yet"),
    (["--ceo", "Chen", "--cfo", "Liu", "--sales-director", "Wang", "--reason", "x"], "reason is for an amendment"),
])
def test_a_refused_sign_off_writes_nothing_and_says_why(register, capsys, args, says):
    before = register.read_bytes()
    status, out, err = run(["sign-off", register, *args], capsys)
    assert status == EXIT_INPUT and says in err and "Traceback" not in out + err
    assert register.read_bytes() == before


def test_sign_off_needs_all_three_names(register, capsys):
    assert run(["sign-off", register, "--ceo", "Chen", "--cfo", "Liu"], capsys)[0] == EXIT_USAGE


def test_a_second_sign_off_is_refused_and_an_amendment_is_recorded(register, capsys):
    assert run(["sign-off", register, *SIGN_ARGS], capsys)[0] == EXIT_OK
    status, _, err = run(["sign-off", register, *SIGN_ARGS], capsys)
    assert status == EXIT_INPUT and "already signed" in err and "--amend" in err
    status, out, _ = run(["sign-off", register, *SIGN_ARGS, "--amend", "--reason", "mid-year review"], capsys)
    assert status == EXIT_OK and "AMEND-2011-1" in out


def test_a_policy_key_changed_by_hand_is_named_by_verify(register, capsys):
    assert run(["sign-off", register, *SIGN_ARGS], capsys)[0] == EXIT_OK
    book = openpyxl.load_workbook(register)
    book["Policy"].append(["reallocations_per_quarter", 2])
    book.save(register)
    status, out, _ = run(["verify", register], capsys)
    assert status == EXIT_DIFFERENCES and "reallocations_per_quarter: signed 1, found 2" in out and "Policy" in out
    assert reallocate(register, capsys)[0] == EXIT_INPUT


def test_a_keyed_chain_from_a_key_file_or_the_environment(register, tmp_path, capsys, monkeypatch):
    key = tmp_path / "audit.key"
    key.write_bytes(KEY)
    assert run(["sign-off", register, *SIGN_ARGS, "--key-file", key], capsys)[0] == EXIT_OK
    status, out, _ = run(["verify", register], capsys)
    assert status == EXIT_DIFFERENCES and "hashes NOT checked" in out and "--key-file" in out
    status, out, _ = run(["verify", register, "--key-file", key], capsys)
    assert status == EXIT_OK and "keyed chain" in out and "HMACs checked" in out
    status, out, _ = reallocate(register, capsys)  # no key: refused, the chain could not be checked
    assert status == EXIT_INPUT and "its hashes were NOT checked" in out
    monkeypatch.setenv(KEY_ENV, str(key))
    assert reallocate(register, capsys)[0] == EXIT_OK
    assert run(["verify", register], capsys)[0] == EXIT_OK
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"fedcba9876543210-another-key!")
    status, out, _ = run(["verify", register, "--key-file", wrong], capsys)
    assert status == EXIT_DIFFERENCES and "the key does not match the chain's key id" in out


def test_a_missing_or_short_key_file_is_said_without_a_traceback(register, tmp_path, capsys):
    status, _, err = run(["verify", register, "--key-file", tmp_path / "none.key"], capsys)
    assert status == 4 and "key file not found" in err
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    status, _, err = run(["verify", register, "--key-file", short], capsys)
    assert status == EXIT_INPUT and "at least 16" in err


def test_a_temporary_batch_on_the_command_line(register, capsys):
    assert run(["sign-off", register, *SIGN_ARGS], capsys)[0] == EXIT_OK
    status, out, _ = reallocate(register, capsys, "--until", "2099-12-31", "--batch-id", "T1")
    assert status == EXIT_OK and "temporary until 2099-12-31" in out
    audit = load_register(register).audit
    assert set(audit.loc[audit["batch_id"] == "T1", "override_reason"]) == {"until 2099-12-31"}
    status, out, _ = run(["verify", register], capsys)
    assert status == EXIT_OK and "C7: +100,000.00 until 2099-12-31 (batch T1)" in out
