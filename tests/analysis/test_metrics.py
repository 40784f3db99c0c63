"""Metrics against closed forms and independent implementations (scipy, POT, explicit loops)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import ot
import pytest
import scipy.linalg
import scipy.stats

from symbreak.analysis.metrics import (
    HELD_OUT,
    bootstrap_ci,
    class_histogram,
    entropy_bits,
    fd,
    frechet_distance_gaussians,
    kid,
    kl_divergence_bits,
    metric_table,
    mode_coverage,
    sliced_wasserstein,
    w2_exact,
    wasserstein_1d,
)
from symbreak.analysis.splits import split_indices


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def fd_via_sqrtm(mu1, s1, mu2, s2) -> float:
    """The pytorch-fid formula: tr of the (real part of the) principal sqrtm of s1 @ s2."""
    cross = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * cross))


# ----------------------------------------------------------------------------- FD

def test_fd_diagonal_by_hand():
    # sum (m1 - m2)^2 + sum (sqrt(a) - sqrt(b))^2 = (1 + 4) + ((1 - 2)^2 + (2 - 3)^2) = 7
    value = frechet_distance_gaussians([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0]))
    assert value == pytest.approx(7.0, abs=1e-12)


def test_fd_singular_commuting_covariances():
    # zero variances: (0 - 1)^2 + 0 + (2 - 3)^2 = 2, plus ||mu||^2 = 9
    value = frechet_distance_gaussians([0, 0, 0], np.diag([0.0, 0.0, 4.0]), [3, 0, 0], np.diag([1.0, 0.0, 9.0]))
    assert value == pytest.approx(11.0, abs=1e-10)


def test_fd_general_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    for d in (2, 5, 12):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        value = frechet_distance_gaussians(mu1, s1, mu2, s2)
        assert value == pytest.approx(fd_via_sqrtm(mu1, s1, mu2, s2), rel=1e-8, abs=1e-10)
        # symmetric in its two arguments
        assert value == pytest.approx(frechet_distance_gaussians(mu2, s2, mu1, s1), rel=1e-9)


def test_fd_identical_and_shifted_sets():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    shift = np.array([0.3, -1.0, 2.0, 0.0, 0.5, 0.1])
    assert fd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert fd(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_fd_rank_deficient_features():
    # 20-dim features living in a 3-dim subspace: covariances are singular, FD must stay exact
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 20))
    assert fd(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fd(x, x + 1.0) == pytest.approx(20.0, rel=1e-8)


def test_fd_large_samples_converge_to_closed_form():
    rng = np.random.default_rng(4)
    d = 3
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.25])
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    x = rng.multivariate_normal(mu1, s1, 200_000)
    y = rng.multivariate_normal(mu2, s2, 200_000)
    exact = fd_via_sqrtm(mu1, s1, mu2, s2)
    assert fd(x, y) == pytest.approx(exact, rel=0.02, abs=0.005)


def test_fd_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="y: expected 3 columns"):
        fd(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="x: need at least 2"):
        fd(np.zeros((1, 3)), np.zeros((5, 3)))


# ----------------------------------------------------------------------------- KID

def direct_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator written pair by pair with the kernel (a.b/d + 1)^3."""
    m, d = x.shape

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / m**2


