"""Fixed points of the learned drift: Newton steps on b(x, t) = 0.

d <= ``DENSE_MAX_DIM``: each step solves with the dense Jacobian; larger d: Newton-Krylov (GMRES on
J v products), never the d x d matrix. The Newton state is float64 whatever the network's dtype. The
result is theory's :class:`symbreak.theory.continuation.NewtonResult` with the torch state and Jacobian.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, gmres
from torch import Tensor

from symbreak.experiments.measure.drift import LearnedDrift
from symbreak.experiments.measure.spectrum import resolve_method
from symbreak.theory.continuation import NewtonResult


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
