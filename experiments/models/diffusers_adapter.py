"""A local diffusers ``UNet2DModel`` (e.g. a DDPM CIFAR-10 checkpoint downloaded earlier) as a Denoiser.

Needs the optional extra ``pip install 'symbreak[diffusers]'``; nothing is downloaded: the folder is
read with ``from_pretrained(..., local_files_only=True)``. Accepted layouts:

- a pipeline folder: ``unet/`` (config.json + weights) and ``scheduler/scheduler_config.json``;
- a bare UNet folder (config.json + weights), with ``scheduler_config.json`` beside the weights or in
  ``../scheduler/``. Without any scheduler config, diffusers' DDPMScheduler defaults are used
  (1000 linear betas from 1e-4 to 0.02), with a warning.

The scheduler must be DDPM's linear beta schedule with eps prediction; it becomes a
:class:`~symbreak.theory.DiscreteDDPM`. The network's timestep input is the discrete step k, and
schedule time maps to it as k(t) = ceil(t N) - 1 (DiscreteDDPM.step_of_t), so on the grid
t_k = (k + 1) / N the denoiser is D = (x - sigma_k eps_theta(x, k)) / alpha_k with
alpha_k^2 = prod_{j <= k} (1 - beta_j) (Ho et al. 2020, Eq. 4 and 15).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from symbreak.experiments.models.denoisers import NetworkDenoiser
from symbreak.experiments.runtime.distributed import resolve_device
from symbreak.theory import DiscreteDDPM

DDPM_DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
                 "prediction_type": "epsilon"}
STEP_TOLERANCE = 1e-3  # in steps: absorbs float32 rounding of t_k = (k + 1) / N


def _import_unet():
    try:
        from diffusers import UNet2DModel
    except ImportError as err:
        raise ImportError("loading diffusers models needs the optional dependency 'diffusers': "
                          "pip install 'symbreak[diffusers]'") from err
    return UNet2DModel


def schedule_from_scheduler_config(config: dict) -> DiscreteDDPM:
    """The DiscreteDDPM of a diffusers DDPM/DDIM scheduler config (linear betas, eps prediction)."""
    params = {**DDPM_DEFAULTS, **config}
    if params["beta_schedule"] != "linear" or params.get("trained_betas") is not None:
        raise ValueError(f"scheduler: only the linear beta schedule is supported, got "
                         f"beta_schedule={params['beta_schedule']!r} trained_betas={params.get('trained_betas')!r}")
    if params["prediction_type"] != "epsilon":
        raise ValueError(f"scheduler: only eps-prediction models are supported, got "
                         f"prediction_type={params['prediction_type']!r}")
    return DiscreteDDPM(n_steps=int(params["num_train_timesteps"]), beta_start=float(params["beta_start"]),
                        beta_end=float(params["beta_end"]))


class DiffusersEpsNet(nn.Module):
    """eps_theta(x, t) = unet(x, k(t)).sample with k(t) = ceil(t N - tol) - 1 clipped to [0, N - 1]."""

    def __init__(self, unet: nn.Module, n_steps: int):
        super().__init__()
        self.unet, self.n_steps = unet, n_steps
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        self.image_shape = (int(unet.config.in_channels), int(h), int(w))

    def step(self, t: Tensor) -> Tensor:
        k = torch.ceil(t.to(torch.float64) * self.n_steps - STEP_TOLERANCE).long() - 1
        return k.clamp(0, self.n_steps - 1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
        out = self.unet(x.reshape(x.shape[0], *self.image_shape), self.step(t)).sample
        return out.reshape(x.shape)


def _find_folders(path: Path) -> tuple[Path, Path | None]:
    """(unet folder, scheduler_config.json or None)."""
    if (path / "unet" / "config.json").is_file():
        unet_dir = path / "unet"
    elif (path / "config.json").is_file():
        unet_dir = path
    else:
        raise FileNotFoundError(f"--model: {path} holds neither config.json nor unet/config.json "
                                "(expected a diffusers UNet2DModel or pipeline folder)")
    for candidate in (unet_dir / "scheduler_config.json", unet_dir.parent / "scheduler" / "scheduler_config.json"):
        if candidate.is_file():
            return unet_dir, candidate
    return unet_dir, None


def load_diffusers_unet(path: str | os.PathLike, *, device: str = "auto",
                        dtype: torch.dtype = torch.float32) -> NetworkDenoiser:
    """The UNet2DModel stored at ``path`` as an eps-predicting Denoiser on its DDPM schedule (eval mode).

    The model works in its own pixel scale (DDPM checkpoints: [-1, 1]).
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--model: no such folder {path}")
    UNet2DModel = _import_unet()
    unet_dir, scheduler_file = _find_folders(path)
    if scheduler_file is None:
        warnings.warn(f"symbreak: no scheduler_config.json found for {path}; assuming the DDPM defaults "
                      f"{DDPM_DEFAULTS}", RuntimeWarning, stacklevel=2)
        schedule = schedule_from_scheduler_config({})
    else:
        schedule = schedule_from_scheduler_config(json.loads(scheduler_file.read_text()))
    unet = UNet2DModel.from_pretrained(unet_dir, local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False)
    net = DiffusersEpsNet(unet, schedule.n_steps).to(resolve_device(device)).eval().requires_grad_(False)
    return NetworkDenoiser(net, schedule, net.image_shape, target="eps")
