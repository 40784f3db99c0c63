"""The train / held-out split used everywhere: networks and the feature classifier train on the
training part, and the held-out part is the floor every sample-quality metric is compared with.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from symbreak.theory.checks import check_int

IndexArray = NDArray[np.int64]


def split_indices(n: int, labels: ArrayLike | None = None, test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[IndexArray, IndexArray]:
    """Seeded (stratified when ``labels`` are given) split of ``range(n)`` into (train_idx, test_idx).

    Each class c with n_c members puts round(test_fraction * n_c) of them, chosen by a permutation
    from ``numpy.random.default_rng(seed)``, into the test part (so class shares are kept in both
    parts, like ``sklearn.model_selection.train_test_split(..., stratify=labels)``). Without labels
    the whole range is one class. Both index arrays are sorted; together they cover ``range(n)`` once.
    """
    n = check_int("n", n, 2)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: must lie strictly between 0 and 1, got {test_fraction}")
    if labels is None:
        classes = np.zeros(n, dtype=np.int64)
    else:
        classes = np.asarray(labels)
        if classes.shape != (n,):
            raise ValueError(f"labels: expected shape ({n},) to match n, got {classes.shape}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        n_test = int(round(float(test_fraction) * members.size))
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    if test_idx.size == 0 or test_idx.size == n:
        raise ValueError(f"test_fraction: {test_fraction} leaves an empty train or test part for n = {n}")
    train_idx = np.setdiff1d(np.arange(n, dtype=np.int64), test_idx)
    return train_idx, test_idx
