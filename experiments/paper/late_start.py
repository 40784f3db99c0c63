"""Late-start curves (the paper's Fig. 2 analogue): sample quality against the start time.

Each method (DDPM with every step from t_start, DDIM-10, DDIM-5, PNDM-10, PNDM-5 by default) starts
from N(0, I) at t_start -- the plain late start: the steps above t_start are skipped -- and its samples
are measured against the training data (:class:`~symbreak.experiments.paper.suite.MetricSuite`). Every
start time uses the same seeds (common random numbers), so the differences between neighbouring starts
are not swamped by sampling noise.

**Elbow** (the paper's empirical estimate of the first bifurcation): the maximum of the second
derivative of FD against the start step. Second differences of a measured curve are mostly noise, so
the curve is first smoothed by a cubic smoothing spline (``scipy.interpolate.make_smoothing_spline``,
penalty chosen by generalised cross-validation), and the maximum of the spline's second derivative is
taken on a fine grid. Only the **descending branch** is searched -- from the earliest start to the
start with the lowest smoothed value -- because a few-step sampler started right at T can get worse
again (its first step divides the network's eps error by alpha(T) ~ 0.006), and that upturn is not
the elbow. Two scales are reported: ``linear`` (FD itself, the paper's definition) and ``log``
(log FD, for which a rise that is exponential in the start time is straight, so its maximum marks the
knee rather than the steepest part; but it also magnifies the relative noise of the flat part, so on
a curve that stays flat and noisy up to T its maximum can land on a wiggle there).

The theory's critical times (Gaussian approximation, and the exact score of the training data) are
put on the same axes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.interpolate import make_smoothing_spline

from symbreak.experiments.paper.setup import Setup, critical_summary, exact_tc, gaussian_tc
from symbreak.experiments.paper.suite import Measurement, measurements_frame
from symbreak.experiments.runtime.threads import cpu_threads
from symbreak.experiments.sampling.draw import Method, draw_samples
from symbreak.theory.checks import check_choice, check_int

DEFAULT_METHODS = (
    Method("DDPM (all steps)", "ddpm", None),
    Method("DDIM-10", "ddim", 10),
    Method("DDIM-5", "ddim", 5),
    Method("PNDM-10", "pndm", 10),
    Method("PNDM-5", "pndm", 5),
)
PAPER_ELBOWS = Path(str(files("symbreak.experiments") / "data")) / "paper_late_start_elbows.csv"
SCALES = ("linear", "log")
CRITICAL_KINDS = ("gaussian", "exact")


def start_times(schedule, n_points: int, every: int = 1) -> np.ndarray:
    """``n_points`` evenly spaced start times ending at T (every ``every``-th of them): on a discrete
    schedule of N steps the steps round(N j / n_points) - 1, j = 1..n_points (49, 99, ..., 999 for 20)."""
    n_points = check_int("--points", n_points, 2)
    j = np.arange(1, n_points + 1)[::-1][::every][::-1]
    if schedule.discrete:
        steps = np.rint(schedule.n_steps * j / n_points).astype(np.int64) - 1
        return schedule.t_of_step(steps)
    return schedule.T * j / n_points


# ---------------------------------------------------------------------------------------------
# the elbow
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Elbow:
    """The maximum of the smoothed curve's second derivative on its descending branch.

    ``x`` is on the axis the curve was given on (start step, or t); ``window`` the branch searched;
    ``x`` is None (with ``reason``) when the branch is too short to fit a spline (< 5 points).
    """

    x: float | None
    curvature: float | None
    window: tuple[float, float]
    scale: str
    reason: str | None = None


def elbow(x: ArrayLike, values: ArrayLike, scale: str = "linear", lam: float | None = None,
          n_grid: int = 2001) -> Elbow:
    """The elbow of a curve ``values`` against increasing start positions ``x`` (see the module
    docstring): smoothing spline (penalty ``lam``; None = GCV) of the values (``linear``) or of their
    logarithm (``log``) on the descending branch, then the argmax of its second derivative."""
    check_choice("scale", scale, SCALES)
    x, v = np.asarray(x, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != v.shape or x.size < 2 or not (np.diff(x) > 0).all():
        raise ValueError("x, values: expected two 1-D arrays of equal length with x strictly increasing")
    if not np.isfinite(v).all() or (scale == "log" and (v <= 0).any()):
        raise ValueError(f"values: must be finite{' and > 0 for the log scale' if scale == 'log' else ''}")
    y = np.log(v) if scale == "log" else v
    end = _descending_end(x, y, lam)
    window = (float(x[0]), float(x[end]))
    if end + 1 < 5:
        return Elbow(None, None, window, scale, f"the descending branch has {end + 1} points; a spline needs 5")
    spline = make_smoothing_spline(x[:end + 1], y[:end + 1], lam=lam)
    grid = np.linspace(x[0], x[end], int(n_grid))
    d2 = spline.derivative(2)(grid)
    i = int(np.argmax(d2))
    return Elbow(float(grid[i]), float(d2[i]), window, scale)


def _descending_end(x: np.ndarray, y: np.ndarray, lam: float | None) -> int:
    """Index of the start with the lowest value of the curve smoothed over all points (the raw
    minimum for fewer than 5 points)."""
    smooth = make_smoothing_spline(x, y, lam=lam)(x) if x.size >= 5 else y
    return int(np.argmin(smooth))


# ---------------------------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------------------------
@dataclass
class LateStartResult:
    """Curves (tidy: method, t_start, step, nfe, metric, value, CI, ...), the floor, the elbows per
    method and scale, the theory's critical times and the resolved configuration."""

    curves: pd.DataFrame
    floor: dict[str, Measurement]
    elbows: pd.DataFrame
    critical: dict[str, dict]
    axis: str
    config: dict

    def to_frame(self) -> pd.DataFrame:
        return self.curves

    def to_dict(self) -> dict:
        return {"axis": self.axis, "floor": {k: asdict(v) for k, v in self.floor.items()},
                "critical": self.critical, "elbows": self.elbows.to_dict(orient="records"),
                "curves": self.curves.to_dict(orient="records")}


