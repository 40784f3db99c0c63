"""Biroli et al.: cloning probability, speciation and collapse."""
import math

import numpy as np
import pytest

from symbreak.theory import (
    cloning_probability,
    cloning_probability_at,
    collapse_logsnr,
    collapse_tau_two_gaussians,
    speciation_logsnr,
    speciation_tau,
)
from symbreak.theory.biroli import vp_tau_of_logsnr


@pytest.mark.parametrize("mean, expected", [(1.0, 0.7752), (1 / math.sqrt(2), 0.6751), (2.0, 0.9657)])
def test_cloning_probability_values(mean, expected):
    """|m| e^{-tau} = mean with s = 1 (then Gamma = 1 at every tau)."""
    tau = 0.7
    assert round(cloning_probability(tau, m=mean * math.exp(tau), s=1.0), 4) == pytest.approx(expected, abs=1e-4)
    assert cloning_probability_at(mean, 1.0) == pytest.approx(expected, abs=5e-5)


def test_cloning_probability_against_the_defining_integral():
    """Second algorithm: the defining integral 1/2 int (G+^2 + G-^2)/(G+ + G-) dy on a fine grid."""
    mean, gamma = 0.8, 0.6
    y = np.linspace(-12, 12, 200001)
    g_plus = np.exp(-(y - mean) ** 2 / (2 * gamma)) / math.sqrt(2 * math.pi * gamma)
    g_minus = np.exp(-(y + mean) ** 2 / (2 * gamma)) / math.sqrt(2 * math.pi * gamma)
    integrand = 0.5 * (g_plus ** 2 + g_minus ** 2) / (g_plus + g_minus)
    reference = float(np.sum(integrand) * (y[1] - y[0]))
    assert cloning_probability_at(mean, gamma) == pytest.approx(reference, rel=1e-9)


def test_cloning_probability_limits():
    assert cloning_probability(40.0, m=3.0, s=0.5) == pytest.approx(0.5, abs=1e-12)
    values = [cloning_probability(tau, m=2.0, s=0.3) for tau in (0.1, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(values, values[1:])) and values[0] > 0.99
    assert cloning_probability(0.5, m=[1.2, -1.6], s=1.0) == pytest.approx(cloning_probability(0.5, m=2.0, s=1.0))


@pytest.mark.parametrize("d, tau_c", [(256, 1.299), (1024, 1.978), (4096, 2.667)])
def test_collapse_two_gaussians(d, tau_c):
    closed = collapse_tau_two_gaussians(20000, d, s=1.0)
    assert round(closed, 3) == tau_c
    # the general excess-entropy estimate with the d eigenvalues s^2 = 1 gives the same time
    assert vp_tau_of_logsnr(collapse_logsnr(np.ones(d), 20000)) == pytest.approx(closed, rel=1e-10)


def test_collapse_solves_the_entropy_equation():
    lam = np.array([5.0, 2.0, 0.5, 0.0, 0.1])
    s = collapse_logsnr(lam, 300)
    assert 0.5 * np.log1p(lam * math.exp(s)).sum() == pytest.approx(math.log(300), rel=1e-12)


def test_speciation():
    assert speciation_tau(2.8) == pytest.approx(0.5 * math.log(2.8), rel=1e-12)
    snr = math.exp(speciation_logsnr(2.8))
    assert snr * (2.8 - 1) == pytest.approx(1.0, rel=1e-12)           # alpha^2 Lambda = alpha^2 + sigma^2


@pytest.mark.parametrize("call, name", [
    (lambda: speciation_logsnr(1.0), "Lambda"),
    (lambda: speciation_tau(float("nan")), "Lambda"),
    (lambda: collapse_tau_two_gaussians(1, 10), "n"),
    (lambda: collapse_tau_two_gaussians(100, 0), "d"),
    (lambda: collapse_logsnr([0.0, 0.0], 10), "lam"),
    (lambda: collapse_logsnr([1.0, -1.0], 10), "lam"),
    (lambda: cloning_probability(-1.0), "tau"),
    (lambda: cloning_probability_at(1.0, 0.0), "gamma"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()
