"""Trajectory analysis: projections, commitment times, and the cloning (noise-then-denoise) experiment.

- Projections of the states x_t of sampled trajectories on a direction u: the top principal component
  of the data, or a class-separating direction (difference of two class means, or Fisher's LDA).
- Commitment time of a trajectory: with a label at every grid time (the nearest mode alpha(t) m_k for
  data with known modes, or a classifier's class of the denoised estimate D(x_t, t)), the time from
  which the label no longer changes down to t = 0, i.e. the grid time just after its last change.
- Cloning (Biroli et al. 2024): from states x_t at time t, two independent continuations to t = 0
  (a stochastic sampler with independent seeds); phi(t) = P(both end in the same class). For a
  trajectory at x_t ~ p_t and the exact reverse dynamics, phi = E_x[sum_a P(a | x_t = x)^2], which
  for two Gaussians +-m is Biroli's closed form (``theory.biroli``).
- Forward-backward (Sclocchi, Favero & Wyart 2025): a clean point y noised to x_t and denoised back;
  the probability that its class survives. With the exact score x_t is a sample of p_t and the end and
  y are independent draws of p(y | x_t), so the retention equals the cloning probability for any data.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike, NDArray
from scipy import linalg
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import denoiser_device
from symbreak.experiments.sampling.grids import uniform_grid
from symbreak.experiments.sampling.samplers import Sampler, SampleResult, get_sampler
from symbreak.experiments.sampling.seeds import parse_seeds, per_sample_noise
from symbreak.experiments.sampling.starts import start_state
from symbreak.theory import Schedule
from symbreak.theory.checks import finite_array

Array = NDArray[np.float64]
Labels = NDArray[np.int64]
Assign = Callable[[Array, float], Labels]
"""A labelling of states: (x (B, d) float64, t) -> labels (B,)."""


# --------------------------------------------------------------------------------------------
# directions and projections
# --------------------------------------------------------------------------------------------
def _data(x: ArrayLike, name: str = "x") -> Array:
    x = finite_array(name, np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1), ndim=2)
    if x.shape[0] < 2:
        raise ValueError(f"{name}: needs at least 2 samples, got {x.shape[0]}")
    return x


def _unit(v: Array) -> Array:
    """v / |v| with the sign fixed so that the largest |component| is positive (reproducible)."""
    v = v / np.linalg.norm(v)
    return v * np.sign(v[np.argmax(np.abs(v))])


def principal_direction(x: ArrayLike) -> Array:
    """The top principal component of data x (N, d): the top right singular vector of x - mean."""
    x = _data(x)
    return _unit(np.linalg.svd(x - x.mean(0), full_matrices=False)[2][0])


def mean_difference_direction(x: ArrayLike, labels: ArrayLike, classes: tuple[int, int] | None = None) -> Array:
    """(mean of class b - mean of class a) / |.| for ``classes`` = (a, b) (default: the two labels present)."""
    x, labels = _data(x), np.asarray(labels)
    present = np.unique(labels)
    if classes is None:
        if present.size != 2:
            raise ValueError(f"classes: the labels hold {present.size} classes; name the two to separate")
        classes = (int(present[0]), int(present[1]))
    for c in classes:
        if c not in present:
            raise ValueError(f"classes: class {c} has no samples; present: {present.tolist()}")
    diff = x[labels == classes[1]].mean(0) - x[labels == classes[0]].mean(0)
    if not np.linalg.norm(diff) > 0:
        raise ValueError(f"classes: classes {classes} have the same mean; no separating direction")
    return diff / np.linalg.norm(diff)


def lda_direction(x: ArrayLike, labels: ArrayLike, ridge: float = 1e-6) -> Array:
    """Fisher's discriminant direction: the top generalised eigenvector of S_b u = lam (S_w + ridge I) u
    (between- and within-class scatter; ``ridge`` times the mean variance keeps S_w invertible)."""
    x, labels = _data(x), np.asarray(labels)
    mu = x.mean(0)
    s_w = np.zeros((x.shape[1],) * 2)
    s_b = np.zeros_like(s_w)
    for c in np.unique(labels):
        xc = x[labels == c]
        dc = xc - xc.mean(0)
        s_w += dc.T @ dc
        s_b += len(xc) * np.outer(xc.mean(0) - mu, xc.mean(0) - mu)
    s_w += ridge * max(np.trace(s_w) / x.shape[1], 1e-300) * np.eye(x.shape[1])
    return _unit(linalg.eigh(s_b, s_w)[1][:, -1])


def _states(trajectory: torch.Tensor | ArrayLike) -> Array:
    """A trajectory (n + 1, B, *shape) as float64 (n + 1, B, d)."""
    traj = np.asarray(trajectory.detach().cpu() if isinstance(trajectory, torch.Tensor) else trajectory,
                      dtype=np.float64)
    if traj.ndim < 3:
        raise ValueError(f"trajectory: expected shape (n_times, B, *shape), got {traj.shape}")
    return traj.reshape(traj.shape[0], traj.shape[1], -1)


def _alphas(schedule: Schedule, t_grid: Array) -> Array:
    """alpha on a grid that may end at t = 0 (alpha = 1)."""
    out = np.ones_like(t_grid)
    out[t_grid > 0] = schedule.alpha(t_grid[t_grid > 0])
    return out


def project(trajectory: torch.Tensor | ArrayLike, t_grid: ArrayLike, direction: ArrayLike, *,
            schedule: Schedule | None = None, center: ArrayLike | None = None) -> Array:
    """<x_t - alpha(t) center, u> for every state of the trajectory: shape (n + 1, B).

    ``u`` is ``direction`` normalised; ``center`` (a data-space point such as the data mean, needs the
    schedule) moves with the signal as alpha(t) center. Without it the plain projection <x_t, u>.
    """
    traj, t = _states(trajectory), np.asarray(t_grid, dtype=np.float64)
    u = finite_array("direction", direction).reshape(-1)
    if u.shape[0] != traj.shape[2] or not np.linalg.norm(u) > 0:
        raise ValueError(f"direction: expected a non-zero vector of size {traj.shape[2]}, got shape {u.shape}")
    if t.shape != (traj.shape[0],):
        raise ValueError(f"t_grid: expected {traj.shape[0]} times to match the trajectory, got {t.shape}")
    proj = traj @ (u / np.linalg.norm(u))
    if center is None:
        return proj
    if schedule is None:
        raise ValueError("schedule: needed to move the center with the signal (alpha(t) center)")
    c = finite_array("center", center).reshape(-1) @ (u / np.linalg.norm(u))
    return proj - _alphas(schedule, t)[:, None] * c


# --------------------------------------------------------------------------------------------
# labels and commitment times
# --------------------------------------------------------------------------------------------
def nearest_mode_assign(modes: ArrayLike, schedule: Schedule) -> Assign:
    """Label states by the nearest scaled mode: argmin_k |x - alpha(t) m_k| (alpha = 1 at t = 0)."""
    m = finite_array("modes", np.asarray(modes, dtype=np.float64).reshape(np.shape(modes)[0], -1), ndim=2)

    def assign(x: Array, t: float) -> Labels:
        alpha = float(_alphas(schedule, np.array([t]))[0])
        d2 = (x * x).sum(1)[:, None] - 2 * alpha * x @ m.T + alpha * alpha * (m * m).sum(1)
        return np.argmin(d2, axis=1).astype(np.int64)
    return assign


def denoised_class(denoiser: Denoiser, classify: Callable[[Array], ArrayLike]) -> Assign:
    """Label states by a clean-data classifier applied to the denoised estimate D(x_t, t) (x itself at t = 0)."""
    def assign(x: Array, t: float) -> Labels:
        if t > 0:
            xs = torch.as_tensor(x, device=denoiser_device(denoiser)).reshape((x.shape[0],) + tuple(denoiser.shape))
            with torch.no_grad():
                x = denoiser(xs, t).reshape(x.shape[0], -1).cpu().numpy()
        return np.asarray(classify(x), dtype=np.int64)
    return assign


def trajectory_labels(trajectory: torch.Tensor | ArrayLike, t_grid: ArrayLike, assign: Assign) -> Labels:
    """The label of every state: shape (n + 1, B)."""
    traj, t = _states(trajectory), np.asarray(t_grid, dtype=np.float64)
    if t.shape != (traj.shape[0],):
        raise ValueError(f"t_grid: expected {traj.shape[0]} times to match the trajectory, got {t.shape}")
    return np.stack([assign(traj[k], float(t[k])) for k in range(len(t))])


@dataclass(frozen=True)
class Commitment:
    """Per trajectory: the final label, the first grid index from which the label stays final
    (0 if it never changed) and that grid time, t_commit = t_grid[index]."""

    final: Labels
    index: NDArray[np.int64]
    t_commit: Array

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"sample": np.arange(len(self.final)), "final": self.final, "index": self.index,
                             "t_commit": self.t_commit})


def commitment_times(labels: ArrayLike, t_grid: ArrayLike) -> Commitment:
    """Commitment from labels (n + 1, B) on a decreasing grid: index k* = 1 + the last k whose label
    differs from the final one (0 if none), t_commit = t_grid[k*], the time after the last change."""
    lab, t = np.asarray(labels), np.asarray(t_grid, dtype=np.float64)
    if lab.ndim != 2 or t.shape != (lab.shape[0],):
        raise ValueError(f"labels: expected shape ({t.shape[0]}, B) to match t_grid, got {lab.shape}")
    differs = lab != lab[-1]
    n = lab.shape[0]
    last = np.where(differs.any(0), n - 1 - np.argmax(differs[::-1], axis=0), -1)
    index = (last + 1).astype(np.int64)
    return Commitment(lab[-1].astype(np.int64), index, t[index])


@dataclass(frozen=True)
class TrajectoryAnalysis:
    """Projections (n + 1, B), labels (n + 1, B) and commitment of sampled trajectories on t_grid."""

    t_grid: Array
    projection: Array
    labels: Labels
    commitment: Commitment

    def table(self) -> pd.DataFrame:
        """Long format: one row per (sample, grid time)."""
        n, b = self.projection.shape
        return pd.DataFrame({"sample": np.tile(np.arange(b), n), "step": np.repeat(np.arange(n), b),
                             "t": np.repeat(self.t_grid, b), "projection": self.projection.ravel(),
                             "label": self.labels.ravel()})


def analyse_trajectories(result: SampleResult, assign: Assign, direction: ArrayLike, *,
                         schedule: Schedule | None = None, center: ArrayLike | None = None) -> TrajectoryAnalysis:
    """Projections, labels and commitment times of a sampler run made with ``return_trajectory=True``."""
    if result.trajectory is None:
        raise ValueError("result: has no trajectory; run the sampler with return_trajectory=True")
    t = result.t_grid.detach().cpu().numpy().astype(np.float64)
    labels = trajectory_labels(result.trajectory, t, assign)
    return TrajectoryAnalysis(t, project(result.trajectory, t, direction, schedule=schedule, center=center),
                              labels, commitment_times(labels, t))


# --------------------------------------------------------------------------------------------
# cloning
# --------------------------------------------------------------------------------------------
def derived_seeds(seeds: Sequence[int], *keys: int) -> list[int]:
    """Independent seeds for (seed, *keys), from numpy's SeedSequence, in [0, 2^63)."""
    return [int(np.random.SeedSequence([int(s), *map(int, keys)]).generate_state(1, np.uint64)[0] >> np.uint64(1))
            for s in seeds]


