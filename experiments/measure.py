"""The learned generative dynamics measured on any Denoiser: drift, Jacobian spectrum, central branch.

A Denoiser D(x, t) gives the score (alpha D - x) / sigma^2 (Tweedie), hence the generative drift
(design note section 1)

    b(x, t) = -f x + c beta score_D(x, t) = lin(t) x + gain(t) D(x, t),
    lin = -f - c beta / sigma^2,   gain = c beta alpha / sigma^2,   c = 1 (SDE), 1/2 (ODE),

and its Jacobian J = lin I + gain dD/dx. The stability margin of a point is the top eigenvalue of
J / beta. For an exact score J is symmetric (b = -grad u); a trained network's J is not exactly, so
every spectrum here is that of the symmetric part (J + J^T) / 2, and the non-symmetry
||J - J^T||_F / (2 ||J||_F) is reported beside it.

Routes, chosen by the dimension d (``method="auto"``):
- d <= ``DENSE_MAX_DIM``: the full Jacobian, eigenvalues by ``eigvalsh``; Newton steps solve with it.
- larger d: never the d x d matrix. Top eigenvalues by Lanczos (full reorthogonalisation) on the
  products (J v + J^T v) / 2; Newton-Krylov (GMRES on J v products) for the fixed point; the
  non-symmetry by a Rademacher-probe estimate.

Derivatives come from ``torch.func``: the dense J of a batch is ``vmap(jacrev(b))`` over its points
(each point's J from one vectorised set of d vector-Jacobian products); matrix-free, J^T v comes from
the pullback of ``torch.func.vjp`` at the point, and J v from the vjp of that linear map u -> J^T u
(reverse over reverse: one forward pass at a point serves every product there). Forward mode
(``torch.func.jvp``), which repeats the forward pass for every product, was measured at 10x (digits
MLP) and 3x (3x16x16 U-Net) the cost of this J v on the CPU (``benchmarks/jacobian.py``). A
denoiser must treat batch rows independently (eval-mode networks and exact denoisers do) and read t
only through torch operations or ``noise_level``.

Precision: a network runs in its own dtype (float32; :class:`NetworkDenoiser` casts the input),
while the Newton state, the drift arithmetic, the Krylov bases and the eigenvalue problems are
float64. A matrix-free product costs one backward pass of batch 1 through the stored graph, so a
64x64x3 U-Net (d = 12288) needs the memory of one forward and two backward passes of one image (on the
CPU: top-2 eigenvalues by 60 Lanczos steps in 8 s, ``benchmarks/cuda_check.py --device cpu``);
``chunk_size`` bounds the points per dense batch.

The exact :class:`ExactDenoiser` computes in numpy and cannot be differentiated; every function here
swaps it for :class:`TorchExactDenoiser`, an independent torch port of the same posterior mean, so
the oracle runs through exactly the same torch.func code as a network.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from scipy import linalg
from scipy.sparse.linalg import LinearOperator, gmres
from torch import Tensor
from torch.func import jacrev, vmap

from symbreak.theory import DataModel, EmpiricalData, Gaussian, GaussianMixture, Schedule
from symbreak.theory.critical import CriticalTime, Curves, Event, find_events
from symbreak.theory.critical import _choose_critical as choose_critical
from symbreak.theory.dynamics import score_weight

from .denoisers import Denoiser, ExactDenoiser, NetworkDenoiser, noise_level

Array = NDArray[np.float64]
DENSE_MAX_DIM = 512
METHODS = ("auto", "dense", "lanczos")
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# A differentiable oracle
# --------------------------------------------------------------------------------------------
class TorchExactDenoiser(Denoiser):
    """The exact posterior mean E[y | x_t = x] of a theory data model, written in torch (float64).

    Supports :class:`Gaussian` (y_hat = mu + U diag(alpha lam / (alpha^2 lam + sigma^2)) U^T (x - alpha mu)),
    :class:`GaussianMixture` (responsibility-weighted component means) and :class:`EmpiricalData`
    (softmax over points of (alpha x.y_j - alpha^2 |y_j|^2 / 2) / sigma^2 + log w_j; two deltas
    included). It is differentiable (autograd, torch.func), and every batch row may have its own t. It
    computes on the device of its input; ``device`` is where measurements put their states.
    Empirical data are held whole on that device (N x d float64).
    """

    def __init__(self, model: DataModel, schedule: Schedule, shape: tuple[int, ...] | None = None,
                 device: torch.device | str = "cpu"):
        self.model, self.schedule, self.device = model, schedule, torch.device(device)
        self.shape = tuple(shape) if shape is not None else (model.dim,)
        self._posterior_mean = _torch_posterior_mean(model, self.device)

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = noise_level(self.schedule, t)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        y_hat = self._posterior_mean(flat, alpha[:, None], (sigma * sigma)[:, None])
        return y_hat.to(x.dtype).reshape(x.shape)


def _gaussian_parts(model: Gaussian, device: torch.device) -> Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]:
    """(posterior mean, log p_t) of one Gaussian, for rows x with per-row alpha, sigma^2 of shape (B, 1)."""
    lam_np, u_np = np.linalg.eigh(model.cov)
    lam, u = (torch.as_tensor(v, device=device) for v in (np.clip(lam_np, 0.0, None), u_np))
    mu = torch.as_tensor(model.mean, device=device)

    def parts(x: Tensor, alpha: Tensor, sigma2: Tensor) -> tuple[Tensor, Tensor]:
        lam_, u_, mu_ = lam.to(x.device), u.to(x.device), mu.to(x.device)
        z = (x - alpha * mu_) @ u_
        denom = alpha * alpha * lam_ + sigma2
        mean = mu_ + (z * (alpha * lam_ / denom)) @ u_.T
        log_p = -0.5 * ((z * z / denom).sum(-1) + torch.log(denom).sum(-1) + x.shape[1] * LOG_2PI)
        return mean, log_p

    return parts


def _torch_posterior_mean(model: DataModel, device: torch.device) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """y_hat(x; alpha, sigma^2) in torch for the supported models (tensors kept on ``device``)."""
    if isinstance(model, Gaussian):
        parts = _gaussian_parts(model, device)
        return lambda x, alpha, sigma2: parts(x, alpha, sigma2)[0]
    if isinstance(model, GaussianMixture):
        comps = [_gaussian_parts(c, device) for c in model.components]
        log_w = torch.log(torch.as_tensor(model.weights, device=device))

        def mixture(x: Tensor, alpha: Tensor, sigma2: Tensor) -> Tensor:
            means, log_ps = zip(*(p(x, alpha, sigma2) for p in comps))
            r = torch.softmax(torch.stack(log_ps, 1) + log_w.to(x.device), dim=1)
            return torch.einsum("bk,kbd->bd", r, torch.stack(means))
        return mixture
    if isinstance(model, EmpiricalData):
        y = torch.as_tensor(np.asarray(model.y, dtype=np.float64), device=device)
        y_norm2 = (y * y).sum(1)
        log_w = torch.as_tensor(model._log_w, device=device)

        def empirical(x: Tensor, alpha: Tensor, sigma2: Tensor) -> Tensor:
            y_, n2, lw = y.to(x.device), y_norm2.to(x.device), log_w.to(x.device)
            logits = lw + (alpha * (x @ y_.T) - 0.5 * alpha * alpha * n2) / sigma2
            return torch.softmax(logits, dim=1) @ y_
        return empirical
    raise ValueError(f"denoiser: no torch port of the exact posterior mean for {type(model).__name__}; "
                     "supported: Gaussian, GaussianMixture, EmpiricalData (incl. SymmetricDeltas)")


def differentiable(denoiser: Denoiser) -> Denoiser:
    """``denoiser`` itself, or for an :class:`ExactDenoiser` its :class:`TorchExactDenoiser` twin."""
    if not isinstance(denoiser, Denoiser):
        raise ValueError(f"denoiser: expected a Denoiser, got {type(denoiser).__name__}")
    if isinstance(denoiser, ExactDenoiser):
        return TorchExactDenoiser(denoiser.model, denoiser.schedule, denoiser.shape)
    return denoiser


def denoiser_device(denoiser: Denoiser) -> torch.device:
    """Where a denoiser computes: its network's device, a TorchExactDenoiser's device, else the CPU."""
    if isinstance(denoiser, NetworkDenoiser):
        return next(denoiser.net.parameters()).device
    if isinstance(denoiser, TorchExactDenoiser):
        return denoiser.device
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# The learned drift at a fixed time
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Linearisation:
    """The products v -> J v and v -> J^T v of the drift's Jacobian at one point."""

    jvp: Callable[[Tensor], Tensor]
    vjp: Callable[[Tensor], Tensor]


