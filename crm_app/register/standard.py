"""The year's signed credit standard (年度赊销额度标准，CEO、CFO、销售总监共同签字确认).

The standard is what the three signers agreed: every policy key and value, the budget and how it
was computed, the split by tier and every customer's yearly line. It lives in two places that
must agree: the SignOff sheet shows it in full, and one Audit entry (batch SIGNOFF-<year>, or
AMEND-<year>-<n> for an amendment) carries the sha256 of its canonical JSON in its reason, so
the chain vouches for the sheet. Once a register is signed, its checks use the signed standard,
not the Policy sheet: a key changed by hand is a difference verify names, never a new rule.

Pure functions over a loaded register, plus the two that write and read the sheet (openpyxl).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Iterable

import pandas as pd
from openpyxl.styles import Font, PatternFill

from crm_app.register.audit import WorkflowCode, customer_entries, standard_year
from crm_app.register.cells import set_text
from crm_app.register.schema import (
    ABOUT,
    AUDIT,
    AUDIT_COLUMNS,
    POLICY,
    REGISTER,
    REGISTER_COLUMNS,
    cents_from_cell,
)
from crm_core.credit import credit_budget_cents
from crm_core.issues import CrmInputError, Issue
from crm_core.policy import Policy
from crm_core.schema import Column
from crm_core.values import normalize_text, parse_date, units

if TYPE_CHECKING:  # load.py imports this module; the loaded register is only a type here
    from crm_app.register.load import LoadedRegister

SIGNOFF = "SignOff"
CREDIT = "Credit"
DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_AUDIT_LABEL = {c.key: c.label for c in AUDIT_COLUMNS}
_LABEL = {c.key: c.label for c in REGISTER_COLUMNS}

# The SignOff sheet's fields: a label in column A, its value in column B (read by label, so
# the rows may move). The three names and the date are also the SignOff macro's form fields.
SIGNER_FIELDS = [
    Column("ceo", "首席执行官", "CEO"),
    Column("cfo", "首席财务官", "CFO"),
    Column("sales_director", "销售总监", "Sales director"),
    Column("signed_on", "签字日期", "Sign-off date", "date"),
    Column("amend_reason", "修订原因", "Amendment reason"),
]
FIELDS = [
    Column("batch_id", "标准编号", "Standard"),
    Column("year", "额度年度", "Budget year", "int"),
    *SIGNER_FIELDS,
    Column("fingerprint", "政策指纹", "Policy fingerprint"),
    Column("budget", "赊销额度预算", "Credit budget", "money"),
    Column("net_sales", "上年净销售额", "Net sales (last year)", "money"),
    Column("credit_ratio", "赊销比例", "Credit ratio", "rate"),
    Column("vat_rate", "增值税率", "VAT rate", "rate"),
    Column("how", "算式", "How"),
    Column("digest", "标准摘要", "Standard sha256"),
]
TIERS_TITLE = "等级划分 Tier split"
POLICY_TITLE = "政策 Policy (as signed)"
LINES_TITLE = "客户年度额度 Signed yearly lines"
SECTION_HEADERS = {
    TIERS_TITLE: ("等级 Tier", "客户数 Customers", "额度合计 Line total"),
    POLICY_TITLE: ("键 Key", "值 Value"),
    LINES_TITLE: ("客户编码 Code", "年度额度 Signed line"),
}
ROLE_NAMES = {"ceo": "CEO", "cfo": "CFO", "sales_director": "销售总监 Sales director"}


# ---- the standard --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signers:
    ceo: str = ""
    cfo: str = ""
    sales_director: str = ""

    def text(self) -> str:
        return f"CEO {self.ceo}, CFO {self.cfo}, 销售总监 Sales director {self.sales_director}"


@dataclass(frozen=True)
class Standard:
    """One signed standard. Money in int cents; policy values and rates as canonical text."""

    batch_id: str
    year: int
    signed_on: date
    signers: Signers
    reason: str
    fingerprint: str
    policy: tuple[tuple[str, str], ...]
    budget_cents: int
    net_sales_cents: int | None
    credit_ratio: str
    vat_rate: str
    tiers: tuple[tuple[str, int, int], ...]
    lines: tuple[tuple[str, int], ...]

    def canonical(self) -> str:
        """The JSON the digest is taken of: every field, in one fixed text form."""
        data = {"standard": self.batch_id, "year": self.year, "signed_on": self.signed_on.isoformat(),
                "ceo": self.signers.ceo, "cfo": self.signers.cfo, "sales_director": self.signers.sales_director,
                "reason": self.reason, "policy_fingerprint": self.fingerprint,
                "policy": [list(p) for p in self.policy], "budget_cents": self.budget_cents,
                "net_sales_cents": self.net_sales_cents, "credit_ratio": self.credit_ratio,
                "vat_rate": self.vat_rate, "tiers": [list(t) for t in self.tiers],
                "lines": [list(x) for x in self.lines]}
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    def signed_policy(self) -> Policy:
        return Policy.from_pairs(self.policy, source=SIGNOFF)

    def line_of(self) -> dict[str, int]:
        return dict(self.lines)

    def how(self) -> str:
        """The budget's computation as the review's summary writes it."""
        if self.net_sales_cents is None or not self.vat_rate:
            return (f"{units(self.budget_cents):,.2f} as the About sheet gives it (no Credit sheet figures) "
                    "/ 预算取自 About 表")
        return (f"{units(self.net_sales_cents):,.2f} x {float(self.credit_ratio):.0%} x "
                f"(1 + {float(self.vat_rate):.0%}) = {units(self.budget_cents):,.2f}")

    def entry_reason(self) -> str:
        kind = "签字确认 sign-off" if self.batch_id.startswith("SIGNOFF-") else "修订 amendment"
        return f"{kind} {self.year} · standard sha256:{self.digest}"

    def summary(self) -> str:
        return f"{self.batch_id}, signed {self.signed_on} by {self.signers.text()}"


def value_text(value: object) -> str:
    """One text form of a policy value or rate, whatever type a spreadsheet gave back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return normalize_text(value)


