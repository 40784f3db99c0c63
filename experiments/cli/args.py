"""Sub-commands of the ``symbreak`` command line, one module each (see ``cli.py``), and the training
flags that ``train`` and ``validate`` share."""
from __future__ import annotations

import argparse


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """--steps, --batch-size, --lr, --seed and --precondition: overrides of the per-data-set recipe."""
    p.add_argument("--steps", type=int, help="Adam steps (default: per data set)")
    p.add_argument("--batch-size", type=int, help="global minibatch size (default: per data set)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: per data set)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and minibatches (default: 0)")
    p.add_argument("--precondition", help="edm (EDM preconditioning, sigma_data from the data) or none (the "
                                          "network predicts eps directly); default: none for the mlp on d <= 2, "
                                          "else edm")


def training_config(args: argparse.Namespace, dataset, arch: str = "mlp"):
    """The per-data-set recipe with the flags of :func:`add_training_arguments` applied."""
    from dataclasses import replace

    from symbreak.experiments.models.training import default_train_config, with_precondition

    config = default_train_config(dataset, arch)
    overrides = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return config if args.precondition is None else with_precondition(config, dataset, args.precondition)
