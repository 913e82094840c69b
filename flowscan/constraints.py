r"""Constraint terms of nuisance parameters: what an auxiliary measurement says about a
parameter of the likelihood, as in HistFactory (pyhf) and CMS Combine."""

from __future__ import annotations

__all__ = ["KINDS", "Constraint", "declared", "parse_nuisance"]

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from .exceptions import InputError

# Gaussian: shape nuisances and measured parameters; log-normal: normalizations.
KINDS = ("gaussian", "lognormal")


@dataclass(frozen=True)
class Constraint:
    r"""A constraint on the likelihood parameter `name` from an auxiliary measurement
    with result `observed` (the global observable).

    - `"gaussian"`: NLL term (nu - observed)^2 / (2 width^2), `width` in the parameter's
      units (1 for a shape nuisance in units of its 1-sigma variation, observed 0);
    - `"lognormal"`: NLL term ln(nu / observed)^2 / (2 ln(1 + width)^2), `width` relative
      (0.1 for a 10% normalization uncertainty: kappa = 1.1), for a positive parameter
      such as a yield (Combine's lnN).

    Example:
        >>> c = Constraint("tau", "gaussian", 5.0, 170.0)
        >>> float(c.nll(torch.tensor(160.0, dtype=torch.float64))), c.pull(160.0)
        (2.0, -2.0)
        >>> rate = Constraint("n_bkg", "lognormal", 0.1, 1000.0)
        >>> round(float(rate.nll(torch.tensor(1100.0, dtype=torch.float64))), 12)
        0.5
    """

    name: str
    kind: str
    width: float
    observed: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"nuisance {self.name}: unknown kind {self.kind!r}; use {KINDS}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise InputError(f"nuisance {self.name}: the width must be positive, got {self.width}")
        if not math.isfinite(self.observed):
            raise InputError(f"nuisance {self.name}: the observed value must be finite")
        if self.kind == "lognormal" and not self.observed > 0:
            raise InputError(
                f"nuisance {self.name}: a log-normal constraint needs a positive observed "
                f"value (e.g. {self.name}:lognormal:0.1:1000), got {self.observed}"
            )

    def _z(self, value: Tensor | float) -> Tensor | float:
        if self.kind == "gaussian":
            return (value - self.observed) / self.width
        log = torch.log if isinstance(value, Tensor) else np.log
        return log(value / self.observed) / math.log1p(self.width)

    def nll(self, value: Tensor) -> Tensor:
        r"""The NLL term at parameter values `value` `(*)`, same shape."""
        return 0.5 * self._z(value) ** 2

    def pull(self, value: float) -> float:
        r"""(nu - observed) / width: the post-fit pull of a fitted `value` (for a
        log-normal, ln(nu / observed) / ln(1 + width))."""
        return float(self._z(value))

    def sigma(self, value: float) -> float:
        r"""The constraint's 1-sigma width in the parameter's units at `value` (for a
        log-normal, value ln(1 + width), its local width)."""
        return self.width if self.kind == "gaussian" else value * math.log1p(self.width)

    def fluctuated(self, truth: float, rng: np.random.Generator) -> Constraint:
        r"""This constraint with a global observable drawn as the auxiliary measurement
        would be, for the parameter at `truth`: N(truth, width), or truth (1 +
        width)^g with g ~ N(0, 1) for a log-normal."""
        g = rng.standard_normal()
        if self.kind == "gaussian":
            return replace(self, observed=truth + self.width * g)
        return replace(self, observed=truth * (1 + self.width) ** g)


def parse_nuisance(spec: str) -> Constraint:
    r"""A `Constraint` from `name:kind:width[:observed]` (the `--nuisance` shorthand),
    e.g. `mass_scale:gaussian:1`, `tau:gaussian:5:170`, `n_bkg:lognormal:0.1:10000`.

    Example:
        >>> parse_nuisance("tau:gaussian:5:170")
        Constraint(name='tau', kind='gaussian', width=5.0, observed=170.0)
    """
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[0]:
        raise InputError(
            f"--nuisance {spec!r}: write name:kind:width[:observed], e.g. tau:gaussian:5:170"
        )
    for text in parts[2:]:
        try:
            float(text)
        except ValueError:
            raise InputError(
                f"--nuisance {spec!r}: {text!r} is not a number (the width and the observed "
                "value are numbers)"
            ) from None
    numbers = [float(p) for p in parts[2:]]
    return Constraint(parts[0], parts[1], *numbers)


def declared(*models: object) -> list[Constraint]:
    r"""The constraints the density `models` record (`nuisances`: those they were
    trained on), each name once.

    Raises `InputError` where two models declare one nuisance differently.
    """
    found: dict[str, Constraint] = {}
    for model in models:
        for c in getattr(model, "nuisances", []):
            if found.get(c.name, c) != c:
                raise InputError(
                    f"the models declare the nuisance {c.name} differently ({found[c.name]} "
                    f"and {c}): were they trained with the same --nuisance?"
                )
            found[c.name] = c
    return list(found.values())
