"""Sample-quality and diversity metrics that need nothing from the network (numpy, scipy, POT).

Inception weights cannot be had offline, so the Fréchet distance here is computed on the penultimate
features of a small in-domain classifier (``symbreak.experiments.models.classifier``) and is called ``FD``,
never FID. Every metric is meant to be read next to its floor: the same metric for held-out data
against the training data (:func:`metric_table`), with percentile-bootstrap confidence intervals.

- FD: Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets
  (Dowson & Landau 1982; Heusel et al. 2017).
- KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets
  (Bińkowski et al. 2018), as torch-fidelity / torchmetrics compute it.
- Sliced Wasserstein on raw data (Bonneel et al. 2015), exact 1-D distances per projection.
- Exact W2 between point clouds (POT's network simplex) and mode coverage for Gaussian mixtures.
- Class histograms, their entropy in bits and KL divergence to a reference histogram.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import ot
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from symbreak.theory.checks import check_int, check_positive, finite_array

Array = NDArray[np.float64]
Metric = Callable[..., float]


def _samples(name: str, x: ArrayLike, min_rows: int = 2) -> Array:
    """``x`` as a finite float64 (n, d) array with at least ``min_rows`` rows."""
    arr = finite_array(name, x, ndim=2)
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name}: need at least {min_rows} samples (rows), got {arr.shape[0]}")
    return arr


def _pair(x: ArrayLike, y: ArrayLike, min_rows: int = 2) -> tuple[Array, Array]:
    """Two sample sets of the same dimension."""
    x, y = _samples("x", x, min_rows), _samples("y", y, min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: expected {x.shape[1]} columns to match x, got {y.shape[1]}")
    return x, y


# ---------------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------------

def _psd_sqrt(cov: Array) -> Array:
    """Symmetric square root of a covariance via its eigen-decomposition. Eigenvalues below the
    round-off level (d * eps * largest) are set to 0, so singular covariances stay exact."""
    lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    lam = np.where(lam > lam.max(initial=0.0) * lam.size * np.finfo(np.float64).eps, lam, 0.0)
    return (vec * np.sqrt(lam)) @ vec.T


def frechet_distance_gaussians(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    """Squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2):

        ||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1^{1/2} cov2 cov1^{1/2})^{1/2}).

    The cross term equals the sum of singular values of cov1^{1/2} cov2^{1/2} (the eigenvalues of
    cov1^{1/2} cov2 cov1^{1/2} are their squares). Computed so, with symmetric square roots, it
    is real and accurate to round-off even for singular covariances, unlike sqrtm(cov1 @ cov2).
    """
    mu1 = finite_array("mu1", mu1, ndim=1)
    mu2 = finite_array("mu2", mu2, ndim=1)
    d = mu1.shape[0]
    if mu2.shape != (d,):
        raise ValueError(f"mu2: expected shape ({d},) to match mu1, got {mu2.shape}")
    cov1, cov2 = finite_array("cov1", cov1, ndim=2), finite_array("cov2", cov2, ndim=2)
    for name, c in (("cov1", cov1), ("cov2", cov2)):
        if c.shape != (d, d):
            raise ValueError(f"{name}: expected shape ({d}, {d}) to match the means, got {c.shape}")
    cross = np.linalg.svd(_psd_sqrt(cov1) @ _psd_sqrt(cov2), compute_uv=False).sum()
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)
    return max(value, 0.0)


def gaussian_moments(x: ArrayLike) -> tuple[Array, Array]:
    """Sample mean and unbiased (ddof = 1) covariance of the rows of ``x``."""
    x = _samples("x", x)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def fd(x: ArrayLike, y: ArrayLike) -> float:
    """FD: squared Fréchet distance between Gaussians fitted to feature sets ``x`` (n, d) and ``y``
    (m, d). FD of a set with itself is 0 and a shift by s adds ||s||^2. Biased upwards at finite n
    (the bias shrinks like 1/n), so compare only numbers computed with equal sample sizes."""
    x, y = _pair(x, y)
    return frechet_distance_gaussians(*gaussian_moments(x), *gaussian_moments(y))


# ---------------------------------------------------------------------------------------------
# Kernel inception-style distance on in-domain features
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KID:
    """Unbiased MMD^2 averaged over ``n_subsets`` random subsets of ``subset_size`` per set."""

    mean: float
    std: float
    subset_size: int
    n_subsets: int


def polynomial_kernel(a: Array, b: Array) -> Array:
    """k(a, b) = (a . b / d + 1)^3, the KID kernel, for all pairs of rows."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _unbiased_mmd2(k_xx: Array, k_yy: Array, k_xy: Array) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3) from kernel blocks of two m-sample sets."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kid(x: ArrayLike, y: ArrayLike, subset_size: int | None = None, n_subsets: int = 100,
        seed: int = 0) -> KID:
    """KID between feature sets ``x`` and ``y``: for each of ``n_subsets`` subsets, draw
    ``subset_size`` rows without replacement from each set and compute the unbiased MMD^2 with
    :func:`polynomial_kernel`; report the mean and standard deviation over subsets. The default
    subset size is min(1000, n_x, n_y) (torchmetrics' default is 1000). The mean is ~0 (it can be
    negative) for two samples of one distribution.
    """
    x, y = _pair(x, y)
    n_subsets = check_int("n_subsets", n_subsets, 1)
    largest = min(x.shape[0], y.shape[0])
    m = min(1000, largest) if subset_size is None else check_int("subset_size", subset_size, 2)
    if m > largest:
        raise ValueError(f"subset_size: must be <= the smaller sample size {largest}, got {m}")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        ix = rng.choice(x.shape[0], m, replace=False)
        iy = rng.choice(y.shape[0], m, replace=False)
        values[s] = _unbiased_mmd2(k_xx[np.ix_(ix, ix)], k_yy[np.ix_(iy, iy)], k_xy[np.ix_(ix, iy)])
    return KID(float(values.mean()), float(values.std()), m, n_subsets)


