"""The two-delta theory figures (exact scores; no trained network), and the drawing pieces every theory
figure shares (fixed-point diagrams, the drift's flow):

1. two deltas: the potential u(x, t) before, at and after t_c and reverse-SDE trajectories (Fig. 1a);
2. the bifurcation diagram of the two deltas against alpha and t with the drift's flow, and
   d^2u/dx^2(0) / beta against t.

Figure 3 (imperfect bifurcations) is in :mod:`.imperfect_figure`, figure 11 (schedules) in
:mod:`.schedule_figure`. All dynamics are the VP reverse SDE (c = 1) unless a schedule says otherwise;
alpha, t, logsnr as in :mod:`symbreak.theory.schedules`. Fixed-point diagrams come from
:func:`symbreak.theory.bifurcation.fixed_point_diagram`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import (
    CRITICAL_COLOURS,
    STABILITY_STYLE,
    FigureContext,
    FigureOutput,
    Recorder,
    invert_time_axis,
    legend,
    recipe,
)
from symbreak.theory import (
    CriticalTimes,
    DataModel,
    Schedule,
    SymmetricDeltas,
    VPLinear,
    critical_times,
    drift,
    jacobian,
    potential,
)
from symbreak.theory.bifurcation import FixedPointDiagram, fixed_point_diagram

Array = NDArray[np.float64]
T_BEFORE, T_AFTER = 0.45, 0.15            # figure 1: times before and after t_c in generation order
POTENTIAL_STEP, POTENTIAL_HALF = 0.01, 160  # figure 1: x = POTENTIAL_STEP * (-160..160), 0 included exactly
END_COLOURS = {1: "#0072B2", -1: "#E69F00"}
POTENTIAL_COLOURS = ("#56B4E9", CRITICAL_COLOURS["t_c"], "black")  # figure 1 (a): before, at, after t_c
ARROW_LENGTH = 0.045                       # flow arrows, as a fraction of the axes
ALPHA_MARKED = 0.8                         # figure 2: a grid point where x* = +-0.94703858


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def two_delta_critical_times(schedule: Schedule) -> CriticalTimes:
    """Critical times of the deltas at +-1 (followed central branch, reverse SDE)."""
    return critical_times(SymmetricDeltas(1.0), schedule, "sde")


def centre_curvature(model: DataModel, t: float, schedule: Schedule) -> float:
    """d^2u/dx^2(0, t) / beta(t) = -J(0, t) / beta(t) of a 1-D model (u'' = -J)."""
    return -float(jacobian(model, [[0.0]], t, schedule)[0, 0, 0] / schedule.beta(t))


@dataclass(frozen=True)
class FlowField:
    """The generative drift b on a (t, x) mesh (``indexing='ij'``: rows are times)."""

    t: Array
    x: Array
    b: Array


def flow_field(model: DataModel, schedule: Schedule, t: Array, x: Array) -> FlowField:
    """The drift b(x, t) of a 1-D model at every time of ``t`` and state of ``x``."""
    tt, xx = np.meshgrid(t, x, indexing="ij")
    b = np.stack([drift(model, x[:, None], float(ti), schedule)[:, 0] for ti in t])
    return FlowField(tt, xx, b)


def draw_flow(rec: Recorder, ax, flow: FlowField) -> None:
    """Arrows along the generative drift in the (t, x) plane: generation moves t by -dt and x by b dt,
    drawn with a fixed length in axes units (direction only; the column ``b`` holds the drift)."""
    t_span, x_span = float(np.ptp(flow.t[:, 0])), float(np.ptp(flow.x[0]))
    d_t, d_x = -1.0 / t_span, flow.b / x_span
    norm = np.hypot(d_t, d_x)
    u, v = ARROW_LENGTH * t_span * d_t / norm, ARROW_LENGTH * x_span * d_x / norm
    rec.arrows(ax, "drift direction", flow.t.ravel(), flow.x.ravel(), u.ravel(), v.ravel(),
               columns={"b": flow.b.ravel()}, color="0.65", width=0.0035, headwidth=4.0, headlength=4.5,
               headaxislength=4.0, zorder=0.5)


def _same_count_runs(diagram: FixedPointDiagram) -> list[tuple]:
    """The diagram's samples cut into runs of consecutive samples with the same number of fixed points."""
    samples, runs, start = diagram.samples, [], 0
    for end in range(1, len(samples) + 1):
        if end == len(samples) or len(samples[end].points) != len(samples[start].points):
            runs.append(samples[start:end])
            start = end
    return runs


