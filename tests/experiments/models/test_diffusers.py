"""The diffusers adapter against the raw UNet2DModel, diffusers' own schedulers and a dense Jacobian.

The tiny UNets use the default block layout with attention (AttnDownBlock2D / AttnUpBlock2D), so the
Jacobian products go through scaled_dot_product_attention.
"""
import sys

import numpy as np
import pytest
import torch

from symbreak.experiments.measure.drift import LearnedDrift
from symbreak.experiments.measure.spectrum import jacobian_spectrum
from symbreak.experiments.models.diffusers_adapter import load_diffusers_unet, schedule_from_scheduler_config
from symbreak.experiments.sampling.grids import discrete_grid
from symbreak.experiments.sampling.samplers import get_sampler

diffusers = pytest.importorskip("diffusers")
N_STEPS = 1000
TRAINED = np.linspace(2e-4, 0.03, N_STEPS) ** 1.3
SCHEDULES = {"linear": {"beta_schedule": "linear"},
             "scaled_linear": {"beta_schedule": "scaled_linear", "beta_start": 8.5e-4, "beta_end": 0.012},
             "squaredcos_cap_v2": {"beta_schedule": "squaredcos_cap_v2"},
             "trained_betas": {"trained_betas": TRAINED.tolist()}}
PREDICTIONS = ("epsilon", "v_prediction", "sample", "learned")


def tiny_unet(channels: int = 1, learned: bool = False, attention: bool = True, size: int = 8):
    torch.manual_seed(0)
    down = ("DownBlock2D", "AttnDownBlock2D") if attention else ("DownBlock2D", "DownBlock2D")
    up = ("AttnUpBlock2D", "UpBlock2D") if attention else ("UpBlock2D", "UpBlock2D")
    return diffusers.UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels * (2 if learned else 1),
                                 block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                                 attention_head_dim=8, down_block_types=down, up_block_types=up).eval()


def save_model(root, schedule: str, prediction: str, channels: int = 1, size: int = 8):
    """A pipeline folder: unet/ and scheduler/ (a DDPMScheduler config)."""
    learned = prediction == "learned"
    unet = tiny_unet(channels, learned, size=size)
    unet.save_pretrained(root / "unet")
    options = {"variance_type": "learned_range"} if learned else {}
    sched = diffusers.DDPMScheduler(num_train_timesteps=N_STEPS, prediction_type="epsilon" if learned else prediction,
                                    **SCHEDULES[schedule], **options)
    sched.save_pretrained(root / "scheduler")
    return unet, sched


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddpm")
    unet = tiny_unet(attention=False)
    unet.save_pretrained(root / "unet")
    diffusers.DDPMScheduler(num_train_timesteps=N_STEPS, beta_start=1e-4, beta_end=0.02,
                            beta_schedule="linear").save_pretrained(root / "scheduler")
    return root, unet