# ---------------------------------------------------------------------------------------------
# Wasserstein distances
# ---------------------------------------------------------------------------------------------

def _check_p(p: int) -> int:
    if p not in (1, 2):
        raise ValueError(f"p: expected 1 or 2, got {p!r}")
    return p


def wasserstein_1d(u: ArrayLike, v: ArrayLike, p: int = 1) -> Array:
    """Exact W_p between the empirical distributions of the columns of ``u`` (n, P) and ``v`` (m, P).

    W_p^p = int_0^1 |F_u^{-1}(q) - F_v^{-1}(q)|^p dq. Both quantile functions are step functions
    with jumps at multiples of 1/n and 1/m, so the integral is an exact sum over the merged grid of
    jumps; unequal sample sizes need no resampling. Returns the P distances.
    """
    p = _check_p(p)
    u, v = np.sort(_samples("u", u, 1), axis=0), np.sort(_samples("v", v, 1), axis=0)
    if u.shape[1] != v.shape[1]:
        raise ValueError(f"v: expected {u.shape[1]} columns to match u, got {v.shape[1]}")
    n, m = u.shape[0], v.shape[0]
    q = np.unique(np.concatenate([np.arange(1, n + 1) / n, np.arange(1, m + 1) / m]))
    width = np.diff(q, prepend=0.0)
    mid = q - 0.5 * width
    gap = np.abs(u[np.floor(mid * n).astype(int)] - v[np.floor(mid * m).astype(int)])
    return (width @ gap**p) ** (1.0 / p)


def random_directions(d: int, n_projections: int, seed: int = 0) -> Array:
    """``n_projections`` directions uniform on the unit sphere in R^d, as columns of a (d, P) array."""
    rng = np.random.default_rng(check_int("seed", seed, 0))
    theta = rng.standard_normal((d, check_int("n_projections", n_projections, 1)))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def sliced_wasserstein(x: ArrayLike, y: ArrayLike, n_projections: int = 200, p: int = 2,
                       seed: int = 0) -> float:
    """Sliced Wasserstein distance SW_p = (E_theta W_p^p(theta . x, theta . y))^{1/p} over
    ``n_projections`` seeded random unit directions theta, with exact 1-D distances
    (:func:`wasserstein_1d`). For 1-D data every projection is +-1, so SW_p = W_p exactly."""
    x, y = _pair(x, y, 1)
    p = _check_p(p)
    theta = random_directions(x.shape[1], n_projections, seed)
    per_projection = wasserstein_1d(x @ theta, y @ theta, p)
    return float(np.mean(per_projection**p) ** (1.0 / p))


