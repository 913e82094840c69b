r"""Density models: conditional normalizing flows, their preprocessing, training and
validation metrics."""

from .metrics import (
    Metric,
    classifier_auc,
    compare,
    correlation_distance,
    hpdi,
    hpdi_error,
    ks_test,
    sliced_wasserstein,
)
from .model import FLOWS, DensityModel, check_trained_range, torch_device
from .preprocessing import BoundedStandardize
from .training import train

__all__ = [
    "FLOWS",
    "BoundedStandardize",
    "DensityModel",
    "Metric",
    "classifier_auc",
    "check_trained_range",
    "compare",
    "correlation_distance",
    "hpdi",
    "hpdi_error",
    "ks_test",
    "sliced_wasserstein",
    "torch_device",
    "train",
]
