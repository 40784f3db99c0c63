"""Figure 13 (the critical window three ways), made test-sized: its four files, the numbers its CSV keeps,
a caption that states the sizes and the theory, and the summary's windows for every denoiser."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from symbreak.experiments.recipes import window_figures as F
from symbreak.experiments.recipes.common import FigureContext, load_recipes, make_figure

TINY = {"digits": {"quick": (12, 16, (0.15, 0.7, 4), 5, 7)}, "gmm-2d": {"quick": (16, 16, (0.05, 0.6, 4), 5, 7)}}


def test_figure_13_is_registered():
    recipe = load_recipes()[13]
    assert recipe.slug == "critical_window" and recipe.draw is F.draw_windows and recipe.compute is F.compute_windows


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "SIZES", TINY)
        mp.setattr(F, "SWEEP_STEPS", {"quick": (50, 100)})
        out = tmp_path_factory.mktemp("fig13")
        ctx = FigureContext(out, quick=True, device="cpu", cache_dir=tmp_path_factory.mktemp("cache"))
        return make_figure(load_recipes()[13], ctx)


def test_figure_13_files_numbers_and_caption(saved):
    assert all(p.is_file() and p.stat().st_size > 0 for p in saved.paths.values())
    data = pd.read_csv(saved.paths["csv"])
    assert set(data["panel"]) == set("abcdefgh")
    table = data[data["series"] == "windows"]
    assert set(table["denoiser"].dropna()) == {"exact", "gaussian", "network"}
    doc = json.loads(saved.paths["json"].read_text())
    summary = doc["summary"]
    for name in ("digits", "gmm-2d"):
        rows = summary[name]["windows"]
        assert {(r["denoiser"], r["measure"]) for r in rows} >= {(d, m) for d in ("exact", "gaussian", "network")
                                                                for m in ("stability", "cloning", "commitment")}
        assert summary[name]["theory"]["t_c_exact"] > 0
    assert [r["steps"] for r in summary["sweep_gmm_2d"]][::4] == [50, 100]
    caption = saved.caption
    assert "12 paths" in caption and "16 paths" in caption and "t_c exact" in caption and "Quick mode" in caption