@dataclass(frozen=True)
class CloneOutcome:
    """Classes of the two continuations (B,) each and the share that agree, with its binomial std error."""

    t: float
    class_a: Labels
    class_b: Labels

    @property
    def p_same(self) -> float:
        return float(np.mean(self.class_a == self.class_b))

    @property
    def stderr(self) -> float:
        p = self.p_same
        return math.sqrt(max(p * (1 - p), 1e-300) / len(self.class_a))


def stochastic_sampler(sampler: str, opts: dict, what: str) -> Sampler:
    """The sampler ``sampler``, refused unless it draws fresh noise with ``opts`` (``what`` needs it)."""
    run = get_sampler(sampler)
    if not run.stochastic(**run.resolve_options(opts)):
        raise ValueError(f"sampler: {what} needs a stochastic sampler (sde, ddpm, ddim with eta > 0), got {sampler!r}")
    return run


def clone(denoiser: Denoiser, x_t: torch.Tensor | ArrayLike, t: float, classify: Callable[[Array], ArrayLike], *,
          seeds: Sequence[int] | str, n_steps: int = 200, sampler: str = "sde", **opts) -> CloneOutcome:
    """Two independent continuations of states x_t (B, *shape) from t to 0 on a uniform grid of
    ``n_steps`` steps with a stochastic ``sampler`` (step noise from seeds derived from (seed, 1) and
    (seed, 2)), each end classified by ``classify`` ((B, d) -> labels)."""
    run = stochastic_sampler(sampler, opts, "cloning")
    seeds = parse_seeds(seeds, "seeds")
    grid = uniform_grid(denoiser.schedule, t, n_steps)
    x_t = torch.as_tensor(x_t, dtype=torch.float64, device=denoiser_device(denoiser))
    ends = [run(denoiser, x_t, grid, seeds=derived_seeds(seeds, branch), **opts).x for branch in (1, 2)]
    a, b = (np.asarray(classify(e.reshape(e.shape[0], -1).cpu().numpy()), dtype=np.int64) for e in ends)
    return CloneOutcome(float(grid[0]), a, b)