class LearnedDrift:
    """b(x) = lin x + gain D(x, t) at a fixed ``t``, as a function of flat float64 states (B, d).

    lin = -f - c beta / sigma^2 and gain = c beta alpha / sigma^2 (module docstring);
    ``jacobian`` (a batch), ``linearise`` (J v, J^T v at a point) and ``sym_matvec`` give J.
    """

    def __init__(self, denoiser: Denoiser, t: float, dynamics: str = "sde"):
        self.denoiser = differentiable(denoiser)
        self.schedule = self.denoiser.schedule
        self.shape = tuple(self.denoiser.shape)
        self.dim = int(np.prod(self.shape))
        self.dynamics = dynamics
        c = score_weight(dynamics)
        self.t = float(self.schedule.check_t(t))
        alpha, sigma2 = float(self.schedule.alpha(self.t)), float(self.schedule.sigma2(self.t))
        self.beta = float(self.schedule.beta(self.t))
        self.lin = -float(self.schedule.f(self.t)) - c * self.beta / sigma2
        self.gain = c * self.beta * alpha / sigma2

    def __call__(self, x: Tensor) -> Tensor:
        """b for flat states x of shape (B, d) (float64)."""
        xs = x.reshape((x.shape[0],) + self.shape)
        y_hat = self.denoiser(xs, self.t).reshape(x.shape)
        return self.lin * x + self.gain * y_hat

    def point(self, x: Tensor) -> Tensor:
        """b at one flat state x (d,): the function torch.func differentiates."""
        return self(x[None])[0]

    def jacobian(self, x: Tensor, chunk_size: int | None = None) -> Tensor:
        """J = db/dx at each row of x (B, d) -> (B, d, d): ``vmap(jacrev(b))``, ``chunk_size`` points at a time."""
        return vmap(jacrev(self.point), chunk_size=chunk_size)(x.detach())

    def linearise(self, x: Tensor) -> Linearisation:
        """J v and J^T v at one point x (d,) from one forward pass (module docstring): ``torch.func.vjp``
        gives u -> J^T u, and the vjp of that linear map gives v -> J v."""
        b, pullback = torch.func.vjp(self.point, x.detach())
        _, pullback_t = torch.func.vjp(lambda u: pullback(u)[0], torch.zeros_like(b))

        def vjp(v: Tensor) -> Tensor:
            return pullback(v)[0].detach()

        def jvp(v: Tensor) -> Tensor:
            return pullback_t(v)[0].detach()
        return Linearisation(jvp, vjp)

    def sym_matvec(self, lin: Linearisation) -> Callable[[Tensor], Tensor]:
        """v -> (J v + J^T v) / (2 beta)."""
        return lambda v: 0.5 * (lin.jvp(v) + lin.vjp(v)) / self.beta


