"""Argument validation shared by every theory object: one clear ``ValueError`` per bad input.

Each message names the argument, says what was wrong and what is accepted, so the command line can
print it as it is and exit with code 2.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def finite_array(name: str, value: ArrayLike, ndim: int | None = None) -> NDArray[np.float64]:
    """``value`` as a float64 array; raise if it is not finite or has the wrong number of axes."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected numbers, got {value!r}") from err
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} axes, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} value(s) are NaN or infinite; only finite numbers are accepted")
    return arr


def positive(name: str, value: float, strict: bool = True) -> float:
    """A finite scalar that is > 0 (or >= 0 when ``strict`` is False)."""
    v = float(finite_array(name, value, ndim=0))
    if v < 0 or (strict and v == 0):
        raise ValueError(f"{name}: must be {'> 0' if strict else '>= 0'}, got {v}")
    return v


def psd_matrix(name: str, value: ArrayLike, dim: int, tol: float = 1e-10) -> NDArray[np.float64]:
    """A symmetric positive semi-definite ``dim``×``dim`` matrix."""
    m = finite_array(name, value, ndim=2)
    if m.shape != (dim, dim):
        raise ValueError(f"{name}: expected shape ({dim}, {dim}) to match the mean, got {m.shape}")
    scale = max(1.0, float(np.abs(m).max()))
    if not np.allclose(m, m.T, atol=tol * scale, rtol=0):
        raise ValueError(f"{name}: must be symmetric; max |C - C^T| = {np.abs(m - m.T).max():.3g}")
    lam_min = float(np.linalg.eigvalsh(m)[0])
    if lam_min < -1e-9 * scale:
        raise ValueError(f"{name}: must be positive semi-definite; smallest eigenvalue is {lam_min:.3g}")
    return 0.5 * (m + m.T)


def probability_weights(name: str, value: ArrayLike, count: int) -> NDArray[np.float64]:
    """Non-negative weights of length ``count`` that sum to 1 (to 1e-8)."""
    w = finite_array(name, value, ndim=1)
    if w.shape != (count,):
        raise ValueError(f"{name}: expected {count} weights, got {w.shape[0]}")
    if (w < 0).any():
        raise ValueError(f"{name}: weights must be >= 0, got {w.min():.3g}")
    if abs(w.sum() - 1.0) > 1e-8:
        raise ValueError(f"{name}: weights must sum to 1, they sum to {w.sum():.10g}")
    return w


def points(name: str, value: ArrayLike, dim: int) -> NDArray[np.float64]:
    """Query points as a (B, dim) float64 array; a single point of shape (dim,) becomes (1, dim)."""
    x = finite_array(name, value)
    if x.ndim == 1 and dim == 1 and x.shape[0] != 1:
        x = x[:, None]
    x = np.atleast_2d(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (B, {dim}) or ({dim},), got {np.shape(value)}")
    return x