def policy_pairs(policy: Policy) -> tuple[tuple[str, str], ...]:
    return tuple((key, value_text(value)) for key, value in policy.to_pairs())


def build_standard(loaded: LoadedRegister, batch_id: str, signers: Signers, signed_on: date,
                   reason: str = "") -> Standard:
    """The standard as the register holds it now: its Policy sheet, About budget, Credit figures,
    Register tiers and lines. Raises CrmInputError when the budget's figures do not add up."""
    year = int(standard_year(batch_id))
    budget = cents_from_cell(loaded.about.get("budget"))
    net, ratio, vat = budget_figures(loaded, budget)
    reg = loaded.register
    lines = tuple((c, int(v)) for c, v in zip(reg["customer"], reg["credit_line_cents"].fillna(0)))
    return Standard(batch_id, year, signed_on, signers, normalize_text(reason), loaded.policy.fingerprint,
                    policy_pairs(loaded.policy), int(budget), net, ratio, vat, tier_split(reg), lines)


def tier_split(register: pd.DataFrame) -> tuple[tuple[str, int, int], ...]:
    """Per collection-rate tier: how many customers and the total of their lines."""
    frame = register.assign(tier=register["rate_tier"].map(lambda t: normalize_text(t) or "-"),
                            line=register["credit_line_cents"].fillna(0).astype("int64"))
    grouped = frame.groupby("tier", sort=True)["line"].agg(["count", "sum"])
    return tuple((str(t), int(r["count"]), int(r["sum"])) for t, r in grouped.iterrows())


