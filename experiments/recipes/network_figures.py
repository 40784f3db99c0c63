"""The trained-network figures: theory and a trained denoiser network side by side, and the pieces the
network figures share (data, trained networks, critical times and branches, text helpers).

4. the margin (top eigenvalue of J/beta) along the central branch and t_c, network against the exact
   score, for two deltas, the 2-D mixture and digits;
5. the potential along an arc between two samples before, near and after t_c, network against the exact
   score (the paper's Fig. 1b method).

Figures 6 (digits trajectories) and 7 (cloning) are in :mod:`.trajectory_figures`.

Networks come from :func:`symbreak.experiments.models.training.load_or_train_model` (default training recipe; in
quick mode :data:`QUICK_STEPS` steps), cached on disk by configuration in the context's cache folder and
in memory for the rest of the run, so figures share them. Everything runs on the VP linear schedule with
the reverse SDE (c = 1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, wraps
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, legend, panel_row, recipe
from symbreak.theory import CriticalTimes, DataModel, GaussianMixture, VPLinear, critical_times

if TYPE_CHECKING:
    from symbreak.experiments.measure.arc import ArcPotential
    from symbreak.experiments.measure.branch import BranchMeasurement
    from symbreak.experiments.models.training import CachedModel

Array = NDArray[np.float64]
SCHEDULE = VPLinear()
T_MIN = 0.02                      # branches are followed from T down to this t
QUICK_STEPS, QUICK_BATCH = 300, 64  # quick mode: training steps and minibatch size of every network
BRANCH_POINTS, BRANCH_POINTS_IMAGES = 61, 41  # network branch: first step 1/(n - 1) of the logsnr range (d <= 2;
                                              # digits, d = 64)
EVENT_MARGIN = -0.4               # figure 4: events shown and listed have a margin at least this
QUICK_DIGITS = 300                # quick mode: digits subset (network and exact score alike)
NETWORK_COLOUR, EXACT_COLOUR = "#E69F00", "#0072B2"
MARGIN_DATASETS = ("two-deltas", "gmm-2d", "digits")
MARGIN_WINDOWS = {"two-deltas": (T_MIN, 1.0), "gmm-2d": (T_MIN, 1.0), "digits": (0.1, 1.0)}
ARC_DATASETS = ("gmm-2d", "digits")
ARC_LOGSNR_OFFSETS = (-1.5, 0.0, 1.5)   # figure 5: before, at and after t_c, in logsnr
BIROLI_M, BIROLI_S = 3.0, 1.0           # figure 7: 1/2 N(-m, s^2) + 1/2 N(+m, s^2)
BIROLI_NAME = "two-gaussians-m3-s1"
Result = TypeVar("Result")


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
def network_branch(name: str, ctx: FigureContext) -> BranchMeasurement:
    """The trained network's central branch (Newton-followed fixed point of the learned drift)."""
    from symbreak.experiments.measure.branch import follow_central_branch

    net = trained(name, ctx)
    model = exact_model(net.data)
    x_init = SCHEDULE.alpha(SCHEDULE.T) * model.mean
    n_points = ctx.choose(BRANCH_POINTS if net.data.dim <= 2 else BRANCH_POINTS_IMAGES, 25)
    return follow_central_branch(net.denoiser, n_points=n_points, t_range=(T_MIN, SCHEDULE.T),
                                 x_init=x_init, seed=ctx.seed,
                                 second_moment=float(np.trace(model.cov)))  # sets the model-error band


def single_threaded(compute: Callable[[FigureContext], Result]) -> Callable[[FigureContext], Result]:
    """Run a figure's computation with one torch CPU thread: the MLPs' matrices are too small for intra-op
    threads, and on a shared 2-core machine their synchronisation made each network call ~10x slower
    (measured: 49 ms against 6 ms for a batch of 200 through the 2-D MLP)."""
    @wraps(compute)
    def run(ctx: FigureContext) -> Result:
        from symbreak.experiments.runtime.threads import torch_threads

        with torch_threads(1):
            return compute(ctx)
    return run


