"""Trajectory analysis: labels and commitment times by hand, directions against sklearn, and the
cloning probability of the exact two-delta dynamics against Biroli et al.'s closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from symbreak.experiments.measure import trajectories as T
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.experiments.sampling.grids import uniform_grid
from symbreak.experiments.sampling.samplers import get_sampler
from symbreak.theory import SymmetricDeltas, VPLinear, cloning_probability

SCHEDULE = VPLinear()
TWO_DELTAS = ExactDenoiser(SymmetricDeltas(1.0), SCHEDULE)


def sign_class(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] < 0).astype(np.int64)  # class 0: +1, class 1: -1


def test_commitment_times_by_hand():
    t_grid = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    traj = np.array([[+0.1, -0.5, +0.3],
                     [-0.2, -0.5, +0.2],
                     [-0.3, -0.5, -0.1],
                     [+0.4, -0.5, +0.2],
                     [+1.0, -1.0, -0.9]])[:, :, None]
    labels = T.trajectory_labels(traj, t_grid, T.nearest_mode_assign([[1.0], [-1.0]], SCHEDULE))
    np.testing.assert_array_equal(labels, [[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 1, 1]])
    c = T.commitment_times(labels, t_grid)
    np.testing.assert_array_equal(c.final, [0, 1, 1])
    np.testing.assert_array_equal(c.index, [3, 0, 4])  # first index after the last change
    np.testing.assert_array_equal(c.t_commit, [0.25, 1.0, 0.0])
    assert list(c.table().columns) == ["sample", "final", "index", "t_commit"]


def test_nearest_mode_assign_moves_with_alpha():
    """Modes 0 and 2: at time t the boundary between alpha*0 and alpha*2 sits at alpha(t), not at 1."""
    assign = T.nearest_mode_assign([[0.0], [2.0]], SCHEDULE)
    alpha = float(SCHEDULE.alpha(0.5))
    x = np.array([[0.9 * alpha], [1.1 * alpha], [0.9], [1.1]])
    np.testing.assert_array_equal(assign(x, 0.5), [0, 1, 1, 1])
    np.testing.assert_array_equal(assign(x, 0.0), [0, 0, 0, 1])


def test_directions_against_known_axes_and_sklearn():
    rng = np.random.default_rng(0)
    u = np.array([3.0, -4.0, 0.0]) / 5.0
    x = rng.standard_normal((500, 3)) * [0.1, 0.1, 0.1] + rng.standard_normal((500, 1)) * 3.0 * u
    assert abs(T.principal_direction(x) @ u) > 0.999
    # three classes with unequal spreads: Fisher's direction equals sklearn's LDA (eigen solver)
    labels = rng.integers(0, 3, 600)
    means = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [2.0, -0.5, 0.3]])
    y = means[labels] + rng.standard_normal((600, 3)) @ np.diag([1.0, 0.3, 0.5])
    lda = LinearDiscriminantAnalysis(solver="eigen").fit(y, labels).scalings_[:, 0]
    assert abs(T.lda_direction(y, labels, ridge=0.0) @ lda / np.linalg.norm(lda)) == pytest.approx(1.0, abs=1e-10)
    d = T.mean_difference_direction(y, labels, classes=(0, 2))
    want = y[labels == 2].mean(0) - y[labels == 0].mean(0)
    np.testing.assert_allclose(d, want / np.linalg.norm(want), rtol=1e-12)
    with pytest.raises(ValueError, match="classes: the labels hold 3 classes"):
        T.mean_difference_direction(y, labels)


def test_projection_with_a_moving_centre():
    t_grid = np.array([0.5, 0.0])
    traj = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])
    got = T.project(traj, t_grid, [0.0, 2.0], schedule=SCHEDULE, center=[1.0, 1.0])
    np.testing.assert_allclose(got, [[2.0 - SCHEDULE.alpha(0.5)], [3.0]], rtol=1e-12)
    with pytest.raises(ValueError, match="direction"):
        T.project(traj, t_grid, [1.0, 0.0, 0.0])


def test_sampled_trajectories_commit_to_their_end():
    seeds = list(range(64))
    x0 = torch.as_tensor(np.random.default_rng(1).standard_normal((64, 1)))
    result = get_sampler("sde")(TWO_DELTAS, x0, uniform_grid(SCHEDULE, 1.0, 100), seeds=seeds, return_trajectory=True)
    analysis = T.analyse_trajectories(result, T.nearest_mode_assign([[1.0], [-1.0]], SCHEDULE), [1.0])
    final = result.x[:, 0].numpy()
    np.testing.assert_array_equal(analysis.commitment.final, (final < 0).astype(int))
    np.testing.assert_allclose(analysis.projection, result.trajectory[:, :, 0].numpy())
    # after commitment every state lies on its final side
    k = analysis.commitment.index
    side = np.sign(final)
    for j in range(64):
        assert np.all(np.sign(analysis.projection[k[j]:, j]) == side[j])
    assert len(analysis.table()) == 101 * 64
    with pytest.raises(ValueError, match="return_trajectory"):
        T.analyse_trajectories(get_sampler("ddim")(TWO_DELTAS, x0, uniform_grid(SCHEDULE, 1.0, 2)),
                               T.nearest_mode_assign([[1.0], [-1.0]], SCHEDULE), [1.0])


@pytest.mark.parametrize("t", [0.2, 0.4])
def test_cloning_matches_biroli_for_two_deltas(t):
    """x_t from the forward process; two reverse-SDE continuations; P(same class) vs phi(tau) with
    s = 0 (4 binomial standard errors, plus 0.01 for the time discretisation)."""
    n = 1000
    rng = np.random.default_rng(int(t * 100))
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
    x_t = SCHEDULE.alpha(t) * y + SCHEDULE.sigma(t) * rng.standard_normal((n, 1))
    out = T.clone(TWO_DELTAS, x_t, t, sign_class, seeds=f"0-{n - 1}", n_steps=100)
    phi = cloning_probability(float(SCHEDULE.tau(t)), 1.0, 0.0)
    assert abs(out.p_same - phi) < 4 * out.stderr + 0.01


def test_cloning_experiment_from_reference_runs():
    phi = np.vectorize(lambda tau: cloning_probability(float(tau), 1.0, 0.0))
    res = T.cloning_experiment(TWO_DELTAS, [0.3], sign_class, seeds="0-799", n_steps=200, phi=phi)
    row = res.table().iloc[0]
    assert row.t == 0.3 and row.n == 800
    assert row.tau == pytest.approx(float(SCHEDULE.tau(0.3)))
    assert abs(row.p_same - row.phi_theory) < 4 * row.stderr + 0.01
    with pytest.raises(ValueError, match="stochastic sampler"):
        T.clone(TWO_DELTAS, np.zeros((2, 1)), 0.3, sign_class, seeds="0-1", sampler="ddim")


# --- reference runs, clones along them, forward-backward ---------------------------------------------
def test_reference_run_labels_are_the_denoised_class_of_every_state():
    ref = T.reference_run(TWO_DELTAS, [0.3, 0.6], seeds="0-15", n_steps=40, classify=sign_class)
    assert 0.3 in ref.grid and 0.6 in ref.grid and ref.labels.shape == (len(ref.grid), 16)
    by_hand = T.trajectory_labels(ref.result.trajectory, ref.grid, T.denoised_class(TWO_DELTAS, sign_class))
    np.testing.assert_array_equal(ref.labels, by_hand)
    assert torch.equal(ref.states_at(0.3), ref.result.trajectory[int(np.flatnonzero(ref.grid == 0.3)[0])])


def test_clone_along_is_the_cloning_experiment():
    res = T.cloning_experiment(TWO_DELTAS, [0.2, 0.5], sign_class, seeds="0-63", n_steps=60)
    ref = T.reference_run(TWO_DELTAS, [0.2, 0.5], seeds="0-63", n_steps=60)
    outcomes = T.clone_along(TWO_DELTAS, ref, [0.2, 0.5], sign_class, seeds="0-63", n_steps=60)
    np.testing.assert_array_equal(res.p_same, [o.p_same for o in outcomes])
    assert [o.t for o in outcomes] == [0.5, 0.2]


def test_forward_backward_keeps_the_class_early_and_forgets_it_at_T():
    y = np.where(np.arange(400) % 2 == 0, 1.0, -1.0)[:, None]
    early = T.forward_backward(TWO_DELTAS, y, 0.02, sign_class, seeds="0-399", n_steps=20)
    late = T.forward_backward(TWO_DELTAS, y, 1.0, sign_class, seeds="0-399", n_steps=100)
    np.testing.assert_array_equal(early.class_a, sign_class(y))
    assert early.p_same == 1.0
    assert abs(late.p_same - 0.5) < 4 * late.stderr
    with pytest.raises(ValueError, match="stochastic"):
        T.forward_backward(TWO_DELTAS, y, 0.5, sign_class, seeds="0-399", sampler="ddim")


def test_continuation_steps_share_of_the_grid():
    assert T.continuation_steps(0.5, 200, 1.0) == 100
    assert T.continuation_steps(0.01, 200, 1.0) == 20
