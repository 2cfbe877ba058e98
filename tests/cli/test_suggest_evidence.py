"""`crm-addin suggest --for C --amount X` prints the raise evidence beside the proposed cuts: one page
for the CEO (the reference case: C7's collection rate improved and its sales grew)."""
import csv
import io

import openpyxl
import pytest

from crm_app.cli.main import main
from tests.core.test_trends import reference_frame
from tests.support.registers import build_register


@pytest.fixture
def register(tmp_path):
    """The workflow tests' register (budget year 2011) with the reference ledger of 2009-2010 on its
    Ledger sheet: C7 78% -> 86% on 400,000 -> 500,000; B117 90% -> 80%; C3 and D24 pay poorly."""
    path = build_register(tmp_path / "register.xlsx")
    book = openpyxl.load_workbook(path)
    ws = book.create_sheet("Ledger")
    ws.append(["date", "customer", "type", "amount"])
    for row in reference_frame().itertuples(index=False):
        ws.append(list(row))
    book.save(path)
    return path


def run(argv, capsys):
    status = main([str(a) for a in argv])
    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    return status, said.out, said.err


def test_the_page_shows_c7s_evidence_and_the_cuts_beside_it(register, tmp_path, capsys):
    out = tmp_path / "request.csv"
    only_b117 = "A1,A2,B5,C3,C9,D24,D30"  # left to cut: B117, whose line is 200,000 above its balance
    status, page, _ = run(["suggest", register, "--amount", "10万", "--for", "C7", "--exclude", only_b117,
                           "--out", out], capsys)
    assert status == 0
    assert "raise for C7: +100,000.00, funded by" in page
    assert "evidence / 调增依据 (2010 against 2009):" in page
    sales = next(line for line in page.splitlines() if line.strip().startswith("net sales"))
    assert sales.split()[-4:] == ["400,000.00", "500,000.00", "+100,000.00", "(+25.0%)"]
    rate = next(line for line in page.splitlines() if line.strip().startswith("collection rate /"))
    assert rate.split()[-4:] == ["78.0%", "86.0%", "+8.0", "pts"]
    assert "C7: raise candidate: rate improved, sales grew / 调增候选：回款率提高，销售增长" in page
    cuts = page.split("proposed cuts / 建议调减")[1].split("other raise candidates")[0]
    assert "rate 2009" in cuts and "rate 2010" in cuts and "C7" not in cuts
    b117 = next(line for line in cuts.splitlines() if line.split()[:1] == ["B117"])
    assert b117.split()[1:4] == ["-100,000.00", "90.0%", "80.0%"]  # both years' rates from the ledger
    assert "other raise candidates 2010 against 2009" in page and ": 0" in page
    with open(out, encoding="utf-8-sig", newline="") as handle:
        request = list(csv.reader(handle))
    assert request[0] == ["customer", "change", "reason"] and request[1] == ["C7", "100000.00", ""]


def test_a_customer_that_is_no_candidate_is_named_with_the_reason(register, capsys):
    status, csv_text, page = run(["suggest", register, "--amount", "1万", "--for", "B117"], capsys)
    assert status == 0
    assert "B117: NOT a raise candidate / 非调增候选: rate did not improve / 回款率未提高" in page
    assert "other raise candidates 2010 against 2009 / 调增候选" in page and "  C7: collection rate 78.0% -> 86.0%" in page


def test_without_out_the_standard_output_is_the_request_csv_alone(register, capsys):
    status, csv_text, page = run(["suggest", register, "--amount", "1万", "--for", "C7"], capsys)
    assert status == 0
    lines = list(csv.reader(io.StringIO(csv_text)))
    assert lines[0] == ["customer", "change", "reason"] and lines[1] == ["C7", "10000.00", ""]
    assert all(len(line) == 3 for line in lines)
    assert sum(float(line[1]) for line in lines[1:]) == 0
    assert "evidence / 调增依据" in page and "evidence" not in csv_text


def test_a_register_without_a_ledger_sheet_still_gets_its_cuts_and_says_why_no_evidence(tmp_path, capsys):
    path = build_register(tmp_path / "register.xlsx")
    status, csv_text, page = run(["suggest", path, "--amount", "1万", "--for", "C7"], capsys)
    assert status == 0 and csv_text.splitlines()[1] == "C7,10000.00,"
    assert "the register has no Ledger sheet: no raise evidence / 登记表无台账表，无调增依据" in page
    assert "proposed cuts / 建议调减" in page


def test_bad_ledger_rows_give_no_evidence_and_say_where(register, capsys):
    book = openpyxl.load_workbook(register)
    book["Ledger"]["D3"] = "abc"
    book.save(register)
    status, _, page = run(["suggest", register, "--amount", "1万", "--for", "C7"], capsys)
    assert status == 0
    assert "the Ledger sheet has 1 bad row(s), first: register.xlsx, row 3" in page and "no raise evidence" in page
