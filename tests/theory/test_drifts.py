"""The matrix-free drift of finite data on its three data paths -- resident float64, streamed in parts,
float32 with single-precision inner products -- against the dense Jacobian from Tweedie's formulas and
against each other (the same branch and events), and its sums independent of the threads."""
import numpy as np
import pytest

from symbreak.theory import EmpiricalData, VPLinear, critical_times, drifts
from symbreak.theory.continuation import top_eigen

SCHED = VPLinear()


def sample(n, d, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, d)) * np.linspace(1.0, 0.3, d)
    y[:, 0] += 1.8 * np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return y.astype(dtype)


@pytest.fixture
def streamed(monkeypatch):
    """No data resident as float64, chunks of a few rows: every product streams in ``PARTS`` parts."""
    monkeypatch.setattr(drifts, "RESIDENT_BYTES", 0)
    monkeypatch.setattr(drifts, "CACHE_BYTES", 8 * 64 * 7)


def dense_jacobian(y, x, logsnr):
    """J / beta = a I + g Cov_w(y) with the posterior weights written out (softmax of the logits)."""
    n = drifts.Noise.at(SCHED, "sde", logsnr)
    logits = (n.alpha * y @ x - 0.5 * n.alpha ** 2 * (y * y).sum(axis=1)) / n.sigma2
    w = np.exp(logits - logits.max())
    w /= w.sum()
    mean = w @ y
    cov = ((y - mean).T * w) @ (y - mean)
    return n.diagonal * np.eye(len(x)) + n.gain * cov, n.drift(x, mean)


@pytest.mark.parametrize("seed", range(3))
def test_streamed_products_match_the_dense_jacobian(streamed, seed):
    y = sample(90, 7, seed)
    drift = drifts.EmpiricalDrift(y, SCHED)
    assert drift.resident is None and len(drift._parts(drift.n_points)) == drifts.PARTS
    x = np.random.default_rng(seed + 10).standard_normal(7)
    lin = drift.linearise(x, 0.3)
    jac, b = dense_jacobian(y, x, 0.3)
    v = np.random.default_rng(seed).standard_normal((7, 3))
    assert np.allclose(lin.matvec(v), jac @ v, rtol=0, atol=1e-12 * np.abs(jac).max())
    assert np.allclose(lin.b, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, d, seed", [(80, 12, 0), (150, 5, 1), (60, 30, 2)])
def test_streamed_branch_equals_the_resident_branch(monkeypatch, n, d, seed):
    y = sample(n, d, seed)
    resident = critical_times(EmpiricalData(y), SCHED, matrix_free=True)
    monkeypatch.setattr(drifts, "RESIDENT_BYTES", 0)
    monkeypatch.setattr(drifts, "CACHE_BYTES", 8 * d * 9)
    streamed = critical_times(EmpiricalData(y), SCHED, matrix_free=True)
    assert [e.kind for e in resident.events] == [e.kind for e in streamed.events] and resident.events
    for a, b in zip(resident.events, streamed.events):
        assert a.time.logsnr == pytest.approx(b.time.logsnr, abs=1e-8)


def test_single_precision_products_are_accurate_to_float32():
    y = sample(120, 40, 3, np.float32)
    x = np.random.default_rng(0).standard_normal(40)
    lin = drifts.EmpiricalDrift(y, SCHED).linearise(x, -0.2)
    v = np.random.default_rng(1).standard_normal((40, 4))
    exact = lin.matvec(v)
    assert lin.approx is not None
    assert np.abs(lin.approx(v) - exact).max() <= 1e-5 * lin.scale * np.abs(v).max()


@pytest.mark.parametrize("seed", range(3))
def test_float32_data_give_the_events_of_their_float64_copy(seed):
    """float32 data: Newton's inner solves and the block iteration on single-precision products, the
    eigenvalues by a float64 Rayleigh-Ritz pass (error r^2 / gap): the events of the same numbers held
    in float64 to 1e-7."""
    y32 = sample(200, 48, seed, np.float32)
    single = critical_times(EmpiricalData(y32), SCHED, matrix_free=True)
    double = critical_times(EmpiricalData(y32.astype(np.float64)), SCHED, matrix_free=True)
    assert [e.kind for e in single.events] == [e.kind for e in double.events] and single.events
    for a, b in zip(single.events, double.events):
        assert a.time.logsnr == pytest.approx(b.time.logsnr, abs=1e-7)
        assert a.margin == pytest.approx(b.margin, abs=1e-7)


def test_ritz_refinement_reaches_float64_accuracy():
    """A block converged on float32 products, refined by one exact pass: the top eigenvalues equal the
    dense eigh's to far below float32 round-off (Kato-Temple)."""
    y = sample(300, 60, 4, np.float32)
    drift = drifts.EmpiricalDrift(y, SCHED)
    x = 0.3 * drift.mu
    lin = drift.linearise(x, 0.1)
    jac, _ = dense_jacobian(y.astype(np.float64), x, 0.1)
    want = np.linalg.eigvalsh(jac)[::-1][:3]
    start = np.linalg.qr(np.random.default_rng(7).standard_normal((60, 3)))[0]
    got, _, error = top_eigen(lin, 3, start)
    assert np.abs(got - want).max() <= max(error, 1e-10 * lin.scale)


def test_streamed_sums_do_not_depend_on_the_threads(streamed, monkeypatch):
    """The parts are fixed by the data and reduced in order: threads or none, the same branch (to the
    last bits that SIMD kernels leave to the alignment of fresh arrays)."""
    y = sample(70, 9, 5)
    threaded = critical_times(EmpiricalData(y), SCHED, matrix_free=True).branch
    monkeypatch.setattr(drifts, "_pool", lambda: None)
    serial = critical_times(EmpiricalData(y), SCHED, matrix_free=True).branch
    assert np.allclose(threaded.margin, serial.margin, rtol=1e-12, atol=0)
    assert np.allclose(threaded.x, serial.x, rtol=1e-12, atol=1e-14)
