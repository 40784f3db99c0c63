"""The offline evaluation: metric suite and floor, sampler runs, the elbow, the GLS table on gmm-2d
with the exact denoiser (no training), and the three commands' outputs and bad input."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from symbreak.experiments.cli import main
from symbreak.experiments.paper.late_start import elbow
from symbreak.experiments.paper.setup import prepare
from symbreak.experiments.paper.suite import classifier_suite, mixture_suite
from symbreak.experiments.sampling.draw import Method, draw_samples, sampling_grid



@pytest.fixture(scope="module")
def gmm():
    """gmm-2d with its exact denoiser, quick sizes (blocks of 60)."""
    return prepare("gmm-2d", denoiser="exact", quick=True)


# --- metric suite --------------------------------------------------------------------------------
def test_mixture_suite_identical_sets_are_zero_and_floor_has_every_metric(gmm):
    train = gmm.suite.train
    same = mixture_suite(train, train, gmm.train.model)  # held-out identical to the training part
    floor = same.floor(n_resplits=3)
    assert set(floor) == set(same.metrics) == {"w2", "sw", "coverage", "high_quality", "entropy", "kl"}
    assert floor["w2"].value == pytest.approx(0.0, abs=1e-6)
    assert floor["sw"].value == pytest.approx(0.0, abs=1e-12)
    assert floor["kl"].value == pytest.approx(0.0, abs=1e-12)
    assert floor["coverage"].value == 1.0
    # the floor of the real split: a finite positive W2 inside its resplit interval's neighbourhood
    real = gmm.suite.floor(n_resplits=5)
    assert real["w2"].ci == "resplits" and 0 < real["w2"].ci_low <= real["w2"].value <= real["w2"].ci_high
    assert 0 < real["w2"].value < 1.0


def test_classifier_suite_identical_sets_give_zero_fd_and_kid():
    import torch
    from sklearn.datasets import load_digits

    from symbreak.experiments.models.classifier import ClassifierConfig, ClassifierNet, FeatureClassifier

    x, labels = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(x))  # the file is ordered by writer: shuffle
    x = x[perm] / 8.0 - 1.0
    torch.manual_seed(0)  # an untrained (random, frozen) feature network is enough to test the wiring
    clf = FeatureClassifier(ClassifierNet(64, (256, 64), 10),
                            ClassifierConfig("digits", (8, 8), 10, data_hash="none"), 0.0, 0.0)
    suite = classifier_suite(x[:400], x[:400], clf, kid_subsets=5)
    floor = suite.floor()  # no resplit given: the floor has no interval
    assert set(floor) == {"fd", "kid", "sw", "entropy", "kl"} and floor["fd"].ci == "none"
    assert floor["fd"].value == pytest.approx(0.0, abs=1e-6)
    assert floor["sw"].value == 0.0 and floor["kl"].value == pytest.approx(0.0, abs=1e-12)
    # KID (unbiased MMD^2) of an independent sample of the same digits is ~0 next to a shifted set's
    shifted, other = x[:400] + 1.0, x[400:800]
    assert suite.metrics["fd"](shifted) > 5 * suite.metrics["fd"](other)
    assert abs(suite.metrics["kid"](other)) < 0.1 * suite.metrics["kid"](shifted)


def test_measure_blocks_and_bootstrap_interval(gmm):
    """The mean over seed blocks with a percentile bootstrap over the blocks: it contains its own estimate
    and stays inside the range of the block values (so a distance interval never goes below 0)."""
    suite = gmm.suite
    x = np.concatenate([suite.train[:60], suite.train[60:120] + 0.05, suite.train[120:180] + 0.1])
    m = suite.measure(x, ["sw"])["sw"]
    values = np.array([suite.metrics["sw"](x[i:i + 60]) for i in (0, 60, 120)])
    assert m.value == pytest.approx(values.mean()) and m.n_blocks == 3 and m.ci == "bootstrap over blocks"
    assert m.ci_low <= m.value <= m.ci_high
    assert values.min() <= m.ci_low and m.ci_high <= values.max()
    assert math.isnan(suite.measure(x[:60], ["sw"])["sw"].ci_low)  # one block: no interval
    with pytest.raises(ValueError, match="multiple of the block size 60"):
        suite.measure(x[:59])


# --- sampling ------------------------------------------------------------------------------------
def test_draw_samples_per_sample_seeds_and_save(gmm, tmp_path):
    method = Method("DDPM-5", "ddim", 5, {"eta": 1.0})
    both = draw_samples(gmm.denoiser, method, [3, 4, 5], start="gls", t_start=0.3, gls=gmm.gls)
    alone = draw_samples(gmm.denoiser, method, [4], start="gls", t_start=0.3, gls=gmm.gls, batch_size=1,
                         save_to=tmp_path / "x.npy")
    np.testing.assert_allclose(alone.x[0], both.x[1], rtol=0, atol=1e-12)
    assert both.nfe == 5 and both.config["step_start"] == 299
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), alone.x.astype(np.float32))
    assert json.loads((tmp_path / "x.config.json").read_text())["seeds"] == [4]
    with pytest.raises(ValueError, match="t_start"):
        draw_samples(gmm.denoiser, method, [0], start="gls", gls=gmm.gls)


def test_grids_vanilla_uniform_skip_and_all_steps(gmm):
    schedule = gmm.schedule
    steps = {n: int(schedule.step_of_t(float(sampling_grid(schedule, n, None)[0]))) for n in (3, 5, 10)}
    assert steps == {3: 666, 5: 800, 10: 900}  # the paper's vanilla starts
    full = sampling_grid(schedule, None, float(schedule.t_of_step(414)))
    assert len(full) == 416 and float(full[-1]) == 0.0  # steps 414..0, then t = 0


# --- the elbow -----------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["linear", "log"])
def test_elbow_finds_a_known_kink_and_ignores_the_upturn_at_t(scale):
    rng = np.random.default_rng(1)
    x = np.arange(49, 1000, 50, dtype=float)
    kink = 449.0
    line = 2.0 + 0.03 * np.maximum(0.0, kink - x)           # flat after the kink, rising before it
    noisy = line * np.exp(0.02 * rng.standard_normal(x.size))
    noisy[-1] *= 6.0                                        # a few-step sampler started at T gets worse
    curve = np.exp(noisy) if scale == "log" else noisy
    e = elbow(x, curve, scale)
    assert e.x == pytest.approx(kink, abs=50) and e.window[1] < x[-1]
    assert elbow(x[:4], curve[:4], scale).x is None  # too few points for a spline: no elbow, a reason
    with pytest.raises(ValueError, match="strictly increasing"):
        elbow(x[::-1], curve)


# --- the GLS table through the CLI ---------------------------------------------------------------
@pytest.fixture(scope="module")
def gls_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("gls") / "gmm"
    assert main(["gls-table", "--data", "gmm-2d", "--quick", "--denoiser", "exact", "--out", str(out)]) == 0
    return out


def test_gls_at_theory_start_beats_vanilla_at_three_steps(gls_out):
    summary = pd.read_csv(gls_out / "gls_table_summary.csv")
    rows = summary[summary.n == 3].set_index("sampler")
    for sampler in ("DDPM", "DDIM"):  # the vanilla 3-step sampler from step 666 is poor
        r = rows.loc[sampler]
        assert r["gls-tc_ci_high"] < r["vanilla_ci_low"], sampler
        assert r.gain_tc > 1.5
    # the gls-tc start is the Gaussian critical time: alpha_c^2 = sqrt(1 + Lambda^2) - Lambda,
    # Lambda = 0.5 + 0.1^2 for four unit-circle modes of std 0.1
    result = json.loads((gls_out / "gls_table.json").read_text())
    lam = 0.51
    assert result["critical"]["alpha_c"] ** 2 == pytest.approx(math.sqrt(1 + lam**2) - lam, rel=1e-6)
    assert set(rows.step_tc) == {result["critical"]["step_c"]}


def test_gls_outputs_csv_holds_the_json_numbers(gls_out):
    names = {p.name for p in gls_out.iterdir()}
    assert {"gls_table.md", "gls_table.csv", "gls_table_summary.csv", "gls_table_sweep.csv", "gls_table.json",
            "gls_table.config.json"} <= names
    rows = pd.read_csv(gls_out / "gls_table.csv")
    result = json.loads((gls_out / "gls_table.json").read_text())
    from_json = pd.DataFrame(result["rows"])
    pd.testing.assert_frame_equal(rows[from_json.columns], from_json, check_dtype=False, rtol=1e-12)
    config = json.loads((gls_out / "gls_table.config.json").read_text())
    assert config["seeds"]["count"] == 120 and config["denoiser"]["kind"] == "exact"
    assert "paper's FID on its datasets" in (gls_out / "gls_table.md").read_text()


def test_late_start_command_writes_its_outputs(tmp_path):
    ls = tmp_path / "ls"
    assert main(["late-start", "--data", "gmm-2d", "--quick", "--denoiser", "exact", "--out", str(ls)]) == 0
    curves = pd.read_csv(ls / "late_start.csv")
    result = json.loads((ls / "late_start.json").read_text())
    from_json = pd.read_json(io.StringIO(json.dumps(result["curves"])))  # JSON null -> NaN
    pd.testing.assert_frame_equal(curves, from_json[curves.columns], check_dtype=False)
    assert {"late_start.png", "late_start.pdf", "late_start_elbows.csv", "late_start.config.json"} <= {
        p.name for p in ls.iterdir()}
    assert set(curves.method) == {"DDPM (all steps)", "DDIM-10", "DDIM-5", "PNDM-10", "PNDM-5"}


def test_diversity_rows(gmm):
    from symbreak.experiments.paper.diversity import diversity

    result = diversity(gmm, list(range(60)), steps=(3,), n_boot=50).shares.set_index("set")
    assert list(result.index) == ["training set", "held-out", "DDPM (all steps)", "DDIM-3", "gls-DDIM-3"]
    assert result.loc["training set", "kl_to_train"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.filter(like="share_").sum(axis=1), 1.0)
    assert result.loc["DDPM (all steps)", "nfe"] == 1000 and result.loc["gls-DDIM-3", "step"] == 217
    # entropy in bits of the shares, checked against scipy
    from scipy.stats import entropy

    shares = result.loc["DDIM-3"].filter(like="share_").to_numpy(dtype=float)
    assert result.loc["DDIM-3", "entropy"] == pytest.approx(entropy(shares, base=2))


def test_entropy_interval_is_a_bias_corrected_label_bootstrap():
    from symbreak.analysis import metrics as M
    from symbreak.experiments.paper.diversity import entropy_interval

    labels = np.repeat(np.arange(4), [40, 10, 6, 4])  # far from uniform: the log2 K cap plays no part
    shares = M.class_histogram(labels, 4)
    value = M.entropy_bits(shares)
    low, high = entropy_interval(shares, labels.size, n_boot=4000)
    plain = M.bootstrap_ci(lambda l: M.entropy_bits(M.class_histogram(l, 4)), labels, n_boot=4000, seed=1)
    assert low < value < high
    assert high - low == pytest.approx(plain.ci_high - plain.ci_low, rel=0.15)  # same spread as resampling labels
    assert plain.ci_low < low and plain.ci_high < high                            # shifted up by the bias
    uniform = np.full(10, 0.1)
    assert entropy_interval(uniform, 1437)[1] <= np.log2(10) and entropy_interval(uniform, 1437)[0] < np.log2(10)


@pytest.mark.parametrize("argv", [
    ["gls-table", "--data", "no-such-data", "--quick"],
    ["gls-table", "--data", "gmm-2d", "--quick", "--denoiser", "exact", "--seeds", "9-1"],
    ["gls-table", "--data", "gmm-2d", "--quick", "--denoiser", "exact", "--seeds", "0-9"],
    ["late-start", "--data", "gmm-2d", "--quick", "--denoiser", "exact", "--points", "3"],
    ["diversity", "--data", "gmm-2d", "--quick", "--denoiser", "oracle"],
])
def test_bad_input_exits_2_and_writes_nothing(argv, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "error:" in capsys.readouterr().err
