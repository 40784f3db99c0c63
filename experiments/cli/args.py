"""The flags the ``symbreak`` commands share, each defined once as an argument-group function.

Families: data (``--data``), schedule (``--schedule``), device (``--device``), seeds (``--seeds``),
cache (``--cache-dir``, ``--retrain``), out (``--out``), reporting (``--json``, ``--progress`` /
``--no-progress``), ``--quick`` (sizes from :class:`symbreak.experiments.paper.settings.Settings`),
training (``--steps`` ...) and the evaluation group of late-start, gls-table and diversity. Fixed
vocabularies are argparse ``choices``; :class:`Parser` turns every parse error into one line
``--flag: what was wrong; what is accepted``.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SCHEDULE = "vp-linear"      # the paper's continuous VP schedule, beta 0.1 -> 20 on [0, 1]
EVALUATION_SCHEDULE = "ddpm"        # the paper's Table 1 / Fig. 2 / Fig. 4 evaluations run on 1000-step DDPM
DEVICE_FORM = re.compile(r"auto|cpu|cuda(:\d+)?")
DENOISERS = ("network", "exact")
MOMENTS = ("analytic", "empirical")
CRITICAL_ROUTES = ("gaussian", "exact")
_CHOICE = re.compile(r"argument (?P<flag>[^:]+): invalid choice: '?(?P<value>.*?)'? \(choose from (?P<choices>.*)\)$")
_ARGUMENT = re.compile(r"argument (?P<flag>[^:/ ]+)(?:/\S+)?: (?P<rest>.*)$")


class UsageError(Exception):
    """A command-line error found while parsing, already worded as one line."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors raise :class:`UsageError` as ``prog: error: --flag: ...`` (no usage dump)."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: error: {flag_style(message)}")


def flag_style(message: str) -> str:
    """argparse's 'argument --x: invalid choice: 'v' (choose from 'a', 'b')' as '--x: expected one of a, b;
    unknown name 'v'', and 'argument --x: msg' as '--x: msg'."""
    choice = _CHOICE.match(message)
    if choice:
        names = ", ".join(c.strip().strip("'") for c in choice["choices"].split(","))
        return f"{choice['flag'].split('/')[0]}: expected one of {names}; unknown name {choice['value']!r}"
    other = _ARGUMENT.match(message)
    if other is None:
        return message
    rest = other["rest"]
    return rest if rest.startswith(other["flag"] + ":") else f"{other['flag']}: {rest}"


def raw_help(subparsers: argparse._SubParsersAction, name: str, help: str, description: str,
             epilog: str | None = None) -> argparse.ArgumentParser:
    """A sub-command parser whose description and epilog keep their line breaks."""
    return subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


# --- data, schedule -----------------------------------------------------------------------------------
def add_data_argument(p: argparse._ActionsContainer, help: str, default: str | None = None) -> None:
    """``--data``: required unless the command has a default data model."""
    p.add_argument("--data", required=default is None, default=default, help=help)


def add_schedule_argument(p: argparse._ActionsContainer, default: str = DEFAULT_SCHEDULE) -> None:
    """``--schedule``: a name of :data:`symbreak.theory.schedules.SCHEDULES`."""
    from symbreak.theory.schedules import SCHEDULES

    p.add_argument("--schedule", default=default, choices=list(SCHEDULES),
                   help=f"noise schedule (default {default}; vp-linear: beta 0.1 -> 20 on [0, 1], ddpm: 1000 steps, "
                        "betas 1e-4 .. 0.02)")


def add_dynamics_argument(p: argparse._ActionsContainer) -> None:
    """``--dynamics``: whose drift's fixed points (the reverse SDE's or the probability-flow ODE's)."""
    p.add_argument("--dynamics", default="sde", choices=["sde", "ode"],
                   help="reverse SDE or probability-flow ODE (default sde)")


# --- device -------------------------------------------------------------------------------------------
def device_name(text: str) -> str:
    """A ``--device`` value: auto, cpu, cuda or cuda:N; cuda needs CUDA and N an existing GPU."""
    if not DEVICE_FORM.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r} was asked for but CUDA is not available; use auto or cpu")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: there are {torch.cuda.device_count()} GPUs (cuda:0 ..)")
    return text


