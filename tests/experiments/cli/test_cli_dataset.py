"""``symbreak critical-time`` on datasets: JSON keys and numbers, the files under --out, subsets, and
bad input (exit 2, one message, nothing written)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.cli import main
from symbreak.theory import VPLinear

CORE = ("t_c", "alpha_c", "tau_c", "logsnr_c", "step_c", "kind", "t_s", "t_h", "schedule", "data")
ADDED = ("t_c_gaussian", "lambda_max", "n_points", "dim", "method", "scaling", "events")


def run_json(capsys, *argv):
    assert main(["critical-time", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def npy(tmp_path, x, name="data.npy"):
    path = tmp_path / name
    np.save(path, np.asarray(x))
    return str(path)


def test_two_deltas_file_json_keys_and_numbers(tmp_path, capsys):
    out = run_json(capsys, "--data", npy(tmp_path, [[1.0], [-1.0]]), "--method", "both")
    assert set(CORE + ADDED) <= set(out)
    assert out["t_c"] == pytest.approx(0.2926417, rel=1e-6) and out["kind"] == "crossing"
    assert out["t_c_gaussian"] == pytest.approx(0.2926417, rel=1e-6)
    assert out["alpha_c"] == pytest.approx(0.6435942529, rel=1e-9)
    t_half = float(VPLinear().t_of_alpha(math.sqrt(0.5)))                     # snr Lambda = 1 at alpha^2 = 1/2
    assert out["t_h"] == pytest.approx(t_half, rel=1e-8) and out["t_h_gaussian"] == pytest.approx(t_half, rel=1e-9)
    assert out["t_s"] is None and "speciation" in out["absent"]                 # Lambda = 1: no speciation
    assert out["lambda_max"] == pytest.approx(1.0, rel=1e-12)
    assert (out["n_points"], out["dim"], out["method"]) == (2, 1, "both")
    assert out["scaling"].startswith("auto: float data outside [0, 1]")
    assert out["schedule"]["name"] == "vp-linear" and out["data"]["source"] == "npy"
    first = out["events"][0]
    assert {"t", "kind", "margin", "step", "ddpm_step"} <= set(first)
    assert first["kind"] == "crossing" and first["ddpm_step"] == 292 and first["step"] is None
    ddpm = run_json(capsys, "--data", npy(tmp_path, [[1.0], [-1.0]]), "--schedule", "ddpm", "--method", "exact")
    assert ddpm["step_c"] == 292 and ddpm["events"][0]["step"] == 292


def test_out_writes_branch_csv_sidecar_and_plot(tmp_path, capsys):
    out_dir = tmp_path / "ct"
    assert main(["critical-time", "--data", "gmm-asym", "--n", "120", "--seed", "3", "--method", "both",
                 "--out", str(out_dir)]) == 0
    text = capsys.readouterr().out
    assert "imperfect pitchfork" in text and "closest-approach" in text
    names = {p.name for p in out_dir.iterdir()}
    assert names == {"critical_time.csv", "critical_time.config.json", "critical_time.png", "critical_time.pdf",
                     "critical_time.soft_direction.npy"}
    assert (out_dir / "critical_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out_dir / "critical_time.pdf").read_bytes()[:5] == b"%PDF-"
    side = json.loads((out_dir / "critical_time.config.json").read_text())
    config = side["config"]
    assert config["seed"] == 3 and config["n"] == 120 and config["schedule"]["name"] == "vp-linear"
    result = side["result"]
    assert result["kind"] == "closest-approach" and result["margin_c"] < 0
    # the CSV holds the branch: the same numbers as the library's exact branch
    ref = dataset_critical_times(load_dataset("gmm-asym", n=120, seed=3), VPLinear(), method="both")
    csv = pd.read_csv(out_dir / "critical_time.csv")
    branch = ref.exact.branch
    np.testing.assert_allclose(csv["t"], branch.t, rtol=1e-12)
    np.testing.assert_allclose(csv["margin"], branch.margin, rtol=1e-9)
    np.testing.assert_allclose(csv["lam_2"], branch.eigenvalues[:, 1], rtol=1e-9)
    assert {"alpha", "logsnr", "ddpm_step", "margin_gaussian"} <= set(csv)
    # the closest approach is a local maximum of the sampled margin, refined between samples
    assert csv["margin"][csv["t"] > 0.05].max() <= result["margin_c"] + 1e-12
    assert result["t_c"] == pytest.approx(ref.t_c, rel=1e-12)
    np.testing.assert_allclose(np.load(out_dir / "critical_time.soft_direction.npy"), ref.soft_direction)


def test_max_points_subset_is_stated_and_seeded(tmp_path, capsys):
    path = npy(tmp_path, np.random.default_rng(1).normal(size=(50, 2)) * [1.4, 0.6])
    a = run_json(capsys, "--data", path, "--method", "exact", "--max-points", "15", "--seed", "4")
    b = run_json(capsys, "--data", path, "--method", "exact", "--max-points", "15", "--seed", "4")
    c = run_json(capsys, "--data", path, "--method", "exact", "--max-points", "15", "--seed", "5")
    assert a["subset"] == {"max_points": 15, "seed": 4, "of": 50} and a["n_exact"] == 15 and a["n_points"] == 50
    assert a["t_c"] == b["t_c"] and a["events"] == b["events"]
    assert c["t_c"] != a["t_c"]
    assert main(["critical-time", "--data", path, "--method", "exact", "--max-points", "15"]) == 0
    assert "a random subset of 15 of 50, seed 0" in capsys.readouterr().out


def test_image_folder_and_constant_data(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, size=(4, 5), dtype=np.uint8), mode="L").save(folder / f"{i:02d}.png")
    out = run_json(capsys, "--data", str(folder), "--method", "gaussian", "--out", str(tmp_path / "o"))
    assert out["dim"] == 20 and out["shape"] == [1, 4, 5] and "x / 127.5 - 1" in out["scaling"]
    assert np.load(tmp_path / "o" / "critical_time.soft_direction.npy").shape == (1, 4, 5)
    const = run_json(capsys, "--data", npy(tmp_path, np.full((6, 2), 3.0), "c.npy"))
    assert const["kind"] == "none" and const["t_c"] is None and const["t_c_gaussian"] is None
    assert "constant data" in const["absent"]["critical"]


def test_theory_models_keep_their_route_and_refuse_dataset_flags(capsys):
    out = run_json(capsys, "--data", "two-deltas")
    assert out["data"]["name"] == "two-deltas" and out["data"]["m"] == 1.0
    assert main(["critical-time", "--data", "gaussian", "--lam", "3", "--method", "exact"]) == 2
    assert capsys.readouterr().err.startswith("symbreak critical-time: error: --method: applies to datasets only")


def _bad_inputs(tmp_path):
    nan = np.zeros((5, 3))
    nan[1, 2] = np.nan
    nan[3, 0] = np.inf
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (4, 4)).save(mixed / "a.png")
    Image.new("L", (5, 4)).save(mixed / "b.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "afile").write_text("x")
    two = npy(tmp_path, np.zeros((2, 2)) + [[0.0], [1.0]], "two.npy")
    return {
        "missing file": (["--data", str(tmp_path / "nope.npy")], "--data: ", "no such file"),
        "unknown name": (["--data", "cifar10"], "--data: ", "unknown data 'cifar10'"),
        "nan": (["--data", npy(tmp_path, nan, "nan.npy")], "--data: ",
                "2 value(s) are NaN or infinite, in 2 sample(s) (first at sample index 1, 3)"),
        "one sample": (["--data", npy(tmp_path, np.zeros((1, 3)), "one.npy")], "--data: ", "need at least 2 samples"),
        "mixed sizes": (["--data", str(mixed)], "--data: ", "images differ in size"),
        "empty folder": (["--data", str(empty)], "--data: ", "contains no PNG/JPEG images"),
        "max points": (["--data", two, "--max-points", "1"], "--max-points: ", "must be an integer >= 2"),
        "out is a file": (["--data", two, "--out", str(tmp_path / "afile")], "--out: ", "is not a folder"),
        "n": (["--data", "gmm-asym", "--n", "1"], "--n: ", "must be an integer >= 2"),
    }


@pytest.mark.parametrize("case", ["missing file", "unknown name", "nan", "one sample", "mixed sizes",
                                  "empty folder", "max points", "out is a file", "n"])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case):
    argv, flag, message = _bad_inputs(tmp_path)[case]
    out_dir = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    if "--out" not in argv:
        argv = [*argv, "--out", str(out_dir)]
    assert main(["critical-time", *argv, "--method", "both"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"symbreak critical-time: error: {flag}") and message in err, err
    assert err.count("\n") == 1
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before                 # no staging folder left behind


def _clusters(tmp_path) -> str:
    rng = np.random.default_rng(0)
    x = 0.3 * rng.standard_normal((60, 4))
    x[:, 0] += np.where(rng.random(60) < 0.5, 1.0, -1.0)
    return npy(tmp_path, x, "clusters.npy")


def test_device_cpu_follows_the_exact_route_with_the_numpy_drift(tmp_path, capsys):
    path = _clusters(tmp_path)
    out = run_json(capsys, "--data", path, "--scale", "none", "--method", "exact", "--device", "cpu")
    ref = dataset_critical_times(load_dataset(path, scale="none"), VPLinear(), method="exact")
    assert out["exact_backend"] == {"backend": "numpy", "device": "cpu"}
    assert out["t_c"] == pytest.approx(ref.t_c, rel=1e-12) and out["kind"] == ref.kind
    gaussian = run_json(capsys, "--data", path, "--scale", "none", "--method", "gaussian", "--device", "cpu")
    assert gaussian["exact_backend"] is None                                   # no exact route, no drift


def test_device_on_a_gpu_follows_the_exact_route_with_the_torch_drift(tmp_path, capsys, monkeypatch):
    """What --device auto/cuda does on a GPU machine, with the torch drift on the CPU standing in for the
    GPU: the same t_c to 1e-8, and the backend in the JSON and the sidecar's config."""
    from symbreak.experiments.measure import exact_drift

    gpu = exact_drift.ExactBackend("torch", "cpu", exact_drift.torch_drift("cpu"))
    monkeypatch.setattr(exact_drift, "exact_backend", lambda device: gpu)
    path = _clusters(tmp_path)
    out = run_json(capsys, "--data", path, "--scale", "none", "--method", "exact", "--out", str(tmp_path / "o"))
    ref = dataset_critical_times(load_dataset(path, scale="none"), VPLinear(), method="exact")
    assert out["exact_backend"] == {"backend": "torch", "device": "cpu"}
    assert out["t_c"] == pytest.approx(ref.t_c, abs=1e-8) and out["kind"] == ref.kind
    config = json.loads((tmp_path / "o" / "critical_time.config.json").read_text())["config"]
    assert config["exact_backend"] == {"backend": "torch", "device": "cpu"}


def test_device_cuda_without_cuda_is_refused_before_any_work(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert main(["critical-time", "--data", _clusters(tmp_path), "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--device: 'cuda' was asked for but CUDA is not available" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
