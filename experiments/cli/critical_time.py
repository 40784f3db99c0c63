"""``symbreak critical-time``: when does the central fixed point lose stability?

``--data`` is either a theory model (two-deltas, gaussian, gmm: exact marginals, as before) or a
dataset (a built-in set such as digits, a .npy/.npz file or an image folder), whose critical times come
from :func:`symbreak.analysis.critical.dataset_critical_times` (Gaussian route, exact empirical score,
or both); ``--out DIR`` then writes the branch as CSV, a JSON sidecar with the resolved configuration
and the result, the soft direction (.npy) and a plot of the margin against t (PNG + PDF).

The argument helpers here (schedule, theory data model, error messages naming the flag) are shared
with ``symbreak fixed-points``; the report builders turn a :class:`CriticalTimes` into JSON or a table.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

THEORY_DATA = ("two-deltas", "gaussian", "gmm")
DATASET_FLAGS = ("method", "scale", "max_points", "seed", "out")  # dests that apply to datasets only
DEFAULT_MAX_POINTS = 5000
DEFAULTS = {"max_points": DEFAULT_MAX_POINTS, "seed": 0}
STEM = "critical_time"
SCHEDULE_PARAMS = {  # flag dest -> (schedule keyword, schedules that take it)
    "beta_min": ("beta_min", ("vp-linear",)),
    "beta_max": ("beta_max", ("vp-linear",)),
    "cosine_s": ("s", ("vp-cosine",)),
    "T": ("T", ("vp-linear", "vp-cosine", "ve")),
    "n_steps": ("n_steps", ("ddpm",)),
    "beta_start": ("beta_start", ("ddpm",)),
    "beta_end": ("beta_end", ("ddpm",)),
    "sigma_min": ("sigma_min", ("ve",)),
    "sigma_max": ("sigma_max", ("ve",)),
}
# names used in theory error messages -> the flag the user typed
FLAG_OF = {"m": "--m", "mean": "--mean", "cov": "--cov", "lam": "--lam", "weights": "--weights",
           "means": "--means", "covs": "--stds", "n": "--n", "t": "--t", "alpha": "--alpha", "s": "--cosine-s",
           "schedule": "--schedule", "dynamics": "--dynamics", "method": "--method", "scale": "--scale",
           "max_points": "--max-points", "k": "--k",
           **{kw: "--" + dest.replace("_", "-") for dest, (kw, _) in SCHEDULE_PARAMS.items() if kw != "s"}}

DATA_EPILOG = """\
theory data (--data):
  two-deltas   two equally weighted deltas at +-m (1-D); --m M (default 1)
  gaussian     N(mean, cov); --cov 'a,b;c,d' (rows split by ';') or --lam 'l1,l2,...' (diagonal
               covariance), optional --mean 'm1,m2,...' (default 0)
  gmm          sum_k w_k N(mu_k, s_k^2 I); --weights 'w1,w2', --means 'mu1;mu2' (one row per component,
               coordinates split by ','), optional --stds 's1,s2' or one s for all (default 0: point masses)
  (quote values with ';' for the shell; a value that starts with '-' goes after '=': --means='-1;1')
schedules (--schedule): vp-linear [--beta-min 0.1 --beta-max 20 --T 1], vp-cosine [--cosine-s 0.008
  --T 0.9946], ddpm [--n-steps 1000 --beta-start 1e-4 --beta-end 0.02], ve [--sigma-min 0.01
  --sigma-max 50 --T 1]
"""
DATASET_EPILOG = """\
datasets (--data): built in: digits (sklearn 8x8 digits scaled to [-1, 1]), gmm-2d, gmm-asym,
  two-gaussians; or PATH: a .npy/.npz array (N, ...) or a folder of PNG/JPEG images of one size.
  Options: --scale, --n, --method, --max-points, --seed, --out (two-deltas above is the exact theory
  model; save +-1 values to a .npy file for the sampled version)
"""


@contextmanager
def flags_in_errors() -> Iterator[None]:
    """Re-raise a theory ``ValueError`` ("beta_max: ...") under the flag the user typed ("--beta-max: ...")."""
    try:
        yield
    except ValueError as err:
        name, sep, rest = str(err).partition(": ")
        if sep and name in FLAG_OF:
            raise ValueError(f"{FLAG_OF[name]}: {rest}") from err
        raise


def parse_vector(flag: str, text: str) -> list[float]:
    """'1,2.5,-3' -> [1.0, 2.5, -3.0]."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"{flag}: expected comma-separated numbers, got {text!r}") from err


