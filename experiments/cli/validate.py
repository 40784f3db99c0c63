"""``symbreak validate``: theory against a freshly trained (or cached) network.

The network's learned drift has its central fixed point followed in t with Newton steps and its
stability margin (top eigenvalue of sym(J)/beta) measured on a logsnr grid
(:func:`symbreak.experiments.measure.follow_central_branch`); the theory follows the same branch of the
exact score of the data model (or of the finite data, for real sets) with
:func:`symbreak.theory.critical_times`. Both use theory's event rule for t_c. Prints t_c_theory,
t_c_network and rel_error = |t_c_network - t_c_theory| / t_c_theory, plus the largest margin gap in a
logsnr window around the theory's t_c; ``--out DIR`` writes the per-t table and its configuration.
"""
from __future__ import annotations

import argparse
import math

from symbreak.experiments.cli.args import add_training_arguments, training_config

DESCRIPTION = """\
Train (or load from the cache) the denoiser network of a data set, follow the central fixed point of
its learned drift in t, and compare its stability margin and critical time t_c with the exact score
of the data (the data model for synthetic sets, the finite data otherwise).

examples:
  symbreak validate --data two-deltas
  symbreak validate --data gmm-2d --json
  symbreak validate --data digits --out runs/validate-digits
"""
TABLE = "margins.csv"
TOP_K = 4  # eigenvalues of sym(J)/beta compared at theory's t_c


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="critical time of a trained network against theory",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="two-deltas, gmm-2d, digits (any built-in name or data path)")
    p.add_argument("--schedule", default="vp-linear", help="vp-linear (default), vp-cosine, ddpm or ve")
    p.add_argument("--dynamics", default="sde", help="sde (default) or ode: which drift's fixed point")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--out", help="folder for the per-t table (margins.csv) and its margins.config.json")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--retrain", action="store_true", help="ignore the training cache")
    p.add_argument("--cache-dir", help="training cache folder (default: $SYMBREAK_CACHE or ~/.cache/symbreak)")
    add_training_arguments(p)
    p.add_argument("--n-points", type=int, default=61, help="logsnr grid points for the network (default 61)")
    p.add_argument("--t-min", type=float, default=0.02,
                   help="both branches are followed from T down to this t (default 0.02)")
    p.add_argument("--near-zero", type=float, default=0.05,
                   help="a closest approach within this of zero counts as t_c (theory's rule; default 0.05)")
    p.add_argument("--window", type=float, default=1.0,
                   help="half-width in logsnr of the window around theory's t_c where margins are compared "
                        "(default 1.0)")
    p.set_defaults(run=run)


def _check_args(args: argparse.Namespace) -> None:
    """The checks that need neither data nor a network, so bad flags fail before any work."""
    if args.n_points < 3:
        raise ValueError(f"--n-points: must be >= 3, got {args.n_points}")
    if not (math.isfinite(args.near_zero) and args.near_zero >= 0):
        raise ValueError(f"--near-zero: must be a number >= 0, got {args.near_zero}")
    if not (math.isfinite(args.window) and args.window > 0):
        raise ValueError(f"--window: must be a number > 0, got {args.window}")
    if args.dynamics not in ("sde", "ode"):
        raise ValueError(f"--dynamics: expected sde or ode, got {args.dynamics!r}")


def compare(theory, network, denoiser, window: float) -> tuple[dict, "np.ndarray"]:
    """t_c of both, their relative error, the top eigenvalues of both at theory's t_c (a degenerate
    crossing shows up as the network's eigenvalues splitting around theory's) and the margin gap
    near theory's t_c (logsnr window); also theory's margins on the network's grid."""
    import numpy as np

    t_th, t_net = theory.t_c, network.t_c
    out = {"t_c_theory": t_th, "t_c_network": t_net,
           "rel_error": None if t_th is None or t_net is None else abs(t_net - t_th) / t_th,
           "kind_theory": theory.kind, "kind_network": network.kind,
           "margin_c_theory": theory.margin_c, "margin_c_network": network.margin_c,
           "logsnr_c_theory": theory.logsnr_c, "logsnr_c_network": network.logsnr_c,
           "t_c_gap": None if t_th is None or t_net is None else t_net - t_th}
    if theory.logsnr_c is not None:
        k = min(TOP_K, network.x.shape[1])
        point = theory.branch.point_at(theory.logsnr_c)
        out["eigenvalues_at_t_c_theory"] = {
            "theory": None if point is None else point.eigenvalues[:k].tolist(),
            "network": network_eigenvalues_at(denoiser, network, theory.logsnr_c, k).tolist()}
    margins = theory_margins(theory.branch, network.logsnr)
    gap = np.abs(network.margin - margins)
    near = np.isfinite(gap)
    side = np.zeros_like(near)
    if theory.logsnr_c is not None:
        near &= np.abs(network.logsnr - theory.logsnr_c) <= window
        side = network.logsnr <= theory.logsnr_c  # t >= t_c: before t_c in generation order

    def worst(mask):
        return float(gap[mask].max()) if mask.any() else None
    out.update({"window_logsnr": window, "window_points": int(near.sum()),
                "max_abs_margin_gap_window": worst(near), "max_abs_margin_gap_before_t_c": worst(near & side),
                "max_abs_margin_gap_after_t_c": worst(near & ~side)})
    return out, margins


