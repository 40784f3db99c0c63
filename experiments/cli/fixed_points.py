"""``symbreak fixed-points``: every fixed point of a 1-D model's generative drift at one time."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import add_dynamics_argument, add_report_arguments, raw_help, report
from symbreak.experiments.cli.theory_args import (
    DATA_EPILOG,
    add_schedule_arguments,
    add_theory_data_arguments,
    flags_in_errors,
    schedule_from_args,
    theory_model_from_args,
)

DESCRIPTION = """\
All fixed points of the generative drift of a 1-D data model at time t (or where the schedule
reaches alpha), each with its Jacobian eigenvalue (J and J/beta) and stability."""
EXAMPLES = "\nexample:\n  symbreak fixed-points --data two-deltas --alpha 0.8 --json\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = raw_help(subparsers, "fixed-points",
                      "every fixed point of a 1-D model's drift at one time, with its stability", DESCRIPTION,
                      DATA_EPILOG + EXAMPLES)
    add_theory_data_arguments(parser)
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--t", type=float, help="diffusion time in (0, T]")
    when.add_argument("--alpha", type=float, help="signal level alpha in (0, 1) (VP schedules)")
    add_schedule_arguments(parser)
    add_dynamics_argument(parser)
    add_report_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.theory import fixed_points_1d

    schedule = schedule_from_args(args)
    model = theory_model_from_args(args)
    if model.dim != 1:
        raise ValueError(f"--data: fixed-points enumerates the fixed points of 1-D models; "
                         f"this one has dim {model.dim}")
    with flags_in_errors():
        t = float(schedule.check_t(args.t)) if args.t is not None else _t_of_alpha(schedule, args.alpha)
        result = fixed_points_1d(model, t, schedule, args.dynamics)
    document = {**result.to_dict(), "schedule": schedule.config(), "data": model.config()}
    report(args, document, None if args.json else fixed_points_text(result, schedule.config(), model.config()))
    return 0


def _t_of_alpha(schedule, alpha: float) -> float:
    """The t where the schedule reaches ``alpha``; alpha must lie between alpha(T) and alpha(t_min)."""
    t = float(schedule.t_of_alpha(alpha))
    lo, hi = float(schedule.alpha(schedule.T)), float(schedule.alpha(schedule.t_min))
    if not lo * (1 - 1e-12) <= alpha <= hi * (1 + 1e-12):
        raise ValueError(f"--alpha: the {schedule.name} schedule reaches alpha in [{lo:.6g}, {hi:.6g}], got {alpha}")
    return t


def fixed_points_text(result, schedule_config: dict, data_config: dict) -> str:
    """A readable table of the fixed points."""
    from symbreak.analysis.report import describe

    lines = [f"data:      {describe(data_config)}", f"schedule:  {describe(schedule_config)}",
             f"dynamics:  {result.dynamics}; t = {result.t:.8g}, alpha = {result.alpha:.8g}, "
             f"logsnr = {result.logsnr:.8g}", "",
             f"{'x':>16} {'J':>16} {'J/beta':>16}  stable"]
    lines += [f"{p.x:16.10g} {p.eigenvalues[0]:16.8g} {p.eigenvalues_over_beta[0]:16.8g}  {'yes' if p.stable else 'no'}"
              for p in result.points]
    if not result.window_proven:
        lines.append(f"(searched x in [{result.window[0]:.6g}, {result.window[1]:.6g}]; no bound is proven beyond it)")
    return "\n".join(lines)
