"""``symbreak critical-time``: when does the central fixed point lose stability?

``--data`` is either a theory model (two-deltas, gaussian, gmm: exact marginals) or a dataset (a
built-in set such as digits, a .npy/.npz file or an image folder), whose critical times come from
:func:`symbreak.analysis.critical.dataset_critical_times` (Gaussian route, exact empirical score, or
both); ``--out DIR`` then writes the branch as CSV, a JSON sidecar with the resolved configuration and
the result, the soft direction (.npy) and the margin plot (:func:`symbreak.experiments.recipes.margin.draw_margin`).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from symbreak.experiments.cli.args import (
    add_device_argument,
    add_dynamics_argument,
    add_model_argument,
    add_out_argument,
    add_report_arguments,
    check_out_dir,
    device_of,
    raw_help,
    report,
)
from symbreak.experiments.cli.theory_args import (
    DATA_EPILOG,
    THEORY_DATA,
    add_schedule_arguments,
    add_theory_data_arguments,
    flags_in_errors,
    schedule_from_args,
    theory_model_from_args,
)

DATASET_FLAGS = ("method", "scale", "max_points", "seed", "bootstrap", "level", "out", "model")  # datasets only
DEFAULTS = {"seed": 0, "bootstrap": 0, "level": 0.9}
STEM = "critical_time"
DESCRIPTION = """\
Critical time t_c where the central fixed point of the generative dynamics loses stability (followed
with Newton continuation), the Hessian sign change t_h, Biroli et al.'s speciation t_s and collapse
times, on every time axis, for an exact theory model or a dataset (Gaussian approximation and/or
exact empirical score)."""
DATASET_EPILOG = """\
datasets (--data): built in: digits (sklearn 8x8 digits scaled to [-1, 1]), gmm-2d, gmm-asym,
  two-gaussians; or PATH: a .npy/.npz array (N, ...) or a folder of PNG/JPEG images of one size.
  Options: --scale, --n, --method, --max-points, --seed, --out (two-deltas above is the exact theory
  model; save +-1 values to a .npy file for the sampled version). --device picks the exact route's
  drift: cpu -> numpy (float64 products on the CPU), cuda or cuda:N -> torch on that GPU, auto (default)
  -> the GPU when CUDA is available, else numpy; the JSON says which (exact_backend)
"""
EXAMPLES = """
examples:
  symbreak critical-time --data two-deltas --schedule ddpm --json
  symbreak critical-time --data gmm --weights 0.45,0.55 --means='-1;1' --stds 0.1
  symbreak critical-time --data digits --method both --out runs/ct_digits
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = raw_help(subparsers, "critical-time",
                      "critical times (t_c, t_h, speciation, collapse) of a data model or dataset", DESCRIPTION,
                      DATA_EPILOG + DATASET_EPILOG + EXAMPLES)
    add_theory_data_arguments(parser, data_help=f"theory model ({', '.join(THEORY_DATA)}), built-in dataset "
                                                "(digits, gmm-2d, gmm-asym, two-gaussians) or a .npy/.npz "
                                                "file or image folder (default two-deltas)")
    add_schedule_arguments(parser)
    add_dynamics_argument(parser)
    parser.add_argument("--n", type=int, default=None,
                        help="theory models: number of samples for the collapse estimate; datasets: samples "
                             "drawn from a synthetic set (default 2000) or a seeded subset of a file")
    parser.add_argument("--k", type=int, default=5, help="eigenvalues of J/beta tracked (default 5)")
    group = parser.add_argument_group("datasets")
    group.add_argument("--method", default=None, choices=["gaussian", "exact", "both"],
                       help="Gaussian approximation from the covariance spectrum, exact empirical score "
                            "(Newton continuation of the central branch), or both (default both)")
    group.add_argument("--scale", default=None, choices=["auto", "none", "unit"],
                       help="auto (default): 0..255 integers or [0, 1] floats to [-1, 1]; unit: min-max to "
                            "[-1, 1]; none: as they are")
    group.add_argument("--max-points", dest="max_points", type=int, default=None,
                       help="the exact route uses a seeded random subset of this many samples when there "
                            "are more (default: all samples)")
    group.add_argument("--bootstrap", type=int, default=0,
                       help="B resamples of the data for a confidence interval of t_c (exact route; the "
                            "Gaussian route's interval is asymptotic; default 0: no interval)")
    group.add_argument("--level", type=float, default=0.9, help="confidence level of the interval (default 0.9)")
    group.add_argument("--seed", type=int, default=0, help="seed of the samples drawn and the subset (default 0)")
    add_out_argument(group, "folder for the branch CSV, JSON sidecar, soft direction (.npy) and plot (PNG + PDF)")
    add_model_argument(group)
    add_device_argument(group)
    add_report_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_theory(args) if args.data in THEORY_DATA else run_dataset(args)


def run_theory(args: argparse.Namespace) -> int:
    from symbreak.analysis.report import critical_times_text
    from symbreak.theory import critical_times

    given = [d for d in DATASET_FLAGS if getattr(args, d) not in (None, DEFAULTS.get(d))]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ValueError(f"{flag}: applies to datasets only (digits, gmm-2d, gmm-asym, files); --data "
                         f"{args.data} is an exact theory model")
    schedule = schedule_from_args(args)
    model = theory_model_from_args(args)
    with flags_in_errors():
        ct = critical_times(model, schedule, args.dynamics, n=args.n, k=args.k)
    report(args, ct.to_dict(), None if args.json else critical_times_text(ct))
    return 0


