"""`crm-addin sign-off`, `reallocate`, `verify` and `suggest`: the reallocation workflow on the command line.

`--key-file FILE` (or the file the environment variable CRM_AUDIT_KEY_FILE names) keys the audit
chain: sign-off, reallocate and verify take it; the key never enters the workbook."""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crm_app.cli.main import money_argument
from crm_app.cli.output import (
    EXIT_DIFFERENCES,
    EXIT_INPUT,
    EXIT_OK,
    issues_table,
    print_issues,
    row_text,
)
from crm_app.io.files import atomic_path, csv_safe, read_ledger
from crm_app.register import schema as rs
from crm_app.register.audit import KEY_ENV, read_key
from crm_app.register.load import Approval, load_register, read_request_csv
from crm_app.register.signoff import sign_off
from crm_app.register.standard import Signers, effective_policy
from crm_app.register.workflow import CheckReport, reallocate, suggest_request, verify_report
from crm_app.workbook.stored_values import ledger_is_on_the_sheet
from crm_core.collection import Period
from crm_core.issues import CrmInputError
from crm_core.reallocation import Roles
from crm_core.review import default_year
from crm_core.trends import TwoPeriods, change_text, raise_candidates, raise_evidence, verdict_text
from crm_core.values import units

KEY_HELP = (f"key file of a keyed audit chain (default: the file ${KEY_ENV} names); the key never enters the "
            "workbook / 审计密钥文件")


def add_parser(sub) -> None:
    _add_sign_off(sub)
    _add_reallocate(sub)
    ve = sub.add_parser("verify", help="verify a register: audit chain, sign-off, lines, budget / 校验登记表",
                        description=(
        "Recompute the audit hash chain (HMACs with --key-file), check the signed standard (SignOff sheet, "
        "Policy keys, budget) and every credit line = signed line + changes applied since, the total = budget; "
        "exit 1 when something does not hold, or when a keyed chain could not be checked for want of its key. "
        "/ 校验审计链、签字标准、额度与预算，不符时退出码为1。"))
    ve.add_argument("register", help="register workbook (.xlsx or .xlsm) / 登记表")
    ve.add_argument("--key-file", help=KEY_HELP)
    ve.set_defaults(func=cmd_verify)
    su = sub.add_parser("suggest", help="propose cuts to fund a raise, as a request CSV / 建议调减", description=(
        "Propose credit-line cuts (lines far above use and poor payers first, never below the open balance) "
        "that fund AMOUNT, as a request CSV to edit and pass to reallocate; beside it one page with the raise "
        "evidence from the Ledger sheet (the customer's collection rate and sales in the review year and the year "
        "before), each cut customer's rate and the other raise candidates (printed to the standard error when the "
        "CSV goes to the standard output). / 提出调减建议，生成调整申请CSV，并列出调增依据（本年与上年回款率、销售额）。"))
    su.add_argument("register", help="register workbook (.xlsx or .xlsm) / 登记表")
    su.add_argument("--amount", required=True, type=money_argument,
                    help="amount to fund, e.g. 100000, 1,000.50, 10万 or 1亿 / 需调剂的金额")
    su.add_argument("--exclude", default="", help="customers never to cut, comma separated / 不调减的客户")
    su.add_argument("--for", dest="for_customer", default="",
                    help="customer to raise (adds its line to the request) / 调增的客户")
    su.add_argument("--out", help="request CSV to write (default: print) / 输出CSV文件")
    su.set_defaults(func=cmd_suggest)


def _add_reallocate(sub) -> None:
    re = sub.add_parser("reallocate", help="check and apply a credit reallocation batch / 赊销额度调整", description=(
        "Check a reallocation request (CSV customer,change,reason or 客户编码,调整额,原因) against the register "
        "and, when every check passes, apply it with one audit row per line; nothing is written otherwise. "
        "/ 检查额度调整申请，全部通过后写入登记表并记录审计。"))
    re.add_argument("register", help="register workbook (.xlsx or .xlsm) / 登记表")
    re.add_argument("--request", required=True,
                    help="request CSV with the header customer,change,reason (or 客户编码,调整额,原因) / 调整申请CSV")
    re.add_argument("--requester", default="", help="who asks (sales director) / 申请人")
    re.add_argument("--approver", default="", help="who approves (general manager) / 审批人")
    re.add_argument("--recorder", default="", help="who records (finance) / 记录人")
    re.add_argument("--batch-id", default="", help="batch id (default: from the date and the request) / 批次号")
    re.add_argument("--request-date", help="YYYY-MM-DD (default: today) / 申请日期")
    re.add_argument("--approval-date", help="YYYY-MM-DD (default: today) / 审批日期")
    re.add_argument("--override-reason", default="",
                    help="approver's reason to cut below an open balance / 低于应收余额调减的例外说明")
    re.add_argument("--until", help="YYYY-MM-DD: a temporary batch, reversed by the first write on or after this "
                    "date / 临时调整截止日期")
    re.add_argument("--dry-run", action="store_true", help="check only, write nothing / 仅检查，不写入")
    re.add_argument("--key-file", help=KEY_HELP)
    re.set_defaults(func=cmd_reallocate)


