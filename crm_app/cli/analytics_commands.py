"""`crm-addin kpis` and `crm-addin aging`: the receivables analytics of a ledger file (DSO, ADD, CEI...
and the ageing as ERPs offer it) per customer or per tier and in total, as a table on stdout; and
the sales side: `crm-addin commission` (commission on collection per owner) and `crm-addin funnel`
(the customers a sales target needs at each stage tier)."""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from crm_app.cli.main import (
    load_policy,
    money_argument,
    refused_for_bad_rows,
    whole_number,
    year_argument,
)
from crm_app.cli.output import EXIT_INPUT, EXIT_OK, EXIT_USAGE, print_issues
from crm_app.io.files import (
    atomic_path,
    check_not_empty,
    csv_safe,
    read_ledger,
    read_table,
    readable_file,
    reading_errors,
)
from crm_core.analysis import aging_report, buckets_from_limits
from crm_core.collection import Period
from crm_core.commission import BASES, FIGURES, commission_from_ledger
from crm_core.funnel import STEP_LABELS, funnel_plan
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.policy import AGING_BASES, FUNNEL_RATE_DEFAULTS, KPI_MONTHS_LIMIT, fraction_problem
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
from crm_core.review import default_period
from crm_core.schema import CUSTOMER_TABLE_ALIASES
from crm_core.values import is_blank, normalize_text, parse_date, units

BY_HELP = ("customer (default): a row per customer and the total; tier: a row per tier by collection rate, as "
           "the review assigns it, and the total / 按客户（默认）或按回款率等级汇总，含合计")
# How the table on stdout shows each KPI: days with one decimal, shares as percents.
RATIO_FORMS = {"dso": "{:,.1f}", "best_dso": "{:,.1f}", "add": "{:,.1f}", "cei": "{:.2%}",
               "current_share": "{:.2%}", "turnover": "{:,.2f}", "bad_debt_ratio": "{:.2%}"}
NOT_DEFINED = "n/a"
CUSTOMERS_HEADER = "customers / 客户数"  # a count: shown as a whole number


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
    _add_commission(sub)
    _add_funnel(sub)


def _add_commission(sub) -> None:
    cmd = sub.add_parser("commission", help="commission on collection per owner / 销售提成", description=(
        "Per owner and in total, for one period: commission earned on net sales, payable on collections net of "
        "VAT, withheld (earned, not yet collected), released (collections of earlier sales), clawed back on "
        "write-offs net of VAT, and net payable, at the policy's commission_rate or --rate. Owners come from a "
        "file with customer and owner columns, or a register workbook's Register sheet; a customer without one "
        "is unassigned. / 按业务员计算销售提成：按净销售额计提，回款（不含税）后兑现，坏账核销时扣回。"))
    cmd.add_argument("ledger", help="ledger file (CSV, XLSX, Parquet) with date, customer, type, amount / 台账文件")
    cmd.add_argument("--owners", required=True,
                     help="CSV/XLSX with customer and owner columns (客户编码, 负责人/业务员), or a register "
                          "workbook (its Register sheet) / 客户与业务员对照表或登记表")
    cmd.add_argument("--rate", type=rate_argument,
                     help="commission rate, 0.02 or 2%% (default: policy commission_rate) / 提成比例")
    when = cmd.add_mutually_exclusive_group()
    when.add_argument("--year", type=year_argument,
                      help="calendar year (default: the last complete year in the ledger, as the review) / 年度")
    when.add_argument("--as-of", type=date_argument,
                      help="the year ending on this date, YYYY-MM-DD / 截止日期（向前一年）")
    cmd.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    cmd.add_argument("--out", type=csv_argument,
                     help="also write the table to this CSV file (amounts in currency units) / 输出CSV文件")
    cmd.add_argument("--sheet", help="sheet to read from an XLSX ledger (default: Ledger/台账 or the first) / 工作表名")
    cmd.add_argument("--skip-bad-rows", action="store_true",
                     help="use the valid rows even if some are bad (they are still listed) / 跳过错误行")
    cmd.set_defaults(func=cmd_commission)


def _add_funnel(sub) -> None:
    cmd = sub.add_parser("funnel", help="customers a sales target needs by stage A-E / 销售漏斗", description=(
        "How many A, B, C, D and E customers a sales target needs: A = target / average deal, each stage below = "
        "the one above / its promotion rate, rounded up at each step (1,000,000 / 50,000 with rates 0.5, 0.25, "
        "0.5, 0.5 gives A 20, B 40, C 80, D 320, E 640). / 按销售目标推算所需 A、B、C、D、E 级客户数。"))
    cmd.add_argument("--target", type=money_argument, required=True,
                     help="sales target excl. VAT, e.g. 1000000 or 100万 / 销售目标（不含税）")
    cmd.add_argument("--deal", type=money_argument, required=True,
                     help="average deal: net sales one A customer brings, e.g. 50000 / 平均成交额")
    cmd.add_argument("--rates", type=rates_argument,
                     help="promotion rates E->D,D->C,C->B,B->A, e.g. 0.5,0.25,0.5,0.5 (default: policy "
                          "funnel_rate) / 晋级率")
    cmd.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    cmd.set_defaults(func=cmd_funnel)


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


