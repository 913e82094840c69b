r"""Named, bounded quantities: observables x and parameters theta."""

from __future__ import annotations

__all__ = ["Variable", "bounds_tensor", "check_events", "check_theta"]

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .exceptions import InputError


@dataclass(frozen=True)
class Variable:
    r"""A named quantity with a unit and optional hard bounds.

    For an observable, `low`/`high` are the edges of its support (a window, a
    physical limit such as tau21 in [0, 1]); `None` means open. For a parameter,
    they are the range over which a model was trained.

    Example:
        >>> Variable("m", "GeV", 100.0, 1000.0).label
        'm [GeV]'
    """

    name: str
    unit: str = ""
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise InputError(f"{self.name}: low={self.low} must be below high={self.high}")

    @property
    def label(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name

    def to_dict(self) -> dict:
        return asdict(self)


def bounds_tensor(variables: Sequence[Variable]) -> Tensor:
    r"""Bounds as a float64 tensor of shape `(len(variables), 2)`, open ends as -inf/+inf."""
    return torch.tensor(
        [
            [-math.inf if v.low is None else v.low, math.inf if v.high is None else v.high]
            for v in variables
        ],
        dtype=torch.float64,
    )


def check_events(x: Tensor, observables: Sequence[Variable]) -> None:
    r"""Raises a `ValueError` naming the problem if events `x` of shape `(N, F)` are unusable.

    Checks the shape against the observables, finiteness, emptiness and that every
    event lies inside each observable's bounds.
    """
    names = [v.name for v in observables]
    if x.ndim != 2 or x.shape[-1] != len(observables):
        raise InputError(
            f"events must have shape (N, {len(observables)}) for observables {names}, "
            f"got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise InputError("no events: the dataset is empty")
    finite = torch.isfinite(x)
    if not finite.all():
        rows = (~finite).any(dim=-1).nonzero().flatten()
        raise InputError(
            f"{len(rows)} events contain NaN or inf (first at row {rows[0].item()}); "
            "remove or fix them before fitting"
        )
    bounds = bounds_tensor(observables).to(x.device)
    for j, v in enumerate(observables):
        col = x[:, j].double()
        outside = (col < bounds[j, 0]) | (col > bounds[j, 1])
        if outside.any():
            raise InputError(
                f"{int(outside.sum())} events have {v.name} outside its support "
                f"[{v.low}, {v.high}] {v.unit} (e.g. {col[outside][0].item():.6g}); "
                "select events inside the window the model was built for"
            )


def check_theta(theta: Tensor, parameters: Sequence[Variable]) -> None:
    r"""Raises a `ValueError` if `theta` of shape `(*, D)` has the wrong size, is not finite,
    or lies outside the parameters' ranges."""
    names = [p.name for p in parameters]
    if theta.shape[-1:] != (len(parameters),):
        raise InputError(
            f"theta must have shape (*, {len(parameters)}) for parameters {names}, "
            f"got {tuple(theta.shape)}"
        )
    if not torch.isfinite(theta).all():
        raise InputError(f"theta contains NaN or inf: {theta.detach().cpu().tolist()}")
    bounds = bounds_tensor(parameters).to(theta.device)
    t = theta.detach().double().reshape(-1, len(parameters))
    # A relative slack of 1e-6 lets float32 round-trips of the bounds themselves pass.
    slack = 1e-6 * (bounds[:, 1] - bounds[:, 0]).nan_to_num(posinf=0.0)
    low = (t < bounds[:, 0] - slack).any(dim=0)
    high = (t > bounds[:, 1] + slack).any(dim=0)
    for j, p in enumerate(parameters):
        if low[j] or high[j]:
            value = t[:, j].min() if low[j] else t[:, j].max()
            raise InputError(
                f"{p.name} = {value.item():.6g} {p.unit} is outside the trained range "
                f"[{p.low}, {p.high}] {p.unit}; a model does not extrapolate silently "
                "(set allow_extrapolation=True on the model to evaluate it anyway)"
            )
