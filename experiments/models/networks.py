"""Denoiser networks eps_theta(x, t): an MLP for vectors and a small U-Net for (C, H, W) images.

Both take the noisy state ``x`` (shape (B, *shape), any per-sample shape whose size matches the
config) and the **schedule time** ``t`` (shape (B,) or a scalar) and predict the noise eps of
x = alpha(t) y + sigma(t) eps (Ho et al. 2020, Eq. 14). The time enters through a deterministic
sinusoidal embedding (Vaswani et al. 2017; Ho et al. 2020, Appendix B) of two time variables,
t itself and u = log(t) / 8: the features [v, sin(2 pi f_k v), cos(2 pi f_k v)] for v = t and v = u,
with geometrically spaced frequencies f_k. Every built-in schedule keeps t in (0, 1]. The t features
resolve the high-noise end, where logsnr(t) falls like -t^2; the log t features resolve the
low-noise end, where sigma(t)^2 grows like t (VP linear, DDPM) or t^2 (cosine) so logsnr ~ -log t
(u spans about [-1.7, 0] for t >= 1e-6, the same order as t). Embedding functions of t rather than
logsnr(t) keeps the forward pass pure torch (no schedule lookup), so torch.func transforms and any
device work on it unchanged.

An architecture is fully described by a frozen, JSON-serialisable config dataclass
(:class:`MLPConfig`, :class:`UNetConfig`); :func:`build_network` turns one into a module and
:func:`network_config_from_dict` reads one back from its ``to_dict()``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from symbreak.experiments.models.denoisers import append_dims, noise_level
from symbreak.theory import Schedule
from symbreak.theory.checks import check_choice, check_int, check_positive


LOG_T_SCALE = 8.0  # u = log(t) / 8
T_FLOOR = 1e-12    # log t is taken of max(t, T_FLOOR)


@dataclass(frozen=True)
class TimeEmbeddingConfig:
    """n_frequencies geometric frequencies from ``min_frequency`` to ``max_frequency`` (cycles per
    unit of t, and of u = log(t) / 8 when ``log_time``)."""

    n_frequencies: int = 8
    min_frequency: float = 0.25
    max_frequency: float = 8.0
    log_time: bool = True

    def __post_init__(self) -> None:
        check_int("n_frequencies", self.n_frequencies, 1)
        check_positive("min_frequency", self.min_frequency)
        if not check_positive("max_frequency", self.max_frequency) >= self.min_frequency:
            raise ValueError(f"max_frequency: must be >= min_frequency = {self.min_frequency}, "
                             f"got {self.max_frequency}")

    @property
    def features(self) -> int:
        return (1 + 2 * self.n_frequencies) * (2 if self.log_time else 1)


class TimeEmbedding(nn.Module):
    """e(t) = [F(t), F(u)] with F(v) = [v, sin(2 pi f_k v), cos(2 pi f_k v)]_k, u = log(t) / 8 (only
    F(t) without ``log_time``), f_k = f_min (f_max/f_min)^(k/(n-1)).

    The frequencies are a non-persistent buffer: deterministic, never trained, not in the state_dict.
    """

    def __init__(self, config: TimeEmbeddingConfig):
        super().__init__()
        self.log_time = config.log_time
        freqs = torch.logspace(math.log10(config.min_frequency), math.log10(config.max_frequency),
                               config.n_frequencies, dtype=torch.float64)
        self.register_buffer("frequencies", freqs, persistent=False)

    def _fourier(self, v: Tensor) -> Tensor:
        phase = 2.0 * math.pi * v[:, None] * self.frequencies.to(v.dtype)
        return torch.cat([v[:, None], torch.sin(phase), torch.cos(phase)], dim=1)

    def forward(self, t: Tensor) -> Tensor:
        if not self.log_time:
            return self._fourier(t)
        u = torch.log(t.clamp_min(T_FLOOR)) / LOG_T_SCALE
        return torch.cat([self._fourier(t), self._fourier(u)], dim=1)


def _time_column(t: Tensor | float, x: Tensor) -> Tensor:
    """t as a (B,) tensor in the dtype and on the device of x."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(x.shape[0])


