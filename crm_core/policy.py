"""The rules a finance team sets once a year, as data: VAT by date, credit ratio, tier cut-offs...

A policy has one flat key/value form (``credit_ratio = 0.2``, ``vat.2019-04-01 = 0.13``,
``rate_cutoff.A = 0.95``) used by the Policy sheet of a workbook; the TOML file form uses the
same keys grouped in sections. Every result names the policy that produced it (`Policy.label`).
Rates and shares are fractions (0.2, or the text '20%'); a number above 1 such as 20 is refused
with a message naming its key, never read as a percent (see `fraction_problem`).
"""
from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .issues import CrmInputError, Issue, IssueCode
from .values import parse_money_cents, units

# The dates an ageing may count days from (policy `aging_basis`).
AGING_BASES = ("due_date", "document_date")
KPI_MONTHS_LIMIT = 120  # ten years of monthly sales: beyond that a KPI period is surely a typing slip

# The funnel's promotion steps as policy keys (funnel_rate.E_D ... funnel_rate.B_A), widest first,
# with 003's example rates (E->D 0.5, D->C 0.25, C->B 0.5, B->A 0.5).
FUNNEL_RATE_DEFAULTS = {"E_D": 0.5, "D_C": 0.25, "C_B": 0.5, "B_A": 0.5}

# Sections whose keys are labels (tier letters, dates) rather than field names.
_MAPS = {
    "vat": "vat_table",
    "rate_cutoff": "rate_cutoffs",
    "rank_share": "rank_shares",
    "pareto_cutoff": "pareto_cutoffs",
    "tier_weight": "tier_weights",
    "stage_months": "stage_months",
    "follow_up_days": "follow_up_days",
    "aging_bucket": "aging_buckets",
    "funnel_rate": "funnel_rates",
    "service_response_days": "service_response_days",
    "service_resolve_days": "service_resolve_days",
}


