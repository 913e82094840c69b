r"""Likelihoods, optimizers and statistics for parameter scans."""

from .bayesopt import bayesopt_scan
from .errors import covariance, error_scale_hessian
from .gradient import gradient_scan
from .hypotest import Discovery, discovery
from .likelihood import Density, MixtureLikelihood
from .minuit import MinuitCost, minuit_scan
from .profile import ProfileResult, conditional_minimum, profile_likelihood, wilks_threshold
from .result import ScanResult
from .sampling import grid_scan, random_scan
from .space import ParameterSpace

__all__ = [
    "Density",
    "Discovery",
    "MinuitCost",
    "MixtureLikelihood",
    "ParameterSpace",
    "ProfileResult",
    "ScanResult",
    "bayesopt_scan",
    "conditional_minimum",
    "covariance",
    "discovery",
    "error_scale_hessian",
    "gradient_scan",
    "grid_scan",
    "minuit_scan",
    "profile_likelihood",
    "random_scan",
    "wilks_threshold",
]