def _add_sign_off(sub) -> None:
    so = sub.add_parser("sign-off", help="record the year's credit standard as signed by CEO, CFO and sales director "
                        "/ 年度额度标准签字确认", description=(
        "Record the register's standard (every Policy key, the budget and how it was computed, the tier split, "
        "every customer's line) as signed by three different people, on the SignOff sheet and as one Audit "
        "entry holding its digest. Once per register and year; a new standard within the year is --amend "
        "--reason. Reallocations are refused until the standard is signed. "
        "/ 记录由 CEO、CFO、销售总监签字确认的年度额度标准；每年一次，年内修订用 --amend。"))
    so.add_argument("register", help="register workbook (.xlsx or .xlsm) / 登记表")
    so.add_argument("--ceo", required=True, help="the CEO who signs / 首席执行官")
    so.add_argument("--cfo", required=True, help="the CFO who signs / 首席财务官")
    so.add_argument("--sales-director", required=True, help="the sales director who signs / 销售总监")
    so.add_argument("--date", help="sign-off date YYYY-MM-DD (default: today; not in the future) / 签字日期")
    so.add_argument("--amend", action="store_true", help="record an amendment of this year's signed standard "
                    "/ 修订本年度标准")
    so.add_argument("--reason", default="", help="why the standard is amended (with --amend) / 修订原因")
    so.add_argument("--key-file", help=KEY_HELP)
    so.set_defaults(func=cmd_sign_off)


def cmd_sign_off(args: argparse.Namespace) -> int:
    outcome = sign_off(args.register, Signers(args.ceo, args.cfo, args.sales_director), args.date,
                       amend=args.amend, reason=args.reason, key=read_key(args.key_file))
    standard = outcome.standard
    for batch in outcome.expired:
        print(f"temporary batch {batch} ended: reversed first as EXPIRE-{batch} / 临时额度已冲回")
    print(f"signed {standard.summary()}: budget {units(standard.budget_cents):,.2f}, policy "
          f"{standard.fingerprint}, {len(standard.lines)} lines, standard sha256:{standard.digest}")
    print(f"register version {outcome.stamp.version}, previous version kept as {Path(args.register).name}.bak "
          "/ 已签字确认")
    return EXIT_OK


def cmd_reallocate(args: argparse.Namespace) -> int:
    request = read_request_csv(args.request)
    approval = Approval(Roles(args.requester, args.approver, args.recorder), args.request_date,
                        args.approval_date, args.override_reason, args.batch_id, args.until)
    outcome = reallocate(args.register, request, approval, dry_run=args.dry_run,
                         key=read_key(args.key_file))  # a changed register: cli.main
    print(render_report(outcome.report))
    if not outcome.report.ok:
        print("nothing written / 未写入", file=sys.stderr)
        return EXIT_INPUT
    if outcome.written:
        print(f"applied batch {outcome.report.batch_id}: register version {outcome.stamp.version}, "
              f"previous version kept as {Path(args.register).name}.bak / 已执行")
    else:
        print("dry run: nothing written / 仅检查")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_report(args.register, read_key(args.key_file))
    print("\n".join(report.notes()))
    problems = report.issues
    if problems:
        print_issues(problems, limit=None, stream=sys.stdout, table=True)
        print(f"register does not verify: {len(problems)} problem(s) / 校验未通过")
        return EXIT_DIFFERENCES
    signed = ", lines match the signed standard and the log" if report.standard else ", lines match the log"
    print(f"register verifies: audit chain intact{signed}, total equals the budget / 校验通过")
    return EXIT_OK


