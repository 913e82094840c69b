r"""Autoregressive Gaussian mixture density (MADE-MoG), the model of seeds 000 and 001."""

from __future__ import annotations

__all__ = ["AutoregressiveMixture"]

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Size, Tensor, nn
from torch.distributions import Distribution, constraints
from zuko.lazy import LazyDistribution
from zuko.nn import MaskedMLP

MIN_WIDTH = 1e-3


class _MixtureDistribution(Distribution):
    r"""p(z | c) = prod_i sum_g w_gi N(z_i; mu_gi, sigma_gi), with the mixture
    parameters of observable i computed by `hyper` from z_<i and the context c."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, hyper: nn.Module, c: Tensor | None, features: int, components: int) -> None:
        self.hyper, self.c = hyper, c
        self.features, self.components = features, components
        batch = Size() if c is None else c.shape[:-1]
        super().__init__(batch, Size((features,)), validate_args=False)

    def expand(self, batch_shape: Size, _instance=None) -> _MixtureDistribution:
        c = None if self.c is None else self.c.expand(*batch_shape, self.c.shape[-1])
        return _MixtureDistribution(self.hyper, c, self.features, self.components)

    def _parameters(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Log-weights, means and widths of every observable's mixture, `(*, F, G)` each."""
        c = z.new_ones(1) if self.c is None else self.c
        z = torch.cat([z, c.expand(*z.shape[:-1], c.shape[-1])], dim=-1)
        phi = self.hyper(z).unflatten(-1, (self.features, 3, self.components))
        logits, mean, width = phi.unbind(-2)
        return F.log_softmax(logits, dim=-1), mean, F.softplus(width) + MIN_WIDTH

    def log_prob(self, z: Tensor) -> Tensor:
        batch = torch.broadcast_shapes(z.shape[:-1], self.batch_shape)
        z = z.expand(*batch, self.features)
        log_w, mean, width = self._parameters(z)
        r = (z.unsqueeze(-1) - mean) / width
        log_n = -0.5 * r**2 - torch.log(width) - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(log_w + log_n, dim=-1).sum(-1)

    @torch.no_grad()
    def sample(self, shape: Size = ()) -> Tensor:
        r"""Draws observable by observable, each from its mixture given those drawn."""
        like = self.hyper[0].weight
        z = like.new_zeros(*shape, *self.batch_shape, self.features)
        for i in range(self.features):
            log_w, mean, width = (p[..., i, :] for p in self._parameters(z))
            g = torch.distributions.Categorical(logits=log_w).sample().unsqueeze(-1)
            mean, width = (p.gather(-1, g).squeeze(-1) for p in (mean, width))
            z[..., i] = mean + width * torch.randn_like(mean)
        return z


class AutoregressiveMixture(LazyDistribution):
    r"""Autoregressive Gaussian mixture (MADE-MoG; Papamakarios et al. 2017, seed 001
    eq. 3): each observable's conditional density given the previous ones and the
    context is a mixture of `components` Gaussians whose weights, means and widths
    (softplus, at least `MIN_WIDTH`) come from one masked network (MADE).

    Calling it with a context `c` `(*, C)` returns the distribution p(z | c) over
    `(*, features)`, with `log_prob` and `sample`.

    Arguments:
        features: Number of observables.
        context: Number of context (theta) features.
        components: Gaussians per observable.
        hidden_features: Hidden layer sizes of the masked network.
        activation: Activation of the masked network.

    Example:
        >>> d = AutoregressiveMixture(2, 1, components=4)
        >>> d(torch.zeros(1)).log_prob(torch.zeros(2)).shape
        torch.Size([])
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        components: int = 20,
        hidden_features: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        self.features, self.components = features, components
        order = torch.arange(features)
        adjacency = order[:, None] > order
        # an unconditional model gets a constant input in place of the context
        inputs = torch.ones(features, max(context, 1), dtype=bool)
        adjacency = torch.cat([adjacency, inputs], dim=1)
        adjacency = adjacency.repeat_interleave(3 * components, dim=0)
        self.hyper = MaskedMLP(adjacency, tuple(hidden_features), activation)

    def forward(self, c: Tensor | None = None) -> Distribution:
        return _MixtureDistribution(self.hyper, c, self.features, self.components)
