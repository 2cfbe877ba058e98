"""The product's tables declared once: the register's columns, the ledger's headers, the rate status.

Every reader and writer derives from these: the review's frame (crm_core.review), the review
workbook (crm_app.register.cells), the register workbook's contract (crm_app.register.schema) and
its sheets (crm_app.workbook), the ledger reader (crm_core.ledger). A column is keyed by its
workbook key (``net_sales``); the core holds money as integer cents under the key's
`cents_key` (``net_sales_cents``): that mapping is made here and nowhere else.

This module imports nothing from the rest of the core, so every module may import it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MONEY, RATE, DATE, TEXT, INT = "money", "rate", "date", "text", "int"
KINDS = (TEXT, MONEY, RATE, DATE, INT)
CENTS_SUFFIX = "_cents"


def cents_key(key: str) -> str:
    """The core's name for a money column's integer cents: 'net_sales' -> 'net_sales_cents'."""
    return key + CENTS_SUFFIX


@dataclass(frozen=True)
class Column:
    """One column of a table: its key, Chinese and English names, what it holds, and (for a
    table read from users' files) the other headers a reader accepts for it."""

    key: str
    zh: str
    en: str
    kind: str = TEXT  # text | money | rate | date | int
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The header a workbook shows: '净销售额 Net sales'."""
        return f"{self.zh} {self.en}"

    @property
    def heading(self) -> str:
        """The header a workbook shows, in two lines ('净销售额\nNet sales'); readers compare
        headers with whitespace collapsed, so it reads as the label (and the label as it)."""
        return f"{self.zh}\n{self.en}"

    @property
    def frame_key(self) -> str:
        """The column's name in the core's frames: money as integer cents ('net_sales_cents')."""
        return cents_key(self.key) if self.kind == MONEY else self.key


# ----------------------------------------------------------------------------- the register
# The register workbook's columns, in sheet order (row 1 holds the labels, data from row 2).
REGISTER_COLUMNS: list[Column] = [
    Column("customer", "客户编码", "Code"),
    Column("customer_name", "客户名称", "Name"),
    Column("owner", "负责人", "Owner"),
    Column("rate_tier", "回款等级", "Tier by rate"),
    Column("pareto_tier", "ABC等级", "Pareto tier"),
    Column("stage_tier", "阶段等级", "Stage tier"),
    Column("net_sales", "净销售额", "Net sales", MONEY),
    Column("collections", "回款额", "Collections", MONEY),
    Column("collection_rate", "回款率", "Collection rate", RATE),
    Column("rate_status", "回款率说明", "Rate note"),
    Column("open_balance", "应收余额", "Open balance", MONEY),
    Column("allocated_line", "年度分配额度", "Yearly allocation", MONEY),
    Column("credit_line", "赊销额度", "Credit line", MONEY),
    Column("utilisation", "额度使用率", "Utilisation", RATE),
    Column("last_reviewed", "最近评审", "Last reviewed", DATE),
    Column("flags", "提示", "Flags"),
]
REGISTER_BY_KEY = {c.key: c for c in REGISTER_COLUMNS}

# The register columns a review computes, in the order of the review's frame (`Review.register`,
# money as cents: `Column.frame_key`) and of the review workbook's Register sheet.
REVIEW_KEYS = ("customer", "customer_name", "net_sales", "collections", "collection_rate", "rate_status",
               "rate_tier", "pareto_tier", "open_balance", "credit_line")
REVIEW_COLUMNS: list[Column] = [REGISTER_BY_KEY[k] for k in REVIEW_KEYS]
REVIEW_FRAME_COLUMNS: list[str] = [c.frame_key for c in REVIEW_COLUMNS]


# ----------------------------------------------------------------------------- the ledger
# The ledger's fields and every header a reader accepts for each (compared after
# `normalize_text(...).lower()` and cutting a bracketed unit such as '(万元)'). The Chinese name
# and the key are among the aliases, so a header written as '日期 (date)' reads back.
LEDGER_COLUMNS: list[Column] = [
    Column("date", "日期", "Date", DATE,
           ("date", "日期", "业务日期", "单据日期", "transaction date", "posting date")),
    Column("customer", "客户编码", "Customer code", TEXT,
           ("customer", "customer code", "客户", "客户编码", "客户代码", "客户编号", "account")),
    Column("type", "类型", "Type", TEXT, ("type", "类型", "单据类型", "业务类型", "kind")),
    Column("amount", "金额", "Amount", MONEY, ("amount", "金额", "amount (net)", "value")),
    Column("invoice_no", "发票号", "Invoice number", TEXT,
           ("invoice_no", "invoice no", "invoice", "invoice number", "发票号", "发票号码", "单号", "单据号")),
    Column("due_date", "到期日", "Due date", DATE, ("due_date", "due date", "到期日", "到期日期", "应收日期")),
    Column("vat_rate", "税率", "VAT rate", RATE, ("vat_rate", "vat rate", "vat", "税率", "增值税率")),
    Column("customer_name", "客户名称", "Customer name", TEXT,
           ("customer_name", "customer name", "name", "客户名称", "名称")),
    # optional: on a receipt or credit note, the invoice it settles (ageing settles it first)
    Column("applies_to", "核销发票号", "Applies to invoice", TEXT,
           ("applies_to", "applies to", "applies to invoice", "settles invoice", "核销发票号", "核销发票",
            "对应发票号", "核销单号")),
]
LEDGER_BY_KEY = {c.key: c for c in LEDGER_COLUMNS}
# field -> accepted headers: what crm_core.ledger's reader matches a file's headers against
HEADER_ALIASES: dict[str, tuple[str, ...]] = {c.key: c.aliases for c in LEDGER_COLUMNS}
# The customer column of the other tables a user brings (owners, reallocation requests): the
# ledger's headers, and a bare "code" (which a ledger, with its invoice and document numbers, does not take).
CUSTOMER_TABLE_ALIASES: tuple[str, ...] = (*LEDGER_BY_KEY["customer"].aliases, "code")
# The register workbook's Ledger sheet adds a computed column (VAT included) that readers ignore.
GROSS = Column("gross", "含税额", "Gross incl. VAT", MONEY)


def sheet_header(column: Column) -> str:
    """A Ledger sheet header: the Chinese name, then the key the reader also accepts ('日期 (date)')."""
    return f"{column.zh} ({column.key})"


# ----------------------------------------------------------------------------- rate status
class RateStatus(StrEnum):
    """Why a customer has a collection rate, or why not (the facts' `rate_status`). Each member IS
    its bilingual label (a str): a frame column of statuses (pandas keeps it as text) and the
    sheets show the labels, while code compares with members (`status == RateStatus.RATED`) and
    gets a member back from the text with `RateStatus(text)` or, leniently, `RateStatus.of`."""

    RATED = "ok"
    NO_SALES = "no sales in period / 期内无销售"
    NEGATIVE_SALES = "credit notes exceed sales / 红字超过销售"

    @property
    def label(self) -> str:
        """The text a register or table shows: 'no sales in period / 期内无销售'."""
        return self.value

    @property
    def note(self) -> str:
        """What a 'rate note' cell shows: nothing for a rated customer, else the reason."""
        return "" if self is RateStatus.RATED else self.label

    @classmethod
    def of(cls, value: object) -> "RateStatus | None":
        """The member a cell's text shows (its label, English or Chinese part, or member name), or
        None for text that is no rate status (a hand-edited register)."""
        text = " ".join(str(value if value is not None else "").split()).lower()
        for member in cls:
            names = {member.name.lower(), member.label.lower(), *(p.strip().lower() for p in member.label.split(" / "))}
            if text in names:
                return member
        return None