def ddpm_alpha_sigma(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha_k = sqrt(prod_{j<=k}(1 - beta_j)), sigma_k = sqrt(1 - alpha_k^2), written out directly."""
    alpha_bar = np.cumprod(1.0 - np.linspace(1e-4, 0.02, N_STEPS))[k]
    return np.sqrt(alpha_bar), np.sqrt(1.0 - alpha_bar)


def test_denoiser_equals_formula_on_raw_model(saved_pipeline):
    root, unet = saved_pipeline
    den = load_diffusers_unet(root, device="cpu")
    k = np.array([0, 7, 291, 292, 500, 998, 999])
    t = torch.as_tensor((k + 1.0) / N_STEPS, dtype=torch.float64)
    x = torch.randn(len(k), 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        got = den(x, t)
        eps = unet(x.float(), torch.as_tensor(k)).sample.double()
    alpha, sigma = (torch.as_tensor(v)[:, None, None, None] for v in ddpm_alpha_sigma(k))
    expected = (x - sigma * eps) / alpha
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(eps, torch.zeros_like(eps))  # the random model does predict something


def test_time_maps_to_the_step_that_has_reached_it(saved_pipeline):
    root, _ = saved_pipeline
    den = load_diffusers_unet(root / "unet", device="cpu")  # the bare UNet folder finds ../scheduler
    t = torch.tensor([1e-4, 0.001, 0.00101, 0.2925, 0.293, 0.2931, 0.9999, 1.0], dtype=torch.float64)
    expected = den.schedule.step_of_t(t.numpy())
    assert expected.tolist() == [0, 0, 1, 292, 292, 293, 999, 999]
    assert den.net.step(t.float()).tolist() == expected.tolist()  # also after float32 rounding


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_betas_match_diffusers_alphas_cumprod(name):
    config = {"num_train_timesteps": N_STEPS, **SCHEDULES[name]}
    ours = schedule_from_scheduler_config(config)
    theirs = diffusers.DDPMScheduler(**config).alphas_cumprod.double().numpy()
    k = np.arange(N_STEPS)
    np.testing.assert_allclose(ours.alpha(ours.t_of_step(k)) ** 2, theirs, rtol=2e-5, atol=1e-9)
    if name == "linear":  # the linear case stays the plain DiscreteDDPM, its config unchanged
        assert ours.config() == {"name": "ddpm", "n_steps": 1000, "beta_start": 1e-4, "beta_end": 0.02}


def test_scheduler_config_is_read_and_checked():
    s = schedule_from_scheduler_config({"num_train_timesteps": 500, "beta_start": 2e-4, "beta_end": 0.03})
    assert (s.n_steps, s.beta_start, s.beta_end) == (500, 2e-4, 0.03)
    with pytest.raises(ValueError, match="--model: scheduler: unknown beta_schedule 'sigmoid'"):
        schedule_from_scheduler_config({"beta_schedule": "sigmoid"})
    with pytest.raises(ValueError, match="prediction_type"):
        schedule_from_scheduler_config({"prediction_type": "flow"})
    with pytest.raises(ValueError, match="rescale_betas_zero_snr"):
        schedule_from_scheduler_config({"rescale_betas_zero_snr": True})


def diffusers_ddim(unet, sched_config: dict, x: torch.Tensor, n: int, channels: int) -> torch.Tensor:
    """diffusers' DDIMScheduler stepping the raw UNet (leading spacing, no clipping, alpha_bar = 1 at the end),
    its alpha_bar accumulated in float64 like ours (in float32 they differ by up to 2e-5 at the cosine's end)."""
    sched = diffusers.DDIMScheduler.from_config(sched_config, clip_sample=False, set_alpha_to_one=True,
                                                timestep_spacing="leading", steps_offset=0)
    sched.alphas_cumprod = torch.cumprod(1.0 - sched.betas.double(), 0)  # diffusers keeps them in float32
    sched.set_timesteps(n)
    with torch.no_grad():
        for step in sched.timesteps:
            out = unet(x, step).sample[:, :channels]
            x = sched.step(out, step, x, eta=0.0).prev_sample
    return x


COVER = [("linear", "epsilon"), ("scaled_linear", "v_prediction"), ("squaredcos_cap_v2", "sample"),
         ("trained_betas", "learned")]  # every schedule and every prediction once; the full grid is slow
GRID = [(s, p) if (s, p) in COVER else pytest.param(s, p, marks=pytest.mark.slow) for s in SCHEDULES for p in PREDICTIONS]


@pytest.mark.parametrize("schedule,prediction", GRID)
def test_ddim_matches_diffusers_ddim_scheduler(tmp_path, schedule, prediction):
    channels = 3 if prediction == "learned" else 1
    unet, sched = save_model(tmp_path, schedule, prediction, channels)
    den = load_diffusers_unet(tmp_path, device="cpu", dtype=torch.float64)
    assert den.shape == (channels, 8, 8) and den.target == {"v_prediction": "v", "sample": "x0"}.get(prediction, "eps")
    n = 10
    x_t = torch.randn(3, channels, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours = get_sampler("ddim")(den, x_t, discrete_grid(den.schedule, n)).x
    theirs = diffusers_ddim(unet.double(), sched.config, x_t, n, channels)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule,prediction", [("squaredcos_cap_v2", "v_prediction"),
                                                 pytest.param("linear", "epsilon", marks=pytest.mark.slow)])
def test_lanczos_spectrum_through_attention_matches_dense_jacobian(tmp_path, schedule, prediction):
    save_model(tmp_path, schedule, prediction, size=4)  # d = 16: Lanczos runs to the whole space
    den = load_diffusers_unet(tmp_path, device="cpu")
    t = float(den.schedule.t_of_step(400))
    x = torch.randn(1, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    spec = jacobian_spectrum(den, x, t, k=2, method="lanczos", n_probes=0)
    drift = LearnedDrift(den, t)
    jac = torch.autograd.functional.jacobian(drift.point, x[0])
    expected = torch.linalg.eigvalsh(0.5 * (jac + jac.T)).numpy()[::-1][:2] / drift.beta
    np.testing.assert_allclose(spec.eigenvalues[0], expected, rtol=1e-4, atol=1e-4)
    dense = jacobian_spectrum(den, x, t, k=2, method="dense")  # vmap(jacrev) through attention too
    np.testing.assert_allclose(dense.eigenvalues[0], expected, rtol=1e-4, atol=1e-4)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_diffusers_unet(tmp_path)


def test_missing_diffusers_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'symbreak\[diffusers\]'"):
        load_diffusers_unet(tmp_path)
