"""``symbreak train``: train (or fetch from the cache) the eps-prediction network for a data set."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import add_training_arguments, training_config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train an eps-prediction denoiser (cached by its configuration)",
        description="Train an eps-prediction network on a data set under a schedule, or load it from the "
                    "cache when the same configuration was trained before. Prints where the model is "
                    "cached, the training time and the final loss. Under torchrun, trains with "
                    "DistributedDataParallel.")
    p.add_argument("--data", required=True, help="built-in data set name or a path (.npy/.npz/image folder)")
    p.add_argument("--schedule", default="vp-linear", help="vp-linear (default), vp-cosine, ddpm or ve")
    p.add_argument("--arch", default="mlp", choices=("mlp", "unet"), help="network (default: mlp)")
    add_training_arguments(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    p.add_argument("--cache-dir", help="cache folder (default: $SYMBREAK_CACHE or ~/.cache/symbreak)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.io import dumps
    from symbreak.experiments.models.training import load_or_train_model
    from symbreak.experiments.runtime.distributed import init_distributed
    from symbreak.theory import get_schedule

    schedule = get_schedule(args.schedule)
    ctx = init_distributed(args.device)
    dataset = load_dataset(args.data)
    config = training_config(args, dataset, args.arch)
    result = load_or_train_model(dataset, schedule, config, device=args.device, retrain=args.retrain,
                                 cache_dir=args.cache_dir, progress=not args.no_progress)
    if not ctx.is_main:
        return 0
    summary = {"data": dataset.name, "schedule": schedule.config(), "path": str(result.path), "key": result.key,
               "from_cache": result.from_cache, "seconds": result.seconds, "final_loss": result.final_loss,
               "device": str(next(result.denoiser.net.parameters()).device), "train": config.to_dict()}
    if args.json:
        print(dumps(summary))
    else:
        state = "loaded from the cache" if result.from_cache else "trained"
        print(f"model: {result.path} ({state})\n"
              f"training time: {result.seconds:.1f} s\nfinal loss: {result.final_loss:.5f}")
    return 0