def parse_matrix(flag: str, text: str) -> list[list[float]]:
    """'1,0;0,2' -> [[1, 0], [0, 2]] (rows split by ';'); every row must have the same length."""
    rows = [parse_vector(flag, row) for row in text.split(";")]
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{flag}: rows have different lengths {[len(r) for r in rows]} in {text!r}")
    return rows


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("schedule")
    group.add_argument("--schedule", default="vp-linear", choices=["vp-linear", "vp-cosine", "ddpm", "ve"],
                       help="noise schedule (default vp-linear: beta 0.1 -> 20 on [0, 1])")
    for dest, (kw, schedules) in SCHEDULE_PARAMS.items():
        group.add_argument("--" + dest.replace("_", "-"), dest=dest, type=int if dest == "n_steps" else float,
                           default=None, help=f"{kw} of the {', '.join(schedules)} schedule")


def schedule_from_args(args: argparse.Namespace):
    """The schedule named by ``--schedule`` with the parameters given on the command line."""
    from symbreak.theory import get_schedule

    params = {}
    for dest, (kw, schedules) in SCHEDULE_PARAMS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if args.schedule not in schedules:
            raise ValueError(f"--{dest.replace('_', '-')}: not a parameter of the {args.schedule} schedule "
                             f"(it applies to {', '.join(schedules)})")
        params[kw] = value
    with flags_in_errors():
        return get_schedule(args.schedule, **params)


def add_theory_data_arguments(parser: argparse.ArgumentParser, data_help: str | None = None) -> None:
    group = parser.add_argument_group("data (see the list below)")
    group.add_argument("--data", default="two-deltas",
                       help=data_help or f"data model: {', '.join(THEORY_DATA)} (default two-deltas)")
    group.add_argument("--m", type=float, default=1.0, help="two-deltas: the deltas sit at +-m (default 1)")
    group.add_argument("--mean", help="gaussian: mean, e.g. '0,0' (default zeros)")
    group.add_argument("--cov", help="gaussian: covariance, e.g. '2,0.5;0.5,1'")
    group.add_argument("--lam", help="gaussian: diagonal covariance eigenvalues, e.g. '2,0.5'")
    group.add_argument("--weights", help="gmm: component weights, e.g. '0.3,0.7'")
    group.add_argument("--means", help="gmm: component means, one row per component, e.g. --means='-1,0;1,0'")
    group.add_argument("--stds", help="gmm: isotropic standard deviation of each component (or one for all), "
                                      "e.g. '0.2,0.3'")


def _gaussian(args: argparse.Namespace):
    from symbreak.theory import Gaussian

    if (args.cov is None) == (args.lam is None):
        raise ValueError("--cov: give exactly one of --cov or --lam for --data gaussian")
    if args.lam is not None:
        lam = parse_vector("--lam", args.lam)
        if any(v < 0 for v in lam):
            raise ValueError(f"--lam: eigenvalues must be >= 0, got {args.lam!r}")
        cov = [[lam[i] if i == j else 0.0 for j in range(len(lam))] for i in range(len(lam))]
    else:
        cov = parse_matrix("--cov", args.cov)
    mean = parse_vector("--mean", args.mean) if args.mean is not None else [0.0] * len(cov)
    with flags_in_errors():
        return Gaussian(mean, cov)


def _gmm(args: argparse.Namespace):
    import numpy as np

    from symbreak.theory import GaussianMixture

    if args.weights is None or args.means is None:
        raise ValueError("--means: --data gmm needs --weights and --means")
    weights = parse_vector("--weights", args.weights)
    means = np.array(parse_matrix("--means", args.means))
    stds = parse_vector("--stds", args.stds) if args.stds is not None else [0.0]
    stds = stds * len(means) if len(stds) == 1 else stds
    if len(stds) != len(means):
        raise ValueError(f"--stds: expected one standard deviation per component ({len(means)}), got {len(stds)}")
    if any(not s >= 0 for s in stds):
        raise ValueError(f"--stds: standard deviations must be >= 0, got {args.stds!r}")
    covs = np.array([s * s * np.eye(means.shape[1]) for s in stds])
    with flags_in_errors():
        return GaussianMixture(weights, means, covs)


