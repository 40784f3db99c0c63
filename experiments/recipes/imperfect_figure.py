"""Figure 3: real data are not symmetric. An asymmetric 2-D mixture (imperfect pitchfork, fold) and digits
(successive bifurcations along the followed branch), exact score against the Gaussian approximation.

VP linear schedule, reverse SDE; fixed points on the mixture's x_1 axis from its exact 1-D marginal
(:func:`axis_marginal`), branches followed by Newton continuation (:func:`symbreak.theory.critical_times`),
the Gaussian approximation's margins from the data covariance (:func:`symbreak.theory.gaussian_margin`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, invert_time_axis, legend, recipe
from symbreak.experiments.recipes.theory_figures import FlowField, draw_diagram, draw_flow, flow_field
from symbreak.theory import (
    CriticalTimes,
    GaussianMixture,
    Schedule,
    VPLinear,
    critical_times,
    gaussian_critical_times,
    gaussian_margin,
)
from symbreak.theory.bifurcation import CountChange, FixedPointDiagram, fixed_point_diagram

if TYPE_CHECKING:
    from symbreak.analysis.critical import DatasetCriticalTimes
    from symbreak.analysis.datasets import Dataset

Array = NDArray[np.float64]
BRANCH_COLOUR, BRANCH_COLOUR_LIGHT = "#56B4E9", "#9ECAE1"
GAUSSIAN_COLOUR = "#009E73"
DIGITS_WINDOW = (0.15, 0.7)                # the digits margins are shown for t in this window
DIGITS_QUICK_N, DIGITS_K = 200, 3          # exact-score subset in quick mode, eigenvalues shown
EVENT_KINDS = ("crossing", "closest-approach", "fold")


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


@dataclass(frozen=True)
class MarginPanel:
    """The top ``k`` eigenvalues of J / beta for t in ``t_window``: along the followed branch of ``ct`` (exact
    score) and, on ``t_grid``, at the centre in the Gaussian approximation (``gaussian``: (len(t_grid), k))."""

    ct: CriticalTimes
    gauss: CriticalTimes
    t_window: tuple[float, float]
    k: int
    t_grid: Array
    gaussian: Array


def margin_panel(ct: CriticalTimes, gauss: CriticalTimes, lam: Array, schedule: Schedule,
                 t_window: tuple[float, float], n_t: int, k: int) -> MarginPanel:
    t_grid = np.linspace(*t_window, n_t)
    return MarginPanel(ct, gauss, t_window, k, t_grid, gaussian_margin(lam[:k], schedule.logsnr(t_grid), schedule))


def draw_margins(rec: Recorder, ax, p: MarginPanel) -> None:
    """The exact branch's eigenvalues (one line per segment between folds), the Gaussian ones, their events
    and both t_c."""
    branch, k = p.ct.branch, p.k
    shown = (branch.t >= p.t_window[0]) & (branch.t <= p.t_window[1])
    for i in range(min(k, branch.eigenvalues.shape[1])):
        for seg in np.unique(branch.segment[shown]):
            on = shown & (branch.segment == seg)
            rec.line(ax, "exact score" if i == 0 else f"exact, eigenvalues 2-{k}", branch.t[on],
                     branch.eigenvalues[on, i], columns={"eigenvalue": i + 1, "segment": int(seg), "method": "exact"},
                     legend=seg == branch.segment[shown][0] and i < 2,
                     color=BRANCH_COLOUR if i == 0 else BRANCH_COLOUR_LIGHT,
                     linewidth=1.8 if i == 0 else 1.0, zorder=3 if i == 0 else 2.5)
    for i in range(p.gaussian.shape[1]):
        rec.line(ax, "Gaussian approximation" if i == 0 else f"Gaussian, eigenvalues 2-{k}", p.t_grid,
                 p.gaussian[:, i], columns={"eigenvalue": i + 1, "method": "gaussian"}, legend=i < 2,
                 color=GAUSSIAN_COLOUR, linewidth=1.4 if i == 0 else 0.8, alpha=1.0 if i == 0 else 0.7)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    for source, colour in ((p.ct, BRANCH_COLOUR), (p.gauss, GAUSSIAN_COLOUR)):
        for kind in EVENT_KINDS:
            ev = [e for e in source.events if e.kind == kind and e.index < k]
            if ev:
                rec.events(ax, kind, [e.time.t for e in ev], [e.margin for e in ev], f"{kind} ({source.method})",
                           color=colour, edgecolors="black")
    rec.mark(ax, p.ct.t_c, "t_c", f"$t_c$ exact = {p.ct.t_c:.4f}")
    rec.mark(ax, p.gauss.t_c, "t_c", f"$t_c$ Gaussian = {p.gauss.t_c:.4f}", approx=True)
    ax.set_xlim(p.t_window[1], p.t_window[0])


def _events_summary(ct: CriticalTimes) -> list[dict]:
    return [{"kind": e.kind, "t": e.time.t, "logsnr": e.time.logsnr, "margin": e.margin, "eigenvalue": e.index + 1}
            for e in ct.events]


@dataclass(frozen=True)
class ImperfectResult:
    """Figure 3's numbers. Top: the asymmetric mixture (``asym``, spectrum ``asym_lam``): fixed-point
    diagram of its x_1 marginal, flow, followed branch, margins. Bottom: digits (``dct``: the dataset's
    exact and Gaussian critical times), margins, and the image of the soft direction beside the top
    covariance eigenvector with their overlaps."""

    schedule: Schedule
    asym: GaussianMixture
    asym_ct: CriticalTimes
    asym_lam: Array
    diagram: FixedPointDiagram
    n_diagram: int
    flow: FlowField
    asym_margins: MarginPanel
    digits: Dataset
    dct: DatasetCriticalTimes
    digit_margins: MarginPanel
    soft_image: Array
    overlap: float
    in_top: float

    @property
    def folds(self) -> list[CountChange]:
        return [c for c in self.diagram.changes if c.kind == "fold"]

    def summary(self) -> dict:
        asym_ct, asym_gauss, dct = self.asym_ct, self.asym_margins.gauss, self.dct
        dig_ct, dig_gauss, spectrum = dct.exact, dct.gaussian, dct.spectrum
        return {
            "asymmetric": {"t_c": asym_ct.t_c, "kind": asym_ct.kind, "margin_c": asym_ct.margin_c,
                           "t_c_gaussian": asym_gauss.t_c, "Lambda": float(self.asym_lam[0]),
                           "folds": [{"t": c.t, "x1": c.x} for c in self.folds], "events": _events_summary(asym_ct)},
            "digits": {"n_exact": dct.n_exact, "n_gaussian": self.digits.n, "t_c": dig_ct.t_c, "kind": dig_ct.kind,
                       "margin_c": dig_ct.margin_c, "t_c_gaussian": dig_gauss.t_c, "lam_top": spectrum.lam[:DIGITS_K],
                       "events": _events_summary(dig_ct), "gaussian_crossings": [e.time.t for e in dig_gauss.events],
                       "soft_direction_cos_top_eigenvector": self.overlap,
                       f"soft_direction_norm_in_top_{DIGITS_K}": self.in_top, "branch_status": dig_ct.branch.status}}

    def config(self) -> dict:
        return {"schedule": self.schedule.config(), "dynamics": "sde", "asymmetric": self.asym.config(),
                "n_t_diagram": self.n_diagram, "digits": self.digits.config, "digits_exact_subset": self.dct.subset,
                "digits_t_window": list(DIGITS_WINDOW), "k": DIGITS_K, "gaussian_spectrum": self.dct.spectrum.config()}


def _soft_direction(digits: Dataset, dct: DatasetCriticalTimes) -> tuple[Array, float, float]:
    """The direction that goes soft at the exact t_c (signed to agree with the top covariance eigenvector)
    beside that eigenvector as one image with a NaN gap, |cos| between them and the soft direction's norm in
    the span of the top :data:`DIGITS_K` eigenvectors."""
    top = dct.spectrum.vecs[:, :DIGITS_K]
    soft = dct.soft_direction.ravel()
    soft = soft * np.sign(soft @ top[:, 0])
    image = np.hstack([digits.unflatten(soft), np.full((8, 1), np.nan), digits.unflatten(top[:, 0])])
    return image, float(abs(soft @ top[:, 0])), float(np.linalg.norm(top.T @ soft))


def compute_imperfect(ctx: FigureContext) -> ImperfectResult:
    from symbreak.analysis.critical import dataset_critical_times
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.spectrum import spectrum_from_moments

    schedule = VPLinear()
    asym = load_dataset("gmm-asym").model
    asym_ct = critical_times(asym, schedule)
    asym_lam = spectrum_from_moments(asym.mean, asym.cov).lam
    asym_gauss = gaussian_critical_times(asym_lam, schedule)
    n_diagram, n_t = ctx.choose(161, 61), ctx.choose(300, 100)
    marginal = axis_marginal(asym)
    diagram = fixed_point_diagram(marginal, schedule, np.linspace(0.01, schedule.T, n_diagram),
                                  tol=ctx.choose(1e-10, 1e-8))
    digits = load_dataset("digits")
    dct = dataset_critical_times(digits, schedule, method="both", max_points=ctx.choose(None, DIGITS_QUICK_N),
                                 seed=ctx.seed, k=DIGITS_K)
    flow = flow_field(marginal, schedule, np.linspace(0.04, 0.96, ctx.choose(18, 12)),
                      np.linspace(-1.5, 1.0, ctx.choose(11, 9)))
    asym_margins = margin_panel(asym_ct, asym_gauss, asym_lam, schedule, (0.1, schedule.T), n_t, 1)
    digit_margins = margin_panel(dct.exact, dct.gaussian, dct.spectrum.lam, schedule, DIGITS_WINDOW, n_t, DIGITS_K)
    image, overlap, in_top = _soft_direction(digits, dct)
    return ImperfectResult(schedule, asym, asym_ct, asym_lam, diagram, n_diagram, flow, asym_margins, digits, dct,
                           digit_margins, image, overlap, in_top)


def imperfect_caption(r: ImperfectResult) -> str:
    asym_ct, asym_gauss, folds, digits, dct = r.asym_ct, r.asym_margins.gauss, r.folds, r.digits, r.dct
    dig_ct, dig_gauss, lam = dct.exact, dct.gaussian, dct.spectrum.lam
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
        f"approximation (Lambda = {r.asym_lam[0]:.4f}) crosses zero at t = {asym_gauss.t_c:.4f}. Bottom: digits "
        f"(8×8 pixels; {sizes}). (c) The top {DIGITS_K} eigenvalues of J/beta along the followed "
        f"branch (exact score; events: {dig_events}; a line breaks where a fold ends a segment and the "
        f"continuation restarts on the attractor) and at the centre in the Gaussian approximation (Lambda = "
        f"{lam[0]:.4f}), whose eigenvalues cross zero one after another (successive bifurcations at "
        f"t = {crossings_k}). Exact t_c = {dig_ct.t_c:.4f} ({dig_ct.kind}, margin {dig_ct.margin_c:.3g}) against "
        f"Gaussian t_c = {dig_gauss.t_c:.4f}. (d) The direction that goes soft at the exact t_c and the top "
        f"covariance eigenvector: |cos| = {r.overlap:.3f}, and {r.in_top:.3f} of the soft direction's norm lies in "
        f"the span of the top {DIGITS_K} eigenvectors (eigenvalues "
        f"{', '.join(f'{v:.3f}' for v in lam[:DIGITS_K])}, nearly degenerate).")
    if dig_ct.branch.status != "complete":
        caption += f" The continuation of the digits branch {dig_ct.branch.status}."
    return caption


def _draw_mixture_panels(rec: Recorder, axes, r: ImperfectResult) -> None:
    """(a) the mixture's fixed points, flow, followed branch and folds; (b) its margin."""
    ax = axes[0, 0]
    rec.axes(ax, "a", "t", "x*", "asymmetric mixture: fixed points on $x_1$")
    draw_flow(rec, ax, r.flow)
    draw_diagram(rec, ax, r.diagram, "t")
    rec.line(ax, "followed branch (Newton)", r.asym_ct.branch.t, r.asym_ct.branch.x[:, 0],
             columns={"method": "continuation"}, color=BRANCH_COLOUR, linewidth=3.0, alpha=0.6, zorder=0.8)
    if r.folds:
        rec.events(ax, "fold", [c.t for c in r.folds], [c.x for c in r.folds], "fold (saddle-node)")
    rec.mark(ax, r.asym_ct.t_c, "t_c", f"$t_c$ = {r.asym_ct.t_c:.4f} ({r.asym_ct.kind})")
    invert_time_axis(ax, r.schedule.T)
    ax.set_ylim(-1.6, 1.1)
    legend(ax, framed=True, loc="lower left", fontsize=7)

    ax = axes[0, 1]
    rec.axes(ax, "b", "t", "margin", "asymmetric mixture: margin")
    draw_margins(rec, ax, r.asym_margins)
    ax.set_ylim(-1.5, 1.0)
    legend(ax, loc="lower left", fontsize=7)


