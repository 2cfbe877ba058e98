"""`crm-addin review-file`: a ledger file of any length reviewed on an engine, results cached."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from crm_app.engines import ENGINES
from crm_app.engines.ledger_file import read_ledger_file, review_file


def add_parser(subparsers) -> None:
    from crm_app.cli.main import REGISTER_FILE, output_file, year_argument

    cmd = subparsers.add_parser("review-file", help="review a ledger file of any length (CSV, Parquet), "
                                "cached by content / 大台账评审", description=(
        "Large-ledger mode: review a CSV or Parquet ledger of any length; results are cached by the file's "
        "content. Files larger than memory: --engine dask (or spark). A ledger with bad rows is refused, the "
        "rows listed. / 大台账模式：按内容缓存结果；超出内存的文件用 --engine dask 或 spark；错误行列出后拒绝。"))
    cmd.add_argument("ledger", help="ledger file (.csv, .tsv or .parquet) with date, customer, type, amount "
                     "/ 台账文件")
    cmd.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    cmd.add_argument("--year", type=year_argument,
                     help="year reviewed (default: last complete year in the ledger) / 评审年度")
    cmd.add_argument("--out", type=output_file(*REGISTER_FILE, ".csv", ".parquet"), help="register to write: .xlsm/.xlsx (the register workbook, as review writes it), "
                     ".csv or .parquet (the Register's columns, in currency units) (default: none) / 输出文件")
    cmd.add_argument("--no-cache", action="store_true", help="ignore and do not write the result cache / 不用缓存")
    cmd.add_argument("--engine", choices=list(ENGINES), default="inprocess",
                     help="where the work runs: inprocess (default; the file read whole), dask (files larger "
                          "than memory, pip install 'crm-addin[dask]'), spark (pip install 'crm-addin[spark]') "
                          "/ 计算引擎")
    cmd.add_argument("--scheduler", metavar="ADDRESS",
                     help="dask: a cluster's scheduler, e.g. tcp://HOST:8786 (default: this machine) / Dask 集群地址")
    cmd.add_argument("--master", metavar="URL",
                     help="spark: the cluster's master URL (default: local[*]) / Spark 集群地址")
    cmd.add_argument("--driver-memory", metavar="SIZE",
                     help="spark: memory of the Spark driver this command starts, e.g. 8g (default for local[*]: "
                          "half this machine's memory; Spark's own 1g runs out near 10^8 rows) / Spark 驱动内存")
    cmd.set_defaults(func=cmd_review_file)


def engine_options(args) -> dict:
    if args.engine == "dask" and args.scheduler:
        return {"scheduler": args.scheduler}
    if args.engine == "spark":
        options = {"master": args.master} if args.master else {}
        return options | ({"conf": {"spark.driver.memory": args.driver_memory}} if args.driver_memory else {})
    return {}


def cmd_review_file(args) -> int:
    from crm_app.cli.main import EXIT_OK, load_policy, print_issues

    policy = load_policy(args.policy)
    review, result = review_file(args.ledger, policy, args.year, use_cache=not args.no_cache,
                                 engine=args.engine, **engine_options(args))
    print_issues(review.issues)
    rows = result.meta.get("input_rows", 0)
    how = f"from the {result.from_cache} cache" if result.from_cache else \
        f"{rows:,} rows, {rows / max(result.seconds, 1e-9):,.0f} rows/s, engine {args.engine}"
    digest = f"; file sha256 {result.digest[:12]}" if result.digest else ""
    print(f"reviewed in {result.seconds:.2f} s ({how}){digest}", file=sys.stderr)
    if args.out:
        write_results(args, policy, review, result, Path(args.out))
    print("\n".join(review.summary_lines()))
    return EXIT_OK


def write_results(args, policy, review, result, target: Path) -> None:
    """The register as `review` writes it (.xlsx/.xlsm: the register workbook that verify,
    reallocate and the macros take), or its table as CSV or Parquet in currency units under the
    Register's column labels."""
    from crm_app.io.files import atomic_path

    suffix = target.suffix.lower()
    if suffix in (".csv", ".parquet"):
        table = register_table(review.register)
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False, encoding="utf-8-sig") if suffix == ".csv" else table.to_parquet(tmp, index=False)
        return
    from crm_app.workbook.builder import register_notes, review_register_data, write_register
    from crm_app.workbook.data import register_data_from_sums

    source = str(Path(args.ledger).resolve())
    if args.engine == "inprocess":  # the rows fit in memory: the Ledger and Ageing sheets too
        data = review_register_data(read_ledger_file(args.ledger, policy), policy, args.year, source)
    else:
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        data = register_data_from_sums(result.sums, review, now, source)
    write_register(data, target)
    for note in register_notes(data):
        print(note, file=sys.stderr)


def register_table(register):
    """The review's register with the Register sheet's labels, money in currency units."""
    from crm_core.schema import REVIEW_COLUMNS
    from crm_core.values import units

    table = register.copy()
    for column in REVIEW_COLUMNS:
        if column.frame_key != column.key:  # money: cents -> units
            table[column.frame_key] = units(table[column.frame_key].to_numpy(dtype="int64"))
    return table.rename(columns={c.frame_key: c.label for c in REVIEW_COLUMNS})
