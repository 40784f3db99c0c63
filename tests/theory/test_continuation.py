"""The continuation engine and the first-event rule against independent oracles: the closed-form
population t_c of two Gaussians, symmetrised samples (the centre margin from eigsh of the weighted
second moment), hierarchical and unbalanced mixtures, matrix-free against dense, round-off, and the
finite-sample rates N^-1/2 (symmetric) and N^-1/3 (imperfect)."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.sparse.linalg import eigsh
from scipy.special import softmax

from symbreak.theory import EmpiricalData, Gaussian, GaussianMixture, SymmetricDeltas, VPLinear, critical_times

SCHED = VPLinear()


def population_alpha2(m2: float, s2: float) -> float:
    """Two Gaussians +-m, variance s^2 (VP SDE): the centre margin 1/2 - 1/G + alpha^2 |m|^2 / G^2 = 0,
    G = alpha^2 s^2 + sigma^2."""
    def margin(a2):
        g = a2 * s2 + 1 - a2
        return 0.5 - 1 / g + a2 * m2 / g ** 2
    return brentq(margin, 1e-9, 1 - 1e-9, xtol=1e-15)


def t_of_alpha2(a2):
    return float(SCHED.t_of_alpha(math.sqrt(a2)))


def two_gaussians(d, m, s, w=0.5):
    mean = np.zeros(d)
    mean[0] = m
    return GaussianMixture([w, 1 - w], [mean, -mean], [s * s * np.eye(d)] * 2)


def coin_sample(n, d, m, seed, symmetrise=False):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, d))
    y[:, 0] += m * np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return np.concatenate([y, -y]) if symmetrise else y


@pytest.mark.parametrize("m, s", [(2.0, 1.0), (1.5, 0.6)])
def test_population_two_gaussians_match_the_closed_form(m, s):
    ct = critical_times(two_gaussians(3, m, s), SCHED)
    assert ct.kind == "crossing"
    assert ct.alpha_c ** 2 == pytest.approx(population_alpha2(m * m, s * s), rel=1e-8)


def test_symmetrised_sample_centre_margin_from_the_weighted_second_moment():
    """y and -y both in the set: the centre stays fixed and its margin is 1/2 - 1/sigma^2 + alpha^2
    lam_max(sum_j w_j y_j y_j^T) / sigma^4 with w_j the posterior weights at x = 0."""
    y = coin_sample(150, 4, 2.0, seed=3, symmetrise=True)
    ct = critical_times(EmpiricalData(y), SCHED)

    def margin(logsnr):
        a2 = 1 / (1 + math.exp(-logsnr))
        w = softmax(-a2 * (y * y).sum(axis=1) / (2 * (1 - a2)))
        top = eigsh((y.T * w) @ y, 1, which="LA")[0][0]
        return 0.5 - 1 / (1 - a2) + a2 * top / (1 - a2) ** 2

    expected = brentq(margin, -5.0, 5.0, xtol=1e-14)
    assert ct.kind == "crossing" and ct.logsnr_c == pytest.approx(expected, abs=1e-6)


def test_matrix_free_and_dense_routes_give_the_same_events():
    y = coin_sample(60, 6, 1.5, seed=1)
    dense = critical_times(EmpiricalData(y), SCHED, matrix_free=False)
    free = critical_times(EmpiricalData(y), SCHED, matrix_free=True)
    assert [e.kind for e in dense.events] == [e.kind for e in free.events] and dense.events
    for a, b in zip(dense.events, free.events):
        assert a.time.logsnr == pytest.approx(b.time.logsnr, abs=1e-8)
        assert a.margin == pytest.approx(b.margin, abs=1e-8)


def test_first_event_is_t_c_for_a_coin_flip_sample():
    """1/2 N(+-2 e_1, I) in 16 dims, N = 500: t_c is the first closest approach (population 0.4522), not
    the later fold where a cluster breaks into memorised points."""
    ct = critical_times(EmpiricalData(coin_sample(500, 16, 2.0, seed=0)), SCHED)
    pop = t_of_alpha2(population_alpha2(4.0, 1.0))
    assert pop == pytest.approx(0.4522, abs=1e-4)
    assert ct.events[0].time == ct.critical and abs(ct.t_c - pop) / pop < 0.07


def test_unbalanced_population_closest_approach_is_t_c_whatever_its_depth():
    ct = critical_times(two_gaussians(2, 2.0, 0.5, w=0.3), SCHED)
    assert ct.kind == "closest-approach" and ct.margin_c < -0.05
    assert ct.events[0].time == ct.critical and ct.events[0].prominence > 1e-3


def test_hierarchical_mixture_reports_both_splits():
    """Clusters at (+-3, +-1): the first split along e_1 is t_c, the second (along e_2) a later event."""
    means = [[3, 1], [3, -1], [-3, 1], [-3, -1]]
    ct = critical_times(GaussianMixture([0.25] * 4, means, [0.05 * np.eye(2)] * 4), SCHED)
    assert ct.kind == "crossing" and abs(ct.soft_direction[0]) > 0.99
    later = [e for e in ct.events if e.time.logsnr > ct.logsnr_c and e.soft_direction is not None]
    assert any(abs(e.soft_direction[1]) > 0.99 for e in later)


def test_round_off_is_not_a_critical_time():
    flat = critical_times(Gaussian(np.zeros(2), np.eye(2)), SCHED)       # margin exactly -1/2
    assert flat.kind == "none" and flat.events == ()
    one_peak = critical_times(GaussianMixture([0.5, 0.5], [[0.1], [-0.1]], [[[0.5]], [[0.5]]]), SCHED)
    assert one_peak.kind == "none"
    deltas = critical_times(SymmetricDeltas(1.0), SCHED)
    assert deltas.kind == "crossing" and deltas.t_c == pytest.approx(0.2926417, rel=1e-6)


def test_small_sample_is_flagged():
    ct = critical_times(EmpiricalData(coin_sample(10, 400, 2.0, seed=0)), SCHED, n=10)
    assert "small-sample" in ct.notes and ct.t_collapse >= 0.9 * ct.t_c


def _errors(ns, seeds, symmetrise):
    pop = population_alpha2(4.0, 1.0)
    out = []
    for n in ns:
        errs = [abs(critical_times(EmpiricalData(coin_sample(n, 2, 2.0, s, symmetrise)), SCHED, k=1)
                    .alpha_c ** 2 - pop) for s in seeds]
        out.append(np.mean(errs))
    return np.array(out)


@pytest.mark.parametrize("symmetrise, slope", [(True, -0.5), (False, -1 / 3)])
def test_finite_sample_rates(symmetrise, slope):
    ns = np.array([200, 800, 3200])
    err = _errors(ns, range(6), symmetrise)
    fitted = np.polyfit(np.log(ns), np.log(err), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.2)
