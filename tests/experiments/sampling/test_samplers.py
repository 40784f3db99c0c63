"""Samplers, grids, seeds and ``symbreak sample`` against independent answers: scipy's solve_ivp on the
probability-flow ODE, the closed-form DDPM/DDIM posterior in alpha_bar form (Ho et al. 2020, Song et al.
2021), the theory models' posterior means, binomial and moment tests, and batch-vs-single runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.stats import binomtest
from torch import nn

from symbreak.analysis.io import sidecar_path
from symbreak.experiments.cli import main
from symbreak.experiments.models.denoisers import ExactDenoiser, NetworkDenoiser
from symbreak.experiments.sampling.grids import default_grid, discrete_grid, paper_start_step, uniform_grid
from symbreak.experiments.sampling.samplers import SAMPLERS, ddim, ddpm, euler_maruyama, get_sampler, heun, pndm
from symbreak.experiments.sampling.seeds import StepNoise, parse_seeds, per_sample_noise
from symbreak.theory import DiscreteDDPM, Gaussian, GaussianMixture, SymmetricDeltas, VPLinear

SCHEDULE = VPLinear()
T_END = 1e-3
GAUSS = Gaussian([0.5, -0.3], [[1.0, 0.3], [0.3, 0.4]])
MIX = GaussianMixture([0.65, 0.35], [[0.7, 0.0], [-1.3, 0.2]],
                      [np.diag([0.15, 0.1]), np.array([[0.12, 0.03], [0.03, 0.1]])])
SEEDS = [11, 3, 7, 42]


def logsnr_grid(n: int, t_start: float = 1.0, t_end: float = T_END) -> torch.Tensor:
    """n steps uniform in logsnr (a test-side grid, so the samplers are checked on a non-uniform one)."""
    t = SCHEDULE.t_of_logsnr(np.linspace(SCHEDULE.logsnr(t_start), SCHEDULE.logsnr(t_end), n + 1))
    t[0], t[-1] = t_start, t_end
    return torch.as_tensor(t)


def ode_reference(model, x0: torch.Tensor, t_end: float = T_END) -> np.ndarray:
    """The probability-flow ODE dx/dt = f x - beta/2 grad log p_t solved by scipy from t = 1 to t_end."""
    d = model.dim

    def rhs(t, x):
        x = x.reshape(-1, d)
        return (SCHEDULE.f(t) * x - 0.5 * SCHEDULE.beta(t) * model.score(x, t, SCHEDULE)).ravel()

    sol = solve_ivp(rhs, (1.0, t_end), x0.numpy().ravel(), method="DOP853", rtol=1e-11, atol=1e-11)
    return sol.y[:, -1].reshape(-1, d)


@pytest.fixture(scope="module")
def gauss_case():
    x0 = per_sample_noise(SEEDS, (2,))
    return ExactDenoiser(GAUSS, SCHEDULE), x0, ode_reference(GAUSS, x0)


@pytest.fixture(scope="module")
def mix_case():
    x0 = per_sample_noise(SEEDS, (2,))
    return ExactDenoiser(MIX, SCHEDULE), x0, ode_reference(MIX, x0)


def max_error(result, ref: np.ndarray) -> float:
    return float(np.abs(result.x.numpy() - ref).max())


# --- seeds ---------------------------------------------------------------------------------------
def test_parse_seeds_edm_style():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,7-9") == [1, 5, 7, 8, 9]
    assert parse_seeds(" 4 ") == [4] and parse_seeds(6) == [6] and parse_seeds([2, 0]) == [2, 0]


@pytest.mark.parametrize("spec, words", [("", "not an integer"), ("a-3", "not an integer"), ("5-3", "empty"),
                                         ("1,2,1", "more than once"), ("-1", "not an integer"),
                                         ("1.5", "not an integer"), ([], "no seeds")])
def test_parse_seeds_errors(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_seeds(spec)


def test_noise_is_per_sample_and_streams_are_independent():
    both, single = per_sample_noise([3, 7], (2, 3)), per_sample_noise([7], (2, 3))
    assert torch.equal(both[1], single[0])
    a, b = StepNoise([3, 7], (2,)), StepNoise([7], (2,))
    draws_a = torch.stack([a() for _ in range(40)])  # crosses a block boundary (32 steps)
    draws_b = torch.stack([b() for _ in range(40)])
    assert torch.equal(draws_a[:, 1], draws_b[:, 0])
    start = per_sample_noise([7], (2,))[0]
    assert not torch.allclose(draws_b[0, 0], start)


# --- grids ---------------------------------------------------------------------------------------
def test_paper_uniform_skip_grid_matches_alpha_bar():
    ddpm_schedule = DiscreteDDPM()
    assert [paper_start_step(ddpm_schedule, n) for n in (3, 5, 10)] == [666, 800, 900]
    grid = discrete_grid(ddpm_schedule, 5).numpy()
    alpha_bar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    np.testing.assert_allclose(ddpm_schedule.alpha(grid[:-1]) ** 2, alpha_bar[[800, 600, 400, 200, 0]], rtol=1e-12)
    assert grid[-1] == 0.0
    np.testing.assert_array_equal(default_grid(ddpm_schedule, 5, 0.6005).numpy()[:2], [0.601, 0.451])


@pytest.mark.parametrize("grid, words", [([0.5], "at least 2"), ([0.2, 0.5], "decreasing"),
                                         ([1.5, 0.0], "must lie in"), ([0.6, 0.6, 0.0], "decreasing"),
                                         ([0.5, -0.1], "t >= 0")])
def test_grid_errors(gauss_case, grid, words):
    den, x0, _ = gauss_case
    with pytest.raises(ValueError, match=words):
        ddim(den, x0, grid)


def test_grid_builder_errors():
    with pytest.raises(ValueError, match="n_steps"):
        uniform_grid(SCHEDULE, 1.0, 0)
    with pytest.raises(ValueError, match="discrete schedule"):
        discrete_grid(SCHEDULE, 5)
    with pytest.raises(ValueError, match="start_step"):
        discrete_grid(DiscreteDDPM(), 10, 5)


# --- deterministic samplers against the exact ODE ------------------------------------------------
def test_ddim_and_heun_match_solve_ivp(gauss_case, mix_case):
    den, x0, ref = gauss_case
    coarse, fine = (max_error(ddim(den, x0, logsnr_grid(n)), ref) for n in (500, 1000))
    assert 1.8 < coarse / fine < 2.2  # DDIM is first order (the Euler method in x/alpha, sigma/alpha)
    assert max_error(ddim(den, x0, logsnr_grid(5000)), ref) <= 1e-3
    den, x0, ref = mix_case
    assert max_error(heun(den, x0, logsnr_grid(150)), ref) <= 1e-3


def test_pndm_beats_ddim_at_few_steps_and_converges(mix_case):
    den, x0, ref = mix_case
    errors = {n: (max_error(pndm(den, x0, logsnr_grid(n)), ref), max_error(ddim(den, x0, logsnr_grid(n)), ref))
              for n in (5, 10, 20, 100)}
    for n, (e_pndm, e_ddim) in errors.items():
        assert e_pndm < e_ddim, (n, e_pndm, e_ddim)
    assert errors[5][0] > errors[10][0] > errors[20][0] > errors[100][0]
    assert errors[100][0] <= 1e-3


def test_pndm_uses_runge_kutta_warmup_then_one_evaluation_per_step(mix_case):
    den, x0, _ = mix_case
    assert pndm(den, x0, logsnr_grid(10)).nfe == 3 * 4 + 7
    assert pndm(den, x0, [0.5, 0.3, 0.0]).nfe == 4 + 1  # the RK step to t = 0 keeps its first stage only


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_step_to_zero_is_the_exact_posterior_mean(mix_case, name):
    den, x0, _ = mix_case
    x = 0.6 * x0
    out = get_sampler(name)(den, x, [0.4, 0.0], seeds=SEEDS).x.numpy()
    np.testing.assert_allclose(out, MIX.posterior_mean(x.numpy(), 0.4, SCHEDULE), rtol=0, atol=1e-12)


def test_ddim_and_pndm_match_diffusers_number_for_number():
    """An independent implementation: diffusers' DDIMScheduler / PNDMScheduler (PRK warm-up, then PLMS) on the
    paper's discrete schedule and uniform-skip grids, fed the same exact eps in float64."""
    ddim_scheduler = pytest.importorskip("diffusers.schedulers.scheduling_ddim").DDIMScheduler
    pndm_scheduler = pytest.importorskip("diffusers.schedulers.scheduling_pndm").PNDMScheduler
    schedule = DiscreteDDPM()
    den, x0 = ExactDenoiser(MIX, schedule), per_sample_noise(SEEDS, (2,))
    alpha_bar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    config = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                  set_alpha_to_one=True, timestep_spacing="leading")

    def run(scheduler, n, noise=None):
        scheduler.alphas_cumprod, scheduler.final_alpha_cumprod = alpha_bar, torch.tensor(1.0, dtype=torch.float64)
        scheduler.set_timesteps(n)
        x = x0.clone()
        for i, k in enumerate(scheduler.timesteps):
            eps = den.eps(x, float(schedule.t_of_step(int(k))))
            extra = {} if noise is None else {"eta": 1.0, "variance_noise": noise[i]}
            x = scheduler.step(eps, k, x, **extra).prev_sample
        return x.numpy()

    for n in (3, 10):
        grid = discrete_grid(schedule, n)
        np.testing.assert_allclose(ddim(den, x0, grid).x.numpy(), run(ddim_scheduler(**config, clip_sample=False), n),
                                   rtol=0, atol=1e-12)
        steps = StepNoise(SEEDS, (2,))
        noise = [steps() for _ in range(n - 1)] + [torch.zeros_like(x0)]  # no noise on the step to t = 0
        np.testing.assert_allclose(ddim(den, x0, grid, seeds=SEEDS, eta=1.0).x.numpy(),
                                   run(ddim_scheduler(**config, clip_sample=False), n, noise), rtol=0, atol=1e-12)
    for n in (5, 10):
        ours = pndm(den, x0, discrete_grid(schedule, n))
        theirs = pndm_scheduler(**config, skip_prk_steps=False)
        np.testing.assert_allclose(ours.x.numpy(), run(theirs, n), rtol=0, atol=1e-12)
        assert ours.nfe == len(theirs.timesteps)


