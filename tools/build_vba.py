"""`crm-addin build-vba`: write vba/xlwings_udfs.bas, the VBA wrappers of every worksheet function.

The text is what xlwings' own "Import Functions" puts into the register workbook (its real
generator, run through tests.support.xlwings_offline): for a workbook's own module the generator
names `ThisWorkbook` (for an add-in it would name `ActiveWorkbook`). `crm-addin build-workbooks`
embeds the file as it is into the register's VBA project; it is kept in the repository as a
golden file that a test keeps current.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

UDF_MODULE = "crm_addin"
# The workbook the module is generated for: a .xlsm, so the wrappers call with ThisWorkbook.
REGISTER_WORKBOOK = "crm_register.xlsm"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "vba" / "xlwings_udfs.bas"
# A .bas file is text as the Windows VBA editor writes it: CRLF line ends.
VBA_NEWLINE = "\r\n"


def load_addin() -> ModuleType:
    """crm_addin imported under xlwings' real Windows decorators: its UDFs carry __xlfunc__."""
    from tests.support import xlwings_offline as xo
    from udfs import UDF_MODULES

    xo.load_windows_xlwings()
    # Topic modules first, so that crm_addin re-exports functions carrying the real metadata.
    for topic in UDF_MODULES:
        xo.import_udf_module(f"udfs.{topic}")
    return xo.import_udf_module(UDF_MODULE)


def udf_vba() -> str:
    """The xlwings_udfs module text (header and one wrapper per UDF), LF line ends."""
    from tests.support import xlwings_offline as xo

    load_addin()
    text = xo.import_udfs_offline(UDF_MODULE, workbook_name=REGISTER_WORKBOOK).vba
    if not text.isascii():
        raise ValueError("the generated VBA is not plain ASCII; the VBA editor would mangle it")
    return text.replace("\r\n", "\n")


def write_udf_vba(out: Path = DEFAULT_OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="ascii", newline=VBA_NEWLINE) as f:
        f.write(udf_vba())
    return out


def cmd_build_vba(args: argparse.Namespace) -> int:
    if args.check:
        current = Path(args.out).read_bytes() if Path(args.out).exists() else b""
        wanted = udf_vba().replace("\n", VBA_NEWLINE).encode("ascii")
        if current != wanted:
            print(f"{args.out} is out of date: run crm-addin build-vba / VBA 模块需要重新生成", file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    path = write_udf_vba(Path(args.out))
    print(f"wrote {path}")
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "build-vba", help="write vba/xlwings_udfs.bas (VBA wrappers of the worksheet functions) / 生成VBA模块",
        description="Write the VBA module xlwings' own \"Import Functions\" makes for the add-in's worksheet "
                    "functions; --check only compares (exit 1 when out of date). / 生成工作表函数的VBA模块。")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="file to write (default: vba/xlwings_udfs.bas) / 输出文件")
    parser.add_argument("--check", action="store_true",
                        help="only check that the file is current (exit 1 if not) / 仅检查是否最新")
    parser.set_defaults(func=cmd_build_vba)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_vba")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(["build-vba", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
