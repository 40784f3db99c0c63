"""Datasets as flat float arrays: built-in sets, ``.npy``/``.npz`` arrays and image folders.

Every dataset is an (N, d) array ``x`` of flattened samples (float32, or the read-only memory map of a
float ``.npy`` file that needs no rescaling), the per-sample ``shape``, optional integer ``labels``,
a note saying what scaling was applied, the exact :class:`DataModel` when the data were drawn from
one, and the resolved configuration to save beside every output.

Large files are never copied to float64: arrays are opened with a memory map and checked, measured
and rescaled chunk by chunk. Scaling (``scale``):

* ``auto`` -- integers in 0..255 map to [-1, 1] by x / 127.5 - 1, floats in [0, 1] by 2x - 1 (the
  paper's image scaling); anything else is left as it is (the ``scaling`` note says which).
* ``unit`` -- min-max to [-1, 1] (constant data are left as they are).
* ``none`` -- left as it is.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from symbreak.analysis.inputs import (
    LABEL_KEYS,
    image_files,
    image_head,
    npz_data_key,
    read_image,
    read_npy,
    read_npz,
)
from symbreak.theory import DataModel, EmpiricalData, GaussianMixture, SymmetricDeltas
from symbreak.theory.checks import check_choice, check_int

SCALES = ("auto", "none", "unit")
DEFAULT_TOY_N = 2000
CHUNK_BYTES = 1 << 24  # 16 MiB of samples per chunk in every streaming pass

BUILTIN_DATASETS = ("digits", "two-deltas", "two-gaussians", "gmm-2d", "gmm-asym")
BUILTIN_DESCRIPTIONS = {
    "digits": "sklearn's 1797 8x8 handwritten digits, pixels 0..16 scaled to [-1, 1], labels 0-9",
    "two-deltas": "y = +1 or -1 with equal weight (1-D), the paper's symmetric example",
    "two-gaussians": "1-D mixture 0.5 N(-1, 0.3^2) + 0.5 N(+1, 0.3^2)",
    "gmm-2d": "2-D mixture of 4 equal-weight N(m_k, 0.1^2 I), m_k on the unit circle at 0/90/180/270 deg",
    "gmm-asym": "centred 2-D mixture 0.65 N((0.7, 0), 0.1^2 I) + 0.35 N((-1.3, 0), 0.1^2 I): unequal "
                "weights, modes 2 apart (the imperfect pitchfork)",
}


# --- chunked access ---------------------------------------------------------------------------
def rows_per_chunk(dim: int, itemsize: int = 8, target_bytes: int = CHUNK_BYTES) -> int:
    """How many samples of ``dim`` values of ``itemsize`` bytes fill about ``target_bytes``."""
    return max(1, target_bytes // max(1, dim * itemsize))


def chunk_slices(n: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk_size`` rows covering range(n)."""
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


# --- the dataset --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Dataset:
    """Flattened samples ``x`` (N, d) with their per-sample ``shape`` and provenance."""

    name: str
    x: NDArray
    shape: tuple[int, ...]
    labels: NDArray[np.int64] | None
    scaling: str
    model: DataModel | None
    config: dict = field(repr=False)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def empirical(self) -> EmpiricalData:
        """The finite-data model over x (chunks promoted to float64 as they are used, no full copy)."""
        return EmpiricalData(self.x)

    def unflatten(self, v: NDArray) -> NDArray:
        """Vectors (..., d) back to samples (..., *shape), e.g. an eigenvector as an image."""
        v = np.asarray(v)
        return v.reshape(*v.shape[:-1], *self.shape)

    def take(self, idx: NDArray[np.integer], note: dict) -> Dataset:
        """The samples ``idx`` (copied to float32), with ``note`` recorded in the config."""
        idx = np.asarray(idx, dtype=np.int64)
        return replace(self, x=np.asarray(self.x[idx], dtype=np.float32),
                       labels=None if self.labels is None else self.labels[idx],
                       config={**self.config, **note, "n_points": int(idx.size)})

    def subset(self, max_points: int, seed: int = 0) -> Dataset:
        """A seeded random subset of at most ``max_points`` samples (kept in their original order)."""
        max_points = check_int("max_points", max_points, 2)
        if max_points >= self.n:
            return self
        idx = np.sort(np.random.default_rng(seed).choice(self.n, size=max_points, replace=False))
        return self.take(idx, {"subset": {"max_points": max_points, "seed": seed, "of": self.n}})

    def split(self, held_out: float = 0.5, seed: int = 0) -> tuple[Dataset, Dataset]:
        """(kept, held-out) halves of a seeded permutation; ``held_out`` is a fraction in (0, 1)."""
        if not 0.0 < held_out < 1.0:
            raise ValueError(f"held_out: must be a fraction in (0, 1), got {held_out}")
        n_out = int(round(held_out * self.n))
        if n_out < 2 or self.n - n_out < 2:
            raise ValueError(f"held_out: {held_out} of {self.n} samples leaves a part with fewer than 2")
        perm = np.random.default_rng(seed).permutation(self.n)
        parts = (np.sort(perm[n_out:]), np.sort(perm[:n_out]))
        return tuple(self.take(idx, {"split": {"part": part, "held_out": held_out, "seed": seed}})
                     for idx, part in zip(parts, ("kept", "held_out")))


