"""A network's critical time against theory's.

The learned drift of a trained denoiser has its central fixed point followed in t and its margin (top
eigenvalue of sym(J)/beta) measured along it
(:func:`symbreak.experiments.measure.branch.follow_central_branch`); theory follows the same branch of
the exact score of the data model (or of the finite data, for real sets) with
:func:`symbreak.theory.critical_times`. Both branches are followed by the same continuation engine
(:func:`symbreak.theory.continuation.follow`), and both use theory's event rule for t_c (the first event: an upward
crossing, a fold, or a closest approach standing above the margin's round-off and, for the network,
its model-error band, :mod:`symbreak.experiments.measure.branch`). :func:`compare` reports t_c of
both, rel_error = |t_c_network - t_c_theory| / t_c_theory and the largest margin gap in a logsnr window
around theory's t_c, split at t_c.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from symbreak.analysis.datasets import Dataset
from symbreak.experiments.measure.branch import BranchMeasurement, follow_central_branch
from symbreak.experiments.measure.fixed_points import NetworkDrift
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.theory import Schedule, critical_times
from symbreak.theory.continuation import branch_point
from symbreak.theory.critical import CriticalTimes

Array = NDArray[np.float64]
TOP_K = 4  # eigenvalues of sym(J)/beta compared at theory's t_c


def compare(theory: CriticalTimes, network: BranchMeasurement, denoiser: Denoiser,
            window: float) -> tuple[dict, Array]:
    """t_c of both, their relative error, the top eigenvalues of both at theory's t_c (a degenerate
    crossing shows up as the network's eigenvalues splitting around theory's) and the margin gap
    near theory's t_c (logsnr window); also theory's margins at the network's branch points."""
    t_th, t_net = theory.t_c, network.t_c
    out = {"t_c_theory": t_th, "t_c_network": t_net,
           "rel_error": None if t_th is None or t_net is None else abs(t_net - t_th) / t_th,
           "kind_theory": theory.kind, "kind_network": network.kind,
           "margin_c_theory": theory.margin_c, "margin_c_network": network.margin_c,
           "logsnr_c_theory": theory.logsnr_c, "logsnr_c_network": network.logsnr_c,
           "t_c_gap": None if t_th is None or t_net is None else t_net - t_th}
    if theory.logsnr_c is not None:
        k = min(TOP_K, network.x.shape[1])
        point = theory.branch.point_at(theory.logsnr_c)
        out["eigenvalues_at_t_c_theory"] = {
            "theory": None if point is None else point.eigenvalues[:k].tolist(),
            "network": network_eigenvalues_at(denoiser, network, theory.logsnr_c, k).tolist()}
    margins = theory_margins(theory.branch, network.logsnr)
    out.update(margin_gaps(network, margins, theory.logsnr_c, window))
    return out, margins


def margin_gaps(network: BranchMeasurement, margins: Array, logsnr_c: float | None, window: float) -> dict:
    """max |margin_network - margin_theory| over the network's branch points within ``window`` (logsnr) of theory's
    t_c, also split into t >= t_c (before t_c in generation order) and t < t_c."""
    gap = np.abs(network.margin - margins)
    near = np.isfinite(gap)
    side = np.zeros_like(near)
    if logsnr_c is not None:
        near &= np.abs(network.logsnr - logsnr_c) <= window
        side = network.logsnr <= logsnr_c

    def worst(mask):
        return float(gap[mask].max()) if mask.any() else None
    return {"window_logsnr": window, "window_points": int(near.sum()),
            "max_abs_margin_gap_window": worst(near), "max_abs_margin_gap_before_t_c": worst(near & side),
            "max_abs_margin_gap_after_t_c": worst(near & ~side)}


def network_eigenvalues_at(denoiser: Denoiser, network: BranchMeasurement, logsnr: float, k: int) -> Array:
    """Top-k eigenvalues of sym(J)/beta at the network's branch point at ``logsnr``: the engine's Newton
    (:func:`symbreak.theory.continuation.branch_point`) on ``denoiser``'s drift, measured as the branch
    was, from the branch interpolated between its points (NaN where Newton does not converge)."""
    drift = NetworkDrift(denoiser, network.dynamics, method=network.method,
                         newton_tol=network.config["newton_tol"], seed=network.config["seed"])
    guess = np.array([np.interp(logsnr, network.logsnr, column) for column in network.x.T])
    point = branch_point(drift, logsnr, guess, k=k)
    return np.full(k, np.nan) if point is None else point.eigenvalues[:k]


def theory_margins(branch, logsnr: Array) -> Array:
    """Theory's margin (top eigenvalue of J/beta) at the network's branch points, by Newton on theory's branch
    (NaN outside the followed range, in a fold's gap, or where Newton fails)."""
    out = np.full(len(logsnr), np.nan)
    for i, ell in enumerate(logsnr):
        try:
            point = branch.point_at(float(ell))
        except ValueError:
            continue
        if point is not None:
            out[i] = point.eigenvalues[0]
    return out


