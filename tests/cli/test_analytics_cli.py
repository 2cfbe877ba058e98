"""`crm-addin kpis` and `crm-addin aging` on ledger files: the published figures on stdout, the
options, and the command-line contract (an exit status from README's table, the file named, never
a traceback) on good and broken files alike."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from crm_app.cli import main as cli
from crm_app.cli.main import main
from tests.cli.test_cli_corpus import (  # noqa: F401 - the corpus's autouse fixtures apply here too
    CORPUS,
    _root_reads_no_chmod_000_file,
    _template_built_once,
)

CJK = re.compile(r"[\u4e00-\u9fff]")
HEADER = ["date", "customer", "type", "amount", "due_date", "invoice_no", "applies_to"]
# domain.md section 9: DSO 45, best possible DSO 12, ADD 33 over April 2024 (no VAT, so amounts are as billed)
DSO_ROWS = [["2024-03-01", "X", "opening balance", "5000", "", "", ""],
            ["2024-04-01", "X", "invoice", "6000", "2024-04-15", "F1", ""],
            ["2024-04-25", "X", "invoice", "4000", "2024-05-25", "F2", ""]]
# CEI 55.93% over April-June 2024
CEI_ROWS = [["2024-03-15", "Y", "opening balance", "6200", "", "", ""],
            ["2024-04-10", "Y", "invoice", "4550", "2024-05-10", "G1", ""],
            ["2024-06-01", "Y", "invoice", "2750", "2024-06-15", "G2", ""],
            ["2024-06-20", "Y", "invoice", "3590", "2024-07-20", "G3", ""],
            ["2024-06-25", "Y", "receipt", "10750", "", "", ""]]
NO_VAT = 'name = "no VAT"\n[vat]\n"2000-01-01" = 0.0\n'


def write_ledger(path: Path, rows, header=HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


@pytest.fixture
def files(tmp_path):
    policy = tmp_path / "no_vat.toml"
    policy.write_text(NO_VAT, encoding="utf-8")
    return write_ledger(tmp_path / "ledger.csv", DSO_ROWS + CEI_ROWS), policy


def run(argv, capsys) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return status, out.out, out.err


def test_kpis_print_dso_45_best_12_and_add_33(files, capsys):
    ledger, policy = files
    status, out, _ = run(["kpis", ledger, "--as-of", "2024-04-30", "--months", "1", "--policy", policy], capsys)
    assert status == 0
    assert "2024-04-01..2024-04-30 (1 months, 30 days)" in out.splitlines()[0]
    x = out.splitlines()[2].split()
    assert x[0] == "X" and x[1:6] == ["10,000.00", "5,000.00", "15,000.00", "4,000.00", "0.00"]
    assert x[6:9] == ["45.0", "12.0", "33.0"]
    assert out.splitlines()[-2].strip().startswith("total / 合计")
    assert out.splitlines()[-1].endswith("receivables / 应收: 25,750.00   DSO: 53.1 days   CEI: 0.00%")  # X and Y


def test_kpis_print_cei_55_93_percent_and_n_a_where_not_defined(files, capsys):
    ledger, policy = files
    status, out, _ = run(["kpis", ledger, "--as-of", "2024-06-30", "--months", "3", "--policy", policy], capsys)
    assert status == 0
    y = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("Y "))
    assert y[9] == "55.93%"
    status, out, _ = run(["kpis", ledger, "--as-of", "2024-09-30", "--months", "3", "--policy", policy], capsys)
    x = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("X "))
    assert x[1] == "0.00" and x[6] == "n/a"  # no credit sales in July-September: no DSO


def test_kpis_and_aging_by_tier_and_as_csv(files, tmp_path, capsys):
    ledger, policy = files
    out_csv = tmp_path / "kpis.csv"
    status, out, _ = run(["kpis", ledger, "--as-of", "2024-06-30", "--by", "tier", "--policy", policy,
                          "--out", out_csv], capsys)
    assert status == 0 and "tier / 等级" in out
    table = pd.read_csv(out_csv, encoding="utf-8-sig")
    assert list(table.iloc[:, 0]) == ["unrated", "total / 合计"]  # no sales in 2023: not rated
    assert table["receivables / 期末应收"].iloc[-1] == pytest.approx(15_000 + 6_340)
    status, out, _ = run(["aging", ledger, "--as-of", "2024-06-30", "--by", "tier", "--policy", policy], capsys)
    assert status == 0 and "unrated" in out and "total / 合计" in out


def test_aging_with_nine_buckets_document_basis_and_named_invoices(tmp_path, capsys):
    policy = tmp_path / "no_vat.toml"
    policy.write_text(NO_VAT, encoding="utf-8")
    rows = [["2024-01-01", "A", "invoice", "100", "2024-01-31", "F1", ""],
            ["2024-06-01", "A", "invoice", "100", "2024-06-20", "F2", ""],
            ["2024-06-25", "A", "receipt", "100", "", "", "F2"],
            ["2024-06-26", "A", "receipt", "1", "", "", "F404"],
            ["2024-07-26", "A", "receipt", "99", "", "", ""]]  # after the as-of date: left out
    ledger = write_ledger(tmp_path / "ledger.csv", rows)
    out_csv = tmp_path / "aging.csv"
    status, out, err = run(["aging", ledger, "--as-of", "2024-06-30", "--buckets", "30,60,90,120,180,270,360,540,720",
                            "--policy", policy, "--out", out_csv], capsys)
    assert status == 0, err
    table = pd.read_csv(out_csv, encoding="utf-8-sig").set_index("customer / 客户")
    assert list(table.columns)[-4:] == ["541-720", "720+", "credit / 未核销", "total / 合计"]
    assert table.loc["A", "121-180"] == 99 and table.loc["A", "total / 合计"] == 99  # F1 open (less 1), F2 paid
    assert "ledger.csv, row 5, column applies_to" in err and "'F404'" in err
    status, out, _ = run(["aging", ledger, "--as-of", "2024-06-30", "--basis", "document_date", "--policy", policy,
                          "--out", out_csv], capsys)
    assert status == 0 and "days since the document date" in out
    assert pd.read_csv(out_csv, encoding="utf-8-sig").set_index("customer / 客户").loc["A", "90+"] == 99


def test_a_formula_like_customer_is_quoted_in_the_csv(tmp_path, capsys):
    ledger = write_ledger(tmp_path / "ledger.csv", [["2024-03-01", "=cmd", "invoice", "100", "", "", ""]])
    out_csv = tmp_path / "aging.csv"
    assert run(["aging", ledger, "--out", out_csv], capsys)[0] == 0
    assert pd.read_csv(out_csv, encoding="utf-8-sig").iloc[0, 0] == "'=cmd"


def test_bad_rows_refuse_the_ledger_unless_skipped(tmp_path, capsys):
    ledger = write_ledger(tmp_path / "ledger.csv", DSO_ROWS + [["2024-04-02", "X", "invoice", "abc", "", "", ""]])
    for command in ("kpis", "aging"):
        status, out, err = run([command, ledger, "--as-of", "2024-04-30"], capsys)
        assert status == cli.EXIT_INPUT and out == ""
        assert "ledger.csv, row 5, column amount" in err and "--skip-bad-rows" in err
        status, out, err = run([command, ledger, "--as-of", "2024-04-30", "--skip-bad-rows"], capsys)
        assert status == 0 and "row 5" in err and out.splitlines()[2].split()[0] == "X"


def test_the_as_of_date_defaults_to_the_ledgers_last_date(files, capsys):
    ledger, policy = files
    status, out, _ = run(["aging", ledger, "--policy", policy], capsys)
    assert status == 0 and "as of 2024-06-25" in out


@pytest.mark.parametrize("argv, says", [
    (["--as-of", "2024-02-30"], "--as-of"), (["--as-of", "soon"], "--as-of"),
    (["--buckets", "abc"], "--buckets"), (["--buckets", "30,-1"], "whole number of days"),
    (["--buckets", "30,30.5"], "whole number of days"), (["--out", "table.xlsx"], "name a .csv file"),
    (["--by", "region"], "--by"), (["--basis", "posting"], "--basis"),
])
def test_wrong_arguments_exit_64_naming_the_option(files, argv, says, capsys):
    ledger, _ = files
    command = "kpis" if "--buckets" not in argv and "--basis" not in argv else "aging"
    status, out, err = run([command, ledger, *argv], capsys)
    assert status == cli.EXIT_USAGE and says in err, err


def test_months_out_of_range_is_a_usage_error(files, capsys):
    ledger, _ = files
    for months in ("0", "121", "x"):
        assert run(["kpis", ledger, "--months", months], capsys)[0] == cli.EXIT_USAGE


def test_a_missing_ledger_is_a_file_that_cannot_be_read(tmp_path, capsys):
    for command in ("kpis", "aging"):
        status, out, err = run([command, tmp_path / "gone.csv"], capsys)
        assert status == cli.EXIT_SYSTEM and "gone.csv" in err


def test_an_output_that_cannot_be_written_exits_4(files, tmp_path, capsys):
    ledger, _ = files
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    status, _, err = run(["kpis", ledger, "--out", blocker / "k.csv"], capsys)
    assert status == cli.EXIT_SYSTEM and "nothing was changed" in err


@pytest.mark.parametrize("command", ["kpis", "aging"])
@pytest.mark.parametrize("broken", CORPUS, ids=[b.name for b in CORPUS])
def test_every_broken_file_is_one_message_naming_it(command, broken, tmp_path, capsys):
    path = tmp_path / f"broken{broken.suffix}"
    broken.make(path)
    status = main([command, str(path)])
    said = capsys.readouterr()
    text = said.out + said.err
    assert "Traceback" not in text
    assert status == (cli.EXIT_SYSTEM if broken.fault == "machine" else cli.EXIT_INPUT), text
    assert len([line for line in text.splitlines() if path.name in line]) == 1, text


@pytest.mark.parametrize("command", ["kpis", "aging"])
def test_help_is_bilingual_for_every_option(command, capsys):
    from tests.cli.test_cli_corpus import subparsers

    parser = subparsers(cli.build_parser())[command]
    assert parser.description and CJK.search(parser.description)
    for action in parser._actions:
        assert action.help and CJK.search(action.help) and re.search(r"[A-Za-z]{3}", action.help), action.dest
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: crm-addin {command}")


# ---------------------------------------------------------------- commission and funnel
# domain.md section 10: owner Li, net sales 100,000, collected 117,000 at 17% VAT, written off 11,700, rate 2%
COMMISSION_ROWS = [["2017-01-10", "L1", "invoice", "100000", "", "", ""],
                   ["2017-03-10", "L1", "receipt", "117000", "", "", ""],
                   ["2017-06-10", "L1", "write_off", "11700", "", "", ""],
                   ["2017-02-10", "W1", "invoice", "50000", "", "", ""],
                   ["2017-05-10", "W1", "receipt", "23400", "", "", ""],
                   ["2017-02-10", "U1", "invoice", "1000", "", "", ""],
                   ["2018-01-05", "U1", "receipt", "10", "", "", ""]]


@pytest.fixture
def sales(tmp_path):
    owners = tmp_path / "owners.csv"
    owners.write_text("客户编码,业务员\nL1,Li\nW1,Wang\n", encoding="utf-8")
    return write_ledger(tmp_path / "sales.csv", COMMISSION_ROWS), owners


def _owner_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines()[2:]:
        words = line.split()
        rows[words[0]] = words[-9:]
    return rows


def test_commission_li_2000_payable_200_clawed_back_1800_net(sales, tmp_path, capsys):
    ledger, owners = sales
    status, out, _ = run(["commission", ledger, "--owners", owners, "--year", "2017", "--out", tmp_path / "c.csv"],
                         capsys)
    assert status == 0 and "2017-01-01..2017-12-31, rate 2.00%" in out.splitlines()[0]
    li = _owner_rows(out)["Li"]
    # net sales, collections and write-offs excl. VAT, earned, payable, withheld, released, clawed back, net
    assert li == ["100,000.00", "100,000.00", "10,000.00", "2,000.00", "2,000.00", "0.00", "0.00", "200.00",
                  "1,800.00"]
    assert _owner_rows(out)["Wang"][3:6] == ["1,000.00", "400.00", "600.00"]  # 40% collected: 600 withheld
    table = pd.read_csv(tmp_path / "c.csv", encoding="utf-8-sig")
    assert list(table.iloc[:, 0]) == ["Li", "Wang", "unassigned / 未分配", "total / 合计"]
    assert table["net payable / 实发提成"].tolist() == [1800.0, 400.0, 0.0, 2200.0]


def test_commission_rate_option_and_year_ending_on_as_of(sales, capsys):
    ledger, owners = sales
    status, out, _ = run(["commission", ledger, "--owners", owners, "--rate", "3%", "--as-of", "2017-12-31"], capsys)
    assert status == 0 and "rate 3.00%" in out
    assert _owner_rows(out)["Li"][-1] == "2,700.00"
    status, _, err = run(["commission", ledger, "--owners", owners, "--rate", "5"], capsys)
    assert status == cli.EXIT_USAGE and "--rate" in err and "5%" in err
    status, _, err = run(["commission", ledger, "--owners", owners, "--year", "2017", "--as-of", "2017-12-31"], capsys)
    assert status == cli.EXIT_USAGE


def test_commission_reads_owners_from_a_register_workbook(sales, tmp_path, capsys):
    import openpyxl

    ledger, _ = sales
    book = openpyxl.Workbook()
    book.active.title = "Register"
    book.active.append(["客户编码\nCode", "客户名称\nName", "负责人\nOwner"])
    book.active.append(["L1", "Li's customer", "Li"])
    book.create_sheet("Ledger")
    book.save(tmp_path / "register.xlsx")
    status, out, _ = run(["commission", ledger, "--owners", tmp_path / "register.xlsx", "--year", "2017"], capsys)
    assert status == 0 and _owner_rows(out)["Li"][-1] == "1,800.00"
    assert _owner_rows(out)["unassigned"][:1] == ["51,000.00"]  # W1 and U1: no owner in that register


def test_a_bad_owners_file_names_row_and_column(sales, tmp_path, capsys):
    ledger, _ = sales
    no_owner = tmp_path / "no_owner.csv"
    no_owner.write_text("customer,who\nL1,Li\n", encoding="utf-8")
    status, _, err = run(["commission", ledger, "--owners", no_owner], capsys)
    assert status == cli.EXIT_INPUT and "no_owner.csv, row 1, column owner" in err
    twice = tmp_path / "twice.csv"
    twice.write_text("customer,owner\nL1,Li\nL1,Wang\n,Zhao\n", encoding="utf-8")
    status, _, err = run(["commission", ledger, "--owners", twice], capsys)
    assert status == cli.EXIT_INPUT
    assert "twice.csv, row 3, column owner" in err and "twice.csv, row 4, column customer" in err
    status, _, err = run(["commission", ledger, "--owners", tmp_path / "gone.csv"], capsys)
    assert status == cli.EXIT_SYSTEM and "gone.csv" in err


@pytest.mark.parametrize("broken", CORPUS, ids=[b.name for b in CORPUS])
def test_a_broken_ledger_or_owners_file_is_one_message_naming_it(broken, sales, tmp_path, capsys):
    ledger, owners = sales
    path = tmp_path / f"broken{broken.suffix}"
    broken.make(path)
    for argv in (["commission", path, "--owners", owners], ["commission", ledger, "--owners", path]):
        status = main([str(a) for a in argv])
        said = capsys.readouterr()
        text = said.out + said.err
        assert "Traceback" not in text
        assert status in (cli.EXIT_SYSTEM, cli.EXIT_INPUT), text
        assert any(path.name in line for line in text.splitlines()), text


def test_funnel_plans_a_20_b_40_c_80_d_320_e_640(capsys):
    status, out, _ = run(["funnel", "--target", "1000000", "--deal", "50000"], capsys)
    assert status == 0 and "E->D 0.5, D->C 0.25" in out  # the policy's funnel_rate
    counts = [line.split() for line in out.splitlines()[2:]]
    assert counts == [["A", "20"], ["B", "40"], ["C", "80"], ["D", "320"], ["E", "640"]]
    status, out, _ = run(["funnel", "--target", "100万", "--deal", "50000", "--rates", "1/3,1,1,1"], capsys)
    assert status == cli.EXIT_USAGE
    status, out, _ = run(["funnel", "--target", "1000000", "--deal", "30000", "--rates", "0.3333;1;1;1"], capsys)
    # A = ceil(33.33) = 34 = B = C = D; E = ceil(34 / 0.3333 = 102.01) = 103
    assert status == 0 and out.splitlines()[-1].split() == ["E", "103"]


@pytest.mark.parametrize("argv, says", [
    (["--rates", "0.5,0.5"], "give 4 rates"), (["--rates", "0.5,0,1,1"], "above 0"),
    (["--rates", "0.5,50,1,1"], "50%"), (["--deal", "abc"], "--deal"),
])
def test_funnel_wrong_arguments_exit_64(argv, says, capsys):
    base = {"--target": "1000000", "--deal": "50000"}
    args = dict(base, **dict(zip(argv[::2], argv[1::2])))
    status, _, err = run(["funnel", *[x for kv in args.items() for x in kv]], capsys)
    assert status == cli.EXIT_USAGE and says in err, err


@pytest.mark.parametrize("command", ["commission", "funnel"])
def test_sales_commands_help_is_bilingual(command, capsys):
    test_help_is_bilingual_for_every_option(command, capsys)


@pytest.mark.parametrize("command", ["kpis", "aging"])
def test_year_without_by_tier_is_a_usage_error_not_ignored(files, capsys, command):
    """--year picks the year whose rates set --by tier's tiers; given alone it changed nothing, so a
    user asking for 2024's KPIs silently got the figures as of the ledger's last date."""
    ledger, policy = files
    status, out, err = run([command, ledger, "--policy", policy, "--year", "2024"], capsys)
    assert status == 64 and "--year sets the tiers of --by tier" in err and out == ""
    status, out, _ = run([command, ledger, "--policy", policy, "--year", "2024", "--by", "tier"], capsys)
    assert status == 0 and "total" in out
