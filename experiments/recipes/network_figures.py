"""The trained-network figures: theory and a trained denoiser network side by side.

4. the margin (top eigenvalue of J/beta) along the central branch and t_c, network against the exact
   score, for two deltas, the 2-D mixture and digits;
5. the potential along an arc between two samples before, near and after t_c, network against the exact
   score (the paper's Fig. 1b method);
6. reverse-SDE trajectories of a trained digits model: projections on a class-separating direction,
   commitment times, and the denoised estimates D(x_t, t) at several t;
7. the cloning probability phi(t), measured with the exact denoiser and with a trained network, against
   Biroli et al.'s closed form, with speciation and critical times.

Networks come from :func:`symbreak.experiments.models.training.load_or_train_model` (default training recipe; in
quick mode :data:`QUICK_STEPS` steps), cached on disk by configuration in the context's cache folder and
in memory for the rest of the run, so figures share them. Everything runs on the VP linear schedule with
the reverse SDE (c = 1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, wraps
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, invert_time_axis, recipe
from symbreak.theory import (
    CriticalTimes,
    DataModel,
    GaussianMixture,
    VPLinear,
    cloning_probability,
    critical_times,
    speciation_tau,
)

if TYPE_CHECKING:
    from symbreak.experiments.models.training import CachedModel

Array = NDArray[np.float64]
SCHEDULE = VPLinear()
T_MIN = 0.02                      # branches are followed from T down to this t
QUICK_STEPS, QUICK_BATCH = 300, 64  # quick mode: training steps and minibatch size of every network
BRANCH_POINTS, BRANCH_POINTS_IMAGES = 61, 41  # network branch: logsnr grid points (d <= 2; digits, d = 64)
EVENT_MARGIN = -0.4               # figure 4: events shown and listed have a margin at least this
NEWTON_TOL = 1e-6                 # max|b|/beta: a float32 network's drift has a floor near 3e-6 (measured)
QUICK_DIGITS = 300                # quick mode: digits subset (network and exact score alike)
NETWORK_COLOUR, EXACT_COLOUR = "#E69F00", "#0072B2"
MARGIN_DATASETS = ("two-deltas", "gmm-2d", "digits")
MARGIN_WINDOWS = {"two-deltas": (T_MIN, 1.0), "gmm-2d": (T_MIN, 1.0), "digits": (0.1, 1.0)}
ARC_DATASETS = ("gmm-2d", "digits")
ARC_LOGSNR_OFFSETS = (-1.5, 0.0, 1.5)   # figure 5: before, at and after t_c, in logsnr
BIROLI_M, BIROLI_S = 3.0, 1.0           # figure 7: 1/2 N(-m, s^2) + 1/2 N(+m, s^2)
BIROLI_NAME = "two-gaussians-m3-s1"
DECODE_TIMES = (0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)  # figure 6: times of the decoded images
DECODE_ROWS = 4                                          # figure 6: paths shown decoded


# ---------------------------------------------------------------------------------------------
# data, trained networks and critical times shared by the figures
# ---------------------------------------------------------------------------------------------
def biroli_model() -> GaussianMixture:
    """Biroli et al.'s two Gaussians 1/2 N(-m, s^2) + 1/2 N(+m, s^2) in 1-D."""
    return GaussianMixture([0.5, 0.5], [[-BIROLI_M], [BIROLI_M]], [[[BIROLI_S**2]]] * 2)


@lru_cache(maxsize=None)
def figure_dataset(name: str, quick: bool, seed: int) -> Dataset:
    """A built-in set, digits (a seeded subset in quick mode) or Biroli's two Gaussians."""
    if name == BIROLI_NAME:
        model = biroli_model()
        x = model.sample(2000, np.random.default_rng(seed)).astype(np.float32)
        config = {"name": name, "source": "figures", "model": model.config(), "n_points": 2000, "seed": seed}
        return Dataset(name, x, (1,), None, "none: synthetic data in the model's own units", model, config)
    data = load_dataset(name, seed=seed)
    return data.subset(QUICK_DIGITS, seed) if quick and name == "digits" else data


def exact_model(data: Dataset) -> DataModel:
    """The data's exact model, or the finite data themselves."""
    return data.model if data.model is not None else data.empirical()


@dataclass(frozen=True)
class Trained:
    """A trained network of one figure dataset and how it was obtained."""

    data: Dataset
    model: CachedModel

    @property
    def denoiser(self):
        return self.model.denoiser

    def describe(self) -> dict:
        """What identifies the network; nothing run-dependent (whether it came from the cache, training time)."""
        m = self.model
        return {"data": self.data.name, "n_points": self.data.n, "cache_key": m.key[:20], "final_loss": m.final_loss,
                "train": m.resolved["train"]}