def w2_exact(x: ArrayLike, y: ArrayLike) -> float:
    """Exact W2 between the uniform empirical distributions on the rows of ``x`` and ``y``: the
    optimal transport cost with squared Euclidean ground cost (``ot.emd2``), square-rooted."""
    x, y = _pair(x, y, 1)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    cost = ot.dist(x, y, metric="sqeuclidean")
    return float(np.sqrt(max(ot.emd2(a, b, cost, numItermax=10_000_000), 0.0)))


@dataclass(frozen=True)
class ModeCoverage:
    """How samples spread over the K modes of a Gaussian mixture.

    shares: fraction of all samples that are high quality and nearest to each mode (K,);
    covered: whether each mode got at least ``min_fraction`` of its expected share (K,);
    coverage: fraction of modes covered; high_quality: fraction of samples within ``k`` std of
    their nearest mode.
    """

    shares: Array
    covered: NDArray[np.bool_]
    coverage: float
    high_quality: float


def mode_coverage(x: ArrayLike, means: ArrayLike, std: ArrayLike, k: float = 3.0,
                  weights: ArrayLike | None = None, min_fraction: float = 0.25) -> ModeCoverage:
    """Mode coverage of samples ``x`` (n, d) for a mixture with component means ``means`` (K, d)
    and isotropic component std ``std`` (a scalar or one per mode).

    Each sample goes to the mode with the smallest scaled distance ||x - mu_k|| / std_k; it is
    high quality if that distance is <= ``k``. Mode k is covered when its share of high-quality
    samples is >= ``min_fraction`` * w_k (w: mixture ``weights``, uniform by default). For exact
    mixture samples in 2-D the high-quality fraction is 1 - exp(-k^2 / 2) (well-separated modes).
    """
    means = finite_array("means", means, ndim=2)
    n_modes = means.shape[0]
    x = _samples("x", x, 1)
    if x.shape[1] != means.shape[1]:
        raise ValueError(f"x: expected {means.shape[1]} columns to match means, got {x.shape[1]}")
    std = finite_array("std", std)
    if std.ndim > 1 or std.size not in (1, n_modes) or (std <= 0).any():
        raise ValueError(f"std: expected a positive scalar or {n_modes} positive values, got {std}")
    std = np.broadcast_to(std.reshape(-1), (n_modes,))
    w = np.full(n_modes, 1.0 / n_modes) if weights is None else finite_array("weights", weights, ndim=1)
    if w.shape != (n_modes,) or (w < 0).any() or abs(w.sum() - 1.0) > 1e-8:
        raise ValueError(f"weights: expected {n_modes} non-negative values summing to 1")
    k = check_positive("k", k)
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction: must lie in (0, 1], got {min_fraction}")
    scaled = np.linalg.norm(x[:, None, :] - means[None, :, :], axis=2) / std[None, :]
    nearest = scaled.argmin(axis=1)
    good = scaled[np.arange(x.shape[0]), nearest] <= k
    shares = np.bincount(nearest[good], minlength=n_modes) / x.shape[0]
    covered = shares >= min_fraction * w
    return ModeCoverage(shares, covered, float(covered.mean()), float(good.mean()))


# ---------------------------------------------------------------------------------------------
# Class histograms
# ---------------------------------------------------------------------------------------------

