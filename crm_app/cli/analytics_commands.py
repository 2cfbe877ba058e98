"""`crm-addin kpis` and `crm-addin aging`: the receivables analytics of a ledger file (DSO, ADD, CEI...
and the ageing as ERPs offer it) per customer or per tier and in total, as a table on stdout."""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from crm_app.cli.main import load_policy, refused_for_bad_rows, whole_number, year_argument
from crm_app.cli.output import EXIT_INPUT, EXIT_OK, print_issues
from crm_app.io.files import atomic_path, csv_safe, read_ledger
from crm_core.analysis import aging_report, buckets_from_limits
from crm_core.policy import AGING_BASES, KPI_MONTHS_LIMIT
from crm_core.receivables import (
    KPI_HEADER,
    KPI_MONEY,
    KPI_RATIOS,
    TOTAL,
    aging_with_total,
    by_tier,
    kpis_by_tier,
    receivable_kpis,
    review_tiers,
)
from crm_core.values import parse_date, units

BY_HELP = ("customer (default): a row per customer and the total; tier: a row per tier by collection rate, as "
           "the review assigns it, and the total / 按客户（默认）或按回款率等级汇总，含合计")
# How the table on stdout shows each KPI: days with one decimal, shares as percents.
RATIO_FORMS = {"dso": "{:,.1f}", "best_dso": "{:,.1f}", "add": "{:,.1f}", "cei": "{:.2%}",
               "current_share": "{:.2%}", "turnover": "{:,.2f}", "bad_debt_ratio": "{:.2%}"}
NOT_DEFINED = "n/a"


def add_parser(sub) -> None:
    kpis = sub.add_parser("kpis", help="receivables KPIs of a ledger: DSO, ADD, CEI... / 应收指标", description=(
        "Per customer (or tier) and in total, over the months ending on --as-of: credit sales incl. VAT, "
        "opening and closing receivables, current (not yet due), write-offs, DSO, best possible DSO, ADD, CEI, "
        "%% current, turnover and the bad-debt ratio (the Credit Research Foundation's definitions); n/a where a "
        "KPI is not defined (no credit sales, no receivables). / 按客户（或等级）计算应收账款周转天数、平均逾期天数、"
        "回款有效性指数等指标。"))
    _ledger_arguments(kpis)
    kpis.add_argument("--months", type=whole_number(1, KPI_MONTHS_LIMIT),
                      help="months of credit sales up to --as-of (default: policy kpi_months, 12) / 统计月数")
    kpis.set_defaults(func=cmd_kpis)
    ageing = sub.add_parser("aging", help="receivable ageing of a ledger, as ERPs offer it / 应收账龄", description=(
        "Open receivables on --as-of per customer (or tier) and in total: not yet due, then days past due (or "
        "since the document date) in buckets, credit (overpayments) and total. Documents after --as-of are left "
        "out; receipts settle the invoice their applies_to / 核销发票号 column names, else the oldest first. "
        "/ 截止日应收账龄：未到期、各逾期区间、未核销贷方与合计；收款按核销发票号或先进先出核销。"))
    _ledger_arguments(ageing)
    ageing.add_argument("--buckets", type=bucket_argument,
                        help="upper days of each bucket, e.g. 30,60,90 or 30,60,90,120,180,270,360,540,720 "
                             "(default: the policy's aging_bucket) / 账龄区间天数上限")
    ageing.add_argument("--basis", choices=AGING_BASES,
                        help="count days past the due date or since the document date (default: policy aging_basis, "
                             "due_date) / 账龄起算：到期日或单据日期")
    ageing.set_defaults(func=cmd_aging)


def _ledger_arguments(cmd) -> None:
    cmd.add_argument("ledger", help="ledger file (CSV, XLSX, Parquet) with date, customer, type, amount / 台账文件")
    cmd.add_argument("--as-of", type=date_argument,
                     help="date taken on, YYYY-MM-DD (default: the ledger's last date) / 截止日期")
    cmd.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    cmd.add_argument("--by", choices=("customer", "tier"), default="customer", help=BY_HELP)
    cmd.add_argument("--year", type=year_argument,
                     help="with --by tier: the year whose collection rate sets the tiers (default: the last "
                          "complete year up to --as-of) / 分级所依据的年度")
    cmd.add_argument("--out", type=csv_argument,
                     help="also write the table to this CSV file (amounts in currency units) / 输出CSV文件")
    cmd.add_argument("--sheet", help="sheet to read from an XLSX ledger (default: Ledger/台账 or the first) / 工作表名")
    cmd.add_argument("--skip-bad-rows", action="store_true",
                     help="use the valid rows even if some are bad (they are still listed) / 跳过错误行")


# ---------------------------------------------------------------- argument types


def date_argument(text: str) -> pd.Timestamp:
    try:
        return parse_date(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (write e.g. 2024-06-30)") from None


def bucket_argument(text: str) -> dict[str, float]:
    """'30,60,90' (commas, semicolons or spaces) -> the buckets 1-30, 31-60, 61-90 (then 90+)."""
    parts = [p for p in re.split(r"[,，;；\s]+", text.strip()) if p]
    try:
        return buckets_from_limits([float(p) for p in parts])
    except ValueError as exc:  # not a number; CrmInputError (a ValueError too) for a bad bucket
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}; write upper days such as 30,60,90") from None


