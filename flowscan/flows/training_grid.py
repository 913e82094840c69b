r"""Where in theta a model was trained: the distinct parameter points of a grid, and the
gaps a fit may land in."""

from __future__ import annotations

__all__ = ["MAX_GRID_POINTS", "grid_gap", "grid_points"]

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import Delaunay, QhullError
from torch import Tensor

from ..variables import Variable

# Training sets with more distinct parameter points than this sample theta continuously
# (seed 002's toy draws every event's theta): the whole trained range counts as trained.
MAX_GRID_POINTS = 1000


def grid_points(theta: Tensor) -> Tensor | None:
    r"""The distinct rows `(K, D)` of training parameters `theta` `(N, D)` (float64, on
    the CPU) if there are at most `MAX_GRID_POINTS`, else `None` (continuous theta)."""
    # numpy's unique rows: torch's `unique(dim=0)` compares rows one by one on the CPU
    # (~3 s for 600k events)
    points = np.unique(theta.detach().double().cpu().numpy(), axis=0)
    return torch.from_numpy(points) if len(points) <= MAX_GRID_POINTS else None


def _inside_hull(points: np.ndarray, theta: np.ndarray) -> bool:
    r"""Whether `theta` `(D,)` lies in the convex hull of `points` `(K, D)` (scaled to
    the unit box; on its faces too), by a Delaunay triangulation; `True` for points that
    span fewer than D dimensions (no hull to be outside of)."""
    low, high = points.min(0), points.max(0)
    scaled = (points - low) / (high - low)
    try:
        hull = Delaunay(scaled, qhull_options="QJ")  # joggled: grids are degenerate
    except QhullError:
        return True
    return bool(hull.find_simplex((theta - low) / (high - low), tol=1e-6) >= 0)


def _step(values: np.ndarray) -> float:
    r"""The grid spacing of sorted distinct `values`: their most common difference."""
    diffs = np.diff(values)
    rounded = np.round(diffs / diffs.max(), 9)
    kinds, counts = np.unique(rounded, return_counts=True)
    return float(kinds[np.argmax(counts)] * diffs.max())


def grid_gap(
    points: Tensor | None, theta: Sequence[float], theta_vars: Sequence[Variable]
) -> str | None:
    r"""Why theta `(D,)` lies outside the region the training grid `points` `(K, D)`
    covers, or `None` if it lies inside (or the training theta was continuous,
    `points=None`).

    It is covered if along each parameter it falls on a grid value or between two
    neighbours on the grid (no missing value: a gap wider than 1.5 grid spacings is a
    hole), and lies inside the convex hull of the grid points (grids of several
    parameters need not be products: the LHCO grid has no m_Y above 100 GeV at
    m_X = 250 GeV).

    Example:
        >>> grid, m_x = torch.tensor([[250.0], [500.0], [1000.0]]), [Variable("m_x", "GeV")]
        >>> grid_gap(grid, [400.0], m_x) is None
        True
        >>> grid_gap(grid, [750.0], m_x).split(", ")[0]
        'm_x = 750 GeV lies between the training values 500 and 1000 GeV'
    """
    if points is None:
        return None
    p, t = points.numpy(), np.asarray(theta, dtype=np.float64)
    for j, v in enumerate(theta_vars):
        values = np.unique(p[:, j])
        unit = f" {v.unit}" if v.unit else ""
        on = np.isclose(values, t[j], rtol=1e-9, atol=0)
        if on.any():
            continue
        i = int(np.searchsorted(values, t[j]))
        if i == 0 or i == len(values):
            return (
                f"{v.name} = {t[j]:g}{unit} lies outside the training values "
                f"[{values[0]:g}, {values[-1]:g}]{unit}"
            )
        lo, hi = values[i - 1], values[i]
        step = _step(values)
        if hi - lo > 1.5 * step:
            return (
                f"{v.name} = {t[j]:g}{unit} lies between the training values {lo:g} and "
                f"{hi:g}{unit}, {(hi - lo) / step:.3g} grid spacings ({step:g}{unit}) apart: "
                "a grid value is missing there"
            )
    if len(theta_vars) > 1 and not _inside_hull(p, t):
        where = ", ".join(f"{v.name} = {x:g}" for v, x in zip(theta_vars, t, strict=True))
        return (
            f"({where}) lies outside the region the training grid spans (its convex hull): "
            "the model extrapolates there"
        )
    return None