def test_kid_full_subset_matches_direct_estimator():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 4)) + 0.7
    result = kid(x, y, subset_size=9, n_subsets=3, seed=0)
    assert result.mean == pytest.approx(direct_unbiased_mmd2(x, y), rel=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_subset_average_is_the_full_sample_estimate():
    # E over random subsets of the subset U-statistic equals the full-sample U-statistic
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((30, 3)), 1.5 * rng.standard_normal((30, 3))
    full = direct_unbiased_mmd2(x, y)
    result = kid(x, y, subset_size=10, n_subsets=4000, seed=1)
    assert result.mean == pytest.approx(full, abs=4 * result.std / math.sqrt(4000))


def test_kid_is_unbiased_for_one_distribution():
    rng = np.random.default_rng(7)
    values = np.array([kid(rng.standard_normal((100, 8)), rng.standard_normal((100, 8)),
                           subset_size=100, n_subsets=1).mean for _ in range(60)])
    x, y = rng.standard_normal((100, 8)), rng.standard_normal((100, 8)) + 0.5
    shifted = kid(x, y, subset_size=100, n_subsets=1).mean
    assert abs(values.mean()) < 3.5 * values.std(ddof=1) / math.sqrt(values.size)
    assert shifted > 20 * values.std(ddof=1)


def test_kid_seeded_and_subset_size_checked():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((60, 4))
    assert kid(x, y, 20, 10, seed=3) == kid(x, y, 20, 10, seed=3)
    assert kid(x, y).subset_size == 50
    with pytest.raises(ValueError, match="subset_size"):
        kid(x, y, subset_size=51)


# ----------------------------------------------------------------------------- Wasserstein

def test_sliced_wasserstein_of_shifted_1d_sets_is_the_shift():
    x = np.random.default_rng(9).standard_normal((200, 1))
    for p in (1, 2):
        assert sliced_wasserstein(x, x + 0.8, n_projections=5, p=p) == pytest.approx(0.8, rel=1e-12)


def test_wasserstein_1d_unequal_sizes_match_scipy_and_pot():
    rng = np.random.default_rng(10)
    u, v = rng.standard_normal(37), 2.0 * rng.standard_normal(53) + 0.3
    w1 = scipy.stats.wasserstein_distance(u, v)
    assert sliced_wasserstein(u[:, None], v[:, None], p=1) == pytest.approx(w1, rel=1e-12)
    exact_w2 = math.sqrt(ot.emd2(np.full(37, 1 / 37), np.full(53, 1 / 53), (u[:, None] - v[None, :]) ** 2))
    assert wasserstein_1d(u[:, None], v[:, None], p=2)[0] == pytest.approx(exact_w2, rel=1e-9)


def test_sliced_wasserstein_of_shifted_cloud():
    # every projection is shifted by theta.s, so SW2^2 = E (theta.s)^2 = |s|^2 / d
    rng = np.random.default_rng(11)
    x = rng.standard_normal((300, 4))
    s = np.array([1.0, 2.0, -2.0, 0.0])
    assert sliced_wasserstein(x, x + s, n_projections=4000, p=2, seed=0) == pytest.approx(3.0 / 2.0, rel=0.05)
    assert sliced_wasserstein(x, x + s, seed=5) == sliced_wasserstein(x, x + s, seed=5)
    assert sliced_wasserstein(x, x + s, seed=5) != sliced_wasserstein(x, x + s, seed=6)


def test_w2_exact_three_points_by_hand():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([[0.0, 3.0], [2.0, 0.0], [0.0, 0.0]])
    # identity-like matching (0,0)->(0,0), (1,0)->(2,0), (0,1)->(0,3): costs 0 + 1 + 4
    best = min(sum(np.sum((x[i] - y[j]) ** 2) for i, j in enumerate(perm))
               for perm in itertools.permutations(range(3)))
    assert best == pytest.approx(5.0)
    assert w2_exact(x, y) == pytest.approx(math.sqrt(5.0 / 3.0), rel=1e-12)


def test_w2_exact_two_gaussians_closed_form():
    # W2^2(N(0, I), N(m, diag(4, 1))) = |m|^2 + (2 - 1)^2 = 5 + 1
    rng = np.random.default_rng(12)
    x = rng.standard_normal((600, 2))
    y = rng.standard_normal((600, 2)) * np.array([2.0, 1.0]) + np.array([1.0, 2.0])
    assert w2_exact(x, y) ** 2 == pytest.approx(6.0, rel=0.1)


def test_mode_coverage_of_mixture_samples():
    rng = np.random.default_rng(13)
    angles = 2 * np.pi * np.arange(8) / 8
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    n, std = 20_000, 0.2
    x = means[rng.integers(0, 8, n)] + std * rng.standard_normal((n, 2))
    full = mode_coverage(x, means, std, k=3.0)
    # P(|z| <= 3) for a 2-D standard normal is 1 - exp(-9/2)
    p = 1 - math.exp(-4.5)
    assert full.high_quality == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    assert full.coverage == 1.0 and full.shares.sum() == pytest.approx(full.high_quality)
    x_half = means[rng.integers(0, 4, n)] + std * rng.standard_normal((n, 2))  # modes 0-3 only
    half = mode_coverage(x_half, means, std)
    assert half.coverage == 0.5 and list(half.covered) == [True] * 4 + [False] * 4
    assert mode_coverage(x * 3.0, means, std).high_quality < 0.01


# ----------------------------------------------------------------------------- classes

def test_class_histogram_entropy_and_kl():
    assert list(class_histogram(np.array([0, 2, 2, 3]), 4)) == [0.25, 0.0, 0.5, 0.25]
    for k in (2, 10, 7):
        assert entropy_bits(np.full(k, 1.0 / k)) == pytest.approx(math.log2(k), rel=1e-12)
    assert entropy_bits([0.0, 1.0, 0.0]) == 0.0
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    assert kl_divergence_bits(p, p) == pytest.approx(0.0, abs=1e-15)
    assert kl_divergence_bits(p, q, smoothing=1e-12) == pytest.approx(scipy.stats.entropy(p, q, base=2), rel=1e-9)
    # an empty reference bin stays finite: p~ = (0.5, 0.5), q~ = (1 - eps/2, eps/2) at eps = 1e-3
    expected = 0.5 * math.log2(0.5 / (1 - 5e-4)) + 0.5 * math.log2(0.5 / 5e-4)
    assert kl_divergence_bits([0.5, 0.5], [1.0, 0.0]) == pytest.approx(expected, rel=1e-9)


def test_class_histogram_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels: must lie in"):
        class_histogram(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="labels: expected a non-empty 1-D array of integers"):
        class_histogram(np.array([0.5]), 4)


# ----------------------------------------------------------------------------- bootstrap

def test_bootstrap_ci_contains_true_mean_and_has_nominal_coverage():
    rng = np.random.default_rng(14)
    sample = rng.normal(2.0, 1.0, 400)
    est = bootstrap_ci(np.mean, sample, n_boot=500, seed=0)
    assert est.ci_low < 2.0 < est.ci_high and est.value == pytest.approx(sample.mean())
    assert est == bootstrap_ci(np.mean, sample, n_boot=500, seed=0)
    # normal-theory width 2 * 1.96 * sd / sqrt(n)
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.96 * sample.std() / 20, rel=0.15)
    trials = 200
    covered = sum(e.ci_low < 0.0 < e.ci_high for e in
                  (bootstrap_ci(np.mean, rng.normal(0.0, 1.0, 60), n_boot=300, seed=i) for i in range(trials)))
    assert 0.88 <= covered / trials <= 0.99


