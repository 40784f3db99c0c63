"""The critical window measured three ways, for the exact score, its Gaussian approximation and a network.

1. **Stability** (Raya & Ambrogioni 2023): the margin (top eigenvalue of J / beta) along the central
   branch and its first event -- theory's :func:`symbreak.theory.critical_times` for the exact score,
   :func:`symbreak.theory.gaussian_critical_times` for the Gaussian N(mu, Sigma) of the data, and
   :func:`symbreak.experiments.measure.branch.follow_central_branch` for a network. Its window: from
   where the margin has risen 10 % of the way from its value at T to the event, to 90 %; its midpoint is
   the event itself (t_c of that denoiser) and its depth the margin there.
2. **Cloning** (Biroli et al. 2024): from the state x_t of a reverse-SDE path, two independent
   continuations to t = 0; P(same class). **Forward-backward** (Sclocchi, Favero & Wyart 2025): a
   training point noised to t and denoised back; P(its class survives). With the exact score both
   equal E_{x ~ p_t} sum_a P(a | x_t = x)^2 for any data (x_t of a noised training point is a sample of
   p_t, and the end and the point are independent draws of p(y | x_t)).
3. **Commitment**: the share of paths whose predicted class (of D(x_t, t)) no longer changes below t
   (:func:`symbreak.experiments.measure.trajectories.commitment_times`).

Every sampled curve is a share P(t) that falls from 1 at t -> 0 to a chance level at large t (cloning:
sum_c p_c^2 of the end classes; forward-backward: sum_c pi_c p_c with pi the training points' classes;
commitment: 0). It is normalised, q = (P - floor) / (1 - floor), made non-increasing in t (isotonic
regression, Barlow et al. 1972) and read where it crosses 0.9, 0.5 and 0.1: the midpoint t_mid (q = 0.5)
and the width t(q = 0.1) - t(q = 0.9). Standard errors: a bootstrap over samples (paths or training
points, resampled jointly at every t). Every time is also given as logsnr = log(alpha^2 / sigma^2) and
OU time tau = -log alpha, beside theory's t_c (exact and Gaussian) and speciation t_S (tau_S = 1/2 log
Lambda, Biroli et al.). Hierarchical data (``groups``: class -> super-class) get every curve twice, on
classes and on super-classes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression

from symbreak.analysis.datasets import Dataset
from symbreak.experiments.measure.branch import BranchMeasurement, follow_central_branch
from symbreak.experiments.measure.trajectories import (
    clone_along,
    commitment_times,
    continuation_steps,
    derived_seeds,
    forward_backward,
    reference_run,
)
from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import TorchExactDenoiser
from symbreak.experiments.runtime.threads import cpu_threads
from symbreak.experiments.sampling.seeds import parse_seeds
from symbreak.theory import (
    CriticalTimes,
    DataModel,
    EmpiricalData,
    Gaussian,
    GaussianMixture,
    Schedule,
    critical_times,
    gaussian_critical_times,
)
from symbreak.theory.critical import gaussian_margin

Array = NDArray[np.float64]
Labels = NDArray[np.int64]
Classify = Callable[[Array], ArrayLike]
MEASURES = ("stability", "cloning", "forward-backward", "commitment")
SAMPLED = MEASURES[1:]
DENOISERS = ("exact", "gaussian", "network")
Q_LATE, Q_MID, Q_EARLY = 0.9, 0.5, 0.1   # normalised levels: window end (small t), midpoint, window start
DEFAULT_TIMES = tuple(np.round(np.linspace(0.05, 0.95, 13), 4))


# ---------------------------------------------------------------------------------------------
# windows of curves
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Where a curve commits: ``t_mid`` (midpoint), ``t_start`` (q = 0.1, larger t) and ``t_end`` (q = 0.9),
    each None when the curve does not reach that level on the grid; bootstrap standard errors."""

    t_mid: float | None
    t_start: float | None
    t_end: float | None
    t_mid_se: float | None = None
    width_se: float | None = None

    @property
    def width(self) -> float | None:
        return None if self.t_start is None or self.t_end is None else self.t_start - self.t_end

    def to_dict(self, schedule: Schedule) -> dict:
        """Times, width and errors, with t_mid also on the logsnr and tau axes."""
        inside = self.t_mid is not None and 0 < self.t_mid <= schedule.T
        return {"t_mid": self.t_mid, "t_mid_se": self.t_mid_se, "width": self.width, "width_se": self.width_se,
                "t_start": self.t_start, "t_end": self.t_end,
                "logsnr_mid": float(schedule.logsnr(self.t_mid)) if inside else None,
                "tau_mid": float(schedule.tau(self.t_mid)) if inside else None}


