"""The exact route's interval for t_c (analysis.critical._bootstrap): half-samples of the sampling units
(mirror pairs of a symmetrised set), only those whose first event is the estimate's, the basic interval;
checked on finite samples of mixtures whose population t_c is known in closed form."""
import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from symbreak.analysis.critical import dataset_critical_times, mirror_pairs
from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.theory import GaussianMixture, VPLinear

LEVEL = 0.9


def two_cluster_t_c(m2: float = 4.0, s: float = 1.0) -> float:
    """Population t_c of 1/2 N(+-m, s^2 I), VP linear: 1/2 - 1/Gamma + alpha^2 |m|^2 / Gamma^2 = 0,
    Gamma = alpha^2 s^2 + sigma^2."""
    def margin(a2: float) -> float:
        gamma = a2 * s * s + 1.0 - a2
        return 0.5 - 1.0 / gamma + a2 * m2 / gamma ** 2

    return float(VPLinear().t_of_alpha(math.sqrt(brentq(margin, 1e-12, 1 - 1e-12, xtol=1e-15))))


def two_cluster(n: int, seed: int, symmetrised: bool = False, d: int = 2) -> Dataset:
    """n points of 1/2 N(+-2 e_1, I) in d dimensions; ``symmetrised``: n/2 points and their negatives."""
    m = np.zeros(d)
    m[0] = 2.0
    model = GaussianMixture([0.5, 0.5], [m, -m], [np.eye(d)] * 2)
    y = model.sample(n // 2 if symmetrised else n, np.random.default_rng(seed))
    if symmetrised:
        y = np.concatenate([y, -y])
    return Dataset("two-cluster", y, (d,), None, "none", model, {"name": "two-cluster", "seed": seed})


def interval(data: Dataset, b: int, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return dataset_critical_times(data, method="exact", bootstrap=b, level=LEVEL, seed=seed)


def test_mirror_pairs_found_only_in_a_symmetrised_set():
    sym = two_cluster(40, 0, symmetrised=True)
    pairs = mirror_pairs(sym)
    assert pairs is not None and pairs.shape == (20, 2)
    assert np.allclose(sym.x[pairs[:, 0]] + sym.x[pairs[:, 1]], 0.0, atol=1e-12)
    assert sorted(pairs.ravel().tolist()) == list(range(40))
    assert mirror_pairs(two_cluster(40, 0)) is None
    assert mirror_pairs(two_cluster(41, 0)) is None  # odd N
    shifted = Dataset("s", (sym.x + 3.0).astype(np.float32), (2,), None, "none", None, {})
    assert mirror_pairs(shifted) is not None  # symmetric about its own mean, in float32


def test_symmetrised_set_keeps_its_crossing_and_covers_the_estimate():
    """Half-samples of mirror pairs stay symmetric: every one is a crossing (points would break it)."""
    r = interval(two_cluster(200, 0, symmetrised=True), 12, 0)
    assert r.kind == "crossing" and r.bootstrap["units"] == "mirror pairs" and r.bootstrap["m"] == 100
    assert set(r.bootstrap["kinds"]) == {"crossing"} and r.bootstrap["other_share"] == 0.0
    lo, hi = r.t_c_ci
    assert lo <= r.t_c <= hi and hi - lo < 0.1


def test_memorisation_events_of_half_samples_are_left_out_and_counted():
    """gmm-2d, N = 200: the estimate is a deep closest approach at t ~ 0.24; a few half-samples commit
    smoothly and report a memorisation event at t ~ 0.01 instead. They are matched to the collapse time or
    the sample's later events, left out of the interval and counted in other_share."""
    r = interval(load_dataset("gmm-2d", n=200, seed=0), 24, 0)
    t = np.array(r.bootstrap["t_c"])
    same = np.array(r.bootstrap["same_event"])
    assert r.kind == "closest-approach" and r.bootstrap["units"] == "points"
    assert np.all(t[same] > 0.15) and np.all(~np.isfinite(t[~same]) | (t[~same] < 0.05))
    assert r.bootstrap["other_share"] == pytest.approx(1 - same.mean())
    lo, hi = r.t_c_ci
    assert 0.15 < lo <= r.t_c <= hi < 0.35


@pytest.mark.parametrize("seed", [0, 1])
def test_iid_two_cluster_interval_covers_the_estimate(seed):
    r = interval(two_cluster(200, seed), 12, seed)
    lo, hi = r.t_c_ci
    assert r.bootstrap["scheme"].startswith("half-sampling") and len(r.bootstrap["t_c"]) == 12
    assert lo <= r.t_c <= hi


def test_no_t_c_means_no_interval():
    """Under the probability-flow ODE the centre of data with Lambda > 1 is unstable from T on: no t_c."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = dataset_critical_times(two_cluster(100, 0), method="exact", dynamics="ode", bootstrap=5)
    assert r.t_c is None and np.isnan(r.t_c_ci).all() and r.bootstrap["B"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("symmetrised, at_least", [(False, 6), (True, 10)])
def test_coverage_of_the_population_t_c(symmetrised, at_least):
    """Over 12 seeds at N = 200 the 90 % interval always holds the estimate and covers the population t_c
    of 1/2 N(+-2 e_1, I) (closed form) at least ``at_least`` times. An i.i.d. sample's t_c is late by
    ~N^-1/3 (an imperfect pitchfork), so its coverage stays below the level (measured 7/12 here, 9/12
    with the benchmark's draws); a symmetrised sample's only moves by ~N^-1/2 (measured 11/12, 12/12)."""
    t_pop = two_cluster_t_c()
    hits = 0
    for seed in range(12):
        r = interval(two_cluster(200, seed, symmetrised), 40, seed)
        lo, hi = r.t_c_ci
        hits += lo <= t_pop <= hi
        assert lo <= r.t_c <= hi
    print(f"symmetrised={symmetrised}: the population t_c covered {hits}/12")
    assert hits >= at_least
