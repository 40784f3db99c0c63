"""DPM-Solver++ (2M, 3M) and UniPC against independent answers: diffusers' DPMSolverMultistepScheduler and
UniPCMultistepScheduler stepping the same exact denoiser on the same timesteps, scipy's solve_ivp on the
probability-flow ODE (convergence orders), and the sampler contract (nfe, batch vs single, options)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from symbreak.experiments.models.denoisers import ExactDenoiser
from symbreak.experiments.sampling.grids import SPACINGS, Level, diffusers_steps, logsnr_grid, spaced_grid
from symbreak.experiments.sampling.samplers import get_sampler
from symbreak.experiments.sampling.seeds import per_sample_noise
from symbreak.experiments.sampling.solvers import Estimate, dpm_update, half_logsnr, uni_b, uni_rhos
from symbreak.theory import DiscreteDDPM, EmpiricalData, Gaussian, GaussianMixture, VPLinear

DISCRETE = DiscreteDDPM()
POINTS = EmpiricalData(np.array([[1.0, 0.2, -0.5], [-0.8, 0.6, 0.1], [0.3, -1.1, 0.7], [0.0, 0.4, 1.2]]))
SEEDS = list(range(6))
MIX = GaussianMixture([0.6, 0.4], [[0.8, 0.1], [-1.0, 0.3]],
                      [np.diag([0.2, 0.15]), np.array([[0.15, 0.04], [0.04, 0.12]])])
CONTINUOUS = VPLinear()
T_END = 1e-2


def alpha_bar() -> torch.Tensor:
    return torch.exp(torch.as_tensor(DISCRETE.log_alpha_bar))


def diffusers_run(kind: str, order: int, spacing: str, n: int, x0: torch.Tensor, den: ExactDenoiser, **extra):
    """diffusers' scheduler of ``kind`` stepping D (prediction_type="sample") on its own timesteps."""
    schedulers = pytest.importorskip("diffusers.schedulers")
    config = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                  solver_order=order, prediction_type="sample", timestep_spacing=spacing, **extra)
    if kind == "dpm":
        scheduler = schedulers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", **config)
    else:
        scheduler = schedulers.UniPCMultistepScheduler(predict_x0=True, **config)
    scheduler.alphas_cumprod = alpha_bar()  # the float64 alpha_bar of ours; diffusers casts sigmas to float32
    scheduler.set_timesteps(n)
    x = x0.clone()
    for k in scheduler.timesteps:
        x = scheduler.step(den(x, float(DISCRETE.t_of_step(int(k)))), k, x).prev_sample
    return scheduler.timesteps.numpy(), x.to(torch.float64).numpy()


CASES = [("dpm", 2, "dpm2m", {}), ("dpm", 3, "dpm3m", {}), ("unipc", 2, "unipc", {"order": 2}),
         ("unipc", 3, "unipc", {"order": 3})]


@pytest.mark.parametrize("kind, order, name, opts", CASES, ids=["dpm2m", "dpm3m", "unipc2", "unipc3"])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_solvers_match_diffusers_number_for_number(kind, order, name, opts, spacing):
    """The same exact denoiser of four points, the same timesteps: equal to diffusers' float32 precision."""
    den, x0 = ExactDenoiser(POINTS, DISCRETE), 1.3 * per_sample_noise(SEEDS, (3,))
    for n in (3, 5, 10):
        steps, theirs = diffusers_run(kind, order, spacing, n, x0, den)
        np.testing.assert_array_equal(diffusers_steps(n, spacing), steps)
        ours = get_sampler(name)(den, x0, spaced_grid(DISCRETE, n, spacing), **opts)
        assert ours.nfe == n
        np.testing.assert_allclose(ours.x.numpy(), theirs, rtol=0, atol=1e-6, err_msg=f"n = {n}")


