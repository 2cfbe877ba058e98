"""Every sub-command against a corpus of broken files: an exit status from README's table, exactly
one message naming the file, never a traceback. Also the parts of the command line every command
shares: the exit-status table itself, --help on every option in both languages, --version, amounts.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from crm_app.cli import main as cli
from crm_app.cli.main import EXIT_CODES, main
from crm_app.workbook import builder as workbooks
from tests.support.registers import ROLES, ROOT, build_register, write_request

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
LEDGER_TEXT = "date,customer,type,amount\n2024-03-01,A,invoice,100\n2024-04-01,A,receipt,117\n"


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Broken:
    """One way a file can be wrong. `suffix`: its name's ending where the command does not decide
    one (a ledger, a request); `fault`: "content" (exit 2, or 1 for a --check) or "machine" (exit 4)."""

    name: str
    make: object  # (path) -> None
    suffix: str = ".csv"
    fault: str = "content"


def _truncated_workbook(path: Path) -> None:
    whole = build_register(path.with_name("whole_" + path.name)).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def _other_tool_workbook(path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Sales"
    book.active.append(["region", "quarter", "revenue"])
    book.active.append(["North", "Q1", 1200])
    book.create_sheet("Notes").append(["made by openpyxl, nothing to do with crm-addin"])
    book.save(path)


def _pandas_workbook(path: Path) -> None:
    pd.DataFrame({"sku": ["X1", "X2"], "stock": [3, 4]}).to_excel(path, sheet_name="Inventory", index=False)


UNREADABLE: set[str] = set()


def _unreadable(path: Path) -> None:
    """chmod 000; as root, who reads any file, Python's open refuses it as the kernel would others."""
    path.write_text(LEDGER_TEXT, encoding="utf-8")
    path.chmod(0)
    if AS_ROOT:
        UNREADABLE.add(os.path.realpath(path))


@pytest.fixture(autouse=True)
def _root_reads_no_chmod_000_file(monkeypatch):
    import builtins
    import io

    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) in UNREADABLE:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)  # pathlib's read_bytes and open go through io.open
    yield
    UNREADABLE.clear()


CORPUS = [
    Broken("empty file", lambda p: p.write_bytes(b"")),
    Broken("binary file", lambda p: p.write_bytes(bytes(range(256)) * 16)),
    Broken("xlsx that is not a zip", lambda p: p.write_text("not a zip, whatever the name says\n"), ".xlsx"),
    Broken("truncated xlsx", _truncated_workbook, ".xlsx"),
    Broken("directory", lambda p: p.mkdir(), fault="machine"),
    Broken("unreadable file", _unreadable, fault="machine"),
    Broken("malformed CSV line", lambda p: p.write_text(
        "date,customer,type,amount\n2024-03-01,A,invoice,100\n2024-03-02,A,invoice,1,000\n", encoding="utf-8")),
    Broken("request with an unquoted 1,000", lambda p: p.write_text(
        "customer,change,reason\nC7,1,000,up\nD24,-1,down\n", encoding="utf-8")),
    Broken("UTF-16 text", lambda p: p.write_bytes(LEDGER_TEXT.encode("utf-16"))),
    Broken("Latin-1 text", lambda p: p.write_bytes(
        "date,customer,type,amount\n2024-03-01,Café Zoë,invoice,100\n".encode("latin-1"))),
    Broken("workbook made by openpyxl", _other_tool_workbook, ".xlsx"),
    Broken("workbook made by pandas", _pandas_workbook, ".xlsx"),
]


@dataclass(frozen=True)
class Role:
    """Where a sub-command takes a file: `argv(file, good)` with the broken file in that place,
    `suffix` the name's ending there (None: the corpus item's own), `check` for a --check (exit 1
    for a file that is not as it should be)."""

    name: str
    argv: object
    suffix: str | None = None
    check: bool = False
    folder: bool = False  # the command takes a folder: the broken file goes inside it


