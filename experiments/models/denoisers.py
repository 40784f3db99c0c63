"""The Denoiser interface: D(x, t) -> estimate of y = E[y | x_t = x].

Samplers, Jacobian measurements and figures all take a Denoiser, so an exact denoiser built from a
theory data model and a trained network are interchangeable. Time ``t`` is schedule time (a tensor of
shape (B,) or a float); ``x`` has shape (B, *shape). Tweedie's formula links the three
parameterisations: x = alpha y + sigma eps, score = (alpha D - x) / sigma^2 = -eps / sigma.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

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


TARGETS = ("eps", "score", "x0", "v")


class NetworkDenoiser(Denoiser):
    """Adapter for a network ``net(x, t)`` that predicts eps (``target='eps'``), the score
    (``'score'``), the clean sample (``'x0'``, diffusers' ``sample``) or the velocity
    v = alpha eps - sigma y (``'v'``; Salimans & Ho 2022):

        D = (x - sigma eps) / alpha = (x + sigma^2 score) / alpha = x0 = alpha x - sigma v.

    The network runs in its own dtype; the conversion to D is done in float64.
    """

    def __init__(self, net: nn.Module, schedule: Schedule, shape: tuple[int, ...], target: str = "eps"):
        if target not in TARGETS:
            raise ValueError(f"target: expected one of {', '.join(TARGETS)}, got {target!r}")
        self.net, self.schedule, self.shape, self.target = net, schedule, tuple(shape), target

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.net(x.to(self.dtype), t.to(torch.promote_types(self.dtype, torch.float32))).to(x.dtype)
        alpha, sigma = (append_dims(v, x.ndim).to(x.dtype) for v in noise_level(self.schedule, t))
        return self.from_output(out, x, alpha, sigma)

    def from_output(self, out: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """D from the network's output at x on the level (alpha, sigma) (class docstring)."""
        if self.target == "x0":
            return out
        if self.target == "eps":
            return (x - sigma * out) / alpha
        if self.target == "v":
            return alpha * x - sigma * out
        return (x + sigma**2 * out) / alpha


def in_chunks(fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, t: Tensor, max_batch: int | None) -> Tensor:
    """``fn(x, t)`` evaluated on consecutive chunks of at most ``max_batch`` rows and concatenated (the
    whole batch at once when ``max_batch`` is None): a network's batch then fits the device whatever
    the sampler's batch. Differentiable, so it also serves the Jacobian products."""
    if max_batch is None or x.shape[0] <= max_batch:
        return fn(x, t)
    return torch.cat([fn(x[i:i + max_batch], t[i:i + max_batch]) for i in range(0, x.shape[0], max_batch)])


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
