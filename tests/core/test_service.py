"""The service log (000, 004): response and resolution against the service level of the customer's
stage tier (一天以內響應: A within a day), breaches and satisfaction per tier, open complaints."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from crm_core.issues import CrmInputError, IssueCode
from crm_core.policy import Policy
from crm_core.service import (
    NO_TIER,
    TOTAL,
    open_complaint_customers,
    read_service,
    service_cases,
    service_review,
)

AS_OF = pd.Timestamp("2025-12-31")
TIERS = {"A1": "A", "B1": "b", "E1": "E", "N1": "", "F1": "F"}


def cases(*rows):
    """(received, customer, responded, resolved, satisfaction) as sheet records from row 2."""
    frame = pd.DataFrame([{"received": a, "customer": c, "channel": "电话 phone", "issue": "到货延迟", "owner": "王芳",
                           "responded": r, "resolved": s, "satisfaction": score} for a, c, r, s, score in rows])
    return frame.assign(row=range(2, len(frame) + 2))


def timed(*rows, policy=None):
    log = read_service(cases(*rows), list(TIERS))
    return service_cases(log.cases, TIERS, AS_OF, policy or Policy())


def test_a_customer_is_answered_within_a_day():
    got = datetime(2025, 12, 1, 9)
    t = timed((got, "A1", datetime(2025, 12, 1, 17), datetime(2025, 12, 3, 9), 5),
              (got, "A1", datetime(2025, 12, 2, 15), datetime(2025, 12, 5, 9), 3))
    assert t["response_breach"].tolist() == [False, True]  # 8 hours; 30 hours is over the day
    assert t["resolve_breach"].tolist() == [False, True]  # 2 days; 4 days is over A's 3
    assert t["response_days"].tolist() == pytest.approx([8 / 24, 30 / 24])


def test_an_open_case_is_timed_to_the_as_of_date():
    t = timed((datetime(2025, 12, 30), "B1", None, None, None), (datetime(2025, 12, 20), "B1", None, None, None))
    assert t["tier"].tolist() == ["B", "B"]  # the Register's tier, whatever its case
    assert t["response_breach"].tolist() == [False, True] and t["open"].tolist() == [True, True]


def test_no_tier_means_no_service_level_and_no_breach():
    t = timed((datetime(2025, 1, 1), "N1", None, None, None), (datetime(2025, 1, 1), "F1", None, None, None),
              (datetime(2025, 1, 1), "ZZ", None, None, None))
    assert t["tier"].tolist() == [NO_TIER] * 3 and t["response_breach"].tolist() == [None] * 3


def test_review_per_tier_with_average_satisfaction_and_total():
    got = datetime(2025, 12, 1)
    t = timed((got, "A1", datetime(2025, 12, 3), datetime(2025, 12, 3), 4), (got, "A1", got, got, 5),
              (got, "E1", datetime(2025, 12, 2), None, None), (got, "N1", got, got, 2))
    review = service_review(t, Policy()).set_index("tier")
    assert review.loc["A", ["cases", "open", "response_breaches", "resolve_breaches"]].tolist() == [2, 0, 1, 0]
    assert review.loc["A", "satisfaction"] == 4.5 and review.loc["A", "response_days_limit"] == 1
    assert review.loc["E", ["cases", "open", "resolve_breaches"]].tolist() == [1, 1, 1]  # 30 days > 15
    assert np.isnan(review.loc["E", "satisfaction"]) and np.isnan(review.loc["C", "satisfaction"])
    assert review.loc[NO_TIER, "cases"] == 1 and np.isnan(review.loc[NO_TIER, "response_days_limit"])
    assert review.loc[TOTAL, ["cases", "open", "response_breaches"]].tolist() == [4, 1, 1]
    assert review.loc[TOTAL, "satisfaction"] == pytest.approx(11 / 3)


def test_open_complaint_customers_for_the_register_flag():
    log = read_service(cases((datetime(2025, 12, 1), "A1", None, None, None),
                             (datetime(2025, 12, 1), "B1", datetime(2025, 12, 1), datetime(2025, 12, 2), 4),
                             (datetime(2025, 12, 2), "a1", datetime(2025, 12, 3), None, None)), list(TIERS))
    assert open_complaint_customers(log) == {"A1", "a1"}
    assert open_complaint_customers(log.cases) == {"A1", "a1"}


def test_bad_cells_are_named_by_row_and_column():
    found = read_service(cases(("yesterday", "A1", None, None, None), (datetime(2025, 12, 2), "", None, None, None),
                               (datetime(2025, 12, 2), "A1", datetime(2025, 12, 1), "later", 7),
                               (datetime(2025, 12, 2), "ZZ", None, None, "good")), list(TIERS))
    where = {(i.row, i.column, i.code, i.is_error) for i in found.issues}
    assert (2, "受理时间 Received", IssueCode.BAD_DATE, True) in where
    assert (3, "客户编码 Code", IssueCode.BLANK, True) in where
    assert (4, "响应时间 Responded", IssueCode.BAD_DATE, False) in where  # before it was received
    assert (4, "解决时间 Resolved", IssueCode.BAD_DATE, True) in where
    assert (4, "满意度 Satisfaction (1-5)", IssueCode.BAD_NUMBER, True) in where
    assert (5, "客户编码 Code", IssueCode.UNKNOWN_CUSTOMER, False) in where
    assert (5, "满意度 Satisfaction (1-5)", IssueCode.BAD_NUMBER, True) in where
    assert found.cases["row"].tolist() == [4, 5] and found.cases["satisfaction"].isna().all()


def test_service_levels_are_policy_keys_validated_by_name():
    policy = Policy.from_pairs([("service_response_days.A", 0.5), ("service_resolve_days.A", 2)])
    assert policy.service_response_days == {"A": 0.5} and policy.service_resolve_days == {"A": 2.0}
    assert Policy.from_pairs(Policy().to_pairs()) == Policy()
    for pairs, said in (([("service_response_days.A", 0)], "service_response_days.A: 0 must be"),
                        ([("service_resolve_days.Z", 3)], "service_resolve_days.Z: no such stage tier")):
        with pytest.raises(CrmInputError) as raised:
            Policy.from_pairs(pairs)
        assert said in str(raised.value)
