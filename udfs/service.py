"""Worksheet functions for the activity logs: the service review per stage tier (服务记录,
crm_core.service) and the follow-ups the contact log makes due (客户追踪日志, crm_core.contacts).
Both read the log range as the Contacts or Service sheet holds it, WITH its header row."""
from __future__ import annotations

import numpy as np
import xlwings as xw

from crm_core.contacts import CONTACT_COLUMNS, CONTACTS, follow_ups, log_records, read_contacts
from crm_core.issues import CrmInputError, errors_only
from crm_core.service import SERVICE, SERVICE_COLUMNS, read_service, service_cases, service_review

from . import _excel as ex
from .collection import POLICY_DOC, RANGE

SERVICE_HEADER = ["tier / 等级", "respond within (days) / 响应时限", "resolve within (days) / 解决时限", "cases / 受理数",
                  "open / 未解决", "response breaches / 响应超时", "resolution breaches / 解决超时",
                  "average satisfaction / 平均满意度"]
FOLLOW_UP_HEADER = ["customer / 客户编码", "owner / 负责人", "stage tier / 阶段等级", "last contact / 最近跟进",
                    "next date stated / 约定下次", "next due / 下次跟进", "days overdue / 逾期天数"]


def _register(customers, stage_tiers, owners=None) -> tuple[list[str], list[str], list[str]]:
    """Register codes, stage tiers and owners, side by side (an omitted owners range: blanks)."""
    cols = ex.aligned(customers=customers, stage_tiers=stage_tiers, owners=owners)
    return (list(ex.texts(cols["customers"], "customers")),
            list(ex.texts(cols["stage_tiers"], "stage_tiers", allow_blank=True)),
            list(ex.texts(cols["owners"], "owners", allow_blank=True)))


def _log(value, columns, source: str):
    records, issues = log_records(ex.grid(value), columns, source)
    if issues:
        raise CrmInputError(issues)
    return records


@xw.func(category=ex.CATEGORY)
@xw.arg("service_log", doc="The Service sheet's log WITH header: received, code, channel, issue, owner, responded, resolved, satisfaction 服务记录", **RANGE)
@xw.arg("customers", doc="Register customer codes, one column 客户编码", **RANGE)
@xw.arg("stage_tiers", doc="Their stage tiers A-E, same rows 阶段等级", **RANGE)
@xw.arg("as_of", doc="Date open cases are timed to (optional; today) 评估日期", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_service_review(service_log, customers, stage_tiers, as_of=None, policy=None):
    """Service review 服务评审 per stage tier with header: service levels (policy), cases, open, response and resolution breaches, average satisfaction (1-5)."""
    pol = ex.read_policy(policy)
    codes, tiers, _ = _register(customers, stage_tiers)
    log = read_service(_log(service_log, SERVICE_COLUMNS, SERVICE), codes, source="service_log")
    if errors_only(log.issues):
        raise CrmInputError(log.issues)
    day = ex.one_date(as_of, "as_of", ex.today())
    table = service_review(service_cases(log.cases, dict(zip(codes, tiers)), day, pol), pol)
    return ex.table_out(SERVICE_HEADER, [table[c] for c in table.columns])


@xw.func(category=ex.CATEGORY)
@xw.arg("contact_log", doc="The Contacts sheet's log WITH header: date, code, who, channel, summary, next step, next date 跟进记录", **RANGE)
@xw.arg("customers", doc="Register customer codes, one column 客户编码", **RANGE)
@xw.arg("stage_tiers", doc="Their stage tiers A-E, same rows 阶段等级", **RANGE)
@xw.arg("owners", doc="Their owners, same rows (optional) 负责人", **RANGE)
@xw.arg("as_of", doc="Date overdue days are counted to (optional; today) 评估日期", **RANGE)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_follow_ups(contact_log, customers, stage_tiers, owners=None, as_of=None, policy=None):
    """Follow-ups 跟进 per customer with header: last logged contact, next date stated, due (cadence A 1, B 7, C 15, D 30 days, or the stated date if sooner), days overdue."""
    pol = ex.read_policy(policy)
    codes, tiers, who = _register(customers, stage_tiers, owners)
    log = read_contacts(_log(contact_log, CONTACT_COLUMNS, CONTACTS), codes, source="contact_log")
    if errors_only(log.issues):
        raise CrmInputError(log.issues)
    day = ex.one_date(as_of, "as_of", ex.today())
    table = follow_ups(log.contacts, codes, tiers, who, day, pol)
    late = table["days_overdue"].to_numpy(dtype="float64")
    return ex.table_out(FOLLOW_UP_HEADER, [table["customer"], table["owner"], table["stage_tier"],
                                           table["last_contact"], table["stated_next"], table["due"],
                                           np.where(np.isnan(late), np.nan, late)])
