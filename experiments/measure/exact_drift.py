"""The exact empirical drift in torch, with the data on a device (CUDA when present): the matrix-free
:class:`symbreak.theory.drifts.EmpiricalDrift` for theory's continuation engine, same formulas.

With posterior weights w_j(x) = softmax_j of the logits of
:func:`symbreak.experiments.models.oracle.empirical_logits` (taken about the data mean: points y_j - mu,
state x - alpha mu, the same softmax), computed in one pass over the rows with a running maximum,
u = y_hat - mu = sum_j w_j (y_j - mu) and Y_c = Y - mu,

    b / beta = -f/beta x + c (alpha y_hat - x) / sigma^2,
    (J / beta) v = a v + g (Y_c^T (w * (Y_c v)) - u (u.v)),   a = -f/beta - c/sigma^2,  g = c alpha^2/sigma^4

(Raya & Ambrogioni 2023; Tweedie's formulas: Cov[y | x_t = x] = B^T B, B = diag(sqrt w)(Y - y_hat)).
float64 data stay float64 and are centred once on the device (the device copy is the drift's own); other
data that float32 holds exactly (float32, float16, 8- and 16-bit integers) stay float32 on the device and
each chunk of rows is promoted to float64 and centred as it is used, so every product is exact in the
stored values and accumulates in float64, as the numpy drift's. Memory beyond the data: O(chunk d + N).
Rows whose weight is below round-off (w_j < ``WEIGHT_FLOOR`` max w) are dropped, gathered chunk by chunk.
For float32 data ``Linearisation.approx`` gives float32 products (for Newton's inexact solves and the
warm-up of the spectrum's block iteration) while at least ``GATHER_FRACTION`` of the rows are kept: the
numpy drift's rule (once the posterior concentrates on a few points, a v and g Y_c^T (w * (Y_c v))
nearly cancel and single precision is not enough). The engine gets float64 numpy arrays.
:func:`exact_backend` maps a ``--device`` to the drift that follows the exact route: the numpy drift on
the CPU, this one on a GPU.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from symbreak.experiments.models.oracle import empirical_logits
from symbreak.experiments.runtime.distributed import resolve_device
from symbreak.experiments.runtime.threads import torch_threads
from symbreak.theory import EmpiricalData, Schedule
from symbreak.theory.checks import check_int
from symbreak.theory.drifts import (
    CACHE_BYTES,
    EPS,
    GATHER_FRACTION,
    NEWTON_TOL,
    WEIGHT_FLOOR,
    Linearisation,
    Noise,
)
from symbreak.theory.dynamics import Dynamics, score_weight

Array = NDArray[np.float64]
DEVICE_CHUNK_BYTES = 1 << 28   # float64 bytes per chunk of rows on a GPU (few large kernels per pass)


class TorchEmpiricalDrift:
    """Finite data {y_j} (N x d) held on ``device``, matrix-free (module docstring); ``weights`` w0_j
    (default uniform); ``chunk_bytes``: float64 bytes per chunk of rows (default: 2 MiB on the CPU, as the
    numpy drift, ``DEVICE_CHUNK_BYTES`` on a GPU)."""

    newton_tol = NEWTON_TOL
    matrix_free = True

    def __init__(self, y: NDArray, schedule: Schedule, dynamics: Dynamics = "sde", weights: Array | None = None,
                 device: str | torch.device = "cpu", chunk_bytes: int | None = None):
        score_weight(dynamics)
        self.schedule, self.dynamics, self.device = schedule, dynamics, torch.device(device)
        self.model: EmpiricalData | None = None   # set by :meth:`of`
        self.n_points, self.dim = np.shape(y)
        default = CACHE_BYTES if self.device.type == "cpu" else DEVICE_CHUNK_BYTES
        self.rows = min(max(16, check_int("chunk_bytes", chunk_bytes or default, 1) // (8 * self.dim)), self.n_points)
        with np.errstate(divide="ignore"):
            log_w = (np.full(self.n_points, -math.log(self.n_points)) if weights is None
                     else np.log(np.asarray(weights, dtype=np.float64)))
        self.log_w = torch.as_tensor(log_w, device=self.device)
        self.single = np.dtype(y.dtype) != np.float64 and np.can_cast(y.dtype, np.float32)
        self.float32 = np.dtype(y.dtype) == np.float32   # single-precision ``approx`` products, as the numpy drift's
        self.y = self._on_device(y, np.float32 if self.single else np.float64)
        w0 = self.log_w.exp()
        self.mu = sum(w0[sl] @ self.y[sl].double() for sl in self._slices(self.n_points))
        self.mu_np = self.mu.cpu().numpy()
        if not self.single:
            self.y -= self.mu
        self.norm2 = torch.cat([(yc * yc).sum(1) for yc, _ in self._chunks(None)])

    @classmethod
    def of(cls, model: EmpiricalData, schedule: Schedule, dynamics: Dynamics = "sde",
           device: str | torch.device = "cpu", chunk_bytes: int | None = None) -> TorchEmpiricalDrift:
        if not isinstance(model, EmpiricalData):
            raise ValueError(f"model: the torch drift follows finite data (EmpiricalData), got {type(model).__name__}")
        drift = cls(model.y, schedule, dynamics, np.exp(model.log_weights), device, chunk_bytes)
        drift.model = model
        return drift

    def _on_device(self, y: NDArray, dtype: type) -> Tensor:
        """A device copy of ``y`` in ``dtype``, filled chunk by chunk (a memory-mapped array is read once)."""
        out = torch.empty((self.n_points, self.dim), dtype=torch.float32 if dtype is np.float32 else torch.float64,
                          device=self.device)
        for sl in self._slices(self.n_points):
            out[sl] = torch.from_numpy(np.array(y[sl], dtype=dtype))   # a writable copy of the chunk
        return out

    def _slices(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.rows):
            yield slice(start, min(start + self.rows, n))

    def _chunks(self, idx: Tensor | None, exact: bool = True) -> Iterator[tuple[Tensor, slice]]:
        """(chunk, its slice into ``idx`` order) over the rows ``idx`` (None: all): centred float64 rows, or
        with ``exact`` False the rows as stored (uncentred float32 for float32 data). float32 rows are
        promoted into one buffer per pass (a chunk is valid until the next one is yielded)."""
        promote = self.single and exact
        buf = torch.empty((self.rows, self.dim), dtype=torch.float64, device=self.device) if promote else None
        for sl in self._slices(self.n_points if idx is None else len(idx)):
            part = self.y[sl] if idx is None else self.y[idx[sl]]
            yield (buf[:len(part)].copy_(part).sub_(self.mu) if promote else part), sl

    def _threads(self) -> AbstractContextManager:
        """One intra-op thread on the CPU (memory-bound products; as the engine's ``serial_blas`` for the
        numpy drift: on a loaded machine two threads made each product ~50x slower, measured)."""
        return torch_threads(1) if self.device.type == "cpu" else nullcontext()

    def _block(self, v: Array) -> Tensor:
        return torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(self.dim, -1), device=self.device)

    def start(self, t: float) -> Array:
        return float(self.schedule.alpha(t)) * self.mu_np

    def _weights(self, x: Array, n: Noise) -> tuple[Tensor, Tensor]:
        """Posterior weights over all N points and u = y_hat - mu, in one pass (the softmax's running
        maximum, rescaling the partial sums when it grows), from the centred logits."""
        xc = torch.as_tensor(np.asarray(x, dtype=np.float64) - n.alpha * self.mu_np, device=self.device)
        logits = torch.empty(self.n_points, dtype=torch.float64, device=self.device)
        top, total, acc = -math.inf, 0.0, torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for yc, sl in self._chunks(None):
            logits[sl] = empirical_logits(xc, yc, self.norm2[sl], self.log_w[sl], n.alpha, n.sigma2)
            m = max(top, float(logits[sl].max()))
            if m == -math.inf:
                continue
            e = torch.exp(logits[sl] - m)
            shrink = math.exp(top - m)
            acc, total, top = acc * shrink + e @ yc, total * shrink + float(e.sum()), m
        return torch.exp(logits - top) / total, acc / total

    def _posterior(self, x: Array, logsnr: float) -> tuple[Noise, Tensor, Tensor | None, Tensor]:
        """(noise coefficients, the weights kept, their rows (None: all), u)."""
        n = Noise.at(self.schedule, self.dynamics, logsnr)
        w, u = self._weights(x, n)
        keep = w > WEIGHT_FLOOR * w.max()
        idx = None if bool(keep.all()) else torch.nonzero(keep)[:, 0]
        return n, (w if idx is None else w[idx]), idx, u

    def _second(self, block: Tensor, wk: Tensor, idx: Tensor | None) -> Tensor:
        """Y_c^T (w * (Y_c V)) over the rows ``idx`` for a float64 block V (d, m), exact in float64."""
        acc = torch.zeros_like(block)
        for yc, sl in self._chunks(idx):
            acc += yc.T @ (wk[sl, None] * (yc @ block))
        return acc

    def _second_single(self, block: Tensor, wk: Tensor, idx: Tensor | None) -> Tensor:
        """The same in float32 products of the stored rows (no float64 copy of a chunk):
        Y_c V = Y V - mu.V and Y_c^T z = Y^T z - mu sum(z), summed over chunks in float64."""
        b32, w32, mu32 = block.float(), wk.float(), self.mu.float()
        shift, acc = mu32 @ b32, torch.zeros_like(block)
        for part, sl in self._chunks(idx, exact=False):
            z = w32[sl, None] * (part @ b32 - shift)
            acc += part.T @ z - torch.outer(mu32, z.sum(0))
        return acc

    def _operator(self, second: Callable, a: float, g: float, wk: Tensor, idx: Tensor | None,
                  u: Tensor) -> Callable[[Array], Array]:
        """v -> a v + g (second(v) - u (u.v)) for v (d,) or a block (d, m), as float64 numpy."""
        def matvec(v: Array) -> Array:
            block = self._block(v)
            with self._threads():
                out = a * block + g * (second(block, wk, idx) - torch.outer(u, u @ block))
            return out.cpu().numpy().reshape(np.shape(v))
        return matvec

    def b(self, x: Array, logsnr: float) -> Array:
        n = Noise.at(self.schedule, self.dynamics, logsnr)
        with self._threads():
            u = self._weights(x, n)[1].cpu().numpy()
        return n.drift(np.asarray(x, dtype=np.float64), u + self.mu_np)

    def linearise(self, x: Array, logsnr: float) -> Linearisation:
        x = np.asarray(x, dtype=np.float64)
        with self._threads():
            n, wk, idx, u = self._posterior(x, logsnr)
        a, g = n.diagonal, n.gain
        scale = abs(a) + g * float(wk @ (self.norm2 if idx is None else self.norm2[idx]))
        spread = idx is None or len(idx) >= GATHER_FRACTION * self.n_points
        approx = self._operator(self._second_single, a, g, wk, idx, u) if self.float32 and spread else None
        return Linearisation(n.drift(x, u.cpu().numpy() + self.mu_np), self._operator(self._second, a, g, wk, idx, u),
                             None, 64 * EPS * scale, scale, a, approx)

    def covariance_spectrum(self, k: int) -> Array:
        """All d eigenvalues of the data covariance, as the numpy drift's: the top ``k`` by Lanczos on
        Y_c^T w0 (Y_c v), the rest of the trace sum_j w0_j |y_j - mu|^2 spread evenly over the other d - k."""
        from scipy.sparse.linalg import LinearOperator, eigsh

        w0 = self.log_w.exp()
        k = min(k, self.dim - 1)
        op = LinearOperator((self.dim, self.dim), dtype=np.float64,
                            matvec=lambda v: self._second(self._block(v), w0, None).cpu().numpy().ravel())
        with self._threads():
            top = np.clip(np.sort(eigsh(op, k, which="LA", tol=1e-10)[0])[::-1], 0.0, None)
        rest = max(float(w0 @ self.norm2) - top.sum(), 0.0) / (self.dim - k)
        return np.concatenate([top, np.full(self.dim - k, rest)])


def torch_drift(device: str | torch.device = "cpu", chunk_bytes: int | None = None) -> Callable:
    """The ``drift`` factory (model, schedule, dynamics) -> :class:`TorchEmpiricalDrift` on ``device`` for
    :func:`symbreak.theory.critical_times` and :func:`symbreak.analysis.critical.dataset_critical_times`."""
    return partial(TorchEmpiricalDrift.of, device=torch.device(device), chunk_bytes=chunk_bytes)


@dataclass(frozen=True)
class ExactBackend:
    """What follows the exact route: ``backend`` 'numpy' (theory's drift, ``factory`` None) or 'torch'
    (:func:`torch_drift` on ``device``)."""

    backend: str
    device: str
    factory: Callable | None = None

    def config(self) -> dict:
        return {"backend": self.backend, "device": self.device}


def exact_backend(device: str | torch.device = "auto") -> ExactBackend:
    """``--device`` for the exact route: cpu -> the numpy drift; cuda or cuda:N -> the torch drift there;
    auto -> CUDA when available, else the numpy drift."""
    resolved = resolve_device(device)
    if resolved.type == "cpu":
        return ExactBackend("numpy", "cpu")
    return ExactBackend("torch", str(resolved), torch_drift(resolved))
