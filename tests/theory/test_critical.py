"""Critical times: the two-delta numbers, closed forms for equal-norm and Gaussian data, successive
bifurcations against an independent scalar solve, imperfect pitchforks, and absent quantities."""
import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit

from symbreak.analysis.io import to_jsonable
from symbreak.theory import (
    VE,
    CriticalTime,
    DiscreteDDPM,
    EmpiricalData,
    Gaussian,
    SymmetricDeltas,
    VPCosine,
    VPLinear,
    critical_times,
    gaussian_critical_times,
    newton_fixed_point,
)

SCHED = VPLinear()
ALPHA_C = 0.6435942529


@pytest.fixture(scope="module")
def two_deltas():
    return critical_times(SymmetricDeltas(1.0), SCHED)


def equal_norm_alpha_c2(Lambda):
    return math.sqrt(1 + Lambda ** 2) - Lambda


def cross_polytope(d, Lambda):
    """+-a e_i in d dims, a^2 = d Lambda: centred, equal norms, covariance Lambda I."""
    a = math.sqrt(d * Lambda)
    return EmpiricalData(np.concatenate([a * np.eye(d), -a * np.eye(d)]))


def test_two_deltas_vp_linear(two_deltas):
    ct = two_deltas
    assert ct.kind == "crossing" and ct.margin_c == 0.0
    assert ct.alpha_c == pytest.approx(ALPHA_C, rel=1e-9)
    assert ct.t_c == pytest.approx(0.2926417, rel=1e-6)
    assert ct.tau_c == pytest.approx(-math.log(ALPHA_C), rel=1e-9)
    assert ct.logsnr_c == pytest.approx(math.log((math.sqrt(2) - 1) / (2 - math.sqrt(2))), rel=1e-9)
    assert ct.step_c is None
    assert ct.hessian.alpha ** 2 == pytest.approx(0.5, rel=1e-9)      # t_h: alpha^2 = 1/2
    assert ct.lambda_max == pytest.approx(1.0)
    assert ct.speciation is None and "Lambda" in ct.absent["speciation"]
    assert ct.collapse is None and "n" in ct.absent["collapse"]
    assert abs(ct.soft_direction[0]) == pytest.approx(1.0)


def test_two_deltas_discrete_ddpm_step_292():
    ct = critical_times(SymmetricDeltas(1.0), DiscreteDDPM())
    assert ct.step_c == 292 and ct.kind == "crossing"
    assert ct.alpha_c == pytest.approx(ALPHA_C, rel=1e-9)


def test_two_deltas_cosine_has_the_same_alpha_c():
    ct = critical_times(SymmetricDeltas(1.0), VPCosine())
    assert ct.alpha_c == pytest.approx(ALPHA_C, rel=1e-9)
    assert VPCosine().alpha(ct.t_c) == pytest.approx(ALPHA_C, rel=1e-9)


def test_two_deltas_ode_never_stable():
    """VP ODE with Lambda = 1: the centre's margin alpha^4 / (2 sigma^4) > 0 at every t."""
    ct = critical_times(SymmetricDeltas(1.0), SCHED, "ode")
    assert ct.kind == "none" and ct.critical is None and "already unstable" in ct.absent["critical"]


@pytest.mark.parametrize("d, Lambda", [(3, 0.5), (4, 2.0)])
def test_cross_polytope_branch_matches_equal_norm_formula(d, Lambda):
    ct = critical_times(cross_polytope(d, Lambda), SCHED)
    assert ct.kind == "crossing"
    assert ct.alpha_c ** 2 == pytest.approx(equal_norm_alpha_c2(Lambda), rel=1e-8)
    assert ct.events[0].multiplicity == d
    assert ct.t_c == pytest.approx(gaussian_critical_times(Lambda, SCHED).t_c, rel=1e-8)