@lru_cache(maxsize=None)
def trained(name: str, ctx: FigureContext) -> Trained:
    """The cached network of ``name``: the default recipe (quick: :data:`QUICK_STEPS` steps of minibatches of
    :data:`QUICK_BATCH`), seed ctx.seed."""
    from symbreak.experiments.models.training import default_train_config, load_or_train_model

    data = figure_dataset(name, ctx.quick, ctx.seed)
    config = default_train_config(data)
    config = replace(config, steps=ctx.choose(config.steps, QUICK_STEPS),
                     batch_size=ctx.choose(config.batch_size, QUICK_BATCH), seed=ctx.seed)
    return Trained(data, load_or_train_model(data, SCHEDULE, config, device=ctx.device, cache_dir=ctx.cache_dir))


@lru_cache(maxsize=None)
def exact_critical(name: str, quick: bool, seed: int) -> CriticalTimes:
    """The exact score's central branch (followed down to :data:`T_MIN`) and its critical times."""
    return critical_times(exact_model(figure_dataset(name, quick, seed)), SCHEDULE, "sde", k=1, t_end=T_MIN)


@lru_cache(maxsize=None)
def network_branch(name: str, ctx: FigureContext):
    """The trained network's central branch (Newton-followed fixed point of the learned drift)."""
    from symbreak.experiments.measure.branch import follow_central_branch

    net = trained(name, ctx)
    x_init = SCHEDULE.alpha(SCHEDULE.T) * exact_model(net.data).mean
    n_points = ctx.choose(BRANCH_POINTS if net.data.dim <= 2 else BRANCH_POINTS_IMAGES, 25)
    return follow_central_branch(net.denoiser, n_points=n_points, t_range=(T_MIN, SCHEDULE.T),
                                 x_init=x_init, seed=ctx.seed, newton_tol=NEWTON_TOL)


def single_threaded(make: Callable[[FigureContext], FigureOutput]) -> Callable[[FigureContext], FigureOutput]:
    """Run a recipe with one torch CPU thread: the MLPs' matrices are too small for intra-op threads, and on a
    shared 2-core machine their synchronisation made each network call ~10x slower (measured: 49 ms against
    6 ms for a batch of 200 through the 2-D MLP)."""
    @wraps(make)
    def run(ctx: FigureContext) -> FigureOutput:
        from symbreak.experiments.runtime.threads import torch_threads

        with torch_threads(1):
            return make(ctx)
    return run


def _legend(ax, **kw) -> None:
    ax.legend(**{"loc": "best", "handlelength": 2.2, **kw})


