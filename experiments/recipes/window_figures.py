"""Figure 13: the critical window measured three ways -- stability of the central branch, cloning and
forward-backward class retention, commitment of the predicted class -- for the exact score, its Gaussian
approximation and the trained network, on digits and on the 2-D mixture, with the theory's t_c (exact,
Gaussian) and speciation t_S, a table of midpoints and widths, and how the 2-D network's windows move
with its training length (:mod:`symbreak.experiments.measure.window`).

Networks come from :func:`.network_figures.trained` (shared with figures 4-7); the training-length sweep
uses the same recipe with other step counts, cached like every network.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, invert_time_axis, legend, recipe
from symbreak.experiments.recipes.network_figures import (
    EXACT_COLOUR,
    NETWORK_COLOUR,
    QUICK_BATCH,
    SCHEDULE,
    T_MIN,
    Trained,
    quick_note,
    single_threaded,
    trained,
)

if TYPE_CHECKING:
    from symbreak.experiments.measure.window import Sampling, Window, WindowComparison

DATASETS = ("digits", "gmm-2d")
TITLES = {"digits": "digits", "gmm-2d": "2-D mixture"}
COLOURS = {"exact": EXACT_COLOUR, "gaussian": "#009E73", "network": NETWORK_COLOUR}
LABELS = {"exact": "exact score", "gaussian": "Gaussian approx.", "network": "network"}
STYLES = {"cloning": "-", "forward-backward": "--", "commitment": "-"}
MEASURE_MARKERS = {"stability": "o", "cloning": "s", "forward-backward": "^", "commitment": "D"}
SWEEP_MEASURES = ("stability", "cloning", "forward-backward", "commitment")
# sample counts, Euler-Maruyama steps, clone times and bootstrap draws (full, quick)
SIZES = {"digits": {"full": (200, 100, (0.1, 0.7, 9), 100, 41), "quick": (48, 40, (0.1, 0.7, 5), 30, 13)},
         "gmm-2d": {"full": (400, 200, (0.04, 0.6, 12), 200, 61), "quick": (80, 60, (0.04, 0.6, 6), 30, 15)}}
SWEEP_STEPS = {"full": (300, 1000, 3000), "quick": (100, 300)}


def sampling_of(name: str, ctx: FigureContext) -> tuple[Sampling, int]:
    """The :class:`Sampling` of one data set in this mode, and the network branch's logsnr points."""
    from symbreak.experiments.measure.window import Sampling

    n, steps, (lo, hi, k), boot, points = SIZES[name][ctx.choose("full", "quick")]
    times = tuple(float(t) for t in np.round(np.linspace(lo, hi, k), 4))
    return Sampling(f"{ctx.seed}-{ctx.seed + n - 1}", times, steps, "sde", boot, ctx.seed), points


@dataclass(frozen=True)
class WindowPanel:
    """One data set: its :class:`WindowComparison` and the network it measured."""

    name: str
    comparison: WindowComparison
    net: Trained

    def summary(self) -> dict:
        from symbreak.experiments.measure.window import distance_summary

        return {**self.comparison.to_dict(), "network_minus_exact": distance_summary(self.comparison),
                "training": self.net.describe()}


@dataclass(frozen=True)
class SweepPoint:
    """The 2-D network trained for ``steps`` steps: its final loss and windows (class level)."""

    steps: int
    final_loss: float
    windows: dict[str, Window]
    kind: str


