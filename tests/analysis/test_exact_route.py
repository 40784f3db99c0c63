"""Dataset critical times: all points by default, the successive-bifurcation hierarchy with labels, the
bootstrap interval and the Gaussian route's asymptotic interval and bias note."""
import numpy as np
import pytest

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import load_dataset


@pytest.fixture(scope="module")
def gmm2d():
    return load_dataset("gmm-2d", n=200, seed=0)


def test_hierarchy_and_bootstrap(gmm2d):
    r = dataset_critical_times(gmm2d, method="both", bootstrap=4, seed=1)
    assert r.n_exact == 200 and r.subset is None
    assert r.t_c_ci[0] <= r.t_c_ci[1] and len(r.bootstrap["t_c"]) == 4
    assert r.t_c_gaussian_ci[0] < r.t_c_gaussian < r.t_c_gaussian_ci[1]
    assert "gaussian" in r.notes
    later = [h for h in r.hierarchy if "groups" in h]
    assert later and all(set(h["groups"]["+"]).isdisjoint(h["groups"]["-"]) for h in later)
    out = r.to_dict()
    assert out["hierarchy"] and out["t_c_ci"] and any(r.table()["quantity"] == "t_c CI")


def test_bad_bootstrap_names_the_argument(gmm2d):
    with pytest.raises(ValueError, match="^bootstrap: "):
        dataset_critical_times(gmm2d, bootstrap=-1)
    with pytest.raises(ValueError, match="^level: "):
        dataset_critical_times(gmm2d, level=1.5)
