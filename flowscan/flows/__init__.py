r"""Density models: conditional normalizing flows, their preprocessing and training."""

from .model import FLOWS, DensityModel
from .preprocessing import BoundedStandardize
from .training import train

__all__ = ["FLOWS", "BoundedStandardize", "DensityModel", "train"]