# --- stochastic steps against the closed-form posterior -----------------------------------------
def posterior_step(x, y_hat, t, s, eta=1.0, variance="posterior"):
    """Song et al. (2021) eq. 12 in alpha_bar form; eta = 1 is Ho et al.'s q(x_s | x_t, y_hat), eq. 7."""
    ab_t, ab_s = SCHEDULE.alpha(t) ** 2, SCHEDULE.alpha(s) ** 2
    var = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    eps = (x - np.sqrt(ab_t) * y_hat) / np.sqrt(1 - ab_t)
    mean = np.sqrt(ab_s) * y_hat + np.sqrt(1 - ab_s - var) * eps
    if variance == "beta":
        var = 1 - ab_t / ab_s
    return mean, np.sqrt(var)


@pytest.mark.parametrize("sampler, opts", [(ddpm, {}), (ddpm, {"variance": "beta"}), (ddim, {"eta": 1.0}),
                                           (ddim, {"eta": 0.5})])
def test_one_stochastic_step_is_the_posterior_draw(mix_case, sampler, opts):
    den, x0, _ = mix_case
    x, t, s = 0.8 * x0, 0.5, 0.3
    out = sampler(den, x, [t, s], seeds=SEEDS, **opts).x.numpy()
    z = StepNoise(SEEDS, (2,))().numpy()
    y_hat = MIX.posterior_mean(x.numpy(), t, SCHEDULE)
    mean, std = posterior_step(x.numpy(), y_hat, t, s, opts.get("eta", 1.0), opts.get("variance", "posterior"))
    np.testing.assert_allclose(out, mean + std * z, rtol=0, atol=1e-12)


