"""Benchmarks for issue 7 (scale and speed). Run from the repository root:

    python bench/run.py scale --rows 10000 100000 1000000 10000000
    python bench/run.py libreoffice --customers 10000 --rows 100000
    python bench/run.py udf --rows 100000
    python bench/run.py realloc --customers 100000
    python bench/run.py engines --rows 10000000 --engines inprocess dask  # one file on each engine
    python bench/run.py register --rows 200000 2000000  # `crm-addin review`: ledger to register workbook
    python bench/run.py peers --rows 10000 10000000 --repeat 3  # the bare job in DuckDB and Polars
    python bench/run.py demo --repeat 5  # `crm-addin demo` in a fresh temp dir, lxml importable (< 3 s)
    python bench/run.py all            # the figures in bench/README.md (about 15 minutes)

Every timed job that reports peak memory runs in its own subprocess (ru_maxrss of that process).
Results are printed as a table and written as JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from ledger_gen import FIRST_YEAR, YEARS, write_ledger  # noqa: E402

RESULTS = HERE / "results"
YEAR = 2024  # the generated ledgers cover 2024-2025; the review rates 2024


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def peak_mb() -> float:
    """Peak resident memory of this process. VmHWM, not ru_maxrss: on Linux a child's ru_maxrss
    starts from its parent's size at fork, VmHWM belongs to the exec'd program alone."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else 0
    import pyarrow

    peers = {}
    for name in ("duckdb", "polars"):
        with contextlib.suppress(ImportError):
            peers[name] = importlib.metadata.version(name)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "pandas": pd.__version__, "numpy": np.__version__, "pyarrow": pyarrow.__version__,
            "os": platform.platform(), "when": dt.datetime.now().isoformat(timespec="seconds"),
            "load_average_1min": os.getloadavg()[0], **peers}


# ------------------------------------------------------------------ one measurement per process


def job_pandas_file(path: str, columns: str = "four") -> dict:
    """The bare baseline from the file: read the columns, group-sum amount by customer and type.
    `columns`: "four" (date, customer, type, amount: the floor) or "same" (every ledger column the
    add-in reads, invoice numbers, names and due dates too: the same input, no validation)."""
    (frame, t_read) = timed(_pandas_read, path, columns)
    (_, t_sum) = timed(lambda: frame.groupby(["customer", "type"], sort=False)["amount"].sum())
    return {"read_s": t_read, "groupby_s": t_sum, "total_s": t_read + t_sum, "peak_mb": peak_mb()}


def _pandas_read(path: str, which: str = "four") -> pd.DataFrame:
    columns = ["date", "customer", "type", "amount"]
    if which == "same":
        columns += ["invoice_no", "customer_name", "due_date"]
    if path.endswith(".parquet"):
        return pd.read_parquet(path, columns=columns)
    return pd.read_csv(path, usecols=columns, engine="pyarrow")


def job_addin_file(path: str) -> dict:
    """Large-ledger mode from the file: read, validate every row, VAT, rates, tiers, credit lines."""
    import hashlib

    from crm_app.engines.ledger_file import review_file

    with _cold_cache():  # a cache folder of its own: the file is hashed as a file never seen before is
        (review, result), t_total = timed(review_file, path, year=YEAR, use_cache=False)
        peak = peak_mb()
        with open(path, "rb") as handle:
            _, t_hash = timed(hashlib.file_digest, handle, "sha256")
        review_file(path, year=YEAR)  # fills the cache
        _, t_cached = timed(review_file, path, year=YEAR)
    return {"total_s": t_total, "peak_mb": peak, "rows": result.meta["input_rows"],
            "customers": len(review.register), "hash_s": t_hash, "cached_recalc_s": t_cached}


def job_compare(path: str) -> dict:
    """Same frame in memory: bare pandas group-sum vs the add-in's normalize + review."""
    from crm_app.engines.ledger_file import read_ledger_file  # noqa: F401  (same reader as the add-in)
    from crm_core.ledger import normalize_ledger
    from crm_core.review import review_ledger

    frame = _raw_frame(path)
    typed = frame[["customer", "type", "amount"]]
    best_sum = min(timed(lambda: typed.groupby(["customer", "type"], sort=False)["amount"].sum())[1]
                   for _ in range(3))
    ledger, t_norm = timed(normalize_ledger, frame)
    _, t_review = timed(review_ledger, ledger, None, YEAR)
    return {"groupby_s": best_sum, "normalize_s": t_norm, "review_s": t_review,
            "addin_s": t_norm + t_review, "ratio": (t_norm + t_review) / best_sum}


