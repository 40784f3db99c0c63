"""``symbreak window``: the table on stdout, --json, --out files, hierarchical --groups, a trained network,
your own --model (the exact score wrapped as a model: its windows equal the exact score's), bad flags."""
from __future__ import annotations

import json
import textwrap

import pytest
from symbreak.experiments.cli import main

SMALL = ["--quick", "--no-progress", "--seeds", "0-31", "--times", "0.05:0.6:4"]
EXACT_MODULE = """
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.theory import VPLinear


def make():
    data = load_dataset("gmm-2d")
    return ExactDenoiser(data.model, VPLinear(), data.shape)
"""


def run_json(argv: list[str], capsys) -> dict:
    assert main(["window", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_exact_table_text_and_out(tmp_path, capsys, cli_cache):
    out = tmp_path / "w"
    assert main(["window", "--data", "gmm-2d", "--denoiser", "exact", *SMALL, "--out", str(out),
                 "--cache-dir", cli_cache]) == 0
    text = capsys.readouterr().out
    assert "t_c exact" in text and "commitment" in text and "gaussian" in text
    assert {p.name for p in out.iterdir()} == {"windows.csv", "curves.csv", "window.json"}
    doc = json.loads((out / "window.json").read_text())
    assert doc["theory"]["t_c_exact"] == pytest.approx(0.2137, abs=2e-3) and doc["network"] is None


def test_groups_give_super_class_windows(capsys, cli_cache):
    doc = run_json(["--data", "gmm-2d", "--denoiser", "exact", *SMALL, "--groups", "0,1,0,1",
                    "--cache-dir", cli_cache], capsys)
    assert {r["level"] for r in doc["windows"]} == {"class", "super-class"}


def test_trained_network(capsys, cli_cache):
    doc = run_json(["--data", "gmm-2d", *SMALL, "--cache-dir", cli_cache], capsys)
    assert {r["denoiser"] for r in doc["windows"]} == {"exact", "gaussian", "network"}
    assert doc["network"]["train"]["steps"] == 300


def test_own_model_is_measured_as_the_network(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_window_model.py").write_text(textwrap.dedent(EXACT_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = run_json(["--data", "gmm-2d", "--model", "my_window_model:make", *SMALL], capsys)
    rows = {(r["denoiser"], r["measure"]): r for r in doc["windows"] if r["level"] == "class"}
    for measure in ("stability", "cloning", "forward-backward", "commitment"):
        assert abs(rows[("network", measure)]["delta_t_vs_exact"]) < 5e-3, measure


@pytest.mark.parametrize("flags, word", [(["--times", "a:b"], "--times"), (["--groups", "x"], "--groups"),
                                         (["--times", "0.1,0.2"], "times"), (["--n-steps", "1"], "n_steps")])
def test_bad_flags_fail_in_one_line(flags, word, capsys):
    assert main(["window", "--data", "gmm-2d", "--denoiser", "exact", "--quick", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert word in err and "\n" not in err
