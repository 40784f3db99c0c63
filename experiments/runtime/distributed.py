"""Running the same commands on several processes (``torchrun``), and devices.

Under ``torchrun --nproc_per_node K`` the environment names each process's RANK, WORLD_SIZE and
LOCAL_RANK. Training then wraps the network in DistributedDataParallel (gloo on CPU, nccl on CUDA):
each rank draws its own slice of every minibatch from a generator seeded by (seed, rank), and the
gradients are averaged, so a step sees the whole batch. Sampling and measurement split a list of
per-sample seeds into contiguous chunks, one per rank, and gather the results in rank order, so the
output equals a one-process run over the same seeds. Without ``torchrun`` every helper here is the
identity of the one-process case.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from symbreak.theory.checks import check_choice

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank in [0, world_size), its local rank on the machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value is None else int(value)


def current_context() -> DistContext:
    """The process group if one is initialised, else the one-process context."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))


def resolve_device(device: str | torch.device = "auto", ctx: DistContext | None = None) -> torch.device:
    """``auto`` -> CUDA (this process's local GPU) when available, else CPU; ``cuda`` requires CUDA."""
    ctx = ctx or current_context()
    if isinstance(device, torch.device):
        return device
    if check_choice("--device", device, DEVICES) == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: 'cuda' was asked for but CUDA is not available; use 'auto' or 'cpu'")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", ctx.local_rank % torch.cuda.device_count())


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes (idempotent; a no-op without torchrun).

    The backend is nccl when this process computes on CUDA, gloo otherwise.
    """
    if dist.is_initialized() or _env_int("WORLD_SIZE", 1) <= 1:
        return current_context()
    ctx = DistContext(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    dev = resolve_device(device, ctx)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return current_context()


def rank_seeds(seed: int, rank: int, n: int = 2) -> list[int]:
    """``n`` independent 63-bit seeds for (seed, rank), from numpy's SeedSequence."""
    state = np.random.SeedSequence([int(seed), int(rank)]).generate_state(n, dtype=np.uint64)
    return [int(s >> np.uint64(1)) for s in state]


def wrap_ddp(net: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``net`` wrapped in DistributedDataParallel when several processes train, else ``net`` itself.

    DDP broadcasts rank 0's parameters at construction, so all ranks start from the same weights.
    """
    if not ctx.active:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def split_seeds(seeds: Sequence[int], rank: int, world_size: int) -> list[int]:
    """The contiguous chunk of ``seeds`` that ``rank`` handles (chunk sizes differ by at most one)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank: must lie in [0, {world_size}), got {rank}")
    return [int(s) for s in np.array_split(np.asarray(seeds, dtype=np.int64), world_size)[rank]]


def _concat(parts: list[Any]) -> Any:
    """Join per-rank results along the first axis (arrays, tensors or lists)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return []
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=0)
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts, dim=0)
    return [item for part in parts for item in part]


def gather(local: Any, ctx: DistContext | None = None) -> Any:
    """Every rank's ``local`` result joined in rank order (all ranks receive the whole)."""
    ctx = ctx or current_context()
    if not ctx.active:
        return _concat([local])
    if isinstance(local, torch.Tensor):
        local = local.cpu()
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, local)
    return _concat(parts)


def map_seeds(fn: Callable[[list[int]], Any], seeds: Sequence[int], ctx: DistContext | None = None) -> Any:
    """``fn(seeds)`` computed as ``fn`` on each rank's chunk, gathered in order.

    ``fn`` maps a list of per-sample seeds to one result per seed stacked on the first axis (an array,
    a tensor or a list); when it treats each seed on its own the answer equals the one-process call.
    """
    ctx = ctx or current_context()
    local = split_seeds(seeds, ctx.rank, ctx.world_size)
    return gather(fn(local) if local else None, ctx)


def broadcast(value: Any, ctx: DistContext | None = None, src: int = 0) -> Any:
    """``value`` as rank ``src`` has it, on every rank."""
    ctx = ctx or current_context()
    if not ctx.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(ctx: DistContext | None = None) -> None:
    ctx = ctx or current_context()
    if ctx.active:
        dist.barrier()