def _raw_frame(path: str) -> pd.DataFrame:
    from crm_app.io.files import read_table

    return read_table(path)


def job_engine(path: str, engine: str) -> dict:
    """Large-ledger mode on one engine (inprocess, dask, spark)."""
    from crm_app.engines.ledger_file import review_file

    with _cold_cache():
        (review, result), t_total = timed(review_file, path, year=YEAR, use_cache=False, engine=engine)
    return {"total_s": t_total, "peak_mb": peak_mb(), "rows": result.meta["input_rows"],
            "customers": len(review.register), "budget_cents": review.budget_cents}


@contextlib.contextmanager
def _cold_cache():
    """An empty result and digest cache for one job, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-cache-") as folder:
        os.environ["CRM_ADDIN_CACHE"] = folder
        yield


def job_register(path: str, out: str) -> dict:
    """`crm-addin review LEDGER --out OUT` in this process, stage by stage: read and validate the
    file, review it (the core), build and write the register workbook."""
    from crm_app.io.files import read_ledger
    from crm_app.workbook.builder import review_register_data, write_register
    from crm_app.workbook.register_sheets import ledger_capacity
    from crm_core.policy import Policy

    start = time.perf_counter()
    ledger, t_read = timed(read_ledger, path)
    data, t_review = timed(review_register_data, ledger, Policy(), None, path)
    _, t_write = timed(write_register, data, out)
    return {"total_s": time.perf_counter() - start, "read_s": t_read, "review_s": t_review, "write_s": t_write,
            "peak_mb": peak_mb(), "rows": len(ledger.rows), "customers": len(data.register),
            "ledger_on_sheet": len(ledger.rows) <= ledger_capacity(),
            "register_mb": round(Path(out).stat().st_size / 2**20, 1), "budget_cents": data.review.budget_cents}


JOBS = {"pandas_file": job_pandas_file, "addin_file": job_addin_file, "compare": job_compare,
        "engine": job_engine, "register": job_register}


def in_subprocess(job: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "_job", job, *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=3600)
    if out.returncode:
        raise RuntimeError(f"job {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of(repeat: int, job: str, *args: str) -> dict:
    """Each figure is the minimum over `repeat` fresh processes (other load only ever adds time)."""
    runs = [in_subprocess(job, *args) for _ in range(repeat)]
    return {k: min(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k] for k in runs[0]}


# ------------------------------------------------------------------ scale


def cmd_scale(args) -> list[dict]:
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        for rows in args.rows:
            customers = args.customers or max(rows // 100, 10)
            for fmt in args.formats:
                path = str(Path(tmp) / f"ledger_{rows}.{fmt}")
                write_ledger(path, rows, customers)
                repeat = args.repeat or (1 if rows >= 5_000_000 else 3)
                base = best_of(repeat, "pandas_file", path)
                same = best_of(repeat, "pandas_file", path, "same")
                addin = best_of(repeat, "addin_file", path)
                comp = best_of(repeat, "compare", path) if not args.no_compare else {}
                if comp:
                    comp["ratio"] = comp["addin_s"] / comp["groupby_s"]
                row = {"rows": rows, "customers": customers, "format": fmt,
                       "file_mb": round(Path(path).stat().st_size / 2**20, 1),
                       "pandas_file_s": base["total_s"], "pandas_peak_mb": base["peak_mb"],
                       "addin_file_s": addin["total_s"], "addin_peak_mb": addin["peak_mb"],
                       "rows_per_s": rows / addin["total_s"], "file_ratio": addin["total_s"] / base["total_s"],
                       "pandas_same_columns_s": same["total_s"], "pandas_same_columns_peak_mb": same["peak_mb"],
                       "same_columns_ratio": addin["total_s"] / same["total_s"],
                       "hash_s": addin["hash_s"], "cached_recalc_s": addin["cached_recalc_s"],
                       "load_average_1min": os.getloadavg()[0],
                       **{f"mem_{k}": v for k, v in comp.items()}}
                rows_out.append(row)
                print(_fmt_row(row), flush=True)
                Path(path).unlink()
    return rows_out


def _fmt_row(row: dict) -> str:
    return (f"{row['rows']:>10,} rows {row['customers']:>7,} cust {row['format']:>7}: "
            f"pandas read+groupby {row['pandas_file_s']:7.2f}s (same 7 columns {row['pandas_same_columns_s']:.2f}s)  "
            f"add-in from file {row['addin_file_s']:7.2f}s "
            f"(x{row['file_ratio']:.1f}; x{row['same_columns_ratio']:.1f} of the same-columns read, "
            f"{row['rows_per_s']:,.0f} rows/s, peak {row['addin_peak_mb']:,.0f} MB; "
            f"pandas peak {row['pandas_peak_mb']:,.0f} MB)  in memory: groupby {row.get('mem_groupby_s', 0):.3f}s "
            f"vs normalize {row.get('mem_normalize_s', 0):.2f}s + review {row.get('mem_review_s', 0):.2f}s "
            f"(x{row.get('mem_ratio', 0):.1f})  cached recalc {row['cached_recalc_s'] * 1000:.1f} ms")


# ------------------------------------------------------------------ engines


def cmd_engines(args) -> list[dict]:
    """The same file on each engine: time, peak memory, and the same budget."""
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        for rows in args.rows:
            path = str(Path(tmp) / f"ledger_{rows}.parquet")
            write_ledger(path, rows, max(rows // 100, 10))
            for engine in args.engines:
                r = in_subprocess("engine", path, engine)
                row = {"rows": rows, "engine": engine, **r, "load_average_1min": os.getloadavg()[0]}
                rows_out.append(row)
                print(f"{rows:>11,} rows, {engine:>10}: {r['total_s']:6.1f} s, peak {r['peak_mb']:,.0f} MB, "
                      f"budget {r['budget_cents'] / 100:,.2f}", flush=True)
            Path(path).unlink()
    budgets = {(r["rows"], r["budget_cents"]) for r in rows_out}
    assert len(budgets) == len(args.rows), "every engine must give the same budget"
    return rows_out


# ------------------------------------------------------------------ review: ledger to register workbook


def cmd_register(args) -> list[dict]:
    """`crm-addin review` of a CSV ledger to the filled register workbook (.xlsx), and the same
    command timed as a whole (process start, imports and all)."""
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        for rows in args.rows:
            customers = args.customers or max(rows // 100, 10)
            path, out = str(Path(tmp) / f"ledger_{rows}.csv"), str(Path(tmp) / f"register_{rows}.xlsx")
            write_ledger(path, rows, customers)
            best = best_of(args.repeat, "register", path, out)
            whole = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "crm_app", "review", path, "--out", out, "--quiet"], cwd=ROOT,
                               check=True, capture_output=True, timeout=3600)
                whole.append(time.perf_counter() - start)
            row = {**best, "command_s": min(whole), "load_average_1min": os.getloadavg()[0]}
            rows_out.append(row)
            where = "on the Ledger sheet" if row["ledger_on_sheet"] else "left in its file (longer than a sheet)"
            print(f"{rows:>11,} rows, {row['customers']:,} customers, ledger {where}: command {row['command_s']:.1f} s "
                  f"(read {row['read_s']:.1f} + review {row['review_s']:.1f} + workbook {row['write_s']:.1f} s), "
                  f"peak {row['peak_mb']:,.0f} MB, register {row['register_mb']} MB", flush=True)
            Path(path).unlink()
    return rows_out


# ------------------------------------------------------------------ demo: `crm-addin demo` as a user runs it

DEMO_TARGET_S = 3.0


def cmd_demo(args) -> list[dict]:
    """`crm-addin demo --out DIR` as a whole (interpreter start, imports, review, register workbook,
    ledger CSV), each run a fresh process writing into a fresh temp dir. Users have lxml, and
    openpyxl then reads and writes through it: refuse to measure without it."""
    from openpyxl.xml import LXML

    if not LXML:
        raise SystemExit("lxml is not importable (or OPENPYXL_LXML=False): pip install '.[test]'")
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="crm-bench-demo-") as tmp:
            run = measured([sys.executable, "-m", "crm_app", "demo", "--out", tmp, "--quiet"])
            if run["returncode"]:
                raise RuntimeError(f"crm-addin demo failed:\n{run['stderr'][-3000:]}")
            runs.append({k: run[k] for k in ("wall_s", "peak_mb", "cpu_s", "load_average_1min")})
    walls = [r["wall_s"] for r in runs]
    row = {"best_s": min(walls), "median_s": statistics.median(walls), "target_s": DEMO_TARGET_S,
           "lxml": importlib.metadata.version("lxml"), "openpyxl": importlib.metadata.version("openpyxl"),
           "runs": runs}
    verdict = "met" if row["best_s"] < DEMO_TARGET_S else "MISSED"
    peak = max(r["peak_mb"] or 0 for r in runs)
    print(f"crm-addin demo: best {row['best_s']:.2f} s, median {row['median_s']:.2f} s of {len(runs)} "
          f"(peak {peak:,.0f} MB, lxml {row['lxml']}); target < {DEMO_TARGET_S:.0f} s {verdict}", flush=True)
    return [row]


# ------------------------------------------------------------------ peers: the bare job in DuckDB and Polars


TOOLS = ("addin", "duckdb", "polars")
GNU_TIME = Path("/usr/bin/time")


def measured(cmd: list[str]) -> dict:
    """`cmd` in a fresh process from the repository root: wall time, peak resident memory and CPU
    seconds (user + system, start-up included) of that process alone, its output. Peak and CPU come
    from GNU time (its child's rusage): a child's ru_maxrss counts the size of its parent at fork,
    and GNU time is a small parent; without GNU time, neither is measured."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name] if GNU_TIME.exists() else []
        load = os.getloadavg()[0]
        start = time.perf_counter()
        out = subprocess.run(timer + cmd, capture_output=True, text=True, cwd=ROOT, timeout=4 * 3600)
        wall = time.perf_counter() - start
        text = rss.read().split()[-3:]  # after "Command exited with non-zero status N", if it did
    return {"wall_s": wall, "peak_mb": int(text[0]) / 1024 if text else None,
            "cpu_s": float(text[1]) + float(text[2]) if text else None, "load_average_1min": load,
            "returncode": out.returncode, "stdout": out.stdout, "stderr": out.stderr}


def last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1]


