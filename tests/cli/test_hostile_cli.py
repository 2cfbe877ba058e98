"""The bad-input catalogue through the command line: ledgers for `review`, requests for `reallocate`.

Each case ends with exit 0 and the right numbers in the register, or exit 2 and a message naming
the file, the row as a spreadsheet shows it and the column; never a traceback.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crm_app.cli.main import main
from crm_app.register.load import load_register, read_request_csv
from crm_app.register.schema import AUDIT
from crm_app.register.workflow import verify
from tests.support.registers import ROLES, build_register
from tests.support.signing import sign, signed_register

HEADER = ["date", "customer", "type", "amount"]
WAN_HEADER = ["日期", "客户", "类型", "金额(万元)"]
LONG = "x" * 10_000


@dataclass(frozen=True)
class Case:
    """Ledger rows as a user's file holds them and the expected outcome:
    {customer: (net sales, collections)} of 2024, or the (row, column) the refusal names."""

    name: str
    rows: list
    totals: dict = field(default_factory=dict)
    where: tuple[int, str] | None = None
    header: list = field(default_factory=lambda: list(HEADER))


def inv(amount, customer="A", date="2024-03-01", kind="invoice"):
    return [date, customer, kind, amount]


CSV_CASES = [
    Case("thousands separators", [inv("1,234,567.89")], {"A": (1_234_567.89, 0)}),
    Case("full-width digits", [inv("１２３４")], {"A": (1234, 0)}),
    Case("yuan sign", [inv("¥1,000")], {"A": (1000, 0)}),
    Case("万 in the cell", [inv("3万")], {"A": (30_000, 0)}),
    Case("万-denominated header", [inv("1.5"), inv("1.13", kind="回款")], {"A": (15_000, 11_300)},
         header=WAN_HEADER),
    Case("decimal comma", [inv("1.234,56")], where=(2, "amount")),
    Case("negative invoice", [inv("100"), inv("-5")], where=(3, "amount")),
    Case("negative credit note reduces sales", [inv("100"), inv("-30", kind="红字")], {"A": (70, 0)}),
    Case("NaN text", [inv("NaN")], where=(2, "amount")),
    Case("inf text", [inv("100"), inv("inf")], where=(3, "amount")),
    Case("1e999", [inv("1e999")], where=(2, "amount")),
    Case("blank amount", [inv("100"), inv("")], where=(3, "amount")),
    Case("#N/A exported as text", [inv("#N/A")], where=(2, "amount")),
    Case("#DIV/0! exported as text", [inv("100"), inv("#DIV/0!")], where=(3, "amount")),
    Case("TRUE exported as text", [inv("1"), inv("TRUE")], where=(3, "amount")),
    Case("Excel serial date", [inv("1", date="45352")], {"A": (1, 0)}),
    Case("slash date", [inv("1", date="2024/3/1")], {"A": (1, 0)}),
    Case("Chinese date", [inv("1", date="2024年3月1日")], {"A": (1, 0)}),
    Case("compact date", [inv("1", date="20240301")], {"A": (1, 0)}),
    Case("ambiguous day/month date", [inv("1", date="02/01/2024")], where=(2, "date")),
    Case("30 February", [inv("1"), inv("1", date="2024-02-30")], where=(3, "date")),
    Case("#N/A date", [inv("1", date="#N/A")], where=(2, "date")),
    Case("year typed 3024", [inv("1", date="3024-03-01")], where=(2, "date")),
    Case("mixed amount forms", [inv("1"), inv("2.50"), inv("¥3"), inv("０.５")], {"A": (7, 0)}),
    Case("mixed date forms", [inv("1", date="45352"), inv("2", date="2024/3/2"), inv("3", date="2024年3月3日")],
         {"A": (6, 0)}),
    Case("customers differing by spaces and full width", [inv("1", customer="ABC"), inv("2", customer=" ABC "),
                                                          inv("3", customer="ＡＢＣ")], {"ABC": (6, 0)}),
    Case("10k-character customer", [inv("1"), inv("1", customer=LONG)], where=(3, "customer")),
    Case("10k-character amount", [inv("9" * 10_000)], where=(2, "amount")),
    Case("blank lines between rows", [inv("1"), ["", "", "", ""], inv("2")], {"A": (3, 0)}),
    Case("only receipts", [inv("117", kind="receipt")], {"A": (0, 117)}),
    Case("header only", [], where=(None, "")),
]


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def register_totals(path: Path) -> dict:
    frame = pd.read_excel(path, sheet_name="Register", converters={0: str}, keep_default_na=False)
    frame.columns = [" ".join(str(c).split()) for c in frame.columns]  # headers in two lines: "中文\nEnglish"
    return {r["客户编码 Code"]: (r["净销售额 Net sales"], r["回款额 Collections"]) for _, r in frame.iterrows()}


def run(argv, capsys) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return status, out.out, out.err



def flat(totals: dict) -> dict:
    """{customer: (sales, collections)} -> {(customer, 0): sales, ...}: pytest.approx compares
    flat mappings only (nested ones are refused by recent pytest)."""
    return {(name, k): v for name, pair in totals.items() for k, v in enumerate(pair)}

def check(case: Case, path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "register.xlsx"
    status, _, err = run(["review", path, "--year", "2024", "--quiet", "--out", out], capsys)
    if case.totals:
        assert status == 0, err
        assert flat(register_totals(out)) == pytest.approx(flat(case.totals))
        return
    assert status == 2 and not out.exists()
    row, column = case.where
    if row is None:
        assert f"{path.name}" in err and "no data rows" in err, err
    else:
        assert f"{path.name}, row {row}, column {column}:" in err, err


@pytest.mark.parametrize("case", CSV_CASES, ids=[c.name for c in CSV_CASES])
def test_csv_ledger_catalogue(case, tmp_path, capsys):
    check(case, write_csv(tmp_path / "ledger.csv", case.header, case.rows), tmp_path, capsys)


def _xlsx_cell(value: object) -> object:
    """What an ERP export puts in a real workbook: numbers as numbers, error values as errors."""
    try:
        return float(value) if str(value).strip() not in ("", "NaN", "inf", "1e999") else (value or None)
    except ValueError:
        return value


XLSX_CASES = [
    Case("real dates and serials", [inv(1.0, date=dt.datetime(2024, 3, 1)), inv(2.0, date=45353)], {"A": (3, 0)}),
    Case("a real #N/A cell", [inv(1.0), inv("#N/A")], where=(3, "amount")),
    Case("a real #DIV/0! cell", [inv("#DIV/0!")], where=(2, "amount")),
    Case("a TRUE cell below a 1", [inv(1.0), inv(True)], where=(3, "amount")),
    Case("text and numbers in one column", [inv(1.0), inv("1,000"), inv("2万")], {"A": (21_001, 0)}),
    Case("a 10k-character customer", [inv(1.0, customer=LONG)], where=(2, "customer")),
    Case("only receipts", [inv(50.0, kind="回款")], {"A": (0, 50)}),
    Case("header only", [], where=(None, "")),
    Case("customers coded NA and NULL", [inv(1.0, customer="NA"), inv(2.0, customer="NULL")],
         {"NA": (1, 0), "NULL": (2, 0)}),
    Case("an empty row keeps the row numbers", [inv(1.0), [None] * 4, inv("abc")], where=(4, "amount")),
]


@pytest.mark.parametrize("case", XLSX_CASES, ids=[c.name for c in XLSX_CASES])
def test_xlsx_ledger_catalogue(case, tmp_path, capsys):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Ledger"
    ws.append(case.header)
    for row in case.rows:
        ws.append(row)  # openpyxl stores '#N/A' and '#DIV/0!' as real error cells
    path = tmp_path / "ledger.xlsx"
    wb.save(path)
    check(case, path, tmp_path, capsys)


# ---------------------------------------------------------------- hostile reallocation requests

@pytest.fixture
def register(tmp_path) -> Path:
    return signed_register(tmp_path / "register.xlsx")


def request_file(tmp_path: Path, text: str, name: str = "request.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def reallocate(register: Path, request: Path, capsys, *extra) -> tuple[int, str, str]:
    return run(["reallocate", register, "--request", request, *ROLES, "--batch-id", "H1", *extra], capsys)


ACCEPTED_REQUESTS = [
    ("amounts as text", 'customer,change,reason\nC7,"100,000.00",up\nB117,-2万,down\nC3,"(30,000)",down\n'
                        "D24,-５００００,down\n"),
    ("blank lines and a trailing comma", "customer,change,reason\n\nC7,100000,up\n\n,,\nD24,-100000,down,\n\n"),
    ("spaces and full-width codes", "customer,change,reason\n C7 ,100000,up\nＤ２４,-100000,down\n"),
]


@pytest.mark.parametrize("name, text", ACCEPTED_REQUESTS, ids=[r[0] for r in ACCEPTED_REQUESTS])
def test_awkward_but_valid_requests_apply(register, tmp_path, capsys, name, text):
    status, out, err = reallocate(register, request_file(tmp_path, text), capsys)
    assert status == 0, out + err
    lines = load_register(register).register.set_index("customer")["credit_line_cents"]
    assert lines["C7"] == 90_000_000 and lines.sum() == 936_000_000
    assert verify(register) == []


# request text, the line the refusal names (None: the batch as a whole) and what it says there
REFUSED_REQUESTS = [
    ("amount that is not a number", "customer,change,reason\nC7,abc,up\nD24,-100000,down\n", 2, "not a number"),
    ("unknown customer", "customer,change,reason\nC7,100000,up\nX999,-100000,gone\n", 3, "X999"),
    ("unknown customer after a line break in a reason", 'customer,change,reason\nC7,100000,"up,\nand up"\n'
     "X999,-100000,gone\n", 3, "X999"),
    ("formula-like unknown customer", "customer,change,reason\nC7,100000,up\n=cmd|' /C calc'!A0,-100000,x\n",
     3, "=cmd|' /C calc'!A0"),
    ("huge number", "customer,change,reason\nC7,1e20,up\nD24,-1e20,down\n", 2, "implausibly large"),
    ("twenty-digit number", "customer,change,reason\nC7,99999999999999999999,up\nD24,-1,down\n", 2,
     "implausibly large"),
    ("infinity", "customer,change,reason\nC7,inf,up\nD24,-100000,down\n", 2, "not a number"),
    ("decimal comma", 'customer,change,reason\nC7,"100.000,00",up\nD24,-100000,down\n', 2, "commas may only group"),
    ("#N/A from a spreadsheet", "customer,change,reason\nC7,#N/A,up\nD24,-100000,down\n", 2, "#N/A"),
    ("blank customer", "customer,change,reason\n,100000,up\nD24,-100000,down\n", 2, "customer is blank"),
    ("10k-character customer", f"customer,change,reason\n{LONG},100000,up\nD24,-100000,down\n", 2,
     "customer 'xxxxx"),
    ("unbalanced after blank lines", "customer,change,reason\n\n\nC7,100000,up\n", None, "do not sum to zero"),
    ("cut below zero", "customer,change,reason\nC7,1000000,up\nD24,-1000000,down\n", 3, "would be negative"),
    ("missing change column", "customer,reason\nC7,up\n", None, "request.csv, row 1, column change"),
    ("empty file", "", None, "request.csv: the file is empty"),
    ("header of another file", "date,amount\n2024-01-01,5\n", None, "request.csv, row 1: not a reallocation request"),
]


@pytest.mark.parametrize("name, text, row, says", REFUSED_REQUESTS, ids=[r[0] for r in REFUSED_REQUESTS])
def test_hostile_requests_are_refused_naming_the_line(register, tmp_path, capsys, name, text, row, says):
    before = register.read_bytes()
    status, out, err = reallocate(register, request_file(tmp_path, text), capsys)
    assert status == 2, out + err
    assert register.read_bytes() == before
    said = out + err
    assert "request.csv" in said and says in said, said
    if row is not None:  # the check table: one line per request row, numbered as the file shows it
        lines = [ln.split(None, 1) for ln in out.splitlines() if ln.strip()[:1].isdigit()]
        named = [rest for first, rest in lines if first == str(row)]
        assert named and says[:40] in named[0], out
    assert max(map(len, out.splitlines()), default=0) < 600  # a pasted 10k-character name is cut


def test_an_output_that_cannot_be_written_is_named_without_a_traceback(tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("date,customer,type,amount\n2024-03-01,A,invoice,100\n", encoding="utf-8")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    status, out, err = run(["review", ledger, "--year", "2024", "--quiet", "--out", blocker / "reg.xlsx"], capsys)
    assert status == 4 and str(blocker / "reg.xlsx") in err and "nothing was changed" in err


def test_binary_junk_as_a_request_is_refused(register, tmp_path, capsys):
    path = tmp_path / "request.csv"
    path.write_bytes(b"\x00\x01\xff\xfe junk \x80\x81")
    status, out, err = reallocate(register, path, capsys)
    assert status == 2 and "request.csv" in out + err


def test_formula_like_reason_and_roles_are_stored_as_given(register, tmp_path, capsys):
    reason = "=HYPERLINK(\"http://evil.example\",\"click\")"
    text = ("customer,change,reason\n"
            f'C7,100000,"{reason.replace(chr(34), chr(34) * 2)}"\nD24,-100000,"=cmd|\' /C calc\'!A0"\n')
    status, out, err = run(["reallocate", register, "--request", request_file(tmp_path, text),
                            "--requester", "@SUM(1,2)", "--approver", "+GM Li", "--recorder=-Finance",
                            "--batch-id", "H2"], capsys)
    assert status == 0, out + err
    audit = load_register(register).audit
    audit = audit.iloc[1:]  # below the sign-off
    assert list(audit["reason"]) == [reason, "=cmd|' /C calc'!A0"]
    assert set(audit["requester"]) == {"@SUM(1,2)"} and set(audit["recorder"]) == {"-Finance"}
    cells = openpyxl.load_workbook(register)[AUDIT]
    assert all(c.data_type == "s" for row in cells.iter_rows(min_row=3, min_col=7, max_col=10) for c in row)
    assert verify(register) == []


# ---------------------------------------------------------------- CSVs the add-in writes


def rename_customers(path: Path, names: dict[str, str]) -> None:
    book = openpyxl.load_workbook(path)
    for row in book["Register"].iter_rows(min_row=2, max_col=1):
        if row[0].value in names:
            row[0].value = names[row[0].value]
            row[0].data_type = "s"
    book.save(path)


HOSTILE_CODES = {"A1": "=A1+1", "C9": "-C9", "D30": "@D30", "B5": "+B5"}


def test_suggested_request_csv_is_defused_and_reads_back_unchanged(tmp_path, capsys):
    """A spreadsheet opening the CSV sees text; crm-addin reading it back sees the customer's own code."""
    register = build_register(tmp_path / "register.xlsx")
    rename_customers(register, HOSTILE_CODES)
    sign(register)
    out = tmp_path / "request.csv"
    status, _, err = run(["suggest", register, "--amount", "5万", "--for", "=A1+1", "--out", out], capsys)
    assert status == 0, err
    with open(out, encoding="utf-8-sig", newline="") as handle:
        cells = [c for row in csv.reader(handle) for c in row]
    assert "'=A1+1" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _is_number(c))]
    request = read_request_csv(out)
    assert "=A1+1" in set(request.lines["customer"])
    assert set(request.lines["customer"]) <= set(HOSTILE_CODES.values()) | {"A2", "B117", "C3", "C7", "D24"}
    assert request.lines["change_cents"].sum() == 0
    status, said, err = reallocate(register, out, capsys)
    assert status == 0, said + err
    audit = load_register(register).audit
    assert "=A1+1" in set(audit["customer"]) and verify(register) == []


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_a_request_csv_edited_by_hand_keeps_a_leading_quote_only_before_a_formula_sign(tmp_path):
    text = "customer,change,reason\n'=A1+1,'-100,'@note\n'quoted,100,'plain\n"
    request = read_request_csv(request_file(tmp_path, text))
    assert list(request.lines["customer"]) == ["=A1+1", "'quoted"]
    assert list(request.lines["change_cents"]) == [-10_000, 10_000]
    assert list(request.lines["reason"]) == ["@note", "'plain"]


