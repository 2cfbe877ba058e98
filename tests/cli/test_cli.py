"""The command line on files: the demo, a user's ledger, and errors that name file, row and column."""
import subprocess
import sys

import openpyxl
import pandas as pd

from crm_app.cli.main import main


def test_demo_writes_a_register_whose_lines_add_up_to_the_budget(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "credit lines total" in out and "(= budget)" in out
    registers = list(tmp_path.glob("demo_register.xls*"))
    assert len(registers) == 1
    ws = openpyxl.load_workbook(registers[0])["Register"]
    assert ws.max_row - 1 == 450


def test_review_refuses_a_bad_ledger_naming_file_row_and_column(tmp_path, capsys):
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("日期,客户,类型,金额\n2024-01-02,A,发票,100\n2024-01-03,A,回款,abc\n", encoding="utf-8")
    assert main(["review", str(ledger), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ledger.csv, row 3, column 金额 (amount): amount 'abc' is not a number" in err
    assert not (tmp_path / "ledger_register.xlsx").exists()


def test_review_a_gb18030_csv_with_a_policy_file(tmp_path, capsys):
    ledger = tmp_path / "erp.csv"
    ledger.write_bytes("日期,客户,类型,金额\n2010-01-02,甲公司,发票,\"1,000.00\"\n2010-02-03,甲公司,收款,1170\n"
                       .encode("gb18030"))
    policy = tmp_path / "p.toml"
    policy.write_text('credit_ratio = 0.5\n', encoding="utf-8")
    out = tmp_path / "reg.xlsx"
    assert main(["review", str(ledger), "--policy", str(policy), "--year", "2010", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "1,000.00 x 50% x (1 + 17%) = 585.00" in text
    frame = pd.read_excel(out, sheet_name="Register")
    frame.columns = [" ".join(str(c).split()) for c in frame.columns]  # headers in two lines: "中文\nEnglish"
    assert frame["客户编码 Code"][0] == "甲公司" and frame["回款率 Collection rate"][0] == 1.0


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["review", str(tmp_path / "nope.csv"), "--quiet"]) == 4  # cannot be read: README's exit 4
    assert "file not found" in capsys.readouterr().err


def test_python_dash_m_entry_points_work():
    for module in ("crm_addin", "crm_app"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "crm-addin" in done.stdout


def test_review_reads_xlsx_and_parquet_ledgers_alike(tmp_path, capsys):
    from crm_core.demo import demo_ledger

    raw = demo_ledger(customers=30, yearly_sales=1_000_000)
    raw.to_parquet(tmp_path / "l.parquet")
    raw.assign(date=raw["date"].dt.strftime("%Y-%m-%d")).to_excel(tmp_path / "l.xlsx", sheet_name="Ledger", index=False)
    summaries = []
    for name in ("l.parquet", "l.xlsx"):
        assert main(["review", str(tmp_path / name), "--quiet", "--out", str(tmp_path / f"{name}.out.xlsx")]) == 0
        summaries.append(capsys.readouterr().out.split("policy")[1])
    assert summaries[0] == summaries[1]


def test_row_numbers_count_empty_lines_in_both_readers(tmp_path):
    from crm_app.engines.ledger_file import read_ledger_file
    from crm_app.io.files import read_ledger

    path = tmp_path / "gaps.csv"
    path.write_text("date,customer,type,amount\n2024-01-01,A,invoice,1\n\n2024-01-02,A,invoice,x\n",
                    encoding="utf-8")
    for ledger in (read_ledger(path), read_ledger_file(path)):
        assert [(i.row, i.column) for i in ledger.errors] == [(4, "amount")]
        assert ledger.blank_rows == 1


def test_skip_bad_rows_is_offered_only_where_it_would_help(tmp_path, capsys):
    """A file that is not a ledger, or a ledger with no usable row, is not told to skip its bad rows."""
    cases = {"not_a_ledger.csv": ("sku,stock\nX1,3\n", "not a ledger"),
             "all_bad.csv": ("date,customer,type,amount\n2024-01-02,A,invoice,abc\n", "no row of the ledger is usable"),
             "one_bad.csv": ("date,customer,type,amount\n2024-01-02,A,invoice,abc\n2024-01-03,A,invoice,5\n",
                             "pass --skip-bad-rows")}
    for name, (text, said) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        for extra in ([], ["--skip-bad-rows"]) if name != "one_bad.csv" else ([],):
            assert main(["review", str(path), "--quiet", *extra]) == 2
            err = capsys.readouterr().err
            assert said in err and ("--skip-bad-rows" in err) == (name == "one_bad.csv"), err


def test_a_year_with_nothing_dated_in_it_is_said_on_both_review_commands(tmp_path, capsys):
    """--year 2031 on a 2024 ledger reviews nothing: a warning says why every customer is unrated
    and the budget 0, on the terminal and (review-file) in the result's issues, where a plain
    summary of zeros looked like a real review. The warning names the file, as every other does."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("日期,客户,类型,金额\n2024-01-02,A,发票,100\n2024-03-03,A,回款,113\n", encoding="utf-8")
    for command in ("review", "review-file"):
        extra = ["--out", str(tmp_path / f"{command}.xlsx"), "--quiet"] if command == "review" else ["--no-cache"]
        assert main([command, str(ledger), "--year", "2031", *extra]) == 0
        err = capsys.readouterr().err
        assert "warning: ledger.csv: no sales and no collections are dated in 2031" in err, err  # names the file
        assert "2032 credit budget is 0" in err
    assert main(["review", str(ledger), "--year", "2024", "--out", str(tmp_path / "ok.xlsx"), "--quiet"]) == 0
    assert "no sales and no collections" not in capsys.readouterr().err


def test_an_output_named_for_another_format_is_refused_before_any_work(tmp_path, capsys):
    """The format follows the name: a register asked for as .txt would be a workbook no text editor
    opens, so the name is refused (usage error 64) and nothing is written."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("日期,客户,类型,金额\n2024-01-02,A,发票,100\n", encoding="utf-8")
    for command, name, allowed in (("review", "out.txt", ".xlsx or .xlsm"),
                                   ("review-file", "out.TXT", ".xlsx, .xlsm, .csv or .parquet")):
        assert main([command, str(ledger), "--out", str(tmp_path / name)]) == 64
        assert f"name a {allowed} file" in capsys.readouterr().err
        assert not (tmp_path / name).exists()
