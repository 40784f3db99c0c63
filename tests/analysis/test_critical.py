"""Critical times of datasets: exact empirical score against the Gaussian formula and the two-delta
closed form, imperfect pitchforks, constant data, subsets, the DDPM step axis."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from symbreak.analysis.critical import dataset_critical_times, ddpm_step, full_spectrum
from symbreak.analysis.datasets import load_dataset
from symbreak.analysis.spectrum import covariance_spectrum
from symbreak.theory import DiscreteDDPM, VPLinear
from symbreak.theory.symbolic import centre_alpha_c2

A = np.array([1.6, 1.0, 0.5])   # half-widths of the sign design: covariance diag(A^2), Lambda = 2.56


def from_array(tmp_path, x, name="data.npy"):
    path = tmp_path / name
    np.save(path, np.asarray(x, dtype=np.float64))
    return load_dataset(str(path), scale="none")


def sign_design(a):
    """All 2^d points (+-a_1, ..., +-a_d): centred, equal norms, covariance diag(a^2)."""
    return np.array([np.array(s) * a for s in itertools.product([-1.0, 1.0], repeat=len(a))])


def t_of_alpha2(alpha2: float, schedule=VPLinear()) -> float:
    return float(schedule.t_of_alpha(math.sqrt(alpha2)))


@pytest.fixture(scope="module")
def design_result(tmp_path_factory):
    data = from_array(tmp_path_factory.mktemp("design"), sign_design(A))
    return dataset_critical_times(data, VPLinear(), method="both")


def test_equal_norm_data_exact_t_c_is_the_gaussian_formula(design_result):
    r = design_result
    assert r.lambda_max == pytest.approx(2.56, rel=1e-12)
    expected = [t_of_alpha2(math.sqrt(1 + lam ** 2) - lam) for lam in A ** 2]   # alpha_c^2 = sqrt(1+L^2) - L
    assert r.kind == "crossing" and r.margin_c == 0.0
    assert r.t_c == pytest.approx(expected[0], rel=1e-6)
    assert r.t_c_gaussian == pytest.approx(expected[0], rel=1e-9)
    # every eigenvalue of the covariance gives a successive bifurcation at its own formula time
    ups = [e for e in r.exact.events if e.kind == "crossing" and e.direction > 0]
    assert [e.time.t for e in ups] == pytest.approx(expected, rel=1e-6)
    assert [e.index for e in ups] == [0, 1, 2]
    # the soft direction is the top covariance axis
    np.testing.assert_allclose(r.soft_direction, [1.0, 0.0, 0.0], atol=1e-8)
    assert r.soft_overlap == pytest.approx(1.0, abs=1e-12)


def test_equal_norm_data_ode_matches_the_sympy_root(tmp_path):
    a = 0.5 * A                                   # Lambda = 0.64 < 1: the ODE's sigma_c^2 = Lambda exists
    data = from_array(tmp_path, sign_design(a))
    r = dataset_critical_times(data, VPLinear(), method="both", dynamics="ode")
    alpha2 = centre_alpha_c2("ode").evaluate(Lambda=0.64)
    assert alpha2 == pytest.approx(0.36, rel=1e-12)
    assert r.t_c_gaussian == pytest.approx(t_of_alpha2(alpha2), rel=1e-9)
    assert r.t_c == pytest.approx(t_of_alpha2(alpha2), rel=1e-6) and r.kind == "crossing"


def test_two_deltas_is_the_core_value_on_every_axis(tmp_path):
    data = from_array(tmp_path, [[1.0], [-1.0]])
    r = dataset_critical_times(data, VPLinear(), method="both")
    d = r.to_dict()
    assert d["t_c"] == pytest.approx(0.2926417, rel=1e-6) and d["kind"] == "crossing"
    assert d["alpha_c"] == pytest.approx(0.6435942529, rel=1e-9)
    assert d["tau_c"] == pytest.approx(-math.log(0.6435942529), rel=1e-9)
    assert d["logsnr_c"] == pytest.approx(math.log((math.sqrt(2) - 1) / (2 - math.sqrt(2))), rel=1e-9)
    assert d["step_c"] is None and d["ddpm_step_c"] == 292            # continuous: the DDPM step of the same logsnr
    assert d["t_c_gaussian"] == pytest.approx(d["t_c"], rel=1e-6)
    ddpm = dataset_critical_times(data, DiscreteDDPM(), method="exact").to_dict()
    assert ddpm["step_c"] == 292 and ddpm["ddpm_step_c"] == 292


def test_unequal_mixture_is_a_closest_approach_with_negative_margin():
    data = load_dataset("gmm-asym", n=300, seed=0)
    r = dataset_critical_times(data, VPLinear(), method="both")
    assert r.kind == "closest-approach" and r.margin_c < 0
    assert r.t_c is not None and "critical" not in r.absent
    lam = np.linalg.eigvalsh(np.cov(data.x.T.astype(np.float64), bias=True)).max()
    assert r.lambda_max == pytest.approx(lam, rel=1e-10)
    assert r.t_c_gaussian == pytest.approx(t_of_alpha2(math.sqrt(1 + lam ** 2) - lam), rel=1e-9)
    assert any(e.kind == "closest-approach" and e.time.t == r.t_c for e in r.events)


def test_constant_data_has_no_critical_time_and_says_why(tmp_path):
    data = from_array(tmp_path, np.full((12, 3), 0.7))
    r = dataset_critical_times(data, VPLinear(), method="both")
    assert r.constant and r.kind == "none" and r.t_c is None and r.t_c_gaussian is None
    assert r.lambda_max < 1e-25 and r.soft_direction is None
    assert "constant data" in r.absent["critical"] and "12 samples" in r.absent["critical"]
    assert r.to_dict()["t_c"] is None
    assert dataset_critical_times(data, method="exact").constant
    assert not dataset_critical_times(from_array(tmp_path, [[0.7], [0.7 + 1e-9]], "b.npy"), method="gaussian").constant


def test_max_points_subset_is_stated_and_seeded(tmp_path):
    x = np.random.default_rng(5).normal(size=(60, 2)) * [1.5, 0.5]
    data = from_array(tmp_path, x)
    r1 = dataset_critical_times(data, method="exact", max_points=20, seed=1)
    r2 = dataset_critical_times(data, method="exact", max_points=20, seed=1)
    r3 = dataset_critical_times(data, method="exact", max_points=20, seed=2)
    assert r1.subset == {"max_points": 20, "seed": 1, "of": 60} and r1.n_exact == 20 and r1.n_points == 60
    assert r1.t_c == r2.t_c and r1.margin_c == r2.margin_c
    np.testing.assert_array_equal(r1.exact.branch.margin, r2.exact.branch.margin)
    assert r3.t_c != r1.t_c
    assert dataset_critical_times(data, method="exact", max_points=100).subset is None


def test_soft_direction_keeps_the_image_shape(tmp_path):
    a = np.array([1.5, 0.4, 0.3, 0.2])
    x = sign_design(a).reshape(-1, 2, 2)                              # 16 "images" of 2 x 2 pixels
    data = from_array(tmp_path, x)
    r = dataset_critical_times(data, method="exact")
    assert r.soft_direction.shape == (2, 2)
    np.testing.assert_allclose(r.soft_direction, [[1.0, 0.0], [0.0, 0.0]], atol=1e-8)


def test_gaussian_route_with_top_k_spreads_the_rest_of_the_trace(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)) * np.linspace(2.0, 0.1, 40)
    spec = covariance_spectrum(x, k=4, method="lanczos", tol=1e-10)
    lam = full_spectrum(spec)
    exact = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]
    assert lam.shape == (40,) and lam.sum() == pytest.approx(exact.sum(), rel=1e-10)
    np.testing.assert_allclose(lam[:4], exact[:4], rtol=1e-8)
    np.testing.assert_allclose(lam[4:], (exact.sum() - exact[:4].sum()) / 36, rtol=1e-8)


def test_ddpm_step_is_the_first_step_whose_logsnr_reaches_it():
    alpha_bar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    logsnr_k = np.log(alpha_bar / (1.0 - alpha_bar))                  # decreasing in k
    s = VPLinear().logsnr(np.array([0.05, 0.2926417, 0.5, 0.9]))
    expected = [int(np.argmax(logsnr_k <= v)) for v in s]
    assert ddpm_step(s, VPLinear()).tolist() == expected
    assert ddpm_step([50.0], VPLinear()).tolist() == [-1]             # beyond the DDPM schedule's range


def test_bad_method_and_k_name_the_argument(design_result):
    data = load_dataset("gmm-asym", n=50)
    with pytest.raises(ValueError, match="^method: "):
        dataset_critical_times(data, method="fast")
    with pytest.raises(ValueError, match="^k: "):
        dataset_critical_times(data, k=0)
