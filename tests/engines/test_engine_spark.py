"""The Spark engine gives the in-process engine's answer: the same register, the same issues (code,
row, column, message) and the same facts, on the demo ledger, on messy ledgers cut into many Spark
partitions and on generated ones. Spark runs in local mode, one session for the module.

Skipped, saying why, without pyspark or Java; with CI=true they fail instead."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_app.engines import ledger_file as ll
from crm_core.demo import demo_ledger
from crm_core.issues import CrmInputError
from tests.engines.test_ledger_file import LEDGER_ROWS, TEXT_CELLS, _messy


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'crm-addin[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java to run Spark (Java 17 or later: apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="module")
def spark():
    """The engine module, its local session started once for the module and stopped after it."""
    missing = _missing()
    if missing is None:
        from crm_app.engines import spark_engine

        try:
            spark_engine.session()
        except CrmInputError as problem:  # a Java too old for Spark, say
            missing = str(problem)
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: the Spark tests must run, but {missing}")
        pytest.skip(missing)
    yield spark_engine
    spark_engine.stop()


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory):
    before = os.environ.get("CRM_ADDIN_CACHE")
    os.environ["CRM_ADDIN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("CRM_ADDIN_CACHE", None)
    else:
        os.environ["CRM_ADDIN_CACHE"] = before


@pytest.fixture(scope="module")
def demo():
    return demo_ledger(seed=7, customers=60, yearly_sales=2_000_000.0)


@contextmanager
def partitions(engine):
    """The number of partials each Spark review hands to `combine` (one per block of the file)."""
    seen: list[int] = []
    real = engine.combine

    def counting(partials, *args, **kwargs):
        seen.append(len(partials))
        return real(partials, *args, **kwargs)

    engine.combine = counting
    try:
        yield seen
    finally:
        engine.combine = real


def shown(issues) -> list[tuple]:
    return [(i.code, i.row, i.column, i.message, i.severity, i.header) for i in issues]


def assert_same_facts(path: Path, start: pd.Timestamp | None = None, **options) -> ll.Result | None:
    """The in-process and the Spark facts of the file are the same (the Spark ones returned), or
    both engines refuse the file with the same message."""
    try:
        whole = ll.file_facts(path, use_cache=False, period_start=start)
    except CrmInputError as refused:
        with pytest.raises(CrmInputError) as parts:
            ll.file_facts(path, use_cache=False, period_start=start, engine="spark", **options)
        assert str(parts.value) == str(refused)
        return None
    parts = ll.file_facts(path, use_cache=False, period_start=start, engine="spark", **options)
    assert shown(parts.issues) == shown(whole.issues)
    assert parts.meta == whole.meta
    pd.testing.assert_frame_equal(parts.table, whole.table)
    return parts


def assert_same_refusal(path: Path, **options) -> str:
    with pytest.raises(CrmInputError) as whole:
        ll.review_file(path, use_cache=False)
    with pytest.raises(CrmInputError) as parts:
        ll.review_file(path, use_cache=False, engine="spark", **options)
    assert str(parts.value) == str(whole.value)
    return str(whole.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_demo_ledger_reviews_exactly_as_in_process(spark, tmp_path, demo, suffix):
    """Cut into several Spark partitions (CSV blocks of 8 kB, Parquet row groups of 100 rows),
    and with the engine's defaults."""
    path = tmp_path / f"ledger{suffix}"
    demo.to_csv(path, index=False) if suffix == ".csv" else demo.to_parquet(path, index=False, row_group_size=100)
    whole, whole_result = ll.review_file(path, use_cache=False)
    with partitions(spark) as seen:
        parts, parts_result = ll.review_file(path, use_cache=False, engine="spark",
                                             blocksize=8000 if suffix == ".csv" else 1)  # 1: a row group each
        default, _ = ll.review_file(path, use_cache=False, engine="spark")
    assert seen[0] >= 5, seen
    for review in (parts, default):
        pd.testing.assert_frame_equal(review.register, whole.register)
        assert shown(review.issues) == shown(whole.issues)
        assert review.summary_lines() == whole.summary_lines()
    assert parts_result.meta == whole_result.meta and parts_result.meta["input_rows"] == len(demo)


