"""The margin plot of ``symbreak critical-time --out``: the top eigenvalue of J/beta on the central
branch against t (exact empirical score and Gaussian approximation), every critical time as a
labelled vertical line, and for image data the soft direction at t_c (Raya & Ambrogioni 2023,
"Spontaneous symmetry breaking in generative diffusion models"; on real data the pitchfork is
imperfect). A plain figure for the command's outputs, not one of the numbered figures.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd

from symbreak.experiments.output import figure_environment, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from symbreak.analysis.critical import DatasetCriticalTimes


def _image(v):
    """A soft direction of per-sample shape (H, W), (1, H, W) or (3, H, W) as an imshow array, or None."""
    if v.ndim == 2:
        return v
    if v.ndim == 3 and v.shape[0] == 1:
        return v[0]
    if v.ndim == 3 and v.shape[0] == 3:
        return 0.5 + 0.5 * np.transpose(v, (1, 2, 0)) / np.abs(v).max()
    return None


def critical_time_markers(result) -> list[tuple[float, str, str]]:
    """(t, label, line style) of every critical time to mark: Gaussian t_c (dotted), each exact event
    (dashed), t_s and t_h (dash-dot; t_h of each route that ran)."""
    marks = []
    if result.t_c_gaussian is not None:
        marks.append((result.t_c_gaussian, f"Gaussian t_c = {result.t_c_gaussian:.4g}", ":"))
    for e in () if result.exact is None else result.exact.events:
        marks.append((e.time.t, f"exact {e.kind} t = {e.time.t:.4g} (margin {e.margin:.3g})", "--"))
    times = [("t_s", result.quantity("speciation"), result.source_of("speciation").method),
             ("t_h", result.quantity("hessian"), result.primary.method)]
    if result.exact is not None:
        times.append(("t_h", result.gaussian_quantity("hessian"), "gaussian"))
    marks += [(q.t, f"{label} = {q.t:.4g} ({route})", "-.") for label, q, route in times if q is not None]
    return marks


def _plot_margins(ax, result, branch) -> None:
    """The exact branch's eigenvalues of J/beta (top one bold, per segment) and the Gaussian margin,
    the zero line and the critical-time markers; y limited to the interesting range."""
    t = branch["t"].to_numpy()
    shown = []
    if result.exact is not None:
        seg = branch["segment"].to_numpy()
        lower = [c for c in branch if c.startswith("lam_") and c != "lam_1"]
        for s in np.unique(seg):
            on = seg == s
            first = s == seg[0]
            for c in lower:
                ax.plot(t[on], branch[c].to_numpy()[on], color="0.75", lw=0.8,
                        label="exact, lower eigenvalues" if first and c == lower[0] else None)
            ax.plot(t[on], branch["margin"].to_numpy()[on], color="C0",
                    label=f"exact margin (N = {result.n_exact})" if first else None)
        shown.append(branch["margin"].to_numpy())
    if "margin_gaussian" in branch:
        ax.plot(t, branch["margin_gaussian"].to_numpy(), color="C1", ls="--",
                label=f"Gaussian margin (N = {result.n_points})")
        shown.append(branch["margin_gaussian"].to_numpy())
    ax.axhline(0.0, color="k", lw=0.8)
    palette = mpl.rcParams["axes.prop_cycle"].by_key()["color"][2:]   # C0, C1 are the curves
    for i, (tm, label, ls) in enumerate(critical_time_markers(result)):
        ax.axvline(tm, color=palette[i % len(palette)], ls=ls, lw=1.6 if ls == ":" else 1.0, label=label)
    values = np.concatenate(shown)
    lo, hi = max(float(np.nanmin(values)), -2.0), min(float(np.nanmax(values)), 1.5)
    pad = 0.08 * (hi - lo + 1e-3)
    ax.set_ylim(lo - pad, max(hi, 0.05) + pad)
    ax.set_xlim(0.0, result.schedule.T)
    ax.set_xlabel("diffusion time t")
    ax.set_ylabel("margin: top eigenvalue of J / beta")
    ax.set_title(f"{result.data.get('name')}: {result.kind} "
                 + ("" if result.t_c is None else f"t_c = {result.t_c:.4g}")
                 + f" ({result.schedule.name}, {result.dynamics})")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2)


def _plot_image(ax, result, image) -> None:
    """The soft direction as an image (diverging colours around 0 for one channel)."""
    vmax = float(np.abs(image).max()) if image.ndim == 2 else None
    shown = ax.imshow(image, cmap="RdBu_r" if image.ndim == 2 else None, vmin=None if vmax is None else -vmax,
                      vmax=vmax, interpolation="nearest")
    if image.ndim == 2:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("soft direction at t_c\n(" + ("exact branch" if result.exact is not None
                                              else "top covariance eigenvector") + ")")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)


def draw_margin(result: DatasetCriticalTimes, branch: pd.DataFrame) -> Figure:
    """Margin (top eigenvalue of J/beta) against t with every critical time as a labelled vertical
    line, and for image data the soft direction as an image panel, in the project style.
    ``branch``: ``result.branch_table()``."""
    image = None if result.soft_direction is None else _image(result.soft_direction)
    with figure_environment():
        fig, axes = new_figure(1, 1 if image is None else 2, 9.6 if image is not None else 7.2, 4.6,
                               gridspec_kw={"width_ratios": [1] if image is None else [3, 1]})
        _plot_margins(axes[0, 0], result, branch)
        if image is not None:
            _plot_image(axes[0, 1], result, image)
    return fig
