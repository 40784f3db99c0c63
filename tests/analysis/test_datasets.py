"""Dataset loading: built-in sets against their definitions, files and folders, scaling, bad input."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from symbreak.analysis.datasets import BUILTIN_DATASETS, load_dataset
from symbreak.theory import GaussianMixture, SymmetricDeltas


# --- built-in sets --------------------------------------------------------------------------------
def test_digits_pixels_scaled_to_unit_interval_and_labels_kept():
    data = load_dataset("digits")
    pixels, target = load_digits(return_X_y=True)
    assert data.x.shape == (1797, 64) and data.x.dtype == np.float32 and data.shape == (8, 8)
    np.testing.assert_allclose(data.x, pixels / 8.0 - 1.0, atol=1e-7)
    assert data.x.min() == -1.0 and data.x.max() == 1.0
    np.testing.assert_array_equal(data.labels, target)
    assert data.model is None and "0..16" in data.scaling
    np.testing.assert_array_equal(load_dataset("digits", scale="none").x, pixels)
    np.testing.assert_array_equal(data.unflatten(data.x[:3]), (pixels[:3] / 8.0 - 1.0).reshape(3, 8, 8).astype(np.float32))


def test_two_deltas_samples_and_model():
    data = load_dataset("two-deltas", n=500, seed=3)
    assert isinstance(data.model, SymmetricDeltas) and data.shape == (1,) and data.x.shape == (500, 1)
    np.testing.assert_array_equal(data.x[:, 0], np.where(data.labels == 0, 1.0, -1.0))
    assert 200 < (data.labels == 0).sum() < 300
    np.testing.assert_array_equal(load_dataset("two-deltas", n=500, seed=3).x, data.x)
    assert not np.array_equal(load_dataset("two-deltas", n=500, seed=4).x, data.x)


def test_gmm_2d_is_symmetric_with_the_stated_modes():
    data = load_dataset("gmm-2d", n=4000)
    model = data.model
    assert isinstance(model, GaussianMixture)
    modes = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(model.mean, 0.0, atol=1e-15)
    # Cov = sum_k w_k m_k m_k^T + 0.1^2 I = 0.5 I + 0.01 I
    np.testing.assert_allclose(model.cov, 0.51 * np.eye(2), atol=1e-15)
    dist = np.linalg.norm(data.x - modes[data.labels], axis=1)
    assert dist.max() < 0.6 and abs(dist.mean() - 0.1 * np.sqrt(np.pi / 2)) < 0.005  # Rayleigh mean


def test_gmm_asym_is_centred_with_unequal_weights():
    data = load_dataset("gmm-asym", n=4000, seed=1)
    np.testing.assert_allclose(data.model.weights, [0.65, 0.35])
    np.testing.assert_allclose(data.model.mean, 0.0, atol=1e-15)
    # Var along the axis: 0.65 * 0.7^2 + 0.35 * 1.3^2 + 0.01 = 0.91 + 0.01
    np.testing.assert_allclose(np.diag(data.model.cov), [0.92, 0.01], atol=1e-14)
    assert abs((data.labels == 0).mean() - 0.65) < 0.03


def test_every_builtin_loads():
    for name in BUILTIN_DATASETS:
        data = load_dataset(name, n=50)
        assert data.n == 50 and np.isfinite(data.x).all() and data.config["name"] == name


# --- files ----------------------------------------------------------------------------------------
def test_float32_npy_is_a_read_only_memmap_view(tmp_path):
    arr = np.random.default_rng(0).normal(size=(20, 3, 2)).astype(np.float32) * 3
    np.save(tmp_path / "a.npy", arr)
    data = load_dataset(str(tmp_path / "a.npy"))
    assert isinstance(data.x, np.memmap) and not data.x.flags.writeable
    assert data.shape == (3, 2) and data.x.shape == (20, 6)
    np.testing.assert_array_equal(data.x, arr.reshape(20, 6))
    assert data.scaling.startswith("auto: float data outside [0, 1] left")


def test_auto_scaling_of_bytes_and_unit_floats(tmp_path):
    ints = np.random.default_rng(1).integers(0, 256, size=(30, 5), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", ints)
    data = load_dataset(str(tmp_path / "u8.npy"))
    assert data.x.dtype == np.float32
    np.testing.assert_allclose(data.x, ints / 127.5 - 1.0, atol=1e-6)
    assert "0..255" in data.scaling
    floats = ints / 255.0
    np.save(tmp_path / "f.npy", floats)
    np.testing.assert_allclose(load_dataset(str(tmp_path / "f.npy")).x, 2 * floats - 1, atol=1e-6)
    np.testing.assert_allclose(load_dataset(str(tmp_path / "f.npy"), scale="none").x, floats, atol=1e-7)
    lo, hi = floats.min(), floats.max()
    unit = load_dataset(str(tmp_path / "f.npy"), scale="unit")
    np.testing.assert_allclose(unit.x, 2 * (floats - lo) / (hi - lo) - 1, atol=1e-6)
    assert "min-max" in unit.scaling


def test_npz_keys_and_labels(tmp_path):
    rng = np.random.default_rng(2)
    images, y = rng.random((12, 4, 4)), rng.integers(0, 3, 12)
    np.savez(tmp_path / "d.npz", other=np.zeros(3), images=images, targets=y)
    data = load_dataset(str(tmp_path / "d.npz"))
    np.testing.assert_allclose(data.x, 2 * images.reshape(12, 16) - 1, atol=1e-6)
    np.testing.assert_array_equal(data.labels, y)
    np.savez(tmp_path / "e.npz", arr_0=images, cls=y.astype(float))
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "e.npz"), labels="cls").labels, y)
    np.save(tmp_path / "lab.npy", y[::-1])
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "e.npz"), labels=str(tmp_path / "lab.npy")).labels,
                                  y[::-1])


def test_subset_and_split_are_seeded_partitions():
    data = load_dataset("digits")
    sub = data.subset(100, seed=5)
    assert sub.n == 100 and sub.config["subset"] == {"max_points": 100, "seed": 5, "of": 1797}
    rows = {tuple(r) for r in data.x.tolist()}
    assert all(tuple(r) in rows for r in sub.x.tolist())
    np.testing.assert_array_equal(data.subset(100, seed=5).x, sub.x)
    assert load_dataset("digits", n=100, seed=5).x.tolist() == sub.x.tolist()
    kept, held = data.split(0.25, seed=1)
    assert kept.n + held.n == 1797 and abs(held.n - 449) <= 1
    both = np.concatenate([kept.labels, held.labels])
    np.testing.assert_array_equal(np.sort(both), np.sort(data.labels))


def _png(path, array, mode):
    Image.fromarray(array, mode=mode).save(path)


def test_image_folder_grey_and_colour(tmp_path):
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, size=(3, 5, 4), dtype=np.uint8)  # H=5, W=4
    for i, g in enumerate(grey):
        _png(tmp_path / f"img{i}.png", g, "L")
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_dataset(str(tmp_path))
    assert data.shape == (1, 5, 4) and data.n == 3
    np.testing.assert_allclose(data.x, grey.reshape(3, 20) / 127.5 - 1, atol=1e-6)
    colour = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    _png(tmp_path / "img3.png", colour, "RGB")  # one colour image makes the whole set RGB
    data = load_dataset(str(tmp_path))
    assert data.shape == (3, 5, 4) and data.n == 4
    np.testing.assert_allclose(data.unflatten(data.x[3]), colour.transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(data.unflatten(data.x[0])[1], grey[0] / 127.5 - 1, atol=1e-6)  # grey -> R=G=B


# --- bad input ------------------------------------------------------------------------------------
def test_missing_and_unknown_inputs():
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_dataset("/nonexistent/data.npy")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits, two-deltas"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="scale: must be one of auto, none, unit"):
        load_dataset("digits", scale="zscore")
    with pytest.raises(ValueError, match="n: must be an integer >= 2"):
        load_dataset("two-deltas", n=1)


def test_nan_values_are_counted_and_located(tmp_path):
    arr = np.zeros((10, 3), dtype=np.float32)
    arr[2, 1] = np.nan
    arr[7, 0] = arr[7, 2] = np.inf
    np.save(tmp_path / "bad.npy", arr)
    with pytest.raises(ValueError, match=r"3 value\(s\) are NaN or infinite, in 2 sample\(s\) "
                                         r"\(first at sample index 2, 7\)"):
        load_dataset(str(tmp_path / "bad.npy"))


def test_bad_files(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((1, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        load_dataset(str(tmp_path / "one.npy"))
    (tmp_path / "x.csv").write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match="unsupported file type '.csv'"):
        load_dataset(str(tmp_path / "x.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no PNG/JPEG images"):
        load_dataset(str(tmp_path / "empty"))
    np.save(tmp_path / "lab.npy", np.arange(3))
    np.save(tmp_path / "two.npy", np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"labels: .*shape \(3,\), expected \(2,\)"):
        load_dataset(str(tmp_path / "two.npy"), labels=str(tmp_path / "lab.npy"))


def test_images_of_different_sizes_name_both(tmp_path):
    _png(tmp_path / "a.png", np.zeros((4, 4), np.uint8), "L")
    _png(tmp_path / "b.png", np.zeros((6, 5), np.uint8), "L")
    with pytest.raises(ValueError, match="a.png is 4x4, b.png is 5x6"):
        load_dataset(str(tmp_path))


def test_constant_data_is_accepted(tmp_path):
    np.save(tmp_path / "c.npy", np.full((5, 3), 7, dtype=np.uint8))
    data = load_dataset(str(tmp_path / "c.npy"), scale="unit")
    assert "constant" in data.scaling
    np.testing.assert_array_equal(data.x, 7.0)


def test_loading_a_memmap_makes_no_full_float64_copy(tmp_path):
    n, d = 200_000, 64  # 51 MB, several 16 MB chunks
    np.save(tmp_path / "big.npy", np.random.default_rng(0).random((n, d), dtype=np.float32) * 4)
    tracemalloc.start()
    data = load_dataset(str(tmp_path / "big.npy"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(data.x, np.memmap)
    assert peak < 0.02 * n * d * 8


def test_npz_key_is_recorded_and_ambiguous_archives_are_refused(tmp_path):
    np.savez(tmp_path / "k.npz", data=np.zeros((5, 2)), extra=np.ones(3))
    assert load_dataset(str(tmp_path / "k.npz")).config["npz_key"] == "data"
    np.savez(tmp_path / "two.npz", a=np.zeros((5, 2)), b=np.ones((5, 2)))
    with pytest.raises(ValueError, match="holds arrays a, b"):
        load_dataset(str(tmp_path / "two.npz"))
