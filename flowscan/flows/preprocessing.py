r"""Bijective maps of bounded observables onto the real line."""

from __future__ import annotations

__all__ = ["BoundedStandardize"]

import math

import torch
from torch import Tensor
from torch.distributions import Transform, constraints
from zuko.lazy import LazyTransform

from ..variables import Variable, bounds_tensor


class _BoundedStandardizeTransform(Transform):
    r"""Per feature: `y = logit((x - low) / (high - low))` for a window, `y = log(x - low)`
    for a lower bound only, `y = -log(high - x)` for an upper bound only, `y = x` if
    open; then `z = (y - mean) / std`. `log_abs_det_jacobian` is summed over features."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, low: Tensor, high: Tensor, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.low, self.high, self.mean, self.std = low, high, mean, std

    def _unbounded(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns `y` and the elementwise log-Jacobian `log|dy/dx|`, shapes `(*, F)`."""
        tiny = torch.finfo(x.dtype).eps
        ys, ladjs = [], []
        for j in range(x.shape[-1]):
            xj, lo, hi = x[..., j], self.low[j], self.high[j]
            if math.isfinite(lo) and math.isfinite(hi):
                u = ((xj - lo) / (hi - lo)).clamp(tiny, 1 - tiny)
                ys.append(torch.log(u) - torch.log1p(-u))
                ladjs.append(-math.log(hi - lo) - torch.log(u) - torch.log1p(-u))
            elif math.isfinite(lo):
                d = (xj - lo).clamp_min(tiny)
                ys.append(torch.log(d))
                ladjs.append(-torch.log(d))
            elif math.isfinite(hi):
                d = (hi - xj).clamp_min(tiny)
                ys.append(-torch.log(d))
                ladjs.append(-torch.log(d))
            else:
                ys.append(xj)
                ladjs.append(torch.zeros_like(xj))
        return torch.stack(ys, dim=-1), torch.stack(ladjs, dim=-1)

    def _call(self, x: Tensor) -> Tensor:
        y, _ = self._unbounded(x)
        return (y - self.mean) / self.std

    def _inverse(self, z: Tensor) -> Tensor:
        y = z * self.std + self.mean
        xs = []
        for j in range(y.shape[-1]):
            yj, lo, hi = y[..., j], self.low[j], self.high[j]
            if math.isfinite(lo) and math.isfinite(hi):
                xs.append(lo + (hi - lo) * torch.sigmoid(yj))
            elif math.isfinite(lo):
                xs.append(lo + torch.exp(yj))
            elif math.isfinite(hi):
                xs.append(hi - torch.exp(-yj))
            else:
                xs.append(yj)
        return torch.stack(xs, dim=-1)

    def log_abs_det_jacobian(self, x: Tensor, z: Tensor) -> Tensor:
        _, ladj = self._unbounded(x)
        return (ladj - torch.log(self.std)).sum(dim=-1)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, ladj = self._unbounded(x)
        return (y - self.mean) / self.std, (ladj - torch.log(self.std)).sum(dim=-1)


class BoundedStandardize(LazyTransform):
    r"""Lazy (zuko-style) transform from observables in their own units to standardized
    real values: calling it returns the bijection, with its log-Jacobian, so a flow
    built on top is a normalized density in the observables' units.

    The bounds come from the observables; `mean` and `std` of the unbounded values are
    set from training data by `adapt`.

    Arguments:
        observables: The observables, whose `low`/`high` are hard edges (or `None`).
    """

    def __init__(self, observables: list[Variable]) -> None:
        super().__init__()
        self.bounds = bounds_tensor(observables).tolist()
        self.register_buffer("mean", torch.zeros(len(observables)))
        self.register_buffer("std", torch.ones(len(observables)))

    def forward(self, c: Tensor | None = None) -> Transform:
        low, high = zip(*self.bounds, strict=True)
        return _BoundedStandardizeTransform(low, high, self.mean, self.std)

    @torch.no_grad()
    def adapt(self, x: Tensor) -> None:
        r"""Sets `mean`/`std` from training events `x` of shape `(N, F)`."""
        y, _ = self.forward()._unbounded(x.to(self.mean))
        self.mean.copy_(y.mean(dim=0))
        self.std.copy_(y.std(dim=0).clamp_min(1e-6))
