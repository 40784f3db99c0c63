"""Figure 11: critical times across schedules on the logsnr axis (VP linear, VP cosine, discrete DDPM, VE;
the two deltas at +-1 with the exact score and digits in the Gaussian approximation, reverse SDE)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from symbreak.experiments.output import new_figure
from symbreak.experiments.recipes.common import (CRITICAL_COLOURS, FigureContext, FigureOutput, Recorder,
                                                 invert_time_axis, legend, recipe)
from symbreak.experiments.recipes.theory_figures import two_delta_critical_times
from symbreak.theory import (
    VE,
    CriticalTimes,
    DiscreteDDPM,
    Schedule,
    SymmetricDeltas,
    VPCosine,
    VPLinear,
    gaussian_critical_times,
    gaussian_margin,
    normalised_jacobian_eigenvalues,
)

Array = NDArray[np.float64]
LOGSNR_WINDOW = (-6.0, 4.0)
DATA_NAMES = ("two deltas", "digits")
SCHEDULE_LINES = {"vp-linear": {"color": "#0072B2", "linewidth": 4.0, "alpha": 0.35},
                  "vp-cosine": {"color": "#E69F00", "linewidth": 2.2},
                  "ddpm": {"color": "black", "linewidth": 0.9},
                  "ve": {"color": "#CC79A7", "linewidth": 1.6}}


def _num(value: float, digits: int = 4) -> str:
    """A number for text, without a spurious '-0.0000'."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


@dataclass(frozen=True)
class ScheduleCurves:
    """One schedule's curves: the margins at the centre on the logsnr grid ``logsnr`` (its part inside the
    schedule's range) for the two deltas and for digits (Gaussian), and logsnr against its own time ``t``."""

    schedule: Schedule
    logsnr: Array
    margin_deltas: Array
    margin_digits: Array
    t: Array
    logsnr_of_t: Array


@dataclass(frozen=True)
class SchedulesResult:
    """Figure 11's numbers: ``found[name]`` = (two-delta, digits-Gaussian) critical times per schedule, digits'
    top covariance eigenvalue ``Lambda`` and every schedule's curves."""

    Lambda: float
    found: dict[str, tuple[CriticalTimes, CriticalTimes]]
    curves: tuple[ScheduleCurves, ...]

    def rows(self) -> list[dict]:
        return [{"schedule": name, "data": data, "t_c": c.t_c, "step_c": c.step_c, "logsnr_c": c.logsnr_c,
                 "alpha_c": c.alpha_c} for name, pair in self.found.items() for data, c in zip(DATA_NAMES, pair)]

    def spread(self) -> dict[str, float]:
        """The spread of logsnr_c over the VP schedules, per data set."""
        vp = [pair for name, pair in self.found.items() if name != "ve"]
        return {data: float(np.ptp([pair[i].logsnr_c for pair in vp])) for i, data in enumerate(DATA_NAMES)}

    def summary(self) -> dict:
        return {"critical_times": self.rows(), "digits_Lambda": self.Lambda, "vp_logsnr_c_spread": self.spread()}

    def config(self) -> dict:
        return {"schedules": [c.schedule.config() for c in self.curves], "dynamics": "sde",
                "logsnr_window": list(LOGSNR_WINDOW),
                "digits_Lambda_from": "covariance_spectrum(load_dataset('digits'))", "two_deltas": {"m": 1.0}}


def _schedule_curves(s: Schedule, grid: Array, Lambda: float, n_t: int) -> ScheduleCurves:
    lo, hi = s.logsnr_range()
    g_s = grid[(grid >= lo) & (grid <= hi)]
    deltas = SymmetricDeltas(1.0)
    centre = [normalised_jacobian_eigenvalues(deltas, [[0.0]], t, s)[0, -1] for t in s.t_of_logsnr(g_s)]
    t = np.linspace(s.t_min, s.T, n_t)
    return ScheduleCurves(s, g_s, np.asarray(centre), gaussian_margin([Lambda], g_s, s)[:, 0], t, s.logsnr(t))


def compute_schedules(ctx: FigureContext) -> SchedulesResult:
    from symbreak.analysis.datasets import load_dataset
    from symbreak.analysis.spectrum import covariance_spectrum

    schedules = (VPLinear(), VPCosine(), DiscreteDDPM(), VE())
    Lambda = float(covariance_spectrum(load_dataset("digits")).lam[0])
    found = {s.name: (two_delta_critical_times(s), gaussian_critical_times(Lambda, s)) for s in schedules}
    grid = np.linspace(*LOGSNR_WINDOW, ctx.choose(401, 161))
    curves = tuple(_schedule_curves(s, grid, Lambda, ctx.choose(400, 160)) for s in schedules)
    return SchedulesResult(Lambda, found, curves)