@dataclass(frozen=True)
class ValidationResult:
    """Theory's and the network's central branch, their comparison (:func:`compare`) and how they
    were measured. ``to_dict()``: the comparison plus data, dynamics, schedule and measurement
    settings; ``table``: one row per network branch point."""

    theory: CriticalTimes
    network: BranchMeasurement
    comparison: dict
    margins_theory: Array
    data: str
    schedule: Schedule
    measure: dict

    @property
    def table(self) -> pd.DataFrame:
        n = self.network
        return pd.DataFrame({"t": n.t, "logsnr": n.logsnr, "margin_theory": self.margins_theory,
                             "margin_network": n.margin, "nonsymmetry_network": n.nonsymmetry})

    def to_dict(self) -> dict:
        return {**self.comparison, "data": self.data, "dynamics": self.network.dynamics,
                "schedule": self.schedule.config(), "measure": self.measure}


def check_options(schedule: Schedule, dynamics: str, n_points: int, t_min: float, window: float) -> float:
    """The checks of :func:`validate_network` that need neither data nor a network (so a command can
    run them before training); returns t_min as a float."""
    if n_points < 3:
        raise ValueError(f"--n-points: must be >= 3, got {n_points}")
    if not (math.isfinite(window) and window > 0):
        raise ValueError(f"--window: must be a number > 0, got {window}")
    if dynamics not in ("sde", "ode"):
        raise ValueError(f"--dynamics: expected sde or ode, got {dynamics!r}")
    t_min = float(schedule.check_t(t_min, "--t-min"))
    if t_min >= schedule.T:
        raise ValueError(f"--t-min: must be < T = {schedule.T:g}, got {t_min}")
    return t_min


def validate_network(dataset: Dataset, schedule: Schedule, denoiser: Denoiser, *, dynamics: str = "sde",
                     n_points: int = 61, t_min: float = 0.02, window: float = 1.0) -> ValidationResult:
    """Follow the central branch of ``denoiser``'s learned drift and of the exact score of ``dataset``
    (its data model, else its finite data) from T down to ``t_min``, and :func:`compare` them.
    ``n_points``: sets the network branch's first step (1 / (n_points - 1) of the logsnr range; the engine
    adapts the steps after it, :func:`follow_central_branch`); ``window``: half-width in logsnr of the comparison window
    around theory's t_c. The network's model-error band is read where the data's E|y - mu|^2 puts the
    linear phase (:func:`symbreak.experiments.measure.branch.model_error_band`)."""
    t_min = check_options(schedule, dynamics, n_points, t_min, window)
    model = dataset.model if dataset.model is not None else dataset.empirical()
    start = time.perf_counter()
    theory = critical_times(model, schedule, dynamics, t_end=t_min)
    seconds_theory = time.perf_counter() - start
    start = time.perf_counter()
    network = follow_central_branch(denoiser, dynamics=dynamics, n_points=n_points, t_range=(t_min, schedule.T),
                                    x_init=schedule.alpha(schedule.T) * model.mean,
                                    second_moment=float(np.trace(model.cov)))
    seconds_network = time.perf_counter() - start
    comparison, margins = compare(theory, network, denoiser, window)
    measure = {"n_points": n_points, "branch_points": len(network.t), "t_range": [t_min, schedule.T],
               "method": network.method, "branch_status": network.config["status"],
               "max_newton_residual": float(network.residual.max()),
               "max_nonsymmetry": float(np.nanmax(network.nonsymmetry)),
               "model_error_band": network.model_error_band,
               "seconds_network": seconds_network, "seconds_theory": seconds_theory}
    return ValidationResult(theory, network, comparison, margins, dataset.name, schedule, measure)


def model_critical_time(dataset: Dataset, denoiser: Denoiser, *, dynamics: str = "sde", n_points: int = 61,
                        t_min: float = 0.02) -> dict:
    """The first event of a model's own margin (theory's rule on its learned drift's central branch, from
    T down to ``t_min``, started at alpha(T) times the data mean, the model-error band set by the data's
    E|y - mu|^2): t_c on every axis, its kind, depth and band, and the events after it."""
    schedule = denoiser.schedule
    t_min = check_options(schedule, dynamics, n_points, t_min, 1.0)
    model = dataset.model if dataset.model is not None else dataset.empirical()
    branch = follow_central_branch(denoiser, dynamics=dynamics, n_points=n_points, t_range=(t_min, schedule.T),
                                   x_init=schedule.alpha(schedule.T) * model.mean,
                                   second_moment=float(np.trace(model.cov)))
    critical = None if branch.critical is None else branch.critical.to_dict()
    return {"critical": critical, "kind": branch.kind, "margin_c": branch.margin_c,
            "model_error_band": branch.model_error_band, "events": [e.to_dict() for e in branch.events],
            "schedule": schedule.config(), "n_points": n_points, "t_range": [t_min, schedule.T]}
