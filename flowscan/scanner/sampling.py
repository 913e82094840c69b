r"""Gradient-free scans that evaluate the NLL on a set of points: grid and random."""

from __future__ import annotations

__all__ = ["grid_scan", "random_scan"]

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from ..exceptions import InputError
from .result import ScanResult
from .space import ParameterSpace


def grid_scan(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    points: int | Sequence[int] = 11,
    *,
    batch: int = 64,
) -> ScanResult:
    r"""Evaluates the NLL on a regular grid over the floating parameters, edges
    included, `points` per axis (one number for all, or one per floating parameter)."""
    q = int(space.floating.sum())
    counts = [points] * q if isinstance(points, int) else list(points)
    if len(counts) != q or min(counts) < 1:
        raise InputError(
            f"need a positive number of grid points for each of {space.floating_names}"
        )
    axes = [np.linspace(0, 1, c) if c > 1 else np.array([0.5]) for c in counts]
    unit = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, q)
    return _scan_points(nll, space, unit, "grid", batch)


def random_scan(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    n: int = 256,
    *,
    sobol: bool = True,
    seed: int = 0,
    batch: int = 64,
) -> ScanResult:
    r"""Evaluates the NLL at `n` points of the box: a scrambled Sobol sequence (scipy's
    `qmc.Sobol`, default) or uniform random points, both drawn from `seed`."""
    if n < 1:
        raise InputError(f"the budget must be at least one point, got n={n}")
    q = int(space.floating.sum())
    if sobol:
        unit = qmc.Sobol(q, scramble=True, seed=seed).random(n)
    else:
        unit = np.random.default_rng(seed).random((n, q))
    return _scan_points(nll, space, unit, "random", batch)


def _scan_points(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    unit: np.ndarray,
    method: str,
    batch: int,
) -> ScanResult:
    r"""NLL at unit-box points `(K, Q)`, `batch` thetas per call, no gradients."""
    t0 = time.perf_counter()
    thetas = space.full(space.from_unit(torch.from_numpy(unit)))
    values, times = [], []
    with torch.no_grad():
        for part in thetas.split(batch):
            values.extend(nll(part).tolist())
            times.extend([time.perf_counter() - t0] * len(part))
    return ScanResult.from_evaluations(
        method,
        space,
        thetas.numpy(),
        np.array(values),
        np.array(times),
        f"best of {len(values)} points (precision: the point spacing)",
    )
