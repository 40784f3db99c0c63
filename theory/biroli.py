"""Speciation, collapse and the cloning probability of Biroli et al. (2024), "Dynamical regimes of
diffusion models", on their Ornstein-Uhlenbeck time tau = -log alpha (VP: sigma^2 = 1 - e^{-2 tau}).

- Speciation: the noised data's top variance alpha^2 Lambda reaches the noise-free scale alpha^2 +
  sigma^2; for VP alpha^2 Lambda = 1, i.e. tau_S = 1/2 log Lambda. On the schedule-free axis
  snr = alpha^2 / sigma^2 this reads snr (Lambda - 1) = 1.
- Collapse (memorisation) for n samples: the excess entropy of the noised Gaussian data,
  1/2 sum_i log(1 + lam_i snr), reaches log n. For two Gaussians with component variance s^2 in d
  dimensions (all d eigenvalues s^2) this gives tau_C = 1/2 log(1 + s^2 / (n^{2/d} - 1)).
- Cloning probability: two trajectories cloned at tau end in the same class of the mixture
  1/2 N(+m, s^2) + 1/2 N(-m, s^2) with probability
  phi(tau) = 1/2 int (G_+^2 + G_-^2) / (G_+ + G_-) dy,  G_+- = N(y; +-|m| e^{-tau}, Gamma),
  Gamma = 1 - e^{-2 tau} + s^2 e^{-2 tau}.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, optimize, special

from .checks import check_int, check_positive, finite_array


def cloning_probability_at(mean: float, gamma: float) -> float:
    """phi for noised components N(+-mean, gamma), by quadrature.

    Since the integrand is even in y, phi = int G_+ G_+ / (G_+ + G_-) dy = E_{y ~ N(mean, gamma)}
    [expit(2 mean y / gamma)], the probability that a point of the + class is still assigned to it.
    """
    mean = abs(float(finite_array("mean", mean, ndim=0)))
    gamma = check_positive("gamma", gamma)
    sd = math.sqrt(gamma)

    def integrand(z: float) -> float:  # z = (y - mean) / sd, a standard normal variable
        return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * special.expit(2 * mean * (mean + sd * z) / gamma)

    return float(integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)[0])


def cloning_probability(tau: float, m: float | ArrayLike = 1.0, s: float = 1.0) -> float:
    """phi(tau) for the mixture 1/2 N(+m, s^2 I) + 1/2 N(-m, s^2 I) (|m| if m is a vector)."""
    tau = check_positive("tau", tau, strict=False)
    m_norm = float(np.linalg.norm(finite_array("m", m)))
    s = check_positive("s", s, strict=False)
    decay = math.exp(-2.0 * tau)
    return cloning_probability_at(m_norm * math.exp(-tau), -math.expm1(-2.0 * tau) + s * s * decay)


def speciation_logsnr(Lambda: float) -> float:
    """logsnr at which alpha^2 Lambda = alpha^2 + sigma^2, i.e. snr = 1 / (Lambda - 1); needs Lambda > 1."""
    Lambda = check_positive("Lambda", Lambda)
    if Lambda <= 1.0:
        raise ValueError(f"Lambda: speciation needs Lambda > 1 (alpha^2 Lambda never exceeds alpha^2 + sigma^2), "
                         f"got {Lambda:.6g}")
    return -math.log(Lambda - 1.0)


def speciation_tau(Lambda: float) -> float:
    """VP speciation time tau_S = 1/2 log Lambda (alpha^2 Lambda = 1), via the logsnr of the condition."""
    return vp_tau_of_logsnr(speciation_logsnr(Lambda))


def collapse_tau_two_gaussians(n: int, d: int, s: float = 1.0) -> float:
    """Collapse time of the two-Gaussian mixture with n samples in d dimensions:
    tau_C = 1/2 log(1 + s^2 / (n^{2/d} - 1))."""
    n, d = check_int("n", n, 2), check_int("d", d, 1)
    s = check_positive("s", s)
    return 0.5 * math.log1p(s * s / math.expm1(2.0 * math.log(n) / d))


def collapse_logsnr(lam: ArrayLike, n: int) -> float:
    """The logsnr where 1/2 sum_i log(1 + lam_i snr) = log n (Gaussian excess-entropy estimate);
    needs at least one positive eigenvalue. The left side grows with snr, so the root is unique."""
    lam = finite_array("lam", lam).ravel()
    n = check_int("n", n, 2)
    if (lam < 0).any():
        raise ValueError(f"lam: eigenvalues must be >= 0, got {lam.min():.3g}")
    if not (lam > 0).any():
        raise ValueError("lam: all eigenvalues are zero; the excess entropy never grows")
    log_n = math.log(n)

    def excess(logsnr: float) -> float:
        return 0.5 * float(np.log1p(lam * math.exp(logsnr)).sum()) - log_n

    lo, hi = -1.0, 1.0
    while excess(lo) > 0:
        lo *= 2.0
    while excess(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))


def vp_tau_of_logsnr(logsnr: float) -> float:
    """tau = -log alpha with alpha^2 = sigmoid(logsnr) (any VP schedule)."""
    return 0.5 * float(np.logaddexp(0.0, -logsnr))
