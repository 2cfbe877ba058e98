"""A synthetic ERP ledger of any size, built column-wise (10^7 rows in about 10 s).

Rows look like `crm_core.demo.demo_ledger` output (date, customer, customer_name, type,
amount, invoice_no, due_date) but are drawn independently per row so that size and customer
count can be set freely: sales per customer follow a Pareto curve, about half the rows are
invoices, 46% receipts and 4% credit notes, over two calendar years.

Files are written a batch of BATCH_ROWS rows at a time (one Parquet writer or CSV writer, the
table never whole in memory), so a 10^8-row ledger takes no more memory than a 10^7-row one
(about 1.4 GB). A ledger of one batch is the same, row for row, as before batches existed;
later batches draw from their own seeds, customers by the same weights, invoice numbers going on.

    python bench/ledger_gen.py ledger.parquet --rows 100000000 [--customers 1000000]
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_YEAR = 2024
YEARS = 2
BATCH_ROWS = 10_000_000


def ledger_table(rows: int, customers: int, seed: int = 7, first_year: int = FIRST_YEAR,
                 years: int = YEARS) -> pa.Table:
    """Raw ledger as an Arrow table (text codes, amounts with cents, ISO dates)."""
    return pa.concat_tables(ledger_batches(rows, customers, seed, first_year, years))


def ledger_batches(rows: int, customers: int, seed: int = 7, first_year: int = FIRST_YEAR,
                   years: int = YEARS, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """The ledger as tables of at most `batch_rows` rows; every customer appears in the first."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, customers + 1, dtype="float64") ** -0.9
    rng.shuffle(weights)
    weights /= weights.sum()
    for start in range(0, max(rows, 1), batch_rows):
        n = min(batch_rows, rows - start)
        if start:
            rng = np.random.default_rng([seed, start])
        yield _batch(rng, n, 0 if start else min(customers, n), customers, weights, start, first_year, years)


def _batch(rng, rows: int, everyone: int, customers: int, weights: np.ndarray, first_invoice: int,
           first_year: int, years: int) -> pa.Table:
    # `everyone` customers appear at least once, the rest by weight
    cust = np.concatenate([np.arange(everyone), rng.choice(customers, size=rows - everyone, p=weights)])
    rng.shuffle(cust)
    kind = rng.choice(np.array([0, 1, 2], dtype="int8"), size=rows, p=[0.50, 0.46, 0.04])
    start = np.datetime64(f"{first_year}-01-01")
    dates = start + rng.integers(0, 365 * years, rows).astype("timedelta64[D]")
    amount = np.round(rng.lognormal(8.0, 1.2, rows), 2)
    amount[kind == 1] = np.round(amount[kind == 1] * 1.13 * rng.uniform(0.6, 1.1, int((kind == 1).sum())), 2)
    amount[kind == 2] = np.round(amount[kind == 2] * 0.1, 2)
    return pa.table({
        "date": pa.array(dates.astype("datetime64[D]")),
        "customer": _codes("C", cust, 6),
        "customer_name": _codes("客户", cust, 6),
        "type": pa.DictionaryArray.from_arrays(pa.array(kind), ["invoice", "receipt", "credit note"]).cast(pa.string()),
        "amount": pa.array(amount),
        "invoice_no": _codes("INV", np.arange(first_invoice, first_invoice + rows), 9),
        "due_date": pa.array(np.where(kind == 0, dates + np.timedelta64(30, "D"),
                                      np.datetime64("NaT")).astype("datetime64[D]")),
    })


def _codes(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def ledger_frame(rows: int, customers: int, seed: int = 7):
    """The same ledger as a pandas DataFrame with text columns, as a CSV reader would give it."""
    return ledger_table(rows, customers, seed).to_pandas()


def write_ledger(path, rows: int, customers: int, seed: int = 7, batch_rows: int = BATCH_ROWS) -> None:
    """Write the ledger as .csv (UTF-8, ISO dates) or .parquet, by the file's suffix, batch by batch."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer = None
    try:
        for table in ledger_batches(rows, customers, seed, batch_rows=batch_rows):
            if writer is None:
                writer = (pq.ParquetWriter(path, table.schema) if str(path).endswith(".parquet") else
                          pacsv.CSVWriter(path, table.schema, write_options=pacsv.WriteOptions(quoting_style="none")))
            writer.write_table(table)
            del table  # before the next batch is drawn
    finally:
        if writer is not None:
            writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write a synthetic ledger (.parquet or .csv)")
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--customers", type=int, help="default: rows / 100, at least 10")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    root, suffix = os.path.splitext(args.path)
    part = f"{root}.part{suffix}"  # renamed when complete: a broken run leaves no ledger behind
    write_ledger(part, args.rows, args.customers or max(args.rows // 100, 10), args.seed)
    os.replace(part, args.path)


if __name__ == "__main__":
    main()