def network_eigenvalues_at(denoiser, network, logsnr: float, k: int):
    """Top-k eigenvalues of sym(J)/beta at the network's branch point at ``logsnr`` (Newton from the
    branch interpolated between its grid samples)."""
    import numpy as np
    import torch

    from symbreak.experiments.measure.drift import LearnedDrift
    from symbreak.experiments.measure.fixed_points import newton_fixed_point
    from symbreak.experiments.measure.spectrum import jacobian_spectrum
    from symbreak.experiments.models.oracle import denoiser_device

    t = float(denoiser.schedule.t_of_logsnr(logsnr))
    guess = np.array([np.interp(logsnr, network.logsnr, column) for column in network.x.T])
    drift_t = LearnedDrift(denoiser, t, network.dynamics)
    sol = newton_fixed_point(drift_t, torch.as_tensor(guess, device=denoiser_device(denoiser)), method=network.method)
    return jacobian_spectrum(denoiser, sol.x, t, dynamics=network.dynamics, k=k, method=network.method).eigenvalues[0]


def theory_margins(branch, logsnr):
    """Theory's margin (top eigenvalue of J/beta) on the network's grid, by Newton on theory's branch
    (NaN outside the followed range, in a fold's gap, or where Newton fails)."""
    import numpy as np

    out = np.full(len(logsnr), np.nan)
    for i, ell in enumerate(logsnr):
        try:
            point = branch.point_at(float(ell))
        except ValueError:
            continue
        if point is not None:
            out[i] = point.eigenvalues[0]
    return out


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import pandas as pd

    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import dumps, sidecar_path, staged_dir
    from symbreak.experiments.measure.branch import follow_central_branch
    from symbreak.experiments.models.training import load_or_train_model
    from symbreak.theory import critical_times, get_schedule

    _check_args(args)
    schedule = get_schedule(args.schedule)
    t_min = float(schedule.check_t(args.t_min, "--t-min"))
    if t_min >= schedule.T:
        raise ValueError(f"--t-min: must be < T = {schedule.T:g}, got {t_min}")
    dataset = load_dataset(args.data)
    model = dataset.model if dataset.model is not None else dataset.empirical()
    config = training_config(args, dataset)
    trained = load_or_train_model(dataset, schedule, config, device=args.device, retrain=args.retrain,
                                  cache_dir=args.cache_dir, progress=not args.json)

    start = time.perf_counter()
    theory = critical_times(model, schedule, args.dynamics, t_end=t_min, near_zero=args.near_zero)
    seconds_theory = time.perf_counter() - start
    start = time.perf_counter()
    network = follow_central_branch(trained.denoiser, dynamics=args.dynamics, n_points=args.n_points,
                                    t_range=(t_min, schedule.T), x_init=schedule.alpha(schedule.T) * model.mean,
                                    near_zero=args.near_zero)
    seconds_network = time.perf_counter() - start
    result, margins = compare(theory, network, trained.denoiser, args.window)
    result.update({
        "data": dataset.name, "dynamics": args.dynamics, "schedule": schedule.config(),
        "train": {"from_cache": trained.from_cache, "seconds": trained.seconds, "final_loss": trained.final_loss,
                  "path": str(trained.path), "config": config.to_dict()},
        "measure": {"n_points": args.n_points, "t_range": [t_min, schedule.T], "near_zero": args.near_zero,
                    "method": network.method,
                    "max_newton_residual": float(network.residual.max()),
                    "max_nonsymmetry": float(np.nanmax(network.nonsymmetry)),
                    "seconds_network": seconds_network, "seconds_theory": seconds_theory},
    })
    if args.out is not None:
        table = pd.DataFrame({"t": network.t, "logsnr": network.logsnr, "margin_theory": margins,
                              "margin_network": network.margin, "nonsymmetry_network": network.nonsymmetry})
        with staged_dir(args.out) as tmp:
            table.to_csv(tmp / TABLE, index=False)
            (tmp / sidecar_path(TABLE).name).write_text(
                dumps({"command": "validate", **result, "data_config": dataset.config}) + "\n")
    if args.json:
        print(dumps(result))
    else:
        print(_summary(result))
    return 0


def _fmt(value: float | None, spec: str = ".6g") -> str:
    return "absent" if value is None else format(value, spec)


def _list(values: list[float] | None) -> str:
    return "absent" if values is None else "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _summary(r: dict) -> str:
    train = r["train"]
    state = "loaded from the cache" if train["from_cache"] else f"trained in {train['seconds']:.1f} s"
    lines = [f"validate {r['data']} ({r['schedule']['name']}, {r['dynamics']}): network {state}, "
             f"{train['config']['steps']} steps",
             f"t_c_theory  = {_fmt(r['t_c_theory'])} ({r['kind_theory']})",
             f"t_c_network = {_fmt(r['t_c_network'])} ({r['kind_network']})",
             f"rel_error   = {_fmt(r['rel_error'], '.4f')}",
             f"max |margin_network - margin_theory| within {r['window_logsnr']:g} of logsnr_c: "
             f"{_fmt(r['max_abs_margin_gap_window'], '.4g')} ({r['window_points']} points; t >= t_c "
             f"{_fmt(r['max_abs_margin_gap_before_t_c'], '.4g')}, t < t_c {_fmt(r['max_abs_margin_gap_after_t_c'], '.4g')})"]
    if "eigenvalues_at_t_c_theory" in r:
        eig = r["eigenvalues_at_t_c_theory"]
        lines.append("top eigenvalues of J/beta at t_c_theory: theory "
                     f"{_list(eig['theory'])}, network {_list(eig['network'])}")
    return "\n".join(lines)