@dataclass(frozen=True)
class CloningResult:
    """phi(t) measured at times t (with tau = -log alpha) and, where given, the theory's phi(tau)."""

    t: Array
    tau: Array
    p_same: Array
    stderr: Array
    n: int
    phi_theory: Array | None

    def table(self) -> pd.DataFrame:
        cols = {"t": self.t, "tau": self.tau, "p_same": self.p_same, "stderr": self.stderr,
                "n": np.full(len(self.t), self.n)}
        if self.phi_theory is not None:
            cols["phi_theory"] = self.phi_theory
        return pd.DataFrame(cols)


@dataclass(frozen=True)
class ReferenceRun:
    """Reverse-process paths from N(0, I) at T: the decreasing ``grid`` (a uniform grid with the cloning
    times inserted), the sampler's result with its trajectory, and (when a classifier was given) the class
    of the denoised estimate D(x_t, t) at every grid time, the end state's at t = 0 (``labels`` (n + 1, B))."""

    grid: Array
    result: SampleResult
    labels: Labels | None

    def states_at(self, t: float) -> torch.Tensor:
        """The paths' states at the grid time ``t`` (one of the inserted times)."""
        return self.result.trajectory[int(np.flatnonzero(self.grid == t)[0])]


def _labels_callback(classify: Callable[[Array], ArrayLike], out: list[Labels]) -> Callable:
    """A sampler callback that appends classify(D(x_t, t)) (the estimate the step used) to ``out``."""
    def record(info) -> None:
        d = info.denoised.reshape(info.denoised.shape[0], -1).detach().cpu().numpy().astype(np.float64)
        out.append(np.asarray(classify(d), dtype=np.int64))
    return record


