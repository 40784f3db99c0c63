"""Data distributions with exact noised marginals p_t(x) = E_y N(x; alpha y, sigma^2 I).

Every model gives the posterior of y given x_t = x (mean y_hat and covariance). Tweedie's formulas then
give the score and the Hessian of log p_t for all of them (Efron 2011; Raya & Ambrogioni 2023):

    grad log p_t(x)   = (alpha y_hat(x) - x) / sigma^2
    hess log p_t(x)   = -I / sigma^2 + alpha^2 / sigma^4 Cov[y | x_t = x]

All methods are batched over x, shape (B, d) (or (d,) for one point), and work in float64.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import logsumexp

from .checks import check_int, check_positive, finite_array, points, probability_weights, psd_matrix
from .schedules import Schedule

Array = NDArray[np.float64]
LOG_2PI = math.log(2.0 * math.pi)
MAX_NORM = 1e150  # |y|^2 and alpha^2 |y|^2 / sigma^2 must stay finite in float64


@dataclass(frozen=True)
class Posterior:
    """Moments of y given x_t = x for a batch of B points: mean (B, d), cov (B, d, d) or None."""

    mean: Array
    cov: Array | None = None


class DataModel(ABC):
    """A data distribution whose noised marginal is known exactly at every noise level."""

    dim: int

    # --- what a subclass defines (in terms of the noise level alpha, sigma^2) -----------------
    @abstractmethod
    def _posterior(self, x: Array, alpha: float, sigma2: float, want_cov: bool) -> Posterior: ...

    @abstractmethod
    def _log_prob(self, x: Array, alpha: float, sigma2: float) -> Array: ...

    @property
    @abstractmethod
    def mean(self) -> Array: ...

    @property
    @abstractmethod
    def cov(self) -> Array: ...

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> Array: ...

    @abstractmethod
    def config(self) -> dict: ...

    # --- public interface at (t, schedule) ---------------------------------------------------
    def _noise(self, t: float, schedule: Schedule) -> tuple[float, float]:
        t = float(schedule.check_t(t))
        return float(schedule.alpha(t)), float(schedule.sigma2(t))

    def _x(self, x: ArrayLike) -> Array:
        return points("x", x, self.dim)

    def log_prob(self, x: ArrayLike, t: float, schedule: Schedule) -> Array:
        """log p_t(x), shape (B,)."""
        return self._log_prob(self._x(x), *self._noise(t, schedule))

    def posterior(self, x: ArrayLike, t: float, schedule: Schedule, want_cov: bool = True) -> Posterior:
        """Mean and (optionally) covariance of y given x_t = x."""
        return self._posterior(self._x(x), *self._noise(t, schedule), want_cov)

    def posterior_mean(self, x: ArrayLike, t: float, schedule: Schedule) -> Array:
        """The exact denoiser y_hat(x) = E[y | x_t = x], shape (B, d)."""
        return self.posterior(x, t, schedule, want_cov=False).mean

    def posterior_cov(self, x: ArrayLike, t: float, schedule: Schedule) -> Array:
        """Cov[y | x_t = x], shape (B, d, d)."""
        return self.posterior(x, t, schedule).cov

    def score(self, x: ArrayLike, t: float, schedule: Schedule) -> Array:
        """grad_x log p_t(x) = (alpha y_hat - x) / sigma^2 (Tweedie)."""
        x = self._x(x)
        alpha, sigma2 = self._noise(t, schedule)
        return (alpha * self._posterior(x, alpha, sigma2, False).mean - x) / sigma2

    def hessian(self, x: ArrayLike, t: float, schedule: Schedule) -> Array:
        """Hessian of log p_t(x) = -I/sigma^2 + alpha^2/sigma^4 Cov[y | x], shape (B, d, d)."""
        x = self._x(x)
        alpha, sigma2 = self._noise(t, schedule)
        cov = self._posterior(x, alpha, sigma2, True).cov
        return (alpha / sigma2) ** 2 * cov - np.eye(self.dim) / sigma2

    def marginal_mean(self, t: float, schedule: Schedule) -> Array:
        """E[x_t] = alpha mu."""
        return self._noise(t, schedule)[0] * self.mean

    def marginal_cov(self, t: float, schedule: Schedule) -> Array:
        """Cov[x_t] = alpha^2 Sigma + sigma^2 I."""
        alpha, sigma2 = self._noise(t, schedule)
        return alpha * alpha * self.cov + sigma2 * np.eye(self.dim)


class Gaussian(DataModel):
    """y ~ N(mu, Sigma) with Sigma symmetric positive semi-definite (singular allowed).

    With Sigma = U diag(lam) U^T the posterior is diagonal in U:
    y_hat = mu + U diag(alpha lam / (alpha^2 lam + sigma^2)) U^T (x - alpha mu),
    Cov = U diag(lam sigma^2 / (alpha^2 lam + sigma^2)) U^T.
    """

    def __init__(self, mean: ArrayLike, cov: ArrayLike):
        self._mu = finite_array("mean", mean, ndim=1)
        self.dim = self._mu.shape[0]
        self._sigma = psd_matrix("cov", cov, self.dim)
        lam, self._u = np.linalg.eigh(self._sigma)
        self.lam = np.clip(lam, 0.0, None)

    @property
    def mean(self) -> Array:
        return self._mu

    @property
    def cov(self) -> Array:
        return self._sigma

    def _rotate(self, x: Array, alpha: float) -> Array:
        return (x - alpha * self._mu) @ self._u

    def _posterior(self, x: Array, alpha: float, sigma2: float, want_cov: bool) -> Posterior:
        denom = alpha * alpha * self.lam + sigma2
        mean = self._mu + (self._rotate(x, alpha) * (alpha * self.lam / denom)) @ self._u.T
        if not want_cov:
            return Posterior(mean)
        cov = (self._u * (self.lam * sigma2 / denom)) @ self._u.T
        return Posterior(mean, np.broadcast_to(cov, (x.shape[0], self.dim, self.dim)).copy())

    def _log_prob(self, x: Array, alpha: float, sigma2: float) -> Array:
        denom = alpha * alpha * self.lam + sigma2
        z = self._rotate(x, alpha)
        return -0.5 * ((z * z / denom).sum(axis=1) + np.log(denom).sum() + self.dim * LOG_2PI)

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        eps = rng.standard_normal((n, self.dim))
        return self._mu + (eps * np.sqrt(self.lam)) @ self._u.T

    def config(self) -> dict:
        return {"name": "gaussian", "mean": self._mu.tolist(), "cov": self._sigma.tolist()}


class GaussianMixture(DataModel):
    """sum_k w_k N(mu_k, Sigma_k): responsibilities r_k(x) from the noised components, then
    y_hat = sum_k r_k m_k(x) and Cov = sum_k r_k (C_k + m_k m_k^T) - y_hat y_hat^T (law of total
    covariance), with (m_k, C_k) each component's Gaussian posterior."""

    def __init__(self, weights: ArrayLike, means: ArrayLike, covs: ArrayLike):
        means = finite_array("means", means, ndim=2)
        covs = finite_array("covs", covs, ndim=3)
        if covs.shape[0] != means.shape[0]:
            raise ValueError(f"covs: expected one covariance per mean ({means.shape[0]}), got {covs.shape[0]}")
        self.weights = probability_weights("weights", weights, means.shape[0])
        self.components = [Gaussian(m, c) for m, c in zip(means, covs)]
        self.dim = means.shape[1]

    @property
    def mean(self) -> Array:
        return sum(w * c.mean for w, c in zip(self.weights, self.components))

    @property
    def cov(self) -> Array:
        mu = self.mean
        return sum(w * (c.cov + np.outer(c.mean - mu, c.mean - mu)) for w, c in zip(self.weights, self.components))

    def _responsibilities(self, x: Array, alpha: float, sigma2: float) -> tuple[Array, Array]:
        with np.errstate(divide="ignore"):
            logits = np.stack([np.log(w) + c._log_prob(x, alpha, sigma2)
                               for w, c in zip(self.weights, self.components)], axis=1)
        log_norm = logsumexp(logits, axis=1)
        return np.exp(logits - log_norm[:, None]), log_norm

    def _log_prob(self, x: Array, alpha: float, sigma2: float) -> Array:
        return self._responsibilities(x, alpha, sigma2)[1]

    def _posterior(self, x: Array, alpha: float, sigma2: float, want_cov: bool) -> Posterior:
        r = self._responsibilities(x, alpha, sigma2)[0]
        parts = [c._posterior(x, alpha, sigma2, want_cov) for c in self.components]
        mean = sum(r[:, k, None] * p.mean for k, p in enumerate(parts))
        if not want_cov:
            return Posterior(mean)
        second = sum(r[:, k, None, None] * (p.cov + p.mean[:, :, None] * p.mean[:, None, :])
                     for k, p in enumerate(parts))
        return Posterior(mean, second - mean[:, :, None] * mean[:, None, :])

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        k = rng.choice(len(self.components), size=n, p=self.weights)
        out = np.empty((n, self.dim))
        for j, comp in enumerate(self.components):
            out[k == j] = comp.sample(int((k == j).sum()), rng)
        return out

    def config(self) -> dict:
        return {"name": "gmm", "weights": self.weights.tolist(),
                "means": [c.mean.tolist() for c in self.components],
                "covs": [c.cov.tolist() for c in self.components]}


