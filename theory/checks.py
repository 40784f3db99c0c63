"""Argument validation shared by the whole library: one validator per kind of value, one clear
``ValueError`` per bad input.

Each message names the argument, says what was wrong and what is accepted, so the command line can
print it as it is and exit with code 2: :func:`check_int` (integers in a range), :func:`check_positive`
(finite numbers > 0 or >= 0), :func:`check_choice` (one of a few names), :func:`finite_array` and the
array shapes built on it (:func:`psd_matrix`, :func:`probability_weights`, :func:`points`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

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


def check_int(name: str, value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in [minimum, maximum] (a bound of None is open).

    Accepted: Python and NumPy integers and integral floats such as ``3.0``; not booleans, strings,
    non-integral or non-finite numbers.
    """
    integral = _is_integral(value)
    if not integral or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name}: must be an integer{_bounds(minimum, maximum)}, got {value!r}")
    return int(value)


def _is_integral(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value)


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in {minimum}..{maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    return "" if maximum is None else f" <= {maximum}"


def check_positive(name: str, value: float, strict: bool = True) -> float:
    """A finite scalar that is > 0 (or >= 0 when ``strict`` is False), as a float."""
    v = float(finite_array(name, value, ndim=0))
    if v < 0 or (strict and v == 0):
        raise ValueError(f"{name}: must be a number {'> 0' if strict else '>= 0'}, got {v}")
    return v


positive = check_positive  # the older name, still imported by theory.critical and theory.fixedpoints


def check_choice(name: str, value: object, accepted: Iterable[str]) -> str:
    """``value`` if it is one of the ``accepted`` names."""
    accepted = tuple(accepted)
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{name}: must be one of {', '.join(accepted)}, got {value!r}")
    return value


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