def reference_run(denoiser: Denoiser, times: ArrayLike, *, seeds: Sequence[int] | str, n_steps: int = 400,
                  sampler: str = "sde", classify: Callable[[Array], ArrayLike] | None = None,
                  **opts) -> ReferenceRun:
    """One run per seed from N(0, I) at T on a uniform grid of ``n_steps`` steps with ``times`` inserted,
    trajectory kept; ``classify`` labels D(x_t, t) along the way (from the sampler's own evaluations, so
    the labels cost no extra network call) for :func:`commitment_times`."""
    schedule = denoiser.schedule
    ts = np.atleast_1d(finite_array("times", times))
    seeds = parse_seeds(seeds, "seeds")
    grid = np.union1d(uniform_grid(schedule, schedule.T, n_steps).numpy(), schedule.check_t(ts, "times"))[::-1].copy()
    start = start_state("noise", seeds, denoiser.shape, schedule, schedule.T, device=denoiser_device(denoiser)).x
    labels: list[Labels] = []
    callback = None if classify is None else _labels_callback(classify, labels)
    with torch.no_grad():
        ref = get_sampler(sampler)(denoiser, start, grid, seeds=seeds, return_trajectory=True, callback=callback,
                                   **opts)
    if classify is not None:
        labels.append(np.asarray(classify(ref.x.reshape(len(seeds), -1).cpu().numpy()), dtype=np.int64))
    return ReferenceRun(grid, ref, None if classify is None else np.stack(labels))


