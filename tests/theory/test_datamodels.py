"""Data models: score and Hessian against finite differences, limits against the Gaussian model,
batched against one-at-a-time, closed forms, and bad input."""
import numpy as np
import pytest

from symbreak.theory import EmpiricalData, Gaussian, GaussianMixture, SymmetricDeltas, VPLinear

SCHED = VPLinear()
RNG = np.random.default_rng(0)


def spd(d, rng, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.2 * np.eye(d))


def models():
    rng = np.random.default_rng(1)
    return {
        "gaussian": Gaussian(rng.standard_normal(3), spd(3, rng)),
        "gaussian-singular": Gaussian([0.5, -0.2], [[1.0, 1.0], [1.0, 1.0]]),
        "gmm": GaussianMixture([0.2, 0.3, 0.5], rng.standard_normal((3, 2)) * 2,
                               np.stack([spd(2, rng, 0.3) for _ in range(3)])),
        "empirical": EmpiricalData(rng.standard_normal((20, 2)), weights=rng.dirichlet(np.ones(20)), chunk_size=7),
        "two-deltas-3d": SymmetricDeltas(1.5, direction=[1.0, 2.0, -1.0]),
    }


MODELS = models()
TIMES = [0.15, 0.4, 0.8]


def query_points(model, n=4, seed=2):
    return np.random.default_rng(seed).standard_normal((n, model.dim)) * 1.2


