r"""Where in theta a model was trained: the distinct parameter points of a grid, and the
gaps a fit may land in."""

from __future__ import annotations

__all__ = ["MAX_GRID_POINTS", "coverage_gap", "grid_points"]

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..variables import Variable

# Training sets with more distinct parameter points than this sample theta continuously
# (seed 002's toy draws every event's theta): their coverage is the trained range.
MAX_GRID_POINTS = 1000


def grid_points(theta: Tensor) -> Tensor | None:
    r"""The distinct rows `(K, D)` of training parameters `theta` `(N, D)` (float64, on
    the CPU) if there are at most `MAX_GRID_POINTS`, else `None` (continuous theta)."""
    points = torch.unique(theta.detach().double().cpu(), dim=0)
    return points if len(points) <= MAX_GRID_POINTS else None


def _step(values: np.ndarray) -> float:
    r"""The grid spacing of sorted distinct `values`: their most common difference."""
    diffs = np.diff(values)
    rounded = np.round(diffs / diffs.max(), 9)
    kinds, counts = np.unique(rounded, return_counts=True)
    return float(kinds[np.argmax(counts)] * diffs.max())


def coverage_gap(
    points: Tensor | None, theta: Sequence[float], theta_vars: Sequence[Variable]
) -> str | None:
    r"""Why theta `(D,)` lies outside the region the training grid `points` `(K, D)`
    covers, or `None` if it lies inside (or the training theta was continuous,
    `points=None`).

    Along each parameter theta falls between two grid values (or on one); it is
    covered if those are neighbours on the grid (no missing value: a gap wider than
    1.5 grid spacings is a hole) and every corner of the cell they span is a training
    point.

    Example:
        >>> grid, m_x = torch.tensor([[250.0], [500.0], [1000.0]]), [Variable("m_x", "GeV")]
        >>> coverage_gap(grid, [400.0], m_x) is None
        True
        >>> coverage_gap(grid, [750.0], m_x).split(", ")[0]
        'm_x = 750 GeV lies between the training values 500 and 1000 GeV'
    """
    if points is None:
        return None
    p, t = points.numpy(), np.asarray(theta, dtype=np.float64)
    cell = []
    for j, v in enumerate(theta_vars):
        values = np.unique(p[:, j])
        unit = f" {v.unit}" if v.unit else ""
        on = np.isclose(values, t[j], rtol=1e-9, atol=0)
        if on.any():
            cell.append((values[on][0],))
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
        cell.append((lo, hi))
    for corner in itertools.product(*cell):
        if not np.isclose(p, corner, rtol=1e-9, atol=0).all(axis=1).any():
            where = ", ".join(f"{v.name} = {c:g}" for v, c in zip(theta_vars, corner, strict=True))
            return (
                f"the training grid has no point at ({where}), a corner of the grid cell "
                "the fit lies in: the model extrapolates there"
            )
    return None
