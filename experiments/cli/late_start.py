"""``symbreak late-start``: sample quality against the start time of a plain late start (the paper's
Fig. 2 analogue), with the elbow estimate and the theory's critical times on the same axes
(:func:`symbreak.experiments.paper.late_start.late_start_curves`)."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import Evaluation, add_evaluation_arguments, raw_help

DESCRIPTION = """\
Quality (FD on an in-domain classifier's features, KID, sliced W2; exact W2 for 2-D mixtures) of
DDPM with every step from t_start, DDIM-10, DDIM-5, PNDM-10 and PNDM-5, each started from N(0, I)
at t_start, against the start step. The network and the classifier train on the training split
(80 %, a seeded random split, not stratified by class: the held-out 20 % must score like an i.i.d.
sample) and are cached; the held-out split is the floor. The elbow is the maximum of the second
derivative of the smoothed FD curve (the paper's estimate of the first bifurcation); the theory's
critical times (Gaussian approximation and exact score of the training data) are drawn as dashed
vertical lines.

writes DIR/late_start.csv (curves), late_start_elbows.csv, late_start.json (all numbers),
late_start.config.json (resolved configuration) and late_start.png/.pdf.

examples:
  symbreak late-start --data digits --out /tmp/late-start
  symbreak late-start --data digits --quick --out /tmp/late-start-quick
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "late-start", "quality against the start time of a late start (Fig. 2)", DESCRIPTION)
    add_evaluation_arguments(p, blocks="late_start_blocks")
    p.add_argument("--points", type=int, default=20,
                   help="start times, evenly spaced up to T (default 20; --quick: Settings.quick().late_start_points)")
    p.add_argument("--no-exact-tc", action="store_true",
                   help="skip the exact-score critical time (Newton continuation on the training set, ~20 s)")
    p.set_defaults(run=run)


MAX_POINTS = 10_000


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.late_start import elbow_steps_note, late_start_curves, plot_late_start, start_times

    if not 5 <= args.points <= MAX_POINTS:
        raise ValueError(f"--points: must be in 5..{MAX_POINTS} (the elbow needs a spline through 5 points; each "
                         f"point is a sampling run), got {args.points}")
    ev = Evaluation.start(args, "late-start", "late_start_blocks", "point")
    points = ev.sizes.late_start_points or args.points
    critical = ("gaussian",) if args.no_exact_tc else ev.sizes.critical_kinds()
    starts = start_times(ev.setup.schedule, points)
    full = starts[:2] if args.quick else start_times(ev.setup.schedule, points, every=2)
    result = late_start_curves(ev.setup, ev.seeds, starts=starts, full_step_starts=full, critical=critical,
                               n_resplits=ev.sizes.n_resplits)
    frames = {"": result.curves, "elbows": result.elbows}
    return ev.finish(result.config, result.to_dict(), frames, figure=plot_late_start(result), points=points,
                     text=lambda s: (f"late-start on {args.data}: {len(ev.seeds)} samples per point, {s:.1f} s\n"
                                     f"{elbow_steps_note(result)}\nwrote {ev.out}/late_start.{{csv,json,config.json,"
                                     "png,pdf}, late_start_elbows.csv"))
