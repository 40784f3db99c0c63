"""The flags of the theory commands (critical-time, fixed-points): a theory data model from its
parameters (two-deltas, gaussian, gmm), the schedule with its own parameters, and error messages
that name the flag the user typed."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from symbreak.experiments.cli.args import add_data_argument, add_schedule_argument

THEORY_DATA = ("two-deltas", "gaussian", "gmm")
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
           "max_points": "--max-points", "k": "--k", "bootstrap": "--bootstrap", "level": "--level",
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
    """``--schedule`` (the shared flag) and the parameters of each schedule."""
    group = parser.add_argument_group("schedule")
    add_schedule_argument(group)
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
    add_data_argument(group, data_help or f"data model: {', '.join(THEORY_DATA)} (default two-deltas)",
                      default="two-deltas")
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