def cmd_suggest(args: argparse.Namespace) -> int:
    """The request CSV, and beside it one page for the CEO: the raise evidence and the cuts. The page
    goes to the standard output with --out, else to the standard error, so the CSV printed stays clean."""
    exclude = [c.strip() for c in args.exclude.split(",") if c.strip()]
    for_customer = args.for_customer.strip()
    lines = suggest_request(args.register, args.amount, exclude, for_customer)
    rows = [[csv_safe(c), f"{units(ch):.2f}", csv_safe(r)]
            for c, ch, r in zip(lines["customer"], lines["change_cents"], lines["reason"])]
    page = suggest_page(lines, for_customer, register_evidence(args.register))
    if args.out:
        with atomic_path(args.out, backup=False) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8-sig") as handle:
                _write_csv(handle, rows)
        print(page)
        print(f"request with {len(rows)} line(s) written to {args.out}; edit it, then run reallocate")
    else:
        _write_csv(sys.stdout, rows)
        print(page, file=sys.stderr)
    return EXIT_OK


@dataclass(frozen=True)
class RegisterEvidence:
    """The raise evidence (crm_core.trends) of a register's customers from its Ledger sheet: the
    review year against the year before; `note` says why there is none."""

    evidence: pd.DataFrame | None
    periods: TwoPeriods | None
    note: str = ""


def register_evidence(path) -> RegisterEvidence:
    """Evidence for the register's review year (About budget_year - 1; else the ledger's last complete
    year) against the year before, from the Ledger sheet under the policy the checks use."""
    loaded = load_register(path, for_writing=False)
    if rs.LEDGER not in loaded.values.sheetnames:
        return RegisterEvidence(None, None, "the register has no Ledger sheet: no raise evidence / 登记表无台账表，无调增依据")
    try:
        ledger_is_on_the_sheet(loaded.values)
    except CrmInputError as exc:
        return RegisterEvidence(None, None, f"{exc.issues[0].message}: no raise evidence here / 无调增依据")
    policy = effective_policy(loaded)
    ledger = read_ledger(path, policy, sheet=rs.LEDGER)
    if ledger.errors:
        return RegisterEvidence(None, None, f"the Ledger sheet has {len(ledger.errors)} bad row(s), first: "
                                f"{ledger.errors[0]}; no raise evidence until they are fixed / 台账有错误行，无调增依据")
    if ledger.rows.empty:
        return RegisterEvidence(None, None, "the Ledger sheet is empty: no raise evidence / 台账为空，无调增依据")
    budget_year = loaded.about.get("budget_year")
    year = (int(budget_year) - 1 if isinstance(budget_year, (int, float)) and not isinstance(budget_year, bool)
            else default_year(ledger.rows))
    periods = TwoPeriods.ending_with(Period.year(year))
    evidence = raise_evidence(ledger.rows, periods, policy)
    in_register = evidence["customer"].isin(set(loaded.register["customer"]))  # only they hold lines to raise
    return RegisterEvidence(evidence[in_register.to_numpy(dtype=bool)].reset_index(drop=True), periods)


def suggest_page(lines: pd.DataFrame, for_customer: str, found: RegisterEvidence, others: int = 10) -> str:
    """One page: the raise asked for and its evidence, the proposed cuts with each customer's rate in
    both years, and the other raise candidates (the first `others`)."""
    if found.evidence is None:
        return "\n".join(["", found.note, "", "proposed cuts / 建议调减:", _cuts_table(lines, None, None)])
    evidence = found.evidence.set_index("customer", drop=False)
    last, this = found.periods.last.start.year, found.periods.this.start.year
    parts = [""]
    if for_customer:
        raise_cents = int(lines["change_cents"].iloc[0])
        parts += [f"raise for {_short(for_customer)}: {_money(raise_cents, True)}, funded by {len(lines) - 1} "
                  f"cut(s) / 调增，由下列调减平衡", _customer_evidence(evidence, for_customer, last, this), ""]
    parts += ["proposed cuts / 建议调减:", _cuts_table(lines, evidence, for_customer, (last, this))]
    candidates = raise_candidates(found.evidence)
    candidates = candidates[candidates["customer"] != for_customer]
    parts += ["", f"{'other ' if for_customer else ''}raise candidates {this} against {last} / 调增候选 "
              f"(rate improved, sales grew / 回款率提高且销售增长): {len(candidates)}"]
    parts += [f"  {_short(c.customer)}: {change_text(c)}" for c in candidates.head(others).itertuples(index=False)]
    if len(candidates) > others:
        parts.append(f"  ... and {len(candidates) - others} more: crm_raise_candidates lists them all / 其余见 crm_raise_candidates")
    return "\n".join(parts)