def budget_figures(loaded: LoadedRegister, budget_cents: int) -> tuple[int | None, str, str]:
    """Net sales, credit ratio and VAT behind the budget, from the Credit sheet's named cells
    when the register has them (the built template does), checked to give the budget."""
    figures = loaded.credit
    ratio = figures.get("BudgetRatio", (None, ""))[0]
    ratio_text = value_text(ratio if isinstance(ratio, (int, float)) else loaded.policy.credit_ratio)
    net, vat = figures.get("NetSalesTotal", (None, ""))[0], figures.get("BudgetVat", (None, ""))[0]
    if not isinstance(net, (int, float)) or not isinstance(vat, (int, float)):
        return None, ratio_text, ""
    net_cents = cents_from_cell(net)
    computed = credit_budget_cents(max(net_cents, 0), float(ratio_text), float(vat))
    if computed != budget_cents:
        where = figures["NetSalesTotal"][1]
        raise CrmInputError([Issue(WorkflowCode.SIGNOFF, f"the Credit sheet's figures give a budget of "
                                   f"{units(computed):,.2f} ({units(net_cents):,.2f} x {float(ratio_text):.0%} x "
                                   f"(1 + {float(vat):.0%})), the About sheet says {units(budget_cents):,.2f}: "
                                   "open the register in Excel and save it (to recalculate), then sign off "
                                   "/ 预算与 Credit 表不符", column=where, source=CREDIT)])
    return net_cents, ratio_text, value_text(vat)


CREDIT_NAMES = ("NetSalesTotal", "BudgetRatio", "BudgetVat")


def credit_figures(values_book) -> dict[str, tuple[object, str]]:
    """The Credit sheet's named figures (cached values) and their cells, where the workbook has them."""
    out: dict[str, tuple[object, str]] = {}
    for name in CREDIT_NAMES:
        defined = values_book.defined_names.get(name)
        for sheet, ref in (defined.destinations if defined is not None else ()):
            if sheet in values_book.sheetnames:
                out[name] = (values_book[sheet][ref.replace("$", "")].value, ref.replace("$", ""))
    return out


# ---- the SignOff sheet ---------------------------------------------------------------------------

TITLE_FONT = Font(bold=True, size=13)
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def write_standard_sheet(book, standard: Standard) -> None:
    """The SignOff sheet, made anew after the Audit sheet: fields, tier split, policy, lines."""
    index = book.sheetnames.index(AUDIT) + 1 if AUDIT in book.sheetnames else len(book.sheetnames)
    if SIGNOFF in book.sheetnames:
        index = book.sheetnames.index(SIGNOFF)
        book.remove(book[SIGNOFF])
    ws = book.create_sheet(SIGNOFF, index)
    _put(ws, 1, ["年度赊销额度标准签字确认 Yearly credit standard, signed"], font=TITLE_FONT)
    _put(ws, 2, ["由 crm-addin sign-off / SignOff 写入，请勿修改：verify 以审计链中的摘要核对本表 / Written by "
                 "crm-addin sign-off; do not edit: verify checks this sheet against the digest in the Audit chain"])
    row = 4
    for col, value in zip(FIELDS, _field_values(standard)):
        _put(ws, row, [col.label, value], formats={1: _format(col)})
        ws.cell(row=row, column=1).font = BOLD
        row += 1
    row = _section(ws, row + 1, TIERS_TITLE, [(t, n, units(c)) for t, n, c in standard.tiers], {2: "#,##0.00"})
    row = _section(ws, row + 1, POLICY_TITLE, [(k, _policy_cell(v)) for k, v in standard.policy], {})
    _section(ws, row + 1, LINES_TITLE, [(c, units(v)) for c, v in standard.lines], {1: "#,##0.00"})
    _fit(ws, standard)
    ws.protection.sheet = True  # like the other sheets: against slips; verify guards against people


