"""Large-ledger mode: a ledger file reviewed by path gives what the sheet path gives, and is cached."""
from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_app.cli.main import main
from crm_app.engines import dask_engine, inprocess
from crm_app.engines import ledger_file as ll
from crm_app.io import cache
from crm_app.io.files import read_ledger
from crm_core.collection import Period, customer_facts
from crm_core.demo import demo_ledger
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.review import default_year, review_ledger


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_ADDIN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def demo():
    return demo_ledger(seed=7, customers=60, yearly_sales=2_000_000.0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_reviews_exactly_like_the_sheet_path(tmp_path, demo, suffix):
    path = tmp_path / f"ledger{suffix}"
    demo.to_csv(path, index=False) if suffix == ".csv" else demo.to_parquet(path, index=False)
    review, result = ll.review_file(path, year=2024)
    expected = review_ledger(read_ledger(path), year=2024)
    pd.testing.assert_frame_equal(review.register, expected.register)
    assert review.summary_lines() == expected.summary_lines()
    assert result.meta["input_rows"] == len(demo) and result.from_cache == ""


def _messy(demo: pd.DataFrame) -> pd.DataFrame:
    """The demo ledger with what ERP exports get wrong: spellings, blanks, bad types and dates."""
    messy = demo.astype(object).copy()
    messy.loc[3, "customer"] = f" {messy.loc[3, 'customer']} "
    messy.loc[4, "customer"] = str(messy.loc[4, "customer"]).replace("C", "Ｃ")
    messy.loc[5, "customer"] = "   "
    messy.loc[6, "customer"] = "#N/A"
    messy.loc[7, "type"] = "weird"
    messy.loc[8, "type"] = " 发票 "
    messy.loc[9, "date"] = "3024-01-01"
    messy.loc[10, "customer_name"] = "  客户  x "
    messy.loc[11, :] = None
    first, second = messy.index[(messy["type"] == "invoice") & (messy.index > 11)][:2]
    messy.loc[first, "invoice_no"] = messy.loc[second, "invoice_no"] = " INV 1 "
    return messy


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_dictionary_encoded_files_validate_exactly_like_a_sheet_range(tmp_path, demo, suffix):
    """Files are read with customer, name and type dictionary-encoded (checks run per distinct
    value); a sheet range arrives as plain cells. Both give the same rows, issues and register."""
    messy = _messy(demo)
    path = tmp_path / f"messy{suffix}"
    text = messy.astype(str).where(messy.notna(), None)
    text.to_csv(path, index=False) if suffix == ".csv" else text.to_parquet(path, index=False)
    from_file = ll.read_ledger_file(path)
    assert isinstance(from_file.rows["customer"].dtype, pd.CategoricalDtype)
    from_cells = normalize_ledger(text, source=path.name)
    assert [(i.code, i.row, i.column, i.message) for i in from_file.issues] == \
        [(i.code, i.row, i.column, i.message) for i in from_cells.issues]
    assert {i.column for i in from_file.issues} >= {"customer", "type", "date", "invoice_no"}
    pd.testing.assert_frame_equal(from_file.rows, from_cells.rows, check_dtype=False, check_categorical=False)
    pd.testing.assert_frame_equal(review_ledger(from_file, year=2024).register,
                                  review_ledger(from_cells, year=2024).register)


TEXT_CELLS = {
    "date": ["2024-01-05", "2024/2/29", "2024年3月1日", "2023-02-29", "3024-01-01", "", "soon", "45400"],
    "customer": ["A", " A ", "Ａ", "B公司", "B公司 ", "", "#N/A", "NA", "=1+1", "x" * 300],
    "type": ["invoice", "发票", " 收款 ", "receipt", "红字", "gift", ""],
    "amount": ["100", "99.99", "1,234.56", "¥88", "３万", "(10)", "-5", "abc", "", "#DIV/0!"],
    "customer_name": ["", "甲", " 甲 ", "乙"],
    "invoice_no": ["", "INV1", " INV1 ", "INV2", "INV3", "ＩＮＶ3"],
}
VALID_CELLS = {"date": ["2023-06-30", "2024-01-05", "2024年3月1日", "2024-12-30", "2025-02-01"], "customer": ["A", "B公司", " A "],
               "type": ["invoice", "发票", "receipt"], "amount": ["100", "1,234.56"],
               "customer_name": ["", "甲"], "invoice_no": ["INV1", " INV1 ", "INV2"]}
LEDGER_ROWS = st.lists(st.one_of(
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in TEXT_CELLS.items()}),
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALID_CELLS.items()}),  # repeats to find
    st.just(dict.fromkeys(TEXT_CELLS, ""))), max_size=25)  # and wholly blank rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(LEDGER_ROWS, st.sampled_from([".csv", ".parquet"]))
