"""The drift protocol of the continuation engine, and its two implementations for exact data models.

A :class:`Drift` gives, at a state x (d,) and a noise level logsnr, the generative drift divided by
beta and its Jacobian J / beta (Raya & Ambrogioni 2023; README, Notation; symmetric for an exact score, the symmetric
part for a trained network) as a :class:`Linearisation`: a dense matrix for small d, or the products
v -> (J / beta) v. The continuation engine (:mod:`.continuation`) needs nothing else, so exact data
models (here) and trained networks (``experiments.measure.branch``) are followed by the same code.

- :class:`DenseDrift`: any :class:`.DataModel`, J / beta as a d x d matrix (Tweedie's formulas).
- :class:`EmpiricalDrift`: finite data {y_j} (N x d, float32 or float64, memory-mapped or not), never
  a d x d matrix (``dense=True``, for small d: J / beta as a matrix from the kept rows, the posterior
  covariance taken about y_hat, sum_j w_j (y_j - y_hat)(y_j - y_hat)^T, without cancellation). With
  posterior weights w_j(x) = softmax_j(log w0_j + (alpha x.y_j - alpha^2|y_j|^2/2) / sigma^2) the
  posterior covariance is Cov_w(y) = B^T B, B = diag(sqrt w)(Y - y_hat) (rank <= N - 1),
  so (J / beta) v = a v + g (Y_c^T (w * (Y_c v)) - u (u.v)), with a = -f/beta - c/sigma^2,
  g = c alpha^2 / sigma^4, Y_c = Y - mu (centred on the data mean, no cancellation) and u = y_hat - mu.
  One product is one pass over the kept rows in chunks that fit the cache, each chunk promoted to
  float64 (exact products of the stored values; data of at most ``RESIDENT_BYTES`` in float64 are
  centred and promoted once and kept); rows whose weight is below round-off
  (w_j < 1e-18 max w) are dropped, and when few rows are left they are gathered once per point.
  Streamed data are passed in ``PARTS`` fixed parts of the rows, one thread each (BLAS releases the
  interpreter; the parts depend on the data alone and are summed in order).
  For float32 data the inexact linear solves of Newton steps and the block iteration of the
  spectrum use float32 products (``Linearisation.approx``, no float64 copy of a chunk); the eigenvalues
  themselves come from one float64 Rayleigh-Ritz pass (:func:`.continuation.top_eigen`). Memory beyond
  the data: O(chunk d + N) per part, and the gathered rows (fewer than ``GATHER_FRACTION`` N, float64).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from .datamodels import DataModel, EmpiricalData
from .dynamics import Dynamics, score_weight
from .schedules import Schedule

Array = NDArray[np.float64]
EPS = float(np.finfo(np.float64).eps)
CACHE_BYTES = 1 << 21      # float64 bytes per chunk of rows in a product (fits in the cache)
STREAM_BYTES = 1 << 23     # float32 bytes per chunk of rows in a single-precision product (read in place)
WEIGHT_FLOOR = 1e-18       # posterior weights below this times the largest are round-off
GATHER_FRACTION = 0.1      # gather the kept rows once per point (float64) when fewer than this share is left
RESIDENT_BYTES = 1 << 25   # data up to this size in float64 (32 MiB) are centred and promoted once
PARTS = 2                  # streamed data: the rows are split into this many parts, each passed on its own thread
NEWTON_TOL = 1e-10         # Newton's relative step tolerance for exact (float64) drifts


@dataclass(frozen=True)
class Linearisation:
    """The drift at one state and time, divided by beta: ``b`` (d,), ``matvec`` v -> (J / beta) v (v of
    shape (d,) or a block (d, m): one pass over the data serves every column),
    ``dense`` J / beta (d, d) when it is formed, ``noise``, the absolute round-off level of one
    eigenvalue of J / beta (eps times the operator's ``scale``, plus a network's own noise floor), and
    ``shift``, the bulk eigenvalue a of J / beta = a I + (low rank) when there is one (the
    preconditioner of matrix-free Newton steps and the step of the relaxation to an attractor), and
    ``approx``, cheaper products accurate to single precision (float32 data), for the inexact linear
    solves of Newton steps and the warm-up of the spectrum's block iteration (never for the eigenvalues
    themselves), and ``solve``, r -> (J / beta)^{-1} r for a drift whose J is not symmetric (a trained
    network: Newton needs J itself, the spectrum its symmetric part); None: the engine's symmetric
    solves."""

    b: Array
    matvec: Callable[[Array], Array]
    dense: Array | None
    noise: float
    scale: float
    shift: float | None = None
    approx: Callable[[Array], Array] | None = None
    solve: Callable[[Array], Array] | None = None

    @cached_property
    def eigh(self) -> tuple[Array, Array]:
        """Every eigenpair of the dense J / beta, descending (computed once per linearisation)."""
        w, v = np.linalg.eigh(self.dense)
        return w[::-1], v[:, ::-1]


class Drift(Protocol):
    """What the continuation engine follows: ``dim``, ``schedule``, ``dynamics``, ``newton_tol`` (Newton
    stops when its step is below ``newton_tol (1 + |x|)``: 1e-10 for exact float64 models, the model's
    own noise floor for a network), ``start(t)`` (the centre alpha(t) mu where the central branch
    starts), ``b(x, logsnr)`` (drift / beta) and ``linearise(x, logsnr)``."""

    dim: int
    schedule: Schedule
    dynamics: str
    newton_tol: float

    def start(self, t: float) -> Array: ...

    def b(self, x: Array, logsnr: float) -> Array: ...

    def linearise(self, x: Array, logsnr: float) -> Linearisation: ...


@dataclass(frozen=True)
class Noise:
    """The schedule's coefficients at one logsnr: b / beta = -f/beta x + c (alpha y_hat - x) / sigma^2."""

    t: float
    alpha: float
    sigma2: float
    f_over_beta: float
    c: float

    @classmethod
    def at(cls, schedule: Schedule, dynamics: str, logsnr: float) -> Noise:
        t = float(np.clip(schedule.t_of_logsnr(logsnr), schedule.t_min, schedule.T))
        return cls(t, float(schedule.alpha(t)), float(schedule.sigma2(t)),
                   float(schedule.f(t) / schedule.beta(t)), score_weight(dynamics))

    def drift(self, x: Array, y_hat: Array) -> Array:
        return -self.f_over_beta * x + self.c * (self.alpha * y_hat - x) / self.sigma2

    @property
    def diagonal(self) -> float:
        """a in J / beta = a I + g Cov: -f/beta - c / sigma^2."""
        return -self.f_over_beta - self.c / self.sigma2

    @property
    def gain(self) -> float:
        """g = c alpha^2 / sigma^4."""
        return self.c * self.alpha ** 2 / self.sigma2 ** 2


