"""What the commands write: the full provenance beside every output, no stale companion files, and
output problems refused before any work."""
from __future__ import annotations

import json

import numpy as np

from symbreak.experiments.cli import main

SAMPLE = ["sample", "--data", "two-deltas", "--sampler", "ddim", "--steps", "3", "--seeds", "0-9", "--no-progress"]


def test_network_samples_record_the_model_and_drop_a_stale_trajectory(tmp_path, cli_cache):
    out = tmp_path / "x.npy"
    argv = [*SAMPLE, "--denoiser", "network", "--quick", "--cache-dir", cli_cache, "--out", str(out)]
    assert main([*argv, "--trajectory"]) == 0
    assert (tmp_path / "x.trajectory.npy").exists()
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.config.json", "x.npy"]
    config = json.loads((tmp_path / "x.config.json").read_text())
    model = config["provenance"]["model"]
    assert len(model["cache_key"]) == 64 and len(model["weights_sha256"]) == 64 and model["train"]["steps"] > 0
    assert config["provenance"]["versions"]["numpy"] == np.__version__


def test_data_file_hash_and_npz_key_are_recorded(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(40, 2)), y=np.arange(40) % 2)
    out = tmp_path / "o"
    assert main(["critical-time", "--data", str(tmp_path / "d.npz"), "--method", "gaussian", "--out", str(out)]) == 0
    config = json.loads((out / "critical_time.config.json").read_text())["config"]
    assert len(config["provenance"]["data_files"][0]["sha256"]) == 64


def test_an_output_name_taken_by_a_folder_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    (out / "critical_time.pdf").mkdir(parents=True)
    (out / "critical_time.csv").write_text("previous\n")
    assert main(["critical-time", "--data", "digits", "--method", "gaussian", "--out", str(out)]) == 2
    assert "critical_time.pdf is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["critical_time.csv", "critical_time.pdf"]
    assert (out / "critical_time.csv").read_text() == "previous\n"
