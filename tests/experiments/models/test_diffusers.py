"""The diffusers adapter against the raw UNet2DModel and an independent DDPM beta schedule."""
import sys

import numpy as np
import pytest
import torch

from symbreak.experiments.models.diffusers_adapter import load_diffusers_unet, schedule_from_scheduler_config

N_STEPS = 1000


def tiny_unet():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    diffusers = pytest.importorskip("diffusers")
    root = tmp_path_factory.mktemp("ddpm")
    unet = tiny_unet()
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


def test_scheduler_config_is_read_and_checked():
    s = schedule_from_scheduler_config({"num_train_timesteps": 500, "beta_start": 2e-4, "beta_end": 0.03})
    assert (s.n_steps, s.beta_start, s.beta_end) == (500, 2e-4, 0.03)
    with pytest.raises(ValueError, match="linear"):
        schedule_from_scheduler_config({"beta_schedule": "squaredcos_cap_v2"})
    with pytest.raises(ValueError, match="eps-prediction"):
        schedule_from_scheduler_config({"prediction_type": "v_prediction"})


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_diffusers_unet(tmp_path)


def test_missing_diffusers_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'symbreak\[diffusers\]'"):
        load_diffusers_unet(tmp_path)
