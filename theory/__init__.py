"""Analytic theory of symmetry breaking (numpy/scipy/sympy, float64, no torch)."""
from .biroli import (cloning_probability, cloning_probability_at, collapse_logsnr, collapse_tau_two_gaussians,
                     speciation_logsnr, speciation_tau)
from .critical import (CriticalTime, CriticalTimes, Event, critical_times, gaussian_critical_times, gaussian_hessian,
                       gaussian_margin)
from .datamodels import DataModel, EmpiricalData, Gaussian, GaussianMixture, Posterior, SymmetricDeltas
from .dynamics import drift, jacobian, normalised_jacobian_eigenvalues, potential
from .fixedpoints import (Branch, BranchPoint, FixedPoint, FixedPoints, NewtonResult, drift_and_jacobian,
                          fixed_point_iteration, fixed_points_1d, follow_branch, newton_fixed_point)
from .schedules import VE, DiscreteDDPM, Schedule, VPCosine, VPLinear, get_schedule, schedule_from_config

__all__ = [
    "cloning_probability", "cloning_probability_at", "collapse_logsnr", "collapse_tau_two_gaussians",
    "speciation_logsnr", "speciation_tau",
    "CriticalTime", "CriticalTimes", "Event", "critical_times", "gaussian_critical_times", "gaussian_hessian",
    "gaussian_margin",
    "Branch", "BranchPoint", "FixedPoint", "FixedPoints", "NewtonResult", "drift_and_jacobian",
    "fixed_point_iteration", "fixed_points_1d", "follow_branch", "newton_fixed_point",
    "DataModel", "EmpiricalData", "Gaussian", "GaussianMixture", "Posterior", "SymmetricDeltas",
    "drift", "jacobian", "normalised_jacobian_eigenvalues", "potential",
    "VE", "DiscreteDDPM", "Schedule", "VPCosine", "VPLinear", "get_schedule", "schedule_from_config",
]

from .bifurcation import CountChange, FixedPointDiagram, count_change, fixed_point_diagram  # noqa: E402

__all__ += ["CountChange", "FixedPointDiagram", "count_change", "fixed_point_diagram"]