def crossing(t: Array, q: Array, level: float) -> float | None:
    """The first t (ascending grid) where a non-increasing q drops to ``level``, linearly interpolated;
    None when q stays above it, t[0] when it starts below."""
    below = np.flatnonzero(q <= level)
    if below.size == 0:
        return None
    j = int(below[0])
    if j == 0:
        return float(t[0])
    w = (q[j - 1] - level) / (q[j - 1] - q[j])
    return float(t[j - 1] + w * (t[j] - t[j - 1]))


def monotone(t: Array, q: Array) -> Array:
    """q made non-increasing in t (ascending) by isotonic regression."""
    return IsotonicRegression(increasing=False).fit_transform(t, q)


def read_window(t: Array, q: Array) -> Window:
    """The crossings of the monotone fit of q at 0.5, 0.1 and 0.9 (no errors)."""
    fit = monotone(t, q)
    return Window(crossing(t, fit, Q_MID), crossing(t, fit, Q_EARLY), crossing(t, fit, Q_LATE))


def _se(values: list[float | None]) -> float | None:
    """The std of the resampled values; None when fewer than half of them exist."""
    kept = [v for v in values if v is not None]
    return float(np.std(kept, ddof=1)) if len(kept) >= max(2, len(values) // 2) else None


@dataclass(frozen=True)
class Curve:
    """A sampled share P(t) of one denoiser, measure and level (``class`` or ``super-class``): times ``t``
    (ascending), values, binomial standard errors, the chance ``floor`` and its :class:`Window`."""

    denoiser: str
    measure: str
    level: str
    t: Array
    value: Array
    stderr: Array
    floor: float
    n: int
    window: Window

    @property
    def normalised(self) -> Array:
        return (self.value - self.floor) / (1.0 - self.floor)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"denoiser": self.denoiser, "measure": self.measure, "level": self.level, "t": self.t,
                             "value": self.value, "stderr": self.stderr, "normalised": self.normalised,
                             "floor": self.floor, "n": self.n})


def share_curve(denoiser: str, measure: str, level: str, t: ArrayLike, hits: ArrayLike, floor: float, *,
                bootstrap: int = 200, seed: int = 0) -> Curve:
    """The curve of ``hits`` (n_t, B) booleans at times ``t``: P = mean over samples; the window of the
    normalised curve, with standard errors from ``bootstrap`` resamples of the B samples."""
    t, hits = np.asarray(t, dtype=np.float64), np.asarray(hits, dtype=bool)
    order = np.argsort(t)
    t, hits = t[order], hits[order]
    if not floor < 1:
        raise ValueError(f"floor: the chance level must be below 1, got {floor}")
    p = hits.mean(1)
    window = read_window(t, (p - floor) / (1 - floor))
    rng = np.random.default_rng(seed)
    draws = [read_window(t, (hits[:, rng.integers(0, hits.shape[1], hits.shape[1])].mean(1) - floor) / (1 - floor))
             for _ in range(int(bootstrap))]
    window = Window(window.t_mid, window.t_start, window.t_end, _se([w.t_mid for w in draws]),
                    _se([w.width for w in draws]))
    se = np.sqrt(np.maximum(p * (1 - p), 1.0 / hits.shape[1]) / hits.shape[1])
    return Curve(denoiser, measure, level, t, p, se, float(floor), int(hits.shape[1]), window)


def chance_same(a: Labels, b: Labels) -> float:
    """sum_c P(a = c) P(b = c): the agreement of two independent labellings with these class shares."""
    classes = np.union1d(a, b)
    return float(sum(np.mean(a == c) * np.mean(b == c) for c in classes))


# ---------------------------------------------------------------------------------------------
# stability
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stability:
    """The margin along the central branch (t ascending), its first event (time, kind, depth = margin
    there) and its window (module docstring)."""

    denoiser: str
    t: Array
    margin: Array
    t_event: float | None
    kind: str
    depth: float | None
    window: Window

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"denoiser": self.denoiser, "measure": "stability", "t": self.t, "margin": self.margin})


