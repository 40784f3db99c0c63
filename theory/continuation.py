"""One continuation engine: Newton solves, top eigenpairs of J / beta and the natural-parameter
continuation of a fixed-point branch on the logsnr axis, over the :class:`.drifts.Drift` protocol
(exact data models, dense or matrix-free, and trained networks alike).

- :func:`newton`: x <- x - (J / beta)^{-1} (b / beta) until the step is below ``tol (1 + |x|)``
  (dense: the eigen-decomposition, computed once per linearisation and reused for the spectrum;
  matrix-free: inexact Newton with MINRES to ``MINRES_TOL``, J being symmetric and indefinite past t_c,
  preconditioned by the previous point's top eigenpairs and the bulk eigenvalue a = -f/beta - c/sigma^2).
  Newton converges to unstable fixed points as readily as to stable ones.
- :func:`top_eigen`: the top k eigenpairs of J / beta (dense ``eigh``; matrix-free a block LOBPCG
  warm-started from the previous point's eigenvectors, one data pass per block product, with Lanczos,
  ``eigsh``, as the fallback).
- :func:`follow`: the adaptive continuation (predictor: secant in logsnr; corrector: Newton; step
  halving on a failed or too large step, growth on easy ones; at a fold, a restart on the attractor
  the flow falls into, as a new segment). Every point records the round-off level of its margin
  (``noise``) for the event detector of :mod:`.critical`.
"""
from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import (
    ArpackNoConvergence,
    LinearOperator,
    eigsh,
    lobpcg,
    minres,
)
from threadpoolctl import threadpool_limits

from .drifts import Drift, Linearisation, Noise

Array = NDArray[np.float64]
EIGSH_TOL = 1e-12
MINRES_TOL = 1e-9       # inexact Newton: the step converges linearly at this rate on top of the quadratic rate
SINGLE_TOL = 1e-5       # ... with single-precision products (float32 data): above their round-off
LOBPCG_TOL = 1e-6      # residual |A v - lam v| / scale of a warm-started block eigenpair (its eigenvalue
                       # is then within r^2 / gap, ~1e-12 scale^2 / gap: recorded as the margin's noise)
LOBPCG_ITER = 40
SINGLE_EIG_TOL = 1e-5  # residual / scale of the block iteration on single-precision products
RITZ_TOL = 1e-4        # exact residual / scale accepted after a single-precision block iteration (eigenvalue
                       # error r^2 / gap ~ 1e-8 scale^2 / gap, recorded as the margin's noise)
THETA_MAX = 0.1        # Newton's observed contraction below which the remaining error is bounded a posteriori
FOLD_REACH = 10.0      # a fold extrapolated within this many smallest steps ends the segment
GUARD = 3              # extra block vectors (seeded) that catch an eigenvalue rising from the bulk
SERIAL_DIM = 256   # dense linearisations up to this d run BLAS on one thread


def serial_blas(drift: Drift) -> AbstractContextManager:
    """One BLAS thread while following a matrix-free drift (memory-bound products) or a dense one of
    d <= ``SERIAL_DIM``: a 64 x 64 eigh and a 1797 x 64 x 64 GEMM take ~1 ms on one thread but 20-30x
    longer when OpenBLAS threads spin against other processes on a loaded machine (measured on 2 shared
    cores); larger dense problems (a d^3 eigh) keep the library's threads."""
    small = getattr(drift, "matrix_free", False) or drift.dim <= SERIAL_DIM
    return threadpool_limits(1, user_api="blas") if small else nullcontext()


@dataclass(frozen=True)
class NewtonResult:
    """A Newton solve of b(x, t) = 0: the point, the top eigenpairs of J / beta there (eigenvalues
    descending, eigenvectors as columns; every one on the dense route), the iterations, whether the
    step fell below tol, the residual max|b| / beta and the round-off level ``noise`` of the margin."""

    x: Array
    eigenvalues_over_beta: Array
    eigenvectors: Array
    iterations: int
    converged: bool
    residual: float = 0.0
    noise: float = 0.0

    @property
    def stable(self) -> bool:
        return bool(self.eigenvalues_over_beta[0] < 0)


