"""Streaming mean and covariance spectrum of (N, d) data without a float64 copy of the data.

The covariance is the population covariance Sigma = (1/N) sum_j (y_j - mu)(y_j - mu)^T, the same
normalisation as :attr:`EmpiricalData.cov` and ``np.cov(y.T, bias=True)``; its largest eigenvalue
``Lambda`` sets the Gaussian-approximation critical time alpha_c^2 = sqrt(1 + Lambda^2) - Lambda.
Eigenvalues come in descending order, clipped at 0, each eigenvector signed so that its entry of
largest magnitude is positive.

Two routes, both reading the data in chunks of rows:

* ``exact`` -- per chunk, the chunk mean and centred scatter in float64, merged with the pairwise
  update of Chan, Golub & LeVeque (1979): M2 = M2_a + M2_b + delta delta^T n_a n_b / n. Then the d x d
  eigendecomposition. O(N d^2 + d^3); the default when d <= ``EXACT_MAX_DIM``.
* ``lanczos`` -- block Lanczos (a block Krylov space with full reorthogonalisation and Rayleigh-Ritz)
  on the operator V -> Sigma V, which streams over the chunks computing Xc^T (Xc V). Each pass over
  the data adds one block to the Krylov space; it stops when every returned pair has relative
  residual ||Sigma v - lam v|| / Lambda <= tol (then each lam is within tol*Lambda of an eigenvalue,
  and within about (tol*Lambda)^2 / gap for a separated one). Products are taken in the data's
  precision (float32 data: float32 products accumulated into float64; float64 data: float64), with
  the data shifted by the mean of the first chunk, so no cancellation from a large mean. These
  skinny products are memory-bound: chunks run on one thread per CPU, each with single-threaded
  BLAS (multi-threaded BLAS on skinny products loses more to synchronisation than it gains).
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from symbreak.theory.checks import check_choice, check_int, check_positive

from .datasets import Dataset, chunk_slices, rows_per_chunk

Array = NDArray[np.float64]
METHODS = ("auto", "exact", "lanczos")
EXACT_MAX_DIM = 1024
DEFAULT_K = 16
CACHE_BYTES = 1 << 21


@dataclass(frozen=True, eq=False)
class CovarianceSpectrum:
    """Mean and top-k covariance eigenpairs: Sigma ~ vecs diag(lam) vecs^T (+ the rest, see below).

    ``trace`` is tr Sigma over all d directions, so the variance not captured by the k pairs is
    ``trace - lam.sum()``; ``residual_variance`` spreads it evenly over the d - k other directions.
    ``passes``: passes over the data; ``residual``: largest relative residual of the returned pairs
    (``None`` for exact routes). ``n`` is None for the exact moments of a data model.
    """

    mean: Array
    lam: Array
    vecs: Array
    n: int | None
    dim: int
    method: str
    trace: float
    passes: int = 0
    residual: float | None = None

    @property
    def Lambda(self) -> float:
        """The largest covariance eigenvalue."""
        return float(self.lam[0])

    @property
    def k(self) -> int:
        return int(self.lam.shape[0])

    @property
    def residual_variance(self) -> float:
        """(tr Sigma - sum of the k eigenvalues) / (d - k): the mean variance off the top-k space."""
        if self.k >= self.dim:
            return 0.0
        return max(0.0, (self.trace - float(self.lam.sum())) / (self.dim - self.k))

    def config(self) -> dict:
        return {"method": self.method, "n": self.n, "dim": self.dim, "k": self.k, "Lambda": self.Lambda,
                "trace": self.trace, "passes": self.passes, "residual": self.residual}




def covariance_spectrum(x: ArrayLike | Dataset, k: int | None = None, method: str = "auto",
                        chunk_size: int | None = None, tol: float | None = None, max_passes: int = 60,
                        block: int | None = None, seed: int = 0) -> CovarianceSpectrum:
    """Mean and top-``k`` eigenpairs of the population covariance of the rows of ``x`` (N, d).

    ``k`` defaults to d on the exact route and ``DEFAULT_K`` on the Lanczos route. ``method="auto"``
    takes the exact route when d <= ``EXACT_MAX_DIM``. Lanczos options: ``tol`` (relative residual,
    default 1e-9 for float64 products, 1e-4 for float32), ``max_passes``, ``block`` (vectors per
    pass, default max(k, 8)) and ``seed`` (the random start block).
    """
    y = _rows(x)
    n, d = y.shape
    if check_choice("method", method, METHODS) == "auto":
        method = "exact" if d <= EXACT_MAX_DIM else "lanczos"
    k = (d if method == "exact" else min(d, DEFAULT_K)) if k is None else check_int("k", k, 1, d)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    if method == "exact":
        return _exact(y, k, chunk_size or rows_per_chunk(d))
    itemsize = np.dtype(_compute_dtype(y)).itemsize
    tol = (1e-9 if itemsize == 8 else 1e-4) if tol is None else check_positive("tol", tol)
    block = min(d, max(k, 8) if block is None else check_int("block", block, 1))
    max_passes = check_int("max_passes", max_passes, -(-k // block))
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(_cpus()) as pool:
        stream = _CovarianceStream(y, chunk_size or rows_per_chunk(d, itemsize), pool)
        lam, vecs, passes, res = _block_lanczos(stream, k, block, tol, max_passes, np.random.default_rng(seed))
    if res > tol:
        warnings.warn(f"covariance_spectrum: block Lanczos stopped after {passes} passes with relative "
                      f"residual {res:.2g} > tol = {tol:.2g}; raise max_passes or block", RuntimeWarning)
    return CovarianceSpectrum(stream.mean, lam, vecs, n, d, "lanczos", stream.trace, passes, res)


def spectrum_from_moments(mean: ArrayLike, cov: ArrayLike, n: int | None = None) -> CovarianceSpectrum:
    """The full spectrum of a given covariance (e.g. a data model's exact ``cov``)."""
    mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    lam, vecs = _descending(*np.linalg.eigh(0.5 * (cov + cov.T)))
    return CovarianceSpectrum(mean, lam, vecs, n, mean.shape[0], "exact", float(np.trace(cov)))


# --- helpers ------------------------------------------------------------------------------------
def _rows(x: ArrayLike | Dataset) -> NDArray:
    y = x.x if isinstance(x, Dataset) else x
    if not isinstance(y, np.ndarray):
        y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"x: expected a non-empty array of shape (N, d), got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"x: expected numbers, got dtype {y.dtype}")
    return y


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _compute_dtype(y: NDArray) -> type:
    return np.float32 if y.dtype == np.float32 else np.float64


def _descending(lam: Array, vecs: Array) -> tuple[Array, Array]:
    """Eigenpairs in descending order, lam clipped at 0, each vector's largest entry positive."""
    order = np.argsort(lam)[::-1]
    lam, vecs = np.clip(lam[order], 0.0, None), vecs[:, order]
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    return lam, vecs * np.where(signs == 0, 1.0, signs)


def _finite(mean: Array) -> None:
    if not np.isfinite(mean).all():
        raise ValueError("x: the data contain NaN or infinite values")


def _exact(y: NDArray, k: int, chunk_size: int) -> CovarianceSpectrum:
    """Chunked mean and scatter merged pairwise (Chan et al.), then the d x d eigendecomposition."""
    n, d = y.shape
    count, mu, m2 = 0, np.zeros(d), np.zeros((d, d))
    for sl in chunk_slices(n, chunk_size):
        c = np.array(y[sl], dtype=np.float64)
        nb = c.shape[0]
        mb = c.mean(axis=0)
        c -= mb
        delta = mb - mu
        total = count + nb
        m2 += c.T @ c
        m2 += np.outer(delta, delta) * (count * nb / total)
        mu += delta * (nb / total)
        count = total
    _finite(mu)
    cov = m2 / n
    lam, vecs = _descending(*np.linalg.eigh(cov))
    return CovarianceSpectrum(mu, lam[:k], vecs[:, :k], n, d, "exact", float(np.trace(cov)), passes=1)


class _CovarianceStream:
    """V -> Sigma V in one pass over the rows, in the data's precision.

    With s the mean of the first chunk, Sigma V = (1/N) (X - s)^T (X - s) V - delta delta^T V, where
    delta = mu - s is small, so the rank-one correction does not cancel. The first pass also
    accumulates sum_j (y_j - s) and sum_j |y_j - s|^2 in float64, giving mu and tr Sigma.

    The products are skinny (a few columns) and memory-bound. Chunks of ``chunk_size`` rows run on
    ``pool`` (one thread per CPU, each with single-threaded BLAS) and are summed in chunk order, so
    the result does not depend on the number of threads; inside a chunk, pieces of about
    ``CACHE_BYTES`` are centred into a buffer that both products then read from cache.
    """

    def __init__(self, y: NDArray, chunk_size: int, pool: ThreadPoolExecutor):
        self.y, self.chunk_size, self.pool = y, chunk_size, pool
        self.n, self.dim = y.shape
        self.dtype = _compute_dtype(y)
        self.piece = rows_per_chunk(self.dim, np.dtype(self.dtype).itemsize, CACHE_BYTES)
        self.shift = np.asarray(y[:chunk_size], dtype=np.float64).mean(axis=0)
        self._shift = self.shift.astype(self.dtype)
        self.delta: Array | None = None
        self.trace = float("nan")

    @property
    def mean(self) -> Array:
        return self.shift + self.delta

    def _chunk(self, v: NDArray, first: bool, sl: slice) -> tuple[Array, Array, float]:
        """(X_c^T X_c v, and on the first pass the column sums and squared norm of X_c) for one chunk."""
        buffer = np.empty((min(self.piece, sl.stop - sl.start), self.dim), dtype=self.dtype)
        acc, col_sum, sq_sum = np.zeros((self.dim, v.shape[1])), np.zeros(self.dim), 0.0
        for start in range(sl.start, sl.stop, buffer.shape[0]):
            stop = min(start + buffer.shape[0], sl.stop)
            xc = np.subtract(self.y[start:stop], self._shift, out=buffer[: stop - start])
            acc += xc.T @ (xc @ v)
            if first:
                col_sum += xc.sum(axis=0, dtype=np.float64)
                sq_sum += float(np.einsum("ij,ij->i", xc, xc).sum(dtype=np.float64))
        return acc, col_sum, sq_sum

    def matmat(self, v: Array) -> Array:
        first = self.delta is None
        v_c = np.ascontiguousarray(v, dtype=self.dtype)
        acc, col_sum, sq_sum = np.zeros((self.dim, v.shape[1])), np.zeros(self.dim), 0.0
        for a, c, q in self.pool.map(partial(self._chunk, v_c, first), chunk_slices(self.n, self.chunk_size)):
            acc += a
            col_sum += c
            sq_sum += q
        if first:
            self.delta = col_sum / self.n
            _finite(self.delta)
            self.trace = sq_sum / self.n - float(self.delta @ self.delta)
        return acc / self.n - np.outer(self.delta, self.delta @ v)


def _orthonormal_block(w: Array, q: Array, width: int, scale: float, rng: np.random.Generator) -> Array:
    """``width`` orthonormal columns spanning w's part orthogonal to q; columns that vanish
    (an invariant subspace was reached) are replaced by random directions."""
    d = w.shape[0]
    v = w[:, :width].copy()
    for _ in range(3):
        for _ in range(2):
            v -= q @ (q.T @ v)
        v, r = np.linalg.qr(v)
        lost = np.abs(np.diag(r)) <= 1e-10 * scale
        if not lost.any():
            return v
        v[:, lost] = rng.standard_normal((d, int(lost.sum())))
        scale = 1.0
    raise RuntimeError("block Lanczos: could not extend the Krylov basis")


def _block_lanczos(op: _CovarianceStream, k: int, block: int, tol: float, max_passes: int,
                   rng: np.random.Generator) -> tuple[Array, Array, int, float]:
    """Top-k Ritz pairs of op.matmat from a block Krylov space, one data pass per block."""
    d = op.dim
    q = np.zeros((d, 0))
    w = np.zeros((d, 0))
    v = _orthonormal_block(rng.standard_normal((d, block)), q, block, 1.0, rng)
    for passes in range(1, max_passes + 1):
        w_new = op.matmat(v)
        q, w = np.hstack([q, v]), np.hstack([w, w_new])
        t = q.T @ w
        theta, u = np.linalg.eigh(0.5 * (t + t.T))
        theta, u = theta[::-1][:k], u[:, ::-1][:, :k]
        ritz = q @ u
        scale = max(abs(float(theta[0])), np.finfo(float).tiny)
        res = float(np.linalg.norm(w @ u - ritz * theta, axis=0).max() / scale)
        m = q.shape[1]
        if m >= d or (m >= k and res <= tol) or passes == max_passes:
            break
        v = _orthonormal_block(w_new, q, min(block, d - m), float(np.linalg.norm(w_new, 2)) or 1.0, rng)
    lam, vecs = _descending(theta, ritz)
    return lam, vecs, passes, res