def stability(denoiser: str, t: ArrayLike, margin: ArrayLike, t_event: float | None, kind: str,
              depth: float | None) -> Stability:
    """:class:`Stability` with its window: the rise of the margin from its value at the largest t towards
    the event's, q = (m - m_T) / (m_event - m_T), read on t >= t_event (midpoint: the event)."""
    t, margin = np.asarray(t, dtype=np.float64), np.asarray(margin, dtype=np.float64)
    order = np.argsort(t)
    t, margin = t[order], margin[order]
    if t_event is None or depth is None or not depth > margin[-1]:
        return Stability(denoiser, t, margin, t_event, kind, depth, Window(t_event, None, None))
    keep = t >= t_event
    q = (margin[keep] - margin[-1]) / (depth - margin[-1])
    fit = monotone(t[keep], q)
    return Stability(denoiser, t, margin, t_event, kind, depth,
                     Window(t_event, crossing(t[keep], fit, Q_EARLY), crossing(t[keep], fit, Q_LATE)))


def exact_stability(times: CriticalTimes, name: str = "exact") -> Stability:
    """The exact branch of theory's :func:`critical_times` (``times.branch``)."""
    b = times.branch
    return stability(name, b.t, b.margin, times.t_c, times.kind, times.margin_c)


def gaussian_stability(times: CriticalTimes, n_grid: int = 400) -> Stability:
    """The Gaussian approximation's centre margin (top covariance eigenvalue) and its t_c."""
    s = times.schedule
    grid = np.linspace(*s.logsnr_range(), n_grid)
    margin = gaussian_margin([times.lambda_max], grid, s, times.dynamics)[:, 0]
    return stability("gaussian", s.t_of_logsnr(grid), margin, times.t_c, times.kind, times.margin_c)


def network_stability(branch: BranchMeasurement, name: str = "network") -> Stability:
    """The measured central branch of a network (:func:`follow_central_branch`)."""
    return stability(name, branch.t, branch.margin, branch.t_c, branch.kind, branch.margin_c)


# ---------------------------------------------------------------------------------------------
# sampled measurements of one denoiser
# ---------------------------------------------------------------------------------------------
def level_maps(groups: ArrayLike | None) -> dict[str, Callable[[Labels], Labels]]:
    """``class`` (labels as they are) and, with ``groups`` (class -> super-class), ``super-class``."""
    maps: dict[str, Callable[[Labels], Labels]] = {"class": lambda lab: lab}
    if groups is not None:
        g = np.asarray(groups, dtype=np.int64)

        def group_of(lab: Labels) -> Labels:
            if lab.size and lab.max() >= g.size:
                raise ValueError(f"--groups or groups: gives super-classes of {g.size} classes, but class "
                                 f"{int(lab.max())} occurs; give one entry per class")
            return g[lab]
        maps["super-class"] = group_of
    return maps


@dataclass(frozen=True)
class Sampling:
    """How the sampled measurements run: per-sample ``seeds`` (paths and training points), clone and
    retention ``times``, ``n_steps`` of a whole reverse run (continuations get their share, at least 20),
    the stochastic ``sampler``, ``bootstrap`` resamples and the bootstrap ``seed``."""

    seeds: Sequence[int] | str = "0-399"
    times: Sequence[float] = DEFAULT_TIMES
    n_steps: int = 200
    sampler: str = "sde"
    bootstrap: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.times) < 3:
            raise ValueError(f"times: at least 3 clone times are needed to read a window, got {len(self.times)}")
        if int(self.n_steps) != self.n_steps or self.n_steps < 2:
            raise ValueError(f"n_steps: must be an integer >= 2, got {self.n_steps}")
        if int(self.bootstrap) != self.bootstrap or self.bootstrap < 0:
            raise ValueError(f"bootstrap: must be an integer >= 0, got {self.bootstrap}")
        if len(parse_seeds(self.seeds, "seeds")) < 2:
            raise ValueError("seeds: at least 2 samples are needed")

    def config(self) -> dict:
        seeds = parse_seeds(self.seeds, "seeds")
        listed = f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else seeds
        return {"n_samples": len(seeds), "seeds": listed, "times": list(map(float, self.times)),
                "n_steps": self.n_steps, "sampler": self.sampler, "bootstrap": self.bootstrap, "seed": self.seed}


def training_points(y: Array, seeds: list[int]) -> Array:
    """One training point per seed (index from a seed derived from (seed, 6)), the same at every time."""
    return y[np.array(derived_seeds(seeds, 6), dtype=np.uint64) % np.uint64(len(y))]