def test_files_and_sheet_ranges_agree_on_every_messy_ledger(tmp_path, rows, suffix):
    """Whatever the cells, the dictionary-encoded file path and the plain-cell path keep and
    report the same rows (messages may word a typed cell differently, never place it elsewhere)."""
    text = pd.DataFrame(rows, columns=list(TEXT_CELLS), dtype=object).replace("", None)
    path = tmp_path / f"fuzz{suffix}"
    text.to_csv(path, index=False) if suffix == ".csv" else text.astype("string").to_parquet(path, index=False)
    from_file, from_cells = ll.read_ledger_file(path), normalize_ledger(text, source=path.name)
    assert sorted((i.code, i.row, i.column) for i in from_file.issues) == \
        sorted((i.code, i.row, i.column) for i in from_cells.issues)
    keep = ["row", "customer", "type", "amount_cents", "customer_name"]
    pd.testing.assert_frame_equal(from_file.rows[keep].astype(object), from_cells.rows[keep].astype(object))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_on_the_dask_engine_gives_what_the_whole_file_gives(tmp_path, demo, suffix, monkeypatch):
    """Partitions of ~40 rows: invoice numbers repeated in another partition, spellings that
    merge across partitions and the last complete year are judged over the whole file, to the
    same messages."""
    messy = _messy(demo)
    path = tmp_path / f"messy{suffix}"
    text = messy.astype(str).where(messy.notna(), None)
    text.to_csv(path, index=False) if suffix == ".csv" else text.to_parquet(path, index=False, row_group_size=40)
    monkeypatch.setattr(dask_engine, "PARQUET_PARTITION_ROWS", 100)  # partitions of three row groups
    whole = ll.file_facts(path, use_cache=False)
    parts = ll.file_facts(path, use_cache=False, engine="dask", blocksize=2000)
    assert [(i.code, i.row, i.column, i.message) for i in parts.issues] == \
        [(i.code, i.row, i.column, i.message) for i in whole.issues]
    pd.testing.assert_frame_equal(parts.table, whole.table)
    assert parts.meta == whole.meta
    with pytest.raises(CrmInputError) as refused:
        ll.review_file(path, use_cache=False, engine="dask", blocksize=2000)
    assert "row" in str(refused.value)
    clean = tmp_path / f"clean{suffix}"
    demo.to_csv(clean, index=False) if suffix == ".csv" else demo.to_parquet(clean, index=False, row_group_size=40)
    whole_review, _ = ll.review_file(clean, use_cache=False)
    parts_review, result = ll.review_file(clean, use_cache=False, engine="dask", blocksize=2000)
    pd.testing.assert_frame_equal(parts_review.register, whole_review.register)
    assert parts_review.summary_lines() == whole_review.summary_lines()