@dataclass(frozen=True)
class Policy:
    """Defaults follow the reference case (../docs in README): MM's 2010 rules."""

    name: str = "default"
    # VAT rate in force from each date (applied by invoice date).
    vat_table: Mapping[str, float] = field(default_factory=lambda: {
        "1994-01-01": 0.17, "2018-05-01": 0.16, "2019-04-01": 0.13})
    credit_ratio: float = 0.20
    tier_mode: str = "cutoff"  # or "rank"
    rate_cutoffs: Mapping[str, float] = field(default_factory=lambda: {"A": 0.95, "B": 0.85, "C": 0.70})
    lowest_tier: str = "D"
    unrated_label: str = "unrated"
    rank_shares: Mapping[str, float] = field(default_factory=lambda: {"A": 0.2, "B": 0.3, "C": 0.3, "D": 0.2})
    pareto_cutoffs: Mapping[str, float] = field(default_factory=lambda: {"A": 0.70, "B": 0.90})
    pareto_rest: str = "C"
    tier_weights: Mapping[str, float] = field(default_factory=lambda: {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0})
    credit_rounding: float = 1.0  # credit lines are whole multiples of this many currency units
    stage_months: Mapping[str, float] = field(default_factory=lambda: {"A": 1.0, "B": 3.0, "C": 6.0})
    follow_up_days: Mapping[str, float] = field(default_factory=lambda: {"A": 1.0, "B": 7.0, "C": 15.0, "D": 30.0})
    aging_buckets: Mapping[str, float] = field(default_factory=lambda: {"1-30": 30.0, "31-60": 60.0, "61-90": 90.0})
    payment_terms_days: int = 30  # due date when the ledger gives none
    reallocations_per_quarter: int = 1
    cut_below_balance: str = "forbid"  # or "allow", or "override" (approver may override with a reason)
    distinct_roles: bool = True
    negative_amounts: str = "reject"  # or "allow" (negative invoice = red invoice, negative receipt = refund)
    # suggested cuts name a line used less than this share "little used", a rate below this "low"
    cut_low_use: float = 0.5
    cut_low_rate: float = 0.85
    overlap_top_n: int = 100  # the debtor overlap compares the top N debtors with the top N customers
    aging_basis: str = "due_date"  # or "document_date": the date an ageing counts days from
    kpi_months: int = 12  # receivables KPIs: months of credit sales up to the as-of date
    # raise candidates: the rate must rise by more than this (rate points), sales grow by more than this share
    raise_rate_gain: float = 0.0
    raise_sales_growth: float = 0.0
    long_standing_years: int = 3  # customers trading this many years or more (from their first trade)
    # recency: no invoice for more than this many days is sleeping, for more than lost_after_days lost
    sleeping_after_days: int = 90
    lost_after_days: int = 365
    commission_rate: float = 0.02  # commission on collection: share of net sales (003's 2%)
    # the funnel's promotion rates when no earlier stage snapshot measures them (003's example)
    funnel_rates: Mapping[str, float] = field(default_factory=lambda: dict(FUNNEL_RATE_DEFAULTS))
    # service levels per stage tier: days to respond to and to resolve a case (000: 一天以內響應)
    service_response_days: Mapping[str, float] = field(default_factory=lambda: {
        "A": 1.0, "B": 2.0, "C": 3.0, "D": 5.0, "E": 5.0})
    service_resolve_days: Mapping[str, float] = field(default_factory=lambda: {
        "A": 3.0, "B": 5.0, "C": 7.0, "D": 10.0, "E": 15.0})

    # ---- derived views -------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{k}={v}" for k, v in self.to_pairs())
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def label(self) -> str:
        """What results record about the policy that made them, e.g. 'default@1a2b3c4d'."""
        return f"{self.name}@{self.fingerprint}"

    def vat_rates(self, dates: np.ndarray | pd.Series) -> np.ndarray:
        """VAT rate in force on each date (vectorized)."""
        starts = np.array(sorted(self.vat_table), dtype="datetime64[ns]")
        rates = np.array([self.vat_table[k] for k in sorted(self.vat_table)], dtype="float64")
        days = np.asarray(dates, dtype="datetime64[ns]")
        idx = np.searchsorted(starts, days, side="right") - 1
        return np.where(idx >= 0, rates[np.clip(idx, 0, None)], rates[0])

    def vat_rate_on(self, day: str | pd.Timestamp) -> float:
        return float(self.vat_rates(np.array([pd.Timestamp(day).to_datetime64()]))[0])

    @property
    def credit_unit_cents(self) -> int:
        """`credit_rounding` in integer cents (1.0 -> 100): the unit credit lines are multiples of."""
        return parse_money_cents(self.credit_rounding)

    def rate_tier_labels(self) -> list[str]:
        return sorted(self.rate_cutoffs, key=lambda t: -self.rate_cutoffs[t]) + [self.lowest_tier]

    def with_values(self, **changes: object) -> "Policy":
        return replace(self, **changes)

    # ---- flat form -----------------------------------------------------------------
    def to_pairs(self) -> list[tuple[str, object]]:
        pairs: list[tuple[str, object]] = []
        for name in _SCALARS:
            pairs.append((name, getattr(self, name)))
        for prefix, attr in _MAPS.items():
            for key, value in getattr(self, attr).items():
                pairs.append((f"{prefix}.{key}", value))
        return pairs

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[object, object]], source: str = "policy",
                   base: "Policy | None" = None) -> "Policy":
        """Build from key/value rows (a Policy sheet, a TOML file flattened). Unknown keys are errors.

        A section given at all replaces the default section as a whole, so that removing a
        tier from the sheet really removes it.
        """
        base = base or cls()
        scalars: dict[str, object] = {}
        maps: dict[str, dict[str, object]] = {}
        issues: list[Issue] = []
        for n, (key, value) in enumerate(pairs, start=1):
            key = str(key).strip() if key is not None else ""
            if not key or key.startswith("#"):
                continue
            _place(key, value, n, source, scalars, maps, issues)
        values = {**scalars, **{attr: m for attr, m in maps.items()}}
        if issues:
            raise CrmInputError(issues)
        policy = replace(base, **_coerce(values, source))
        policy.validate(source)
        return policy

    def validate(self, source: str = "policy") -> None:
        problems = list(_policy_problems(self))
        if problems:
            raise CrmInputError([Issue(IssueCode.BAD_POLICY, p, source=source) for p in problems])

    # ---- files -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CrmInputError([Issue(IssueCode.BAD_POLICY, f"cannot read policy: {exc}", source=str(path))]) from exc
        return cls.from_pairs(_flatten(data), source=str(path))

    def to_toml(self) -> str:
        """The policy as a TOML file, each key with its meaning (KEY_NOTES) as a comment above it."""
        lines = ["# crm-addin policy (政策). Keys and defaults are documented in README.md.", ""]
        for name in _SCALARS:
            lines.append(f"# {KEY_NOTES[name]}")
            lines.append(f"{name} = {_toml_value(getattr(self, name))}")
        for prefix, attr in _MAPS.items():
            lines += ["", f"# {KEY_NOTES[prefix]}", f"[{prefix}]"]
            lines += [f'"{k}" = {_toml_value(v)}' for k, v in getattr(self, attr).items()]
        return "\n".join(lines) + "\n"


