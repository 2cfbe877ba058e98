"""The contact log (客户追踪日志) and the follow-ups it makes due: A daily, B weekly, C every 15
days, D monthly, E none, from the last logged contact (003), or sooner when a next date was stated."""
from datetime import datetime

import pandas as pd
import pytest

from crm_core.contacts import (
    CONTACT_COLUMNS,
    follow_ups,
    log_records,
    overdue_by_owner,
    read_contacts,
)
from crm_core.issues import IssueCode
from crm_core.policy import Policy

AS_OF = pd.Timestamp("2025-12-31")
CODES = ["A1", "B1", "C1", "D1", "E1", "N1"]


def log(*rows):
    """Contacts (date, customer, next_date) as sheet records from row 2."""
    frame = pd.DataFrame([{"date": d, "customer": c, "who": "李明", "channel": "电话 phone", "summary": "",
                           "next_step": "", "next_date": n} for d, c, n in rows])
    return frame.assign(row=range(2, len(frame) + 2))


def table(records, tiers=("A", "B", "C", "D", "E", ""), owners=("Li", "Li", "Wang", "", "Wang", "Li")):
    contacts = read_contacts(records, CODES)
    return follow_ups(contacts.contacts, CODES, list(tiers), list(owners), AS_OF, Policy()).set_index("customer")


def test_due_from_the_last_logged_contact_and_the_tiers_cadence():
    t = table(log((datetime(2025, 12, 1), "A1", None), (datetime(2025, 12, 20), "A1", None),
                  (datetime(2025, 12, 20), "B1", None), (datetime(2025, 12, 10), "C1", None),
                  (datetime(2025, 12, 10), "D1", None)))
    assert t.loc["A1", "last_contact"] == pd.Timestamp("2025-12-20")  # the latest, not the first
    assert t.loc["A1", "due"] == pd.Timestamp("2025-12-21") and t.loc["A1", "days_overdue"] == 10
    assert t.loc["B1", "due"] == pd.Timestamp("2025-12-27") and t.loc["B1", "days_overdue"] == 4
    assert t.loc["C1", "due"] == pd.Timestamp("2025-12-25") and t.loc["C1", "days_overdue"] == 6
    assert t.loc["D1", "due"] == pd.Timestamp("2026-01-09") and t.loc["D1", "days_overdue"] == 0


def test_a_stated_next_date_counts_when_sooner_and_e_has_no_cadence():
    t = table(log((datetime(2025, 12, 10), "D1", datetime(2025, 12, 15)),  # sooner than the month: kept
                  (datetime(2025, 12, 28), "B1", datetime(2026, 1, 20)),  # later than the week: the week
                  (datetime(2025, 12, 1), "E1", datetime(2025, 12, 20)),  # E: the promise alone
                  (datetime(2025, 12, 1), "N1", None)))  # no tier, no promise: nothing due
    assert t.loc["D1", "due"] == pd.Timestamp("2025-12-15") and t.loc["D1", "days_overdue"] == 16
    assert t.loc["B1", "due"] == pd.Timestamp("2026-01-04")
    assert t.loc["E1", "due"] == pd.Timestamp("2025-12-20") and t.loc["E1", "days_overdue"] == 11
    assert pd.isna(t.loc["N1", "due"]) and pd.isna(t.loc["N1", "days_overdue"])


def test_only_the_last_contacts_next_date_is_the_promise():
    t = table(log((datetime(2025, 12, 1), "C1", datetime(2025, 12, 3)), (datetime(2025, 12, 20), "C1", None)))
    assert pd.isna(t.loc["C1", "stated_next"]) and t.loc["C1", "due"] == pd.Timestamp("2026-01-04")


def test_no_contact_logged_gives_no_due_date():
    t = table(log((datetime(2025, 12, 1), "A1", None)))
    assert pd.isna(t.loc["B1", "last_contact"]) and pd.isna(t.loc["B1", "due"])


def test_codes_match_without_case_or_width_and_a_serial_number_is_a_date():
    t = table(log((45992, "ａ1", None)))  # 45992 = 2025-12-01, a full-width lower-case code
    assert t.loc["A1", "last_contact"] == pd.Timestamp("2025-12-01")


def test_bad_rows_are_named_by_row_and_column_and_left_out():
    records = log(("2025-12-01", "A1", None), (datetime(2025, 12, 2), "ZZ", None), (None, "A1", None),
                  (datetime(2025, 12, 3), "", None), (datetime(2025, 12, 4), "B1", "soon"))
    records.loc[records["row"] == 6, "channel"] = "pigeon"
    found = read_contacts(records, CODES)
    where = {(i.row, i.column, i.code) for i in found.issues}
    assert (2, "日期 Date", IssueCode.BAD_DATE) in where  # text that looks like a date: retype it
    assert (3, "客户编码 Code", IssueCode.UNKNOWN_CUSTOMER) in where
    assert (4, "日期 Date", IssueCode.BLANK) in where
    assert (5, "客户编码 Code", IssueCode.BLANK) in where
    assert (6, "下次日期 Next date", IssueCode.BAD_DATE) in where
    assert any(i.row == 6 and i.column == "方式 Channel" and not i.is_error for i in found.issues)
    assert found.contacts["row"].tolist() == [3, 6]  # the unknown code still counts (for no one in the register)


def test_overdue_customers_by_owner_longest_first_unassigned_last():
    t = table(log((datetime(2025, 12, 1), "A1", None), (datetime(2025, 12, 20), "B1", None),
                  (datetime(2025, 12, 1), "C1", None), (datetime(2025, 11, 1), "D1", None)))
    late = overdue_by_owner(t.reset_index())
    assert late[["owner", "customer"]].values.tolist() == [["Li", "A1"], ["Li", "B1"], ["Wang", "C1"], ["", "D1"]]


def test_a_log_range_is_read_by_its_header_in_either_language():
    rows = [["客户编码", "日期 Date", "Who", "方式", "摘要", "next_step", "下次日期\nNext date"],
            ["A1", datetime(2025, 12, 1), "李明", "电话 phone", "", "", None], [None] * 7]
    records, issues = log_records(rows, CONTACT_COLUMNS, "contact_log")
    assert issues == [] and records[["row", "customer"]].values.tolist() == [[2, "A1"]]
    _, missing = log_records([["日期", "客户编码"]], CONTACT_COLUMNS, "contact_log")
    assert {i.column for i in missing} == {"跟进人 Who", "方式 Channel", "摘要 Summary", "下一步 Next step",
                                           "下次日期 Next date"}


@pytest.mark.parametrize("tier,days", [("A", 1), ("B", 7), ("C", 15), ("D", 30)])
def test_cadence_follows_the_policy(tier, days):
    policy = Policy().with_values(follow_up_days={**Policy().follow_up_days, tier: days + 2.0})
    contacts = read_contacts(log((datetime(2025, 12, 1), "A1", None)), CODES).contacts
    due = follow_ups(contacts, ["A1"], [tier], [""], AS_OF, policy)["due"].iat[0]
    assert due == pd.Timestamp("2025-12-01") + pd.Timedelta(days=days + 2)