def top_eigen(lin: Linearisation, k: int | None = None,
              start: Array | None = None) -> tuple[Array, Array, float]:
    """Top ``k`` (dense: all when None) eigenpairs of J / beta, descending, and the error bound of the
    top eigenvalue (0 for ``eigh``, ``EIGSH_TOL`` scale for Lanczos). Matrix-free: with ``start`` (d, m),
    the previous point's eigenvectors, a block LOBPCG (Knyazev 2001) from them plus ``GUARD`` seeded
    vectors, each iteration one pass over the data for the whole block (on the single-precision
    products ``approx`` when there are some, the block then refined by one float64 Rayleigh-Ritz pass);
    Lanczos (``eigsh``, from a seeded start vector: the same numbers on every run) when there is no
    start or the block has not converged."""
    if lin.dense is not None:
        w, v = lin.eigh
        return ((w, v) if k is None else (w[:k], v[:, :k])) + (0.0,)
    d = lin.b.shape[0]
    kk = min(k or 1, d - 1)
    found = None if start is None else _block_eigen(lin, kk, start)
    if found is not None:
        return found
    op = LinearOperator((d, d), matvec=lin.matvec, matmat=lin.matvec, dtype=np.float64)
    try:
        w, v = eigsh(op, kk, which="LA", tol=EIGSH_TOL,
                     v0=np.random.default_rng(0).standard_normal(d) if start is None else start[:, 0])
    except ArpackNoConvergence as err:
        w, v = err.eigenvalues, err.eigenvectors
    order = np.argsort(w)[::-1]
    return w[order], v[:, order], EIGSH_TOL * lin.scale