_SCALARS = ["name", "credit_ratio", "tier_mode", "lowest_tier", "unrated_label", "pareto_rest",
            "credit_rounding", "payment_terms_days", "reallocations_per_quarter",
            "cut_below_balance", "distinct_roles", "negative_amounts", "cut_low_use", "cut_low_rate",
            "overlap_top_n", "raise_rate_gain", "raise_sales_growth", "long_standing_years",
            "sleeping_after_days", "lost_after_days", "aging_basis", "kpi_months", "commission_rate"]
# What each key (and section) means, in both languages: the comments `to_toml` writes (the shipped
# default_policy.toml is Policy().to_toml(), so `crm-addin policy` shows them too).
KEY_NOTES = {
    "name": "name recorded with every result as name@fingerprint / 政策名称，记录在每个结果中",
    "credit_ratio": "credit budget = last year's net sales x ratio x (1 + VAT) / 赊销额度预算 = 上年净销售额 x 比例 x (1+增值税率)",
    "tier_mode": "cutoff (collection-rate thresholds) or rank (shares of customers) / 分级方式：cutoff 按回款率标准，rank 按排名比例",
    "lowest_tier": "tier below the last cut-off / 低于最低标准的等级",
    "unrated_label": "tier of customers without sales in the period / 期内无销售客户的等级",
    "pareto_rest": "Pareto tier after the last cut-off / 帕累托末级",
    "credit_rounding": "credit lines are whole multiples of this amount / 额度取整单位（金额）",
    "payment_terms_days": "days to the due date when the ledger gives none / 台账无到期日时的账期天数",
    "reallocations_per_quarter": "applied reallocation batches allowed per quarter / 每季度允许的额度调整批次",
    "cut_below_balance": "forbid, allow, or override (the approver may, with a reason) a line cut below the open "
                         "balance / 调减额度低于应收余额：forbid 禁止，allow 允许，override 审批人说明理由后允许",
    "distinct_roles": "requester, approver and recorder must be different people / 申请人、审批人、记录人须为不同的人",
    "negative_amounts": "reject negative invoices and receipts, or allow them (red invoice, refund) / "
                        "负数发票和回款：reject 拒绝，allow 允许（红字发票、退款）",
    "cut_low_use": "suggested cuts: a line used less than this share is named little used / "
                   "建议调减：额度使用率低于此比例时注明“额度使用率低”",
    "cut_low_rate": "suggested cuts: a collection rate below this is named low / 建议调减：回款率低于此值时注明“回款率低”",
    "overlap_top_n": "debtor overlap: how many top debtors are compared with as many top customers by sales / "
                     "欠款重叠分析：比较前 N 大欠款客户与前 N 大销售客户",
    "aging_basis": "ageing counts days past the due date (due_date) or since the document date (document_date) / "
                   "账龄起算：due_date 按到期日（逾期天数），document_date 按单据日期",
    "kpi_months": "receivables KPIs (DSO, CEI...): months of credit sales up to the as-of date / "
                  "应收指标（DSO、CEI 等）统计截止日前的月数",
    "raise_rate_gain": "raise candidates: the collection rate must rise by more than this (0.05 = 5 points) / "
                       "调增候选：回款率须提高超过此值（0.05 = 5 个百分点）",
    "raise_sales_growth": "raise candidates: sales must grow by more than this share of last year's (0.1 = 10%) / "
                          "调增候选：销售额须比上年增长超过此比例（0.1 = 10%）",
    "long_standing_years": "customers trading this many years or more since their first trade are long-standing / "
                           "自首次交易起满此年数的客户为老客户",
    "sleeping_after_days": "a customer without an invoice for more than this many days is sleeping / "
                           "超过此天数无发票（购货）的客户为沉睡客户",
    "lost_after_days": "a customer without an invoice for more than this many days is lost / "
                       "超过此天数无发票（购货）的客户为流失客户",
    "commission_rate": "commission on collection: share of net sales earned, paid as collected net of VAT, "
                       "clawed back on write-offs / 销售提成比例：按净销售额计提，回款（不含税）后兑现，坏账核销时扣回",
    "vat": "VAT rate in force from each date / 各日期起适用的增值税率",
    "rate_cutoff": "lowest collection rate of each tier, inclusive / 各等级回款率下限（含）",
    "rank_share": "shares of customers by rank in rank mode, adding up to 1 / 排名分级时各级客户占比，合计为 1",
    "pareto_cutoff": "cumulative sales share where each Pareto tier ends / 帕累托各级累计销售占比上限",
    "tier_weight": "weight of a tier's sales in the credit split; 0 = cash on delivery / 额度分配权重，0 = 现款现货",
    "stage_months": "sales-stage horizon of each tier in months (D beyond, E no need) / 销售阶段各级成交期限（月）",
    "follow_up_days": "follow-up cadence of each stage tier in days (E none) / 各阶段等级的跟进周期（天）",
    "aging_bucket": "upper days of each ageing bucket, past due or since the document date (aging_basis); any "
                    "number of buckets, the last open-ended / 账龄区间天数上限（逾期天数或单据天数），区间数不限",
    "funnel_rate": "funnel promotion rates E->D, D->C, C->B, B->A used where no earlier stage snapshot measures "
                   "them, each above 0 and at most 1 / 销售漏斗各级晋级率（无上期阶段记录时使用），大于 0 且不超过 1",
    "service_response_days": "service level: days to respond to a complaint or request, by the customer's stage "
                             "tier (A 1 = within a day) / 服务响应时限（天），按客户阶段等级（A 级一天以内响应）",
    "service_resolve_days": "service level: days to resolve a complaint or request, by the customer's stage tier / "
                            "服务解决时限（天），按客户阶段等级",
}
_CHOICES = {"tier_mode": {"cutoff", "rank"}, "cut_below_balance": {"forbid", "allow", "override"},
            "negative_amounts": {"reject", "allow"}, "aging_basis": set(AGING_BASES)}


