r"""Named samplers: what draws the events a command trains on (`train`), fits as
pseudo-data (`toys`) or compares a model with (`validate`)."""

from __future__ import annotations

__all__ = [
    "GENERATORS",
    "SAMPLERS",
    "SCALES",
    "SCALE_MAPS",
    "Sampler",
    "Samplers",
    "samplers",
    "training_events",
]

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from ..exceptions import InputError
from ..io import read_events
from ..variables import Variable
from . import lhco
from .bootstrap import Bootstrap
from .breit_wigner import MASS, BreitWigner, Exponential

SAMPLERS = ("model", "breit-wigner", "lhco", "bootstrap")
# The samplers that need nothing but their name: they draw training sets over theta and
# validation references at any theta.
GENERATORS = ("breit-wigner", "lhco")
# The nuisances each generator can draw (a relative 1-sigma scale each).
# What each generator's scale nuisances multiply, among the observables of its signal
# and of its background (`flowscan.flows.Scale`): the fast LHCO QCD is scale-free, so a
# jet energy scale leaves its shapes as they are (docs/systematics.md).
SCALE_MAPS = {
    "breit-wigner": {"mass_scale": (("m",), ("m",))},
    "lhco": {
        "jes": (("m_jj", "m_j1", "delta_m"), ()),
        "jms": (("m_j1", "delta_m"), ("m_j1", "delta_m")),
    },
}
SCALES = {name: tuple(maps) for name, maps in SCALE_MAPS.items()}


class Sampler(Protocol):
    r"""What draws events at a theta: a `DensityModel`, a closed-form toy density, the
    LHCO generator or a `Bootstrap` of a sample. Samplers that can also draw over
    their parameters have `training_set(n, seed) -> (x, theta)`."""

    observables: Sequence[Variable]
    theta_vars: Sequence[Variable]

    def sample(self, n: int, theta: Tensor | None = None, seed: int | None = None) -> Tensor: ...


@dataclass(frozen=True)
class Samplers:
    r"""The signal and background samplers of one name in `SAMPLERS`."""

    name: str
    signal: Sampler
    background: Sampler

    def get(self, role: str) -> Sampler:
        r"""The sampler of `role`, `"signal"` or `"background"`."""
        if role not in ("signal", "background"):
            raise InputError(f"a sampler is for the signal or the background, not {role!r}")
        return self.signal if role == "signal" else self.background

    def like(self, model: Sampler) -> Sampler:
        r"""The sampler of the same observables and parameters as `model` (by name)."""
        for sampler in (self.signal, self.background):
            if _names(sampler.observables) == _names(model.observables) and _names(
                sampler.theta_vars
            ) == _names(model.theta_vars):
                return sampler
        raise InputError(
            f"{self.name} draws {_describe(self.signal)} (signal) or "
            f"{_describe(self.background)} (background); this model has {_describe(model)}"
        )


def _names(variables: Sequence[Variable]) -> list[str]:
    return [v.name for v in variables]


def _describe(sampler: Sampler) -> str:
    theta = _names(sampler.theta_vars)
    return f"{_names(sampler.observables)}" + (f" given {theta}" if theta else "")


def samplers(
    name: str,
    *,
    models: tuple[Sampler, Sampler] | None = None,
    files: Sequence[str | os.PathLike] = (),
    columns: Sequence[str] | None = None,
    scales: Mapping[str, float] | None = None,
    window: tuple[float, float] | None = None,
) -> Samplers:
    r"""The samplers called `name`, one of `SAMPLERS`.

    Arguments:
        name: `"model"` (`models`, the fitted signal and background models),
            `"breit-wigner"` (the toy's exact densities), `"lhco"` (the fast LHCO-style
            generator: signal at (m_Z', m_X, m_Y), QCD) or `"bootstrap"` (resampling
            `files`, a signal and a background event file).
        models: The signal and background models, for `"model"` and to name the
            observables of the `"bootstrap"` files.
        columns: Columns of the observables in `files` (default their names).
        scales: Nuisances the generators draw, name -> relative 1-sigma (`SCALES`):
            `mass_scale` for `"breit-wigner"` (`BreitWigner(mass_scale)`), `jes` and
            `jms` for `"lhco"` (`lhco.Generator(jes=, jms=)`).
        window: The mass window (GeV) of `"breit-wigner"`, default [100, 1000].

    Example:
        >>> import torch
        >>> samplers("breit-wigner").signal.sample(3, torch.tensor([450.0, 30.0])).shape
        torch.Size([3, 1])
    """
    if name not in SAMPLERS:
        raise InputError(f"unknown sampler {name!r}; choose from {list(SAMPLERS)}")
    if (name == "bootstrap") != bool(files):
        raise InputError("the bootstrap sampler needs --samples SIGNAL_FILE,BACKGROUND_FILE")
    if name in ("model", "bootstrap") and models is None:
        raise InputError(f"the {name} sampler needs the signal and background models")
    if name == "model":
        return Samplers(name, *models)
    scales = dict(scales or {})
    unknown = sorted(set(scales) - set(SCALES.get(name, ())))
    if unknown:
        raise InputError(
            f"the {name} sampler has no nuisance {unknown}; "
            + ", ".join(f"{k} draws {list(v)}" for k, v in SCALES.items())
        )
    if window is not None and name != "breit-wigner":
        raise InputError(f"the {name} sampler has no window to set; breit-wigner has")
    if name == "breit-wigner":
        scale, window = scales.get("mass_scale", 0.0), window or (MASS.low, MASS.high)
        return Samplers(name, BreitWigner(scale, window), Exponential(scale, window))
    if name == "lhco":
        return Samplers(name, lhco.Generator("signal", **scales), lhco.Generator("qcd", **scales))
    files = list(files)
    if len(files) != 2:
        raise InputError(f"--samples takes two files (signal, background), got {files}")
    observables = models[0].observables
    columns = list(columns or _names(observables))
    pair = [Bootstrap(read_events(f, columns, derive=lhco.FEATURES), observables) for f in files]
    return Samplers(name, *pair)


def training_events(sampler: Sampler, events: int, seed: int) -> tuple[Tensor, Tensor | None]:
    r"""A training set `(x, theta)` drawn by `sampler` over its parameters (theta
    `None` for an unconditional one): `events` per mass point for the LHCO signal,
    `events` in all otherwise."""
    if not hasattr(sampler, "training_set"):
        raise InputError(f"{type(sampler).__name__} cannot draw a training set over theta")
    return sampler.training_set(events, seed)