def theory_model_from_args(args: argparse.Namespace):
    """The theory :class:`DataModel` named by ``--data`` with its parameters."""
    from symbreak.theory import SymmetricDeltas

    if args.data == "two-deltas":
        with flags_in_errors():
            return SymmetricDeltas(args.m)
    if args.data == "gaussian":
        return _gaussian(args)
    if args.data == "gmm":
        return _gmm(args)
    raise ValueError(f"--data: unknown data {args.data!r}; accepted: {', '.join(THEORY_DATA)}")


def describe(config: dict) -> str:
    """'vp-linear (beta_min=0.1, beta_max=20, T=1)' from a resolved config."""
    params = ", ".join(f"{k}={v}" for k, v in config.items() if k != "name")
    return f"{config.get('name', '?')} ({params})" if params else str(config.get("name", "?"))


def critical_times_dict(ct) -> dict:
    """The JSON object of ``symbreak critical-time --json``."""
    return ct.to_dict()


def _table_text(table, discrete: bool) -> str:
    """A critical-times table as text: integer steps, the own-step column only for discrete schedules."""
    import pandas as pd

    if discrete:
        table["step"] = table["step"].astype("Int64")
    else:
        table = table.drop(columns="step")
    if "ddpm_step" in table:
        table["ddpm_step"] = table["ddpm_step"].astype("Int64")
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        return table.to_string(index=False, na_rep="-", float_format="{:.6g}".format)


def critical_times_text(ct) -> str:
    """The readable report: what was analysed, then one row per critical time and event."""
    head = [f"data:      {describe(ct.data)}", f"schedule:  {describe(ct.schedule.config())}",
            f"dynamics:  {ct.dynamics} ({ct.method}); Lambda = {ct.lambda_max:.6g}"]
    if ct.branch is not None and ct.branch.status != "complete":
        head.append(f"branch:    {ct.branch.status}")
    return "\n".join(head) + "\n\n" + _table_text(ct.table(), ct.schedule.discrete)


def reading(result) -> str:
    """One sentence saying what t_c is: a crossing, a fold, an imperfect pitchfork or none (and why)."""
    t_c = result.quantity("critical")
    if t_c is None:
        return f"no critical time: {result.absent.get('critical', 'not found')}"
    where = f"t = {t_c.t:.6g} (alpha = {t_c.alpha:.6g}, logsnr = {t_c.logsnr:.6g})"
    route = result.primary.method
    if result.kind == "closest-approach":
        return (f"{route}: imperfect pitchfork at {where}: the top eigenvalue of J/beta comes within "
                f"{-result.margin_c:.3g} of zero and turns back (closest approach, margin {result.margin_c:.4g})")
    if result.kind == "fold":
        return f"{route}: the central branch ends in a fold at {where} (margin {result.margin_c:.3g})"
    return f"{route}: the centre loses stability ({result.kind}) at {where}"


def dataset_text(result) -> str:
    """The readable report of a dataset: provenance, subset, spectrum, the table and one reading."""
    data = result.data
    head = [f"data:      {data.get('name')} ({data.get('source')}): N = {result.n_points}, d = {result.dim}, "
            f"shape {tuple(result.shape)}",
            f"scaling:   {result.scaling}",
            f"schedule:  {describe(result.schedule.config())}",
            f"dynamics:  {result.dynamics}; method {result.method}; Lambda = {result.lambda_max:.6g}"]
    if result.spectrum is not None:
        head.append(f"spectrum:  {result.spectrum.method} route, top {result.spectrum.k} of {result.dim} eigenvalues"
                    + ("" if result.spectrum.k == result.dim else
                       f" (the other {result.dim - result.spectrum.k} set to the residual variance "
                       f"{result.spectrum.residual_variance:.4g} for the collapse estimate)"))
    if result.exact is not None:
        sub = result.subset
        head.append(f"exact:     {result.n_exact} points" + (
            f" (a random subset of {sub['max_points']} of {sub['of']}, seed {sub['seed']})" if sub else " (all)")
            + f"; branch {result.exact.branch.status}")
    if result.soft_overlap is not None:
        head.append(f"soft dir.: |cos| with the top covariance eigenvector = {result.soft_overlap:.4f}")
    if result.soft_direction is not None and result.dim <= 8:
        head.append("soft dir.: " + ", ".join(f"{v:.4g}" for v in result.soft_direction.ravel()))
    note = ("ddpm_step: " + ("the schedule's own step" if result.schedule.discrete else
                             "step of the standard 1000-step DDPM schedule at the same logsnr"))
    return ("\n".join(head) + "\n\n" + _table_text(result.table(), result.schedule.discrete) + "\n\n"
            + reading(result) + "\n" + note)


