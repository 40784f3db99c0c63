"""Critical times of a data model under a schedule, each found on the logsnr axis and reported on all
axes (t, alpha, sigma, tau, logsnr and, for discrete schedules, the step).

- t_c: the central fixed point of the generative drift loses stability (Raya & Ambrogioni 2023;
  README, "What each module computes").
  The branch through the centre is followed with Newton continuation (:mod:`.continuation`) and the
  eigenvalues of J / beta along it are searched for events: a **crossing** of zero (a pitchfork;
  restabilisations are reported too), a **closest approach** (a local maximum of the top eigenvalue
  below zero: an imperfect pitchfork) and a **fold** (the followed branch ends in a saddle-node).
  Coming down from T the margin rises from its large-t value (-1/2 for VP SDEs); **t_c is the first
  event** (an upward crossing, a fold, or the first closest approach whatever its depth), and its
  margin is the size of the imperfection. Later events are successive bifurcations of a branch that
  has already committed (sub-classes, and near the collapse time the break-up of a cluster into
  memorised points), never t_c. A closest approach must be a real peak: its prominence (height above
  the higher of the lowest margins on either side before the curve climbs above it again) must exceed
  ``PROMINENCE`` times the round-off level of the margin there (from the eigen-solver and the scale of
  J / beta, carried by every branch point), ``BAND_FACTOR`` times the model-error band of a measured
  (network) margin (:class:`Curves`) and ``MIN_PROMINENCE``, so a flat or monotone margin reports no
  critical time. When the collapse estimate reaches 0.9 t_c or more the result says so in
  ``notes['small-sample']``: such a sample is too small for its dimension to show a population t_c.

  Finite-sample behaviour. A symmetric sample (y and -y both present) keeps the centre fixed and the
  pitchfork perfect; its t_c moves only through the sampling error of the centre's posterior second
  moment (Lambda-hat - Lambda ~ N^-1/2), so |t_c(N) - t_c| ~ N^-1/2. An i.i.d. sample breaks the
  symmetry by an imbalance h ~ N^-1/2 (the difference of the two sides' weights and means). Near the
  bifurcation the branch obeys the imperfect normal form 0 = mu z - z^3 + h (mu ~ t_c - t); along it
  mu = z^2 - h/z and the margin mu - 3 z^2 = -2 z^2 - h/z is largest at z^3 = h/4, where
  mu* = -3 (h/4)^(2/3) and the margin is -6 (h/4)^(2/3): the shift of t_c and the depth of the
  closest approach both scale as h^(2/3) ~ N^-1/3 (``test_finite_sample_rates`` in
  tests/theory/test_continuation.py fits both rates).
- t_h: the top eigenvalue of hess log p_t at the same central point changes sign.
- t_s: Biroli et al.'s speciation, alpha^2 Lambda = alpha^2 + sigma^2 (VP: tau_S = 1/2 log Lambda).
- collapse: the Gaussian excess-entropy estimate 1/2 sum_i log(1 + lam_i snr) = log n (needs n).

:func:`gaussian_critical_times` does the same from a covariance spectrum alone, with the centre's
posterior covariance replaced by the data covariance (exact at x = 0 for centred data of equal norms):
the margin of J / beta at the centre is -f/beta + c (-1/sigma^2 + alpha^2 Lambda / sigma^4), whose zero
for the VP SDE is alpha_c^2 = sqrt(1 + Lambda^2) - Lambda and for the VP ODE sigma_c^2 = Lambda
(derived in :mod:`.symbolic`). A quantity that does not exist in the schedule's time range is absent
(``None``), with the reason in ``absent``; nothing is invented.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq, minimize_scalar

from . import biroli
from .checks import finite_array
from .continuation import serial_blas
from .datamodels import DataModel
from .drifts import Drift
from .dynamics import Dynamics, score_weight
from .fixedpoints import Branch, follow_branch
from .schedules import Schedule, VPLinear

Array = NDArray[np.float64]
AXES = ("t", "alpha", "sigma", "tau", "logsnr", "step")
GAUSSIAN_NOTE = ("Gaussian approximation: the centre's posterior covariance is replaced by the data covariance "
                 "(exact for centred equal-norm data); for clusters with a spread s it uses Lambda = |m|^2 + s^2 and "
                 "gives t_c too late, by 12-19 % at |m| = 1.5 s and 5-6 % at |m| = 2 s (two Gaussians +-m)")
QUANTITIES = {"c": "critical", "h": "hessian", "s": "speciation", "collapse": "collapse"}
PROMINENCE = 100.0      # a closest approach must stand this many round-off levels above its surroundings
BAND_FACTOR = 3.0       # ... and this many model-error bands of a measured margin (see Curves.band)
MIN_PROMINENCE = 1e-7   # ... and at least this much (absolute, in units of J / beta)
SMALL_SAMPLE = 0.9      # t_collapse >= SMALL_SAMPLE t_c: too few samples for a population t_c


@dataclass(frozen=True)
class CriticalTime:
    """One time on every axis; ``step`` is None unless the schedule is discrete."""

    t: float
    alpha: float
    sigma: float
    tau: float
    logsnr: float
    step: int | None

    @classmethod
    def from_logsnr(cls, logsnr: float, schedule: Schedule) -> CriticalTime:
        """The time at which the schedule reaches ``logsnr`` (which must lie in its range)."""
        reason = out_of_range(logsnr, schedule)
        if reason:
            raise ValueError(f"logsnr: {reason}")
        t = float(np.clip(schedule.t_of_logsnr(logsnr), schedule.t_min, schedule.T))
        step = int(schedule.step_of_t(t)) if schedule.discrete else None
        return cls(t, float(schedule.alpha(t)), float(schedule.sigma(t)), float(schedule.tau(t)) + 0.0,
                   float(logsnr), step)

    @classmethod
    def from_t(cls, t: float, schedule: Schedule) -> CriticalTime:
        return cls.from_logsnr(float(schedule.logsnr(t)), schedule)

    def to_dict(self, suffix: str = "") -> dict:
        return {f"{axis}{suffix}": getattr(self, axis) for axis in AXES}


def out_of_range(logsnr: float, schedule: Schedule) -> str | None:
    """Why ``logsnr`` is not reached on [t_min, T] by the schedule, or None if it is."""
    lo, hi = schedule.logsnr_range()
    if lo - 1e-12 * (1 + abs(lo)) <= logsnr <= hi + 1e-12 * (1 + abs(hi)):
        return None
    return (f"logsnr = {logsnr:.6g} lies outside the {schedule.name} schedule's range [{lo:.6g}, {hi:.6g}] "
            f"(t in [{schedule.t_min:g}, {schedule.T:g}])")


@dataclass(frozen=True)
class Event:
    """An event on the eigenvalues of J / beta along a branch.

    ``kind``: 'crossing' (eigenvalue ``index`` passes zero; ``direction`` +1 the point loses stability,
    -1 regains it; ``multiplicity`` eigenvalues at once), 'closest-approach' (local maximum of the top
    eigenvalue below zero) or 'fold' (the followed branch ends in a saddle-node). ``margin`` is the
    eigenvalue at the event; ``soft_direction`` its eigenvector (None for a bare spectrum); ``x`` the
    fixed point there (None for a bare spectrum); ``segment`` the branch segment (0: the central branch
    from T; +1 after each fold); ``prominence`` the height of a closest approach above its surroundings.
    """

    kind: str
    time: CriticalTime
    margin: float
    index: int = 0
    direction: int = 0
    multiplicity: int = 1
    soft_direction: Array | None = field(default=None, repr=False)
    x: Array | None = field(default=None, repr=False)
    segment: int = 0
    prominence: float | None = None

    def to_dict(self) -> dict:
        return {**self.time.to_dict(), "kind": self.kind, "margin": self.margin, "index": self.index,
                "direction": self.direction, "multiplicity": self.multiplicity, "segment": self.segment,
                "prominence": self.prominence}


# ---------------------------------------------------------------------------------------------
# events on sampled eigenvalue curves, refined through a callable
# ---------------------------------------------------------------------------------------------
class _Unresolved(Exception):
    """The refining callable could not evaluate a point (Newton did not converge there)."""


@dataclass(frozen=True)
class Curves:
    """Eigenvalue curves sampled at increasing ``logsnr`` (n,), ``values`` (n, k), on ``segment``s
    (refinement never crosses a segment boundary), with ``evaluate(s) -> (values (k,), vectors (d, k)
    or None, x (d,) or None)`` giving them at any s between samples of one segment (None where it
    fails), ``noise`` (n,), the round-off level of the top curve at each sample, and ``band``, the
    model-error band of a measured margin (a trained network's: the largest deviation of its margin
    from the exact one where that is known, ``experiments.measure.branch.model_error_band``; 0 for an
    exact model). If every sample's error is within +-band, a local maximum on a rising true margin
    has a prominence of at most 2 band (the peak is at most band above the true curve, its key col at
    most band below it), so a closest approach must stand ``BAND_FACTOR`` = 3 bands above its
    surroundings (2 from that bound, 1 for the band being read in the linear phase only)."""

    logsnr: Array
    values: Array
    segment: Array
    evaluate: Callable[[float], tuple[Array, Array | None, Array | None] | None]
    noise: Array | None = None
    band: float = 0.0

    def value(self, s: float, index: int) -> float:
        out = self.evaluate(s)
        if out is None:
            raise _Unresolved
        return float(out[0][index])

    def pairs(self) -> NDArray[np.int64]:
        """j with samples j, j + 1 on one segment."""
        return np.flatnonzero(self.segment[1:] == self.segment[:-1])

    def noise_at(self, j: int) -> float:
        if self.noise is None:
            return 0.0
        return float(self.noise[max(j - 1, 0): j + 2].max())

    def prominence_floor(self, j: int) -> float:
        """The prominence a closest approach at sample j must exceed (module docstring)."""
        return max(PROMINENCE * self.noise_at(j), BAND_FACTOR * self.band, MIN_PROMINENCE)


def _root(curves: Curves, index: int, a: float, b: float, va: float, vb: float) -> float:
    """The zero of curve ``index`` between samples a < b (values va, vb of opposite signs): Brent's method
    on the refined curve; where a re-evaluated end point has lost its sign to round-off (a degenerate
    crossing sampled right at zero), Brent on the side whose signs are still opposite; linear
    interpolation only if the curve cannot be evaluated at all."""
    f = (lambda x: curves.value(x, index))
    try:
        fa, fb = f(a), f(b)
        if fa == 0.0 or fb == 0.0:
            return a if fa == 0.0 else b
        if (fa < 0) != (fb < 0):
            return float(brentq(f, a, b, xtol=1e-13, rtol=1e-13))
        m = a + (b - a) * va / (va - vb)
        fm = f(m)
        lo, hi = (a, m) if (fa < 0) != (fm < 0) else (m, b)
        return float(brentq(f, lo, hi, xtol=1e-13, rtol=1e-13)) if fm != 0.0 else m
    except (_Unresolved, ValueError):
        return a + (b - a) * va / (va - vb)


def crossings(curves: Curves, index: int) -> list[tuple[float, int]]:
    """(logsnr, direction) of every zero crossing of curve ``index``, refined by Brent's method."""
    v = curves.values[:, index]
    s = curves.logsnr
    return [(_root(curves, index, s[j], s[j + 1], v[j], v[j + 1]), 1 if v[j] < 0 else -1)
            for j in curves.pairs() if (v[j] < 0) != (v[j + 1] < 0)]