@dataclass(frozen=True)
class WindowFigureResult:
    panels: tuple[WindowPanel, ...]
    sweep: tuple[SweepPoint, ...]
    quick: bool

    def panel(self, name: str) -> WindowPanel:
        return next(p for p in self.panels if p.name == name)

    def sweep_rows(self) -> list[dict]:
        exact = self.panel("gmm-2d").comparison.get("exact")
        return [{"steps": p.steps, "final_loss": p.final_loss, "measure": m, "t_mid": p.windows[m].t_mid,
                 "t_mid_se": p.windows[m].t_mid_se, "width": p.windows[m].width,
                 "delta_t_vs_exact": None if p.windows[m].t_mid is None or exact.window(m).t_mid is None
                 else p.windows[m].t_mid - exact.window(m).t_mid} for p in self.sweep for m in SWEEP_MEASURES]

    def summary(self) -> dict:
        return {**{p.name: p.summary() for p in self.panels}, "sweep_gmm_2d": self.sweep_rows()}

    def config(self) -> dict:
        return {"schedule": SCHEDULE.config(), "sampler": "sde", "datasets": {
            p.name: {"data": p.net.data.config, "train": p.net.describe(), **p.comparison.config} for p in self.panels},
            "sweep_steps": [p.steps for p in self.sweep]}


def _panel(name: str, ctx: FigureContext) -> WindowPanel:
    from symbreak.experiments.measure.window import critical_window

    net = trained(name, ctx)
    sampling, points = sampling_of(name, ctx)
    comparison = critical_window(net.data, SCHEDULE, network=net.denoiser, sampling=sampling, branch_points=points,
                                 t_min=T_MIN, cache_dir=ctx.cache_dir, classifier_steps=ctx.settings.classifier_steps)
    return WindowPanel(name, comparison, net)


def _sweep_point(steps: int, ctx: FigureContext) -> SweepPoint:
    """The 2-D network retrained for ``steps`` steps (otherwise figure 4's recipe) and its windows."""
    from symbreak.experiments.measure.window import critical_window
    from symbreak.experiments.models.training import default_train_config, load_or_train_model

    data = trained("gmm-2d", ctx).data
    config = replace(default_train_config(data), steps=steps, seed=ctx.seed,
                     batch_size=ctx.choose(default_train_config(data).batch_size, QUICK_BATCH))
    model = load_or_train_model(data, SCHEDULE, config, device=ctx.device, cache_dir=ctx.cache_dir)
    sampling, points = sampling_of("gmm-2d", ctx)
    comparison = critical_window(data, SCHEDULE, network=model.denoiser, sampling=sampling, denoisers=("network",),
                                 branch_points=points, t_min=T_MIN, cache_dir=ctx.cache_dir)
    measured = comparison.get("network")
    return SweepPoint(steps, model.final_loss, {m: measured.window(m) for m in SWEEP_MEASURES},
                      measured.stability.kind)


@single_threaded
def compute_windows(ctx: FigureContext) -> WindowFigureResult:
    panels = tuple(_panel(name, ctx) for name in DATASETS)
    sweep = tuple(_sweep_point(s, ctx) for s in SWEEP_STEPS[ctx.choose("full", "quick")])
    return WindowFigureResult(panels, sweep, ctx.quick)


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------
def _theory_marks(rec: Recorder, ax, comparison: WindowComparison, data: str, labelled: bool = False) -> None:
    """t_c (exact dashed, Gaussian dotted) and t_S; in the legend only where ``labelled``."""
    th = comparison.theory
    names = {"exact": f"$t_c$ exact = {th.exact.t_c:.3f}", "gaussian": f"$t_c$ Gaussian = {th.gaussian.t_c:.3f}",
             "t_s": None if th.gaussian.t_s is None else f"$t_S$ = {th.gaussian.t_s:.3f}"}
    shown = {k: v if labelled else None for k, v in names.items()}
    rec.mark(ax, th.exact.t_c, "t_c", shown["exact"], columns={"data": data, "theory": names["exact"]})
    rec.mark(ax, th.gaussian.t_c, "t_c", shown["gaussian"], approx=True,
             columns={"data": data, "theory": names["gaussian"]})
    if th.gaussian.t_s is not None:
        rec.mark(ax, th.gaussian.t_s, "t_s", shown["t_s"], columns={"data": data, "theory": names["t_s"]})