def load_dataset(name_or_path: str, *, scale: str = "auto", n: int | None = None, seed: int = 0,
                 labels: str | None = None) -> Dataset:
    """A built-in set (:data:`BUILTIN_DATASETS`), a ``.npy``/``.npz`` file or a folder of images.

    ``n``: for the synthetic sets the number of samples drawn (default 2000); for real data a
    seeded random subset of at most ``n`` samples (default: all). ``labels``: a ``.npy`` file of N
    integer labels, or a key of the ``.npz`` file (by default the keys y/labels/targets are used).
    """
    check_choice("scale", scale, SCALES)
    if n is not None:
        n = check_int("n", n, 2)
    name = str(name_or_path)
    if name in BUILTIN_DATASETS:
        if labels is not None:
            raise ValueError(f"labels: built-in set {name} brings its own labels; give labels only with files")
        data = _builtin(name, scale, n, seed)
    else:
        data = _from_path(Path(name), scale, labels)
    if n is not None and data.model is None:
        data = data.subset(n, seed)
    return replace(data, config={**data.config, "scale": scale, "n": n, "seed": seed})


def _config(name: str, source: str, x: NDArray, shape: tuple[int, ...], scaling: str,
            labels: NDArray | None, model: DataModel | None, **extra) -> dict:
    return {"name": name, "source": source, **extra, "n_points": int(x.shape[0]), "dim": int(x.shape[1]),
            "shape": list(shape), "scaling": scaling, "labels": labels is not None,
            "model": None if model is None else model.config()}


# --- built-in sets ------------------------------------------------------------------------------
def _isotropic_mixture(weights: list[float], means: list[list[float]], std: float) -> GaussianMixture:
    dim = len(means[0])
    return GaussianMixture(weights, means, [std * std * np.eye(dim)] * len(means))


def _toy_model(name: str) -> DataModel:
    if name == "two-deltas":
        return SymmetricDeltas(m=1.0)
    if name == "two-gaussians":
        return _isotropic_mixture([0.5, 0.5], [[-1.0], [1.0]], 0.3)
    if name == "gmm-2d":
        return _isotropic_mixture([0.25] * 4, [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], 0.1)
    # gmm-asym: means w1 m1 + w2 m2 = 0 with |m1 - m2| = 2, so the data are centred
    return _isotropic_mixture([0.65, 0.35], [[0.7, 0.0], [-1.3, 0.0]], 0.1)


