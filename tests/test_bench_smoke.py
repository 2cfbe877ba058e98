"""The benchmark scripts still run (tiny sizes, nothing timed or asserted about speed)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def bench(*args: str) -> str:
    out = subprocess.run([sys.executable, str(RUN), "--no-save", *args], capture_output=True, text=True,
                         timeout=120, cwd=RUN.parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_scale_bench_runs_each_job_in_its_own_process():
    text = bench("scale", "--rows", "3000", "--formats", "csv")
    assert "3,000 rows" in text and "rows/s" in text and "cached recalc" in text


def test_chunks_bench_reads_whole_and_in_chunks_to_the_same_budget():
    text = bench("chunks", "--rows", "3000", "--chunk-rows", "700")
    assert "whole" in text and "chunks of 700" in text


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