def _customer_evidence(evidence: pd.DataFrame, customer: str, last: int, this: int) -> str:
    if customer not in evidence.index:
        return f"{_short(customer)} has no ledger rows in {last}-{this}: no evidence / 台账中无该客户记录，无调增依据"
    row = evidence.loc[customer]
    growth = f" ({row['sales_growth']:+.1%})" if not np.isnan(row["sales_growth"]) else ""
    change = f"{row['rate_change'] * 100:+.1f} pts" if not np.isnan(row["rate_change"]) else "-"
    table = pd.DataFrame({"": ["net sales / 净销售额", "collection rate / 回款率"],
                          str(last): [_money(row["sales_last_cents"]), _rate(row["rate_last"])],
                          str(this): [_money(row["sales_this_cents"]), _rate(row["rate_this"])],
                          "change / 变化": [_money(row["sales_change_cents"], True) + growth, change]})
    verdict = verdict_text(next(evidence.loc[[customer]].itertuples(index=False)))
    return f"evidence / 调增依据 ({this} against {last}):\n{table.to_string(index=False)}\n{_short(customer)}: {verdict}"


def _cuts_table(lines: pd.DataFrame, evidence: pd.DataFrame | None, for_customer: str | None,
                years: tuple[int, int] = (0, 0)) -> str:
    """The cuts with each customer's collection rate in both years (when the ledger gives them)."""
    cuts = lines[lines["customer"] != for_customer] if for_customer else lines
    if cuts.empty:
        return "(none)"
    table = pd.DataFrame({"customer": [_short(c) for c in cuts["customer"]],
                          "change": [_money(v, True) for v in cuts["change_cents"]]})
    if evidence is not None:
        known = [c in evidence.index for c in cuts["customer"]]
        for column, name in zip(("rate_last", "rate_this"), (f"rate {years[0]}", f"rate {years[1]}")):
            table[name] = [_rate(evidence.at[c, column]) if k else "-" for c, k in zip(cuts["customer"], known)]
    table["reason"] = [_short(r, 80) for r in cuts["reason"]]
    return table.to_string(index=False)


def _rate(rate: float) -> str:
    return "-" if np.isnan(rate) else f"{rate:.1%}"


def _write_csv(handle, rows) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["customer", "change", "reason"])
    writer.writerows(rows)


def _money(cents: int, signed: bool = False) -> str:
    return f"{units(cents):+,.2f}" if signed else f"{units(cents):,.2f}"


def _short(text: object, limit: int = 40) -> object:
    """A pasted 10,000-character name must not blow the table up: cut it, visibly."""
    return text[:limit] + "…" if isinstance(text, str) and len(text) > limit else text


def render_report(report: CheckReport) -> str:
    """The check table (line, customer, tier, old, change, new, kind, message), tier drift, verdict."""
    m = report.moves
    table = pd.DataFrame({
        "line": [row_text(r) for r in m["row"]], "customer": [_short(c) for c in m["customer"]], "tier": m["tier"],
        "old": [_money(v) for v in m["old_cents"]], "change": [_money(v, True) for v in m["change_cents"]],
        "new": [_money(v) for v in m["new_cents"]], "kind": m["kind"], "message": [_short(t, 200) for t in m["message"]]})
    d = report.tier_drift
    drift = pd.DataFrame({
        "tier": d["tier"], "yearly split": [_money(v) for v in d["allocated_cents"]],
        "before": [_money(v) for v in d["before_cents"]], "after": [_money(v) for v in d["after_cents"]],
        "drift": [_money(v, True) for v in d["drift_cents"]]})
    others = [i for i in report.issues if not (i.row is not None and i.source == report.request_source)]
    until = f", temporary until {report.until}" if report.until else ""
    parts = [f"batch {report.batch_id} ({report.policy_label}{until}), request {report.request_source} "
             "(line = its row in the request)",
             table.to_string(index=False) if len(table) else "(no request lines)",
             "", "tier drift from the yearly split / 各级额度偏离:", drift.to_string(index=False)]
    if report.expiry.batches:
        parts += ["", f"temporary batch(es) {', '.join(report.expiry.batches)} ended: reversed first, as their own "
                  "batch (EXPIRE-...) / 临时额度到期，先行冲回"]
    if others:
        parts += ["", issues_table(others)]
    parts += ["", report.verdict]
    return "\n".join(parts)
