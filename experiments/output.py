"""The one way symbreak writes its outputs: figures (PNG + PDF), tables (CSV), JSON documents, arrays
(.npy) and texts of one run, all at once.

:func:`save` stages every file in a hidden folder beside the output folder and moves them in only when
all were written, so a failed run leaves the folder as it was. Nothing time-dependent is written (PNG
without the Software tag, PDF without creation or modification dates, TrueType fonts from the style),
so the same inputs and library versions give byte-identical PDF/CSV/JSON and pixel-identical PNG files.
Every figure is drawn in the project style (:func:`figure_environment`) on a pyplot-free
:func:`new_figure`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from symbreak.analysis.io import dumps, staged_dir

STYLE_FILE = "symbreak.mplstyle"


def style_path() -> Path:
    """The project's matplotlib style file (package data)."""
    return Path(str(files("symbreak.experiments") / "data" / STYLE_FILE))


@contextmanager
def figure_environment() -> Iterator[None]:
    """The figure style, and single-threaded BLAS: the theory works on many small matrices (d <= 64),
    for which threaded BLAS on a shared machine is an order of magnitude slower."""
    import matplotlib.style
    from threadpoolctl import threadpool_limits

    with matplotlib.style.context(style_path()), threadpool_limits(limits=1, user_api="blas"):
        yield


def new_figure(nrows: int, ncols: int, width: float, height: float, **subplot_kw):
    """A pyplot-free figure (no global state) with constrained layout and an (nrows, ncols) axes array."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


@dataclass
class Outputs:
    """The files of one run, named from ``stem``: ``figure`` as ``stem``.png and ``stem``.pdf; each
    frame of ``frames`` as ``stem``.csv (key ``""``) or ``stem``_key.csv; each of ``documents``,
    ``arrays`` and ``texts`` under its own file name (JSON, .npy, text)."""

    stem: str
    figure: Any = None
    frames: Mapping[str, Any] = field(default_factory=dict)
    documents: Mapping[str, dict] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Every file name, in writing order."""
        figure = [f"{self.stem}.png", f"{self.stem}.pdf"] if self.figure is not None else []
        frames = [f"{self.stem}.csv" if not key else f"{self.stem}_{key}.csv" for key in self.frames]
        return [*frames, *figure, *self.documents, *self.arrays, *self.texts]


def _write(outputs: Outputs, folder: Path) -> None:
    names = iter(outputs.names())
    for frame in outputs.frames.values():
        frame.to_csv(folder / next(names), index=False, lineterminator="\n")
    if outputs.figure is not None:
        outputs.figure.savefig(folder / next(names), format="png", metadata={"Software": None})
        outputs.figure.savefig(folder / next(names), format="pdf", metadata={"CreationDate": None, "ModDate": None})
    for name, document in outputs.documents.items():
        (folder / name).write_text(dumps(document) + "\n")
    for name, array in outputs.arrays.items():
        np.save(folder / name, array)
    for name, text in outputs.texts.items():
        (folder / name).write_text(text)


def save(out_dir: str | os.PathLike, outputs: Outputs) -> list[Path]:
    """Write ``outputs`` into ``out_dir``, all or nothing; returns the paths written."""
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        _write(outputs, tmp)
    return [out / name for name in outputs.names()]