def central_difference(fn, x, h):
    """d fn / dx_i for each i, fn mapping (B, d) -> (B, ...); returns (B, ..., d)."""
    cols = []
    for i in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[i] = h
        cols.append((fn(x + e) - fn(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("t", TIMES)
def test_score_is_gradient_of_log_prob(name, t):
    m = MODELS[name]
    x = query_points(m)
    fd = central_difference(lambda z: m.log_prob(z, t, SCHED), x, 1e-5)
    score = m.score(x, t, SCHED)
    np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-6 * np.abs(score).max())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("t", TIMES)
def test_hessian_is_jacobian_of_score(name, t):
    m = MODELS[name]
    x = query_points(m)
    fd = central_difference(lambda z: m.score(z, t, SCHED), x, 1e-5)
    hess = m.hessian(x, t, SCHED)
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-6 * np.abs(hess).max())
    np.testing.assert_allclose(hess, np.swapaxes(hess, 1, 2), atol=1e-12 * np.abs(hess).max())


@pytest.mark.parametrize("name", MODELS)
def test_batched_equals_one_at_a_time(name):
    m, t = MODELS[name], 0.3
    x = query_points(m, n=5)
    for method in ("log_prob", "score", "hessian", "posterior_mean", "posterior_cov"):
        batched = getattr(m, method)(x, t, SCHED)
        single = np.concatenate([getattr(m, method)(xi, t, SCHED) for xi in x])
        np.testing.assert_allclose(batched, single, rtol=1e-12, atol=1e-14)


def test_one_component_mixture_is_the_gaussian():
    rng = np.random.default_rng(3)
    mu, cov = rng.standard_normal(3), spd(3, rng)
    g, mix = Gaussian(mu, cov), GaussianMixture([1.0], [mu], [cov])
    x = query_points(g)
    for t in TIMES:
        for method in ("log_prob", "score", "hessian", "posterior_mean", "posterior_cov"):
            np.testing.assert_allclose(getattr(mix, method)(x, t, SCHED), getattr(g, method)(x, t, SCHED),
                                       rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mix.cov, cov, rtol=1e-14)


def test_gaussian_marginal_is_the_closed_form_density():
    """log p_t of N(mu, Sigma) is the density of N(alpha mu, alpha^2 Sigma + sigma^2 I) (scipy)."""
    from scipy.stats import multivariate_normal

    g, t = MODELS["gaussian"], 0.35
    x = query_points(g)
    ref = multivariate_normal(g.marginal_mean(t, SCHED), g.marginal_cov(t, SCHED)).logpdf(x)
    np.testing.assert_allclose(g.log_prob(x, t, SCHED), ref, rtol=1e-12)


def test_empirical_with_many_gaussian_samples_approaches_the_gaussian():
    rng = np.random.default_rng(4)
    g = Gaussian([0.3, -0.5], [[1.0, 0.4], [0.4, 0.5]])
    emp = EmpiricalData(g.sample(40000, rng), chunk_size=8192)
    np.testing.assert_allclose(emp.mean, g.mean, atol=0.02)
    np.testing.assert_allclose(emp.cov, g.cov, atol=0.03)
    x = np.array([[0.0, 0.0], [0.5, -0.5], [-0.4, 0.3]])
    for t in (0.4, 0.7):
        s_emp, s_g = emp.score(x, t, SCHED), g.score(x, t, SCHED)
        assert np.abs(s_emp - s_g).max() <= 0.03 * np.abs(s_g).max() + 0.02
        np.testing.assert_allclose(emp.log_prob(x, t, SCHED), g.log_prob(x, t, SCHED), atol=0.02)


def test_two_deltas_posterior_mean_is_tanh():
    m, t = SymmetricDeltas(1.3), 0.3
    alpha, sigma2 = SCHED.alpha(t), SCHED.sigma2(t)
    x = np.linspace(-2, 2, 9)[:, None]
    np.testing.assert_allclose(m.posterior_mean(x, t, SCHED)[:, 0], 1.3 * np.tanh(alpha * 1.3 * x[:, 0] / sigma2),
                               rtol=1e-12, atol=1e-15)


def test_mixture_moments_and_samples():
    m = MODELS["gmm"]
    w, mus = m.weights, np.array([c.mean for c in m.components])
    mean = w @ mus
    cov = sum(wk * (c.cov + np.outer(c.mean - mean, c.mean - mean)) for wk, c in zip(w, m.components))
    np.testing.assert_allclose(m.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(m.cov, cov, rtol=1e-13)
    y = m.sample(100000, np.random.default_rng(5))
    np.testing.assert_allclose(y.mean(axis=0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(y.T), cov, atol=0.05)
    same = m.sample(10, np.random.default_rng(6)), m.sample(10, np.random.default_rng(6))
    np.testing.assert_array_equal(*same)


@pytest.mark.parametrize("make, name", [
    (lambda: Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), "cov"),          # not symmetric
    (lambda: Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, -0.1]]), "cov"),         # not PSD
    (lambda: Gaussian([0.0, 0.0, 0.0], np.eye(2)), "cov"),                    # shape mismatch
    (lambda: Gaussian([0.0, np.nan], np.eye(2)), "mean"),
    (lambda: Gaussian([0.0, 0.0], [[np.inf, 0.0], [0.0, 1.0]]), "cov"),
    (lambda: GaussianMixture([-0.5, 1.5], [[0.0], [1.0]], np.ones((2, 1, 1))), "weights"),
    (lambda: GaussianMixture([0.3, 0.3], [[0.0], [1.0]], np.ones((2, 1, 1))), "weights"),
    (lambda: GaussianMixture([0.5, 0.5], [[0.0], [1.0]], np.ones((3, 1, 1))), "covs"),
    (lambda: GaussianMixture([1.0], [[0.0], [1.0]], np.ones((2, 1, 1))), "weights"),
    (lambda: EmpiricalData([[0.0], [np.nan]]), "y"),
    (lambda: EmpiricalData([[0.0], [1.0]], weights=[0.2, 0.2]), "weights"),
    (lambda: SymmetricDeltas(float("nan")), "m"),
    (lambda: SymmetricDeltas(1.0, direction=[0.0, 0.0]), "direction"),
    (lambda: MODELS["gmm"].score([[0.0, 0.0, 0.0]], 0.3, SCHED), "x"),
    (lambda: MODELS["gmm"].score([[0.0, 0.0]], 1.2, SCHED), "t"),
])
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        make()


def test_hessian_at_the_smallest_times_is_finite_and_huge_data_are_named():
    from symbreak.theory import SymmetricDeltas, VPLinear

    h = SymmetricDeltas(1.0).hessian(np.zeros(1), 1e-300, VPLinear())
    assert np.isfinite(h).all() and h[0, 0, 0] > 0
    with pytest.raises(ValueError, match="^m: must be at most"):
        SymmetricDeltas(1e200)
    with pytest.raises(ValueError, match="overflows float64"):
        EmpiricalData(np.full((3, 1), 1e200))
