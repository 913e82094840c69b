r"""Parameter uncertainties from the curvature of the NLL."""

from __future__ import annotations

__all__ = [
    "batch_gradients",
    "covariance",
    "curvature_errors",
    "error_scale_hessian",
    "sandwich",
]

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InputError
from .space import ParameterSpace


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


def batch_gradients(
    nll: Callable[[Tensor], Tensor], space: ParameterSpace, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""NLL `(K,)` and its gradient `(K, Q)` with respect to the floating parameters of
    `space`, at their values `(K, Q)` (the others at the start): through the likelihood's
    `value_and_grad` where it has one (it sizes the batches), else autograd of the sum."""
    theta = torch.as_tensor(np.asarray(values, dtype=np.float64))
    batched = getattr(nll, "value_and_grad", None)
    if batched is not None:
        floating = torch.from_numpy(space.floating)
        value, g = batched(space.full(theta), floating)
        g = g[:, floating.to(g.device)]
    else:
        theta.requires_grad_()
        value = nll(space.full(theta))
        (g,) = torch.autograd.grad(value.sum(), theta)
    return value.detach().cpu().numpy(), g.cpu().numpy()


def curvature_errors(
    nll: Callable[[Tensor], Tensor], space: ParameterSpace, theta: np.ndarray, passes: int = 3
) -> tuple[tuple[np.ndarray, np.ndarray] | None, int]:
    r"""Errors `(P,)` and covariance `(P, P)` at a minimum `theta` `(P,)` (0 for fixed
    parameters): the inverse of the curvature at the scale of the errors
    (`error_scale_hessian`, `passes` of 2Q gradients), what HESSE gives Minuit's; `None`
    where that curvature is not positive definite (a flat direction). With the number
    of gradients taken.

    Example:
        >>> from flowscan.variables import Variable
        >>> nll = lambda t: ((t / torch.tensor([2.0, 0.5])) ** 2).sum(-1) / 2
        >>> space = ParameterSpace([Variable("a", "", -5, 5), Variable("b", "", -5, 5)])
        >>> (errors, _), gradients = curvature_errors(nll, space, np.zeros(2))
        >>> errors.round(6).tolist()
        [2.0, 0.5]
        >>> gradients
        12
    """
    theta = np.asarray(theta, dtype=np.float64)
    floating = space.floating
    at = ParameterSpace(space.theta_vars, theta, space.fixed_names)
    hessian, _ = error_scale_hessian(
        lambda values: batch_gradients(nll, at, values)[1], theta[floating],
        space.floating_bounds, passes=passes,
    )  # fmt: skip
    gradients = 2 * len(hessian) * passes
    if not (np.isfinite(hessian).all() and np.linalg.eigvalsh(hessian).min() > 0):
        return None, gradients
    inverse = np.linalg.inv(hessian)
    index = np.flatnonzero(floating)
    errors = np.zeros(len(theta))
    errors[index] = np.sqrt(np.diag(inverse))
    out = np.zeros((len(theta),) * 2)
    out[np.ix_(index, index)] = inverse
    return (errors, out), gradients


def sandwich(
    covariance: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    constraints: np.ndarray | None = None,
) -> np.ndarray:
    r"""The covariance `(Q, Q)` of a fit to weighted events: C D C, with C = `covariance`
    `(Q, Q)` the inverse curvature of the weighted NLL at its minimum and D = sum_i w_i^2
    s_i s_i^T from each event's score s_i `(N, Q)` (`MixtureLikelihood.scores`) and
    weight w_i `(N,)`, plus the curvature `(Q, Q)` of the `constraints`' NLL terms, the
    information of the auxiliary measurements (which the events' scores do not carry).

    This is the asymptotically correct covariance for event weights (the
    "AsymptoticError" of RooFit; C. Langenbruch, Eur. Phys. J. C 82 (2022) 393); the
    "SumW2Error" alternative C H_{w^2} C, with H_{w^2} the curvature of the
    w^2-weighted NLL, is exact only where the weights do not depend on the observables.
    Negative weights are allowed. It does not change if every weight is multiplied by
    one number (C scales by its inverse, D by its square). Without weights (all 1) it
    tends to C as the events grow, where D tends to the inverse of C.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> x = rng.exponential(2.0, 400_000)  # rate lambda = 0.5; NLL -sum log(l e^(-l x))
        >>> lam = 1 / x.mean()  # the MLE
        >>> c = np.array([[lam**2 / len(x)]])  # inverse curvature, unweighted
        >>> v = sandwich(c, (1 / lam - x)[:, None], np.ones_like(x))
        >>> round(float(np.sqrt(v[0, 0] / c[0, 0])), 2)  # the sandwich agrees
        1.0
    """
    weighted = scores * (np.asarray(weights, dtype=np.float64) ** 2)[:, None]
    middle = weighted.T @ scores
    if constraints is not None:
        middle = middle + constraints
    return covariance @ middle @ covariance