def test_a_csv_cell_that_breaks_the_first_blocks_column_type_is_read_as_text(tmp_path, monkeypatch):
    """Arrow types a column from its first block; text further down (here 'abc' among numbers)
    must still be read and reported at its own row, not fail the file, on every engine."""
    from crm_app.io import files

    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 1024)
    lines = [f"2024-0{1 + i % 9}-1{i % 10},C{i % 7},invoice,{100 + i}.5" for i in range(400)]
    lines[350] = "2024-05-05,C1,invoice,abc"
    path = tmp_path / "late.csv"
    path.write_text("date,customer,type,amount\n" + "\n".join(lines) + "\n", encoding="utf-8")
    parts = ll.file_facts(path, use_cache=False, engine="dask", blocksize=2048)
    whole = ll.file_facts(path, use_cache=False)
    assert [(i.row, i.column) for i in parts.issues] == [(352, "amount")] == [(i.row, i.column) for i in whole.issues]
    pd.testing.assert_frame_equal(parts.table, whole.table)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(LEDGER_ROWS, st.sampled_from([".csv", ".parquet"]), st.integers(40, 200),
       st.sampled_from([None, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]),
       st.sampled_from([1, 2, 3, 5, 9]), st.sampled_from([1, 4, 10]))
def test_the_dask_engine_agrees_with_a_whole_read_on_every_messy_ledger(tmp_path, monkeypatch, rows, suffix, block,
                                                                        start, row_group, partition_rows):
    """CSV partitions of a few lines; Parquet row groups of 1-9 rows, a partition each or runs of
    them of at least 4 or 10 rows; the period given (a calendar year or not) or left to the ledger."""
    monkeypatch.setattr(dask_engine, "PARQUET_PARTITION_ROWS", partition_rows)
    text = pd.DataFrame(rows, columns=list(TEXT_CELLS), dtype=object).replace("", None)
    path = tmp_path / f"fuzz{suffix}"
    text.to_csv(path, index=False) if suffix == ".csv" else \
        text.astype("string").to_parquet(path, index=False, row_group_size=row_group)
    whole = ll.file_facts(path, use_cache=False, period_start=start)
    parts = ll.file_facts(path, use_cache=False, period_start=start, engine="dask", blocksize=block)
    assert parts.meta == whole.meta
    assert [(i.code, i.row, i.column, i.message) for i in parts.issues] == \
        [(i.code, i.row, i.column, i.message) for i in whole.issues]
    pd.testing.assert_frame_equal(parts.table, whole.table, check_dtype=False)
    # the sheet path: the same cells as a range, validated and summed without any engine
    sheet = normalize_ledger(text, source=path.name)
    assert sorted((i.code, i.row, i.column) for i in sheet.issues) == sorted((i.code, i.row, i.column) for i in whole.issues)
    period = Period(pd.Timestamp(whole.meta["period_start"]), pd.Timestamp(whole.meta["period_end"]))
    if start is None and len(sheet.rows):
        assert period == Period.year(default_year(sheet.rows))
    facts = customer_facts(sheet.rows, ll.Policy(), period)
    pd.testing.assert_frame_equal(facts, whole.table, check_dtype=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(LEDGER_ROWS, st.sampled_from([".csv", ".parquet"]), st.integers(2, 6), st.integers(1, 8),
       st.sampled_from([None, pd.Timestamp("2024-03-01")]))
def test_the_in_process_engine_in_slices_gives_what_one_partition_gives(tmp_path, rows, suffix, threads,
                                                                        slice_rows, start):
    """Slices of 1-8 rows checked side by side in 2-6 threads: the same issues (code, row,
    column, message, in order), counts and facts as the table checked in one piece."""
    text = pd.DataFrame(rows, columns=list(TEXT_CELLS), dtype=object).replace("", None)
    path = tmp_path / f"fuzz{suffix}"
    text.to_csv(path, index=False) if suffix == ".csv" else text.astype("string").to_parquet(path, index=False)
    whole = ll.file_facts(path, use_cache=False, period_start=start, threads=1)
    original = inprocess.SLICE_ROWS
    inprocess.SLICE_ROWS = slice_rows  # a module constant, put back below (hypothesis reuses the fixtures)
    try:
        slices = inprocess.row_slices(pd.DataFrame({"a": range(len(rows))}), threads)
        assert [n for part in slices for n in part["a"]] == list(range(len(rows)))  # consecutive, all rows
        assert len(slices) <= threads and (len(slices) == 1 or min(map(len, slices)) >= slice_rows)
        assert len(slices) > 1 or len(rows) < 2 * slice_rows  # sliced whenever two slices fit
        sliced = ll.file_facts(path, use_cache=False, period_start=start, threads=threads)
    finally:
        inprocess.SLICE_ROWS = original
    assert sliced.meta == whole.meta
    assert [(i.code, i.row, i.column, i.message) for i in sliced.issues] == \
        [(i.code, i.row, i.column, i.message) for i in whole.issues]
    pd.testing.assert_frame_equal(sliced.table, whole.table)


def test_the_in_process_engine_slices_a_repeated_invoice_across_slices_as_one_ledger(tmp_path, demo, monkeypatch):
    """Invoice numbers repeated in another slice (the slices' numbers interleave): found and
    refused at their rows as in one piece, the register the same to the cent."""
    messy = _messy(demo)
    invoices = messy.index[messy["type"] == "invoice"]
    messy.loc[invoices[-1], "invoice_no"] = messy.loc[invoices[20], "invoice_no"]  # far apart: other slices
    path = tmp_path / "messy.parquet"
    messy.astype(str).where(messy.notna(), None).to_parquet(path, index=False)
    whole = ll.file_facts(path, use_cache=False, threads=1)
    monkeypatch.setattr(inprocess, "SLICE_ROWS", 40)
    sliced = ll.file_facts(path, use_cache=False, threads=4)
    repeats = [i.row for i in whole.issues if i.code.name == "DUPLICATE_INVOICE"]
    assert max(repeats) - min(repeats) > 40 * 4  # the repeats are slices apart
    assert [(i.code, i.row, i.column, i.message) for i in sliced.issues] == \
        [(i.code, i.row, i.column, i.message) for i in whole.issues]
    pd.testing.assert_frame_equal(sliced.table, whole.table)
    clean = tmp_path / "clean.parquet"
    demo.to_parquet(clean, index=False)
    one, _ = ll.review_file(clean, use_cache=False, threads=1)
    four, _ = ll.review_file(clean, use_cache=False, threads=4)
    pd.testing.assert_frame_equal(four.register, one.register)


def test_a_repeat_inside_one_slice_computes_only_the_compacted_slices_again(tmp_path, demo, monkeypatch):
    """Rising invoice numbers (as ERPs number them) with a repeat inside the first slice: that
    slice keeps its invoice rows, the others are compacted, so only those are computed again,
    and the answer is the one-piece answer."""
    ledger = demo.astype(object).copy()
    invoices = ledger.index[ledger["type"] == "invoice"]
    ledger.loc[invoices, "invoice_no"] = [f"INV{n:07d}" for n in range(len(invoices))]
    ledger.loc[invoices[1], "invoice_no"] = ledger.loc[invoices[0], "invoice_no"]
    path = tmp_path / "rising.parquet"
    ledger.to_parquet(path, index=False)
    whole = ll.file_facts(path, use_cache=False, threads=1)
    compacting, original = [], inprocess.partition
    monkeypatch.setattr(inprocess, "partition", lambda *a, **k: compacting.append(k["compact"]) or original(*a, **k))
    monkeypatch.setattr(inprocess, "SLICE_ROWS", 40)
    sliced = ll.file_facts(path, use_cache=False, threads=4)
    assert compacting == [True] * 4 + [False] * 3
    assert [(i.code, i.row, i.column, i.message) for i in sliced.issues] == \
        [(i.code, i.row, i.column, i.message) for i in whole.issues]
    pd.testing.assert_frame_equal(sliced.table, whole.table)


def test_the_in_process_engine_makes_jemalloc_arrows_pool_unless_a_pool_is_named(tmp_path, demo, monkeypatch):
    """A file reviewed whole reuses the memory Arrow frees (mimalloc gave it back as fresh pages
    the kernel clears); a pool the user names in ARROW_DEFAULT_MEMORY_POOL stands."""
    import pyarrow as pa

    from crm_core.policy import Policy

    path = tmp_path / "ledger.parquet"
    demo.to_parquet(path)
    try:
        jemalloc = pa.jemalloc_memory_pool().backend_name
    except NotImplementedError:
        jemalloc = None  # a pyarrow without jemalloc: Arrow's default stays
    before = pa.default_memory_pool()
    try:
        for named, expected in ((None, jemalloc or "system"), ("system", "system")):
            if named:
                monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", named)
            else:
                monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
            pa.set_memory_pool(pa.system_memory_pool())
            assert inprocess.ledger_sums(path, Policy()).input_rows == len(demo)
            assert pa.default_memory_pool().backend_name == expected
    finally:
        pa.set_memory_pool(before)


def test_recalculation_comes_from_the_cache_until_the_content_changes(tmp_path, demo):
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    first = ll.file_facts(path)
    from_disk = ll.file_facts(path)
    assert from_disk.from_cache == "disk"
    pd.testing.assert_frame_equal(from_disk.table, first.table, check_dtype=False)
    demo.iloc[:-1].to_csv(path, index=False)  # one row fewer: new content, new answer
    changed = ll.file_facts(path)
    assert changed.from_cache == "" and changed.digest != first.digest
    assert changed.meta["input_rows"] == len(demo) - 1


def test_a_new_process_does_not_hash_an_unchanged_file_again(tmp_path, demo, monkeypatch):
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    digest = cache.content_digest(path)
    monkeypatch.setattr(cache, "hash_file", lambda *a: pytest.fail("hashed again"))
    assert cache.content_digest(path) == digest
    assert ll.file_facts(path).digest == digest


def test_a_file_copied_over_with_its_old_size_and_mtime_is_hashed_again(tmp_path, demo):
    """Copy tools may keep a size and set the mtime back; the change time still tells."""
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    before = os.stat(path)
    first = ll.file_facts(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("2024-", "2023-", 1), encoding="utf-8")  # same size, new content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns
    again = ll.file_facts(path)
    assert again.digest != first.digest and again.from_cache == ""


def test_a_touched_file_is_hashed_again_and_answered_from_the_cache(tmp_path, demo):
    path = tmp_path / "ledger.parquet"
    demo.to_parquet(path, index=False)
    first = ll.review_file(path, year=2024)[1]
    os.utime(path)  # a new mtime, the same bytes: the digest is not known, the content is
    again = ll.review_file(path, year=2024)[1]
    assert again.from_cache == "disk" and again.digest == first.digest
    pd.testing.assert_frame_equal(again.table, first.table, check_dtype=False)


def test_a_file_that_changes_while_it_is_read_is_not_cached(tmp_path, demo, monkeypatch):
    """Hashed after the read, its digest is the new content's: the old content's answer must not
    be kept under it."""
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    reading = inprocess.read_table

    def read_then_save_again(p, **kw):
        frame = reading(p, **kw)
        demo.iloc[:-1].to_csv(path, index=False)  # someone saves the file meanwhile
        return frame

    monkeypatch.setattr(inprocess, "read_table", read_then_save_again)
    assert ll.file_facts(path).from_cache == ""
    monkeypatch.setattr(inprocess, "read_table", reading)
    assert ll.file_facts(path).meta["input_rows"] == len(demo) - 1


def test_a_missing_file_or_an_unsupported_type_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        ll.review_file(tmp_path / "nowhere.csv", year=2024)
    odd = tmp_path / "ledger.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(CrmInputError, match="unsupported file type"):
        ll.review_file(odd, year=2024)


def test_a_changed_add_in_does_not_answer_from_results_of_its_old_rules(tmp_path, demo, monkeypatch):
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    ll.file_facts(path)
    assert ll.file_facts(path).from_cache == "disk"
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited-core")
    assert ll.file_facts(path).from_cache == ""


def test_the_period_and_policy_are_part_of_the_cache_key(tmp_path, demo):
    path = tmp_path / "ledger.parquet"
    demo.to_parquet(path, index=False)
    y2024 = ll.file_facts(path, period_start=pd.Timestamp("2024-01-01"))
    y2025 = ll.file_facts(path, period_start=pd.Timestamp("2025-01-01"))
    assert y2025.from_cache == "" and y2025.meta["period_end"] == "2025-12-31"
    rows = read_ledger(path).rows
    expected = customer_facts(rows, ll.Policy(), Period.year(2024))
    pd.testing.assert_frame_equal(y2024.table, expected)


def test_bad_rows_are_reported_with_their_file_row_and_the_review_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,customer,type,amount\n2024-01-02,A,invoice,100\n2024-01-03,A,receipt,abc\n"
                    "2024-01-04,B,invoice,50\n", encoding="utf-8")
    facts = ll.file_facts(path)
    assert [(i.row, i.column) for i in facts.issues if i.is_error] == [(3, "amount")]
    with pytest.raises(CrmInputError, match="row 3"):
        ll.review_file(path)