def run_dataset(args: argparse.Namespace) -> int:
    from symbreak.analysis.critical import dataset_critical_times
    from symbreak.analysis.io import provenance
    from symbreak.analysis.report import dataset_text

    schedule = schedule_from_args(args)
    method = args.method or "both"
    backend, drift = exact_backend(args, method)
    out = check_out_dir(args.out, output_names())
    data = load_data(args)
    user = _user_model(args)
    if user is not None:
        from symbreak.experiments.paper.setup import in_model_range

        data, schedule = in_model_range(data, user), user.denoiser.schedule
    with flags_in_errors():
        result = dataset_critical_times(data, schedule, method, args.dynamics, max_points=args.max_points,
                                        seed=args.seed, k=args.k, bootstrap=args.bootstrap, level=args.level,
                                        drift=drift)
    document = {**result.to_dict(), "exact_backend": backend}
    if user is not None:
        from symbreak.experiments.measure.validate import model_critical_time

        document["model"] = {**model_critical_time(data, user.denoiser, dynamics=args.dynamics), "spec": user.config}
    config = provenance(resolved_config(args, schedule, method, backend), [data.config.get("path")],
                        None if user is None else user.config)
    files = [] if out is None else write_outputs(result, config, out)
    text = None if args.json else (dataset_text(result) + _model_text(document.get("model"))
                                   + (f"\nwrote {', '.join(files)} to {out}" if files else ""))
    report(args, document, text)
    return 0


def exact_backend(args: argparse.Namespace, method: str) -> tuple[dict | None, Callable | None]:
    """(provenance, drift factory) of the exact route from ``--device``: cpu -> theory's numpy drift (factory
    None), cuda or cuda:N -> the torch drift there, auto -> CUDA when available, else numpy
    (:func:`symbreak.experiments.measure.exact_drift.exact_backend`); (None, None) when the exact route
    does not run. Torch is imported only when the device is not cpu."""
    if method == "gaussian":
        return None, None
    if args.device == "cpu":
        return {"backend": "numpy", "device": "cpu"}, None
    from symbreak.experiments.measure.exact_drift import exact_backend as resolve

    chosen = resolve(device_of(args))
    return chosen.config(), chosen.factory


def _user_model(args: argparse.Namespace):
    """The ``--model`` (:func:`symbreak.experiments.models.user.open_model`), or None."""
    if args.model is None:
        return None
    from symbreak.experiments.models.user import open_model

    return open_model(args.model, device=device_of(args))


def _model_text(model: dict | None) -> str:
    if model is None:
        return ""
    c = model["critical"]
    at = "none" if c is None else f"t = {c['t']:.6g} (logsnr {c['logsnr']:.4g})"
    depth = "" if model["margin_c"] is None else f", margin {model['margin_c']:.4g}"
    return (f"\nyour model's own margin: first event {at}, {model['kind']}{depth} "
            f"(model-error band {model['model_error_band']:.3g})")


def load_data(args: argparse.Namespace):
    """The dataset named by ``--data``; its errors name the flag (--data, --scale, --n)."""
    from symbreak.analysis.datasets import BUILTIN_DATASETS, load_dataset

    name = args.data
    path = Path(name)
    if name not in BUILTIN_DATASETS and not path.exists() and not path.suffix and os.sep not in name:
        raise ValueError(f"--data: unknown data {name!r}; theory models: {', '.join(THEORY_DATA)}; datasets: "
                         f"{', '.join(d for d in BUILTIN_DATASETS if d != 'two-deltas')}; or a .npy/.npz file "
                         "or a folder of PNG/JPEG images")
    try:
        with flags_in_errors():
            return load_dataset(name, scale=args.scale or "auto", n=args.n, seed=args.seed)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"--data: {err}") from err
    except ValueError as err:
        if str(err).startswith("--"):
            raise
        raise ValueError(f"--data: {err}") from err


def resolved_config(args: argparse.Namespace, schedule, method: str, backend: dict | None) -> dict:
    """Everything that determines a dataset result (to save beside every output), with the exact route's
    ``backend`` (:func:`exact_backend`)."""
    return {"command": "critical-time", "data": args.data, "method": method, "schedule": schedule.config(),
            "dynamics": args.dynamics, "scale": args.scale or "auto", "n": args.n,
            "max_points": args.max_points, "seed": args.seed, "k": args.k, "bootstrap": args.bootstrap,
            "level": args.level, "exact_backend": backend}


def output_names() -> list[str]:
    """Every file :func:`write_outputs` may write (checked before any work)."""
    from symbreak.analysis.io import sidecar_path

    return [f"{STEM}.csv", f"{STEM}.png", f"{STEM}.pdf", sidecar_path(f"{STEM}.csv").name,
            f"{STEM}.soft_direction.npy"]


def write_outputs(result, config: dict, out: Path) -> list[str]:
    """Into ``out`` (all at once): the branch CSV, its JSON sidecar (config + result), the soft direction
    and the margin plot; returns the file names."""
    from symbreak.analysis.io import sidecar_path
    from symbreak.experiments.output import Outputs, save
    from symbreak.experiments.recipes.margin import draw_margin

    branch = result.branch_table()
    arrays = {} if result.soft_direction is None else {f"{STEM}.soft_direction.npy": result.soft_direction}
    outputs = Outputs(STEM, figure=draw_margin(result, branch), frames={"": branch}, arrays=arrays)
    sidecar = sidecar_path(f"{STEM}.csv").name
    outputs.documents = {sidecar: {"config": config, "files": outputs.names(), "result": result.to_dict()}}
    return [p.name for p in save(out, outputs)]
