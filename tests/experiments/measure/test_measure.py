"""The torch measurements (drift, Jacobian, Lanczos, Newton branch) against independent answers:
closed forms, the numpy theory (a second implementation), finite differences and numpy's eigvalsh."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from symbreak.experiments import measure as M
from symbreak.experiments.measure.arc import arc_potential
from symbreak.experiments.models.denoisers import ExactDenoiser, NetworkDenoiser
from symbreak.experiments.models.networks import MLPConfig, build_network
from symbreak.experiments.models.oracle import TorchExactDenoiser
from symbreak.theory import Gaussian, GaussianMixture, SymmetricDeltas, VPLinear, critical_times
from symbreak.theory.dynamics import drift, normalised_jacobian_eigenvalues
from symbreak.theory.fixedpoints import follow_branch

SCHEDULE = VPLinear()
# an asymmetric, centred 2-D mixture: the central branch moves with t (an imperfect pitchfork)
ASYM = GaussianMixture([0.65, 0.35], [[0.7, 0.1], [-1.3, -0.1857142857142857]],
                       [np.diag([0.01, 0.02]), np.diag([0.015, 0.01])])


def random_network(dim: int, seed: int = 0, dtype=torch.float64) -> NetworkDenoiser:
    """A random eps-MLP whose output layer is not zero (so its Jacobian is not symmetric)."""
    torch.manual_seed(seed)
    net = build_network(MLPConfig(dim=dim, width=32, depth=2)).to(dtype)
    torch.nn.init.normal_(net.out.weight, std=0.3)
    return NetworkDenoiser(net.eval().requires_grad_(False), SCHEDULE, (dim,))


def test_torch_exact_denoiser_matches_numpy_posterior_mean():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    models = [SymmetricDeltas(1.3, direction=[1.0, 2.0, -1.0]), ASYM, Gaussian([0.1, -0.2, 0.3], a @ a.T)]
    for model in models:
        x = rng.standard_normal((5, model.dim))
        t = np.array([0.05, 0.2, 0.3, 0.6, 0.9])
        got = TorchExactDenoiser(model, SCHEDULE).denoise(torch.as_tensor(x), torch.as_tensor(t)).numpy()
        want = np.stack([model.posterior_mean(x[i:i + 1], t[i], SCHEDULE)[0] for i in range(5)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dynamics", ["sde", "ode"])
def test_drift_and_spectrum_match_theory(dynamics):
    x = np.array([[0.1, 0.2], [0.3, -0.4], [-0.8, 0.05]])
    den = ExactDenoiser(ASYM, SCHEDULE)
    np.testing.assert_allclose(M.drift(den, x, 0.4, dynamics).numpy(), drift(ASYM, x, 0.4, SCHEDULE, dynamics),
                               rtol=1e-12, atol=1e-12)
    spec = M.jacobian_spectrum(den, x, 0.4, dynamics=dynamics, k=2)
    want = normalised_jacobian_eigenvalues(ASYM, x, 0.4, SCHEDULE, dynamics)[:, ::-1]
    np.testing.assert_allclose(spec.eigenvalues, want, rtol=1e-11, atol=1e-12)
    assert spec.method == "dense" and np.all(spec.nonsymmetry < 1e-12)


def test_jacrev_jacobian_matches_central_differences_on_a_network():
    den = random_network(6)
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jac = M.drift_jacobian(den, x, 0.3).numpy()
    h = 1e-6
    fd = np.stack([(M.drift(den, x + h * e, 0.3) - M.drift(den, x - h * e, 0.3)).numpy() / (2 * h)
                   for e in torch.eye(6, dtype=torch.float64)], axis=-1)
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-7 * np.abs(jac).max())
    # the network's J is not symmetric, and the spectrum reports by how much
    spec = M.jacobian_spectrum(den, x, 0.3, k=6)
    want = np.linalg.norm(jac - jac.transpose(0, 2, 1), axis=(1, 2)) / (2 * np.linalg.norm(jac, axis=(1, 2)))
    np.testing.assert_allclose(spec.nonsymmetry, want, rtol=1e-10)
    assert want.min() > 0.05
    beta = SCHEDULE.beta(0.3)
    sym_eigs = np.linalg.eigvalsh(0.5 * (jac + jac.transpose(0, 2, 1)))[:, ::-1] / beta
    np.testing.assert_allclose(spec.eigenvalues, sym_eigs, rtol=1e-10, atol=1e-10)


def test_lanczos_on_an_explicit_symmetric_matrix():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((80, 80))
    a = a + a.T
    want = np.linalg.eigvalsh(a)[::-1][:4]
    mat = torch.as_tensor(a)
    res = M.lanczos(lambda v: mat @ v, 80, k=4, tol=1e-12)
    np.testing.assert_allclose(res.eigenvalues, want, rtol=1e-10)
    assert res.n_iter <= 80


def test_lanczos_route_matches_dense_and_theory():
    rng = np.random.default_rng(4)
    b = rng.standard_normal((30, 30))
    model = Gaussian(np.zeros(30), b @ b.T / 30)
    x = rng.standard_normal((2, 30))
    lz = M.jacobian_spectrum(ExactDenoiser(model, SCHEDULE), x, 0.35, k=3, method="lanczos", n_probes=4)
    want = normalised_jacobian_eigenvalues(model, x, 0.35, SCHEDULE)[:, ::-1][:, :3]
    np.testing.assert_allclose(lz.eigenvalues, want, rtol=1e-9, atol=1e-10)
    assert lz.method == "lanczos" and np.all(lz.nonsymmetry < 1e-12)
    # non-symmetric network: Lanczos on (J + J^T)/2 equals the dense symmetric-part spectrum
    den = random_network(40, seed=2)
    x = rng.standard_normal((1, 40))
    dense = M.jacobian_spectrum(den, x, 0.3, k=2, method="dense")
    lz = M.jacobian_spectrum(den, x, 0.3, k=2, method="lanczos", n_probes=16)
    np.testing.assert_allclose(lz.eigenvalues, dense.eigenvalues, rtol=1e-9)
    # the probe estimate of ||J - J^T|| / (2 ||J||) is statistical (16 Rademacher probes)
    assert abs(lz.nonsymmetry[0] - dense.nonsymmetry[0]) < 0.3 * dense.nonsymmetry[0]


def test_two_deltas_branch_matches_closed_form():
    """Centre of +-1: J/beta = 1/2 + (2 alpha^2 - 1)/(1 - alpha^2)^2, t_c at alpha_c^2 = sqrt(2) - 1."""
    br = M.follow_central_branch(ExactDenoiser(SymmetricDeltas(1.0), SCHEDULE), n_points=31,
                                 t_range=(0.05, 1.0))
    a2 = SCHEDULE.alpha(br.t) ** 2
    np.testing.assert_allclose(br.margin, 0.5 + (2 * a2 - 1) / (1 - a2) ** 2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(br.x, 0.0, atol=1e-15)
    assert br.kind == "crossing"
    assert br.critical.alpha == pytest.approx(math.sqrt(math.sqrt(2) - 1), abs=1e-9)
    assert br.t_c == pytest.approx(0.2926417, abs=5e-8)
    table = br.table()
    assert list(table.columns[:3]) == ["t", "logsnr", "margin"] and len(table) == len(br.t)
    # the engine's adaptive points, from t_max to t_min, none coarser than 1/20 of the range
    assert br.t[0] == pytest.approx(1.0) and br.t[-1] == pytest.approx(0.05) and np.all(np.diff(br.logsnr) > 0)
    assert np.diff(br.logsnr).max() <= (br.logsnr[-1] - br.logsnr[0]) / 20 * (1 + 1e-12)


def test_moving_branch_matches_theory_continuation():
    """The torch branch (torch.func Jacobian, Newton in torch) against theory.fixedpoints' numpy one."""
    br = M.follow_central_branch(ExactDenoiser(ASYM, SCHEDULE), n_points=25, t_range=(0.05, 1.0), k=2)
    theory = follow_branch(ASYM, SCHEDULE, "sde", t_start=1.0, t_end=0.05, k=2)
    assert theory.status == "complete"
    inside = br.logsnr <= theory.logsnr[-1]
    for ell, x, eig in zip(br.logsnr[inside], br.x[inside], br.eigenvalues[inside]):
        point = theory.point_at(float(ell))
        np.testing.assert_allclose(x, point.x, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(eig, point.eigenvalues[:2], rtol=1e-9, atol=1e-10)
    assert np.abs(br.x).max() > 0.1  # the branch really moves
    # events: it never crosses; the closest approach agrees with theory.critical on theory's branch
    ct = critical_times(ASYM, SCHEDULE, "sde", k=2, t_end=0.05)
    assert br.kind == ct.kind == "closest-approach"
    assert br.margin_c == pytest.approx(ct.margin_c, abs=1e-10)
    assert br.logsnr_c == pytest.approx(ct.logsnr_c, abs=1e-4)  # a flat maximum: location to ~sqrt(eps)


def test_symmetric_mixture_crossing_matches_theory_critical_time():
    """gmm-2d (4 modes on the unit circle): a two-fold degenerate crossing, t_c to 1e-8."""
    model = GaussianMixture([0.25] * 4, [[1, 0], [0, 1], [-1, 0], [0, -1]], [0.01 * np.eye(2)] * 4)
    br = M.follow_central_branch(ExactDenoiser(model, SCHEDULE), n_points=15, t_range=(0.1, 1.0), k=2)
    ct = critical_times(model, SCHEDULE, "sde", k=2)
    assert br.kind == ct.kind == "crossing"
    assert br.t_c == pytest.approx(ct.t_c, rel=1e-8)
    # by symmetry the centre stays at 0, where every mode has responsibility 1/4 and the component
    # posteriors have mean m_k sigma^2/(alpha^2 s^2 + sigma^2) and variance s^2 sigma^2/(alpha^2 s^2 + sigma^2)
    # (s^2 = 0.01): Cov[y | x_t = 0] = (r^2/2 + s^2 r) I with r = sigma^2/(alpha^2 s^2 + sigma^2), and
    # the margin is 1/2 - 1/sigma^2 + alpha^2 Cov / sigma^4
    def margin(a2: float) -> float:
        s2 = 1.0 - a2
        r = s2 / (0.01 * a2 + s2)
        return 0.5 - 1 / s2 + a2 * (0.5 * r * r + 0.01 * r) / s2**2

    assert br.critical.alpha ** 2 == pytest.approx(brentq(margin, 0.3, 0.9, xtol=1e-15), rel=1e-9)
    np.testing.assert_allclose(br.x, 0.0, atol=1e-14)


def test_newton_krylov_route_matches_dense_route():
    kw = dict(n_points=13, t_range=(0.1, 1.0))
    den = ExactDenoiser(SymmetricDeltas(1.0, direction=[1.0, 1.0]), SCHEDULE)
    dense = M.follow_central_branch(den, method="dense", **kw)
    krylov = M.follow_central_branch(den, method="lanczos", **kw)
    assert krylov.method == "lanczos"
    np.testing.assert_allclose(krylov.margin, dense.margin, rtol=1e-9)
    assert krylov.t_c == pytest.approx(dense.t_c, rel=1e-8)


def test_bad_input_raises_clear_errors():
    den = ExactDenoiser(SymmetricDeltas(1.0), SCHEDULE)
    with pytest.raises(ValueError, match="method"):
        M.jacobian_spectrum(den, np.zeros(1), 0.3, method="svd")
    with pytest.raises(ValueError, match="x: expected shape"):
        M.drift(den, np.zeros((2, 3)), 0.3)
    with pytest.raises(ValueError, match="dynamics"):
        M.drift(den, np.zeros(1), 0.3, dynamics="flow")
    with pytest.raises(ValueError, match="t: must lie"):
        M.drift(den, np.zeros(1), 1.5)
    with pytest.raises(ValueError, match="n_points"):
        M.follow_central_branch(den, n_points=2)
    with pytest.raises(ValueError, match="k: must lie"):
        M.jacobian_spectrum(den, np.zeros(1), 0.3, k=2)


# --------------------------------------------------------------------------------------------
# the potential along an arc (experiments/measure/arc.py)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t, dynamics", [(0.15, "sde"), (0.45, "sde"), (0.3, "ode")])
def test_arc_potential_matches_theory_potential(t, dynamics):
    """-int <b, x'(a)> da from the exact denoiser's drift equals theory.dynamics.potential differences
    (which include log p_t), aligned at a = 0."""
    rng = np.random.default_rng(5)
    x1, x2 = ASYM.sample(2, rng)
    res = arc_potential(ExactDenoiser(ASYM, SCHEDULE), x1, x2, t, dynamics=dynamics, model=ASYM)
    assert res.u[0] == 0.0 and res.u_exact[0] == 0.0
    np.testing.assert_allclose(res.u, res.u_exact, rtol=0, atol=1e-6 * max(1.0, np.abs(res.u_exact).max()))
    assert np.ptp(res.u_exact) > 0.1
    assert list(res.table().columns) == ["a", "u", "grad_u_tangent", "u_exact"]


def test_arc_trapezoid_error_is_second_order():
    rng = np.random.default_rng(6)
    x1, x2 = ASYM.sample(2, rng)
    errors = [np.abs(r.u - r.u_exact).max() for r in
              (arc_potential(ExactDenoiser(ASYM, SCHEDULE), x1, x2, 0.3, rule="trapezoid", model=ASYM, n_points=n)
               for n in (101, 201))]
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)


