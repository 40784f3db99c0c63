"""Critical times of a dataset: the Gaussian approximation from its covariance spectrum, and the exact
empirical score's central branch followed with Newton continuation.

* **Gaussian route** (``method="gaussian"``): the covariance spectrum of *all* N samples from the
  streaming :func:`.spectrum.covariance_spectrum` (never a float64 copy of the data), then
  :func:`symbreak.theory.gaussian_critical_times`: the centre's margin -f/beta + c (snr lam - 1)/sigma^2
  vanishes at alpha_c^2 = sqrt(1 + Lambda^2) - Lambda (VP SDE) or sigma_c^2 = Lambda (VP ODE, so only
  for Lambda < 1: otherwise the centre is unstable from T on; derived in
  :func:`symbreak.theory.symbolic.centre_alpha_c2`); each further eigenvalue gives a successive
  bifurcation. Speciation alpha^2 Lambda = alpha^2 + sigma^2 (VP: alpha^2 Lambda = 1), t_h where
  snr Lambda = 1, and the collapse estimate 1/2 sum_i log(1 + lam_i snr) = log N over the whole
  spectrum. When only the top-k eigenvalues are known (the Lanczos route for large d), the rest of the
  variance, tr Sigma - sum of the k, is spread evenly over the other d - k directions
  (:attr:`.spectrum.CovarianceSpectrum.residual_variance`): exact for the trace, an approximation for the sum of logs.
* **Exact route** (``method="exact"``): :class:`symbreak.theory.EmpiricalData` of all N samples (a
  seeded random subset only when ``max_points`` is given, stated in the result) and
  :func:`symbreak.theory.critical_times`: the branch through the centre alpha(T) mu is followed from T
  towards 0 and every crossing, closest approach and fold of the eigenvalues of J / beta is reported.
  For d > 256 it is matrix-free (:class:`symbreak.theory.drifts.EmpiricalDrift`: block LOBPCG, Lanczos
  and MINRES on products with the posterior covariance B^T B, O(N d) per product, memory O(chunk d + N));
  for smaller d the same class forms J / beta from the rows of non-negligible weight. t_c is
  the first event on the central branch (an upward crossing, a fold, or the first real closest
  approach whatever its depth; its margin is the size of the imperfection); every later event is a
  successive bifurcation, described in ``hierarchy``: the soft direction's overlap with the top
  covariance eigenvectors and, with labels, with the class-mean differences, and which classes (those
  with posterior weight >= 1 % at the event's fixed point) lie on either side of it.
* ``bootstrap=B``: a ``level`` confidence interval for t_c from B half-samples (half the sampling units
  without replacement: the points, or the mirror pairs of a symmetrised set), each run through the whole
  exact route: t_c -+ the level-quantile of |t_c* - t_c| over the half-samples whose first event is the
  estimate's; the share of the others is reported (:func:`_bootstrap` says why not the multinomial
  bootstrap, and its measured coverage). For the Gaussian route from the asymptotic sampling variance of
  Lambda, Var = (E[z^4] - Lambda^2) / N with z the data projected on the top covariance eigenvector, mapped
  through the monotone t_c(Lambda).
* ``method="both"``: the two side by side. t_c, its kind and margin, the events and t_h then come from
  the exact route (the Gaussian t_c and t_h are reported beside them); t_s and the collapse time from
  the Gaussian route (they are Gaussian quantities of the whole spectrum and all N samples).

Constant data (covariance 0) are not an error: p_t then has one mode at every t and the result says
that there is no critical time and why.

Every time is given on every axis (t, alpha, sigma, tau, logsnr, step) plus ``ddpm_step``: the
schedule's own step for a discrete schedule, otherwise the step of the standard 1000-step DDPM
schedule (betas 1e-4 .. 0.02) that reaches the same logsnr.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from symbreak.theory import (
    CriticalTime,
    CriticalTimes,
    DiscreteDDPM,
    EmpiricalData,
    Event,
    Schedule,
    VPLinear,
    critical_times,
    gaussian_critical_times,
    gaussian_margin,
)
from symbreak.theory.critical import AXES, QUANTITIES
from symbreak.theory.drifts import EmpiricalDrift
from symbreak.theory.dynamics import score_weight

from .datasets import Dataset, chunk_slices, rows_per_chunk
from .spectrum import CovarianceSpectrum, covariance_spectrum

Array = NDArray[np.float64]
METHODS = ("gaussian", "exact", "both")
DDPM_REFERENCE = DiscreteDDPM()
CONSTANT_EPS = 1e3  # tr Sigma below (1e3 eps)^2 (1 + |mu|^2) counts as constant data
N_GRID = 401  # logsnr samples of the Gaussian margin in the branch table
LABELS = {"c": "t_c", "h": "t_h (Hessian sign)", "s": "t_s (speciation)", "collapse": "collapse"}
BOTH_ROUTES = {"c": "critical", "h": "hessian"}  # quantities also reported from the Gaussian route
HALF_TOL = 1e-6  # mirror images agree to this fraction of the data's scale (float32 rounding is ~6e-8)


# --- the DDPM step of any time ------------------------------------------------------------------
def ddpm_step(logsnr: ArrayLike, schedule: Schedule) -> NDArray:
    """The DDPM step at each ``logsnr``: the schedule's own step if it is discrete, otherwise the step
    of :data:`DDPM_REFERENCE` with the same logsnr; -1 where that schedule does not reach it."""
    ref = schedule if schedule.discrete else DDPM_REFERENCE
    s = np.atleast_1d(np.asarray(logsnr, dtype=np.float64))
    lo, hi = ref.logsnr_range()
    inside = (s >= lo - 1e-12 * (1 + abs(lo))) & (s <= hi + 1e-12 * (1 + abs(hi)))
    t = np.clip(ref.t_of_logsnr(np.clip(s, lo, hi)), ref.t_min, ref.T)
    return np.where(inside, ref.step_of_t(t), -1).astype(np.int64)


def time_axes(time: CriticalTime | None, schedule: Schedule, suffix: str = "") -> dict:
    """``time`` on every axis plus ``ddpm_step`` (None when absent or out of the DDPM range)."""
    if time is None:
        return {f"{axis}{suffix}": None for axis in (*AXES, "ddpm_step")}
    step = int(ddpm_step(time.logsnr, schedule)[0])
    return {**time.to_dict(suffix), f"ddpm_step{suffix}": None if step < 0 else step}


def event_dict(event: Event, schedule: Schedule) -> dict:
    """One event as JSON: every axis, ``kind``, ``margin`` and which eigenvalue (``index``, 0 = top)."""
    return {**time_axes(event.time, schedule), "kind": event.kind, "margin": event.margin, "index": event.index,
            "direction": event.direction, "multiplicity": event.multiplicity}


# --- the result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetCriticalTimes:
    """Critical times of one dataset under one schedule and dynamics, from one or both routes.

    ``gaussian`` / ``exact``: the :class:`CriticalTimes` of each route (None if not run); ``spectrum``
    the covariance spectrum of all N samples (Gaussian route); ``n_exact`` and ``subset`` the points the
    exact route used (``subset`` None when it used all of them); ``soft_direction`` the unit vector that
    goes soft at t_c in the dataset's per-sample ``shape`` (an image for image data): the eigenvector
    of J / beta on the branch (exact route) or the top covariance eigenvector (Gaussian route only);
    ``soft_overlap`` |cos| between the two when both routes ran. ``absent`` says why a quantity is None;
    ``k`` how many eigenvalues of J / beta were tracked.
    """

    method: str
    dynamics: str
    schedule: Schedule
    data: dict
    n_points: int
    dim: int
    shape: tuple[int, ...]
    scaling: str
    gaussian: CriticalTimes | None = field(repr=False)
    exact: CriticalTimes | None = field(repr=False)
    spectrum: CovarianceSpectrum | None = field(repr=False)
    n_exact: int | None
    subset: dict | None
    lambda_max: float
    constant: bool
    soft_direction: Array | None = field(repr=False)
    soft_overlap: float | None
    absent: dict[str, str]
    k: int
    hierarchy: tuple[dict, ...] = ()
    t_c_ci: tuple[float, float] | None = None
    t_c_gaussian_ci: tuple[float, float] | None = None
    bootstrap: dict | None = field(default=None, repr=False)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> CriticalTimes:
        """The route t_c comes from: exact when it ran, else Gaussian."""
        return self.exact if self.exact is not None else self.gaussian

    def source_of(self, name: str) -> CriticalTimes:
        """t_s and collapse come from the Gaussian route when it ran, the rest from :attr:`primary`."""
        if name in ("speciation", "collapse") and self.gaussian is not None:
            return self.gaussian
        return self.primary

    def quantity(self, name: str) -> CriticalTime | None:
        """'critical', 'hessian', 'speciation' or 'collapse' (None when absent, see ``absent``)."""
        return None if name in self.absent else getattr(self.source_of(name), name)

    @property
    def kind(self) -> str:
        return "none" if self.quantity("critical") is None else self.primary.kind

    @property
    def margin_c(self) -> float | None:
        return None if self.quantity("critical") is None else self.primary.margin_c

    @property
    def t_c(self) -> float | None:
        c = self.quantity("critical")
        return None if c is None else c.t

    def gaussian_quantity(self, name: str) -> CriticalTime | None:
        """'critical' or 'hessian' of the Gaussian route (None if absent or not run)."""
        if self.gaussian is None or (name == "critical" and self.constant):
            return None
        return getattr(self.gaussian, name)

    def _gaussian_absent(self, name: str) -> str:
        """Why the Gaussian route's ``name`` is absent ('' when present)."""
        if name == "critical" and self.constant:
            return self.absent["critical"]
        return self.gaussian.absent.get(name, "")

    @property
    def t_c_gaussian(self) -> float | None:
        c = self.gaussian_quantity("critical")
        return None if c is None else c.t

    @property
    def events(self) -> tuple[Event, ...]:
        return self.primary.events

    def to_dict(self) -> dict:
        """JSON-ready: every quantity on every axis (``t_c`` ... ``ddpm_step_collapse``), ``kind``,
        ``margin_c``, the Gaussian route's ``t_c_gaussian`` ... and ``t_h_gaussian`` ..., ``lambda_max``,
        ``n_points``, ``dim``, ``method``, ``scaling``, ``events`` (each with t, kind, margin, step, ddpm_step ...),
        ``absent`` reasons, the exact route's subset and branch status, ``schedule`` and ``data``."""
        out: dict = {"method": self.method, "dynamics": self.dynamics, "kind": self.kind}
        for suffix, name in QUANTITIES.items():
            out.update(time_axes(self.quantity(name), self.schedule, f"_{suffix}"))
            if suffix == "c":
                out["margin_c"] = self.margin_c
        for suffix, name in BOTH_ROUTES.items():
            out.update(time_axes(self.gaussian_quantity(name), self.schedule, f"_{suffix}_gaussian"))
        out.update({"lambda_max": self.lambda_max, "n_points": self.n_points, "dim": self.dim,
                    "shape": list(self.shape), "scaling": self.scaling, "constant": self.constant,
                    "events": [event_dict(e, self.schedule) for e in self.events],
                    "events_gaussian": ([] if self.gaussian is None else
                                        [event_dict(e, self.schedule) for e in self.gaussian.events]),
                    "absent": dict(self.absent), "n_exact": self.n_exact, "subset": self.subset,
                    "soft_overlap": self.soft_overlap, "hierarchy": list(self.hierarchy),
                    "t_c_ci": None if self.t_c_ci is None else list(self.t_c_ci),
                    "t_c_gaussian_ci": None if self.t_c_gaussian_ci is None else list(self.t_c_gaussian_ci),
                    "bootstrap": self.bootstrap, "notes": dict(self.notes),
                    "branch_status": None if self.exact is None else self.exact.branch.status,
                    "spectrum": None if self.spectrum is None else self.spectrum.config(),
                    "schedule": self.schedule.config(), "data": self.data})
        return out

    def table(self):
        """A pandas DataFrame: one row per quantity (t_c of each route, t_h, t_s, collapse) and per
        event, with every axis, ``ddpm_step``, the margin and a note."""
        import pandas as pd

        rows = []
        for suffix, name in QUANTITIES.items():
            value = self.quantity(name)
            label = LABELS[suffix] + (f" {self.source_of(name).method} ({self.kind})" if suffix == "c" else "")
            rows.append({"quantity": label, **time_axes(value, self.schedule),
                         "margin": self.margin_c if suffix == "c" else None, "note": self.absent.get(name, "")})
            if suffix in BOTH_ROUTES and self.method == "both":
                rows.append({"quantity": f"{LABELS[suffix]} gaussian", **time_axes(self.gaussian_quantity(name),
                                                                                  self.schedule),
                             "margin": None, "note": self._gaussian_absent(name)})
        if self.t_c_ci is not None or self.t_c_gaussian_ci is not None:
            for label, ci in (("t_c CI", self.t_c_ci), ("t_c gaussian CI", self.t_c_gaussian_ci)):
                if ci is not None:
                    rows.append({"quantity": label, "t": ci[0], "margin": None,
                                 "note": f"[{ci[0]:.5g}, {ci[1]:.5g}] at {self.bootstrap['level']:g}"})
        described = {h["logsnr"]: h for h in self.hierarchy}
        for route in (self.exact, self.gaussian):
            for e in () if route is None else route.events:
                note = f"eigenvalue {e.index + 1}" + (f" x{e.multiplicity}" if e.multiplicity > 1 else "")
                h = described.get(e.time.logsnr) if route is self.primary else None
                rows.append({"quantity": f"{route.method} event: {e.kind}", **time_axes(e.time, self.schedule),
                             "margin": e.margin, "note": note + ("" if h is None else f"; {h['summary']}")})
        for name, text in self.notes.items():
            rows.append({"quantity": f"note: {name}", "margin": None, "note": text})
        return pd.DataFrame(rows, columns=["quantity", *AXES, "ddpm_step", "margin", "note"])

    def branch_table(self):
        """The curves behind the result, one row per logsnr: every axis and ``ddpm_step``; with the
        exact route its branch (``segment``, ``margin`` = top eigenvalue of J / beta, ``lam_1`` ...,
        ``hessian_top``, ``x_norm``); with the Gaussian route ``margin_gaussian`` (the centre's top
        eigenvalue of J / beta in the Gaussian approximation). Without the exact route the rows are
        an even logsnr grid and also hold the Gaussian ``lam_1`` ... of the top eigenvalues."""
        import pandas as pd

        if self.exact is not None:
            df = self.exact.branch.to_pandas()
            logsnr = df["logsnr"].to_numpy()
        else:
            logsnr = np.linspace(*self.schedule.logsnr_range(), N_GRID)
            t = np.clip(self.schedule.t_of_logsnr(logsnr), self.schedule.t_min, self.schedule.T)
            df = pd.DataFrame({"t": t, "alpha": self.schedule.alpha(t), "sigma": self.schedule.sigma(t),
                               "tau": self.schedule.tau(t), "logsnr": logsnr})
            if self.schedule.discrete:
                df["step"] = self.schedule.step_of_t(t)
        step = ddpm_step(logsnr, self.schedule)
        df.insert(df.columns.get_loc("logsnr") + 1 + int("step" in df), "ddpm_step",
                  pd.array(np.where(step < 0, None, step), dtype="Int64"))
        if self.gaussian is not None:
            lam = full_spectrum(self.spectrum)[: self.k]
            margins = gaussian_margin(lam, logsnr, self.schedule, self.dynamics)
            df["margin_gaussian"] = margins[:, 0]
            if self.exact is None:
                df = df.assign(**{f"lam_{i + 1}": margins[:, i] for i in range(margins.shape[1])})
        return df


