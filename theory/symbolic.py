"""Symbolic derivations (sympy) of the closed forms the numerics are checked against.

Everything starts from the noised density of two deltas at +-a, p_t(x) = 1/2 N(x; alpha a, sigma^2) +
1/2 N(x; -alpha a, sigma^2) with the VP relation sigma^2 = 1 - alpha^2, and the drift
b = -f x + c beta d/dx log p_t (c = 1 SDE, 1/2 ODE; VP: -f / beta = 1/2, from beta = -2 d log alpha/dt):

- the paper's potential u = beta (-x^2/4 - log p_t) and its curvature d2u/dx2 at x = 0,
- alpha_c of the two deltas at +-1 (the curvature vanishes), the closed-form t_c on the VP-linear
  schedule (log alpha(t) = log alpha_c is a quadratic in t),
- the margin of J / beta at the centre for data of equal norms with covariance top eigenvalue
  Lambda = a^2 (the two deltas at +-a are its one-dimensional case: at x = 0 the posterior is the
  prior), and its zero: alpha_c^2 = sqrt(1 + Lambda^2) - Lambda for the SDE and sigma_c^2 = Lambda
  (alpha_c^2 = 1 - Lambda, only for Lambda < 1) for the probability-flow ODE.

Each result is a :class:`Derivation` holding the sympy expression, a float where it is a number,
and its LaTeX.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

x, alpha, beta, a, t, Lambda = sp.symbols("x alpha beta a t Lambda", real=True)
alpha2 = sp.Symbol("alpha2", positive=True)
beta_min, beta_max = sp.symbols("beta_min beta_max", positive=True)


@dataclass(frozen=True)
class Derivation:
    """A derived expression; ``value`` is its float when it has no free symbols."""

    name: str
    expr: sp.Expr

    @property
    def value(self) -> float | None:
        return float(self.expr) if not self.expr.free_symbols else None

    @property
    def latex(self) -> str:
        return sp.latex(self.expr)

    def evaluate(self, **values: float) -> float:
        """The expression at the given symbol values (by symbol name), as a float."""
        subs = {s: values[s.name] for s in self.expr.free_symbols if s.name in values}
        missing = sorted(s.name for s in self.expr.free_symbols if s.name not in values)
        if missing:
            raise ValueError(f"values: missing {', '.join(missing)} for {self.name}")
        return float(self.expr.subs(subs))


def _gauss(y: sp.Expr, mean: sp.Expr, var: sp.Expr) -> sp.Expr:
    return sp.exp(-(y - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


def _vp_sigma2() -> sp.Expr:
    return 1 - alpha ** 2


def _log_p(amp: sp.Expr = a) -> sp.Expr:
    """log p_t(x) of two equally weighted deltas at +-amp under a VP schedule."""
    s2 = _vp_sigma2()
    return sp.log(sp.Rational(1, 2) * _gauss(x, alpha * amp, s2) + sp.Rational(1, 2) * _gauss(x, -alpha * amp, s2))


@lru_cache
def two_delta_potential() -> Derivation:
    """u(x, alpha) = beta (-x^2/4 - log p_t(x)) for deltas at +-1 (VP SDE; the paper's potential)."""
    return Derivation("u", beta * (-x ** 2 / 4 - _log_p(sp.Integer(1))))


@lru_cache
def two_delta_curvature() -> Derivation:
    """d2u/dx2 at x = 0 divided by beta, simplified: -(1/2 + (2 alpha^2 - 1)/(alpha^2 - 1)^2)."""
    u = two_delta_potential().expr
    return Derivation("d2u/dx2(0)/beta", sp.simplify(sp.diff(u, x, 2).subs(x, 0) / beta))


@lru_cache
def two_delta_alpha_c() -> Derivation:
    """The alpha in (0, 1) where the curvature at the origin vanishes: sqrt(sqrt(2) - 1)."""
    curv = two_delta_curvature().expr
    roots = [r for r in sp.solve(sp.numer(sp.together(curv)), alpha) if r.is_positive and (r < 1) == sp.true]
    if len(roots) != 1:
        raise ArithmeticError(f"expected one root of the curvature in (0, 1), got {roots}")
    return Derivation("alpha_c", sp.radsimp(sp.sqrtdenest(roots[0])))


@lru_cache
def vp_linear_t_c_expr() -> Derivation:
    """t_c on the VP-linear schedule, log alpha(t) = -(beta_min t + (beta_max - beta_min) t^2 / 2) / 2
    = log alpha_c, as the positive root of the quadratic, in beta_min and beta_max."""
    log_alpha_t = -(beta_min * t + (beta_max - beta_min) * t ** 2 / 2) / 2
    roots = sp.solve(sp.Eq(log_alpha_t, sp.log(two_delta_alpha_c().expr)), t)
    positive = [r for r in roots if r.subs({beta_min: sp.Rational(1, 10), beta_max: 20}).evalf() > 0]
    return Derivation("t_c", sp.simplify(positive[0]))


def vp_linear_t_c(beta_min_value: float = 0.1, beta_max_value: float = 20.0) -> Derivation:
    """The closed-form t_c of the two deltas at +-1 at the given VP-linear parameters."""
    expr = vp_linear_t_c_expr().expr.subs({beta_min: sp.nsimplify(beta_min_value),
                                           beta_max: sp.nsimplify(beta_max_value)})
    return Derivation("t_c", expr)


@lru_cache
def centre_hessian() -> Derivation:
    """d2/dx2 log p_t at x = 0 for deltas at +-a, with Lambda = a^2 substituted:
    -1/sigma^2 + alpha^2 Lambda / sigma^4 (sigma^2 = 1 - alpha^2)."""
    h = sp.diff(_log_p(), x, 2).subs(x, 0)
    return Derivation("hess log p_t(0)", sp.simplify(h.subs(a, sp.sqrt(Lambda))))


@lru_cache
def centre_margin(dynamics: str = "sde") -> Derivation:
    """Eigenvalue of J / beta at the centre, -f/beta + c hess = 1/2 + c hess (VP)."""
    c = {"sde": sp.Integer(1), "ode": sp.Rational(1, 2)}[dynamics]
    return Derivation(f"margin ({dynamics})", sp.simplify(sp.Rational(1, 2) + c * centre_hessian().expr))


@lru_cache
def centre_alpha_c2(dynamics: str = "sde") -> Derivation:
    """alpha_c^2 where the centre's margin vanishes, solved for alpha^2 in (0, 1):
    SDE sqrt(1 + Lambda^2) - Lambda; ODE 1 - Lambda (sigma_c^2 = Lambda, which needs Lambda < 1)."""
    margin = centre_margin(dynamics).expr.subs(alpha, sp.sqrt(alpha2))
    lam_pos = sp.Symbol("Lambda", positive=True)
    numer = sp.numer(sp.together(margin)).subs(Lambda, lam_pos)
    roots = [r for r in sp.solve(numer, alpha2) if r != 0]
    # keep the root that lies in (0, 1) for Lambda in (0, 1)
    inside = [r for r in roots if 0 < r.subs(lam_pos, sp.Rational(1, 2)) < 1]
    if len(inside) != 1:
        raise ArithmeticError(f"expected one root alpha^2 in (0, 1), got {roots}")
    return Derivation(f"alpha_c^2 ({dynamics})", sp.simplify(inside[0].subs(lam_pos, Lambda)))
