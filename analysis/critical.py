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
  (:attr:`.spectrum.Spectrum.residual_variance`): exact for the trace, an approximation for the sum of logs.
* **Exact route** (``method="exact"``): :class:`symbreak.theory.EmpiricalData` of the samples (a seeded
  random subset of ``max_points`` of them when N is larger, stated in the result) and
  :func:`symbreak.theory.critical_times`: the branch through the centre alpha(T) mu is followed from T
  towards 0 and every crossing, closest approach and fold of the eigenvalues of J / beta is reported.
  Real data are not exactly symmetric, so the pitchfork is usually imperfect: the top eigenvalue comes
  close to zero and turns back, which is reported as a 'closest-approach' with its (negative) margin.
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

from symbreak.theory import CriticalTime, CriticalTimes, DiscreteDDPM, EmpiricalData, Event, Schedule, VPLinear
from symbreak.theory import critical_times, gaussian_critical_times, gaussian_margin
from symbreak.theory.critical import AXES, QUANTITIES
from symbreak.theory.dynamics import score_weight

from .datasets import Dataset
from .spectrum import Spectrum, covariance_spectrum

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
    spectrum: Spectrum | None = field(repr=False)
    n_exact: int | None
    subset: dict | None
    lambda_max: float
    constant: bool
    soft_direction: Array | None = field(repr=False)
    soft_overlap: float | None
    absent: dict[str, str]
    k: int

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
                    "soft_overlap": self.soft_overlap,
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
        for route in (self.exact, self.gaussian):
            for e in () if route is None else route.events:
                note = f"eigenvalue {e.index + 1}" + (f" x{e.multiplicity}" if e.multiplicity > 1 else "")
                rows.append({"quantity": f"{route.method} event: {e.kind}", **time_axes(e.time, self.schedule),
                             "margin": e.margin, "note": note})
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
def full_spectrum(spectrum: Spectrum) -> Array:
    """All d covariance eigenvalues: the computed top k, then the residual variance tr Sigma - sum of
    the k spread evenly over the other d - k directions (exact when k = d)."""
    rest = np.full(spectrum.dim - spectrum.k, spectrum.residual_variance)
    return np.concatenate([spectrum.lam, rest])


def _gaussian_route(data: Dataset, schedule: Schedule, dynamics: str, k: int) -> tuple[CriticalTimes, Spectrum]:
    """Critical times from the streaming spectrum of all N samples (every eigenvalue when d <= 1024,
    else the top max(k, 16) and the residual variance)."""
    spectrum = covariance_spectrum(data, k=None if data.dim <= 1024 else max(k, 16))
    ct = gaussian_critical_times(full_spectrum(spectrum), schedule, n=data.n, dynamics=dynamics, k=k)
    return ct, spectrum


def _exact_route(data: Dataset, schedule: Schedule, dynamics: str, k: int, max_points: int | None,
                 seed: int) -> tuple[CriticalTimes, int, dict | None]:
    """(critical times, points used, the subset note or None when all N were used)."""
    used = data if max_points is None else data.subset(max_points, seed)
    ct = critical_times(EmpiricalData(used.x), schedule, dynamics, n=used.n, k=k)
    return ct, used.n, None if used is data else used.config["subset"]


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


def dataset_critical_times(data: Dataset, schedule: Schedule | None = None, method: str = "gaussian",
                           dynamics: str = "sde", max_points: int | None = None, seed: int = 0,
                           k: int = 5) -> DatasetCriticalTimes:
    """Critical times of ``data`` (default schedule: VP linear) by the Gaussian route, the exact
    empirical-score route or both (see the module docstring). ``max_points``: the exact route uses a
    random subset of that many samples (drawn with ``seed``) when N is larger; ``k``: how many
    eigenvalues of J / beta are tracked (successive bifurcations)."""
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    schedule = VPLinear() if schedule is None else schedule
    score_weight(dynamics)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k: must be an integer >= 1, got {k!r}")
    k = int(k)
    gaussian = spectrum = exact = None
    n_exact = subset = None
    if method in ("gaussian", "both"):
        gaussian, spectrum = _gaussian_route(data, schedule, dynamics, k)
    if method in ("exact", "both"):
        exact, n_exact, subset = _exact_route(data, schedule, dynamics, k, max_points, seed)
    lambda_max = spectrum.Lambda if spectrum is not None else exact.lambda_max
    mean = spectrum.mean if spectrum is not None else exact.branch.model.mean
    trace = spectrum.trace if spectrum is not None else float(np.trace(exact.branch.model.cov))
    constant = is_constant(trace, mean)
    primary = exact if exact is not None else gaussian
    absent = {q: r for q, r in primary.absent.items() if q in ("critical", "hessian")}
    absent.update({q: r for q, r in (gaussian or exact).absent.items() if q in ("speciation", "collapse")})
    if constant:
        absent["critical"] = constant_reason(data.n)
    soft = None
    if not constant and primary.critical is not None:
        soft = exact.soft_direction if exact is not None else spectrum.vecs[:, 0]
    overlap = None
    if soft is not None and exact is not None and spectrum is not None:
        overlap = float(abs(_unit_signed(soft) @ spectrum.vecs[:, 0]))
    return DatasetCriticalTimes(
        method=method, dynamics=dynamics, schedule=schedule, data=data.config, n_points=data.n, dim=data.dim,
        shape=tuple(data.shape), scaling=data.scaling, gaussian=gaussian, exact=exact, spectrum=spectrum,
        n_exact=n_exact, subset=subset, lambda_max=float(lambda_max), constant=constant,
        soft_direction=None if soft is None else data.unflatten(_unit_signed(soft)), soft_overlap=overlap,
        absent=absent, k=k)
