"""The `crm-addin` command line: the same jobs as the workbook, in batch, on files.

Each command module offers `add_parser(subparsers)`, which registers its sub-command and sets
`func` to a function taking the parsed arguments and returning the exit status. How a failure
ends is decided in `main` and nowhere else: commands raise, `main` says why and picks the status.
One parser class (CliParser) and one set of argument types are here; the one exit-status table
and the one issue printer are in crm_app.cli.output, and re-exported here.
"""
from __future__ import annotations

import argparse
import errno
import sys
from importlib import import_module, metadata
from importlib.util import find_spec
from pathlib import Path

from crm_app.cli.output import (
    EXIT_CHANGED,
    EXIT_CODES,
    EXIT_DIFFERENCES,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SYSTEM,
    EXIT_USAGE,
    Progress,
    print_issues,
    row_number,
)
from crm_app.io.files import (
    UnreadableFileError,
    file_problem,
    read_ledger,
    readable_file,
    text_problem,
)
from crm_app.register.audit import WorkflowCode
from crm_app.workbook.activity_sheets import with_demo_activity
from crm_app.workbook.builder import register_notes, review_register_data, write_register
from crm_core.demo import demo_ledger
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy
from crm_core.values import FIRST_DATE, LAST_DATE, parse_money_cents

# Sub-commands that live in their own modules (each offers add_parser).
COMMAND_MODULES: list[str] = ["crm_app.cli.workflow_commands", "crm_app.workbook.builder", "crm_app.cli.review_file",
                             "crm_app.cli.analytics_commands", "crm_app.cli.doctor"]
# Commands that need the repository (its test tooling), offered only when run from a checkout.
REPOSITORY_COMMAND_MODULES: list[str] = ["tools.build_vba"]


class CliParser(argparse.ArgumentParser):
    """argparse with usage errors exiting EXIT_USAGE and a -h whose help is bilingual like the
    rest (sub-command parsers are made of this class too)."""

    def __init__(self, *args, **kwargs):
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="show this help and exit / 显示帮助并退出")

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} / 参数错误\n")


# ---------------------------------------------------------------- argument types


def money_argument(text: str) -> int:
    """An amount argument in cents, read as every amount is (100000, 1,000.50, 10万, 1亿)."""
    try:
        return parse_money_cents(text)
    except ValueError as exc:  # argparse names the option: "argument --amount: ..."
        raise argparse.ArgumentTypeError(f"{exc} (write e.g. 100000, 1,000.50 or 10万)") from None