def _base(v: Array, seg: Array, j: int, step: int) -> float:
    """The lowest value from sample j walking by ``step`` within its segment until the curve climbs
    above v[j] (the 'key col' of a peak's prominence)."""
    low, k = v[j], j + step
    while 0 <= k < len(v) and seg[k] == seg[j] and v[k] <= v[j]:
        low, k = min(low, v[k]), k + step
    return float(low)


def _peak(curves: Curves, j: int) -> tuple[float, float]:
    """The sampled maximum at j refined by a bounded Brent search between its neighbours."""
    v, s = curves.values[:, 0], curves.logsnr
    try:
        res = minimize_scalar(lambda x: -curves.value(x, 0), bounds=(s[j - 1], s[j + 1]), method="bounded",
                              options={"xatol": 1e-6 * (1 + abs(s[j]))})
        s_max, v_max = float(res.x), -float(res.fun)
    except _Unresolved:
        s_max, v_max = float(s[j]), float(v[j])
    return (s_max, v_max) if v_max >= v[j] else (float(s[j]), float(v[j]))


def closest_approaches(curves: Curves) -> tuple[list[tuple[float, float, float]], list[tuple[float, int]]]:
    """Real local maxima of the top curve below zero: ([(logsnr, value, prominence)], [extra crossings]).

    A sampled maximum counts when its prominence exceeds :meth:`Curves.prominence_floor` (``PROMINENCE``
    round-off levels, ``BAND_FACTOR`` model-error bands, ``MIN_PROMINENCE``); it is refined with a bounded Brent search,
    and if the refined maximum reaches zero the samples missed a pair of crossings, returned instead.
    """
    v, s, seg = curves.values[:, 0], curves.logsnr, curves.segment
    found, extra = [], []
    for j in range(1, len(s) - 1):
        if not (seg[j - 1] == seg[j] == seg[j + 1] and v[j] < 0 and v[j] > v[j - 1] and v[j] >= v[j + 1]):
            continue
        left, right = _base(v, seg, j, -1), _base(v, seg, j, 1)
        if v[j] - max(left, right) <= curves.prominence_floor(j):
            continue
        s_max, v_max = _peak(curves, j)
        if v_max < 0:
            found.append((s_max, v_max, v_max - max(left, right)))
        else:
            extra += [(_root(curves, 0, s[j - 1], s_max, v[j - 1], v_max), 1),
                      (_root(curves, 0, s_max, s[j + 1], v_max, v[j + 1]), -1)]
    return found, extra


