"""The trajectory figures of trained networks (VP linear schedule, reverse SDE):

6. reverse-SDE trajectories of a trained digits model: projections on a class-separating direction,
   commitment times, and the denoised estimates D(x_t, t) at several t;
7. the cloning probability phi(t), measured with the exact denoiser and with a trained network, against
   Biroli et al.'s closed form, with speciation and critical times.

Networks, data and critical times come from :mod:`.network_figures` (shared with figures 4 and 5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import (FigureContext, FigureOutput, Recorder, invert_time_axis, legend,
                                                 panel_row, recipe)
from symbreak.experiments.recipes.network_figures import (
    BIROLI_M,
    BIROLI_NAME,
    BIROLI_S,
    EXACT_COLOUR,
    NETWORK_COLOUR,
    SCHEDULE,
    Trained,
    class_pair,
    decoded_mosaic,
    exact_critical,
    exact_model,
    first_of_each_class,
    mark_both,
    network_branch,
    quick_note,
    single_threaded,
    trained,
)
from symbreak.theory import CriticalTimes, cloning_probability, speciation_tau

if TYPE_CHECKING:
    from symbreak.experiments.measure.branch import BranchMeasurement
    from symbreak.experiments.measure.trajectories import CloningResult

Array = NDArray[np.float64]
DECODE_TIMES = (0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)  # figure 6: times of the decoded images
DECODE_ROWS = 4                                          # figure 6: paths shown decoded
HISTOGRAM_BINS = 20                                      # figure 6: commitment-time bins on [0, T]


# ---------------------------------------------------------------------------------------------
# figure 6
# ---------------------------------------------------------------------------------------------
def denoised_at(den, traj, t_grid: Array, shown: list[int]) -> Array:
    """D(x_t, t) of every path at the grid indices ``shown`` (the state itself at t = 0), (len(shown), paths, d)."""
    import torch

    from symbreak.experiments.models.oracle import denoiser_device

    out = []
    for k in shown:
        x = traj[k]
        if t_grid[k] > 0:
            with torch.no_grad():
                x = den(x.reshape((len(x),) + tuple(den.shape)).to(denoiser_device(den)), float(t_grid[k]))
        out.append(x.reshape(len(traj[k]), -1).cpu().double().numpy())
    return np.stack(out)


def denoiser_gap(d_net: Array, exact, traj, t_grid: Array, shown: list[int]) -> dict[str, float]:
    """sqrt(mean over paths and pixels of (D_network - D_exact)^2) at the decoded times t > 0 (keyed "0.80", ...),
    from the network's estimates ``d_net`` of :func:`denoised_at`."""
    out = {}
    for c, k in enumerate(shown):
        if t_grid[k] > 0:
            x = traj[k].cpu().double().reshape((traj.shape[1],) + tuple(exact.shape))
            d_exact = exact(x, float(t_grid[k])).reshape(len(x), -1).numpy()
            out[f"{t_grid[k]:.2f}"] = float(np.sqrt(np.mean((d_net[c] - d_exact) ** 2)))
    return out


@dataclass(frozen=True)
class TrajectoriesResult:
    """Figure 6's numbers: the projections of ``seeds``' paths on the class pair's mean difference, their
    final classes and commitment times (histogram ``counts`` on ``edges``), the decoded estimates D(x_t, t)
    of the ``rows`` paths at the grid indices ``shown`` with their classes ``labels``, and the RMS gap to the
    exact denoiser."""

    net: Trained
    theory: CriticalTimes
    network: BranchMeasurement
    classifier_accuracy: float
    pair: tuple[int, int]
    seeds: list[int]
    n_steps: int
    start_config: dict
    t_grid: Array
    projection: Array
    final: NDArray[np.int64]
    t_commit: Array
    edges: Array
    counts: NDArray[np.int64]
    shown: list[int]
    rows: NDArray[np.int64]
    decoded: Array
    labels: NDArray[np.int64]
    gap: dict[str, float]
    seed: int
    quick: bool

    @property
    def median(self) -> float:
        return float(np.median(self.t_commit))

    @property
    def quartiles(self) -> list[float]:
        return np.quantile(self.t_commit, [0.25, 0.75]).tolist()

    def summary(self) -> dict:
        final, shown = self.final, self.shown
        return {"t_c_exact": self.theory.t_c, "t_c_network": self.network.t_c, "median_t_commit": self.median,
                "quartiles_t_commit": self.quartiles,
                "share_committed_before_t_c": float(np.mean(self.t_commit > self.theory.t_c)),
                "class_pair": list(self.pair), "n_paths": len(self.seeds), "n_steps": self.n_steps,
                "final_class_counts": {int(c): int((final == c).sum()) for c in np.unique(final)},
                "classifier_test_accuracy": self.classifier_accuracy,
                "decoded_times": [float(self.t_grid[k]) for k in shown], "rms_gap_to_exact_D": self.gap,
                "training": self.net.describe()}

    def config(self) -> dict:
        return {"schedule": SCHEDULE.config(), "sampler": "sde", "n_paths": len(self.seeds), "n_steps": self.n_steps,
                "seeds": f"{self.seeds[0]}-{self.seeds[-1]}", "start": self.start_config, "class_pair": list(self.pair),
                "direction": "mean difference of the class pair (full digits)", "center": "data mean",
                "classifier": {"seed": self.seed, "test_accuracy": self.classifier_accuracy},
                "histogram_edges": self.edges, "train": self.net.describe()}


