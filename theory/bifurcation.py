"""Bifurcation diagrams of 1-D models: every fixed point of the drift against t, and the times where
their number changes (numpy/scipy, float64).

The fixed points of the generative drift b(x, t) (VP reverse SDE: b = beta (x/2 + d log p_t/dx), design
notes §1) are found at each time by :func:`symbreak.theory.fixedpoints.fixed_points_1d`. Where their
number changes between two sample times the change is bisected in t. A change is a pitchfork
('crossing': the new points are born at an existing one, as the two deltas at +-1 split at
alpha_c^2 = sqrt(2) - 1) or a fold (saddle-node: a pair born away from every existing point, as in an
asymmetric mixture's imperfect pitchfork). This finds the change from the count alone, independently of
the margin (top eigenvalue of J / beta) that :func:`symbreak.theory.critical.critical_times` follows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from symbreak.theory.datamodels import DataModel
from symbreak.theory.fixedpoints import FixedPoints, fixed_points_1d
from symbreak.theory.schedules import Schedule

NEAR_REL = 1e-2  # a birth point within NEAR_REL (1 + |x|) of an existing fixed point makes a pitchfork


@dataclass(frozen=True)
class CountChange:
    """A time where the number of fixed points of a 1-D drift changes, bisected to ``tol``: a pitchfork
    (``kind`` 'crossing': the new points are born at an existing one) or a fold (a pair born apart
    from every existing point). ``x`` is where the new points are born; ``n_before`` / ``n_after`` in
    generation order (t decreasing)."""

    t: float
    x: float
    kind: str
    n_before: int
    n_after: int


@dataclass(frozen=True)
class FixedPointDiagram:
    """Every fixed point of a 1-D model at each sample time (generation order: t decreasing), with two
    extra samples ``tol`` apart around every change in their number (so branches meet their birth
    points), and the changes themselves."""

    samples: tuple[FixedPoints, ...]
    changes: tuple[CountChange, ...]


def fixed_point_diagram(model: DataModel, schedule: Schedule, t_grid: ArrayLike, *, tol: float = 1e-9,
                        n_refine: int = 10, n_grid: int = 1001) -> FixedPointDiagram:
    """:func:`fixed_points_1d` (``n_grid`` drift samples) at every time of ``t_grid``. Each grid cell where the
    number of fixed points changes is bisected down to ``tol`` (one change per cell is resolved) and sampled
    at ``n_refine`` geometrically spaced distances on either side of the change, so that the square-root
    branches near a pitchfork or fold are drawn smoothly."""
    if not tol > 0 or int(n_refine) != n_refine or n_refine < 1:
        raise ValueError(f"tol, n_refine: need tol > 0 and an integer n_refine >= 1, got {tol!r}, {n_refine!r}")

    def at(t: float) -> FixedPoints:
        return fixed_points_1d(model, float(t), schedule, n_grid=n_grid)

    grid = [at(t) for t in np.unique(np.asarray(t_grid, dtype=np.float64))[::-1]]
    samples, changes = list(grid), []
    for a, b in zip(grid[:-1], grid[1:]):
        if len(a.points) == len(b.points):
            continue
        lo, hi = b.t, a.t
        while a.t - b.t > tol:
            mid = at(0.5 * (a.t + b.t))
            a, b = (mid, b) if len(mid.points) == len(a.points) else (a, mid)
        change = count_change(a, b)
        changes.append(change)
        offsets = np.geomspace(10.0 * tol, hi - lo, n_refine)
        samples += [a, b] + [at(t) for t in np.concatenate([change.t + offsets, change.t - offsets]) if lo < t < hi]
    return FixedPointDiagram(tuple(sorted(samples, key=lambda fp: -fp.t)), tuple(changes))


def count_change(a: FixedPoints, b: FixedPoints) -> CountChange:
    """The change between two samples ``a`` (earlier in generation order) and ``b`` with different numbers of
    fixed points: where the closest pair of the sample with more points sits, and whether the other sample
    has a point there (pitchfork) or not (fold)."""
    if len(a.points) == len(b.points):
        raise ValueError(f"a, b: need different numbers of fixed points, got {len(a.points)} at both")
    more, fewer = (a, b) if len(a.points) > len(b.points) else (b, a)
    x = np.array(more.x)
    i = int(np.argmin(np.diff(x)))
    loc = 0.5 * (x[i] + x[i + 1])
    near = any(abs(p - loc) <= NEAR_REL * (1.0 + abs(loc)) for p in fewer.x)
    return CountChange(0.5 * (a.t + b.t), float(loc), "crossing" if near else "fold", len(a.points), len(b.points))
