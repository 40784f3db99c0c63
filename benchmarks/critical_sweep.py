"""The finite-sample critical-time sweep: the exact route's t_c on samples of mixtures whose population
t_c is known, per family and overall.

Every set is drawn from a Gaussian mixture with isotropic components N(mu_k, s^2 I) in d dimensions and
run through the user path, :func:`symbreak.analysis.critical.dataset_critical_times` (``method="exact"``,
all points, the VP-linear schedule, the VP SDE). Its t_c (the first event coming down from T,
:func:`symbreak.theory.critical.choose_critical`) is compared with the population t_c of the mixture.

Families and their oracles (the population value each is compared with):

* ``two-cluster``: 1/2 N(+-2 e_1, I), an i.i.d. sample. Closed form: at the centre of a centred mixture
  of equal-norm means and equal isotropic components the margin of J / beta is
  1/2 - 1/Gamma + alpha^2 Lambda_b / Gamma^2, Gamma = alpha^2 s^2 + sigma^2, with Lambda_b the top
  eigenvalue of sum_k w_k mu_k mu_k^T (here |m|^2 = 4; theory.critical's ``gaussian_critical_times``
  docstring; :func:`closed_form_t_c` solves it on the schedule).
* ``symmetrised``: the same mixture, the set {y, -y} of N/2 draws (a perfect pitchfork). Same closed form.
* ``unbalanced``: 0.3 N(2.8 e_1, I) + 0.7 N(-1.2 e_1, I) (centred, means 4 apart). The population is
  itself an imperfect pitchfork; no closed form: the population route, theory's exact mixture model
  ``critical_times(GaussianMixture(...))`` (its first event, a closest approach).
* ``four-cluster``: 1/4 each at +-2 e_1, +-2 e_2, s = 0.5. Closed form with Lambda_b = 2 (a double crossing).
* ``hierarchical``: 1/4 each at (+-2, +-0.8), s = 0.3. Closed form for both splits: the first with
  Lambda_b = 4 at the centre, the second with Lambda_b = 0.64 -- along e_2 the margin is
  1/2 - 1/Gamma + alpha^2 b^2 / Gamma^2 at every point of span(e_1) (the e_2 -> -e_2 symmetry), so on the
  committed branch too. The sample's second split is its next event after t_c (same rule).
* ``cross-polytope``: 1/(2d) each at +-sqrt(d) e_i, s = 0.5. Closed form with Lambda_b = 1 (d-fold crossing).

Each closed form is checked against the population route at d = 4 (``oracle_check`` in the JSON).

Expected finite-sample error (theory/critical.py, "Finite-sample behaviour"): a symmetrised sample keeps
the pitchfork perfect and moves t_c only through the sampling error of the centre's second moment,
~ N^-1/2; an i.i.d. sample of a symmetric population breaks the symmetry by h ~ N^-1/2 and shifts t_c
(always later) by ~ h^(2/3) ~ N^-1/3; an unbalanced population is already imperfect, so its closest
approach moves smoothly with the sample, ~ N^-1/2. Besides these, in d dimensions the top eigenvalue
of a sample second moment is biased up by ~ d s^2 / N, which matters at small N and large d. The
rates table compares the median error at the smallest and largest N with those rates.

    python benchmarks/critical_sweep.py --quick                 # 36 sets, under a minute on 2 cores
    nice -n 19 python benchmarks/critical_sweep.py --out sweep.csv   # every set; sweep.json beside it

A set is reproduced by ``draw(FAMILIES[name], d, n, seed)``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import Dataset
from symbreak.analysis.io import provenance
from symbreak.theory import GaussianMixture, VPLinear, critical_times
from symbreak.theory.critical import CriticalTimes, choose_critical

SCHEDULE = VPLinear()
FULL_D = (2, 4, 8, 16, 32, 64)
FULL_N = (200, 1000, 5000)
FULL_SEEDS = 4
QUICK_D = (2, 64)
QUICK_N = (200, 1000, 5000)
QUICK_SEEDS = 1
TOLERANCES = (0.02, 0.05, 0.10)
N_WORST = 15
CHECK_D = 4


@dataclass(frozen=True)
class Family:
    """A mixture family: ``means(d)`` (K, d) with ``weights``, component std ``s``; ``lam_b`` the
    between-cluster eigenvalue of the closed form (None: the population route), ``lam_b2`` that of a
    second split; ``symmetrised``: the sample is {y, -y}; ``rate`` the expected finite-sample error."""

    name: str
    weights: Callable[[int], list[float]]
    means: Callable[[int], np.ndarray]
    s: float
    lam_b: float | None
    rate: str
    lam_b2: float | None = None
    symmetrised: bool = False

    def model(self, d: int) -> GaussianMixture:
        means = self.means(d)
        return GaussianMixture(self.weights(d), means, [self.s ** 2 * np.eye(d)] * len(means))

    @property
    def oracle(self) -> str:
        if self.lam_b is None:
            return "population route: theory.critical_times(GaussianMixture), its first event"
        second = "" if self.lam_b2 is None else f"; second split Lambda_b = {self.lam_b2:g}"
        return f"closed form 1/2 - 1/Gamma + alpha^2 Lambda_b / Gamma^2 = 0, Lambda_b = {self.lam_b:g}{second}"


def _axes(d: int, rows: list[tuple[float, ...]]) -> np.ndarray:
    """Points whose first coordinates are ``rows`` (zero-padded to d)."""
    out = np.zeros((len(rows), d))
    out[:, :len(rows[0])] = rows
    return out


def _halves(d: int) -> list[float]:
    return [0.5, 0.5]


def _quarters(d: int) -> list[float]:
    return [0.25] * 4


FAMILIES = {f.name: f for f in (
    Family("two-cluster", _halves, lambda d: _axes(d, [(2.0,), (-2.0,)]), 1.0, 4.0, "N^-1/3"),
    Family("symmetrised", _halves, lambda d: _axes(d, [(2.0,), (-2.0,)]), 1.0, 4.0, "N^-1/2", symmetrised=True),
    Family("unbalanced", lambda d: [0.3, 0.7], lambda d: _axes(d, [(2.8,), (-1.2,)]), 1.0, None, "N^-1/2"),
    Family("four-cluster", _quarters, lambda d: _axes(d, [(2.0, 0.0), (-2.0, 0.0), (0.0, 2.0), (0.0, -2.0)]), 0.5,
           2.0, "N^-1/3"),
    Family("hierarchical", _quarters, lambda d: _axes(d, [(2.0, 0.8), (2.0, -0.8), (-2.0, 0.8), (-2.0, -0.8)]),
           0.3, 4.0, "N^-1/3", lam_b2=0.64),
    Family("cross-polytope", lambda d: [1.0 / (2 * d)] * (2 * d),
           lambda d: math.sqrt(d) * np.concatenate([np.eye(d), -np.eye(d)]), 0.5, 1.0, "N^-1/3"),
)}


# --- population values --------------------------------------------------------------------------
def centre_margin(alpha2: float, lam_b: float, s: float) -> float:
    """1/2 - 1/Gamma + alpha^2 Lambda_b / Gamma^2, Gamma = alpha^2 s^2 + sigma^2 (VP: sigma^2 = 1 - alpha^2)."""
    gamma = alpha2 * s * s + 1.0 - alpha2
    return 0.5 - 1.0 / gamma + alpha2 * lam_b / gamma ** 2


def closed_form_t_c(lam_b: float, s: float) -> float:
    """The t at which :func:`centre_margin` vanishes (Brent on alpha^2 in (0, 1))."""
    alpha2 = brentq(centre_margin, 1e-12, 1.0 - 1e-12, args=(lam_b, s), xtol=1e-15, rtol=1e-14)
    return float(SCHEDULE.t_of_alpha(math.sqrt(alpha2)))


def _second(ct: CriticalTimes) -> float | None:
    """The next event after t_c by the same rule (the hierarchy's second split), or None."""
    if ct.critical is None:
        return None
    later = [e for e in ct.events if e.time.logsnr > ct.critical.logsnr]
    chosen = choose_critical(later)
    return None if chosen is None else chosen.time.t


@lru_cache
def population(name: str, d: int) -> tuple[float, float | None]:
    """(t_c, t of the second split or None) of the population: closed form, else the population route."""
    family = FAMILIES[name]
    if family.lam_b is None:
        return float(critical_times(family.model(d), SCHEDULE).t_c), None
    second = None if family.lam_b2 is None else closed_form_t_c(family.lam_b2, family.s)
    return closed_form_t_c(family.lam_b, family.s), second


def oracle_check(d: int = CHECK_D) -> dict:
    """Each closed form against the population route at dimension d: {family: |difference in t_c|}."""
    out = {}
    for name, family in FAMILIES.items():
        if family.lam_b is not None:
            ct = critical_times(family.model(d), SCHEDULE)
            out[name] = {"closed_form": population(name, d)[0], "population_route": ct.t_c, "kind": ct.kind,
                         "abs_diff": abs(population(name, d)[0] - ct.t_c)}
    return out


# --- one set ------------------------------------------------------------------------------------
def draw(family: Family, d: int, n: int, seed: int) -> Dataset:
    """The sample of one set: n i.i.d. points (``symmetrised``: n/2 points and their negatives), drawn
    with ``np.random.default_rng([seed, d, n, index of the family])``."""
    model = family.model(d)
    rng = np.random.default_rng([seed, d, n, list(FAMILIES).index(family.name)])
    y = model.sample(n // 2 if family.symmetrised else n, rng)
    if family.symmetrised:
        y = np.concatenate([y, -y])
    config = {"name": family.name, "source": "benchmarks/critical_sweep.py", "d": d, "n_points": len(y), "seed": seed}
    return Dataset(family.name, y, (d,), None, "none: synthetic data in the model's own units", model, config)


def run_set(family: Family, d: int, n: int, seed: int) -> dict:
    """One row of the sweep: the population values, ours, the event kind, margin, collapse and note."""
    t_pop, t2_pop = population(family.name, d)
    data = draw(family, d, n, seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = dataset_critical_times(data, SCHEDULE, method="exact")
    t_c = r.t_c
    return {"family": family.name, "d": d, "N": data.n, "seed": seed, "t_c_pop": t_pop, "t_c": t_c,
            "rel_err": np.nan if t_c is None else (t_c - t_pop) / t_pop, "kind": r.kind, "margin": r.margin_c,
            "t_collapse": r.exact.t_collapse, "small_sample": r.notes.get("small-sample", ""),
            "t_2_pop": t2_pop, "t_2": _second(r.exact) if t2_pop is not None else None,
            "n_events": len(r.events), "branch_status": r.exact.branch.status,
            "seconds": time.perf_counter() - start}


def sets(quick: bool, seed: int, names: list[str]) -> list[tuple[Family, int, int, int]]:
    """The (family, d, N, seed) of every set."""
    ds, ns, reps = (QUICK_D, QUICK_N, QUICK_SEEDS) if quick else (FULL_D, FULL_N, FULL_SEEDS)
    return [(FAMILIES[name], d, n, seed + r) for name in names for d in ds for n in ns for r in range(reps)]


# --- the report ---------------------------------------------------------------------------------
def _stats(df: pd.DataFrame) -> dict:
    err = df["rel_err"].abs()
    found = err.dropna()
    out = {"sets": len(df), "no_t_c": int(err.isna().sum())}
    out.update({f"within_{round(100 * tol)}%": int((found <= tol).sum()) for tol in TOLERANCES})
    seen = df["t_collapse"] < df["t_c_pop"]
    out.update({"observable": int(seen.sum()), "observable_within_5%": int((err[seen] <= 0.05).sum())})
    out.update({"median_err": float(found.median()) if len(found) else np.nan,
                "p90_err": float(found.quantile(0.9)) if len(found) else np.nan,
                "median_signed": float(df["rel_err"].median()),
                "small_sample": int((df["small_sample"] != "").sum()),
                "kinds": dict(Counter(df["kind"]))})
    return out


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per family and overall: counts within 2/5/10 %, the sets whose collapse comes after the population
    t_c (t_collapse < t_c_pop: a sample that could show it) and how many of them are within 5 %, median and
    90th-percentile |relative error|, the median signed error, small-sample notes and the event kinds."""
    rows = {name: _stats(part) for name, part in df.groupby("family", sort=False)}
    rows["overall"] = _stats(df)
    return pd.DataFrame.from_dict(rows, orient="index")


def rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per family: the median |relative error| at each N (pooled over d and seeds), the ratio of the
    largest-N to the smallest-N median, the fitted exponent, and the expected rate's ratio."""
    rows = {}
    for name, part in df.groupby("family", sort=False):
        med = part.groupby("N")["rel_err"].apply(lambda e: e.abs().median())
        ns = med.index.to_numpy(dtype=float)
        slope = np.polyfit(np.log(ns), np.log(med.to_numpy()), 1)[0] if len(ns) > 1 and (med > 0).all() else np.nan
        expected = -0.5 if FAMILIES[name].rate == "N^-1/2" else -1.0 / 3.0
        rows[name] = {**{f"median@{int(n)}": float(v) for n, v in med.items()},
                      "ratio": float(med.iloc[-1] / med.iloc[0]), "slope": float(slope),
                      "expected": FAMILIES[name].rate, "expected_ratio": float((ns[-1] / ns[0]) ** expected)}
    return pd.DataFrame.from_dict(rows, orient="index")


def by_dimension(df: pd.DataFrame) -> pd.DataFrame:
    """Median |relative error| per family and d (rows) and N (columns): the d/N part of the error."""
    return df.assign(abs_err=df["rel_err"].abs()).pivot_table(index=["family", "d"], columns="N", values="abs_err",
                                                               aggfunc="median", sort=False)


def worst(df: pd.DataFrame, k: int = N_WORST) -> pd.DataFrame:
    cols = ["family", "d", "N", "seed", "t_c_pop", "t_c", "rel_err", "kind", "margin", "t_collapse", "small_sample"]
    order = df["rel_err"].abs().fillna(np.inf).sort_values(ascending=False).index
    out = df.loc[order[:k], cols].copy()
    out["small_sample"] = np.where(out["small_sample"] != "", "yes", "")
    return out


def second_splits(df: pd.DataFrame) -> pd.DataFrame | None:
    part = df.dropna(subset=["t_2_pop"])
    if part.empty:
        return None
    err = (part["t_2"].astype(float) - part["t_2_pop"]) / part["t_2_pop"]
    return part.assign(rel_err_2=err).groupby("N")["rel_err_2"].agg(
        sets="size", found="count", median_abs=lambda e: e.abs().median(),
        within_5=lambda e: int((e.abs() <= 0.05).sum()))


# --- the command --------------------------------------------------------------------------------
def check_args(args: argparse.Namespace) -> list[str]:
    """The family names; bad options raise ValueError('--flag: ...') before any work."""
    names = list(FAMILIES) if args.families is None else args.families.split(",")
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"--families: unknown {', '.join(unknown)}; accepted: {', '.join(FAMILIES)}")
    if args.seed < 0:
        raise ValueError(f"--seed: must be an integer >= 0, got {args.seed}")
    if args.out is not None:
        out = Path(args.out)
        if out.suffix != ".csv" or not out.parent.is_dir():
            raise ValueError(f"--out: a .csv file in an existing folder (the JSON goes beside it), got {args.out}")
    return names


def configuration(args: argparse.Namespace, names: list[str], elapsed: float, n_sets: int) -> dict:
    ds, ns, reps = (QUICK_D, QUICK_N, QUICK_SEEDS) if args.quick else (FULL_D, FULL_N, FULL_SEEDS)
    families = {n: {**{k: v for k, v in asdict(FAMILIES[n]).items() if not callable(v)},
                    "oracle": FAMILIES[n].oracle, "weights_d2": FAMILIES[n].weights(2),
                    "means_d2": FAMILIES[n].means(2).tolist()} for n in names}
    config = {"benchmark": "critical_sweep", "quick": args.quick, "seed": args.seed, "d": list(ds), "N": list(ns),
              "seeds_per_cell": reps, "sets": n_sets, "seconds": elapsed, "schedule": SCHEDULE.config(),
              "dynamics": "sde", "method": "exact", "families": families, "oracle_check": oracle_check(),
              "draw": "np.random.default_rng([seed, d, N, family index]); symmetrised: N/2 draws and their negatives"}
    return provenance(config)


def print_report(df: pd.DataFrame) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print("\n== per family and overall (|t_c - t_c_pop| / t_c_pop) ==")
        print(summary(df).to_string())
        print("\n== finite-sample rates: median |error| by N, ratio largest/smallest N, fitted exponent ==")
        print(rates(df).to_string())
        print("\n== median |error| by family and d (columns: N) ==")
        print(by_dimension(df).to_string())
        splits = second_splits(df)
        if splits is not None:
            print("\n== hierarchical second split (next event after t_c) ==")
            print(splits.to_string())
        print(f"\n== worst {N_WORST} sets ==")
        print(worst(df).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 36-set subset (d = 2, 64; one seed; under a minute)")
    parser.add_argument("--seed", type=int, default=0, help="first seed of each cell's replicates (default 0)")
    parser.add_argument("--families", default=None, help=f"comma-separated subset of {', '.join(FAMILIES)}")
    parser.add_argument("--out", default=None, help="CSV of every set; the resolved configuration as JSON beside it")
    args = parser.parse_args(argv)
    try:
        names = check_args(args)
    except ValueError as err:
        parser.error(str(err))
    todo = sets(args.quick, args.seed, names)
    start, rows = time.perf_counter(), []
    for i, (family, d, n, seed) in enumerate(todo):
        rows.append(run_set(family, d, n, seed))
        r = rows[-1]
        print(f"[{i + 1}/{len(todo)}] {family.name} d={d} N={r['N']} seed={seed}: pop {r['t_c_pop']:.4f} ours "
              f"{r['t_c'] if r['t_c'] is None else round(r['t_c'], 4)} ({r['kind']}) {r['seconds']:.1f} s",
              file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    elapsed = time.perf_counter() - start
    print(f"{len(df)} sets in {elapsed:.0f} s")
    print_report(df)
    if args.out is not None:
        df.to_csv(args.out, index=False)
        Path(args.out).with_suffix(".json").write_text(
            json.dumps(configuration(args, names, elapsed, len(df)), indent=1, default=float) + "\n")
        print(f"\nwrote {args.out} and {Path(args.out).with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