def test_arc_bad_input():
    den = ExactDenoiser(ASYM, SCHEDULE)
    with pytest.raises(ValueError, match="rule"):
        arc_potential(den, [0.0, 1.0], [1.0, 0.0], 0.3, rule="midpoint")
    with pytest.raises(ValueError, match="x1: expected one sample"):
        arc_potential(den, np.zeros((2, 2)), [1.0, 0.0], 0.3)
    with pytest.raises(ValueError, match="n_points"):
        arc_potential(den, [0.0, 1.0], [1.0, 0.0], 0.3, n_points=2)


def test_model_error_band_of_the_exact_denoiser_is_the_allowed_linear_phase_deviation():
    """Exact two deltas: the margin's deviation from 1/2 - 1/sigma^2 is g E|y|^2 = alpha^2 / sigma^4, at
    most LINEAR_PHASE where the band is read; without E|y - mu|^2 only the top grid point counts."""
    from symbreak.experiments.measure.branch import LINEAR_PHASE

    den = ExactDenoiser(SymmetricDeltas(1.0), SCHEDULE)
    br = M.follow_central_branch(den, n_points=21, t_range=(0.05, 1.0), second_moment=1.0)
    a2 = SCHEDULE.alpha(br.t) ** 2
    dev = a2 / (1 - a2) ** 2
    assert br.model_error_band == pytest.approx(dev[dev <= LINEAR_PHASE].max(), rel=1e-6)
    top = M.follow_central_branch(den, n_points=21, t_range=(0.05, 1.0))
    assert top.model_error_band == pytest.approx(dev[0], rel=1e-6) and top.t_c == pytest.approx(br.t_c)
