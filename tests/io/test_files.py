"""Writing users' files: atomic rename, backup, no leftovers."""
import os
import time

import numpy as np
import pandas as pd
import pytest

from crm_app.io.files import atomic_path, backup_path, read_table


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


@pytest.mark.parametrize("stored_encoded", [False, True])
def test_parquet_text_columns_read_as_categoricals_cell_for_cell(tmp_path, stored_encoded):
    """Coded columns are built from one dictionary over every row group (blanks stay missing),
    also when the file stores them dictionary-encoded, a dictionary per row group: the same
    cells as the file holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 5_000
    names = np.array(["客户甲", "客户乙", "A", "a", "A ", "B-12"], dtype=object)
    customer = names[rng.integers(0, len(names), n)]
    customer_name = np.where(rng.random(n) < 0.1, None, customer)
    raw = pa.table({"date": pa.array(np.full(n, np.datetime64("2024-03-01", "D"))), "customer": customer,
                    "customer_name": customer_name, "type": np.where(rng.random(n) < 0.5, "invoice", "receipt"),
                    "amount": rng.integers(1, 10_000, n) / 100})
    if stored_encoded:
        raw = pa.table({c: raw.column(c).dictionary_encode() if c in ("customer", "customer_name") else raw.column(c)
                        for c in raw.column_names})
    path = tmp_path / "ledger.parquet"
    pq.write_table(raw, path, row_group_size=700)  # eight row groups, each with its own dictionary
    frame = read_table(path)
    for column in ("customer", "customer_name", "type"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype)
        assert frame[column].cat.categories.is_unique
        expected = raw.column(column).to_pylist()  # dictionary-encoded or not: the cells
        assert frame[column].astype(object).where(frame[column].notna(), None).tolist() == expected
    assert list(frame.columns) == raw.column_names


@pytest.mark.parametrize("dictionary_page_bytes", [1 << 20, 256])
def test_parquet_columns_stored_as_codes_are_read_as_codes_with_the_same_cells(tmp_path, dictionary_page_bytes):
    """Customer and type columns stored as dictionary codes in every row group are read as codes
    (a dictionary per row group, shared by its batches, merged once); a column stored as text (the
    names here), or one whose dictionary outgrew its page and fell back to text, is read as text
    and encoded. Either way the frame holds the file's cells."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from crm_app.io.files import _parquet_columns, stored_dictionary_columns

    rng = np.random.default_rng(5)
    n = 150_000  # two row groups, the first read in several batches
    codes = np.array([f"C{i:05d}" for i in range(3_000)], dtype=object)
    customer = codes[rng.integers(0, len(codes), n)]
    customer[rng.random(n) < 0.01] = None
    raw = pa.table({"date": pa.array(np.full(n, np.datetime64("2024-03-01", "D"))), "customer": customer,
                    "customer_name": np.char.add("客户", customer.astype(str)).astype(object),
                    "type": np.where(rng.random(n) < 0.5, "invoice", "receipt"),
                    "amount": rng.integers(1, 10_000, n) / 100})
    path = tmp_path / "ledger.parquet"
    pq.write_table(raw, path, row_group_size=100_000, use_dictionary=["customer", "type"],
                   dictionary_pagesize_limit=dictionary_page_bytes)
    stored = stored_dictionary_columns(path, _parquet_columns(path))
    assert stored == (["customer", "type"] if dictionary_page_bytes > 1 << 16 else ["type"])
    frame = read_table(path)
    for column in ("customer", "customer_name", "type"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype)
        assert frame[column].cat.categories.is_unique
        assert frame[column].astype(object).where(frame[column].notna(), None).tolist() == raw.column(column).to_pylist()


def test_parquet_row_groups_are_read_in_runs_of_at_least_the_rows_asked(tmp_path):
    from crm_app.io.files import parquet_row_group_runs, read_parquet_row_groups

    path = tmp_path / "groups.parquet"
    table = pd.DataFrame({"date": ["2024-01-05"] * 10, "customer": [f"C{i}" for i in range(10)],
                          "type": ["invoice"] * 10, "amount": ["1"] * 10})
    table.to_parquet(path, index=False, row_group_size=3)  # groups of 3, 3, 3 and 1 rows
    assert parquet_row_group_runs(path, 5) == [[0, 1], [2, 3]]
    assert parquet_row_group_runs(path, 1) == [[0], [1], [2], [3]]
    assert parquet_row_group_runs(path, 100) == [[0, 1, 2, 3]]
    runs = [read_parquet_row_groups(path, run) for run in parquet_row_group_runs(path, 5)]
    assert [list(r["customer"].astype(str)) for r in runs] == [[f"C{i}" for i in range(6)], [f"C{i}" for i in range(6, 10)]]
    assert isinstance(runs[0]["customer"].dtype, pd.CategoricalDtype)  # as the whole file is read


def test_the_csv_reader_allocates_from_jemalloc_unless_a_pool_is_named(monkeypatch, tmp_path):
    """Arrow's default pool on Linux (mimalloc) took the reader's parsing buffers back as fresh
    pages; jemalloc keeps them. A pool the user names in ARROW_DEFAULT_MEMORY_POOL stands."""
    import pyarrow as pa

    from crm_app.io.files import jemalloc_pool, read_table

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        assert jemalloc_pool() is None  # a pyarrow without jemalloc: Arrow's default
    else:
        assert jemalloc_pool().backend_name == "jemalloc"
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("date,customer,type,amount\n2025-01-02,C1,invoice,100\n", encoding="utf-8")
    assert read_table(ledger)["customer"].tolist() == ["C1"]
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    assert jemalloc_pool() is None
    assert read_table(ledger)["amount"].tolist() == [100.0]
