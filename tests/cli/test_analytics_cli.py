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