def late_start_curves(setup: Setup, seeds: Sequence[int], *, methods: Sequence[Method] = DEFAULT_METHODS,
                      starts: ArrayLike | None = None, full_step_starts: ArrayLike | None = None,
                      critical: Sequence[str] = CRITICAL_KINDS, metric: str | None = None,
                      n_resplits: int = 20, threads: int = 1) -> LateStartResult:
    """Quality against start time for each method from N(0, I) at t_start.

    ``starts``: start times (default: 20 evenly spaced up to T); methods with every step (``n_steps``
    None) use ``full_step_starts`` (default: every other start, as each costs step + 1 evaluations).
    ``metric``: the curve the elbow is found on (default the suite's primary, FD or W2).
    ``critical``: which theory critical times to compute ("gaussian", "exact").
    """
    schedule, suite = setup.schedule, setup.suite
    metric = suite.primary if metric is None else suite.names([metric])[0]
    starts = start_times(schedule, 20) if starts is None else np.sort(np.asarray(starts, dtype=np.float64))
    full = starts[::-1][::2][::-1] if full_step_starts is None else np.sort(np.asarray(full_step_starts, float))
    unknown = sorted(set(critical) - set(CRITICAL_KINDS))
    if unknown:
        raise ValueError(f"critical: unknown {unknown[0]!r}; accepted: {', '.join(CRITICAL_KINDS)}")
    axis = "step" if schedule.discrete else "t"
    rows = []
    with cpu_threads(threads):
        for method in methods:
            for t in (full if method.n_steps is None else starts):
                samples = draw_samples(setup.denoiser, method, seeds, start="late", t_start=float(t), threads=threads)
                keys = {"method": method.label, "sampler": method.sampler, "n_steps": method.n_steps,
                        "t_start": samples.config["t_start"], "step": samples.config["step_start"],
                        "nfe": samples.nfe}
                rows.append((keys, suite.measure(samples.x)))
        floor = suite.floor(n_resplits=n_resplits)
        times = {"gaussian": gaussian_tc, "exact": exact_tc}
        crit = {kind: critical_summary(times[kind](setup), schedule) for kind in critical}
    curves = measurements_frame(rows)
    elbows = _elbows(curves, metric, axis)
    config = {**setup.config, "recipe": "late-start", "seeds": {"count": len(seeds), "first": seeds[0],
              "last": seeds[-1]}, "methods": [asdict(m) for m in methods], "starts": list(map(float, starts)),
              "full_step_starts": list(map(float, full)), "elbow_metric": metric, "n_resplits": n_resplits,
              "threads": threads}
    return LateStartResult(curves, floor, elbows, crit, axis, config)


def _elbows(curves: pd.DataFrame, metric: str, axis: str) -> pd.DataFrame:
    records = []
    for method, part in curves[curves.metric == metric].groupby("method", sort=False):
        part = part.sort_values("t_start")
        for scale in SCALES:
            e = elbow(part[axis].to_numpy(dtype=float), part.value.to_numpy(), scale)
            records.append({"method": method, "metric": metric, "scale": scale, axis: e.x,
                            "curvature": e.curvature, "window_start": e.window[0], "window_end": e.window[1],
                            "note": e.reason or ""})
    return pd.DataFrame(records)


