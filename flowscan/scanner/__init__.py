r"""Likelihoods, optimizers and statistics for parameter scans."""

from .errors import covariance
from .gradient import gradient_scan
from .likelihood import Density, MixtureLikelihood
from .result import ScanResult

__all__ = ["Density", "covariance", "MixtureLikelihood", "ScanResult", "gradient_scan"]