def test_unipc_bh1_and_disabled_corrector_match_diffusers():
    """bh1 on a grid ending at step 0 (diffusers' final_sigmas_type="sigma_min": its bh1 step to sigma = 0
    is NaN, B(-inf) * 0), and a disabled corrector."""
    den, x0 = ExactDenoiser(POINTS, DISCRETE), per_sample_noise(SEEDS, (3,))
    to_step0 = torch.cat([spaced_grid(DISCRETE, 8, "trailing")[:-1], torch.tensor([DISCRETE.t_of_step(0)])])
    for extra, opts, grid in (({"solver_type": "bh1", "final_sigmas_type": "sigma_min"}, {"variant": "bh1"}, to_step0),
                              ({"disable_corrector": [0, 2]}, {"disable_corrector": (0, 2)},
                               spaced_grid(DISCRETE, 8, "trailing"))):
        _, theirs = diffusers_run("unipc", 3, "trailing", 8, x0, den, **extra)
        ours = get_sampler("unipc")(den, x0, grid, order=3, **opts)
        np.testing.assert_allclose(ours.x.numpy(), theirs, rtol=0, atol=1e-6)


def test_unipc_order_conditions():
    """rho solves sum_k rho_k r_k^(j-1) = b_j; for h -> 0 and B = h, b_j -> j! / (j + 1)! = 1 / (j + 1)."""
    _, b = uni_b(1e-2, 3, "bh1")  # b_j = 1/(j + 1) - h / ((j + 1)(j + 2)) + O(h^2)
    np.testing.assert_allclose(b, [1 / 2 - 1e-2 / 6, 1 / 3 - 1e-2 / 12, 1 / 4 - 1e-2 / 20], rtol=1e-4)
    rks = [-0.7, -1.6, 1.0]
    rho = uni_rhos(rks, b)
    np.testing.assert_allclose(np.vander(rks, increasing=True).T @ rho, b, rtol=1e-12)


# --- convergence orders against solve_ivp ----------------------------------------------------------
@pytest.fixture(scope="module")
def ode_case():
    x0 = per_sample_noise(SEEDS[:4], (2,))

    def rhs(t, x):
        x = x.reshape(-1, 2)
        return (CONTINUOUS.f(t) * x - 0.5 * CONTINUOUS.beta(t) * MIX.score(x, t, CONTINUOUS)).ravel()

    sol = solve_ivp(rhs, (1.0, T_END), x0.numpy().ravel(), method="DOP853", rtol=1e-10, atol=1e-12)
    return ExactDenoiser(MIX, CONTINUOUS), x0, sol.y[:, -1].reshape(-1, 2)


def fitted_order(den, x0, ref, name, opts, steps=(12, 16, 24, 32, 48)) -> float:
    """Slope of log max-error against log step (uniform-logsnr grids from T to T_END, no jump to t = 0,
    no lower-order final steps)."""
    errors = [np.abs(get_sampler(name)(den, x0, logsnr_grid(CONTINUOUS, n, t_end=T_END, to_data=False),
                                       lower_order_final=False, **opts).x.numpy() - ref).max() for n in steps]
    return float(np.polyfit(np.log(1.0 / np.array(steps)), np.log(errors), 1)[0])


@pytest.mark.parametrize("name, opts, low, high", [("dpm2m", {}, 1.8, 2.3), ("dpm3m", {}, 2.0, 4.0),
                                                   ("unipc", {"order": 2}, 2.7, 3.3),
                                                   ("unipc", {"order": 3}, 2.9, 4.0)])
def test_global_convergence_orders_on_the_probability_flow_ode(ode_case, name, opts, low, high):
    """Whole runs: 2M ~ 2; UniPC-p reaches p + 1 (Zhao et al. 2023, Thm 3.3) up to its warm-up. The
    first-order first step (local error h^2) caps every multistep run at global order 2 (3 for UniPC,
    whose first step is corrected) as h -> 0, so 3M falls from ~4 to 2 over this range; its own order 3
    is checked step by step below."""
    slope = fitted_order(*ode_case, name, opts)
    print(f"{name} {opts}: fitted global order {slope:.2f}")
    assert low < slope < high, slope