@pytest.mark.parametrize("amounts", [pd.array([100.5, None, 3.0, 4.0], dtype="Float64"),
                                     pd.array([100, None, 3, 4], dtype="Int64")])
def test_parquet_with_pandas_nullable_columns_reports_blanks_as_blanks(tmp_path, amounts):
    """pandas writes blanks of its nullable columns as pd.NA: never the text '<NA>', never a crash."""
    frame = pd.DataFrame({"date": pd.array(["2024-01-05", None, "2024-02-01", "2024-03-01"], dtype="datetime64[ms]"),
                          "customer": pd.array(["A", "A", None, "B"], dtype="string"),
                          "type": pd.array(["invoice", "invoice", "invoice", None], dtype="string"),
                          "amount": amounts,
                          "invoice_no": pd.array([None, None, "X", "Y"], dtype="string"),
                          "customer_name": pd.array([None, "甲", None, None], dtype="string")})
    path = tmp_path / "nullable.parquet"
    frame.to_parquet(path, index=False)
    ledger = ll.read_ledger_file(path)
    assert [(i.row, i.column) for i in ledger.issues] == [(3, "date"), (3, "amount"), (4, "customer"), (5, "type")]
    assert "blank" in ledger.issues[-1].message
    assert ledger.rows[["customer", "invoice_no", "customer_name"]].values.tolist() == [["A", "", ""]]