MALFORMED = ("2024-01-01,C0001", "1,2,3,4,5,6,7,8,9")  # too few fields, too many


def _messy_csv(demo: pd.DataFrame) -> str:
    """The messy demo ledger as CSV text, with what only a file can get wrong: empty lines, lines
    with too few or too many fields, a quoted comma; an invoice number repeated hundreds of rows
    later and a customer spelled two ways far apart (in other Spark partitions)."""
    messy = _messy(demo)
    invoices = messy.index[messy["type"] == "invoice"]
    messy.loc[invoices[-1], "invoice_no"] = messy.loc[invoices[20], "invoice_no"]
    messy.loc[invoices[-2], "customer"] = " " + str(messy.loc[invoices[-2], "customer"]).replace("C", "Ｃ")
    messy.loc[invoices[-3], "customer_name"] = "甲, 乙"
    text = messy.astype(str).where(messy.notna(), None)
    lines = text.to_csv(index=False).splitlines()
    for at, line in ((30, ""), (31, ""), (200, MALFORMED[0]), (260, MALFORMED[1]), (400, ""), (len(lines) - 5, "")):
        lines.insert(at, line)
    return "\n".join(lines) + "\n\n"


def test_a_messy_ledger_in_many_partitions_gives_the_same_issues_and_facts(spark, tmp_path, demo):
    path = tmp_path / "messy.csv"
    text = _messy_csv(demo)
    path.write_text(text, encoding="utf-8")
    with partitions(spark) as seen:
        assert_same_facts(path, blocksize=2500)
    assert seen[0] >= 15, seen
    whole = ll.file_facts(path, use_cache=False)
    found = {i.code.value for i in whole.issues}
    assert {"duplicate_invoice", "merged_names", "bad_shape", "unknown_type", "blank", "bad_date"} <= found, found
    assert whole.meta["blank_rows"] >= 4
    malformed = [n + 1 for n, line in enumerate(text.splitlines()) if line in MALFORMED]
    assert [i.row for i in whole.issues if "fields where the header has" in i.message] == malformed
    assert_same_refusal(path, blocksize=2500)