def draw_diagram(rec: Recorder, ax, diagram: FixedPointDiagram, axis: str) -> None:
    """Fixed points against ``axis`` ('t' or 'alpha'): stable solid, unstable dashed. Consecutive samples
    with the same number of fixed points are joined rank by rank."""
    labelled: set[bool] = set()
    branch = 0
    for run in _same_count_runs(diagram):
        for rank in range(len(run[0].points)):
            pts = [s.points[rank] for s in run]
            stable = np.array([p.stable for p in pts])
            for piece in np.split(np.arange(len(run)), np.flatnonzero(np.diff(stable)) + 1):
                st = bool(stable[piece[0]])
                t = np.array([run[j].t for j in piece])
                alpha = np.array([run[j].alpha for j in piece])
                x = np.array([pts[j].x for j in piece])
                lam = np.array([pts[j].eigenvalues_over_beta[0] for j in piece])
                rec.line(ax, "stable fixed points" if st else "unstable fixed points", t if axis == "t" else alpha,
                         x, columns={"branch": branch, "stable": st, "t": t, "alpha": alpha, "eig/beta": lam},
                         legend=st not in labelled, color="black", linestyle=STABILITY_STYLE[st], linewidth=1.4)
                labelled.add(st)
                branch += 1


# ---------------------------------------------------------------------------------------------
# figure 1
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TwoDeltasResult:
    """Figure 1's numbers: the potential u(x, t) - u(0, t) at the three ``times`` (before, at, after t_c) and
    its curvature at 0, and the reverse-SDE paths (every ``stride``-th grid time) with their end signs."""

    schedule: Schedule
    model: SymmetricDeltas
    ct: CriticalTimes
    x: Array
    times: tuple[float, float, float]
    u: tuple[Array, Array, Array]
    curvature: dict[float, float]
    seeds: list[int]
    n_steps: int
    stride: int
    start_config: dict
    t_path: Array
    paths: Array
    ends: NDArray[np.int64]

    @property
    def n_paths(self) -> int:
        return len(self.seeds)

    @property
    def n_plus(self) -> int:
        return int((self.ends == 1).sum())

    def summary(self) -> dict:
        return {"t_c": self.ct.t_c, "alpha_c": self.ct.alpha_c, "t_before": T_BEFORE, "t_after": T_AFTER,
                "u_xx0_over_beta": {f"{t:.10g}": c for t, c in self.curvature.items()},
                "n_paths": self.n_paths, "n_steps": self.n_steps, "ends_plus": self.n_plus,
                "ends_minus": self.n_paths - self.n_plus}

    def config(self) -> dict:
        seeds = self.seeds
        return {"schedule": self.schedule.config(), "data": self.model.config(), "dynamics": "sde",
                "times": list(self.times), "x_grid": {"step": POTENTIAL_STEP, "half_width": POTENTIAL_HALF},
                "sampler": "sde", "n_paths": self.n_paths, "n_steps": self.n_steps,
                "seeds": f"{seeds[0]}-{seeds[-1]} (path k: seed {seeds[0]} + k)", "start": self.start_config,
                "plotted_every": self.stride, "torch_device": "cpu"}


def _two_delta_paths(model: DataModel, schedule: Schedule, seeds: list[int], n_steps: int):
    """Euler-Maruyama paths of the reverse SDE with the exact denoiser from N(0, 1) at T."""
    import torch

    from symbreak.experiments.models.denoisers import ExactDenoiser
    from symbreak.experiments.sampling.grids import uniform_grid
    from symbreak.experiments.sampling.samplers import SAMPLERS
    from symbreak.experiments.sampling.starts import start_state

    start = start_state("noise", seeds, (1,), schedule, schedule.T)
    grid = uniform_grid(schedule, schedule.T, n_steps)
    with torch.no_grad():
        res = SAMPLERS["sde"](ExactDenoiser(model, schedule), start.x, grid, seeds=seeds, return_trajectory=True)
    return start, res