def _digit_paths(den, shape: tuple[int, ...], seeds: list[int], n_steps: int):
    """Euler-Maruyama paths of the reverse SDE with the network from N(0, I) at T, and their start."""
    import torch

    from symbreak.experiments.models.oracle import denoiser_device
    from symbreak.experiments.sampling.grids import uniform_grid
    from symbreak.experiments.sampling.samplers import get_sampler
    from symbreak.experiments.sampling.starts import start_state

    grid = uniform_grid(SCHEDULE, SCHEDULE.T, n_steps)
    start = start_state("noise", seeds, shape, SCHEDULE, SCHEDULE.T, device=denoiser_device(den))
    with torch.no_grad():
        res = get_sampler("sde")(den, start.x, grid, seeds=seeds, return_trajectory=True)
    return start, res


def _decoded(net: Trained, res, t_grid: Array, final: NDArray[np.int64], class_labels: NDArray[np.int64]) -> dict:
    """D(x_t, t) of the first path of each of the first classes at :data:`DECODE_TIMES`, and the RMS gap of
    the network's D to the exact denoiser's over every path."""
    from symbreak.experiments.models.denoisers import ExactDenoiser

    shown = [int(np.argmin(np.abs(t_grid - t))) for t in DECODE_TIMES]
    rows = first_of_each_class(final, DECODE_ROWS)
    traj = res.trajectory.reshape(len(t_grid), len(final), -1)
    d_net = denoised_at(net.denoiser, traj, t_grid, shown)
    gap = denoiser_gap(d_net, ExactDenoiser(exact_model(net.data), SCHEDULE, net.data.shape), traj, t_grid, shown)
    return {"shown": shown, "rows": rows, "decoded": d_net[:, rows].transpose(1, 0, 2),
            "labels": class_labels[np.ix_(shown, rows)], "gap": gap}


