"""Per-sample seeds (EDM ``generate.py`` style): seed lists like ``0-63`` and one generator per sample.

Sample k's random numbers come from its own ``torch.Generator`` seeded from (seed_k, stream), so sample
k gets the same start noise and the same step noise whatever the batch size and whichever other seeds
share its batch. Draws are made on the CPU in float64 and then moved, so the numbers are also the same
on every device. Two independent streams are used: ``start`` (the start state's eps, shared by every
start kind) and ``step`` (the fresh noise of stochastic samplers).
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from symbreak.theory.checks import check_choice

MAX_SEED = 2**63 - 1
MAX_SEEDS = 10_000_000  # per list; SYMBREAK_MAX_SEEDS raises it (a typo such as 0-99999999999 fails at once)
MAX_SEEDS_ENV = "SYMBREAK_MAX_SEEDS"
STREAMS: dict[str, int] = {"start": 0, "step": 1, "data": 2}
BLOCK_ELEMENTS = 2**14  # per-sample values drawn at once by StepNoise
BLOCK_STEPS = 32


def parse_seeds(spec: str | int | Sequence[int], name: str = "--seeds") -> list[int]:
    """Seeds from ``"0-63"``, ``"1,5,7-9"``, an int or a list of ints (ranges are inclusive).

    Seeds must be integers in [0, 2^63 - 1] and may not repeat (two samples would be identical); at
    most :func:`max_seeds` of them (checked before any list is built).
    """
    if isinstance(spec, (int, np.integer)):
        seeds = [int(spec)]
    elif isinstance(spec, str):
        items = [_parse_item(item, spec, name) for item in spec.replace(" ", "").split(",")]
        _check_count(sum(len(r) for r in items), spec, name)
        seeds = [s for r in items for s in r]
    else:
        if hasattr(spec, "__len__"):
            _check_count(len(spec), "the list", name)
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


def max_seeds() -> int:
    """The largest number of seeds one list may hold: $SYMBREAK_MAX_SEEDS, else :data:`MAX_SEEDS`."""
    text = os.environ.get(MAX_SEEDS_ENV)
    if text is None:
        return MAX_SEEDS
    try:
        return max(1, int(text))
    except ValueError:
        raise ValueError(f"{MAX_SEEDS_ENV}: expected an integer, got {text!r}") from None


def _check_count(count: int, spec: object, name: str) -> None:
    limit = max_seeds()
    if count > limit:
        raise ValueError(f"{name}: {spec!r} asks for {count:,} seeds, more than the limit of {limit:,} "
                         f"(a typo? set {MAX_SEEDS_ENV} to allow more)")


def _parse_int(value: object, spec: object, name: str) -> int:
    try:
        if isinstance(value, (bool, float)) or str(value).strip() == "":
            raise ValueError
        return int(str(value))
    except ValueError:
        raise ValueError(f"{name}: {value!r} in {spec!r} is not an integer; accepted: 'N', 'A-B' "
                         "(inclusive) or comma lists like '1,5,7-9'") from None


def _parse_item(item: str, spec: str, name: str) -> range:
    """One comma-separated item: ``N`` or ``A-B`` with A <= B (a lazy range: nothing is built yet)."""
    head, sep, tail = item.partition("-")
    if not sep:
        value = _parse_int(item, spec, name)
        return range(value, value + 1)
    if head == "":
        raise ValueError(f"{name}: {item!r} in {spec!r} is not an integer >= 0 (negative seeds are not "
                         "accepted); a range is written A-B, e.g. 0-63")
    lo, hi = _parse_int(head, spec, name), _parse_int(tail, spec, name)
    if lo > hi:
        raise ValueError(f"{name}: range {item!r} in {spec!r} is empty (start > end)")
    return range(lo, hi + 1)


def generator(seed: int, stream: str = "start") -> torch.Generator:
    """A CPU generator for ``seed`` on one of the independent ``STREAMS``."""
    entropy = [int(seed), STREAMS[check_choice("stream", stream, STREAMS)]]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
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