class TimeMLP(nn.Module):
    """The embedding followed by Linear-SiLU-Linear to ``width`` channels (Ho et al. 2020)."""

    def __init__(self, config: TimeEmbeddingConfig, width: int):
        super().__init__()
        self.embed = TimeEmbedding(config)
        self.net = nn.Sequential(nn.Linear(config.features, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: Tensor) -> Tensor:
        return self.net(self.embed(t))


# --------------------------------------------------------------------------------------------
# MLP for vectors (1-D, 2-D, flattened digits)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MLPConfig:
    """Residual MLP on the flattened sample: d -> width, ``depth`` residual blocks, width -> d, plus a
    linear d -> d path from the input, with a time-dependent gain per output coordinate when
    ``time_gain``."""

    dim: int
    width: int = 128
    depth: int = 3
    time_gain: bool = True
    time: TimeEmbeddingConfig = TimeEmbeddingConfig()
    arch: ClassVar[str] = "mlp"

    def __post_init__(self) -> None:
        check_int("dim", self.dim, 1)
        check_int("width", self.width, 1)
        check_int("depth", self.depth, 1)
        if not isinstance(self.time_gain, bool):
            raise ValueError(f"time_gain: expected true or false, got {self.time_gain!r}")

    def to_dict(self) -> dict:
        return {"arch": self.arch, **asdict(self)}


class ResidualBlock(nn.Module):
    """h + W2 SiLU(W1 SiLU(LayerNorm h) + V e(t)): a pre-norm residual block with an additive time shift."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.time = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return h + self.fc2(F.silu(self.fc1(F.silu(self.norm(h))) + self.time(emb)))


class MLPDenoiser(nn.Module):
    """eps_theta(x, t) = W_out SiLU(LayerNorm h_L) + (W_skip x) * (1 + G e'(t)), h_0 = W_in x + e'(t),
    h_l = block_l(h_{l-1}), e'(t) = SiLU(time MLP of e(t)).

    x has shape (B, *shape) with prod(shape) = config.dim; the output is shaped like x. The final
    LayerNorm keeps the learned function smooth (on two deltas it cut the error of the network's
    critical time about threefold), while the linear path W_skip x carries the magnitude of x, which
    the normalisation removes and eps must follow; its gain 1 + G e'(t), one per output coordinate,
    lets that linear dependence change with t (eps = (x - alpha E[y|x]) / sigma is nearly linear in x
    with a t-dependent slope, e.g. exactly (x - alpha mu_i) / sigma for a constant pixel i). On digits
    the time-dependent gain lowered the final loss (0.0895 / 0.0910 against 0.0917 / 0.0925 for seeds
    0 / 1) and the FD of 1000-step DDPM samples (2.42 / 2.22 against 3.76 / 4.30); on the 2-D mixture it
    did not help (``time_gain=False`` there, see ``default_train_config``). The output maps and G start
    at zero, so a fresh network predicts eps = 0.
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.time = TimeMLP(config.time, config.width)
        self.inp = nn.Linear(config.dim, config.width)
        self.blocks = nn.ModuleList(ResidualBlock(config.width) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width)
        self.out = nn.Linear(config.width, config.dim)
        self.skip = nn.Linear(config.dim, config.dim, bias=False)
        self.gain = nn.Linear(config.width, config.dim) if config.time_gain else None
        for p in (self.out.weight, self.out.bias, self.skip.weight):
            nn.init.zeros_(p)
        if self.gain is not None:
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        emb = F.silu(self.time(_time_column(t, x)))
        v = x.reshape(x.shape[0], -1)
        h = self.inp(v) + emb
        for block in self.blocks:
            h = block(h, emb)
        linear = self.skip(v) if self.gain is None else self.skip(v) * (1 + self.gain(emb))
        return (self.out(F.silu(self.norm(h))) + linear).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# U-Net for images
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UNetConfig:
    """DDPM-style U-Net (Ho et al. 2020, Appendix B) without attention.

    ``image_shape`` is (C, H, W); samples stored as (H, W, C) set ``channels_last``. Level i works at
    resolution H / 2^i with base_channels * channel_mult[i] channels and ``num_res_blocks`` residual
    blocks; GroupNorm with ``groups`` groups.
    """

    image_shape: tuple[int, int, int]
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    groups: int = 8
    channels_last: bool = False
    time: TimeEmbeddingConfig = TimeEmbeddingConfig()
    arch: ClassVar[str] = "unet"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "channel_mult", tuple(int(v) for v in self.channel_mult))
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape: expected (C, H, W) with positive sizes, got {self.image_shape}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"channel_mult: expected positive integers, got {self.channel_mult}")
        check_int("num_res_blocks", self.num_res_blocks, 1)
        groups = check_int("groups", self.groups, 1)
        if check_int("base_channels", self.base_channels, 1) % groups:
            raise ValueError(f"base_channels: must be a multiple of groups = {groups}, got {self.base_channels}")
        factor = 2 ** (len(self.channel_mult) - 1)
        if self.image_shape[1] % factor or self.image_shape[2] % factor:
            raise ValueError(f"image_shape: H and W must be divisible by 2^(levels - 1) = {factor} for "
                             f"channel_mult {self.channel_mult}, got {self.image_shape}")

    @property
    def dim(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return {"arch": self.arch, **asdict(self)}


class ConvResBlock(nn.Module):
    """GroupNorm-SiLU-Conv, + time shift, GroupNorm-SiLU-Conv, plus a 1x1 skip when channels change."""

    def __init__(self, c_in: int, c_out: int, emb_width: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_width, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        r = self.conv1(F.silu(self.norm1(h))) + self.time(emb)[:, :, None, None]
        return self.skip(h) + self.conv2(F.silu(self.norm2(r)))


class UNetDenoiser(nn.Module):
    """eps_theta(x, t) for images; x may be (B, C, H, W) (or (B, H, W, C) with ``channels_last``) or any
    (B, ...) of the same size, e.g. flattened; the output has the shape of x."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        ch, g = config.base_channels, config.groups
        widths = [ch * m for m in config.channel_mult]
        emb = 4 * ch
        self.time = TimeMLP(config.time, emb)
        self.conv_in = nn.Conv2d(config.image_shape[0], ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [ch], ch
        for level, width in enumerate(widths):
            for _ in range(config.num_res_blocks):
                self.down.append(ConvResBlock(c, width, emb, g))
                c = width
                skips.append(c)
            if level < len(widths) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ConvResBlock(c, c, emb, g), ConvResBlock(c, c, emb, g)])
        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(config.num_res_blocks + 1):
                self.up.append(ConvResBlock(c + skips.pop(), width, emb, g))
                c = width
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, config.image_shape[0], 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        emb = F.silu(self.time(_time_column(t, x)))
        h = self.conv_in(self._to_chw(x))
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ConvResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, ConvResBlock) else layer(h)
        return self._from_chw(self.conv_out(F.silu(self.norm_out(h)))).reshape(x.shape)

    def _to_chw(self, x: Tensor) -> Tensor:
        c, h, w = self.config.image_shape
        if self.config.channels_last:
            return x.reshape(x.shape[0], h, w, c).permute(0, 3, 1, 2)
        return x.reshape(x.shape[0], c, h, w)

    def _from_chw(self, out: Tensor) -> Tensor:
        return out.permute(0, 2, 3, 1) if self.config.channels_last else out


# --------------------------------------------------------------------------------------------
# Preconditioning
# --------------------------------------------------------------------------------------------
PRECONDITIONINGS = ("none", "edm")


class EDMPreconditioned(nn.Module):
    """An eps-predictor built around a raw network F with Karras et al.'s (2022, EDM) preconditioning.

    EDM's denoiser D = c_skip x_h + c_out F(c_in x_h, t) on x_h = x / alpha with sigma_h = sigma / alpha
    (Table 1: c_in = 1 / sqrt(sigma_h^2 + sigma_d^2), c_skip = sigma_d^2 / (sigma_h^2 + sigma_d^2),
    c_out = sigma_h sigma_d / sqrt(sigma_h^2 + sigma_d^2)), rewritten for eps = (x - alpha D) / sigma:

        eps_theta(x, t) = (sigma / s) z - (alpha sigma_d / s) F(z, t),   z = x / s,
        s(t) = sqrt(sigma^2 + alpha^2 sigma_d^2)

    (s is the scale of x_t for data of RMS ``sigma_data`` = sigma_d). F sees a unit-scale input and
    learns a unit-scale target at every t, and eps -> x / s, its exact high-noise limit for centred
    data, without any training. Training still minimises the eps loss of the wrapped model.
    """

    def __init__(self, inner: nn.Module, schedule: Schedule, sigma_data: float):
        super().__init__()
        self.inner, self.schedule = inner, schedule
        self.sigma_data = check_positive("sigma_data", sigma_data)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        t = _time_column(t, x)
        alpha, sigma = noise_level(self.schedule, t)
        s = torch.sqrt(sigma * sigma + (alpha * self.sigma_data) ** 2)
        c_x, c_f = (append_dims(v, x.ndim).to(x.dtype) for v in (sigma / s, alpha * self.sigma_data / s))
        z = x / append_dims(s, x.ndim).to(x.dtype)
        return c_x * z - c_f * self.inner(z, t)


# --------------------------------------------------------------------------------------------
NetworkConfig = MLPConfig | UNetConfig
_CONFIGS: dict[str, type] = {"mlp": MLPConfig, "unet": UNetConfig}
_NETWORKS: dict[str, type[nn.Module]] = {"mlp": MLPDenoiser, "unet": UNetDenoiser}


def build_network(config: NetworkConfig) -> nn.Module:
    """The module described by ``config`` (parameters drawn from torch's global generator)."""
    if not isinstance(config, (MLPConfig, UNetConfig)):
        raise ValueError(f"config: expected an MLPConfig or UNetConfig, got {type(config).__name__}")
    return _NETWORKS[config.arch](config)


def network_config_from_dict(data: dict) -> NetworkConfig:
    """Inverse of ``config.to_dict()``."""
    params = dict(data)
    cls = _CONFIGS[check_choice("arch", params.pop("arch", None), _CONFIGS)]
    arch = cls.arch
    known = {f.name for f in fields(cls)}
    if unknown := set(params) - known:
        raise ValueError(f"network config: unknown field(s) {sorted(unknown)} for arch {arch!r}")
    if "time" in params:
        params["time"] = TimeEmbeddingConfig(**params["time"])
    return cls(**params)
