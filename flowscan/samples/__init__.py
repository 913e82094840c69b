r"""Where events come from: the Breit-Wigner toy's exact densities, the many-parameter
resonance toy, the fast LHCO-style generator, Pythia 8 + FastJet simulation, bootstrap
resampling, reweighted samples, and the registry that names them for the commands."""

from . import lhco, resonances
from .bootstrap import Bootstrap
from .breit_wigner import MASS, BreitWigner, Exponential, pseudo_data, training_set
from .registry import (
    GENERATORS,
    SAMPLERS,
    SCALE_MAPS,
    SCALES,
    Sampler,
    Samplers,
    samplers,
    training_events,
)
from .reweighting import reweighted

__all__ = [
    "GENERATORS",
    "MASS",
    "SAMPLERS",
    "SCALES",
    "SCALE_MAPS",
    "Bootstrap",
    "BreitWigner",
    "Exponential",
    "Sampler",
    "Samplers",
    "lhco",
    "pseudo_data",
    "resonances",
    "reweighted",
    "samplers",
    "training_events",
    "training_set",
]
