"""The figure framework: a registry of numbered recipes, the context they run in, a recorder that keeps
every plotted number, the critical-time markers shared by every figure, and deterministic saving.

A recipe is two functions registered under a number and a slug with :func:`recipe`: ``compute(ctx:
FigureContext) -> Result``, which computes every number the figure shows into a result dataclass (no
matplotlib: testable and reusable on its own), and ``draw(result) -> FigureOutput``, which plots the result
and builds the caption from it. ``draw`` plots through a :class:`Recorder`, so the tidy table saved as the
figure's CSV holds exactly the numbers that were drawn (one row per drawn point, marker or table cell).
Saving writes, all or nothing, ``NN_slug.png`` (raster, dpi from the style), ``NN_slug.pdf`` (vector,
TrueType fonts embedded), ``NN_slug.csv`` and ``NN_slug.json`` (caption, summary numbers, resolved
configuration and library versions). Nothing time-dependent is written: the same seed and library versions
give byte-identical PDF/CSV/JSON and pixel-identical PNG files; paths inside the trained-model cache are
recorded relative to the cache root, so the files hold no path of the machine that made them.

Conventions every figure follows: one style file (``experiments/data/symbreak.mplstyle``); axis labels
from :data:`AXIS_LABELS` (the README notation); time axes run in generation order (t decreasing from
left to right, alpha and logsnr increasing); critical times drawn by :func:`mark_critical` (a vertical
line, one colour per kind: t_c always vermillion; dashed when exact, dotted for an approximation).
"""
from __future__ import annotations

import importlib
import pkgutil
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from symbreak.analysis.io import package_versions
from symbreak.experiments.output import STYLE_FILE, Outputs, figure_environment, new_figure, save

if TYPE_CHECKING:
    from symbreak.experiments.paper.settings import Settings

FILE_KINDS = ("png", "pdf", "csv", "json")
VERSIONED_PACKAGES = ("symbreak", "numpy", "scipy", "pandas", "matplotlib", "torch")

# Axis labels in the README notation, keyed by the variable name recorded in the CSV.
AXIS_LABELS: dict[str, str] = {
    "t": r"time $t$ (generation $\rightarrow$)",
    "alpha": r"$\alpha$",
    "logsnr": r"logsnr $= \log(\alpha^2/\sigma^2)$",
    "tau": r"$\tau = -\log\alpha$",
    "x": r"$x$",
    "x*": r"fixed point $x^*$",
    "u": r"$u(x, t) - u(0, t)$",
    "u_xx(0)/beta": r"$\partial_x^2 u(0, t)\,/\,\beta$",
    "margin": r"margin $\lambda_{\max}(J)/\beta$",
    "eig(J)/beta": r"eigenvalues of $J/\beta$",
    "a": r"arc angle $a$",
    "u_arc": r"$u(x(a), t) - u(x_1, t)$",
    "phi": r"cloning probability $\varphi$",
    "projection": r"projection $\langle x_t - \alpha\mu, e\rangle$",
    "count": "number of trajectories",
}

# Critical-time markers: one colour per kind, the same in every figure (Okabe-Ito palette).
CRITICAL_COLOURS: dict[str, str] = {
    "t_c": "#D55E00",         # critical time: the centre loses stability (vermillion)
    "t_s": "#0072B2",         # speciation (blue)
    "t_h": "#CC79A7",         # Hessian of log p_t changes sign (reddish purple)
    "t_collapse": "#009E73",  # collapse (bluish green)
    "elbow": "#000000",       # elbow of a late-start curve (black)
    "event": "#7F7F7F",       # other events: folds, closest approaches, successive bifurcations (grey)
}
EVENT_MARKERS: dict[str, str] = {"crossing": "o", "closest-approach": "v", "fold": "X"}
STABILITY_STYLE: dict[bool, str] = {True: "-", False: "--"}  # stable branches solid, unstable dashed


def mark_critical(ax, value: float, kind: str = "t_c", label: str | None = None, *, approx: bool = False,
                  axis: str = "x"):
    """Draw a critical time as a vertical line (``axis='y'``: horizontal) in the colour of ``kind``
    (:data:`CRITICAL_COLOURS`), dashed when exact and dotted for an approximation; ``label`` goes to the
    legend. Returns the line."""
    if kind not in CRITICAL_COLOURS:
        raise ValueError(f"kind: unknown marker kind {kind!r}; accepted: {', '.join(CRITICAL_COLOURS)}")
    style = {"color": CRITICAL_COLOURS[kind], "linestyle": ":" if approx else "--", "linewidth": 1.2,
             "label": label, "zorder": 1.5}
    return ax.axvline(value, **style) if axis == "x" else ax.axhline(value, **style)


