"""The contact log (客户追踪日志) and the follow-ups it makes due (003: a daily log for A, weekly
for B, every 15 days for C, monthly for D; follow-up is due from the last logged contact).

One rule, computed here and by the FollowUps sheet's native formulas alike:
- last contact = the latest date logged for the customer (dates only: text that looks like a date
  is refused, as a spreadsheet's MAXIFS skips it);
- stated next date = the latest next date (下次日期) given on that last contact's day;
- due = last contact + the stage tier's cadence (policy follow_up_days), or the stated next date
  when it is earlier (a promise to call back sooner is kept); with no cadence (E, or no tier) the
  stated next date alone; nothing logged: no due date;
- days overdue = max(0, as of - due).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence

import numpy as np
import pandas as pd

from .issues import WARNING, Issue, IssueCode
from .policy import Policy
from .schema import Column
from .values import is_blank, normalize_text

CONTACTS = "Contacts"
# The Contacts sheet's columns, in sheet order (header in row 1, rows typed from row 2).
CONTACT_COLUMNS: list[Column] = [
    Column("date", "日期", "Date", "date"),
    Column("customer", "客户编码", "Code"),
    Column("who", "跟进人", "Who"),
    Column("channel", "方式", "Channel"),
    Column("summary", "摘要", "Summary"),
    Column("next_step", "下一步", "Next step"),
    Column("next_date", "下次日期", "Next date", "date"),
]
# The channel list the sheet offers (a word outside it is a warning, the contact still counts).
CHANNELS = ("电话 phone", "拜访 visit", "微信 WeChat", "邮件 email", "会议 meeting", "其他 other")
FOLLOW_UP_COLUMNS = ["customer", "owner", "stage_tier", "last_contact", "stated_next", "due", "days_overdue"]


@dataclass(frozen=True)
class ContactLog:
    """Readable contacts (date, customer, who, channel, next_date; `row` the sheet row) and the
    problems found; rows without a usable date or customer are listed in `issues`, not kept."""

    contacts: pd.DataFrame
    issues: list[Issue]


def as_day(value: object) -> pd.Timestamp | None:
    """A date cell's value as a Timestamp (a datetime, or a serial number as a spreadsheet holds
    a date); None for blank or for text (a spreadsheet's MAXIFS skips text, so the core does too)."""
    if isinstance(value, bool) or is_blank(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime, date, np.datetime64)):
        stamp = pd.Timestamp(value)
        return None if pd.isna(stamp) else stamp
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value) and value > 0:
        return pd.Timestamp("1899-12-30") + pd.to_timedelta(float(value), unit="D")
    return None


def _date_issue(value: object, row: int, column: Column, source: str) -> Issue | None:
    if is_blank(value) or as_day(value) is not None:
        return None
    return Issue(IssueCode.BAD_DATE, f"{str(value)[:40]!r} is not a date (type it as a date) / 不是日期",
                 row=row, column=column.label, source=source)


