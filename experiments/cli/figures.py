"""``symbreak figures``: regenerate the numbered figure set (PNG, PDF, CSV and JSON per figure) with
:func:`symbreak.experiments.recipes.common.make_figure`."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    add_cache_arguments,
    add_device_argument,
    add_out_argument,
    add_quick_argument,
    add_report_arguments,
    device_of,
    raw_help,
    report,
    show_progress,
)

DEFAULT_OUT = "figures"
DESCRIPTION = """\
Regenerate the numbered figures: for each, NN_slug.png (raster), NN_slug.pdf (vector, TrueType fonts
embedded), NN_slug.csv (exactly the plotted numbers) and NN_slug.json (caption, summary numbers,
resolved configuration, library versions). Every flag and the output folder (for all the requested
figures) are checked before the first figure is made; each figure's files are written all or nothing; nothing
time-dependent is written, so the same seed and library versions reproduce the files exactly.

examples:
  symbreak figures                       # every figure into ./figures
  symbreak figures --only 1,2 --quick --out /tmp/figs
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = raw_help(subparsers, "figures", "regenerate the figure set into figures/ (PNG, PDF, CSV, JSON per figure)",
                      DESCRIPTION)
    parser.add_argument("--only", help="figure numbers to make, e.g. '1,2,11' or '1-3' (default: all)")
    add_quick_argument(parser, "fewer grid points, samples and data points")
    add_out_argument(parser, f"output folder (default: {DEFAULT_OUT}/ under the current directory)")
    add_device_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="base seed of every random draw (default 0)")
    add_cache_arguments(parser, retrain=False)
    add_report_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm.auto import tqdm

    from symbreak.experiments.models.training import check_cache_dir
    from symbreak.experiments.output import check_outputs
    from symbreak.experiments.recipes.common import FigureContext, load_recipes, make_figure, select_figures

    recipes = load_recipes()
    numbers = select_figures(args.only, list(recipes))
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    out = check_outputs(Path(args.out or DEFAULT_OUT),
                        [path.name for n in numbers for path in recipes[n].paths(Path(".")).values()])
    if args.cache_dir is not None:
        check_cache_dir(args.cache_dir)
    ctx = FigureContext(out_dir=out, quick=args.quick, device=device_of(args), seed=args.seed,
                        cache_dir=None if args.cache_dir is None else Path(args.cache_dir))
    made = []
    for n in tqdm(numbers, desc="figures", disable=not show_progress(args), leave=False, dynamic_ncols=True):
        saved = make_figure(recipes[n], ctx)
        made.append({"number": n, "stem": saved.stem, "seconds": saved.seconds,
                     "files": {kind: str(path) for kind, path in saved.paths.items()}, "summary": saved.summary})
        if not args.json:
            print(f"figure {n:2d}  {saved.seconds:6.1f} s  {out / saved.stem}.{{png,pdf,csv,json}}", flush=True)
    total = sum(m["seconds"] for m in made)
    report(args, {"out": str(out), "quick": args.quick, "seed": args.seed, "seconds": total, "figures": made},
           f"{len(numbers)} figure(s) in {total:.1f} s -> {out}")
    return 0