def _block_eigen(lin: Linearisation, k: int, start: Array) -> tuple[Array, Array, float] | None:
    """The top k eigenpairs by LOBPCG from ``start`` (on ``lin.approx`` when set, to ``SINGLE_EIG_TOL``,
    else on the exact products to ``LOBPCG_TOL``), then Rayleigh-Ritz on the block with one exact pass
    (:func:`_ritz`); None unless every exact residual is below ``LOBPCG_TOL`` (``RITZ_TOL`` after a
    single-precision iteration) times ``scale``, or when the block is too large for the dimension."""
    d = lin.b.shape[0]
    m = k + GUARD
    if 5 * m > d:
        return None
    rng = np.random.default_rng(0)
    cols = start[:, :k]
    block = np.column_stack([cols, rng.standard_normal((d, m - cols.shape[1]))])
    product = lin.approx or lin.matvec
    op = LinearOperator((d, d), matvec=product, matmat=product, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, v = lobpcg(op, block, tol=(SINGLE_EIG_TOL if lin.approx else LOBPCG_TOL) * lin.scale,
                          maxiter=LOBPCG_ITER, largest=True)
        except ValueError:     # a start block that is linearly dependent: Lanczos instead
            return None
    w, v, residual, gap = _ritz(lin.matvec, v)
    if not (residual[:k] <= (RITZ_TOL if lin.approx else LOBPCG_TOL) * lin.scale).all():
        return None
    return w[:k], v[:, :k], float(residual[0] ** 2 / max(gap, LOBPCG_TOL * lin.scale)) + EIGSH_TOL * lin.scale


def _ritz(matvec, block: Array) -> tuple[Array, Array, Array, float]:
    """Rayleigh-Ritz on span(``block``) with one (exact) block product: Ritz values descending, their
    vectors, residual norms |A x - theta x| and the gap of the top Ritz value to the next; its error is
    at most r^2 / gap (Kato-Temple, Parlett 1998 Sec. 10.2), quadratic in the residual, so a block
    converged on single-precision products gives float64-accurate eigenvalues after this pass."""
    q, _ = np.linalg.qr(block)
    aq = matvec(q)
    theta, c = np.linalg.eigh(0.5 * (q.T @ aq + aq.T @ q))
    theta, c = theta[::-1], c[:, ::-1]
    x = q @ c
    residual = np.linalg.norm(aq @ c - x * theta, axis=0)
    return theta, x, residual, float(theta[0] - theta[1])


def _solve(lin: Linearisation, basis: tuple[Array, Array] | None, x_norm: float) -> Array:
    """The Newton step dx with (J / beta) dx = -b / beta. Dense: in the eigenbasis, leaving out the
    components of b at its round-off level (``noise (1 + |x|)``): along a nearly singular direction
    (at a perfect pitchfork's crossing) they would turn round-off into a step. A drift with its own
    (non-symmetric) ``solve`` uses it."""
    if lin.solve is not None:
        return lin.solve(-lin.b)
    if lin.dense is not None:
        w, v = lin.eigh
        coef = v.T @ lin.b
        coef[np.abs(coef) <= lin.noise * (1.0 + x_norm)] = 0.0
        return -v @ (coef / np.where(w == 0.0, np.inf, w))
    d = lin.b.shape[0]
    op = LinearOperator((d, d), matvec=lin.approx or lin.matvec, dtype=np.float64)
    precond = None
    if basis is not None and lin.shift is not None and lin.shift != 0:
        lam, vec = basis
        inv = 1.0 / np.maximum(np.abs(lam), 1e-3 * abs(lin.shift))

        def apply(r: Array) -> Array:
            c = vec.T @ r
            return (r - vec @ c) / abs(lin.shift) + vec @ (inv * c)
        precond = LinearOperator((d, d), matvec=apply, dtype=np.float64)
    rtol = MINRES_TOL if lin.approx is None else SINGLE_TOL
    dx, _ = minres(op, -lin.b, M=precond, rtol=rtol, maxiter=10 * d)
    return dx


def newton(drift: Drift, x0: Array, logsnr: float, *, k: int | None = 5, tol: float | None = None,
           max_iter: int = 30, basis: tuple[Array, Array] | None = None) -> NewtonResult:
    """Solve b(x) = 0 at ``logsnr`` from x0 (module docstring) to a step below ``tol`` (default the
    drift's ``newton_tol``) times 1 + |x|; ``basis`` (eigenvalues, eigenvectors) of a nearby point
    preconditions the matrix-free steps and warm-starts Lanczos.

    Stopping: when the step is below tol, or when the contraction theta = |dx_k| / |dx_(k-1)| of the
    last two steps is at most ``THETA_MAX`` and the error left after taking dx_k, at most
    theta / (1 - theta) |dx_k| (Deuflhard 2004, Sec. 2.1), is below tol; the point x_k + dx_k is then
    linearised once for its spectrum without another linear solve."""
    tol = drift.newton_tol if tol is None else tol
    x, previous = np.array(x0, dtype=np.float64), 0.0
    for it in range(1, max_iter + 1):
        lin = drift.linearise(x, logsnr)
        dx = _solve(lin, basis, float(np.linalg.norm(x)))
        if not np.isfinite(dx).all():
            break
        step, bound = float(np.linalg.norm(dx)), tol * (1.0 + np.linalg.norm(x))
        if step <= bound:
            return _result(lin, x, k, basis, it, True)
        if it == max_iter:
            break
        theta = step / previous if it > 1 else np.inf
        x, previous = x + dx, step
        if theta <= THETA_MAX and theta / (1.0 - theta) * step <= bound:
            return _result(drift.linearise(x, logsnr), x, k, basis, it + 1, True)
    return _result(lin, x, k, basis, max_iter, False)


def _result(lin: Linearisation, x: Array, k: int | None, basis, it: int, converged: bool) -> NewtonResult:
    w, v, error = top_eigen(lin, k, None if basis is None else basis[1])
    noise = lin.noise + error
    return NewtonResult(x, w, v, it, converged, float(np.abs(lin.b).max()), float(noise))


# ---------------------------------------------------------------------------------------------
# the branch
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BranchPoint:
    """A fixed point on a branch: logsnr, t, x, the top eigenpairs of J / beta (descending), the top
    eigenvalue of hess log p_t there (its sign change marks t_h), Newton's iterations and the
    round-off level of the margin."""

    logsnr: float
    t: float
    x: Array
    eigenvalues: Array
    eigenvectors: Array
    hessian_top: float
    iterations: int
    noise: float = 0.0


def branch_point(drift: Drift, logsnr: float, x_guess: Array, *, k: int | None = 5, max_iter: int = 30,
                 basis: tuple[Array, Array] | None = None) -> BranchPoint | None:
    """Newton from ``x_guess`` at ``logsnr``; None if it does not converge within ``max_iter``."""
    res = newton(drift, x_guess, logsnr, k=k, max_iter=max_iter, basis=basis)
    if not res.converged:
        return None
    n = Noise.at(drift.schedule, drift.dynamics, logsnr)
    # J / beta = -f / beta I + c hess  =>  top eigenvalue of hess = (top of J / beta + f / beta) / c
    h_top = (res.eigenvalues_over_beta[0] + n.f_over_beta) / n.c
    return BranchPoint(float(logsnr), n.t, res.x, res.eigenvalues_over_beta, res.eigenvectors, float(h_top),
                       res.iterations, res.noise)


@dataclass(frozen=True)
class Branch:
    """A branch of fixed points followed from t = T towards 0, sampled at increasing logsnr.

    ``eigenvalues`` (n, k): the top k eigenvalues of J / beta, descending (column 0 is the margin);
    ``eigenvector`` (n, d): the eigenvector of the top one; ``hessian_top`` (n,): the top eigenvalue of
    hess log p_t; ``noise`` (n,): the round-off level of the margin; ``segment`` (n,): 0 on the branch
    through the start, +1 after each fold, where the followed branch ended and the continuation
    restarted on the attractor the flow falls into; ``status``: 'complete', or why the continuation
    stopped before ``t_end``. ``drift`` is what was followed (its ``model`` for exact data).
    """

    drift: Drift = field(repr=False)
    logsnr: Array
    t: Array
    x: Array = field(repr=False)
    eigenvalues: Array = field(repr=False)
    eigenvector: Array = field(repr=False)
    hessian_top: Array = field(repr=False)
    segment: Array = field(repr=False)
    status: str
    noise: Array = field(repr=False, default=None)

    @property
    def schedule(self):
        return self.drift.schedule

    @property
    def dynamics(self) -> str:
        return self.drift.dynamics

    @property
    def model(self):
        """The data model of an exact drift (None for a network)."""
        return getattr(self.drift, "model", None)

    @property
    def margin(self) -> Array:
        """Top eigenvalue of J / beta along the branch: < 0 stable, > 0 unstable."""
        return self.eigenvalues[:, 0]

    @property
    def alpha(self) -> Array:
        return self.schedule.alpha(self.t)

    @property
    def folds(self) -> NDArray[np.int64]:
        """Indices of the last point of every segment that ended in a fold."""
        return np.flatnonzero(np.diff(self.segment) != 0)

    def point_at(self, logsnr: float) -> BranchPoint | None:
        """The branch point at ``logsnr`` between two samples of one segment, by Newton from their
        linear interpolation; None if Newton does not converge."""
        s = self.logsnr
        j = int(np.searchsorted(s, logsnr, side="right")) - 1
        if 0 <= j < len(s) and logsnr == s[j]:
            guess = self.x[j]
        elif 0 <= j < len(s) - 1 and self.segment[j] == self.segment[j + 1]:
            w = (logsnr - s[j]) / (s[j + 1] - s[j])
            guess = (1.0 - w) * self.x[j] + w * self.x[j + 1]
        else:
            raise ValueError(f"logsnr: {logsnr} is not between two samples of one segment of the branch")
        j = min(max(j, 0), len(s) - 1)
        basis = (self.eigenvalues[j, :1], self.eigenvector[j][:, None])
        return branch_point(self.drift, float(logsnr), guess, k=self.eigenvalues.shape[1], basis=basis)

    def to_pandas(self):
        """One row per branch point: t, alpha, sigma, tau, logsnr, step (discrete schedules), segment,
        margin, the top eigenvalues lam_1..lam_k of J / beta, hessian_top and |x|."""
        import pandas as pd

        cols = {"t": self.t, "alpha": self.alpha, "sigma": self.schedule.sigma(self.t),
                "tau": self.schedule.tau(self.t), "logsnr": self.logsnr}
        if self.schedule.discrete:
            cols["step"] = self.schedule.step_of_t(self.t)
        cols["segment"] = self.segment
        cols["margin"] = self.margin
        cols.update({f"lam_{i + 1}": self.eigenvalues[:, i] for i in range(self.eigenvalues.shape[1])})
        cols["hessian_top"] = self.hessian_top
        cols["x_norm"] = np.linalg.norm(self.x, axis=1)
        return pd.DataFrame(cols)


def attractor(drift: Drift, logsnr: float, x: Array, k: int, rounds: int = 40,
              relax: int = 25) -> BranchPoint | None:
    """The stable fixed point the flow carries ``x`` to at ``logsnr``: relaxation x <- x - (b / beta) / a
    (a = the bulk eigenvalue; for exact data this is the fixed-point map x <- k y_hat(x), which
    converges to stable points only), polished by Newton after every ``relax`` steps; None if no
    stable point is reached."""
    shift = drift.linearise(x, logsnr).shift
    if not shift or shift >= 0:
        return None
    for _ in range(rounds):
        for _ in range(relax):
            x = x - drift.b(x, logsnr) / shift
        p = branch_point(drift, logsnr, x, k=k, max_iter=12)
        if p is not None and p.eigenvalues[0] < 0 and np.linalg.norm(p.x - x) < 0.05 * (1 + np.linalg.norm(x)):
            return p
    return None


def follow(drift: Drift, s0: float, s1: float, x0: Array, *, k: int = 5, n_initial: int = 100,
           max_dmargin: float = 0.05, max_rel: float = 0.5, max_dx: float = 0.05, min_step: float = 1e-7,
           fold_margin: float = 1e-2) -> Branch:
    """Follow the fixed-point branch through x0 from logsnr ``s0`` up to ``s1`` (see
    :func:`.fixedpoints.follow_branch` for the step control and the fold restarts)."""
    first = branch_point(drift, s0, x0, k=k)
    if first is None:
        raise ValueError(f"x0: Newton did not converge to a fixed point at logsnr = {s0:g}")
    pts, segment = [first], [0]
    span = s1 - s0
    ds, ds_max = span / n_initial, span / 20.0
    status = "complete"
    while pts[-1].logsnr < s1:
        prev = pts[-1]
        h = min(ds, s1 - prev.logsnr)
        s_new = s1 if h == s1 - prev.logsnr else prev.logsnr + h
        same = len(pts) > 1 and segment[-2] == segment[-1]
        pred = prev.x + (prev.x - pts[-2].x) * h / (prev.logsnr - pts[-2].logsnr) if same else prev.x
        p = branch_point(drift, s_new, pred, k=k, max_iter=12, basis=(prev.eigenvalues, prev.eigenvectors))
        ok, easy = _accept(p, prev, pred, k, max_dx, max_dmargin, max_rel)
        if ok:
            pts.append(p)
            segment.append(segment[-1])
            ds = min(1.5 * h, ds_max) if easy else ds
            continue
        ds = h / 2.0
        if ds >= min_step * span:
            continue
        restart = None
        if -fold_margin < prev.eigenvalues[0] <= 0 or _fold_ahead(pts, segment, FOLD_REACH * min_step * span):
            restart = attractor(drift, min(prev.logsnr + 1e-4 * span, s1), prev.x, k)
        if restart is None:
            status = (f"stopped at logsnr = {prev.logsnr:.6g} (t = {prev.t:.6g}): Newton continuation "
                      f"lost the branch (margin {prev.eigenvalues[0]:.3g})")
            break
        pts.append(restart)
        segment.append(segment[-1] + 1)
        ds = span / n_initial
    return _branch(drift, pts, segment, status, k)


def _fold_ahead(pts: list[BranchPoint], segment: list[int], reach: float) -> bool:
    """Whether the last two points of one segment approach a saddle-node within ``reach`` in logsnr:
    near a fold the margin m vanishes like sqrt(s_f - s), so m^2 is linear in s and its extrapolation
    from the last two (negative, rising) margins puts the fold at s_f = s_2 + m_2^2 / K,
    K = (m_1^2 - m_2^2) / (s_2 - s_1) (a steep fold can stay outside ``fold_margin`` of zero down to the
    smallest step)."""
    if len(pts) < 2 or segment[-1] != segment[-2]:
        return False
    (s1, m1), (s2, m2) = ((p.logsnr, float(p.eigenvalues[0])) for p in pts[-2:])
    if not m1 < m2 < 0:
        return False
    k = (m1 * m1 - m2 * m2) / (s2 - s1)
    return m2 * m2 / k <= reach


def _accept(p: BranchPoint | None, prev: BranchPoint, pred: Array, k: int, max_dx: float, max_dmargin: float,
            max_rel: float) -> tuple[bool, bool]:
    """(accept the step, it was easy): Newton converged, landed within ``max_dx (1 + |x|)`` of the
    prediction, and no eigenvalue lam moved by more than max(``max_dmargin``, ``max_rel`` (|lam| - 1))."""
    if p is None:
        return False, False
    jump = np.linalg.norm(p.x - pred) / (1.0 + np.linalg.norm(prev.x))
    kk = min(k, len(p.eigenvalues), len(prev.eigenvalues))
    allowed = np.maximum(max_dmargin, max_rel * (np.abs(prev.eigenvalues[:kk]) - 1.0))
    dlam = float((np.abs(p.eigenvalues[:kk] - prev.eigenvalues[:kk]) / allowed).max())
    ok = jump <= max_dx and dlam <= 1.0
    return ok, ok and p.iterations <= 4 and jump <= max_dx / 4 and dlam <= 0.25


def _branch(drift: Drift, pts: list[BranchPoint], segment: list[int], status: str, k: int) -> Branch:
    kk = min(k, min(len(p.eigenvalues) for p in pts))
    return Branch(drift, logsnr=np.array([p.logsnr for p in pts]), t=np.array([p.t for p in pts]),
                  x=np.stack([p.x for p in pts]), eigenvalues=np.stack([p.eigenvalues[:kk] for p in pts]),
                  eigenvector=np.stack([p.eigenvectors[:, 0] for p in pts]),
                  hessian_top=np.array([p.hessian_top for p in pts]), segment=np.array(segment),
                  status=status, noise=np.array([p.noise for p in pts]))
