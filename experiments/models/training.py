"""eps-prediction training of denoiser networks, with an EMA of the weights and a cache on disk.

The loss is the simplified DDPM objective (Ho et al. 2020, Eq. 14), on any schedule:

    L = E_{y, eps, t} || eps_theta(alpha(t) y + sigma(t) eps, t) - eps ||^2 / d,

with t ~ U(t_min, T) on continuous schedules and a uniform step k (t = t_of_step(k)) on the discrete
DDPM schedule. Data: toy sets with an exact model draw fresh samples from ``dataset.model`` each step;
all others draw minibatches of ``dataset.x``. Adam, linear warm-up then (optionally) cosine decay of
the learning rate, gradient clipping, and an exponential moving average of the weights
theta_ema <- d_k theta_ema + (1 - d_k) theta with d_k = min(decay, (1 + k) / (10 + k)); the EMA
network is the one used for sampling (the networks have no trained buffers: Layer/GroupNorm only).

Trained weights are cached by a hash of the resolved configuration (data, schedule, network, training
hyper-parameters, seed, library versions): ``<cache>/<data>-<hash>/weights.pt`` (a state_dict, read
with ``torch.load(weights_only=True)``) and ``config.json`` (written last, with the weights' sha256).
A corrupt entry is reported with a warning and rebuilt. An entry is filled under an exclusive
``fcntl.flock`` on ``<entry>/.lock``, so concurrent runs of one configuration train once (the others
wait, then read the cache); temporaries of killed writers are removed when the lock is taken.

A run whose loss or EMA weights become NaN or infinite raises :class:`TrainingDiverged` (with the
first bad step) and is never cached.
"""
from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from symbreak.analysis.datasets import chunk_slices
from symbreak.analysis.io import (
    atomic_write,
    clean_atomic_leftovers,
    package_versions,
    sha256_file,
    to_jsonable,
    write_json,
)
from symbreak.experiments.models.denoisers import NetworkDenoiser
from symbreak.experiments.models.networks import (
    PRECONDITIONINGS,
    EDMPreconditioned,
    MLPConfig,
    NetworkConfig,
    UNetConfig,
    build_network,
    network_config_from_dict,
)
from symbreak.experiments.runtime.distributed import (
    DistContext,
    barrier,
    broadcast,
    current_context,
    rank_seeds,
    resolve_device,
    wrap_ddp,
)
from symbreak.experiments.runtime.threads import torch_threads
from symbreak.theory import DataModel, Schedule
from symbreak.theory.checks import check_choice, check_int, check_positive

CACHE_FORMAT = 3  # raised whenever a network architecture changes, so older weights are not reused
LR_SCHEDULES = ("cosine", "constant")
MAX_TRAIN_STEPS = 10_000_000  # --steps above this is a typo (the recipes use a few thousand)


class TrainingDiverged(ArithmeticError):
    """Training produced a NaN or infinite loss or weights; the model is not cached."""


class TrainingData(Protocol):
    """What training needs from ``symbreak.analysis.datasets.Dataset``."""

    name: str
    x: np.ndarray            # (N, d) float32, flattened samples
    shape: tuple[int, ...]   # per-sample shape, prod(shape) = d
    model: DataModel | None  # exact data model of toy sets
    config: dict


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights, besides the data and the schedule."""

    network: NetworkConfig
    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    precondition: str = "none"
    sigma_data: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0), ("seed", 0)):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), low)
        if self.steps > MAX_TRAIN_STEPS:
            raise ValueError(f"--steps: at most {MAX_TRAIN_STEPS:,} training steps, got {self.steps:,}")
        check_positive("--lr", self.lr)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: must lie in [0, 1), got {self.ema_decay!r}")
        check_positive("grad_clip", self.grad_clip)
        if self.precondition not in PRECONDITIONINGS:
            raise ValueError(f"--precondition: expected one of {', '.join(PRECONDITIONINGS)}, got {self.precondition!r}")
        needs_scale = self.precondition == "edm"
        if needs_scale != (self.sigma_data is not None):
            raise ValueError(f"sigma_data: {'required' if needs_scale else 'unused'} with precondition "
                             f"{self.precondition!r}, got {self.sigma_data!r}")
        if needs_scale:
            check_positive("sigma_data", self.sigma_data)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["network"] = self.network.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        params = dict(data)
        params["network"] = network_config_from_dict(params["network"])
        return cls(**params)


def _data_dim(dataset: TrainingData) -> int:
    return int(np.prod(dataset.shape))


def image_layout(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """((C, H, W), channels_last) for a per-sample shape (H, W), (C, H, W) or (H, W, C), C <= 4."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape), False
    if len(shape) == 3 and shape[0] <= 4:
        return shape, False  # type: ignore[return-value]
    if len(shape) == 3 and shape[2] <= 4:
        return (shape[2], shape[0], shape[1]), True
    raise ValueError(f"--arch: unet needs images of shape (H, W), (C, H, W) or (H, W, C) with at most 4 "
                     f"channels, got samples of shape {shape}")