def legend(ax, framed: bool = False, **kw) -> None:
    """The panel's legend (best place, long handles); ``framed`` puts it on a white box (over busy panels)."""
    frame = {"frameon": True, "framealpha": 0.9, "edgecolor": "none"} if framed else {}
    ax.legend(**{"loc": "best", "handlelength": 2.2, **frame, **kw})


# ---------------------------------------------------------------------------------------------
# the recorder: draw and keep the numbers
# ---------------------------------------------------------------------------------------------
@dataclass
class _Panel:
    letter: str
    x_var: str
    y_var: str


class Recorder:
    """Draws on matplotlib axes and records every drawn number in one tidy table.

    Columns: ``panel`` (letter), ``element`` (line, points, arrows, marker, image, table), ``series``, ``x_var``,
    ``x``, ``y_var``, ``y``, then any extra columns a recipe passes (``columns=``). Register each axes
    first with :meth:`axes`, which also labels it from :data:`AXIS_LABELS`.
    """

    def __init__(self) -> None:
        self._panels: dict[int, _Panel] = {}
        self._rows: list[dict[str, np.ndarray]] = []
        self._integer_columns: set[str] = set()

    def axes(self, ax, letter: str, x: str, y: str, title: str | None = None) -> None:
        """Register ``ax`` as panel ``letter`` plotting variable ``y`` against ``x`` and label it."""
        self._panels[id(ax)] = _Panel(letter, x, y)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(y, y))
        ax.set_title(f"({letter}) {title}" if title else f"({letter})", loc="left")

    def _panel(self, ax) -> _Panel:
        if id(ax) not in self._panels:
            raise ValueError("ax: register the axes with Recorder.axes before drawing on it")
        return self._panels[id(ax)]

    def _record(self, ax, element: str, series: str, x: ArrayLike, y: ArrayLike,
                columns: dict[str, Any] | None = None) -> None:
        p = self._panel(ax)
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        y = np.broadcast_to(np.asarray(y, dtype=np.float64), x.shape)
        n = x.size
        row = {"panel": np.full(n, p.letter, dtype=object), "element": np.full(n, element, dtype=object),
               "series": np.full(n, series, dtype=object), "x_var": np.full(n, p.x_var, dtype=object),
               "x": x, "y_var": np.full(n, p.y_var, dtype=object), "y": y.copy()}
        for key, value in (columns or {}).items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.integer):
                self._integer_columns.add(key)
            row[key] = np.broadcast_to(value, (n,)).copy()
        self._rows.append(row)

    def line(self, ax, series: str, x: ArrayLike, y: ArrayLike, *, columns: dict[str, Any] | None = None,
             legend: bool = True, **style):
        """``ax.plot(x, y)`` labelled ``series`` (in the legend unless ``legend=False``)."""
        self._record(ax, "line", series, x, y, columns)
        return ax.plot(x, y, label=series if legend else None, **style)

    def points(self, ax, series: str, x: ArrayLike, y: ArrayLike, *, columns: dict[str, Any] | None = None,
               legend: bool = True, **style):
        """``ax.scatter(x, y)`` labelled ``series``."""
        self._record(ax, "points", series, x, y, columns)
        return ax.scatter(x, y, label=series if legend else None, **style)

    def arrows(self, ax, series: str, x: ArrayLike, y: ArrayLike, u: ArrayLike, v: ArrayLike,
               *, columns: dict[str, Any] | None = None, **style):
        """``ax.quiver(x, y, u, v)`` with u, v in data units (``angles='xy'``)."""
        self._record(ax, "arrows", series, x, y, {"u": u, "v": v, **(columns or {})})
        return ax.quiver(x, y, u, v, angles="xy", scale_units="xy", scale=1.0, **style)

    def mark(self, ax, value: float, kind: str = "t_c", label: str | None = None, *, approx: bool = False,
             axis: str = "x", columns: dict[str, Any] | None = None):
        """:func:`mark_critical` on ``ax`` at x = ``value`` (``axis='y'``: at y = ``value``), recorded with
        its kind and method."""
        x, y = ([value], [np.nan]) if axis == "x" else ([np.nan], [value])
        self._record(ax, "marker", label or kind, x, y,
                     {"kind": kind, "method": "approximate" if approx else "exact", **(columns or {})})
        return mark_critical(ax, value, kind, label, approx=approx, axis=axis)

    def events(self, ax, kind: str, x: ArrayLike, y: ArrayLike, label: str | None = None, **style):
        """Events on a curve (crossing, closest-approach, fold) as points with :data:`EVENT_MARKERS`."""
        style = {"marker": EVENT_MARKERS[kind], "color": CRITICAL_COLOURS["event"], "s": 28, "zorder": 4,
                 "edgecolors": "white", "linewidths": 0.5, **style}
        self._record(ax, "points", label or kind, x, y, {"kind": kind})
        return ax.scatter(x, y, label=label, **style)

    def image(self, ax, series: str, values: ArrayLike, **style):
        """``ax.imshow(values)`` of a 2-D array; recorded as x = column, y = row and a ``value`` column."""
        values = np.asarray(values, dtype=np.float64)
        rows, cols = np.indices(values.shape)
        self._record(ax, "image", series, cols.ravel(), rows.ravel(), {"value": values.ravel()})
        return ax.imshow(values, **style)

    def table(self, ax, series: str, rows: list[dict[str, Any]]) -> None:
        """Record numbers shown as text (a table or an annotation) as rows of extra columns."""
        for row in rows:
            self._record(ax, "table", series, [np.nan], [np.nan], row)

    def frame(self):
        """The tidy table, rows in drawing order."""
        import pandas as pd

        if not self._rows:
            raise ValueError("Recorder: nothing was drawn")
        frame = pd.concat([pd.DataFrame(r) for r in self._rows], ignore_index=True)
        for key in sorted(self._integer_columns):  # integers stay integers beside gaps (not 3.0)
            column = pd.to_numeric(frame[key])
            if (column.dropna() % 1 == 0).all():
                frame[key] = column.astype("Int64")
        return frame


