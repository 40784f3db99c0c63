"""The metric suites of the offline evaluations.

Each metric compares a block of generated samples with the training part. Generated samples are
measured in **seed blocks** of exactly the held-out size, so every number is comparable with the
floor (held-out vs train: FD and W2 are biased at finite n, the bias depending on n). The reported
value is the mean over blocks, with a percentile bootstrap interval over the (independent) blocks
(:func:`block_bootstrap`; exact enumeration of all B^B resamples for B <= 6); a single block gets no
interval. Two rows drawn with the same seeds (vanilla and GLS) are compared by a **paired** bootstrap
over their common blocks (:func:`paired_gain`: ratio and difference of the means). Bootstrap intervals
lie within the range of the block values, so a distance's interval never goes below 0, and each
contains its own estimate. (A Student-t interval over 2-5 blocks, used before, reached far below 0:
t_{0.975,1} = 12.7.) With few blocks the bootstrap interval is too narrow -- with B = 2 it is the two
block values -- so runs that report intervals use 5 or more blocks. The floor's interval is the range
of the floor over the first split and other random splits of the real data (:meth:`MetricSuite.floor`).

digits (and other labelled data): ``fd`` (Frechet distance on the classifier's 64 penultimate
features, never called FID), ``kid`` (unbiased cubic-kernel MMD^2 on the same features), ``sw``
(sliced 2-Wasserstein on raw pixels), ``entropy`` (bits, of the classifier's labels) and ``kl``
(bits, KL of those label shares to the training part's).
Gaussian mixtures (gmm-2d): ``w2`` (exact W2 on raw samples), ``sw``, ``coverage`` and
``high_quality`` (mode coverage within 3 component std), ``entropy`` and ``kl`` of the nearest
mode ("class").
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from symbreak.analysis import metrics as M
from symbreak.theory import GaussianMixture
from symbreak.theory.checks import check_int

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Measurement:
    """A metric's value (mean over seed blocks, or the floor's value) and its confidence interval."""

    value: float
    ci_low: float
    ci_high: float
    n_blocks: int
    n_samples: int
    ci: str  # "bootstrap over blocks", "resplits" (the floor: range over the splits) or "none"


@dataclass(frozen=True)
class PairedGain:
    """A row against the vanilla row on the same seed blocks: ratio vanilla / row and difference
    vanilla - row of their means (> 1 and > 0: the row is better for a lower-is-better metric), each
    with its paired bootstrap interval over the common blocks."""

    ratio: float
    ratio_low: float
    ratio_high: float
    difference: float
    difference_low: float
    difference_high: float
    n_blocks: int


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

        The interval is the range (min, max) of the floor over the first split and ``n_resplits`` other
        random splits of the real data, made like the first one (``resplit(r)`` gives (training part,
        held-out part)), each held-out part cut to ``block_size`` rows: the metric's spread between two
        independent sets of real data of these sizes. The range of m = n_resplits + 1 draws holds a new
        draw with probability (m - 1) / (m + 1) (91 % for the default 20 resplits), and it holds the
        floor itself. (Quantiles of the other splits alone, used before, could miss the floor: with 3
        resplits a KID floor of 0.41 got [2.31, 13.6].) (Resampling rows with replacement would put
        duplicates in the block, which biases FD, KID, SW and W2 upwards, so that interval would miss
        the value itself.)
        Without ``resplit`` there is no interval.
        """
        names = self.names(names)
        values = {n: float(self.metrics[n](self.held_out)) for n in names}
        if self.resplit is None:
            return {n: Measurement(v, math.nan, math.nan, 1, self.block_size, "none") for n, v in values.items()}
        draws: dict[str, list[float]] = {n: [values[n]] for n in names}
        for r in range(check_int("n_resplits", n_resplits, 2)):
            reference, held_out = self.resplit(r)
            metrics = self.factory(reference)
            block = block_subset(held_out, self.block_size, seed + r)
            for n in names:
                draws[n].append(metrics[n](block))
        return {n: Measurement(values[n], float(min(draws[n])), float(max(draws[n])), 1, self.block_size,
                               "resplits") for n in names}


