"""Figure 10 (diversity), run by ``symbreak figures --only 10 --quick``: the CSV holds the plotted numbers, checked
against an independent recomputation of the entropy (scipy) from the recorded shares, and against the result object
that the recipe plotted (the same cached setup)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from symbreak.experiments.cli import main


@pytest.fixture(scope="module")
def quick_diversity(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    cache = tmp_path_factory.mktemp("cache")
    assert main(["figures", "--only", "10", "--quick", "--out", str(out), "--cache-dir", str(cache)]) == 0
    return out, cache


def test_files_and_entropy_of_the_plotted_shares(quick_diversity):
    out, _ = quick_diversity
    for kind in ("png", "pdf", "csv", "json"):
        assert (out / f"10_diversity.{kind}").stat().st_size > 0
    frame = pd.read_csv(out / "10_diversity.csv")
    shares = frame[frame.series == "class shares"]
    entropy = frame[frame.series == "entropy"].set_index("set")
    sets = list(dict.fromkeys(shares.set))
    assert {"training set", "held-out", "DDPM (all steps)", "DDIM-5", "gls-DDIM-5"} <= set(sets)
    for name in sets:
        p = shares[shares.set == name].sort_values("class").share.to_numpy()
        assert len(p) == 10 and math.isclose(p.sum(), 1.0, abs_tol=1e-9)
        assert entropy.loc[name, "entropy"] == pytest.approx(stats.entropy(p, base=2), abs=1e-9)
        assert entropy.loc[name, "entropy_ci_low"] <= entropy.loc[name, "entropy"] + 1e-9
    summary = json.loads((out / "10_diversity.json").read_text())["summary"]
    for name in sets:
        assert summary["entropy_bits"][name]["entropy"] == pytest.approx(entropy.loc[name, "entropy"], abs=1e-9)
    # the paper's numbers stay a labelled reference, apart from ours
    paper = frame[frame.series == "paper reference"]
    assert set(paper.set) == {"training set", "DDPM-1000", "gls-DDIM-5", "DDIM-5"}
    assert paper.source.str.startswith("paper's Fig. 4").all()
    assert "CelebA64" in summary["paper_reference"]["label"]


def test_csv_equals_the_result_object(quick_diversity):
    """The training set's shares in the CSV equal the classifier's labels of the training part, recomputed
    here from the same cached setup with numpy's bincount."""
    from symbreak.experiments.paper.setup import prepare

    out, cache = quick_diversity
    setup = prepare("digits", quick=True, device="auto", cache_dir=cache)
    labels = setup.suite.label(setup.suite.train)
    expected = np.bincount(labels, minlength=10) / labels.size
    frame = pd.read_csv(out / "10_diversity.csv")
    got = frame[(frame.series == "class shares") & (frame.set == "training set")].sort_values("class").share.to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