def sampled_curves(name: str, denoiser: Denoiser, y: ArrayLike, classify: Classify, sampling: Sampling,
                   groups: ArrayLike | None = None, threads: int | None = 1) -> tuple[Curve, ...]:
    """Cloning, forward-backward and commitment curves of one denoiser (module docstring), on each level;
    ``threads``: CPU threads for torch and BLAS meanwhile (None: as set; the default 1 suits small MLPs and
    exact scores, :mod:`symbreak.experiments.runtime.threads`)."""
    with nullcontext() if threads is None else cpu_threads(threads):
        return _sampled_curves(name, denoiser, y, classify, sampling, groups)


def _sampled_curves(name: str, denoiser: Denoiser, y: ArrayLike, classify: Classify, sampling: Sampling,
                    groups: ArrayLike | None) -> tuple[Curve, ...]:
    seeds, s = parse_seeds(sampling.seeds, "seeds"), sampling
    ts = np.sort(np.asarray(s.times, dtype=np.float64))[::-1]
    T = denoiser.schedule.T
    ref = reference_run(denoiser, ts, seeds=seeds, n_steps=s.n_steps, sampler=s.sampler, classify=classify)
    clones = clone_along(denoiser, ref, ts, classify, seeds=seeds, n_steps=s.n_steps, sampler=s.sampler)
    points = training_points(np.asarray(y, dtype=np.float64), seeds)
    back = [forward_backward(denoiser, points, float(t), classify, seeds=derived_seeds(seeds, 4, j),
                             n_steps=continuation_steps(float(t), s.n_steps, T), sampler=s.sampler)
            for j, t in enumerate(ts)]
    curves = []
    for level, f in level_maps(groups).items():
        a, b = np.stack([f(o.class_a) for o in clones]), np.stack([f(o.class_b) for o in clones])
        ya, yb = np.stack([f(o.class_a) for o in back]), np.stack([f(o.class_b) for o in back])
        commit = commitment_times(f(ref.labels), ref.grid).t_commit
        opts = {"bootstrap": s.bootstrap, "seed": s.seed}
        curves += [share_curve(name, "cloning", level, ts, a == b, chance_same(a.ravel(), b.ravel()), **opts),
                   share_curve(name, "forward-backward", level, ts, ya == yb, chance_same(ya.ravel(), yb.ravel()),
                               **opts),
                   share_curve(name, "commitment", level, ref.grid, ref.grid[:, None] <= commit[None, :], 0.0,
                               **opts)]
    return tuple(curves)


# ---------------------------------------------------------------------------------------------
# the three denoisers, the theory and the summary
# ---------------------------------------------------------------------------------------------
def exact_model(data: Dataset) -> DataModel:
    """The data's exact model (synthetic sets), else the finite training points themselves."""
    return data.model if data.model is not None else data.empirical()


def gaussian_model(model: DataModel) -> Gaussian:
    """N(mu, Sigma) of the data (Sigma's round-off negative eigenvalues clipped)."""
    lam, u = np.linalg.eigh(model.cov)
    return Gaussian(model.mean, (u * np.clip(lam, 0.0, None)) @ u.T)


def class_labeller(data: Dataset, *, seed: int = 0, cache_dir=None, clusters: int = 2,
                   classifier_steps: int = 1500) -> tuple[Classify, str]:
    """How clean points get a class: the nearest component mean of a Gaussian mixture (or point of a few
    deltas); the in-domain classifier of labelled data
    (:func:`symbreak.experiments.models.classifier.load_or_train_classifier`); else k-means with
    ``clusters`` clusters on the data. Returns (classify, description); ``classifier_steps``: its training steps."""
    model = data.model
    if isinstance(model, GaussianMixture) or (isinstance(model, EmpiricalData) and model.n_points <= 16):
        centres = (np.stack([c.mean for c in model.components]) if isinstance(model, GaussianMixture)
                   else np.asarray(model.y, dtype=np.float64))

        def nearest(x: Array) -> Labels:
            x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
            return np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1).astype(np.int64)
        return nearest, f"nearest of the {len(centres)} mixture components"
    if data.labels is not None:
        from symbreak.experiments.models.classifier import load_or_train_classifier

        clf = load_or_train_classifier(data.name, data.x, data.labels, data.shape, seed=seed, cache_dir=cache_dir,
                                       steps=classifier_steps)
        return clf.predict, f"in-domain classifier (test accuracy {clf.test_accuracy:.3f})"
    if int(clusters) != clusters or clusters < 2:
        raise ValueError(f"--clusters: must be an integer >= 2, got {clusters}")
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=int(clusters), n_init=4, random_state=seed).fit(np.asarray(data.x, dtype=np.float64))
    return (lambda x: km.predict(np.asarray(x, dtype=np.float64).reshape(len(x), -1))), f"k-means, {clusters} clusters"


