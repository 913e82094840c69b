r"""Data generators and loaders."""

from . import lhco
from .bootstrap import Bootstrap
from .breit_wigner import MASS, BreitWigner, Exponential, pseudo_data, training_set
from .tables import read_events

__all__ = [
    "MASS",
    "Bootstrap",
    "BreitWigner",
    "Exponential",
    "lhco",
    "pseudo_data",
    "read_events",
    "training_set",
]