def test_ddpm_step_distribution_statistically():
    model = SymmetricDeltas()
    den, n, t, s = ExactDenoiser(model, SCHEDULE), 4000, 0.4, 0.25
    x = torch.full((n, 1), 0.3, dtype=torch.float64)
    out = ddpm(den, x, [t, s], seeds=range(n)).x.numpy().ravel()
    mean, std = posterior_step(0.3, np.tanh(SCHEDULE.alpha(t) * 0.3 / SCHEDULE.sigma2(t)), t, s)
    assert abs(out.mean() - mean) < 4 * std / np.sqrt(n)
    assert abs(out.var() / std**2 - 1) < 4 * np.sqrt(2 / n)


def test_ddpm_equals_ddim_eta_one(mix_case):
    den, x0, _ = mix_case
    grid = logsnr_grid(20, t_end=0.0 + 1e-2)
    a, b = ddpm(den, x0, grid, seeds=SEEDS).x, ddim(den, x0, grid, seeds=SEEDS, eta=1.0).x
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-12)


def test_ddpm_two_deltas_balanced_at_plus_minus_one():
    den, n = ExactDenoiser(SymmetricDeltas(), SCHEDULE), 400
    x = ddpm(den, per_sample_noise(range(n), (1,)), uniform_grid(SCHEDULE, 1.0, 100), seeds=range(n)).x.numpy().ravel()
    assert np.abs(np.abs(x) - 1).max() < 1e-6
    assert binomtest(int((x > 0).sum()), n, 0.5).pvalue > 0.01


