"""``symbreak figures``: regenerate the numbered figure set (PNG, PDF, CSV and JSON per figure)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "figures", help="regenerate the figure set into figures/ (PNG, PDF, CSV, JSON per figure)",
        description="Regenerate the numbered figures: for each, NN_slug.png (raster), NN_slug.pdf (vector, "
                    "TrueType fonts embedded), NN_slug.csv (exactly the plotted numbers) and NN_slug.json "
                    "(caption, summary numbers, resolved configuration, library versions). Each figure's files "
                    "are written all or nothing; nothing time-dependent is written, so the same seed and "
                    "library versions reproduce the files exactly.",
        epilog="examples:\n  symbreak figures                       # every figure into ./figures\n"
               "  symbreak figures --only 1,2 --quick --out /tmp/figs\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="figure numbers to make, e.g. '1,2,11' or '1-3' (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer grid points, samples and data points (for tests and previews)")
    parser.add_argument("--out", default="figures",
                        help="output folder (default: figures/ under the current directory)")
    parser.add_argument("--device", default="auto", help="torch device for trained networks: auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every random draw (default 0)")
    parser.add_argument("--cache-dir", help="trained-model cache shared by the figures "
                                            "(default: $SYMBREAK_CACHE or ~/.cache/symbreak)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from symbreak.experiments.recipes.common import FigureContext, load_recipes, make_figure, select_figures

    recipes = load_recipes()
    numbers = select_figures(args.only, list(recipes))
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out: {out} exists and is not a folder")
    ctx = FigureContext(out_dir=out, quick=args.quick, device=args.device, seed=args.seed,
                        cache_dir=None if args.cache_dir is None else Path(args.cache_dir))
    total = 0.0
    for n in numbers:
        saved = make_figure(recipes[n], ctx)
        total += saved.seconds
        print(f"figure {n:2d}  {saved.seconds:6.1f} s  {out / saved.stem}.{{png,pdf,csv,json}}", flush=True)
    print(f"{len(numbers)} figure(s) in {total:.1f} s -> {out}")
    return 0
