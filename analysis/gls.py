"""Gaussian late start (GLS): the Gaussian the noised data follow before the critical time.

Before t_c the noised state x_t = alpha y + sigma eps is close to N(alpha mu, alpha^2 Sigma + sigma^2 I)
(mu, Sigma: data mean and covariance; Raya & Ambrogioni 2023, the Gaussian late start). A fast sampler
can start at t_start near t_c from this Gaussian instead of from N(0, I) at T.

Large d: the covariance is kept in low-rank + isotropic form,
    C = U diag(lam) U^T + iso (I - U U^T),
with U the top-k covariance eigenvectors. From a :class:`CovarianceSpectrum` of Sigma this is
lam = alpha^2 lam_k + sigma^2 and iso = alpha^2 rho + sigma^2, where rho = (tr Sigma - sum lam_k) / (d - k)
spreads the variance outside the top-k space evenly over the d - k remaining directions. That keeps
the top-k directions and the total variance exactly and replaces the rest of the spectrum by its
mean; it is exact when k = d (or when the discarded eigenvalues are all equal).
Samples need O(d k) work and memory each, never a d x d matrix.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from symbreak.theory.checks import check_int
from symbreak.theory.schedules import Schedule

from .datasets import Dataset, chunk_slices, rows_per_chunk
from .spectrum import CovarianceSpectrum, covariance_spectrum

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class GaussianStart:
    """N(mean, U diag(lam) U^T + iso (I - U U^T)) with orthonormal columns U = ``vecs`` (d, k); with k = 0
    ``iso`` may be a vector (d,): the diagonal covariance diag(iso)."""

    mean: Array
    vecs: Array
    lam: Array
    iso: float | Array
    config: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if np.ndim(self.iso) not in (0, 1) or (np.ndim(self.iso) == 1 and (self.k or np.size(self.iso) != self.dim)):
            raise ValueError(f"iso: a per-coordinate variance needs k = 0 and length {self.dim}, got k = {self.k} "
                             f"and shape {np.shape(self.iso)}")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def k(self) -> int:
        return int(self.lam.shape[0])

    def cov_matrix(self) -> Array:
        """The d x d covariance (built only on request, e.g. for small d or checks)."""
        if np.ndim(self.iso) == 1:
            return np.diag(np.asarray(self.iso, dtype=np.float64))
        u = self.vecs
        return (u * (self.lam - self.iso)) @ u.T + self.iso * np.eye(self.dim)

    def transform(self, eps: ArrayLike) -> Array:
        """mean + C^{1/2} eps for standard normal eps (n, d), C^{1/2} the symmetric square root:
        sqrt(iso) eps + U ((sqrt(lam) - sqrt(iso)) * U^T eps)."""
        eps = np.asarray(eps, dtype=np.float64)
        if eps.ndim != 2 or eps.shape[1] != self.dim:
            raise ValueError(f"eps: expected shape (n, {self.dim}), got {eps.shape}")
        root_iso = np.sqrt(self.iso)
        if self.k == 0:  # isotropic or diagonal
            return self.mean + root_iso * eps
        return self.mean + root_iso * eps + ((eps @ self.vecs) * (np.sqrt(self.lam) - root_iso)) @ self.vecs.T

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        """n samples (n, d) from one generator."""
        return self.transform(rng.standard_normal((int(n), self.dim)))

    def sample_seeded(self, seeds: Sequence[int]) -> Array:
        """One sample per seed (len(seeds), d); sample i depends on seeds[i] only."""
        return self.transform(np.stack([np.random.default_rng(int(s)).standard_normal(self.dim) for s in seeds]))


def _noise_level(t: float, schedule: Schedule) -> tuple[float, float]:
    t = float(schedule.check_t(t))
    return float(schedule.alpha(t)), float(schedule.sigma2(t))


def gaussian_start(spectrum: CovarianceSpectrum, t: float, schedule: Schedule) -> GaussianStart:
    """N(alpha mu, alpha^2 Sigma + sigma^2 I) at time t from the data's spectrum (low-rank + isotropic)."""
    alpha, sigma2 = _noise_level(t, schedule)
    a2 = alpha * alpha
    config = {"kind": "gaussian", "t": float(t), "alpha": alpha, "sigma2": sigma2,
              "schedule": schedule.config(), "spectrum": spectrum.config()}
    return GaussianStart(alpha * spectrum.mean, spectrum.vecs, a2 * spectrum.lam + sigma2,
                         a2 * spectrum.residual_variance + sigma2, config)


