"""Fixed points: every 1-D root, stability, Newton versus fixed-point iteration, branch following."""
import math

import numpy as np
import pytest

from symbreak.theory import (
    EmpiricalData,
    GaussianMixture,
    SymmetricDeltas,
    VPLinear,
    drift,
    drift_and_jacobian,
    fixed_point_iteration,
    fixed_points_1d,
    follow_branch,
    jacobian,
    newton_fixed_point,
)

SCHED = VPLinear()
DELTAS = SymmetricDeltas(1.0)
ALPHA_C = math.sqrt(math.sqrt(2) - 1)


def t_at(alpha):
    return float(SCHED.t_of_alpha(alpha))


def test_two_deltas_at_alpha_08():
    fp = fixed_points_1d(DELTAS, t_at(0.8), SCHED)
    assert fp.window_proven
    assert len(fp.points) == 3
    np.testing.assert_allclose(fp.stable, [-0.94703858, 0.94703858], rtol=1e-6)
    assert fp.points[1].x == pytest.approx(0.0, abs=1e-12) and not fp.points[1].stable
    # each root solves (1 + alpha^2) x = 2 alpha tanh(alpha x / sigma^2) (Raya & Ambrogioni 2023, two deltas)
    for p in fp.points:
        assert (1 + 0.64) * p.x == pytest.approx(2 * 0.8 * math.tanh(0.8 * p.x / 0.36), abs=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5, 0.6, 0.64])
def test_only_the_centre_below_alpha_c(alpha):
    fp = fixed_points_1d(DELTAS, t_at(alpha), SCHED)
    assert fp.x == pytest.approx([0.0], abs=1e-12)
    assert fp.points[0].stable


def test_three_fixed_points_just_above_alpha_c():
    alpha = ALPHA_C * 1.001
    fp = fixed_points_1d(DELTAS, t_at(alpha), SCHED)
    assert len(fp.points) == 3 and [p.stable for p in fp.points] == [True, False, True]
    assert 0 < fp.points[2].x < 0.1


def test_eigenvalue_is_the_drift_slope():
    t = t_at(0.8)
    for p in fixed_points_1d(DELTAS, t, SCHED).points:
        h = 1e-6
        slope = (drift(DELTAS, [[p.x + h]], t, SCHED)[0, 0] - drift(DELTAS, [[p.x - h]], t, SCHED)[0, 0]) / (2 * h)
        assert p.eigenvalues[0] == pytest.approx(slope, rel=1e-6)
        assert p.eigenvalues_over_beta[0] == pytest.approx(slope / SCHED.beta(t), rel=1e-6)


def test_ode_fixed_points_solve_their_equation():
    """Probability-flow ODE (VP): b = 0 <=> alpha x = y_hat(x) = tanh(alpha x / sigma^2)."""
    t = t_at(0.5)
    fp = fixed_points_1d(DELTAS, t, SCHED, dynamics="ode")
    assert len(fp.points) == 3
    for p in fp.points:
        assert 0.5 * p.x == pytest.approx(math.tanh(0.5 * p.x / 0.75), abs=1e-12)


def test_gmm_roots_match_newton_from_many_starts():
    """A second algorithm: Newton from 161 starts across a wide interval finds the same set of roots."""
    gmm = GaussianMixture([0.3, 0.7], [[-1.0], [1.5]], [[[0.3 ** 2]], [[0.5 ** 2]]])
    t = t_at(0.85)
    found = fixed_points_1d(gmm, t, SCHED)
    roots = set()
    for x0 in np.linspace(-4, 4, 161):
        res = newton_fixed_point(gmm, [x0], t, SCHED)
        if res.converged:
            roots.add(round(float(res.x[0]), 7))
    assert len(found.points) == len(roots) >= 3
    np.testing.assert_allclose(found.x, sorted(roots), atol=1e-6)


def test_drift_and_jacobian_match_dynamics():
    gmm = GaussianMixture([0.4, 0.6], [[-1.0, 0.2], [1.0, 0.5]], [np.eye(2) * 0.1, np.diag([0.3, 0.05])])
    x = np.array([0.3, -0.2])
    for dynamics in ("sde", "ode"):
        b, jac = drift_and_jacobian(gmm, x, 0.3, SCHED, dynamics)
        np.testing.assert_allclose(b, drift(gmm, x, 0.3, SCHED, dynamics)[0], rtol=1e-12)
        np.testing.assert_allclose(jac, jacobian(gmm, x, 0.3, SCHED, dynamics)[0], rtol=1e-12)