# --- the two routes -----------------------------------------------------------------------------
def full_spectrum(spectrum: CovarianceSpectrum) -> Array:
    """All d covariance eigenvalues: the computed top k, then the residual variance tr Sigma - sum of
    the k spread evenly over the other d - k directions (exact when k = d)."""
    rest = np.full(spectrum.dim - spectrum.k, spectrum.residual_variance)
    return np.concatenate([spectrum.lam, rest])


def _spectrum(data: Dataset, k: int) -> CovarianceSpectrum:
    """The streaming covariance spectrum of all N samples (every eigenvalue when d <= 1024, else the
    top max(k, 16) and the residual variance)."""
    return covariance_spectrum(data, k=None if data.dim <= 1024 else max(k, 16))


def _exact_route(data: Dataset, schedule: Schedule, dynamics: str, k: int, spectrum: CovarianceSpectrum,
                 drift: Callable | None = None) -> CriticalTimes:
    """The exact route on every sample of ``data``, with the drift factory ``drift`` (None: theory's)."""
    return critical_times(EmpiricalData(data.x), schedule, dynamics, n=data.n, k=k, spectrum=full_spectrum(spectrum),
                          drift=drift)


def _unit(v: Array) -> Array:
    return v / max(float(np.linalg.norm(v)), 1e-300)