def diagonal_gaussian_start(x: ArrayLike | Dataset, t: float, schedule: Schedule, *, noised: bool = False,
                            chunk_size: int | None = None) -> GaussianStart:
    """N(alpha mu, alpha^2 diag(var) + sigma^2 I) at time t from the data's per-coordinate mean and variance
    (float64 sums over row chunks); ``noised``: ``x`` are already noised to t (the empirical moments), so
    their own mean and variance are used. Keeps the marginal variances and drops every correlation --
    including the top directions whose instability sets t_c -- so it is an option, not the default."""
    y = x.x if isinstance(x, Dataset) else np.asarray(x)
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"x: expected an array of shape (N >= 2, d), got shape {y.shape}")
    n, d = y.shape
    total, squares = np.zeros(d), np.zeros(d)
    for rows in chunk_slices(n, chunk_size or rows_per_chunk(d)):
        block = np.asarray(y[rows], dtype=np.float64)
        total += block.sum(axis=0)
        squares += np.einsum("ij,ij->j", block, block)
    mu = total / n
    var = np.maximum(squares / n - mu * mu, 0.0) * n / (n - 1)
    alpha, sigma2 = (1.0, 0.0) if noised else _noise_level(t, schedule)
    config = {"kind": "diagonal", "t": float(t), "alpha": alpha, "sigma2": sigma2, "noised": noised,
              "schedule": schedule.config(), "n": n}
    return GaussianStart(alpha * mu, np.zeros((d, 0)), np.zeros(0), alpha * alpha * var + sigma2, config)


def noised_data(x: ArrayLike | Dataset, t: float, schedule: Schedule, rng: np.random.Generator,
                n: int | None = None) -> NDArray[np.float32]:
    """x_t = alpha y + sigma eps for every row y of the data (or a random subset of n rows, without
    replacement), one fresh eps per row, as float32 (N, d); computed in chunks."""
    y = x.x if isinstance(x, Dataset) else np.asarray(x)
    if y.ndim != 2:
        raise ValueError(f"x: expected an array of shape (N, d), got shape {y.shape}")
    alpha, sigma2 = _noise_level(t, schedule)
    rows = None
    if n is not None:
        if not 1 <= check_int("n", n, 1) <= y.shape[0]:
            raise ValueError(f"n: must be in 1..{y.shape[0]} (rows drawn without replacement), got {n}")
        rows = np.sort(rng.choice(y.shape[0], size=int(n), replace=False))
    count, d = (y.shape[0] if rows is None else rows.size), y.shape[1]
    out = np.empty((count, d), dtype=np.float32)
    sigma = np.sqrt(sigma2)
    for sl in chunk_slices(count, rows_per_chunk(d)):
        yc = np.asarray(y[sl] if rows is None else y[rows[sl]], dtype=np.float64)
        out[sl] = alpha * yc + sigma * rng.standard_normal(yc.shape)
    return out


def empirical_gaussian_start(x: ArrayLike | Dataset, t: float, schedule: Schedule, rng: np.random.Generator,
                             n: int | None = None, k: int | None = None, method: str = "auto") -> GaussianStart:
    """The paper's procedure: noise the data once to time t (:func:`noised_data`) and fit a Gaussian
    to the noised samples (their mean and top-k covariance spectrum, low-rank + isotropic)."""
    xt = noised_data(x, t, schedule, rng, n)
    spec = covariance_spectrum(xt, k=k, method=method)
    alpha, sigma2 = _noise_level(t, schedule)
    config = {"kind": "empirical", "t": float(t), "alpha": alpha, "sigma2": sigma2, "n_noised": xt.shape[0],
              "schedule": schedule.config(), "spectrum": spec.config()}
    return GaussianStart(spec.mean, spec.vecs, spec.lam, spec.residual_variance, config)