def _draw_stability(rec: Recorder, ax, letter: str, p: WindowPanel) -> None:
    rec.axes(ax, letter, "t", "margin", f"{TITLES[p.name]}: stability")
    for m in p.comparison.measured:
        s = m.stability
        keep = s.t >= T_MIN
        rec.line(ax, LABELS[m.name], s.t[keep], s.margin[keep], columns={"data": p.name, "denoiser": m.name},
                 color=COLOURS[m.name], linewidth=1.3)
        if s.t_event is not None and s.depth is not None:
            rec.points(ax, f"{LABELS[m.name]}: first event ({s.kind})", [s.t_event], [s.depth], legend=False,
                       columns={"data": p.name, "denoiser": m.name, "kind": s.kind}, color=COLOURS[m.name],
                       marker="v" if s.kind == "closest-approach" else "o", s=30, zorder=4, edgecolors="black")
    ax.axhline(0.0, color="0.6", linewidth=0.6)
    _theory_marks(rec, ax, p.comparison, p.name, labelled=True)
    invert_time_axis(ax, SCHEDULE.T)
    ax.set_ylim(-0.55, 0.3)
    legend(ax, loc="upper left", fontsize=6, framed=True)


def _draw_curves(rec: Recorder, ax, letter: str, p: WindowPanel, measures: tuple[str, ...], y: str,
                 title: str) -> None:
    rec.axes(ax, letter, "t", y, f"{TITLES[p.name]}: {title}")
    for m in p.comparison.measured:
        for measure in measures:
            c = m.curve(measure)
            label = LABELS[m.name] + ("" if len(measures) == 1 else f", {measure}")
            cols = {"data": p.name, "denoiser": m.name, "measure": measure, "stderr": c.stderr, "floor": c.floor}
            rec.line(ax, label, c.t, c.value, columns=cols, color=COLOURS[m.name], linestyle=STYLES[measure],
                     linewidth=1.2, marker="." if measure != "commitment" else None, markersize=3, legend=False)
            w = c.window
            if w.t_mid is not None:
                level = c.floor + 0.5 * (1 - c.floor)
                rec.points(ax, f"{label}: midpoint", [w.t_mid], [level], legend=False,
                           columns={**cols, "stderr": w.t_mid_se if w.t_mid_se is not None else np.nan,
                                    "floor": c.floor}, color=COLOURS[m.name], marker="|", s=120, zorder=4)
                if w.t_mid_se is not None:
                    ax.errorbar([w.t_mid], [level], xerr=[2 * w.t_mid_se], fmt="none", ecolor=COLOURS[m.name],
                                elinewidth=1.0, capsize=2)
    _theory_marks(rec, ax, p.comparison, p.name)
    invert_time_axis(ax, SCHEDULE.T)
    ax.set_ylim(-0.02, 1.02)
    if len(measures) > 1:  # the line styles (colours: the denoisers, as in the stability panel)
        for measure in measures:
            ax.plot([], [], color="0.3", linestyle=STYLES[measure], label=measure)
        legend(ax, loc="upper left", fontsize=6)


def _draw_sweep(rec: Recorder, ax, r: WindowFigureResult) -> None:
    rec.axes(ax, "g", "training steps", "t", "2-D network: midpoints vs training")
    exact = r.panel("gmm-2d").comparison.get("exact")
    colours = dict(zip(SWEEP_MEASURES, ("#D55E00", "#0072B2", "#56B4E9", "#000000")))
    steps = [p.steps for p in r.sweep]
    for m in SWEEP_MEASURES:
        values = [np.nan if p.windows[m].t_mid is None else p.windows[m].t_mid for p in r.sweep]
        rec.line(ax, f"network, {m}", steps, values, columns={"measure": m}, color=colours[m],
                 marker=MEASURE_MARKERS[m], linewidth=1.0)
        if exact.window(m).t_mid is not None:
            ax.axhline(exact.window(m).t_mid, color=colours[m], linestyle=":", linewidth=1.0)
            rec.table(ax, f"exact, {m}", [{"measure": m, "t_mid_exact": exact.window(m).t_mid}])
    ax.set_xscale("log")
    ax.set_xticks(steps, [str(v) for v in steps])
    ax.minorticks_off()
    ax.set_ylabel(r"midpoint $t$ (dotted: exact score)")
    legend(ax, loc="best", fontsize=6)


