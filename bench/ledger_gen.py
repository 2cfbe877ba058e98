"""A synthetic ERP ledger of any size, built column-wise (10^7 rows in a few seconds).

Rows look like `crm_core.demo.demo_ledger` output (date, customer, customer_name, type,
amount, invoice_no, due_date) but are drawn independently per row so that size and customer
count can be set freely: sales per customer follow a Pareto curve, about half the rows are
invoices, 46% receipts and 4% credit notes, over two calendar years.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_YEAR = 2024
YEARS = 2


def ledger_table(rows: int, customers: int, seed: int = 7) -> pa.Table:
    """Raw ledger as an Arrow table (text codes, amounts with cents, ISO dates)."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, customers + 1, dtype="float64") ** -0.9
    rng.shuffle(weights)
    # every customer appears at least once, the rest by weight
    cust = np.concatenate([np.arange(min(customers, rows)),
                           rng.choice(customers, size=max(rows - customers, 0), p=weights / weights.sum())])
    rng.shuffle(cust)
    kind = rng.choice(np.array([0, 1, 2], dtype="int8"), size=rows, p=[0.50, 0.46, 0.04])
    start = np.datetime64(f"{FIRST_YEAR}-01-01")
    dates = start + rng.integers(0, 365 * YEARS, rows).astype("timedelta64[D]")
    amount = np.round(rng.lognormal(8.0, 1.2, rows), 2)
    amount[kind == 1] = np.round(amount[kind == 1] * 1.13 * rng.uniform(0.6, 1.1, int((kind == 1).sum())), 2)
    amount[kind == 2] = np.round(amount[kind == 2] * 0.1, 2)
    return pa.table({
        "date": pa.array(dates.astype("datetime64[D]")),
        "customer": _codes("C", cust, 6),
        "customer_name": _codes("客户", cust, 6),
        "type": pa.DictionaryArray.from_arrays(pa.array(kind), ["invoice", "receipt", "credit note"]).cast(pa.string()),
        "amount": pa.array(amount),
        "invoice_no": _codes("INV", np.arange(rows), 9),
        "due_date": pa.array(np.where(kind == 0, dates + np.timedelta64(30, "D"),
                                      np.datetime64("NaT")).astype("datetime64[D]")),
    })


def _codes(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def ledger_frame(rows: int, customers: int, seed: int = 7):
    """The same ledger as a pandas DataFrame with text columns, as a CSV reader would give it."""
    return ledger_table(rows, customers, seed).to_pandas()


def write_ledger(path, rows: int, customers: int, seed: int = 7) -> None:
    """Write the ledger as .csv (UTF-8, ISO dates) or .parquet, by the file's suffix."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = ledger_table(rows, customers, seed)
    if str(path).endswith(".parquet"):
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