def unet_levels(height: int, width: int, max_levels: int = 4) -> int:
    """Resolutions H, H/2, ...: halve while both sides stay even and at least 4 pixels."""
    levels = 1
    while (levels < max_levels and height % 2**levels == 0 and width % 2**levels == 0
           and min(height, width) // 2**levels >= 4):
        levels += 1
    return levels


def default_train_config(dataset: TrainingData, arch: str = "mlp") -> TrainConfig:
    """Sensible settings per data set.

    mlp (fast on CPU): d <= 2 (two deltas, 2-D mixtures): width 64, 2 blocks, no time gain on the
    linear path, eps predicted directly, 3000 steps of 512 (about 20 s on one core; the network's
    critical time lands within ~2% of theory; with the gain, 2.1 / 5.0 % on the 2-D mixture for seeds
    0 / 1); larger d (digits, d = 64): width 256, 2 blocks with the time gain, EDM preconditioning
    (:func:`with_precondition`), 4000 steps of 128 (about 50 s).
    unet (sized for a GPU; ~0.2 s a step on CPU for 8x8 digits): 32 base channels, channel
    multipliers (1, 2, 2, 2) over :func:`unet_levels` resolutions, 4000 steps of 128, EDM preconditioning.

    Measured on digits (seeds 0 / 1), EDM against plain eps: the margin at t = 1 within 0.013 / 0.007
    of the exact score's -1/2 (plain: 0.21 / 0.05), FD of 1000-step DDPM samples 2.28 / 2.68 (plain:
    2.42 / 2.22), final loss 0.095 / 0.097 (plain: 0.090 / 0.091).
    """
    config = _recipe(dataset, arch)
    return with_precondition(config, dataset, "none" if arch == "mlp" and _data_dim(dataset) <= 2 else "edm")


def _recipe(dataset: TrainingData, arch: str) -> TrainConfig:
    d = _data_dim(dataset)
    if arch == "mlp":
        if d <= 2:
            return TrainConfig(MLPConfig(dim=d, width=64, depth=2, time_gain=False), steps=3000, batch_size=512,
                               lr=2e-3)
        return TrainConfig(MLPConfig(dim=d, width=256, depth=2), steps=4000, batch_size=128, lr=3e-3)
    if arch == "unet":
        c_hw, channels_last = image_layout(dataset.shape)
        mult = (1, 2, 2, 2)[:unet_levels(c_hw[1], c_hw[2])]
        return TrainConfig(UNetConfig(c_hw, base_channels=32, channel_mult=mult, channels_last=channels_last),
                           steps=4000, batch_size=128, lr=2e-4 if min(c_hw[1:]) > 16 else 1e-3)
    raise ValueError(f"--arch: expected 'mlp' or 'unet', got {arch!r}")


def with_precondition(config: TrainConfig, dataset: TrainingData, precondition: str) -> TrainConfig:
    """``config`` with ``precondition`` ('none': the network predicts eps; 'edm': :class:`EDMPreconditioned`
    with sigma_data = :func:`data_rms` of ``dataset``)."""
    if precondition != "edm":  # TrainConfig rejects anything but "none"
        return replace(config, precondition=precondition, sigma_data=None)
    if not (rms := data_rms(dataset)) > 0:
        raise ValueError(f"--precondition: edm needs data of non-zero scale, but {dataset.name!r} has RMS {rms}; "
                         "use --precondition none")
    return replace(config, precondition=precondition, sigma_data=rms)


def data_rms(dataset: TrainingData, rows: int = 1 << 14) -> float:
    """sigma_data = sqrt(E|y|^2 / d): from the exact model ((|mu|^2 + tr Sigma) / d) when there is one,
    else from the samples, ``rows`` at a time (memory maps are never read whole)."""
    if dataset.model is not None:
        return math.sqrt((float(dataset.model.mean @ dataset.model.mean) + float(np.trace(dataset.model.cov)))
                         / dataset.model.dim)
    total = sum(float(np.square(dataset.x[sl], dtype=np.float64).sum()) for sl in chunk_slices(len(dataset.x), rows))
    return math.sqrt(total / max(1, dataset.x.shape[0] * dataset.x.shape[1]))


def _check_compatible(dataset: TrainingData, config: TrainConfig) -> None:
    d = _data_dim(dataset)
    if config.network.dim != d:
        raise ValueError(f"network: built for d = {config.network.dim} but the data {dataset.name!r} "
                         f"have d = {d} (shape {tuple(dataset.shape)})")
    if dataset.model is None and len(dataset.x) == 0:
        raise ValueError(f"data: {dataset.name!r} has no samples to train on")


# --------------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------------
def sample_times(schedule: Schedule, n: int, generator: torch.Generator) -> np.ndarray:
    """t ~ U(t_min, T) (continuous) or t = t_of_step(k), k uniform in {0, ..., N - 1} (discrete)."""
    if schedule.discrete:
        k = torch.randint(0, schedule.n_steps, (n,), generator=generator).numpy()
        return schedule.t_of_step(k)
    u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
    return schedule.t_min + (schedule.T - schedule.t_min) * u


def _points_tensor(x: np.ndarray) -> Tensor:
    """The samples as a float32 CPU tensor (read-only memory maps are copied into memory)."""
    x = np.asarray(x, dtype=np.float32)
    return torch.from_numpy(x if x.flags.writeable else x.copy())


class BatchSource:
    """Minibatches (x_t, t, eps) for one rank, from generators seeded by (seed, rank)."""

    def __init__(self, dataset: TrainingData, schedule: Schedule, batch_size: int, seed: int, rank: int):
        data_seed, torch_seed = rank_seeds(seed, rank)
        self.schedule, self.batch_size = schedule, batch_size
        self.model = dataset.model
        self.rng = np.random.default_rng(data_seed)
        self.generator = torch.Generator().manual_seed(torch_seed)
        self.points = None if self.model is not None else _points_tensor(dataset.x)

    def clean(self) -> Tensor:
        if self.model is not None:
            return torch.as_tensor(self.model.sample(self.batch_size, self.rng), dtype=torch.float32)
        idx = torch.randint(0, len(self.points), (self.batch_size,), generator=self.generator)
        return self.points[idx]

    def __next__(self) -> tuple[Tensor, Tensor, Tensor]:
        """(x_t, t, eps) as float32 CPU tensors, x_t = alpha(t) y + sigma(t) eps."""
        y = self.clean()
        t = sample_times(self.schedule, self.batch_size, self.generator)
        alpha = torch.as_tensor(self.schedule.alpha(t), dtype=torch.float32)[:, None]
        sigma = torch.as_tensor(self.schedule.sigma(t), dtype=torch.float32)[:, None]
        eps = torch.randn(y.shape, generator=self.generator)
        return alpha * y + sigma * eps, torch.as_tensor(t, dtype=torch.float32), eps


def eps_loss(net: nn.Module, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """|| eps_theta(x_t, t) - eps ||^2 averaged over the batch and the d coordinates (Eq. 14)."""
    return (net(x_t, t) - eps).square().mean()


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then 1 (constant) or a cosine decay to 0 at ``steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay_at(step: int, decay: float) -> float:
    """d_k = min(decay, (1 + k) / (10 + k)): short memory early, when the weights move fast."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: Sequence[Tensor], params: Sequence[Tensor], decay: float) -> None:
    """theta_ema <- decay theta_ema + (1 - decay) theta, for matching lists of tensors."""
    torch._foreach_lerp_(list(ema), [p.detach() for p in params], 1.0 - decay)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """The EMA denoiser (eval mode), the loss of every step on this rank, wall time and the config."""

    denoiser: NetworkDenoiser
    losses: np.ndarray
    seconds: float
    config: TrainConfig
    device: str

    @property
    def final_loss(self) -> float:
        """Mean loss over the last 10% of the steps (at least one)."""
        return float(self.losses[-max(1, len(self.losses) // 10):].mean())


def init_network(config: NetworkConfig, seed: int) -> nn.Module:
    """The network with parameters drawn from ``torch.manual_seed(seed)`` on CPU (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(config)


def init_model(config: TrainConfig, schedule: Schedule) -> nn.Module:
    """The eps-predicting model: the network of :func:`init_network`, wrapped by the preconditioning."""
    net = init_network(config.network, config.seed)
    return net if config.precondition == "none" else EDMPreconditioned(net, schedule, config.sigma_data)


def training_threads(config: NetworkConfig, device: torch.device) -> AbstractContextManager:
    """MLPs train single-threaded on CPU (see :mod:`.threads`); U-Nets keep torch's thread setting."""
    return torch_threads(1) if device.type == "cpu" and config.arch == "mlp" else nullcontext()


def _progress_bar(steps: int, enabled: bool, ctx: DistContext, name: str) -> tqdm:
    show = enabled and ctx.is_main and sys.stderr.isatty()
    return tqdm(total=steps, desc=f"train {name}", disable=not show, leave=False, dynamic_ncols=True)


def train(dataset: TrainingData, schedule: Schedule, config: TrainConfig, device: str = "auto",
          progress: bool = True) -> TrainResult:
    """Train eps_theta on ``dataset`` under ``schedule``; under ``torchrun`` with DistributedDataParallel.

    With K processes every rank draws batch_size / K samples per step (``batch_size`` is the global
    batch) and DDP averages the gradients.
    """
    _check_compatible(dataset, config)
    ctx = current_context()
    if config.batch_size % ctx.world_size:
        raise ValueError(f"--batch-size: must be divisible by the number of processes ({ctx.world_size}), "
                         f"got {config.batch_size}")
    dev = resolve_device(device, ctx)
    net = init_model(config, schedule).to(dev)
    ema = copy.deepcopy(net).requires_grad_(False)
    model = wrap_ddp(net, ctx, dev)
    params, ema_params = list(net.parameters()), list(ema.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, config))
    batches = BatchSource(dataset, schedule, config.batch_size // ctx.world_size, config.seed, ctx.rank)
    losses = torch.empty(config.steps, device=dev)
    start = time.perf_counter()
    with training_threads(config.network, dev), _progress_bar(config.steps, progress, ctx, dataset.name) as bar:
        for step in range(config.steps):
            x_t, t, eps = (v.to(dev, non_blocking=True) for v in next(batches))
            loss = eps_loss(model, x_t, t, eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            sched.step()
            ema_update(ema_params, params, ema_decay_at(step, config.ema_decay))
            losses[step] = loss.detach()
            if not bar.disable and (step % 50 == 0 or step == config.steps - 1):
                bar.set_postfix(loss=f"{loss.item():.4f}")
            bar.update()
    seconds = time.perf_counter() - start
    ema.eval()
    check_finite_training(losses, ema, config)
    return TrainResult(NetworkDenoiser(ema, schedule, tuple(dataset.shape)), losses.cpu().numpy(),
                       seconds, config, str(dev))


def check_finite_training(losses: Tensor, ema: nn.Module, config: TrainConfig) -> None:
    """Raise :class:`TrainingDiverged` if a loss or an EMA weight is NaN or infinite (one device sync)."""
    bad = torch.nonzero(~torch.isfinite(losses)).flatten()
    weights_ok = all(bool(torch.isfinite(p).all()) for p in ema.parameters())
    if bad.numel() == 0 and weights_ok:
        return
    where = f"the loss became {float(losses[bad[0]])} at step {int(bad[0])}" if bad.numel() else \
        "the EMA weights became NaN or infinite"
    hints = "try a lower --lr" + ("" if config.precondition == "edm" else ", --precondition edm") + \
        " or rescaling the data (--scale unit)"
    raise TrainingDiverged(f"training diverged: {where} of {config.steps} (lr {config.lr:g}); nothing was "
                           f"cached; {hints}")


# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else $SYMBREAK_CACHE, else ~/.cache/symbreak."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("SYMBREAK_CACHE", "~/.cache/symbreak")).expanduser()


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def resolved_config(dataset: TrainingData, schedule: Schedule, config: TrainConfig) -> dict:
    """All that decides the weights: data (its config, and either its exact model or a sha256 of the
    points), schedule, training config, and the versions of symbreak, torch and numpy (RNG streams)."""
    if dataset.model is not None:
        source = {"source": "model", "model": dataset.model.config()}
    else:
        source = {"source": "points", "n_points": len(dataset.x), "sha256": _points_sha256(dataset.x)}
    return {
        "format": CACHE_FORMAT,
        "data": {"name": dataset.name, "shape": list(dataset.shape), "config": dataset.config, **source},
        "schedule": schedule.config(),
        "train": config.to_dict(),
        "versions": {"symbreak": package_versions(("symbreak",))["symbreak"], "torch": _major_minor(torch.__version__),
                     "numpy": _major_minor(np.__version__)},
    }


def _points_sha256(x: np.ndarray, rows: int = 1 << 14) -> str:
    """sha256 of the samples as float32, read in chunks of ``rows`` (memory maps are never copied whole)."""
    h = hashlib.sha256()
    for sl in chunk_slices(len(x), rows):
        h.update(np.ascontiguousarray(x[sl], dtype=np.float32).tobytes())
    return h.hexdigest()


def cache_key(resolved: dict) -> str:
    """sha256 of the canonical JSON of the resolved configuration."""
    text = json.dumps(to_jsonable(resolved), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_entry(dataset: TrainingData, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(dataset.name)).name)[:40] or "data"
    return cache_root(cache_dir) / f"{slug}-{key[:20]}"


WEIGHTS, META = "weights.pt", "config.json"
META_KEYS = ("key", "resolved", "weights_sha256", "seconds", "final_loss", "device")


class CorruptCache(Exception):
    """A cache entry that exists but cannot be used."""


_sha256_file = sha256_file
LOCK = ".lock"


@contextmanager
def entry_lock(entry: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``entry/.lock`` (blocking): one process fills an entry at a time.
    Leftover temporaries of killed writers are removed once the lock is held."""
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            for name in (WEIGHTS, META):
                clean_atomic_leftovers(entry, name)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root, refused before any work when it is a file or cannot be written
    (``--cache-dir: ...``); nothing is created."""
    from symbreak.analysis.io import check_output_dir

    root = cache_root(cache_dir)
    try:
        return check_output_dir(root, (), flag="--cache-dir")
    except ValueError as err:
        raise ValueError(str(err).replace("(it is created if missing)", "for the trained-network cache")) from None


def _read_entry(entry: Path, key: str, net: nn.Module, device: torch.device) -> dict:
    """Load the weights of ``entry`` into ``net`` and return its metadata; raise CorruptCache if unusable."""
    try:
        meta = json.loads((entry / META).read_text())
        if not isinstance(meta, dict) or (missing := [k for k in META_KEYS if k not in meta]):
            raise CorruptCache(f"{META} lacks {missing if isinstance(meta, dict) else 'a JSON object'}")
        if meta["key"] != key:
            raise CorruptCache(f"{META} holds key {str(meta['key'])[:12]}…, expected {key[:12]}…")
        if _sha256_file(entry / WEIGHTS) != meta["weights_sha256"]:
            raise CorruptCache(f"{WEIGHTS} does not match the sha256 recorded in {META} (truncated?)")
        state = torch.load(entry / WEIGHTS, map_location=device, weights_only=True)
        net.load_state_dict(state)
    except CorruptCache:
        raise
    except Exception as err:  # bad JSON, missing files, torch.load's unpickler errors on garbage, ...
        raise CorruptCache(f"{type(err).__name__}: {err}") from err
    return meta


def _write_entry(entry: Path, key: str, resolved: dict, result: TrainResult) -> None:
    """weights.pt then config.json (the commit marker, holding the weights' sha256), each atomically."""
    weights = atomic_write(entry / WEIGHTS, lambda p: torch.save(result.denoiser.net.state_dict(), p))
    write_json(entry / META, {"key": key, "resolved": resolved, "weights_sha256": _sha256_file(weights),
                              "seconds": result.seconds, "final_loss": result.final_loss,
                              "device": result.device, "steps": len(result.losses)})


@dataclass
class CachedModel:
    """A trained EMA denoiser with where it is cached and how it was trained."""

    denoiser: NetworkDenoiser
    path: Path
    key: str
    seconds: float
    final_loss: float
    from_cache: bool
    resolved: dict = field(repr=False)

    def provenance(self) -> dict:
        """:func:`model_provenance` of this model."""
        return model_provenance(self.path, self.key, self.resolved, self.from_cache, self.final_loss, self.seconds)


def model_provenance(entry: Path, key: str, resolved: dict, from_cache: bool, final_loss: float | None,
                     seconds: float | None) -> dict:
    """What identifies a trained model in an output's configuration: cache key and entry, the sha256 of
    its state_dict file, the training configuration, schedule and versions, and whether it was cached."""
    weights = entry / WEIGHTS
    return {"cache_key": key, "entry": str(entry),
            "weights_sha256": sha256_file(weights) if weights.is_file() else None, "from_cache": from_cache,
            "final_loss": final_loss, "seconds": seconds, "train": resolved["train"],
            "schedule": resolved["schedule"], "versions": resolved["versions"]}


def load_or_train_model(dataset: TrainingData, schedule: Schedule, config: TrainConfig | None = None, *,
                        device: str = "auto", retrain: bool = False, cache_dir: str | os.PathLike | None = None,
                        progress: bool = False) -> CachedModel:
    """The cached network for (dataset, schedule, config), training (and caching) it when needed.

    ``retrain`` ignores the cache. Under ``torchrun`` rank 0 decides whether the cache holds the entry,
    all ranks train together when it does not, and rank 0 writes it.
    """
    config = config or default_train_config(dataset)
    _check_compatible(dataset, config)
    check_cache_dir(cache_dir)
    resolved = resolved_config(dataset, schedule, config)
    key = cache_key(resolved)
    entry = cache_entry(dataset, key, cache_dir)
    ctx = current_context()
    dev = resolve_device(device, ctx)
    lock = entry_lock(entry) if ctx.is_main else nullcontext()
    with lock:
        cached = None if retrain else _cached_model(entry, key, config, schedule, dataset, dev, resolved, ctx)
        if cached is not None:
            return cached
        result = train(dataset, schedule, config, device=dev, progress=progress)
        if ctx.is_main:
            _write_entry(entry, key, resolved, result)
    barrier(ctx)
    result.denoiser.net.requires_grad_(False)
    return CachedModel(result.denoiser, entry, key, result.seconds, result.final_loss, False, resolved)


def _cached_model(entry: Path, key: str, config: TrainConfig, schedule: Schedule, dataset: TrainingData,
                  dev: torch.device, resolved: dict, ctx: DistContext) -> CachedModel | None:
    """The cached entry if rank 0 finds it usable (a corrupt one is warned about and removed), else None."""
    if not broadcast(ctx.is_main and (entry / META).exists(), ctx):
        return None
    net = init_model(config, schedule).to(dev)
    try:
        meta = _read_entry(entry, key, net, dev)
    except CorruptCache as err:
        warnings.warn(f"symbreak: the cached model {entry} is corrupt ({err}); retraining it",
                      RuntimeWarning, stacklevel=3)
        (entry / META).unlink(missing_ok=True)
        return None
    denoiser = NetworkDenoiser(net.eval().requires_grad_(False), schedule, tuple(dataset.shape))
    return CachedModel(denoiser, entry, key, float(meta["seconds"]), float(meta["final_loss"]), True, resolved)


def cached_provenance(dataset: TrainingData, schedule: Schedule, config: TrainConfig | None = None, *,
                      cache_dir: str | os.PathLike | None = None) -> dict | None:
    """:meth:`CachedModel.provenance` of the cache entry for (dataset, schedule, config), read from its
    ``config.json`` (None when there is no such entry): what a command records beside its outputs."""
    config = config or default_train_config(dataset)
    resolved = resolved_config(dataset, schedule, config)
    key = cache_key(resolved)
    entry = cache_entry(dataset, key, cache_dir)
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError):
        return None
    return model_provenance(entry, key, resolved, True, meta.get("final_loss"), meta.get("seconds"))


def load_or_train(dataset: TrainingData, schedule: Schedule, config: TrainConfig | None = None, *,
                  device: str = "auto", retrain: bool = False, cache_dir: str | os.PathLike | None = None,
                  progress: bool = False) -> NetworkDenoiser:
    """The EMA denoiser (eval mode) of :func:`load_or_train_model`."""
    return load_or_train_model(dataset, schedule, config, device=device, retrain=retrain,
                               cache_dir=cache_dir, progress=progress).denoiser
