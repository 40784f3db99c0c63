"""The one way symbreak writes its outputs: figures (PNG + PDF), tables (CSV), JSON documents, arrays
(.npy) and texts of one run, all at once.

:func:`check_outputs` refuses, before any work, an output folder the run could not write (a file in its
place, not writable, an output name taken by a folder). :func:`save` writes every file into a staging
folder beside the output folder and commits them all at once with
:func:`symbreak.analysis.io.staged_dir` (backup-and-rename with roll-back; a killed run is rolled back
or cleaned by the next one), so a failed or interrupted run leaves either the old files or the whole
new set. Nothing time-dependent is written (PNG
without the Software tag, PDF without creation or modification dates, TrueType fonts from the style),
so the same inputs and library versions give byte-identical PDF/CSV/JSON and pixel-identical PNG files.
Every figure is drawn in the project style (:func:`figure_environment`) on a pyplot-free
:func:`new_figure`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from symbreak.analysis.io import check_output_dir, dumps, staged_dir

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


def check_outputs(out_dir: str | os.PathLike, names: Iterable[str] = (), flag: str = "--out") -> Path:
    """``out_dir`` as a Path, after checking that the files ``names`` can be committed there (ValueError
    ``--out: ...`` otherwise; see :func:`symbreak.analysis.io.check_output_dir`). Call it first thing."""
    return check_output_dir(out_dir, names, flag)


def save(out_dir: str | os.PathLike, outputs: Outputs | Iterable[Outputs]) -> list[Path]:
    """Write ``outputs`` (one run's :class:`Outputs`, or several committed together) into ``out_dir``,
    all or nothing; returns the paths written."""
    out = Path(out_dir)
    runs = [outputs] if isinstance(outputs, Outputs) else list(outputs)
    names = [name for run in runs for name in run.names()]
    if len(set(names)) != len(names):
        raise ValueError(f"outputs: file names repeat in {names}")
    check_outputs(out, names)
    with staged_dir(out) as tmp:
        for run in runs:
            _write(run, tmp)
    return [out / name for name in names]