def event_hierarchy(event: Event, data: Dataset, spectrum: CovarianceSpectrum, schedule: Schedule, dynamics: str,
                    n_top: int = 5) -> dict:
    """What goes soft at ``event``: |cos| of its direction with the top covariance eigenvectors (the best
    match and all of them), with the class-mean differences (labels), and the classes (posterior weight
    >= 1 % at the event's fixed point) on either side of the soft direction."""
    v = _unit_signed(event.soft_direction)
    cov = np.abs(spectrum.vecs[:, :n_top].T @ v)
    out = {"logsnr": event.time.logsnr, "t": event.time.t, "kind": event.kind, "segment": event.segment,
           "covariance_overlap": cov.round(6).tolist(), "covariance_axis": int(cov.argmax()) + 1}
    summary = f"soft along covariance axis {out['covariance_axis']} (|cos| {cov.max():.2f})"
    if data.labels is not None and event.x is not None:
        classes = np.unique(data.labels)
        means = np.stack([np.asarray(data.x[data.labels == c], dtype=np.float64).mean(axis=0) for c in classes])
        pairs = [(i, j) for i in range(len(classes)) for j in range(i + 1, len(classes))]
        overlaps = [abs(_unit(means[i] - means[j]) @ v) for i, j in pairs]
        best = int(np.argmax(overlaps)) if pairs else None
        w = EmpiricalDrift(data.x, schedule, dynamics).posterior_weights(event.x, event.time.logsnr)
        mass = np.array([w[data.labels == c].sum() for c in classes])
        side = (means - event.x / event.time.alpha) @ v
        live = mass >= 0.01
        out.update({"class_mean_overlap": None if best is None else float(overlaps[best]),
                    "class_pair": None if best is None else [int(classes[p]) for p in pairs[best]],
                    "groups": {"+": [int(c) for c in classes[live & (side > 0)]],
                               "-": [int(c) for c in classes[live & (side <= 0)]]}})
        summary += f"; separates {out['groups']['+']} | {out['groups']['-']}"
    out["summary"] = summary
    return out


