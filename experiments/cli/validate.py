"""``symbreak validate``: theory against a freshly trained (or cached) network
(:func:`symbreak.experiments.measure.validate.validate_network`)."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    add_cache_arguments,
    add_data_argument,
    add_device_argument,
    add_dynamics_argument,
    add_model_argument,
    add_out_argument,
    add_quick_argument,
    add_report_arguments,
    add_schedule_argument,
    add_training_arguments,
    check_out_dir,
    device_of,
    raw_help,
    report,
    show_progress,
    training_config,
)

DESCRIPTION = """\
Train (or load from the cache) the denoiser network of a data set, follow the central fixed point of
its learned drift in t, and compare its stability margin and critical time t_c with the exact score
of the data (the data model for synthetic sets, the finite data otherwise). Prints t_c_theory,
t_c_network, rel_error = |t_c_network - t_c_theory| / t_c_theory and the largest margin gap in a
logsnr window around theory's t_c; --out DIR writes the per-t table and its configuration.

examples:
  symbreak validate --data two-deltas
  symbreak validate --data gmm-2d --json
  symbreak validate --data digits --out runs/validate-digits
"""
TABLE = "margins.csv"


def __getattr__(name: str):
    """``compare`` for figure 4's recipe, which still imports it from here (its home is
    :mod:`symbreak.experiments.measure.validate`); loaded lazily so the parser does not import torch."""
    if name == "compare":
        from symbreak.experiments.measure.validate import compare

        return compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "validate", "critical time of a trained network against theory", DESCRIPTION)
    add_data_argument(p, "two-deltas, gmm-2d, digits (any built-in name or data path)")
    add_schedule_argument(p)
    add_dynamics_argument(p)
    add_out_argument(p, "folder for the per-t table (margins.csv) and its margins.config.json")
    add_device_argument(p)
    add_cache_arguments(p)
    add_quick_argument(p, "the small network of Settings.quick(): width, depth and training steps")
    add_training_arguments(p)
    p.add_argument("--n-points", type=int, default=61,
                   help="N: the network branch's first continuation step is 1/(N - 1) of the logsnr range; the "
                        "steps adapt after it (default 61)")
    p.add_argument("--t-min", type=float, default=0.02,
                   help="both branches are followed from T down to this t (default 0.02)")
    p.add_argument("--near-zero", type=float, default=0.05,
                   help="deprecated: no effect (t_c is theory's first-event rule; kept so old command lines run)")
    p.add_argument("--window", type=float, default=1.0,
                   help="half-width in logsnr of the window around theory's t_c where margins are compared "
                        "(default 1.0)")
    add_model_argument(p)
    add_report_arguments(p)
    p.set_defaults(run=run)


MAX_GRID_POINTS = 100_000


def run(args: argparse.Namespace) -> int:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import dumps, provenance, sidecar_path, staged_dir
    from symbreak.experiments.measure.validate import check_options, validate_network
    from symbreak.experiments.models.training import check_cache_dir
    from symbreak.experiments.models.user import open_model
    from symbreak.theory import get_schedule

    options = {"dynamics": args.dynamics, "n_points": args.n_points, "t_min": args.t_min,
               "window": args.window}
    if args.n_points > MAX_GRID_POINTS:
        raise ValueError(f"--n-points: at most {MAX_GRID_POINTS}, got {args.n_points}")
    out = check_out_dir(args.out, (TABLE, sidecar_path(TABLE).name))
    check_cache_dir(args.cache_dir)
    user = None if args.model is None else open_model(args.model, device=device_of(args))
    schedule = get_schedule(args.schedule) if user is None else user.denoiser.schedule
    check_options(schedule, **options)      # --t-min against the schedule the branches are followed on
    dataset = load_dataset(args.data)
    denoiser, model_note, model_record = _network(args, dataset, schedule, user)
    if model_note.get("dataset") is not None:
        dataset = model_note["dataset"]
    result = validate_network(dataset, schedule, denoiser, **options)
    document = {**result.to_dict(), "train": model_note["train"]}
    if out is not None:
        with staged_dir(out) as tmp:
            result.table.to_csv(tmp / TABLE, index=False)
            (tmp / sidecar_path(TABLE).name).write_text(
                dumps(provenance({"command": "validate", **document, "data_config": dataset.config},
                                 [dataset.config.get("path")], model_record)) + "\n")
    report(args, document, None if args.json else summary_text(document))
    return 0


def _network(args: argparse.Namespace, dataset, schedule, user):
    """(denoiser, note, provenance record): the user's opened ``--model`` (its own schedule; the data mapped
    into its pixel range, note["dataset"]), else the project's network trained (or loaded) for the data."""
    from symbreak.experiments.models.training import load_or_train_model

    if user is not None:
        from symbreak.experiments.paper.setup import in_model_range

        note = {"dataset": in_model_range(dataset, user), "train": {"model": user.config}}
        return user.denoiser, note, user.config
    config = training_config(args, dataset)
    trained = load_or_train_model(dataset, schedule, config, device=device_of(args), retrain=args.retrain,
                                  cache_dir=args.cache_dir, progress=show_progress(args))
    train = {"from_cache": trained.from_cache, "seconds": trained.seconds, "final_loss": trained.final_loss,
             "path": str(trained.path), "config": config.to_dict()}
    return trained.denoiser, {"train": train}, trained.provenance()


def _fmt(value: float | None, spec: str = ".6g") -> str:
    return "absent" if value is None else format(value, spec)


def _list(values: list[float] | None) -> str:
    return "absent" if values is None else "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def summary_text(r: dict) -> str:
    """The readable summary of a validation document."""
    train = r["train"]
    if "model" in train:
        state = f"your model {train['model'].get('path', train['model'].get('spec', ''))}"
    elif train["from_cache"]:
        state = f"network loaded from the cache, {train['config']['steps']} steps"
    else:
        state = f"network trained in {train['seconds']:.1f} s, {train['config']['steps']} steps"
    lines = [f"validate {r['data']} ({r['schedule']['name']}, {r['dynamics']}): {state}",
             f"t_c_theory  = {_fmt(r['t_c_theory'])} ({r['kind_theory']})",
             f"t_c_network = {_fmt(r['t_c_network'])} ({r['kind_network']})",
             f"rel_error   = {_fmt(r['rel_error'], '.4f')}",
             f"max |margin_network - margin_theory| within {r['window_logsnr']:g} of logsnr_c: "
             f"{_fmt(r['max_abs_margin_gap_window'], '.4g')} ({r['window_points']} points; t >= t_c "
             f"{_fmt(r['max_abs_margin_gap_before_t_c'], '.4g')}, "
             f"t < t_c {_fmt(r['max_abs_margin_gap_after_t_c'], '.4g')})"]
    if "eigenvalues_at_t_c_theory" in r:
        eig = r["eigenvalues_at_t_c_theory"]
        lines.append("top eigenvalues of J/beta at t_c_theory: theory "
                     f"{_list(eig['theory'])}, network {_list(eig['network'])}")
    return "\n".join(lines)
