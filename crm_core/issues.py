"""Problems found in user data, as values: every check returns a list of issues naming row and column.

Rows are numbered as a spreadsheet shows them (header = row 1, first data row = row 2),
so a finance user can go straight to the cell.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Sequence

import pandas as pd


class IssueCode(str, Enum):
    MISSING_COLUMN = "missing_column"
    BLANK = "blank"
    BAD_NUMBER = "bad_number"
    BAD_DATE = "bad_date"
    UNKNOWN_TYPE = "unknown_type"
    DUPLICATE_INVOICE = "duplicate_invoice"
    NEGATIVE_AMOUNT = "negative_amount"
    MERGED_NAMES = "merged_names"
    EMPTY = "empty"
    UNKNOWN_CUSTOMER = "unknown_customer"
    DUPLICATE_CUSTOMER = "duplicate_customer"
    NOT_ZERO_SUM = "not_zero_sum"
    BELOW_ZERO = "below_zero"
    BELOW_BALANCE = "below_balance"
    QUOTA_USED = "quota_used"
    ROLE_MISSING = "role_missing"
    ROLES_NOT_DISTINCT = "roles_not_distinct"
    BAD_POLICY = "bad_policy"
    NOT_ENOUGH_HEADROOM = "not_enough_headroom"
    BAD_SHAPE = "bad_shape"
    ROUNDED = "rounded"
    UNKNOWN_INVOICE = "unknown_invoice"  # a receipt names an invoice the ledger does not hold
    NO_ACTIVITY = "no_activity"  # nothing dated in the year reviewed: a year mistyped, or the wrong file


ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One problem in one place. `row` and `column` may be None for whole-table problems."""

    code: IssueCode
    message: str
    row: int | None = None
    column: str | None = None
    source: str | None = None
    severity: str = ERROR
    header: str | None = None  # the column's header as the user wrote it (金额), if not `column`

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def column_label(self) -> str:
        """The user's own header beside the field name: '金额 (amount)'."""
        if self.header and self.header != self.column:
            return f"{self.header} ({self.column})"
        return self.column or ""

    def where(self) -> str:
        parts = [p for p in (self.source,) if p]
        if self.row is not None:
            parts.append(f"row {int(self.row)}")
        if self.column:
            parts.append(f"column {self.column_label}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


class CrmInputError(ValueError):
    """Raised when input cannot be used; carries every issue found, not just the first."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        shown = "; ".join(str(i) for i in self.issues[:5])
        more = f" (and {len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        super().__init__(shown + more)


class InvariantError(RuntimeError):
    """A business invariant the product's own code broke (credit lines not adding up to the
    budget, cuts not adding up to the amount): a bug to report, never the user's input. A check
    that raises it, unlike `assert`, also runs under `python -O`."""

    def __init__(self, invariant: str, detail: str = ""):
        self.invariant = invariant
        self.detail = detail
        super().__init__(f"{invariant}: {detail}" if detail else invariant)


def check_invariant(condition: bool, invariant: str, detail: str = "") -> None:
    """Raise InvariantError(invariant, detail) unless `condition` holds."""
    if not condition:
        raise InvariantError(invariant, detail)


def errors_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.is_error]


def raise_if_errors(issues: Iterable[Issue]) -> None:
    errors = errors_only(issues)
    if errors:
        raise CrmInputError(errors)


def issues_frame(issues: Iterable[Issue]) -> pd.DataFrame:
    """The issues as a table (source, row, column, severity, code, message) for a sheet or the CLI."""
    rows = [
        {
            "source": i.source or "",
            "row": i.row,
            "column": i.column_label,
            "severity": i.severity,
            "code": i.code.value,
            "message": i.message,
        }
        for i in issues
    ]
    columns = ["source", "row", "column", "severity", "code", "message"]
    return pd.DataFrame(rows, columns=columns)
