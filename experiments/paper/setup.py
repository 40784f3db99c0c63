"""The setup every evaluation shares (:func:`prepare`).

A dataset is split once into a training part and a held-out part by
:func:`symbreak.analysis.splits.split_indices` (20 % held out, seed 0, not stratified: see
:func:`split_dataset`). The denoiser network and the feature classifier train on the training part
only (both cached on disk by their configuration); the held-out part is the floor of every metric.
(The floor's interval pools both parts, so ~64 % of its resampled blocks' digits were seen by the
classifier; that can only lower those resampled FDs a little.) The theory's critical times on the
sampling schedule come with it (:func:`gaussian_tc`, :func:`exact_tc`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.analysis.io import package_versions
from symbreak.analysis.splits import split_indices
from symbreak.experiments.models.denoisers import Denoiser, ExactDenoiser
from symbreak.experiments.paper.suite import MetricSuite, classifier_suite, mixture_suite
from symbreak.experiments.sampling.draw import GLSSource, step_of
from symbreak.theory import GaussianMixture, Schedule, get_schedule
from symbreak.theory.critical import CriticalTimes, critical_times, gaussian_critical_times

Array = NDArray[np.float64]
TEST_FRACTION, SPLIT_SEED = 0.2, 0
DENOISERS = ("network", "exact")


def versions() -> dict[str, str]:
    """Versions of the packages whose numbers the outputs depend on."""
    return package_versions(("symbreak", "torch", "numpy", "scipy", "POT", "scikit-learn"))


@dataclass(frozen=True)
class QuickSettings:
    """Sizes that make a run take seconds (tests): a small network and classifier, small blocks."""

    network_width: int = 64
    network_depth: int = 1
    network_steps: int = 300
    classifier_steps: int = 200
    block_size: int = 60


QUICK = QuickSettings()


@dataclass
class Setup:
    """Everything a recipe needs: data parts, schedule, denoiser, metric suite, GLS source, config."""

    dataset: Dataset
    train: Dataset
    held_out: Dataset
    schedule: Schedule
    denoiser: Denoiser
    suite: MetricSuite
    gls: GLSSource
    config: dict

    @property
    def block_size(self) -> int:
        return self.suite.block_size


def split_dataset(dataset: Dataset, seed: int = SPLIT_SEED) -> tuple[Dataset, Dataset]:
    """(train, held-out) parts of ``split_indices``, **not** stratified by label.

    The held-out part is the floor, and a floor must score like an i.i.d. sample of the data: a
    generator's class shares fluctuate multinomially, and on digits that share noise is about half
    of the FD of a block (measured: stratified 180-sample subsets of the held-out part have FD 1.7,
    subsets with multinomial class counts 3.7). A stratified held-out part, with the training set's
    class shares exactly, would make the floor look twice as good as any i.i.d. sample can be.
    """
    train_idx, test_idx = split_indices(dataset.n, None, TEST_FRACTION, seed)
    note = {"test_fraction": TEST_FRACTION, "seed": seed, "stratified": False}
    return (dataset.take(train_idx, {"split": {"part": "train", **note}}),
            dataset.take(test_idx, {"split": {"part": "held_out", **note}}))


def prepare(data: str, *, schedule: str = "ddpm", denoiser: str = "network", quick: bool = False,
            moments: str = "analytic", device: str = "cpu", cache_dir: str | os.PathLike | None = None,
            retrain: bool = False, block_size: int | None = None, seed: int = 0) -> Setup:
    """Load ``data``, split it, load or train the denoiser (network) on the training part and, for
    labelled data without an exact model, the feature classifier; build the metric suite.

    ``denoiser``: ``network`` (eps-prediction MLP, :func:`symbreak.experiments.models.training.load_or_train`)
    or ``exact`` (the posterior mean of the data's exact model, or of the finite training set).
    """
    if denoiser not in DENOISERS:
        raise ValueError(f"--denoiser: expected one of {', '.join(DENOISERS)}, got {denoiser!r}")
    if moments not in ("analytic", "empirical"):
        raise ValueError(f"--moments: expected analytic or empirical, got {moments!r}")
    sched = get_schedule(schedule)
    dataset = load_dataset(data)
    train, held_out = split_dataset(dataset)
    config: dict = {"data": dataset.config, "schedule": sched.config(), "split": {
        "test_fraction": TEST_FRACTION, "seed": SPLIT_SEED, "n_train": train.n, "n_held_out": held_out.n},
        "denoiser": {"kind": denoiser}, "quick": quick, "versions": versions()}
    den = _denoiser(denoiser, train, sched, quick, device, cache_dir, retrain, config)
    if block_size is None and quick:
        block_size = QUICK.block_size
    parts = (np.asarray(train.x, dtype=np.float64), np.asarray(held_out.x, dtype=np.float64))

    def resplit(r: int) -> tuple[Array, Array]:
        other = split_dataset(dataset, SPLIT_SEED + 1 + r)
        return tuple(np.asarray(p.x, dtype=np.float64) for p in other)

    if isinstance(dataset.model, GaussianMixture):
        suite = mixture_suite(*parts, dataset.model, block_size=block_size, resplit=resplit, seed=seed)
    elif dataset.labels is not None:
        suite = classifier_suite(*parts, _classifier(train, held_out, quick, cache_dir, config),
                                 block_size=block_size, resplit=resplit, seed=seed)
    else:
        raise ValueError(f"--data: {data!r} has neither labels (for the feature classifier) nor a Gaussian-"
                         "mixture model; the evaluations need one of them")
    config["metrics"] = suite.config
    gls = GLSSource(parts[0], moments, seed)
    config["gls"] = gls.config()
    return Setup(dataset, train, held_out, sched, den, suite, gls, config)


def _denoiser(kind: str, train: Dataset, schedule: Schedule, quick: bool, device: str,
              cache_dir: str | os.PathLike | None, retrain: bool, config: dict) -> Denoiser:
    if kind == "exact":
        model = train.model if train.model is not None else train.empirical()
        config["denoiser"]["model"] = model.config() if train.model is not None else "empirical (training part)"
        return ExactDenoiser(model, schedule, train.shape)
    from symbreak.experiments.models.networks import MLPConfig
    from symbreak.experiments.models.training import TrainConfig, default_train_config, load_or_train_model

    train_config = default_train_config(train)
    if quick:
        train_config = TrainConfig(MLPConfig(dim=train.dim, width=QUICK.network_width, depth=QUICK.network_depth),
                                   steps=QUICK.network_steps, batch_size=128, lr=2e-3)
    cached = load_or_train_model(train, schedule, train_config, device=device, retrain=retrain, cache_dir=cache_dir)
    config["denoiser"].update({"train": train_config.to_dict(), "cache_key": cached.key, "cache_path": cached.path,
                               "from_cache": cached.from_cache, "train_seconds": cached.seconds,
                               "final_loss": cached.final_loss})
    return cached.denoiser


def _classifier(train: Dataset, held_out: Dataset, quick: bool, cache_dir: str | os.PathLike | None,
                config: dict):
    """The frozen feature classifier, trained on the training part only (it keeps 20 % of that part
    for its own test accuracy), so it has never seen the held-out floor; its accuracy on the held-out
    part is recorded too."""
    from symbreak.experiments.models.classifier import load_or_train_classifier

    steps = QUICK.classifier_steps if quick else 1500
    clf = load_or_train_classifier(train.name, train.x, train.labels, train.shape, seed=0, cache_dir=cache_dir,
                                   split_seed=SPLIT_SEED, test_fraction=TEST_FRACTION, steps=steps)
    held_out_accuracy = float(np.mean(clf.predict(held_out.x) == held_out.labels))
    config["classifier"] = {"config": asdict(clf.config), "cache_key": clf.config.key(),
                            "test_accuracy": clf.test_accuracy, "held_out_accuracy": held_out_accuracy,
                            "trained_on": "training part (its own 80 %), never the held-out part"}
    return clf


def gaussian_tc(setup: Setup) -> CriticalTimes:
    """t_c of the Gaussian approximation: the centre of the VP SDE loses stability along the top
    covariance eigenvector, alpha_c^2 = sqrt(1 + Lambda^2) - Lambda (design note section 1), with
    Lambda from the exact model's covariance, or from the training part's spectrum
    (:func:`symbreak.analysis.critical.dataset_critical_times`, Gaussian route)."""
    model = setup.train.model
    if model is not None:
        return gaussian_critical_times(np.linalg.eigvalsh(model.cov), setup.schedule)
    return dataset_critical_times(setup.train, setup.schedule, "gaussian").gaussian


def exact_tc(setup: Setup) -> CriticalTimes:
    """t_c of the exact score: of the exact model, or of the finite training part (exact route of
    :func:`symbreak.analysis.critical.dataset_critical_times`: Newton continuation of the central
    branch of :class:`~symbreak.theory.EmpiricalData`, all points)."""
    model = setup.train.model
    if model is not None:
        return critical_times(model, setup.schedule)
    return dataset_critical_times(setup.train, setup.schedule, "exact").exact


def critical_summary(times: CriticalTimes, schedule: Schedule) -> dict:
    """t_c on t and step axes, its kind and margin (t_c None when absent, with the reason)."""
    return {"t_c": times.t_c, "step_c": step_of(schedule, times.t_c), "alpha_c": times.alpha_c,
            "kind": times.kind, "margin_c": times.margin_c, "absent": times.absent.get("critical")}
