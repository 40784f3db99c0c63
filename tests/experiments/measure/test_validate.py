"""``symbreak validate``: a trained MLP's critical time against theory (closed form for two deltas)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from symbreak.experiments.cli import main
from symbreak.theory import VPLinear

T_C_TWO_DELTAS = 0.2926417  # alpha_c^2 = sqrt(2) - 1 on the paper's VP schedule


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One training cache for every test of this file (each network is trained once)."""
    return str(tmp_path_factory.mktemp("validate-cache"))


def validate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_two_deltas_network_within_five_percent(capsys, cache_dir, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = validate(capsys, "--data", "two-deltas", "--steps", "1500", "--n-points", "41", "--device", "cpu",
                            "--cache-dir", cache_dir, "--json", "--out", str(out_dir))
    assert code == 0
    r = json.loads(out)
    assert r["kind_theory"] == "crossing"
    assert r["t_c_theory"] == pytest.approx(T_C_TWO_DELTAS, abs=5e-8)
    assert r["rel_error"] == pytest.approx(abs(r["t_c_network"] - r["t_c_theory"]) / r["t_c_theory"])
    # this short-trained net's pitchfork is imperfect (its branch commits to one side with a closest
    # approach at margin -0.15, measured): its t_c comes 5.1 % early; the default recipe's within 5 % (slow test)
    assert r["rel_error"] < 0.06
    assert r["train"]["from_cache"] is False and r["train"]["config"]["steps"] == 1500
    table = pd.read_csv(out_dir / "margins.csv")
    # one row per point of the network's branch (theory's engine: adaptive steps, the first 1/40 of the range)
    assert list(table.columns[:4]) == ["t", "logsnr", "margin_theory", "margin_network"]
    assert len(table) == r["measure"]["branch_points"]
    # theory's margins on the grid against the closed form 1/2 + (2 alpha^2 - 1)/(1 - alpha^2)^2
    a2 = VPLinear().alpha(table.t.to_numpy()) ** 2
    np.testing.assert_allclose(table.margin_theory, 0.5 + (2 * a2 - 1) / (1 - a2) ** 2, rtol=1e-8, atol=1e-10)
    # the network follows it up to t_c: within 0.5 of it where the theory margin is within 0.5 of 0 (past t_c
    # theory's perfect pitchfork stays on the unstable centre, the network's branch has committed to one side)
    near = (np.abs(table.margin_theory) < 0.5) & (table.t >= r["t_c_theory"])
    assert near.sum() >= 3 and np.abs(table.margin_network - table.margin_theory)[near].max() < 0.5
    # the window's largest gap, split at theory's t_c, recomputed from the table
    gap = np.abs(table.margin_network - table.margin_theory)
    window = np.abs(table.logsnr - r["logsnr_c_theory"]) <= r["window_logsnr"]
    before = window & (table.logsnr <= r["logsnr_c_theory"])
    assert r["max_abs_margin_gap_before_t_c"] == pytest.approx(gap[before].max(), rel=1e-12)
    assert r["max_abs_margin_gap_after_t_c"] == pytest.approx(gap[window & ~before].max(), rel=1e-12)
    assert r["max_abs_margin_gap_window"] == max(r["max_abs_margin_gap_before_t_c"], r["max_abs_margin_gap_after_t_c"])
    config = json.loads((out_dir / "margins.config.json").read_text())
    assert config["command"] == "validate" and config["t_c_network"] == r["t_c_network"]

    # the same model again, from the cache, as text
    code, out, _ = validate(capsys, "--data", "two-deltas", "--steps", "1500", "--n-points", "41", "--device", "cpu",
                            "--cache-dir", cache_dir)
    assert code == 0 and "loaded from the cache" in out
    assert f"t_c_network = {r['t_c_network']:.6g}" in out and f"rel_error   = {r['rel_error']:.4f}" in out


@pytest.mark.parametrize("args, message", [
    (["--n-points", "2"], "--n-points: must be >= 3"),
    (["--window", "0"], "--window: must be a number > 0"),
    (["--t-min", "1.5"], "--t-min: must lie in"),
    (["--dynamics", "flow"], "--dynamics: expected one of sde, ode"),
    (["--schedule", "linear"], "--schedule: expected one of vp-linear"),
])
def test_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, args, message):
    out_dir = tmp_path / "never"
    code, _, err = validate(capsys, "--data", "two-deltas", "--out", str(out_dir), *args)
    assert code == 2 and message in err
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("data", ["two-deltas", "gmm-2d"])
def test_default_network_within_five_percent(capsys, cache_dir, data):
    """The issue's target: the default training recipe, on CPU, t_c within 5% of theory. Theory's pitchfork
    is perfect; the network's is not quite (its branch leaves the centre and commits to one side), so its
    first event may be a closest approach just below zero."""
    code, out, _ = validate(capsys, "--data", data, "--device", "cpu", "--cache-dir", cache_dir, "--json")
    r = json.loads(out)
    assert code == 0 and r["kind_theory"] == "crossing" and r["kind_network"] in ("crossing", "closest-approach")
    assert r["rel_error"] < 0.05
    assert math.isfinite(r["max_abs_margin_gap_window"])


def test_validate_network_with_the_exact_denoiser_is_theory():
    """The library function on the exact denoiser of two deltas: the network's branch is theory's."""
    from symbreak.analysis.datasets import load_dataset
    from symbreak.experiments.measure.validate import compare, validate_network
    from symbreak.experiments.models.denoisers import ExactDenoiser

    dataset, schedule = load_dataset("two-deltas"), VPLinear()
    result = validate_network(dataset, schedule, ExactDenoiser(dataset.model, schedule, dataset.shape),
                              n_points=9, t_min=0.2)
    r = result.to_dict()
    assert r["t_c_theory"] == pytest.approx(T_C_TWO_DELTAS, abs=5e-8)
    assert r["t_c_network"] == pytest.approx(r["t_c_theory"], rel=1e-4)
    assert list(result.table.columns) == ["t", "logsnr", "margin_theory", "margin_network", "nonsymmetry_network"]
    np.testing.assert_allclose(result.table.margin_network, result.table.margin_theory, atol=1e-6)
    again, margins = compare(result.theory, result.network, ExactDenoiser(dataset.model, schedule, dataset.shape), 1.0)
    assert again == result.comparison and np.array_equal(margins, result.margins_theory, equal_nan=True)


def test_bad_options_fail_before_any_work():
    from symbreak.experiments.measure.validate import check_options

    with pytest.raises(ValueError, match="--window: must be a number > 0"):
        check_options(VPLinear(), "sde", 9, 0.02, 0.0)
