r"""Parameter uncertainties from the curvature of the NLL."""

from __future__ import annotations

__all__ = ["covariance"]

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor


def covariance(nll: Callable[[Tensor], Tensor], theta: np.ndarray | Tensor) -> np.ndarray:
    r"""Inverse of the autograd Hessian of `nll` at `theta` `(P,)`, shape `(P, P)`, in
    float64: the asymptotic covariance of the maximum-likelihood estimate (its diagonal
    square roots are the HESSE-style errors). Meant for smooth (closed-form) densities:
    a spline flow's NLL has small ripples in theta that dominate its exact Hessian, so
    for flows use `minuit_scan`, whose HESSE differentiates at the scale of the errors."""
    theta = torch.as_tensor(theta, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(nll, theta)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    if not (eigenvalues > 0).all():
        raise ValueError(
            f"the NLL Hessian at theta = {theta.tolist()} is not positive definite "
            f"(eigenvalues {eigenvalues.tolist()}): not at a minimum, or at a bound"
        )
    return torch.linalg.inv(hessian).numpy()