def default_policy() -> Policy:
    """The shipped default file (crm_core/default_policy.toml), which equals Policy()."""
    text = resources.files(__package__).joinpath("default_policy.toml").read_text(encoding="utf-8")
    return Policy.from_pairs(_flatten(tomllib.loads(text)), source="default_policy.toml")


# ---- rates and shares: one rule for the whole product ---------------------------------
SHARES_TOLERANCE = 1e-9  # rank shares must add up to 1 within this


def fraction_problem(name: str, value: float, below_one: bool = False) -> str | None:
    """Why `value` cannot be the rate or share `name`, or None when it can.

    Every rate in the product (tier cut-offs, Pareto cut-offs, rank shares, the credit ratio,
    VAT) is a fraction from 0 to 1, and a number above 1 is refused, never read as a percent:
    no reading is safe for everyone (1 is 100% as a cut-off but 1% as a VAT rate, collection
    rates run above 100%, a wrong guess on the credit ratio moves the budget a hundredfold),
    while in Excel 95% already is 0.95. `below_one`: 1 itself is refused too (VAT: 100% VAT
    does not exist, so a 1 there meant 1%).
    """
    if math.isnan(value):
        return f"{name} is blank / 未填写"
    if math.isinf(value):
        return f"{name}: {value} is not a finite number / 不是有效数字"
    if value < 0:
        return f"{name}: {value:g} is below 0 / 不能小于 0"
    if value > 1 or (below_one and value == 1):
        return (f"{name}: {value:g} is {'above' if value > 1 else 'not below'} 1; write {value:g}% "
                f"or {value / 100:g} / 比率应写作 {value:g}% 或 {value / 100:g}")
    return None


def require_fractions(name: str, values: Iterable[float], below_one: bool = False) -> None:
    """Refuse the rates or shares `values` of the argument `name` that break `fraction_problem`,
    one issue each, all at once."""
    problems = [p for v in values if (p := fraction_problem(name, float(v), below_one))]
    if problems:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, p, column=name) for p in problems])