def _segment_at(curves: Curves, s: float) -> int:
    j = int(np.clip(np.searchsorted(curves.logsnr, s, side="right") - 1, 0, len(curves.logsnr) - 1))
    return int(curves.segment[j])


def find_events(curves: Curves, schedule: Schedule, folds: ArrayLike = ()) -> list[Event]:
    """Every crossing (of each curve; coincident ones merged with their multiplicity), closest
    approach (top curve) and fold (at the given sample indices), in generative order (logsnr up)."""
    raw = [(s, d, i) for i in range(curves.values.shape[1]) for s, d in crossings(curves, i)]
    approaches, extra = closest_approaches(curves)
    raw += [(s, d, 0) for s, d in extra]
    events = []
    for s, d, i in sorted(raw):
        last = events[-1] if events else None
        if (last is not None and last.kind == "crossing" and last.direction == d
                and abs(last.time.logsnr - s) <= 1e-7 * (1 + abs(s))):
            events[-1] = replace(last, index=min(last.index, i), multiplicity=last.multiplicity + 1)
            continue
        events.append(_event(curves, schedule, "crossing", s, 0.0, i, d))
    events += [_event(curves, schedule, "closest-approach", s, v, 0, 0, prom) for s, v, prom in approaches]
    events += [_event(curves, schedule, "fold", float(curves.logsnr[j]), float(curves.values[j, 0]), 0, 1)
               for j in np.asarray(folds, dtype=int)]
    return sorted(events, key=lambda e: e.time.logsnr)