def _field_values(s: Standard) -> list[object]:
    net = units(s.net_sales_cents) if s.net_sales_cents is not None else None
    vat = float(s.vat_rate) if s.vat_rate else None
    return [s.batch_id, s.year, s.signers.ceo, s.signers.cfo, s.signers.sales_director,
            datetime(s.signed_on.year, s.signed_on.month, s.signed_on.day), s.reason, s.fingerprint,
            units(s.budget_cents), net, float(s.credit_ratio), vat, s.how(), s.digest]


def _format(col: Column) -> str | None:
    return {"money": "#,##0.00", "rate": "0.00%", "date": "yyyy-mm-dd", "int": "0"}.get(col.kind)


def _policy_cell(text: str) -> object:
    """The signed value as the Policy sheet holds it: numbers as numbers, flags as TRUE/FALSE."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def _put(ws, row: int, values: Iterable[object], font: Font | None = None,
         formats: dict[int, str | None] | None = None) -> None:
    for k, value in enumerate(values):
        cell = ws.cell(row=row, column=k + 1)
        set_text(cell, value)
        fmt = (formats or {}).get(k)
        if fmt:
            cell.number_format = fmt
        if font is not None:
            cell.font = font


def _section(ws, row: int, title: str, rows: list[tuple], formats: dict[int, str]) -> int:
    """A titled table; returns the row after it. Readers find it by its title."""
    _put(ws, row, [title], font=BOLD)
    _put(ws, row + 1, SECTION_HEADERS[title], font=BOLD)
    for k in range(len(SECTION_HEADERS[title])):
        ws.cell(row=row + 1, column=k + 1).fill = HEADER_FILL
    for r, values in enumerate(rows, start=row + 2):
        _put(ws, r, values, formats=formats)
    return row + 2 + len(rows)


def _fit(ws, standard: Standard) -> None:
    longest_key = max([len(k) for k, _ in standard.policy] + [len(c) for c, _ in standard.lines] + [24])
    ws.column_dimensions["A"].width = min(60, longest_key + 4)
    ws.column_dimensions["B"].width = max(24, min(70, len(standard.how()) + 2), len(standard.signers.ceo) + 4)
    ws.column_dimensions["C"].width = 18


def read_standard_sheet(ws) -> tuple[Standard | None, list[Issue]]:
    """The SignOff sheet back as a Standard (None and the reasons when it cannot be read)."""
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    fields = _read_fields(grid)
    sections = _read_sections(grid)
    try:
        return _standard_from(fields, sections), []
    except (ValueError, TypeError, KeyError, CrmInputError) as exc:
        detail = "; ".join(str(i) for i in exc.issues[:3]) if isinstance(exc, CrmInputError) else str(exc)
        return None, [Issue(WorkflowCode.SIGNOFF_TAMPERED, f"the SignOff sheet cannot be read as a signed standard "
                            f"({detail}): it was edited / 签字确认表被修改", source=SIGNOFF)]


def _read_fields(grid: list[list[object]]) -> dict[str, object]:
    labels = {normalize_text(c.label).lower(): c.key for c in FIELDS}
    fields: dict[str, object] = {}
    for values in grid:
        key = labels.get(normalize_text(values[0]).lower()) if values and isinstance(values[0], str) else None
        if key and key not in fields:
            fields[key] = values[1] if len(values) > 1 else None
    return fields


def _read_sections(grid: list[list[object]]) -> dict[str, list[list[object]]]:
    """Rows of each titled table, from below its header row to the first blank row."""
    sections: dict[str, list[list[object]]] = {}
    current = None
    for values in grid:
        first = normalize_text(values[0]) if values else ""
        if first in SECTION_HEADERS:
            current, sections[first] = first, []
        elif current and not first:
            current = None
        elif current and first != normalize_text(SECTION_HEADERS[current][0]):
            sections[current].append(list(values) + [None] * 3)
    return sections


def _standard_from(fields: dict[str, object], sections: dict[str, list[list[object]]]) -> Standard:
    policy = Policy.from_pairs([(r[0], r[1]) for r in sections[POLICY_TITLE]], source=SIGNOFF)
    net = cents_from_cell(fields.get("net_sales"))
    vat = fields.get("vat_rate")
    batch_id = normalize_text(fields["batch_id"])
    if standard_year(batch_id) is None:
        raise ValueError(f"standard {batch_id!r} is not SIGNOFF-<year> or AMEND-<year>-<n>")
    return Standard(
        batch_id=batch_id, year=int(fields["year"]), signed_on=parse_date(fields["signed_on"]).date(),
        signers=Signers(*(normalize_text(fields.get(k)) for k in ("ceo", "cfo", "sales_director"))),
        reason=normalize_text(fields.get("amend_reason")), fingerprint=normalize_text(fields.get("fingerprint")),
        policy=policy_pairs(policy), budget_cents=int(cents_from_cell(fields["budget"])), net_sales_cents=net,
        credit_ratio=value_text(fields["credit_ratio"]), vat_rate=value_text(vat) if vat is not None else "",
        tiers=tuple((normalize_text(t), int(n), int(cents_from_cell(c))) for t, n, c, *_ in sections[TIERS_TITLE]),
        lines=tuple((normalize_text(c), int(cents_from_cell(v))) for c, v, *_ in sections[LINES_TITLE]))


# ---- the standard in the chain -------------------------------------------------------------------

def standard_entries(audit: pd.DataFrame) -> pd.DataFrame:
    """The sign-off and amendment entries, in chain order."""
    if not len(audit):
        return audit
    return audit.loc[[standard_year(b) is not None for b in audit["batch_id"]]]


def is_signed(loaded: LoadedRegister) -> bool:
    return loaded.has_signoff_sheet or len(standard_entries(loaded.audit)) > 0


def effective_policy(loaded: LoadedRegister) -> Policy:
    """The policy the checks use: the signed one once there is a readable standard."""
    if loaded.signed is None:
        return loaded.policy
    try:
        return loaded.signed.signed_policy()
    except CrmInputError:
        return loaded.policy  # the sheet's unreadable policy is reported by standard_issues


def entry_digest(reason: object) -> str:
    match = DIGEST.search(normalize_text(reason))
    return match.group(1) if match else ""


def standard_issues(loaded: LoadedRegister, policy: bool = True) -> list[Issue]:
    """Everything that does not agree with the signed standard: the standard itself (SignOff
    sheet against its Audit entry), then Policy (unless not `policy`: an amendment adopts the
    Policy sheet), budget and lines against the standard."""
    entries = standard_entries(loaded.audit)
    if not len(entries) and not loaded.has_signoff_sheet:
        return []
    integrity = _integrity_issues(loaded, entries)
    if loaded.signed is None:
        return integrity
    return integrity + differences(loaded, loaded.signed, _standard_row(loaded, entries), policy)


def _standard_row(loaded: LoadedRegister, entries: pd.DataFrame) -> int | None:
    """The Audit row of the entry the sheet's standard belongs to (the latest one of its id)."""
    if loaded.signed is None or not len(entries):
        return None
    same = entries.loc[entries["batch_id"] == loaded.signed.batch_id, "row"]
    return int(same.iloc[-1]) if len(same) else int(entries["row"].iloc[-1])