# ---------------------------------------------------------------------------------------------
# the figure
# ---------------------------------------------------------------------------------------------
CRITICAL_STYLE = {"gaussian": {"color": "0.3", "dashes": (6, 3), "lw": 2.4, "label": "t_c (Gaussian)"},
                  "exact": {"color": "tab:red", "dashes": (2, 2), "lw": 1.2, "label": "t_c (exact score)"}}
METRIC_LABELS = {"fd": "FD (classifier features)", "kid": "KID (classifier features)",
                 "sw": "sliced W2 (raw)", "w2": "exact W2 (raw)"}


def mark_critical_times(ax, critical: dict[str, dict], axis: str) -> None:
    """The theory's critical times as dashed vertical lines (the convention of every figure here): the
    Gaussian one with long thick dashes, the exact-score one with short thin dashes drawn on top, so
    both stay visible when they coincide."""
    key = "step_c" if axis == "step" else "t_c"
    for kind, info in critical.items():
        if info.get(key) is not None:
            style = CRITICAL_STYLE[kind]
            ax.axvline(info[key], dashes=style["dashes"], lw=style["lw"], color=style["color"],
                       label=f"{style['label']}: {info[key]:.4g}")


def plot_late_start(result: LateStartResult, metrics: Sequence[str] | None = None, axes=None):
    """FD (and SW) against the start, log scale, one line per method, the held-out floor as a dotted
    line with its band, elbows (linear scale, the paper's definition) as triangles and the critical
    times as dashed vertical lines. Draws on ``axes`` when given, else on a new figure in the project
    style; returns the figure."""
    from symbreak.experiments.output import figure_environment, new_figure

    primary = result.config["elbow_metric"]
    metrics = list(metrics) if metrics is not None else [primary, "sw"]
    with figure_environment():
        if axes is None:
            fig, axes = new_figure(1, len(metrics), 5.2 * len(metrics), 4.3)
            axes = axes[0]
        else:
            fig = axes[0].figure
        for ax, metric in zip(axes, metrics):
            _plot_metric(ax, result, metric, show_elbows=metric == primary)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig


def _plot_metric(ax, result: LateStartResult, metric: str, show_elbows: bool) -> None:
    axis = result.axis
    part = result.curves[result.curves.metric == metric]
    elbows = result.elbows[result.elbows.scale == "linear"].set_index("method")
    for i, (method, curve) in enumerate(part.groupby("method", sort=False)):
        curve = curve.sort_values(axis)
        color = f"C{i}"
        ax.plot(curve[axis], curve.value, marker="o", ms=3, color=color, label=method)
        if show_elbows and method in elbows.index and not pd.isna(elbows.loc[method, axis]):
            x = float(elbows.loc[method, axis])
            ax.plot([x], [np.interp(x, curve[axis], curve.value)], marker="v", ms=8, color=color, mec="k", mew=0.6)
    floor = result.floor.get(metric)
    if floor is not None:
        ax.axhline(floor.value, ls=":", color="k", lw=1.2, label=f"held-out floor ({floor.value:.3g})")
        if not math.isnan(floor.ci_low):
            ax.axhspan(floor.ci_low, floor.ci_high, color="k", alpha=0.08, lw=0)
    mark_critical_times(ax, result.critical, axis)
    ax.set_yscale("log")
    ax.set_xlabel("start step (of 1000) — N(0, I) placed at t_start" if axis == "step" else "start time t_start")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    title = "from N(0, I) at the start" + ("; ▼ elbow = max d²/dstep² (smoothed)" if show_elbows else "")
    ax.set_title(title)


def paper_elbow_step(dataset: str = "MNIST") -> int:
    """The paper's Fig. 2 elbow (diffusion step of 1000) for ``dataset``, from its reported numbers."""
    paper = pd.read_csv(PAPER_ELBOWS).set_index("dataset")
    return int(paper.loc[dataset, "elbow_step_of_1000"])


def elbow_steps_note(result: LateStartResult) -> str:
    """One line per method: elbows on both scales next to the critical times (for the console)."""
    axis = result.axis
    lines = []
    for method, part in result.elbows.groupby("method", sort=False):
        vals = {r.scale: r[axis] for _, r in part.iterrows()}
        fmt = {k: ("—" if v is None or pd.isna(v) else f"{v:.0f}" if axis == "step" else f"{v:.3f}")
               for k, v in vals.items()}
        lines.append(f"  {method:<18} elbow {fmt.get('linear')} (linear)  {fmt.get('log')} (log)")
    key = "step_c" if axis == "step" else "t_c"
    for kind, info in result.critical.items():
        lines.append(f"  t_c {kind:<9} {info.get(key)}  ({info.get('kind')})")
    return "\n".join(lines)


__all__ = ["DEFAULT_METHODS", "Elbow", "LateStartResult", "elbow", "late_start_curves", "mark_critical_times",
           "plot_late_start", "start_times"]