ROLES_OF_FILES = [
    Role("review LEDGER", lambda f, g: ["review", f, "--quiet", "--out", g.out / "r.xlsx"]),
    Role("review-file LEDGER", lambda f, g: ["review-file", f, "--no-cache"]),
    Role("review --policy", lambda f, g: ["review", g.ledger, "--policy", f, "--quiet", "--out", g.out / "r.xlsx"],
         ".toml"),
    Role("policy --policy", lambda f, g: ["policy", "--policy", f], ".toml"),
    Role("verify REGISTER", lambda f, g: ["verify", f], ".xlsx"),
    Role("suggest REGISTER", lambda f, g: ["suggest", f, "--amount", "1万"], ".xlsx"),
    Role("reallocate REGISTER", lambda f, g: ["reallocate", f, "--request", g.request, *ROLES, "--dry-run"], ".xlsx"),
    Role("sign-off REGISTER", lambda f, g: ["sign-off", f, "--ceo", "Chen", "--cfo", "Liu", "--sales-director", "Wang"],
         ".xlsx"),
    Role("reallocate --request", lambda f, g: ["reallocate", g.register, "--request", f, *ROLES, "--dry-run"]),
    Role("demo --out", lambda f, g: ["demo", "--out", f, "--quiet"]),
    Role("commission LEDGER", lambda f, g: ["commission", f, "--owners", g.register]),
    Role("commission --owners", lambda f, g: ["commission", g.ledger, "--owners", f]),
    Role("build-vba --check", lambda f, g: ["build-vba", "--check", "--out", f], ".bas", check=True),
    Role("build-workbooks --check", lambda f, g: ["build-workbooks", "--check", "--out", f.parent], ".xlsm",
         check=True, folder=True),
]


def expected_status(role: Role, broken: Broken) -> int:
    if broken.fault == "machine":
        return cli.EXIT_SYSTEM
    if role.name == "demo --out":  # a file where the output folder should be
        return cli.EXIT_SYSTEM
    return cli.EXIT_DIFFERENCES if role.check else cli.EXIT_INPUT


def cases():
    for role in ROLES_OF_FILES:
        for broken in CORPUS:
            if role.name == "demo --out" and broken.name == "directory":
                continue  # an existing folder is a fine place for the demo's output
            yield pytest.param(role, broken, id=f"{role.name}-{broken.name}")


@dataclass(frozen=True)
class Good:
    """Sound files for the places a case does not break."""

    ledger: Path
    register: Path
    request: Path
    out: Path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Good:
    folder = tmp_path_factory.mktemp("good")
    ledger = folder / "ledger.csv"
    ledger.write_text(LEDGER_TEXT, encoding="utf-8")
    return Good(ledger, build_register(folder / "register.xlsx"), write_request(folder / "request.csv"),
                folder / "out")


_build_workbook = workbooks.build_workbook  # the real builder, before the fixture below stands in


@functools.cache
def _template_bytes() -> bytes:
    return _build_workbook()


@pytest.fixture(autouse=True)
def _template_built_once(monkeypatch, tmp_path):
    """The empty template takes seconds to build and is the same every time: build it once."""
    monkeypatch.setattr(workbooks, "build_workbook",
                        lambda *args, **kwargs: _build_workbook(*args, **kwargs) if args or kwargs else _template_bytes())
    monkeypatch.setenv("CRM_ADDIN_CACHE", str(tmp_path / "cache"))


def broken_file(tmp_path: Path, role: Role, broken: Broken) -> Path:
    suffix = role.suffix or broken.suffix
    folder = tmp_path / "given"
    folder.mkdir()
    path = folder / (workbooks.TEMPLATE_NAME if role.folder else f"broken{suffix}")
    broken.make(path)
    return path


def run(argv, capsys) -> tuple[int, str]:
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out + out.err


@pytest.mark.parametrize("role, broken", list(cases()))
def test_every_command_on_every_broken_file(role, broken, good, tmp_path, capsys):
    path = broken_file(tmp_path, role, broken)
    status, said = run(role.argv(path, good), capsys)
    assert "Traceback" not in said
    assert status == expected_status(role, broken), said
    named = path.parent.name if role.folder else path.name
    lines = [line for line in said.splitlines() if named in line]
    assert len(lines) == 1, said  # one message naming the file: not none, not one per column


@pytest.fixture(scope="module")
def libreoffice_workbook(soffice, tmp_path_factory) -> Path:
    """A workbook with unrelated sheets as LibreOffice Calc writes it: another tool's zip and XML."""
    from tests.support.libreoffice import recalculate

    folder = tmp_path_factory.mktemp("lo")
    _other_tool_workbook(folder / "sales.xlsx")
    return recalculate(folder / "sales.xlsx", folder / "saved")


@pytest.mark.libreoffice
@pytest.mark.parametrize("role", [r for r in ROLES_OF_FILES if r.suffix in (None, ".xlsx")], ids=lambda r: r.name)
def test_a_workbook_saved_by_libreoffice_is_one_message(role, libreoffice_workbook, good, tmp_path, capsys):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(libreoffice_workbook.read_bytes())
    status, said = run(role.argv(path, good), capsys)
    assert "Traceback" not in said
    assert status == expected_status(role, Broken("LibreOffice workbook", None)), said
    assert len([line for line in said.splitlines() if path.name in line]) == 1, said


SUBPROCESS_CASES = [
    ("review", "xlsx that is not a zip", ["review", "{f}", "--quiet"]),
    ("verify", "truncated xlsx", ["verify", "{f}"]),
    ("review", "malformed CSV line", ["review", "{f}", "--quiet"]),
    ("reallocate --request", "binary file", ["reallocate", "{register}", "--request", "{f}", *ROLES, "--dry-run"]),
]


