"""The theory commands of the CLI: critical-time and fixed-points, in process."""
import json
import math

import pytest

from symbreak.experiments.cli import main
from symbreak.theory import VPLinear


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_critical_time_two_deltas_json(capsys):
    out = run_json(capsys, "critical-time", "--data", "two-deltas")
    assert out["t_c"] == pytest.approx(0.2926417, rel=1e-6)
    assert out["alpha_c"] == pytest.approx(0.6435942529, rel=1e-9)
    assert out["tau_c"] == pytest.approx(-math.log(0.6435942529), rel=1e-9)
    assert out["logsnr_c"] == pytest.approx(math.log((math.sqrt(2) - 1) / (2 - math.sqrt(2))), rel=1e-9)
    assert out["step_c"] is None and out["kind"] == "crossing"
    assert out["t_s"] is None
    assert out["t_h"] == pytest.approx(float(VPLinear().t_of_alpha(math.sqrt(0.5))), rel=1e-9)   # alpha_h^2 = 1/2
    assert out["schedule"] == {"name": "vp-linear", "beta_min": 0.1, "beta_max": 20.0, "T": 1.0}
    assert out["data"]["name"] == "two-deltas" and out["data"]["m"] == 1.0


def test_critical_time_ddpm_step(capsys):
    out = run_json(capsys, "critical-time", "--data", "two-deltas", "--schedule", "ddpm")
    assert out["step_c"] == 292 and out["schedule"]["n_steps"] == 1000


def test_critical_time_table(capsys):
    assert main(["critical-time", "--data", "two-deltas", "--m", "2"]) == 0
    text = capsys.readouterr().out
    assert "t_c (crossing)" in text and "t_s (speciation)" in text and "vp-linear" in text


def test_critical_time_gaussian_and_gmm(capsys):
    out = run_json(capsys, "critical-time", "--data", "gaussian", "--lam", "3")
    assert out["alpha_c"] ** 2 == pytest.approx(0.5, rel=1e-8)            # alpha^2 = 1/(lam - 1)
    out = run_json(capsys, "critical-time", "--data", "gmm", "--weights", "0.49,0.51", "--means=-1;1")
    assert out["kind"] == "closest-approach" and out["margin_c"] < 0
    out = run_json(capsys, "critical-time", "--data", "gaussian", "--cov", "2,0;0,0.5", "--mean", "1,1",
                   "--schedule", "ve", "--sigma-max", "20")
    assert out["schedule"]["sigma_max"] == 20.0 and out["data"]["cov"] == [[2.0, 0.0], [0.0, 0.5]]


def test_fixed_points_json(capsys):
    out = run_json(capsys, "fixed-points", "--data", "two-deltas", "--alpha", "0.8")
    xs = [p["x"] for p in out["fixed_points"]]
    assert xs == pytest.approx([-0.94703858, 0.0, 0.94703858], rel=1e-6, abs=1e-12)
    assert [p["stable"] for p in out["fixed_points"]] == [True, False, True]
    assert out["fixed_points"][1]["eigenvalues_over_beta"][0] == pytest.approx(2.6605, abs=1e-4)
    out = run_json(capsys, "fixed-points", "--data", "two-deltas", "--t", "0.5")
    assert [p["x"] for p in out["fixed_points"]] == [0.0]


def test_fixed_points_table(capsys):
    assert main(["fixed-points", "--alpha", "0.8"]) == 0
    assert "0.9470385761" in capsys.readouterr().out


@pytest.mark.parametrize("argv, flag", [
    (["critical-time", "--m", "nan"], "--m"),
    (["critical-time", "--m", "inf"], "--m"),
    (["critical-time", "--m", "-1"], "--m"),
    (["critical-time", "--beta-max", "0.05"], "--beta-max"),
    (["critical-time", "--beta-min", "nan"], "--beta-min"),
    (["critical-time", "--schedule", "ve", "--beta-min", "0.2"], "--beta-min"),
    (["critical-time", "--schedule", "ve", "--sigma-max", "inf"], "--sigma-max"),
    (["critical-time", "--schedule", "ddpm", "--n-steps", "1"], "--n-steps"),
    (["critical-time", "--data", "gaussian", "--cov", "1,0.5;0,1"], "--cov"),
    (["critical-time", "--data", "gaussian", "--cov", "1,0;0,-1"], "--cov"),
    (["critical-time", "--data", "gaussian", "--cov", "1,0;0"], "--cov"),
    (["critical-time", "--data", "gaussian", "--mean", "0,0,0", "--cov", "1,0;0,1"], "--cov"),
    (["critical-time", "--data", "gaussian", "--lam", "1,nan"], "--cov"),
    (["critical-time", "--data", "gaussian", "--lam", "1,-2"], "--lam"),
    (["critical-time", "--data", "gaussian", "--lam", "a,b"], "--lam"),
    (["critical-time", "--data", "gaussian", "--lam", "1", "--mean", "nan"], "--mean"),
    (["critical-time", "--data", "gmm", "--weights=-0.5,1.5", "--means=-1;1"], "--weights"),
    (["critical-time", "--data", "gmm", "--weights", "0.3,0.3", "--means=-1;1"], "--weights"),
    (["critical-time", "--data", "gmm", "--weights", "0.5,0.5", "--means=-1;1;2"], "--weights"),
    (["critical-time", "--data", "gmm", "--weights", "0.5,0.5", "--means=-1;1", "--stds", "1,1,1"], "--stds"),
    (["critical-time", "--data", "gmm", "--weights", "0.5,0.5", "--means=-1;1", "--stds", "1,-1"], "--stds"),
    (["critical-time", "--data", "cifar"], "--data"),
    (["critical-time", "--n", "1"], "--n"),
    (["fixed-points", "--t", "1.5"], "--t"),
    (["fixed-points", "--t", "0"], "--t"),
    (["fixed-points", "--t", "nan"], "--t"),
    (["fixed-points", "--alpha", "1.5"], "--alpha"),
    (["fixed-points", "--alpha", "0.001"], "--alpha"),
    (["fixed-points", "--alpha", "0.5", "--schedule", "ve"], "--alpha"),
    (["fixed-points", "--t", "0.5", "--data", "gaussian", "--lam", "1,1"], "--data"),
])
def test_bad_input_exits_2_naming_the_argument(capsys, argv, flag):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"symbreak {argv[0]}: error: {flag}:"), err
