"""The duplicate check with phone and address (004: 山西煤業, 山西煤礦 and 山西煤產品總公司 counted as three)."""
import pytest

from crm_core.analysis import address_key, likely_duplicates, name_key, phone_keys

SHANXI = ["山西煤業", "山西煤礦", "山西煤產品總公司"]


def test_the_three_shanxi_coal_customers_are_one_group_through_phone_and_address():
    table = likely_duplicates(["C1", "C2", "C3", "C4"], [*SHANXI, "仁和医药"],
                              ["山西省太原市迎泽大街100号", None, "山西 太原 迎泽大街 100號", "山西省太原市迎泽大街200号"],
                              [None, "0351-7654321", "+86 351 765 4321", "0351-7654322"])
    assert len(table) == 1
    group = table.iloc[0]
    assert (group["customers"], group["count"]) == ("C1, C2, C3", 3)
    assert group["names"] == " | ".join(SHANXI)
    assert group["reasons"] == ("same phone / 电话相同 03517654321 (C2, C3); "
                                "same address / 地址相同 山西太原迎泽大街100号 (C1, C3)")


def test_names_alone_do_not_join_the_shanxi_names():
    assert likely_duplicates(["C1", "C2", "C3"], SHANXI).empty


def test_without_addresses_and_phones_the_name_rule_is_unchanged():
    table = likely_duplicates(["C1", "C2", "C3", "C4"], ["华信医药有限公司", "华信医药", " 华信 医药（有限公司）", "仁和医药"])
    assert table[["customers", "count"]].values.tolist() == [["C1, C2, C3", 3]]
    assert table.loc[0, "reasons"] == "same name / 名称相同 华信医药 (C1, C2, C3)"


def test_each_reason_is_given_and_groups_come_by_first_code():
    table = likely_duplicates(["B2", "B1", "A9", "A8"], ["甲公司", "甲", "乙", "丙"],
                              [None, None, "北京市朝阳区建国路88号", "北京朝阳区建国路88号"], [None, "13812345678", None, None])
    assert table["customers"].tolist() == ["A8, A9", "B1, B2"]
    assert table["reasons"].tolist() == ["same address / 地址相同 北京朝阳建国路88号 (A8, A9)",
                                         "same name / 名称相同 甲 (B1, B2)"]


def test_one_code_on_two_rows_is_not_a_duplicate_of_itself():
    assert likely_duplicates(["C1", "C1"], ["甲", "甲"], None, ["13812345678", "13812345678"]).empty


@pytest.mark.parametrize("written", ["0351-7654321", "(0351) 765 4321", "0351 7654321 转 801", "+86 351 7654321",
                                     "0086-351-7654321", "3517654321", 3517654321, "０３５１－７６５４３２１"])
def test_one_landline_written_eight_ways_is_one_number(written):
    assert phone_keys(written) == ["03517654321"]


@pytest.mark.parametrize("written, keys", [
    ("138 1234 5678", ["13812345678"]), ("+86 13812345678", ["13812345678"]), ("8613812345678", ["13812345678"]),
    ("013812345678", ["13812345678"]), ("010-12345678", ["01012345678"]), ("1012345678", ["01012345678"]),
    ("7654321", ["7654321"]), ("+852 2345 6789", ["+85223456789"]), ("00852 2345 6789", ["+85223456789"]),
    ("0351-7654321 / 13812345678", ["03517654321", "13812345678"]), ("0351-7654321；0351-7654321", ["03517654321"]),
    ("0351-7654321 x801", ["03517654321"]), ("fax 0351-7654321", ["03517654321"]),
    ("00000000", []), ("8001", []), ("", []), (None, []), ("无", []),
])
def test_phone_normalisation(written, keys):
    assert phone_keys(written) == keys


def test_a_number_without_area_code_matches_only_itself():
    assert likely_duplicates(["C1", "C2"], ["甲", "乙"], None, ["7654321", "0351-7654321"]).empty


def test_address_normalisation_ignores_what_clerks_write_or_leave_out():
    assert address_key("中国山西省太原市迎泽区迎泽大街100號") == address_key("山西 太原 迎泽 迎泽大街 100 号")
    assert address_key("同上") == "" and address_key("太原市") == ""
    assert address_key("迎泽大街100号") != address_key("迎泽大街101号")


def test_traditional_company_suffixes_are_ignored_like_simplified_ones():
    assert name_key("山西煤產品總公司") == name_key("山西煤產品") == "山西煤產品"
    assert name_key("华信集團") == name_key("华信集团") == "华信"
