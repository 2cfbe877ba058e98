"""The add-in's bare job written idiomatically in DuckDB and in Polars: the floor it is judged by.

Why: the large-ledger review validates every cell and then rates, tiers and allocates; at its
heart is one pass that a columnar engine can do with a single query. That query, read straight
from the file by each engine and computed for one calendar year:

- per customer: net sales (invoices - credit notes), gross sales (each document's net x (1 + VAT
  in force on its date: 17% to 2018-04-30, 16% to 2019-03-31, 13% since), rounded half-up to the
  cent in integer arithmetic), collections (receipts), all in the period, and the balance at the
  period end (gross invoices - gross credit notes - receipts, every date up to the end);
- the number of repeated invoice numbers among invoices (invoice rows - distinct numbers).

Amounts become integer cents half-up; no validation, no text normalization, no tiers. Both
engines give the same integers (tests/test_bench_smoke.py) and the add-in's register agrees with
them (`--check REGISTER.csv`). No crm_app import here: the add-in is driven by its command line.

    python bench/peers.py duckdb|polars LEDGER.parquet|.csv --year 2025 [--memory-limit 4GB --temp-dir DIR]

prints one JSON line: the job's seconds (after the engine's import), customers, totals.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

# VAT in percent from each date on, newest first; before the oldest change 17%.
VAT_CHANGES = ((dt.date(2019, 4, 1), 13), (dt.date(2018, 5, 1), 16))
VAT_BEFORE = 17
COLUMNS = ["customer", "net_sales_cents", "gross_sales_cents", "collections_cents", "balance_cents"]

DUCKDB_SQL = """
WITH docs AS (
    SELECT customer, type, date, CAST(round(amount * 100) AS BIGINT) AS cents,
           CASE {vat} ELSE {vat_before} END AS vat_percent
    FROM {source}
), priced AS (
    SELECT customer, cents, date BETWEEN $start AND $end AS in_period, date <= $end AS until_end,
           CASE WHEN type IN ('invoice', 'credit note')
                THEN sign(cents) * ((abs(cents) * (100 + vat_percent) + 50) // 100) ELSE cents END AS gross,
           CASE type WHEN 'invoice' THEN 1 WHEN 'credit note' THEN -1 ELSE 0 END AS sales_sign,
           CASE type WHEN 'invoice' THEN 1 WHEN 'credit note' THEN -1 WHEN 'receipt' THEN -1 ELSE 0 END AS balance_sign,
           type = 'receipt' AS is_receipt
    FROM docs
)
SELECT customer,
       CAST(coalesce(sum(sales_sign * cents) FILTER (in_period), 0) AS BIGINT) AS net_sales_cents,
       CAST(coalesce(sum(sales_sign * gross) FILTER (in_period), 0) AS BIGINT) AS gross_sales_cents,
       CAST(coalesce(sum(cents) FILTER (in_period AND is_receipt), 0) AS BIGINT) AS collections_cents,
       CAST(coalesce(sum(balance_sign * gross) FILTER (until_end), 0) AS BIGINT) AS balance_cents
FROM priced GROUP BY customer ORDER BY customer
"""
DUCKDB_REPEATS = "SELECT count(*) - count(DISTINCT invoice_no) FROM {source} WHERE type = 'invoice'"


def period(year: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def duckdb_job(path: str, year: int, memory_limit: str | None = None, temp_dir: str | None = None):
    """(per-customer Arrow table, repeated invoice numbers) by two DuckDB queries over the file.
    With a memory limit and a temp directory, aggregation spills to disk (out of core)."""
    import duckdb

    config = {"preserve_insertion_order": False}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_dir:
        config["temp_directory"] = temp_dir
    with duckdb.connect(config=config) as con:
        reader = "read_parquet" if path.endswith(".parquet") else "read_csv"
        source = f"{reader}('{path.replace(chr(39), chr(39) * 2)}')"
        vat = " ".join(f"WHEN date >= DATE '{day}' THEN {percent}" for day, percent in VAT_CHANGES)
        start, end = period(year)
        sql = DUCKDB_SQL.format(source=source, vat=vat, vat_before=VAT_BEFORE)
        table = con.sql(sql, params={"start": start, "end": end}).to_arrow_table()
        (repeated,), = con.sql(DUCKDB_REPEATS.format(source=source)).fetchall()
    return table, int(repeated)


def polars_job(path: str, year: int):
    """(per-customer Polars frame, repeated invoice numbers): two lazy plans over the same scan,
    collected together by the streaming engine."""
    import polars as pl

    if path.endswith(".parquet"):
        scan = pl.scan_parquet(path)
    else:
        scan = pl.scan_csv(path, schema_overrides={"date": pl.Date})
    start, end = period(year)
    date, kind = pl.col("date"), pl.col("type")
    cents = (pl.col("amount") * 100).round(mode="half_away_from_zero").cast(pl.Int64)
    vat = pl.lit(VAT_BEFORE)
    for day, percent in reversed(VAT_CHANGES):
        vat = pl.when(date >= day).then(percent).otherwise(vat)
    gross = pl.when(kind.is_in(["invoice", "credit note"])).then(
        pl.col("cents").sign() * ((pl.col("cents").abs() * (100 + vat) + 50) // 100)).otherwise(pl.col("cents"))
    sales_sign = pl.when(kind == "invoice").then(1).when(kind == "credit note").then(-1).otherwise(0)
    balance_sign = pl.when(kind == "invoice").then(1).when(kind.is_in(["credit note", "receipt"])).then(-1).otherwise(0)
    in_period = date.is_between(start, end)
    # each row's part in each measure, then plain sums: the streaming engine's fast group-by
    per_customer = (
        scan.select("customer", "type", "date", cents=cents).with_columns(gross=gross)
        .select("customer",
                net_sales_cents=pl.when(in_period).then(sales_sign * pl.col("cents")).otherwise(0),
                gross_sales_cents=pl.when(in_period).then(sales_sign * pl.col("gross")).otherwise(0),
                collections_cents=pl.when(in_period & (kind == "receipt")).then(pl.col("cents")).otherwise(0),
                balance_cents=pl.when(date <= end).then(balance_sign * pl.col("gross")).otherwise(0))
        .group_by("customer").agg(pl.all().sum()).sort("customer"))
    repeats = scan.filter(kind == "invoice").select(repeated=pl.len() - pl.col("invoice_no").n_unique())
    frame, repeated = pl.collect_all([per_customer, repeats], engine="streaming")
    return frame, int(repeated.item())


def as_rows(table) -> dict[str, list]:
    """Either engine's per-customer result as plain columns, for exact comparison."""
    data = table.to_arrow() if hasattr(table, "to_arrow") else table
    return {name: data.column(name).to_pylist() for name in COLUMNS}


def check_register(rows: dict[str, list], register_csv: str) -> dict:
    """Compare with the add-in's register (`review-file --out register.csv`): same customers, and
    net sales, collections and open balance equal to the cent. Returns mismatch counts."""
    import pyarrow.csv as pacsv

    reg = pacsv.read_csv(register_csv).to_pydict()
    theirs = dict(zip(_register_column(reg, "customer", "Code"),
                      zip(*(_register_column(reg, name, label) for name, label in REGISTER_AMOUNTS))))
    ours = dict(zip(rows["customer"], zip(rows["net_sales_cents"], rows["collections_cents"], rows["balance_cents"])))
    return {"customers": len(theirs), "customers_differ": len(set(ours) ^ set(theirs)),
            "amounts_differ": sum(ours[c] != theirs[c] for c in set(ours) & set(theirs))}


# The register's columns by their field name (integer cents) or by their heading's English end
# ("净销售额 Net sales": currency units with cents), whichever the add-in writes.
REGISTER_AMOUNTS = (("net_sales_cents", "Net sales"), ("collections_cents", "Collections"),
                    ("open_balance_cents", "Open balance"))


def _register_column(reg: dict[str, list], name: str, label: str) -> list:
    if name in reg:
        return reg[name]
    values = next(column for heading, column in reg.items() if heading.endswith(label))
    return values if name == "customer" else [round(v * 100) for v in values]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the add-in's bare job in DuckDB or Polars, timed")
    parser.add_argument("engine", choices=["duckdb", "polars"])
    parser.add_argument("ledger")
    parser.add_argument("--year", type=int, required=True, help="calendar year reviewed")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 4GB (spills beyond it)")
    parser.add_argument("--temp-dir", help="DuckDB temp_directory for spilling")
    parser.add_argument("--check", metavar="REGISTER_CSV", help="compare with the add-in's register")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    __import__(args.engine)
    __import__("pyarrow")  # DuckDB's result format: imported with the engine, as the add-in imports its own
    imported = time.perf_counter()
    if args.engine == "duckdb":
        table, repeated = duckdb_job(args.ledger, args.year, args.memory_limit, args.temp_dir)
    else:
        table, repeated = polars_job(args.ledger, args.year)
    done = time.perf_counter()
    rows = as_rows(table)
    out = {"engine": args.engine, "job_s": done - imported, "import_s": imported - start,
           "customers": len(rows["customer"]), "repeated_invoice_numbers": repeated,
           **{f"total_{name}": sum(rows[name]) for name in COLUMNS[1:]}}
    if args.check:
        out["check"] = check_register(rows, args.check)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
