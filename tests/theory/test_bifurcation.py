"""Bifurcation diagrams from the fixed-point count, against independent answers: the two-delta pitchfork at
alpha_c^2 = sqrt(2) - 1 (t_c = 0.2926417 on the VP linear schedule, solved here with scipy's brentq on the
closed-form alpha(t)), and the fold of an asymmetric 1-D mixture checked by counting sign changes of its
drift written out here from the mixture's Gaussian components."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import logsumexp

from symbreak.theory import GaussianMixture, SymmetricDeltas, VPLinear
from symbreak.theory.bifurcation import count_change, fixed_point_diagram
from symbreak.theory.fixedpoints import fixed_points_1d

BETA_MIN, BETA_MAX = 0.1, 20.0
SCHED = VPLinear()
WEIGHTS, MEANS, STD = (0.65, 0.35), (0.7, -1.3), 0.1  # the x_1 marginal of the gmm-asym data set


def log_alpha(t: float) -> float:
    return -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t)


def t_of_alpha2(alpha2: float) -> float:
    return brentq(lambda t: 2 * log_alpha(t) - math.log(alpha2), 1e-9, 1.0, xtol=1e-15)


def mixture_drift(x: np.ndarray, t: float) -> np.ndarray:
    """VP reverse-SDE drift beta (x/2 + d/dx log p_t) of sum_k w_k N(alpha m_k, alpha^2 s^2 + sigma^2)."""
    a = math.exp(log_alpha(t))
    var = a * a * STD**2 + 1 - a * a
    logs = np.stack([math.log(w) - 0.5 * (x - a * m) ** 2 / var for w, m in zip(WEIGHTS, MEANS)])
    post = np.exp(logs - logsumexp(logs, axis=0))
    score = sum(p * (a * m - x) / var for p, m in zip(post, MEANS))
    return (BETA_MIN + (BETA_MAX - BETA_MIN) * t) * (0.5 * x + score)


def n_roots(t: float) -> int:
    x = np.linspace(-3.0, 3.0, 600_001)
    b = mixture_drift(x, t)
    return int(np.count_nonzero(np.sign(b[1:]) != np.sign(b[:-1])))


def test_two_delta_pitchfork_at_alpha_c():
    t_c = t_of_alpha2(math.sqrt(2) - 1)
    assert t_c == pytest.approx(0.2926417, abs=1e-7)
    diagram = fixed_point_diagram(SymmetricDeltas(1.0), SCHED, np.linspace(0.05, 0.95, 10), tol=1e-10)
    (change,) = diagram.changes
    assert (change.kind, change.n_before, change.n_after) == ("crossing", 1, 3)
    # three roots closer than fixed_points_1d's grid spacing count as one: t is found to about 1e-6
    assert change.t == pytest.approx(t_c, abs=1e-6) and abs(change.x) < 1e-2  # born at the centre
    ts = np.array([s.t for s in diagram.samples])
    assert (np.diff(ts) < 0).all()  # generation order
    counts = np.array([len(s.points) for s in diagram.samples])
    assert (counts[ts > change.t + 1e-9] == 1).all() and (counts[ts < change.t - 1e-9] == 3).all()
    # the refinement samples reach within 10 tol of the change on both sides
    assert np.min(np.abs(ts - change.t)) <= 1e-9
    assert len(diagram.samples) > 10 + 2


def test_asymmetric_mixture_fold():
    model = GaussianMixture(list(WEIGHTS), [[m] for m in MEANS], [[[STD**2]]] * 2)
    diagram = fixed_point_diagram(model, SCHED, np.linspace(0.05, 0.95, 19), tol=1e-9)
    folds = [c for c in diagram.changes if c.kind == "fold"]
    assert folds, diagram.changes
    fold = folds[0]
    assert fold.n_after == fold.n_before + 2
    # the independent drift has the same number of roots on either side of the fold
    assert n_roots(fold.t + 1e-5) == fold.n_before and n_roots(fold.t - 1e-5) == fold.n_after
    # the pair is born on the lighter mode's side, away from the followed (heavier) branch
    assert fold.x < -0.3


def test_count_change_needs_different_counts():
    a = fixed_points_1d(SymmetricDeltas(1.0), 0.5, SCHED)
    with pytest.raises(ValueError, match="different numbers of fixed points"):
        count_change(a, a)
    with pytest.raises(ValueError, match="tol, n_refine"):
        fixed_point_diagram(SymmetricDeltas(1.0), SCHED, [0.2, 0.4], tol=0.0)