def _integrity_issues(loaded: LoadedRegister, entries: pd.DataFrame) -> list[Issue]:
    sheet = loaded.signed
    if not len(entries):
        year = f"the {sheet.year} standard" if sheet else "a standard"
        return [_tampered(f"the SignOff sheet holds {year} but the Audit chain has no sign-off entry: it was "
                          "deleted / 审计链中的签字记录被删除", source=SIGNOFF)]
    latest = entries.iloc[-1].to_dict()
    if not loaded.has_signoff_sheet:
        return [_tampered(f"the Audit entry {latest['batch_id']} records a signed standard but the workbook has no "
                          "SignOff sheet: it was deleted / 签字确认表被删除", row=latest["row"], source=AUDIT)]
    if sheet is None:
        return []  # unreadable: said by read_standard_sheet
    issues = _entry_vs_sheet(latest, sheet)
    year = _about_year(loaded)
    if year is not None and year != sheet.year:
        issues.append(Issue(WorkflowCode.SIGNOFF_TAMPERED, f"the signed standard is for {sheet.year}, the register's "
                            f"budget year is {year}: sign off {year} / 签字年度与额度年度不符",
                            row=loaded.about_rows.get("budget_year"), column="B", source=ABOUT))
    return issues


def _entry_vs_sheet(entry: dict, sheet: Standard) -> list[Issue]:
    """The newest sign-off entry and the sheet: same standard, same year, same digest and signers."""
    row, batch = entry["row"], normalize_text(entry["batch_id"])
    if standard_year(batch) != sheet.year:
        return [_tampered(f"the SignOff sheet is the {sheet.year} standard but its Audit entry {batch} is for "
                          f"{standard_year(batch)}: the entry was moved to another year / 签字记录年度被修改",
                          row=row, column=_AUDIT_LABEL["batch_id"], source=AUDIT)]
    if batch != sheet.batch_id:
        return [_tampered(f"the SignOff sheet is {sheet.batch_id} but the newest sign-off entry is {batch}: a "
                          "sign-off entry was deleted or added / 签字记录不符", row=row,
                          column=_AUDIT_LABEL["batch_id"], source=AUDIT)]
    issues = []
    if entry_digest(entry["reason"]) != sheet.digest:
        issues.append(_tampered(f"the SignOff sheet no longer matches the digest in its Audit entry (row {row}): "
                                "the sheet was edited / 签字确认表被修改", source=SIGNOFF))
    recorded = (normalize_text(entry["requester"]), normalize_text(entry["approver"]),
                normalize_text(entry["recorder"]))
    if recorded != (sheet.signers.ceo, sheet.signers.cfo, sheet.signers.sales_director):
        issues.append(_tampered(f"the Audit entry's signers {' / '.join(recorded)} are not the SignOff sheet's "
                                f"({sheet.signers.text()}) / 签字人不符", row=row,
                                column=_AUDIT_LABEL["requester"], source=AUDIT))
    if entry.get("new_line_cents") != sheet.budget_cents:
        issues.append(_tampered("the Audit entry's budget is not the SignOff sheet's / 签字预算不符", row=row,
                                column=_AUDIT_LABEL["new_line"], source=AUDIT))
    return issues


