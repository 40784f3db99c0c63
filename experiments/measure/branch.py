"""The central branch of a learned drift followed in t, its margin, its model-error band and events.

Model-error band. A measured margin carries the network's own error, which can put wiggles into an
otherwise monotone curve, and a wiggle must not pass for a closest approach. In the linear phase at
large t every VP data distribution has the same exact central margin: J / beta = -f/beta I + c hess
log p_t with hess log p_t = -I / sigma^2 + alpha^2 / sigma^4 Cov[y | x_t = x] (Tweedie; Raya &
Ambrogioni 2023), and at the centre Cov[y | x_t] -> Cov(y) as alpha -> 0, so the margin is
-f/beta - c / sigma^2 + g lambda_max(Cov) + O(g^2), g = c alpha^2 / sigma^4 (VP SDE: 1/2 - 1/sigma^2 + ...).
Since lambda_max(Cov) <= tr Cov = E|y - mu|^2 (the mean does not enter Cov[y | x]), at every branch point
where g E|y - mu|^2 <= ``LINEAR_PHASE`` (1e-2) the exact margin lies within 1e-2 of the bulk value
-f/beta - c / sigma^2, and what the network adds beyond it is model error. :func:`model_error_band` takes
the largest |margin - bulk value| over those points (the maximum, not a quantile: the band must bound
the error for the bound of :class:`symbreak.theory.critical.Curves` to hold; it over-counts by at most
the 1e-2 of true deviation allowed there), and theory's rule then requires a closest approach to
stand ``BAND_FACTOR`` bands above its surroundings. E|y - mu|^2 comes from the data (``second_moment``);
without it the band is read at the top of the branch alone, where g is smallest.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from torch import Tensor

from symbreak.experiments.measure.drift import flat_points
from symbreak.experiments.measure.fixed_points import NetworkDrift
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.runtime.threads import torch_threads
from symbreak.theory import Schedule
from symbreak.theory.continuation import SERIAL_DIM, Branch, follow, serial_blas
from symbreak.theory.critical import CriticalTime, Event, branch_curves, choose_critical, find_events
from symbreak.theory.drifts import Noise

Array = NDArray[np.float64]
LINEAR_PHASE = 1e-2  # g E|y - mu|^2 at most this: the exact margin is the bulk value to within it


@dataclass(frozen=True)
class BranchMeasurement:
    """The central fixed point followed from large t towards 0 (increasing logsnr) by theory's
    continuation engine (:func:`symbreak.theory.continuation.follow` over :class:`.fixed_points.NetworkDrift`).

    One row per branch point (the engine's adaptive steps): x (n, d) fixed points, eigenvalues (n, k) of
    sym(J)/beta (descending), non-symmetry ||J - J^T||_F / (2 ||J||_F) (n,), Newton residual max|b|/beta
    (n,), ``converged`` (n,) (every branch point is a converged Newton solve: all True) and ``segment``
    (n,), the Branch's: 0 on the branch through the start, +1 after each fold, where the continuation
    restarted on the attractor the flow falls into; events are never sought across segments.
    ``events`` (crossings, closest approaches, folds; theory's :class:`Event`) and the chosen critical
    time with its ``kind`` and ``margin_c`` (theory's rule, see :func:`follow_central_branch`);
    ``critical`` is None (``kind`` 'none') when there is no event; ``model_error_band`` the margin's
    model-error band (:func:`model_error_band`); ``branch`` theory's :class:`Branch` itself (its
    ``status`` says whether the continuation reached t_min).
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
    branch: Branch | None = field(default=None, repr=False)

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
        """One row per branch point: t, logsnr, margin, further eigenvalues, non-symmetry, residual,
        converged, segment, |x|."""
        cols = {"t": self.t, "logsnr": self.logsnr, "margin": self.margin}
        cols.update({f"lam_{i + 1}": self.eigenvalues[:, i] for i in range(1, self.eigenvalues.shape[1])})
        cols.update({"nonsymmetry": self.nonsymmetry, "residual": self.residual, "converged": self.converged,
                     "segment": self.segment, "x_norm": np.linalg.norm(self.x, axis=1)})
        return pd.DataFrame(cols)


def model_error_band(logsnr: Array, margin: Array, schedule: Schedule, dynamics: str,
                     second_moment: float | None) -> float:
    """max |margin - (-f/beta - c/sigma^2)| over the branch points in the linear phase,
    g E|y - mu|^2 <= ``LINEAR_PHASE`` (module docstring); ``second_moment`` None: the top point (the
    smallest logsnr) alone. 0 when no point qualifies."""
    noise = [Noise.at(schedule, dynamics, float(s)) for s in logsnr]
    bulk = np.array([n.diagonal for n in noise])
    if second_moment is None:
        linear = np.arange(len(logsnr)) == int(np.argmin(logsnr))
    else:
        linear = np.array([n.gain for n in noise]) * float(second_moment) <= LINEAR_PHASE
    dev = np.abs(margin - bulk)[linear]
    return float(dev.max()) if dev.size else 0.0


def serial_torch(drift: NetworkDrift) -> AbstractContextManager:
    """One torch CPU thread for a drift of d <= theory's ``SERIAL_DIM`` (as theory's ``serial_blas`` for
    BLAS): a small network's batch-1 products gain nothing from intra-op threads, and on a loaded 2-core
    machine their synchronisation made the branch of ``symbreak validate --data gmm-2d`` take 30.5 s on
    2 threads against 4.6 s on 1 (measured); larger networks keep torch's threads."""
    return torch_threads(1) if drift.dim <= SERIAL_DIM else nullcontext()


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
                          k: int = 1, method: str = "auto", newton_tol: float | None = None, seed: int = 0,
                          second_moment: float | None = None) -> BranchMeasurement:
    """Follow the central fixed point of the learned drift from t_max towards t_min.

    Theory's continuation engine (:func:`symbreak.theory.continuation.follow`, the one that follows
    exact data models) runs over :class:`.fixed_points.NetworkDrift`: a secant predictor in logsnr,
    Newton with the network's own non-symmetric J, adaptive steps (the first one is 1/(``n_points`` - 1)
    of the logsnr range, :func:`logsnr_grid`'s spacing; they grow on easy steps and halve on hard ones,
    so the points are the engine's, not a grid) and, at a fold, a restart on the attractor as a new
    segment. The top-k eigenvalues of sym(J)/beta are tracked. Events and the critical time are
    theory's (:func:`symbreak.theory.critical.find_events` on the branch's refinable curves, with the
    branch's folds): crossings refined by Brent's method, closest approaches counted only when they
    stand above the margin's noise (the Newton residual, :class:`.fixed_points.NetworkDrift`) and
    ``BAND_FACTOR`` model-error bands (module docstring), and t_c is the first event
    (:func:`symbreak.theory.critical.choose_critical`). ``x_init`` starts the branch at t_max (default
    0: the centre of the nearly Gaussian marginal at large t for centred data); ``newton_tol``
    overrides the drift's Newton tolerance (:class:`.fixed_points.NetworkDrift`); ``second_moment``:
    the data's E|y - mu|^2 (tr Cov), which says where the linear phase lies for the model-error band
    (module docstring); without it the band is read at the top of the branch.
    """
    drift = NetworkDrift(denoiser, dynamics, method=method, newton_tol=newton_tol, seed=seed)
    grid = logsnr_grid(drift.schedule, n_points, t_range)
    if not 1 <= k <= drift.dim:
        raise ValueError(f"k: must lie in [1, {drift.dim}], got {k}")
    if x_init is None:
        x0 = drift.start(float(drift.schedule.t_of_logsnr(grid[0])))
    else:
        x0 = flat_points(drift.denoiser, x_init)[0].cpu().numpy()
    with serial_blas(drift), serial_torch(drift):
        branch = follow(drift, float(grid[0]), float(grid[-1]), x0, k=k, n_initial=int(n_points) - 1)
        band = model_error_band(branch.logsnr, branch.margin, drift.schedule, dynamics, second_moment)
        curves = branch_curves(branch, branch.eigenvalues.shape[1], band)[0]
        events = find_events(curves, drift.schedule, branch.folds)
        points = list(zip(branch.x, branch.logsnr))
        nonsymmetry = np.array([drift.nonsymmetry(x, s) for x, s in points])
        residual = np.array([np.abs(drift.b(x, s)).max() for x, s in points])
    chosen = choose_critical(events, float(branch.margin[0]))
    config = {"dynamics": dynamics, "n_points": int(n_points), "t_range": t_range, "k": k, "method": drift.method,
              "newton_tol": drift.newton_tol, "seed": seed, "second_moment": second_moment,
              "model_error_band": band, "status": branch.status, "schedule": drift.schedule.config()}
    return BranchMeasurement(branch.t, branch.logsnr, branch.x, branch.eigenvalues, nonsymmetry, residual,
                             np.ones(len(points), dtype=bool), branch.segment.astype(np.int64), tuple(events),
                             None if chosen is None else chosen.time, "none" if chosen is None else chosen.kind,
                             None if chosen is None else chosen.margin, dynamics, drift.method, config, band, branch)