def read_contacts(records: pd.DataFrame, customers: Sequence[object], source: str = CONTACTS) -> ContactLog:
    """The contact log from sheet records (columns CONTACT_COLUMNS' keys and `row`), checked:
    a date, a customer code in the register (`customers`), a channel from CHANNELS, a next date."""
    cols = {c.key: c for c in CONTACT_COLUMNS}
    known = {normalize_text(c).lower() for c in customers}
    channels = {normalize_text(c).lower() for c in CHANNELS}
    issues: list[Issue] = []
    kept = []
    for rec in records.to_dict("records"):
        row = int(rec["row"])
        day, code = as_day(rec.get("date")), normalize_text(rec.get("customer"))
        problems = [p for p in (_date_issue(rec.get("date"), row, cols["date"], source),
                                _date_issue(rec.get("next_date"), row, cols["next_date"], source)) if p]
        if is_blank(rec.get("date")):
            problems.append(Issue(IssueCode.BLANK, "no date / 未填日期", row=row, column=cols["date"].label,
                                  source=source))
        if not code:
            problems.append(Issue(IssueCode.BLANK, "no customer code / 未填客户编码", row=row,
                                  column=cols["customer"].label, source=source))
        elif code.lower() not in known:
            problems.append(Issue(IssueCode.UNKNOWN_CUSTOMER, f"customer {code!r} is not in the register / "
                                  "客户编码不在登记表中", row=row, column=cols["customer"].label, source=source))
        channel = normalize_text(rec.get("channel"))
        if channel and channel.lower() not in channels:
            problems.append(Issue(IssueCode.UNKNOWN_TYPE, f"channel {channel!r} is not one of {', '.join(CHANNELS)} / "
                                  "方式不在列表中", row=row, column=cols["channel"].label, source=source,
                                  severity=WARNING))
        issues += problems
        if day is not None and code:
            kept.append({"row": row, "date": day, "customer": code, "who": normalize_text(rec.get("who")),
                         "channel": channel, "next_date": as_day(rec.get("next_date"))})
    frame = pd.DataFrame(kept, columns=["row", "date", "customer", "who", "channel", "next_date"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame["next_date"] = pd.to_datetime(frame["next_date"])
    return ContactLog(frame, issues)


def follow_ups(contacts: pd.DataFrame, customers: Sequence[object], stage_tiers: Sequence[object],
               owners: Sequence[object], as_of: pd.Timestamp, policy: Policy | None = None) -> pd.DataFrame:
    """Per customer (in the order given): owner, stage tier, last contact, stated next date, due
    date and days overdue (module docstring). `contacts`: ContactLog.contacts (date, customer,
    next_date). Dates are NaT and days NaN where there are none."""
    policy = policy or Policy()
    codes = [normalize_text(c) for c in customers]
    log = contacts.assign(key=[normalize_text(c).lower() for c in contacts["customer"]])
    last = log.groupby("key")["date"].max()
    on_last = log[log["date"] == log.groupby("key")["date"].transform("max")]
    stated = on_last.groupby("key")["next_date"].max()
    keys = [c.lower() for c in codes]
    last_contact = pd.to_datetime(pd.Series([last.get(k, pd.NaT) for k in keys], dtype="object"))
    stated_next = pd.to_datetime(pd.Series([stated.get(k, pd.NaT) for k in keys], dtype="object"))
    days = pd.Series([policy.follow_up_days.get(normalize_text(t).upper(), np.nan) for t in stage_tiers],
                     dtype="float64")
    cadence = last_contact + pd.to_timedelta(days, unit="D")
    due = cadence.where(stated_next.isna() | (cadence <= stated_next), stated_next)
    due = due.where(last_contact.notna())
    late = (pd.Timestamp(as_of) - due).dt.total_seconds() / 86400
    return pd.DataFrame({"customer": codes, "owner": [normalize_text(o) for o in owners],
                         "stage_tier": [normalize_text(t) for t in stage_tiers], "last_contact": last_contact,
                         "stated_next": stated_next, "due": due, "days_overdue": late.clip(lower=0)})


def overdue_by_owner(table: pd.DataFrame) -> pd.DataFrame:
    """The overdue customers of a `follow_ups` table, by owner (blank owner last), the longest
    overdue first within each owner."""
    late = table[table["days_overdue"] > 0].copy()
    late["_blank"] = late["owner"] == ""
    late = late.sort_values(["_blank", "owner", "days_overdue", "customer"], ascending=[True, True, False, True],
                            kind="stable")
    return late.drop(columns="_blank").reset_index(drop=True)


@dataclass(frozen=True)
class Activity:
    """The two logs as typed on their sheets: `contacts` with CONTACT_COLUMNS' keys and `service`
    with crm_core.service.SERVICE_COLUMNS' keys, one row per sheet row from row 2 (either may be
    empty)."""

    contacts: pd.DataFrame
    service: pd.DataFrame


def log_records(rows: Sequence[Sequence[object]], columns: Sequence[Column], source: str) -> tuple[pd.DataFrame, list[Issue]]:
    """A log given as rows with its header first (a Contacts or Service range): records keyed by
    the columns' keys, `row` numbering the rows as the range does (header = row 1). A header is
    found by its label, either language or its key; a column not found is an issue."""
    header = [normalize_text(h).lower() for h in (rows[0] if rows else [])]
    names = {c.key: {normalize_text(n).lower() for n in (c.label, c.heading, c.zh, c.en, c.key)} for c in columns}
    positions = {key: next((i for i, h in enumerate(header) if h in found), None) for key, found in names.items()}
    issues = [Issue(IssueCode.MISSING_COLUMN, f"no column {c.label!r} in the header row / 缺少列", row=1,
                    column=c.label, source=source) for c in columns if positions[c.key] is None]
    out = []
    for r, values in enumerate(rows[1:], start=2):
        if all(is_blank(v) for v in values):
            continue
        rec = {"row": r}
        for key, pos in positions.items():
            rec[key] = values[pos] if pos is not None and pos < len(values) else None
        out.append(rec)
    return pd.DataFrame(out, columns=["row", *(c.key for c in columns)]), issues