class DenseDrift:
    """Any data model, with J / beta formed as a d x d matrix from one posterior pass."""

    newton_tol = NEWTON_TOL

    def __init__(self, model: DataModel, schedule: Schedule, dynamics: Dynamics = "sde"):
        score_weight(dynamics)
        self.model, self.schedule, self.dynamics, self.dim = model, schedule, dynamics, model.dim

    def start(self, t: float) -> Array:
        return float(self.schedule.alpha(t)) * np.asarray(self.model.mean, dtype=np.float64)

    def b(self, x: Array, logsnr: float) -> Array:
        n = Noise.at(self.schedule, self.dynamics, logsnr)
        post = self.model._posterior(self.model._x(x), n.alpha, n.sigma2, False)
        return n.drift(x, post.mean[0])

    def linearise(self, x: Array, logsnr: float) -> Linearisation:
        n = Noise.at(self.schedule, self.dynamics, logsnr)
        post = self.model._posterior(self.model._x(x), n.alpha, n.sigma2, True)
        jac = n.gain * post.cov[0] + n.diagonal * np.eye(self.dim)
        jac = 0.5 * (jac + jac.T)
        scale = abs(n.diagonal) + n.gain * float(np.abs(post.cov[0]).sum(axis=1).max())
        return Linearisation(n.drift(x, post.mean[0]), jac.__matmul__, jac, 64 * EPS * scale, scale, n.diagonal)