def addin_command(path: str, args) -> list[str]:
    cmd = [sys.executable, "-m", "crm_app", "review-file", path, "--no-cache", *shlex.split(args.addin_args)]
    if args.year:
        cmd += ["--year", str(args.year)]
    return cmd


def run_tool(tool: str, path: str, args) -> dict:
    """One measurement of one tool: job seconds as the tool reports them (after interpreter
    start-up and imports), wall seconds and peak memory of the process."""
    if tool == "addin":
        run = measured(addin_command(path, args))
        found = re.search(r"reviewed in ([0-9.]+) s", run["stderr"])
        result = {"job_s": float(found[1])} if found and not run["returncode"] else {}
    else:
        run = measured([sys.executable, str(HERE / "peers.py"), tool, path, "--year", str(peer_year(args)),
                        *args.peer_args])
        result = json.loads(run["stdout"].splitlines()[-1]) if not run["returncode"] else {}
    if not result:
        result = {"error": last_line(run["stderr"])}
    return {"tool": tool, **result, **{k: run[k] for k in ("wall_s", "peak_mb", "cpu_s", "load_average_1min")}}


def peer_year(args) -> int:
    """The year reviewed: --year, else the add-in's default for the generated ledgers, their last
    complete calendar year (they run to 2025-12-30)."""
    return args.year or FIRST_YEAR + YEARS - 1