@dataclass(frozen=True)
class WindowTheory:
    """Theory's times: t_c of the exact score (kind, margin), of the Gaussian approximation, speciation
    t_S (None when Lambda <= 1) and, for a mixture with super-classes, t_c within each super-class."""

    exact: CriticalTimes
    gaussian: CriticalTimes
    t_c_sub: tuple[float | None, ...] = ()

    def rows(self) -> list[dict]:
        s = self.exact.schedule
        named = [("t_c exact", self.exact.t_c), ("t_c gaussian", self.gaussian.t_c), ("t_S", self.gaussian.t_s)]
        named += [(f"t_c within super-class {g}", t) for g, t in enumerate(self.t_c_sub)]
        return [{"quantity": q, "t": t, "logsnr": None if t is None else float(s.logsnr(t)),
                 "tau": None if t is None else float(s.tau(t))} for q, t in named]

    def to_dict(self) -> dict:
        return {"t_c_exact": self.exact.t_c, "kind_exact": self.exact.kind, "margin_c_exact": self.exact.margin_c,
                "t_c_gaussian": self.gaussian.t_c, "t_s": self.gaussian.t_s, "Lambda": self.gaussian.lambda_max,
                "t_c_sub": list(self.t_c_sub), "rows": self.rows()}


def sub_critical_times(model: DataModel, groups: ArrayLike | None, schedule: Schedule, t_min: float) -> tuple:
    """t_c of the mixture of each super-class's components, centred on its own mean (the second split in the
    picture where a committed path sees its super-class alone), for a Gaussian mixture."""
    if groups is None or not isinstance(model, GaussianMixture):
        return ()
    g = np.asarray(groups)
    out = []
    for k in np.unique(g):
        members = np.flatnonzero(g == k)
        w = np.asarray(model.weights)[members]
        if len(members) < 2:
            out.append(None)
            continue
        means = np.stack([model.components[i].mean for i in members])
        centre = (w / w.sum()) @ means
        sub = GaussianMixture(w / w.sum(), means - centre, [model.components[i].cov for i in members])
        out.append(critical_times(sub, schedule, "sde", k=1, t_end=t_min).t_c)
    return tuple(out)


@dataclass(frozen=True)
class DenoiserWindows:
    """One denoiser's stability and sampled curves."""

    name: str
    stability: Stability
    curves: tuple[Curve, ...]

    def curve(self, measure: str, level: str = "class") -> Curve:
        return next(c for c in self.curves if c.measure == measure and c.level == level)

    def window(self, measure: str, level: str = "class") -> Window:
        return self.stability.window if measure == "stability" else self.curve(measure, level).window


@dataclass(frozen=True)
class WindowComparison:
    """The critical window of one data set measured three ways for each denoiser, beside the theory."""

    data: str
    schedule: Schedule
    theory: WindowTheory
    measured: tuple[DenoiserWindows, ...]
    labels: str
    config: dict = field(default_factory=dict)

    def get(self, name: str) -> DenoiserWindows:
        return next(m for m in self.measured if m.name == name)

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys(c.level for m in self.measured for c in m.curves))

    def table(self) -> pd.DataFrame:
        """One row per denoiser, measure and level: the window on every axis, the stability event's kind and
        depth, and the distance of t_mid to the exact score's (absolute and relative)."""
        exact = next((m for m in self.measured if m.name == "exact"), None)
        rows = []
        for m in self.measured:
            for measure in MEASURES:
                for level in (["class"] if measure == "stability" else self.levels):
                    w = m.window(measure, level)
                    row = {"denoiser": m.name, "measure": measure, "level": level, **w.to_dict(self.schedule)}
                    if measure == "stability":
                        row.update({"kind": m.stability.kind, "depth": m.stability.depth})
                    ref = None if exact is None or m is exact else exact.window(measure, level).t_mid
                    gap = None if ref is None or w.t_mid is None else w.t_mid - ref
                    row.update({"delta_t_vs_exact": gap, "rel_delta_vs_exact": None if gap is None else gap / ref})
                    rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        table = self.table()
        records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        return {"data": self.data, "schedule": self.schedule.config(), "labels": self.labels,
                "theory": self.theory.to_dict(), "windows": records, "config": self.config}