def test_gb18030_csv_with_chinese_headers_and_codes_kept_as_text(tmp_path):
    path = tmp_path / "erp.csv"
    path.write_bytes("日期,客户,类型,金额\n2010-01-02,00123,发票,\"1,000.00\"\n2010-02-03,00123,收款,1170\n"
                     .encode("gb18030"))
    facts = ll.file_facts(path, period_start=pd.Timestamp("2010-01-01")).table
    assert facts["customer"].tolist() == ["00123"]
    assert facts["net_sales_cents"].tolist() == [100_000]


def test_unknown_file_type_is_a_clear_error(tmp_path):
    path = tmp_path / "ledger.xls"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(CrmInputError, match="unsupported file type"):
        ll.review_file(path)


def test_review_file_command_prints_the_summary_and_writes_the_register(tmp_path, demo, capsys):
    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    out = tmp_path / "register.csv"
    assert main(["review-file", str(path), "--year", "2024", "--out", str(out)]) == 0
    text = capsys.readouterr()
    assert "credit lines total" in text.out and "rows/s" in text.err
    assert len(pd.read_csv(out)) == demo["customer"].nunique()
    assert main(["review-file", str(path), "--year", "2024"]) == 0
    assert "from the disk cache" in capsys.readouterr().err


def test_worksheet_function_over_a_file_matches_the_range_function(tmp_path, addin):
    from tests.support.xlwings_offline import call_like_excel, import_udf_module

    udf = import_udf_module("udfs.ledger_file")
    day = dt.datetime
    rows = [("X", "发票", 1_500_000.0), ("X", "回款", 1_400_000.0), ("Y", "发票", 850_000.0),
            ("Y", "回款", 1_100_000.0), ("Z", "发票", 1_950_000.0), ("Z", "回款", 2_100_000.0)]
    ledger = (("日期", "客户", "类型", "金额"),) + tuple((day(2010, 3 + 6 * (i % 2), 1), *r) for i, r in enumerate(rows))
    path = tmp_path / "ledger.csv"
    pd.DataFrame(ledger[1:], columns=ledger[0]).to_csv(path, index=False)
    vat = (("vat.1994-01-01", 0.17),)
    from_range = call_like_excel(addin.crm_collections, ledger, day(2010, 1, 1), day(2010, 12, 31), vat)
    from_file = call_like_excel(udf.crm_collections_file, str(path), day(2010, 1, 1), day(2010, 12, 31), vat)
    assert from_file == from_range
    assert [round(r[3], 4) for r in from_file[1:]] == [0.7977, 1.1061, 0.9204]
    missing = call_like_excel(udf.crm_collections_file, str(tmp_path / "nope.csv"))
    assert "no file" in str(missing)


