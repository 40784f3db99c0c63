"""The ``symbreak`` command line.

Each sub-command lives in its own module of this package (listed in :data:`COMMANDS`) and defines
``register(subparsers)``, which adds its parser and sets ``run`` to a function ``run(args) -> int``:
parse the flags, call one library function, print or write its result. The shared flags live in
:mod:`symbreak.experiments.cli.args` (and the theory models' in :mod:`~symbreak.experiments.cli.theory_args`).
Bad input (a parse error, a ``ValueError`` or a missing file) prints one line to stderr and exits with
code 2, before any work when the flags alone show it (every command checks its output paths first).
A training run that diverges (:class:`~symbreak.experiments.models.training.TrainingDiverged`) and a
failure of the system while writing (``OSError``: disk full, ...) print one line and exit with code 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from symbreak.experiments.cli.args import Parser, UsageError

COMMANDS = ("critical_time", "diversity", "figures", "fixed_points", "gls_table", "late_start", "sample", "train",
            "validate", "window")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="symbreak",
        description="Spontaneous symmetry breaking in generative diffusion models: critical times, "
                    "fixed points, trained-network measurements, Gaussian late start and figures.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        print(f"symbreak {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ArithmeticError, OSError) as err:  # TrainingDiverged, a sampler's NaN, a failed write
        print(f"symbreak {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