# --- figure -------------------------------------------------------------------------------------------
def _image(v):
    """A soft direction of per-sample shape (H, W), (1, H, W) or (3, H, W) as an imshow array, or None."""
    import numpy as np

    if v.ndim == 2:
        return v
    if v.ndim == 3 and v.shape[0] == 1:
        return v[0]
    if v.ndim == 3 and v.shape[0] == 3:
        return 0.5 + 0.5 * np.transpose(v, (1, 2, 0)) / np.abs(v).max()
    return None


def critical_time_markers(result) -> list[tuple[float, str, str]]:
    """(t, label, line style) of every critical time to mark: Gaussian t_c (dotted), each exact event
    (dashed), t_s and t_h (dash-dot; t_h of each route that ran)."""
    marks = []
    if result.t_c_gaussian is not None:
        marks.append((result.t_c_gaussian, f"Gaussian t_c = {result.t_c_gaussian:.4g}", ":"))
    for e in () if result.exact is None else result.exact.events:
        marks.append((e.time.t, f"exact {e.kind} t = {e.time.t:.4g} (margin {e.margin:.3g})", "--"))
    times = [("t_s", result.quantity("speciation"), result.source_of("speciation").method),
             ("t_h", result.quantity("hessian"), result.primary.method)]
    if result.exact is not None:
        times.append(("t_h", result.gaussian_quantity("hessian"), "gaussian"))
    marks += [(q.t, f"{label} = {q.t:.4g} ({route})", "-.") for label, q, route in times if q is not None]
    return marks


def _plot_margins(ax, result, branch) -> None:
    """The exact branch's eigenvalues of J/beta (top one bold, per segment) and the Gaussian margin,
    the zero line and the critical-time markers; y limited to the interesting range."""
    import matplotlib.pyplot as plt
    import numpy as np

    t = branch["t"].to_numpy()
    shown = []
    if result.exact is not None:
        seg = branch["segment"].to_numpy()
        lower = [c for c in branch if c.startswith("lam_") and c != "lam_1"]
        for s in np.unique(seg):
            on = seg == s
            first = s == seg[0]
            for c in lower:
                ax.plot(t[on], branch[c].to_numpy()[on], color="0.75", lw=0.8,
                        label="exact, lower eigenvalues" if first and c == lower[0] else None)
            ax.plot(t[on], branch["margin"].to_numpy()[on], color="C0",
                    label=f"exact margin (N = {result.n_exact})" if first else None)
        shown.append(branch["margin"].to_numpy())
    if "margin_gaussian" in branch:
        ax.plot(t, branch["margin_gaussian"].to_numpy(), color="C1", ls="--",
                label=f"Gaussian margin (N = {result.n_points})")
        shown.append(branch["margin_gaussian"].to_numpy())
    ax.axhline(0.0, color="k", lw=0.8)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"][2:]   # C0, C1 are the curves
    for i, (tm, label, ls) in enumerate(critical_time_markers(result)):
        ax.axvline(tm, color=palette[i % len(palette)], ls=ls, lw=1.6 if ls == ":" else 1.0, label=label)
    values = np.concatenate(shown)
    lo, hi = max(float(np.nanmin(values)), -2.0), min(float(np.nanmax(values)), 1.5)
    pad = 0.08 * (hi - lo + 1e-3)
    ax.set_ylim(lo - pad, max(hi, 0.05) + pad)
    ax.set_xlim(0.0, result.schedule.T)
    ax.set_xlabel("diffusion time t")
    ax.set_ylabel("margin: top eigenvalue of J / beta")
    ax.set_title(f"{result.data.get('name')}: {result.kind} "
                 + ("" if result.t_c is None else f"t_c = {result.t_c:.4g}")
                 + f" ({result.schedule.name}, {result.dynamics})")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2)


def _plot_image(ax, result, image) -> None:
    """The soft direction as an image (diverging colours around 0 for one channel)."""
    import numpy as np

    vmax = float(np.abs(image).max()) if image.ndim == 2 else None
    shown = ax.imshow(image, cmap="RdBu_r" if image.ndim == 2 else None, vmin=None if vmax is None else -vmax,
                      vmax=vmax, interpolation="nearest")
    if image.ndim == 2:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("soft direction at t_c\n(" + ("exact branch" if result.exact is not None
                                              else "top covariance eigenvector") + ")")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)