def test_a_messy_parquet_ledger_in_many_row_groups_gives_the_same_issues_and_facts(spark, tmp_path, demo):
    messy = _messy(demo)
    text = messy.astype(str).where(messy.notna(), None)
    path = tmp_path / "messy.parquet"
    text.to_parquet(path, index=False, row_group_size=40)
    with partitions(spark) as seen:
        assert_same_facts(path, blocksize=1)
    assert seen[0] == -(-len(text) // 40), seen


def test_a_quoted_line_break_across_partitions_reads_the_file_as_one_block(spark, tmp_path, demo):
    """A name of many lines in quotes cannot be parsed in two halves: the file is read whole."""
    lines = demo.to_csv(index=False).splitlines()
    cells = lines[300].split(",")
    cells[2] = '"' + "a name\nover many\r\nlines, " * 200 + '"'  # customer_name
    lines[300] = ",".join(cells)
    path = tmp_path / "multiline.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    with partitions(spark) as seen:
        assert_same_facts(path, blocksize=2000)
    assert seen == [1]


def test_a_column_two_partitions_type_differently_is_read_as_the_whole_file_types_it(spark, tmp_path):
    """Arrow reads a column as numbers or dates when all of a block's cells are; the whole file
    has text among them, so every block is read again with its cells as text (rounding notes and
    messages then word the cells as written)."""
    lines = [f"2024-0{1 + i % 9}-1{i % 10},C{i % 7},invoice,{100 + i}.005" for i in range(400)]
    lines[350] = '2024-05-05,C1,invoice,"1,234.505"'
    lines[360] = "2024/05/05,C1,invoice,12"
    path = tmp_path / "late.csv"
    path.write_text("date,customer,type,amount\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with partitions(spark) as seen:
        assert_same_facts(path, blocksize=2048)
    assert seen[0] >= 4, seen


def test_a_gb18030_ledger_with_chinese_headers_and_crlf_lines(spark, tmp_path):
    rows = "".join(f"2023-0{1 + i % 9}-0{1 + i % 8},00{i % 5}23,{'发票' if i % 3 else '收款'},\"1,{i:03d}.50\","
                   f"客户{i % 5}号\r\n" for i in range(300))
    path = tmp_path / "erp.csv"
    path.write_bytes(("日期,客户,类型,金额,客户名称\r\n" + rows).encode("gb18030"))
    with partitions(spark) as seen:
        facts = assert_same_facts(path, blocksize=1500, start=pd.Timestamp("2023-01-01"))
    assert seen[0] >= 5, seen
    assert facts.table["customer"].tolist() == ["00023", "00123", "00223", "00323", "00423"]


def test_files_the_in_process_reader_refuses_are_refused_with_its_message(spark, tmp_path):
    """Found on the driver, before any Spark job."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    wide = tmp_path / "utf16.csv"
    wide.write_bytes("date,customer,type,amount\n".encode("utf-16"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    for path in (empty, wide, broken):
        whole = pytest.raises(CrmInputError, ll.file_facts, path, use_cache=False)
        parts = pytest.raises(CrmInputError, ll.file_facts, path, use_cache=False, engine="spark")
        assert str(parts.value) == str(whole.value)


@st.composite
def messy_files(draw):
    """A generated ledger as CSV (with empty and malformed lines put in) or as Parquet."""
    rows = draw(LEDGER_ROWS)
    table = pd.DataFrame(rows, columns=list(TEXT_CELLS), dtype=object).replace("", None)
    if draw(st.booleans()):
        return ".parquet", table, draw(st.sampled_from([1, 3, 7]))
    lines = table.to_csv(index=False).splitlines()
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", "", "x,y", ",,,,,,,"])))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ".csv", ending.join(lines) + draw(st.sampled_from(["", ending])), draw(st.sampled_from([60, 150, 400]))


@settings(max_examples=15, deadline=None)
@given(messy_files(), st.sampled_from([None, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]))
def test_the_spark_engine_agrees_with_the_in_process_one_on_every_messy_ledger(spark, case, start):
    """CSV blocks of a few lines, Parquet row groups of 1-7 rows; the period given or the file's own."""
    suffix, content, block = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        if suffix == ".csv":
            path.write_bytes(content.encode("utf-8"))
        else:
            content.astype("string").to_parquet(path, index=False, row_group_size=block)
        assert_same_facts(path, start, blocksize=block if suffix == ".csv" else 1)


def test_a_spark_that_dies_during_the_job_is_named_with_the_memory_to_give(spark):
    """The JVM gone mid-job (a local driver out of memory) reaches py4j as a refused connection:
    the user is told what happened and which option gives Spark more memory."""
    session = spark.session()
    with pytest.raises(CrmInputError, match="--driver-memory"):
        with spark._job_failures(session):
            raise ConnectionRefusedError(111, "Connection refused")
    spark.session()  # the next job starts a new session


def test_a_local_session_gets_half_the_machine_memory_unless_told(spark):
    """Spark's own 1 GB driver runs out near 10^8 rows: a local session gets half the machine."""
    assert spark._local_driver_memory(24 * 2**30) == {"spark.driver.memory": "12g"}
    assert spark._local_driver_memory(2**30) == {"spark.driver.memory": "1g"}  # never below Spark's own
    expected = spark._local_driver_memory()["spark.driver.memory"]
    assert spark.session().sparkContext.getConf().get("spark.driver.memory") == expected


def test_review_file_passes_the_driver_memory_to_the_session_it_starts():
    from crm_app.cli.main import build_parser
    from crm_app.cli.review_file import engine_options

    args = build_parser().parse_args(["review-file", "x.csv", "--engine", "spark", "--driver-memory", "8g"])
    assert engine_options(args) == {"conf": {"spark.driver.memory": "8g"}}
    args = build_parser().parse_args(["review-file", "x.csv", "--engine", "dask", "--driver-memory", "8g"])
    assert engine_options(args) == {}