def schedules_caption(r: SchedulesResult) -> str:
    lin, cos, ddpm, ve = (r.found[n] for n in ("vp-linear", "vp-cosine", "ddpm", "ve"))
    return (
        f"Critical times of the reverse SDE across schedules, on the logsnr = log(alpha²/sigma²) axis. (a) The "
        f"margin (top eigenvalue of J/beta) at the centre x = 0 of the two deltas at ±1 (exact score; by symmetry "
        f"the followed central branch stays there) "
        f"for the VP linear, VP cosine and discrete DDPM (1000 steps) schedules falls on one curve and crosses "
        f"zero at logsnr_c = {_num(lin[0].logsnr_c)} for all three (spread {r.spread()['two deltas']:.1e}); with the "
        f"VE schedule (no drift term, J/beta is the Hessian of log p_t) it crosses at {_num(ve[0].logsnr_c)}. (b) The "
        f"same for digits in the Gaussian approximation (Lambda = {r.Lambda:.4f}): VP at {_num(lin[1].logsnr_c)}, VE "
        f"at {_num(ve[1].logsnr_c)} (= −log Lambda). (c) logsnr against each schedule's own time: one logsnr_c, "
        f"different t_c. (d) Two deltas: t_c = {_num(lin[0].t_c)} (VP linear), {_num(cos[0].t_c)} (cosine), "
        f"{_num(ddpm[0].t_c)} (DDPM, step {ddpm[0].step_c}), {_num(ve[0].t_c)} (VE); digits (Gaussian): "
        f"{_num(lin[1].t_c)}, {_num(cos[1].t_c)}, {_num(ddpm[1].t_c)} (step {ddpm[1].step_c}), {_num(ve[1].t_c)}.")


def _draw_margin_marks(rec: Recorder, ax, r: SchedulesResult, idx: int) -> None:
    """t_c of VP and VE on a margin panel (data set ``idx``), annotated, with the panel's limits and legend."""
    for name, text, side in (("vp-linear", "VP", "right"), ("ve", "VE", "left")):
        c = r.found[name][idx]
        rec.mark(ax, c.logsnr_c, "t_c", None, columns={"schedules": text})
        ax.annotate(f"{text}\n{_num(c.logsnr_c)}", (c.logsnr_c, 0.97), xycoords=("data", "axes fraction"),
                    xytext=(-3 if side == "right" else 3, 0), textcoords="offset points", ha=side, va="top",
                    fontsize=8, color=CRITICAL_COLOURS["t_c"],
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlim(*LOGSNR_WINDOW)
    ax.set_ylim(-0.7, 1.5)
    legend(ax, loc="center left")


def _draw_table(rec: Recorder, ax, r: SchedulesResult) -> None:
    """(d) t_c and logsnr_c of every schedule as a table."""
    rec.table(ax, "critical times", r.rows())
    ax.axis("off")
    cells = [[name] + [_num(c.t_c) + (f"\nstep {c.step_c}" if c.step_c is not None else "") for c in pair]
             + [_num(c.logsnr_c) for c in pair] for name, pair in r.found.items()]
    table = ax.table(cellText=cells, loc="center", cellLoc="center", bbox=[0.0, 0.05, 1.0, 0.85],
                     colLabels=["schedule", "$t_c$\ntwo deltas", "$t_c$\ndigits\n(Gaussian)",
                                "logsnr$_c$\ntwo deltas", "logsnr$_c$\ndigits\n(Gaussian)"])
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, _), cell in table.get_celld().items():
        if row == 0:  # three-line headers
            cell.set_height(1.6 * cell.get_height())


@recipe(11, "schedules_logsnr", "Critical times across schedules on the logsnr axis", compute=compute_schedules)
def draw_schedules(r: SchedulesResult) -> FigureOutput:
    fig, axes = new_figure(2, 2, 7.4, 5.6)
    rec = Recorder()
    ax_d, ax_g, ax_s, ax_tab = axes.ravel()
    rec.axes(ax_d, "a", "logsnr", "margin", "two deltas (exact score, centre)")
    rec.axes(ax_g, "b", "logsnr", "margin", rf"digits, Gaussian approx. ($\Lambda$ = {r.Lambda:.3f})")
    rec.axes(ax_s, "c", "t", "logsnr", "in each schedule's own time")
    rec.axes(ax_tab, "d", "", "", "$t_c$ in each schedule's own time")
    for c in r.curves:
        style, name = SCHEDULE_LINES[c.schedule.name], c.schedule.name
        rec.line(ax_d, name, c.logsnr, c.margin_deltas, columns={"schedule": name}, **style)
        rec.line(ax_g, name, c.logsnr, c.margin_digits, columns={"schedule": name}, **style)
        rec.line(ax_s, name, c.t, c.logsnr_of_t, columns={"schedule": name}, **style)
    names = [c.schedule.name for c in r.curves]
    for idx, (data, marker) in enumerate((("two deltas", "o"), ("digits (Gaussian)", "s"))):
        found = [r.found[name][idx] for name in names]
        rec.points(ax_s, f"$t_c$, {data}", [x.t_c for x in found], [x.logsnr_c for x in found],
                   columns={"schedule": names, "data": data}, marker=marker,
                   color=CRITICAL_COLOURS["t_c"], s=24, zorder=4, edgecolors="black", linewidths=0.5)
    for ax, idx in ((ax_d, 0), (ax_g, 1)):
        _draw_margin_marks(rec, ax, r, idx)
    invert_time_axis(ax_s, 1.0)
    ax_s.set_ylim(-12.0, 12.0)
    legend(ax_s, loc="upper left", fontsize=7)
    _draw_table(rec, ax_tab, r)
    return FigureOutput(fig, rec.frame(), r.summary(), schedules_caption(r), r.config())