def _draw_digit_panels(rec: Recorder, axes, r: ImperfectResult) -> None:
    """(c) the digits' top eigenvalues; (d) the soft direction beside the top covariance eigenvector."""
    ax = axes[1, 0]
    rec.axes(ax, "c", "t", "eig(J)/beta", f"digits ({r.dct.n_exact} images): top {DIGITS_K} eigenvalues")
    draw_margins(rec, ax, r.digit_margins)
    ax.set_ylim(-1.45, 0.45)
    legend(ax, framed=True, loc="lower left", fontsize=6.5, ncol=2)

    ax = axes[1, 1]
    rec.axes(ax, "d", "pixel column", "pixel row", "direction that goes soft at $t_c$")
    scale = float(np.nanmax(np.abs(r.soft_image)))
    rec.image(ax, "soft direction (exact) | top covariance eigenvector", r.soft_image, cmap="RdBu_r",
              vmin=-scale, vmax=scale)
    ax.set_xticks([3.5, 12.5], ["exact score\n(soft direction)", "Gaussian approx.\n(top eigenvector)"])
    ax.set_yticks([])
    ax.grid(False)


@recipe(3, "imperfect_bifurcation", "Asymmetric mixture and digits: imperfect and successive bifurcations, "
                                    "exact score vs Gaussian approximation", compute=compute_imperfect)
def draw_imperfect(r: ImperfectResult) -> FigureOutput:
    fig, axes = new_figure(2, 2, 7.4, 5.8)
    rec = Recorder()
    _draw_mixture_panels(rec, axes, r)
    _draw_digit_panels(rec, axes, r)
    return FigureOutput(fig, rec.frame(), r.summary(), imperfect_caption(r), r.config())