def plot_margin(result, branch):
    """Margin (top eigenvalue of J/beta) against t with every critical time as a labelled vertical
    line, and for image data the soft direction as an image panel, in the project style."""
    from symbreak.experiments.output import figure_environment, new_figure

    image = None if result.soft_direction is None else _image(result.soft_direction)
    with figure_environment():
        fig, axes = new_figure(1, 1 if image is None else 2, 9.6 if image is not None else 7.2, 4.6,
                               gridspec_kw={"width_ratios": [1] if image is None else [3, 1]})
        _plot_margins(axes[0, 0], result, branch)
        if image is not None:
            _plot_image(axes[0, 1], result, image)
    return fig


# --- the dataset route --------------------------------------------------------------------------------
def resolved_config(args: argparse.Namespace, schedule, method: str) -> dict:
    """Everything that determines a dataset result (to save beside every output)."""
    return {"command": "critical-time", "data": args.data, "method": method, "schedule": schedule.config(),
            "dynamics": args.dynamics, "scale": args.scale or "auto", "n": args.n,
            "max_points": args.max_points, "seed": args.seed, "k": args.k}


def write_outputs(result, config: dict, out: Path) -> list[str]:
    """Into ``out`` (all at once): the branch CSV, its JSON sidecar (config + result), the soft direction
    and the margin plot; returns the file names."""
    from symbreak.analysis.io import sidecar_path
    from symbreak.experiments.output import Outputs, save

    branch = result.branch_table()
    arrays = {} if result.soft_direction is None else {f"{STEM}.soft_direction.npy": result.soft_direction}
    outputs = Outputs(STEM, figure=plot_margin(result, branch), frames={"": branch}, arrays=arrays)
    sidecar = sidecar_path(f"{STEM}.csv").name
    outputs.documents = {sidecar: {"config": config, "files": outputs.names(), "result": result.to_dict()}}
    return [p.name for p in save(out, outputs)]


def check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out: {path} exists and is not a folder")
    return path


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


def run_dataset(args: argparse.Namespace) -> int:
    from symbreak.analysis.critical import dataset_critical_times
    from symbreak.analysis.io import dumps

    schedule = schedule_from_args(args)
    method = args.method or "both"
    out = check_out(args.out)
    data = load_data(args)
    with flags_in_errors():
        result = dataset_critical_times(data, schedule, method, args.dynamics, max_points=args.max_points,
                                        seed=args.seed, k=args.k)
    files = [] if out is None else write_outputs(result, resolved_config(args, schedule, method), out)
    print(dumps(result.to_dict()) if args.json else dataset_text(result))
    if files and not args.json:
        print(f"wrote {', '.join(files)} to {out}")
    return 0


def run_theory(args: argparse.Namespace) -> int:
    from symbreak.analysis.io import dumps
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
    print(dumps(critical_times_dict(ct)) if args.json else critical_times_text(ct))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "critical-time", help="critical times (t_c, t_h, speciation, collapse) of a data model or dataset",
        description="Critical time t_c where the central fixed point of the generative dynamics loses "
                    "stability (followed with Newton continuation), the Hessian sign change t_h, "
                    "Biroli et al.'s speciation t_s and collapse times, on every time axis, for an exact "
                    "theory model or a dataset (Gaussian approximation and/or exact empirical score).",
        epilog=DATA_EPILOG + DATASET_EPILOG
        + "\nexample:\n  symbreak critical-time --data two-deltas --schedule ddpm --json\n"
          "  symbreak critical-time --data gmm --weights 0.45,0.55 --means='-1;1' --stds 0.1\n"
          "  symbreak critical-time --data digits --method both --out runs/ct_digits\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_theory_data_arguments(parser, data_help=f"theory model ({', '.join(THEORY_DATA)}), built-in dataset "
                                                "(digits, gmm-2d, gmm-asym, two-gaussians) or a .npy/.npz "
                                                "file or image folder (default two-deltas)")
    add_schedule_arguments(parser)
    parser.add_argument("--dynamics", default="sde", choices=["sde", "ode"],
                        help="reverse SDE or probability-flow ODE (default sde)")
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
    group.add_argument("--max-points", dest="max_points", type=int, default=DEFAULT_MAX_POINTS,
                       help=f"the exact route uses a seeded random subset of this many samples when there "
                            f"are more (default {DEFAULT_MAX_POINTS})")
    group.add_argument("--seed", type=int, default=0, help="seed of the samples drawn and the subset (default 0)")
    group.add_argument("--out", default=None,
                       help="folder for the branch CSV, JSON sidecar, soft direction (.npy) and plot (PNG + PDF)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_theory(args) if args.data in THEORY_DATA else run_dataset(args)