def ledger_file(rows: int, fmt: str, folder: Path) -> Path:
    """The generated ledger of `rows` rows (customers = rows / 100), written once by a process of
    its own (batch by batch: bounded memory) and reused while it exists."""
    customers = max(rows // 100, 10)
    path = folder / f"ledger_{rows}_{customers}.{fmt}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "ledger_gen.py"), str(path), "--rows", str(rows),
                        "--customers", str(customers)], check=True, cwd=ROOT)
    return path


def check_against_addin(path: Path, args) -> dict:
    """Untimed: the add-in's register (`--out register.csv`) against each peer's per-customer
    figures, to the cent (net sales, collections, balance at the period end). Warms the file cache."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-check-") as tmp:
        register = str(Path(tmp) / "register.csv")
        run = measured(addin_command(str(path), args) + ["--out", register])
        if run["returncode"]:
            return {"addin_error": last_line(run["stderr"])}
        found = {}
        for tool in TOOLS[1:]:
            peer = measured([sys.executable, str(HERE / "peers.py"), tool, str(path), "--year",
                             str(peer_year(args)), "--check", register, *args.peer_args])
            found[tool] = (json.loads(peer["stdout"].splitlines()[-1])["check"] if not peer["returncode"]
                           else {"error": last_line(peer["stderr"])})
        return found


def summary(runs: list[dict]) -> dict:
    """Best and median of each measure over a tool's runs (None when every run failed)."""
    ok = [r for r in runs if "job_s" in r]
    out = {"runs": len(runs), "failed": len(runs) - len(ok), "error": next((r["error"] for r in runs if "error" in r), None)}
    for key in ("job_s", "wall_s", "peak_mb", "cpu_s"):
        values = [r[key] for r in ok if r.get(key) is not None]
        out[f"best_{key}"] = min(values) if values else None
        out[f"median_{key}"] = statistics.median(values) if values else None
    return out


