r"""Statistics on a fitted likelihood: profiles, hypothesis tests, CLs limits (with the
Asimov dataset), pseudo-experiments, the global significance (look-elsewhere effect),
the pulls and impacts of nuisance parameters, and the expected signal yield as a
function of theta."""

from .asimov import asimov
from .hypotest import Discovery, discovery
from .impacts import pulls_and_impacts
from .limits import SIGMAS, UpperLimit, cls_asymptotic, cls_expected, upper_limit, upper_limit_toys
from .look_elsewhere import (
    GlobalSignificance,
    GrossVitells,
    checked_grid,
    euler_characteristic,
    global_significance,
    gross_vitells,
    q0_field,
    upcrossings,
)
from .profile import ProfileResult, conditional_minimum, profile_likelihood, wilks_threshold
from .pseudo_experiments import (
    PseudoExperiments,
    check_truth,
    coverage,
    pseudo_dataset,
    pseudo_experiments,
    toy_seed,
)
from .rate import CrossSection, Efficiency, SignalRate

__all__ = [
    "SIGMAS",
    "CrossSection",
    "Efficiency",
    "SignalRate",
    "Discovery",
    "GlobalSignificance",
    "GrossVitells",
    "ProfileResult",
    "PseudoExperiments",
    "UpperLimit",
    "asimov",
    "check_truth",
    "checked_grid",
    "cls_asymptotic",
    "cls_expected",
    "conditional_minimum",
    "coverage",
    "discovery",
    "euler_characteristic",
    "global_significance",
    "gross_vitells",
    "profile_likelihood",
    "pseudo_dataset",
    "pseudo_experiments",
    "pulls_and_impacts",
    "q0_field",
    "toy_seed",
    "upcrossings",
    "upper_limit",
    "upper_limit_toys",
    "wilks_threshold",
]
