"""The setup every evaluation shares (:func:`prepare`), sized by
:class:`~symbreak.experiments.paper.settings.Settings` (full or quick).

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
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.analysis.io import package_versions
from symbreak.analysis.splits import split_indices
from symbreak.experiments.models.denoisers import Denoiser, ExactDenoiser
from symbreak.experiments.paper.settings import Settings
from symbreak.experiments.paper.suite import MetricSuite, classifier_suite, mixture_suite
from symbreak.experiments.sampling.draw import GLSSource, step_of
from symbreak.theory import GaussianMixture, Schedule, get_schedule
from symbreak.theory.checks import check_choice
from symbreak.theory.critical import CriticalTimes, critical_times, gaussian_critical_times

if TYPE_CHECKING:
    from symbreak.experiments.models.training import TrainConfig

Array = NDArray[np.float64]
TEST_FRACTION, SPLIT_SEED = 0.2, 0
DENOISERS = ("network", "exact")
MOMENTS = ("analytic", "empirical")
SMALL_NETWORK_BATCH, SMALL_NETWORK_LR = 128, 2e-3  # minibatch and learning rate of a Settings-sized network


def versions() -> dict[str, str]:
    """Versions of the packages whose numbers the outputs depend on."""
    return package_versions(("symbreak", "torch", "numpy", "scipy", "POT", "scikit-learn"))


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
            retrain: bool = False, block_size: int | None = None, seed: int = 0,
            settings: Settings | None = None, model: str | None = None, features: str | None = None,
            batch_size: int | None = None) -> Setup:
    """Load ``data``, split it, load or train the denoiser (network) on the training part and, for
    labelled data without an exact model, the feature classifier; build the metric suite.

    ``denoiser``: ``network`` (eps-prediction MLP, :func:`symbreak.experiments.models.training.load_or_train`)
    or ``exact`` (the posterior mean of the data's exact model, or of the finite training set).
    ``model``: a ``--model`` spec (:func:`symbreak.experiments.models.user.open_model`) used instead of
    ``denoiser``, on its own schedule (``schedule`` is then ignored), the data mapped into its pixel range
    (:func:`in_model_range`); ``batch_size``: the most samples per network call.
    The suite (:func:`metric_suite`): ``features`` -> the label-free suite on those features; else a Gaussian
    mixture -> the mixture suite; labels -> the classifier suite; else the label-free suite (fixed PCA).
    ``settings``: the sizes of the run (network, classifier, block size); default ``Settings.of(quick)``.
    ``block_size`` overrides the settings' block size.
    """
    check_choice("--denoiser", denoiser, DENOISERS)
    check_choice("--moments", moments, MOMENTS)
    settings = Settings.of(quick) if settings is None else settings
    user = None if model is None else _open_model(model, device, batch_size)
    sched = get_schedule(schedule) if user is None else user.denoiser.schedule
    dataset = load_dataset(data)
    if user is not None:
        dataset = in_model_range(dataset, user)
    train, held_out = split_dataset(dataset)
    config: dict = {"data": dataset.config, "schedule": sched.config(), "split": {
        "test_fraction": TEST_FRACTION, "seed": SPLIT_SEED, "n_train": train.n, "n_held_out": held_out.n},
        "denoiser": {"kind": denoiser if user is None else "model"}, "quick": settings.mode == "quick",
        "versions": versions()}
    if user is not None:
        config["denoiser"]["model"] = user.config
        den = user.denoiser
    else:
        den = _denoiser(denoiser, train, sched, settings, device, cache_dir, retrain, config)
    block_size = settings.block_size if block_size is None else block_size
    parts = (np.asarray(train.x, dtype=np.float64), np.asarray(held_out.x, dtype=np.float64))

    def resplit(r: int) -> tuple[Array, Array]:
        other = split_dataset(dataset, SPLIT_SEED + 1 + r)
        return tuple(np.asarray(p.x, dtype=np.float64) for p in other)

    suite = metric_suite(dataset, train, held_out, parts, settings, cache_dir, config, features=features,
                         block_size=block_size, resplit=resplit, seed=seed, device=device)
    config["metrics"] = suite.config
    gls = GLSSource(parts[0], moments, seed)
    config["gls"] = gls.config()
    return Setup(dataset, train, held_out, sched, den, suite, gls, config)


def metric_suite(dataset: Dataset, train: Dataset, held_out: Dataset, parts: tuple[Array, Array], settings: Settings,
                 cache_dir: str | os.PathLike | None, config: dict, *, features: str | None, block_size: int,
                 resplit, seed: int, device: str = "cpu") -> MetricSuite:
    """``--features`` -> the label-free suite on them; a Gaussian mixture -> the mixture suite; labels ->
    the classifier suite (both as before); otherwise the label-free suite on the training part's fixed PCA
    (:mod:`symbreak.experiments.paper.features`)."""
    from symbreak.experiments.paper.features import label_free_suite, user_features

    options = {"block_size": block_size, "resplit": resplit, "seed": seed}
    if features is not None:
        feature_map = user_features(features, train.shape, "cpu" if device == "auto" else device)
        return label_free_suite(*parts, feature_map, **options)
    if isinstance(dataset.model, GaussianMixture):
        return mixture_suite(*parts, dataset.model, **options)
    if dataset.labels is not None:
        return classifier_suite(*parts, _classifier(train, held_out, settings, cache_dir, config), **options)
    return label_free_suite(*parts, **options)


def _open_model(spec: str, device: str, batch_size: int | None):
    from symbreak.experiments.models.user import open_model

    return open_model(spec, device=device, max_batch=256 if batch_size is None else batch_size)


def in_model_range(dataset: Dataset, user) -> Dataset:
    """``dataset`` in the user model's pixel range and sample shape: mapped affinely when its range is
    another one (:func:`symbreak.experiments.models.user.to_model_range`), channels-last images
    (N, H, W, C) moved to (N, C, H, W); what was applied is recorded as ``model_scaling`` in its config."""
    from symbreak.experiments.models.user import to_model_range

    shape = tuple(user.denoiser.shape)
    x, notes = dataset.x, []
    if tuple(dataset.shape) != shape:
        if len(shape) != 3 or tuple(dataset.shape) != (shape[1], shape[2], shape[0]):
            raise ValueError(f"--model: the model takes samples of shape {shape}, the data have {dataset.shape}")
        x = np.asarray(x).reshape(-1, *dataset.shape).transpose(0, 3, 1, 2).reshape(dataset.n, -1)
        notes.append("channels-last (H, W, C) moved to (C, H, W)")
    a, b, note = to_model_range(x, user.pixel_range)
    if (a, b) != (1.0, 0.0):
        x = np.asarray(a * np.asarray(x, dtype=np.float64) + b, dtype=np.float32)
    notes.append(note)
    model = dataset.model if (a, b) == (1.0, 0.0) else None
    return replace(dataset, x=x, shape=shape, model=model,
                   config={**dataset.config, "model_scaling": "; ".join(notes)})


def _denoiser(kind: str, train: Dataset, schedule: Schedule, settings: Settings, device: str,
              cache_dir: str | os.PathLike | None, retrain: bool, config: dict) -> Denoiser:
    if kind == "exact":
        model = train.model if train.model is not None else train.empirical()
        config["denoiser"]["model"] = model.config() if train.model is not None else "empirical (training part)"
        return ExactDenoiser(model, schedule, train.shape)
    from symbreak.experiments.models.training import load_or_train_model

    train_config = _train_config(train, settings)
    cached = load_or_train_model(train, schedule, train_config, device=device, retrain=retrain, cache_dir=cache_dir)
    config["denoiser"].update({"train": train_config.to_dict(), "cache_key": cached.key, "cache_path": cached.path,
                               "from_cache": cached.from_cache, "train_seconds": cached.seconds,
                               "final_loss": cached.final_loss})
    return cached.denoiser


def _train_config(train: Dataset, settings: Settings) -> TrainConfig:
    """The data set's default recipe, or (when ``settings`` size the network) an MLP of
    ``network_width`` x ``network_depth`` trained for ``network_steps`` steps."""
    from symbreak.experiments.models.networks import MLPConfig
    from symbreak.experiments.models.training import TrainConfig, default_train_config

    if settings.network_width is None:
        return default_train_config(train)
    network = MLPConfig(dim=train.dim, width=settings.network_width, depth=settings.network_depth)
    return TrainConfig(network, steps=settings.network_steps, batch_size=SMALL_NETWORK_BATCH, lr=SMALL_NETWORK_LR)


def _classifier(train: Dataset, held_out: Dataset, settings: Settings, cache_dir: str | os.PathLike | None,
                config: dict):
    """The frozen feature classifier, trained on the training part only (it keeps 20 % of that part
    for its own test accuracy), so it has never seen the held-out floor; its accuracy on the held-out
    part is recorded too."""
    from symbreak.experiments.models.classifier import load_or_train_classifier

    clf = load_or_train_classifier(train.name, train.x, train.labels, train.shape, seed=0, cache_dir=cache_dir,
                                   split_seed=SPLIT_SEED, test_fraction=TEST_FRACTION,
                                   steps=settings.classifier_steps)
    held_out_accuracy = float(np.mean(clf.predict(held_out.x) == held_out.labels))
    config["classifier"] = {"config": asdict(clf.config), "cache_key": clf.config.key(),
                            "test_accuracy": clf.test_accuracy, "held_out_accuracy": held_out_accuracy,
                            "trained_on": "training part (its own 80 %), never the held-out part"}
    return clf


def gaussian_tc(setup: Setup) -> CriticalTimes:
    """t_c of the Gaussian approximation: the centre of the VP SDE loses stability along the top
    covariance eigenvector, alpha_c^2 = sqrt(1 + Lambda^2) - Lambda (README, Theory API; Raya & Ambrogioni 2023), with
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