def test_euler_maruyama_reproduces_gaussian_moments():
    den, n = ExactDenoiser(GAUSS, SCHEDULE), 2000
    x = euler_maruyama(den, per_sample_noise(range(n), (2,)), uniform_grid(SCHEDULE, 1.0, 100),
                       seeds=range(n)).x.numpy()
    se_mean = np.sqrt(np.diag(GAUSS.cov) / n)
    assert (np.abs(x.mean(axis=0) - GAUSS.mean) < 4 * se_mean).all()
    np.testing.assert_allclose(np.cov(x.T), GAUSS.cov, atol=4 * np.sqrt(2 / n) * GAUSS.cov.max())


# --- batch independence, trajectories, callbacks, bad input --------------------------------------
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_batch_equals_one_sample_at_a_time(mix_case, name):
    den, x0, _ = mix_case
    grid, sampler = logsnr_grid(6, t_end=0.0 + 1e-2), get_sampler(name)
    batch = sampler(den, x0, grid, seeds=SEEDS).x
    for k in (0, 2):
        single = sampler(den, x0[k:k + 1], grid, seeds=SEEDS[k:k + 1]).x
        np.testing.assert_allclose(batch[k:k + 1].numpy(), single.numpy(), rtol=0, atol=1e-12)
    flipped = sampler(den, x0.flip(0), grid, seeds=SEEDS[::-1]).x
    np.testing.assert_allclose(batch.numpy(), flipped.flip(0).numpy(), rtol=0, atol=1e-12)


def test_trajectory_and_callback(mix_case):
    den, x0, _ = mix_case
    seen = []
    grid = logsnr_grid(4, t_end=0.0 + 1e-2)
    result = ddim(den, x0, grid, return_trajectory=True, callback=seen.append)
    assert result.trajectory.shape == (5, 4, 2)
    assert torch.equal(result.trajectory[0], x0) and torch.equal(result.trajectory[-1], result.x)
    assert [info.t for info in seen] == grid[:-1].tolist()
    for info in seen:
        np.testing.assert_allclose(info.denoised.numpy(), MIX.posterior_mean(info.x.numpy(), info.t, SCHEDULE),
                                   atol=1e-12)
    assert result.x.dtype == torch.float64 and result.nfe == 4


def test_sampler_input_errors(mix_case):
    den, x0, _ = mix_case
    cases = [(lambda: ddim(den, x0, [0.5, 0.0], beta=1), "unknown option 'beta'"),
             (lambda: ddim(den, x0, [0.5, 0.0], eta=1.5), "eta: must lie in"),
             (lambda: ddpm(den, x0, [0.5, 0.0]), "seeds: the ddpm sampler"),
             (lambda: euler_maruyama(den, x0, [0.5, 0.0], seeds=[1, 2]), "one seed per sample"),
             (lambda: ddim(den, x0[:, :1], [0.5, 0.0]), r"expected shape \(B, 2\)"),
             (lambda: ddim(den, x0 * np.nan, [0.5, 0.0]), "NaN"),
             (lambda: get_sampler("euler"), "accepted: ddpm, ddim, pndm, sde, ode")]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()


# --- the command line ----------------------------------------------------------------------------
def run_cli(*flags: str) -> int:
    return main(["sample", "--data", "two-deltas", *flags])


def test_cli_writes_samples_and_config_reproducibly(tmp_path):
    out = tmp_path / "x.npy"
    assert run_cli("--denoiser", "exact", "--sampler", "ddim", "--steps", "10", "--seeds", "0-7",
                   "--out", str(out)) == 0
    x = np.load(out)
    config = json.loads(sidecar_path(out).read_text())
    assert x.shape == (8, 1) and config["seeds"]["list"] == list(range(8)) and config["t_grid"][0] == 1.0
    direct = ddim(ExactDenoiser(SymmetricDeltas(), SCHEDULE), per_sample_noise(range(8), (1,)),
                  uniform_grid(SCHEDULE, 1.0, 10)).x.numpy()
    np.testing.assert_allclose(x, direct.astype(np.float32), rtol=0, atol=0)
    again = tmp_path / "again.npy"
    assert run_cli("--sampler", "ddim", "--steps", "10", "--seeds", "5,2", "--batch-size", "1",
                   "--out", str(again)) == 0
    np.testing.assert_array_equal(np.load(again), x[[5, 2]])


