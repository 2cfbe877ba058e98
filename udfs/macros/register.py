"""Excel macro entry points for the register (vba/Register.bas calls them through RunPython).

`refresh_register`: re-read the Ledger sheet and update each customer's facts and tiers in the
Register, keeping credit lines, owners and other inputs; new customers are added with no line.
`build_review`: the yearly review as a new workbook beside this one (new budget, new lines,
review sheets filled), so the current register is never overwritten.
Both work on the saved file, like the reallocation macros: no business rule lives here.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.utils import column_index_from_string

from crm_app.io.files import atomic_path, file_problem
from crm_app.register import schema as rs
from crm_app.register.cells import set_text
from crm_app.register.workflow import register_lock
from crm_app.workbook.builder import review_register_data, write_register
from crm_app.workbook.data import RegisterData, register_data
from crm_app.workbook.register_sheets import flags_formula, reg_col, stage_formula, tenure_formula
from crm_app.workbook.stored_values import (
    rebuild_sheets,
    review_inputs,
    save_rewritten,
    typed_inputs,
)
from crm_core.analysis import first_trade_dates
from crm_core.issues import CrmInputError
from crm_core.values import units

TITLE = "crm-addin 客户登记表"
FACT_KEYS = ("rate_tier", "pareto_tier", "net_sales", "collections", "collection_rate", "rate_status",
             "open_balance")


@dataclass(frozen=True)
class RefreshResult:
    updated: int
    added: int
    version: int
    data: RegisterData
    customers: int = 0  # rows in the Register afterwards
    review_rows: int | None = None  # customers the review sheets cover (About), if recorded

    def text(self) -> str:
        text = (f"{self.updated} customer(s) updated, {self.added} added; register version {self.version} "
                f"/ 已更新 {self.updated}, 新增 {self.added}")
        if self.review_rows is not None and self.customers > self.review_rows:
            text += (f"\nThe review sheets cover the first {self.review_rows} customers and the register now has "
                     f"{self.customers}: run BuildReview for a review of all of them / 复核表只覆盖前 "
                     f"{self.review_rows} 位客户(现有 {self.customers} 位)，请运行 BuildReview")
        return text


def _columns(ws) -> dict[str, int]:
    lookup = rs.header_lookup([*rs.REGISTER_COLUMNS, *rs.CUSTOMER_FILE_COLUMNS])
    header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
    return {lookup[k]: i + 1 for i, h in enumerate(header)
            if h is not None and (k := rs.normalize_text(h).lower()) in lookup}


def _fact_values(rec) -> dict[str, object]:
    rate = float(rec.collection_rate)
    return {"rate_tier": rec.rate_tier, "pareto_tier": rec.pareto_tier, "net_sales": units(rec.net_sales_cents),
            "collections": units(rec.collections_cents), "collection_rate": None if np.isnan(rate) else rate,
            "rate_status": rec.rate_status, "open_balance": units(rec.open_balance_cents)}


def refresh_register_file(path: str | Path) -> RefreshResult:
    """Update the Register of the saved workbook at `path` from its Ledger sheet (atomic write)."""
    path = Path(path)
    with register_lock(path):
        book = openpyxl.load_workbook(path, keep_vba=path.suffix.lower() == ".xlsm")
        # the values it stores, read from bytes: a read-only workbook keeps its file open otherwise
        before = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
        ledger, policy, year = review_inputs(book, path)
        data = register_data(ledger, policy, year, customer_file=typed_inputs(book)[0])  # its payment terms
        ws = book[rs.REGISTER]
        cols = _columns(ws)
        found, _ = rs.sheet_records(ws, rs.REGISTER_COLUMNS, rs.REGISTER)
        rows = dict(zip(found["customer"], found["row"]))
        next_row = int(found["row"].max()) + 1 if len(found) else 2
        first = first_trade_dates(data.rows)
        updated = added = 0
        for rec in data.register.itertuples(index=False):
            row = rows.get(rec.customer)
            if row is None:
                row, next_row, added = next_row, next_row + 1, added + 1
                _new_customer(book, cols, row, rec.customer, rec.customer_name, policy, first.get(rec.customer))
            else:
                updated += 1
            for key, value in _fact_values(rec).items():
                if key in cols:
                    cell = ws.cell(row=row, column=cols[key])
                    if isinstance(value, str):
                        set_text(cell, value)
                    else:
                        cell.value = value
        version = _bump_version(book)
        review_rows = rs.read_about(book[rs.ABOUT]).get("review_rows")
        with atomic_path(path) as tmp:
            save_rewritten(book, tmp, before, lambda: rebuild_sheets(book, path))
    return RefreshResult(updated, added, version, data, customers=len(found) + added,
                         review_rows=int(review_rows) if isinstance(review_rows, (int, float)) else None)


def _new_customer(book, cols: dict[str, int], row: int, code: str, name: str, policy, since=None) -> None:
    """A Register row for a customer the ledger brings: code, name, zero lines, and the formulas the
    builder writes on every row (utilisation, flags, and the stage tier and tenure of a register
    that has the customer file columns where the builder puts them, trading since from the first
    ledger date `since`), the inputs left to the user."""
    ws = book[rs.REGISTER]
    set_text(ws.cell(row=row, column=cols["customer"]), code)
    set_text(ws.cell(row=row, column=cols["customer_name"]), name)
    for key in ("allocated_line", "credit_line"):
        ws.cell(row=row, column=cols[key]).value = 0.0
    ref = {k: openpyxl.utils.get_column_letter(cols[k]) + str(row) for k in ("open_balance", "credit_line")}
    if "utilisation" in cols:
        ws.cell(row=row, column=cols["utilisation"]).value = f'=IF(N({ref["credit_line"]})>0,{ref["open_balance"]}/{ref["credit_line"]},"")'
    if "flags" in cols:
        ws.cell(row=row, column=cols["flags"]).value = flags_formula(row, complaints=rs.SERVICE in book.sheetnames)
    placed = {key: cols.get(key) == column_index_from_string(reg_col(key)) for key in
              ("stage_tier", "need", "expected_close", "tenure", "trading_since")}
    if placed["stage_tier"] and placed["need"] and placed["expected_close"]:
        rows = {str(key): r for r, (key,) in enumerate(book[rs.POLICY].iter_rows(min_row=1, max_col=1,
                                                                                  values_only=True), start=1)}
        ws.cell(row=row, column=cols["stage_tier"]).value = stage_formula(policy, rows, row)
    if placed["tenure"] and placed["trading_since"]:
        if since is not None and not pd.isna(since):
            ws.cell(row=row, column=cols["trading_since"]).value = pd.Timestamp(since).to_pydatetime()
            ws.cell(row=row, column=cols["trading_since"]).number_format = "yyyy-mm-dd"
        ws.cell(row=row, column=cols["tenure"]).value = tenure_formula(row)


def _bump_version(book) -> int:
    ws = book[rs.ABOUT]
    for row in ws.iter_rows(min_row=2, max_col=2):
        if row[0].value == "register_version":
            row[1].value = int(row[1].value or 0) + 1
            return int(row[1].value)
    ws.append(["register_version", 1])
    return 1


def build_review_file(path: str | Path) -> Path:
    """Write the yearly review of the saved workbook's ledger as a new register beside it."""
    path = Path(path)
    book = openpyxl.load_workbook(path, read_only=True)
    ledger, policy, year = review_inputs(book, path)
    customer_file, activity = typed_inputs(book)  # the customer file and the logs go on to the new year
    data = replace(review_register_data(ledger, policy, year, customer_file=customer_file), activity=activity)
    target = path.with_name(f"{path.stem}_review_{data.review.budget_year}{path.suffix}")
    return write_register(data, target)


