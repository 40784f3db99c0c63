"""Start states: noise / late / GLS draws against the analytic Gaussian N(alpha mu, alpha^2 Sigma + sigma^2 I)
(numpy's mean and covariance of the data), shared per-sample eps, and t_start parsing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.experiments.sampling.starts import gls_gaussian, parse_t_start, prior_std, start_state
from symbreak.theory import VE, DiscreteDDPM, VPLinear

SCHEDULE = VPLinear()
SEEDS = [4, 1, 9, 30]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 0.8, -0.2], [0.0, -0.2, 0.3]])
    return rng.multivariate_normal([0.5, -1.0, 0.2], cov, size=20000)


def analytic_moments(y: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    alpha, sigma2 = SCHEDULE.alpha(t), SCHEDULE.sigma2(t)
    return alpha * y.mean(axis=0), alpha**2 * np.cov(y.T, bias=True) + sigma2 * np.eye(y.shape[1])


def test_gls_gaussian_has_the_analytic_moments(data):
    t = 0.35
    mean, cov = analytic_moments(data, t)
    g = gls_gaussian(data, t, SCHEDULE)
    np.testing.assert_allclose(g.mean, mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.cov_matrix(), cov, rtol=0, atol=1e-12)
    root = g.transform(np.eye(3)) - g.mean
    np.testing.assert_allclose(root, root.T, atol=1e-12)  # the symmetric square root
    np.testing.assert_allclose(root @ root.T, cov, atol=1e-12)


def test_gls_start_uses_the_shared_eps_and_matches_moments_statistically(data):
    t = 0.35
    g = gls_gaussian(data, t, SCHEDULE)
    start = start_state("gls", SEEDS, (3,), SCHEDULE, t, gaussian=g)
    eps = per_sample_noise(SEEDS, (3,)).numpy()
    root = g.transform(np.eye(3)) - g.mean
    np.testing.assert_allclose(start.x.numpy(), g.mean + eps @ root.T, atol=1e-12)
    n = 4000
    x = start_state("gls", range(n), (3,), SCHEDULE, t, gaussian=g).x.numpy()
    mean, cov = analytic_moments(data, t)
    assert (np.abs(x.mean(axis=0) - mean) < 4 * np.sqrt(np.diag(cov) / n)).all()
    np.testing.assert_allclose(np.cov(x.T), cov, atol=4 * np.sqrt(2 / n) * cov.max())


def test_empirical_moments_come_from_noising_the_data_once(data):
    t = 0.3
    mean, cov = analytic_moments(data, t)
    g = gls_gaussian(data, t, SCHEDULE, moments="empirical", seed=3)
    n, sigma2 = data.shape[0], SCHEDULE.sigma2(t)
    assert np.abs(g.mean - mean).max() < 4 * np.sqrt(sigma2 / n)
    np.testing.assert_allclose(g.cov_matrix(), cov, atol=4 * np.sqrt(2 / n) * cov.max())
    assert not np.allclose(g.cov_matrix(), cov, atol=1e-9)  # it is an estimate, not the analytic covariance
    again = gls_gaussian(data, t, SCHEDULE, moments="empirical", seed=3)
    np.testing.assert_array_equal(again.cov_matrix(), g.cov_matrix())


@pytest.mark.parametrize("schedule", [VPLinear(), VE()])
def test_late_start_at_T_is_the_noise_start(schedule):
    noise = start_state("noise", SEEDS, (2, 2), schedule, schedule.T)
    late = start_state("late", SEEDS, (2, 2), schedule, schedule.T)
    assert torch.equal(noise.x, late.x)
    eps = per_sample_noise(SEEDS, (2, 2))
    assert torch.equal(noise.x, prior_std(schedule, schedule.T) * eps)
    scale = 1.0 if isinstance(schedule, VPLinear) else float(schedule.sigma(0.4))
    assert torch.equal(start_state("late", SEEDS, (2, 2), schedule, 0.4).x, scale * eps)
    if isinstance(schedule, VE):
        assert prior_std(schedule, schedule.T) == pytest.approx(50.0)


@pytest.mark.parametrize("kind", ["noise", "late", "gls"])
def test_starts_are_per_sample(data, kind):
    g = gls_gaussian(data, 0.5, SCHEDULE)
    batch = start_state(kind, SEEDS, (3,), SCHEDULE, 0.5, gaussian=g).x
    single = start_state(kind, SEEDS[2:3], (3,), SCHEDULE, 0.5, gaussian=g).x
    np.testing.assert_allclose(batch[2:3].numpy(), single.numpy(), rtol=0, atol=1e-15)


def test_parse_t_start():
    ddpm = DiscreteDDPM()
    assert parse_t_start("0.25", SCHEDULE) == 0.25
    assert parse_t_start("step:800", ddpm) == pytest.approx(0.801, abs=1e-15)
    assert parse_t_start("tc", SCHEDULE, critical_time=lambda: 0.2926) == 0.2926
    assert parse_t_start("tc", SCHEDULE, critical_time=0.3) == 0.3


@pytest.mark.parametrize("spec, schedule, words", [
    ("1.5", SCHEDULE, "must lie in"), ("0", SCHEDULE, "must lie in"),
    ("soon", SCHEDULE, "expected a time"),
    ("step:10", SCHEDULE, "discrete schedule"), ("step:1000", DiscreteDDPM(), r"\[0, 999\]"),
    ("step:x", DiscreteDDPM(), "integer K"), ("tc", SCHEDULE, "critical time")])
def test_parse_t_start_errors(spec, schedule, words):
    with pytest.raises(ValueError, match=words):
        parse_t_start(spec, schedule)


def test_start_errors(data):
    with pytest.raises(ValueError, match="--start"):
        start_state("warm", SEEDS, (3,), SCHEDULE, 0.5)
    with pytest.raises(ValueError, match="gaussian"):
        start_state("gls", SEEDS, (3,), SCHEDULE, 0.5)
    with pytest.raises(ValueError, match="moments"):
        gls_gaussian(data, 0.5, SCHEDULE, moments="exact")
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        gls_gaussian(data[0], 0.5, SCHEDULE)
    with pytest.raises(ValueError, match="eps"):
        start_state("gls", SEEDS, (2,), SCHEDULE, 0.5, gaussian=gls_gaussian(data, 0.5, SCHEDULE))
    with pytest.raises(ValueError, match="t_start"):
        start_state("late", SEEDS, (3,), SCHEDULE, 2.0)


def test_gls_ridge_adds_alpha_squared_ridge_to_every_direction(data):
    t, ridge = 0.35, 0.05
    mean, cov = analytic_moments(data, t)
    g = gls_gaussian(data, t, SCHEDULE, ridge=ridge)
    np.testing.assert_allclose(g.cov_matrix(), cov + SCHEDULE.alpha(t) ** 2 * ridge * np.eye(3), atol=1e-12)
    assert g.config["ridge"] == ridge
    with pytest.raises(ValueError, match="ridge"):
        gls_gaussian(data, t, SCHEDULE, ridge=-1.0)


def test_the_new_solvers_are_registered():
    from symbreak.experiments.sampling.samplers import SAMPLERS, get_sampler

    assert {"dpm2m", "dpm3m", "unipc"} <= set(SAMPLERS) and get_sampler("unipc").name == "unipc"


def test_diagonal_gls_start_keeps_marginal_variances_and_drops_correlations():
    """covariance='diagonal': N(alpha mu, alpha^2 diag(var) + sigma^2 I), var the unbiased per-coordinate
    variance (numpy's, independently), for analytic moments; its sample covariance converges to that diagonal."""
    from symbreak.experiments.sampling.starts import gls_gaussian
    from symbreak.theory import VPLinear

    rng = np.random.default_rng(3)
    y = rng.standard_normal((500, 4)) @ np.array([[2.0, 0.5, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 0.7, 0], [0, 0, 0, 0.2]])
    schedule, t = VPLinear(), 0.4
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    g = gls_gaussian(y, t, schedule, covariance="diagonal")
    np.testing.assert_allclose(g.mean, a * y.mean(0), rtol=1e-12)
    np.testing.assert_allclose(g.cov_matrix(), np.diag(a * a * y.var(0, ddof=1) + s2), rtol=1e-10)
    x = g.sample(200_000, np.random.default_rng(0))
    np.testing.assert_allclose(np.cov(x.T), g.cov_matrix(), atol=0.02)  # error ~ var * sqrt(2 / n) ~ 0.01
    ridged = gls_gaussian(y, t, schedule, covariance="diagonal", ridge=0.1)
    np.testing.assert_allclose(np.diag(ridged.cov_matrix()) - np.diag(g.cov_matrix()), a * a * 0.1, rtol=1e-10)
    with pytest.raises(ValueError, match="covariance: expected one of lowrank, diagonal"):
        gls_gaussian(y, t, schedule, covariance="full")
