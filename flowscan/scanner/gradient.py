r"""Parameter scans by gradient descent through the likelihood."""

from __future__ import annotations

__all__ = ["gradient_scan"]

import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import optimize
from torch import Tensor

from ..exceptions import FitError, InputError
from .result import ScanResult, fit_status
from .sampling import MAX_POINTS
from .space import ParameterSpace
from .uncertainties import batch_gradients

# How far inside the unit box L-BFGS-B keeps (`fit_status` puts a point within 1e-3 of
# the range of a bound on the bound).
EDGE = 1e-9


def gradient_scan(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    *,
    starts: int = 0,
    descents: int = 4,
    tol: float = 1e-4,
    max_iter: int = 200,
    seed: int = 0,
) -> ScanResult:
    r"""Minimizes `nll` by L-BFGS-B (scipy) with autograd gradients, inside the parameter
    box.

    L-BFGS-B works on the unit box of the floating parameters, less 1e-9 at each end,
    and keeps to it: a bound is reached and held (to 1e-9 of the range: a yield there is
    not quite 0, so that both yields at 0, where the NLL is infinite, are never asked
    for), where a smooth map onto the box (a sigmoid) flattens the NLL near it and
    stalled torch's L-BFGS there, 0.01-2 above the minimum (a Breit-Wigner width near its
    lower bound; a fit with two parameters on bounds). It
    starts at `space.start`. With `starts > 0`, `space.start` and `starts` scrambled
    Sobol points (seeded) are evaluated as one batch, and L-BFGS-B descends from each of
    the `descents` best of them in turn, so one start in the wrong basin does not decide
    the result (`fit` starts it from the global search's lowest minimum instead). It
    stops when the largest component of the projected gradient with respect to the unit
    box falls below `tol`, or an iteration changes the NLL by less than `tol / 100`
    (relative to the NLL less its value at the start, or absolute below 1), or after
    `max_iter` iterations. With `tol = 1e-4` the NLL is within ~1e-4 of its minimum,
    i.e. theta is within ~0.01 standard deviations of it (float64 likelihood; see the
    README on precision).

    Arguments:
        nll: Differentiable NLL `(K,)` of a batch of full thetas `(K, P)`; a
            `MixtureLikelihood` (through its `value_and_grad`).
        space: Parameters, bounds, start and fixed parameters.
        starts: Sobol starting points to try besides `space.start` (multi-start); 0:
            from `space.start` only.
        descents: How many of the best starting points are descended (with `starts > 0`).
        tol: Stopping tolerance on NLL changes and gradients (NLL units).
        max_iter: Most L-BFGS-B iterations per descent.
        seed: Seed of the Sobol points.
    """
    if descents < 1 or not tol > 0 or max_iter < 1:
        raise InputError(
            f"the gradient scan needs descents >= 1, tol > 0 and max_iter >= 1, got "
            f"descents={descents}, tol={tol}, max_iter={max_iter}"
        )
    if not 0 <= starts <= MAX_POINTS:
        raise InputError(f"starts must be 0 to {MAX_POINTS}, got {starts}")
    bounds = torch.from_numpy(space.floating_bounds)
    low, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    t0 = time.perf_counter()
    start = torch.from_numpy(space.start[space.floating])[None]
    points, values, trace = [], [], []

    def record(thetas: Tensor, batch: list[float]) -> None:
        points.extend(thetas)
        values.extend(batch)
        trace.append((len(values), time.perf_counter() - t0, min(values)))

    if starts > 0:
        candidates = torch.cat([start, space.sobol(starts, seed)])
        with torch.no_grad():
            batch = nll(space.full(candidates)).tolist()
        record(space.full(candidates), batch)
        start = candidates[np.argsort(batch)[:descents]]
    n_batch = len(values)

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        theta = low + width * torch.from_numpy(u)
        value, grad = batch_gradients(nll, space, theta[None].numpy())
        if not np.isfinite(value[0]):
            raise FitError(f"NLL is {value[0]} at theta = {space.full(theta).tolist()}")
        record(space.full(theta)[None], [float(value[0])])
        return float(value[0]), grad[0] * width.numpy()

    iterations = [_descend(objective, ((u - low) / width).numpy(), tol, max_iter) for u in start]
    best = int(np.argmin(values))
    running = np.minimum.accumulate(values)
    improving = [0] + [i for i in range(1, len(values)) if running[i] < running[i - 1]]
    converged = max(iterations) < max_iter
    status, at_bound = fit_status(converged, points[best].numpy(), space)
    return ScanResult(
        method="gradient",
        names=space.names,
        theta=points[best].numpy(),
        nll=values[best],
        nll_evals=len(values),
        grad_evals=len(values) - n_batch,
        seconds=time.perf_counter() - t0,
        converged=converged,
        message=f"L-BFGS-B stopped after {'+'.join(map(str, iterations))} iterations"
        + (f" from the best {len(start)} starts" if len(start) > 1 else "")
        + ("" if converged else f" (budget of {max_iter} iterations reached)"),
        path=torch.stack([points[i] for i in improving]).numpy(),
        trace=np.array(trace),
        status=status,
        at_bound=at_bound,
        fixed=space.fixed_names,
    )


def _descend(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    u: np.ndarray,
    tol: float,
    max_iter: int,
) -> int:
    r"""L-BFGS-B on `objective` (value and gradient) over the unit box from `u`, the value
    offset by its start so that the relative change test acts on O(1) numbers; returns
    its iterations."""
    offset: list[float] = []

    def shifted(v: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective(v)
        offset.append(offset[0] if offset else value)
        return value - offset[0], grad

    result = optimize.minimize(
        shifted,
        np.clip(u, EDGE, 1 - EDGE),
        jac=True,
        method="L-BFGS-B",
        bounds=[(EDGE, 1 - EDGE)] * len(u),
        options={
            "maxiter": max_iter,
            "maxfun": 10 * max_iter,
            "ftol": tol * 1e-2,
            "gtol": tol,
            "maxcor": 20,
        },  # fmt: skip
    )
    return int(result.nit)
