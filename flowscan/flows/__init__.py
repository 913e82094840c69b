r"""Density models: conditional normalizing flows and Gaussian mixtures, their
architecture, preprocessing and training, ensembles of them, and their export as ONNX
graphs."""

from .architecture import FLOWS, PREPROCESSING, Architecture
from .ensemble import DensityEnsemble, load_model, train_ensemble
from .export import evaluate_onnx, export_onnx
from .fixed import FixedEnsemble, FixedEvents, FixedMembers
from .model import DensityModel, check_trained_range, model_device, torch_device
from .preprocessing import BoundedStandardize
from .scaled import Scale, Scaled, parse_scale
from .training import train

__all__ = [
    "FLOWS",
    "PREPROCESSING",
    "Scale",
    "Scaled",
    "Architecture",
    "BoundedStandardize",
    "DensityEnsemble",
    "FixedEnsemble",
    "FixedEvents",
    "FixedMembers",
    "DensityModel",
    "check_trained_range",
    "evaluate_onnx",
    "export_onnx",
    "model_device",
    "torch_device",
    "load_model",
    "parse_scale",
    "train",
    "train_ensemble",
]