def _about_year(loaded: LoadedRegister) -> int | None:
    try:
        return int(str(loaded.about.get("budget_year")).strip())
    except ValueError:
        return None


def _tampered(message: str, row: int | None = None, column: str | None = None, source: str = SIGNOFF) -> Issue:
    return Issue(WorkflowCode.SIGNOFF_TAMPERED, message, row=row, column=column, source=source)


# ---- differences from the standard ---------------------------------------------------------------

def differences(loaded: LoadedRegister, standard: Standard, standard_row: int | None,
                policy: bool = True) -> list[Issue]:
    """Each Policy key, the budget and each line that is not what the standard and the batches
    applied since make it: key (or customer), signed value, value found."""
    return ((_policy_differences(loaded, standard) if policy else []) + _budget_difference(loaded, standard)
            + signed_line_issues(loaded.register, loaded.audit, standard, standard_row))


def _policy_differences(loaded: LoadedRegister, standard: Standard) -> list[Issue]:
    if any(i.source == POLICY for i in loaded.issues):
        return []  # an unreadable Policy sheet is reported as such, not as every key differing
    signed = _signed_pairs(standard)
    found = dict(policy_pairs(loaded.policy))
    issues = []
    for key in list(signed) + [k for k in found if k not in signed]:
        if signed.get(key) != found.get(key):
            issues.append(Issue(WorkflowCode.STANDARD_CHANGED,
                                f"policy {key}: signed {signed.get(key, '(absent)')}, found "
                                f"{found.get(key, '(absent)')}; the checks use the signed value (change it with "
                                "sign-off --amend) / 政策与签字标准不符", row=loaded.policy_rows.get(key),
                                column="B", source=POLICY))
    return issues


