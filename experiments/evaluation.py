"""Shared machinery of the offline evaluations (late-start curves, the GLS table, diversity).

Three parts, used by :mod:`.late_start`, :mod:`.gls_table` and :mod:`.diversity`:

1. **Setup** (:func:`prepare`): a dataset split once into a training part and a held-out part by
   :func:`symbreak.analysis.splits.split_indices` (20 % held out, seed 0, not stratified: see
   :func:`split_dataset`). The denoiser network and the feature classifier train on the training
   part only (both cached on disk by their configuration); the held-out part is the floor of every
   metric. (The floor's interval pools both parts, so ~64 % of its resampled blocks' digits were
   seen by the classifier; that can only lower those resampled FDs a little.)
2. **Sampling** (:func:`draw_samples`): one sampler with its options and number of steps, started
   from N(0, I) at T (the paper's "vanilla" uniform skip), from N(0, I) at t_start (plain late start)
   or from the Gaussian late start at t_start, with per-sample seeds. Nothing is written to disk
   unless ``save_to`` asks for it.
3. **Metrics** (:class:`MetricSuite`): each metric compares a block of generated samples with the
   training part. Generated samples are measured in **seed blocks** of exactly the held-out size, so
   every number is comparable with the floor (held-out vs train: FD and W2 are biased at finite n,
   the bias depending on n). The reported value is the mean over blocks, with a Student-t
   confidence interval over the (independent) blocks; a single block gets no interval. The floor's
   interval comes from other random splits of the real data (:meth:`MetricSuite.floor`).

   digits (and other labelled data): ``fd`` (Fréchet distance on the classifier's 64 penultimate
   features, never called FID), ``kid`` (unbiased cubic-kernel MMD^2 on the same features), ``sw``
   (sliced 2-Wasserstein on raw pixels), ``entropy`` (bits, of the classifier's labels) and ``kl``
   (bits, KL of those label shares to the training part's).
   Gaussian mixtures (gmm-2d): ``w2`` (exact W2 on raw samples), ``sw``, ``coverage`` and
   ``high_quality`` (mode coverage within 3 component std), ``entropy`` and ``kl`` of the nearest
   mode ("class").
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from scipy import stats

from symbreak.analysis import metrics as M
from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.analysis.gls import GaussianStart
from symbreak.analysis.io import dumps, package_versions, sidecar_path, staged_dir
from symbreak.analysis.splits import split_indices
from symbreak.theory import GaussianMixture, Schedule, get_schedule
from symbreak.theory.critical import CriticalTimes, critical_times, gaussian_critical_times

from .denoisers import Denoiser, ExactDenoiser
from .measure import denoiser_device
from .samplers import default_grid, get_sampler
from .seeds import parse_seeds
from .starts import gls_gaussian, start_state
from .threads import cpu_threads

Array = NDArray[np.float64]
TEST_FRACTION, SPLIT_SEED = 0.2, 0
CONTINUOUS_FULL_STEPS = 1000  # "all steps" on a continuous schedule: this many per unit of t / T
DENOISERS = ("network", "exact")


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Versions of the packages whose numbers the outputs depend on."""
    return package_versions(("symbreak", "torch", "numpy", "scipy", "POT", "scikit-learn"))


def check_count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# time grids: vanilla, late and "all steps"
# ---------------------------------------------------------------------------------------------
def step_of(schedule: Schedule, t: float | None) -> int | None:
    """The discrete step holding ``t`` (None for continuous schedules or t = None)."""
    return None if t is None or not schedule.discrete else int(schedule.step_of_t(float(t)))


def full_steps(schedule: Schedule, t_start: float | None) -> int:
    """Every step from t_start (T when None) to 0: step + 1 evaluations on a discrete schedule, else
    ``CONTINUOUS_FULL_STEPS`` per unit of t / T (at least one)."""
    t = schedule.T if t_start is None else float(t_start)
    if schedule.discrete:
        return int(schedule.step_of_t(t)) + 1
    return max(1, math.ceil(CONTINUOUS_FULL_STEPS * t / schedule.T))


