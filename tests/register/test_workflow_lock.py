"""The register's write lock and the write's checkpoints.

A second writer finds REGISTER.lock (beside the register) held and is told, after a short wait,
that the register is busy: exit 3, nothing written. The lock is the operating system's, so a
killed holder leaves none behind. A write calls the observers in workflow.checkpoints at each
named point, and the product installs none; nothing installed knows the tests' tooling.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crm_app.cli.main import EXIT_CHANGED, EXIT_OK, main
from crm_app.register import workflow
from crm_app.register.load import load_register
from crm_app.register.workflow import BUSY, CHECKPOINTS, verify
from tests.support.registers import ROLES, ROOT, write_request
from tests.support.signing import signed_register

SHORT_WAIT = 0.3
# Another process holding the lock: the library's own lock on the file beside the register, so a
# lock elsewhere, or of another kind (a marker file), would not stop our writer.
HOLDER = ("import sys, filelock; lock = filelock.FileLock(sys.argv[1], fallback_to_soft=False); lock.acquire(); "
          "print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def register(tmp_path) -> Path:
    return signed_register(tmp_path / "register.xlsx")


def reallocate_args(register: Path, batch: str = "L1") -> list[str]:
    request = write_request(register.with_name(f"{batch}.csv"))
    return ["reallocate", str(register), "--request", str(request), *ROLES, "--batch-id", batch]


def hold_lock(register: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(register) + ".lock"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_told_soon_that_the_register_is_busy(register, monkeypatch, capsys):
    monkeypatch.setattr(workflow, "LOCK_WAIT_SECONDS", SHORT_WAIT)
    before = register.read_bytes()
    holder = hold_lock(register)
    try:
        started = time.perf_counter()
        status = main(reallocate_args(register))
        waited = time.perf_counter() - started
    finally:
        holder.communicate("")  # let go
    err = capsys.readouterr().err
    assert status == EXIT_CHANGED, err
    assert BUSY in err and "someone else is writing the register" in err and "nothing written" in err, err
    assert "Traceback" not in err and "cannot replace the register" not in err, err
    assert waited < SHORT_WAIT + 10  # the whole run, load and check included: no 30 s wait
    assert register.read_bytes() == before
    assert main(reallocate_args(register)) == EXIT_OK  # free again: the same batch goes through
    assert verify(register) == [] and load_register(register).stamp.version == 3  # built, signed, the batch


def test_the_lock_file_is_beside_the_register(register):
    with workflow.register_lock(register):
        assert (register.parent / "register.xlsx.lock").exists()
        with pytest.raises(workflow.RegisterChangedError, match="someone else is writing the register"):
            with workflow.register_lock(register, wait=0):
                pass


def test_a_killed_lock_holder_leaves_no_lock_behind(register, monkeypatch, capsys):
    monkeypatch.setattr(workflow, "LOCK_WAIT_SECONDS", SHORT_WAIT)
    holder = hold_lock(register)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (register.parent / "register.xlsx.lock").exists()  # the file stays; its lock went with the process
    assert main(reallocate_args(register)) == EXIT_OK, capsys.readouterr().err
    assert verify(register) == []


def test_a_write_reaches_every_checkpoint_in_order_and_a_dry_run_only_the_load(register, monkeypatch):
    reached: list[str] = []
    monkeypatch.setattr(workflow, "checkpoints", [reached.append])
    assert main([*reallocate_args(register, "D1"), "--dry-run"]) == EXIT_OK
    assert reached == ["loaded"]
    reached.clear()
    assert main(reallocate_args(register, "W1")) == EXIT_OK
    assert reached == list(CHECKPOINTS) == ["loaded", "edited", "saved", "before_rename", "renamed"]


def test_an_observer_that_fails_stops_the_write_before_the_rename(register, monkeypatch):
    before = register.read_bytes()

    def fail_at_saved(point: str) -> None:
        if point == "saved":
            raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "checkpoints", [fail_at_saved])
    assert main(reallocate_args(register)) == 130
    assert register.read_bytes() == before and not list(register.parent.glob(".register.*.tmp"))


def test_the_product_installs_no_observer():
    code = "import crm_addin; from crm_app.register import workflow; print(len(workflow.checkpoints))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


INSTALLED = [ROOT / "crm_addin.py", *(p for pkg in ("crm_core", "crm_app", "udfs") for p in (ROOT / pkg).rglob("*.py"))]
TEST_ONLY = re.compile(r"^\s*(?:import|from)\s+(?:pytest|hypothesis|tests)\b|CRM_ADDIN_TEST_", re.MULTILINE)


def test_installed_modules_know_nothing_of_the_tests():
    """No installed module imports pytest or the tests' tooling, or reads a test environment variable."""
    assert len(INSTALLED) > 20
    found = {str(p.relative_to(ROOT)): TEST_ONLY.findall(p.read_text(encoding="utf-8")) for p in INSTALLED}
    assert not {k: v for k, v in found.items() if v}
