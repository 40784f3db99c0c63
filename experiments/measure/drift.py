"""The learned generative dynamics measured on any Denoiser: drift, Jacobian spectrum, central branch.

A Denoiser D(x, t) gives the score (alpha D - x) / sigma^2 (Tweedie), hence the generative drift
(design note section 1)

    b(x, t) = -f x + c beta score_D(x, t) = lin(t) x + gain(t) D(x, t),
    lin = -f - c beta / sigma^2,   gain = c beta alpha / sigma^2,   c = 1 (SDE), 1/2 (ODE),

and its Jacobian J = lin I + gain dD/dx. The stability margin of a point is the top eigenvalue of
J / beta. For an exact score J is symmetric (b = -grad u); a trained network's J is not exactly, so
every spectrum here is that of the symmetric part (J + J^T) / 2, and the non-symmetry
||J - J^T||_F / (2 ||J||_F) is reported beside it.

Routes, chosen by the dimension d (``method="auto"``):
- d <= ``DENSE_MAX_DIM``: the full Jacobian, eigenvalues by ``eigvalsh``; Newton steps solve with it.
- larger d: never the d x d matrix. Top eigenvalues by Lanczos (full reorthogonalisation) on the
  products (J v + J^T v) / 2; Newton-Krylov (GMRES on J v products) for the fixed point; the
  non-symmetry by a Rademacher-probe estimate.

Derivatives come from ``torch.func``: the dense J of a batch is ``vmap(jacrev(b))`` over its points
(each point's J from one vectorised set of d vector-Jacobian products); matrix-free, J^T v comes from
the pullback of ``torch.func.vjp`` at the point, and J v from the vjp of that linear map u -> J^T u
(reverse over reverse: one forward pass at a point serves every product there). Forward mode
(``torch.func.jvp``), which repeats the forward pass for every product, was measured at 10x (digits
MLP) and 3x (3x16x16 U-Net) the cost of this J v on the CPU (``benchmarks/jacobian.py``). A
denoiser must treat batch rows independently (eval-mode networks and exact denoisers do) and read t
only through torch operations or ``noise_level``.

Precision: a network runs in its own dtype (float32; :class:`NetworkDenoiser` casts the input),
while the Newton state, the drift arithmetic, the Krylov bases and the eigenvalue problems are
float64. A matrix-free product costs one backward pass of batch 1 through the stored graph, so a
64x64x3 U-Net (d = 12288) needs the memory of one forward and two backward passes of one image (on the
CPU: top-2 eigenvalues by 60 Lanczos steps in 8 s, ``benchmarks/cuda_check.py --device cpu``);
``chunk_size`` bounds the points per dense batch.

The exact :class:`ExactDenoiser` computes in numpy and cannot be differentiated; every function here
swaps it for :class:`TorchExactDenoiser`, an independent torch port of the same posterior mean, so
the oracle runs through exactly the same torch.func code as a network."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.func import jacrev, vmap

from symbreak.experiments.models.denoisers import Denoiser
from symbreak.experiments.models.oracle import denoiser_device, differentiable
from symbreak.theory.dynamics import score_weight

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Linearisation:
    """The products v -> J v and v -> J^T v of the drift's Jacobian at one point."""

    jvp: Callable[[Tensor], Tensor]
    vjp: Callable[[Tensor], Tensor]


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
        """b for flat states x of shape (B, d) (float64)."""
        xs = x.reshape((x.shape[0],) + self.shape)
        y_hat = self.denoiser(xs, self.t).reshape(x.shape)
        return self.lin * x + self.gain * y_hat

    def point(self, x: Tensor) -> Tensor:
        """b at one flat state x (d,): the function torch.func differentiates."""
        return self(x[None])[0]

    def jacobian(self, x: Tensor, chunk_size: int | None = None) -> Tensor:
        """J = db/dx at each row of x (B, d) -> (B, d, d): ``vmap(jacrev(b))``, ``chunk_size`` points at a time."""
        return vmap(jacrev(self.point), chunk_size=chunk_size)(x.detach())

    def linearise(self, x: Tensor) -> Linearisation:
        """J v and J^T v at one point x (d,) from one forward pass (module docstring): ``torch.func.vjp``
        gives u -> J^T u, and the vjp of that linear map gives v -> J v."""
        b, pullback = torch.func.vjp(self.point, x.detach())
        _, pullback_t = torch.func.vjp(lambda u: pullback(u)[0], torch.zeros_like(b))

        def vjp(v: Tensor) -> Tensor:
            return pullback(v)[0].detach()

        def jvp(v: Tensor) -> Tensor:
            return pullback_t(v)[0].detach()
        return Linearisation(jvp, vjp)

    def sym_matvec(self, lin: Linearisation) -> Callable[[Tensor], Tensor]:
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
