r"""Likelihoods, optimizers and statistics for parameter scans."""

from .bayesopt import bayesopt_scan
from .errors import covariance, error_scale_hessian
from .gradient import gradient_scan
from .hypotest import Discovery, discovery
from .likelihood import Density, MixtureLikelihood, check_model_pair
from .limits import (
    SIGMAS,
    UpperLimit,
    asimov,
    cls_asymptotic,
    cls_expected,
    upper_limit,
    upper_limit_toys,
)
from .minuit import MinuitCost, minuit_scan
from .profile import ProfileResult, conditional_minimum, profile_likelihood, wilks_threshold
from .pseudo_experiments import (
    PseudoExperiments,
    Sampler,
    check_truth,
    coverage,
    pseudo_dataset,
    pseudo_experiments,
    toy_seed,
)
from .result import STATUSES, ScanResult, fit_status
from .sampling import grid_scan, random_scan
from .space import ParameterSpace

__all__ = [
    "Density",
    "Discovery",
    "MinuitCost",
    "MixtureLikelihood",
    "ParameterSpace",
    "ProfileResult",
    "PseudoExperiments",
    "SIGMAS",
    "STATUSES",
    "Sampler",
    "ScanResult",
    "UpperLimit",
    "asimov",
    "bayesopt_scan",
    "check_model_pair",
    "check_truth",
    "cls_asymptotic",
    "cls_expected",
    "conditional_minimum",
    "covariance",
    "coverage",
    "discovery",
    "error_scale_hessian",
    "fit_status",
    "gradient_scan",
    "grid_scan",
    "minuit_scan",
    "profile_likelihood",
    "pseudo_dataset",
    "pseudo_experiments",
    "random_scan",
    "toy_seed",
    "upper_limit",
    "upper_limit_toys",
    "wilks_threshold",
]