def whole_number(low: int, high: int | None = None):
    """An argument type for whole numbers from `low` (to `high`), with the range in its message."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({span})")
        return value

    parse.__name__ = "whole number"
    return parse


year_argument = whole_number(FIRST_DATE.year + 1, LAST_DATE.year)


def output_file(*suffixes: str):
    """An argument type for a file to write, refused before any work unless its name ends in one
    of `suffixes`: the format follows the name, so a register named .txt would be a workbook that
    no text editor opens."""
    def parse(text: str) -> Path:
        if Path(text).suffix.lower() not in suffixes:
            choices = f"{', '.join(suffixes[:-1])} or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
            raise argparse.ArgumentTypeError(f"{text!r}: name a {choices} file / 文件名须以 {' '.join(suffixes)} 结尾")
        return Path(text)

    parse.__name__ = "output file"
    return parse


REGISTER_FILE = (".xlsx", ".xlsm")


def package_version() -> str:
    try:
        return metadata.version("crm-addin")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


# ---------------------------------------------------------------- policy file


def load_policy(path: str | None) -> Policy:
    if not path:
        return Policy()
    # Policy.load calls a missing policy file bad input and lets a file that is not UTF-8 through
    # as a traceback: both are settled here first.
    path = readable_file(path, "policy file")
    raw = path.read_bytes()
    problem = text_problem(raw[:65536], what="policy file (TOML)")
    if problem is None and not _is_utf8(raw):
        problem = "the policy file is not UTF-8 text / 政策文件不是UTF-8编码"
    if problem:
        raise CrmInputError([Issue(IssueCode.BAD_POLICY, problem, source=str(path))])
    return Policy.load(path)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# ---------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    out = Path(args.out)
    if out.exists() and not out.is_dir():  # mkdir would only say "File exists"
        raise OSError(errno.ENOTDIR, "a file, not a folder", str(out))
    progress(f"generating demo ledger (seed {args.seed})")
    raw = demo_ledger(seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    ledger_path = out / "demo_ledger.csv"
    raw.to_csv(ledger_path, index=False)
    progress(f"{len(raw):,} ledger rows written to {ledger_path}")
    ledger = normalize_ledger(raw, source=ledger_path.name)
    return _review_and_write(ledger, Policy(), None, out / "demo_register.xlsm", progress, demo_logs=True)


def cmd_review(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    policy = load_policy(args.policy)
    progress(f"reading {args.ledger}")
    ledger = read_ledger(args.ledger, policy, sheet=args.sheet)
    target = Path(args.out) if args.out else Path(args.ledger).with_name(Path(args.ledger).stem + "_register.xlsx")
    if refused_for_bad_rows(ledger, args.skip_bad_rows, "nothing written / 未写出任何文件"):
        return EXIT_INPUT
    return _review_and_write(ledger, policy, args.year, target, progress, source=str(Path(args.ledger).resolve()))


_SKIP_HINT = "fix the rows above, or pass --skip-bad-rows to use the rest (they are still listed)"


def refused_for_bad_rows(ledger, skip_bad_rows: bool, outcome: str) -> bool:
    """A ledger with bad rows is refused (its problems listed, then `outcome` and what to do)
    unless --skip-bad-rows was given and some rows are usable: True when refused."""
    if not ledger.errors or (skip_bad_rows and not _nothing_to_keep(ledger)):
        return False
    print_issues(ledger.issues)
    print(f"{outcome}: {_nothing_to_keep(ledger) or _SKIP_HINT}", file=sys.stderr)
    return True


def _nothing_to_keep(ledger) -> str:
    """Why --skip-bad-rows could not help ('' when it could): the file is not a ledger at all
    (a wrong header, an empty file), or no row of it is usable."""
    if any(i.row in (None, 1) for i in ledger.errors):
        return "this file is not a ledger crm-addin can read (see above)"
    return "" if len(ledger.rows) else "no row of the ledger is usable: fix the rows above"


def _review_and_write(ledger, policy, year, target: Path, progress, source: str | None = None,
                      demo_logs: bool = False) -> int:
    print_issues(ledger.issues)
    progress(f"{len(ledger.rows):,} rows used; reviewing")
    data = review_register_data(ledger, policy, year, source)
    if demo_logs:  # the demo shows a small contact and service log (crm_core.demo_activity)
        data = with_demo_activity(data)
    review = data.review
    print_issues(review.issues[len(ledger.issues):])  # the review's own: a year with nothing dated in it
    write_register(data, target)  # the register template, filled, with every value cached
    progress(f"register written to {target}")
    for note in register_notes(data):  # a ledger longer than a sheet, rows skipped: said in the file too
        print(note, file=sys.stderr)
    print("\n".join(review.summary_lines()))
    return EXIT_OK


def cmd_policy(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    text = policy.to_toml()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="crm-addin", formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Collection rate (回款率), customer tiers (客户等级) and credit lines (赊销额度) from a ledger."),
        epilog="exit status / 退出码:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items()))
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version and exit / 显示版本号")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do (COMMAND --help for its options) / 子命令")
    _add_demo(sub)
    _add_review(sub)
    _add_policy(sub)
    for name in COMMAND_MODULES:
        import_module(name).add_parser(sub)
    for name in REPOSITORY_COMMAND_MODULES:
        if _importable(name):
            import_module(name).add_parser(sub)
    return parser


def _importable(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ImportError:  # another package of the parent's name
        return False


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="run the whole review on built-in demo data / 演示数据", description=(
        "Generate a seeded demo ledger, review it and write DIR/demo_ledger.csv and DIR/demo_register.xlsm. "
        "/ 生成演示台账并评审，写出台账与登记表。"))
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out) / 输出文件夹")
    demo.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=2010,
                      help="random seed of the demo ledger (default: 2010) / 随机种子")
    demo.add_argument("--quiet", action="store_true", help="no progress messages / 不显示进度")
    demo.set_defaults(func=cmd_demo)


def _add_review(sub) -> None:
    review = sub.add_parser("review", help="review a ledger file (CSV, XLSX, Parquet) / 回款率与额度评审",
                            description=(
        "Read a ledger, compute collection rates, tiers and credit lines, and write the register workbook. "
        "A ledger with bad rows is refused unless --skip-bad-rows. / 读取台账，计算回款率、客户等级与赊销额度，写出登记表。"))
    review.add_argument("ledger", help="ledger file with date, customer, type, amount columns / 台账文件")
    review.add_argument("--policy", help="policy file (TOML); default: built-in policy / 政策文件")
    review.add_argument("--year", type=year_argument,
                        help="year reviewed (default: last complete year in the ledger) / 评审年度")
    review.add_argument("--out", type=output_file(*REGISTER_FILE),
                        help="register workbook to write, .xlsx or .xlsm (default: LEDGER_register.xlsx) / 输出登记表")
    review.add_argument("--sheet", help="sheet to read from an XLSX ledger (default: Ledger/台账 or the first) "
                        "/ 工作表名")
    review.add_argument("--skip-bad-rows", action="store_true",
                        help="review the valid rows even if some are bad (they are still listed) / 跳过错误行")
    review.add_argument("--quiet", action="store_true", help="no progress messages / 不显示进度")
    review.set_defaults(func=cmd_review)


def _add_policy(sub) -> None:
    pol = sub.add_parser("policy", help="print (or write) the policy in force as a TOML file / 政策",
                         description=(
        "Check a policy file and print it, or the built-in policy, as TOML to edit. / 检查并输出政策文件。"))
    pol.add_argument("--policy", help="policy file to check and print (default: built-in policy) / 政策文件")
    pol.add_argument("--out", help="write to this file instead of printing / 写入文件")
    pol.set_defaults(func=cmd_policy)


# ---------------------------------------------------------------- exit statuses


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error argparse has explained
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except CrmInputError as exc:
        return _refused(exc)
    except KeyboardInterrupt:
        print("interrupted: files already written stay as they were / 已中断", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a folder that cannot be written, a full disk: the machine, not the data
        print(f"{file_problem(exc)}; nothing was changed / 未做任何更改", file=sys.stderr)
        return EXIT_SYSTEM
    except MemoryError:
        print("not enough memory for this ledger; close other programs or split the file by year "
              "/ 内存不足，请关闭其他程序或按年度拆分文件", file=sys.stderr)
        return EXIT_SYSTEM


def _refused(exc: CrmInputError) -> int:
    """Print the issues; the status says whose the fault is: the machine's, another writer's, the data's."""
    print_issues(exc.issues)
    if isinstance(exc, UnreadableFileError):
        return EXIT_SYSTEM
    if any(i.code == WorkflowCode.REGISTER_CHANGED for i in exc.issues):
        print("nothing written / 未写入", file=sys.stderr)
        return EXIT_CHANGED
    return EXIT_INPUT


__all__ = ["COMMAND_MODULES", "EXIT_CHANGED", "EXIT_CODES", "EXIT_DIFFERENCES", "EXIT_INPUT", "EXIT_INTERRUPTED",
           "EXIT_OK", "EXIT_SYSTEM", "EXIT_USAGE", "CliParser", "Progress", "build_parser", "load_policy", "main",
           "money_argument", "package_version", "print_issues", "row_number", "whole_number", "year_argument"]


if __name__ == "__main__":
    sys.exit(main())
