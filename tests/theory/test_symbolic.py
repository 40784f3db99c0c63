"""Symbolic derivations cross-checked against the numerics."""
import math

import pytest
import sympy as sp

from symbreak.theory import SymmetricDeltas, VPLinear, critical_times, gaussian_critical_times, potential
from symbreak.theory import symbolic as sym

SCHED = VPLinear()


@pytest.mark.parametrize("alpha, expected", [(0.1, 0.4999), (0.5, 0.3889), (0.6, 0.1836), (0.7, -0.4231),
                                             (0.8, -2.6605), (0.9, -17.6745)])
def test_curvature_values_symbolic_and_numeric(alpha, expected):
    curvature = sym.two_delta_curvature()
    assert round(curvature.evaluate(alpha=alpha), 4) == expected
    # numeric: second difference of the potential u(x, t) of dynamics.py at x = 0, divided by beta
    t = float(SCHED.t_of_alpha(alpha))
    h = 1e-4
    u = potential(SymmetricDeltas(1.0), [[-h], [0.0], [h]], t, SCHED)
    numeric = (u[0] - 2 * u[1] + u[2]) / h ** 2 / SCHED.beta(t)
    assert numeric == pytest.approx(curvature.evaluate(alpha=alpha), rel=1e-6, abs=1e-6)


def test_curvature_equals_the_design_formula():
    a = sym.alpha
    design = -(sp.Rational(1, 2) + (2 * a ** 2 - 1) / (a ** 2 - 1) ** 2)
    assert sp.simplify(sym.two_delta_curvature().expr - design) == 0


def test_potential_matches_numeric_potential():
    u = sym.two_delta_potential()
    t = 0.3
    alpha, beta = float(SCHED.alpha(t)), float(SCHED.beta(t))
    for x in (-0.7, 0.0, 1.3):
        numeric = potential(SymmetricDeltas(1.0), [[x]], t, SCHED)[0]
        assert u.evaluate(x=x, alpha=alpha, beta=beta) == pytest.approx(numeric, rel=1e-12)


def test_alpha_c():
    ac = sym.two_delta_alpha_c()
    assert sp.simplify(ac.expr - sp.sqrt(sp.sqrt(2) - 1)) == 0
    assert ac.value == pytest.approx(0.6435942529, rel=1e-10)
    assert "sqrt" in ac.latex


def test_t_c_closed_form_matches_branch_following():
    tc = sym.vp_linear_t_c()
    assert tc.value == pytest.approx(0.2926417, rel=1e-6)
    assert tc.value == pytest.approx(critical_times(SymmetricDeltas(1.0), SCHED).t_c, rel=1e-9)
    other = sym.vp_linear_t_c(0.5, 10.0)
    sched = VPLinear(beta_min=0.5, beta_max=10.0)
    assert float(sched.alpha(other.value)) == pytest.approx(0.6435942529, rel=1e-9)
    assert sym.vp_linear_t_c_expr().expr.free_symbols == {sym.beta_min, sym.beta_max}


def test_centre_hessian_matches_numeric_hessian():
    h = sym.centre_hessian()
    t, m = 0.25, 1.7
    alpha = float(SCHED.alpha(t))
    numeric = SymmetricDeltas(m).hessian([[0.0]], t, SCHED)[0, 0, 0]
    assert h.evaluate(alpha=alpha, Lambda=m * m) == pytest.approx(numeric, rel=1e-12)


def test_equal_norm_condition_is_derived():
    lam = sym.Lambda
    sde = sym.centre_alpha_c2("sde")
    assert sp.simplify(sde.expr - (sp.sqrt(1 + lam ** 2) - lam)) == 0
    for Lambda in (0.4, 1.0, 3.0):
        ct = gaussian_critical_times(Lambda, SCHED)
        assert sde.evaluate(Lambda=Lambda) == pytest.approx(ct.alpha_c ** 2, rel=1e-9)
    assert sde.evaluate(Lambda=1.0) == pytest.approx(sym.two_delta_alpha_c().value ** 2, rel=1e-12)


def test_ode_condition_is_derived():
    ode = sym.centre_alpha_c2("ode")
    assert sp.simplify(ode.expr - (1 - sym.Lambda)) == 0
    margin = sym.centre_margin("ode")
    # margin (1 + hess)/2 vanishes where sigma^2 = Lambda
    assert sp.simplify(margin.expr.subs(sym.alpha, sp.sqrt(1 - sym.Lambda))) == 0
    ct = gaussian_critical_times(0.3, SCHED, dynamics="ode")
    assert ode.evaluate(Lambda=0.3) == pytest.approx(ct.alpha_c ** 2, rel=1e-9)


def test_evaluate_names_missing_symbols():
    with pytest.raises(ValueError, match="^values: missing alpha"):
        sym.two_delta_curvature().evaluate()
    assert sym.two_delta_curvature().value is None and math.isfinite(sym.two_delta_alpha_c().value)
