"""Writing users' files: atomic rename, backup, no leftovers."""
import os
import time

import pytest

from crm_app.io.files import atomic_path, backup_path


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "register.xlsx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["register.xlsx"]


def test_a_write_keeps_the_previous_version_as_backup_and_the_permissions(tmp_path):
    target = tmp_path / "register.xlsx"
    target.write_bytes(b"v1")
    os.chmod(target, 0o640)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"v2")
    assert target.read_bytes() == b"v2" and backup_path(target).read_bytes() == b"v1"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["register.xlsx", "register.xlsx.bak"]


def test_stale_temporaries_of_a_killed_writer_are_swept_young_ones_kept(tmp_path):
    target = tmp_path / "register.xlsx"
    stale = tmp_path / ".register.abc123.xlsx.tmp"
    young = tmp_path / ".register.def456.xlsx.tmp"
    stale.write_bytes(b"x")
    young.write_bytes(b"y")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"v1")
    assert not stale.exists() and young.exists()