# ---------------------------------------------------------------------------------------------
# recipes, their context and output
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureContext:
    """Where and how a figure set is made: output folder, quick mode (fewer points, fewer samples),
    torch device for trained networks, base seed, and the trained-model cache folder shared by every
    figure (None: the training module's default, $SYMBREAK_CACHE or ~/.cache/symbreak)."""

    out_dir: Path
    quick: bool = False
    device: str = "auto"
    seed: int = 0
    cache_dir: Path | None = None

    def choose(self, full: Any, quick: Any) -> Any:
        """``quick`` in quick mode, ``full`` otherwise."""
        return quick if self.quick else full

    @property
    def settings(self) -> Settings:
        """The sizes of the paper's evaluations for this run (:meth:`Settings.of` quick or full)."""
        from symbreak.experiments.paper.settings import Settings

        return Settings.of(self.quick)

    def config(self) -> dict:
        """The context as recorded in every figure's JSON (a cache folder given as an absolute path is not
        recorded: committed outputs hold no path of the machine that made them)."""
        cache = None if self.cache_dir is None else Path(self.cache_dir)
        shown = None if cache is None else str(cache) if not cache.is_absolute() else "(given; path not recorded)"
        return {"quick": self.quick, "device": self.device, "seed": self.seed, "cache_dir": shown}


@dataclass
class FigureOutput:
    """What ``draw`` returns: the matplotlib figure, the tidy table it plotted (from its
    :class:`Recorder`), the numbers that matter, a one-paragraph caption and the resolved configuration."""

    figure: Any
    data: Any
    summary: dict
    caption: str
    config: dict


@dataclass(frozen=True)
class FigureRecipe:
    """A numbered figure: ``compute(ctx)`` gives its result (every number it shows, no matplotlib),
    ``draw(result)`` the :class:`FigureOutput`; files are named ``NN_slug.*``."""

    number: int
    slug: str
    title: str
    compute: Callable[[FigureContext], Any] = field(repr=False)
    draw: Callable[[Any], FigureOutput] = field(repr=False)

    @property
    def stem(self) -> str:
        return f"{self.number:02d}_{self.slug}"

    def paths(self, out_dir: Path) -> dict[str, Path]:
        return {kind: Path(out_dir) / f"{self.stem}.{kind}" for kind in FILE_KINDS}

    def make(self, ctx: FigureContext) -> FigureOutput:
        """``draw(compute(ctx))``."""
        return self.draw(self.compute(ctx))


FIGURES: dict[int, FigureRecipe] = {}


def recipe(number: int, slug: str, title: str, *, compute: Callable[[FigureContext], Any]) -> Callable:
    """Decorator registering ``draw`` with its ``compute`` as figure ``number`` in :data:`FIGURES`."""

    def register(draw: Callable[[Any], FigureOutput]) -> Callable:
        known = FIGURES.get(number)
        if known is not None and (known.compute is not compute or known.draw is not draw):
            raise ValueError(f"number: figure {number} is already registered as {known.slug!r}")
        FIGURES[number] = FigureRecipe(number, slug, title, compute, draw)
        return draw

    return register


