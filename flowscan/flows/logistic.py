r"""The standard logistic distribution, the base of flowscan's flows."""

from __future__ import annotations

__all__ = ["Logistic"]

import torch
from torch import Size, Tensor
from torch.distributions import Distribution, constraints


class Logistic(Distribution):
    r"""Logistic distribution, density `exp(-z) / (1 + exp(-z))^2` with `z = (x - loc) / scale`.

    Its tails fall like `exp(-|x|)`, exactly as the logit of a window does near the
    edges of any density that is finite there; so a flow on logit-mapped observables
    needs no extreme warping to describe events close to the window edges (a Gaussian
    base would give them `exp(-x^2/2)` tails and a badly wrong density there).

    Arguments:
        loc: Location, shape `(*,)`.
        scale: Scale, shape `(*,)`, positive.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc: Tensor, scale: Tensor) -> None:
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        super().__init__(self.loc.shape, validate_args=False)

    def expand(self, batch_shape: Size, _instance: Distribution | None = None) -> Logistic:
        return Logistic(self.loc.expand(batch_shape), self.scale.expand(batch_shape))

    def log_prob(self, x: Tensor) -> Tensor:
        z = ((x - self.loc) / self.scale).abs()
        return -z - 2 * torch.log1p(torch.exp(-z)) - torch.log(self.scale)

    def rsample(self, shape: Size = ()) -> Tensor:
        shape = Size(shape) + self.loc.shape
        tiny = torch.finfo(self.loc.dtype).tiny
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(tiny, 1 - 1e-7)
        return self.loc + self.scale * (torch.log(u) - torch.log1p(-u))
