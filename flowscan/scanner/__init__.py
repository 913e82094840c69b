r"""Fitting: the unbinned likelihood, its parameter space, the optimizers and their
results."""

from .bayesopt import bayesopt_scan
from .gradient import default_starts, gradient_scan
from .likelihood import Density, MixtureLikelihood, check_model_pair
from .methods import METHODS, optimizer
from .minuit import MinuitCost, minuit_scan
from .model_error import model_errors
from .result import STATUSES, ScanResult, fit_status, model_warning
from .sampling import grid_scan, random_scan
from .space import ParameterSpace
from .uncertainties import covariance, error_scale_hessian

__all__ = [
    "METHODS",
    "STATUSES",
    "Density",
    "MinuitCost",
    "MixtureLikelihood",
    "ParameterSpace",
    "ScanResult",
    "bayesopt_scan",
    "check_model_pair",
    "covariance",
    "default_starts",
    "error_scale_hessian",
    "fit_status",
    "gradient_scan",
    "grid_scan",
    "minuit_scan",
    "model_errors",
    "model_warning",
    "optimizer",
    "random_scan",
]
