"""The Commission review sheet (销售提成, 003): per owner, commission earned on the review period's
net sales, payable on its collections net of VAT, withheld (not yet collected), clawed back on
write-offs (the ledger's write-off document type) net of VAT, and net payable; then the same per
owner and quarter (crm_core.commission.commission_from_ledger).

Owners are the Register's owner column (a customer without one is unassigned). The figures need
each customer's VAT rate and write-offs from the ledger's documents, so the core computes them and
a filled register holds their values (green) under one note saying when and how to refresh, as on
the Ageing and KPIs sheets; the rate is the Policy sheet's commission_rate.
"""
from __future__ import annotations

import pandas as pd
from openpyxl.utils import get_column_letter

from crm_app.workbook import layout
from crm_app.workbook.data import RegisterData, customer_file_column
from crm_app.workbook.register_sheets import Ctx, footer, units
from crm_app.workbook.xml_sheet import COUNT, MONEY, PERCENT, Sheet
from crm_core.collection import Period
from crm_core.commission import BASES, FIGURES, CommissionReport, commission_from_ledger
from crm_core.values import is_blank

COMMISSION = "Commission"
TABLE_TOP = 6  # the by-owner table's header row; title, note, rate and period above it
HEADINGS = ["业务员 Owner", "客户数 Customers", "净销售额 Net sales", "不含税回款 Collections excl. VAT",
            "不含税坏账核销 Written off excl. VAT", "应计提成 Earned", "可兑现提成 Payable", "暂扣提成 Withheld",
            "兑现以前期间提成 Released (earlier periods)", "坏账扣回 Clawed back", "实发提成 Net payable"]
MONEY_KEYS = [*BASES, *FIGURES]
TOTAL_LABEL = "合计 Total"
HOW = ("应计 = 提成比例 x 净销售额；可兑现 = 比例 x 不含税回款；暂扣 = 应计 - 可兑现（为正时）；坏账扣回 = 比例 x 不含税核销额；"
       "实发 = 可兑现 - 扣回 / earned = rate x net sales; payable = rate x collections excl. VAT; withheld = earned - "
       "payable where positive; clawed back = rate x write-offs excl. VAT; net payable = payable - clawed back")


def build_commission(ctx: Ctx, sh: Sheet) -> None:
    from crm_app.workbook.review_sheets import addin_note  # the same note as the Ageing sheet's

    period = ctx.data.review.period if ctx.filled else None
    sh.label("A1", "销售提成 Commission on collection by owner" + (f" ({period})" if period else ""), title=True)
    layout.note(sh, "A2", addin_note(ctx, None), kind="addin", lines=2, wrap=False)
    sh.label("A3", "提成比例 Commission rate (Policy commission_rate)")
    sh.formula("D3", f"=Policy!$B${ctx.policy_rows['commission_rate']}", ctx.cached(ctx.policy.commission_rate),
               PERCENT)
    layout.note(sh, "A4", HOW, kind="body", wrap=False)
    report = _report(ctx, period) if period is not None else None
    if ctx.filled and report is None:
        layout.note(sh, "A5", "需要台账明细：引擎评审的台账请用 crm-addin commission / needs the ledger's documents: for "
                    "a ledger reviewed by an engine run crm-addin commission", kind="note", wrap=False)
    layout.header(sh, TABLE_TOP, 1, HEADINGS)
    last = _rows(sh, TABLE_TOP + 1, report, None) if report is not None else TABLE_TOP
    quarters = _quarters(period) if report is not None else []
    top = last + 3
    sh.label(f"A{top - 1}", "按季度 By quarter (each quarter on its own: withheld in one may be released in the next)",
             head=True)
    layout.header(sh, top, 1, ["季度 Quarter", *HEADINGS])
    r = top + 1
    for quarter in quarters:
        r = _rows(sh, r, _report(ctx, quarter), first=str(quarter)) + 1
    layout.fit_widths(sh, least={"A": 16, **{get_column_letter(c): 14 for c in range(2, len(HEADINGS) + 2)}},
                      skip=[1, 2, 4, 5, top - 1], most=30)
    sh.ws.freeze_panes = f"B{TABLE_TOP + 1}"
    layout.print_setup(sh, landscape=True, title_rows=f"{TABLE_TOP}:{TABLE_TOP}", footer=footer(ctx))
    sh.protect()


def commission_report(ctx: Ctx) -> CommissionReport | None:
    """The review period's commission as the sheet shows it (None: the template, or no ledger rows)."""
    return _report(ctx, ctx.data.review.period) if ctx.filled else None


def _report(ctx: Ctx, period: Period) -> CommissionReport | None:
    d = ctx.data
    if d.ledger_row_count is not None or not len(d.rows):
        return None
    return commission_from_ledger(d.rows, owners_by_customer(d), period, ctx.policy)


def owners_by_customer(data: RegisterData) -> dict[str, str]:
    """Each customer's owner as the Register shows it: the register's owner column, else the
    customer file's ({} when neither gives one: every customer unassigned)."""
    register = data.register
    if "owner" in register:
        owners = register["owner"].tolist()
    else:
        owners = customer_file_column(data, "owner")
    return {str(c): str(o).strip() for c, o in zip(register["customer"], owners) if not is_blank(o) and str(o).strip()}


def _quarters(period: Period) -> list[Period]:
    """The period in quarters from its first day (the last one cut at its end)."""
    out, start = [], period.start
    while start <= period.end:
        end = min(start + pd.DateOffset(months=3) - pd.Timedelta(days=1), period.end)
        out.append(Period(start, end))
        start = end + pd.Timedelta(days=1)
    return out


def _rows(sh: Sheet, r: int, report: CommissionReport, first: str | None) -> int:
    """One row per owner and the total, from row r (column A holds `first` when given); the last row."""
    lead = [] if first is None else [(first, None)]
    records = report.by_owner.to_dict("records")
    for rec in records:
        _row(sh, r, [*lead, (str(rec["owner"]), None), (int(rec["customers"]), COUNT),
                     *((units(int(rec[k])), MONEY) for k in MONEY_KEYS)])
        r += 1
    total = report.total
    _row(sh, r, [*lead, (TOTAL_LABEL, None), (int(total["customers"]), COUNT),
                 *((units(int(total[k])), MONEY) for k in MONEY_KEYS)])
    return r


def _row(sh: Sheet, r: int, cells: list[tuple[object, str | None]]) -> None:
    for j, (value, fmt) in enumerate(cells, start=1):
        sh.value(f"{get_column_letter(j)}{r}", value, fmt, fill="addin")
