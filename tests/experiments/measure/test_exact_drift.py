"""The torch exact drift against theory's numpy EmpiricalDrift on the CPU: the same drift, products, round-off
levels and covariance spectrum, and the same events and t_c along the central branch."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from symbreak.analysis.critical import dataset_critical_times
from symbreak.analysis.datasets import Dataset
from symbreak.experiments.measure.exact_drift import ExactBackend, TorchEmpiricalDrift, exact_backend, torch_drift
from symbreak.theory import EmpiricalData, Gaussian, VPLinear, critical_times
from symbreak.theory.drifts import EmpiricalDrift

SCHEDULE = VPLinear()


def clusters(n: int, d: int, seed: int, dtype=np.float64) -> np.ndarray:
    """Two clusters +-e_1 (coin flips) with a spread of 0.3: an imperfect pitchfork."""
    rng = np.random.default_rng(seed)
    y = 0.3 * rng.standard_normal((n, d))
    y[:, 0] += np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return y.astype(dtype)


def pair(y: np.ndarray, weights=None, chunk_bytes=None):
    model = EmpiricalData(y, weights=weights)
    return (EmpiricalDrift.of(model, SCHEDULE, "sde"),
            TorchEmpiricalDrift.of(model, SCHEDULE, "sde", device="cpu", chunk_bytes=chunk_bytes))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk_bytes", [None, 4096])
def test_drift_products_and_levels_match_the_numpy_drift(dtype, chunk_bytes):
    y = clusters(120, 24, 0, dtype)
    numpy_drift, torch_drift_ = pair(y, chunk_bytes=chunk_bytes)
    assert torch_drift_.y.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
    np.testing.assert_allclose(torch_drift_.start(0.7), numpy_drift.start(0.7), rtol=0, atol=1e-15)
    rng = np.random.default_rng(1)
    x, v, block = 0.6 * rng.standard_normal(24), rng.standard_normal(24), rng.standard_normal((24, 3))
    for logsnr in (-4.0, 0.5, 6.0, 12.0):                  # 12: few rows above round-off, the rest dropped
        ref, lin = numpy_drift.linearise(x, logsnr), torch_drift_.linearise(x, logsnr)
        size = ref.scale * (1 + np.abs(x).max())
        np.testing.assert_allclose(lin.b, ref.b, rtol=0, atol=1e-13 * size)
        np.testing.assert_allclose(torch_drift_.b(x, logsnr), ref.b, rtol=0, atol=1e-13 * size)
        np.testing.assert_allclose(lin.matvec(v), ref.matvec(v), rtol=0, atol=1e-13 * ref.scale * 5)
        assert lin.matvec(block).shape == (24, 3)
        np.testing.assert_allclose(lin.matvec(block), ref.matvec(block), rtol=0, atol=1e-13 * ref.scale * 5)
        assert lin.scale == pytest.approx(ref.scale, rel=1e-12) and lin.noise == pytest.approx(ref.noise, rel=1e-12)
        assert lin.shift == ref.shift and lin.dense is None
        assert (lin.approx is None) == (ref.approx is None)
        if lin.approx is not None:                          # float32 products, to single precision
            assert dtype == np.float32 and logsnr < 12.0
            np.testing.assert_allclose(lin.approx(block), ref.matvec(block), rtol=0, atol=1e-5 * ref.scale)
            assert lin.approx(v).shape == (24,)
    assert torch_drift_.linearise(x, 12.0).approx is None   # concentrated posterior: float64 products only
    assert (torch_drift_.linearise(x, 0.5).approx is None) == (dtype == np.float64)
    np.testing.assert_allclose(torch_drift_.covariance_spectrum(5), numpy_drift.covariance_spectrum(5), rtol=1e-9)


@pytest.mark.filterwarnings("ignore:divide by zero")          # log 0 of the points left out
def test_weights_with_zeros_and_half_precision_data():
    y = np.round(clusters(60, 6, 2) * 40).astype(np.float16)   # float16: held as float32, exactly
    weights = np.random.default_rng(3).multinomial(60, np.full(60, 1 / 60)) / 60   # a bootstrap resample
    numpy_drift, torch_drift_ = pair(y, weights)
    assert torch_drift_.y.dtype == torch.float32 and (weights == 0).any()
    x = np.random.default_rng(4).standard_normal(6)
    for logsnr in (-8.0, -5.0):
        ref, lin = numpy_drift.linearise(x, logsnr), torch_drift_.linearise(x, logsnr)
        np.testing.assert_allclose(lin.b, ref.b, rtol=1e-12, atol=1e-12 * ref.scale)
        np.testing.assert_allclose(lin.matvec(np.eye(6)), ref.matvec(np.eye(6)), rtol=0, atol=1e-12 * ref.scale)


# (N, d, seed): d = 8..300, N = 50..500; d = 300 is above the dense limit, as image data are
CASES = [(50, 8, 0), (150, 40, 1), (500, 12, 2), (50, 300, 3)]


@pytest.mark.parametrize("n, d, seed", CASES)
def test_critical_times_agree_with_the_numpy_drift(n, d, seed):
    model = EmpiricalData(clusters(n, d, seed))
    ref = critical_times(model, SCHEDULE, matrix_free=True)
    ours = critical_times(model, SCHEDULE, drift=torch_drift("cpu"))
    assert type(ours.branch.drift) is TorchEmpiricalDrift and ours.branch.model is model
    assert ref.t_c is not None and ours.kind == ref.kind
    assert ours.t_c == pytest.approx(ref.t_c, abs=1e-8)
    assert [e.kind for e in ours.events] == [e.kind for e in ref.events]
    for mine, theirs in zip(ours.events, ref.events, strict=True):
        assert mine.time.t == pytest.approx(theirs.time.t, abs=1e-8)
        assert mine.margin == pytest.approx(theirs.margin, abs=1e-8)


def test_float32_data_find_the_same_branch():
    """float32 data, single-precision products in Newton's solves on both sides (summed in different
    orders): the same events; the margins agree to the Newton tolerance, a closest approach's time to
    about its square root (the margin is flat there)."""
    model = EmpiricalData(clusters(80, 16, 1, np.float32))
    ref = critical_times(model, SCHEDULE, matrix_free=True)
    ours = critical_times(model, SCHEDULE, drift=torch_drift("cpu"))
    assert [e.kind for e in ours.events] == [e.kind for e in ref.events] and ours.kind == "closest-approach"
    for mine, theirs in zip(ours.events, ref.events, strict=True):
        assert mine.time.t == pytest.approx(theirs.time.t, abs=1e-6)
        assert mine.margin == pytest.approx(theirs.margin, abs=1e-10)


def test_dataset_route_passes_the_factory_through():
    y = clusters(60, 5, 5)
    data = Dataset("clusters", y, (5,), None, "none", None, {"source": "test"})
    ref = dataset_critical_times(data, SCHEDULE, method="exact")
    made = []

    def factory(model, schedule, dynamics):
        made.append(model)
        return TorchEmpiricalDrift.of(model, schedule, dynamics)

    ours = dataset_critical_times(data, SCHEDULE, method="exact", bootstrap=1, drift=factory)
    assert ours.t_c == pytest.approx(ref.t_c, abs=1e-8) and ours.kind == ref.kind
    assert len(made) == 2 and made[0].n_points == 60 and made[1] is not made[0]   # the data, then the resample
    assert ours.bootstrap is not None


def test_backends_and_bad_models():
    assert exact_backend("cpu") == ExactBackend("numpy", "cpu")
    if not torch.cuda.is_available():
        assert exact_backend("auto").backend == "numpy"
        with pytest.raises(ValueError, match="--device: 'cuda' was asked for"):
            exact_backend("cuda")
    else:
        assert exact_backend("auto").config() == {"backend": "torch", "device": "cuda:0"}
    with pytest.raises(ValueError, match="model: the torch drift follows finite data"):
        critical_times(Gaussian(np.zeros(2), np.eye(2)), SCHEDULE, drift=torch_drift("cpu"))


def test_cuda_check_exact_section_dry_run_on_the_cpu(capsys):
    """benchmarks/cuda_check.py --exact on the CPU (its GPU section's code, on a small array)."""
    spec = importlib.util.spec_from_file_location("cuda_check", Path(__file__).resolve().parents[3] / "benchmarks"
                                                  / "cuda_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--device", "cpu", "--exact", "--exact-size", "80", "16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "exact route 80x16 float32, torch drift" in out and "1/1 checks passed" in out
