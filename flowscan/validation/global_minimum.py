r"""Is a fit at the global minimum? A dense grid over the signal parameters, with local
descents from its lowest valleys, against the fit's NLL."""

from __future__ import annotations

__all__ = ["DenseMinimum", "dense_minimum"]

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import minimum_filter

from ..exceptions import FitError, InputError
from ..scanner import DISTINCT_NLL, MixtureLikelihood, ParameterSpace, ScanResult, gradient_scan


@dataclass
class DenseMinimum:
    r"""The lowest minimum `dense_minimum` found.

    Attributes:
        nll: The lowest NLL found: the fit's, or a descent's from a valley of the grid.
        theta: Where, `(P,)`.
        at_global: Whether the fit lies within `DISTINCT_NLL` of it.
        axes: The signal parameters of the grid.
        values: The NLL on the grid, one axis per signal parameter, the other parameters
            at the fit's values (on the events the grid used).
        descents: The valleys descended on the full data.
    """

    nll: float
    theta: np.ndarray
    at_global: bool
    axes: list[str]
    values: np.ndarray
    descents: int


def dense_minimum(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    result: ScanResult,
    cells: Mapping[str, int],
    *,
    within: float = 10.0,
    events: int | None = None,
    seed: int = 0,
) -> DenseMinimum:
    r"""Checks that `result` is the global minimum of `nll` over the box of `space`.

    The NLL is evaluated on a product grid of `cells[name]` points per signal
    parameter (the edges included), the other parameters at the fit's values, on all
    events or a seeded subsample of `events` (`MixtureLikelihood.subset`). Every local
    minimum of the grid (no neighbour lower, diagonals included) whose value lies
    within `within` of the grid's value nearest the fit, other than the fit's own cell
    and its neighbours, is descended on the full data in every floating parameter
    (L-BFGS to 1e-3 in NLL). A grid cell
    lies above its valley's minimum by at most what half a cell and the other
    parameters' offset cost: `within` bounds that (10 covers half a cell at a spacing
    of up to 4.5 errors per parameter on the full data).

    Arguments:
        nll: The likelihood the fit minimized.
        space: Its parameters (bounds, fixed ones).
        result: The fit to check.
        cells: Grid points per signal parameter (every floating one the background
            does not share).
        within: NLL above the fit's cell within which a valley is descended.
        events: Events of the grid (all if `None`).
        seed: Of the subsample.
    """
    background = {v.name for v in nll.background.theta_vars}
    axes = [
        v.name
        for v in nll.signal.theta_vars
        if v.name in space.floating_names and v.name not in background
    ]
    if sorted(cells) != sorted(axes) or min(cells.values()) < 2:
        raise InputError(f"give at least 2 grid points for each of {axes}, got {dict(cells)}")
    sub = nll
    if events is not None and events < len(nll.x):
        rows = np.sort(np.random.default_rng(seed).choice(len(nll.x), events, replace=False))
        sub = nll.subset(torch.from_numpy(rows))
    columns = [space.names.index(a) for a in axes]
    values_1d = [
        np.linspace(*space.bounds[c], cells[a]) for a, c in zip(axes, columns, strict=True)
    ]
    mesh = np.stack(np.meshgrid(*values_1d, indexing="ij"), -1).reshape(-1, len(axes))
    points = np.repeat(np.asarray(result.theta, dtype=np.float64)[None], len(mesh), 0)
    points[:, columns] = mesh
    values = []
    for batch in torch.from_numpy(points).to(sub.x.device).split(64):
        lp_s, lp_b = sub.log_densities(batch)
        yields = batch[:, :2] if sub.extended else None
        values.append(sub.from_log_densities(lp_s, lp_b, yields) + sub.constraint_nll(batch))
    grid = torch.cat(values).nan_to_num(nan=np.inf).cpu().numpy().reshape(*(cells[a] for a in axes))
    own = np.array(
        [int(np.abs(v - result.theta[c]).argmin()) for v, c in zip(values_1d, columns, strict=True)]
    )
    valleys = np.argwhere(grid == minimum_filter(grid, size=3, mode="nearest"))
    own_value = grid[tuple(own)]
    best_nll, best_theta, descents = float(result.nll), np.asarray(result.theta), 0
    for index in valleys:
        if np.abs(index - own).max() <= 1 or not grid[tuple(index)] <= own_value + within:
            continue
        start = points[np.ravel_multi_index(tuple(index), grid.shape)]
        descents += 1
        try:
            end = gradient_scan(
                nll, ParameterSpace(space.theta_vars, start, space.fixed_names), tol=1e-3
            )
        except FitError:
            continue
        if end.nll < best_nll:
            best_nll, best_theta = end.nll, end.theta
    at_global = float(result.nll) <= best_nll + DISTINCT_NLL
    return DenseMinimum(best_nll, best_theta, at_global, axes, grid, descents)