# ----------------------------------------------------------------------------- Excel side
def _caller():
    import xlwings as xw

    return xw.Book.caller()


def refresh_register() -> bool:
    """Macro: refresh the Register from the Ledger sheet / 从台账更新登记表."""
    book = _caller()
    book.save()
    path, app = Path(book.fullname), book.app
    book.close()  # Excel locks the open file; release it so the new version can replace it
    text, ok = "nothing changed / 未更改", False
    try:
        text, ok = refresh_register_file(path).text(), True
    except CrmInputError as exc:
        text = f"nothing changed / 未更改:\n{exc}"
    except OSError as exc:  # locked or read-only: the atomic write left the file as it was
        text = f"nothing changed / 未更改:\n{file_problem(exc)}"
    finally:  # whatever happens, the user gets the workbook back
        reopened = app.books.open(str(path))
    reopened.app.alert(text, title=TITLE)
    return ok


def build_review() -> Path | None:
    """Macro: build the yearly review as a new workbook and open it / 生成年度评审."""
    book = _caller()
    book.save()
    try:
        target = build_review_file(Path(book.fullname))
    except CrmInputError as exc:
        book.app.alert(f"no review / 未生成:\n{exc}", title=TITLE)
        return None
    except OSError as exc:
        book.app.alert(f"no review / 未生成:\n{file_problem(exc)}", title=TITLE)
        return None
    book.app.books.open(str(target))
    return target
