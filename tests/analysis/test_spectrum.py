"""Streaming covariance spectrum against numpy's dense eigendecomposition."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from symbreak.analysis.datasets import load_dataset
from symbreak.analysis.spectrum import covariance_spectrum, spectrum_from_moments


def _planted(n: int, d: int, top: list[float], noise: float, offset: float, seed: int) -> np.ndarray:
    """n samples in d dims: variances ``top`` along random orthonormal directions + isotropic noise."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((d, len(top))))[0]
    mean = offset * rng.standard_normal(d)
    return mean + (rng.standard_normal((n, len(top))) * np.sqrt(top)) @ u.T + np.sqrt(noise) * rng.standard_normal((n, d))


def _numpy_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lam, vecs = np.linalg.eigh(np.cov(np.asarray(x, dtype=np.float64).T, bias=True))
    return lam[::-1], vecs[:, ::-1]


def _assert_same_vectors(v: np.ndarray, ref: np.ndarray, tol: float) -> None:
    cos = np.abs(np.einsum("ik,ik->k", v, ref))
    np.testing.assert_allclose(cos, 1.0, atol=tol)


@pytest.mark.parametrize("chunk_size", [1, 7, 97, 600, 1000])
def test_exact_route_matches_numpy(chunk_size):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((600, 12)) @ rng.standard_normal((12, 12))) + 50.0  # large mean: no cancellation
    ref_lam, ref_vecs = _numpy_reference(x)
    spec = covariance_spectrum(x, method="exact", chunk_size=chunk_size)
    np.testing.assert_allclose(spec.lam, ref_lam, rtol=1e-8)
    np.testing.assert_allclose(spec.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(spec.trace, ref_lam.sum(), rtol=1e-10)
    _assert_same_vectors(spec.vecs[:, :6], ref_vecs[:, :6], 1e-8)
    assert spec.method == "exact" and spec.k == 12 and spec.n == 600


@pytest.mark.parametrize("chunk_size", [33, 250, 5000])
def test_lanczos_route_matches_numpy_top_k(chunk_size):
    x = _planted(1500, 200, [9.0, 6.0, 4.0, 3.0, 2.5], noise=0.2, offset=30.0, seed=1)
    ref_lam, ref_vecs = _numpy_reference(x)
    spec = covariance_spectrum(x, k=5, method="lanczos", chunk_size=chunk_size)
    np.testing.assert_allclose(spec.lam, ref_lam[:5], rtol=1e-8)
    _assert_same_vectors(spec.vecs, ref_vecs[:, :5], 1e-8)
    np.testing.assert_allclose(spec.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(spec.trace, ref_lam.sum(), rtol=1e-10)
    assert spec.passes * 8 < 200 and spec.residual <= 1e-9  # converged before exhausting the space
    np.testing.assert_allclose(spec.residual_variance, ref_lam[5:].mean(), rtol=1e-8)


def test_lanczos_on_float32_data():
    x = _planted(3000, 300, [5.0, 3.0, 2.0], noise=0.1, offset=1.0, seed=2).astype(np.float32)
    ref_lam, _ = _numpy_reference(x)
    spec = covariance_spectrum(x, k=3, method="lanczos", chunk_size=400)
    np.testing.assert_allclose(spec.lam, ref_lam[:3], rtol=1e-5)
    np.testing.assert_allclose(spec.trace, ref_lam.sum(), rtol=1e-5)


def test_auto_route_and_dataset_input():
    data = load_dataset("digits")
    spec = covariance_spectrum(data)
    ref_lam, _ = _numpy_reference(data.x)
    assert spec.method == "exact" and spec.k == 64
    np.testing.assert_allclose(spec.lam[:40], ref_lam[:40], rtol=1e-8)
    np.testing.assert_allclose(spec.Lambda, ref_lam[0], rtol=1e-10)
    # data model moments give the exact spectrum
    model = load_dataset("gmm-asym").model
    exact = spectrum_from_moments(model.mean, model.cov)
    np.testing.assert_allclose(exact.lam, [0.92, 0.01], rtol=1e-12)


def test_constant_data_has_zero_spectrum():
    x = np.full((40, 30), 3.5)
    for method in ("exact", "lanczos"):
        spec = covariance_spectrum(x, k=4, method=method)
        np.testing.assert_array_equal(spec.lam, 0.0)
        assert spec.trace == 0.0 and np.allclose(spec.mean, 3.5)


def test_memmap_is_never_copied_to_float64_whole(tmp_path):
    n, d = 20_000, 64
    np.save(tmp_path / "x.npy", _planted(n, d, [4.0, 2.0], 0.5, 1.0, seed=3).astype(np.float32))
    x = np.load(tmp_path / "x.npy", mmap_mode="r")
    for method in ("exact", "lanczos"):
        tracemalloc.start()
        spec = covariance_spectrum(x, k=2, method=method, chunk_size=500)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 0.1 * n * d * 8, (method, peak)
        assert spec.Lambda > 3.5


def test_bad_arguments():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="method: must be one of auto, exact, lanczos"):
        covariance_spectrum(x, method="svd")
    with pytest.raises(ValueError, match=r"k: must be an integer in 1\.\.3"):
        covariance_spectrum(x, k=4)
    with pytest.raises(ValueError, match="chunk_size: must be an integer >= 1"):
        covariance_spectrum(x, chunk_size=0)
    with pytest.raises(ValueError, match=r"x: expected a non-empty array of shape \(N, d\)"):
        covariance_spectrum(np.zeros(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        covariance_spectrum(np.array([[1.0, np.nan], [0.0, 1.0]]))