def rate_argument(text: str) -> float:
    """A rate: 0.02 or 2% (a number above 1 is refused, never read as a percent)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate; write e.g. 0.02 or 2%") from None
    problem = fraction_problem("rate", value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def rates_argument(text: str) -> list[float]:
    """Four promotion rates E->D, D->C, C->B, B->A (commas, semicolons or spaces), each above 0, at most 1."""
    parts = [p for p in re.split(r"[,，;；\s]+", text.strip()) if p]
    if len(parts) != len(STEP_LABELS):
        raise argparse.ArgumentTypeError(f"{text!r}: give {len(STEP_LABELS)} rates, {', '.join(STEP_LABELS)}")
    rates = [rate_argument(p) for p in parts]
    if any(r == 0 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: a promotion rate must be above 0")
    return rates


def csv_argument(text: str) -> Path:
    if Path(text).suffix.lower() != ".csv":
        raise argparse.ArgumentTypeError(f"{text!r}: the table is written as CSV; name a .csv file")
    return Path(text)


# ---------------------------------------------------------------- commands


def _year_without_tiers(args: argparse.Namespace) -> bool:
    """--year only chooses the tiers of --by tier: alone it would be ignored without a word."""
    if args.year is None or args.by == "tier":
        return False
    print(f"crm-addin {args.command}: error: --year sets the tiers of --by tier; add --by tier or leave --year "
          f"out (the figures are as of --as-of) / --year 仅用于 --by tier / 参数错误", file=sys.stderr)
    return True


def cmd_kpis(args: argparse.Namespace) -> int:
    if _year_without_tiers(args):
        return EXIT_USAGE
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
    if _year_without_tiers(args):
        return EXIT_USAGE
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


def cmd_commission(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    if args.rate is not None:
        policy = policy.with_values(commission_rate=args.rate)
    owners = read_owners(args.owners)
    ledger = _usable_ledger(args, policy)
    if ledger is None:
        return EXIT_INPUT
    period = _commission_period(ledger.rows, args)
    report = commission_from_ledger(ledger.rows, owners, period, policy)
    print(f"commission on collection / 销售提成 {period}, rate {policy.commission_rate:.2%}, policy {policy.label}")
    view = pd.DataFrame({"owner / 业务员": [*report.by_owner["owner"].astype(str), TOTAL_ROW],
                         CUSTOMERS_HEADER: [*report.by_owner["customers"].astype(int), report.total["customers"]]})
    for key in [*BASES, *FIGURES]:
        view[COMMISSION_HEADERS[key]] = units(np.array([*report.by_owner[key].astype("int64"), report.total[key]],
                                                       dtype="int64"))
    _show(view, args.out)
    return EXIT_OK


TOTAL_ROW = "total / 合计"
COMMISSION_HEADERS = {
    "net_sales_cents": "net sales / 净销售额", "collections_net_cents": "collections excl. VAT / 不含税回款",
    "written_off_net_cents": "written off excl. VAT / 不含税坏账核销", "earned_cents": "earned / 应计提成",
    "payable_cents": "payable / 可兑现提成", "withheld_cents": "withheld / 暂扣提成",
    "released_cents": "released / 兑现以前期间提成", "clawed_back_cents": "clawed back / 坏账扣回",
    "net_payable_cents": "net payable / 实发提成"}


def _commission_period(rows: pd.DataFrame, args: argparse.Namespace) -> Period:
    if args.year is not None:
        return Period.year(args.year)
    if args.as_of is not None:
        end = pd.Timestamp(args.as_of)
        return Period(end - pd.DateOffset(years=1) + pd.Timedelta(days=1), end)
    return default_period(rows["date"].max() if len(rows) else None)


CUSTOMER_HEADERS = set(CUSTOMER_TABLE_ALIASES)
OWNER_HEADERS = {"owner", "sales person", "salesperson", "负责人", "业务员", "销售员"}
OWNERS_HEADERS_SHOWN = {"customer": "customer, code or 客户编码", "owner": "owner, 负责人 or 业务员"}


def read_owners(path: str) -> dict[str, str]:
    """Customer -> owner from a table with customer and owner columns, or a register workbook's
    Register sheet ("客户编码\nCode", "负责人\nOwner"). A blank owner leaves the customer
    unassigned; a customer given two different owners, or an owner without a customer, is refused
    naming its row and column."""
    source = Path(path).name
    frame = _owner_table(Path(path))
    found = {_header_kind(h): h for h in frame.columns if _header_kind(h)}
    missing = [name for name in ("customer", "owner") if name not in found]
    if missing:  # one message for the file: it is not an owners table
        shown = ", ".join(str(h) for h in frame.columns[:8])
        wanted = "; ".join(f"{name} ({OWNERS_HEADERS_SHOWN[name]})" for name in missing)
        raise CrmInputError([Issue(IssueCode.MISSING_COLUMN, f"no {' and no '.join(missing)} column: give {wanted}; "
                                   f"the headers are: {shown} / 缺少客户编码或业务员列", row=1,
                                   column=", ".join(missing), source=source)])
    owners, first_row, issues = {}, {}, []
    for row, code, owner in zip(range(2, len(frame) + 2), frame[found["customer"]], frame[found["owner"]]):
        code_text, owner_text = ("" if is_blank(v) else normalize_text(v) for v in (code, owner))
        if not code_text:
            if owner_text:
                issues.append(Issue(IssueCode.BLANK, f"owner {owner_text!r} has no customer code / 客户编码为空",
                                    row=row, column=str(found["customer"]), source=source))
            continue
        if code_text in owners and owners[code_text] != owner_text:
            issues.append(Issue(IssueCode.DUPLICATE_CUSTOMER, f"customer {code_text!r} is given owner "
                                f"{owners[code_text] or '(none)'!r} on row {first_row[code_text]} and {owner_text or '(none)'!r} "
                                "here / 同一客户有两个业务员", row=row, column=str(found["owner"]), source=source))
            continue
        owners.setdefault(code_text, owner_text)
        first_row.setdefault(code_text, row)
    if issues:
        raise CrmInputError(issues)
    return {code: owner for code, owner in owners.items() if owner}


def _owner_table(path: Path) -> pd.DataFrame:
    """Every column of the owners file as text (the ledger reader keeps only a ledger's columns)."""
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        return read_table(path, sheet=_register_sheet(path))
    path = readable_file(path, "owners file")
    with reading_errors(path):
        check_not_empty(path)
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str,
                           keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=False)


