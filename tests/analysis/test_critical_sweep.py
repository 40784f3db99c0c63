"""benchmarks/critical_sweep.py: its closed-form population t_c against theory's population route for
every family and a few dimensions, one set of each family end to end through the dataset route, and its
bad options refused before any work."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "critical_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("critical_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["critical_sweep"] = module   # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["critical_sweep"]


@pytest.mark.parametrize("d", [2, 3, 6])
def test_closed_forms_equal_the_population_route(sweep, d):
    checked = sweep.oracle_check(d)
    assert checked and all(v["abs_diff"] < 1e-9 for v in checked.values()), checked


def test_one_set_of_every_family_runs_end_to_end(sweep):
    for family in sweep.FAMILIES.values():
        row = sweep.run_set(family, 2, 200, seed=0)
        assert row["t_c"] is not None and np.isfinite(row["rel_err"]), row
        assert row["kind"] in ("crossing", "closest-approach", "fold")
    symmetrised = sweep.run_set(sweep.FAMILIES["symmetrised"], 2, 400, seed=1)
    assert symmetrised["kind"] == "crossing" and abs(symmetrised["rel_err"]) < 0.1


def test_same_seed_same_numbers(sweep):
    family = sweep.FAMILIES["two-cluster"]
    a, b = (sweep.run_set(family, 3, 200, seed=4) for _ in range(2))
    assert a["t_c"] == pytest.approx(b["t_c"], rel=1e-12)


@pytest.mark.parametrize("argv, flag", [(["--families", "nope"], "--families"), (["--seed", "-1"], "--seed"),
                                        (["--out", "x.txt"], "--out")])
def test_bad_options_exit_2_before_work(sweep, capsys, tmp_path, argv, flag):
    with pytest.raises(SystemExit) as err:
        sweep.main(argv)
    assert err.value.code == 2 and flag in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_quick_family_writes_csv_and_provenance(sweep, tmp_path):
    out = tmp_path / "sweep.csv"
    assert sweep.main(["--quick", "--families", "symmetrised", "--out", str(out)]) in (0, None)
    config = json.loads(out.with_suffix(".json").read_text())
    assert out.read_text().count("\n") > 1 and "symmetrised" in json.dumps(config)