def _fmt(w: Window) -> str:
    mid = "—" if w.t_mid is None else f"{w.t_mid:.3f}" + ("" if w.t_mid_se is None else f"±{w.t_mid_se:.3f}")
    return mid + ("" if w.width is None else f" / {w.width:.2f}")


def _draw_table(rec: Recorder, ax, r: WindowFigureResult) -> None:
    rec.axes(ax, "h", "", "", "window midpoints ± s.e. / widths (10–90 %), in t")
    ax.axis("off")
    header = ["data", "measure", "exact", "Gaussian", "network"]
    cells, rows = [], []
    for p in r.panels:
        for measure in SWEEP_MEASURES:
            ws = [p.comparison.get(n).window(measure) for n in ("exact", "gaussian", "network")]
            cells.append([TITLES[p.name], measure] + [_fmt(w) for w in ws])
            rows += [{"data": p.name, "measure": measure, "denoiser": n, "t_mid": w.t_mid, "width": w.width}
                     for n, w in zip(("exact", "gaussian", "network"), ws)]
        th = p.comparison.theory
        ts = "—" if th.gaussian.t_s is None else f"{th.gaussian.t_s:.3f}"
        cells.append([TITLES[p.name], "theory", f"t_c {th.exact.t_c:.3f}", f"t_c {th.gaussian.t_c:.3f}", f"t_S {ts}"])
        rows.append({"data": p.name, "measure": "theory", "t_c_exact": th.exact.t_c, "t_c_gaussian": th.gaussian.t_c,
                     "t_s": th.gaussian.t_s if th.gaussian.t_s is not None else np.nan})
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(5.5)
    table.scale(1.0, 1.05)
    rec.table(ax, "windows", rows)


def _listing(p: WindowPanel) -> str:
    c = p.comparison
    parts = []
    for measure in SWEEP_MEASURES:
        ws = {n: c.get(n).window(measure) for n in ("exact", "gaussian", "network")}
        gap = (None if ws["network"].t_mid is None or ws["exact"].t_mid is None
               else ws["network"].t_mid - ws["exact"].t_mid)
        parts.append(f"{measure} exact {_fmt(ws['exact'])}, Gaussian {_fmt(ws['gaussian'])}, network "
                     f"{_fmt(ws['network'])}" + ("" if gap is None else f" (network − exact {gap:+.3f})"))
    return "; ".join(parts)


def _verdict(p: WindowPanel) -> str:
    """Whether the network commits earlier or later (in generation order) than the exact score, and by how much."""
    from symbreak.experiments.measure.window import distance_summary

    gaps = distance_summary(p.comparison)
    sampled = [gaps[m] for m in SWEEP_MEASURES[1:] if gaps[m] is not None]
    if not sampled:
        return ""
    rel = max(abs(gaps[f"{m}_rel"]) for m in SWEEP_MEASURES[1:] if gaps[m] is not None)
    side = ("later (smaller t) than" if max(sampled) < 0 else "earlier (larger t) than" if min(sampled) > 0
            else "on both sides of")
    return (f"On the {TITLES[p.name]} the network's sampled windows sit {side} the exact score's, by "
            f"{min(map(abs, sampled)):.3f}–{max(map(abs, sampled)):.3f} in t (at most {100 * rel:.0f} %). ")


def _sweep_text(r: WindowFigureResult) -> str:
    rows = r.sweep_rows()
    return "; ".join(f"{p.steps} steps: " + ", ".join(
        f"{row['measure']} {row['delta_t_vs_exact']:+.3f}" if row["delta_t_vs_exact"] is not None
        else f"{row['measure']} —" for row in rows if row["steps"] == p.steps) for p in r.sweep)


