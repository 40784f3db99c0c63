"""Paired statistics of the GLS table: block bootstrap intervals that hold their estimate and stay >= 0, the
paired gain vanilla / start on common seed blocks against a direct computation, the floor's range, and the
extended table (solvers, teleportation) leaving the default table unchanged."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from symbreak.experiments.paper.gls_table import ALL_STARTS, STARTS, default_sweep, gls_table
from symbreak.experiments.paper.setup import prepare
from symbreak.experiments.paper.suite import block_bootstrap, paired_gain, summarise_blocks


def test_block_bootstrap_is_exact_for_few_blocks_and_seeded_beyond():
    idx = block_bootstrap(3)
    assert idx.shape == (27, 3) and {tuple(r) for r in idx} == set(itertools.product(range(3), repeat=3))
    np.testing.assert_array_equal(block_bootstrap(9, seed=4), block_bootstrap(9, seed=4))
    assert block_bootstrap(9).shape == (4000, 9)


@pytest.mark.parametrize("values", [[64.0, 30.0], [0.41, 2.3, 13.6, 0.2, 5.0], [1.0, 1.0, 1.0, 1.0, 100.0],
                                    [-1.7, 0.4, 3.0, -0.2, 1.1]])
def test_intervals_hold_their_estimate_and_stay_in_the_block_range(values):
    m = summarise_blocks(np.array(values), 60 * len(values))
    assert m.ci_low <= m.value <= m.ci_high
    assert min(values) <= m.ci_low and m.ci_high <= max(values)  # so a distance's interval is >= 0


def test_a_t_interval_would_go_below_zero_where_the_bootstrap_does_not():
    """The --quick table's FD row 64 [-33.8, 162]: two blocks, t_{0.975, 1} = 12.7."""
    m = summarise_blocks(np.array([56.3, 71.7]), 120)
    assert 56.3 <= m.ci_low < m.value < m.ci_high <= 71.7 and m.ci == "bootstrap over blocks"


def test_paired_gain_matches_a_direct_paired_resampling():
    rng = np.random.default_rng(1)
    vanilla = rng.uniform(50, 80, 5)
    gls = vanilla / 2 + rng.normal(0, 1, 5)
    g = paired_gain(vanilla, gls)
    assert g.ratio == pytest.approx(vanilla.mean() / gls.mean()) and g.difference == pytest.approx(
        vanilla.mean() - gls.mean())
    ratios = [vanilla[list(r)].mean() / gls[list(r)].mean() for r in itertools.product(range(5), repeat=5)]
    np.testing.assert_allclose([g.ratio_low, g.ratio_high], np.quantile(ratios, [0.025, 0.975]))
    assert g.ratio_low <= g.ratio <= g.ratio_high and g.difference_low <= g.difference <= g.difference_high
    # pairing: a common block effect cancels in the difference, so its interval is narrow
    shared = rng.normal(0, 20, 5)
    paired = paired_gain(vanilla + shared, gls + shared)
    assert paired.difference_high - paired.difference_low < 0.25 * (np.ptp(vanilla + shared))


def test_paired_gain_errors_and_nan_ratio_for_signed_metrics():
    with pytest.raises(ValueError, match="paired"):
        paired_gain(np.ones(3), np.ones(4))
    assert np.isnan(paired_gain(np.array([1.0, -1.0]), np.array([0.5, 0.2])).ratio)


@pytest.fixture(scope="module")
def gmm():
    return prepare("gmm-2d", denoiser="exact", quick=True)


def table_of(setup, **kw):
    seeds = list(range(3 * setup.block_size))
    selection = list(range(10**6, 10**6 + setup.block_size))
    return gls_table(setup, seeds, selection, steps=(3,), sweep=default_sweep(setup.schedule)[::6], n_resplits=3,
                     **kw)


def test_extended_table_adds_solvers_and_teleport_without_changing_the_default_rows(gmm):
    default = table_of(gmm, samplers={"DDIM": ("ddim", {})})
    extended = table_of(gmm, samplers={"DDIM": ("ddim", {}), "UniPC": ("unipc", {})}, starts=ALL_STARTS)
    assert default.starts == STARTS and list(default.rows.start.unique()) == list(STARTS)
    rows = extended.rows
    same = rows[(rows.sampler == "DDIM") & rows.start.isin(STARTS)].reset_index(drop=True)
    np.testing.assert_array_equal(same.value.to_numpy(), default.rows.value.to_numpy())
    assert list(default.summary().columns) == [c for c in extended.summary().columns
                                               if "teleport" not in c and "trailing" not in c]
    assert ((rows.ci_low <= rows.value) & (rows.value <= rows.ci_high)).all()
    assert (rows[rows.metric.isin(["w2", "sw"])].ci_low >= 0).all()
    for m in extended.floor.values():
        assert m.ci_low <= m.value <= m.ci_high
    p = extended.paired()
    assert set(p.start) == set(ALL_STARTS[1:]) and (p.n_blocks == 3).all()
    assert ((p.ratio_low <= p.ratio) & (p.ratio <= p.ratio_high)).all()
    tele = rows[(rows.start == "teleport-tc") & (rows.metric == "w2")]
    gls = rows[(rows.start == "gls-tc") & (rows.metric == "w2")]
    np.testing.assert_allclose(tele.value.to_numpy(), gls.value.to_numpy(), rtol=0.05)  # alpha_T^2 Lambda is tiny
    assert "Paired gains" in extended.to_markdown()
    trailing = rows[rows.start == "trailing"]  # N(0, I) at T on diffusers' trailing timesteps (step N - 1)
    assert (trailing.step == gls_schedule_steps(gmm) - 1).all()
    q = extended.paired(reference="trailing")
    assert "trailing" not in set(q.start) and "vanilla" in set(q.start)
    assert ((q.ratio_low <= q.ratio) & (q.ratio <= q.ratio_high)).all()


def gls_schedule_steps(setup) -> int:
    return int(setup.schedule.n_steps)


def test_bad_starts_raise(gmm):
    with pytest.raises(ValueError, match="starts"):
        table_of(gmm, starts=("vanilla", "teleport-tc"))
