"""The in-domain feature classifier behind FD and KID (Inception weights cannot be had offline).

Network: an MLP on the flattened sample. The input is standardised with the training split's
per-pixel mean and overall standard deviation (stored as buffers, so any data scaling works), then
Linear(d, 256) - SiLU - Linear(256, 64) - SiLU gives the 64 penultimate **features** used by
``FD`` and KID, and Linear(64, K) gives the class logits. SiLU (not ReLU) keeps every feature
alive, so the feature covariance is not rank-deficient by construction.

Training: cross-entropy, Adam (lr 2e-3, weight decay 1e-4), 1500 steps of minibatches of 128 from
the training part of :func:`symbreak.analysis.splits.split_indices` (stratified, 20 % held out,
split seed 0). Initialisation and minibatches come from ``seed`` alone, so the same data and seed give
the same weights and features. The network is then frozen (eval mode, no gradients) and its
accuracy on the held-out part is recorded. On ``sklearn`` digits (64 pixels, 10 classes) it trains
in a few seconds on one CPU thread (2-3 s idle, up to ~10 s on a busy shared CPU) and reaches
97.5-98 % test accuracy (seeds 0-2).

Cache: like the diffusion networks, a trained classifier is stored as ``model.pt`` (a state_dict,
loaded with ``torch.load(weights_only=True)``) and ``config.json`` (its full configuration,
including a hash of the training data, plus the measured accuracy and training time) in
``<cache>/classifier/<dataset>-<hash of config>``, where ``<cache>`` is ``cache_dir``, else the
``SYMBREAK_CACHE`` environment variable, else ``~/.cache/symbreak`` (the networks' cache root). A
corrupt or mismatched entry is retrained and rewritten, with a warning.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor, nn

from symbreak.analysis.io import dumps, staged_dir
from symbreak.analysis.splits import split_indices
from symbreak.experiments.models.training import cache_root
from symbreak.experiments.runtime.threads import torch_threads
from symbreak.theory.checks import check_int, check_positive, finite_array

WEIGHTS, CONFIG = "model.pt", "config.json"


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines a trained classifier (its cache key)."""

    dataset: str
    shape: tuple[int, ...]
    num_classes: int
    data_hash: str
    seed: int = 0
    split_seed: int = 0
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (256, 64)
    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4

    @property
    def dim(self) -> int:
        return math.prod(self.shape)

    def key(self) -> str:
        """First 16 hex digits of the SHA-256 of the configuration's JSON."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        return cls(**{**d, "shape": tuple(d["shape"]), "hidden": tuple(d["hidden"])})


class ClassifierNet(nn.Module):
    """Standardise -> [Linear - SiLU] per hidden width (the features) -> Linear to K logits."""

    def __init__(self, dim: int, hidden: tuple[int, ...], num_classes: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        widths = (dim, *hidden)
        self.body = nn.Sequential(*[m for a, b in zip(widths[:-1], widths[1:]) for m in (nn.Linear(a, b), nn.SiLU())])
        self.head = nn.Linear(widths[-1], num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body((x - self.shift) / self.scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class FeatureClassifier:
    """A frozen trained classifier: ``features(x)`` (penultimate layer) and ``predict(x)``.

    ``x`` is a numpy array or tensor of shape (N, *shape) or (N, prod(shape)).
    """

    def __init__(self, net: ClassifierNet, config: ClassifierConfig, test_accuracy: float, train_seconds: float):
        self.net = net.eval().requires_grad_(False)
        self.config, self.test_accuracy, self.train_seconds = config, float(test_accuracy), float(train_seconds)

    def _flat(self, x: ArrayLike | Tensor) -> Tensor:
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().cpu()
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.config.dim:
            raise ValueError(f"x: expected shape (N, {', '.join(map(str, self.config.shape))}) or "
                             f"(N, {self.config.dim}), got {tuple(x.shape)}")
        x = x.reshape(x.shape[0], -1).to(torch.float32)
        if not torch.isfinite(x).all():
            raise ValueError("x: contains NaN or infinite values; only finite samples can be classified")
        return x

    def _batched(self, fn: Callable[[Tensor], Tensor], x: ArrayLike | Tensor, batch_size: int) -> Tensor:
        x = self._flat(x)
        with torch.no_grad(), torch_threads(1):
            return torch.cat([fn(chunk) for chunk in x.split(batch_size)]) if len(x) else fn(x)

    def features(self, x: ArrayLike | Tensor, batch_size: int = 4096) -> NDArray[np.float64]:
        """Penultimate-layer features (N, hidden[-1]) as float64, for FD and KID."""
        return self._batched(self.net.features, x, batch_size).double().numpy()

    def predict(self, x: ArrayLike | Tensor, batch_size: int = 4096) -> NDArray[np.int64]:
        """Predicted class labels (N,)."""
        return self._batched(self.net, x, batch_size).argmax(dim=1).numpy().astype(np.int64)

    def results(self) -> dict:
        return {"test_accuracy": self.test_accuracy, "train_seconds": self.train_seconds}


def _check_data(x: ArrayLike, labels: ArrayLike, shape: tuple[int, ...]) -> tuple[NDArray, NDArray[np.int64]]:
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"shape: expected positive sample dimensions, got {shape}")
    x = finite_array("x", x)
    if x.ndim < 2 or math.prod(x.shape[1:]) != math.prod(shape):
        raise ValueError(f"x: expected shape (N, {', '.join(map(str, shape))}) or (N, {math.prod(shape)}), "
                         f"got {x.shape}")
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"labels: expected {x.shape[0]} non-negative integers, got {labels.dtype} {labels.shape}")
    return x.reshape(x.shape[0], -1), labels.astype(np.int64)


def data_hash(x: ArrayLike, labels: ArrayLike) -> str:
    """SHA-256 (16 hex digits) of the float64 samples and int64 labels."""
    h = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _fit(config: ClassifierConfig, x: NDArray, labels: NDArray[np.int64]) -> FeatureClassifier:
    """Train the network of ``config`` on ``x``/``labels`` (already checked) and freeze it."""
    with torch_threads(1):
        return _train(config, x, labels)


def _train(config: ClassifierConfig, x: NDArray, labels: NDArray[np.int64]) -> FeatureClassifier:
    start = time.perf_counter()
    train_idx, test_idx = split_indices(len(x), labels, config.test_fraction, config.split_seed)
    x_train = torch.as_tensor(x[train_idx], dtype=torch.float32)
    y_train = torch.as_tensor(labels[train_idx])
    gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = ClassifierNet(config.dim, config.hidden, config.num_classes)
    net.shift.copy_(x_train.mean(dim=0))
    net.scale.copy_(x_train.std().clamp_min(1e-8))
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.steps):
        batch = torch.randint(0, len(x_train), (min(config.batch_size, len(x_train)),), generator=gen)
        loss = nn.functional.cross_entropy(net(x_train[batch]), y_train[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        predicted = net(torch.as_tensor(x[test_idx], dtype=torch.float32)).argmax(dim=1).numpy()
    accuracy = float((predicted == labels[test_idx]).mean())
    return FeatureClassifier(net, config, accuracy, time.perf_counter() - start)


def _prepare(x: ArrayLike, labels: ArrayLike, shape: tuple[int, ...], seed: int, dataset: str,
             split_seed: int, test_fraction: float, hidden: tuple[int, ...], steps: int, batch_size: int,
             lr: float, weight_decay: float) -> tuple[ClassifierConfig, NDArray, NDArray[np.int64]]:
    """Checked, flattened data and the resolved configuration of the classifier to train on it."""
    x, labels = _check_data(x, labels, shape)
    for name, value, minimum in (("seed", seed, 0), ("split_seed", split_seed, 0), ("steps", steps, 1),
                                 ("batch_size", batch_size, 1)):
        check_int(name, value, minimum)
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden: expected one or more positive widths, got {hidden}")
    check_positive("lr", lr)
    check_positive("weight_decay", weight_decay, strict=False)
    config = ClassifierConfig(dataset=dataset, shape=tuple(int(s) for s in shape),
                              num_classes=int(labels.max()) + 1, data_hash=data_hash(x, labels),
                              seed=int(seed), split_seed=int(split_seed), test_fraction=float(test_fraction),
                              hidden=tuple(int(h) for h in hidden), steps=int(steps),
                              batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay))
    return config, x, labels


def train_classifier(x: ArrayLike, labels: ArrayLike, shape: tuple[int, ...], seed: int = 0, *,
                     dataset: str = "custom", split_seed: int = 0, test_fraction: float = 0.2,
                     hidden: tuple[int, ...] = (256, 64), steps: int = 1500, batch_size: int = 128,
                     lr: float = 2e-3, weight_decay: float = 1e-4) -> FeatureClassifier:
    """Train and freeze a feature classifier on the training split of (``x``, ``labels``); its
    ``test_accuracy`` is measured on the held-out split (see the module docstring)."""
    return _fit(*_prepare(x, labels, shape, seed, dataset, split_seed, test_fraction, hidden, steps,
                          batch_size, lr, weight_decay))


def cache_entry(config: ClassifierConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the classifier of ``config``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.dataset).strip("._") or "data"
    return cache_root(cache_dir) / "classifier" / f"{name}-{config.key()}"


def _load(entry: Path, config: ClassifierConfig) -> FeatureClassifier | None:
    """The cached classifier in ``entry`` if it is whole and was made with ``config``, else None."""
    try:
        saved = json.loads((entry / CONFIG).read_text())
        if ClassifierConfig.from_dict(saved["config"]) != config:
            return None
        net = ClassifierNet(config.dim, config.hidden, config.num_classes)
        net.load_state_dict(torch.load(entry / WEIGHTS, map_location="cpu", weights_only=True))
        results = saved["results"]
        return FeatureClassifier(net, config, results["test_accuracy"], results["train_seconds"])
    except Exception:  # any unreadable, truncated or foreign entry is rebuilt
        return None


def _save(entry: Path, clf: FeatureClassifier) -> None:
    with staged_dir(entry, flag="--cache-dir") as tmp:
        torch.save(clf.net.state_dict(), tmp / WEIGHTS)
        (tmp / CONFIG).write_text(dumps({"config": asdict(clf.config), "results": clf.results()}) + "\n")


def load_or_train_classifier(dataset_name: str, x: ArrayLike, labels: ArrayLike, shape: tuple[int, ...],
                             seed: int = 0, cache_dir: str | os.PathLike | None = None, *,
                             split_seed: int = 0, test_fraction: float = 0.2,
                             hidden: tuple[int, ...] = (256, 64), steps: int = 1500, batch_size: int = 128,
                             lr: float = 2e-3, weight_decay: float = 1e-4) -> FeatureClassifier:
    """The cached classifier for this dataset, data, seed and options; trained (as
    :func:`train_classifier`) and cached when absent, corrupt or made with another configuration."""
    if not isinstance(dataset_name, str) or not dataset_name:
        raise ValueError(f"dataset_name: expected a non-empty string, got {dataset_name!r}")
    config, x, labels = _prepare(x, labels, shape, seed, dataset_name, split_seed, test_fraction, hidden,
                                 steps, batch_size, lr, weight_decay)
    entry = cache_entry(config, cache_dir)
    clf = _load(entry, config) if entry.exists() else None
    if clf is None:
        if entry.exists():
            warnings.warn(f"symbreak: the cached classifier {entry} is unusable; retraining it",
                          RuntimeWarning, stacklevel=2)
        clf = _fit(config, x, labels)
        _save(entry, clf)
    return clf
