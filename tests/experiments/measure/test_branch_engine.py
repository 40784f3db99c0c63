"""A network's central branch is followed by theory's one continuation engine (NetworkDrift under
theory.continuation.follow): on the exact torch oracle it reproduces theory's branch and events; on a
float32 network with a non-symmetric Jacobian, Newton solves with J itself."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from symbreak.experiments.measure.branch import follow_central_branch
from symbreak.experiments.measure.drift import drift_jacobian
from symbreak.experiments.measure.fixed_points import NetworkDrift
from symbreak.experiments.models.denoisers import NetworkDenoiser, noise_level
from symbreak.experiments.models.oracle import TorchExactDenoiser
from symbreak.theory import EmpiricalData, GaussianMixture, VPLinear, critical_times
from symbreak.theory.continuation import newton

SCHEDULE = VPLinear()
T_END = 0.05


def two_clusters(weight: float) -> GaussianMixture:
    return GaussianMixture([weight, 1 - weight], [[1.0, 0.2], [-1.0, -0.2]], [0.04 * np.eye(2)] * 2)


def finite_data() -> EmpiricalData:
    rng = np.random.default_rng(3)
    centres = np.where(rng.random(40) < 0.5, 1.0, -1.0)[:, None] * np.array([1.0, 0.3])
    return EmpiricalData(centres + 0.3 * rng.standard_normal((40, 2)))


@pytest.mark.parametrize("model", [two_clusters(0.5), two_clusters(0.6), finite_data()],
                         ids=["symmetric-mixture", "imperfect-mixture", "finite-data"])
def test_oracle_branch_is_theory_branch(model):
    """The same engine on the same drift (torch oracle against numpy theory): the same adaptive points,
    the same margins and the same first event, t_c to 1e-6."""
    theory = critical_times(model, SCHEDULE, "sde", k=2, t_end=T_END)
    br = follow_central_branch(TorchExactDenoiser(model, SCHEDULE), n_points=101, t_range=(T_END, 1.0), k=2,
                               x_init=SCHEDULE.alpha(1.0) * model.mean)
    assert br.kind == theory.kind != "none"
    assert br.t_c == pytest.approx(theory.t_c, abs=1e-6)
    assert br.margin_c == pytest.approx(theory.margin_c, abs=1e-8)
    assert len(br.t) == len(theory.branch.t) and br.branch.status == theory.branch.status
    np.testing.assert_allclose(br.logsnr, theory.branch.logsnr, rtol=0, atol=1e-9)
    np.testing.assert_allclose(br.eigenvalues, theory.branch.eigenvalues, rtol=1e-8, atol=1e-9)
    assert [e.kind for e in br.events] == [e.kind for e in theory.events]
    assert br.converged.all() and np.array_equal(br.segment, theory.branch.segment)
    assert np.all(br.nonsymmetry < 1e-12) and br.config["newton_tol"] == 1e-10


class SkewDeltas(nn.Module):
    """A float32 x0-predictor: the posterior mean of deltas at +-m e1 with weights (1 +- tanh h) / 2,
    plus a rotation ``spin`` (x1, x2) -> (x2, -x1), which makes J non-symmetric (not a gradient)."""

    def __init__(self, m: float = 1.0, h: float = 0.2, spin: float = 0.5):
        super().__init__()
        self.m = nn.Parameter(torch.tensor(m, dtype=torch.float32), requires_grad=False)
        self.h, self.spin = h, spin

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = (v.to(x.dtype)[:, None] for v in noise_level(SCHEDULE, t))
        pull = self.m * torch.tanh(alpha * self.m * x[:, :1] / sigma ** 2 + self.h)
        return torch.cat([pull + self.spin * x[:, 1:], -self.spin * x[:, :1]], dim=1)


def skew_network(spin: float = 0.5) -> NetworkDenoiser:
    return NetworkDenoiser(SkewDeltas(spin=spin).eval(), SCHEDULE, (2,), target="x0")


def test_float32_network_runs_end_to_end_on_the_engine():
    den = skew_network()
    mean = np.array([np.tanh(0.2), 0.0])
    br = follow_central_branch(den, n_points=41, t_range=(T_END, 1.0), x_init=SCHEDULE.alpha(1.0) * mean,
                               second_moment=1.0 - np.tanh(0.2) ** 2)
    assert br.branch.status == "complete" and br.method == "dense"
    assert br.config["newton_tol"] == pytest.approx(100 * np.finfo(np.float32).eps)
    assert np.isfinite(br.eigenvalues).all() and br.nonsymmetry.max() > 0.1
    assert br.residual.max() < 1e-3 and br.kind in ("crossing", "closest-approach", "fold")
    assert list(br.table().columns[:3]) == ["t", "logsnr", "margin"] and len(br.table()) == len(br.t)
    # the matrix-free route (GMRES on J v, Lanczos on sym(J) v) follows the same branch
    krylov = follow_central_branch(den, n_points=41, t_range=(T_END, 1.0), x_init=SCHEDULE.alpha(1.0) * mean,
                                   method="lanczos", second_moment=1.0 - np.tanh(0.2) ** 2)
    assert krylov.method == "lanczos" and krylov.kind == br.kind
    assert krylov.t_c == pytest.approx(br.t_c, abs=1e-4)


def test_newton_step_is_the_non_symmetric_solve():
    """The step is (J/beta)^{-1} r with the network's own J (np.linalg.solve on torch.func's Jacobian);
    with the symmetric part alone Newton does not converge where the rotation dominates the margin."""
    den, t = skew_network(spin=1.5), 0.35
    drift, s = NetworkDrift(den), float(SCHEDULE.logsnr(t))
    x = np.array([0.3, -0.2])
    lin = drift.linearise(x, s)
    jac = drift_jacobian(den, x, t)[0].numpy() / float(SCHEDULE.beta(t))
    r = np.array([0.7, -1.1])
    np.testing.assert_allclose(lin.solve(r), np.linalg.solve(jac, r), rtol=1e-10)
    np.testing.assert_allclose(lin.dense, 0.5 * (jac + jac.T), rtol=1e-12)
    assert np.linalg.norm(np.linalg.solve(lin.dense, r) - lin.solve(r)) > 0.5 * np.linalg.norm(lin.solve(r))
    engine = newton(drift, x, s, k=1, max_iter=12)
    assert engine.converged and engine.iterations <= 6

    class Symmetric:
        """The same drift with the engine's symmetric solve (its noise the round-off alone: the residual
        is the network's floor only at a fixed point)."""
        dim, schedule, dynamics, newton_tol = drift.dim, drift.schedule, drift.dynamics, drift.newton_tol
        start, b = drift.start, drift.b

        def linearise(self, x, logsnr):
            lin = drift.linearise(x, logsnr)
            return replace(lin, solve=None, noise=64 * np.finfo(np.float64).eps * lin.scale)

    assert not newton(Symmetric(), x, s, k=1, max_iter=12).converged


def test_network_tolerance_follows_the_dtype():
    assert NetworkDrift(TorchExactDenoiser(two_clusters(0.5), SCHEDULE)).newton_tol == 1e-10
    assert NetworkDrift(skew_network()).newton_tol == pytest.approx(1.19e-5, rel=1e-2)
    assert NetworkDrift(skew_network(), newton_tol=1e-4).newton_tol == 1e-4
    mean = np.array([0.3, -0.1])
    np.testing.assert_allclose(NetworkDrift(skew_network(), mean=mean).start(0.4), SCHEDULE.alpha(0.4) * mean)
    with pytest.raises(ValueError, match="newton_tol"):
        NetworkDrift(skew_network(), newton_tol=0.0)
