"""``compute`` of figures 1, 2 and 11 (full size, as in the committed figure set) runs without matplotlib
(checked in a fresh interpreter: nothing imports it) and returns the numbers of the committed CSV in
figures/; and the registry holds compute and draw of every figure."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symbreak.experiments.recipes.common import FigureContext, load_recipes, portable

FIGURES_DIR = Path(__file__).resolve().parents[3] / "figures"

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    from threadpoolctl import threadpool_limits
    from symbreak.experiments.recipes.common import FigureContext
    from symbreak.experiments.recipes.schedule_figure import compute_schedules
    from symbreak.experiments.recipes.theory_figures import compute_bifurcation, compute_two_deltas

    ctx = FigureContext(Path(sys.argv[1]))
    with threadpool_limits(limits=1, user_api="blas"):  # as make_figure computes
        one, two, eleven = compute_two_deltas(ctx), compute_bifurcation(ctx), compute_schedules(ctx)
    fixed = [(s.alpha, p.x) for s in two.diagram.samples for p in s.points]
    np.savez(Path(sys.argv[1]) / "numbers.npz", x=one.x, u=np.stack(one.u), times=np.array(one.times),
             paths=one.paths, t_path=one.t_path, ends=one.ends, fixed=np.array(fixed),
             t_curvature=two.t_curvature, curvature=two.curvature,
             deltas=np.concatenate([c.margin_deltas for c in eleven.curves]))
    (Path(sys.argv[1]) / "rows.json").write_text(json.dumps(eleven.rows()))
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "seaborn", "pyplot"))))
""")


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    out = tmp_path_factory.mktemp("compute")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1]), np.load(out / "numbers.npz"), \
        json.loads((out / "rows.json").read_text())


def committed(stem: str) -> pd.DataFrame:
    path = FIGURES_DIR / f"{stem}.csv"
    if not path.exists():
        pytest.skip(f"no committed {path.name}")
    return pd.read_csv(path)


def test_compute_imports_no_matplotlib(computed):
    modules, _, _ = computed
    assert modules == []


def test_figure_1_numbers_are_the_committed_csv(computed):
    _, n, _ = computed
    df = committed("01_two_deltas_potential")
    for t, u in zip(n["times"], n["u"]):
        rows = df[(df.panel == "a") & np.isclose(df.t, t, rtol=0, atol=1e-15)]
        np.testing.assert_array_equal(rows.x, n["x"])
        np.testing.assert_allclose(rows.y, u, rtol=1e-12, atol=1e-14)
    paths = df[(df.panel == "b") & (df.element == "line")]
    for k in range(n["paths"].shape[1]):
        rows = paths[paths.path == k]
        np.testing.assert_allclose(rows.x, n["t_path"], rtol=1e-12)
        np.testing.assert_allclose(rows.y, n["paths"][:, k], rtol=1e-12, atol=1e-14)
        assert (rows.end == n["ends"][k]).all()


def test_figure_2_numbers_are_the_committed_csv(computed):
    _, n, _ = computed
    df = committed("02_bifurcation")
    lines = df[(df.panel == "a") & (df.element == "line")]
    got = np.array(sorted(map(tuple, n["fixed"])))
    want = np.array(sorted(zip(lines.x, lines.y)))
    # x* ~ sqrt(t_c - t) next to the pitchfork turns a last-digit change of the bisected times into ~3e-11
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    c = df[(df.panel == "c") & (df.element == "line")]
    np.testing.assert_allclose(c.x, n["t_curvature"], rtol=1e-12)
    np.testing.assert_allclose(c.y, n["curvature"], rtol=1e-12)


def test_figure_11_numbers_are_the_committed_csv(computed):
    _, n, rows = computed
    df = committed("11_schedules_logsnr")
    table = df[df.series == "critical times"]
    assert len(table) == len(rows) == 8
    for (_, want), got in zip(table.iterrows(), rows):
        assert (want.schedule, want.data) == (got["schedule"], got["data"])
        for key in ("t_c", "logsnr_c", "alpha_c"):
            assert want[key] == pytest.approx(got[key], rel=1e-12)
    curves = df[(df.panel == "a") & (df.element == "line")]
    np.testing.assert_allclose(curves.y, n["deltas"], rtol=1e-12, atol=1e-14)


def test_every_figure_registers_compute_and_draw():
    recipes = load_recipes()
    assert set(range(1, 12)) <= set(recipes)  # figures 1-11 (other modules may add more)
    for r in recipes.values():
        assert callable(r.compute) and callable(r.draw) and r.compute is not r.draw


def test_context_settings_and_portable_paths(tmp_path):
    quick, full = FigureContext(tmp_path, quick=True), FigureContext(tmp_path)
    assert (quick.settings.n_resplits, quick.settings.n_boot, quick.settings.critical_kinds()) == (3, 200, ("gaussian",))
    assert (full.settings.n_resplits, full.settings.n_boot, full.settings.sweep_every) == (20, 1000, 1)
    root = tmp_path / "cache"
    config = {"denoiser": {"cache_key": "abc", "cache_path": str(root / "digits-abc"), "from_cache": True},
              "list": [root / "classifier" / "x"], "other": "/elsewhere/file", "n": 3}
    assert portable(config, root) == {"denoiser": {"cache_key": "abc", "cache_path": "digits-abc", "from_cache": True},
                                      "list": [str(Path("classifier") / "x")], "other": "/elsewhere/file", "n": 3}
    assert FigureContext(tmp_path, cache_dir=root).config()["cache_dir"] == "(given; path not recorded)"
    assert FigureContext(tmp_path, cache_dir=Path("rel/cache")).config()["cache_dir"] == "rel/cache"


def test_committed_json_holds_no_absolute_path():
    texts = [p.read_text() for p in sorted(FIGURES_DIR.glob("*.json"))]
    if not texts:
        pytest.skip("no committed figures")
    assert not [t for t in texts if '"/' in t]