def cmd_peers(args) -> list[dict]:
    """The add-in against DuckDB and Polars doing the bare job on the same file: fresh processes,
    alternating add-in, DuckDB, Polars, `repeat` times; best and median of each."""
    if "--engine" in measured([sys.executable, "-m", "crm_app", "review-file", "--help"])["stdout"] \
            and "--engine" not in args.addin_args:
        args.addin_args = f"--engine inprocess {args.addin_args}".strip()
    args.peer_args = [*(["--memory-limit", args.duckdb_memory_limit] if args.duckdb_memory_limit else []),
                      *(["--temp-dir", args.duckdb_temp_dir] if args.duckdb_temp_dir else [])]
    rows_out = []
    for rows in args.rows:
        for fmt in args.formats:
            path = ledger_file(rows, fmt, Path(args.ledgers))
            check = {} if args.no_check else check_against_addin(path, args)
            runs = [run_tool(tool, str(path), args) for _ in range(args.repeat) for tool in TOOLS]
            rows_out.append(peers_row(rows, fmt, path, check, runs, args))
            print(_peers_line(rows_out[-1]), flush=True)
    print("\n" + peers_table(rows_out))
    args.failed = any(r[t]["failed"] for r in rows_out for t in TOOLS)
    if args.failed:
        print("some runs failed: their error is in the table line above and in the results", file=sys.stderr)
    return rows_out


