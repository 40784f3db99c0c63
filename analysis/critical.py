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
* ``bootstrap=B``: a percentile confidence interval (``level``) for t_c from B resamples of the data
  (multinomial weights on the same points: no copy), each run through the whole exact route; for the
  Gaussian route from the asymptotic sampling variance of Lambda, Var = (E[z^4] - Lambda^2) / N with
  z the data projected on the top covariance eigenvector, mapped through the monotone t_c(Lambda).
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

from dataclasses import dataclass, field

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
                 weights: Array | None = None) -> CriticalTimes:
    """The exact route on every sample of ``data`` (optionally re-weighted: a bootstrap resample)."""
    model = EmpiricalData(data.x, weights=weights)
    return critical_times(model, schedule, dynamics, n=data.n, k=k, spectrum=full_spectrum(spectrum))


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


def _bootstrap(data: Dataset, schedule: Schedule, dynamics: str, k: int, spectrum: CovarianceSpectrum, b: int,
               level: float, seed: int) -> tuple[tuple[float, float], dict]:
    """Percentile interval of t_c over ``b`` multinomial resamples of the N points (exact route)."""
    rng = np.random.default_rng(seed)
    values, kinds = [], []
    for _ in range(b):
        weights = rng.multinomial(data.n, np.full(data.n, 1.0 / data.n)) / data.n
        ct = _exact_route(data, schedule, dynamics, k, spectrum, weights)
        values.append(np.nan if ct.t_c is None else ct.t_c)
        kinds.append(ct.kind)
    t = np.array(values)
    ok = t[np.isfinite(t)]
    q = (1 - level) / 2
    ci = (float(np.quantile(ok, q)), float(np.quantile(ok, 1 - q))) if ok.size else (np.nan, np.nan)
    return ci, {"B": b, "level": level, "seed": seed, "t_c": t.tolist(), "kinds": kinds}


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
                           k: int = 5, bootstrap: int = 0, level: float = 0.9) -> DatasetCriticalTimes:
    """Critical times of ``data`` (default schedule: VP linear) by the Gaussian route, the exact
    empirical-score route or both (see the module docstring). The exact route uses all N samples;
    ``max_points``: a random subset of that many (drawn with ``seed``) instead; ``k``: how many
    eigenvalues of J / beta are tracked (successive bifurcations); ``bootstrap``: B resamples for a
    ``level`` confidence interval of t_c (exact route; the Gaussian route's interval is asymptotic)."""
    k = _check_options(method, dynamics, k, bootstrap, level)
    schedule = VPLinear() if schedule is None else schedule
    used = data if max_points is None else data.subset(max_points, seed)
    spectrum = _spectrum(data, k)
    gaussian = exact = None
    if method in ("gaussian", "both"):
        gaussian = gaussian_critical_times(full_spectrum(spectrum), schedule, n=data.n, dynamics=dynamics, k=k)
    if method in ("exact", "both"):
        exact = _exact_route(used, schedule, dynamics, k, spectrum if used is data else _spectrum(used, k))
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
        ci, boot = _bootstrap(used, schedule, dynamics, k, spectrum, int(bootstrap), level, seed)
    if bootstrap and gaussian is not None and not constant:
        g_ci = gaussian_ci(data, spectrum, schedule, dynamics, level)
        boot = boot or {"B": 0, "level": level, "seed": seed}
    notes = {**(gaussian.notes if gaussian is not None else {}), **(exact.notes if exact is not None else {})}
    return DatasetCriticalTimes(
        method=method, dynamics=dynamics, schedule=schedule, data=data.config, n_points=data.n, dim=data.dim,
        shape=tuple(data.shape), scaling=data.scaling, gaussian=gaussian, exact=exact,
        spectrum=spectrum, n_exact=None if exact is None else used.n,
        subset=None if used is data else used.config["subset"], lambda_max=float(spectrum.Lambda),
        constant=constant, soft_direction=None if soft is None else data.unflatten(_unit_signed(soft)),
        soft_overlap=overlap, absent=absent, k=k, hierarchy=hierarchy, t_c_ci=ci, t_c_gaussian_ci=g_ci,
        bootstrap=boot, notes=notes)