def test_the_demo_ledger_csv_has_no_cell_a_spreadsheet_would_compute(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    frame = pd.read_csv(tmp_path / "demo_ledger.csv", dtype=str, keep_default_na=False)
    text_cols = [c for c in frame.columns if c not in ("amount", "vat_rate")]
    risky = frame[text_cols].apply(lambda s: s.str[:1].isin(["=", "+", "-", "@", "\t", "\r"])).to_numpy()
    assert not risky.any()




# ---------------------------------------------------------------- malformed CSV lines


MALFORMED = ("date,customer,type,amount\n"
             "2024-03-01,A,invoice,100\n"        # row 2
             "2024-03-02,A,invoice,1,000\n"      # row 3: an unquoted thousands comma, one field too many
             "\n"                                # row 4: blank, kept as a row
             '2024-03-03,"B\nsecond line",invoice,5\n'  # row 5: a quoted line break is one row
             "2024-03-04,A,invoice\n"            # row 6: one field short
             "2024-03-05,A,invoice,x\n")         # row 7: an ordinary bad value


def test_a_line_with_one_field_too_many_is_refused_naming_its_row(tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(MALFORMED, encoding="utf-8")
    out = tmp_path / "register.xlsx"
    status, _, err = run(["review", ledger, "--year", "2024", "--quiet", "--out", out], capsys)
    assert status == 2 and not out.exists()
    assert "ledger.csv, row 3: the line has 5 fields where the header has 4" in err
    assert "ledger.csv, row 6: the line has 3 fields where the header has 4" in err
    assert "ledger.csv, row 7, column amount: amount 'x' is not a number" in err  # later rows keep their numbers


def test_with_skip_bad_rows_the_rest_is_reviewed_and_the_line_still_listed(tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(MALFORMED, encoding="utf-8")
    out = tmp_path / "register.xlsx"
    status, _, err = run(["review", ledger, "--year", "2024", "--quiet", "--out", out, "--skip-bad-rows"], capsys)
    assert status == 0, err
    assert "row 3: the line has 5 fields" in err and "row 7, column amount" in err
    assert register_totals(out) == {"A": (100, 0), "B second line": (5, 0)}  # spaces normalized


def test_review_file_refuses_a_malformed_line_naming_its_row(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRM_ADDIN_CACHE", str(tmp_path / "cache"))
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(MALFORMED, encoding="utf-8")
    for engine in ("inprocess", "dask"):
        status, _, err = run(["review-file", ledger, "--year", "2024", "--no-cache", "--engine", engine], capsys)
        assert status == 2 and "ledger.csv, row 3: the line has 5 fields" in err, (engine, err)
        # the other rows are validated as usual: every problem listed at once
        assert "row 6: the line has 3 fields" in err and "row 7, column amount" in err, (engine, err)


def _numbered_ledger(rows: int) -> tuple[str, set]:
    """A ledger of `rows` rows with malformed lines, blank lines and quoted line breaks spread over
    it and a text amount far down (the chunked reader then reads again with every column as text);
    and the (row, column) of every error a reader must report."""
    lines, errors = ["date,customer,type,amount"], set()
    for row in range(2, rows + 2):
        if row % 997 == 0:
            lines.append(f"2024-01-01,C{row},invoice,1,{row}")
            errors.add((row, None))
        elif row % 991 == 0:
            lines.append("")
        elif row % 983 == 0:
            lines.append(f'2024-01-01,"C\n{row}",invoice,1')
        elif row == rows - 5:
            lines.append("2024-01-01,C1,invoice,abc")
            errors.add((row, "amount"))
        else:
            lines.append(f"2024-01-{row % 28 + 1:02d},C{row % 50},invoice,{row % 1000}.25")
    return "\n".join(lines) + "\n", errors


def test_rows_after_malformed_lines_keep_their_numbers(tmp_path, monkeypatch):
    """Small Arrow blocks: several threads read them, the first malformed line sends the read back
    to one thread (which knows line numbers), and each block's rows are placed by number, quoted
    line breaks and all."""
    from crm_app.io import files

    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 4096)
    text, expected = _numbered_ledger(12_000)
    path = tmp_path / "ledger.csv"
    path.write_text(text, encoding="utf-8")
    whole = files.read_ledger(path)
    assert {(i.row, i.column) for i in whole.errors} == expected and whole.input_rows == 12_000
    kept = whole.rows["row"].to_numpy()
    assert set(kept).isdisjoint(row for row, _ in expected) and len(kept) > 11_900


def test_a_caller_that_cannot_report_malformed_lines_gets_a_refusal(tmp_path):
    from crm_app.io.files import read_table
    from crm_core.issues import CrmInputError

    path = tmp_path / "ledger.csv"
    path.write_text(MALFORMED, encoding="utf-8")
    with pytest.raises(CrmInputError) as refused:
        read_table(path)
    assert [(i.row, i.source) for i in refused.value.issues] == [(3, "ledger.csv"), (6, "ledger.csv")]


# ---------------------------------------------------------------- request headers and lines


CHINESE_REQUESTS = [
    ("客户编码,调整额,原因", "register labels"),
    ("客户,调整金额,原因", "short forms"),
    ("客户代码,调整金额(元),调整原因", "bracketed unit"),
    ("Customer Code,Change,Reason", "English in capitals"),
]


@pytest.mark.parametrize("header, name", CHINESE_REQUESTS, ids=[n for _, n in CHINESE_REQUESTS])
def test_a_request_with_chinese_headers_applies(register, tmp_path, capsys, header, name):
    text = f"{header}\nC7,100000,提额\nD24,-100000,回款慢\n"
    status, out, err = reallocate(register, request_file(tmp_path, text), capsys)
    assert status == 0, out + err
    lines = load_register(register).register.set_index("customer")["credit_line_cents"]
    assert lines["C7"] == 90_000_000 and lines["D24"] == 20_000_000
    assert list(load_register(register).audit["reason"].iloc[1:]) == ["提额", "回款慢"]


def test_an_unquoted_thousands_comma_in_a_request_is_refused_not_read_as_1(register, tmp_path, capsys):
    before = register.read_bytes()
    text = "customer,change,reason\nC7,1,000,up\nD24,-1,down\n"  # sums to zero if C7 were read as 1.00
    status, out, err = reallocate(register, request_file(tmp_path, text), capsys)
    assert status == 2 and register.read_bytes() == before
    line = next(ln for ln in out.splitlines() if ln.split()[:2] == ["2", "C7"])
    assert "the line has 4 fields where the header has 3" in line


def test_an_unquoted_comma_in_the_reason_stays_in_the_reason(register, tmp_path, capsys):
    text = "customer,change,reason\nC7,100000,rate improved, sales growing\nD24,-100000,pays late,\n"
    status, out, err = reallocate(register, request_file(tmp_path, text), capsys)
    assert status == 0, out + err
    assert list(load_register(register).audit["reason"].iloc[1:]) == ["rate improved, sales growing", "pays late"]


# ---------------------------------------------------------------- row numbers as integers


def test_verify_prints_row_numbers_as_integers(tmp_path, capsys):
    register = build_register(tmp_path / "register.xlsx")
    book = openpyxl.load_workbook(register)
    book["Register"].cell(row=3, column=next(c.column for c in book["Register"][1]
                                             if "Credit line" in str(c.value))).value = 1
    about = book["About"]
    next(r for r in about.iter_rows(min_row=2) if r[0].value == "budget")[0].value = None  # a problem with no row
    book.save(register)
    status, out, err = run(["verify", register], capsys)
    assert status == 1, out + err
    table = out.split("register does not verify")[0]
    assert "NaN" not in table and "None" not in table and not re.search(r"(?<![\d,.])\d+\.0(?!\d)", table), table
    assert re.search(r"Register +3 ", table), table


def test_printed_issues_show_whole_row_numbers_whatever_the_row_holds(capsys):
    import numpy as np

    from crm_app.cli import main as cli
    from crm_app.cli import output
    from crm_core.issues import Issue, IssueCode

    assert cli.print_issues is output.print_issues  # one printer, whichever module a command imports
    issues = [Issue(IssueCode.BLANK, "a", row=3.0, source="f.csv"), Issue(IssueCode.BLANK, "b", row=np.float64("nan")),
              Issue(IssueCode.BLANK, "c", row=np.int64(4)), Issue(IssueCode.BLANK, "d", row=pd.NA),
              Issue(IssueCode.BLANK, "e")]
    output.print_issues(issues)
    listed = capsys.readouterr().err
    assert listed.startswith("5 problem(s) / 问题:\n") and "f.csv, row 3: a" in listed and "row 4: c" in listed
    output.print_issues(issues, table=True)
    table = capsys.readouterr().err
    assert re.search(r"f\.csv +3 ", table) and re.search(r" 4 +error +blank +c", table), table
    for said in (listed, table):
        assert not re.search(r"3\.0|nan|NaN|None|<NA>", said), said


def test_the_issue_printer_shows_the_first_fifty_and_says_how_many_more(capsys):
    from crm_app.cli.output import print_issues
    from crm_core.issues import Issue, IssueCode

    issues = [Issue(IssueCode.BLANK, f"bad {n}", row=n + 2, source="f.csv") for n in range(120)]
    print_issues(issues)
    said = capsys.readouterr().err
    assert "row 51: bad 49" in said and "bad 50" not in said and said.endswith("  ... and 70 more\n"), said
    print_issues(issues, limit=None, table=True)
    assert "bad 119" in capsys.readouterr().err


# Counted for the README's reliability section.
CLI_CASES = len(CSV_CASES) + len(XLSX_CASES) + len(ACCEPTED_REQUESTS) + len(REFUSED_REQUESTS) + 1 + len(CHINESE_REQUESTS)
