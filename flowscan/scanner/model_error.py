r"""The model error of a fit: how far its parameters move between the members of the
density ensembles it was fitted with."""

from __future__ import annotations

__all__ = ["MODEL_STEPS", "model_errors"]

from dataclasses import replace

import numpy as np
import torch

from ..exceptions import FitError
from .likelihood import MixtureLikelihood
from .result import ScanResult
from .space import ParameterSpace
from .uncertainties import curvature_errors

# Newton steps per member at most; they stop earlier once a step is below 1e-4 of the
# statistical error of every parameter.
MODEL_STEPS = 8


def model_errors(
    nll: MixtureLikelihood,
    result: ScanResult,
    space: ParameterSpace,
    steps: int = MODEL_STEPS,
) -> ScanResult:
    r"""A copy of `result` with the model error of its fit filled in (`errors_model`,
    `covariance_model`, `errors_model_by`, `theta_members`), where the signal or
    background density of `nll` is an ensemble (has `members`: a `DensityEnsemble`).

    Each member's likelihood (the member in place of its ensemble, the other density at
    its ensemble) is minimized from the ensemble's minimum `result.theta` by Newton
    steps with the ensemble fit's curvature (its HESSE covariance, or
    `error_scale_hessian` for methods without one) and the member's exact gradient: a
    few gradient evaluations per member, not a full fit, all members' in one pass over
    the events per step (`MixtureLikelihood.by_member`): at most `steps` passes per
    ensemble, not `steps` per member. The model covariance is the
    covariance (ddof 1) of the members' minima, summed over the signal's and the
    background's ensembles (their shares apart in `errors_model_by`); it has rank at
    most K - 1. Fixed parameters have model error 0, parameters at a bound NaN (the
    members' minima are clipped onto the bound: their spread says nothing). A failed
    fit, or one without an ensemble of at least two members, is returned as it is.
    """
    ensembles = {
        which: density.members
        for which, density in (("signal", nll.signal), ("background", nll.background))
        if len(getattr(density, "members", ())) > 1
    }
    if not ensembles or result.status == "failed":
        return result
    floating, bounds = space.floating, space.bounds
    mask = torch.from_numpy(floating)
    theta = np.asarray(result.theta, dtype=np.float64)
    inverse = _inverse_curvature(nll, result, space)
    sigma = np.sqrt(np.diag(inverse))
    low, high = bounds[floating, 0], bounds[floating, 1]
    covariance = np.zeros((len(theta),) * 2)
    by, members = {}, {}
    for which, densities in ensembles.items():
        likelihood = nll.by_member(which)
        minima = np.repeat(theta[None], len(densities), axis=0)
        moving = np.ones(len(densities), dtype=bool)
        for _ in range(steps):  # every member's step in one pass; a converged one stays
            _, grad = likelihood.value_and_grad(torch.as_tensor(minima), mask)
            step = grad.cpu().numpy()[:, floating] @ inverse.T
            rows = np.ix_(moving, floating)
            minima[rows] = np.clip(minima[rows] - step[moving], low, high)
            moving &= ~(np.abs(step) < 1e-4 * sigma).all(axis=1)
            if not moving.any():
                break
        members[which] = minima
        share = np.cov(minima.T, ddof=1).reshape(len(theta), len(theta))
        by[which] = np.sqrt(np.diag(share))
        covariance += share
    # a member's minimum beyond a bound is clipped onto it: there the spread says nothing
    stuck = [space.names.index(n) for n in result.at_bound]
    covariance[stuck, :] = covariance[:, stuck] = np.nan
    for share in by.values():
        share[stuck] = np.nan
    return replace(
        result,
        covariance_model=covariance,
        errors_model=np.sqrt(np.diag(covariance)),
        errors_model_by=by,
        theta_members=members,
    )


def _inverse_curvature(
    nll: MixtureLikelihood, result: ScanResult, space: ParameterSpace
) -> np.ndarray:
    r"""The inverse NLL curvature `(Q, Q)` over the floating parameters at the fit:
    the fit's covariance where it has a positive-definite one, else from one pass of
    `error_scale_hessian` with 1% steps."""
    floating = space.floating
    if result.covariance is not None:
        c = np.asarray(result.covariance)[np.ix_(floating, floating)]
        if np.isfinite(c).all() and (np.linalg.eigvalsh(c) > 0).all():
            return c
    curvature, _ = curvature_errors(nll, space, result.theta, passes=1)
    if curvature is None:
        raise FitError(
            "no model error: the NLL curvature at the fit is not positive definite (a "
            "parameter at a bound, or a flat direction)"
        )
    return curvature[1][np.ix_(floating, floating)]