def test_newton_keeps_the_unstable_centre_where_fixed_point_iteration_leaves_it():
    t, x0 = t_at(0.8), [1e-3]
    newton = newton_fixed_point(DELTAS, x0, t, SCHED)
    assert newton.converged and newton.x[0] == pytest.approx(0.0, abs=1e-12) and not newton.stable
    iterated = fixed_point_iteration(DELTAS, x0, t, SCHED)
    assert iterated[0] == pytest.approx(0.94703858, rel=1e-6)


def test_branch_follows_the_unstable_centre_with_the_exact_margin():
    branch = follow_branch(DELTAS, SCHED)
    assert branch.status == "complete" and (branch.segment == 0).all()
    assert np.abs(branch.x).max() < 1e-12
    alpha2, sigma2 = branch.alpha ** 2, SCHED.sigma2(branch.t)
    exact = 0.5 - 1 / sigma2 + alpha2 / sigma2 ** 2          # J / beta at x = 0
    np.testing.assert_allclose(branch.margin, exact, rtol=1e-9, atol=1e-12)
    assert branch.margin[0] < 0 < branch.margin[-1]
    df = branch.to_pandas()
    assert list(df.columns[:5]) == ["t", "alpha", "sigma", "tau", "logsnr"] and len(df) == len(branch.t)


def test_branch_off_centre_tracks_the_stable_point_and_fixed_point_equation():
    """Unequal weights: the branch leaves the centre; every point solves x = 2 alpha/(1+alpha^2) y_hat(x)."""
    model = EmpiricalData([[1.0], [-1.0]], weights=[0.45, 0.55])
    branch = follow_branch(model, SCHED, t_end=0.05)
    for t, x in zip(branch.t[::10], branch.x[::10]):
        alpha = SCHED.alpha(t)
        y_hat = model.posterior_mean(x, t, SCHED)[0]
        np.testing.assert_allclose(x, 2 * alpha / (1 + alpha ** 2) * y_hat, atol=1e-10)
    assert (branch.margin < 0).all() and branch.x[-1, 0] < -0.9


def test_fold_is_a_saddle_node_and_the_branch_restarts_on_an_attractor():
    """Eight points in 5-D: the followed branch ends in a fold. Just before it Newton finds two fixed
    points near the fold point, one stable and one saddle (margins of opposite sign), past it none
    nearby; the continuation restarts on a stable point and every recorded point solves b = 0."""
    model = EmpiricalData(np.random.default_rng(14).standard_normal((8, 5)))
    branch = follow_branch(model, SCHED)
    assert branch.status == "complete" and len(branch.folds) == 1
    j = branch.folds[0]
    x_f, v, s_f = branch.x[j], branch.eigenvector[j], branch.logsnr[j]
    assert -1e-3 < branch.margin[j] < 0 and branch.margin[j + 1] < 0 and branch.segment[j + 1] == 1
    before = float(SCHED.t_of_logsnr(s_f - 1e-3))
    pair = [newton_fixed_point(model, x_f + sign * 0.05 * v, before, SCHED) for sign in (1, -1)]
    margins = sorted(p.eigenvalues_over_beta[0] for p in pair)
    assert all(p.converged for p in pair) and margins[0] < -1e-3 and margins[1] > 1e-3
    assert all(np.linalg.norm(p.x - x_f) < 0.05 for p in pair)
    past = newton_fixed_point(model, x_f, float(SCHED.t_of_logsnr(s_f + 1e-3)), SCHED)
    assert not past.converged or np.linalg.norm(past.x - x_f) > 0.1
    for k in range(0, len(branch.t), 20):
        b, _ = drift_and_jacobian(model, branch.x[k], branch.t[k], SCHED)
        assert np.linalg.norm(b) / SCHED.beta(branch.t[k]) < 1e-7 * (1 + 1 / SCHED.sigma2(branch.t[k]))


@pytest.mark.parametrize("kwargs, name", [
    ({"t_start": 1.5}, "t_start"), ({"t_end": 0.0}, "t_end"), ({"t_start": 0.2, "t_end": 0.3}, "t_end"),
    ({"x0": [0.0, 1.0]}, "x0"), ({"k": 0}, "k"),
])
def test_follow_branch_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        follow_branch(DELTAS, SCHED, **kwargs)


def test_fixed_points_1d_rejects_multidimensional_models():
    with pytest.raises(ValueError, match="^model:"):
        fixed_points_1d(SymmetricDeltas(1.0, direction=[1.0, 0.0]), 0.3, SCHED)
