r"""Data generators and loaders."""

from .breit_wigner import MASS, BreitWigner, Exponential, pseudo_data, training_set

__all__ = ["MASS", "BreitWigner", "Exponential", "pseudo_data", "training_set"]