def flat_points(denoiser: Denoiser, x: Tensor | Array) -> Tensor:
    """States as a float64 tensor (B, d) on the denoiser's device; one point of the sample shape
    (or (d,)) becomes B = 1."""
    x = torch.as_tensor(x, dtype=torch.float64, device=denoiser_device(denoiser))
    d = int(np.prod(denoiser.shape))
    if tuple(x.shape) in (tuple(denoiser.shape), (d,)):
        return x.reshape(1, d)
    if x.ndim < 1 or x[0].numel() != d:
        raise ValueError(f"x: expected shape (B, {d}) or (B, *{tuple(denoiser.shape)}), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x: contains NaN or infinite values")
    return x.reshape(x.shape[0], d)


def drift(denoiser: Denoiser, x: Tensor | Array, t: float, dynamics: str = "sde") -> Tensor:
    """The learned drift b(x, t) = -f x + c beta score_D(x, t) at states x, shape (B, d)."""
    return LearnedDrift(denoiser, t, dynamics)(flat_points(denoiser, x))


def drift_jacobian(denoiser: Denoiser, x: Tensor | Array, t: float, dynamics: str = "sde",
                   chunk_size: int | None = 64) -> Tensor:
    """J = db/dx at states x, shape (B, d, d) (small d only: vmap(jacrev), d products per point)."""
    return LearnedDrift(denoiser, t, dynamics).jacobian(flat_points(denoiser, x), chunk_size)