def _signed_pairs(standard: Standard) -> dict[str, str]:
    """The signed policy key by key. A key a later crm-addin added (absent from a standard signed
    before it) takes its default, as the checks read the signed policy: not a difference unless
    the Policy sheet gives it another value."""
    try:
        return {**dict(policy_pairs(standard.signed_policy())), **dict(standard.policy)}
    except CrmInputError:
        return dict(standard.policy)  # unreadable: compared as recorded


def _budget_difference(loaded: LoadedRegister, standard: Standard) -> list[Issue]:
    try:
        budget = cents_from_cell(loaded.about.get("budget"))
    except ValueError:
        return []  # said by the budget check
    if budget is None or budget == standard.budget_cents:
        return []
    return [Issue(WorkflowCode.STANDARD_CHANGED, f"budget: signed {units(standard.budget_cents):,.2f}, found "
                  f"{units(budget):,.2f} / 预算与签字标准不符", row=loaded.about_rows.get("budget"), column="B",
                  source=ABOUT)]


def signed_line_issues(register: pd.DataFrame, audit: pd.DataFrame, standard: Standard,
                       standard_row: int | None) -> list[Issue]:
    """Every line = its signed line + the changes applied after the sign-off, and every yearly
    allocation = the signed line - the changes applied before it."""
    moves = customer_entries(audit)
    cut = standard_row if standard_row is not None else 0
    after = moves.loc[moves["row"] > cut].groupby("customer")["change_cents"].sum() if len(moves) else {}
    before = moves.loc[moves["row"] < cut].groupby("customer")["change_cents"].sum() if len(moves) else {}
    signed = standard.line_of()
    issues = []
    for rec in register.drop_duplicates("customer").to_dict("records"):
        issues += _customer_issues(rec, signed, after, before)
    known = set(register["customer"])
    issues += [Issue(WorkflowCode.STANDARD_CHANGED, f"{c}: signed line {units(v):,.2f}, but the customer is not in "
                     "the Register / 已签字客户不在登记表", column=_LABEL["customer"], source=REGISTER)
               for c, v in signed.items() if c not in known]
    return issues


def _customer_issues(rec: dict, signed: dict[str, int], after, before) -> list[Issue]:
    customer, row = rec["customer"], rec["row"]
    if customer not in signed:
        return [Issue(WorkflowCode.STANDARD_CHANGED, f"{customer}: not in the signed standard (a line added after "
                      "the sign-off) / 客户不在签字标准中", row=row, column=_LABEL["customer"], source=REGISTER)]
    issues = []
    line, allocated, base = rec["credit_line_cents"], rec["allocated_line_cents"], signed[customer]
    expected = base + int(after.get(customer, 0))
    if not _missing(line) and int(line) != expected:
        issues.append(Issue(WorkflowCode.LINE_MISMATCH, f"{customer}: credit line {units(int(line)):,.2f} is not the "
                            f"signed line {units(base):,.2f} plus the changes applied since "
                            f"({units(expected):,.2f}) / 额度与签字标准及审计记录不符", row=row,
                            column=_LABEL["credit_line"], source=REGISTER))
    expected = base - int(before.get(customer, 0))
    if not _missing(allocated) and int(allocated) != expected:
        issues.append(Issue(WorkflowCode.LINE_MISMATCH, f"{customer}: yearly allocation {units(int(allocated)):,.2f} "
                            f"is not the signed line {units(base):,.2f} less the changes applied before the sign-off "
                            f"({units(expected):,.2f}) / 年度分配与签字标准不符", row=row,
                            column=_LABEL["allocated_line"], source=REGISTER))
    return issues


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)