def _event(curves: Curves, schedule: Schedule, kind: str, s: float, margin: float, index: int, direction: int,
           prominence: float | None = None) -> Event:
    out = curves.evaluate(s)
    vector = None if out is None or out[1] is None else out[1][:, index]
    x = None if out is None else out[2]
    return Event(kind, CriticalTime.from_logsnr(s, schedule), margin, index, direction, 1, vector, x,
                 _segment_at(curves, s), prominence)


def branch_curves(branch: Branch, k: int, band: float = 0.0) -> tuple[Curves, Curves]:
    """(eigenvalues of J / beta, top eigenvalue of hess log p_t) along a branch as refinable curves; ``band``
    the model-error band of a trained network's margin (0 for exact models)."""
    def evaluate(s: float):
        p = branch.point_at(s)
        return None if p is None else (p.eigenvalues[:k], p.eigenvectors[:, :k], p.x)

    def evaluate_h(s: float):
        p = branch.point_at(s)
        return None if p is None else (np.array([p.hessian_top]), None, None)

    return (Curves(branch.logsnr, branch.eigenvalues, branch.segment, evaluate, branch.noise, band),
            Curves(branch.logsnr, branch.hessian_top[:, None], branch.segment, evaluate_h, branch.noise, band))


# ---------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------
def _axis(name: str, axis: str) -> property:
    def get(self: CriticalTimes):
        value = getattr(self, name)
        return None if value is None else getattr(value, axis)

    return property(get, doc=f"``{axis}`` of ``{name}`` (None when absent).")