def _sample_with_labels(model: DataModel, n: int, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """n samples of a toy model and the index of the mode (point or component) each came from."""
    if isinstance(model, SymmetricDeltas):
        idx = rng.integers(0, model.n_points, size=n)
        return model.y[idx], idx.astype(np.int64)
    k = rng.choice(len(model.components), size=n, p=model.weights)
    x = np.empty((n, model.dim))
    for j, comp in enumerate(model.components):
        x[k == j] = comp.sample(int((k == j).sum()), rng)
    return x, k.astype(np.int64)


def _builtin(name: str, scale: str, n: int | None, seed: int) -> Dataset:
    if name == "digits":
        return _digits(scale)
    if scale == "unit":
        raise ValueError(f"scale: 'unit' would rescale {name} away from its exact model; use auto or none")
    model = _toy_model(name)
    n = DEFAULT_TOY_N if n is None else n
    y, lab = _sample_with_labels(model, n, np.random.default_rng(seed))
    x = y.astype(np.float32)
    scaling = "none: synthetic data in the model's own units"
    shape = (model.dim,)
    return Dataset(name, x, shape, lab, scaling, model,
                   _config(name, "builtin", x, shape, scaling, lab, model,
                           description=BUILTIN_DESCRIPTIONS[name]))


def _digits(scale: str) -> Dataset:
    from sklearn.datasets import load_digits

    pixels, target = load_digits(return_X_y=True)
    if scale == "none":
        x, scaling = pixels.astype(np.float32), "none: pixel values 0..16"
    else:
        x = (pixels / 8.0 - 1.0).astype(np.float32)
        scaling = f"{scale}: digit pixels 0..16 mapped to [-1, 1] by x / 8 - 1"
    lab = target.astype(np.int64)
    return Dataset("digits", x, (8, 8), lab, scaling, None,
                   _config("digits", "builtin", x, (8, 8), scaling, lab, None,
                           description=BUILTIN_DESCRIPTIONS["digits"]))


# --- files --------------------------------------------------------------------------------------
def _from_path(path: Path, scale: str, labels: str | None) -> Dataset:
    if not path.exists():
        if path.suffix or os.sep in str(path):
            raise FileNotFoundError(f"{path}: no such file or folder")
        raise ValueError(f"unknown dataset {str(path)!r}: built-in names are {', '.join(BUILTIN_DATASETS)}; "
                         "otherwise give a .npy or .npz file or a folder of PNG/JPEG images")
    npz, key = None, None
    if path.is_dir():
        arr, source = _read_images(path), "images"
    elif path.suffix.lower() == ".npy":
        arr, source = read_npy(path), "npy"
    elif path.suffix.lower() == ".npz":
        npz = read_npz(path)
        key = npz_data_key(path, npz, labels)
        arr, source = npz[key], "npz"
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; accepted: .npy, .npz, "
                         "or a folder of PNG/JPEG images")
    x, shape, scaling = _flat_scaled(path if key is None else Path(f"{path}[{key}]"), arr, scale)
    lab = _labels(path, labels, npz, x.shape[0])
    extra = {} if key is None else {"npz_key": key}
    return Dataset(str(path), x, shape, lab, scaling, None,
                   _config(str(path), source, x, shape, scaling, lab, None, path=str(path.resolve()),
                           dtype=str(arr.dtype), **extra))


def _labels(path: Path, labels: str | None, npz: dict | None, n: int) -> NDArray[np.int64] | None:
    if labels is None:
        key = next((k for k in LABEL_KEYS if npz is not None and k in npz), None)
        return None if key is None else _check_labels(f"{path}[{key}]", npz[key], n)
    if npz is not None and labels in npz:
        return _check_labels(f"{path}[{labels}]", npz[labels], n)
    lpath = Path(labels)
    if lpath.suffix.lower() != ".npy":
        raise ValueError("labels: expected a .npy file" + (f" or a key of {path} ({', '.join(npz)})" if npz else "")
                         + f", got {labels!r}")
    if not lpath.exists():
        raise FileNotFoundError(f"labels: {lpath}: no such file")
    return _check_labels(str(lpath), read_npy(lpath), n)


def _check_labels(where: str, lab: NDArray, n: int) -> NDArray[np.int64]:
    lab = np.asarray(lab)
    if lab.shape != (n,):
        raise ValueError(f"labels: {where} has shape {lab.shape}, expected ({n},), one per sample")
    if not (np.issubdtype(lab.dtype, np.integer)
            or (np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all() and (lab == np.round(lab)).all())):
        raise ValueError(f"labels: {where} must hold integers, got dtype {lab.dtype}")
    return lab.astype(np.int64)