def add_device_argument(p: argparse._ActionsContainer) -> None:
    p.add_argument("--device", type=device_name, default="auto",
                   help="torch device: auto (CUDA when available, else CPU; default), cpu, cuda or cuda:N")


def device_of(args: argparse.Namespace):
    """``--device`` as the library takes it: the names auto/cpu/cuda, a torch.device for cuda:N."""
    if ":" not in args.device:
        return args.device
    import torch

    return torch.device(args.device)


# --- seeds, cache, out --------------------------------------------------------------------------------
def seed_spec(text: str) -> str:
    """A seed list flag's value, its syntax checked at once (``0-63``, ``1,5,7-9``)."""
    from symbreak.experiments.sampling.seeds import parse_seeds

    try:
        parse_seeds(text, "SEEDS")
    except ValueError as err:  # argparse puts the flag in front
        raise argparse.ArgumentTypeError(str(err).removeprefix("SEEDS: ")) from None
    return text


def add_seeds_argument(p: argparse._ActionsContainer, default_meaning: str) -> None:
    p.add_argument("--seeds", type=seed_spec, default=None,
                   help=f"per-sample seeds like 0-999 or 1,5,7-9; sample k always uses seed k "
                        f"(default: {default_meaning})")


def add_cache_arguments(p: argparse._ActionsContainer, retrain: bool = True) -> None:
    """``--cache-dir`` and (where the command can honour it) ``--retrain``."""
    group = p.add_argument_group("training cache")
    group.add_argument("--cache-dir", default=None,
                       help="trained-network cache folder (default $SYMBREAK_CACHE or ~/.cache/symbreak)")
    if retrain:
        group.add_argument("--retrain", action="store_true", help="ignore the cache and train again")


def add_out_argument(p: argparse._ActionsContainer, help: str, required: bool = False) -> None:
    p.add_argument("--out", default=None, required=required, help=help)


def check_out_dir(out: str | None, names: tuple[str, ...] | list[str] = ()) -> Path | None:
    """``--out`` as a folder (None stays None), refused before any work when the files ``names`` could not
    be committed there (:func:`symbreak.experiments.output.check_outputs`)."""
    from symbreak.experiments.output import check_outputs

    return None if out is None else check_outputs(Path(out), names)


# --- reporting and sizes ------------------------------------------------------------------------------
def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """``--json`` and the progress switch (tqdm on stderr; on by default only when stderr is a terminal)."""
    group = p.add_argument_group("reporting")
    group.add_argument("--json", action="store_true",
                       help="print the result as one JSON object on stdout (and nothing else there)")
    shown = group.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="progress bars on stderr even when it is not a terminal")
    shown.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def show_progress(args: argparse.Namespace) -> bool:
    """Whether progress bars are drawn: --progress / --no-progress, else whether stderr is a terminal."""
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def report(args: argparse.Namespace, result: dict, text: str | None) -> None:
    """The command's result on stdout: one JSON object with --json, else the readable text."""
    from symbreak.analysis.io import dumps

    if args.json:
        print(dumps(result))
    elif text is not None:
        print(text)


def add_quick_argument(p: argparse._ActionsContainer, what: str) -> None:
    p.add_argument("--quick", action="store_true",
                   help=f"seconds-sized run for tests and previews ({what}; Settings.quick())")


def settings_of(args: argparse.Namespace):
    """The :class:`~symbreak.experiments.paper.settings.Settings` of ``--quick``."""
    from symbreak.experiments.paper.settings import Settings

    return Settings.of(args.quick)


