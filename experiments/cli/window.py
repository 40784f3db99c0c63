"""``symbreak window``: the critical window of a data set measured three ways -- stability of the central
branch, cloning / forward-backward class retention, commitment -- for the exact score, its Gaussian
approximation and a network (:func:`symbreak.experiments.measure.window.critical_window`)."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    DENOISERS,
    add_cache_arguments,
    add_data_argument,
    add_device_argument,
    add_model_argument,
    add_out_argument,
    add_quick_argument,
    add_report_arguments,
    add_schedule_argument,
    add_seeds_argument,
    add_training_arguments,
    check_out_dir,
    device_of,
    raw_help,
    report,
    show_progress,
    training_config,
)

DESCRIPTION = """\
Measure where the trajectories of a diffusion model commit, three ways, each for the exact score of
the data (the exact model of a synthetic set, else the finite data), its Gaussian approximation
N(mean, cov) and a network (the project's trained MLP with --denoiser network, your own with --model):
  stability      the margin along the central branch and its first event (t_c, kind, depth);
  cloning        P(two independent reverse-SDE continuations of x_t end in the same class);
  retention      forward-backward: P(a training point noised to t and denoised keeps its class);
  commitment     the share of paths whose predicted class of D(x_t, t) no longer changes below t.
Classes: the nearest component of a mixture, the in-domain classifier of labelled data, else k-means
(--clusters). Sampling runs on one CPU thread (the project's small MLPs and exact scores are faster so)
except for a --model. Each curve's midpoint and 10-90 % width (bootstrap standard errors over the samples) are
printed in t and logsnr beside theory's t_c (exact, Gaussian) and speciation t_S. --groups 0,0,1,1 maps
classes to super-classes (hierarchical data: both windows). --out DIR writes windows.csv (the table),
curves.csv (every curve) and window.json (everything, with its configuration).

examples:
  symbreak window --data gmm-2d --denoiser exact
  symbreak window --data gmm-2d --seeds 0-99 --groups 0,1,0,1
  symbreak window --data digits --seeds 0-31 --times 0.1:0.7:4 --out runs/window-digits
"""
TABLE, CURVES, DOCUMENT = "windows.csv", "curves.csv", "window.json"
QUICK = {"seeds": "0-63", "n_steps": 50, "times": "0.05:0.95:7", "bootstrap": 50, "branch_points": 15,
         "classifier_steps": 200}
FULL = {"seeds": "0-399", "n_steps": 200, "times": "0.05:0.95:13", "bootstrap": 200, "branch_points": 41,
        "classifier_steps": 1500}


def times_spec(text: str) -> tuple[float, ...]:
    """``--times``: LO:HI:N (N uniform times) or a comma list of times in (0, T]."""
    try:
        if text.count(":") == 2:
            import numpy as np

            lo, hi, n = text.split(":")
            return tuple(float(v) for v in np.round(np.linspace(float(lo), float(hi), int(n)), 6))
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI:N or a comma list of times, got {text!r}") from None


def groups_spec(text: str) -> tuple[int, ...]:
    """``--groups``: the super-class of each class, a comma list of integers (class k -> entry k)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers like 0,0,1,1, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "window", "the critical window three ways: stability, cloning/retention, commitment",
                 DESCRIPTION)
    add_data_argument(p, "a built-in name (gmm-2d, two-gaussians, digits, ...) or a data path")
    add_schedule_argument(p)
    p.add_argument("--denoiser", default="network", choices=list(DENOISERS),
                   help="network (default: the project's MLP, trained and cached) | exact (exact and Gaussian only)")
    add_model_argument(p)
    add_seeds_argument(p, f"{FULL['seeds']}, {QUICK['seeds']} with --quick")
    p.add_argument("--times", type=times_spec, default=None,
                   help=f"clone / retention times, LO:HI:N or a list (default {FULL['times']}; {QUICK['times']} "
                        "with --quick)")
    p.add_argument("--n-steps", type=int, default=None,
                   help=f"Euler-Maruyama steps of a whole reverse run (default {FULL['n_steps']}, {QUICK['n_steps']} "
                        "with --quick)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples of the windows (default 200)")
    p.add_argument("--groups", type=groups_spec, default=None, help="super-class of each class, e.g. 0,0,1,1")
    p.add_argument("--clusters", type=int, default=2, help="k-means clusters for data without labels (default 2)")
    p.add_argument("--t-min", type=float, default=0.02, help="branches are followed down to this t (default 0.02)")
    add_out_argument(p, "folder for windows.csv, curves.csv and window.json")
    add_device_argument(p)
    add_cache_arguments(p)
    add_quick_argument(p, "fewer samples, steps, times and branch points; the small network")
    add_training_arguments(p)
    add_report_arguments(p)
    p.set_defaults(run=run)


def _network(args: argparse.Namespace, dataset):
    """(data, schedule, network or None, its description): --model, else the trained MLP, else none."""
    from symbreak.theory import get_schedule

    if args.model is not None:
        from symbreak.experiments.models.user import open_model
        from symbreak.experiments.paper.setup import in_model_range

        user = open_model(args.model, device=device_of(args))
        return in_model_range(dataset, user), user.denoiser.schedule, user.denoiser, {"model": user.config}
    schedule = get_schedule(args.schedule)
    if args.denoiser == "exact":
        return dataset, schedule, None, {"network": None}
    from symbreak.experiments.models.training import load_or_train_model

    config = training_config(args, dataset)
    trained = load_or_train_model(dataset, schedule, config, device=device_of(args), retrain=args.retrain,
                                  cache_dir=args.cache_dir, progress=show_progress(args))
    return dataset, schedule, trained.denoiser, {"network": {"from_cache": trained.from_cache,
                                                             "final_loss": trained.final_loss,
                                                             "cache_key": trained.key, "train": config.to_dict()}}


def run(args: argparse.Namespace) -> int:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import dumps, provenance, staged_dir
    from symbreak.experiments.measure.window import Sampling, critical_window
    from symbreak.experiments.models.training import check_cache_dir

    sizes = QUICK if args.quick else FULL
    sampling = Sampling(args.seeds or sizes["seeds"], args.times or times_spec(sizes["times"]),
                        args.n_steps or sizes["n_steps"], "sde",
                        sizes["bootstrap"] if args.bootstrap is None else args.bootstrap, args.seed)
    out = check_out_dir(args.out, (TABLE, CURVES, DOCUMENT))
    check_cache_dir(args.cache_dir)
    data, schedule, network, source = _network(args, load_dataset(args.data))
    result = critical_window(data, schedule, network=network, sampling=sampling, groups=args.groups,
                             branch_points=sizes["branch_points"], t_min=args.t_min, cache_dir=args.cache_dir,
                             clusters=args.clusters, classifier_steps=sizes["classifier_steps"],
                             threads=None if args.model is not None else 1)
    document = {**result.to_dict(), **source, "command": "window"}
    if out is not None:
        with staged_dir(out) as tmp:
            result.table().to_csv(tmp / TABLE, index=False)
            curves_frame(result).to_csv(tmp / CURVES, index=False)
            (tmp / DOCUMENT).write_text(dumps(provenance(document, [data.config.get("path")])) + "\n")
    report(args, document, None if args.json else summary_text(result))
    return 0


def curves_frame(result):
    """Every curve and every margin of ``result`` in one long table."""
    import pandas as pd

    frames = [c.table() for m in result.measured for c in m.curves]
    frames += [m.stability.table() for m in result.measured]
    return pd.concat(frames, ignore_index=True)


def _num(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def summary_text(result) -> str:
    """The theory's times and one line per denoiser, measure and level."""
    import pandas as pd

    lines = [f"critical window of {result.data} ({result.schedule.config()['name']}; classes: {result.labels})"]
    lines += [f"  {r['quantity']:<28} t = {_num(r['t'], '.4f')}  logsnr = {_num(r['logsnr'], '.3f')}"
              for r in result.theory.rows()]
    lines.append(f"  {'denoiser':<9} {'measure':<17} {'level':<12} {'t_mid':>7} {'± se':>6} {'width':>6} "
                 f"{'logsnr':>7} {'vs exact':>9}")
    for _, r in result.table().iterrows():
        none = {k: (None if pd.isna(v) else v) for k, v in r.items()}
        lines.append(f"  {r['denoiser']:<9} {r['measure']:<17} {r['level']:<12} {_num(none['t_mid']):>7} "
                     f"{_num(none['t_mid_se']):>6} {_num(none['width'], '.2f'):>6} "
                     f"{_num(none['logsnr_mid'], '.2f'):>7} "
                     f"{_num(none['delta_t_vs_exact'], '+.3f'):>9}")
    return "\n".join(lines)