def _quick_note(ctx: FigureContext) -> str:
    return (f" Quick mode: every network trained for only {QUICK_STEPS} steps of {QUICK_BATCH} samples (digits: a "
            f"{QUICK_DIGITS}-image subset), fewer samples and grid points; the full run uses the default training "
            f"recipe." if ctx.quick else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------------------------------------
# figure 4
# ---------------------------------------------------------------------------------------------
def _segments(rec: Recorder, ax, series: str, t: Array, y: Array, segment: NDArray, keep: NDArray,
              columns: dict, **style) -> None:
    """One line per segment id (points where ``keep``), the first one labelled."""
    for n, seg in enumerate(np.unique(segment[keep])):
        on = keep & (segment == seg)
        rec.line(ax, series, t[on], y[on], columns={**columns, "segment": int(seg)}, legend=n == 0, **style)


def near_critical(events) -> list:
    """Events of the top eigenvalue with margin >= :data:`EVENT_MARGIN` (drops the numerical wiggles of a
    network's margin on its flat -1/2 stretch at large t)."""
    return [e for e in events if e.index == 0 and e.margin >= EVENT_MARGIN]


def draw_events(rec: Recorder, ax, events, colour: str, window: tuple[float, float]) -> None:
    """Near-critical crossings and closest approaches inside the t window, in the curve's colour."""
    for kind in ("crossing", "closest-approach", "fold"):
        ev = [e for e in near_critical(events) if e.kind == kind and window[0] <= e.time.t <= window[1]]
        if ev:
            rec.events(ax, kind, [e.time.t for e in ev], [e.margin for e in ev], None, color=colour,
                       edgecolors="black")


def events_summary(events) -> list[dict]:
    return [{"kind": e.kind, "t": e.time.t, "margin": e.margin} for e in near_critical(events)]


def _events_text(events: list[dict]) -> str:
    return ", ".join(f"{e['kind']} at {e['t']:.3f} ({e['margin']:+.3f})" for e in events) or "none"


@recipe(4, "network_margins", "Theory vs trained network: the margin along the central branch and t_c")
@single_threaded
def figure_network_margins(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.cli.validate import compare

    fig, axes = new_figure(1, 3, 7.4, 2.8)
    rec = Recorder()
    summary, configs = {}, {}
    for ax, letter, name in zip(axes[0], "abc", MARGIN_DATASETS):
        theory, network, net = exact_critical(name, ctx.quick, ctx.seed), network_branch(name, ctx), trained(name, ctx)
        lo, hi = MARGIN_WINDOWS[name]
        title = {"two-deltas": "two deltas", "gmm-2d": "2-D mixture (4 modes)",
                 "digits": f"digits ({net.data.n} images)"}[name]
        rec.axes(ax, letter, "t", "margin", title)
        br = theory.branch
        _segments(rec, ax, "exact score", br.t, br.margin, br.segment, (br.t >= lo) & (br.t <= hi),
                  {"data": name, "method": "exact"}, color=EXACT_COLOUR, linewidth=2.4, alpha=0.7)
        _segments(rec, ax, "trained network", network.t, network.margin, network.segment,
                  network.converged & (network.t >= lo) & (network.t <= hi),
                  {"data": name, "method": "network"}, color=NETWORK_COLOUR, linewidth=1.3, marker="o",
                  markersize=2.2)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        for source, colour in ((theory, EXACT_COLOUR), (network, NETWORK_COLOUR)):
            draw_events(rec, ax, source.events, colour, (lo, hi))
        rec.mark(ax, theory.t_c, "t_c", f"$t_c$ exact = {theory.t_c:.4f}", columns={"data": name, "method": "exact"})
        if network.t_c is not None:
            rec.mark(ax, network.t_c, "t_c", f"$t_c$ network = {network.t_c:.4f}", approx=True,
                     columns={"data": name, "method": "network"})
        ax.set_xlim(hi, lo)  # generation order: t decreasing to the right
        ax.set_ylim(-1.6, 1.0)
        _legend(ax, loc="lower left", fontsize=6.5)
        result, _ = compare(theory, network, net.denoiser, window=1.0)
        summary[name] = {**result, "events_exact": events_summary(theory.events),
                         "events_network": events_summary(network.events),
                         "n_points_network": len(network.t), "converged_network": int(network.converged.sum()),
                         "max_nonsymmetry_network": float(np.nanmax(network.nonsymmetry)), "training": net.describe()}
        configs[name] = {"data": net.data.config, "train": net.describe(), "network_branch": network.config,
                         "exact_branch": {"t_end": T_MIN, "k": 1, "status": br.status}}

    parts = []
    for name in MARGIN_DATASETS:
        s = summary[name]
        style = {"edm": "EDM-preconditioned", "none": "plain"}[s["training"]["train"]["precondition"]]
        parts.append(f"{name} ({style} eps-MLP): exact t_c = {s['t_c_theory']:.4f} ({s['kind_theory']}), network t_c = "
                     + ("absent" if s["t_c_network"] is None else f"{s['t_c_network']:.4f} ({s['kind_network']})")
                     + f", relative error {_pct(s['rel_error'])}, largest margin gap within 1 of logsnr_c "
                     + ("n/a" if s["max_abs_margin_gap_window"] is None else
                        f"{s['max_abs_margin_gap_window']:.3f} (t ≥ t_c: {_num(s['max_abs_margin_gap_before_t_c'])}, "
                        f"t < t_c: {_num(s['max_abs_margin_gap_after_t_c'])})")
                     + f" (events, exact: {_events_text(s['events_exact'])}; network: {_events_text(s['events_network'])}"
                     + ("" if s["converged_network"] == s["n_points_network"] else
                        f"; Newton found the network's fixed point at {s['converged_network']} of its "
                        f"{s['n_points_network']} grid times")
                     + ")")
    caption = (
        "The stability margin (top eigenvalue of J/beta; J of the reverse-SDE drift, for the network the "
        "symmetric part of the Jacobian of its learned drift, obtained with torch.func) along the central fixed "
        "point, followed from t = 1 by Newton continuation, for the exact score of the training data (blue) and "
        "for a trained eps-prediction MLP (orange dots: the network's logsnr grid; preconditioning below). t_c is where the margin "
        "crosses zero or (imperfect pitchfork) comes closest to it: the first crossing, or the first closest "
        "approach within 0.05 of zero, else the closest approach nearest zero (exact dashed, network dotted; "
        f"circles mark crossings, triangles closest approaches with margin ≥ {EVENT_MARGIN:g}). "
        + "; ".join(parts) + ". (a) Two deltas at ±1; (b) four Gaussians (std 0.1) on the unit circle; "
        "(c) digits, exact score of the finite training set (an empirical mixture of deltas)." + _quick_note(ctx))
    config = {"schedule": SCHEDULE.config(), "dynamics": "sde", "datasets": configs,
              "windows": {k: list(v) for k, v in MARGIN_WINDOWS.items()}}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 5
# ---------------------------------------------------------------------------------------------
def class_pair(data: Dataset) -> tuple[int, int]:
    """The two classes whose means lie farthest apart (lowest labels first on ties)."""
    classes = np.unique(data.labels)
    means = np.stack([np.asarray(data.x[data.labels == c], dtype=np.float64).mean(0) for c in classes])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    return tuple(sorted((int(classes[i]), int(classes[j]))))  # type: ignore[return-value]


def arc_ends(data: Dataset) -> tuple[tuple[int, int], Array, Array]:
    """The indices of two samples of different classes and the samples: for gmm-2d the first samples of the
    modes at 0 and 90 degrees (orthogonal), otherwise the first samples of :func:`class_pair`."""
    a, b = (0, 1) if data.name == "gmm-2d" else class_pair(data)
    i, j = int(np.argmax(data.labels == a)), int(np.argmax(data.labels == b))
    return (i, j), np.asarray(data.x[i], dtype=np.float64), np.asarray(data.x[j], dtype=np.float64)


def barrier_height(u: Array) -> float:
    """The largest interior local maximum of u minus the higher of the minima of u on its two sides
    (the height to climb from the shallower of the two wells); 0 without an interior maximum."""
    peaks = [i for i in range(1, len(u) - 1) if u[i - 1] < u[i] >= u[i + 1]]
    return max([float(u[i] - max(u[:i].min(), u[i + 1:].min())) for i in peaks], default=0.0)


@recipe(5, "arc_potential", "Potential along an arc between two samples, trained network vs exact score")
@single_threaded
def figure_arc_potential(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.measure.arc import arc_potential

    fig, axes = new_figure(2, 3, 7.4, 4.8)
    rec = Recorder()
    n_points = ctx.choose(201, 81)
    summary, configs = {}, {}
    for row, name in enumerate(ARC_DATASETS):
        net = trained(name, ctx)
        theory = exact_critical(name, ctx.quick, ctx.seed)
        model = exact_model(net.data)
        idx, y1, y2 = arc_ends(net.data)
        times = [float(SCHEDULE.t_of_logsnr(theory.logsnr_c + off)) for off in ARC_LOGSNR_OFFSETS]
        rows = []
        for col, (t, off) in enumerate(zip(times, ARC_LOGSNR_OFFSETS)):
            ax = axes[row, col]
            where = "before" if off < 0 else "after" if off > 0 else "at"
            alpha = float(SCHEDULE.alpha(t))
            res = arc_potential(net.denoiser, alpha * y1, alpha * y2, t, n_points=n_points, model=model)
            relation = {"before": ">", "at": "=", "after": "<"}[where]
            rec.axes(ax, "abcdef"[3 * row + col], "a", "u_arc",
                     f"{'mixture' if name == 'gmm-2d' else 'digits'}, t = {t:.3f} {relation} $t_c$")
            if row == 0:
                ax.set_xlabel("")
            if col > 0:
                ax.set_ylabel("")
            cols = {"data": name, "t": t, "where": where}
            rec.line(ax, "exact score", res.a, res.u_exact, columns={**cols, "method": "exact"}, color=EXACT_COLOUR,
                     linewidth=2.4, alpha=0.7)
            rec.line(ax, "trained network", res.a, res.u, columns={**cols, "method": "network"},
                     color=NETWORK_COLOUR, linewidth=1.3)
            ax.set_xlim(0.0, 0.5 * np.pi)
            ax.set_xticks([0.0, 0.25 * np.pi, 0.5 * np.pi], ["0\n($x_1$)", r"$\pi/4$", r"$\pi/2$" "\n($x_2$)"])
            if col == 0:
                _legend(ax, fontsize=7)
            mid = len(res.a) // 2
            gap = np.abs(res.u - res.u_exact)
            rows.append({"t": t, "where": where, "logsnr": float(SCHEDULE.logsnr(t)),
                         "barrier_exact": barrier_height(res.u_exact), "barrier_network": barrier_height(res.u),
                         "u_mid_exact": float(res.u_exact[mid]), "u_mid_network": float(res.u[mid]),
                         "u_end_exact": float(res.u_exact[-1]), "u_end_network": float(res.u[-1]),
                         "max_abs_gap": float(gap.max()), "exact_range": float(np.ptp(res.u_exact))})
        summary[name] = {"t_c_exact": theory.t_c, "times": rows, "indices": list(idx), "training": net.describe()}
        configs[name] = {"data": net.data.config, "sample_indices": list(idx), "y1": y1, "y2": y2, "times": times,
                         "logsnr_offsets": list(ARC_LOGSNR_OFFSETS), "train": net.describe()}

    def shape(r: dict) -> str:
        return f"barrier {r['barrier_exact']:.2f} exact vs {r['barrier_network']:.2f} network"

    desc = "; ".join(f"{name} (t_c = {summary[name]['t_c_exact']:.4f}): " + ", ".join(
        f"t = {r['t']:.3f}: {shape(r)}" for r in summary[name]["times"]) for name in ARC_DATASETS)
    caption = (
        "The potential u(x, t) = beta(t)(−|x|²/4 − log p_t(x)) (reverse SDE, VP linear schedule) along the arc "
        "x(a) = cos(a) x_1 + sin(a) x_2 between two training samples scaled to time t (x_i = alpha(t) y_i), "
        "relative to its value at x_1. Exact score: u from log p_t of the data (blue); network: the line "
        "integral −∫⟨b(x(a')), x'(a')⟩ da' of its learned drift b (cumulative Simpson rule, orange). Columns: "
        f"logsnr_c − {-ARC_LOGSNR_OFFSETS[0]:g} (before t_c in generation order), logsnr_c and logsnr_c + "
        f"{ARC_LOGSNR_OFFSETS[2]:g} (after). Top: 2-D mixture, samples of the modes at 0° and 90°; bottom: digits, "
        f"the first training images of the two classes whose means lie farthest apart (classes "
        f"{class_pair(trained('digits', ctx).data)}). Barrier: the highest interior local maximum of u above the higher of "
        f"the lowest points on its two sides (0: a single basin). Before t_c the samples share one basin; a barrier "
        f"between their wells grows after it. {desc}." + _quick_note(ctx))
    config = {"schedule": SCHEDULE.config(), "dynamics": "sde", "n_points": n_points, "rule": "simpson",
              "datasets": configs}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 6
# ---------------------------------------------------------------------------------------------
def first_of_each_class(final: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """The first path ending in each class, in order of appearance, at most ``n`` of them."""
    _, first = np.unique(final, return_index=True)
    return np.sort(first)[:n]


def decoded_mosaic(images: Array, shape: tuple[int, int]) -> Array:
    """Images (rows, cols, h * w) tiled into one array with a one-pixel NaN gap between images."""
    n_rows, n_cols = images.shape[:2]
    h, w = shape
    out = np.full((n_rows * (h + 1) - 1, n_cols * (w + 1) - 1), np.nan)
    for r in range(n_rows):
        for c in range(n_cols):
            out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[r, c].reshape(h, w)
    return out


@recipe(6, "digits_trajectories", "Trained digits model: trajectories, commitment times and decoded samples")
@single_threaded
def figure_digits_trajectories(ctx: FigureContext) -> FigureOutput:
    import torch

    from symbreak.experiments.measure.trajectories import (
        analyse_trajectories,
        denoised_class,
        mean_difference_direction,
    )
    from symbreak.experiments.models.classifier import load_or_train_classifier
    from symbreak.experiments.models.denoisers import ExactDenoiser
    from symbreak.experiments.models.oracle import denoiser_device
    from symbreak.experiments.sampling.grids import uniform_grid
    from symbreak.experiments.sampling.samplers import get_sampler
    from symbreak.experiments.sampling.starts import start_state

    net = trained("digits", ctx)
    data, den = net.data, net.denoiser
    full = load_dataset("digits")
    clf = load_or_train_classifier("digits", full.x, full.labels, full.shape, seed=ctx.seed, cache_dir=ctx.cache_dir)
    theory, network = exact_critical("digits", ctx.quick, ctx.seed), network_branch("digits", ctx)
    pair = class_pair(full)
    direction = mean_difference_direction(full.x, full.labels, pair)
    n_paths, n_steps = ctx.choose(200, 40), ctx.choose(200, 50)
    seeds = list(range(ctx.seed, ctx.seed + n_paths))
    grid = uniform_grid(SCHEDULE, SCHEDULE.T, n_steps)
    start = start_state("noise", seeds, data.shape, SCHEDULE, SCHEDULE.T, device=denoiser_device(den))
    with torch.no_grad():
        res = get_sampler("sde")(den, start.x, grid, seeds=seeds, return_trajectory=True)
    analysis = analyse_trajectories(res, denoised_class(den, clf.predict), direction, schedule=SCHEDULE,
                                    center=full.x.mean(0))
    t_grid, proj, commit = analysis.t_grid, analysis.projection, analysis.commitment
    final = commit.final

    fig, axes = new_figure(2, 2, 7.4, 6.4, gridspec_kw={"height_ratios": [1.0, 1.15]})
    gs = axes[1, 0].get_subplotspec().get_gridspec()
    for ax in axes[1]:
        ax.remove()
    ax_p, ax_h = axes[0]
    ax_d = fig.add_subplot(gs[1, :])
    rec = Recorder()

    rec.axes(ax_p, "a", "t", "projection", f"projection on mean({pair[1]}) − mean({pair[0]})")
    colours = {pair[0]: "#0072B2", pair[1]: "#E69F00"}
    group = np.where(final == pair[0], 0, np.where(final == pair[1], 1, -1))
    names = {0: f"ends as {pair[0]}", 1: f"ends as {pair[1]}", -1: "ends as another class"}
    for k in np.argsort(group, kind="stable"):  # other classes first, underneath
        g, c = int(group[k]), int(final[k])
        rec.line(ax_p, f"{names[g]} ({int((group == g).sum())})", t_grid, proj[:, k],
                 columns={"path": int(k), "final_class": c}, legend=k == int(np.argmax(group == g)),
                 color=colours.get(c, "0.75") if g >= 0 else "0.75", linewidth=0.7 if g >= 0 else 0.5,
                 alpha=0.8 if g >= 0 else 0.5)
    rec.mark(ax_p, theory.t_c, "t_c", f"$t_c$ exact = {theory.t_c:.3f}")
    if network.t_c is not None:
        rec.mark(ax_p, network.t_c, "t_c", f"$t_c$ network = {network.t_c:.3f}", approx=True)
    invert_time_axis(ax_p, SCHEDULE.T)
    _legend(ax_p, loc="upper left", fontsize=6.5, frameon=True, framealpha=0.9, edgecolor="none")

    rec.axes(ax_h, "b", "t", "count", "commitment times (classifier on $D(x_t, t)$)")
    edges = np.linspace(0.0, SCHEDULE.T, 21)
    counts, _ = np.histogram(commit.t_commit, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    rec.line(ax_h, "trajectories", centres, counts, columns={"bin_lo": edges[:-1], "bin_hi": edges[1:]},
             legend=False, drawstyle="steps-mid", color="black", linewidth=1.2)
    ax_h.fill_between(centres, counts, step="mid", color="0.8")
    median = float(np.median(commit.t_commit))
    rec.mark(ax_h, theory.t_c, "t_c", f"$t_c$ exact = {theory.t_c:.3f}")
    if network.t_c is not None:
        rec.mark(ax_h, network.t_c, "t_c", f"$t_c$ network = {network.t_c:.3f}", approx=True)
    rec.mark(ax_h, median, "event", f"median = {median:.3f}")
    invert_time_axis(ax_h, SCHEDULE.T)
    _legend(ax_h, loc="upper left", fontsize=7)

    shown = [int(np.argmin(np.abs(t_grid - t))) for t in DECODE_TIMES]
    rows = first_of_each_class(final, DECODE_ROWS)
    traj = res.trajectory.reshape(len(t_grid), n_paths, -1)
    d_net = denoised_at(den, traj, t_grid, shown)
    decoded = d_net[:, rows].transpose(1, 0, 2)
    labels = analysis.labels[np.ix_(shown, rows)]
    gap = denoiser_gap(d_net, ExactDenoiser(exact_model(data), SCHEDULE, data.shape), traj, t_grid, shown)
    rec.axes(ax_d, "c", "pixel column", "pixel row", "denoised estimates $D(x_t, t)$ along four trajectories")
    rec.image(ax_d, "D(x_t, t) mosaic", decoded_mosaic(decoded, data.shape), cmap="gray_r", vmin=-1, vmax=1)
    ax_d.grid(False)
    ax_d.set_xticks([c * 9 + 3.5 for c in range(len(shown))],
                    [f"{t_grid[k]:.2f}\n" + (r"$> t_c$" if t_grid[k] > theory.t_c else r"$< t_c$") for k in shown],
                    fontsize=8)
    ax_d.set_yticks([i * 9 + 3.5 for i in range(len(rows))], [f"path {r}\n→ {final[r]}" for r in rows], fontsize=8)
    ax_d.tick_params(length=0)
    ax_d.set_xlabel(r"time $t$ (generation $\rightarrow$; exact $t_c$ = " + f"{theory.t_c:.3f})")
    ax_d.set_ylabel("path → final class")
    rec.table(ax_d, "decoded classes", [{"row": i, "path": int(r), "t": float(t_grid[k]),
                                         "class": int(labels[c, i])} for i, r in enumerate(rows)
                                        for c, k in enumerate(shown)])

    before = float(np.mean(commit.t_commit > theory.t_c))
    summary = {"t_c_exact": theory.t_c, "t_c_network": network.t_c, "median_t_commit": median,
               "quartiles_t_commit": np.quantile(commit.t_commit, [0.25, 0.75]).tolist(),
               "share_committed_before_t_c": before, "class_pair": list(pair), "n_paths": n_paths,
               "n_steps": n_steps, "final_class_counts": {int(c): int((final == c).sum()) for c in np.unique(final)},
               "classifier_test_accuracy": clf.test_accuracy, "decoded_times": [float(t_grid[k]) for k in shown],
               "rms_gap_to_exact_D": gap, "training": net.describe()}
    caption = (
        f"{n_paths} reverse-SDE trajectories (Euler–Maruyama, {n_steps} uniform steps from N(0, I) at t = 1, seeds "
        f"{seeds[0]}–{seeds[-1]}) of an MLP denoiser trained on digits ({data.n} images). (a) Projection of x_t − "
        f"alpha(t)·(data mean) on the unit vector between the means of classes {pair[0]} and {pair[1]} (the two "
        f"farthest apart); paths coloured by the class the digits classifier (test accuracy "
        f"{clf.test_accuracy:.3f}) gives the final sample: they stay together until about t_c and fan out after it. "
        f"(b) Commitment time of each path, the time after the last change of the class predicted for its denoised "
        f"estimate D(x_t, t): median {median:.3f} (quartiles {summary['quartiles_t_commit'][0]:.3f}–"
        f"{summary['quartiles_t_commit'][1]:.3f}), against exact t_c = {theory.t_c:.3f} ({theory.kind}) and network "
        f"t_c = " + ("absent" if network.t_c is None else f"{network.t_c:.3f}") + f"; {100 * before:.0f}% of the paths "
        f"commit before the exact t_c in generation order. (c) D(x_t, t) of four paths at t = "
        + ", ".join(f"{t_grid[k]:.2f}" for k in shown) + " (the last column is the sample; rows: the first path ending in each of the first four classes to appear). "
        "Early estimates are blurred averages; the network's D(x_t, t) differs from the exact score's along all "
        f"{n_paths} paths by an RMS per pixel (pixels in [−1, 1]) of "
        + ", ".join(f"{v:.3f}" for v in gap.values()) + " at t = " + ", ".join(gap) + " (growing at small t, where the exact score "
        "of the finite training set pulls each path onto one training image). The digit's identity emerges "
        f"and fixes below t_c, over the commitment-time quartiles of (b), t ≈ {summary['quartiles_t_commit'][1]:.2f} "
        f"to {summary['quartiles_t_commit'][0]:.2f}." + _quick_note(ctx))
    config = {"schedule": SCHEDULE.config(), "sampler": "sde", "n_paths": n_paths, "n_steps": n_steps,
              "seeds": f"{seeds[0]}-{seeds[-1]}", "start": start.config, "class_pair": list(pair),
              "direction": "mean difference of the class pair (full digits)", "center": "data mean",
              "classifier": {"seed": ctx.seed, "test_accuracy": clf.test_accuracy},
              "histogram_edges": edges, "train": net.describe()}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


# ---------------------------------------------------------------------------------------------
# figure 7
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


def sign_class(x: Array) -> NDArray[np.int64]:
    """Class of a 1-D end point: 1 if x > 0 else 0 (the nearer mode of a symmetric pair)."""
    return (np.asarray(x)[:, 0] > 0).astype(np.int64)


def phi_theory(tau: Array, m: float, s: float) -> Array:
    """Biroli's phi(tau) for 1/2 N(+-m, s^2) (:func:`symbreak.theory.cloning_probability`)."""
    return np.array([cloning_probability(float(v), m, s) for v in np.atleast_1d(tau)])


CLONING_PANELS = ((BIROLI_NAME, BIROLI_M, BIROLI_S, "two Gaussians ±3, s = 1"),
                  ("two-deltas", 1.0, 0.0, "two deltas ±1 (s = 0)"))


@recipe(7, "cloning", "Cloning probability phi(t): measured vs Biroli et al.'s closed form")
@single_threaded
def figure_cloning(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.measure.trajectories import cloning_experiment
    from symbreak.experiments.models.denoisers import ExactDenoiser

    fig, axes = new_figure(1, 2, 7.4, 3.0)
    rec = Recorder()
    n_seeds, n_steps = ctx.choose(500, 200), ctx.choose(200, 60)
    times = np.linspace(0.05, 0.95, ctx.choose(13, 7))
    t_fine = np.linspace(0.01, SCHEDULE.T, ctx.choose(200, 60))
    seeds = f"{ctx.seed}-{ctx.seed + n_seeds - 1}"
    summary, configs = {}, {}
    for ax, letter, (name, m, s, title) in zip(axes[0], "ab", CLONING_PANELS):
        net = trained(name, ctx)
        model = net.data.model
        theory = exact_critical(name, ctx.quick, ctx.seed)
        rec.axes(ax, letter, "t", "phi", title)
        tau_fine = SCHEDULE.tau(t_fine)
        rec.line(ax, "Biroli et al. (closed form)", t_fine, phi_theory(tau_fine, m, s),
                 columns={"data": name, "method": "theory", "tau": tau_fine}, color="black", linewidth=1.2)
        measured = {}
        for method, den, colour, marker in (("exact", ExactDenoiser(model, SCHEDULE), EXACT_COLOUR, "o"),
                                            ("network", net.denoiser, NETWORK_COLOUR, "s")):
            res = cloning_experiment(den, times, sign_class, seeds=seeds, n_steps=n_steps, sampler="sde",
                                     phi=lambda tau: phi_theory(tau, m, s))
            label = "measured, exact denoiser" if method == "exact" else "measured, trained network"
            rec.points(ax, label, res.t, res.p_same, columns={"data": name, "method": method, "tau": res.tau,
                                                               "stderr": res.stderr, "phi_theory": res.phi_theory},
                       color=colour, marker=marker, s=14, zorder=3, edgecolors="black", linewidths=0.4)
            ax.errorbar(res.t, res.p_same, yerr=2 * res.stderr, fmt="none", ecolor=colour, elinewidth=0.8, zorder=2.5)
            z = (res.p_same - res.phi_theory) / np.sqrt(np.maximum(res.phi_theory * (1 - res.phi_theory), 1 / res.n) / res.n)
            measured[method] = {"t": res.t, "tau": res.tau, "p_same": res.p_same, "stderr": res.stderr,
                                "phi_theory": res.phi_theory, "max_abs_gap": float(np.abs(res.p_same - res.phi_theory).max()),
                                "max_abs_z": float(np.abs(z).max())}
        rec.mark(ax, theory.t_c, "t_c", f"$t_c$ = {theory.t_c:.3f}")
        marks = {"t_c": theory.t_c, "tau_c": theory.tau_c}
        Lambda = float(np.linalg.eigvalsh(model.cov).max())
        if Lambda > 1:
            tau_s = speciation_tau(Lambda)
            t_s = float(SCHEDULE.t_of_alpha(np.exp(-tau_s)))
            rec.mark(ax, t_s, "t_s", f"$t_S$ = {t_s:.3f}")
            marks.update({"t_s": t_s, "tau_s": tau_s, "phi_at_t_s": float(phi_theory(tau_s, m, s)[0])})
        marks["phi_at_t_c"] = float(phi_theory(theory.tau_c, m, s)[0])
        invert_time_axis(ax, SCHEDULE.T)
        ax.set_ylim(0.45, 1.03)
        _legend(ax, loc="upper left", fontsize=6.5)
        summary[name] = {"m": m, "s": s, "Lambda": Lambda, **marks, "measured": measured, "training": net.describe()}
        configs[name] = {"model": model.config(), "train": net.describe()}

    def at(name: str, method: str, t: float) -> str:
        r = summary[name]["measured"][method]
        k = int(np.argmin(np.abs(r["t"] - t)))
        return f"{r['p_same'][k]:.3f} ± {r['stderr'][k]:.3f}"

    b = summary[BIROLI_NAME]
    probe = [float(times[len(times) // 4]), float(times[len(times) // 2]), float(times[3 * len(times) // 4])]
    listing = "; ".join(
        f"t = {t:.2f}: theory {phi_theory(SCHEDULE.tau(t), BIROLI_M, BIROLI_S)[0]:.3f}, exact {at(BIROLI_NAME, 'exact', t)}, "
        f"network {at(BIROLI_NAME, 'network', t)}" for t in probe)
    caption = (
        f"Cloning: from the state x_t of a reverse-SDE trajectory (Euler–Maruyama, {n_steps} steps from N(0, 1) at "
        f"t = 1; {n_seeds} trajectories) two independent continuations run to t = 0; phi(t) is the share that end in "
        f"the same mode (sign of the end point). Dots: measured with the exact denoiser (blue) and with a trained MLP "
        f"(orange), both from the same seeds (the same starts and step noises, so their difference reflects the network, "
        f"not sampling noise), error bars ±2 standard errors; line: Biroli et al.'s phi(tau) = ½∫(G₊² + G₋²)/(G₊ + G₋) dy at "
        f"tau = −log alpha(t). (a) 1/2 N(±{BIROLI_M:g}, {BIROLI_S:g}²) (Lambda = {b['Lambda']:.0f}): "
        f"{listing}; speciation t_S = {b['t_s']:.3f} (tau_S = ½ log Lambda = {b['tau_s']:.3f}, phi = "
        f"{b['phi_at_t_s']:.3f}) comes after t_c = {b['t_c']:.3f} (tau_c = {b['tau_c']:.3f}, phi = "
        f"{b['phi_at_t_c']:.3f}) in generation order. Largest |measured − theory|: exact "
        f"{b['measured']['exact']['max_abs_gap']:.3f} (largest |z| {b['measured']['exact']['max_abs_z']:.1f}), network "
        f"{b['measured']['network']['max_abs_gap']:.3f} (|z| {b['measured']['network']['max_abs_z']:.1f}). "
        f"(b) The paper's two deltas (s = 0): t_c = {summary['two-deltas']['t_c']:.4f}, phi there "
        f"{summary['two-deltas']['phi_at_t_c']:.3f}; Lambda = 1, so there is no speciation time; largest gap exact "
        f"{summary['two-deltas']['measured']['exact']['max_abs_gap']:.3f}, network "
        f"{summary['two-deltas']['measured']['network']['max_abs_gap']:.3f}." + _quick_note(ctx))
    config = {"schedule": SCHEDULE.config(), "sampler": "sde", "n_seeds": n_seeds, "seeds": seeds, "n_steps": n_steps,
              "times": times, "classify": "sign of the end point", "datasets": configs}
    return FigureOutput(fig, rec.frame(), summary, caption, config)