# --- training -----------------------------------------------------------------------------------------
def add_training_arguments(p: argparse._ActionsContainer) -> None:
    """--steps, --batch-size, --lr, --seed and --precondition: overrides of the per-data-set recipe."""
    group = p.add_argument_group("training (overrides of the per-data-set recipe)")
    group.add_argument("--steps", type=int, help="Adam steps (default: per data set)")
    group.add_argument("--batch-size", type=int, help="global minibatch size (default: per data set)")
    group.add_argument("--lr", type=float, help="peak learning rate (default: per data set)")
    group.add_argument("--seed", type=int, default=0, help="seed of initialisation and minibatches (default: 0)")
    group.add_argument("--precondition", choices=["none", "edm"],
                       help="edm (EDM preconditioning, sigma_data from the data) or none (the network predicts "
                            "eps directly); default: none for the mlp on d <= 2, else edm")


def network_recipe(dataset, quick: bool, arch: str = "mlp"):
    """The per-data-set training recipe, with the small network of ``Settings.quick()`` (width, depth,
    training steps) when ``quick``."""
    from dataclasses import replace

    from symbreak.experiments.models.training import default_train_config
    from symbreak.experiments.paper.settings import Settings

    config = default_train_config(dataset, arch)
    sizes = Settings.of(quick)
    if sizes.network_steps is not None:
        config = replace(config, steps=sizes.network_steps)
    if arch == "mlp" and sizes.network_width is not None:
        config = replace(config, network=replace(config.network, width=sizes.network_width,
                                                 depth=sizes.network_depth))
    return config


def training_config(args: argparse.Namespace, dataset, arch: str = "mlp"):
    """:func:`network_recipe` of --quick with the flags of :func:`add_training_arguments` applied."""
    from dataclasses import replace

    from symbreak.experiments.models.training import with_precondition

    config = network_recipe(dataset, args.quick, arch)
    overrides = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return config if args.precondition is None else with_precondition(config, dataset, args.precondition)


# --- the evaluation commands (late-start, gls-table, diversity) ---------------------------------------
def add_evaluation_arguments(p: argparse.ArgumentParser, blocks: str) -> None:
    """The flags of every evaluation command; ``blocks``: the :class:`Settings` field with its default
    number of seed blocks (``late_start_blocks``, ``gls_blocks``, ``diversity_blocks``)."""
    from symbreak.experiments.paper.settings import Settings

    full, quick = getattr(Settings.full(), blocks), getattr(Settings.quick(), blocks)
    add_data_argument(p, "digits (default use) or gmm-2d; any labelled set or mixture")
    add_quick_argument(p, "tiny network and classifier, seed blocks of 60 samples, fewer points")
    add_out_argument(p, "output folder (default: ./<command>-<data>)")
    add_seeds_argument(p, f"{full} block(s) from 0, {quick} with --quick; a multiple of the block size, the "
                          "held-out size: 359 for digits, 400 for gmm-2d")
    add_schedule_argument(p, default=EVALUATION_SCHEDULE)
    p.add_argument("--denoiser", default="network", choices=list(DENOISERS),
                   help="network (default, trained on the training part and cached) | exact")
    add_model_argument(p)
    p.add_argument("--features", default=None,
                   help="feature network for FD/KID and the clusters of unlabelled data: a TorchScript FILE.pt or "
                        "module:callable (default for data without labels: a fixed 64-component PCA of the "
                        "training part)")
    p.add_argument("--batch-size", type=int, default=None, help="most samples per network call (default 256)")
    add_device_argument(p)
    add_cache_arguments(p)
    add_report_arguments(p)


def add_model_argument(p: argparse._ActionsContainer) -> None:
    """``--model``: the user's own model (:func:`symbreak.experiments.models.user.open_model`)."""
    p.add_argument("--model", default=None,
                   help="your own model instead of --denoiser: a local diffusers UNet2DModel or pipeline folder, or "
                        "module:callable returning a Denoiser (or a mapping net, schedule, shape, prediction, time); "
                        "it brings its own schedule, and the data are mapped into its pixel range")


def add_moments_argument(p: argparse._ActionsContainer) -> None:
    p.add_argument("--moments", default="analytic", choices=list(MOMENTS),
                   help="GLS Gaussian: analytic (training mean and covariance, default) | empirical "
                        "(training data noised once to t_start, the paper's procedure)")


