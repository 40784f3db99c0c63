"""The trained-network figures (4-7), run by ``symbreak figures --only 5,7 --quick``, checked against
independent answers: the potential along the arc recomputed here from log p_t with scipy (mixture
densities, log-sum-exp over the digits), Biroli's phi by direct quadrature of its defining integral,
closed-form critical and speciation times of the two-Gaussian mixture and the two deltas, the exact-denoiser
cloning measurement against the closed form, and the network's arc potential against a trapezoid rule on
the cached network's drift."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats
from scipy.optimize import brentq

from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.cli import main
from symbreak.experiments.recipes.network_figures import QUICK_DIGITS, class_pair, decoded_mosaic, first_of_each_class
from symbreak.theory import VPLinear, cloning_probability, potential

BETA_MIN, BETA_MAX = 0.1, 20.0
STEMS = {5: "05_arc_potential", 7: "07_cloning"}
GMM_MEANS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
GMM_STD = 0.1


# --- independent closed forms (VP linear schedule) -----------------------------------------------------
def log_alpha(t):
    return -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t)


def beta(t):
    return BETA_MIN + (BETA_MAX - BETA_MIN) * t


def t_of_alpha2(alpha2: float) -> float:
    return brentq(lambda t: 2 * log_alpha(t) - math.log(alpha2), 1e-9, 1.0, xtol=1e-15)


def gmm_log_p(x: np.ndarray, t: float) -> np.ndarray:
    """log p_t of the 4-mode mixture: components N(alpha m_k, (alpha^2 s^2 + sigma^2) I), weights 1/4."""
    a2 = math.exp(2 * log_alpha(t))
    var = a2 * GMM_STD**2 + 1 - a2
    logs = [stats.multivariate_normal(math.sqrt(a2) * m, var * np.eye(2)).logpdf(x) for m in GMM_MEANS]
    return special.logsumexp(np.stack(logs), axis=0) - math.log(4)


def empirical_log_p(x: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
    """log p_t of equally weighted points y: log-mean-exp of N(x; alpha y_j, sigma^2 I)."""
    a2 = math.exp(2 * log_alpha(t))
    s2 = 1 - a2
    d2 = ((x[:, None, :] - math.sqrt(a2) * y[None]) ** 2).sum(-1)
    return special.logsumexp(-0.5 * d2 / s2, axis=1) - math.log(len(y)) - 0.5 * y.shape[1] * math.log(2 * math.pi * s2)


def phi_quadrature(tau: float, m: float, s: float) -> float:
    """phi = 1/2 int (G+^2 + G-^2) / (G+ + G-) dy, G+- = N(y; +-m e^-tau, Gamma), by direct quadrature."""
    mu, gamma = m * math.exp(-tau), 1 - math.exp(-2 * tau) + s * s * math.exp(-2 * tau)
    sd = math.sqrt(gamma)

    def f(y):
        gp, gm = (math.exp(-0.5 * ((y - c) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) for c in (mu, -mu))
        return 0.5 * (gp * gp + gm * gm) / (gp + gm) if gp + gm > 0 else 0.0

    return integrate.quad(f, -mu - 12 * sd, mu + 12 * sd, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


# --- the run ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    out, cache = tmp_path_factory.mktemp("figs") / "out", tmp_path_factory.mktemp("cache")
    assert main(["figures", "--only", "5,7", "--quick", "--out", str(out), "--cache-dir", str(cache),
                 "--device", "cpu"]) == 0
    return out, cache


def table(out: Path, n: int) -> pd.DataFrame:
    return pd.read_csv(out / f"{STEMS[n]}.csv")


def meta(out: Path, n: int) -> dict:
    return json.loads((out / f"{STEMS[n]}.json").read_text())


def test_files_and_sidecars(run):
    out = run[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{k}" for s in STEMS.values()
                                                            for k in ("png", "pdf", "csv", "json"))
    for n in STEMS:
        m = meta(out, n)
        assert m["config"]["quick"] is True and "Quick mode" in m["caption"]
        assert m["csv_columns"] == list(table(out, n).columns)


# --- figure 5 -----------------------------------------------------------------------------------------
def arc_rows(df: pd.DataFrame, name: str, method: str) -> dict[float, pd.DataFrame]:
    rows = df[(df.element == "line") & (df.data == name) & (df.method == method)]
    return {float(t): g for t, g in rows.groupby("t")}


def test_arc_exact_potential_matches_log_p(run):
    out = run[0]
    df, config = table(out, 5), meta(out, 5)["config"]["datasets"]
    digits = load_dataset("digits").subset(QUICK_DIGITS, 0)
    y_digits = np.asarray(digits.x, dtype=np.float64)
    assert config["digits"]["data"]["n_points"] == QUICK_DIGITS
    for name in ("gmm-2d", "digits"):
        y1, y2 = (np.asarray(config[name][k]) for k in ("y1", "y2"))
        exact = arc_rows(df, name, "exact")
        assert len(exact) == 3
        np.testing.assert_allclose(sorted(exact), sorted(config[name]["times"]), rtol=1e-12)
        for t, rows in exact.items():
            a, u = rows.x.to_numpy(), rows.y.to_numpy()
            assert a[0] == 0.0 and a[-1] == pytest.approx(math.pi / 2, abs=1e-12)
            x = math.exp(log_alpha(t)) * (np.cos(a)[:, None] * y1 + np.sin(a)[:, None] * y2)
            log_p = gmm_log_p(x, t) if name == "gmm-2d" else empirical_log_p(x, y_digits, t)
            u_ref = beta(t) * (-0.25 * (x * x).sum(1) - log_p)
            np.testing.assert_allclose(u, u_ref - u_ref[0], atol=1e-6, rtol=1e-9)
            # and the library's potential at the same points
            model = digits.empirical() if name == "digits" else load_dataset("gmm-2d").model
            u_lib = potential(model, x, t, VPLinear())
            np.testing.assert_allclose(u, u_lib - u_lib[0], atol=1e-6)
    # the three times are logsnr_c - 1.5, logsnr_c, logsnr_c + 1.5 around the exact t_c
    for name in ("gmm-2d", "digits"):
        t_c = meta(out, 5)["summary"][name]["t_c_exact"]
        logsnr = [2 * log_alpha(t) - math.log1p(-math.exp(2 * log_alpha(t))) for t in sorted(arc_rows(df, name, "exact"))]
        np.testing.assert_allclose(np.diff(logsnr), [-1.5, -1.5], atol=1e-8)
        assert sorted(arc_rows(df, name, "exact"))[1] == pytest.approx(t_c, rel=1e-9)


def test_arc_network_potential_is_the_line_integral_of_the_cached_network(run):
    """The plotted network curve against a trapezoid rule on the drift of the network reloaded from the cache."""
    import torch

    from symbreak.experiments.measure.drift import drift
    from symbreak.experiments.models.training import default_train_config, load_or_train_model

    out, cache = run
    cfg = meta(out, 5)["config"]["datasets"]["gmm-2d"]
    data = load_dataset("gmm-2d")
    train = cfg["train"]["train"]
    config = replace(default_train_config(data), steps=train["steps"], batch_size=train["batch_size"], seed=train["seed"])
    cached = load_or_train_model(data, VPLinear(), config, device="cpu", cache_dir=cache)
    assert cached.from_cache
    y1, y2 = np.asarray(cfg["y1"]), np.asarray(cfg["y2"])
    for t, rows in arc_rows(table(out, 5), "gmm-2d", "network").items():
        a = rows.x.to_numpy()
        alpha = math.exp(log_alpha(t))
        x = alpha * (np.cos(a)[:, None] * y1 + np.sin(a)[:, None] * y2)
        tangent = alpha * (-np.sin(a)[:, None] * y1 + np.cos(a)[:, None] * y2)
        with torch.no_grad():
            b = drift(cached.denoiser, x, t).numpy()
        u_trap = integrate.cumulative_trapezoid(-(b * tangent).sum(1), a, initial=0.0)
        scale = max(1.0, np.abs(u_trap).max())
        np.testing.assert_allclose(rows.y.to_numpy(), u_trap, atol=2e-3 * scale)


# --- figure 7 -----------------------------------------------------------------------------------------
PANELS = {"two-gaussians-m3-s1": (3.0, 1.0), "two-deltas": (1.0, 0.0)}


def test_cloning_theory_curve_is_biroli(run):
    df = table(run[0], 7)
    for name, (m, s) in PANELS.items():
        rows = df[(df.data == name) & (df.method == "theory")]
        assert len(rows) >= 30
        np.testing.assert_allclose(rows.tau, -log_alpha(rows.x.to_numpy()), rtol=1e-12)
        for tau, phi in zip(rows.tau.to_numpy()[::5], rows.y.to_numpy()[::5]):
            assert phi == pytest.approx(phi_quadrature(tau, m, s), abs=1e-8)
        np.testing.assert_allclose(rows.y, [cloning_probability(v, m, s) for v in rows.tau], rtol=1e-12)
        assert rows.y.min() >= 0.5 - 1e-12 and rows.y.max() <= 1.0 + 1e-12


def test_cloning_measured_with_the_exact_denoiser_follows_theory(run):
    df = table(run[0], 7)
    for name, (m, s) in PANELS.items():
        pts = df[(df.data == name) & (df.element == "points")]
        for method in ("exact", "network"):
            p = pts[pts.method == method]
            assert len(p) >= 5
            np.testing.assert_allclose(p.phi_theory, [phi_quadrature(v, m, s) for v in p.tau], atol=1e-8)
            np.testing.assert_allclose(p.stderr, np.sqrt(np.maximum(p.y * (1 - p.y), 1e-300) / 200), rtol=1e-9)
        exact = pts[pts.method == "exact"]
        assert (np.abs(exact.y - exact.phi_theory) <= 4 * exact.stderr + 0.02).all()
        # early (large t) the continuations are independent coin flips, late they agree
        assert exact.y[exact.x > 0.9].max() < 0.65 and exact.y[exact.x < 0.1].min() > 0.95


def test_cloning_marks_closed_form_times(run):
    df, summary = table(run[0], 7), meta(run[0], 7)["summary"]
    marks = df[df.element == "marker"]
    # two Gaussians +-3, s = 1: J/beta at 0 is alpha^2 m^2 - 1/2 (v = 1), so alpha_c^2 = 1/18;
    # speciation alpha^2 Lambda = 1 with Lambda = m^2 + s^2 = 10
    g = marks[marks.panel == "a"].set_index("kind").x
    assert g["t_c"] == pytest.approx(t_of_alpha2(1 / 18), abs=1e-6)
    assert g["t_s"] == pytest.approx(t_of_alpha2(1 / 10), abs=1e-9)
    assert summary["two-gaussians-m3-s1"]["phi_at_t_s"] == pytest.approx(phi_quadrature(0.5 * math.log(10), 3, 1),
                                                                        abs=1e-8)
    d = marks[marks.panel == "b"]
    assert list(d.kind) == ["t_c"] and d.x.item() == pytest.approx(t_of_alpha2(math.sqrt(2) - 1), abs=1e-6)


# --- helpers ------------------------------------------------------------------------------------------
def test_first_of_each_class_and_mosaic():
    final = np.array([3, 3, 1, 7, 1, 0, 7, 2])
    np.testing.assert_array_equal(first_of_each_class(final, 4), [0, 2, 3, 5])
    images = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)  # 2 rows, 3 columns of 2x2 images
    mosaic = decoded_mosaic(images, (2, 2))
    assert mosaic.shape == (5, 8)
    np.testing.assert_array_equal(mosaic[3:5, 6:8], images[1, 2].reshape(2, 2))
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 2]).all() and np.isnan(mosaic[:, 5]).all()


def test_class_pair_is_the_farthest_pair_of_class_means():
    digits = load_dataset("digits")
    x, labels = np.asarray(digits.x, dtype=np.float64), digits.labels
    means = pd.DataFrame(x).groupby(labels).mean()
    best = max(((a, b) for a in means.index for b in means.index if a < b),
               key=lambda p: np.linalg.norm(means.loc[p[0]] - means.loc[p[1]]))
    assert class_pair(digits) == best
