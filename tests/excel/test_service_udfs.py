"""The activity-log worksheet functions through xlwings' own call path: the service review per
stage tier and the follow-ups of the contact log, each reading its log WITH the header row."""
import datetime as dt

from tests.support.xlwings_offline import MISSING_ARG, call_like_excel

SERVICE_HEAD = ("受理时间 Received", "客户编码 Code", "方式 Channel", "问题 Issue", "负责人 Owner", "响应时间 Responded",
                "解决时间 Resolved", "满意度 Satisfaction (1-5)")
CONTACT_HEAD = ("日期 Date", "客户编码 Code", "跟进人 Who", "方式 Channel", "摘要 Summary", "下一步 Next step",
                "下次日期 Next date")
DAY = dt.datetime(2025, 12, 1, 9)


def day(value) -> dt.date:
    """A date cell as xlwings hands it back (a datetime, UTC in the offline call path)."""
    return value.date()


def col(*values):
    return tuple((v,) for v in values)


def test_service_review_per_tier(addin):
    log = (SERVICE_HEAD,
           (DAY, "A1", "电话 phone", "到货延迟", "王芳", dt.datetime(2025, 12, 2, 15), None, None),
           (DAY, "B1", "电话 phone", "发票错误", "王芳", DAY, dt.datetime(2025, 12, 2), 4.0))
    table = call_like_excel(addin.crm_service_review, log, col("A1", "B1"), col("A", "B"), dt.datetime(2025, 12, 31),
                            MISSING_ARG)
    assert table[0][0] == "tier / 等级" and [r[0] for r in table[1:]] == ["A", "B", "C", "D", "E", "未分级 no tier",
                                                                          "合计 Total"]
    assert table[1][1:7] == [1.0, 3.0, 1.0, 1.0, 1.0, 1.0]  # answered after 30 hours: over A's day; open 30 days
    assert table[2][3:8] == [1.0, 0.0, 0.0, 0.0, 4.0]
    assert table[7][3:7] == [2.0, 1.0, 1.0, 1.0]


def test_service_review_names_the_row_and_column_of_a_bad_cell(addin):
    log = (SERVICE_HEAD, ("yesterday", "A1", None, None, None, None, None, None))
    said = call_like_excel(addin.crm_service_review, log, col("A1"), col("A"), MISSING_ARG, MISSING_ARG)
    assert said.startswith("#VALUE! row 2 (受理时间 Received): 'yesterday' is not a date")
    no_header = call_like_excel(addin.crm_service_review, (("A1", DAY),), col("A1"), col("A"), MISSING_ARG, MISSING_ARG)
    assert no_header.startswith("#VALUE! row 1 (受理时间 Received): no column")


def test_follow_ups_from_the_contact_log(addin):
    log = (CONTACT_HEAD,
           (dt.datetime(2025, 12, 1), "A1", "李明", "电话 phone", None, None, None),
           (dt.datetime(2025, 12, 20), "B1", "李明", "拜访 visit", None, None, dt.datetime(2025, 12, 22)))
    table = call_like_excel(addin.crm_follow_ups, log, col("A1", "B1", "C1"), col("A", "B", "C"),
                            col("Li", "Wang", None), dt.datetime(2025, 12, 31), MISSING_ARG)
    assert table[0][0] == "customer / 客户编码" and len(table) == 4
    assert table[1][:2] == ["A1", "Li"] and day(table[1][5]) == dt.date(2025, 12, 2) and table[1][6] == 29.0
    assert day(table[2][5]) == dt.date(2025, 12, 22) and table[2][6] == 9.0  # the promise, sooner than the week
    assert table[3][3:7] == ["", "", "", ""]  # no contact logged