@dataclass(frozen=True)
class CriticalTimes:
    """Critical times of one model (or covariance spectrum) under one schedule and dynamics.

    ``critical`` / ``hessian`` / ``speciation`` / ``collapse`` are :class:`CriticalTime` or None, with
    the reason in ``absent``; ``kind`` says what t_c is ('crossing', 'fold', 'closest-approach' or
    'none') and ``margin_c`` the top eigenvalue of J / beta there; ``events`` lists every event
    (successive bifurcations included) and ``branch`` the followed branch (``method`` 'exact').
    """

    method: str
    dynamics: str
    schedule: Schedule
    data: dict
    lambda_max: float
    n: int | None
    kind: str
    critical: CriticalTime | None
    margin_c: float | None
    hessian: CriticalTime | None
    speciation: CriticalTime | None
    collapse: CriticalTime | None
    absent: dict[str, str]
    events: tuple[Event, ...] = ()
    branch: Branch | None = field(default=None, repr=False)
    notes: dict[str, str] = field(default_factory=dict)

    t_c = _axis("critical", "t")
    alpha_c = _axis("critical", "alpha")
    tau_c = _axis("critical", "tau")
    logsnr_c = _axis("critical", "logsnr")
    step_c = _axis("critical", "step")
    t_h = _axis("hessian", "t")
    t_s = _axis("speciation", "t")
    t_collapse = _axis("collapse", "t")

    @property
    def soft_direction(self) -> Array | None:
        """Eigenvector that goes soft at t_c (None if absent or unknown)."""
        chosen = [e for e in self.events if self.critical is not None and e.time == self.critical]
        return chosen[0].soft_direction if chosen else None

    def to_dict(self) -> dict:
        """JSON-ready: every quantity on every axis (``t_c``, ``alpha_c``, ... ``step_collapse``; None
        when absent), ``kind``, ``margin_c``, ``absent`` reasons, ``events``, ``schedule``, ``data``."""
        out: dict = {"method": self.method, "dynamics": self.dynamics, "kind": self.kind}
        for suffix, name in QUANTITIES.items():
            value: CriticalTime | None = getattr(self, name)
            out.update(value.to_dict(f"_{suffix}") if value else {f"{a}_{suffix}": None for a in AXES})
            if suffix == "c":
                out["margin_c"] = self.margin_c
        out.update({"lambda_max": self.lambda_max, "n": self.n, "absent": dict(self.absent),
                    "events": [e.to_dict() for e in self.events], "schedule": self.schedule.config(),
                    "data": self.data})
        out["notes"] = dict(self.notes)
        if self.branch is not None:
            out["branch_status"] = self.branch.status
        return out

    def table(self):
        """A pandas DataFrame: one row per quantity (t_c, t_h, t_s, collapse) and per event."""
        import pandas as pd

        labels = {"c": f"t_c ({self.kind})", "h": "t_h (Hessian sign)", "s": "t_s (speciation)",
                  "collapse": "collapse"}
        rows = []
        for suffix, name in QUANTITIES.items():
            value: CriticalTime | None = getattr(self, name)
            row = {"quantity": labels[suffix], **(value.to_dict() if value else dict.fromkeys(AXES))}
            row["margin"] = self.margin_c if suffix == "c" else None
            row["note"] = self.absent.get(name, "")
            rows.append(row)
        for e in self.events:
            rows.append({"quantity": f"event: {e.kind}", **e.time.to_dict(), "margin": e.margin,
                         "note": f"eigenvalue {e.index + 1}" + (f" x{e.multiplicity}" if e.multiplicity > 1 else "")})
        return pd.DataFrame(rows, columns=["quantity", *AXES, "margin", "note"])


