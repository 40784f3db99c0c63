"""The theory figures (exact scores and the Gaussian approximation; no trained network):

1. two deltas: the potential u(x, t) before, at and after t_c and reverse-SDE trajectories (Fig. 1a);
2. the bifurcation diagram of the two deltas against alpha and t with the drift's flow, and
   d^2u/dx^2(0) / beta against t;
3. an asymmetric mixture and digits: imperfect pitchfork, folds and successive bifurcations along the
   followed branch, exact score against the Gaussian approximation;
11. critical times across schedules on the logsnr axis.

All dynamics are the VP reverse SDE (c = 1) unless a schedule says otherwise; alpha, t, logsnr as in
:mod:`symbreak.theory.schedules`.
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
    recipe,
)
from symbreak.theory import (
    VE,
    CriticalTimes,
    DataModel,
    DiscreteDDPM,
    FixedPoints,
    GaussianMixture,
    Schedule,
    SymmetricDeltas,
    VPCosine,
    VPLinear,
    critical_times,
    drift,
    fixed_points_1d,
    gaussian_critical_times,
    gaussian_margin,
    jacobian,
    normalised_jacobian_eigenvalues,
    potential,
)

Array = NDArray[np.float64]
T_BEFORE, T_AFTER = 0.45, 0.15            # figure 1: times before and after t_c in generation order
POTENTIAL_STEP, POTENTIAL_HALF = 0.01, 160  # figure 1: x = POTENTIAL_STEP * (-160..160), 0 included exactly
END_COLOURS = {1: "#0072B2", -1: "#E69F00"}
BRANCH_COLOUR = "#56B4E9"
GAUSSIAN_COLOUR = "#009E73"
ARROW_LENGTH = 0.045                       # flow arrows, as a fraction of the axes
ALPHA_MARKED = 0.8                         # figure 2: a grid point where x* = +-0.94703858
DIGITS_WINDOW = (0.15, 0.7)                # figure 3: the digits margins are shown for t in this window
DIGITS_QUICK_N, DIGITS_K = 200, 3          # figure 3: exact-score subset in quick mode, eigenvalues shown
LOGSNR_WINDOW = (-6.0, 4.0)                # figure 11


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def two_delta_critical_times(schedule: Schedule) -> CriticalTimes:
    """Critical times of the deltas at +-1 (followed central branch, reverse SDE)."""
    return critical_times(SymmetricDeltas(1.0), schedule, "sde")


@dataclass(frozen=True)
class CountChange:
    """A time where the number of fixed points of a 1-D drift changes, bisected to ``tol``: a pitchfork
    (``kind`` 'crossing': the new points are born at an existing one) or a fold (a pair born apart
    from every existing point). ``n_before`` / ``n_after`` in generation order (t decreasing)."""

    t: float
    x: float
    kind: str
    n_before: int
    n_after: int


@dataclass(frozen=True)
class FixedPointDiagram:
    """Every fixed point of a 1-D model at each sample time (generation order: t decreasing), with two
    extra samples ``tol`` apart around every change in their number (so branches meet their birth
    points), and the changes themselves."""

    samples: tuple[FixedPoints, ...]
    changes: tuple[CountChange, ...]


def fixed_point_diagram(model: DataModel, schedule: Schedule, t_grid: Array, *, tol: float = 1e-9,
                        n_refine: int = 10, n_grid: int = 1001) -> FixedPointDiagram:
    """:func:`fixed_points_1d` on ``t_grid``. Each grid cell where the number of fixed points changes is
    bisected down to ``tol`` (one change per cell is resolved) and sampled at ``n_refine`` geometrically
    spaced distances on either side, so that square-root branches near a pitchfork or fold are drawn
    smoothly."""
    def at(t: float) -> FixedPoints:
        return fixed_points_1d(model, float(t), schedule, n_grid=n_grid)

    grid = [at(t) for t in np.unique(t_grid)[::-1]]
    samples, changes = list(grid), []
    for a, b in zip(grid[:-1], grid[1:]):
        if len(a.points) == len(b.points):
            continue
        lo, hi = b.t, a.t
        while a.t - b.t > tol:
            mid = at(0.5 * (a.t + b.t))
            a, b = (mid, b) if len(mid.points) == len(a.points) else (a, mid)
        change = _count_change(a, b)
        changes.append(change)
        offsets = np.geomspace(10.0 * tol, hi - lo, n_refine)
        samples += [a, b] + [at(t) for t in np.concatenate([change.t + offsets, change.t - offsets]) if lo < t < hi]
    return FixedPointDiagram(tuple(sorted(samples, key=lambda fp: -fp.t)), tuple(changes))


def _count_change(a: FixedPoints, b: FixedPoints) -> CountChange:
    """Where the closest pair of the sample with more points sits, and whether the other sample has a
    point there (pitchfork) or not (fold)."""
    more, fewer = (a, b) if len(a.points) > len(b.points) else (b, a)
    x = np.array(more.x)
    i = int(np.argmin(np.diff(x)))
    loc = 0.5 * (x[i] + x[i + 1])
    near = any(abs(p - loc) <= 1e-2 * (1.0 + abs(loc)) for p in fewer.x)
    return CountChange(0.5 * (a.t + b.t), float(loc), "crossing" if near else "fold", len(a.points), len(b.points))


def draw_diagram(rec: Recorder, ax, diagram: FixedPointDiagram, axis: str) -> None:
    """Fixed points against ``axis`` ('t' or 'alpha'): stable solid, unstable dashed. Consecutive samples
    with the same number of fixed points are joined rank by rank."""
    samples = diagram.samples
    labelled: set[bool] = set()
    branch, start = 0, 0
    for end in range(1, len(samples) + 1):
        if end < len(samples) and len(samples[end].points) == len(samples[start].points):
            continue
        run = samples[start:end]
        for rank in range(len(run[0].points)):
            pts = [s.points[rank] for s in run]
            stable = np.array([p.stable for p in pts])
            cuts = np.flatnonzero(np.diff(stable)) + 1
            for piece in np.split(np.arange(len(run)), cuts):
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
        start = end


def draw_flow(rec: Recorder, ax, model: DataModel, schedule: Schedule, t: Array, x: Array) -> None:
    """Arrows along the generative drift in the (t, x) plane: generation moves t by -dt and x by b dt,
    drawn with a fixed length in axes units (direction only; the column ``b`` holds the drift)."""
    tt, xx = np.meshgrid(t, x, indexing="ij")
    b = np.stack([drift(model, x[:, None], float(ti), schedule)[:, 0] for ti in t])
    t_span, x_span = float(np.ptp(t)), float(np.ptp(x))
    d_t, d_x = -1.0 / t_span, b / x_span
    norm = np.hypot(d_t, d_x)
    u, v = ARROW_LENGTH * t_span * d_t / norm, ARROW_LENGTH * x_span * d_x / norm
    rec.arrows(ax, "drift direction", tt.ravel(), xx.ravel(), u.ravel(), v.ravel(), columns={"b": b.ravel()},
               color="0.65", width=0.0035, headwidth=4.0, headlength=4.5, headaxislength=4.0, zorder=0.5)


def _finish_legend(ax, framed: bool = False, **kw) -> None:
    """The legend; ``framed`` puts it on a white box (over busy panels)."""
    frame = {"frameon": True, "framealpha": 0.9, "edgecolor": "none"} if framed else {}
    ax.legend(**{"loc": "best", "handlelength": 2.2, **frame, **kw})


def _num(value: float, digits: int = 4) -> str:
    """A number for text, without a spurious '-0.0000'."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# figure 1