def test_successive_bifurcations_match_an_independent_scalar_solve():
    """+-a e_1, +-b e_2: at x = 0 the posterior weights the pairs by exp(-alpha^2 |y|^2 / 2 sigma^2), so
    the margins are 1/2 - 1/sigma^2 + alpha^2 c^2 P_c / sigma^4 (c = a, b); their zeros are found here
    with brentq on the logsnr axis and compared with every crossing the branch reports."""
    a, b = 2.0, 1.2
    ct = critical_times(EmpiricalData([[a, 0], [-a, 0], [0, b], [0, -b]]), SCHED)

    def margin(logsnr, c):
        alpha2 = 1 / (1 + math.exp(-logsnr))
        sigma2 = 1 - alpha2
        other = b if c == a else a
        weight = expit(alpha2 * (other ** 2 - c ** 2) / (2 * sigma2))      # P_c, the pair's posterior weight
        return 0.5 - 1 / sigma2 + alpha2 * c * c * weight / sigma2 ** 2

    grid = np.linspace(*SCHED.logsnr_range(), 4001)
    expected = []
    for c in (a, b):
        v = np.array([margin(s, c) for s in grid])
        for j in np.flatnonzero(np.sign(v[1:]) != np.sign(v[:-1])):
            expected.append((brentq(margin, grid[j], grid[j + 1], args=(c,), xtol=1e-14), 1 if v[j] < 0 else -1))
    got = [(e.time.logsnr, e.direction) for e in ct.events if e.kind == "crossing"]
    assert len(got) == len(expected) == 3
    for (s_got, d_got), (s_exp, d_exp) in zip(got, sorted(expected)):
        assert s_got == pytest.approx(s_exp, abs=1e-8) and d_got == d_exp
    assert ct.logsnr_c == pytest.approx(min(expected)[0], abs=1e-8)


def test_gaussian_data_exact_branch():
    """True Gaussian data N(0, lam): J/beta = 1/2 - 1/(alpha^2 lam + sigma^2), zero at alpha^2 = 1/(lam - 1)."""
    ct = critical_times(Gaussian([0.0], [[3.0]]), SCHED)
    assert ct.kind == "crossing" and ct.alpha_c ** 2 == pytest.approx(0.5, rel=1e-8)


def test_unequal_weights_give_a_closest_approach():
    model = EmpiricalData([[1.0], [-1.0]], weights=[0.49, 0.51])
    ct = critical_times(model, SCHED)
    assert ct.kind == "closest-approach" and -0.5 < ct.margin_c < 0
    assert [e.kind for e in ct.events] == ["closest-approach"]
    # the margin is a local maximum: re-solve the fixed point on both sides, independently of the branch
    x_c = ct.branch.point_at(ct.logsnr_c).x
    sides = []
    for ds in (-0.05, 0.05):
        t = float(SCHED.t_of_logsnr(ct.logsnr_c + ds))
        res = newton_fixed_point(model, x_c, t, SCHED)
        assert res.converged
        sides.append(res.eigenvalues_over_beta[0])
    assert max(sides) < ct.margin_c
    assert 0.0 < abs(x_c[0]) < 0.5


@pytest.mark.parametrize("Lambda", [0.3, 1.0, 2.8, 10.0])
def test_gaussian_approximation_sde(Lambda):
    ct = gaussian_critical_times(Lambda, SCHED)
    assert ct.kind == "crossing"
    assert ct.alpha_c ** 2 == pytest.approx(equal_norm_alpha_c2(Lambda), rel=1e-9)
    assert ct.hessian.alpha ** 2 * Lambda == pytest.approx(ct.hessian.sigma ** 2, rel=1e-9)   # snr Lambda = 1


def test_gaussian_approximation_ode():
    ct = gaussian_critical_times(0.5, SCHED, dynamics="ode")
    assert ct.critical.sigma ** 2 == pytest.approx(0.5, rel=1e-9)                      # sigma_c^2 = Lambda
    none = gaussian_critical_times(2.0, SCHED, dynamics="ode")
    assert none.critical is None and none.kind == "none" and "already unstable" in none.absent["critical"]


def test_gaussian_approximation_successive_crossings_over_the_spectrum():
    ct = gaussian_critical_times([2.0, 0.7, 0.1], SCHED)
    got = [e.time.alpha ** 2 for e in ct.events]
    np.testing.assert_allclose(got, [equal_norm_alpha_c2(lam) for lam in (2.0, 0.7, 0.1)], rtol=1e-9)


