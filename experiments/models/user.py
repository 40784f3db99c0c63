"""A researcher's own model as a Denoiser: the value of ``--model`` (:func:`load_model`, :func:`open_model`).

Two kinds of spec; nothing is downloaded:

- **a folder**: a local diffusers UNet2DModel or pipeline folder
  (:func:`symbreak.experiments.models.diffusers_adapter.load_diffusers_unet`: any DDPM-family scheduler,
  eps / v / sample prediction, learned variance). It takes images in [-1, 1] (diffusers' convention).
- **``module:callable``** (the module importable from ``sys.path``): ``callable()`` -- called with
  ``device=`` and ``dtype=`` when it accepts them -- returns either a :class:`Denoiser`, or a mapping
  with the keys of :func:`network_denoiser` (``net``, ``schedule``, ``shape``, and optionally
  ``prediction``, ``time``, ``pixel_range``). A returned object's ``pixel_range`` attribute (or the
  mapping's key), a pair (low, high), says which pixel range the model was trained on; without one the
  model takes the data as loaded (:func:`symbreak.analysis.datasets.load_dataset`, images in [-1, 1]).

**Time conventions** of a wrapped network ``net(x, c)`` (``time=``), with x_t = alpha(t) y + sigma(t) eps
under the model's ``schedule`` (a :class:`symbreak.theory.Schedule`):

- ``"t"``: c = t, the schedule time in (0, T] (score_sde's continuous VP/VE models with T = 1, and
  symbreak's own networks);
- ``"step"``: c = k(t) = ceil(t N) - 1, the integer step of a discrete schedule (DDPM-style code);
- ``"sigma"``: EDM (Karras et al. 2022): the network works on x~ = x / alpha at noise level
  sigma~ = sigma / alpha and is called as net(x~, sigma~); its output is read in those coordinates
  (D = x~ - sigma~ eps for eps, x0 as it is, D = x~ + sigma~^2 score~ for the score). On a VE schedule
  (alpha = 1) this is score_sde's NCSN convention net(x, sigma(t)).

**Prediction** (``prediction=``): ``eps``, ``x0`` (also ``sample``), ``v`` (v = alpha eps - sigma y) or
``score``; D = (x - sigma eps) / alpha = x0 = alpha x - sigma v = (x + sigma^2 score) / alpha.

Every network call is cut into chunks of at most ``max_batch`` samples, so a sampler's batch fits one GPU.
A bad spec raises one ``ValueError`` naming ``--model``.
"""
from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from symbreak.experiments.models.denoisers import Denoiser, NetworkDenoiser, append_dims, in_chunks, noise_level
from symbreak.theory import Schedule

TIME_INPUTS = ("t", "step", "sigma")
PREDICTIONS = {"eps": "eps", "epsilon": "eps", "x0": "x0", "sample": "x0", "v": "v", "v_prediction": "v",
               "score": "score"}
DIFFUSERS_RANGE = (-1.0, 1.0)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}
CALLABLE_FORM = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
MAPPING_KEYS = ("net", "schedule", "shape", "prediction", "time", "pixel_range")


@dataclass(frozen=True)
class UserModel:
    """A loaded ``--model``: its Denoiser, the pixel range it was trained on (None: the data as loaded)
    and its provenance for the output config."""

    denoiser: Denoiser
    pixel_range: tuple[float, float] | None
    config: dict = field(default_factory=dict)