# ---------------------------------------------------------------------------------------------
@recipe(1, "two_deltas_potential", "Two deltas: the potential u(x, t) across t_c and reverse-SDE trajectories")
def figure_two_deltas(ctx: FigureContext) -> FigureOutput:
    import torch

    from symbreak.experiments.models.denoisers import ExactDenoiser
    from symbreak.experiments.sampling.grids import uniform_grid
    from symbreak.experiments.sampling.samplers import SAMPLERS
    from symbreak.experiments.sampling.starts import start_state

    schedule, model = VPLinear(), SymmetricDeltas(1.0)
    ct = two_delta_critical_times(schedule)
    fig, axes = new_figure(1, 2, 7.2, 2.9)
    ax_u, ax_x = axes[0]
    rec = Recorder()

    rec.axes(ax_u, "a", "x", "u", "potential across $t_c$")
    x = POTENTIAL_STEP * np.arange(-POTENTIAL_HALF, POTENTIAL_HALF + 1)
    curvature = {}
    curves = [(T_BEFORE, f"$t$ = {T_BEFORE:g} > $t_c$", "#56B4E9"),
              (ct.t_c, f"$t = t_c$ = {ct.t_c:.4f}", CRITICAL_COLOURS["t_c"]),
              (T_AFTER, f"$t$ = {T_AFTER:g} < $t_c$", "black")]
    for t, label, colour in curves:
        u = potential(model, x[:, None], t, schedule) - potential(model, [[0.0]], t, schedule)[0]
        curvature[t] = -float(jacobian(model, [[0.0]], t, schedule)[0, 0, 0] / schedule.beta(t))  # u'' = -J
        rec.line(ax_u, label, x, u, columns={"t": t, "u_xx(0)/beta": curvature[t]}, color=colour)
    lowest = min(line.get_ydata().min() for line in ax_u.get_lines())
    ax_u.set_ylim(lowest - 0.3, 3.0)
    _finish_legend(ax_u, loc="upper center")

    n_paths, n_steps = ctx.choose(100, 30), ctx.choose(500, 150)
    stride = max(1, n_steps // 100)
    seeds = list(range(ctx.seed, ctx.seed + n_paths))
    start = start_state("noise", seeds, (1,), schedule, schedule.T)
    grid = uniform_grid(schedule, schedule.T, n_steps)
    with torch.no_grad():
        res = SAMPLERS["sde"](ExactDenoiser(model, schedule), start.x, grid, seeds=seeds, return_trajectory=True)
    t_path = res.t_grid.numpy()[::stride]
    paths = res.trajectory[::stride, :, 0].numpy()
    ends = np.where(res.x[:, 0].numpy() > 0, 1, -1)
    rec.axes(ax_x, "b", "t", "x", "reverse-SDE trajectories")
    for k in range(n_paths):
        end = int(ends[k])
        rec.line(ax_x, f"ends at {end:+d} ({int((ends == end).sum())} paths)".replace("-", "\u2212"), t_path,
                 paths[:, k], columns={"path": k, "end": end}, legend=k == int(np.argmax(ends == end)),
                 color=END_COLOURS[end], linewidth=0.6, alpha=0.55)
    rec.mark(ax_x, ct.t_c, "t_c", f"$t_c$ = {ct.t_c:.4f}")
    invert_time_axis(ax_x, schedule.T)
    _finish_legend(ax_x, framed=True, loc="upper left")

    n_plus = int((ends == 1).sum())
    summary = {"t_c": ct.t_c, "alpha_c": ct.alpha_c, "t_before": T_BEFORE, "t_after": T_AFTER,
               "u_xx0_over_beta": {f"{t:.10g}": c for t, c in curvature.items()},
               "n_paths": n_paths, "n_steps": n_steps, "ends_plus": n_plus, "ends_minus": n_paths - n_plus}
    caption = (
        f"Two equally weighted deltas at ±1, VP linear schedule (beta 0.1 → 20), reverse SDE. (a) The potential "
        f"u(x, t) = beta(t)(−x²/4 − log p_t(x)), shifted so that u(0, t) = 0, before t_c in generation order "
        f"(t = {T_BEFORE:g}: one well at x = 0, ∂²u/∂x²(0)/beta = {curvature[T_BEFORE]:.3f}), at the critical time "
        f"t_c = {ct.t_c:.4f} (alpha_c = {ct.alpha_c:.4f}; a flat, quartic bottom: curvature {curvature[ct.t_c]:.1e}) and after "
        f"it (t = {T_AFTER:g}: a double well, curvature {curvature[T_AFTER]:.3f}). (b) {n_paths} Euler–Maruyama "
        f"trajectories of the reverse SDE with the exact denoiser ({n_steps} uniform steps from t = 1, N(0, 1) "
        f"starts, seeds {seeds[0]}–{seeds[-1]}), coloured by the delta they end on ({n_plus} at +1, "
        f"{n_paths - n_plus} at −1): they fluctuate around 0 until t_c (dashed) and split towards ±alpha(t) after "
        f"it. Time runs in generation order (t decreasing to the right).")
    config = {"schedule": schedule.config(), "data": model.config(), "dynamics": "sde", "times": [T_BEFORE, ct.t_c,
              T_AFTER], "x_grid": {"step": POTENTIAL_STEP, "half_width": POTENTIAL_HALF}, "sampler": "sde",
              "n_paths": n_paths, "n_steps": n_steps, "seeds": f"{seeds[0]}-{seeds[-1]} (path k: seed {seeds[0]} + k)",
              "start": start.config,
              "plotted_every": stride, "torch_device": "cpu"}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 2
# ---------------------------------------------------------------------------------------------
@recipe(2, "bifurcation", "Two deltas: bifurcation diagram, flow field and curvature of the potential")
def figure_bifurcation(ctx: FigureContext) -> FigureOutput:
    schedule, model = VPLinear(), SymmetricDeltas(1.0)
    ct = two_delta_critical_times(schedule)
    n_t = ctx.choose(241, 81)
    t_grid = np.append(np.linspace(0.01, schedule.T, n_t), schedule.t_of_alpha(ALPHA_MARKED))
    diagram = fixed_point_diagram(model, schedule, t_grid, tol=ctx.choose(1e-10, 1e-8))
    fig, axes = new_figure(1, 3, 7.4, 2.7)
    ax_a, ax_t, ax_c = axes[0]
    rec = Recorder()

    rec.axes(ax_a, "a", "alpha", "x*", r"fixed points against $\alpha$")
    draw_diagram(rec, ax_a, diagram, "alpha")
    rec.mark(ax_a, ct.alpha_c, "t_c", rf"$\alpha_c$ = {ct.alpha_c:.4f}")
    ax_a.set_xlim(0.0, 1.0)
    _finish_legend(ax_a, loc="lower left")

    rec.axes(ax_t, "b", "t", "x*", "fixed points and flow")
    draw_flow(rec, ax_t, model, schedule, np.linspace(0.04, 0.96, ctx.choose(18, 12)),
              np.linspace(-1.4, 1.4, ctx.choose(11, 9)))
    draw_diagram(rec, ax_t, diagram, "t")
    rec.mark(ax_t, ct.t_c, "t_c", f"$t_c$ = {ct.t_c:.4f}")
    invert_time_axis(ax_t, schedule.T)
    ax_t.set_ylim(-1.5, 1.5)

    rec.axes(ax_c, "c", "t", "u_xx(0)/beta", "curvature at $x = 0$")
    t_c_grid = np.linspace(0.05, schedule.T, ctx.choose(400, 120))
    curv = np.array([-jacobian(model, [[0.0]], t, schedule)[0, 0, 0] / schedule.beta(t) for t in t_c_grid])
    rec.line(ax_c, r"$\partial_x^2 u(0, t)/\beta$", t_c_grid, curv, legend=False, color="black")
    ax_c.axhline(0.0, color="0.6", linewidth=0.8)
    rec.mark(ax_c, ct.t_c, "t_c", f"$t_c$ = {ct.t_c:.4f}")
    ax_c.set_yscale("symlog", linthresh=1.0)
    invert_time_axis(ax_c, schedule.T)
    _finish_legend(ax_c, loc="lower left")

    at = next(s for s in diagram.samples if abs(s.alpha - ALPHA_MARKED) < 1e-12)
    pitchfork = diagram.changes[0]
    summary = {"t_c": ct.t_c, "alpha_c": ct.alpha_c, "logsnr_c": ct.logsnr_c, "kind": ct.kind,
               "fixed_points_at_alpha_0.8": at.x, "stable_fixed_points_at_alpha_0.8": at.stable,
               "pitchfork_from_fixed_point_count": {"t": pitchfork.t, "alpha": float(schedule.alpha(pitchfork.t)),
                                                    "kind": pitchfork.kind},
               "n_times": len(diagram.samples)}
    caption = (
        f"Bifurcation diagram of the two deltas at ±1 (VP linear schedule, reverse SDE). (a) All fixed points of "
        f"the drift against alpha (stable solid, unstable dashed): the centre x = 0 is the only fixed point and "
        f"is stable until alpha_c = {ct.alpha_c:.4f} (alpha_c² = √2 − 1), where it turns unstable and two stable "
        f"branches are born (pitchfork; at alpha = 0.8 they sit at ±{max(at.x):.8f}). (b) The same against t, with "
        f"arrows along the generative drift (generation moves to the right): before t_c = {ct.t_c:.4f} every "
        f"arrow points at the centre, after it away from 0 towards the branches ±x*(t). The fixed-point count "
        f"changes at t = {pitchfork.t:.6f}, independently of the margin. (c) The curvature of the potential at "
        f"the centre, ∂²u/∂x²(0)/beta = −(1/2 + (2alpha² − 1)/(alpha² − 1)²), changes sign at t_c (symlog axis).")
    config = {"schedule": schedule.config(), "data": model.config(), "dynamics": "sde", "n_t": n_t,
              "t_range": [0.01, schedule.T], "alpha_marked": ALPHA_MARKED, "bisection_tol": ctx.choose(1e-10, 1e-8)}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 3
# ---------------------------------------------------------------------------------------------
def axis_marginal(model: GaussianMixture) -> GaussianMixture:
    """The 1-D mixture of the first coordinate of a mixture whose components are isotropic and centred
    on the first axis. Its density factorises, p_t(x) = p_t^(1)(x_1) prod_i N(x_i; 0, alpha^2 s^2 + sigma^2)
    when every s is equal, so the fixed points on that axis are exactly those of the marginal."""
    means = np.array([c.mean for c in model.components])
    variances = np.array([np.diag(c.cov) for c in model.components])
    isotropic = all(np.allclose(c.cov, c.cov[0, 0] * np.eye(model.dim)) for c in model.components)
    if not (isotropic and np.allclose(means[:, 1:], 0.0) and np.allclose(variances, variances[0, 0])):
        raise ValueError("model: the marginal is exact only for equal isotropic components centred on the x_1 axis")
    return GaussianMixture(model.weights, means[:, :1], variances[:, :1, None])


def draw_margins(rec: Recorder, ax, ct: CriticalTimes, gauss: CriticalTimes, lam: Array, schedule: Schedule,
                 t_window: tuple[float, float], n_t: int, k: int) -> None:
    """Top ``k`` eigenvalues of J / beta for t in ``t_window``: along the followed branch (exact score, one
    line per segment between folds) and at the centre in the Gaussian approximation, with their events
    and both t_c."""
    branch = ct.branch
    shown = (branch.t >= t_window[0]) & (branch.t <= t_window[1])
    for i in range(min(k, branch.eigenvalues.shape[1])):
        for seg in np.unique(branch.segment[shown]):
            on = shown & (branch.segment == seg)
            rec.line(ax, "exact score" if i == 0 else f"exact, eigenvalues 2-{k}", branch.t[on],
                     branch.eigenvalues[on, i], columns={"eigenvalue": i + 1, "segment": int(seg), "method": "exact"},
                     legend=seg == branch.segment[shown][0] and i < 2, color=BRANCH_COLOUR if i == 0 else "#9ECAE1",
                     linewidth=1.8 if i == 0 else 1.0, zorder=3 if i == 0 else 2.5)
    t_grid = np.linspace(*t_window, n_t)
    margins = gaussian_margin(lam[:k], schedule.logsnr(t_grid), schedule)
    for i in range(margins.shape[1]):
        rec.line(ax, "Gaussian approximation" if i == 0 else f"Gaussian, eigenvalues 2-{k}", t_grid, margins[:, i],
                 columns={"eigenvalue": i + 1, "method": "gaussian"}, legend=i < 2, color=GAUSSIAN_COLOUR,
                 linewidth=1.4 if i == 0 else 0.8, alpha=1.0 if i == 0 else 0.7)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    for source, colour in ((ct, BRANCH_COLOUR), (gauss, GAUSSIAN_COLOUR)):
        for kind in ("crossing", "closest-approach", "fold"):
            ev = [e for e in source.events if e.kind == kind and e.index < k]
            if ev:
                rec.events(ax, kind, [e.time.t for e in ev], [e.margin for e in ev], f"{kind} ({source.method})",
                           color=colour, edgecolors="black")
    rec.mark(ax, ct.t_c, "t_c", f"$t_c$ exact = {ct.t_c:.4f}")
    rec.mark(ax, gauss.t_c, "t_c", f"$t_c$ Gaussian = {gauss.t_c:.4f}", approx=True)
    ax.set_xlim(t_window[1], t_window[0])


def _events_summary(ct: CriticalTimes) -> list[dict]:
    return [{"kind": e.kind, "t": e.time.t, "logsnr": e.time.logsnr, "margin": e.margin, "eigenvalue": e.index + 1}
            for e in ct.events]


@recipe(3, "imperfect_bifurcation", "Asymmetric mixture and digits: imperfect and successive bifurcations, "
                                    "exact score vs Gaussian approximation")
def figure_imperfect(ctx: FigureContext) -> FigureOutput:
    from symbreak.analysis.critical import dataset_critical_times
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.spectrum import spectrum_from_moments

    schedule = VPLinear()
    asym = load_dataset("gmm-asym").model
    asym_ct = critical_times(asym, schedule)
    asym_lam = spectrum_from_moments(asym.mean, asym.cov).lam
    asym_gauss = gaussian_critical_times(asym_lam, schedule)
    n_diagram = ctx.choose(161, 61)
    diagram = fixed_point_diagram(axis_marginal(asym), schedule, np.linspace(0.01, schedule.T, n_diagram),
                                  tol=ctx.choose(1e-10, 1e-8))

    digits = load_dataset("digits")
    dct = dataset_critical_times(digits, schedule, method="both", max_points=ctx.choose(None, DIGITS_QUICK_N),
                                 seed=ctx.seed, k=DIGITS_K)
    dig_ct, dig_gauss, spectrum = dct.exact, dct.gaussian, dct.spectrum

    fig, axes = new_figure(2, 2, 7.4, 5.8)
    rec = Recorder()
    n_t = ctx.choose(300, 100)

    ax = axes[0, 0]
    rec.axes(ax, "a", "t", "x*", "asymmetric mixture: fixed points on $x_1$")
    draw_flow(rec, ax, axis_marginal(asym), schedule, np.linspace(0.04, 0.96, ctx.choose(18, 12)),
              np.linspace(-1.5, 1.0, ctx.choose(11, 9)))
    draw_diagram(rec, ax, diagram, "t")
    rec.line(ax, "followed branch (Newton)", asym_ct.branch.t, asym_ct.branch.x[:, 0],
             columns={"method": "continuation"}, color=BRANCH_COLOUR, linewidth=3.0, alpha=0.6, zorder=0.8)
    folds = [c for c in diagram.changes if c.kind == "fold"]
    if folds:
        rec.events(ax, "fold", [c.t for c in folds], [c.x for c in folds], "fold (saddle-node)")
    rec.mark(ax, asym_ct.t_c, "t_c", f"$t_c$ = {asym_ct.t_c:.4f} ({asym_ct.kind})")
    invert_time_axis(ax, schedule.T)
    ax.set_ylim(-1.6, 1.1)
    _finish_legend(ax, framed=True, loc="lower left", fontsize=7)

    ax = axes[0, 1]
    rec.axes(ax, "b", "t", "margin", "asymmetric mixture: margin")
    draw_margins(rec, ax, asym_ct, asym_gauss, asym_lam, schedule, (0.1, schedule.T), n_t, 1)
    ax.set_ylim(-1.5, 1.0)
    _finish_legend(ax, loc="lower left", fontsize=7)

    ax = axes[1, 0]
    rec.axes(ax, "c", "t", "eig(J)/beta", f"digits ({dct.n_exact} images): top {DIGITS_K} eigenvalues")
    draw_margins(rec, ax, dig_ct, dig_gauss, spectrum.lam, schedule, DIGITS_WINDOW, n_t, DIGITS_K)
    ax.set_ylim(-1.45, 0.45)
    _finish_legend(ax, framed=True, loc="lower left", fontsize=6.5, ncol=2)

    ax = axes[1, 1]
    top = spectrum.vecs[:, :DIGITS_K]
    soft = dct.soft_direction.ravel()
    soft = soft * np.sign(soft @ top[:, 0])
    rec.axes(ax, "d", "pixel column", "pixel row", "direction that goes soft at $t_c$")
    scale = float(np.abs(np.concatenate([soft, top[:, 0]])).max())
    rec.image(ax, "soft direction (exact) | top covariance eigenvector",
              np.hstack([digits.unflatten(soft), np.full((8, 1), np.nan), digits.unflatten(top[:, 0])]),
              cmap="RdBu_r", vmin=-scale, vmax=scale)
    ax.set_xticks([3.5, 12.5], ["exact score\n(soft direction)", "Gaussian approx.\n(top eigenvector)"])
    ax.set_yticks([])
    ax.grid(False)
    overlap, in_top = float(abs(soft @ top[:, 0])), float(np.linalg.norm(top.T @ soft))

    summary = {
        "asymmetric": {"t_c": asym_ct.t_c, "kind": asym_ct.kind, "margin_c": asym_ct.margin_c,
                       "t_c_gaussian": asym_gauss.t_c, "Lambda": float(asym_lam[0]),
                       "folds": [{"t": c.t, "x1": c.x} for c in folds], "events": _events_summary(asym_ct)},
        "digits": {"n_exact": dct.n_exact, "n_gaussian": digits.n, "t_c": dig_ct.t_c, "kind": dig_ct.kind, "margin_c": dig_ct.margin_c,
                   "t_c_gaussian": dig_gauss.t_c, "lam_top": spectrum.lam[:DIGITS_K],
                   "events": _events_summary(dig_ct), "gaussian_crossings": [e.time.t for e in dig_gauss.events],
                   "soft_direction_cos_top_eigenvector": overlap,
                   f"soft_direction_norm_in_top_{DIGITS_K}": in_top, "branch_status": dig_ct.branch.status}}
    fold_text = (f"a fold (saddle-node) at t = {folds[0].t:.4f} creates the stable branch of the lighter mode "
                 f"(and an unstable one) near x_1 = {folds[0].x:.3f}" if folds else "no fold is found")
    dig_events = "; ".join(f"{e.kind} at t = {e.time.t:.4f} (margin {e.margin:.3g})" for e in dig_ct.events)
    sizes = (f"exact score and covariance of all {digits.n} images" if dct.n_exact == digits.n else
             f"exact score of a random {dct.n_exact} images, covariance of all {digits.n}")
    crossings_k = ", ".join(f"{e.time.t:.4f}" for e in dig_gauss.events if e.index < DIGITS_K)
    caption = (
        f"Real data are not symmetric (VP linear schedule, reverse SDE). Top: the centred 2-D mixture 0.65 "
        f"N((0.7, 0), 0.1²I) + 0.35 N((−1.3, 0), 0.1²I). (a) Fixed points on the x_1 axis (exact, from its 1-D "
        f"marginal; stable solid, unstable dashed) with the drift's flow and the branch followed from t = 1 by "
        f"Newton continuation (blue): the pitchfork is imperfect, the central branch bends smoothly into the "
        f"heavier mode, and {fold_text}. (b) The margin (top eigenvalue of J/beta) along the followed branch only "
        f"rises to {asym_ct.margin_c:.3f} at its closest approach, t = {asym_ct.t_c:.4f}, whereas the Gaussian "
        f"approximation (Lambda = {asym_lam[0]:.4f}) crosses zero at t = {asym_gauss.t_c:.4f}. Bottom: digits "
        f"(8×8 pixels; {sizes}). (c) The top {DIGITS_K} eigenvalues of J/beta along the followed "
        f"branch (exact score; events: {dig_events}; a line breaks where a fold ends a segment and the "
        f"continuation restarts on the attractor) and at the centre in the Gaussian approximation (Lambda = "
        f"{spectrum.lam[0]:.4f}), whose eigenvalues cross zero one after another (successive bifurcations at "
        f"t = {crossings_k}). Exact t_c = {dig_ct.t_c:.4f} ({dig_ct.kind}, margin {dig_ct.margin_c:.3g}) against "
        f"Gaussian t_c = {dig_gauss.t_c:.4f}. (d) The direction that goes soft at the exact t_c and the top "
        f"covariance eigenvector: |cos| = {overlap:.3f}, and {in_top:.3f} of the soft direction's norm lies in "
        f"the span of the top {DIGITS_K} eigenvectors (eigenvalues "
        f"{', '.join(f'{v:.3f}' for v in spectrum.lam[:DIGITS_K])}, nearly degenerate).")
    if dig_ct.branch.status != "complete":
        caption += f" The continuation of the digits branch {dig_ct.branch.status}."
    config = {"schedule": schedule.config(), "dynamics": "sde", "asymmetric": asym.config(),
              "n_t_diagram": n_diagram, "digits": digits.config, "digits_exact_subset": dct.subset,
              "digits_t_window": list(DIGITS_WINDOW),
              "k": DIGITS_K, "gaussian_spectrum": spectrum.config()}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 11
# ---------------------------------------------------------------------------------------------
SCHEDULE_LINES = {"vp-linear": {"color": "#0072B2", "linewidth": 4.0, "alpha": 0.35},
                  "vp-cosine": {"color": "#E69F00", "linewidth": 2.2},
                  "ddpm": {"color": "black", "linewidth": 0.9},
                  "ve": {"color": "#CC79A7", "linewidth": 1.6}}


@recipe(11, "schedules_logsnr", "Critical times across schedules on the logsnr axis")
def figure_schedules(ctx: FigureContext) -> FigureOutput:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.spectrum import covariance_spectrum

    schedules, deltas = (VPLinear(), VPCosine(), DiscreteDDPM(), VE()), SymmetricDeltas(1.0)
    Lambda = float(covariance_spectrum(load_dataset("digits")).lam[0])
    found = {s.name: (two_delta_critical_times(s), gaussian_critical_times(Lambda, s)) for s in schedules}
    fig, axes = new_figure(2, 2, 7.4, 5.6)
    rec = Recorder()
    ax_d, ax_g, ax_s, ax_tab = axes.ravel()
    rec.axes(ax_d, "a", "logsnr", "margin", "two deltas (exact score, centre)")
    rec.axes(ax_g, "b", "logsnr", "margin", rf"digits, Gaussian approx. ($\Lambda$ = {Lambda:.3f})")
    rec.axes(ax_s, "c", "t", "logsnr", "in each schedule's own time")
    rec.axes(ax_tab, "d", "", "", "$t_c$ in each schedule's own time")
    grid = np.linspace(*LOGSNR_WINDOW, ctx.choose(401, 161))
    for s in schedules:
        style = SCHEDULE_LINES[s.name]
        lo, hi = s.logsnr_range()
        g_s = grid[(grid >= lo) & (grid <= hi)]
        centre = [normalised_jacobian_eigenvalues(deltas, [[0.0]], t, s)[0, -1] for t in s.t_of_logsnr(g_s)]
        rec.line(ax_d, s.name, g_s, centre, columns={"schedule": s.name}, **style)
        rec.line(ax_g, s.name, g_s, gaussian_margin([Lambda], g_s, s)[:, 0], columns={"schedule": s.name}, **style)
        t = np.linspace(s.t_min, s.T, ctx.choose(400, 160))
        rec.line(ax_s, s.name, t, s.logsnr(t), columns={"schedule": s.name}, **style)
    for idx, (data, marker) in enumerate((("two deltas", "o"), ("digits (Gaussian)", "s"))):
        c = [found[s.name][idx] for s in schedules]
        rec.points(ax_s, f"$t_c$, {data}", [x.t_c for x in c], [x.logsnr_c for x in c],
                   columns={"schedule": [s.name for s in schedules], "data": data}, marker=marker,
                   color=CRITICAL_COLOURS["t_c"], s=24, zorder=4, edgecolors="black", linewidths=0.5)
    for ax, idx in ((ax_d, 0), (ax_g, 1)):
        for name, text, side in (("vp-linear", "VP", "right"), ("ve", "VE", "left")):
            c = found[name][idx]
            rec.mark(ax, c.logsnr_c, "t_c", None, columns={"schedules": text})
            ax.annotate(f"{text}\n{_num(c.logsnr_c)}", (c.logsnr_c, 0.97), xycoords=("data", "axes fraction"),
                        xytext=(-3 if side == "right" else 3, 0), textcoords="offset points", ha=side, va="top",
                        fontsize=8, color=CRITICAL_COLOURS["t_c"],
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_xlim(*LOGSNR_WINDOW)
        ax.set_ylim(-0.7, 1.5)
        _finish_legend(ax, loc="center left")
    invert_time_axis(ax_s, 1.0)
    ax_s.set_ylim(-12.0, 12.0)
    _finish_legend(ax_s, loc="upper left", fontsize=7)

    rows = [{"schedule": name, "data": data, "t_c": c.t_c, "step_c": c.step_c, "logsnr_c": c.logsnr_c,
             "alpha_c": c.alpha_c} for name, pair in found.items() for data, c in zip(("two deltas", "digits"), pair)]
    rec.table(ax_tab, "critical times", rows)
    ax_tab.axis("off")
    cells = [[name] + [_num(c.t_c) + (f"\nstep {c.step_c}" if c.step_c is not None else "") for c in pair]
             + [_num(c.logsnr_c) for c in pair] for name, pair in found.items()]
    table = ax_tab.table(cellText=cells, loc="center", cellLoc="center", bbox=[0.0, 0.05, 1.0, 0.85],
                         colLabels=["schedule", "$t_c$\ntwo deltas", "$t_c$\ndigits\n(Gaussian)",
                                    "logsnr$_c$\ntwo deltas", "logsnr$_c$\ndigits\n(Gaussian)"])
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, _), cell in table.get_celld().items():
        if row == 0:  # three-line headers
            cell.set_height(1.6 * cell.get_height())

    vp = [pair for name, pair in found.items() if name != "ve"]
    spread = {data: float(np.ptp([pair[i].logsnr_c for pair in vp])) for i, data in enumerate(("two deltas", "digits"))}
    summary = {"critical_times": rows, "digits_Lambda": Lambda, "vp_logsnr_c_spread": spread}
    lin, cos, ddpm, ve = (found[n] for n in ("vp-linear", "vp-cosine", "ddpm", "ve"))
    caption = (
        f"Critical times of the reverse SDE across schedules, on the logsnr = log(alpha²/sigma²) axis. (a) The "
        f"margin (top eigenvalue of J/beta) at the centre x = 0 of the two deltas at ±1 (exact score; by symmetry "
        f"the followed central branch stays there) "
        f"for the VP linear, VP cosine and discrete DDPM (1000 steps) schedules falls on one curve and crosses "
        f"zero at logsnr_c = {_num(lin[0].logsnr_c)} for all three (spread {spread['two deltas']:.1e}); with the VE "
        f"schedule (no drift term, J/beta is the Hessian of log p_t) it crosses at {_num(ve[0].logsnr_c)}. (b) The "
        f"same for digits in the Gaussian approximation (Lambda = {Lambda:.4f}): VP at {_num(lin[1].logsnr_c)}, VE "
        f"at {_num(ve[1].logsnr_c)} (= −log Lambda). (c) logsnr against each schedule's own time: one logsnr_c, "
        f"different t_c. (d) Two deltas: t_c = {_num(lin[0].t_c)} (VP linear), {_num(cos[0].t_c)} (cosine), "
        f"{_num(ddpm[0].t_c)} (DDPM, step {ddpm[0].step_c}), {_num(ve[0].t_c)} (VE); digits (Gaussian): "
        f"{_num(lin[1].t_c)}, {_num(cos[1].t_c)}, {_num(ddpm[1].t_c)} (step {ddpm[1].step_c}), {_num(ve[1].t_c)}.")
    config = {"schedules": [s.config() for s in schedules], "dynamics": "sde", "logsnr_window": list(LOGSNR_WINDOW),
              "digits_Lambda_from": "covariance_spectrum(load_dataset('digits'))", "two_deltas": {"m": 1.0}}
    return FigureOutput(fig, rec.frame(), summary, caption, config)