def require_shares(name: str, shares: Sequence[float]) -> None:
    """Rank shares are fractions adding up to 1 (0.2;0.3;0.3;0.2): a shortfall or excess would
    silently make the last tier bigger or empty."""
    require_fractions(name, shares)
    total = float(sum(shares))
    if abs(total - 1) > SHARES_TOLERANCE:
        raise CrmInputError([Issue(IssueCode.BAD_NUMBER, f"{name}: the shares add up to {total:g}, "
                                   "not 1 (100%) / 各级占比之和应为 100%", column=name)])


def _place(key, value, n, source, scalars, maps, issues) -> None:
    prefix, _, sub = key.partition(".")
    if sub and prefix in _MAPS:
        maps.setdefault(_MAPS[prefix], {})[sub.strip()] = value
    elif not sub and key in _SCALARS:
        scalars[key] = value
    else:
        issues.append(Issue(IssueCode.BAD_POLICY, f"unknown policy key {key!r}", row=n, column="key",
                            source=source))


def _coerce(values: dict[str, object], source: str) -> dict[str, object]:
    out: dict[str, object] = {}
    issues: list[Issue] = []
    for name, value in values.items():
        try:
            out[name] = _coerce_one(name, value)
        except (TypeError, ValueError) as exc:
            issues.append(Issue(IssueCode.BAD_POLICY, f"{name}: {exc}", column=name, source=source))
    if issues:
        raise CrmInputError(issues)
    return out


def _coerce_one(name: str, value: object) -> object:
    if isinstance(value, dict):
        if name == "vat_table":
            return {str(pd.Timestamp(str(k)).date()): _number(v) for k, v in value.items()}
        return {str(k): _number(v) for k, v in value.items()}
    if name in ("name", "tier_mode", "lowest_tier", "unrated_label", "pareto_rest",
                "cut_below_balance", "negative_amounts", "aging_basis"):
        return str(value).strip()
    if name == "distinct_roles":
        return _as_bool(value)
    if name in ("payment_terms_days", "reallocations_per_quarter", "overlap_top_n", "long_standing_years",
                "sleeping_after_days", "lost_after_days", "kpi_months"):
        return int(float(value))
    return _number(value)