def quick_note(quick: bool) -> str:
    return (f" Quick mode: every network trained for only {QUICK_STEPS} steps of {QUICK_BATCH} samples (digits: a "
            f"{QUICK_DIGITS}-image subset), fewer samples and grid points; the full run uses the default training "
            f"recipe." if quick else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


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


def class_pair(data: Dataset) -> tuple[int, int]:
    """The two classes whose means lie farthest apart (lowest labels first on ties)."""
    classes = np.unique(data.labels)
    means = np.stack([np.asarray(data.x[data.labels == c], dtype=np.float64).mean(0) for c in classes])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    return tuple(sorted((int(classes[i]), int(classes[j]))))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# figure 4
# ---------------------------------------------------------------------------------------------
MARGIN_TITLES = {"two-deltas": "two deltas", "gmm-2d": "2-D mixture (4 modes)", "digits": "digits ({n} images)"}


def near_critical(events) -> list:
    """Events of the top eigenvalue with margin >= :data:`EVENT_MARGIN` (drops the numerical wiggles of a
    network's margin on its flat -1/2 stretch at large t)."""
    return [e for e in events if e.index == 0 and e.margin >= EVENT_MARGIN]


def events_summary(events) -> list[dict]:
    return [{"kind": e.kind, "t": e.time.t, "margin": e.margin} for e in near_critical(events)]


def _events_text(events: list[dict]) -> str:
    return ", ".join(f"{e['kind']} at {e['t']:.3f} ({e['margin']:+.3f})" for e in events) or "none"


@dataclass(frozen=True)
class MarginPanel:
    """One data set of figure 4: the exact score's central branch and critical times (``theory``), the
    trained network's branch (``network``), the network, and :func:`compare`'s numbers."""

    name: str
    theory: CriticalTimes
    network: BranchMeasurement
    net: Trained
    comparison: dict

    @property
    def window(self) -> tuple[float, float]:
        return MARGIN_WINDOWS[self.name]

    def summary(self) -> dict:
        network = self.network
        return {**self.comparison, "events_exact": events_summary(self.theory.events),
                "events_network": events_summary(network.events),
                "n_points_network": len(network.t), "converged_network": int(network.converged.sum()),
                "max_nonsymmetry_network": float(np.nanmax(network.nonsymmetry)), "training": self.net.describe()}

    def config(self) -> dict:
        return {"data": self.net.data.config, "train": self.net.describe(), "network_branch": self.network.config,
                "exact_branch": {"t_end": T_MIN, "k": 1, "status": self.theory.branch.status}}


@dataclass(frozen=True)
class NetworkMarginsResult:
    """Figure 4's numbers: one :class:`MarginPanel` per data set of :data:`MARGIN_DATASETS`."""

    panels: tuple[MarginPanel, ...]
    quick: bool

    def summary(self) -> dict:
        return {p.name: p.summary() for p in self.panels}

    def config(self) -> dict:
        return {"schedule": SCHEDULE.config(), "dynamics": "sde", "datasets": {p.name: p.config() for p in self.panels},
                "windows": {k: list(v) for k, v in MARGIN_WINDOWS.items()}}


def _margin_panel(name: str, ctx: FigureContext) -> MarginPanel:
    from symbreak.experiments.measure.validate import compare

    theory, network, net = exact_critical(name, ctx.quick, ctx.seed), network_branch(name, ctx), trained(name, ctx)
    comparison, _ = compare(theory, network, net.denoiser, window=1.0)
    return MarginPanel(name, theory, network, net, comparison)


@single_threaded
def compute_network_margins(ctx: FigureContext) -> NetworkMarginsResult:
    return NetworkMarginsResult(tuple(_margin_panel(name, ctx) for name in MARGIN_DATASETS), ctx.quick)


def _margin_text(name: str, s: dict) -> str:
    """One data set's t_c, error, margin gap and events for the caption."""
    style = {"edm": "EDM-preconditioned", "none": "plain"}[s["training"]["train"]["precondition"]]
    return (f"{name} ({style} eps-MLP): exact t_c = {s['t_c_theory']:.4f} ({s['kind_theory']}), network t_c = "
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


def network_margins_caption(r: NetworkMarginsResult) -> str:
    summary = r.summary()
    return (
        "The stability margin (top eigenvalue of J/beta; J of the reverse-SDE drift, for the network the "
        "symmetric part of the Jacobian of its learned drift, obtained with torch.func) along the central fixed "
        "point, followed from t = 1 by Newton continuation, for the exact score of the training data (blue) and "
        "for a trained eps-prediction MLP (orange dots: its branch points, adaptive steps of the same "
        "continuation; preconditioning below). t_c is "
        "the first event coming down from t = 1 (theory's one rule): an upward crossing of zero, a fold, or the "
        "first closest approach (a local maximum below zero, imperfect pitchfork) whatever its depth, counted only "
        "when its prominence stands above the margin's noise -- round-off for the exact score; for the network also "
        "3x its model-error band, its largest deviation from the data-free linear-phase margin 1/2 - 1/sigma^2 at "
        "large t (exact dashed, network dotted; circles mark crossings, triangles closest approaches with margin "
        f"≥ {EVENT_MARGIN:g}). "
        + "; ".join(_margin_text(name, summary[name]) for name in MARGIN_DATASETS)
        + ". (a) Two deltas at ±1; (b) four Gaussians (std 0.1) on the unit circle; "
        "(c) digits, exact score of the finite training set (an empirical mixture of deltas)." + quick_note(r.quick))


def _segments(rec: Recorder, ax, series: str, t: Array, y: Array, segment: NDArray, keep: NDArray,
              columns: dict, **style) -> None:
    """One line per segment id (points where ``keep``), the first one labelled."""
    for n, seg in enumerate(np.unique(segment[keep])):
        on = keep & (segment == seg)
        rec.line(ax, series, t[on], y[on], columns={**columns, "segment": int(seg)}, legend=n == 0, **style)


def draw_events(rec: Recorder, ax, events, colour: str, window: tuple[float, float]) -> None:
    """Near-critical crossings and closest approaches inside the t window, in the curve's colour."""
    for kind in ("crossing", "closest-approach", "fold"):
        ev = [e for e in near_critical(events) if e.kind == kind and window[0] <= e.time.t <= window[1]]
        if ev:
            rec.events(ax, kind, [e.time.t for e in ev], [e.margin for e in ev], None, color=colour,
                       edgecolors="black")


def mark_both(rec: Recorder, ax, t_exact: float, t_network: float | None, digits: int,
              columns: dict | None = None) -> None:
    """The exact t_c (dashed) and, when there is one, the network's (dotted)."""
    exact, network = ({**columns, "method": m} if columns else None for m in ("exact", "network"))
    rec.mark(ax, t_exact, "t_c", f"$t_c$ exact = {t_exact:.{digits}f}", columns=exact)
    if t_network is not None:
        rec.mark(ax, t_network, "t_c", f"$t_c$ network = {t_network:.{digits}f}", approx=True, columns=network)


def _draw_margin_panel(rec: Recorder, ax, letter: str, p: MarginPanel) -> None:
    lo, hi = p.window
    rec.axes(ax, letter, "t", "margin", MARGIN_TITLES[p.name].format(n=p.net.data.n))
    br, network = p.theory.branch, p.network
    _segments(rec, ax, "exact score", br.t, br.margin, br.segment, (br.t >= lo) & (br.t <= hi),
              {"data": p.name, "method": "exact"}, color=EXACT_COLOUR, linewidth=2.4, alpha=0.7)
    _segments(rec, ax, "trained network", network.t, network.margin, network.segment,
              network.converged & (network.t >= lo) & (network.t <= hi),
              {"data": p.name, "method": "network"}, color=NETWORK_COLOUR, linewidth=1.3, marker="o", markersize=2.2)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    for source, colour in ((p.theory, EXACT_COLOUR), (network, NETWORK_COLOUR)):
        draw_events(rec, ax, source.events, colour, (lo, hi))
    mark_both(rec, ax, p.theory.t_c, network.t_c, 4, {"data": p.name})
    ax.set_xlim(hi, lo)  # generation order: t decreasing to the right
    ax.set_ylim(-1.6, 1.0)
    legend(ax, loc="lower left", fontsize=6.5)


@recipe(4, "network_margins", "Theory vs trained network: the margin along the central branch and t_c",
        compute=compute_network_margins)
def draw_network_margins(r: NetworkMarginsResult) -> FigureOutput:
    fig, rec = panel_row(r.panels, _draw_margin_panel, 7.4, 2.8)
    return FigureOutput(fig, rec.frame(), r.summary(), network_margins_caption(r), r.config())


# ---------------------------------------------------------------------------------------------
# figure 5
# ---------------------------------------------------------------------------------------------
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


def _where(offset: float) -> str:
    return "before" if offset < 0 else "after" if offset > 0 else "at"


def arc_numbers(res: ArcPotential, t: float, offset: float) -> dict:
    """The summary of one arc at time t: barriers, mid and end values of both potentials, their largest gap."""
    mid = len(res.a) // 2
    gap = np.abs(res.u - res.u_exact)
    return {"t": t, "where": _where(offset), "logsnr": float(SCHEDULE.logsnr(t)),
            "barrier_exact": barrier_height(res.u_exact), "barrier_network": barrier_height(res.u),
            "u_mid_exact": float(res.u_exact[mid]), "u_mid_network": float(res.u[mid]),
            "u_end_exact": float(res.u_exact[-1]), "u_end_network": float(res.u[-1]),
            "max_abs_gap": float(gap.max()), "exact_range": float(np.ptp(res.u_exact))}


@dataclass(frozen=True)
class ArcRow:
    """One data set of figure 5: the arc's end samples and the potentials at the three times."""

    name: str
    theory: CriticalTimes
    net: Trained
    indices: tuple[int, int]
    y1: Array
    y2: Array
    times: list[float]
    arcs: list[ArcPotential]

    def summary(self) -> dict:
        return {"t_c_exact": self.theory.t_c, "times": [arc_numbers(a, t, off) for a, t, off in
                                                        zip(self.arcs, self.times, ARC_LOGSNR_OFFSETS)],
                "indices": list(self.indices), "training": self.net.describe()}

    def config(self) -> dict:
        return {"data": self.net.data.config, "sample_indices": list(self.indices), "y1": self.y1, "y2": self.y2,
                "times": self.times, "logsnr_offsets": list(ARC_LOGSNR_OFFSETS), "train": self.net.describe()}


@dataclass(frozen=True)
class ArcResult:
    """Figure 5's numbers: one :class:`ArcRow` per data set of :data:`ARC_DATASETS`, and the class pair of the
    digits row."""

    rows: tuple[ArcRow, ...]
    n_points: int
    digits_pair: tuple[int, int]
    quick: bool

    def summary(self) -> dict:
        return {row.name: row.summary() for row in self.rows}

    def config(self) -> dict:
        return {"schedule": SCHEDULE.config(), "dynamics": "sde", "n_points": self.n_points, "rule": "simpson",
                "datasets": {row.name: row.config() for row in self.rows}}


def _arc_row(name: str, ctx: FigureContext, n_points: int) -> ArcRow:
    from symbreak.experiments.measure.arc import arc_potential

    net = trained(name, ctx)
    theory = exact_critical(name, ctx.quick, ctx.seed)
    model = exact_model(net.data)
    idx, y1, y2 = arc_ends(net.data)
    times = [float(SCHEDULE.t_of_logsnr(theory.logsnr_c + off)) for off in ARC_LOGSNR_OFFSETS]
    arcs = []
    for t in times:
        alpha = float(SCHEDULE.alpha(t))
        arcs.append(arc_potential(net.denoiser, alpha * y1, alpha * y2, t, n_points=n_points, model=model))
    return ArcRow(name, theory, net, idx, y1, y2, times, arcs)


@single_threaded
def compute_arc_potential(ctx: FigureContext) -> ArcResult:
    n_points = ctx.choose(201, 81)
    rows = tuple(_arc_row(name, ctx, n_points) for name in ARC_DATASETS)
    return ArcResult(rows, n_points, class_pair(trained("digits", ctx).data), ctx.quick)


def arc_caption(r: ArcResult) -> str:
    summary = r.summary()

    def shape(row: dict) -> str:
        return f"barrier {row['barrier_exact']:.2f} exact vs {row['barrier_network']:.2f} network"

    desc = "; ".join(f"{name} (t_c = {summary[name]['t_c_exact']:.4f}): " + ", ".join(
        f"t = {row['t']:.3f}: {shape(row)}" for row in summary[name]["times"]) for name in ARC_DATASETS)
    return (
        "The potential u(x, t) = beta(t)(−|x|²/4 − log p_t(x)) (reverse SDE, VP linear schedule) along the arc "
        "x(a) = cos(a) x_1 + sin(a) x_2 between two training samples scaled to time t (x_i = alpha(t) y_i), "
        "relative to its value at x_1. Exact score: u from log p_t of the data (blue); network: the line "
        "integral −∫⟨b(x(a')), x'(a')⟩ da' of its learned drift b (cumulative Simpson rule, orange). Columns: "
        f"logsnr_c − {-ARC_LOGSNR_OFFSETS[0]:g} (before t_c in generation order), logsnr_c and logsnr_c + "
        f"{ARC_LOGSNR_OFFSETS[2]:g} (after). Top: 2-D mixture, samples of the modes at 0° and 90°; bottom: digits, "
        f"the first training images of the two classes whose means lie farthest apart (classes "
        f"{r.digits_pair}). Barrier: the highest interior local maximum of u above the higher of "
        f"the lowest points on its two sides (0: a single basin). Before t_c the samples share one basin; a barrier "
        f"between their wells grows after it. {desc}." + quick_note(r.quick))


def _draw_arc(rec: Recorder, ax, letter: str, row: ArcRow, col: int, first_row: bool) -> None:
    t, res, where = row.times[col], row.arcs[col], _where(ARC_LOGSNR_OFFSETS[col])
    relation = {"before": ">", "at": "=", "after": "<"}[where]
    data = "mixture" if row.name == "gmm-2d" else "digits"
    rec.axes(ax, letter, "a", "u_arc", f"{data}, t = {t:.3f} {relation} $t_c$")
    if first_row:
        ax.set_xlabel("")
    if col > 0:
        ax.set_ylabel("")
    cols = {"data": row.name, "t": t, "where": where}
    rec.line(ax, "exact score", res.a, res.u_exact, columns={**cols, "method": "exact"}, color=EXACT_COLOUR,
             linewidth=2.4, alpha=0.7)
    rec.line(ax, "trained network", res.a, res.u, columns={**cols, "method": "network"}, color=NETWORK_COLOUR,
             linewidth=1.3)
    ax.set_xlim(0.0, 0.5 * np.pi)
    ax.set_xticks([0.0, 0.25 * np.pi, 0.5 * np.pi], ["0\n($x_1$)", r"$\pi/4$", r"$\pi/2$" "\n($x_2$)"])
    if col == 0:
        legend(ax, fontsize=7)


@recipe(5, "arc_potential", "Potential along an arc between two samples, trained network vs exact score",
        compute=compute_arc_potential)
def draw_arc_potential(r: ArcResult) -> FigureOutput:
    fig, axes = new_figure(2, 3, 7.4, 4.8)
    rec = Recorder()
    for i, row in enumerate(r.rows):
        for col in range(len(ARC_LOGSNR_OFFSETS)):
            _draw_arc(rec, axes[i, col], "abcdef"[3 * i + col], row, col, i == 0)
    return FigureOutput(fig, rec.frame(), r.summary(), arc_caption(r), r.config())
