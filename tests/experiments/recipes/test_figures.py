"""``symbreak figures`` and the figure framework, checked against independent answers: the closed-form
two-delta fixed points (solved here with scipy's brentq), alpha_c^2 = sqrt(2) - 1 and the curvature
d^2u/dx^2(0) = -beta (1/2 + (2 alpha^2 - 1)/(alpha^2 - 1)^2), finite differences of the CSV's potential,
byte/pixel identity of regenerated files, and all-or-nothing writing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.optimize import brentq

from symbreak.experiments.cli import main
from symbreak.experiments.output import figure_environment, new_figure
from symbreak.experiments.recipes.common import (
    FIGURES,
    FigureContext,
    FigureOutput,
    FigureRecipe,
    Recorder,
    load_recipes,
    select_figures,
)

STEMS = {1: "01_two_deltas_potential", 2: "02_bifurcation"}
KINDS = ("png", "pdf", "csv", "json")
BETA_MIN, BETA_MAX = 0.1, 20.0


# --- independent closed forms (VP linear schedule, two deltas at +-1) -------------------------------
def log_alpha(t):
    return -0.5 * (BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t)


def t_of_alpha(alpha: float) -> float:
    return brentq(lambda t: log_alpha(t) - math.log(alpha), 1e-9, 1.0, xtol=1e-15)


def curvature_over_beta(t):
    """d^2u/dx^2(0) / beta = -(1/2 + (2 alpha^2 - 1)/(alpha^2 - 1)^2)."""
    a2 = np.exp(2 * log_alpha(t))
    return -(0.5 + (2 * a2 - 1) / (a2 - 1) ** 2)


def fixed_point(alpha: float) -> float:
    """The positive root of (1 + alpha^2) x = 2 alpha tanh(alpha x / sigma^2)."""
    s2 = 1 - alpha * alpha
    return brentq(lambda x: (1 + alpha * alpha) * x - 2 * alpha * np.tanh(alpha * x / s2), 1e-3, 2.0, xtol=1e-15)


ALPHA_C = math.sqrt(math.sqrt(2) - 1)
T_C = t_of_alpha(ALPHA_C)


# --- runs shared by the tests ---------------------------------------------------------------------
def run_figures(out: Path, *extra: str) -> None:
    assert main(["figures", "--only", "1,2", "--quick", "--out", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("first") / "figs", tmp_path_factory.mktemp("second") / "figs"
    run_figures(first)
    run_figures(second)
    return first, second


def csv(out: Path, n: int) -> pd.DataFrame:
    return pd.read_csv(out / f"{STEMS[n]}.csv")


# --- files ------------------------------------------------------------------------------------------
def test_every_file_is_written(runs):
    out = runs[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.{k}" for s in STEMS.values() for k in KINDS)
    meta = json.loads((out / f"{STEMS[1]}.json").read_text())
    assert meta["figure"] == 1 and meta["config"]["quick"] is True and meta["config"]["seed"] == 0
    assert meta["summary"]["t_c"] == pytest.approx(T_C, rel=1e-7)
    assert "t_c = 0.2926" in meta["caption"] and meta["versions"]["matplotlib"]
    assert meta["csv_columns"] == list(csv(out, 1).columns)
    assert not list(out.parent.glob(".figs.*")), "a staging folder was left behind"


def test_regeneration_is_identical(runs):
    first, second = runs
    for stem in STEMS.values():
        for kind in ("pdf", "csv", "json"):
            assert (first / f"{stem}.{kind}").read_bytes() == (second / f"{stem}.{kind}").read_bytes(), (stem, kind)
        a, b = (np.asarray(Image.open(d / f"{stem}.png")) for d in runs)
        assert a.shape == b.shape and a.shape[0] > 400 and np.array_equal(a, b)


def test_pdf_embeds_truetype_and_no_timestamp(runs):
    for stem in STEMS.values():
        pdf = (runs[0] / f"{stem}.pdf").read_bytes()
        assert b"/FontFile2" in pdf and b"/CreationDate" not in pdf and b"/ModDate" not in pdf


# --- the plotted numbers ------------------------------------------------------------------------------
def test_bifurcation_fixed_points_at_alpha_0_8(runs):
    df = csv(runs[0], 2)
    rows = df[(df.panel == "a") & (df.element == "line") & ((df.x - 0.8).abs() < 1e-12)].sort_values("y")
    x_star = fixed_point(0.8)
    assert x_star == pytest.approx(0.94703858, abs=1e-8)
    np.testing.assert_allclose(rows.y, [-x_star, 0.0, x_star], atol=1e-10)
    assert rows.stable.tolist() == [True, False, True]
    # every fixed point of panel (b) solves the fixed-point equation of the drift
    b = df[(df.panel == "b") & (df.element == "line")]
    a = np.exp(log_alpha(b.x.to_numpy()))
    residual = (1 + a * a) * b.y - 2 * a * np.tanh(a * b.y / (1 - a * a))
    assert np.abs(residual).max() < 1e-9 and len(b) > 150


def test_bifurcation_marks_the_critical_time(runs):
    df = csv(runs[0], 2)
    marks = df[df.element == "marker"]
    assert set(marks.kind) == {"t_c"}
    assert marks[marks.panel == "a"].x.item() == pytest.approx(ALPHA_C, rel=1e-9)
    np.testing.assert_allclose(marks[marks.panel != "a"].x, T_C, rtol=1e-8)
    assert T_C == pytest.approx(0.2926417, abs=1e-7)
    summary = json.loads((runs[0] / f"{STEMS[2]}.json").read_text())["summary"]
    # the pitchfork found from the number of fixed points alone sits at the same time (to the resolution
    # of fixed_points_1d's grid: three roots closer than its spacing count as one)
    assert summary["pitchfork_from_fixed_point_count"]["t"] == pytest.approx(T_C, abs=1e-6)
    # the curvature panel against the closed form, and its sign change at t_c
    c = df[(df.panel == "c") & (df.element == "line")]
    np.testing.assert_allclose(c.y, curvature_over_beta(c.x.to_numpy()), rtol=1e-9, atol=1e-12)
    assert ((c.y > 0) == (c.x > T_C)).all()


def test_potential_is_flat_at_t_c(runs):
    df = csv(runs[0], 1)
    h = 0.01
    for t, series in df[(df.panel == "a")].groupby("t"):
        x, u = series.x.to_numpy(), series.y.to_numpy()
        i = int(np.flatnonzero(x == 0.0)[0])
        assert x[i - 1] == pytest.approx(-h, abs=1e-15) and x[i + 1] == pytest.approx(h, abs=1e-15)
        fd = (u[i + 1] - 2 * u[i] + u[i - 1]) / h**2
        beta = BETA_MIN + (BETA_MAX - BETA_MIN) * t
        expected = beta * curvature_over_beta(t)
        if abs(t - T_C) < 1e-9:
            assert abs(fd) < 1e-3 and abs(expected) < 1e-7
        else:
            assert fd == pytest.approx(expected, rel=1e-3)
    assert sorted(df[df.panel == "a"].t.unique()) == pytest.approx(sorted([0.15, T_C, 0.45]))


def test_trajectories_end_on_the_deltas(runs):
    df = csv(runs[0], 1)
    paths = df[(df.panel == "b") & (df.element == "line")]
    assert paths.path.nunique() == 30
    ends = paths[paths.x == 0.0]
    np.testing.assert_allclose(np.abs(ends.y), 1.0, atol=1e-6)
    assert (np.sign(ends.y) == ends.end).all()
    assert df[(df.panel == "b") & (df.element == "marker")].x.item() == pytest.approx(T_C, rel=1e-8)


def test_seed_changes_the_trajectories(runs, tmp_path):
    with figure_environment():
        b = FIGURES[1].make(FigureContext(tmp_path, quick=True, seed=1)).data
    a = csv(runs[0], 1)
    pa, pb = (d[(d.panel == "b") & (d.element == "line")] for d in (a, b))
    assert len(pa) == len(pb) and not np.allclose(pa.y, pb.y)
    np.testing.assert_array_equal(a[a.panel == "a"].y, b[b.panel == "a"].y)  # the potential does not depend on it


# --- bad input and failures ---------------------------------------------------------------------------
@pytest.mark.parametrize("only", ["1,99", "0", "x", "97-99"])
def test_unknown_figure_exits_2_and_writes_nothing(tmp_path, capsys, only):
    accepted = ", ".join(map(str, load_recipes()))
    assert accepted.startswith("1, 2, 3") and "11" in accepted
    out = tmp_path / "figs"
    assert main(["figures", "--only", only, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--only" in err and f"accepted: {accepted}\n" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_failed_figure_leaves_nothing(tmp_path, monkeypatch):
    class BrokenTable:
        columns = ["x"]

        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    def draw(result):
        fig, _ = new_figure(1, 1, 2.0, 2.0)
        return FigureOutput(fig, BrokenTable(), {}, "", {})

    load_recipes()
    monkeypatch.setitem(FIGURES, 999, FigureRecipe(999, "broken", "broken", compute=lambda ctx: None, draw=draw))
    out = tmp_path / "figs"
    with pytest.raises(RuntimeError, match="disk full"):
        main(["figures", "--only", "999", "--out", str(out)])
    assert list(tmp_path.iterdir()) == []


def test_select_figures():
    available = [1, 2, 3, 11]
    assert select_figures(None, available) == available
    assert select_figures("11, 1-2,1", available) == [1, 2, 11]
    with pytest.raises(ValueError, match="unknown figure number.*5.*accepted: 1, 2, 3, 11"):
        select_figures("1,5", available)


def test_recorder_keeps_what_was_drawn():
    fig, axes = new_figure(1, 1, 2.0, 2.0)
    ax = axes[0, 0]
    rec = Recorder()
    with pytest.raises(ValueError, match="register the axes"):
        rec.line(ax, "s", [0.0], [1.0])
    rec.axes(ax, "a", "t", "x")
    (line,) = rec.line(ax, "s", [0.0, 0.5], [1.0, 2.0], columns={"path": 3})
    rec.mark(ax, 0.25, "t_c", "t_c")
    df = rec.frame()
    np.testing.assert_array_equal(line.get_xydata(), df[df.element == "line"][["x", "y"]].to_numpy())
    assert str(df.path.dtype) == "Int64" and df.path.iloc[0] == 3 and pd.isna(df.path.iloc[2])
    assert ax.get_xlabel().startswith("time $t$") and ax.lines[-1].get_linestyle() == "--"
    with pytest.raises(ValueError, match="kind: unknown marker kind"):
        rec.mark(ax, 0.1, "t_x")
