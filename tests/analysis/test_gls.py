"""Gaussian late start: analytic moments, the low-rank + isotropic form, the empirical variant."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.linalg import sqrtm

from symbreak.analysis.gls import empirical_gaussian_start, gaussian_start, noised_data
from symbreak.analysis.spectrum import covariance_spectrum, spectrum_from_moments
from symbreak.theory import Gaussian, VPLinear

SCHEDULE = VPLinear()
T = 0.35


def _random_cov(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d)) * np.linspace(0.2, 1.5, d)
    return rng.standard_normal(d), a @ a.T / d


def _assert_sample_cov(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray, z: float = 5.0) -> None:
    """Sample mean and covariance within z standard errors of (mean, cov), entry by entry."""
    n = samples.shape[0]
    diag = np.diag(cov)
    se_mean = np.sqrt(diag / n)
    se_cov = np.sqrt((np.outer(diag, diag) + cov ** 2) / n)
    assert np.all(np.abs(samples.mean(axis=0) - mean) < z * se_mean)
    assert np.all(np.abs(np.cov(samples.T, bias=True) - cov) < z * se_cov)


def test_full_rank_start_is_the_noised_gaussian():
    mu, sigma = _random_cov(6, seed=0)
    model = Gaussian(mu, sigma)
    start = gaussian_start(spectrum_from_moments(mu, sigma), T, SCHEDULE)
    assert start.k == 6
    np.testing.assert_allclose(start.mean, model.marginal_mean(T, SCHEDULE), rtol=1e-13)
    np.testing.assert_allclose(start.cov_matrix(), model.marginal_cov(T, SCHEDULE), rtol=1e-12, atol=1e-14)
    # the sampler applies the symmetric square root of the covariance to standard normals
    eps = np.random.default_rng(1).standard_normal((4, 6))
    root = np.real(sqrtm(model.marginal_cov(T, SCHEDULE)))
    np.testing.assert_allclose(start.transform(eps), start.mean + eps @ root, rtol=1e-10, atol=1e-12)
    _assert_sample_cov(start.sample(100_000, np.random.default_rng(2)), start.mean, start.cov_matrix())


def test_low_rank_form_keeps_top_directions_and_total_variance():
    mu, sigma = _random_cov(10, seed=3)
    full = spectrum_from_moments(mu, sigma)
    start = gaussian_start(replace(full, lam=full.lam[:3], vecs=full.vecs[:, :3]), T, SCHEDULE)
    alpha, sigma2 = float(SCHEDULE.alpha(T)), float(SCHEDULE.sigma2(T))
    cov = start.cov_matrix()
    lam = np.linalg.eigvalsh(cov)[::-1]
    np.testing.assert_allclose(lam[:3], alpha ** 2 * full.lam[:3] + sigma2, rtol=1e-12)
    rho = full.lam[3:].mean()
    np.testing.assert_allclose(lam[3:], alpha ** 2 * rho + sigma2, rtol=1e-12)
    np.testing.assert_allclose(np.trace(cov), alpha ** 2 * np.trace(sigma) + 10 * sigma2, rtol=1e-12)
    np.testing.assert_allclose(cov @ full.vecs[:, 0], lam[0] * full.vecs[:, 0], rtol=1e-10, atol=1e-12)
    eps = np.random.default_rng(4).standard_normal((3, 10))
    np.testing.assert_allclose(start.transform(eps), start.mean + eps @ np.real(sqrtm(cov)), rtol=1e-9, atol=1e-12)
    _assert_sample_cov(start.sample(100_000, np.random.default_rng(5)), start.mean, cov)


def test_seeded_samples_depend_on_their_own_seed_only():
    mu, sigma = _random_cov(4, seed=6)
    start = gaussian_start(spectrum_from_moments(mu, sigma), T, SCHEDULE)
    a = start.sample_seeded([3, 9, 11])
    b = start.sample_seeded([11, 3])
    np.testing.assert_array_equal(a[[2, 0]], b)
    np.testing.assert_allclose(a[1], start.transform(np.random.default_rng(9).standard_normal((1, 4)))[0])


def test_noising_once_matches_the_formula_and_is_chunk_invariant():
    y = np.random.default_rng(7).standard_normal((50, 3)).astype(np.float32)
    xt = noised_data(y, T, SCHEDULE, np.random.default_rng(8))
    alpha, sigma = float(SCHEDULE.alpha(T)), float(SCHEDULE.sigma(T))
    expected = alpha * y.astype(np.float64) + sigma * np.random.default_rng(8).standard_normal((50, 3))
    np.testing.assert_allclose(xt, expected, rtol=1e-6)
    sub = noised_data(y, T, SCHEDULE, np.random.default_rng(8), n=10)
    assert sub.shape == (10, 3)
    with pytest.raises(ValueError, match="n: must be in 1..50"):
        noised_data(y, T, SCHEDULE, np.random.default_rng(8), n=60)


def test_empirical_start_fits_the_noised_data():
    mu, sigma = _random_cov(5, seed=9)
    y = Gaussian(mu, sigma).sample(40_000, np.random.default_rng(10))
    start = empirical_gaussian_start(y, T, SCHEDULE, np.random.default_rng(11))
    xt = noised_data(y, T, SCHEDULE, np.random.default_rng(11)).astype(np.float64)
    # exactly the moments of the noised samples (population normalisation)
    np.testing.assert_allclose(start.mean, xt.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(start.cov_matrix(), np.cov(xt.T, bias=True), rtol=1e-8, atol=1e-12)
    # and statistically the analytic N(alpha mu, alpha^2 Sigma + sigma^2 I)
    model = Gaussian(mu, sigma)
    _assert_sample_cov(xt, model.marginal_mean(T, SCHEDULE), model.marginal_cov(T, SCHEDULE))
    assert start.config["kind"] == "empirical" and start.config["n_noised"] == 40_000


def test_empirical_low_rank_start_on_large_d():
    rng = np.random.default_rng(12)
    u = np.linalg.qr(rng.standard_normal((400, 2)))[0]
    y = (rng.standard_normal((2000, 2)) * [3.0, 2.0]) @ u.T + 0.3 * rng.standard_normal((2000, 400))
    start = empirical_gaussian_start(y, T, SCHEDULE, np.random.default_rng(13), k=2, method="lanczos")
    xt = noised_data(y, T, SCHEDULE, np.random.default_rng(13))
    ref = covariance_spectrum(xt, method="exact")
    np.testing.assert_allclose(start.lam, ref.lam[:2], rtol=1e-5)
    np.testing.assert_allclose(start.iso, ref.lam[2:].mean(), rtol=1e-5)
    assert start.sample(7, np.random.default_rng(0)).shape == (7, 400)
