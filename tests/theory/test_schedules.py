"""Schedules: rates against finite differences, inverses, the ends of the range, closed forms."""
import math

import numpy as np
import pytest

from symbreak.theory import VE, DiscreteDDPM, VPCosine, VPLinear, get_schedule, schedule_from_config

SCHEDULES = [VPLinear(), VPLinear(beta_min=0.5, beta_max=7.0, T=2.0), VPCosine(), DiscreteDDPM(), VE()]


def interior_times(s):
    """Times away from the ends (and, for the discrete schedule, away from the step boundaries)."""
    if s.discrete:
        return (np.array([3, 150, 500, 900]) + 0.5) / s.n_steps
    return np.array([0.013, 0.2, 0.5, 0.77, 0.93]) * s.T


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_f_and_beta_match_finite_differences(s):
    t = interior_times(s)
    h = 1e-6 if not s.discrete else 1e-7
    dlog_alpha = (s.log_alpha(t + h) - s.log_alpha(t - h)) / (2 * h)
    dsigma2 = (s.sigma2(t + h) - s.sigma2(t - h)) / (2 * h)
    np.testing.assert_allclose(s.f(t), dlog_alpha, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.beta(t), dsigma2 - 2 * s.f(t) * s.sigma2(t), rtol=1e-6)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_inverses_round_trip(s):
    t = interior_times(s)
    np.testing.assert_allclose(s.t_of_logsnr(s.logsnr(t)), t, rtol=1e-10)
    np.testing.assert_allclose(s.tau(t), -np.log(s.alpha(t)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.logsnr(t), np.log(s.alpha(t) ** 2 / s.sigma2(t)), rtol=1e-10)
    if s.name != "ve":
        np.testing.assert_allclose(s.t_of_alpha(s.alpha(t)), t, rtol=1e-9)
        np.testing.assert_allclose(s.alpha(t) ** 2 + s.sigma2(t), 1.0, rtol=1e-13)
        np.testing.assert_allclose(s.beta(t), -2 * s.f(t), rtol=1e-13)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_finite_at_both_ends(s):
    for t in (s.t_min, s.T):
        values = [s.alpha(t), s.sigma(t), s.sigma2(t), s.beta(t), s.f(t), s.logsnr(t), s.tau(t)]
        assert np.isfinite(values).all(), (t, values)
        assert s.sigma2(t) > 0 and s.alpha(t) > 0
    lo, hi = s.logsnr_range()
    assert lo < hi


def test_vp_linear_closed_form():
    t = np.linspace(0.01, 1, 7)
    np.testing.assert_allclose(VPLinear().alpha(t), np.exp(-19.9 * t * t / 4 - 0.05 * t), rtol=1e-14)
    np.testing.assert_allclose(VPLinear().beta(t), 0.1 + 19.9 * t, rtol=1e-14)


def test_cosine_closed_form():
    s, t = 0.008, np.array([0.1, 0.5, 0.9])
    expected = np.cos(np.pi / 2 * (t + s) / (1 + s)) ** 2 / np.cos(np.pi / 2 * s / (1 + s)) ** 2
    np.testing.assert_allclose(VPCosine().alpha(t) ** 2, expected, rtol=1e-12)


def test_ddpm_matches_cumprod_and_steps_round_trip():
    d = DiscreteDDPM()
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    steps = np.array([0, 1, 291, 292, 999])
    np.testing.assert_allclose(d.alpha(d.t_of_step(steps)) ** 2, alpha_bar[steps], rtol=1e-12)
    np.testing.assert_array_equal(d.step_of_t(d.t_of_step(steps)), steps)
    # a time strictly inside step k's interval maps to step k
    np.testing.assert_array_equal(d.step_of_t((steps + 0.5) / 1000), steps)


def test_ve_closed_form():
    v, t = VE(sigma_min=0.02, sigma_max=80.0), np.array([0.1, 0.6])
    np.testing.assert_allclose(v.sigma(t), 0.02 * (80 / 0.02) ** t, rtol=1e-13)
    np.testing.assert_allclose(v.alpha(t), 1.0)


def test_config_round_trip():
    for s in SCHEDULES:
        assert schedule_from_config(s.config()).config() == s.config()


@pytest.mark.parametrize("make, name", [
    (lambda: VPLinear(beta_min=1.0, beta_max=1.0), "beta_max"),
    (lambda: VPLinear(beta_min=float("nan")), "beta_min"),
    (lambda: VPLinear(beta_max=math.inf), "beta_max"),
    (lambda: VE(sigma_min=1.0, sigma_max=0.5), "sigma_max"),
    (lambda: DiscreteDDPM(n_steps=1), "n_steps"),
    (lambda: DiscreteDDPM(beta_start=0.03, beta_end=0.02), "beta_end"),
    (lambda: get_schedule("linear"), "schedule"),
    (lambda: VPLinear().alpha(1.5), "t"),
    (lambda: VPLinear().alpha(0.0), "t"),
    (lambda: VPLinear().alpha(float("nan")), "t"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        make()


def test_sigma2_is_floored_so_that_sigma4_stays_a_normal_float():
    from symbreak.theory.schedules import SIGMA2_FLOOR

    s = VPLinear()
    t = np.array([5e-324, 1e-300, 1e-160, 1e-3])
    sigma2 = s.sigma2(t)
    assert np.all(sigma2 >= SIGMA2_FLOOR) and np.all(sigma2 ** 2 >= np.finfo(np.float64).tiny)
    assert sigma2[-1] == pytest.approx(-math.expm1(2 * float(s.log_alpha(1e-3))), rel=1e-12)  # untouched above
    with pytest.raises(ValueError, match="n_steps"):
        DiscreteDDPM(n_steps=10**9)
