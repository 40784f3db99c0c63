"""Fixed points of the learned drift: Newton steps on b(x, t) = 0, and the learned drift as the drift of
theory's continuation engine.

- :class:`NetworkDrift`: any Denoiser (a trained network or the torch exact oracle) as a
  :class:`symbreak.theory.drifts.Drift`, so :func:`symbreak.theory.continuation.follow` follows its
  branches with the same predictor, step control, fold restarts and event rule as an exact data model.
  The spectrum is that of the symmetric part sym(J) / beta (:mod:`.drift`), while Newton solves with J
  itself (``Linearisation.solve``): a network's J is not symmetric, and a step with sym(J) converges only
  linearly (or not at all) where the non-symmetry is not small against the margin.
- :func:`newton_fixed_point`: damped Newton at one time, for a quick solve outside a branch.

Both solve J dx = -b with the same steps: d <= ``DENSE_MAX_DIM`` with the dense Jacobian
(:func:`dense_solve`), larger d by GMRES on J v products (:func:`krylov_solve`), never the d x d matrix.
The Newton state is float64 whatever the network's dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, gmres
from torch import Tensor

from symbreak.experiments.measure.drift import LearnedDrift, flat_points
from symbreak.experiments.measure.spectrum import _probe_nonsymmetry, dense_nonsymmetry, resolve_method
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import TorchExactDenoiser, denoiser_device, differentiable
from symbreak.theory.continuation import NewtonResult
from symbreak.theory.drifts import EPS, NEWTON_TOL, Linearisation, Noise
from symbreak.theory.dynamics import score_weight

Array = NDArray[np.float64]
KRYLOV_TOL = 1e-8      # GMRES's relative residual in a Newton step
FLOOR_STEPS = 100      # a network's Newton tolerance: this many eps of its dtype (NetworkDrift.newton_tol)


@dataclass(frozen=True)
class FixedPointSolve(NewtonResult):
    """Theory's Newton result for a learned drift: ``x`` (d,) float64 numpy, ``iterations`` the Newton
    steps taken, ``converged`` whether the residual max|b(x)| / beta is below the acceptance level (else
    the best iterate, e.g. past a fold of the branch where no fixed point is near), ``noise`` the residual
    (the network's noise floor on the margin); on the dense route every eigenpair of sym(J) / beta,
    descending (empty on the matrix-free route, where :func:`.spectrum.jacobian_spectrum` measures the
    top ones). Torch fields: ``state``, x as a tensor on the denoiser's device, and ``jacobian``, J at x
    on the dense route (None otherwise)."""

    state: Tensor | None = None
    jacobian: Tensor | None = None


def dense_solve(jac: Array, r: Array) -> Array:
    """J^{-1} r; least squares when J is exactly singular (a perfect pitchfork's bifurcation)."""
    try:
        return np.linalg.solve(jac, r)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(jac, r, rcond=None)[0]


def krylov_solve(jvp: Callable[[Tensor], Tensor], r: Array, device: torch.device,
                 tol: float = KRYLOV_TOL) -> Array:
    """J^{-1} r by GMRES (restarted every 50, at most 4 cycles) on the products v -> J v."""
    d = r.shape[0]
    op = LinearOperator((d, d), dtype=np.float64,
                        matvec=lambda v: jvp(torch.as_tensor(np.ravel(v), device=device)).cpu().numpy())
    step, _ = gmres(op, r, rtol=tol, atol=0.0, restart=50, maxiter=4)
    return step


def _numpy_operator(product: Callable[[Tensor], Tensor], device: torch.device) -> Callable[[Array], Array]:
    """A torch product on one vector as a numpy one on a vector (d,) or a block (d, m), column by column."""
    def apply(v: Array) -> Array:
        block = np.asarray(v, dtype=np.float64).reshape(np.shape(v)[0], -1)
        cols = [product(torch.as_tensor(c, device=device)).cpu().numpy() for c in block.T]
        return np.stack(cols, axis=1).reshape(np.shape(v))
    return apply


def network_newton_tol(denoiser: Denoiser) -> float:
    """Newton's relative step tolerance for ``denoiser`` (:class:`NetworkDrift`): theory's 1e-10 for a
    float64 model (the exact oracle), ``FLOOR_STEPS`` eps of the network's dtype otherwise (1.2e-5 for
    float32)."""
    if isinstance(denoiser, TorchExactDenoiser):
        return NEWTON_TOL
    dtype = getattr(denoiser, "dtype", torch.float32)
    return max(NEWTON_TOL, FLOOR_STEPS * float(torch.finfo(dtype).eps))


class NetworkDrift:
    """A Denoiser's learned drift (:class:`.drift.LearnedDrift`) as theory's Drift protocol.

    ``b(x, logsnr)`` is drift / beta and ``linearise`` gives, at one state, b; ``matvec`` (products with
    sym(J) / beta, the symmetric part whose spectrum is the margin); ``dense`` = sym(J) / beta on the
    dense route (d <= ``DENSE_MAX_DIM``, :func:`.spectrum.resolve_method`; None on the matrix-free
    route); ``noise`` = max(max|b|, 64 eps scale): where Newton has converged (where the engine records
    it) the residual max|b| is the network's own floor on the margin, as the Newton residual was before
    the engine took over; ``scale`` (dense: the largest absolute row sum of sym(J) /
    beta, a bound of its norm; matrix-free: |a|, the size of J / beta off its few outlying directions);
    ``shift`` = a = -f/beta - c/sigma^2, the bulk eigenvalue (the spectrum of the data-free linear
    phase); ``solve`` = r -> (J / beta)^{-1} r with the non-symmetric J (dense: ``np.linalg.solve``;
    matrix-free: GMRES on J v products).

    ``newton_tol`` (Newton stops at |dx| <= newton_tol (1 + |x|)): 1e-10 for the float64 oracle (as for
    theory's exact models), ``FLOOR_STEPS`` = 100 eps of a network's dtype otherwise (1.2e-5 for
    float32). Measured on the cached float32 MLPs of two-deltas, gmm-2d and digits at 12 times of
    their central branches in t in [0.05, 1] (25 full steps of the non-symmetric Newton each): the
    relative step falls quadratically to a floor where it wanders, with median 5e-9 .. 5e-7 over the
    last 10 steps and a largest single step of 1.2e-6 (gmm-2d at t = 0.22, margin -0.15: float32
    round-off of D, ~6e-8 |D|, amplified by 1 / margin). A tolerance within a few eps32 of the floor
    would never stop; 100 eps32 stands 10x above the worst step seen. An error of 1e-5 (1 + |x|) in x
    moves the margin by ~1e-5 |d margin / dx|, far inside the same networks' model-error band (~2e-2).
    ``start(t)`` = alpha(t) ``mean`` (the data mean; 0 when not
    given), where the central branch starts.
    """

    def __init__(self, denoiser: Denoiser, dynamics: str = "sde", *, method: str = "auto",
                 mean: Array | None = None, newton_tol: float | None = None, seed: int = 0, n_probes: int = 8):
        score_weight(dynamics)
        self.denoiser = differentiable(denoiser)
        self.schedule, self.dynamics = self.denoiser.schedule, dynamics
        self.dim = int(np.prod(self.denoiser.shape))
        self.method = resolve_method(method, self.dim)
        self.matrix_free = self.method != "dense"
        self.device = denoiser_device(self.denoiser)
        self.mean = np.zeros(self.dim) if mean is None else flat_points(self.denoiser, mean)[0].cpu().numpy()
        if newton_tol is not None and not newton_tol > 0:
            raise ValueError(f"newton_tol: must be a number > 0, got {newton_tol}")
        self.newton_tol = network_newton_tol(self.denoiser) if newton_tol is None else float(newton_tol)
        self.seed, self.n_probes = seed, n_probes
        self._nonsymmetry: dict[tuple[float, bytes], float] = {}   # dense route: at every point linearised

    def at(self, logsnr: float) -> LearnedDrift:
        """The learned drift at the time of ``logsnr`` (clipped to the schedule's range, as theory's)."""
        return LearnedDrift(self.denoiser, Noise.at(self.schedule, self.dynamics, logsnr).t, self.dynamics)

    def _state(self, x: Array) -> Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.device)

    def start(self, t: float) -> Array:
        return float(self.schedule.alpha(t)) * self.mean

    def b(self, x: Array, logsnr: float) -> Array:
        drift_t = self.at(logsnr)
        with torch.no_grad():
            return (drift_t(self._state(x)[None])[0] / drift_t.beta).cpu().numpy()

    def linearise(self, x: Array, logsnr: float) -> Linearisation:
        drift_t, state = self.at(logsnr), self._state(x)
        shift = drift_t.lin / drift_t.beta
        if self.matrix_free:
            lin = drift_t.linearise(state)
            b = (lin.b / drift_t.beta).cpu().numpy()
            scale = abs(shift)
            matvec = _numpy_operator(drift_t.sym_matvec(lin), self.device)
            return Linearisation(b, matvec, None, max(float(np.abs(b).max()), 64 * EPS * scale), scale, shift,
                                 solve=lambda r: krylov_solve(lin.jvp, r * drift_t.beta, self.device))
        jac = drift_t.jacobian(state[None])[0].cpu().double().numpy() / drift_t.beta
        b = self.b(x, logsnr)
        sym = 0.5 * (jac + jac.T)
        self._nonsymmetry[self._key(x, logsnr)] = float(dense_nonsymmetry(jac))
        scale = float(np.abs(sym).sum(axis=1).max())
        return Linearisation(b, sym.__matmul__, sym, max(float(np.abs(b).max()), 64 * EPS * scale), scale, shift,
                             solve=lambda r: dense_solve(jac, r))

    @staticmethod
    def _key(x: Array, logsnr: float) -> tuple[float, bytes]:
        return float(logsnr), np.asarray(x, dtype=np.float64).tobytes()

    def nonsymmetry(self, x: Array, logsnr: float) -> float:
        """||J - J^T||_F / (2 ||J||_F) at x (dense: exact, remembered from the linearisation there, as at
        every branch point; matrix-free: the Rademacher-probe estimate of :mod:`.spectrum`)."""
        if self.matrix_free:
            drift_t, state = self.at(logsnr), self._state(x)
            return _probe_nonsymmetry(drift_t.linearise(state), self.dim, self.n_probes, self.seed, state)
        key = self._key(x, logsnr)
        if key not in self._nonsymmetry:
            self.linearise(x, logsnr)
        return self._nonsymmetry[key]


def _solve_result(drift_t: LearnedDrift, x: Tensor, res: float, n_iter: int, converged: bool,
                  jac: Tensor | None) -> FixedPointSolve:
    """The result at x, with the eigenpairs of sym(J) / beta when J was formed."""
    if jac is None:
        w, v = np.zeros(0), np.zeros((drift_t.dim, 0))
    else:
        j = jac.detach().cpu().double().numpy()
        w, v = np.linalg.eigh(0.5 * (j + j.T) / drift_t.beta)
        w, v = w[::-1].copy(), v[:, ::-1].copy()
    return FixedPointSolve(x.detach().cpu().double().numpy(), w, v, n_iter, converged, res, res, x, jac)


def _step(drift_t: LearnedDrift, x: Tensor, b: Tensor, jac: Tensor | None, krylov_tol: float) -> Tensor:
    """The Newton step dx with J dx = -b: dense with J, else GMRES on J v products."""
    rhs = -b.cpu().numpy()
    if jac is not None:
        step = dense_solve(jac.cpu().double().numpy(), rhs)
    else:
        step = krylov_solve(drift_t.linearise(x).jvp, rhs, x.device, krylov_tol)
    return torch.as_tensor(step, device=x.device)


def newton_fixed_point(drift_t: LearnedDrift, x0: Tensor, *, method: str = "auto", tol: float = 1e-11,
                       accept: float = 1e-4, max_iter: int = 30, krylov_tol: float = KRYLOV_TOL) -> FixedPointSolve:
    """Damped Newton x <- x - lam J^{-1} b(x) for the drift at one time, from x0 (d,).

    Dense J (``vmap(jacrev)``) for small d, Newton-Krylov (GMRES on J v products) otherwise. The step
    length lam = 1, 1/2, ..., 1/64 is the first with |b(x_new)| <= (1 - lam/2) |b(x)| (Armijo on the
    residual norm); the iteration stops when max|b|/beta <= ``tol``, when no step length decreases the
    residual (a float32 network's noise floor) or after ``max_iter`` steps. The result counts as a
    fixed point (``converged``) when max|b|/beta <= ``accept``. Newton converges to unstable fixed
    points as readily as to stable ones. Branches are followed by theory's engine over
    :class:`NetworkDrift` instead (:func:`symbreak.experiments.measure.branch.follow_central_branch`).
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
        trial = _backtrack(drift_t, x, b, _step(drift_t, x, b, jac, krylov_tol))
        if trial is None:
            break
        x, b = trial
    return _solve_result(drift_t, x, res, n_iter, res <= accept, jac)


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