def test_speciation():
    ct = gaussian_critical_times(2.8, SCHED)
    assert ct.speciation.tau == pytest.approx(0.5 * math.log(2.8), rel=1e-9)
    assert ct.speciation.alpha ** 2 * 2.8 == pytest.approx(1.0, rel=1e-9)
    deltas = critical_times(SymmetricDeltas(2.0), SCHED)                       # Lambda = 4
    assert deltas.speciation.tau == pytest.approx(0.5 * math.log(4.0), rel=1e-9)
    barely = gaussian_critical_times(1.0 + 1e-9, SCHED)                       # needs alpha -> 1: out of range
    assert barely.speciation is None and "outside" in barely.absent["speciation"]


@pytest.mark.parametrize("d, tau_c", [(256, 1.299), (1024, 1.978), (4096, 2.667)])
def test_collapse_from_the_spectrum(d, tau_c):
    ct = gaussian_critical_times(np.ones(d), SCHED, n=20000)
    assert ct.collapse.tau == pytest.approx(tau_c, abs=5e-4)
    assert ct.collapse.tau == pytest.approx(0.5 * math.log(1 + 1 / (20000 ** (2 / d) - 1)), rel=1e-9)


def test_ve_schedule():
    """VE: alpha = 1 and -f/beta = 0, so the SDE margin is hess log p_t: zero where sigma^2 = Lambda."""
    ve = VE()
    ct = gaussian_critical_times(2.0, ve)
    assert ct.critical.sigma ** 2 == pytest.approx(2.0, rel=1e-9)
    assert ct.critical.alpha == 1.0 and ct.critical.tau == 0.0 and ct.critical.step is None
    exact = critical_times(SymmetricDeltas(math.sqrt(2.0)), ve)
    assert exact.critical.sigma ** 2 == pytest.approx(2.0, rel=1e-8)


def test_critical_time_axes_round_trip():
    d = DiscreteDDPM()
    ct = CriticalTime.from_t(0.4005, d)
    assert ct.step == 400 and ct.t == pytest.approx(0.4005, rel=1e-9)
    assert ct.logsnr == pytest.approx(float(d.logsnr(0.4005)), rel=1e-12)
    with pytest.raises(ValueError, match="^logsnr:"):
        CriticalTime.from_logsnr(100.0, SCHED)


def test_to_dict_is_json_and_table_has_every_row(two_deltas):
    out = json.loads(json.dumps(to_jsonable(two_deltas.to_dict()), allow_nan=False))
    for key in ("t_c", "alpha_c", "tau_c", "logsnr_c", "step_c", "kind", "t_s", "t_h", "schedule", "data"):
        assert key in out
    assert out["t_s"] is None and out["events"][0]["kind"] == "crossing"
    table = two_deltas.table()
    assert list(table["quantity"])[:4] == ["t_c (crossing)", "t_h (Hessian sign)", "t_s (speciation)", "collapse"]


@pytest.mark.parametrize("call, name", [
    (lambda: gaussian_critical_times(-1.0), "lam"),
    (lambda: gaussian_critical_times(float("nan")), "lam"),
    (lambda: gaussian_critical_times(1.0, n=1), "n"),
    (lambda: gaussian_critical_times(1.0, dynamics="sdf"), "dynamics"),
    (lambda: critical_times(SymmetricDeltas(1.0), SCHED, n=2.5), "n"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()


def test_model_error_band_hides_a_wiggle_of_a_measured_margin():
    """A rising margin with a wiggle of prominence 0.012 (a network's model error, as the two-deltas MLP
    shows near t = 0.88): a closest approach on its own, none once the band (0.0236) is known; a peak of
    prominence 0.4 still counts with that band."""
    from symbreak.theory.critical import BAND_FACTOR, Curves, closest_approaches

    s = np.linspace(-10.0, -2.0, 81)
    rise = -0.5 + 0.3 * expit(s + 4.0)
    wiggle = rise + 0.012 * np.exp(-((s + 7.0) / 0.2) ** 2)
    segment = np.zeros(s.size, dtype=int)

    def curves(v, band):
        return Curves(s, v[:, None], segment, lambda x: (np.array([np.interp(x, s, v)]), None, None),
                      np.full(s.size, 1e-15), band)

    assert len(closest_approaches(curves(wiggle, 0.0))[0]) == 1
    assert closest_approaches(curves(wiggle, 0.0236))[0] == []
    peak = -0.5 + 0.4 * np.exp(-((s + 5.0) / 0.5) ** 2)
    found = closest_approaches(curves(peak, 0.0236))[0]
    assert len(found) == 1 and found[0][2] > BAND_FACTOR * 0.0236