@functools.cache
def _pool() -> ThreadPoolExecutor | None:
    """The threads that pass over the parts of streamed data: one per part, up to the usable cores (None
    on one core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return ThreadPoolExecutor(min(PARTS, cores)) if cores > 1 else None


class EmpiricalDrift:
    """Finite data, matrix-free: products with the posterior covariance B^T B (module docstring)."""

    newton_tol = NEWTON_TOL

    def __init__(self, y: NDArray, schedule: Schedule, dynamics: Dynamics = "sde",
                 weights: Array | None = None, dense: bool = False):
        score_weight(dynamics)
        self.y, self.schedule, self.dynamics, self.matrix_free = y, schedule, dynamics, not dense
        self.model: EmpiricalData | None = None   # set by :meth:`of`
        self.n_points, self.dim = y.shape
        self.rows = max(16, CACHE_BYTES // (8 * self.dim))
        with np.errstate(divide="ignore"):
            self.log_w = (np.full(self.n_points, -np.log(self.n_points)) if weights is None
                          else np.log(np.asarray(weights, dtype=np.float64)))
        self.resident = None
        self.mu = self._sum(lambda yc, sl: np.exp(self.log_w[sl]) @ yc, self.dim, centred=False)
        if 8 * self.n_points * self.dim <= RESIDENT_BYTES:
            self.resident, self.rows = np.asarray(y, dtype=np.float64) - self.mu, max(self.n_points, 1)
        self.norm2 = np.concatenate([np.einsum("ij,ij->i", yc, yc) for yc, _ in self._chunks(None)])

    @classmethod
    def of(cls, model: EmpiricalData, schedule: Schedule, dynamics: Dynamics = "sde",
           dense: bool = False) -> EmpiricalDrift:
        drift = cls(model.y, schedule, dynamics, np.exp(model.log_weights), dense)
        drift.model = model
        return drift

    def _chunks(self, idx: NDArray | None, rows: NDArray | None = None, centred: bool = True,
                bounds: tuple[int, int] | None = None):
        """(centred float64 chunk, its slice into ``idx`` order) over the rows ``idx`` (None: all), or
        over an already gathered float64 block ``rows``, between ``bounds`` (positions in ``idx`` order;
        None: all). A streamed chunk is promoted into one reused buffer (the chunk yielded is only valid
        until the next one)."""
        lo, n = bounds or (0, self.n_points if idx is None else len(idx))
        buf = None
        for start in range(lo, n, self.rows):
            sl = slice(start, min(start + self.rows, n))
            if rows is not None or (self.resident is not None and centred):
                block = self.resident if rows is None else rows
                yield (block[sl] if rows is not None or idx is None else block[idx[sl]]), sl
                continue
            part = self.y[sl] if idx is None else self.y[idx[sl]]
            buf = np.empty((self.rows, self.dim)) if buf is None else buf
            chunk = buf[:len(part)]
            np.copyto(chunk, part)
            if centred:
                chunk -= self.mu
            yield chunk, sl

    def _parts(self, n: int) -> list[tuple[int, int]]:
        """The row positions [0, n) split into ``PARTS`` contiguous parts for streamed data (one part for
        resident data): the split depends on the data alone, so the sums are the same on every machine."""
        parts = 1 if self.resident is not None else PARTS
        edges = [n * i // parts for i in range(parts + 1)]
        return list(zip(edges[:-1], edges[1:]))

    def _map(self, fn: Callable[[tuple[int, int]], object], n: int) -> list:
        """``fn`` on every part of [0, n), on a thread each (the passes are BLAS calls that release the
        interpreter), in part order."""
        parts = self._parts(n)
        if len(parts) == 1 or _pool() is None:
            return [fn(b) for b in parts]
        return list(_pool().map(fn, parts))

    def _sum(self, fn, shape: tuple[int, ...] | int, idx: NDArray | None = None, rows: NDArray | None = None,
             centred: bool = True) -> Array:
        """The sum over chunks of ``fn(chunk, slice)``: each part summed in order, then the parts in order."""
        def part(bounds: tuple[int, int]) -> Array:
            acc = np.zeros(shape)
            for yc, sl in self._chunks(idx, rows, centred, bounds):
                acc += fn(yc, sl)
            return acc
        n = self.n_points if idx is None else len(idx)   # gathered rows are the rows idx
        return functools.reduce(np.add, self._map(part, n))

    def start(self, t: float) -> Array:
        return float(self.schedule.alpha(t)) * self.mu

    def posterior_weights(self, x: Array, logsnr: float) -> Array:
        """w_j(x) = P(y_j | x_t = x) at ``logsnr`` over all N points."""
        return self._weights(np.asarray(x, dtype=np.float64), Noise.at(self.schedule, self.dynamics, logsnr))[0]

    def _weights(self, x: Array, n: Noise) -> tuple[Array, Array]:
        """Posterior weights over all N points and u = y_hat - mu = sum_j w_j (y_j - mu), both in one
        pass (the softmax's running maximum, rescaling the partial sums when it grows), from the centred
        logits (alpha / sigma^2) (y_j - mu).(x - alpha mu) - alpha^2 |y_j - mu|^2 / (2 sigma^2) (the rest
        is the same for every j and cancels in the softmax)."""
        xc = (x - n.alpha * self.mu) * (n.alpha / n.sigma2)
        bias = self.log_w - (0.5 * n.alpha ** 2 / n.sigma2) * self.norm2
        logits = np.empty(self.n_points)

        def part(bounds: tuple[int, int]) -> tuple[float, float, Array]:
            top, total, acc = -np.inf, 0.0, np.zeros(self.dim)
            for yc, sl in self._chunks(None, bounds=bounds):
                logits[sl] = yc @ xc + bias[sl]
                m = max(top, float(logits[sl].max()))
                if m == -np.inf:
                    continue
                e = np.exp(logits[sl] - m)
                shrink = np.exp(top - m)
                acc, total, top = acc * shrink + e @ yc, total * shrink + float(e.sum()), m
            return top, total, acc

        parts = self._map(part, self.n_points)
        top = max(p[0] for p in parts)
        shrink = [np.exp(p[0] - top) for p in parts]
        total = sum(f * p[1] for f, p in zip(shrink, parts))
        acc = functools.reduce(np.add, [f * p[2] for f, p in zip(shrink, parts)])
        return np.exp(logits - top) / total, acc / total

    def _posterior(self, x: Array, logsnr: float):
        n = Noise.at(self.schedule, self.dynamics, logsnr)
        w, u = self._weights(x, n)
        keep = np.flatnonzero(w > WEIGHT_FLOOR * w.max())
        idx = None if len(keep) == self.n_points else keep
        rows = None
        if idx is not None and len(idx) < GATHER_FRACTION * self.n_points:
            rows = self._gather(idx)
        return n, (w if idx is None else w[idx]), idx, rows, u

    def _gather(self, idx: NDArray) -> Array:
        """The rows ``idx``, centred, as one float64 block, filled chunk by chunk (no other copy of them)."""
        if self.resident is not None:
            return self.resident[idx]
        rows = np.empty((len(idx), self.dim))
        for yc, sl in self._chunks(idx):
            rows[sl] = yc
        return rows

    def _single(self, a: float, g: float, wk: Array, idx: NDArray | None, u: Array) -> Callable | None:
        """v -> (J / beta) v (v (d,) or a block (d, m)) in float32 arithmetic on float32 data read as stored
        (no float64 copy of a chunk, chunks of ``STREAM_BYTES``; also when a float64 copy is resident):
        Y_c V = Y V - mu.V and Y_c^T Z = Y^T Z - mu sum(Z), the chunks' partial sums accumulated in
        float64; None for other data."""
        if self.y.dtype != np.float32:
            return None
        w32, mu32 = wk.astype(np.float32)[:, None], self.mu.astype(np.float32)
        n, rows = (self.n_points if idx is None else len(idx)), max(16, STREAM_BYTES // (4 * self.dim))

        def matvec(v: Array) -> Array:
            block = np.asarray(v, dtype=np.float64).reshape(self.dim, -1)
            v32 = block.astype(np.float32)
            shift = mu32 @ v32

            def part(bounds: tuple[int, int]) -> Array:
                acc = np.zeros(block.shape)
                for start in range(bounds[0], bounds[1], rows):
                    sl = slice(start, min(start + rows, bounds[1]))
                    y = self.y[sl] if idx is None else self.y[idx[sl]]
                    z = w32[sl] * (y @ v32 - shift)
                    acc += y.T @ z - np.outer(mu32, z.sum(axis=0))
                return acc
            acc = functools.reduce(np.add, self._map(part, n))
            return (a * block + g * (acc - np.outer(u, u @ block))).reshape(np.shape(v))
        return matvec

    def covariance_spectrum(self, k: int) -> Array:
        """All d eigenvalues of the data covariance: the top ``k`` by Lanczos on Y_c^T w0 (Y_c v), the
        rest of the trace sum_j w0_j |y_j - mu|^2 spread evenly over the other d - k directions."""
        from scipy.sparse.linalg import LinearOperator, eigsh

        w0 = np.exp(self.log_w)
        k = min(k, self.dim - 1)
        op = LinearOperator((self.dim, self.dim), dtype=np.float64,
                            matvec=lambda v: self._sum(lambda yc, sl: (w0[sl] * (yc @ np.ravel(v))) @ yc, self.dim))
        top = np.clip(np.sort(eigsh(op, k, which="LA", tol=1e-10)[0])[::-1], 0.0, None)
        rest = max(float(w0 @ self.norm2) - top.sum(), 0.0) / (self.dim - k)
        return np.concatenate([top, np.full(self.dim - k, rest)])

    def b(self, x: Array, logsnr: float) -> Array:
        n, _, _, _, u = self._posterior(x, logsnr)
        return n.drift(x, u + self.mu)

    def linearise(self, x: Array, logsnr: float) -> Linearisation:
        n, wk, idx, rows, u = self._posterior(x, logsnr)
        a, g = n.diagonal, n.gain

        def matvec(v: Array) -> Array:
            block = np.asarray(v, dtype=np.float64).reshape(self.dim, -1)
            second = self._sum(lambda yc, sl: yc.T @ (wk[sl, None] * (yc @ block)), block.shape, idx, rows)
            return (a * block + g * (second - np.outer(u, u @ block))).reshape(np.shape(v))

        if self.matrix_free:
            scale = abs(a) + g * float(wk @ (self.norm2 if idx is None else self.norm2[idx]))
            return Linearisation(n.drift(x, u + self.mu), matvec, None, 64 * EPS * scale, scale, a,
                                 self._single(a, g, wk, idx, u) if rows is None else None)
        cov = self._sum(lambda yc, sl: ((yc - u).T * wk[sl]) @ (yc - u), (self.dim, self.dim), idx, rows)
        dense = g * 0.5 * (cov + cov.T) + a * np.eye(self.dim)
        scale = abs(a) + g * float(np.trace(cov))
        return Linearisation(n.drift(x, u + self.mu), dense.__matmul__, dense, 64 * EPS * scale, scale, a)


def model_drift(model: DataModel, schedule: Schedule, dynamics: Dynamics = "sde",
                matrix_free: bool | None = None) -> DenseDrift | EmpiricalDrift:
    """The drift of ``model``: matrix-free for finite data when ``matrix_free`` (default: d > 256); finite
    data on the dense route also go through :class:`EmpiricalDrift` (one pass over the rows whose
    posterior weight is above round-off), every other model through :class:`DenseDrift`."""
    empirical = isinstance(model, EmpiricalData)
    if matrix_free is None:
        matrix_free = empirical and model.dim > 256
    if matrix_free and not empirical:
        raise ValueError(f"matrix_free: only finite data (EmpiricalData) have a matrix-free drift, got "
                         f"{type(model).__name__}")
    if empirical:
        return EmpiricalDrift.of(model, schedule, dynamics, dense=not matrix_free)
    return DenseDrift(model, schedule, dynamics)