def test_local_orders_of_dpm_2m_and_3m_with_exact_history():
    """One step from exact states: local error h^(p+1), i.e. slopes 3 (2M) and 4 (3M) in log error / log h."""
    def rhs(t, x):
        return CONTINUOUS.f(t) * x - 0.5 * CONTINUOUS.beta(t) * MIX.score(x[None], t, CONTINUOUS)[0]

    hs, errors = np.array([0.2, 0.1, 0.05]), {2: [], 3: []}
    for h in hs:
        lam = 0.5 * float(CONTINUOUS.logsnr(0.3)) + h * np.arange(-2, 2)
        levels = [Level.at(CONTINUOUS, float(t)) for t in CONTINUOUS.t_of_logsnr(2 * lam)]
        sol = solve_ivp(rhs, (1.0, levels[-1].t), [0.5, -0.3], method="DOP853", rtol=1e-13, atol=1e-13,
                        dense_output=True)
        xs = [sol.sol(lv.t) for lv in levels]
        memory = [Estimate(half_logsnr(lv), torch.as_tensor(MIX.posterior_mean(x[None], lv.t, CONTINUOUS)))
                  for x, lv in zip(xs[:3], levels[:3])]
        for p in (2, 3):
            out = dpm_update(torch.as_tensor(xs[2][None]), memory[-p:], levels[2], levels[3]).numpy()
            errors[p].append(np.abs(out - xs[3]).max())
    slopes = {p: float(np.polyfit(np.log(hs), np.log(e), 1)[0]) for p, e in errors.items()}
    print(f"local error slopes: 2M {slopes[2]:.2f}, 3M {slopes[3]:.2f}")
    assert 2.7 < slopes[2] < 3.3 and 3.7 < slopes[3] < 4.5, slopes


# --- the sampler contract --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dpm2m", "dpm3m", "unipc"])
def test_batch_equals_one_sample_at_a_time_and_step_to_zero(name):
    den, x0 = ExactDenoiser(MIX, CONTINUOUS), per_sample_noise(SEEDS, (2,))
    grid = logsnr_grid(CONTINUOUS, 6)
    batch = get_sampler(name)(den, x0, grid, return_trajectory=True)
    single = torch.cat([get_sampler(name)(den, x0[i:i + 1], grid).x for i in range(len(SEEDS))])
    torch.testing.assert_close(batch.x, single, rtol=0, atol=1e-12)
    assert batch.trajectory.shape == (7, len(SEEDS), 2) and batch.nfe == 6
    last = torch.as_tensor(MIX.posterior_mean(batch.trajectory[-2].numpy(), float(grid[-2]), CONTINUOUS))
    torch.testing.assert_close(batch.x, last, rtol=0, atol=1e-12)  # the step to t = 0 is x_0 = D


@pytest.mark.parametrize("name, opts, words", [("dpm2m", {"lower_order_final": 1}, "True or False"),
                                               ("unipc", {"order": 4}, "1, 2 or 3"),
                                               ("unipc", {"variant": "bh3"}, "bh1, bh2"),
                                               ("unipc", {"disable_corrector": (-1,)}, "step indices"),
                                               ("dpm3m", {"eta": 1.0}, "unknown option")])
def test_solver_option_errors(name, opts, words):
    with pytest.raises(ValueError, match=words):
        get_sampler(name).resolve_options(opts)


def test_gaussian_data_reaches_its_covariance_as_steps_grow():
    """On a Gaussian the exact denoiser is linear: the solver's output covariance error shrinks with n."""
    model = Gaussian([0.3, -0.2], [[1.2, 0.4], [0.4, 0.5]])
    den = ExactDenoiser(model, CONTINUOUS)
    x0 = per_sample_noise(range(4000), (2,))
    errors = [np.abs(np.cov(get_sampler("dpm2m")(den, x0, logsnr_grid(CONTINUOUS, n)).x.numpy().T)
                     - np.cov(model_push(model, x0.numpy()).T)).max() for n in (3, 6, 12)]
    assert errors[0] > errors[1] > errors[2]


def model_push(model: Gaussian, x_T: np.ndarray) -> np.ndarray:
    """The exact probability-flow map of a Gaussian from T to 0 (test-side, in the eigenbasis)."""
    lam, vecs = np.linalg.eigh(model.cov)
    a, s = float(CONTINUOUS.alpha(1.0)), float(CONTINUOUS.sigma(1.0))
    scale = np.sqrt(lam) / np.sqrt(a * a * lam + s * s)
    return model.mean + ((x_T - a * model.mean) @ vecs * scale) @ vecs.T
