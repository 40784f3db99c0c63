"""Per-sample seeds (EDM ``generate.py`` style): seed lists like ``0-63`` and one generator per sample.

Sample k's random numbers come from its own ``torch.Generator`` seeded from (seed_k, stream), so sample
k gets the same start noise and the same step noise whatever the batch size and whichever other seeds
share its batch. Draws are made on the CPU in float64 and then moved, so the numbers are also the same
on every device. Two independent streams are used: ``start`` (the start state's eps, shared by every
start kind) and ``step`` (the fresh noise of stochastic samplers).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

MAX_SEED = 2**63 - 1
STREAMS: dict[str, int] = {"start": 0, "step": 1, "data": 2}
BLOCK_ELEMENTS = 2**14  # per-sample values drawn at once by StepNoise
BLOCK_STEPS = 32


def parse_seeds(spec: str | int | Sequence[int], name: str = "--seeds") -> list[int]:
    """Seeds from ``"0-63"``, ``"1,5,7-9"``, an int or a list of ints (ranges are inclusive).

    Seeds must be integers in [0, 2^63 - 1] and may not repeat (two samples would be identical).
    """
    if isinstance(spec, (int, np.integer)):
        seeds = [int(spec)]
    elif isinstance(spec, str):
        seeds = []
        for item in spec.replace(" ", "").split(","):
            seeds.extend(_parse_item(item, spec, name))
    else:
        seeds = [_parse_int(s, spec, name) for s in spec]
    if not seeds:
        raise ValueError(f"{name}: no seeds given; accepted: 'N', 'A-B' (inclusive) or comma lists like '1,5,7-9'")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ValueError(f"{name}: seeds must lie in [0, 2^63 - 1], got {bad[0]}")
    counts = Counter(seeds)
    if len(counts) != len(seeds):
        dup = next(s for s, c in counts.items() if c > 1)
        raise ValueError(f"{name}: seed {dup} is listed more than once in {spec!r}")
    return seeds


def _parse_int(value: object, spec: object, name: str) -> int:
    try:
        if isinstance(value, (bool, float)) or str(value).strip() == "":
            raise ValueError
        return int(str(value))
    except ValueError:
        raise ValueError(f"{name}: {value!r} in {spec!r} is not an integer; accepted: 'N', 'A-B' "
                         "(inclusive) or comma lists like '1,5,7-9'") from None


def _parse_item(item: str, spec: str, name: str) -> list[int]:
    """One comma-separated item: ``N`` or ``A-B`` with A <= B."""
    head, sep, tail = item.partition("-")
    if not sep:
        return [_parse_int(item, spec, name)]
    lo, hi = _parse_int(head, spec, name), _parse_int(tail, spec, name)
    if lo > hi:
        raise ValueError(f"{name}: range {item!r} in {spec!r} is empty (start > end)")
    return list(range(lo, hi + 1))


def generator(seed: int, stream: str = "start") -> torch.Generator:
    """A CPU generator for ``seed`` on one of the independent ``STREAMS``."""
    if stream not in STREAMS:
        raise ValueError(f"stream: expected one of {', '.join(STREAMS)}, got {stream!r}")
    state = np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def per_sample_noise(seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float64, stream: str = "start") -> Tensor:
    """N(0, I) of shape (len(seeds), *shape); row k depends only on seeds[k] and ``stream``."""
    seeds = parse_seeds(seeds, "seeds")
    rows = [torch.randn(tuple(shape), generator=generator(s, stream), dtype=torch.float64) for s in seeds]
    return torch.stack(rows).to(device=device, dtype=dtype)


class StepNoise:
    """The per-sample stream of N(0, I) draws a stochastic sampler consumes, one (B, *shape) per call.

    Each sample's generator is drawn in blocks of ``block`` steps; the block size depends only on the
    per-sample shape (at most 32 steps and 2^14 values), so sample k's i-th draw is the same in every batch.
    """

    def __init__(self, seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64, stream: str = "step"):
        self.seeds = parse_seeds(seeds, "seeds")
        self.shape, self.device, self.dtype = tuple(shape), device, dtype
        self.block = max(1, min(BLOCK_STEPS, BLOCK_ELEMENTS // max(1, math.prod(self.shape))))
        self._generators = [generator(s, stream) for s in self.seeds]
        self._buffer: Tensor | None = None
        self._next = self.block

    def __len__(self) -> int:
        return len(self.seeds)

    def __call__(self) -> Tensor:
        if self._next == self.block:
            self._buffer = torch.stack([torch.randn((self.block, *self.shape), generator=g, dtype=torch.float64)
                                        for g in self._generators], dim=1)
            self._next = 0
        draw = self._buffer[self._next]
        self._next += 1
        return draw.to(device=self.device, dtype=self.dtype)
