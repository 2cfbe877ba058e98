"""Large-ledger jobs keep the memory they free for their own next arrays, and give it back after."""
from __future__ import annotations

import numpy as np
import pytest

from crm_app import allocator


def _resident_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only: elsewhere the block changes nothing")
def test_memory_freed_in_a_job_is_kept_during_it_and_returned_after():
    before = _resident_mb()
    with allocator.memory_kept_for_reuse():
        with allocator.memory_kept_for_reuse():  # jobs may nest: only the outer one gives back
            arrays = [np.ones(2**24) for _ in range(6)]  # 6 x 128 MB
            del arrays
        nested = _resident_mb()
        again = np.ones(2**24)  # served from what was kept
        del again
        kept = _resident_mb()
    after = _resident_mb()
    assert nested - before > 500 and kept - before > 500
    assert after - before < 200


def test_elsewhere_the_block_only_runs_its_body(monkeypatch):
    monkeypatch.setattr(allocator, "_LIBC", [None])
    with allocator.memory_kept_for_reuse():
        ran = True
    assert ran and allocator._depth == 0