@single_threaded
def compute_digits_trajectories(ctx: FigureContext) -> TrajectoriesResult:
    from symbreak.experiments.measure.trajectories import (analyse_trajectories, denoised_class,
                                                          mean_difference_direction)
    from symbreak.experiments.models.classifier import load_or_train_classifier

    net = trained("digits", ctx)
    full = load_dataset("digits")
    clf = load_or_train_classifier("digits", full.x, full.labels, full.shape, seed=ctx.seed, cache_dir=ctx.cache_dir)
    theory, network = exact_critical("digits", ctx.quick, ctx.seed), network_branch("digits", ctx)
    pair = class_pair(full)
    direction = mean_difference_direction(full.x, full.labels, pair)
    n_paths, n_steps = ctx.choose(200, 40), ctx.choose(200, 50)
    seeds = list(range(ctx.seed, ctx.seed + n_paths))
    start, res = _digit_paths(net.denoiser, net.data.shape, seeds, n_steps)
    analysis = analyse_trajectories(res, denoised_class(net.denoiser, clf.predict), direction, schedule=SCHEDULE,
                                    center=full.x.mean(0))
    commit = analysis.commitment
    edges = np.linspace(0.0, SCHEDULE.T, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(commit.t_commit, bins=edges)
    decoded = _decoded(net, res, analysis.t_grid, commit.final, analysis.labels)
    return TrajectoriesResult(net, theory, network, clf.test_accuracy, pair, seeds, n_steps, start.config,
                              analysis.t_grid, analysis.projection, commit.final, commit.t_commit, edges, counts,
                              **decoded, seed=ctx.seed, quick=ctx.quick)


def trajectories_caption(r: TrajectoriesResult) -> str:
    t_grid, theory, network, gap, q = r.t_grid, r.theory, r.network, r.gap, r.quartiles
    n_paths, acc = len(r.seeds), r.classifier_accuracy
    before = float(np.mean(r.t_commit > theory.t_c))
    return (
        f"{n_paths} reverse-SDE trajectories (Euler–Maruyama, {r.n_steps} uniform steps from N(0, I) at t = 1, seeds "
        f"{r.seeds[0]}–{r.seeds[-1]}) of an MLP denoiser trained on digits ({r.net.data.n} images). (a) Projection "
        f"of x_t − alpha(t)·(data mean) on the unit vector between the means of classes {r.pair[0]} and {r.pair[1]} "
        f"(the two farthest apart); paths coloured by the class the digits classifier (test accuracy "
        f"{acc:.3f}) gives the final sample: they stay together until about t_c and fan out after it. "
        f"(b) Commitment time of each path, the time after the last change of the class predicted for its denoised "
        f"estimate D(x_t, t): median {r.median:.3f} (quartiles {q[0]:.3f}–{q[1]:.3f}), against exact t_c = "
        f"{theory.t_c:.3f} ({theory.kind}) and network t_c = "
        + ("absent" if network.t_c is None else f"{network.t_c:.3f}") + f"; {100 * before:.0f}% of the paths "
        f"commit before the exact t_c in generation order. (c) D(x_t, t) of four paths at t = "
        + ", ".join(f"{t_grid[k]:.2f}" for k in r.shown) + " (the last column is the sample; rows: the first path "
        "ending in each of the first four classes to appear). Early estimates are blurred averages; the network's "
        f"D(x_t, t) differs from the exact score's along all {n_paths} paths by an RMS per pixel (pixels in "
        "[−1, 1]) of " + ", ".join(f"{v:.3f}" for v in gap.values()) + " at t = " + ", ".join(gap)
        + " (growing at small t, where the exact score of the finite training set pulls each path onto one "
        "training image). The digit's identity emerges and fixes below t_c, over the commitment-time quartiles of "
        f"(b), t ≈ {q[1]:.2f} to {q[0]:.2f}." + quick_note(r.quick))


def _draw_projections(rec: Recorder, ax, r: TrajectoriesResult) -> None:
    """(a) every path's projection, coloured by its final class (the pair's classes; others grey)."""
    pair, final = r.pair, r.final
    rec.axes(ax, "a", "t", "projection", f"projection on mean({pair[1]}) − mean({pair[0]})")
    colours = {pair[0]: "#0072B2", pair[1]: "#E69F00"}
    group = np.where(final == pair[0], 0, np.where(final == pair[1], 1, -1))
    names = {0: f"ends as {pair[0]}", 1: f"ends as {pair[1]}", -1: "ends as another class"}
    for k in np.argsort(group, kind="stable"):  # other classes first, underneath
        g, c = int(group[k]), int(final[k])
        rec.line(ax, f"{names[g]} ({int((group == g).sum())})", r.t_grid, r.projection[:, k],
                 columns={"path": int(k), "final_class": c}, legend=k == int(np.argmax(group == g)),
                 color=colours.get(c, "0.75") if g >= 0 else "0.75", linewidth=0.7 if g >= 0 else 0.5,
                 alpha=0.8 if g >= 0 else 0.5)
    mark_both(rec, ax, r.theory.t_c, r.network.t_c, 3)
    invert_time_axis(ax, SCHEDULE.T)
    legend(ax, framed=True, loc="upper left", fontsize=6.5)


def _draw_commitment(rec: Recorder, ax, r: TrajectoriesResult) -> None:
    """(b) the histogram of commitment times with both t_c and the median."""
    rec.axes(ax, "b", "t", "count", "commitment times (classifier on $D(x_t, t)$)")
    edges, counts = r.edges, r.counts
    centres = 0.5 * (edges[1:] + edges[:-1])
    rec.line(ax, "trajectories", centres, counts, columns={"bin_lo": edges[:-1], "bin_hi": edges[1:]},
             legend=False, drawstyle="steps-mid", color="black", linewidth=1.2)
    ax.fill_between(centres, counts, step="mid", color="0.8")
    mark_both(rec, ax, r.theory.t_c, r.network.t_c, 3)
    rec.mark(ax, r.median, "event", f"median = {r.median:.3f}")
    invert_time_axis(ax, SCHEDULE.T)
    legend(ax, loc="upper left", fontsize=7)


def _draw_decoded(rec: Recorder, ax, r: TrajectoriesResult) -> None:
    """(c) the mosaic of decoded estimates, rows = paths, columns = times."""
    t_grid, shown, rows = r.t_grid, r.shown, r.rows
    rec.axes(ax, "c", "pixel column", "pixel row", "denoised estimates $D(x_t, t)$ along four trajectories")
    rec.image(ax, "D(x_t, t) mosaic", decoded_mosaic(r.decoded, r.net.data.shape), cmap="gray_r", vmin=-1, vmax=1)
    ax.grid(False)
    ax.set_xticks([c * 9 + 3.5 for c in range(len(shown))],
                  [f"{t_grid[k]:.2f}\n" + (r"$> t_c$" if t_grid[k] > r.theory.t_c else r"$< t_c$") for k in shown],
                  fontsize=8)
    ax.set_yticks([i * 9 + 3.5 for i in range(len(rows))], [f"path {p}\n→ {r.final[p]}" for p in rows], fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlabel(r"time $t$ (generation $\rightarrow$; exact $t_c$ = " + f"{r.theory.t_c:.3f})")
    ax.set_ylabel("path → final class")
    rec.table(ax, "decoded classes", [{"row": i, "path": int(p), "t": float(t_grid[k]), "class": int(r.labels[c, i])}
                                      for i, p in enumerate(rows) for c, k in enumerate(shown)])


@recipe(6, "digits_trajectories", "Trained digits model: trajectories, commitment times and decoded samples",
        compute=compute_digits_trajectories)
def draw_digits_trajectories(r: TrajectoriesResult) -> FigureOutput:
    fig, axes = new_figure(2, 2, 7.4, 6.4, gridspec_kw={"height_ratios": [1.0, 1.15]})
    gs = axes[1, 0].get_subplotspec().get_gridspec()
    for ax in axes[1]:
        ax.remove()
    ax_p, ax_h = axes[0]
    ax_d = fig.add_subplot(gs[1, :])
    rec = Recorder()
    _draw_projections(rec, ax_p, r)
    _draw_commitment(rec, ax_h, r)
    _draw_decoded(rec, ax_d, r)
    return FigureOutput(fig, rec.frame(), r.summary(), trajectories_caption(r), r.config())


# ---------------------------------------------------------------------------------------------
# figure 7
# ---------------------------------------------------------------------------------------------
def sign_class(x: Array) -> NDArray[np.int64]:
    """Class of a 1-D end point: 1 if x > 0 else 0 (the nearer mode of a symmetric pair)."""
    return (np.asarray(x)[:, 0] > 0).astype(np.int64)


def phi_theory(tau: Array, m: float, s: float) -> Array:
    """Biroli's phi(tau) for 1/2 N(+-m, s^2) (:func:`symbreak.theory.cloning_probability`)."""
    return np.array([cloning_probability(float(v), m, s) for v in np.atleast_1d(tau)])


CLONING_PANELS = ((BIROLI_NAME, BIROLI_M, BIROLI_S, "two Gaussians ±3, s = 1"),
                  ("two-deltas", 1.0, 0.0, "two deltas ±1 (s = 0)"))
CLONING_METHODS = {"exact": ("measured, exact denoiser", EXACT_COLOUR, "o"),
                   "network": ("measured, trained network", NETWORK_COLOUR, "s")}


def measured_numbers(res: CloningResult) -> dict:
    """The measured phi with its largest gap to the closed form and the largest |z| (binomial standard error)."""
    z = (res.p_same - res.phi_theory) / np.sqrt(np.maximum(res.phi_theory * (1 - res.phi_theory), 1 / res.n) / res.n)
    return {"t": res.t, "tau": res.tau, "p_same": res.p_same, "stderr": res.stderr, "phi_theory": res.phi_theory,
            "max_abs_gap": float(np.abs(res.p_same - res.phi_theory).max()), "max_abs_z": float(np.abs(z).max())}


@dataclass(frozen=True)
class CloningPanel:
    """One model of figure 7: the closed form on ``t_fine``, the measurements by method, and the marked
    times (t_c; t_S where Lambda > 1) with phi there."""

    name: str
    m: float
    s: float
    title: str
    net: Trained
    t_fine: Array
    tau_fine: Array
    phi_fine: Array
    measured: dict[str, CloningResult]
    Lambda: float
    marks: dict[str, float]

    def summary(self) -> dict:
        return {"m": self.m, "s": self.s, "Lambda": self.Lambda, **self.marks,
                "measured": {k: measured_numbers(v) for k, v in self.measured.items()}, "training": self.net.describe()}


def _marks(theory: CriticalTimes, Lambda: float, m: float, s: float) -> dict[str, float]:
    """t_c and tau_c; speciation t_S, tau_S = 1/2 log Lambda and phi there where Lambda > 1; phi at t_c."""
    marks = {"t_c": theory.t_c, "tau_c": theory.tau_c}
    if Lambda > 1:
        tau_s = speciation_tau(Lambda)
        marks.update({"t_s": float(SCHEDULE.t_of_alpha(np.exp(-tau_s))), "tau_s": tau_s,
                      "phi_at_t_s": float(phi_theory(tau_s, m, s)[0])})
    marks["phi_at_t_c"] = float(phi_theory(theory.tau_c, m, s)[0])
    return marks


def _cloning_panel(ctx: FigureContext, panel: tuple, times: Array, t_fine: Array, n_steps: int,
                   seeds: str) -> CloningPanel:
    from symbreak.experiments.measure.trajectories import cloning_experiment
    from symbreak.experiments.models.denoisers import ExactDenoiser

    name, m, s, title = panel
    net = trained(name, ctx)
    model = net.data.model
    theory = exact_critical(name, ctx.quick, ctx.seed)
    tau_fine = SCHEDULE.tau(t_fine)
    phi_fine = phi_theory(tau_fine, m, s)
    measured = {method: cloning_experiment(den, times, sign_class, seeds=seeds, n_steps=n_steps, sampler="sde",
                                           phi=lambda tau: phi_theory(tau, m, s))
                for method, den in (("exact", ExactDenoiser(model, SCHEDULE)), ("network", net.denoiser))}
    Lambda = float(np.linalg.eigvalsh(model.cov).max())
    return CloningPanel(name, m, s, title, net, t_fine, tau_fine, phi_fine, measured, Lambda,
                        _marks(theory, Lambda, m, s))


@dataclass(frozen=True)
class CloningFigureResult:
    """Figure 7's numbers: one :class:`CloningPanel` per model of :data:`CLONING_PANELS`."""

    panels: tuple[CloningPanel, ...]
    times: Array
    n_seeds: int
    seeds: str
    n_steps: int
    quick: bool

    def summary(self) -> dict:
        return {p.name: p.summary() for p in self.panels}

    def config(self) -> dict:
        return {"schedule": SCHEDULE.config(), "sampler": "sde", "n_seeds": self.n_seeds, "seeds": self.seeds,
                "n_steps": self.n_steps, "times": self.times, "classify": "sign of the end point",
                "datasets": {p.name: {"model": p.net.data.model.config(), "train": p.net.describe()}
                             for p in self.panels}}


@single_threaded
def compute_cloning(ctx: FigureContext) -> CloningFigureResult:
    n_seeds, n_steps = ctx.choose(500, 200), ctx.choose(200, 60)
    times = np.linspace(0.05, 0.95, ctx.choose(13, 7))
    t_fine = np.linspace(0.01, SCHEDULE.T, ctx.choose(200, 60))
    seeds = f"{ctx.seed}-{ctx.seed + n_seeds - 1}"
    panels = tuple(_cloning_panel(ctx, panel, times, t_fine, n_steps, seeds) for panel in CLONING_PANELS)
    return CloningFigureResult(panels, times, n_seeds, seeds, n_steps, ctx.quick)


def cloning_caption(r: CloningFigureResult) -> str:
    summary, times = r.summary(), r.times

    def at(name: str, method: str, t: float) -> str:
        m = summary[name]["measured"][method]
        k = int(np.argmin(np.abs(m["t"] - t)))
        return f"{m['p_same'][k]:.3f} ± {m['stderr'][k]:.3f}"

    b, d = summary[BIROLI_NAME], summary["two-deltas"]
    probe = [float(times[len(times) // 4]), float(times[len(times) // 2]), float(times[3 * len(times) // 4])]
    listing = "; ".join(
        f"t = {t:.2f}: theory {phi_theory(SCHEDULE.tau(t), BIROLI_M, BIROLI_S)[0]:.3f}, exact "
        f"{at(BIROLI_NAME, 'exact', t)}, network {at(BIROLI_NAME, 'network', t)}" for t in probe)
    return (
        f"Cloning: from the state x_t of a reverse-SDE trajectory (Euler–Maruyama, {r.n_steps} steps from N(0, 1) at "
        f"t = 1; {r.n_seeds} trajectories) two independent continuations run to t = 0; phi(t) is the share that end "
        f"in the same mode (sign of the end point). Dots: measured with the exact denoiser (blue) and with a trained "
        f"MLP (orange), both from the same seeds (the same starts and step noises, so their difference reflects the "
        f"network, not sampling noise), error bars ±2 standard errors; line: Biroli et al.'s phi(tau) = "
        f"½∫(G₊² + G₋²)/(G₊ + G₋) dy at tau = −log alpha(t). (a) 1/2 N(±{BIROLI_M:g}, {BIROLI_S:g}²) (Lambda = "
        f"{b['Lambda']:.0f}): {listing}; speciation t_S = {b['t_s']:.3f} (tau_S = ½ log Lambda = {b['tau_s']:.3f}, "
        f"phi = {b['phi_at_t_s']:.3f}) comes after t_c = {b['t_c']:.3f} (tau_c = {b['tau_c']:.3f}, phi = "
        f"{b['phi_at_t_c']:.3f}) in generation order. Largest |measured − theory|: exact "
        f"{b['measured']['exact']['max_abs_gap']:.3f} (largest |z| {b['measured']['exact']['max_abs_z']:.1f}), network "
        f"{b['measured']['network']['max_abs_gap']:.3f} (|z| {b['measured']['network']['max_abs_z']:.1f}). "
        f"(b) The paper's two deltas (s = 0): t_c = {d['t_c']:.4f}, phi there {d['phi_at_t_c']:.3f}; Lambda = 1, so "
        f"there is no speciation time; largest gap exact {d['measured']['exact']['max_abs_gap']:.3f}, network "
        f"{d['measured']['network']['max_abs_gap']:.3f}." + quick_note(r.quick))


def _draw_cloning_panel(rec: Recorder, ax, letter: str, p: CloningPanel) -> None:
    rec.axes(ax, letter, "t", "phi", p.title)
    rec.line(ax, "Biroli et al. (closed form)", p.t_fine, p.phi_fine,
             columns={"data": p.name, "method": "theory", "tau": p.tau_fine}, color="black", linewidth=1.2)
    for method, res in p.measured.items():
        label, colour, marker = CLONING_METHODS[method]
        rec.points(ax, label, res.t, res.p_same, columns={"data": p.name, "method": method, "tau": res.tau,
                                                           "stderr": res.stderr, "phi_theory": res.phi_theory},
                   color=colour, marker=marker, s=14, zorder=3, edgecolors="black", linewidths=0.4)
        ax.errorbar(res.t, res.p_same, yerr=2 * res.stderr, fmt="none", ecolor=colour, elinewidth=0.8, zorder=2.5)
    rec.mark(ax, p.marks["t_c"], "t_c", f"$t_c$ = {p.marks['t_c']:.3f}")
    if "t_s" in p.marks:
        rec.mark(ax, p.marks["t_s"], "t_s", f"$t_S$ = {p.marks['t_s']:.3f}")
    invert_time_axis(ax, SCHEDULE.T)
    ax.set_ylim(0.45, 1.03)
    legend(ax, loc="upper left", fontsize=6.5)


@recipe(7, "cloning", "Cloning probability phi(t): measured vs Biroli et al.'s closed form", compute=compute_cloning)
def draw_cloning(r: CloningFigureResult) -> FigureOutput:
    fig, rec = panel_row(r.panels, _draw_cloning_panel, 7.4, 3.0)
    return FigureOutput(fig, rec.frame(), r.summary(), cloning_caption(r), r.config())

