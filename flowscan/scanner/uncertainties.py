r"""Parameter uncertainties from the curvature of the NLL."""

from __future__ import annotations

__all__ = ["covariance", "error_scale_hessian"]

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InputError


def covariance(nll: Callable[[Tensor], Tensor], theta: np.ndarray | Tensor) -> np.ndarray:
    r"""Inverse of the autograd Hessian of `nll` at `theta` `(P,)`, shape `(P, P)`, in
    float64: the asymptotic covariance of the maximum-likelihood estimate (its diagonal
    square roots are the HESSE-style errors). Meant for smooth (closed-form) densities:
    a spline flow's NLL has small ripples in theta that dominate its exact Hessian, so
    for flows use `error_scale_hessian` (what `minuit_scan` hands to HESSE)."""
    theta = torch.as_tensor(theta, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(nll, theta)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    if not (eigenvalues > 0).all():
        raise InputError(
            f"the NLL Hessian at theta = {theta.tolist()} is not positive definite "
            f"(eigenvalues {eigenvalues.tolist()}): not at a minimum, or at a bound"
        )
    return torch.linalg.inv(hessian).numpy()


def error_scale_hessian(
    gradients: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    bounds: np.ndarray,
    step: np.ndarray | None = None,
    passes: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Curvature of the NLL at the scale of its errors, shape `(P, P)`.

    Central differences of the exact gradient, with one step `h_i` per parameter: column
    `i` is `(g(theta + a e_i) - g(theta - b e_i)) / (a + b)` with `a, b = h_i` cut at the
    bounds (one-sided at a bound), symmetrized. The first pass steps by `step` (default
    1% of each range); each later pass steps by the conditional errors `1 / sqrt(H_ii)`
    the previous one implies, so the result measures the curvature over +-1 sigma, the
    scale that defines a 68% interval. Exact for a quadratic NLL; on a spline flow it
    averages out the ripples (~1e-4 at the 0.1 GeV scale on the toy) that dominate the
    pointwise Hessian.

    Arguments:
        gradients: Exact gradients of the NLL at a batch of points `(K, P)`, shape
            `(K, P)`; called once per pass with `K = 2P`.
        theta: The point, shape `(P,)`, within `bounds`.
        bounds: `(P, 2)` lower and upper bounds.
        step: First steps `(P,)`, e.g. those a previous call returned.
        passes: Number of batched gradient calls.

    Returns:
        The Hessian `(P, P)` and the conditional errors `(P,)` it implies (the previous
        steps where a diagonal element is not positive), to start the next call with.
    """
    theta = np.asarray(theta, dtype=np.float64)
    low, high = bounds[:, 0], bounds[:, 1]
    step = 0.01 * (high - low) if step is None else step
    eye = np.eye(len(theta))
    for _ in range(passes):
        up, down = np.minimum(step, high - theta), np.minimum(step, theta - low)
        g = gradients(np.concatenate([theta + up[:, None] * eye, theta - down[:, None] * eye]))
        hessian = (g[: len(theta)] - g[len(theta) :]) / (up + down)[:, None]
        hessian = (hessian + hessian.T) / 2
        diagonal = np.diag(hessian)
        step = np.where(diagonal > 0, 1 / np.sqrt(np.abs(diagonal)), step)
    return hessian, step