def test_metric_table_rows_and_floor():
    rng = np.random.default_rng(15)
    train, held = rng.standard_normal((200, 3)), rng.standard_normal((100, 3))
    generated = {"ddim-5": rng.standard_normal((100, 3)) + 1.0}
    table = metric_table({"FD": fd, "SW": sliced_wasserstein}, train, held, generated, n_boot=50, seed=0)
    assert list(table.columns) == ["metric", "reference", "value", "ci_low", "ci_high", "n_samples"]
    expected = [("FD", HELD_OUT), ("FD", "ddim-5"), ("SW", HELD_OUT), ("SW", "ddim-5")]
    assert list(zip(table.metric, table.reference)) == expected
    row = table.iloc[1]
    assert row.value == pytest.approx(fd(generated["ddim-5"], train)) and row.ci_low < row.value < row.ci_high
    assert table.value[0] < table.value[1]  # the held-out floor sits below the shifted set
    with pytest.raises(ValueError, match="reserved"):
        metric_table({"FD": fd}, train, held, {HELD_OUT: held})


# ----------------------------------------------------------------------------- splits

def test_split_indices_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(4), [50, 30, 20, 11])
    train, test = split_indices(labels.size, labels, test_fraction=0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    assert list(np.bincount(labels[test])) == [10, 6, 4, 2]
    again = split_indices(labels.size, labels, 0.2, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    assert not np.array_equal(split_indices(labels.size, labels, 0.2, seed=4)[1], test)
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(10, None, test_fraction=1.0)