def mirror_pairs(data: Dataset) -> NDArray[np.int64] | None:
    """(N/2, 2) indices (j, j') with y_j + y_j' = 2 mu when every sample has its mirror image about the mean
    mu (a symmetrised set {y, 2 mu - y}), else None. Streaming passes: the mean, the projections on a fixed
    random direction (pairing the i-th smallest with the i-th largest), then a check of every pair."""
    if data.n % 2:
        return None
    rows = rows_per_chunk(data.dim)
    mean = sum(np.asarray(data.x[sl], dtype=np.float64).sum(axis=0) for sl in chunk_slices(data.n, rows)) / data.n
    u = np.random.default_rng(0).standard_normal(data.dim)
    p = np.concatenate([(np.asarray(data.x[sl], dtype=np.float64) - mean) @ u for sl in chunk_slices(data.n, rows)])
    order = np.argsort(p, kind="stable")
    scale = HALF_TOL * (1.0 + float(np.abs(p).max()))
    if np.abs(p[order] + p[order[::-1]]).max() > scale:
        return None
    pairs = np.stack([order[: data.n // 2], order[::-1][: data.n // 2]], axis=1)
    for sl in chunk_slices(len(pairs), rows):
        a = np.asarray(data.x[pairs[sl, 0]], dtype=np.float64)
        b = np.asarray(data.x[pairs[sl, 1]], dtype=np.float64)
        if np.abs(a + b - 2.0 * mean).max() > HALF_TOL * (1.0 + float(np.abs(a - mean).max())):
            return None
    return pairs


def _candidates(ct: CriticalTimes) -> Array:
    """logsnr of every event the t_c rule could pick (upward crossings, folds, closest approaches) and of
    the collapse time: the anchors a resample's first event is matched to."""
    s = [e.time.logsnr for e in ct.events if e.direction > 0 or e.kind != "crossing"]
    return np.array(s + ([ct.collapse.logsnr] if ct.collapse is not None else []))


def _same_event(ct: CriticalTimes, anchors: Array, chosen: float) -> bool:
    """Whether ``ct``'s t_c lies nearer (in logsnr) to the estimate's event ``chosen`` than to any other anchor."""
    if ct.critical is None:
        return False
    return bool(anchors[np.abs(anchors - ct.logsnr_c).argmin()] == chosen)


def _bootstrap(data: Dataset, schedule: Schedule, dynamics: str, k: int, spectrum: CovarianceSpectrum, b: int,
               level: float, seed: int, drift: Callable | None = None, *,
               estimate: CriticalTimes) -> tuple[tuple[float, float], dict]:
    """Half-sampling interval for the t_c of ``estimate`` (the exact route on ``data``): ``b`` subsamples of
    half the sampling units drawn without replacement (units: the points, or the mirror pairs of a
    symmetrised set, :func:`mirror_pairs`), each through the exact route (its collapse estimate from the
    full sample's ``spectrum``); the shifts t_c*_i - t_c of the subsamples whose first event is the
    estimate's (:func:`_same_event`) give the symmetric interval t_c -+ q_level(|t_c*_i - t_c|).

    Why not the multinomial bootstrap: t_c of a sample is not a smooth function of it. A symmetric
    population splits at a pitchfork, and a sample's imbalance h ~ N^-1/2 shifts its t_c by ~|h|^(2/3)
    (theory.critical, "Finite-sample behaviour"), a cusp at the population value, where the bootstrap is
    inconsistent (Bickel, Goetze & van Zwet 1997, Statistica Sinica 7:1; Andrews 2000, Econometrica
    68:399). Resampling with replacement also duplicates ~37 % of the points: a resample is a weighted set
    twice as unbalanced as the sample, without its symmetry, and its first event moves or changes (gmm-2d,
    N = 200: 14 of 200 resamples report a memorisation event at t < 0.03 or none instead of the closest
    approach at 0.24, and the percentile interval reached down to 0.024). A half-sample is a genuine
    sample of N/2 distinct units; its imbalance about the full sample's, h_{N/2} - h_N, has variance
    Var(h)(2/N - 1/N) = Var(h_N - h), so for any asymptotically linear part of t_c the spread of
    t_c*_i - t_c is that of t_c - t_c(population) with no rate rescaling: the delete-d jackknife with
    d = N/2 (Shao & Wu 1989, Ann. Statist. 17:1176; consistent for non-smooth statistics such as
    quantiles) used as a subsampling distribution (Politis & Romano 1994, Ann. Statist. 22:2031). The
    interval is the symmetric one (Politis, Romano & Wolf 1999, "Subsampling", sec. 2.2; Hall 1988,
    J. R. Statist. Soc. B 50:35): it contains the estimate by construction, and a one-sided shift of the
    half-samples (the N^-1/3 bias of an imperfect pitchfork) widens it on both sides. Subsamples whose
    first event is another (nearer another candidate event or the collapse time, or no t_c) are left
    out and counted: ``other_share``, their kinds in ``kinds``.

    Measured coverage of the population t_c at level 0.9 (closed forms of benchmarks/critical_sweep.py;
    12 seeds, N = 200, d = 2, B = 40): symmetrised two-cluster set 12/12, i.i.d. 1/2 N(+-2 e_1, I) 9/12,
    0.3/0.7 clusters 9/12, gmm-2d 7/12 (its estimate is 7.6 % late on average, more than its spread);
    the multinomial percentile interval on the same sets: 6/12 (i.i.d. two-cluster) and 3/12 (gmm-2d)."""
    if estimate.critical is None:
        return (np.nan, np.nan), {"B": 0, "level": level, "seed": seed, "note": "no t_c: nothing to resample"}
    units = mirror_pairs(data)
    units = np.arange(data.n)[:, None] if units is None else units
    rng = np.random.default_rng(seed)
    anchors, chosen = _candidates(estimate), estimate.logsnr_c
    values, kinds, same = [], [], []
    for _ in range(b):
        idx = np.sort(units[rng.choice(len(units), len(units) // 2, replace=False)].ravel())
        ct = _exact_route(replace(data, x=data.x[idx], labels=None), schedule, dynamics, k, spectrum, drift)
        values.append(np.nan if ct.t_c is None else ct.t_c)
        kinds.append(ct.kind)
        same.append(_same_event(ct, anchors, chosen))
    t = np.array(values)
    shift = t[np.array(same, dtype=bool)] - estimate.t_c
    half = float(np.quantile(np.abs(shift), level)) if shift.size else np.nan
    ci = (float(estimate.t_c - half), float(estimate.t_c + half))
    other = 1.0 - float(np.mean(same))
    out = {"B": b, "level": level, "seed": seed, "scheme": "half-sampling, symmetric interval",
           "units": "points" if units.shape[1] == 1 else "mirror pairs", "m": int(len(units) // 2 * units.shape[1]),
           "t_c": t.tolist(), "kinds": kinds, "same_event": same, "other_share": other,
           "median_shift": float(np.median(shift)) if shift.size else None}
    if other > 1 - level:
        out["note"] = (f"{other:.0%} of the half-samples have another first event than t_c's (or none; kinds "
                       f"{dict(Counter(kinds))}): the event is fragile at this N and the interval is conditional on it")
    return ci, out


def gaussian_ci(data: Dataset, spectrum: CovarianceSpectrum, schedule: Schedule, dynamics: str,
                level: float) -> tuple[float, float] | None:
    """t_c of the Gaussian route at Lambda -+ z sqrt(Var(Lambda-hat)), Var = (E[z^4] - Lambda^2) / N
    (the asymptotic variance of a simple top eigenvalue; one pass over the data)."""
    from scipy.stats import norm

    v = spectrum.vecs[:, 0]
    m4 = sum(float((((np.asarray(data.x[sl], dtype=np.float64) - spectrum.mean) @ v) ** 4).sum())
             for sl in chunk_slices(data.n, rows_per_chunk(data.dim))) / data.n
    sd = float(np.sqrt(max(m4 - spectrum.Lambda ** 2, 0.0) / data.n))
    z = float(norm.ppf(0.5 + level / 2))
    ts = [gaussian_critical_times(max(spectrum.Lambda + sign * z * sd, 0.0), schedule, dynamics=dynamics).t_c
          for sign in (1.0, -1.0)]
    return None if None in ts else (min(ts), max(ts))


def _unit_signed(v: Array) -> Array:
    """v / |v| with its entry of largest magnitude positive (a reproducible sign)."""
    v = np.asarray(v, dtype=np.float64)
    v = v / np.linalg.norm(v)
    return v if v[np.abs(v).argmax()] >= 0 else -v


def is_constant(trace: float, mean: Array) -> bool:
    """Whether the total variance tr Sigma is zero up to the float64 rounding of the mean
    (a constant value c gives a computed variance of order (eps c)^2)."""
    return not trace > (CONSTANT_EPS * np.finfo(np.float64).eps) ** 2 * (1.0 + float(mean @ mean))


def constant_reason(n: int) -> str:
    return (f"constant data: all {n} samples are the same point (covariance 0, Lambda = 0), so p_t has a "
            "single mode at every t and the central fixed point never loses stability: there is no "
            "symmetry to break and no critical time")


def _check_options(method: str, dynamics: str, k: int, bootstrap: int, level: float) -> int:
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    score_weight(dynamics)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k: must be an integer >= 1, got {k!r}")
    if isinstance(bootstrap, bool) or int(bootstrap) != bootstrap or bootstrap < 0:
        raise ValueError(f"bootstrap: must be an integer >= 0 (0: no interval), got {bootstrap!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: the confidence level must lie in (0, 1), got {level!r}")
    return int(k)


def dataset_critical_times(data: Dataset, schedule: Schedule | None = None, method: str = "gaussian",
                           dynamics: str = "sde", max_points: int | None = None, seed: int = 0,
                           k: int = 5, bootstrap: int = 0, level: float = 0.9,
                           drift: Callable | None = None) -> DatasetCriticalTimes:
    """Critical times of ``data`` (default schedule: VP linear) by the Gaussian route, the exact
    empirical-score route or both (see the module docstring). The exact route uses all N samples;
    ``max_points``: a random subset of that many (drawn with ``seed``) instead; ``k``: how many
    eigenvalues of J / beta are tracked (successive bifurcations); ``bootstrap``: B resamples for a
    ``level`` confidence interval of t_c (exact route; the Gaussian route's interval is asymptotic);
    ``drift``: the exact route's drift factory (:func:`symbreak.theory.critical_times`; e.g. a GPU's)."""
    k = _check_options(method, dynamics, k, bootstrap, level)
    schedule = VPLinear() if schedule is None else schedule
    used = data if max_points is None else data.subset(max_points, seed)
    spectrum = _spectrum(data, k)
    gaussian = exact = None
    if method in ("gaussian", "both"):
        gaussian = gaussian_critical_times(full_spectrum(spectrum), schedule, n=data.n, dynamics=dynamics, k=k)
    if method in ("exact", "both"):
        exact = _exact_route(used, schedule, dynamics, k, spectrum if used is data else _spectrum(used, k), drift)
    constant = is_constant(spectrum.trace, spectrum.mean)
    primary = exact if exact is not None else gaussian
    absent = {q: r for q, r in primary.absent.items() if q in ("critical", "hessian")}
    absent.update({q: r for q, r in (gaussian or exact).absent.items() if q in ("speciation", "collapse")})
    if constant:
        absent["critical"] = constant_reason(data.n)
    soft = None
    if not constant and primary.critical is not None:
        soft = exact.soft_direction if exact is not None else spectrum.vecs[:, 0]
    overlap = None
    if soft is not None and exact is not None and gaussian is not None:
        overlap = float(abs(_unit_signed(soft) @ spectrum.vecs[:, 0]))
    hierarchy = () if exact is None or constant else tuple(
        event_hierarchy(e, used, spectrum, schedule, dynamics) for e in exact.events
        if e.soft_direction is not None and exact.critical is not None and e.time.logsnr > exact.critical.logsnr)
    ci = boot = g_ci = None
    if bootstrap and exact is not None and not constant:
        ci, boot = _bootstrap(used, schedule, dynamics, k, spectrum, int(bootstrap), level, seed, drift,
                              estimate=exact)
    if bootstrap and gaussian is not None and not constant:
        g_ci = gaussian_ci(data, spectrum, schedule, dynamics, level)
        boot = boot or {"B": 0, "level": level, "seed": seed}
    notes = {**(gaussian.notes if gaussian is not None else {}), **(exact.notes if exact is not None else {})}
    if boot is not None and "note" in boot:
        notes["bootstrap"] = boot["note"]
    return DatasetCriticalTimes(
        method=method, dynamics=dynamics, schedule=schedule, data=data.config, n_points=data.n, dim=data.dim,
        shape=tuple(data.shape), scaling=data.scaling, gaussian=gaussian, exact=exact,
        spectrum=spectrum, n_exact=None if exact is None else used.n,
        subset=None if used is data else used.config["subset"], lambda_max=float(spectrum.Lambda),
        constant=constant, soft_direction=None if soft is None else data.unflatten(_unit_signed(soft)),
        soft_overlap=overlap, absent=absent, k=k, hierarchy=hierarchy, t_c_ci=ci, t_c_gaussian_ci=g_ci,
        bootstrap=boot, notes=notes)
