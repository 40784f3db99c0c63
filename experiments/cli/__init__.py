"""The ``symbreak`` command line.

Each sub-command lives in its own module of this package (listed in :data:`COMMANDS`) and defines
``register(subparsers)``, which adds its parser and sets ``run`` to a function ``run(args) -> int``.
Bad input (a ``ValueError`` or a missing file) prints one line to stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("critical_time", "diversity", "figures", "fixed_points", "gls_table", "late_start", "sample", "train",
            "validate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symbreak",
        description="Spontaneous symmetry breaking in generative diffusion models: critical times, "
                    "fixed points, trained-network measurements, Gaussian late start and figures.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        print(f"symbreak {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