def load_recipes() -> dict[int, FigureRecipe]:
    """Import every recipe module of this package and return the registry, sorted by number."""
    from symbreak.experiments.recipes import __name__ as package
    from symbreak.experiments.recipes import __path__ as path

    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name != "common":
            importlib.import_module(f"{package}.{info.name}")
    return dict(sorted(FIGURES.items()))


def select_figures(only: str | None, available: Sequence[int]) -> list[int]:
    """Figure numbers from ``--only`` ('1,2,11' or ranges '1-3'); all of ``available`` when None."""
    accepted = ", ".join(map(str, available))
    if only is None:
        return list(available)
    chosen: list[int] = []
    for item in only.replace(" ", "").split(","):
        head, sep, tail = item.partition("-")
        try:
            numbers = range(int(head), int(tail) + 1) if sep else [int(item)]
        except ValueError:
            raise ValueError(f"--only: {item!r} is not a figure number; accepted: {accepted}") from None
        chosen += [n for n in numbers if n not in chosen]
    unknown = ", ".join(str(n) for n in chosen if n not in available)
    if unknown or not chosen:
        raise ValueError(f"--only: unknown figure number(s) {unknown or repr(only)}; accepted: {accepted}")
    return sorted(chosen)


# ---------------------------------------------------------------------------------------------
# style, layout and deterministic saving
# ---------------------------------------------------------------------------------------------
def panel_row(panels: Sequence, draw_panel: Callable[..., None], width: float, height: float):
    """A figure of one row with a panel per item of ``panels`` (letters a, b, ...), each drawn by
    ``draw_panel(rec, ax, letter, item)``; returns the figure and its :class:`Recorder`."""
    fig, axes = new_figure(1, len(panels), width, height)
    rec = Recorder()
    for ax, letter, panel in zip(axes[0], "abcdefgh", panels):
        draw_panel(rec, ax, letter, panel)
    return fig, rec


def invert_time_axis(ax, T: float) -> None:
    """t from T (left) to 0 (right): generation runs left to right."""
    ax.set_xlim(T, 0.0)


def versions() -> dict[str, str | None]:
    """Python and library versions (pixel identity holds for the same versions)."""
    return {"python": platform.python_version(), **package_versions(VERSIONED_PACKAGES, missing=None)}


@dataclass(frozen=True)
class SavedFigure:
    number: int
    stem: str
    paths: dict[str, Path]
    summary: dict
    caption: str
    seconds: float


def portable(value: Any, root: Path) -> Any:
    """``value`` (nested dicts, lists, strings, paths) with every absolute path inside the cache folder
    ``root`` made relative to it (``/home/u/.cache/symbreak/digits-3607...`` -> ``digits-3607...``)."""
    if isinstance(value, dict):
        return {key: portable(v, root) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v, root) for v in value)
    if isinstance(value, (str, Path)) and Path(value).is_absolute() and Path(value).is_relative_to(root):
        return str(Path(value).relative_to(root))
    return value


def _outputs(recipe_: FigureRecipe, output: FigureOutput, ctx: FigureContext) -> Outputs:
    """The four files of one figure, with no time stamps, run-dependent content or paths of the machine."""
    from symbreak.experiments.models.training import cache_root

    names = {kind: p.name for kind, p in recipe_.paths(Path(".")).items()}
    config = portable(output.config, cache_root(ctx.cache_dir).absolute())
    sidecar = {"figure": recipe_.number, "slug": recipe_.slug, "title": recipe_.title,
               "caption": output.caption, "summary": output.summary,
               "config": {**ctx.config(), **config, "style": STYLE_FILE},
               "files": names, "csv_columns": list(map(str, output.data.columns)), "versions": versions()}
    return Outputs(recipe_.stem, figure=output.figure, frames={"": output.data}, documents={names["json"]: sidecar})


def make_figure(recipe_: FigureRecipe, ctx: FigureContext) -> SavedFigure:
    """Compute one figure, draw it and save its four files into ``ctx.out_dir``, all or nothing."""
    import time

    start = time.perf_counter()
    with figure_environment():
        output = recipe_.draw(recipe_.compute(ctx))
        save(ctx.out_dir, _outputs(recipe_, output, ctx))
    return SavedFigure(recipe_.number, recipe_.stem, recipe_.paths(ctx.out_dir), output.summary, output.caption,
                       time.perf_counter() - start)
