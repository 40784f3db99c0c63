"""The label-free metric suite: evaluations of unlabelled data with features that need no labels.

Without labels there is no in-domain classifier to train, and no Inception network can be had offline
(design §5), so the features are either the user's own (``--features``: a TorchScript file, or
``module:callable`` returning a function of a float32 batch (n, *shape) -> (n, f) features) or, by
default, a **fixed PCA of the training part**: its top ``n_components`` = 64 principal components
(fitted once on the training part, randomized SVD seeded by ``seed``, never refitted on a resplit or on
samples). PCA is the linear feature map that keeps the most variance of the data: the Fréchet distance
on it compares the means and covariances of the samples along the directions the data actually vary
in (and, on the top eigenvector, along the direction whose variance Lambda decides the critical time),
and it needs neither training nor download. It is blind to fine texture, which is why it comes with:

- ``fd``: Fréchet distance of Gaussians fitted to the features (never called FID: not Inception);
- ``kid``: unbiased cubic-kernel MMD^2 on the same features;
- ``sw``: sliced 2-Wasserstein distance on raw pixels (all dimensions, seeded projections);
- ``entropy`` / ``kl``: bits, of the shares of **clusters** of the training part (k-means with
  ``k`` = 10 clusters in the same features, seeded, fitted once on the training part) standing in for
  classes: the diversity of a sampler is how evenly it fills the training set's clusters.

Each is measured against the training part, next to the held-out floor, as in
:mod:`symbreak.experiments.paper.suite`.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis import metrics as M
from symbreak.experiments.paper.suite import BlockMetric, MetricSuite, block_subset

Array = NDArray[np.float64]
PCA_COMPONENTS, CLUSTERS = 64, 10
FEATURE_BATCH = 256
CALLABLE_FORM = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class FeatureMap:
    """Rows of flattened samples (n, d) -> features (n, f), with what they are for the config."""

    transform: Callable[[Array], Array]
    config: dict = field(default_factory=dict)

    def __call__(self, x: Array) -> Array:
        return np.asarray(self.transform(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def pca_features(train: Array, n_components: int = PCA_COMPONENTS, seed: int = 0) -> FeatureMap:
    """The fixed PCA of the training part (module docstring): projections on its top components."""
    from sklearn.decomposition import PCA

    train = np.asarray(train, dtype=np.float64)
    k = int(min(n_components, train.shape[1], train.shape[0] - 1))
    pca = PCA(n_components=k, svd_solver="randomized" if k < min(train.shape) else "full", random_state=seed)
    pca.fit(train)
    config = {"kind": "pca", "n_components": k, "seed": seed, "fitted_on": "training part",
              "explained_variance": float(pca.explained_variance_ratio_.sum())}
    return FeatureMap(pca.transform, config)


def user_features(spec: str, shape: tuple[int, ...], device: str = "cpu") -> FeatureMap:
    """``--features``: a TorchScript file (``torch.jit.load``) or ``module:callable`` returning a function of
    a float32 batch (n, *shape) -> features (n, ...) (flattened per sample), run in batches under no_grad."""
    import torch

    path = Path(spec).expanduser()
    if path.is_file():
        net = torch.jit.load(str(path), map_location=device).eval()
    elif CALLABLE_FORM.fullmatch(spec):
        module_name, _, attr = spec.partition(":")
        try:
            net = getattr(importlib.import_module(module_name), attr)()
        except (ImportError, AttributeError) as err:
            raise ValueError(f"--features: cannot import {spec!r} ({err}); expected module:callable") from err
    else:
        raise ValueError(f"--features: {spec!r} is neither a TorchScript file nor module:callable")
    if not callable(net):
        raise ValueError(f"--features: {spec!r} did not give a callable feature network")

    def transform(x: Array) -> Array:
        out = []
        with torch.no_grad():
            for i in range(0, x.shape[0], FEATURE_BATCH):
                batch = torch.as_tensor(x[i:i + FEATURE_BATCH], dtype=torch.float32, device=device)
                out.append(net(batch.reshape(-1, *shape)).reshape(batch.shape[0], -1).double().cpu().numpy())
        return np.concatenate(out)
    return FeatureMap(transform, {"kind": "user", "spec": spec})


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of the training part's features: the label-free stand-in for classes."""

    features: FeatureMap
    centres: Array

    def __call__(self, x: Array) -> NDArray[np.int64]:
        f = self.features(x)
        d2 = (f**2).sum(1)[:, None] - 2 * f @ self.centres.T + (self.centres**2).sum(1)[None]
        return d2.argmin(axis=1).astype(np.int64)


def cluster_training_part(train_features: Array, features: FeatureMap, k: int = CLUSTERS, seed: int = 0) -> Clusters:
    """k-means (k-means++, 10 restarts, ``seed``) on the training part's features."""
    from sklearn.cluster import KMeans

    k = int(min(k, train_features.shape[0]))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(train_features)
    return Clusters(features, km.cluster_centers_)


def label_free_suite(train: Array, held_out: Array, features: FeatureMap | None = None, *,
                     block_size: int | None = None, resplit: Callable[[int], tuple[Array, Array]] | None = None,
                     k: int = CLUSTERS, kid_subsets: int = 10, sw_projections: int = 200, seed: int = 0) -> MetricSuite:
    """FD and KID on ``features`` (default: the fixed PCA of ``train``), SW on pixels, cluster entropy and KL
    (module docstring)."""
    train = np.asarray(train, dtype=np.float64)
    features = pca_features(train, seed=seed) if features is None else features
    clusters = cluster_training_part(features(train), features, k, seed)
    n_clusters = clusters.centres.shape[0]

    def factory(reference: Array) -> dict[str, BlockMetric]:
        ref_features = features(reference)
        reference_shares = M.class_histogram(clusters(reference), n_clusters)
        return {
            "fd": lambda x: M.fd(features(x), ref_features),
            "kid": lambda x: M.kid(features(x), ref_features, subset_size=min(len(x), len(reference)),
                                   n_subsets=kid_subsets, seed=seed).mean,
            "sw": lambda x: M.sliced_wasserstein(x, reference, n_projections=sw_projections, seed=seed),
            "entropy": lambda x: M.entropy_bits(M.class_histogram(clusters(x), n_clusters)),
            "kl": lambda x: M.kl_divergence_bits(M.class_histogram(clusters(x), n_clusters), reference_shares),
        }

    floor = block_subset(held_out, block_size, seed)
    config = {"kind": "features", "block_size": int(floor.shape[0]), "features": features.config,
              "clusters": {"method": "k-means on the features of the training part", "k": n_clusters, "seed": seed},
              "kid_subsets": kid_subsets, "sw_projections": sw_projections, "seed": seed,
              "note": "FD on these features, never called FID (not Inception features)"}
    return MetricSuite("features", factory, train, floor, clusters, n_clusters, "fd", resplit, config)