def network_branch(network: Denoiser, model: DataModel, *, n_points: int, t_min: float, seed: int) -> BranchMeasurement:
    """The network's central branch from T down to ``t_min``, seeded at alpha(T) mu."""
    s = network.schedule
    return follow_central_branch(network, n_points=n_points, t_range=(t_min, s.T), x_init=s.alpha(s.T) * model.mean,
                                 seed=seed, second_moment=float(np.trace(model.cov)))


def critical_window(data: Dataset, schedule: Schedule, *, network: Denoiser | None = None,
                    sampling: Sampling | None = None, groups: ArrayLike | None = None,
                    classify: Classify | None = None, denoisers: Sequence[str] = DENOISERS, branch_points: int = 41,
                    t_min: float = 0.02, cache_dir=None, clusters: int = 2, classifier_steps: int = 1500,
                    threads: int | None = 1) -> WindowComparison:
    """Measure the window three ways for the exact score of ``data`` (its exact model, or the finite
    training points), its Gaussian approximation and (when given) ``network``, which must share
    ``schedule``. ``classify`` labels clean points (default :func:`class_labeller`); ``groups`` maps
    classes to super-classes (hierarchical data); ``branch_points`` the network branch's logsnr points;
    ``clusters`` and ``classifier_steps`` go to :func:`class_labeller`, ``threads`` to :func:`sampled_curves`."""
    sampling = Sampling() if sampling is None else sampling
    names = [n for n in denoisers if n != "network" or network is not None]
    unknown = sorted(set(names) - set(DENOISERS))
    if unknown or not names:
        raise ValueError(f"denoisers: expected some of {', '.join(DENOISERS)}, got {list(denoisers)}")
    if network is not None and network.schedule.config() != schedule.config():
        raise ValueError("network: it runs on another schedule than the one given; pass network.schedule")
    schedule.check_t(np.asarray(sampling.times, dtype=np.float64), "times")
    model = exact_model(data)
    gauss = gaussian_model(model)
    theory = WindowTheory(critical_times(model, schedule, "sde", k=1, t_end=t_min),
                          gaussian_critical_times(np.clip(np.linalg.eigvalsh(model.cov), 0.0, None), schedule),
                          sub_critical_times(model, groups, schedule, t_min))
    label_text = "given classifier"
    if classify is None:
        classify, label_text = class_labeller(data, seed=sampling.seed, cache_dir=cache_dir, clusters=clusters,
                                              classifier_steps=classifier_steps)
    shape = tuple(data.shape)
    dens = {"exact": TorchExactDenoiser(model, schedule, shape), "gaussian": TorchExactDenoiser(gauss, schedule, shape),
            "network": network}
    stab: dict[str, Callable[[], Stability]] = {
        "exact": lambda: exact_stability(theory.exact), "gaussian": lambda: gaussian_stability(theory.gaussian),
        "network": lambda: network_stability(network_branch(network, model, n_points=branch_points, t_min=t_min,
                                                            seed=sampling.seed))}
    y = np.asarray(data.x, dtype=np.float64)
    measured = tuple(DenoiserWindows(n, stab[n](), sampled_curves(n, dens[n], y, classify, sampling, groups, threads))
                     for n in names)
    config = {"sampling": sampling.config(), "branch_points": branch_points, "t_min": t_min, "labels": label_text,
              "groups": None if groups is None else np.asarray(groups).tolist(),
              "exact": "exact model" if data.model is not None else f"empirical score of the {data.n} training points",
              "gaussian": "N(mean, cov) of the data", "schedule": schedule.config()}
    return WindowComparison(data.name, schedule, theory, measured, label_text, config)


def distance_summary(comparison: WindowComparison, name: str = "network") -> dict[str, float | None]:
    """t_mid of ``name`` minus the exact score's, per measure (class level), and relative."""
    out = {}
    for measure in MEASURES:
        a, b = comparison.get(name).window(measure).t_mid, comparison.get("exact").window(measure).t_mid
        out[measure] = None if a is None or b is None else a - b
        out[f"{measure}_rel"] = None if a is None or b is None or b == 0 else (a - b) / b
    return out