EXACT_BOOTSTRAP = 50_000  # enumerate all B^B block resamples up to this many (B <= 6)
BOOTSTRAP_DRAWS = 4000  # seeded Monte Carlo resamples beyond


def block_bootstrap(n_blocks: int, seed: int = 0) -> NDArray[np.int64]:
    """Resamples of block indices (R, B) with replacement: all B^B of them for B <= 6 (the exact
    bootstrap distribution), else ``BOOTSTRAP_DRAWS`` drawn with a generator seeded by ``seed``."""
    b = check_int("n_blocks", n_blocks, 1)
    if b**b <= EXACT_BOOTSTRAP:
        return np.array(list(itertools.product(range(b), repeat=b)), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, b, size=(BOOTSTRAP_DRAWS, b))


def percentile_interval(estimate: float, draws: Array, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``draws``, stretched to the estimate when a
    skewed bootstrap distribution leaves it outside (so every interval holds its own estimate)."""
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(min(low, estimate)), float(max(high, estimate))


def _over_blocks(values: Array, n_samples: int, level: float) -> Measurement:
    """Mean over seed blocks with the percentile bootstrap interval over the blocks (B >= 2)."""
    b, mean = values.size, float(values.mean())
    if b < 2:
        return Measurement(mean, math.nan, math.nan, b, n_samples, "none")
    draws = values[block_bootstrap(b)].mean(axis=1)
    return Measurement(mean, *percentile_interval(mean, draws, level), b, n_samples, "bootstrap over blocks")


def summarise_blocks(values: Array, n_samples: int, level: float = 0.95) -> Measurement:
    """A metric's block values (from :meth:`MetricSuite.block_values`) as a :class:`Measurement`."""
    return _over_blocks(np.asarray(values, dtype=np.float64), n_samples, level)


def paired_gain(vanilla: Array, other: Array, level: float = 0.95) -> PairedGain:
    """vanilla / other and vanilla - other of the block means, with intervals from the same block
    resamples for both rows (paired: block k of each row holds the same seeds). The ratio needs
    positive block values (FD, SW, W2); it is NaN otherwise."""
    v, o = np.asarray(vanilla, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if v.shape != o.shape or v.ndim != 1 or v.size < 1:
        raise ValueError(f"other: expected block values paired with vanilla's {v.shape}, got {o.shape}")
    diff = float(v.mean() - o.mean())
    ratio = float(v.mean() / o.mean()) if (o > 0).all() and (v > 0).all() else math.nan
    if v.size < 2:
        return PairedGain(ratio, math.nan, math.nan, diff, math.nan, math.nan, v.size)
    idx = block_bootstrap(v.size)
    vm, om = v[idx].mean(axis=1), o[idx].mean(axis=1)
    r_lo, r_hi = percentile_interval(ratio, vm / om, level) if math.isfinite(ratio) else (math.nan, math.nan)
    return PairedGain(ratio, r_lo, r_hi, diff, *percentile_interval(diff, vm - om, level), v.size)


def measurements_frame(rows: Sequence[tuple[dict, Mapping[str, Measurement]]]) -> pd.DataFrame:
    """A tidy frame: the keys of each row's dict, then metric, value, ci_low, ci_high, n_blocks,
    n_samples, ci."""
    records = [{**keys, "metric": name, **asdict(m)} for keys, ms in rows for name, m in ms.items()]
    return pd.DataFrame(records)


def block_subset(held_out: Array, block_size: int | None, seed: int) -> Array:
    """The floor's samples: all of the held-out part, or a seeded subset of ``block_size`` rows."""
    if block_size is None or block_size >= held_out.shape[0]:
        return held_out
    idx = np.sort(np.random.default_rng(seed).choice(held_out.shape[0], check_int("block_size", block_size, 2),
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

    floor = block_subset(held_out, block_size, seed)
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

    floor = block_subset(held_out, block_size, seed)
    config = {"kind": "mixture", "block_size": int(floor.shape[0]), "sw_projections": sw_projections,
              "seed": seed, "mode_std": std.tolist(), "coverage_k": 3.0}
    return MetricSuite("mixture", factory, train, floor, lambda x: nearest_mode(x, model), k, "w2", resplit,
                       config)
