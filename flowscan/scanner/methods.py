r"""The optimizers by name, with the settings `flowscan scan` gives them."""

from __future__ import annotations

__all__ = ["METHODS", "optimizer"]

from collections.abc import Callable

from ..exceptions import InputError
from .bayesopt import bayesopt_scan
from .gradient import gradient_scan
from .likelihood import MixtureLikelihood
from .minuit import minuit_scan
from .result import ScanResult
from .sampling import grid_scan, random_scan
from .space import ParameterSpace

METHODS = ("minuit", "gradient", "bayesopt", "grid", "random")


def optimizer(
    method: str,
    budget: int = 64,
    grid: int = 11,
    *,
    minos: bool = False,
    profiles: bool = False,
    seed: int = 0,
) -> Callable[[MixtureLikelihood, ParameterSpace], ScanResult]:
    r"""The optimizer `method` (one of `METHODS`) as a function of the likelihood and
    the parameter space. `budget`: evaluations of `bayesopt` and `random`; `grid`:
    points per parameter; `minos`, `profiles`: for `minuit`, which starts MIGRAD from the
    best of 16 Sobol points and the start; `seed`: of the Sobol points of `minuit` and
    `gradient`, of `bayesopt` and of `random`.

    Example:
        >>> optimizer("grid", grid=5).__name__
        'grid'
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {list(METHODS)} or 'all'")

    def fit(nll: MixtureLikelihood, space: ParameterSpace) -> ScanResult:
        if method == "minuit":
            return minuit_scan(nll, space, minos=minos, profiles=profiles, prescan=16, seed=seed)
        if method == "gradient":
            return gradient_scan(nll, space, seed=seed)
        if method == "bayesopt":
            return bayesopt_scan(nll, space, budget, seed=seed)
        if method == "grid":
            return grid_scan(nll, space, grid)
        return random_scan(nll, space, budget, seed=seed)

    fit.__name__ = fit.__qualname__ = method
    return fit