def _register_sheet(path: Path) -> str | None:
    """'Register' for a register workbook (a workbook with that sheet), else the reader's default."""
    if path.suffix.lower() not in (".xlsx", ".xlsm") or not path.is_file():
        return None
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True)
    except Exception:  # noqa: BLE001 - not a workbook openpyxl reads: read_table says why, naming the file
        return None
    try:
        return "Register" if "Register" in book.sheetnames else None
    finally:
        book.close()


def _header_kind(header: object) -> str | None:
    """'customer' or 'owner' for a header naming one ('客户编码\nCode', 'Owner', '业务员'), else None."""
    text = normalize_text(header).lower() if not is_blank(header) else ""
    words = {text, *text.split()}
    if words & CUSTOMER_HEADERS:
        return "customer"
    return "owner" if words & OWNER_HEADERS else None


def cmd_funnel(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    rates = args.rates if args.rates is not None else [policy.funnel_rates[k] for k in FUNNEL_RATE_DEFAULTS]
    plan = funnel_plan(args.target, args.deal, rates)
    print(f"sales funnel / 销售漏斗: target {units(args.target):,.2f}, average deal {units(args.deal):,.2f}, rates "
          + ", ".join(f"{step} {rate:g}" for step, rate in zip(STEP_LABELS, rates)))
    view = pd.DataFrame({"stage / 阶段": plan["stage"], "customers needed / 所需客户数": plan["customers"]})
    print(view.to_string(index=False))
    return EXIT_OK


def _read(args):
    """The policy, the ledger (None when its bad rows refuse it, after saying so) and the as-of date."""
    policy = load_policy(args.policy)
    ledger = _usable_ledger(args, policy)
    if ledger is None:
        return policy, None, None
    as_of = args.as_of if args.as_of is not None else pd.Timestamp(ledger.rows["date"].max())
    return policy, ledger, as_of


def _usable_ledger(args, policy):
    """The ledger with its problems printed, or None when its bad rows refuse it (after saying so)."""
    ledger = read_ledger(args.ledger, policy, sheet=args.sheet)
    if refused_for_bad_rows(ledger, args.skip_bad_rows, "nothing computed / 未计算"):
        return None
    print_issues(ledger.issues)
    return ledger


def _tiers(rows, as_of, customers, policy, args) -> pd.Series:
    return review_tiers(rows, as_of, [c for c in customers if c != TOTAL], policy, args.year)


def _noted(issues, source: str) -> None:
    print_issues([replace(i, source=i.source or source) for i in issues])


def _kpi_view(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The KPI table with its bilingual headers: amounts in currency units, KPIs as floats (NaN: not defined)."""
    label = "customer" if by == "customer" else "tier"
    view = pd.DataFrame({KPI_HEADER[0] if by == "customer" else "tier / 等级": table[label].astype(str)})
    if "customers" in table:
        view[CUSTOMERS_HEADER] = table["customers"].to_numpy()
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
        view[CUSTOMERS_HEADER] = table["customers"].to_numpy()
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
        if column == CUSTOMERS_HEADER:
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
