"""A local diffusers ``UNet2DModel`` (e.g. a DDPM CIFAR-10 checkpoint downloaded earlier) as a Denoiser.

Needs the optional extra ``pip install 'symbreak[diffusers]'``; nothing is downloaded: the folder is
read with ``from_pretrained(..., local_files_only=True)``. Accepted layouts:

- a pipeline folder: ``unet/`` (config.json + weights) and ``scheduler/scheduler_config.json``;
- a bare UNet folder (config.json + weights), with ``scheduler_config.json`` beside the weights or in
  ``../scheduler/``. Without any scheduler config, diffusers' DDPMScheduler defaults are used
  (1000 linear betas from 1e-4 to 0.02), with a warning.

**Schedules.** Any DDPM-family scheduler config (DDPM, DDIM, PNDM, DPM-Solver, Euler, ...: those with
``num_train_timesteps`` and betas) becomes a :class:`~symbreak.theory.DiscreteDDPM` with its own
betas, by diffusers' formulas (evaluated in float64; diffusers keeps them in float32):

- ``linear``: beta_k = linspace(beta_start, beta_end, N) (the plain ``DiscreteDDPM(N, start, end)``);
- ``scaled_linear``: beta_k = linspace(sqrt(beta_start), sqrt(beta_end), N)^2 (latent diffusion);
- ``squaredcos_cap_v2``: beta_k = min(1 - abar((k+1)/N) / abar(k/N), 0.999) with
  abar(s) = cos^2((s + 0.008) / 1.008 * pi / 2) (Nichol & Dhariwal 2021, Eq. 17);
- ``trained_betas``: the listed betas as they are.

**Parameterisations** (alpha_k^2 = prod_{j <= k} (1 - beta_j), sigma_k^2 = 1 - alpha_k^2; Ho et al.
2020 Eq. 4 and 15, Salimans & Ho 2022): ``epsilon``: D = (x - sigma eps) / alpha; ``v_prediction``:
v = alpha eps - sigma y, so D = alpha x - sigma v; ``sample``: D is the output. A learned-variance
UNet (out_channels = 2 x in_channels, diffusers' ``variance_type`` learned / learned_range) gives the
mean prediction in its first in_channels channels, which are the ones used; the variance channels
are dropped (symbreak's samplers take their variances from the schedule).

**Time.** The network's timestep input is the discrete step k, and schedule time maps to it as
k(t) = ceil(t N) - 1 (DiscreteDDPM.step_of_t), so on the grid t_k = (k + 1) / N the denoiser is the
network's estimate at step k exactly.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from symbreak.experiments.models.denoisers import NetworkDenoiser, in_chunks
from symbreak.experiments.runtime.distributed import resolve_device
from symbreak.theory import DiscreteDDPM

DDPM_DEFAULTS = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear",
                 "prediction_type": "epsilon"}
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
COSINE_MAX_BETA = 0.999
STEP_TOLERANCE = 1e-3  # in steps: absorbs float32 rounding of t_k = (k + 1) / N


def _import_unet():
    try:
        from diffusers import UNet2DModel
    except ImportError as err:
        raise ImportError("loading diffusers models needs the optional dependency 'diffusers': "
                          "pip install 'symbreak[diffusers]'") from err
    return UNet2DModel


def _cosine_betas(n: int) -> np.ndarray:
    """squaredcos_cap_v2: 1 - abar((k+1)/n) / abar(k/n), capped at 0.999 (diffusers' betas_for_alpha_bar)."""
    s = np.arange(n + 1) / n
    abar = np.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.minimum(1.0 - abar[1:] / abar[:-1], COSINE_MAX_BETA)


def diffusers_betas(config: dict) -> np.ndarray | None:
    """The betas of a scheduler config (module docstring), or None for diffusers' linear schedule
    (kept as the plain ``DiscreteDDPM(N, beta_start, beta_end)``)."""
    params = {**DDPM_DEFAULTS, **config}
    n, start, end = int(params["num_train_timesteps"]), float(params["beta_start"]), float(params["beta_end"])
    if params.get("trained_betas") is not None:
        return np.asarray(params["trained_betas"], dtype=np.float64)
    if params.get("rescale_betas_zero_snr"):
        raise ValueError("--model: scheduler: rescale_betas_zero_snr puts alpha = 0 at the last step, which the "
                         "VP schedules here cannot hold; save the model with rescale_betas_zero_snr=False")
    kind = params["beta_schedule"]
    if kind == "linear":
        return None
    if kind == "scaled_linear":
        return np.linspace(math.sqrt(start), math.sqrt(end), n) ** 2
    if kind == "squaredcos_cap_v2":
        return _cosine_betas(n)
    raise ValueError(f"--model: scheduler: unknown beta_schedule {kind!r}; accepted: {', '.join(BETA_SCHEDULES)} "
                     "or trained_betas")


def schedule_from_scheduler_config(config: dict) -> DiscreteDDPM:
    """The DiscreteDDPM of a diffusers DDPM-family scheduler config (module docstring)."""
    params = {**DDPM_DEFAULTS, **config}
    prediction_target(params)
    betas = diffusers_betas(params)
    if betas is None:
        return DiscreteDDPM(n_steps=int(params["num_train_timesteps"]), beta_start=float(params["beta_start"]),
                            beta_end=float(params["beta_end"]))
    return DiscreteDDPM.from_betas(betas)


def prediction_target(config: dict) -> str:
    """The Denoiser target of a scheduler's ``prediction_type``: eps, v or x0."""
    kind = {**DDPM_DEFAULTS, **config}["prediction_type"]
    if kind not in PREDICTIONS:
        raise ValueError(f"--model: scheduler: unknown prediction_type {kind!r}; accepted: {', '.join(PREDICTIONS)}")
    return PREDICTIONS[kind]


class DiffusersNet(nn.Module):
    """out(x, t) = unet(x, k(t)).sample[:, :C] with k(t) = ceil(t N - tol) - 1 clipped to [0, N - 1]; the
    first C = in_channels output channels (the mean prediction of a learned-variance UNet). Batches are
    cut into chunks of at most ``max_batch`` images."""

    def __init__(self, unet: nn.Module, n_steps: int, max_batch: int | None = None):
        super().__init__()
        self.unet, self.n_steps, self.max_batch = unet, n_steps, max_batch
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else size
        self.image_shape = (int(unet.config.in_channels), int(h), int(w))
        out = int(unet.config.out_channels or unet.config.in_channels)
        if out not in (self.image_shape[0], 2 * self.image_shape[0]):
            raise ValueError(f"--model: the UNet has {out} output channels for {self.image_shape[0]} input channels; "
                             "expected as many (eps, v or sample prediction) or twice as many (learned variance)")

    def step(self, t: Tensor) -> Tensor:
        k = torch.ceil(t.to(torch.float64) * self.n_steps - STEP_TOLERANCE).long() - 1
        return k.clamp(0, self.n_steps - 1)

    def _unet(self, x: Tensor, t: Tensor) -> Tensor:
        return self.unet(x, self.step(t)).sample[:, :self.image_shape[0]]

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
        out = in_chunks(self._unet, x.reshape(x.shape[0], *self.image_shape), t, self.max_batch)
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


def read_scheduler_config(path: str | os.PathLike) -> dict:
    """The scheduler config of a diffusers folder (``{}`` with a warning when there is none: DDPM defaults)."""
    path = Path(path).expanduser()
    _, scheduler_file = _find_folders(path)
    if scheduler_file is None:
        warnings.warn(f"symbreak: no scheduler_config.json found for {path}; assuming the DDPM defaults "
                      f"{DDPM_DEFAULTS}", RuntimeWarning, stacklevel=2)
        return {}
    return json.loads(scheduler_file.read_text())


def _check_unet_class(unet_dir: Path) -> None:
    name = json.loads((unet_dir / "config.json").read_text()).get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise ValueError(f"--model: {unet_dir} holds a {name}; only unconditional UNet2DModel folders load directly "
                         "(wrap other models with a module:callable that returns a Denoiser)")


def load_diffusers_unet(path: str | os.PathLike, *, device: str = "auto", dtype: torch.dtype = torch.float32,
                        max_batch: int | None = None) -> NetworkDenoiser:
    """The UNet2DModel stored at ``path`` as a Denoiser on its own discrete schedule (eval mode).

    The model works in its own pixel scale (DDPM checkpoints: [-1, 1]).
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--model: no such folder {path}")
    UNet2DModel = _import_unet()
    unet_dir, _ = _find_folders(path)
    _check_unet_class(unet_dir)
    scheduler = read_scheduler_config(path)
    schedule, target = schedule_from_scheduler_config(scheduler), prediction_target(scheduler)
    unet = UNet2DModel.from_pretrained(unet_dir, local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False)
    net = DiffusersNet(unet, schedule.n_steps, max_batch).to(resolve_device(device)).eval().requires_grad_(False)
    return NetworkDenoiser(net, schedule, net.image_shape, target=target)