def _read_images(folder: Path) -> NDArray[np.uint8]:
    """All PNG/JPEG images of ``folder`` in sorted order as uint8 (N, C, H, W); C = 1 if all grey."""
    heads = [image_head(f) for f in image_files(folder)]
    for head in heads:
        if head.size != heads[0].size:
            raise ValueError(f"{folder}: images differ in size: {heads[0].path.name} is {_wh(heads[0].size)}, "
                             f"{head.path.name} is {_wh(head.size)}; all images must have the same size")
    grey = all(head.mode in ("1", "L", "LA") for head in heads)
    (w, h), c = heads[0].size, 1 if grey else 3
    out = np.empty((len(heads), c, h, w), dtype=np.uint8)
    for i, head in enumerate(heads):
        px = read_image(head.path, "L" if grey else "RGB")
        out[i] = px[None] if grey else px.transpose(2, 0, 1)
    return out


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _flat_scaled(path: Path, arr: NDArray, scale: str) -> tuple[NDArray, tuple[int, ...], str]:
    """Flatten per sample, check finiteness and range in chunks, then scale (see module docstring)."""
    if arr.ndim == 0 or arr.shape[0] < 2:
        raise ValueError(f"{path}: need at least 2 samples, got array of shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{path}: unsupported dtype {arr.dtype}; expected integer or float data")
    shape = tuple(arr.shape[1:]) or (1,)
    flat = arr.reshape(arr.shape[0], -1) if arr.flags.c_contiguous else None
    lo, hi = _check_range(path, arr, flat)
    a, b, scaling = _affine(arr.dtype, lo, hi, scale)
    if (a, b) == (1.0, 0.0) and flat is not None and (
            arr.dtype == np.float32 or (arr.dtype == np.float64 and isinstance(arr, np.memmap))):
        return flat, shape, scaling
    src = flat if flat is not None else arr
    x = np.empty((arr.shape[0], math.prod(shape)), dtype=np.float32)
    for sl in chunk_slices(x.shape[0], rows_per_chunk(x.shape[1])):
        chunk = np.asarray(src[sl], dtype=np.float32).reshape(sl.stop - sl.start, -1)
        x[sl] = chunk if (a, b) == (1.0, 0.0) else chunk * np.float32(a) + np.float32(b)
    return x, shape, scaling


def _check_range(path: Path, arr: NDArray, flat: NDArray | None) -> tuple[float, float]:
    """(min, max) over all values, computed in chunks; raise if any value is NaN or infinite."""
    lo, hi, bad_values, bad_rows = math.inf, -math.inf, 0, []
    src = flat if flat is not None else arr
    per_row = math.prod(arr.shape[1:])
    for sl in chunk_slices(arr.shape[0], rows_per_chunk(per_row, arr.dtype.itemsize)):
        chunk = np.asarray(src[sl]).reshape(sl.stop - sl.start, -1)
        c_lo, c_hi = float(chunk.min()), float(chunk.max())  # NaN and inf show up here
        if not (np.isfinite(c_lo) and np.isfinite(c_hi)):
            finite = np.isfinite(chunk)
            bad_values += int((~finite).sum())
            bad_rows.extend((sl.start + np.flatnonzero(~finite.all(axis=1))).tolist())
            chunk = chunk[finite.all(axis=1)]
            if not chunk.size:
                continue
            c_lo, c_hi = float(chunk.min()), float(chunk.max())
        lo, hi = min(lo, c_lo), max(hi, c_hi)
    if bad_values:
        first = ", ".join(map(str, bad_rows[:5]))
        raise ValueError(f"{path}: {bad_values} value(s) are NaN or infinite, in {len(bad_rows)} sample(s) "
                         f"(first at sample index {first}); only finite values are accepted")
    return lo, hi


def _affine(dtype: np.dtype, lo: float, hi: float, scale: str) -> tuple[float, float, str]:
    """(a, b, note): the map x -> a x + b that ``scale`` asks for, given the data range [lo, hi]."""
    span = f"[{lo:.6g}, {hi:.6g}]"
    if scale == "none":
        return 1.0, 0.0, f"none: values left as they are, range {span}"
    if scale == "unit":
        if hi == lo:
            return 1.0, 0.0, f"unit: constant data (all values {lo:.6g}) left as they are"
        return 2.0 / (hi - lo), -(hi + lo) / (hi - lo), f"unit: range {span} mapped to [-1, 1] (min-max)"
    if np.issubdtype(dtype, np.integer):
        if lo >= 0 and hi <= 255:
            return 1.0 / 127.5, -1.0, f"auto: integers 0..255 mapped to [-1, 1] by x / 127.5 - 1 (range {span})"
        return 1.0, 0.0, f"auto: integer data outside 0..255 left as they are, range {span}"
    if lo >= 0 and hi <= 1:
        return 2.0, -1.0, f"auto: floats in [0, 1] mapped to [-1, 1] by 2x - 1 (range {span})"
    return 1.0, 0.0, f"auto: float data outside [0, 1] left as they are, range {span}"
