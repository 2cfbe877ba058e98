"""The `crm-addin` command line: the same jobs as the workbook, in batch, on files.

Each command module offers `add_parser(subparsers)`, which registers its sub-command and sets
`func` to a function taking the parsed arguments and returning the exit status.
"""
from __future__ import annotations

import argparse
import sys
import time
from importlib import import_module
from pathlib import Path

from crm_core.demo import demo_ledger
from crm_core.issues import CrmInputError
from crm_core.ledger import normalize_ledger
from crm_core.policy import Policy

from .files import file_problem, read_ledger
from .workbooks import review_register_data, write_register

EXIT_OK, EXIT_INPUT, EXIT_SYSTEM, EXIT_USAGE = 0, 2, 4, 64
# Sub-commands that live in their own modules (module path relative to this package).
COMMAND_MODULES: list[str] = ["workflow_cli", "build_vba", "workbooks", "large_ledger"]


class Progress:
    """Stage messages with elapsed time on stderr, so long runs show they are moving."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.start = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def load_policy(path: str | None) -> Policy:
    return Policy.load(path) if path else Policy()


def print_issues(issues, limit: int = 50, stream=None) -> None:
    """Every problem on its own line: where (file, row, column) and what."""
    stream = stream or sys.stderr
    issues = list(issues)
    if not issues:
        return
    print(f"{len(issues)} problem(s) / 问题:", file=stream)
    for issue in issues[:limit]:
        print(f"  {issue.severity}: {issue}", file=stream)
    if len(issues) > limit:
        print(f"  ... and {len(issues) - limit} more", file=stream)


def cmd_demo(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    progress(f"generating demo ledger (seed {args.seed})")
    raw = demo_ledger(seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ledger_path = out / "demo_ledger.csv"
    raw.to_csv(ledger_path, index=False)
    progress(f"{len(raw):,} ledger rows written to {ledger_path}")
    ledger = normalize_ledger(raw, source=ledger_path.name)
    return _review_and_write(ledger, Policy(), None, out / "demo_register.xlsm", progress)


def cmd_review(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    policy = load_policy(args.policy)
    progress(f"reading {args.ledger}")
    ledger = read_ledger(args.ledger, policy, sheet=args.sheet)
    target = Path(args.out) if args.out else Path(args.ledger).with_name(Path(args.ledger).stem + "_register.xlsx")
    if ledger.errors and not args.skip_bad_rows:
        print_issues(ledger.issues)
        print("nothing written: fix the rows above, or pass --skip-bad-rows to review the rest "
              "(they are still listed) / 未写出任何文件", file=sys.stderr)
        return EXIT_INPUT
    return _review_and_write(ledger, policy, args.year, target, progress)


def _review_and_write(ledger, policy, year, target: Path, progress) -> int:
    print_issues(ledger.issues)
    progress(f"{len(ledger.rows):,} rows used; reviewing")
    data = review_register_data(ledger, policy, year)
    review = data.review
    write_register(data, target)  # the register template, filled, with every value cached
    progress(f"register written to {target}")
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
    parser = argparse.ArgumentParser(prog="crm-addin", description=(
        "Collection rate (回款率), customer tiers (客户等级) and credit lines (赊销额度) from a ledger."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the whole review on built-in demo data / 演示数据")
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--seed", type=int, default=2010, help="random seed of the demo ledger")
    demo.add_argument("--quiet", action="store_true", help="no progress messages")
    demo.set_defaults(func=cmd_demo)
    review = sub.add_parser("review", help="review a ledger file (CSV, XLSX, Parquet) / 回款率与额度评审")
    review.add_argument("ledger", help="ledger file with date, customer, type, amount columns")
    review.add_argument("--policy", help="policy file (TOML); default: built-in policy")
    review.add_argument("--year", type=int, help="year reviewed (default: last complete year in the ledger)")
    review.add_argument("--out", help="register workbook to write (default: LEDGER_register.xlsx)")
    review.add_argument("--sheet", help="sheet to read from an XLSX ledger (default: Ledger/台账 or the first)")
    review.add_argument("--skip-bad-rows", action="store_true", help="review the valid rows even if some are bad")
    review.add_argument("--quiet", action="store_true", help="no progress messages")
    review.set_defaults(func=cmd_review)
    pol = sub.add_parser("policy", help="print (or write) the policy in force as a TOML file / 政策")
    pol.add_argument("--policy", help="policy file to check and print (default: built-in policy)")
    pol.add_argument("--out", help="write to this file instead of printing")
    pol.set_defaults(func=cmd_policy)
    for name in COMMAND_MODULES:
        import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CrmInputError as exc:
        print_issues(exc.issues)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted: files already written stay as they were / 已中断", file=sys.stderr)
        return 130
    except OSError as exc:  # a folder that cannot be written, a full disk: the machine, not the data
        print(f"{file_problem(exc)}; nothing was changed / 未做任何更改", file=sys.stderr)
        return EXIT_SYSTEM
    except MemoryError:
        print("not enough memory for this ledger; close other programs or split the file by year "
              "/ 内存不足，请关闭其他程序或按年度拆分文件", file=sys.stderr)
        return EXIT_SYSTEM


if __name__ == "__main__":
    sys.exit(main())
