r"""The parameter space every optimizer reads: names, bounds, start, fixed parameters."""

from __future__ import annotations

__all__ = ["ParameterSpace"]

from collections.abc import Sequence

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from ..exceptions import InputError
from ..variables import Variable, bounds_tensor


class ParameterSpace:
    r"""Parameters theta with finite bounds, a starting point, and which are fixed.

    Optimizers work on the floating parameters only; `full` puts the fixed values back.
    The unit box maps `low -> 0` and `high -> 1` per floating parameter.

    Arguments:
        theta_vars: The P parameters, each with finite `low` < `high`.
        start: Starting theta `(P,)`, inside the bounds; the box centre if `None`.
        fixed: Names of parameters held at their start value.

    Example:
        >>> from flowscan.samples import BreitWigner
        >>> space = ParameterSpace(BreitWigner.theta_vars, fixed=["gamma"])
        >>> space.floating_names
        ['m_pole']
    """

    def __init__(
        self,
        theta_vars: Sequence[Variable],
        start: Sequence[float] | np.ndarray | Tensor | None = None,
        fixed: Sequence[str] = (),
    ) -> None:
        self.theta_vars = list(theta_vars)
        bounds = bounds_tensor(self.theta_vars).numpy()
        if not np.isfinite(bounds).all():
            open_ = [
                v.name
                for v, b in zip(self.theta_vars, bounds, strict=True)
                if not np.isfinite(b).all()
            ]
            raise InputError(f"parameters {open_} need finite bounds to be scanned")
        self.bounds = bounds
        names = self.names
        unknown = sorted(set(fixed) - set(names))
        if unknown:
            raise InputError(f"cannot fix {unknown}: parameters are {names}")
        self.floating = np.array([n not in fixed for n in names])
        if not self.floating.any():
            raise InputError("every parameter is fixed: nothing to scan")
        self.start = bounds.mean(axis=1) if start is None else np.asarray(start, dtype=float)
        if self.start.shape != (len(names),):
            raise InputError(
                f"start must have {len(names)} values for {names}, got {self.start.shape}"
            )
        for v, value in zip(self.theta_vars, self.start, strict=True):
            if not v.low <= value <= v.high:
                raise InputError(
                    f"start {v.name} = {value:g} {v.unit} is outside [{v.low}, {v.high}]"
                )

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.theta_vars]

    @property
    def floating_names(self) -> list[str]:
        return [n for n, f in zip(self.names, self.floating, strict=True) if f]

    @property
    def fixed_names(self) -> list[str]:
        return [n for n, f in zip(self.names, self.floating, strict=True) if not f]

    @property
    def floating_bounds(self) -> np.ndarray:
        r"""Bounds of the floating parameters, shape `(Q, 2)`."""
        return self.bounds[self.floating]

    def full(self, theta: Tensor) -> Tensor:
        r"""Floating values `(*, Q)` to the full theta `(*, P)`, fixed values from `start`;
        differentiable in `theta`."""
        out = torch.as_tensor(self.start, dtype=theta.dtype, device=theta.device)
        out = out.expand(*theta.shape[:-1], len(self.names)).clone()
        out[..., torch.from_numpy(self.floating).to(theta.device)] = theta
        return out

    def from_unit(self, u: Tensor) -> Tensor:
        r"""Unit-box points `(*, Q)` to floating parameter values `(*, Q)`."""
        b = torch.as_tensor(self.floating_bounds, dtype=u.dtype, device=u.device)
        return b[:, 0] + u * (b[:, 1] - b[:, 0])

    def sobol(self, n: int, seed: int = 0) -> Tensor:
        r"""`n` scrambled Sobol points of the floating parameters' box, `(n, Q)` float64:
        the first `n` of a seeded sequence of 2^ceil(log2 n), as starting points."""
        sequence = qmc.Sobol(int(self.floating.sum()), scramble=True, seed=seed)
        unit = sequence.random_base2(int(np.ceil(np.log2(n))))[:n]
        return self.from_unit(torch.from_numpy(unit))

    def to_unit(self, theta: Tensor) -> Tensor:
        r"""Floating parameter values `(*, Q)` to the unit box `(*, Q)`."""
        b = torch.as_tensor(self.floating_bounds, dtype=theta.dtype, device=theta.device)
        return (theta - b[:, 0]) / (b[:, 1] - b[:, 0])
