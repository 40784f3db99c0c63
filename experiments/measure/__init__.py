"""Measurements on any Denoiser, in modules: ``drift`` (the learned drift and its Jacobian), ``spectrum``
(Jacobian spectra), ``fixed_points`` (Newton, and ``NetworkDrift``: a network as the drift of theory's continuation
engine), ``branch`` (the central branch followed in t), ``trajectories``
(commitment and cloning) and ``arc`` (the potential along an arc). The first four are re-exported here."""
from symbreak.experiments.measure.branch import BranchMeasurement, follow_central_branch, logsnr_grid
from symbreak.experiments.measure.drift import JacobianProducts, LearnedDrift, drift, drift_jacobian, flat_points
from symbreak.experiments.measure.fixed_points import FixedPointSolve, NetworkDrift, newton_fixed_point
from symbreak.experiments.measure.spectrum import JacobianSpectrum, LanczosResult, jacobian_spectrum, lanczos

__all__ = ["BranchMeasurement", "FixedPointSolve", "JacobianProducts", "JacobianSpectrum", "LanczosResult",
           "LearnedDrift", "NetworkDrift", "drift", "drift_jacobian", "flat_points", "follow_central_branch",
           "jacobian_spectrum", "lanczos", "logsnr_grid", "newton_fixed_point"]
