"""``symbreak train``: train (or fetch from the cache) the eps-prediction network for a data set
(:func:`symbreak.experiments.models.training.load_or_train_model`)."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    add_cache_arguments,
    add_data_argument,
    add_device_argument,
    add_quick_argument,
    add_report_arguments,
    add_schedule_argument,
    add_training_arguments,
    device_of,
    raw_help,
    report,
    show_progress,
    training_config,
)

DESCRIPTION = """\
Train an eps-prediction network on a data set under a schedule, or load it from the cache when the
same configuration was trained before. Prints where the model is cached, the training time and the
final loss. Under torchrun, trains with DistributedDataParallel.

examples:
  symbreak train --data digits
  symbreak train --data two-deltas --steps 300 --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "train", "train an eps-prediction denoiser (cached by its configuration)", DESCRIPTION)
    add_data_argument(p, "built-in data set name or a path (.npy/.npz/image folder)")
    add_schedule_argument(p)
    p.add_argument("--arch", default="mlp", choices=("mlp", "unet"), help="network (default: mlp)")
    add_training_arguments(p)
    add_quick_argument(p, "the small network of Settings.quick(): width, depth and training steps")
    add_device_argument(p)
    add_cache_arguments(p)
    add_report_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.experiments.models.training import check_cache_dir, load_or_train_model
    from symbreak.experiments.runtime.distributed import init_distributed
    from symbreak.theory import get_schedule

    check_cache_dir(args.cache_dir)
    schedule = get_schedule(args.schedule)
    ctx = init_distributed(device_of(args))
    dataset = load_dataset(args.data)
    config = training_config(args, dataset, args.arch)
    result = load_or_train_model(dataset, schedule, config, device=device_of(args), retrain=args.retrain,
                                 cache_dir=args.cache_dir, progress=show_progress(args))
    if not ctx.is_main:
        return 0
    summary = {"data": dataset.name, "schedule": schedule.config(), "path": str(result.path), "key": result.key,
               "from_cache": result.from_cache, "seconds": result.seconds, "final_loss": result.final_loss,
               "device": str(next(result.denoiser.net.parameters()).device), "train": config.to_dict()}
    state = "loaded from the cache" if result.from_cache else "trained"
    report(args, summary, f"model: {result.path} ({state})\ntraining time: {result.seconds:.1f} s\n"
                          f"final loss: {result.final_loss:.5f}")
    return 0
