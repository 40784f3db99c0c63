"""CPU thread limits for the small networks and matrices of symbreak.

The MLPs and 64-dimensional matrices here are too small for intra-op threads to pay off; on a shared
2-core machine the threads' synchronisation made each network call ~10x slower and a block's FD ~25x
slower than one thread (measured). Everything is restored on exit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch's CPU ops on ``n`` intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def cpu_threads(n: int = 1) -> Iterator[None]:
    """Run torch and the BLAS behind numpy on ``n`` CPU threads."""
    with torch_threads(n), threadpool_limits(limits=n):
        yield