def peers_row(rows: int, fmt: str, path: Path, check: dict, runs: list[dict], args) -> dict:
    """One size and format: every run, each tool's best and median, the add-in's ratios to each
    peer, and whether the peers' results (totals, repeated invoice numbers) agreed on every run."""
    row = {"rows": rows, "customers": max(rows // 100, 10), "format": fmt, "year": peer_year(args),
           "file_mb": round(path.stat().st_size / 2**20, 1), "addin_args": args.addin_args, "note": args.note,
           "check": check, "runs": runs, **{t: summary([r for r in runs if r["tool"] == t]) for t in TOOLS}}
    answers = {json.dumps({k: v for k, v in r.items() if k.startswith(("total_", "repeated_"))})
               for r in runs if r["tool"] != "addin" and "job_s" in r}
    row["peers_agree"] = len(answers) == 1
    for peer in TOOLS[1:]:
        for how in ("best", "median"):
            a, b = row["addin"][f"{how}_job_s"], row[peer][f"{how}_job_s"]
            row[f"{how}_ratio_{peer}"] = a / b if a and b else None
    row["addin_rows_per_s"] = rows / row["addin"]["best_job_s"] if row["addin"]["best_job_s"] else None
    return row


def _peers_line(row: dict) -> str:
    def fig(tool):
        s = row[tool]
        if s["best_job_s"] is None:
            return f"{tool} FAILED ({s['error']})"
        return f"{tool} {s['best_job_s']:.2f} s (median {s['median_job_s']:.2f}, peak {s['median_peak_mb'] or 0:,.0f} MB)"
    ratios = ", ".join(f"add-in/{p} {row[f'best_ratio_{p}']:.2f}" for p in TOOLS[1:] if row[f"best_ratio_{p}"])
    return (f"{row['rows']:>11,} rows {row['format']:>7}: " + "; ".join(fig(t) for t in TOOLS)
            + f"; {ratios}; peers agree: {row['peers_agree']}; check: {row['check']}")


def peers_table(rows: list[dict]) -> str:
    """The markdown table of bench/README.md: best of N job seconds (median), ratios, speed, memory."""
    def sec(s):
        return "failed" if s["best_job_s"] is None else f"{s['best_job_s']:.2f} ({s['median_job_s']:.2f})"

    def ratio(r, peer):
        return "-" if r[f"best_ratio_{peer}"] is None else f"{r[f'best_ratio_{peer}']:.2f} ({r[f'median_ratio_{peer}']:.2f})"

    def mb(s):
        return "-" if s["median_peak_mb"] is None else f"{s['median_peak_mb']:,.0f}"

    lines = ["| rows | customers | file | add-in s | DuckDB s | Polars s | add-in / DuckDB | add-in / Polars "
             "| rows/s add-in / DuckDB / Polars | peak MB add-in / DuckDB / Polars | wall s add-in / DuckDB / Polars "
             "| load |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        speed = " / ".join("-" if r[t]["best_job_s"] is None else f"{r['rows'] / r[t]['best_job_s'] / 1e6:.2f} M"
                           for t in TOOLS)
        walls = " / ".join("-" if r[t]["best_wall_s"] is None else f"{r[t]['best_wall_s']:.2f}" for t in TOOLS)
        loads = [x["load_average_1min"] for x in r["runs"]]
        size = f"{r['file_mb']:,.{1 if r['file_mb'] < 10 else 0}f} MB"
        lines.append(f"| {r['rows']:,} | {r['customers']:,} | {r['format']} ({size}) "
                     f"| {sec(r['addin'])} | {sec(r['duckdb'])} | {sec(r['polars'])} | {ratio(r, 'duckdb')} "
                     f"| {ratio(r, 'polars')} | {speed} | {' / '.join(mb(r[t]) for t in TOOLS)} | {walls} "
                     f"| {min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ LibreOffice, the SUMIFS way


def sumifs_workbook(raw: pd.DataFrame, customers: list[str], path: Path, formulas: bool = True) -> None:
    """Ledger sheet plus a register computed the way a spreadsheet does it: SUMIFS per customer and column."""
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    led = wb.create_sheet("Ledger")
    led.append(["date", "customer", "type", "amount"])
    for d, c, t, a in zip(raw["date"], raw["customer"], raw["type"], raw["amount"]):
        led.append([d, c, t, a])
    n = len(raw) + 1
    reg = wb.create_sheet("Register")
    reg.append(["customer", "net sales", "collections", "collection rate", "tier"])
    rng = {k: f"Ledger!${c}$2:${c}${n}" for k, c in (("date", "A"), ("cust", "B"), ("type", "C"), ("amt", "D"))}
    period = f'{rng["date"]},">="&DATE({YEAR},1,1),{rng["date"]},"<="&DATE({YEAR},12,31)'
    for i, cust in enumerate(customers, start=2):
        if not formulas:
            reg.append([cust])
            continue
        sales = (f'SUMIFS({rng["amt"]},{rng["cust"]},A{i},{rng["type"]},"invoice",{period})'
                 f'-SUMIFS({rng["amt"]},{rng["cust"]},A{i},{rng["type"]},"credit note",{period})')
        cash = f'SUMIFS({rng["amt"]},{rng["cust"]},A{i},{rng["type"]},"receipt",{period})'
        reg.append([cust, f"={sales}", f"={cash}", f'=IF(B{i}>0,C{i}/(B{i}*1.13),"")',
                    f'=IF(D{i}="","unrated",IF(D{i}>=0.95,"A",IF(D{i}>=0.85,"B",IF(D{i}>=0.7,"C","D"))))'])
    wb.save(path)


def cmd_libreoffice(args) -> list[dict]:
    from ledger_gen import ledger_frame

    from crm_core.ledger import normalize_ledger
    from crm_core.review import review_ledger
    from tests.support.libreoffice import recalculate

    raw = ledger_frame(args.rows, args.customers)
    raw["date"] = pd.to_datetime(raw["date"])
    customers = sorted(raw["customer"].unique())
    out = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-lo-") as tmp:
        book, empty = Path(tmp) / "sumifs.xlsx", Path(tmp) / "data_only.xlsx"
        sumifs_workbook(raw, customers, book)
        sumifs_workbook(raw, customers, empty, formulas=False)
        _, t_empty = timed(recalculate, empty, Path(tmp) / "o1", timeout=3600)
        done, t_lo = timed(recalculate, book, Path(tmp) / "o2", timeout=3600)
        ledger, t_norm = timed(normalize_ledger, raw.astype(object))
        review, t_review = timed(review_ledger, ledger, None, YEAR)
        agree = _compare_with_calc(done, review)
    t_addin = t_norm + t_review
    row = {"rows": args.rows, "customers": args.customers, "sumifs": 3 * args.customers,
           "libreoffice_s": t_lo, "libreoffice_load_save_s": t_empty, "libreoffice_net_s": t_lo - t_empty,
           "addin_s": t_addin, "addin_normalize_s": t_norm, "addin_review_s": t_review,
           "ratio_addin_to_lo": t_addin / t_lo, "ratio_addin_to_lo_net": t_addin / max(t_lo - t_empty, 1e-9),
           **agree}
    print(f"{args.customers:,} customers x {args.rows:,} rows: LibreOffice {t_lo:.1f}s "
          f"(load+save without formulas {t_empty:.1f}s), add-in {t_addin:.2f}s "
          f"-> add-in/LibreOffice = {row['ratio_addin_to_lo']:.4f}; agreement {agree}", flush=True)
    out.append(row)
    return out


def _compare_with_calc(done: Path, review) -> dict:
    import openpyxl

    wb = openpyxl.load_workbook(done, read_only=True, data_only=True)
    cells = list(wb["Register"].iter_rows(min_row=2, values_only=True))
    calc = pd.DataFrame(cells, columns=["customer", "net", "cash", "rate", "tier"]).set_index("customer")
    reg = review.register.set_index("customer")
    net = (reg["net_sales_cents"] / 100).reindex(calc.index)
    tier_same = (calc["tier"] == reg["rate_tier"].reindex(calc.index)).mean()
    return {"max_net_sales_diff": float((calc["net"].astype(float) - net).abs().max()),
            "tier_agreement": float(tier_same)}


# ------------------------------------------------------------------ worksheet function path


def cmd_udf(args) -> list[dict]:
    from ledger_gen import ledger_frame

    from tests.support.xlwings_offline import call_like_excel
    from tools import build_vba

    addin = build_vba.load_addin()
    raw = ledger_frame(args.rows, args.customers)
    dates = [dt.datetime(d.year, d.month, d.day) for d in raw["date"]]
    cells = (("date", "customer", "type", "amount"),) + tuple(
        zip(dates, raw["customer"].tolist(), raw["type"].tolist(), raw["amount"].astype(float).tolist()))
    start, end = dt.datetime(YEAR, 1, 1), dt.datetime(YEAR, 12, 31)
    call_like_excel(addin.crm_collections, cells[:50], start, end)  # warm-up: imports, caches
    best_excel = best_plain = float("inf")
    for _ in range(args.repeat):
        excel_out, t_excel = timed(call_like_excel, addin.crm_collections, cells, start, end)
        # what call_udf hands the function after conversion: a list of row lists
        as_lists = [list(r) for r in cells]
        plain_out, t_plain = timed(addin.crm_collections, as_lists, start, end)
        best_excel, best_plain = min(best_excel, t_excel), min(best_plain, t_plain)
    from udfs import _excel as ex
    frame, t_frame = timed(ex.table_frame, as_lists, "ledger")
    row = {"rows": args.rows, "customers": args.customers, "through_xlwings_s": best_excel,
           "function_only_s": best_plain, "conversion_overhead_s": best_excel - best_plain,
           "cells_to_frame_s": t_frame, "result_rows": len(excel_out),
           "same_result": len(excel_out) == len(plain_out)}
    print(f"crm_collections over {args.rows:,} rows: {best_excel:.2f}s through xlwings' call_udf, "
          f"{best_plain:.2f}s function alone -> conversion {row['conversion_overhead_s']:.2f}s "
          f"(inside the function: cells->DataFrame {t_frame:.2f}s)", flush=True)
    return [row]


# ------------------------------------------------------------------ reallocation and suggest-cuts


def cmd_realloc(args) -> list[dict]:
    from ledger_gen import ledger_frame

    from crm_core.ledger import normalize_ledger
    from crm_core.reallocation import Register, Roles, check_reallocation
    from crm_core.review import review_ledger
    from crm_core.suggest import suggest_cuts

    review = review_ledger(normalize_ledger(ledger_frame(args.customers * 10, args.customers)), None, YEAR)
    reg = review.register.set_index("customer")
    register = Register(reg["credit_line_cents"], reg["rate_tier"], reg["open_balance_cents"].clip(lower=0),
                        reg["credit_line_cents"])
    headroom = (reg["credit_line_cents"] - reg["open_balance_cents"].clip(lower=0)).sort_values(ascending=False)
    out = []
    roles = Roles("sales director", "general manager", "finance")
    for moves in (4, 1000):
        down = headroom.index[: moves // 2]  # cut where the line is well above the balance
        up = headroom.index[::-1][: moves // 2]
        request = pd.DataFrame({"customer": list(up) + list(down),
                                "change_cents": [100_000] * len(up) + [-100_000] * len(down)})
        res, t = timed(check_reallocation, register, request, roles=roles)
        out.append({"job": f"check_reallocation, {moves} moves", "customers": len(reg), "seconds": t,
                    "ok": res.ok})
    cuts, t = timed(suggest_cuts, reg.index, reg["credit_line_cents"], reg["open_balance_cents"],
                    reg["collection_rate"], 10_000_000)
    out.append({"job": "suggest_cuts", "customers": len(reg), "seconds": t, "cuts": len(cuts)})
    for r in out:
        verdict = {True: " (batch passes)", False: " (batch refused)"}.get(r.get("ok"), "")
        print(f"{r['job']:<32} on {r['customers']:,} customers: {r['seconds'] * 1000:.1f} ms{verdict}", flush=True)
    return out


# ------------------------------------------------------------------ main


def save(name: str, rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), "results": rows}, indent=1),
                                          encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_job"]:
        print(json.dumps(JOBS[argv[1]](*argv[2:])))
        return 0
    parser = argparse.ArgumentParser(description="crm-addin benchmarks (issue 7)")
    parser.add_argument("--no-save", action="store_true", help="print only, do not write bench/results/")
    sub = parser.add_subparsers(dest="what", required=True)
    sc = sub.add_parser("scale", help="time and peak memory at several ledger sizes")
    sc.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    sc.add_argument("--customers", type=int, help="customers (default: rows / 100)")
    sc.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    sc.add_argument("--no-compare", action="store_true", help="skip the in-memory comparison")
    sc.add_argument("--repeat", type=int, help="fresh processes per figure, best kept (default: 3, 1 from 5M rows)")
    lo = sub.add_parser("libreoffice", help="SUMIFS register recalculated by LibreOffice vs the add-in")
    lo.add_argument("--customers", type=int, default=10_000)
    lo.add_argument("--rows", type=int, default=100_000)
    udf = sub.add_parser("udf", help="one worksheet call over a large range through xlwings' conversion")
    udf.add_argument("--rows", type=int, default=100_000)
    udf.add_argument("--customers", type=int, default=10_000)
    udf.add_argument("--repeat", type=int, default=3)
    ra = sub.add_parser("realloc", help="reallocation check and suggest-cuts on many customers")
    ra.add_argument("--customers", type=int, default=100_000)
    ch = sub.add_parser("engines", help="large-ledger mode on each engine (time, peak memory)")
    ch.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ch.add_argument("--engines", nargs="+", default=["inprocess", "dask"])
    rg = sub.add_parser("register", help="crm-addin review: a CSV ledger to the register workbook, by stage")
    rg.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    rg.add_argument("--customers", type=int, help="customers (default: rows / 100)")
    rg.add_argument("--repeat", type=int, default=3, help="fresh processes per figure, best kept")
    pe = sub.add_parser("peers", help="the add-in against the bare job in DuckDB and Polars, alternating")
    pe.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    pe.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    pe.add_argument("--repeat", type=int, default=3, help="rounds of add-in, DuckDB, Polars (fresh processes)")
    pe.add_argument("--year", type=int, help="year reviewed (default: the add-in's, the ledgers' last complete year)")
    pe.add_argument("--addin-args", default="", help='more add-in arguments, e.g. "--engine dask"')
    pe.add_argument("--duckdb-memory-limit", help="DuckDB memory_limit, e.g. 4GB: out of core beyond it")
    pe.add_argument("--duckdb-temp-dir", help="where DuckDB spills (temp_directory)")
    pe.add_argument("--ledgers", default=str(Path(tempfile.gettempdir()) / "crm-bench-ledgers"),
                    help="folder of generated ledgers, reused when present")
    pe.add_argument("--no-check", action="store_true", help="skip checking the peers against the add-in's register")
    pe.add_argument("--note", default="", help="what add-in code was measured (stored with the results)")
    pe.add_argument("--name", default="peers", help="results file bench/results/NAME.json")
    de = sub.add_parser("demo", help="crm-addin demo as a whole, fresh temp dir, lxml importable (target < 3 s)")
    de.add_argument("--repeat", type=int, default=5, help="fresh processes, best and median kept")
    sub.add_parser("all", help="everything, at the sizes of bench/README.md")
    args = parser.parse_args(argv)
    commands = {"scale": cmd_scale, "libreoffice": cmd_libreoffice, "udf": cmd_udf, "realloc": cmd_realloc,
                "engines": cmd_engines, "register": cmd_register, "peers": cmd_peers, "demo": cmd_demo}
    if args.what == "all":
        runs = [("realloc", ["realloc"]), ("udf", ["udf"]), ("scale", ["scale"]), ("libreoffice", ["libreoffice"])]
    else:
        runs = [(args.what, argv[argv.index(args.what):])]
    for name, sub_argv in runs:
        sub_args = parser.parse_args(sub_argv)
        rows = commands[name](sub_args)
        if not args.no_save:
            save(getattr(sub_args, "name", name), rows)
    return int(getattr(sub_args, "failed", False))


if __name__ == "__main__":
    sys.exit(main())