def csv_argument(text: str) -> Path:
    if Path(text).suffix.lower() != ".csv":
        raise argparse.ArgumentTypeError(f"{text!r}: the table is written as CSV; name a .csv file")
    return Path(text)


# ---------------------------------------------------------------- commands


def cmd_kpis(args: argparse.Namespace) -> int:
    policy, ledger, as_of = _read(args)
    if ledger is None:
        return EXIT_INPUT
    report = receivable_kpis(ledger.rows, as_of, args.months, policy)
    table = report.table
    if args.by == "tier":
        table = kpis_by_tier(report, _tiers(ledger.rows, as_of, table["customer"], policy, args), policy)
    _noted(report.issues, ledger.source)
    print(f"receivables KPIs / 应收指标 as of {as_of:%Y-%m-%d}, {report.period} ({report.months} months, "
          f"{report.days} days), policy {policy.label}")
    _show(_kpi_view(table, args.by), args.out)
    print(report.summary_line())  # the headline: total receivables, DSO and CEI
    return EXIT_OK


def cmd_aging(args: argparse.Namespace) -> int:
    policy, ledger, as_of = _read(args)
    if ledger is None:
        return EXIT_INPUT
    report = aging_report(ledger.rows, as_of, policy, args.buckets, args.basis)
    table = report.table
    if args.by == "tier":
        table = by_tier(table, _tiers(ledger.rows, as_of, table["customer"], policy, args), policy)
    else:
        table = aging_with_total(table)
    _noted(report.issues, ledger.source)
    basis = "days past due / 逾期天数" if report.basis == "due_date" else "days since the document date / 单据天数"
    print(f"receivable ageing / 应收账龄 as of {as_of:%Y-%m-%d}, {basis}, policy {policy.label}")
    _show(_aging_view(table, args.by), args.out)
    return EXIT_OK


def _read(args):
    """The policy, the ledger (None when its bad rows refuse it, after saying so) and the as-of date."""
    policy = load_policy(args.policy)
    ledger = read_ledger(args.ledger, policy, sheet=args.sheet)
    if refused_for_bad_rows(ledger, args.skip_bad_rows, "nothing computed / 未计算"):
        return policy, None, None
    print_issues(ledger.issues)
    as_of = args.as_of if args.as_of is not None else pd.Timestamp(ledger.rows["date"].max())
    return policy, ledger, as_of


def _tiers(rows, as_of, customers, policy, args) -> pd.Series:
    return review_tiers(rows, as_of, [c for c in customers if c != TOTAL], policy, args.year)


def _noted(issues, source: str) -> None:
    print_issues([replace(i, source=i.source or source) for i in issues])


def _kpi_view(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The KPI table with its bilingual headers: amounts in currency units, KPIs as floats (NaN: not defined)."""
    label = "customer" if by == "customer" else "tier"
    view = pd.DataFrame({KPI_HEADER[0] if by == "customer" else "tier / 等级": table[label].astype(str)})
    if "customers" in table:
        view["customers / 客户数"] = table["customers"].to_numpy()
    for key, header in KPI_MONEY.items():
        view[header] = units(table[f"{key}_cents"].to_numpy(dtype="int64"))
    for key, header in KPI_RATIOS.items():
        view[header] = table[key].to_numpy(dtype="float64")
    view.attrs["forms"] = {KPI_RATIOS[k]: form for k, form in RATIO_FORMS.items()}
    return view


def _aging_view(table: pd.DataFrame, by: str) -> pd.DataFrame:
    label = "customer" if by == "customer" else "tier"
    view = pd.DataFrame({("customer / 客户" if by == "customer" else "tier / 等级"): table[label].astype(str)})
    if "customers" in table:
        view["customers / 客户数"] = table["customers"].to_numpy()
    for column in table.columns:
        if column not in (label, "customers"):
            view["total / 合计" if column == "total" else str(column)] = units(table[column].to_numpy(dtype="int64"))
    return view


def _show(view: pd.DataFrame, out: Path | None) -> None:
    """The table on stdout (amounts with thousands separators, n/a for a KPI not defined) and, with
    --out, as CSV (plain numbers, blank for not defined, names that a spreadsheet would run as a
    formula quoted)."""
    forms = view.attrs.get("forms", {})
    shown = view.copy()
    for column in shown.columns[1:]:
        if column == "customers / 客户数":
            continue
        form = forms.get(column, "{:,.2f}")
        shown[column] = [NOT_DEFINED if math.isnan(v) else form.format(v) for v in shown[column].astype("float64")]
    print(shown.to_string(index=False))
    if out is not None:
        written = view.copy()
        written.iloc[:, 0] = [csv_safe(v) for v in written.iloc[:, 0]]
        with atomic_path(out, backup=False) as tmp:
            written.to_csv(tmp, index=False, encoding="utf-8-sig")
        print(f"table written to {out} / 已写出", file=sys.stderr)


__all__ = ["add_parser", "bucket_argument", "cmd_aging", "cmd_kpis", "date_argument"]