# ---------------------------------------------------------------------------------------------
# assembling the result
# ---------------------------------------------------------------------------------------------
def choose_critical(events: list[Event], margin_at_T: float = -0.5) -> Event | None:
    """t_c's event (module docstring): the first event on the central branch -- an upward crossing,
    a fold or a closest approach, whatever its depth; None when the branch is already unstable at T
    (``margin_at_T`` >= 0) or has no event."""
    if margin_at_T >= 0:
        return None
    first = [e for e in events if e.direction > 0 or e.kind != "crossing"]
    return first[0] if first else None


def _at(logsnr: float | None, schedule: Schedule, name: str, absent: dict[str, str],
        reason: str | None = None) -> CriticalTime | None:
    """A CriticalTime at ``logsnr``, or None with the reason recorded in ``absent``."""
    reason = reason or (out_of_range(logsnr, schedule) if logsnr is not None else "not found")
    if reason:
        absent[name] = reason
        return None
    return CriticalTime.from_logsnr(logsnr, schedule)


def _assemble(method: str, dynamics: str, schedule: Schedule, data: dict, spectrum: Array, n: int | None,
              curves: Curves, hessian: Curves, folds: ArrayLike = (), branch: Branch | None = None,
              notes: dict[str, str] | None = None) -> CriticalTimes:
    absent: dict[str, str] = {}
    notes = dict(notes or {})
    events = find_events(curves, schedule, folds)
    margin = curves.values[:, 0]
    chosen = choose_critical(events, float(margin[0]))
    lo, hi = schedule.logsnr_range()
    if chosen is None:
        absent["critical"] = (
            f"the central fixed point is already unstable at t = T (margin {margin[0]:.3g} >= 0)" if margin[0] >= 0
            else f"the top eigenvalue of J/beta stays below zero (max {margin.max():.3g}) and has no peak above "
                 f"its round-off level for logsnr in [{lo:.4g}, {hi:.4g}]")
        if branch is not None and branch.status != "complete":
            absent["critical"] += f"; {branch.status}"
    ups = [s for s, d in crossings(hessian, 0) if d > 0]
    h_reason = None if ups else ("the Hessian of log p_t at the centre already has a positive eigenvalue at t = T"
                                 if hessian.values[0, 0] >= 0 else
                                 "the Hessian of log p_t at the centre stays negative definite")
    Lambda = float(spectrum.max()) if spectrum.size else 0.0
    s_reason = None if Lambda > 1 else (f"Lambda = {Lambda:.6g} <= 1: alpha^2 Lambda never reaches alpha^2 + sigma^2 "
                                        "(no speciation)")
    c_reason = None
    if n is None:
        c_reason = "n (the number of samples) not given"
    elif not (spectrum > 0).any():
        c_reason = "the covariance spectrum is zero: the excess entropy never grows"
    collapse = _at(None if c_reason else biroli.collapse_logsnr(spectrum, n), schedule, "collapse", absent,
                   c_reason)
    if chosen is not None and collapse is not None and collapse.t >= SMALL_SAMPLE * chosen.time.t:
        notes["small-sample"] = (f"t_collapse = {collapse.t:.4g} >= {SMALL_SAMPLE} t_c (t_c = {chosen.time.t:.4g}): "
                                 f"{n} samples are too few for their dimension to show a population t_c; the "
                                 "event is where this sample commits, close to its memorisation")
    return CriticalTimes(
        method=method, dynamics=dynamics, schedule=schedule, data=data, lambda_max=Lambda, n=n,
        kind="none" if chosen is None else chosen.kind,
        critical=None if chosen is None else chosen.time,
        margin_c=None if chosen is None else chosen.margin,
        hessian=_at(ups[0] if ups else None, schedule, "hessian", absent, h_reason),
        speciation=_at(None if s_reason else biroli.speciation_logsnr(Lambda), schedule, "speciation", absent,
                       s_reason),
        collapse=collapse, absent=absent, events=tuple(events), branch=branch, notes=notes)