def windows_caption(r: WindowFigureResult) -> str:
    dig, gmm = r.panel("digits"), r.panel("gmm-2d")
    sizes = {n: SIZES[n]["quick" if r.quick else "full"] for n in DATASETS}
    th = dig.comparison.theory
    return (
        "The critical window measured three ways for the exact score of the training set (blue; the mixture's exact "
        "model for the 2-D set), its Gaussian approximation N(mean, cov) (green) and the trained MLP (orange), all on "
        "the VP-linear reverse SDE (Euler–Maruyama). (a, d) Stability: the margin (top eigenvalue of J/beta) along "
        "the central branch and its first event (circle: crossing, triangle: closest approach). (b, e) Cloning "
        "(solid; Biroli et al.: two independent continuations from the state x_t of a path, share ending in the same "
        "class) and forward–backward retention (dashed; Sclocchi, Favero & Wyart: a training point noised to t and "
        "denoised back, share keeping its class). (c, f) Commitment: share of paths whose predicted class of "
        "D(x_t, t) no longer changes below t. Classes: digits by the in-domain classifier, the mixture by the nearest "
        "component. Ticks: midpoints (half-way between the chance level and 1, after an isotonic fit), bars ±2 "
        f"bootstrap s.e. over samples. Digits ({dig.net.data.n} images): {_listing(dig)}; theory t_c exact = "
        f"{th.exact.t_c:.3f} ({th.exact.kind}), Gaussian {th.gaussian.t_c:.3f}, t_S = "
        + ("—" if th.gaussian.t_s is None else f"{th.gaussian.t_s:.3f}")
        + f". 2-D mixture: {_listing(gmm)}; t_c exact = {gmm.comparison.theory.exact.t_c:.3f}, Gaussian "
        f"{gmm.comparison.theory.gaussian.t_c:.3f} (Lambda = {gmm.comparison.theory.gaussian.lambda_max:.2f} < 1: no "
        f"speciation). (g) The 2-D network's midpoints against training length (dotted: exact score; a missing "
        f"stability point: that network's margin has no event); network − exact in t: {_sweep_text(r)}. "
        "(h) The table of midpoints ± s.e. / widths (stability: the event and the "
        "10–90 % rise of the margin towards it). " + _verdict(dig) + _verdict(gmm)
        + f"Sizes: digits {sizes['digits'][0]} paths, {sizes['digits'][1]} "
        f"steps, {sizes['digits'][2][2]} clone times in [{sizes['digits'][2][0]}, {sizes['digits'][2][1]}]; mixture "
        f"{sizes['gmm-2d'][0]} paths, {sizes['gmm-2d'][1]} steps, {sizes['gmm-2d'][2][2]} times in "
        f"[{sizes['gmm-2d'][2][0]}, {sizes['gmm-2d'][2][1]}]; bootstrap {sizes['digits'][3]} / {sizes['gmm-2d'][3]} "
        "draws." + quick_note(r.quick))


@recipe(13, "critical_window", "The critical window three ways: stability, cloning/retention, commitment",
        compute=compute_windows)
def draw_windows(r: WindowFigureResult) -> FigureOutput:
    fig, axes = new_figure(3, 3, 10.5, 9.6)
    rec = Recorder()
    for row, p, letters in ((0, r.panel("digits"), "abc"), (1, r.panel("gmm-2d"), "def")):
        _draw_stability(rec, axes[row, 0], letters[0], p)
        _draw_curves(rec, axes[row, 1], letters[1], p, ("cloning", "forward-backward"), "P(same class)",
                     "cloning and retention")
        _draw_curves(rec, axes[row, 2], letters[2], p, ("commitment",), "share committed", "commitment")
    _draw_sweep(rec, axes[2, 0], r)
    gs = axes[2, 1].get_subplotspec().get_gridspec()
    for ax in axes[2, 1:]:
        ax.remove()
    _draw_table(rec, fig.add_subplot(gs[2, 1:]), r)
    return FigureOutput(fig, rec.frame(), r.summary(), windows_caption(r), r.config())
