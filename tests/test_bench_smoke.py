"""The benchmark scripts still run (tiny sizes, nothing timed or asserted about speed)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def bench(*args: str) -> str:
    out = subprocess.run([sys.executable, str(RUN), "--no-save", *args], capture_output=True, text=True,
                         timeout=120, cwd=RUN.parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_scale_bench_runs_each_job_in_its_own_process():
    text = bench("scale", "--rows", "3000", "--formats", "csv")
    assert "3,000 rows" in text and "rows/s" in text and "cached recalc" in text


def test_engines_bench_gives_the_same_budget_on_each_engine():
    text = bench("engines", "--rows", "3000", "--engines", "inprocess", "dask")
    assert "inprocess" in text and "dask" in text


def test_worksheet_and_reallocation_benches_run():
    assert "conversion" in bench("udf", "--rows", "500", "--customers", "50", "--repeat", "1")
    assert "suggest_cuts" in bench("realloc", "--customers", "300")


def test_one_job_reports_json_with_peak_memory(tmp_path):
    sys.path.insert(0, str(RUN.parent))
    try:
        from ledger_gen import write_ledger
    finally:
        sys.path.remove(str(RUN.parent))
    path = tmp_path / "l.parquet"
    write_ledger(path, 2000, 20)
    out = subprocess.run([sys.executable, str(RUN), "_job", "compare", str(path)], capture_output=True,
                         text=True, timeout=120, cwd=RUN.parents[1], check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["addin_s"] > 0 and result["groupby_s"] > 0


# ------------------------------------------------------------------ peers: DuckDB and Polars doing the bare job
# CI installs only '.[test]', without duckdb and polars: these tests then skip, saying why.

def _peers():
    missing = [name for name in ("duckdb", "polars") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (pip install duckdb polars; see bench/README.md)")
    sys.path.insert(0, str(RUN.parent))
    try:
        import ledger_gen
        import peers
    finally:
        sys.path.remove(str(RUN.parent))
    return ledger_gen, peers


def _both_formats(table, folder: Path) -> list[str]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pq.write_table(table, folder / "l.parquet")
    pacsv.write_csv(table, folder / "l.csv", pacsv.WriteOptions(quoting_style="none"))
    return [str(folder / "l.parquet"), str(folder / "l.csv")]


def test_duckdb_and_polars_agree_to_the_cent_on_a_100000_row_ledger(tmp_path):
    """Four years across both VAT changes, repeated invoice numbers: the same integers from both
    engines and both file formats."""
    ledger_gen, peers = _peers()
    import pyarrow as pa

    table = ledger_gen.ledger_table(100_000, 1_000, first_year=2017, years=4)
    numbers = table["invoice_no"].to_pylist()
    for row in range(1, 2_000, 7):  # 286 rows repeat an earlier number (some of them receipts)
        numbers[row] = numbers[row - 1]
    table = table.set_column(table.schema.get_field_index("invoice_no"), "invoice_no", pa.array(numbers))
    results = []
    for path in _both_formats(table, tmp_path):
        for year in (2018, 2019):  # periods with a VAT change inside
            (duck, duck_repeats), (polar, polar_repeats) = peers.duckdb_job(path, year), peers.polars_job(path, year)
            assert peers.as_rows(duck) == peers.as_rows(polar) and duck_repeats == polar_repeats
            results.append((peers.as_rows(duck), duck_repeats))
    assert results[0] == results[2] and results[1] == results[3], "Parquet and CSV agree"
    kinds = table["type"].to_pylist()
    assert results[0][1] == sum(kinds[row] == kinds[row - 1] == "invoice" for row in range(1, 2_000, 7)) > 0
    assert len(results[0][0]["customer"]) == 1_000


def test_peers_apply_vat_by_date_rounded_half_up_per_document(tmp_path):
    _, peers = _peers()
    import pyarrow as pa

    rows = [  # date, customer, type, amount -> gross cents
        ("2018-04-30", "A", "invoice", 100.00),      # 17%: 11,700
        ("2018-05-01", "A", "invoice", 100.00),      # 16%: 11,600
        ("2019-03-31", "A", "credit note", 10.00),   # 16%: -1,160
        ("2019-04-01", "A", "invoice", 47_122.50),   # 13%: 53,248.425 -> 5,324,843
        ("2019-04-02", "A", "invoice", 0.50),        # 13%: 0.565 -> 57
        ("2019-05-01", "A", "receipt", 1_000.00),    # collection, not grossed up
        ("2020-01-01", "A", "invoice", 999.99),      # after the period: not in the balance
        ("2018-06-01", "B", "receipt", 5.00),        # no sales
    ]
    columns = dict(zip(["date", "customer", "type", "amount"], zip(*rows)))
    table = pa.table({**columns, "date": pa.array(columns["date"]).cast(pa.date32()), "invoice_no": ["N1"] * len(rows)})
    for path in _both_formats(table, tmp_path):
        for job in (peers.duckdb_job, peers.polars_job):
            result, repeated = job(path, 2018)
            assert peers.as_rows(result) == {
                "customer": ["A", "B"], "net_sales_cents": [20_000, 0], "gross_sales_cents": [23_300, 0],
                "collections_cents": [0, 500], "balance_cents": [23_300, -500]}, (job, path)
            assert repeated == 4  # five invoices numbered N1
            result, _ = job(path, 2019)
            assert peers.as_rows(result)["gross_sales_cents"] == [5_324_843 + 57 - 1_160, 0], (job, path)
            assert peers.as_rows(result)["balance_cents"] == [11_700 + 11_600 - 1_160 + 5_324_843 + 57 - 100_000,
                                                              -500], (job, path)


def test_peers_bench_runs_the_three_alternately(tmp_path):
    _peers()
    text = bench("peers", "--rows", "2000", "--formats", "parquet", "--repeat", "1", "--ledgers", str(tmp_path))
    assert "| 2,000 |" in text and "add-in / DuckDB" in text and "peers agree: True" in text
    assert text.count("'customers_differ': 0, 'amounts_differ': 0") == 2, "the add-in's register agrees with both"