def _check_n(n: int | None) -> int | None:
    if n is None:
        return None
    v = float(finite_array("n", n, ndim=0))
    if v != int(v) or v < 2:
        raise ValueError(f"n: the number of samples must be an integer >= 2, got {n}")
    return int(v)


def critical_times(model: DataModel, schedule: Schedule | None = None, dynamics: Dynamics = "sde", *,
                   n: int | None = None, k: int = 5, t_end: float | None = None, near_zero: float | None = None,
                   matrix_free: bool | None = None, spectrum: ArrayLike | None = None,
                   drift: Callable[..., Drift] | None = None) -> CriticalTimes:
    """All critical times of ``model`` (default schedule: VP linear), following the central branch
    from T to ``t_end`` (default t_min) and tracking the top ``k`` eigenvalues of J / beta.

    t_c is the first event on the central branch (module docstring). ``n``: the number of samples
    for the collapse estimate (absent without it). ``matrix_free`` (default: finite data with
    d > 256): follow the branch without a d x d matrix (:class:`.drifts.EmpiricalDrift`). ``drift``: the
    factory of the followed drift (:func:`.fixedpoints.follow_branch`; default :func:`.drifts.model_drift`).
    ``spectrum``: the data covariance eigenvalues if already known (otherwise from ``model.cov``,
    or for matrix-free finite data the top ``max(k, 16)`` by Lanczos and the rest of the trace spread
    evenly). ``near_zero`` is accepted for old callers and has no effect: the first-event rule needs
    no threshold.
    """
    schedule = VPLinear() if schedule is None else schedule
    score_weight(dynamics)
    n = _check_n(n)
    branch = follow_branch(model, schedule, dynamics, k=k, t_end=t_end, matrix_free=matrix_free, drift=drift)
    curves, hessian = branch_curves(branch, branch.eigenvalues.shape[1])
    if spectrum is not None:
        lam = np.clip(np.sort(finite_array("spectrum", spectrum).ravel())[::-1], 0.0, None)
    elif getattr(branch.drift, "matrix_free", False):
        lam = branch.drift.covariance_spectrum(max(k, 16))
    else:
        lam = np.clip(np.linalg.eigvalsh(model.cov), 0.0, None)
    with serial_blas(branch.drift):
        return _assemble("exact", dynamics, schedule, model.config(), lam, n, curves, hessian, branch.folds, branch)


