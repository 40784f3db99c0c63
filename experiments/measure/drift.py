"""The learned generative drift of any Denoiser and its Jacobian, through torch.func.

A Denoiser D(x, t) gives the score (alpha D - x) / sigma^2 (Tweedie), hence the generative drift
(README, Notation: b = -f x + c beta grad log p_t; Raya & Ambrogioni 2023)

    b(x, t) = -f x + c beta score_D(x, t) = lin(t) x + gain(t) D(x, t),
    lin = -f - c beta / sigma^2,   gain = c beta alpha / sigma^2,   c = 1 (SDE), 1/2 (ODE),

and its Jacobian J = lin I + gain dD/dx. For an exact score J is symmetric (b = -grad u); a trained
network's J is not exactly, so the spectra (``measure.spectrum``) are those of the symmetric part
(J + J^T) / 2, and :meth:`LearnedDrift.sym_matvec` gives its products.

Derivatives come from ``torch.func``: the dense J of a batch is ``vmap(jacrev(b))`` over its points
(each point's J from one vectorised set of d vector-Jacobian products); matrix-free, J^T v comes from
the pullback of ``torch.func.vjp`` at the point, and J v from the vjp of that linear map u -> J^T u
(reverse over reverse: one forward pass at a point serves every product there). Forward mode
(``torch.func.jvp``), which repeats the forward pass for every product, was measured at 10x (digits
MLP) and 3x (3x16x16 U-Net) the cost of this J v on the CPU (``benchmarks/jacobian.py``). A
denoiser must treat batch rows independently (eval-mode networks and exact denoisers do) and read t
only through torch operations or ``noise_level``; an exact denoiser is swapped for its torch port
(:func:`symbreak.experiments.models.oracle.differentiable`).

**Attention.** The J v route differentiates twice (the vjp of a vjp), and the fused attention kernels
that ``F.scaled_dot_product_attention`` picks on the CPU and GPU (flash, memory-efficient) have no
derivative of their backward (``aten::_scaled_dot_product_flash_attention_for_cpu_backward``), so every
drift evaluation here runs under ``sdpa_kernel(SDPBackend.MATH)`` (:func:`math_attention`): attention as
matmul-softmax-matmul, which autograd differentiates to any order and which computes the same function
(to float round-off). Reverse over reverse is kept rather than forward mode because it reuses one forward
pass per point (above); the math kernel costs more memory for long sequences, but the Jacobian products
run on batch 1 (the sampling does not use this module and keeps the fused kernels).

Precision: a network runs in its own dtype (float32, or bfloat16/float16; :class:`NetworkDenoiser`
casts the input, and the time in at least float32), while the states, the drift arithmetic and every
Krylov basis built on these products are float64.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.func import jacrev, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import denoiser_device, differentiable
from symbreak.theory.dynamics import score_weight

Array = NDArray[np.float64]


def math_attention():
    """The context in which attention is twice differentiable: ``sdpa_kernel(SDPBackend.MATH)`` (module docstring)."""
    return sdpa_kernel(SDPBackend.MATH)


@dataclass(frozen=True)
class JacobianProducts:
    """The products v -> J v and v -> J^T v of the drift's Jacobian at one point, and the drift ``b``
    there (the primal of the same forward pass)."""

    jvp: Callable[[Tensor], Tensor]
    vjp: Callable[[Tensor], Tensor]
    b: Tensor | None = None


class LearnedDrift:
    """b(x) = lin x + gain D(x, t) at a fixed ``t``, as a function of flat float64 states (B, d).

    lin = -f - c beta / sigma^2 and gain = c beta alpha / sigma^2 (module docstring);
    ``jacobian`` (a batch), ``linearise`` (J v, J^T v at a point) and ``sym_matvec`` give J.
    """

    def __init__(self, denoiser: Denoiser, t: float, dynamics: str = "sde"):
        self.denoiser = differentiable(denoiser)
        self.schedule = self.denoiser.schedule
        self.shape = tuple(self.denoiser.shape)
        self.dim = int(np.prod(self.shape))
        self.dynamics = dynamics
        c = score_weight(dynamics)
        self.t = float(self.schedule.check_t(t))
        alpha, sigma2 = float(self.schedule.alpha(self.t)), float(self.schedule.sigma2(self.t))
        self.beta = float(self.schedule.beta(self.t))
        self.lin = -float(self.schedule.f(self.t)) - c * self.beta / sigma2
        self.gain = c * self.beta * alpha / sigma2

    def __call__(self, x: Tensor) -> Tensor:
        """b for flat states x of shape (B, d) (float64), attention through the math kernel."""
        xs = x.reshape((x.shape[0],) + self.shape)
        with math_attention():
            y_hat = self.denoiser(xs, self.t).reshape(x.shape)
        return self.lin * x + self.gain * y_hat.to(x.dtype)

    def point(self, x: Tensor) -> Tensor:
        """b at one flat state x (d,): the function torch.func differentiates."""
        return self(x[None])[0]

    def jacobian(self, x: Tensor, chunk_size: int | None = None) -> Tensor:
        """J = db/dx at each row of x (B, d) -> (B, d, d): ``vmap(jacrev(b))``, ``chunk_size`` points at a time."""
        return vmap(jacrev(self.point), chunk_size=chunk_size)(x.detach())

    def linearise(self, x: Tensor) -> JacobianProducts:
        """J v and J^T v at one point x (d,) from one forward pass (module docstring): ``torch.func.vjp``
        gives u -> J^T u, and the vjp of that linear map gives v -> J v."""
        b, pullback = torch.func.vjp(self.point, x.detach())
        _, pullback_t = torch.func.vjp(lambda u: pullback(u)[0], torch.zeros_like(b))

        def vjp(v: Tensor) -> Tensor:
            return pullback(v)[0].detach()

        def jvp(v: Tensor) -> Tensor:
            return pullback_t(v)[0].detach()
        return JacobianProducts(jvp, vjp, b.detach())

    def sym_matvec(self, lin: JacobianProducts) -> Callable[[Tensor], Tensor]:
        """v -> (J v + J^T v) / (2 beta)."""
        return lambda v: 0.5 * (lin.jvp(v) + lin.vjp(v)) / self.beta


def flat_points(denoiser: Denoiser, x: Tensor | Array) -> Tensor:
    """States as a float64 tensor (B, d) on the denoiser's device; one point of the sample shape
    (or (d,)) becomes B = 1."""
    x = torch.as_tensor(x, dtype=torch.float64, device=denoiser_device(denoiser))
    d = int(np.prod(denoiser.shape))
    if tuple(x.shape) in (tuple(denoiser.shape), (d,)):
        return x.reshape(1, d)
    if x.ndim < 1 or x[0].numel() != d:
        raise ValueError(f"x: expected shape (B, {d}) or (B, *{tuple(denoiser.shape)}), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x: contains NaN or infinite values")
    return x.reshape(x.shape[0], d)


def drift(denoiser: Denoiser, x: Tensor | Array, t: float, dynamics: str = "sde") -> Tensor:
    """The learned drift b(x, t) = -f x + c beta score_D(x, t) at states x, shape (B, d)."""
    return LearnedDrift(denoiser, t, dynamics)(flat_points(denoiser, x))


def drift_jacobian(denoiser: Denoiser, x: Tensor | Array, t: float, dynamics: str = "sde",
                   chunk_size: int | None = 64) -> Tensor:
    """J = db/dx at states x, shape (B, d, d) (small d only: vmap(jacrev), d products per point)."""
    return LearnedDrift(denoiser, t, dynamics).jacobian(flat_points(denoiser, x), chunk_size)