class WrappedNetwork(NetworkDenoiser):
    """``net(x, c)`` with the time input c of ``time`` (module docstring) as a Denoiser."""

    def __init__(self, net: nn.Module, schedule: Schedule, shape: tuple[int, ...], target: str = "eps",
                 time: str = "t", max_batch: int | None = None):
        super().__init__(net, schedule, shape, target)
        if time not in TIME_INPUTS:
            raise ValueError(f"--model: time: expected one of {', '.join(TIME_INPUTS)}, got {time!r}")
        if time == "step" and not schedule.discrete:
            raise ValueError(f"--model: time 'step' needs a discrete schedule, got {schedule.name!r}")
        self.time, self.max_batch = time, max_batch

    def _time_input(self, t: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        if self.time == "step":
            return torch.as_tensor(self.schedule.step_of_t(t.cpu().numpy()), device=t.device)
        if self.time == "sigma":
            return (sigma / alpha).reshape(-1).to(torch.promote_types(self.dtype, torch.float32))
        return t.to(torch.promote_types(self.dtype, torch.float32))

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = (append_dims(v, x.ndim).to(x.dtype) for v in noise_level(self.schedule, t))
        if self.time == "sigma":  # EDM coordinates x~ = x / alpha, sigma~ = sigma / alpha
            x, sigma, alpha = x / alpha, sigma / alpha, torch.ones_like(alpha)
        c = self._time_input(t, alpha, sigma)
        out = in_chunks(lambda a, b: self.net(a.to(self.dtype), b), x, c, self.max_batch).to(x.dtype)
        return self.from_output(out, x, alpha, sigma)


def network_denoiser(net: nn.Module, schedule: Schedule, shape: tuple[int, ...], prediction: str = "eps",
                     time: str = "t", max_batch: int | None = None) -> WrappedNetwork:
    """A network that predicts ``prediction`` from (x, c) with time input ``time`` as a Denoiser (eval mode)."""
    if not isinstance(net, nn.Module) or not isinstance(schedule, Schedule):
        raise ValueError(f"--model: expected an nn.Module and a symbreak Schedule, got {type(net).__name__} and "
                         f"{type(schedule).__name__}")
    if prediction not in PREDICTIONS:
        raise ValueError(f"--model: prediction: expected one of {', '.join(PREDICTIONS)}, got {prediction!r}")
    net = net.eval().requires_grad_(False)
    return WrappedNetwork(net, schedule, tuple(int(s) for s in shape), PREDICTIONS[prediction], time, max_batch)


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"--model: dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def _pixel_range(value) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = (float(v) for v in value)
    if not low < high:
        raise ValueError(f"--model: pixel_range: expected (low, high) with low < high, got {value!r}")
    return low, high


def _from_callable(spec: str, device: torch.device, dtype: torch.dtype, max_batch: int | None) -> UserModel:
    module_name, _, attr = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--model: cannot import {spec!r} ({err}); expected module:callable on sys.path") from err
    if not callable(target):
        raise ValueError(f"--model: {spec!r} is not callable")
    accepted = inspect.signature(target).parameters
    made = target(**{k: v for k, v in (("device", device), ("dtype", dtype)) if k in accepted})
    config = {"kind": "callable", "spec": spec}
    if isinstance(made, Denoiser):
        return UserModel(made, _pixel_range(getattr(made, "pixel_range", None)), config)
    if isinstance(made, Mapping):
        unknown = sorted(set(made) - set(MAPPING_KEYS))
        if unknown or not {"net", "schedule", "shape"} <= set(made):
            raise ValueError(f"--model: {spec!r} returned a mapping with keys {sorted(made)}; expected net, schedule, "
                             "shape and optionally prediction, time, pixel_range")
        options = {k: made[k] for k in ("prediction", "time") if k in made}
        net = made["net"].to(device=device, dtype=dtype)
        den = network_denoiser(net, made["schedule"], made["shape"], max_batch=max_batch, **options)
        config.update({"prediction": den.target, "time": den.time, "schedule": den.schedule.config()})
        return UserModel(den, _pixel_range(made.get("pixel_range")), config)
    raise ValueError(f"--model: {spec!r} returned a {type(made).__name__}; expected a Denoiser or a mapping "
                     "with net, schedule, shape")


def open_model(spec: str, *, device: str | torch.device = "auto", dtype: torch.dtype | str = torch.float32,
               max_batch: int | None = 256) -> UserModel:
    """The model of a ``--model`` spec (module docstring) with its pixel range and provenance."""
    from symbreak.experiments.runtime.distributed import resolve_device

    dtype = _dtype(dtype)
    if max_batch is not None and (isinstance(max_batch, bool) or int(max_batch) != max_batch or max_batch < 1):
        raise ValueError(f"--batch-size: must be an integer >= 1, got {max_batch!r}")
    path = Path(str(spec)).expanduser()
    if path.is_dir():
        from symbreak.experiments.models.diffusers_adapter import (load_diffusers_unet, prediction_target,
                                                                    read_scheduler_config)

        try:
            den = load_diffusers_unet(path, device=device, dtype=dtype, max_batch=max_batch)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from err
        config = {"kind": "diffusers", "path": str(path.resolve()), "dtype": str(dtype).removeprefix("torch."),
                  "prediction": prediction_target(read_scheduler_config(path)), "schedule": den.schedule.config()}
        return UserModel(den, DIFFUSERS_RANGE, config)
    if CALLABLE_FORM.fullmatch(str(spec)):
        return _from_callable(str(spec), resolve_device(device), dtype, max_batch)
    raise ValueError(f"--model: {spec!r} is neither a folder (a diffusers UNet2DModel or pipeline) nor module:callable")


def load_model(spec: str, *, device: str | torch.device = "auto", dtype: torch.dtype | str = torch.float32,
               max_batch: int | None = 256) -> Denoiser:
    """The Denoiser of a ``--model`` spec (:func:`open_model`)."""
    return open_model(spec, device=device, dtype=dtype, max_batch=max_batch).denoiser


SOURCE_RANGES = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))
RANGE_SLACK = 1e-6


def to_model_range(x: np.ndarray, pixel_range: tuple[float, float] | None) -> tuple[float, float, str]:
    """(a, b, note): the map x -> a x + b that puts data ``x`` into the model's pixel range.

    Data already inside the range are left as they are; otherwise the first of [-1, 1], [0, 1], [0, 255]
    that holds the data is mapped affinely onto it. Data in none of them raise ValueError."""
    if pixel_range is None:
        return 1.0, 0.0, "none: the model takes the data as loaded"
    lo, hi = float(np.min(x)), float(np.max(x))
    low, high = pixel_range
    inside = lambda r: r[0] - RANGE_SLACK <= lo and hi <= r[1] + RANGE_SLACK  # noqa: E731
    if inside(pixel_range):
        return 1.0, 0.0, f"none: data in [{lo:.4g}, {hi:.4g}] already lie in the model's range [{low:g}, {high:g}]"
    for src in SOURCE_RANGES:
        if inside(src):
            a = (high - low) / (src[1] - src[0])
            return a, low - a * src[0], (f"data in [{lo:.4g}, {hi:.4g}] mapped from [{src[0]:g}, {src[1]:g}] to the "
                                         f"model's range [{low:g}, {high:g}] by x * {a:.6g} + {low - a * src[0]:.6g}")
    raise ValueError(f"--model: the data lie in [{lo:.4g}, {hi:.4g}], inside neither the model's pixel range "
                     f"[{low:g}, {high:g}] nor [-1, 1], [0, 1] or [0, 255]; rescale them first")
