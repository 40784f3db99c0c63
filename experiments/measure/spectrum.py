"""Jacobian spectra of the learned drift: the top eigenvalues of sym(J)/beta, dense or matrix-free.

Routes, chosen by the dimension d (``method="auto"``):
- d <= ``DENSE_MAX_DIM``: the full Jacobian, eigenvalues by ``eigvalsh``.
- larger d: never the d x d matrix. Top eigenvalues by Lanczos (full reorthogonalisation) on the
  products (J v + J^T v) / 2; the non-symmetry ||J - J^T||_F / (2 ||J||_F) by a Rademacher-probe
  estimate.

Precision: a network runs in its own dtype (float32), while the Krylov bases and the eigenvalue
problems are float64. A matrix-free product costs one backward pass of batch 1 through the stored
graph, so a 64x64x3 U-Net (d = 12288) needs the memory of one forward and two backward passes of one
image (on the CPU: top-2 eigenvalues by 60 Lanczos steps in 8 s, ``benchmarks/cuda_check.py --device
cpu``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import linalg
from torch import Tensor

from symbreak.experiments.measure.drift import JacobianProducts, LearnedDrift, flat_points
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.theory.checks import check_choice, check_int

Array = NDArray[np.float64]
DENSE_MAX_DIM = 512
METHODS = ("auto", "dense", "lanczos")


def _top_k(k: int, dim: int) -> int:
    """How many top eigenvalues to compute: an integer in [1, dim]."""
    if not 1 <= check_int("k", k) <= dim:
        raise ValueError(f"k: must lie in [1, {dim}], got {k}")
    return int(k)


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
    k = _top_k(k, dim)
    check_int("max_iter", max_iter, k)
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
class JacobianSpectrum:
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
    if check_choice("method", method, METHODS) == "auto":
        return "dense" if dim <= DENSE_MAX_DIM else "lanczos"
    return method


def dense_nonsymmetry(jac: Array) -> Array:
    """||J - J^T||_F / (2 ||J||_F) of dense Jacobians (..., d, d) (0 where J = 0)."""
    norm = np.linalg.norm(jac, axis=(-2, -1))
    anti = np.linalg.norm(jac - np.swapaxes(jac, -1, -2), axis=(-2, -1))
    return np.divide(anti, 2 * norm, out=np.zeros_like(norm), where=norm > 0)


def _dense_spectrum(jac: Tensor, beta: float, k: int) -> tuple[Array, Array]:
    """(top-k eigenvalues of sym(J)/beta, non-symmetry) from Jacobians (B, d, d)."""
    j = jac.detach().cpu().double()
    sym = 0.5 * (j + j.transpose(1, 2))
    evals = torch.linalg.eigvalsh(sym).numpy()[:, ::-1][:, :k] / beta
    return np.ascontiguousarray(evals), dense_nonsymmetry(j.numpy())


def _probe_nonsymmetry(lin: JacobianProducts, dim: int, n_probes: int, seed: int, like: Tensor) -> float:
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
                      n_probes: int = 8, max_iter: int = 200, tol: float = 1e-10) -> JacobianSpectrum:
    """Top-k eigenvalues of sym(J)/beta of the learned drift at states x (module docstring routes)."""
    drift_t = LearnedDrift(denoiser, t, dynamics)
    pts = flat_points(denoiser, x)
    k = _top_k(k, drift_t.dim)
    route = resolve_method(method, drift_t.dim)
    if route == "dense":
        evals, anti = _dense_spectrum(drift_t.jacobian(pts, chunk_size), drift_t.beta, k)
    else:
        evals, anti = _lanczos_spectrum(drift_t, pts, k, seed, n_probes, max_iter, tol)
    return JacobianSpectrum(drift_t.t, evals, anti, route)
