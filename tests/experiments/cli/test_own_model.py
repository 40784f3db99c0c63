"""Your own model and unlabelled images through the commands: ``--model`` (module:callable and a saved
diffusers folder) and the label-free suite, end to end with --quick."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from symbreak.experiments.cli import main

EXACT_MODULE = """
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.experiments.paper.setup import split_dataset
from symbreak.theory import DiscreteDDPM


def make():
    train, _ = split_dataset(load_dataset({data!r}))
    return ExactDenoiser(train.empirical(), DiscreteDDPM(), train.shape)
"""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """36 tiny unlabelled 8x8 grey PNGs (digits pixels, no labels anywhere)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("images")
    for i, im in enumerate(load_digits().images[:36]):
        Image.fromarray((im * 15).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def exact_module(tmp_path, monkeypatch, image_folder):
    """module:callable giving the exact denoiser of the training part, importable from tmp_path."""
    (tmp_path / "my_exact_model.py").write_text(textwrap.dedent(EXACT_MODULE.format(data=str(image_folder))))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_exact_model:make"


def run_json(argv: list[str], capsys) -> dict:
    assert main([*argv, "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


def numbers(document: dict, key: str) -> list:
    return [(r.get("metric"), r.get("value")) for r in document[key]]


def test_wrapped_exact_denoiser_gives_the_numbers_of_denoiser_exact(image_folder, exact_module, tmp_path, capsys,
                                                                     cli_cache):
    common = ["--data", str(image_folder), "--quick", "--cache-dir", cli_cache, "--no-exact-tc"]
    exact = run_json(["late-start", *common, "--denoiser", "exact", "--out", str(tmp_path / "a")], capsys)
    wrapped = run_json(["late-start", *common, "--model", exact_module, "--out", str(tmp_path / "b")], capsys)
    config = json.loads((tmp_path / "b" / "late_start.config.json").read_text())
    assert config["denoiser"] == {"kind": "model", "model": {"kind": "callable", "spec": exact_module}}
    assert json.dumps(exact["curves"]) == json.dumps(wrapped["curves"])
    common = common[:-1]
    gls_exact = run_json(["gls-table", *common, "--denoiser", "exact", "--out", str(tmp_path / "c")], capsys)
    gls_wrapped = run_json(["gls-table", *common, "--model", exact_module, "--out", str(tmp_path / "d")], capsys)
    assert json.dumps(gls_exact["rows"]) == json.dumps(gls_wrapped["rows"])


def test_unlabelled_folder_runs_every_evaluation(image_folder, tmp_path, capsys, cli_cache):
    common = ["--data", str(image_folder), "--quick", "--denoiser", "exact", "--cache-dir", cli_cache]
    for command in ("late-start", "gls-table", "diversity"):
        extra = ["--no-exact-tc"] if command == "late-start" else []
        run_json([command, *common, *extra, "--out", str(tmp_path / command)], capsys)
        name = command.replace("-", "_")
        metrics = json.loads((tmp_path / command / f"{name}.config.json").read_text())["metrics"]
        assert metrics["kind"] == "features" and metrics["features"]["kind"] == "pca"
        assert metrics["clusters"]["k"] == 10 and "never called FID" in metrics["note"]


def test_bad_model_spec_is_one_line_naming_the_flag(image_folder, tmp_path, capsys):
    code = main(["late-start", "--data", str(image_folder), "--quick", "--model", "not a spec", "--out",
                 str(tmp_path / "x")])
    assert code == 2
    assert "--model:" in capsys.readouterr().err


def test_sample_with_a_saved_diffusers_folder(tmp_path, capsys, image_folder):
    diffusers = pytest.importorskip("diffusers")
    import torch

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    unet.save_pretrained(tmp_path / "model" / "unet")
    diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction").save_pretrained(
        tmp_path / "model" / "scheduler")
    out = tmp_path / "x.npy"
    doc = run_json(["sample", "--data", str(image_folder), "--model", str(tmp_path / "model"), "--sampler", "ddim",
                    "--steps", "3", "--start", "gls", "--t-start", "tc", "--seeds", "0-4", "--out", str(out)], capsys)
    assert np.load(out).shape == (5, 1, 8, 8)
    assert doc["model"]["kind"] == "diffusers" and doc["model"]["prediction"] == "v"
    assert "trained_betas" in doc["schedule"] and "model_scaling" in doc["data"]


TWO_DELTAS_MODULE = """
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.theory import VPLinear


def make():
    data = load_dataset("two-deltas")
    return ExactDenoiser(data.model, VPLinear(), data.shape)
"""


def test_validate_with_a_user_model_measures_that_model(tmp_path, monkeypatch, capsys):
    """validate --model: the user's model replaces the trained network; wrapping the exact score of the two
    deltas, its measured t_c is theory's (0.2926417) to the grid's refinement."""
    (tmp_path / "my_two_deltas.py").write_text(textwrap.dedent(TWO_DELTAS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = run_json(["validate", "--data", "two-deltas", "--model", "my_two_deltas:make", "--n-points", "21",
                    "--t-min", "0.2", "--out", str(tmp_path / "v")], capsys)
    assert doc["train"]["model"]["kind"] != "diffusers"
    assert doc["t_c_network"] == pytest.approx(0.2926417, rel=1e-3) and doc["rel_error"] < 1e-3
    assert (tmp_path / "v" / "margins.csv").is_file()


GMM_MODULE = """
from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.theory import VPLinear


def make():
    data = load_dataset("gmm-2d")
    return ExactDenoiser(data.model, VPLinear(), data.shape)
"""


def test_critical_time_with_a_user_model_reports_its_own_margin(tmp_path, monkeypatch, capsys):
    """critical-time --model: beside the data's critical times, the first event of the model's own margin;
    for the exact score of gmm-2d's mixture that is the mixture's own crossing (theory: t_c = 0.2137)."""
    from symbreak.analysis.datasets import load_dataset
    from symbreak.theory import VPLinear, critical_times

    (tmp_path / "my_gmm.py").write_text(textwrap.dedent(GMM_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = run_json(["critical-time", "--data", "gmm-2d", "--method", "gaussian", "--model", "my_gmm:make"], capsys)
    expected = critical_times(load_dataset("gmm-2d").model, VPLinear()).t_c
    assert doc["model"]["kind"] == "crossing"
    assert doc["model"]["critical"]["t"] == pytest.approx(expected, rel=2e-3)


SCHEDULED_MODULE = """
from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.theory import SymmetricDeltas, VPLinear, get_schedule


def linear():
    return ExactDenoiser(SymmetricDeltas(), VPLinear(), (1,))


def cosine():
    return ExactDenoiser(SymmetricDeltas(), get_schedule("vp-cosine"), (1,))
"""


class _ReachedTheData(Exception):
    pass


def test_validate_checks_t_min_against_the_models_schedule_before_any_work(tmp_path, monkeypatch, capsys):
    """--t-min is checked against the --model's schedule (not --schedule's) before the data are loaded:
    t = 0.995 lies beyond the vp-cosine schedule's T = 0.9946 but inside a VP-linear model's (0, 1], and
    the other way round."""
    from symbreak.analysis import datasets

    (tmp_path / "my_scheduled.py").write_text(textwrap.dedent(SCHEDULED_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))

    def reached(*args, **kwargs):
        raise _ReachedTheData

    monkeypatch.setattr(datasets, "load_dataset", reached)
    with pytest.raises(_ReachedTheData):           # accepted: the run goes on to the data
        main(["validate", "--data", "two-deltas", "--schedule", "vp-cosine", "--model", "my_scheduled:linear",
              "--t-min", "0.995"])
    assert main(["validate", "--data", "two-deltas", "--model", "my_scheduled:cosine", "--t-min", "0.995"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbreak validate: error: --t-min") and err.count("\n") == 1, err