def _centre_terms(logsnr: ArrayLike, schedule: Schedule) -> tuple[Array, Array, Array]:
    """(snr, sigma^2, -f / beta) at each logsnr, as column vectors."""
    s = np.atleast_1d(finite_array("logsnr", logsnr))
    t = np.clip(schedule.t_of_logsnr(s), schedule.t_min, schedule.T)
    return np.exp(s)[:, None], schedule.sigma2(t)[:, None], (-schedule.f(t) / schedule.beta(t))[:, None]


def gaussian_hessian(lam: ArrayLike, logsnr: ArrayLike, schedule: Schedule) -> Array:
    """Eigenvalues of hess log p_t at the centre when Cov[y | x_t = centre] is the data covariance:
    -1/sigma^2 + alpha^2 lam / sigma^4 = (snr lam - 1) / sigma^2, shape (len(logsnr), len(lam))."""
    snr, sigma2, _ = _centre_terms(logsnr, schedule)
    return (snr * np.atleast_1d(np.asarray(lam, dtype=np.float64))[None, :] - 1.0) / sigma2


def gaussian_margin(lam: ArrayLike, logsnr: ArrayLike, schedule: Schedule, dynamics: Dynamics = "sde") -> Array:
    """Eigenvalues of J / beta at the centre in the same approximation: -f/beta + c hess."""
    return _centre_terms(logsnr, schedule)[2] + score_weight(dynamics) * gaussian_hessian(lam, logsnr, schedule)


def gaussian_critical_times(lam: float | ArrayLike, schedule: Schedule | None = None, *, n: int | None = None,
                            dynamics: Dynamics = "sde", k: int = 5, n_grid: int = 2001) -> CriticalTimes:
    """Critical times in the Gaussian approximation from the covariance eigenvalues ``lam`` (a scalar
    Lambda or the spectrum): the centre's margins :func:`gaussian_margin` for the top ``k`` eigenvalues
    (each crossing is a successive bifurcation), t_h where snr Lambda = 1, speciation, and collapse
    from the whole spectrum and ``n``.

    Bias (also in ``notes['gaussian']``): the centre's posterior covariance is replaced by the data
    covariance, exact for centred data of equal norms but not for clusters with a spread: for two
    Gaussians +-m with component variance s^2 it uses Lambda = |m|^2 + s^2, while the population
    centre margin is 1/2 - 1/Gamma + alpha^2 |m|^2 / Gamma^2 (Gamma = alpha^2 s^2 + sigma^2), so the
    Gaussian t_c is 12-19 % late (too high) at |m| = 1.5 s and 5-6 % at |m| = 2 s."""
    schedule = VPLinear() if schedule is None else schedule
    score_weight(dynamics)
    n = _check_n(n)
    spectrum = np.sort(np.atleast_1d(finite_array("lam", lam)).ravel())[::-1]
    if spectrum.size == 0 or (spectrum < 0).any():
        raise ValueError(f"lam: covariance eigenvalues must be >= 0 (and at least one), got {spectrum.tolist()[:5]}")
    top = spectrum[:k]
    grid = np.linspace(*schedule.logsnr_range(), int(n_grid))

    curves = Curves(grid, gaussian_margin(top, grid, schedule, dynamics), np.zeros(grid.size, dtype=int),
                    lambda s: (gaussian_margin(top, s, schedule, dynamics)[0], None, None))
    hessian = Curves(grid, gaussian_hessian(top[:1], grid, schedule), np.zeros(grid.size, dtype=int),
                     lambda s: (gaussian_hessian(top[:1], s, schedule)[0], None, None))
    data = {"name": "gaussian-approximation", "lambda_max": float(spectrum[0]), "dim": int(spectrum.size)}
    return _assemble("gaussian", dynamics, schedule, data, spectrum, n, curves, hessian,
                     notes={"gaussian": GAUSSIAN_NOTE})
