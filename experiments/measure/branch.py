"""The central branch of a learned drift followed in t, its margin, its model-error band and events.

Model-error band. A measured margin carries the network's own error, which can put wiggles into an
otherwise monotone curve, and a wiggle must not pass for a closest approach. In the linear phase at
large t every VP data distribution has the same exact central margin: J / beta = -f/beta I + c hess
log p_t with hess log p_t = -I / sigma^2 + alpha^2 / sigma^4 Cov[y | x_t = x] (Tweedie; Raya &
Ambrogioni 2023), and at the centre Cov[y | x_t] -> Cov(y) as alpha -> 0, so the margin is
-f/beta - c / sigma^2 + g lambda_max(Cov) + O(g^2), g = c alpha^2 / sigma^4 (VP SDE: 1/2 - 1/sigma^2 + ...).
Since lambda_max(Cov) <= tr Cov = E|y - mu|^2 (the mean does not enter Cov[y | x]), at every grid point
where g E|y - mu|^2 <= ``LINEAR_PHASE`` (1e-2) the exact margin lies within 1e-2 of the bulk value
-f/beta - c / sigma^2, and what the network adds beyond it is model error. :func:`model_error_band` takes
the largest |margin - bulk value| over those points (the maximum, not a quantile: the band must bound
the error for the bound of :class:`symbreak.theory.critical.Curves` to hold; it over-counts by at most
the 1e-2 of true deviation allowed there), and theory's rule then requires a closest approach to
stand ``BAND_FACTOR`` bands above its surroundings. E|y - mu|^2 comes from the data (``second_moment``);
without it the band is read at the top of the grid alone, where g is smallest.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from torch import Tensor

from symbreak.experiments.measure.drift import LearnedDrift, flat_points
from symbreak.experiments.measure.fixed_points import FixedPointSolve, newton_fixed_point
from symbreak.experiments.measure.spectrum import JacobianSpectrum, _dense_spectrum, jacobian_spectrum, resolve_method
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import differentiable
from symbreak.theory import Schedule
from symbreak.theory.critical import CriticalTime, Curves, Event, choose_critical, find_events
from symbreak.theory.drifts import Noise

Array = NDArray[np.float64]
LINEAR_PHASE = 1e-2  # g E|y - mu|^2 at most this: the exact margin is the bulk value to within it


@dataclass(frozen=True)
class BranchMeasurement:
    """The central fixed point followed from large t towards 0 on a logsnr grid (increasing logsnr).

    x (n, d) fixed points, eigenvalues (n, k) of sym(J)/beta (descending), non-symmetry (n,), Newton
    residual max|b|/beta (n,), ``converged`` (n,) (residual below the acceptance level) and
    ``segment`` (n,): runs of converged neighbours share an id, a point where Newton found no fixed
    point (past a fold of the branch) gets its own, and events are never sought across ids;
    ``events`` (crossings, closest approaches; theory's :class:`Event`)
    and the chosen critical time with its ``kind`` and ``margin_c`` (theory's rule, see
    :func:`follow_central_branch`); ``critical`` is None (``kind`` 'none') when there is no event;
    ``model_error_band`` the margin's model-error band (:func:`model_error_band`).
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
    model_error_band: float = 0.0

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

    def solve(self, logsnr: float, x0: Tensor) -> tuple[FixedPointSolve, JacobianSpectrum]:
        t = float(self.denoiser.schedule.t_of_logsnr(logsnr))
        drift_t = LearnedDrift(self.denoiser, t, self.dynamics)
        sol = newton_fixed_point(drift_t, x0, method=self.method, **self.newton)
        if sol.jacobian is not None:
            _, anti = _dense_spectrum(sol.jacobian[None], drift_t.beta, self.k)
            return sol, JacobianSpectrum(drift_t.t, sol.eigenvalues_over_beta[None, :self.k], anti, "dense")
        return sol, jacobian_spectrum(self.denoiser, sol.state, t, dynamics=self.dynamics, k=self.k,
                                      method=self.method, **self.spectrum)

    def curves(self, grid: Array, xs: list[Tensor], evals: Array, segment: NDArray[np.int64],
               noise: Array, band: float) -> Curves:
        """The sampled eigenvalue curves, refinable between two samples of one segment by Newton from
        their interpolation (None where Newton finds no fixed point); theory.critical's event search
        works on these. ``noise``: the margin's round-off level at each sample (:func:`_round_off`);
        ``band``: the model-error band (module docstring)."""
        def evaluate(ell: float) -> tuple[Array, None] | None:
            i = int(np.clip(np.searchsorted(grid, ell) - 1, 0, len(grid) - 2))
            w = (ell - grid[i]) / (grid[i + 1] - grid[i])
            sol, spec = self.solve(ell, (1 - w) * xs[i] + w * xs[i + 1])
            return (spec.eigenvalues[0], None, sol.x) if sol.converged else None

        return Curves(grid, evals, segment, evaluate, noise, band)


def model_error_band(logsnr: Array, margin: Array, converged: NDArray[np.bool_], schedule: Schedule,
                     dynamics: str, second_moment: float | None) -> float:
    """max |margin - (-f/beta - c/sigma^2)| over the converged grid points in the linear phase,
    g E|y - mu|^2 <= ``LINEAR_PHASE`` (module docstring); ``second_moment`` None: the top grid point
    (the smallest logsnr) alone. 0 when no point qualifies."""
    noise = [Noise.at(schedule, dynamics, float(s)) for s in logsnr]
    bulk = np.array([n.diagonal for n in noise])
    if second_moment is None:
        linear = np.arange(len(logsnr)) == int(np.argmin(logsnr))
    else:
        linear = np.array([n.gain for n in noise]) * float(second_moment) <= LINEAR_PHASE
    dev = np.abs(margin - bulk)[linear & converged]
    return float(dev.max()) if dev.size else 0.0


def _round_off(residual: Array, margin: Array) -> Array:
    """The round-off level of a measured margin: the Newton residual max|b|/beta (damped Newton stops
    at the network's own noise floor, float32 for a trained net) and at least 64 float64 eps |margin|.
    The model's error (of which J's non-symmetry is one symptom) is the band's, not round-off."""
    return np.maximum(residual, 64 * np.finfo(np.float64).eps * np.abs(margin))


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
                          chunk_size: int | None = 64, second_moment: float | None = None) -> BranchMeasurement:
    """Follow the central fixed point of the learned drift from t_max towards t_min with Newton steps.

    At each logsnr of an increasing uniform grid the previous fixed point, linearly extrapolated in
    logsnr, seeds Newton; the top-k eigenvalues of sym(J)/beta are measured there. Events and the
    critical time follow ``theory.critical`` exactly (its ``find_events`` runs on these curves):
    crossings refined by Brent's method, closest approaches (local maxima below zero) by a bounded
    Brent search, counted only when they stand above the margin's round-off (the Newton residual) and
    its model-error band (module docstring), and
    t_c is the first event (theory's :func:`choose_critical`; ``near_zero`` is kept for old callers
    and has no effect). A grid point where damped Newton finds no fixed point
    (residual above ``accept``: the branch folded away) breaks the branch into segments, and the
    next point starts again from the last fixed point found. ``x_init`` seeds the first solve
    (default 0, the centre of the nearly Gaussian marginal at large t for centred data).
    ``second_moment``: the data's E|y - mu|^2 (tr Cov), which says where the linear phase lies for the
    model-error band (module docstring); without it the band is read at the top of the grid.
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
        xs.append(sol.state)
        x_prev = sol.state if sol.converged else x_prev
        evals.append(spec.eigenvalues[0])
        anti.append(spec.nonsymmetry[0])
        residual.append(sol.residual)
        converged.append(sol.converged)
    evals_arr, ok = np.array(evals), np.array(converged)
    segment = _segments(ok)
    noise = _round_off(np.array(residual), evals_arr[:, 0])
    band = model_error_band(grid, evals_arr[:, 0], ok, schedule, dynamics, second_moment)
    events = find_events(follow.curves(grid, xs, evals_arr, segment, noise, band), schedule)
    chosen = choose_critical(events, float(evals_arr[0, 0]))
    config = {"dynamics": dynamics, "n_points": int(n_points), "t_range": t_range, "k": k, "method": route,
              "near_zero": near_zero, "newton_tol": newton_tol, "accept": accept, "max_newton": max_newton,
              "seed": seed, "second_moment": second_moment, "model_error_band": band, "schedule": schedule.config()}
    return BranchMeasurement(schedule.t_of_logsnr(grid), grid, torch.stack(xs).cpu().numpy(), evals_arr,
                             np.array(anti), np.array(residual), ok, segment, tuple(events),
                             None if chosen is None else chosen.time, "none" if chosen is None else chosen.kind,
                             None if chosen is None else chosen.margin, dynamics, route, config, band)