def _number(value: object) -> float:
    """A policy number; '17%' (a text cell on the Policy sheet, a quoted TOML string) is 0.17,
    so the advice the rate messages give ("write 17% or 0.17") works in every policy form."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100
    return float(value)


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "是"):
        return True
    if text in ("false", "0", "no", "n", "否"):
        return False
    raise ValueError(f"{value!r} is not TRUE or FALSE")


def _policy_problems(p: Policy):
    if not p.vat_table:
        yield "the VAT table is empty"
    yield from _rate_problems(p)
    for tier, weight in p.tier_weights.items():
        if not (math.isfinite(weight) and weight >= 0):
            yield f"tier_weight.{tier}: {weight:g} must be 0 or more (0 = cash on delivery) / 权重不能为负"
    if not _whole_cents(p.credit_rounding) or p.credit_rounding <= 0:
        yield "credit_rounding must be a positive amount in whole cents"
    if p.overlap_top_n < 1:
        yield f"overlap_top_n: {p.overlap_top_n} must be 1 or more / 应至少为 1"
    yield from _recency_problems(p)
    if not 1 <= p.kpi_months <= KPI_MONTHS_LIMIT:
        yield f"kpi_months: {p.kpi_months} must be from 1 to {KPI_MONTHS_LIMIT} / 应为 1 到 {KPI_MONTHS_LIMIT} 个月"
    yield from aging_bucket_problems(p.aging_buckets)
    yield from funnel_rate_problems(p.funnel_rates)
    yield from service_day_problems(p)
    if abs(sum(p.rank_shares.values()) - 1) > SHARES_TOLERANCE:
        yield "rank shares must add up to 1"
    if sorted(p.pareto_cutoffs.values()) != list(p.pareto_cutoffs.values()):
        yield "Pareto cut-offs must rise from tier to tier (A 0.7, B 0.9)"
    for name, allowed in _CHOICES.items():
        if getattr(p, name) not in allowed:
            yield f"{name} must be one of {', '.join(sorted(allowed))}"
    if p.lowest_tier in p.rate_cutoffs:
        yield "lowest_tier must not also have a cut-off"


def _recency_problems(p: Policy):
    for name in ("long_standing_years", "sleeping_after_days", "lost_after_days"):
        if getattr(p, name) < 1:
            yield f"{name}: {getattr(p, name)} must be 1 or more / 应至少为 1"
    if p.lost_after_days <= p.sleeping_after_days:
        yield (f"lost_after_days ({p.lost_after_days}) must be more than sleeping_after_days "
               f"({p.sleeping_after_days}) / 流失天数应大于沉睡天数")


def aging_bucket_problems(buckets: Mapping[str, float], name: str = "aging_bucket") -> list[str]:
    """Why these ageing buckets (label -> upper days past due) cannot be used: any number of them
    (30/60/90, or nine slabs to 720 days), each a whole number of days above 0, none twice."""
    if not buckets:
        return [f"{name}: give at least one bucket, e.g. 30, 60, 90 / 至少需要一个账龄区间"]
    problems = [f"{name}.{label}: {days:g} must be a whole number of days above 0 / 应为大于 0 的整天数"
                for label, days in buckets.items()
                if not (math.isfinite(days) and days > 0 and float(days).is_integer())]
    days = sorted(buckets.values())
    twice = sorted({d for d in days if days.count(d) > 1})
    if twice:
        problems.append(f"{name}: {twice[0]:g} days is the end of two buckets / 账龄区间上限重复")
    return problems


def service_day_problems(p: Policy) -> list[str]:
    """Service levels are days above 0 (fractions allowed: 0.5 is half a day), for stage tiers A-E."""
    problems = []
    for prefix in ("service_response_days", "service_resolve_days"):
        for tier, days in getattr(p, prefix).items():
            if tier not in ("A", "B", "C", "D", "E"):
                problems.append(f"{prefix}.{tier}: no such stage tier; the tiers are A, B, C, D, E / 没有此阶段等级")
            elif not (math.isfinite(days) and days > 0):
                problems.append(f"{prefix}.{tier}: {days:g} must be a number of days above 0 / 应为大于 0 的天数")
    return problems


def funnel_rate_problems(rates: Mapping[str, float]) -> list[str]:
    """The four promotion rates, each named: all of E_D, D_C, C_B, B_A, none other, each in (0, 1]
    (a rate of 0 would need endless customers below it) and given to 0.01% at most."""
    problems = [f"funnel_rate.{key}: no such step; the steps are {', '.join(FUNNEL_RATE_DEFAULTS)} / 没有此晋级步骤"
                for key in rates if key not in FUNNEL_RATE_DEFAULTS]
    problems += [f"funnel_rate.{key} is missing: give all four steps / 缺少晋级率" for key in FUNNEL_RATE_DEFAULTS
                 if key not in rates]
    for key, rate in rates.items():
        problem = fraction_problem(f"funnel_rate.{key}", rate)
        if problem is None and rate == 0:
            problem = f"funnel_rate.{key}: 0 must be above 0 / 晋级率应大于 0"
        elif problem is None and abs(rate * 10_000 - round(rate * 10_000)) > 1e-6:
            # the sheet's plan divides by the rate in whole parts per 10,000, as Excel shows 0.00%
            problem = f"funnel_rate.{key}: {rate:g} has more than 4 decimals (0.01%) / 晋级率最多精确到 0.01%"
        if problem:
            problems.append(problem)
    return problems


# Policy sections holding rates or shares, checked key by key so a message names its key.
_FRACTION_MAPS = {"vat": "vat_table", "rate_cutoff": "rate_cutoffs", "rank_share": "rank_shares",
                  "pareto_cutoff": "pareto_cutoffs"}


def _whole_cents(amount: float) -> bool:
    """The amount is a whole number of cents (as Excel shows it: 0.07 is 7 cents, 0.001 is not)."""
    try:
        return units(parse_money_cents(amount)) == amount
    except ValueError:  # NaN, infinite, implausibly large
        return False


def _rate_problems(p: Policy) -> list[str]:
    found = [fraction_problem(name, getattr(p, name)) for name in ("credit_ratio", "cut_low_use", "cut_low_rate",
                                                                  "raise_rate_gain", "raise_sales_growth",
                                                                  "commission_rate")]
    for prefix, attr in _FRACTION_MAPS.items():
        found += [fraction_problem(f"{prefix}.{key}", value, below_one=prefix == "vat")
                  for key, value in getattr(p, attr).items()]
    return [f for f in found if f]


def _flatten(data: Mapping[str, object], prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{key}.")
        else:
            yield f"{prefix}{key}", value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return repr(value)
