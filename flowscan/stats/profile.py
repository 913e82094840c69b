r"""Profile likelihoods: the NLL minimized over the other parameters, on a grid of one
or two of them."""

from __future__ import annotations

__all__ = ["ProfileResult", "conditional_minimum", "profile_likelihood", "wilks_threshold"]

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ..exceptions import InputError
from ..scanner import ParameterSpace, ScanResult, gradient_scan


def wilks_threshold(cl: float, dof: int) -> float:
    r"""NLL above the minimum where a profile of `dof` parameters crosses confidence
    level `cl` (Wilks: 2 (NLL - min) follows chi2(dof)); 0.49 and 1.92 for one parameter
    at 68% and 95%, 1.14 and 3.00 for two."""
    return 0.5 * float(stats.chi2.ppf(cl, dof))


@dataclass
class ProfileResult:
    r"""A profile likelihood on a grid of one or two parameters.

    Attributes:
        names: The scanned parameters (1 or 2).
        grid: Their values, one array per name.
        dnll: NLL minus the global minimum, shape `(n,)` or `(n_0, n_1)`.
        theta: Every parameter at each grid point after re-minimizing the others, shape
            `(*dnll.shape, P)`.
        minimum: The global fit.
    """

    names: list[str]
    grid: list[np.ndarray]
    dnll: np.ndarray
    theta: np.ndarray = field(repr=False)
    minimum: ScanResult = field(repr=False)

    def interval(self, cl: float = 0.68) -> tuple[float, float]:
        r"""Lower and upper ends of the `cl` interval of a 1D profile, where it crosses
        `wilks_threshold(cl, 1)` (linear interpolation between grid points)."""
        if len(self.names) != 1:
            raise InputError("an interval needs a profile of one parameter")
        x, y, level = self.grid[0], self.dnll, wilks_threshold(cl, 1)
        best = int(np.argmin(y))
        if y[best] > level:
            raise InputError(f"no scanned {self.names[0]} lies inside the {cl:.0%} interval")
        ends = []
        for side in (slice(best, None, -1), slice(best, None)):
            xs, ys = x[side], y[side]
            above = np.flatnonzero(ys > level)
            if len(above) == 0:
                raise InputError(
                    f"the {cl:.0%} interval of {self.names[0]} reaches the end of the scanned "
                    f"range [{x[0]:g}, {x[-1]:g}]: scan a wider range"
                )
            j = above[0]
            ends.append(float(np.interp(level, [ys[j - 1], ys[j]], [xs[j - 1], xs[j]])))
        return ends[0], ends[1]


def conditional_minimum(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    values: Mapping[str, float],
    *,
    tol: float = 1e-4,
) -> tuple[float, np.ndarray]:
    r"""The NLL minimized over the floating parameters of `space` other than those set
    in `values`, by L-BFGS (`gradient_scan`) from `space.start`. Returns the NLL and the
    full theta `(P,)` there."""
    start = space.start.copy()
    for name, value in values.items():
        start[space.names.index(name)] = value
    fixed = [*space.fixed_names, *values]
    if set(fixed) == set(space.names):  # nothing left to minimize
        with torch.no_grad():
            return float(nll(torch.as_tensor(start))), start
    fit = gradient_scan(nll, ParameterSpace(space.theta_vars, start, fixed), starts=0, tol=tol)
    return fit.nll, fit.theta


def profile_likelihood(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    scan: Mapping[str, Sequence[float]],
    *,
    minimum: ScanResult,
    tol: float = 1e-4,
) -> ProfileResult:
    r"""The NLL at each point of a grid of one or two parameters, minimized over the
    other floating parameters of `space` (L-BFGS, `gradient_scan`).

    Points are visited outward from the one nearest the global minimum, and each
    re-minimization starts from the nearest point already done (warm start), so the
    nuisance parameters move a little at a time.

    Arguments:
        nll: Differentiable NLL of the full theta, e.g. a `MixtureLikelihood`.
        space: Parameters, bounds and fixed parameters; the profile starts at `minimum`.
        scan: One or two parameter names, each with the values to scan.
        minimum: The global fit (`flowscan.scanner.fit` for a `MixtureLikelihood`: one
            local fit can end in a valley that is not the lowest). `dnll` is measured
            from the lower of its NLL and the lowest profile point.
        tol: NLL tolerance of each re-minimization.
    """
    names = list(scan)
    if not 1 <= len(names) <= 2:
        raise InputError(f"profile one or two parameters, got {names}")
    unknown = sorted(set(names) - set(space.floating_names))
    if unknown:
        raise InputError(f"{unknown} are not floating parameters of {space.floating_names}")
    grid = [np.asarray(scan[n], dtype=float) for n in names]
    for name, values in zip(names, grid, strict=True):
        v = space.theta_vars[space.names.index(name)]
        if values.ndim != 1 or len(values) < 2 or not np.all(np.diff(values) > 0):
            raise InputError(f"{name}: give at least 2 increasing values to scan")
        if values[0] < v.low or values[-1] > v.high:
            raise InputError(f"{name}: scanned values leave the range [{v.low}, {v.high}]")
    columns = [space.names.index(n) for n in names]
    shape = tuple(len(g) for g in grid)
    index = np.array(list(np.ndindex(shape)))  # (n, 1 or 2) grid indices
    centre = [np.argmin(np.abs(g - minimum.theta[c])) for g, c in zip(grid, columns, strict=True)]
    order = np.argsort(np.abs(index - centre).max(axis=1), kind="stable")
    values = np.full(shape, np.nan)
    theta = np.zeros((*shape, len(space.names)))
    for n, k in enumerate(order):
        point = tuple(index[k])
        if n == 0:
            start = minimum.theta
        else:  # warm start from the nearest point already done
            near = order[:n][np.abs(index[order[:n]] - index[k]).sum(axis=1).argmin()]
            start = theta[tuple(index[near])]
        warm = ParameterSpace(space.theta_vars, start, space.fixed_names)
        at = {name: g[i] for name, g, i in zip(names, grid, point, strict=True)}
        values[point], theta[point] = conditional_minimum(nll, warm, at, tol=tol)
    return ProfileResult(
        names=names,
        grid=grid,
        dnll=values - min(minimum.nll, values.min()),
        theta=theta,
        minimum=minimum,
    )
