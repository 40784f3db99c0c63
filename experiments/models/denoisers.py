"""The Denoiser interface: D(x, t) -> estimate of y = E[y | x_t = x].

Samplers, Jacobian measurements and figures all take a Denoiser, so an exact denoiser built from a
theory data model and a trained network are interchangeable. Time ``t`` is schedule time (a tensor of
shape (B,) or a float); ``x`` has shape (B, *shape). Tweedie's formula links the three
parameterisations: x = alpha y + sigma eps, score = (alpha D - x) / sigma^2 = -eps / sigma.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor, nn

from symbreak.theory import DataModel, Schedule


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton axes to ``v`` until it has ``ndim`` axes (k-diffusion's helper)."""
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def as_time(t: Tensor | float, x: Tensor) -> Tensor:
    """``t`` as a float64 tensor of shape (B,) on the device of ``x``."""
    t = torch.as_tensor(t, dtype=torch.float64, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def noise_level(schedule: Schedule, t: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha(t), sigma(t)) as float64 tensors shaped like ``t``."""
    tn = np.asarray(t.tolist(), dtype=np.float64)
    return (torch.as_tensor(schedule.alpha(tn), dtype=torch.float64, device=t.device),
            torch.as_tensor(schedule.sigma(tn), dtype=torch.float64, device=t.device))


class Denoiser(ABC):
    """D(x, t) ~ E[y | x_t = x] under ``schedule``, for samples of per-sample shape ``shape``."""

    schedule: Schedule
    shape: tuple[int, ...]

    @abstractmethod
    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        """The estimate of y for x of shape (B, *shape) and t of shape (B,) (float64)."""

    def __call__(self, x: Tensor, t: Tensor | float) -> Tensor:
        return self.denoise(x, as_time(t, x))

    def score(self, x: Tensor, t: Tensor | float) -> Tensor:
        """grad log p_t(x) = (alpha D - x) / sigma^2."""
        t = as_time(t, x)
        alpha, sigma = (append_dims(v, x.ndim).to(x.dtype) for v in noise_level(self.schedule, t))
        return (alpha * self.denoise(x, t) - x) / sigma**2

    def eps(self, x: Tensor, t: Tensor | float) -> Tensor:
        """Predicted noise eps = (x - alpha D) / sigma."""
        t = as_time(t, x)
        alpha, sigma = (append_dims(v, x.ndim).to(x.dtype) for v in noise_level(self.schedule, t))
        return (x - alpha * self.denoise(x, t)) / sigma


class NetworkDenoiser(Denoiser):
    """Adapter for a network ``net(x, t)`` that predicts eps (``target='eps'``) or the score
    (``target='score'``): D = (x - sigma eps) / alpha = (x + sigma^2 score) / alpha.

    The network runs in its own dtype; the conversion to D is done in float64.
    """

    def __init__(self, net: nn.Module, schedule: Schedule, shape: tuple[int, ...], target: str = "eps"):
        if target not in ("eps", "score"):
            raise ValueError(f"target: expected 'eps' or 'score', got {target!r}")
        self.net, self.schedule, self.shape, self.target = net, schedule, tuple(shape), target

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        dtype = next(self.net.parameters()).dtype
        out = self.net(x.to(dtype), t.to(dtype)).to(x.dtype)
        alpha, sigma = (append_dims(v, x.ndim).to(x.dtype) for v in noise_level(self.schedule, t))
        if self.target == "eps":
            return (x - sigma * out) / alpha
        return (x + sigma**2 * out) / alpha


class ExactDenoiser(Denoiser):
    """The oracle: the exact posterior mean of a theory :class:`DataModel` (computed in float64)."""

    def __init__(self, model: DataModel, schedule: Schedule, shape: tuple[int, ...] | None = None):
        self.model, self.schedule = model, schedule
        self.shape = tuple(shape) if shape is not None else (model.dim,)

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        xs = x.detach().reshape(x.shape[0], -1).cpu().numpy().astype(np.float64)
        ts = t.detach().cpu().numpy()
        out = np.empty_like(xs)
        for value in np.unique(ts):
            rows = ts == value
            out[rows] = self.model.posterior_mean(xs[rows], float(value), self.schedule)
        return torch.as_tensor(out, device=x.device).to(x.dtype).reshape(x.shape)
