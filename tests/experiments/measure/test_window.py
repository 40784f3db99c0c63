"""The critical window three ways: window reading on known curves, the exact score's cloning against Biroli
et al.'s closed form, cloning = forward-backward retention for an exact score of a 4-component mixture, both
windows of a hierarchical mixture, and (slow) a trained 2-D network against the exact score."""
from __future__ import annotations

import math

import numpy as np
import pytest
from symbreak.analysis.datasets import Dataset, load_dataset
from symbreak.experiments.measure import window as W
from symbreak.experiments.models.oracle import TorchExactDenoiser
from symbreak.theory import GaussianMixture, VPLinear, cloning_probability, gaussian_critical_times

SCHEDULE = VPLinear()
M, S = 2.0, 0.5  # Biroli's two Gaussians 1/2 N(+-M, S^2)


def mixture_1d(means: list[float], std: float) -> GaussianMixture:
    return GaussianMixture([1.0 / len(means)] * len(means), [[m] for m in means], [[[std * std]]] * len(means))


def nearest(model: GaussianMixture):
    centres = np.stack([c.mean for c in model.components])
    return lambda x: np.argmin(((np.asarray(x)[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)


def dataset_of(model: GaussianMixture, n: int = 2000, seed: int = 0) -> Dataset:
    x = model.sample(n, np.random.default_rng(seed)).astype(np.float32)
    return Dataset("test-mixture", x, (model.dim,), None, "none", model, {"name": "test-mixture"})


# --- reading windows ------------------------------------------------------------------------------------
def test_window_of_a_logistic_curve():
    t = np.linspace(0.0, 1.0, 401)
    q = 1.0 / (1.0 + np.exp((t - 0.4) / 0.05))
    w = W.read_window(t, q)
    assert w.t_mid == pytest.approx(0.4, abs=1e-4)
    assert w.width == pytest.approx(2 * 0.05 * math.log(9.0), abs=1e-3)  # logistic 10 % - 90 % span
    assert w.t_start > w.t_mid > w.t_end


def test_crossing_edges_and_monotone_fit():
    t = np.array([0.1, 0.2, 0.3])
    assert W.crossing(t, np.array([1.0, 0.9, 0.8]), 0.5) is None
    assert W.crossing(t, np.array([0.4, 0.3, 0.2]), 0.5) == 0.1
    assert W.crossing(t, np.array([1.0, 0.5, 0.0]), 0.25) == pytest.approx(0.25)
    assert np.all(np.diff(W.monotone(t, np.array([0.9, 1.0, 0.1]))) <= 0)


def test_chance_level_of_two_labellings():
    assert W.chance_same(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.5 * 0.25 + 0.5 * 0.75)


def test_share_curve_recovers_a_known_midpoint_with_its_error():
    rng = np.random.default_rng(1)
    t = np.linspace(0.05, 0.95, 19)
    p = 0.25 + 0.75 / (1.0 + np.exp((t - 0.5) / 0.08))
    hits = rng.random((t.size, 800)) < p[:, None]
    c = W.share_curve("exact", "cloning", "class", t[::-1], hits[::-1], 0.25, bootstrap=100, seed=0)
    np.testing.assert_allclose(c.t, t)
    assert c.window.t_mid_se > 0 and c.window.width_se > 0
    assert abs(c.window.t_mid - 0.5) < 4 * c.window.t_mid_se
    with pytest.raises(ValueError, match="floor"):
        W.share_curve("exact", "cloning", "class", t, hits, 1.0)


def test_stability_window_of_the_gaussian_crossing():
    ct = gaussian_critical_times([2.0], SCHEDULE)
    s = W.gaussian_stability(ct)
    assert s.kind == "crossing" and s.window.t_mid == pytest.approx(ct.t_c) and s.depth == pytest.approx(0.0)
    assert s.window.t_start > s.window.t_end > ct.t_c


def test_bad_sampling_is_refused():
    with pytest.raises(ValueError, match="times"):
        W.Sampling(times=(0.1, 0.2))
    with pytest.raises(ValueError, match="n_steps"):
        W.Sampling(n_steps=1)
    with pytest.raises(ValueError, match="denoisers"):
        W.critical_window(load_dataset("gmm-2d"), SCHEDULE, denoisers=("oracle",))


# --- the exact score: Biroli's closed form, cloning = forward-backward ----------------------------------
def test_exact_cloning_equals_biroli_closed_form():
    model = mixture_1d([-M, M], S)
    times = tuple(np.linspace(0.1, 0.9, 9))
    sampling = W.Sampling("0-999", times, n_steps=200, bootstrap=0)
    curves = W.sampled_curves("exact", TorchExactDenoiser(model, SCHEDULE), model.sample(500, np.random.default_rng(0)),
                              nearest(model), sampling)
    clone = next(c for c in curves if c.measure == "cloning")
    phi = np.array([cloning_probability(float(SCHEDULE.tau(t)), M, S) for t in clone.t])
    se = np.sqrt(np.maximum(phi * (1 - phi), 1.0 / clone.n) / clone.n)
    z = (clone.value - phi) / se
    assert np.abs(z).max() < 3.0, list(zip(clone.t, clone.value, phi))
    assert phi[-1] < 0.75 and phi[0] > 0.95  # the grid spans the window


def test_exact_cloning_equals_forward_backward_for_four_components():
    model = load_dataset("gmm-2d").model
    sampling = W.Sampling("0-999", tuple(np.linspace(0.05, 0.55, 6)), n_steps=150, bootstrap=0)
    y = model.sample(2000, np.random.default_rng(0))
    curves = W.sampled_curves("exact", TorchExactDenoiser(model, SCHEDULE), y, nearest(model), sampling)
    clone, back = (next(c for c in curves if c.measure == m) for m in ("cloning", "forward-backward"))
    np.testing.assert_allclose(clone.t, back.t)
    z = (clone.value - back.value) / np.hypot(clone.stderr, back.stderr)
    assert np.abs(z).max() < 3.0, list(zip(clone.t, clone.value, back.value))
    assert clone.value[0] > 0.9 and clone.value[-1] < 0.6


# --- hierarchical data: super-class window, then sub-class window ----------------------------------------
def test_hierarchical_mixture_shows_both_windows():
    a, b = 3.0, 0.6
    model = mixture_1d([-a - b, -a + b, a - b, a + b], 0.15)
    data = dataset_of(model)
    sampling = W.Sampling("0-299", tuple(np.linspace(0.05, 0.9, 12)), n_steps=150, bootstrap=30)
    r = W.critical_window(data, SCHEDULE, sampling=sampling, groups=[0, 0, 1, 1], denoisers=("exact",))
    exact = r.get("exact")
    for measure in W.SAMPLED:
        sub, sup = exact.window(measure, "class"), exact.window(measure, "super-class")
        gap = sup.t_mid - sub.t_mid
        assert gap > 0.15 and gap > 3 * math.hypot(sub.t_mid_se, sup.t_mid_se), (measure, sub, sup)
    # stability: the central branch splits the super-classes first, each super-class later
    assert r.theory.exact.t_c > 0.45
    assert all(t < r.theory.exact.t_c - 0.15 for t in r.theory.t_c_sub) and len(r.theory.t_c_sub) == 2
    table = r.table()
    assert set(table["level"]) == {"class", "super-class"}
    assert {"t_mid", "width", "logsnr_mid", "tau_mid", "delta_t_vs_exact"} <= set(table.columns)


def test_comparison_table_and_document_on_gmm_2d():
    data = load_dataset("gmm-2d")
    sampling = W.Sampling("0-99", (0.05, 0.15, 0.25, 0.35, 0.5), n_steps=60, bootstrap=10)
    r = W.critical_window(data, SCHEDULE, sampling=sampling, denoisers=("exact", "gaussian"))
    t = r.table()
    assert list(t["denoiser"].unique()) == ["exact", "gaussian"]
    assert list(t["measure"].unique()) == list(W.MEASURES)
    assert r.theory.exact.t_c == pytest.approx(0.2137, abs=2e-3) and r.theory.gaussian.t_s is None
    doc = r.to_dict()
    assert doc["theory"]["t_c_gaussian"] == pytest.approx(r.theory.gaussian.t_c)
    assert len(doc["windows"]) == len(t)


def test_kmeans_labels_unlabelled_data():
    x = np.concatenate([np.full((50, 2), -2.0), np.full((50, 2), 2.0)]) + 0.1
    data = Dataset("blobs", x.astype(np.float32), (2,), None, "none", None, {"name": "blobs"})
    classify, text = W.class_labeller(data, clusters=2)
    lab = classify(x)
    assert "k-means" in text and len(set(lab[:50])) == 1 and lab[0] != lab[-1]


# --- a trained network on the 2-D mixture (slow: trains the default recipe) ------------------------------
@pytest.fixture(scope="module")
def gmm_network(tmp_path_factory):
    from symbreak.experiments.models.training import load_or_train_model

    data = load_dataset("gmm-2d")
    return data, load_or_train_model(data, SCHEDULE, cache_dir=tmp_path_factory.mktemp("window-cache")).denoiser


@pytest.mark.slow
def test_network_windows_agree_with_exact_on_gmm_2d(gmm_network):
    data, net = gmm_network
    sampling = W.Sampling("0-399", tuple(np.round(np.linspace(0.04, 0.6, 12), 4)), n_steps=200, bootstrap=100)
    r = W.critical_window(data, SCHEDULE, network=net, sampling=sampling, denoisers=("exact", "network"),
                          branch_points=61)
    gaps = W.distance_summary(r)
    for measure in W.MEASURES:
        assert abs(gaps[f"{measure}_rel"]) < 0.05, gaps