def sampling_grid(schedule: Schedule, n_steps: int | None, t_start: float | None) -> torch.Tensor:
    """The decreasing grid of ``n_steps`` steps (None: every step) from ``t_start`` to 0.

    ``t_start`` None is the vanilla start: T, or on a discrete schedule DDIM's uniform skip from step
    (n - 1) * (N // n) (666 / 800 / 900 of 1000 for n = 3 / 5 / 10, the paper's Table 1).
    """
    n = full_steps(schedule, t_start) if n_steps is None else check_count("n_steps", n_steps)
    return default_grid(schedule, n, t_start)


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A sampler with its options and number of steps (``None``: every step from the start)."""

    label: str
    sampler: str
    n_steps: int | None
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_sampler(self.sampler).resolve_options(dict(self.options))
        if self.n_steps is not None:
            check_count("n_steps", self.n_steps)


@dataclass(frozen=True)
class GLSSource:
    """Where the Gaussian late start takes its Gaussian from: the training samples ``y`` (N, d), with
    ``analytic`` moments (their mean and covariance) or ``empirical`` ones (the samples noised once to
    t_start with a generator seeded by ``seed``, the paper's procedure)."""

    y: Array
    moments: str = "analytic"
    seed: int = 0

    def at(self, t: float, schedule: Schedule) -> GaussianStart:
        return gls_gaussian(self.y, t, schedule, self.moments, self.seed)

    def config(self) -> dict:
        return {"moments": self.moments, "seed": self.seed, "n_points": int(self.y.shape[0])}


@dataclass(frozen=True)
class Samples:
    """Generated samples (N, d) flattened, float64, in the order of ``seeds``, and how they were made."""

    x: Array
    seeds: tuple[int, ...]
    t_grid: Array
    nfe: int
    config: dict


def draw_samples(denoiser: Denoiser, method: Method, seeds: Sequence[int] | str, *, start: str = "noise",
                 t_start: float | None = None, gls: GLSSource | None = None, batch_size: int = 4096,
                 threads: int = 1, save_to: str | os.PathLike | None = None) -> Samples:
    """Samples of ``method`` for the per-sample ``seeds`` (sample k uses seed k's start and step noise).

    ``start``: ``noise`` (N(0, I) at T, or at the discrete schedule's uniform-skip start; ``t_start``
    must be None), ``late`` (N(0, I) at ``t_start``) or ``gls`` (the Gaussian of ``gls`` at
    ``t_start``). ``save_to``: an optional ``.npy`` path; the samples and a ``.config.json`` sidecar are
    written there atomically. Nothing is written otherwise.
    """
    seeds = parse_seeds(seeds, "seeds")
    schedule = denoiser.schedule
    if start == "noise" and t_start is not None:
        raise ValueError("t_start: the noise start begins at T (the vanilla grid); use start='late' or 'gls'")
    if start in ("late", "gls") and t_start is None:
        raise ValueError(f"t_start: the {start} start needs a start time")
    if start == "gls" and gls is None:
        raise ValueError("gls: the gls start needs the data source of its Gaussian (GLSSource)")
    grid = sampling_grid(schedule, method.n_steps, t_start)
    t0 = float(grid[0])
    gaussian = gls.at(t0, schedule) if start == "gls" else None
    sampler = get_sampler(method.sampler)
    options = sampler.resolve_options(dict(method.options))
    chunks, nfe, start_config = [], 0, None
    device = denoiser_device(denoiser)
    with cpu_threads(threads), torch.no_grad():
        for i in range(0, len(seeds), check_count("batch_size", batch_size)):
            chunk = seeds[i:i + batch_size]
            state = start_state(start, chunk, denoiser.shape, schedule, t0, gaussian=gaussian, device=device)
            result = sampler(denoiser, state.x, grid, seeds=chunk, **options)
            chunks.append(result.x.reshape(len(chunk), -1).cpu().numpy().astype(np.float64))
            nfe, start_config = result.nfe, state.config
    x = np.concatenate(chunks)
    if not np.isfinite(x).all():
        raise FloatingPointError(f"{method.label}: the sampler produced NaN or infinite values from t = {t0:.6g}")
    config = {"method": asdict(method), "options": options, "start": start_config, "t_start": t0,
              "step_start": step_of(schedule, t0), "nfe": nfe, "n_samples": len(seeds),
              "gls": None if gls is None or start != "gls" else gls.config(), "t_grid": grid.tolist()}
    samples = Samples(x, tuple(seeds), grid.numpy(), nfe, config)
    if save_to is not None:
        _save_samples(Path(save_to), samples)
    return samples


def _save_samples(path: Path, samples: Samples) -> None:
    if path.suffix != ".npy":
        raise ValueError(f"save_to: expected a path ending in .npy, got {str(path)!r}")
    with staged_dir(path.parent) as tmp:
        np.save(tmp / path.name, samples.x.astype(np.float32))
        (tmp / sidecar_path(path).name).write_text(dumps({**samples.config, "seeds": list(samples.seeds)}) + "\n")


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """A metric's value (mean over seed blocks, or the floor's value) and its confidence interval."""

    value: float
    ci_low: float
    ci_high: float
    n_blocks: int
    n_samples: int
    ci: str  # "t over blocks", "resplits" (the floor) or "none"


BlockMetric = Callable[[Array], float]
MetricFactory = Callable[[Array], dict[str, BlockMetric]]


@dataclass(frozen=True)
class MetricSuite:
    """Metrics of a block of generated samples (rows of flattened samples) against the training part.

    ``factory(train)`` builds the metrics (name -> function of one block) against a reference set;
    ``metrics`` are those against the training part. ``held_out``: the floor's samples
    (``block_size`` rows); ``label``: class labels of samples (classifier or nearest mode) for the
    class shares; ``primary``: the metric that ranks start times ("fd" or "w2"); ``resplit(r)``: the
    r-th other split of the real data into (training part, held-out part), for the floor's interval.
    """

    name: str
    factory: MetricFactory
    train: Array
    held_out: Array
    label: Callable[[Array], NDArray[np.int64]]
    num_classes: int
    primary: str
    resplit: Callable[[int], tuple[Array, Array]] | None = None
    config: dict = field(default_factory=dict, repr=False)
    metrics: dict[str, BlockMetric] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", self.factory(self.train))

    @property
    def block_size(self) -> int:
        return int(self.held_out.shape[0])

    @property
    def train_shares(self) -> Array:
        return self.shares(self.train)

    def names(self, names: Sequence[str] | None = None) -> list[str]:
        chosen = list(self.metrics) if names is None else list(names)
        unknown = [n for n in chosen if n not in self.metrics]
        if unknown:
            raise ValueError(f"metrics: unknown {unknown[0]!r}; this suite has {', '.join(self.metrics)}")
        return chosen

    def blocks(self, x: Array) -> list[Array]:
        """``x`` cut into consecutive seed blocks of ``block_size`` rows (its length must be a multiple)."""
        n = np.shape(x)[0]
        if n == 0 or n % self.block_size:
            raise ValueError(f"--seeds: the number of samples must be a positive multiple of the block size "
                             f"{self.block_size} (the floor's held-out size), got {n}")
        return [x[i:i + self.block_size] for i in range(0, n, self.block_size)]

    def shares(self, x: Array) -> Array:
        """Class shares of the samples ``x`` (the suite's labels)."""
        return M.class_histogram(self.label(x), self.num_classes)

    def block_values(self, x: Array, names: Sequence[str] | None = None) -> dict[str, Array]:
        """Each metric on each seed block: name -> values (n_blocks,)."""
        blocks = self.blocks(x)
        return {n: np.array([self.metrics[n](b) for b in blocks]) for n in self.names(names)}

    def measure(self, x: Array, names: Sequence[str] | None = None, *, level: float = 0.95) -> dict[str, Measurement]:
        """Each metric as the mean over seed blocks, with a Student-t interval over the blocks
        (2 or more blocks; a single block gets no interval)."""
        values = self.block_values(x, names)
        return {n: _over_blocks(v, int(np.shape(x)[0]), level) for n, v in values.items()}

    def floor(self, names: Sequence[str] | None = None, *, n_resplits: int = 20, level: float = 0.95,
              seed: int = 0) -> dict[str, Measurement]:
        """Every metric for the held-out samples against the training part (the floor).

        The interval comes from ``n_resplits`` other random splits of the real data, made like the
        first one (``resplit(r)`` gives (training part, held-out part)), each
        held-out part cut to ``block_size`` rows: the metric's spread between two independent sets of
        real data of these sizes. (Resampling rows with replacement would put duplicates in the block,
        which biases FD, KID, SW and W2 upwards, so that interval would miss the value itself.)
        Without ``resplit`` there is no interval.
        """
        names = self.names(names)
        values = {n: float(self.metrics[n](self.held_out)) for n in names}
        if self.resplit is None:
            return {n: Measurement(v, math.nan, math.nan, 1, self.block_size, "none") for n, v in values.items()}
        draws: dict[str, list[float]] = {n: [] for n in names}
        for r in range(check_count("n_resplits", n_resplits, 2)):
            reference, held_out = self.resplit(r)
            metrics = self.factory(reference)
            block = _block_subset(held_out, self.block_size, seed + r)
            for n in names:
                draws[n].append(metrics[n](block))
        low, high = (1 - level) / 2, (1 + level) / 2
        return {n: Measurement(values[n], *map(float, np.quantile(draws[n], [low, high])), 1, self.block_size,
                               "resplits") for n in names}


def _over_blocks(values: Array, n_samples: int, level: float) -> Measurement:
    """Mean over seed blocks with the Student-t interval mean +- t_{(1+level)/2, B-1} s / sqrt(B)
    (B independent blocks; a percentile bootstrap over so few blocks would be too narrow)."""
    b = values.size
    if b < 2:
        return Measurement(float(values.mean()), math.nan, math.nan, b, n_samples, "none")
    half = float(stats.t.ppf((1 + level) / 2, b - 1) * values.std(ddof=1) / math.sqrt(b))
    mean = float(values.mean())
    return Measurement(mean, mean - half, mean + half, b, n_samples, "t over blocks")


def measurements_frame(rows: Sequence[tuple[dict, Mapping[str, Measurement]]]) -> pd.DataFrame:
    """A tidy frame: the keys of each row's dict, then metric, value, ci_low, ci_high, n_blocks,
    n_samples, ci."""
    records = [{**keys, "metric": name, **asdict(m)} for keys, ms in rows for name, m in ms.items()]
    return pd.DataFrame(records)


def _block_subset(held_out: Array, block_size: int | None, seed: int) -> Array:
    """The floor's samples: all of the held-out part, or a seeded subset of ``block_size`` rows."""
    if block_size is None or block_size >= held_out.shape[0]:
        return held_out
    idx = np.sort(np.random.default_rng(seed).choice(held_out.shape[0], check_count("block_size", block_size, 2),
                                                     replace=False))
    return held_out[idx]


def classifier_suite(train: Array, held_out: Array, classifier, *, block_size: int | None = None,
                     resplit: Callable[[int], tuple[Array, Array]] | None = None, kid_subsets: int = 10,
                     sw_projections: int = 200, seed: int = 0) -> MetricSuite:
    """FD, KID, SW, class entropy and KL for image-like data with a frozen feature classifier.

    KID: ``kid_subsets`` subsets of the block's size per block (so 50 over five blocks)."""
    k = classifier.config.num_classes

    def shares(x: Array) -> Array:
        return M.class_histogram(classifier.predict(x), k)

    def factory(reference: Array) -> dict[str, BlockMetric]:
        features, reference_shares = classifier.features(reference), shares(reference)
        return {
            "fd": lambda x: M.fd(classifier.features(x), features),
            "kid": lambda x: M.kid(classifier.features(x), features, subset_size=min(len(x), len(reference)),
                                   n_subsets=kid_subsets, seed=seed).mean,
            "sw": lambda x: M.sliced_wasserstein(x, reference, n_projections=sw_projections, seed=seed),
            "entropy": lambda x: M.entropy_bits(shares(x)),
            "kl": lambda x: M.kl_divergence_bits(shares(x), reference_shares),
        }

    floor = _block_subset(held_out, block_size, seed)
    config = {"kind": "classifier", "block_size": int(floor.shape[0]), "kid_subsets": kid_subsets,
              "sw_projections": sw_projections, "seed": seed, "features": "classifier penultimate layer (64)"}
    return MetricSuite("classifier", factory, train, floor, classifier.predict, k, "fd", resplit, config)


def nearest_mode(x: Array, model: GaussianMixture) -> NDArray[np.int64]:
    """Index of the mixture component nearest to each sample, distance scaled by the component's std
    (the "class" of a mixture sample; matches :func:`symbreak.analysis.metrics.mode_coverage`)."""
    means, std = _mixture_modes(model)
    scaled = np.linalg.norm(np.asarray(x)[:, None, :] - means[None], axis=2) / std[None]
    return scaled.argmin(axis=1).astype(np.int64)


def _mixture_modes(model: GaussianMixture) -> tuple[Array, Array]:
    means = np.stack([c.mean for c in model.components])
    std = np.array([math.sqrt(float(np.trace(c.cov)) / model.dim) for c in model.components])
    return means, std


def mixture_suite(train: Array, held_out: Array, model: GaussianMixture, *, block_size: int | None = None,
                  resplit: Callable[[int], tuple[Array, Array]] | None = None, sw_projections: int = 200,
                  seed: int = 0) -> MetricSuite:
    """Exact W2, SW, mode coverage, high-quality fraction, entropy and KL of the nearest-mode shares."""
    means, std = _mixture_modes(model)
    k = len(model.components)

    def shares(x: Array) -> Array:
        return M.class_histogram(nearest_mode(x, model), k)

    def coverage(x: Array) -> M.ModeCoverage:
        return M.mode_coverage(x, means, std, weights=model.weights)

    def factory(reference: Array) -> dict[str, BlockMetric]:
        reference_shares = shares(reference)
        return {
            "w2": lambda x: M.w2_exact(x, reference),
            "sw": lambda x: M.sliced_wasserstein(x, reference, n_projections=sw_projections, seed=seed),
            "coverage": lambda x: coverage(x).coverage,
            "high_quality": lambda x: coverage(x).high_quality,
            "entropy": lambda x: M.entropy_bits(shares(x)),
            "kl": lambda x: M.kl_divergence_bits(shares(x), reference_shares),
        }

    floor = _block_subset(held_out, block_size, seed)
    config = {"kind": "mixture", "block_size": int(floor.shape[0]), "sw_projections": sw_projections,
              "seed": seed, "mode_std": std.tolist(), "coverage_k": 3.0}
    return MetricSuite("mixture", factory, train, floor, lambda x: nearest_mode(x, model), k, "w2", resplit,
                       config)


# ---------------------------------------------------------------------------------------------
# the setup every recipe shares
# ---------------------------------------------------------------------------------------------
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

    ``denoiser``: ``network`` (eps-prediction MLP, :func:`symbreak.experiments.training.load_or_train`)
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
    from .networks import MLPConfig
    from .training import TrainConfig, default_train_config, load_or_train_model

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
    from .classifier import load_or_train_classifier

    steps = QUICK.classifier_steps if quick else 1500
    clf = load_or_train_classifier(train.name, train.x, train.labels, train.shape, seed=0, cache_dir=cache_dir,
                                   split_seed=SPLIT_SEED, test_fraction=TEST_FRACTION, steps=steps)
    held_out_accuracy = float(np.mean(clf.predict(held_out.x) == held_out.labels))
    config["classifier"] = {"config": asdict(clf.config), "cache_key": clf.config.key(),
                            "test_accuracy": clf.test_accuracy, "held_out_accuracy": held_out_accuracy,
                            "trained_on": "training part (its own 80 %), never the held-out part"}
    return clf


# ---------------------------------------------------------------------------------------------
# the theory's critical times on the sampling schedule
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def parse_seed_list(spec: str, block_size: int, name: str = "--seeds") -> list[int]:
    """Seeds from a spec like ``0-359``; their number must be a multiple of the block size."""
    seeds = parse_seeds(spec, name)
    if len(seeds) % block_size:
        raise ValueError(f"{name}: {len(seeds)} seeds is not a multiple of the block size {block_size} "
                         f"(the held-out floor's size; use e.g. 0-{block_size - 1} or 0-{5 * block_size - 1})")
    return seeds


def write_outputs(out_dir: str | os.PathLike, stem: str, *, config: dict, results: dict,
                  frames: Mapping[str, pd.DataFrame], texts: Mapping[str, str] | None = None,
                  figure: Callable[[Path], None] | None = None) -> Path:
    """Write ``stem``.json (results), ``stem``.config.json (resolved config), one CSV per frame
    (``stem``.csv for the key ``""``, else ``stem``_key.csv), text files and the figure (PNG + PDF,
    drawn by ``figure(path_without_suffix)``), all at once into ``out_dir`` (nothing on failure)."""
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        for key, frame in frames.items():
            frame.to_csv(tmp / (f"{stem}.csv" if not key else f"{stem}_{key}.csv"), index=False)
        (tmp / f"{stem}.json").write_text(dumps(results) + "\n")
        (tmp / sidecar_path(tmp / f"{stem}.json").name).write_text(dumps(config) + "\n")
        for name, text in (texts or {}).items():
            (tmp / name).write_text(text)
        if figure is not None:
            figure(tmp / stem)
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (cells as str)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def figure_style() -> Path:
    """The project's matplotlib style file (package data)."""
    return Path(__file__).with_name("data") / "symbreak.mplstyle"


def save_figure(fig, path: Path) -> None:
    """``path``.png and ``path``.pdf."""
    for suffix in (".png", ".pdf"):
        fig.savefig(path.with_suffix(suffix))
