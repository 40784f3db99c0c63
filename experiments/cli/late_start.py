"""``symbreak late-start``: sample quality against the start time of a plain late start (the paper's
Fig. 2 analogue), with the elbow estimate and the theory's critical times on the same axes.

Also holds the flags the three evaluation commands share (late-start, gls-table, diversity).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DESCRIPTION = """\
Quality (FD on an in-domain classifier's features, KID, sliced W2; exact W2 for 2-D mixtures) of
DDPM with every step from t_start, DDIM-10, DDIM-5, PNDM-10 and PNDM-5, each started from N(0, I)
at t_start, against the start step. The network and the classifier train on the training split
(80 %, stratified) and are cached; the held-out split is the floor. The elbow is the maximum of the
second derivative of the smoothed FD curve (the paper's estimate of the first bifurcation); the
theory's critical times (Gaussian approximation and exact score of the training data) are drawn
as dashed vertical lines.

writes DIR/late_start.csv (curves), late_start_elbows.csv, late_start.json (all numbers),
late_start.config.json (resolved configuration) and late_start.png/.pdf.

examples:
  symbreak late-start --data digits --out /tmp/late-start
  symbreak late-start --data digits --quick --out /tmp/late-start-quick
"""



def add_evaluation_arguments(p: argparse.ArgumentParser, blocks: int, quick_blocks: int = 1) -> None:
    """The flags of every evaluation command."""
    p.add_argument("--data", required=True, help="digits (default use) or gmm-2d; any labelled set or mixture")
    p.add_argument("--quick", action="store_true",
                   help="seconds-sized run for tests: tiny network and classifier, seed blocks of 60 samples")
    p.add_argument("--out", default=None, help="output folder (default: ./<command>-<data>)")
    p.add_argument("--seeds", default=None,
                   help="per-sample seeds like 0-1794, a multiple of the block size (the held-out size: 359 for "
                        f"digits, 400 for gmm-2d); default {blocks} block(s) from 0 ({quick_blocks} with --quick)")
    p.add_argument("--schedule", default="ddpm", help="ddpm (default: 1000 steps, betas 1e-4..0.02) | vp-linear | ...")
    p.add_argument("--denoiser", default="network", help="network (default, trained and cached) | exact")
    p.add_argument("--device", default="cpu", help="device for training the network: cpu (default) | auto | cuda")
    p.add_argument("--cache-dir", default=None, help="network/classifier cache (default $SYMBREAK_CACHE or ~/.cache/symbreak)")
    p.add_argument("--retrain", action="store_true", help="ignore the network cache")


def out_dir(args: argparse.Namespace, command: str) -> Path:
    if args.out is not None:
        return Path(args.out)
    return Path(f"{command}-{Path(str(args.data)).stem}")


def prepare_from_args(args: argparse.Namespace, blocks: int, quick_blocks: int = 1, **options):
    """(setup, seeds) from the shared flags: the given seeds (syntax checked before any work), else
    ``blocks`` seed blocks (``quick_blocks`` with --quick) from seed 0."""
    from symbreak.experiments.paper.report import parse_seed_list
    from symbreak.experiments.paper.setup import prepare
    from symbreak.experiments.sampling.seeds import parse_seeds

    if args.seeds is not None:
        parse_seeds(args.seeds, "--seeds")
    setup = prepare(args.data, schedule=args.schedule, denoiser=args.denoiser, quick=args.quick,
                    device=args.device, cache_dir=args.cache_dir, retrain=args.retrain, **options)
    if args.seeds is None:
        return setup, list(range((quick_blocks if args.quick else blocks) * setup.block_size))
    return setup, parse_seed_list(args.seeds, setup.block_size)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("late-start", help="quality against the start time of a late start (Fig. 2)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluation_arguments(p, blocks=1)
    p.add_argument("--points", type=int, default=20, help="start times, evenly spaced up to T (default 20)")
    p.add_argument("--no-exact-tc", action="store_true",
                   help="skip the exact-score critical time (Newton continuation on the training set, ~20 s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.late_start import elbow_steps_note, late_start_curves, plot_late_start, start_times
    from symbreak.experiments.paper.report import write_outputs

    if args.points < 5:
        raise ValueError(f"--points: must be >= 5 (the elbow needs a spline through 5 points), got {args.points}")
    began = time.perf_counter()
    setup, seeds = prepare_from_args(args, blocks=1)
    points = 5 if args.quick else args.points
    critical = ("gaussian",) if args.no_exact_tc or args.quick else ("gaussian", "exact")
    starts = start_times(setup.schedule, points)
    full = starts[:2] if args.quick else start_times(setup.schedule, points, every=2)
    result = late_start_curves(setup, seeds, starts=starts, full_step_starts=full, critical=critical,
                               n_resplits=3 if args.quick else 20)
    seconds = time.perf_counter() - began
    result.config.update({"command": "late-start", "seconds": seconds, "points": points})
    out = write_outputs(out_dir(args, "late-start"), "late_start", config=result.config,
                        results={**result.to_dict(), "seconds": seconds},
                        frames={"": result.curves, "elbows": result.elbows},
                        figure=plot_late_start(result))
    print(f"late-start on {args.data}: {len(seeds)} samples per point, {seconds:.1f} s")
    print(elbow_steps_note(result))
    print(f"wrote {out}/late_start.{{csv,json,config.json,png,pdf}}, late_start_elbows.csv")
    return 0