def class_histogram(labels: ArrayLike, num_classes: int) -> Array:
    """Shares of each class 0..K-1 among integer ``labels`` (sums to 1)."""
    num_classes = check_int("num_classes", num_classes, 1)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected a non-empty 1-D array of integers, got {labels.dtype} {labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels: must lie in [0, {num_classes - 1}], got [{labels.min()}, {labels.max()}]")
    return np.bincount(labels, minlength=num_classes) / labels.size


def _histogram(name: str, p: ArrayLike) -> Array:
    p = finite_array(name, p, ndim=1)
    if p.size == 0 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-8:
        raise ValueError(f"{name}: expected non-negative shares summing to 1")
    return p


def entropy_bits(p: ArrayLike) -> float:
    """Shannon entropy -sum p log2 p of a histogram, in bits (0 log 0 = 0; uniform over K: log2 K)."""
    p = _histogram("p", p)
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def kl_divergence_bits(p: ArrayLike, q: ArrayLike, smoothing: float = 1e-3) -> float:
    """KL(p || q) in bits after mixing both histograms with the uniform one:
    p~ = (1 - smoothing) p + smoothing / K (same for q). The mixing keeps KL finite when q has
    empty bins (p~, q~ >= smoothing / K) and leaves KL(p || p) = 0."""
    p, q = _histogram("p", p), _histogram("q", q)
    if q.shape != p.shape:
        raise ValueError(f"q: expected {p.size} classes to match p, got {q.size}")
    if not 0 < smoothing < 1:
        raise ValueError(f"smoothing: must lie in (0, 1), got {smoothing}")
    p = (1 - smoothing) * p + smoothing / p.size
    q = (1 - smoothing) * q + smoothing / q.size
    return float(np.sum(p * np.log2(p / q)))


# ---------------------------------------------------------------------------------------------
# Bootstrap and the held-out floor
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A metric on the full samples with a percentile-bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float
    n_boot: int
    level: float


def bootstrap_ci(metric: Metric, *samples: ArrayLike, n_boot: int = 200, level: float = 0.95,
                 seed: int = 0) -> Estimate:
    """``metric(*samples)`` with a percentile-bootstrap interval: each replicate resamples the rows
    of every sample set independently with replacement (one seeded generator), and the interval is
    the ((1 - level) / 2, (1 + level) / 2) quantiles of the ``n_boot`` replicate values."""
    if not samples:
        raise ValueError("samples: pass at least one array to resample")
    n_boot = check_int("n_boot", n_boot, 2)
    if not 0 < level < 1:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    arrays = [np.asarray(s) for s in samples]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[0] < 1:
            raise ValueError(f"samples[{i}]: expected an array with at least one row, got shape {a.shape}")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    replicates = np.array([
        metric(*(a[rng.integers(0, a.shape[0], a.shape[0])] for a in arrays)) for _ in range(n_boot)
    ], dtype=np.float64)
    low, high = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(metric(*arrays)), float(low), float(high), n_boot, float(level))


HELD_OUT = "held-out"


@dataclass(frozen=True)
class MetricEstimate:
    """One row of :func:`metric_table`: ``metric`` of the ``reference`` samples ("held-out" for the
    floor, else a sampler name) against the training data."""

    metric: str
    reference: str
    value: float
    ci_low: float
    ci_high: float
    n_samples: int


def metric_estimates(metrics: Mapping[str, Metric], train: ArrayLike, held_out: ArrayLike,
                     generated: Mapping[str, ArrayLike], n_boot: int = 200, level: float = 0.95,
                     seed: int = 0) -> list[MetricEstimate]:
    """Each ``metric(samples, train)`` for the held-out data (the floor) and each generated set,
    with bootstrap intervals (:func:`bootstrap_ci`, both arguments resampled, same seed for every
    row). Finite-sample bias differs with sample size (FD, W2), so the floor is only comparable
    with generated sets of the held-out set's size."""
    if HELD_OUT in generated:
        raise ValueError(f"generated: {HELD_OUT!r} is reserved for the held-out floor; rename that sampler")
    sets = {HELD_OUT: held_out, **generated}
    rows = []
    for name, metric in metrics.items():
        for reference, samples in sets.items():
            est = bootstrap_ci(metric, samples, train, n_boot=n_boot, level=level, seed=seed)
            rows.append(MetricEstimate(name, reference, est.value, est.ci_low, est.ci_high,
                                       int(np.shape(samples)[0])))
    return rows


def metric_table(metrics: Mapping[str, Metric], train: ArrayLike, held_out: ArrayLike,
                 generated: Mapping[str, ArrayLike], n_boot: int = 200, level: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """:func:`metric_estimates` as a tidy DataFrame with columns
    metric, reference, value, ci_low, ci_high, n_samples."""
    rows = metric_estimates(metrics, train, held_out, generated, n_boot, level, seed)
    return pd.DataFrame([asdict(r) for r in rows])
