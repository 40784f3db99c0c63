"""Measurements on any Denoiser: the learned drift and its Jacobian spectrum, fixed points, the central
branch, trajectories and commitment, cloning, the potential along an arc."""
from symbreak.experiments.measure.branch import BranchMeasurement, follow_central_branch, logsnr_grid
from symbreak.experiments.measure.drift import LearnedDrift, Linearisation, drift, drift_jacobian, flat_points
from symbreak.experiments.measure.fixed_points import FixedPointSolve, newton_fixed_point
from symbreak.experiments.measure.spectrum import LanczosResult, Spectrum, jacobian_spectrum, lanczos

__all__ = ["BranchMeasurement", "FixedPointSolve", "LanczosResult", "LearnedDrift", "Linearisation", "Spectrum",
           "drift", "drift_jacobian", "flat_points", "follow_central_branch", "jacobian_spectrum", "lanczos",
           "logsnr_grid", "newton_fixed_point"]