def continuation_steps(t: float, n_steps: int, T: float) -> int:
    """Steps of a continuation from t to 0: as many as a uniform ``n_steps`` grid on [0, T] spends there, >= 20."""
    return max(20, round(n_steps * t / T))


def clone_along(denoiser: Denoiser, ref: ReferenceRun, times: ArrayLike, classify: Callable[[Array], ArrayLike], *,
                seeds: Sequence[int] | str, n_steps: int = 400, sampler: str = "sde", **opts) -> list[CloneOutcome]:
    """:func:`clone` of the reference paths' states at each of ``times`` (decreasing), with
    :func:`continuation_steps` steps and step noise from seeds derived from (seed, 3, j)."""
    seeds = parse_seeds(seeds, "seeds")
    ts = np.sort(np.atleast_1d(finite_array("times", times)))[::-1]
    T = denoiser.schedule.T
    return [clone(denoiser, ref.states_at(float(t)), float(t), classify, seeds=derived_seeds(seeds, 3, j),
                  n_steps=continuation_steps(float(t), n_steps, T), sampler=sampler, **opts)
            for j, t in enumerate(ts)]


def forward_backward(denoiser: Denoiser, y: ArrayLike, t: float, classify: Callable[[Array], ArrayLike], *,
                     seeds: Sequence[int] | str, n_steps: int = 200, sampler: str = "sde", **opts) -> CloneOutcome:
    """Sclocchi, Favero & Wyart (2025): clean points y (B, d) noised to x_t = alpha(t) y + sigma(t) eps
    (eps from the seeds' ``data`` stream), denoised back to 0 with a stochastic ``sampler`` on a uniform
    grid of ``n_steps`` steps (step noise from seeds derived from (seed, 1)); ``class_a`` = classify(y),
    ``class_b`` the class of the end, so ``p_same`` is the probability that the class survives."""
    run = stochastic_sampler(sampler, opts, "forward-backward")
    seeds = parse_seeds(seeds, "seeds")
    y = np.asarray(finite_array("y", y), dtype=np.float64).reshape(len(seeds), -1)
    schedule, device = denoiser.schedule, denoiser_device(denoiser)
    grid = uniform_grid(schedule, t, n_steps)
    eps = per_sample_noise(seeds, denoiser.shape, device, stream="data")
    y_t = torch.as_tensor(y, device=device).reshape(eps.shape)
    x_t = float(schedule.alpha(float(grid[0]))) * y_t + float(schedule.sigma(float(grid[0]))) * eps
    with torch.no_grad():
        end = run(denoiser, x_t, grid, seeds=derived_seeds(seeds, 1), **opts).x
    a = np.asarray(classify(y), dtype=np.int64)
    b = np.asarray(classify(end.reshape(len(seeds), -1).cpu().numpy()), dtype=np.int64)
    return CloneOutcome(float(grid[0]), a, b)


def cloning_experiment(denoiser: Denoiser, times: ArrayLike, classify: Callable[[Array], ArrayLike], *,
                       seeds: Sequence[int] | str, n_steps: int = 400, sampler: str = "sde",
                       phi: Callable[[Array], ArrayLike] | None = None, **opts) -> CloningResult:
    """The cloning curve: one reference run per seed from N(0, I) at T on a uniform grid of ``n_steps``
    steps with the ``times`` inserted (:func:`reference_run`); at each time its states are cloned
    (:func:`clone_along`). ``phi`` maps tau to the theory curve.
    """
    schedule = denoiser.schedule
    ts = np.sort(schedule.check_t(np.atleast_1d(finite_array("times", times)), "times"))[::-1]
    seeds = parse_seeds(seeds, "seeds")
    ref = reference_run(denoiser, ts, seeds=seeds, n_steps=n_steps, sampler=sampler, **opts)
    outcomes = clone_along(denoiser, ref, ts, classify, seeds=seeds, n_steps=n_steps, sampler=sampler, **opts)
    tau = schedule.tau(ts)
    return CloningResult(ts, tau, np.array([o.p_same for o in outcomes]), np.array([o.stderr for o in outcomes]),
                         len(seeds), None if phi is None else np.asarray(phi(tau), dtype=np.float64))