def compute_two_deltas(ctx: FigureContext) -> TwoDeltasResult:
    schedule, model = VPLinear(), SymmetricDeltas(1.0)
    ct = two_delta_critical_times(schedule)
    x = POTENTIAL_STEP * np.arange(-POTENTIAL_HALF, POTENTIAL_HALF + 1)
    times = (T_BEFORE, ct.t_c, T_AFTER)
    u = tuple(potential(model, x[:, None], t, schedule) - potential(model, [[0.0]], t, schedule)[0] for t in times)
    curvature = {t: centre_curvature(model, t, schedule) for t in times}
    n_paths, n_steps = ctx.choose(100, 30), ctx.choose(500, 150)
    stride = max(1, n_steps // 100)
    seeds = list(range(ctx.seed, ctx.seed + n_paths))
    start, res = _two_delta_paths(model, schedule, seeds, n_steps)
    return TwoDeltasResult(schedule, model, ct, x, times, u, curvature, seeds, n_steps, stride, start.config,
                           res.t_grid.numpy()[::stride], res.trajectory[::stride, :, 0].numpy(),
                           np.where(res.x[:, 0].numpy() > 0, 1, -1))


def two_deltas_caption(r: TwoDeltasResult) -> str:
    ct, c = r.ct, r.curvature
    return (
        f"Two equally weighted deltas at ±1, VP linear schedule (beta 0.1 → 20), reverse SDE. (a) The potential "
        f"u(x, t) = beta(t)(−x²/4 − log p_t(x)), shifted so that u(0, t) = 0, before t_c in generation order "
        f"(t = {T_BEFORE:g}: one well at x = 0, ∂²u/∂x²(0)/beta = {c[T_BEFORE]:.3f}), at the critical time "
        f"t_c = {ct.t_c:.4f} (alpha_c = {ct.alpha_c:.4f}; a flat, quartic bottom: curvature {c[ct.t_c]:.1e}) and after "
        f"it (t = {T_AFTER:g}: a double well, curvature {c[T_AFTER]:.3f}). (b) {r.n_paths} Euler–Maruyama "
        f"trajectories of the reverse SDE with the exact denoiser ({r.n_steps} uniform steps from t = 1, N(0, 1) "
        f"starts, seeds {r.seeds[0]}–{r.seeds[-1]}), coloured by the delta they end on ({r.n_plus} at +1, "
        f"{r.n_paths - r.n_plus} at −1): they fluctuate around 0 until t_c (dashed) and split towards ±alpha(t) after "
        f"it. Time runs in generation order (t decreasing to the right).")


@recipe(1, "two_deltas_potential", "Two deltas: the potential u(x, t) across t_c and reverse-SDE trajectories",
        compute=compute_two_deltas)
def draw_two_deltas(r: TwoDeltasResult) -> FigureOutput:
    fig, axes = new_figure(1, 2, 7.2, 2.9)
    ax_u, ax_x = axes[0]
    rec = Recorder()
    rec.axes(ax_u, "a", "x", "u", "potential across $t_c$")
    labels = (f"$t$ = {T_BEFORE:g} > $t_c$", f"$t = t_c$ = {r.ct.t_c:.4f}", f"$t$ = {T_AFTER:g} < $t_c$")
    for t, u, label, colour in zip(r.times, r.u, labels, POTENTIAL_COLOURS):
        rec.line(ax_u, label, r.x, u, columns={"t": t, "u_xx(0)/beta": r.curvature[t]}, color=colour)
    ax_u.set_ylim(min(u.min() for u in r.u) - 0.3, 3.0)
    legend(ax_u, loc="upper center")

    rec.axes(ax_x, "b", "t", "x", "reverse-SDE trajectories")
    for k in range(r.n_paths):
        end = int(r.ends[k])
        rec.line(ax_x, f"ends at {end:+d} ({int((r.ends == end).sum())} paths)".replace("-", "\u2212"), r.t_path,
                 r.paths[:, k], columns={"path": k, "end": end}, legend=k == int(np.argmax(r.ends == end)),
                 color=END_COLOURS[end], linewidth=0.6, alpha=0.55)
    rec.mark(ax_x, r.ct.t_c, "t_c", f"$t_c$ = {r.ct.t_c:.4f}")
    invert_time_axis(ax_x, r.schedule.T)
    legend(ax_x, framed=True, loc="upper left")
    return FigureOutput(fig, rec.frame(), r.summary(), two_deltas_caption(r), r.config())


# ---------------------------------------------------------------------------------------------
# figure 2
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BifurcationResult:
    """Figure 2's numbers: the fixed-point diagram (bisected to ``tol``) on ``n_t`` times plus the one at
    alpha = :data:`ALPHA_MARKED`, the drift's flow, and d^2u/dx^2(0)/beta on ``t_curvature``."""

    schedule: Schedule
    model: SymmetricDeltas
    ct: CriticalTimes
    n_t: int
    tol: float
    diagram: FixedPointDiagram
    flow: FlowField
    t_curvature: Array
    curvature: Array

    def summary(self) -> dict:
        ct, at, pitchfork = self.ct, self.marked(), self.diagram.changes[0]
        return {"t_c": ct.t_c, "alpha_c": ct.alpha_c, "logsnr_c": ct.logsnr_c, "kind": ct.kind,
                "fixed_points_at_alpha_0.8": at.x, "stable_fixed_points_at_alpha_0.8": at.stable,
                "pitchfork_from_fixed_point_count": {"t": pitchfork.t, "alpha": float(self.schedule.alpha(pitchfork.t)),
                                                     "kind": pitchfork.kind},
                "n_times": len(self.diagram.samples)}

    def marked(self):
        """The fixed points at alpha = :data:`ALPHA_MARKED`."""
        return next(s for s in self.diagram.samples if abs(s.alpha - ALPHA_MARKED) < 1e-12)

    def config(self) -> dict:
        return {"schedule": self.schedule.config(), "data": self.model.config(), "dynamics": "sde", "n_t": self.n_t,
                "t_range": [0.01, self.schedule.T], "alpha_marked": ALPHA_MARKED, "bisection_tol": self.tol}


def compute_bifurcation(ctx: FigureContext) -> BifurcationResult:
    schedule, model = VPLinear(), SymmetricDeltas(1.0)
    n_t, tol = ctx.choose(241, 81), ctx.choose(1e-10, 1e-8)
    t_grid = np.append(np.linspace(0.01, schedule.T, n_t), schedule.t_of_alpha(ALPHA_MARKED))
    diagram = fixed_point_diagram(model, schedule, t_grid, tol=tol)
    flow = flow_field(model, schedule, np.linspace(0.04, 0.96, ctx.choose(18, 12)),
                      np.linspace(-1.4, 1.4, ctx.choose(11, 9)))
    t_curvature = np.linspace(0.05, schedule.T, ctx.choose(400, 120))
    curvature = np.array([centre_curvature(model, t, schedule) for t in t_curvature])
    return BifurcationResult(schedule, model, two_delta_critical_times(schedule), n_t, tol, diagram, flow,
                             t_curvature, curvature)


@recipe(2, "bifurcation", "Two deltas: bifurcation diagram, flow field and curvature of the potential",
        compute=compute_bifurcation)
def draw_bifurcation(r: BifurcationResult) -> FigureOutput:
    ct, T = r.ct, r.schedule.T
    fig, axes = new_figure(1, 3, 7.4, 2.7)
    ax_a, ax_t, ax_c = axes[0]
    rec = Recorder()
    rec.axes(ax_a, "a", "alpha", "x*", r"fixed points against $\alpha$")
    draw_diagram(rec, ax_a, r.diagram, "alpha")
    rec.mark(ax_a, ct.alpha_c, "t_c", rf"$\alpha_c$ = {ct.alpha_c:.4f}")
    ax_a.set_xlim(0.0, 1.0)
    legend(ax_a, loc="lower left")

    rec.axes(ax_t, "b", "t", "x*", "fixed points and flow")
    draw_flow(rec, ax_t, r.flow)
    draw_diagram(rec, ax_t, r.diagram, "t")
    rec.mark(ax_t, ct.t_c, "t_c", f"$t_c$ = {ct.t_c:.4f}")
    invert_time_axis(ax_t, T)
    ax_t.set_ylim(-1.5, 1.5)

    rec.axes(ax_c, "c", "t", "u_xx(0)/beta", "curvature at $x = 0$")
    rec.line(ax_c, r"$\partial_x^2 u(0, t)/\beta$", r.t_curvature, r.curvature, legend=False, color="black")
    ax_c.axhline(0.0, color="0.6", linewidth=0.8)
    rec.mark(ax_c, ct.t_c, "t_c", f"$t_c$ = {ct.t_c:.4f}")
    ax_c.set_yscale("symlog", linthresh=1.0)
    invert_time_axis(ax_c, T)
    legend(ax_c, loc="lower left")
    return FigureOutput(fig, rec.frame(), r.summary(), bifurcation_caption(r), r.config())


def bifurcation_caption(r: BifurcationResult) -> str:
    ct = r.ct
    return (
        f"Bifurcation diagram of the two deltas at ±1 (VP linear schedule, reverse SDE). (a) All fixed points of "
        f"the drift against alpha (stable solid, unstable dashed): the centre x = 0 is the only fixed point and "
        f"is stable until alpha_c = {ct.alpha_c:.4f} (alpha_c² = √2 − 1), where it turns unstable and two stable "
        f"branches are born (pitchfork; at alpha = 0.8 they sit at ±{max(r.marked().x):.8f}). (b) The same against "
        f"t, with arrows along the generative drift (generation moves to the right): before t_c = {ct.t_c:.4f} every "
        f"arrow points at the centre, after it away from 0 towards the branches ±x*(t). The fixed-point count "
        f"changes at t = {r.diagram.changes[0].t:.6f}, independently of the margin. (c) The curvature of the "
        f"potential at the centre, ∂²u/∂x²(0)/beta = −(1/2 + (2alpha² − 1)/(alpha² − 1)²), changes sign at t_c "
        f"(symlog axis).")