# --------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LanczosResult:
    """Top-k Ritz values (descending), their residual bounds |beta_m s_m| and the iterations used."""

    eigenvalues: Array
    residuals: Array
    n_iter: int


def lanczos(matvec: Callable[[Tensor], Tensor], dim: int, k: int = 1, *, max_iter: int = 200,
            tol: float = 1e-10, seed: int = 0, device: torch.device | str = "cpu") -> LanczosResult:
    """Largest-algebraic eigenvalues of a symmetric operator by Lanczos with full reorthogonalisation.

    The tridiagonal T_j of alpha_i (diagonal) and beta_i (off-diagonal) is diagonalised every few
    steps; Ritz value theta_i has the residual ||A q - theta q|| = |beta_j s_ji| (Golub & Van Loan
    10.1), and the iteration stops when the top-k residuals are below tol * max(1, |theta|).
    """
    if k < 1 or k > dim:
        raise ValueError(f"k: must lie in [1, {dim}], got {k}")
    if max_iter < k:
        raise ValueError(f"max_iter: must be >= k = {k}, got {max_iter}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(dim, generator=gen, dtype=torch.float64).to(device)
    basis = [q / q.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    m = min(dim, max_iter)
    theta = res = np.zeros(0)
    for j in range(m):
        w = matvec(basis[j])
        alphas.append(float(basis[j] @ w))
        stack = torch.stack(basis)
        for _ in range(2):  # classical Gram-Schmidt twice: full reorthogonalisation
            w = w - stack.T @ (stack @ w)
        b = float(w.norm())
        done = j + 1 == m or b <= 1e-14 * max(1.0, abs(alphas[-1]))
        if done or (j + 1 >= k and (j + 1) % 5 == 0):
            evals, evecs = linalg.eigh_tridiagonal(np.array(alphas), np.array(betas))
            top = np.argsort(evals)[::-1][:k]
            theta, res = evals[top], np.abs(b * evecs[-1, top])
            if done or (len(theta) == k and (res <= tol * np.maximum(1.0, np.abs(theta))).all()):
                return LanczosResult(theta, res, j + 1)
        betas.append(b)
        basis.append(w / b)
    return LanczosResult(theta, res, m)


@dataclass(frozen=True)
class Spectrum:
    """Top-k eigenvalues of sym(J) / beta at B points (descending, shape (B, k)) and the
    non-symmetry ||J - J^T||_F / (2 ||J||_F) (exact on the dense route, a probe estimate otherwise)."""

    t: float
    eigenvalues: Array
    nonsymmetry: Array
    method: str

    @property
    def margin(self) -> Array:
        """The stability margin: the top eigenvalue of sym(J) / beta, shape (B,)."""
        return self.eigenvalues[:, 0]


def resolve_method(method: str, dim: int) -> str:
    """'dense' for d <= DENSE_MAX_DIM, else 'lanczos' (matrix-free), unless forced."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "dense" if dim <= DENSE_MAX_DIM else "lanczos"
    return method


def _dense_spectrum(jac: Tensor, beta: float, k: int) -> tuple[Array, Array]:
    """(top-k eigenvalues of sym(J)/beta, non-symmetry) from Jacobians (B, d, d)."""
    j = jac.detach().cpu().double()
    sym = 0.5 * (j + j.transpose(1, 2))
    evals = torch.linalg.eigvalsh(sym).numpy()[:, ::-1][:, :k] / beta
    anti = torch.linalg.matrix_norm(j - j.transpose(1, 2)) / (2 * torch.linalg.matrix_norm(j))
    return np.ascontiguousarray(evals), anti.numpy()


def _probe_nonsymmetry(lin: Linearisation, dim: int, n_probes: int, seed: int, like: Tensor) -> float:
    """sqrt(sum_z |K z|^2 / sum_z |J z|^2) over Rademacher probes z, K = (J - J^T)/2: a ratio-of-sums
    estimate of ||K||_F / ||J||_F (Hutchinson: E|A z|^2 = ||A||_F^2)."""
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    num = den = 0.0
    for _ in range(n_probes):
        z = (torch.randint(0, 2, (dim,), generator=gen) * 2 - 1).to(like)
        jz = lin.jvp(z)
        num += float(((jz - lin.vjp(z)) ** 2).sum()) / 4
        den += float((jz**2).sum())
    return math.sqrt(num / den) if den > 0 else 0.0


def _lanczos_spectrum(drift_t: LearnedDrift, x: Tensor, k: int, seed: int, n_probes: int,
                      max_iter: int, tol: float) -> tuple[Array, Array]:
    evals, anti = [], []
    for row in x:
        lin = drift_t.linearise(row)
        res = lanczos(drift_t.sym_matvec(lin), drift_t.dim, k, max_iter=max_iter, tol=tol, seed=seed,
                      device=row.device)
        evals.append(res.eigenvalues)
        anti.append(_probe_nonsymmetry(lin, drift_t.dim, n_probes, seed, row) if n_probes > 0 else np.nan)
    return np.array(evals), np.array(anti)


def jacobian_spectrum(denoiser: Denoiser, x: Tensor | Array, t: float, *, dynamics: str = "sde",
                      k: int = 1, method: str = "auto", chunk_size: int | None = 64, seed: int = 0,
                      n_probes: int = 8, max_iter: int = 200, tol: float = 1e-10) -> Spectrum:
    """Top-k eigenvalues of sym(J)/beta of the learned drift at states x (module docstring routes)."""
    drift_t = LearnedDrift(denoiser, t, dynamics)
    pts = flat_points(denoiser, x)
    if not 1 <= k <= drift_t.dim:
        raise ValueError(f"k: must lie in [1, {drift_t.dim}], got {k}")
    route = resolve_method(method, drift_t.dim)
    if route == "dense":
        evals, anti = _dense_spectrum(drift_t.jacobian(pts, chunk_size), drift_t.beta, k)
    else:
        evals, anti = _lanczos_spectrum(drift_t, pts, k, seed, n_probes, max_iter, tol)
    return Spectrum(drift_t.t, evals, anti, route)


# --------------------------------------------------------------------------------------------
# Fixed points: Newton steps on b(x, t) = 0
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixedPointSolve:
    """A zero of the drift at one time: x (d,), the residual max|b(x)| / beta, the Newton steps
    taken, whether the residual is below the acceptance level (else the best iterate, e.g. past a
    fold of the branch where no fixed point is near) and, on the dense route, the Jacobian J at x."""

    x: Tensor
    residual: float
    n_iter: int
    converged: bool
    jacobian: Tensor | None


def _krylov_step(drift_t: LearnedDrift, x: Tensor, b: Tensor, krylov_tol: float) -> Tensor:
    """Newton-Krylov: solve J dx = -b by GMRES on J v products, never forming J."""
    jvp = drift_t.linearise(x).jvp
    op = LinearOperator((drift_t.dim, drift_t.dim), dtype=np.float64, matvec=lambda v: jvp(
        torch.as_tensor(np.ravel(v), device=x.device)).detach().cpu().numpy())
    step, _ = gmres(op, -b.cpu().numpy(), rtol=krylov_tol, atol=0.0, restart=50, maxiter=4)
    return torch.as_tensor(step, device=x.device)


def _dense_step(jac: Tensor, b: Tensor) -> Tensor:
    """Solve J dx = -b; least squares when J is exactly singular (a perfect pitchfork's bifurcation)."""
    try:
        return torch.linalg.solve(jac, -b)
    except RuntimeError:
        return torch.linalg.lstsq(jac, -b[:, None]).solution[:, 0]


def newton_fixed_point(drift_t: LearnedDrift, x0: Tensor, *, method: str = "auto", tol: float = 1e-11,
                       accept: float = 1e-4, max_iter: int = 30, krylov_tol: float = 1e-8) -> FixedPointSolve:
    """Damped Newton x <- x - lam J^{-1} b(x) for the drift at one time, from x0 (d,).

    Dense J (``vmap(jacrev)``) for small d, Newton-Krylov (GMRES on J v products) otherwise. The step
    length lam = 1, 1/2, ..., 1/64 is the first with |b(x_new)| <= (1 - lam/2) |b(x)| (Armijo on the
    residual norm); the iteration stops when max|b|/beta <= ``tol``, when no step length decreases the
    residual (a float32 network's noise floor) or after ``max_iter`` steps. The result counts as a
    fixed point (``converged``) when max|b|/beta <= ``accept``. Newton converges to unstable fixed
    points as readily as to stable ones.
    """
    route = resolve_method(method, drift_t.dim)
    x = x0.detach().clone()
    with torch.no_grad():
        b = drift_t(x[None])[0]
    if not torch.isfinite(b).all():
        raise ValueError("x0: the drift is not finite at the starting point")
    for n_iter in range(max_iter + 1):
        res = float(b.abs().max()) / drift_t.beta
        jac = drift_t.jacobian(x[None], None)[0].detach() if route == "dense" else None
        if res <= tol or n_iter == max_iter:
            break
        step = _dense_step(jac, b) if jac is not None else _krylov_step(drift_t, x, b, krylov_tol)
        trial = _backtrack(drift_t, x, b, step)
        if trial is None:
            break
        x, b = trial
    return FixedPointSolve(x, res, n_iter, res <= accept, jac)


def _backtrack(drift_t: LearnedDrift, x: Tensor, b: Tensor, step: Tensor) -> tuple[Tensor, Tensor] | None:
    """(x + lam step, b there) for the first lam in 1, 1/2, ..., 1/64 that passes the Armijo test."""
    norm = float(b.norm())
    for j in range(7):
        lam = 0.5**j
        x_new = x + lam * step
        with torch.no_grad():
            b_new = drift_t(x_new[None])[0]
        if torch.isfinite(b_new).all() and float(b_new.norm()) <= (1 - lam / 2) * norm:
            return x_new, b_new
    return None


# --------------------------------------------------------------------------------------------
# The central branch followed in t
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BranchMeasurement:
    """The central fixed point followed from large t towards 0 on a logsnr grid (increasing logsnr).

    x (n, d) fixed points, eigenvalues (n, k) of sym(J)/beta (descending), non-symmetry (n,), Newton
    residual max|b|/beta (n,), ``converged`` (n,) (residual below the acceptance level) and
    ``segment`` (n,): runs of converged neighbours share an id, a point where Newton found no fixed
    point (past a fold of the branch) gets its own, and events are never sought across ids;
    ``events`` (crossings, closest approaches; theory's :class:`Event`)
    and the chosen critical time with its ``kind`` and ``margin_c`` (theory's rule, see
    :func:`follow_central_branch`); ``critical`` is None (``kind`` 'none') when there is no event.
    """

    t: Array
    logsnr: Array
    x: Array
    eigenvalues: Array
    nonsymmetry: Array
    residual: Array
    converged: NDArray[np.bool_]
    segment: NDArray[np.int64]
    events: tuple[Event, ...]
    critical: CriticalTime | None
    kind: str
    margin_c: float | None
    dynamics: str
    method: str
    config: dict = field(default_factory=dict)

    @property
    def margin(self) -> Array:
        return self.eigenvalues[:, 0]

    @property
    def t_c(self) -> float | None:
        return None if self.critical is None else self.critical.t

    @property
    def logsnr_c(self) -> float | None:
        return None if self.critical is None else self.critical.logsnr

    def table(self) -> pd.DataFrame:
        """One row per grid time: t, logsnr, margin, further eigenvalues, non-symmetry, residual,
        converged, segment, |x|."""
        cols = {"t": self.t, "logsnr": self.logsnr, "margin": self.margin}
        cols.update({f"lam_{i + 1}": self.eigenvalues[:, i] for i in range(1, self.eigenvalues.shape[1])})
        cols.update({"nonsymmetry": self.nonsymmetry, "residual": self.residual, "converged": self.converged,
                     "segment": self.segment, "x_norm": np.linalg.norm(self.x, axis=1)})
        return pd.DataFrame(cols)


@dataclass
class _BranchFollower:
    """Newton solves and margins at one logsnr, shared by the grid sweep and the event refinement."""

    denoiser: Denoiser
    dynamics: str
    method: str
    k: int
    newton: dict
    spectrum: dict

    def solve(self, logsnr: float, x0: Tensor) -> tuple[FixedPointSolve, Spectrum]:
        t = float(self.denoiser.schedule.t_of_logsnr(logsnr))
        drift_t = LearnedDrift(self.denoiser, t, self.dynamics)
        sol = newton_fixed_point(drift_t, x0, method=self.method, **self.newton)
        if sol.jacobian is not None:
            evals, anti = _dense_spectrum(sol.jacobian[None], drift_t.beta, self.k)
            return sol, Spectrum(drift_t.t, evals, anti, "dense")
        return sol, jacobian_spectrum(self.denoiser, sol.x, t, dynamics=self.dynamics, k=self.k,
                                      method=self.method, **self.spectrum)

    def curves(self, grid: Array, xs: list[Tensor], evals: Array, segment: NDArray[np.int64]) -> Curves:
        """The sampled eigenvalue curves, refinable between two samples of one segment by Newton from
        their interpolation (None where Newton finds no fixed point); theory.critical's event search
        works on these."""
        def evaluate(ell: float) -> tuple[Array, None] | None:
            i = int(np.clip(np.searchsorted(grid, ell) - 1, 0, len(grid) - 2))
            w = (ell - grid[i]) / (grid[i + 1] - grid[i])
            sol, spec = self.solve(ell, (1 - w) * xs[i] + w * xs[i + 1])
            return (spec.eigenvalues[0], None) if sol.converged else None

        return Curves(grid, evals, segment, evaluate)


def _segments(converged: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Ids that change wherever a point or its predecessor is not converged."""
    breaks = ~(converged[1:] & converged[:-1])
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int64)


def logsnr_grid(schedule: Schedule, n_points: int, t_range: tuple[float, float] | None = None) -> Array:
    """n_points logsnr values, uniform and increasing, from t_max down to t_min (default: the whole
    schedule, ``schedule.logsnr_range()``)."""
    if int(n_points) != n_points or n_points < 3:
        raise ValueError(f"n_points: must be an integer >= 3, got {n_points}")
    if t_range is None:
        lo, hi = schedule.logsnr_range()
    else:
        t_min, t_max = (float(v) for v in schedule.check_t(t_range, "t_range"))
        if not t_min < t_max:
            raise ValueError(f"t_range: expected (t_min, t_max) with t_min < t_max, got {t_range}")
        lo, hi = float(schedule.logsnr(t_max)), float(schedule.logsnr(t_min))
    return np.linspace(lo, hi, int(n_points))


def follow_central_branch(denoiser: Denoiser, *, dynamics: str = "sde", n_points: int = 121,
                          t_range: tuple[float, float] | None = None, x_init: Tensor | Array | None = None,
                          k: int = 1, method: str = "auto", near_zero: float = 0.05, newton_tol: float = 1e-11,
                          accept: float = 1e-4, max_newton: int = 30, seed: int = 0,
                          chunk_size: int | None = 64) -> BranchMeasurement:
    """Follow the central fixed point of the learned drift from t_max towards t_min with Newton steps.

    At each logsnr of an increasing uniform grid the previous fixed point, linearly extrapolated in
    logsnr, seeds Newton; the top-k eigenvalues of sym(J)/beta are measured there. Events and the
    critical time follow ``theory.critical`` exactly (its ``find_events`` runs on these curves):
    crossings refined by Brent's method, closest approaches (local maxima below zero) by a bounded
    Brent search, and t_c is the first crossing up or closest approach within ``near_zero`` of zero,
    else the closest approach nearest to zero. A grid point where damped Newton finds no fixed point
    (residual above ``accept``: the branch folded away) breaks the branch into segments, and the
    next point starts again from the last fixed point found. ``x_init`` seeds the first solve
    (default 0, the centre of the nearly Gaussian marginal at large t for centred data).
    """
    denoiser = differentiable(denoiser)
    schedule = denoiser.schedule
    grid = logsnr_grid(schedule, n_points, t_range)
    d = int(np.prod(denoiser.shape))
    if not 1 <= k <= d:
        raise ValueError(f"k: must lie in [1, {d}], got {k}")
    route = resolve_method(method, d)
    x_prev = flat_points(denoiser, np.zeros(d) if x_init is None else x_init)[0]
    follow = _BranchFollower(denoiser, dynamics, route, k,
                             {"tol": newton_tol, "accept": accept, "max_iter": max_newton},
                             {"seed": seed, "chunk_size": chunk_size})
    xs: list[Tensor] = []
    evals, anti, residual, converged = [], [], [], []
    for i, ell in enumerate(grid):
        secant = i >= 2 and converged[-1] and converged[-2]
        guess = xs[-1] + (xs[-1] - xs[-2]) * (ell - grid[i - 1]) / (grid[i - 1] - grid[i - 2]) if secant else x_prev
        sol, spec = follow.solve(float(ell), guess)
        xs.append(sol.x)
        x_prev = sol.x if sol.converged else x_prev
        evals.append(spec.eigenvalues[0])
        anti.append(spec.nonsymmetry[0])
        residual.append(sol.residual)
        converged.append(sol.converged)
    evals_arr, ok = np.array(evals), np.array(converged)
    segment = _segments(ok)
    events = find_events(follow.curves(grid, xs, evals_arr, segment), schedule)
    chosen = choose_critical(events, near_zero)
    config = {"dynamics": dynamics, "n_points": int(n_points), "t_range": t_range, "k": k, "method": route,
              "near_zero": near_zero, "newton_tol": newton_tol, "accept": accept, "max_newton": max_newton,
              "seed": seed, "schedule": schedule.config()}
    return BranchMeasurement(schedule.t_of_logsnr(grid), grid, torch.stack(xs).cpu().numpy(), evals_arr,
                             np.array(anti), np.array(residual), ok, segment, tuple(events),
                             None if chosen is None else chosen.time, "none" if chosen is None else chosen.kind,
                             None if chosen is None else chosen.margin, dynamics, route, config)
