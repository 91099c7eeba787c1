"""`python -m reports build RUN_DIR_OR_GLOB... --out DIR` writes tables, figures and index.html.

Arguments are run folders, globs, or folders holding runs (a `runs/` folder or a search
project), searched recursively. Folders that are not finished runs are reported and skipped.
"""

from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Runs the reports CLI; returns the exit status (2 on misuse, with one line)."""
    parser = _Parser(prog="python -m reports", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = commands.add_parser("build", help="tables and figures from run folders")
    build.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_GLOB")
    build.add_argument("--out", default="report", help="report folder (default: report)")
    build.add_argument("--rows", default="model",
                       help="ablation table rows: model, or a toggle such as depth")  # fmt: skip
    build.add_argument("--formats", default="png,svg", help="figure formats, e.g. png,pdf")
    build.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = sorted(set(formats) - {"png", "svg", "pdf"})
    if unknown:
        parser.exit(
            2, f"{parser.prog}: unknown format(s) {', '.join(unknown)}; use png, svg, pdf\n"
        )
    from reports.build import build as build_report

    try:
        build_report(args.runs, args.out, rows=args.rows, formats=formats, verbose=not args.quiet)
    except FileNotFoundError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
