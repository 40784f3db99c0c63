"""Time grids against diffusers' set_timesteps (every spacing, both scheduler families, steps_offset) and the
continuous uniform-logsnr and Karras (EDM rho = 7) grids against their defining formulas."""
from __future__ import annotations

import numpy as np
import pytest

from symbreak.experiments.sampling.grids import (SPACINGS, default_grid, diffusers_steps, discrete_grid, karras_grid,
                                                 logsnr_grid, spaced_grid)
from symbreak.theory import DiscreteDDPM, VPCosine, VPLinear

STEPS = (1, 2, 3, 5, 7, 10, 20, 25, 50)


def diffusers_timesteps(family: str, spacing: str, n: int, offset: int = 0) -> np.ndarray:
    schedulers = pytest.importorskip("diffusers.schedulers")
    cls = {"multistep": schedulers.DPMSolverMultistepScheduler, "unipc": schedulers.UniPCMultistepScheduler,
           "ddim": schedulers.DDIMScheduler}[family]
    scheduler = cls(num_train_timesteps=1000, timestep_spacing=spacing, steps_offset=offset)
    scheduler.set_timesteps(n)
    return scheduler.timesteps.numpy()


@pytest.mark.parametrize("spacing", SPACINGS)
def test_steps_match_diffusers_set_timesteps(spacing):
    for n in STEPS:
        for theirs in ("multistep", "unipc"):
            np.testing.assert_array_equal(diffusers_steps(n, spacing), diffusers_timesteps(theirs, spacing, n))
        np.testing.assert_array_equal(diffusers_steps(n, spacing, family="ddim"), diffusers_timesteps("ddim", spacing, n))
        np.testing.assert_array_equal(diffusers_steps(n, spacing, steps_offset=1),
                                      diffusers_timesteps("multistep", spacing, n, offset=1))
        np.testing.assert_array_equal(diffusers_steps(n, spacing, family="ddim", steps_offset=1),
                                      diffusers_timesteps("ddim", spacing, n, offset=1))


def test_spaced_grid_is_steps_then_zero_and_ddim_leading_is_the_paper_grid():
    schedule = DiscreteDDPM()
    grid = spaced_grid(schedule, 5, "trailing").numpy()
    np.testing.assert_allclose(grid, np.concatenate([(diffusers_steps(5, "trailing") + 1) / 1000, [0.0]]))
    for n in (3, 5, 10):  # DDIM's leading spacing is the paper's uniform skip (666 / 800 / 900)
        np.testing.assert_allclose(spaced_grid(schedule, n, "leading", family="ddim"), discrete_grid(schedule, n))
        np.testing.assert_allclose(spaced_grid(schedule, n, "leading", family="ddim"), default_grid(schedule, n))


@pytest.mark.parametrize("schedule", [VPLinear(), VPCosine(), DiscreteDDPM()], ids=lambda s: s.name)
def test_logsnr_and_karras_grids(schedule):
    t_end = 1e-2
    grid = logsnr_grid(schedule, 6, t_end=t_end).numpy()
    assert grid[0] == schedule.T and grid[-2] == t_end and grid[-1] == 0.0 and len(grid) == 7
    np.testing.assert_allclose(np.diff(schedule.logsnr(grid[:-1])), np.diff(schedule.logsnr(grid[:2]))[0], rtol=1e-6)
    open_grid = logsnr_grid(schedule, 6, t_end=t_end, to_data=False).numpy()
    assert len(open_grid) == 7 and open_grid[-1] == t_end
    k = karras_grid(schedule, 8, t_end=t_end).numpy()
    s = np.exp(-0.5 * schedule.logsnr(k[:-1]))
    ramp = np.linspace(0, 1, 8)
    expected = (s[0] ** (1 / 7) + ramp * (s[-1] ** (1 / 7) - s[0] ** (1 / 7))) ** 7
    np.testing.assert_allclose(s, expected, rtol=1e-6)
    assert k[-1] == 0.0 and len(k) == 9


@pytest.mark.parametrize("call, words", [
    (lambda: diffusers_steps(3, "uniform"), "spacing"), (lambda: diffusers_steps(3, family="pndm"), "family"),
    (lambda: diffusers_steps(3, steps_offset=-1), "steps_offset"), (lambda: diffusers_steps(0), "n_steps"),
    (lambda: diffusers_steps(1000, "leading"), "do not fit"), (lambda: spaced_grid(VPLinear(), 3), "discrete"),
    (lambda: logsnr_grid(VPLinear(), 3, t_start=0.1, t_end=0.2), "below t_start"),
    (lambda: karras_grid(VPLinear(), 3, rho=0), "rho")])
def test_grid_errors(call, words):
    with pytest.raises(ValueError, match=words):
        call()
