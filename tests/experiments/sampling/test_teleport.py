"""Gaussian teleportation (Wang & Vastola 2024) against independent answers: the pushforward of the prior
through C_t^{1/2} C_T^{-1/2} (scipy's matrix square roots), scipy's solve_ivp on the Gaussian probability-
flow ODE, the low-rank + isotropic form against the full one, and a solver started there."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.linalg import sqrtm

from symbreak.analysis.spectrum import spectrum_from_moments
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.experiments.sampling.grids import logsnr_grid
from symbreak.experiments.sampling.samplers import get_sampler
from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.experiments.sampling.starts import TeleportSource, start_state, teleport
from symbreak.theory import DiscreteDDPM, Gaussian, VPLinear

SCHEDULE = VPLinear()
MU = np.array([0.4, -0.7, 0.1, 0.9])
Q = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))[0]
LAM = np.array([3.0, 1.2, 0.25, 0.25])  # two top directions, an isotropic rest
SIGMA = (Q * LAM) @ Q.T
MODEL = Gaussian(MU, SIGMA)
T_START = 0.35


def marginal_cov(t: float) -> np.ndarray:
    return SCHEDULE.alpha(t) ** 2 * SIGMA + SCHEDULE.sigma2(t) * np.eye(4)


def pushforward_matrix(t: float, t_from: float = 1.0) -> np.ndarray:
    return np.real(sqrtm(marginal_cov(t)) @ np.linalg.inv(sqrtm(marginal_cov(t_from))))


def test_teleported_prior_lands_on_its_analytic_pushforward():
    """x_T ~ N(0, I) -> N(alpha_t mu - M alpha_T mu, M M^T), M = C_t^{1/2} C_T^{-1/2}: mean and cov to 1e-10."""
    m = pushforward_matrix(T_START)
    g = teleport(spectrum_from_moments(MU, SIGMA), T_START, SCHEDULE).marginal()
    np.testing.assert_allclose(g.mean, SCHEDULE.alpha(T_START) * MU - m @ (SCHEDULE.alpha(1.0) * MU), atol=1e-10)
    np.testing.assert_allclose(g.cov_matrix(), m @ m.T, atol=1e-10)
    # started from the model's own marginal at T it lands exactly on the marginal at t_start
    np.testing.assert_allclose(m @ marginal_cov(1.0) @ m.T, marginal_cov(T_START), atol=1e-10)


def test_low_rank_plus_isotropic_equals_the_full_map():
    full = teleport(spectrum_from_moments(MU, SIGMA), T_START, SCHEDULE)
    spec = spectrum_from_moments(MU, SIGMA)
    low = type(spec)(spec.mean, spec.lam[:2], spec.vecs[:, :2], None, 4, "exact", spec.trace)
    eps = per_sample_noise(range(5), (4,)).numpy()
    np.testing.assert_allclose(teleport(low, T_START, SCHEDULE).transform(eps), full.transform(eps), atol=1e-10)


def test_teleport_is_the_probability_flow_ode_of_the_gaussian():
    eps = per_sample_noise([2, 8], (4,)).numpy()

    def rhs(t, x):
        x = x.reshape(-1, 4)
        return (SCHEDULE.f(t) * x - 0.5 * SCHEDULE.beta(t) * MODEL.score(x, t, SCHEDULE)).ravel()

    sol = solve_ivp(rhs, (1.0, T_START), eps.ravel(), method="DOP853", rtol=1e-11, atol=1e-12)
    ours = teleport(spectrum_from_moments(MU, SIGMA), T_START, SCHEDULE).transform(eps)
    np.testing.assert_allclose(ours, sol.y[:, -1].reshape(-1, 4), atol=1e-8)


def test_solver_from_the_teleported_start_reaches_the_data_covariance():
    """The exact Gaussian denoiser is affine, so the output covariance is A C A^T exactly (A from basis runs):
    its error to the exact T -> 0 pushforward shrinks with the steps spent in [0, t_start]."""
    tel = teleport(spectrum_from_moments(MU, SIGMA), T_START, SCHEDULE)
    den, start = ExactDenoiser(MODEL, SCHEDULE), tel.marginal()
    target = pushforward_matrix(1e-3) @ pushforward_matrix(1e-3).T
    errors = []
    for n in (2, 4, 8, 16):
        grid = logsnr_grid(SCHEDULE, n, T_START, 1e-3, to_data=False)
        base = torch.as_tensor(np.vstack([np.zeros(4), np.eye(4)]))
        out = get_sampler("dpm2m")(den, base, grid, lower_order_final=False).x.numpy()
        a = (out[1:] - out[0]).T
        errors.append(np.abs(a @ start.cov_matrix() @ a.T - target).max())
    assert all(e1 > 2.5 * e2 for e1, e2 in zip(errors, errors[1:])) and errors[-1] < 0.02, errors  # ~ h^2


def test_teleport_start_state_and_source():
    y = np.random.default_rng(0).multivariate_normal(MU, SIGMA, size=500)
    source = TeleportSource(y)
    tel = source.at(T_START, SCHEDULE)
    state = start_state("teleport", [3, 1], (4,), SCHEDULE, T_START, gaussian=tel)
    eps = per_sample_noise([3, 1], (4,)).numpy()
    np.testing.assert_allclose(state.x.numpy(), tel.transform(eps), atol=1e-14)
    assert state.config["gaussian"]["kind"] == "teleport" and source.config()["n_points"] == 500
    discrete = DiscreteDDPM()
    assert np.isfinite(source.at(float(discrete.t_of_step(414)), discrete).transform(eps)).all()


@pytest.mark.parametrize("kwargs, words", [({"t": 0.5, "t_from": 0.3}, "runs from t_from"),
                                           ({"t": 0.5, "ridge": -1.0}, "ridge"), ({"t": 0.0}, "t_start")])
def test_teleport_errors(kwargs, words):
    with pytest.raises(ValueError, match=words):
        teleport(spectrum_from_moments(MU, SIGMA), schedule=SCHEDULE, **kwargs)
    with pytest.raises(ValueError, match="teleport start needs"):
        start_state("teleport", [0], (4,), SCHEDULE, 0.3)
