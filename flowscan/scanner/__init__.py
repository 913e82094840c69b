r"""Fitting: the unbinned likelihood, its parameter space, the global search, the
optimizers, one `fit` that puts them together, and their results."""

from .bayesopt import bayesopt_scan
from .fitting import (
    LOCAL,
    METHODS,
    FitSettings,
    compare_methods,
    fit,
    fit_methods,
    parse_option,
)
from .gradient import gradient_scan
from .hs3 import check_writable, read_likelihood, write_likelihood, write_points
from .likelihood import Density, MixtureLikelihood, check_model_pair
from .minuit import MinuitCost, minuit_scan
from .model_error import model_errors
from .result import DISTINCT_NLL, FAILURES, STATUSES, ScanResult, fit_status, model_warning
from .sampling import grid_scan, random_scan
from .search import Search, global_search
from .space import ParameterSpace
from .uncertainties import covariance, curvature_errors, error_scale_hessian, sandwich

__all__ = [
    "DISTINCT_NLL",
    "FAILURES",
    "LOCAL",
    "METHODS",
    "STATUSES",
    "Density",
    "FitSettings",
    "MinuitCost",
    "MixtureLikelihood",
    "ParameterSpace",
    "ScanResult",
    "Search",
    "bayesopt_scan",
    "check_model_pair",
    "check_writable",
    "compare_methods",
    "covariance",
    "curvature_errors",
    "error_scale_hessian",
    "fit",
    "fit_methods",
    "fit_status",
    "gradient_scan",
    "grid_scan",
    "minuit_scan",
    "model_errors",
    "model_warning",
    "parse_option",
    "random_scan",
    "read_likelihood",
    "global_search",
    "sandwich",
    "write_likelihood",
    "write_points",
]