class EmpiricalData(DataModel):
    """Finite data {y_j} with weights w_j (uniform by default): p_t is a mixture of N(alpha y_j, sigma^2 I).

    The posterior over points is softmax_j(log w_j + (alpha x.y_j - alpha^2 |y_j|^2 / 2) / sigma^2).
    It is computed in chunks of at most ``chunk_size`` points with a running log-sum-exp, so memory is
    O(B chunk + B d) (plus B d^2 for the covariance), never O(B N d); chunks shrink so that the
    B x chunk logits and a chunk promoted to float64 stay near ``CHUNK_BYTES``. Points keep their
    dtype; each chunk is promoted to float64 (a view, not a copy, when they are float64 already).
    """

    CHUNK_BYTES = 1 << 22

    def __init__(self, y: ArrayLike, weights: ArrayLike | None = None, chunk_size: int = 8192):
        y = np.asarray(y)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] < 1:
            raise ValueError(f"y: expected an array of shape (N, d), got {np.shape(y)}")
        if not np.issubdtype(y.dtype, np.floating):
            y = y.astype(np.float64)
        self.y = y
        self.n_points, self.dim = y.shape
        self.chunk_size = check_int("chunk_size", chunk_size, 1)
        self._y_norm2 = np.empty(self.n_points)
        for sl in self._chunks():
            self._y_norm2[sl] = np.einsum("ij,ij->i", *(self._chunk(sl),) * 2)
        if not np.isfinite(self._y_norm2).all():
            finite = all(np.isfinite(self._chunk(sl)).all() for sl in self._chunks())
            raise ValueError("y: data contain NaN or infinite values" if not finite else
                             f"y: values so large that |y|^2 overflows float64 (|y| must stay below "
                             f"{MAX_NORM:.0e}); rescale the data")
        n = self.n_points
        self._log_w = (np.full(n, -math.log(n)) if weights is None
                       else np.log(probability_weights("weights", weights, n)))

    @property
    def log_weights(self) -> Array:
        """log w0_j (N,): the points' prior log-weights (uniform: -log N)."""
        return self._log_w

    def _chunks(self, batch: int = 1):
        """Slices of points for a scan over ``batch`` queries."""
        per_point = 8 * max(batch, 0 if self.y.dtype == np.float64 else self.dim)
        rows = min(self.chunk_size, max(256, self.CHUNK_BYTES // max(per_point, 1)))
        for start in range(0, self.n_points, rows):
            yield slice(start, min(start + rows, self.n_points))

    def _chunk(self, sl: slice) -> Array:
        return np.asarray(self.y[sl], dtype=np.float64)

    @property
    def mean(self) -> Array:
        w = np.exp(self._log_w)
        return sum(w[sl] @ self._chunk(sl) for sl in self._chunks())

    @cached_property
    def _centre(self) -> Array:
        return self.mean

    @property
    def cov(self) -> Array:
        """sum_j w_j (y_j - mu)(y_j - mu)^T, accumulated about the mean (no E[yy^T] - mu mu^T cancellation)."""
        w = np.exp(self._log_w)
        cov = np.zeros((self.dim, self.dim))
        for sl in self._chunks():
            yc = self._chunk(sl) - self._centre
            cov += (yc.T * w[sl]) @ yc
        return cov

    def _scan(self, x: Array, alpha: float, sigma2: float, want_cov: bool):
        """One pass over the points with a running max: (log-normaliser, E[y | x], E[(y - mu)(y - mu)^T | x]).

        logits_j = (log w_j - alpha^2 |y_j|^2 / (2 sigma^2)) + (alpha / sigma^2) x.y_j: one GEMM for the
        logits and one for the weighted sum per chunk; everything else is done in place. The second
        moment is taken about the data mean mu (Cov[y | x] does not depend on the shift) and costs one
        d x n x d GEMM per query point.
        """
        b, d = x.shape
        x_scaled = x * (alpha / sigma2)
        bias = self._log_w - (0.5 * alpha * alpha / sigma2) * self._y_norm2
        m = np.full(b, -np.inf)
        s = np.zeros(b)
        first = np.zeros((b, d))
        second = np.zeros((b, d, d)) if want_cov else None
        for sl in self._chunks(b):
            yc = self._chunk(sl)
            p = x_scaled @ yc.T
            p += bias[sl]
            m_new = np.maximum(m, p.max(axis=1))
            scale = np.exp(m - m_new)
            p -= m_new[:, None]
            np.exp(p, out=p)
            s *= scale
            s += p.sum(axis=1)
            first *= scale[:, None]
            first += p @ yc
            if want_cov:
                second *= scale[:, None, None]
                centred = yc - self._centre
                for i in range(b):
                    second[i] += (centred.T * p[i]) @ centred
            m = m_new
        return m + np.log(s), first / s[:, None], None if second is None else second / s[:, None, None]

    def _posterior(self, x: Array, alpha: float, sigma2: float, want_cov: bool) -> Posterior:
        _, mean, second = self._scan(x, alpha, sigma2, want_cov)
        if not want_cov:
            return Posterior(mean)
        shift = mean - self._centre
        return Posterior(mean, second - shift[:, :, None] * shift[:, None, :])

    def _log_prob(self, x: Array, alpha: float, sigma2: float) -> Array:
        log_norm = self._scan(x, alpha, sigma2, False)[0]
        x2 = np.einsum("ij,ij->i", x, x)
        return log_norm - 0.5 * x2 / sigma2 - 0.5 * self.dim * (LOG_2PI + math.log(sigma2))

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        idx = rng.choice(self.n_points, size=n, p=np.exp(self._log_w))
        return np.asarray(self.y[idx], dtype=np.float64)

    def config(self) -> dict:
        return {"name": "empirical", "n_points": self.n_points, "dim": self.dim}


class SymmetricDeltas(EmpiricalData):
    """Two equally weighted deltas at +-m u (u a unit direction; 1-D by default).

    In 1-D y_hat(x) = m tanh(alpha m x / sigma^2), so the VP SDE fixed points solve
    (1 + alpha^2) x = 2 alpha m tanh(alpha m x / sigma^2) (Raya & Ambrogioni 2023, the two-delta example;
    its critical point is alpha_c^2 = sqrt(2) - 1, README, Theory API).
    """

    def __init__(self, m: float = 1.0, direction: ArrayLike | None = None):
        self.m = check_positive("m", m)
        if self.m > MAX_NORM:
            raise ValueError(f"m: must be at most {MAX_NORM:.0e} (|m|^2 overflows float64 beyond), got {self.m:g}")
        u = np.ones(1) if direction is None else finite_array("direction", direction, ndim=1)
        norm = float(np.linalg.norm(u))
        if norm == 0:
            raise ValueError("direction: must be a non-zero vector")
        self.direction = u / norm
        super().__init__(np.stack([self.m * self.direction, -self.m * self.direction]))

    def config(self) -> dict:
        return {"name": "two-deltas", "m": self.m, "direction": self.direction.tolist()}