@pytest.mark.parametrize("engine", ["inprocess", "dask"])
def test_review_file_writes_the_register_workbook_review_writes(tmp_path, demo, capsys, engine):
    """`--out X.xlsm` on any engine: the register workbook that verify and reallocate take, with the
    same lines as `review`; an engine's register says where the ledger's rows are."""
    from crm_app.register.load import load_register

    path = tmp_path / "ledger.csv"
    demo.to_csv(path, index=False)
    by_review, by_file = tmp_path / "review.xlsm", tmp_path / f"{engine}.xlsm"
    assert main(["review", str(path), "--year", "2024", "--out", str(by_review), "--quiet"]) == 0
    assert main(["review-file", str(path), "--year", "2024", "--engine", engine, "--out", str(by_file)]) == 0
    assert main(["verify", str(by_file)]) == 0
    expected, got = load_register(by_review).register, load_register(by_file).register
    for column in ("customer", "credit_line_cents", "net_sales_cents", "open_balance_cents", "rate_tier"):
        assert got[column].tolist() == expected[column].tolist(), column
    notes = capsys.readouterr().err
    assert (str(path.resolve()) in notes) == (engine != "inprocess")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(30, 400), st.sets(st.integers(0, 119), max_size=12))
def test_a_quoted_line_break_across_dask_blocks_reads_as_in_one_piece(tmp_path, block, broken):
    """Names holding a line break (and a doubled quote) as Excel exports them: whatever block
    boundary falls inside such a cell, the Dask engine reads what the whole file gives."""
    names = [f'公司\n第{i}号 "总部"' if i in broken else f"公司{i}" for i in range(120)]
    frame = pd.DataFrame({"date": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(120)],
                          "customer": [f"C{i % 9}" for i in range(120)], "customer_name": names,
                          "type": ["receipt" if i % 4 == 3 else "invoice" for i in range(120)],
                          "amount": [f"{100 + i}.25" for i in range(120)]})
    path = tmp_path / "names.csv"
    frame.to_csv(path, index=False)
    whole = ll.file_facts(path, use_cache=False)
    parts = ll.file_facts(path, use_cache=False, engine="dask", blocksize=block)
    assert whole.issues == [] and parts.issues == []
    assert parts.meta == whole.meta
    pd.testing.assert_frame_equal(parts.table, whole.table, check_dtype=False)
