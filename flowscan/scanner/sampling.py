r"""Gradient-free scans that evaluate the NLL on a set of points: grid and random."""

from __future__ import annotations

__all__ = ["MAX_POINTS", "grid_scan", "random_scan"]

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from ..exceptions import InputError
from .result import ScanResult
from .space import ParameterSpace

# Most points a scan or search evaluates: 2^20 thetas are tens of MB, and hours of NLL
# evaluations at 100k events; more is a typo, or a job for many machines.
MAX_POINTS = 2**20


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
    if math.prod(map(int, counts)) > MAX_POINTS:
        raise InputError(
            f"a grid of {' x '.join(map(str, counts))} points is more than {MAX_POINTS}: "
            "use fewer points per axis"
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
    if not 1 <= n <= MAX_POINTS:
        raise InputError(f"the budget must be 1 to {MAX_POINTS} points, got n={n}")
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
    if batch < 1:
        raise InputError(f"the batch must be at least 1 theta, got batch={batch}")
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
