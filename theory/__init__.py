"""Analytic theory of symmetry breaking (numpy/scipy/sympy, float64, no torch)."""
from .datamodels import DataModel, EmpiricalData, Gaussian, GaussianMixture, Posterior, SymmetricDeltas
from .dynamics import drift, jacobian, normalised_jacobian_eigenvalues, potential
from .schedules import VE, DiscreteDDPM, Schedule, VPCosine, VPLinear, get_schedule, schedule_from_config

__all__ = [
    "DataModel", "EmpiricalData", "Gaussian", "GaussianMixture", "Posterior", "SymmetricDeltas",
    "drift", "jacobian", "normalised_jacobian_eigenvalues", "potential",
    "VE", "DiscreteDDPM", "Schedule", "VPCosine", "VPLinear", "get_schedule", "schedule_from_config",
]