@pytest.mark.parametrize("command, kind, argv", SUBPROCESS_CASES, ids=[f"{c}-{k}" for c, k, _ in SUBPROCESS_CASES])
def test_no_traceback_reaches_stderr_of_a_real_process(command, kind, argv, good, tmp_path):
    broken = next(b for b in CORPUS if b.name == kind)
    path = tmp_path / f"broken{broken.suffix}"
    broken.make(path)
    args = [a.format(f=path, register=good.register) for a in argv]
    done = subprocess.run([sys.executable, "-m", "crm_addin", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CRM_ADDIN_CACHE": str(tmp_path / "cache")})
    assert done.returncode == cli.EXIT_INPUT, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and path.name in done.stderr


def test_a_usage_error_in_a_real_process_exits_64_naming_the_option(good):
    done = subprocess.run([sys.executable, "-m", "crm_addin", "suggest", str(good.register), "--amount", "abc"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == cli.EXIT_USAGE
    assert "Traceback" not in done.stderr and "--amount" in done.stderr and "'abc' is not a number" in done.stderr


# ---------------------------------------------------------------- exit statuses


def readme_exit_table() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return {int(code): meaning.strip() for code, meaning in re.findall(r"^\| *(\d+) *\| *(.+?) *\|$", section, re.M)}


def test_the_readme_lists_the_exit_statuses_the_code_uses():
    assert set(readme_exit_table()) == set(EXIT_CODES) == {0, 1, 2, 3, 4, 64, 130}


def test_help_ends_with_the_exit_statuses(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"{code:>3}  {text}" in out for code, text in EXIT_CODES.items())


def test_a_missing_file_is_a_file_that_cannot_be_read(tmp_path, capsys):
    for argv in (["review", tmp_path / "gone.csv"], ["verify", tmp_path / "gone.xlsx"],
                 ["review-file", tmp_path / "gone.csv"], ["policy", "--policy", tmp_path / "gone.toml"]):
        status, said = run(argv, capsys)
        assert status == cli.EXIT_SYSTEM and "gone." in said and "Traceback" not in said, said


def test_usage_errors_exit_64(capsys):
    for argv in ([], ["no-such-command"], ["review"], ["suggest", "r.xlsx"], ["review", "l.csv", "--year", "x"],
                 ["review", "l.csv", "--year", "99999"], ["demo", "--seed", "-1"], ["review-file", "l.csv",
                                                                                     "--engine", "nosuch"]):
        status, said = run(argv, capsys)
        assert status == cli.EXIT_USAGE and "Traceback" not in said, (argv, said)


# ---------------------------------------------------------------- help, version, amounts


CJK = re.compile(r"[\u4e00-\u9fff]")


def subparsers(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_command_has_a_description_and_every_option_bilingual_help():
    parser = cli.build_parser()
    commands = subparsers(parser)
    assert set(commands) == {"demo", "review", "review-file", "sign-off", "reallocate", "suggest", "verify",
                             "policy", "build-workbooks", "build-vba", "doctor", "kpis", "aging",
                             "commission", "funnel"}
    for name, command in [("crm-addin", parser), *commands.items()]:
        assert command.description and len(command.description) > 20, name
        for action in command._actions:
            assert action.help and CJK.search(action.help), f"{name} {action.option_strings or action.dest}"
            assert re.search(r"[A-Za-z]{3}", action.help), f"{name} {action.option_strings}: no English"


@pytest.mark.parametrize("command", sorted(subparsers(cli.build_parser())))
def test_every_command_help_prints_and_exits_0(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: crm-addin {command}") and CJK.search(out)


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crm-addin {version('crm-addin')}"


@pytest.mark.parametrize("text, cents", [("100000", 10_000_000), ("1,000.50", 100_050), ("10万", 10_000_000),
                                         ("1亿", 10_000_000_000), ("¥2.5万", 2_500_000)])
def test_amount_arguments_are_read_as_every_amount_is(text, cents):
    assert cli.money_argument(text) == cents


@pytest.mark.parametrize("text", ["abc", "1.234,56", "#N/A", "inf", ""])
def test_a_bad_amount_names_the_option_and_the_reason(text, good, capsys):
    status, said = run(["suggest", good.register, "--amount", text], capsys)
    assert status == cli.EXIT_USAGE and "argument --amount:" in said and "Traceback" not in said, said


def test_suggest_funds_10_wan(good, capsys):
    status, said = run(["suggest", good.register, "--amount", "10万", "--for", "C7"], capsys)
    assert status == 0, said
    assert said.splitlines()[1] == "C7,100000.00,"