def add_tc_argument(p: argparse._ActionsContainer, what: str) -> None:
    p.add_argument("--tc", default="gaussian", choices=list(CRITICAL_ROUTES),
                   help=f"critical time of {what}: gaussian (default) | exact")


def out_dir(args: argparse.Namespace, command: str) -> Path:
    """``--out``, else ./<command>-<data stem>, checked (with the cache folder) before any work."""
    from symbreak.experiments.models.training import check_cache_dir

    if getattr(args, "denoiser", "network") == "network":
        check_cache_dir(args.cache_dir)
    elif getattr(args, "retrain", False):
        raise ValueError("--retrain: the exact denoiser is not trained; drop --retrain or use --denoiser network")
    return check_out_dir(args.out or f"{command}-{Path(str(args.data)).stem}")


MIN_SAMPLES_PER_SET = 20  # fewer samples per set give metrics that mean little: warned about


def with_provenance(config: dict, args: argparse.Namespace) -> dict:
    """``config`` with :func:`symbreak.analysis.io.provenance` (the --data file's fingerprint, versions)."""
    from symbreak.analysis.io import provenance

    return provenance(config, [args.data if Path(str(args.data)).exists() else None])


def warn_if_few(seeds: list[int], what: str) -> None:
    """One warning line on stderr when a set has fewer than :data:`MIN_SAMPLES_PER_SET` samples."""
    if len(seeds) < MIN_SAMPLES_PER_SET:
        print(f"symbreak: warning: only {len(seeds)} samples per {what}; the numbers mean little below "
              f"{MIN_SAMPLES_PER_SET} (use a larger data set or more --seeds)", file=sys.stderr)


def prepare_from_args(args: argparse.Namespace, blocks: int, **options):
    """(setup, seeds) from the evaluation flags: the given seeds, else ``blocks`` seed blocks from 0."""
    from symbreak.experiments.paper.report import parse_seed_list
    from symbreak.experiments.paper.setup import prepare

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size: must be >= 1, got {args.batch_size}")
    setup = prepare(args.data, schedule=args.schedule, denoiser=args.denoiser, quick=args.quick,
                    device=device_of(args), cache_dir=args.cache_dir, retrain=args.retrain, model=args.model,
                    features=args.features, batch_size=args.batch_size, **options)
    if args.seeds is None:
        return setup, list(range(blocks * setup.block_size))
    return setup, parse_seed_list(args.seeds, setup.block_size)


@dataclass
class Evaluation:
    """One run of an evaluation command (late-start, gls-table, diversity): its sizes, output folder
    (checked before any work), setup, seeds and start time; :meth:`finish` writes and reports."""

    args: argparse.Namespace
    command: str
    sizes: Any
    out: Path
    setup: Any
    seeds: list[int]
    began: float

    @classmethod
    def start(cls, args: argparse.Namespace, command: str, blocks: str, unit: str, **options) -> Evaluation:
        """Check the output folder, then prepare the setup and seeds (``blocks``: the Settings field of the
        default number of seed blocks; ``unit``: what one set of samples is called in the warning)."""
        sizes, out, began = settings_of(args), out_dir(args, command), time.perf_counter()
        setup, seeds = prepare_from_args(args, blocks=getattr(sizes, blocks), **options)
        warn_if_few(seeds, unit)
        return cls(args, command, sizes, out, setup, seeds, began)

    def finish(self, config: dict, results: dict, frames: dict, text: Callable[[float], str], *,
               figure=None, texts: dict | None = None, **extra) -> int:
        """Write ``stem``.json/.config.json/CSVs (and figure, texts) with provenance, print the result."""
        from symbreak.experiments.paper.report import write_outputs

        seconds = time.perf_counter() - self.began
        config.update({"command": self.command, "seconds": seconds, **extra})
        document = {**results, "seconds": seconds}
        write_outputs(self.out, self.command.replace("-", "_"), config=with_provenance(config, self.args),
                      results=document, frames=frames, texts=texts, figure=figure)
        report(self.args, {**document, "out": str(self.out)}, text(seconds))
        return 0
