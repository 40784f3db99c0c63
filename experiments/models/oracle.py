"""A differentiable exact oracle and the device a denoiser runs on.

The exact :class:`ExactDenoiser` computes in numpy and cannot be differentiated; the measurements swap
it for :class:`TorchExactDenoiser`, an independent torch port of the same posterior mean, so the
oracle runs through exactly the same torch.func code as a network.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from symbreak.experiments.models.denoisers import Denoiser, ExactDenoiser, NetworkDenoiser, noise_level
from symbreak.theory import DataModel, EmpiricalData, Gaussian, GaussianMixture, Schedule

Array = NDArray[np.float64]
LOG_2PI = math.log(2.0 * math.pi)


class TorchExactDenoiser(Denoiser):
    """The exact posterior mean E[y | x_t = x] of a theory data model, written in torch (float64).

    Supports :class:`Gaussian` (y_hat = mu + U diag(alpha lam / (alpha^2 lam + sigma^2)) U^T (x - alpha mu)),
    :class:`GaussianMixture` (responsibility-weighted component means) and :class:`EmpiricalData`
    (softmax over points of (alpha x.y_j - alpha^2 |y_j|^2 / 2) / sigma^2 + log w_j; two deltas
    included). It is differentiable (autograd, torch.func), and every batch row may have its own t. It
    computes on the device of its input; ``device`` is where measurements put their states.
    Empirical data are held whole on that device (N x d float64).
    """

    def __init__(self, model: DataModel, schedule: Schedule, shape: tuple[int, ...] | None = None,
                 device: torch.device | str = "cpu"):
        self.model, self.schedule, self.device = model, schedule, torch.device(device)
        self.shape = tuple(shape) if shape is not None else (model.dim,)
        self._posterior_mean = _torch_posterior_mean(model, self.device)

    def denoise(self, x: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = noise_level(self.schedule, t)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        y_hat = self._posterior_mean(flat, alpha[:, None], (sigma * sigma)[:, None])
        return y_hat.to(x.dtype).reshape(x.shape)


def _gaussian_parts(model: Gaussian, device: torch.device) -> Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]:
    """(posterior mean, log p_t) of one Gaussian, for rows x with per-row alpha, sigma^2 of shape (B, 1)."""
    lam_np, u_np = np.linalg.eigh(model.cov)
    lam, u = (torch.as_tensor(v, device=device) for v in (np.clip(lam_np, 0.0, None), u_np))
    mu = torch.as_tensor(model.mean, device=device)

    def parts(x: Tensor, alpha: Tensor, sigma2: Tensor) -> tuple[Tensor, Tensor]:
        lam_, u_, mu_ = lam.to(x.device), u.to(x.device), mu.to(x.device)
        z = (x - alpha * mu_) @ u_
        denom = alpha * alpha * lam_ + sigma2
        mean = mu_ + (z * (alpha * lam_ / denom)) @ u_.T
        log_p = -0.5 * ((z * z / denom).sum(-1) + torch.log(denom).sum(-1) + x.shape[1] * LOG_2PI)
        return mean, log_p

    return parts


def empirical_logits(x: Tensor, y: Tensor, y_norm2: Tensor, log_w: Tensor, alpha: Tensor | float,
                     sigma2: Tensor | float) -> Tensor:
    """The posterior logits of finite data, log w_j + (alpha x.y_j - alpha^2 |y_j|^2 / 2) / sigma^2 (the
    log posterior of y_j given x_t = x up to a constant in j), for a state x (d,) or rows x (B, d) against
    the points ``y`` (n, d) with their squared norms ``y_norm2`` (n,); (n,) or (B, n)."""
    return log_w + (alpha * (x @ y.T) - 0.5 * alpha * alpha * y_norm2) / sigma2


def _torch_posterior_mean(model: DataModel, device: torch.device) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """y_hat(x; alpha, sigma^2) in torch for the supported models (tensors kept on ``device``)."""
    if isinstance(model, Gaussian):
        parts = _gaussian_parts(model, device)
        return lambda x, alpha, sigma2: parts(x, alpha, sigma2)[0]
    if isinstance(model, GaussianMixture):
        comps = [_gaussian_parts(c, device) for c in model.components]
        log_w = torch.log(torch.as_tensor(model.weights, device=device))

        def mixture(x: Tensor, alpha: Tensor, sigma2: Tensor) -> Tensor:
            means, log_ps = zip(*(p(x, alpha, sigma2) for p in comps))
            r = torch.softmax(torch.stack(log_ps, 1) + log_w.to(x.device), dim=1)
            return torch.einsum("bk,kbd->bd", r, torch.stack(means))
        return mixture
    if isinstance(model, EmpiricalData):
        y = torch.as_tensor(np.asarray(model.y, dtype=np.float64), device=device)
        y_norm2 = (y * y).sum(1)
        log_w = torch.as_tensor(model.log_weights, device=device)

        def empirical(x: Tensor, alpha: Tensor, sigma2: Tensor) -> Tensor:
            y_ = y.to(x.device)
            logits = empirical_logits(x, y_, y_norm2.to(x.device), log_w.to(x.device), alpha, sigma2)
            return torch.softmax(logits, dim=1) @ y_
        return empirical
    raise ValueError(f"denoiser: no torch port of the exact posterior mean for {type(model).__name__}; "
                     "supported: Gaussian, GaussianMixture, EmpiricalData (incl. SymmetricDeltas)")


def differentiable(denoiser: Denoiser) -> Denoiser:
    """``denoiser`` itself, or for an :class:`ExactDenoiser` its :class:`TorchExactDenoiser` twin."""
    if not isinstance(denoiser, Denoiser):
        raise ValueError(f"denoiser: expected a Denoiser, got {type(denoiser).__name__}")
    if isinstance(denoiser, ExactDenoiser):
        return TorchExactDenoiser(denoiser.model, denoiser.schedule, denoiser.shape)
    return denoiser


def denoiser_device(denoiser: Denoiser) -> torch.device:
    """Where a denoiser computes: its network's device, a TorchExactDenoiser's device, else the CPU."""
    if isinstance(denoiser, NetworkDenoiser):
        return next(denoiser.net.parameters()).device
    if isinstance(denoiser, TorchExactDenoiser):
        return denoiser.device
    return torch.device("cpu")
