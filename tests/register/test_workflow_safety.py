"""Crash and race safety of `crm-addin reallocate`: kill it mid-apply, run two at once.

After any kill the register is byte for byte the old file or a complete new one that verifies;
of two writers that loaded the same version, one wins and the other is told the register changed.
The kills and pauses at the write's checkpoints come from the test tooling (tests/support/
crash_points.py), which observes the checkpoints the workflow names and runs the command line.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_app.register.load import load_register
from crm_app.register.workflow import CHECKPOINTS, verify
from tests.support.registers import ROLES, ROOT, run_cli, write_request
from tests.support.signing import signed_register

pytestmark = pytest.mark.slow
HOOK_POINTS = ["loaded", "edited", "saved", "before_rename", "renamed"]
RANDOM_KILLS = int(os.environ.get("CRM_ADDIN_TEST_RANDOM_KILLS", "25"))
OTHER_BATCH = [("A1", "50000", "growth"), ("D30", "-50000", "slow payer")]
CRASH_POINTS = [sys.executable, "-m", "tests.support.crash_points"]  # run from ROOT


def cli_args(register: Path, request: Path, batch: str) -> list[str]:
    return [sys.executable, "-m", "crm_app", "reallocate", str(register), "--request", str(request),
            *ROLES, "--batch-id", batch]


def with_crash_points(args: list[str], *, kill_at: str = "", sleep_at: str = "") -> list[str]:
    """`cli_args` run by the test tooling, killing or pausing at a checkpoint."""
    how = ["--kill-at", kill_at] if kill_at else ["--sleep-at", sleep_at]
    return [*CRASH_POINTS, *how, "--", *args[3:]]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_kill_points_are_the_workflows_checkpoints():
    assert HOOK_POINTS == list(CHECKPOINTS)


def test_a_checkpoint_the_workflow_lacks_is_refused(pristine):
    register, request, old = pristine
    result = run(with_crash_points(cli_args(register, request, "K0"), kill_at="savde"))
    assert result.returncode == 64 and "no checkpoint 'savde'" in result.stderr, result.stderr
    assert register.read_bytes() == old


def assert_old_or_new(register: Path, old: bytes) -> str:
    """The file is the old one, or a new one with the whole batch that verifies."""
    data = register.read_bytes()
    if data == old:
        return "old"
    assert verify(register) == [], "a new register that does not verify"
    loaded = load_register(register)
    assert loaded.stamp.version == 3 and len(loaded.audit) == 5  # signed (version 2, one entry), then the batch
    assert int(loaded.register["credit_line_cents"].sum()) == 936_000_000
    return "new"


@pytest.fixture
def pristine(tmp_path) -> tuple[Path, Path, bytes]:
    register = signed_register(tmp_path / "register.xlsx")
    return register, write_request(tmp_path / "request.csv"), register.read_bytes()


@pytest.mark.parametrize("point", HOOK_POINTS)
def test_killed_at_a_hook_point_leaves_old_or_new(pristine, point):
    register, request, old = pristine
    result = run(with_crash_points(cli_args(register, request, "K1"), kill_at=point))
    assert result.returncode == -signal.SIGKILL, result.stderr
    state = assert_old_or_new(register, old)
    assert state == ("new" if point == "renamed" else "old")
    if state == "old":  # a rerun after the crash goes through
        assert run_cli(*cli_args(register, request, "K1")[3:]).returncode == 0
        assert assert_old_or_new(register, old) == "new"


def test_killed_at_random_moments_leaves_old_or_new(pristine):
    register, request, old = pristine
    started = time.perf_counter()
    assert run_cli(*cli_args(register, request, "R0")[3:]).returncode == 0
    full_run = time.perf_counter() - started
    rng = random.Random(20110101)
    seen = {"old": 0, "new": 0}
    for n in range(RANDOM_KILLS):
        register.write_bytes(old)
        proc = subprocess.Popen(cli_args(register, request, f"R{n}"), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # most of a run is start-up; aim most kills at its last third, where the writing happens
        time.sleep(rng.uniform(0.5, 1.1) * full_run)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen[assert_old_or_new(register, old)] += 1
    stray = list(register.parent.glob(".register.*.tmp"))  # temp files a kill left behind
    print(f"random kills: {RANDOM_KILLS}, left old {seen['old']}, left new {seen['new']}, "
          f"stray temp files {len(stray)}")
    assert sum(seen.values()) == RANDOM_KILLS


def test_two_writers_at_once_one_wins_the_other_is_told(tmp_path):
    register = signed_register(tmp_path / "register.xlsx", policy={"reallocations_per_quarter": 4})
    first = write_request(tmp_path / "first.csv")
    second = write_request(tmp_path / "second.csv", OTHER_BATCH)
    # both load the same version before either writes
    procs = [subprocess.Popen(with_crash_points(cli_args(register, req, batch), sleep_at="loaded:1.5"),
                              cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for req, batch in ((first, "P1"), (second, "P2"))]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 3], results
    loser = next(r for r in results if r[0] == 3)
    assert "register changed since you loaded it" in loser[2] and "登记表已被他人修改" in loser[2]
    assert verify(register) == []
    loaded = load_register(register)
    batches = loaded.audit["batch_id"].iloc[1:]  # below the sign-off
    assert loaded.stamp.version == 3 and batches.nunique() == 1
    # nothing lost: the loser re-runs on the new version and both batches are in the log
    lost = (first, "P1") if batches.iloc[0] == "P2" else (second, "P2")
    assert subprocess.run(cli_args(register, *lost), cwd=ROOT, capture_output=True).returncode == 0
    assert set(load_register(register).audit["batch_id"].iloc[1:]) == {"P1", "P2"} and verify(register) == []


def test_many_writers_racing_never_lose_or_mix(tmp_path):
    register = signed_register(tmp_path / "register.xlsx", policy={"reallocations_per_quarter": 10})
    batches = {f"M{n}": [("A1", str(10000 * (n + 1)), "race"), ("C9", str(-10000 * (n + 1)), "race")]
               for n in range(4)}
    procs = {b: subprocess.Popen(cli_args(register, write_request(tmp_path / f"{b}.csv", lines), b), cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for b, lines in batches.items()}
    status = {b: p.wait(timeout=120) for b, p in procs.items()}
    assert set(status.values()) <= {0, 3}, status
    print(f"racing writers: {status}")
    assert verify(register) == []
    loaded = load_register(register)
    won = {b for b, s in status.items() if s == 0}
    assert set(loaded.audit["batch_id"].iloc[1:]) == won and loaded.stamp.version == 2 + len(won)


def test_backup_is_the_previous_version(pristine):
    register, request, old = pristine
    assert run_cli(*cli_args(register, request, "B1")[3:]).returncode == 0
    backup = Path(str(register) + ".bak")
    assert backup.read_bytes() == old
    restored = register.with_name("restored.xlsx")
    shutil.copy(backup, restored)
    assert verify(restored) == [] and load_register(restored).stamp.version == 2
