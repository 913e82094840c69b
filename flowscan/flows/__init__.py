r"""Density models: conditional normalizing flows and Gaussian mixtures, their
architecture, preprocessing and training."""

from .architecture import FLOWS, PREPROCESSING, Architecture
from .fixed import FixedEvents
from .model import DensityModel, check_trained_range, torch_device
from .preprocessing import BoundedStandardize
from .training import train

__all__ = [
    "FLOWS",
    "PREPROCESSING",
    "Architecture",
    "BoundedStandardize",
    "FixedEvents",
    "DensityModel",
    "check_trained_range",
    "torch_device",
    "train",
]