def test_cli_init_trajectory_and_gls(tmp_path):
    init = tmp_path / "init.npy"
    np.save(init, np.array([[0.5], [-2.0], [0.01]]))
    out = tmp_path / "y.npy"
    assert run_cli("--sampler", "sde", "--steps", "5", "--seeds", "0-2", "--init", str(init),
                   "--t-start", "0.5", "--trajectory", "--out", str(out)) == 0
    traj = np.load(tmp_path / "y.trajectory.npy")
    assert traj.shape == (6, 3, 1)
    np.testing.assert_array_equal(traj[0], np.load(init).astype(np.float32))
    np.testing.assert_array_equal(traj[-1], np.load(out))
    gls = tmp_path / "g.npy"
    assert run_cli("--sampler", "pndm", "--steps", "6", "--start", "gls", "--t-start", "0.4",
                   "--seeds", "0-3", "--out", str(gls)) == 0
    config = json.loads(sidecar_path(gls).read_text())
    assert config["start"]["kind"] == "gls" and config["nfe_per_batch"] == 3 * 4 + 3


def test_cli_t_start_tc_is_the_two_delta_critical_time(tmp_path):
    out = tmp_path / "tc.npy"
    assert run_cli("--sampler", "ddim", "--steps", "4", "--start", "late", "--t-start", "tc", "--seeds", "0-3",
                   "--out", str(out)) == 0
    log_alpha_c = 0.5 * np.log(np.sqrt(2) - 1)  # alpha_c^2 = sqrt(2) - 1 (design note), then invert alpha(t)
    t_c = (-0.05 + np.sqrt(0.05**2 - 4 * (19.9 / 4) * log_alpha_c)) / (2 * 19.9 / 4)
    assert json.loads(sidecar_path(out).read_text())["t_grid"][0] == pytest.approx(t_c, abs=1e-6)


class ExactTwoDeltaEps(nn.Module):
    """eps(x, t) = (x - alpha tanh(alpha x / sigma^2)) / sigma for deltas at +-1, in float32 torch."""

    def forward(self, x, t):
        log_alpha = -0.5 * (0.1 * t + 0.5 * 19.9 * t * t)
        alpha, sigma2 = torch.exp(log_alpha)[:, None], -torch.expm1(2 * log_alpha)[:, None]
        return (x - alpha * torch.tanh(alpha * x / sigma2)) / sigma2.sqrt()


def test_cli_network_path_uses_load_or_train(tmp_path, monkeypatch):
    import symbreak.experiments.models.training as training

    net = ExactTwoDeltaEps()
    net.register_parameter("dtype_marker", nn.Parameter(torch.zeros(())))
    calls = []

    def fake_load_or_train(dataset, schedule, config=None, **kwargs):
        calls.append(kwargs)
        return NetworkDenoiser(net, schedule, dataset.shape)

    monkeypatch.setattr(training, "load_or_train", fake_load_or_train)
    exact, network = tmp_path / "e.npy", tmp_path / "n.npy"
    common = ["--sampler", "ode", "--steps", "8", "--seeds", "0-5", "--device", "cpu"]
    assert run_cli(*common, "--out", str(exact)) == 0
    assert run_cli(*common, "--denoiser", "network", "--out", str(network)) == 0
    assert calls == [{"device": "cpu", "retrain": False}]
    np.testing.assert_allclose(np.load(network), np.load(exact), atol=1e-4)


@pytest.mark.parametrize("flags, words", [
    (["--sampler", "ddim", "--steps", "0"], "--steps: must be >= 1"),
    (["--sampler", "euler", "--steps", "5"], "unknown name 'euler'"),
    (["--sampler", "ddim", "--steps", "5", "--seeds", "3-1"], "--seeds"),
    (["--sampler", "ddim", "--steps", "5", "--start", "late", "--t-start", "1.5"], "--t-start: must lie in"),
    (["--sampler", "ddim", "--steps", "5", "--start", "late", "--t-start", "step:3"], "discrete schedule"),
    (["--sampler", "ddim", "--steps", "5", "--start", "gls"], "needs a start time"),
    (["--sampler", "ddim", "--steps", "5", "--eta", "2"], "eta: must lie in"),
    (["--sampler", "ddim", "--steps", "5", "--start", "warm", "--t-start", "0.5"], "--start: expected"),
    (["--sampler", "ddim", "--steps", "5", "--init", "WRONG"], "--init"),
])
def test_cli_bad_flags_exit_2_and_write_nothing(tmp_path, capsys, flags, words):
    wrong = tmp_path / "in" / "wrong.npy"
    wrong.parent.mkdir()
    np.save(wrong, np.zeros((8, 2)))
    flags = [str(wrong) if f == "WRONG" else f for f in flags]
    if "--seeds" not in flags:
        flags += ["--seeds", "0-7"]
    out = tmp_path / "out" / "x.npy"
    assert run_cli(*flags, "--out", str(out)) == 2
    assert words in capsys.readouterr().err
    assert not out.parent.exists() or not any(out.parent.iterdir())
