r"""Autoregressive Gaussian mixture density (MADE-MoG), the model of seeds 000 and 001."""

from __future__ import annotations

__all__ = ["AutoregressiveMixture", "log_normal_mass", "mixture_log_prob", "mixture_terms"]

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Size, Tensor, nn
from torch.distributions import Distribution, constraints
from zuko.lazy import LazyDistribution
from zuko.nn import MaskedMLP

MIN_WIDTH = 1e-3


def _log1mexp(a: Tensor) -> Tensor:
    r"""`log(1 - exp(a))` for `a <= 0`, accurate at both ends (Maechler 2012; in an ONNX
    export, which has no `expm1`, only below -log 2)."""
    e = torch.exp(a) - 1 if torch.onnx.is_in_onnx_export() else torch.expm1(a)
    return torch.where(a > -math.log(2), torch.log(-e), torch.log1p(-torch.exp(a)))


def _lower_tail(alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""The standardized interval `[alpha, beta]` mirrored, where needed, into the lower
    tail (`alpha + beta <= 0`), where `log_ndtr` keeps its precision: the ends and
    whether it was mirrored."""
    flip = alpha + beta > 0
    return torch.where(flip, -beta, alpha), torch.where(flip, -alpha, beta), flip


def log_normal_mass(alpha: Tensor, beta: Tensor) -> Tensor:
    r"""`log(Phi(beta) - Phi(alpha))` for `alpha < beta` (either may be infinite),
    elementwise, without cancellation in either tail. Computed in float64 (float32's
    `log_ndtr` has no usable gradient below -1e5) and returned in the input's dtype;
    gradients stay finite where an end is infinite.

    Example:
        >>> a, b = torch.tensor([-1.0, 30.0, -math.inf]), torch.tensor([1.0, 31.0, 0.0])
        >>> log_normal_mass(a, b)  # log 0.6827, 30 sigma into the tail, log 1/2
        tensor([-3.8172e-01, -4.5432e+02, -6.9315e-01])
    """
    dtype = torch.promote_types(alpha.dtype, beta.dtype)
    alpha, beta = torch.broadcast_tensors(alpha.double(), beta.double())
    low_open, high_open = alpha == -math.inf, beta == math.inf
    # finite stand-ins for open ends, so that no branch of the `where`s below is NaN
    a = torch.where(low_open, torch.minimum(beta, torch.zeros_like(beta)) - 1, alpha)
    b = torch.where(high_open, torch.maximum(a, torch.zeros_like(a)) + 1, beta)
    out = torch.where(low_open, _log_ndtr(b), _log_window(a, b))
    out = torch.where(high_open, _log_ndtr(-a), out)
    return torch.where(low_open & high_open, torch.zeros_like(out), out).to(dtype)


def _truncated_normal(alpha: Tensor, beta: Tensor) -> Tensor:
    r"""Standard normal draws truncated to `[alpha, beta]` (inverse CDF in log space, two
    Newton steps on `log_ndtr`, so components far outside the window sample correctly)."""
    lo, hi, flip = _lower_tail(alpha.double(), beta.double())
    log_lo, log_hi = torch.special.log_ndtr(lo), torch.special.log_ndtr(hi)
    u = torch.rand_like(lo).clamp_min(1e-300)
    log_p = log_hi + torch.log(u + (1 - u) * torch.exp(log_lo - log_hi))
    t = torch.special.ndtri(log_p.exp())
    far = -torch.sqrt((-2 * log_p - torch.log(-2 * log_p) - math.log(2 * math.pi)).clamp_min(0))
    t = torch.where(torch.isfinite(t), t, far)
    for _ in range(2):
        log_pdf = -0.5 * t**2 - 0.5 * math.log(2 * math.pi)
        t = t - (torch.special.log_ndtr(t) - log_p) / torch.exp(log_pdf - torch.special.log_ndtr(t))
    t = torch.minimum(torch.maximum(t, lo), hi)
    return torch.where(flip, -t, t).to(alpha.dtype)


def _erfc(x: Tensor) -> Tensor:
    r"""`erfc` elementwise: torch's, or in an ONNX export (whose runtime has no float64
    `Erf`) from elementary operations: 1 - the Taylor series of erf below |x| = 2 (40
    terms, 2e-13 relative), the continued fraction above (60 terms, 1e-15), and
    erfc(-x) = 2 - erfc(x)."""
    if not torch.onnx.is_in_onnx_export():
        return torch.special.erfc(x)
    a = x.abs()
    small, large = a.clamp_max(2.0), a.clamp_min(2.0)
    term = erf = small  # no zeros_like: a traced graph would fix its shape
    for k in range(1, 40):
        term = -term * small * small / k
        erf = erf + term / (2 * k + 1)
    fraction = 30 / large
    for k in range(59, 0, -1):
        fraction = (k / 2) / (large + fraction)
    tail = torch.exp(-large * large) / (math.sqrt(math.pi) * (large + fraction))
    upper = torch.where(a < 2, 1 - 2 / math.sqrt(math.pi) * erf, tail)
    return torch.where(x < 0, 2 - upper, upper)


def _log_ndtr_far(t: Tensor) -> Tensor:
    r"""`log Phi(t)` for t <= -30 (float64's `_ERFC_RANGE`; larger t are taken as -30),
    from the asymptotic series, to 2e-14: what an ONNX export computes there in place
    of `log_ndtr`."""
    t = t.clamp_max(-_ERFC_RANGE[torch.float64])
    r = (t * t).reciprocal()
    series = 1 - r * (1 - 3 * r * (1 - 5 * r * (1 - 7 * r * (1 - 9 * r * (1 - 11 * r)))))
    return -0.5 * t * t - torch.log(-t) - 0.5 * math.log(2 * math.pi) + torch.log(series)


# Beyond this many standard deviations `erfc` nears the dtype's underflow (erfc(30 /
# sqrt 2) = 5e-198, erfc(10 / sqrt 2) = 2e-23): `log_ndtr` takes over below -bound.
_ERFC_RANGE = {torch.float64: 30.0, torch.float32: 10.0}


def _log_ndtr(t: Tensor) -> Tensor:
    r"""`log Phi(t)` elementwise from one `erfc` of the upper tail, `e = erfc(|t| / sqrt 2)`:
    `log(e / 2)` below 0, `log1p(-e / 2)` above (to ~4e-13 relative against torch's
    `log_ndtr`, which is ~6x slower on the CPU); `log_ndtr` itself on the elements
    below -`_ERFC_RANGE` of the dtype, usually none."""
    bound = _ERFC_RANGE.get(t.dtype, 10.0)
    upper = t > 0
    # |t| with the right derivative at 0, at most the bound: both branches are finite
    # everywhere (their gradients too), and above it log Phi is log Phi(bound), -5e-198
    # (float64), 0 to within any sum it enters
    u = torch.where(upper, t, -t).clamp_max(bound)
    e = _erfc(u / math.sqrt(2))
    out = torch.where(upper, torch.log1p(-0.5 * e), torch.log(0.5 * e))
    far = t < -bound
    if torch.onnx.is_in_onnx_export():  # a graph has no branch on the data
        return torch.where(far, _log_ndtr_far(t), out)
    if far.any():
        out = out.masked_scatter(far, torch.special.log_ndtr(t[far]))
    return out


def _log_window(alpha: Tensor, beta: Tensor) -> Tensor:
    r"""`log(Phi(beta) - Phi(alpha))` for finite `alpha < beta`, elementwise: the interval
    mirrored into the lower tail where needed, then one difference of two `erfc`, each
    accurate there to its last bits (a few passes over the elements: the mixture's
    masses are most of its cost). It cancels only where the window is narrow against
    the Gaussian (a window of 1e-3 widths keeps ~1e-13 relative, as `log_ndtr`s would);
    the elements beyond -`_ERFC_RANGE` of the dtype, where `erfc` underflows, take
    `log_ndtr`s (usually none)."""
    lo, hi, _ = _lower_tail(alpha, beta)
    bound = _ERFC_RANGE.get(hi.dtype, 10.0)
    # finite stand-ins beyond the bound, replaced below; Phi(-bound - 10) is 0 in the dtype
    a, b = lo.clamp_min(-bound - 10), hi.clamp_min(-bound)
    s = -1 / math.sqrt(2)
    out = torch.log(_erfc(b * s) - _erfc(a * s)) - math.log(2)
    far = hi < -bound
    if torch.onnx.is_in_onnx_export():
        log_hi = _log_ndtr_far(hi)
        return torch.where(far, log_hi + _log1mexp(_log_ndtr_far(lo) - log_hi), out)
    if far.any():
        log_hi = torch.special.log_ndtr(hi[far])
        out = out.masked_scatter(far, log_hi + _log1mexp(torch.special.log_ndtr(lo[far]) - log_hi))
    return out


def _log_mass(mean: Tensor, inv: Tensor, low: list[float], high: list[float]) -> Tensor | None:
    r"""Log-mass inside `[low_j, high_j]` of the Gaussians `(mean, 1 / inv)` `(*, n, G)` of
    n observables whose edges are of one kind: one `_log_ndtr` for a one-sided support,
    `_log_window` for a window, `None` (no truncation) for the real line."""
    if math.isinf(low[0]) and math.isinf(high[0]):
        return None
    if math.isinf(high[0]):
        return _log_ndtr((mean - mean.new_tensor(low)[:, None]) * inv)
    if math.isinf(low[0]):
        return _log_ndtr((mean.new_tensor(high)[:, None] - mean) * inv)
    lo, hi = (mean.new_tensor(e)[:, None] for e in (low, high))
    return _log_window((lo - mean) * inv, (hi - mean) * inv)


def mixture_terms(
    log_w: Tensor,
    mean: Tensor,
    width: Tensor,
    edges: Sequence[tuple[float, float]] | None = None,
    first_fixed: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""What the mixture log-density needs of its parameters, apart from the events:
    `(log_w - log width - log sqrt(2 pi) - log mass, mean, 1 / width)`, `(*, F, G)`
    each, mass being each Gaussian's inside its observable's `edges` (low, high) (1 for
    the real line, and for every observable where `edges` is `None`). With one
    observable they depend on theta alone: computed once per theta, not per event.
    `first_fixed`: the first observable's parameters are the same for every event of
    the batch dimension -3 (an autoregressive model's first observable sees the context
    only), so its masses are computed once and broadcast. The masses are computed for
    runs of observables with edges of one kind at a time (a few passes over the
    elements each: they are most of the mixture's cost)."""
    inv = width.reciprocal()
    const = log_w + inv.log() - 0.5 * math.log(2 * math.pi)
    # in an ONNX export the runs are joined (a traced assignment by index fixes the shape)
    exporting, runs = torch.onnx.is_in_onnx_export(), []
    if edges is not None and not exporting:  # the masses are subtracted in place
        const = const.broadcast_to(torch.broadcast_shapes(const.shape, mean.shape)).contiguous()
    j = 0
    while edges is not None and j < len(edges):
        k = j + 1
        if not (j == 0 and first_fixed):
            kind = [math.isinf(e) for e in edges[j]]
            while k < len(edges) and [math.isinf(e) for e in edges[k]] == kind:
                k += 1
        m, v = mean[..., j:k, :], inv[..., j:k, :]
        if j == 0 and first_fixed:  # one row stands for every event
            m, v = m[..., :1, :, :], v[..., :1, :, :]
        low, high = (list(e) for e in zip(*edges[j:k], strict=True))
        mass = _log_mass(m, v, low, high)
        if exporting:
            runs.append(const[..., j:k, :] + 0 * mean[..., j:k, :] - (0 if mass is None else mass))
        elif mass is not None:
            const[..., j:k, :] -= mass
        j = k
    return (torch.cat(runs, dim=-2) if runs else const), mean, inv


def mixture_log_prob(z: Tensor, const: Tensor, mean: Tensor, inv: Tensor) -> Tensor:
    r"""log p(z) of independent per-observable Gaussian mixtures, summed over observables:
    `logsumexp(const - (z - mean)^2 inv^2 / 2)` over the G components, for latent events
    `z` `(*, F)` and the terms of `mixture_terms` `(*, F, G)`, broadcast against them."""
    r = torch.addcmul(-mean * inv, z.unsqueeze(-1), inv)  # (z - mean) / width, fused
    return torch.logsumexp(torch.addcmul(const, r, r, value=-0.5), dim=-1).sum(-1)


class _MixtureDistribution(Distribution):
    r"""p(z | c) = prod_i sum_g w_gi N(z_i; mu_gi, sigma_gi) / M_gi, with the mixture
    parameters of observable i computed by `hyper` from z_<i and the context c, and
    M_gi the mass of the Gaussian inside the edges `[low_i, high_i]` of z_i (1 where
    they are the real line, or `edges` is `None`)."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(
        self,
        hyper: nn.Module,
        c: Tensor | None,
        features: int,
        components: int,
        edges: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        self.hyper, self.c, self.edges = hyper, c, edges
        self.features, self.components = features, components
        batch = Size() if c is None else c.shape[:-1]
        super().__init__(batch, Size((features,)), validate_args=False)

    def expand(self, batch_shape: Size, _instance=None) -> _MixtureDistribution:
        c = None if self.c is None else self.c.expand(*batch_shape, self.c.shape[-1])
        return _MixtureDistribution(self.hyper, c, self.features, self.components, self.edges)

    def _parameters(self, z: Tensor, share: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        r"""Log-weights, means and widths of every observable's mixture, `(*, F, G)` each.

        With one observable they depend on the context alone (the network's masks cut
        z off), so the network runs once per context, not once per event, and the
        result has the context's batch shape, to broadcast against the events. `share`
        is the first layer's output before its activation, the events' part
        (`AutoregressiveMixture.share`) plus the context's (`context_share`), each
        computed once for events or contexts that stay fixed; the context is then unused."""
        like = self.hyper[0].weight
        c = like.new_ones(1) if self.c is None else self.c
        if self.features == 1:
            phi = self.hyper(torch.cat([c.new_zeros(*c.shape[:-1], 1), c], dim=-1))
        elif share is None:
            phi = self.hyper(torch.cat([z, c.expand(*z.shape[:-1], c.shape[-1])], dim=-1))
        else:
            phi = share
            for layer in list(self.hyper)[1:]:
                phi = layer(phi)
        logits, mean, width = phi.unflatten(-1, (self.features, 3, self.components)).unbind(-2)
        # softplus runs ~10x slower on the strided slice than on a copy (float32, CPU)
        width = width.contiguous()
        if torch.onnx.is_in_onnx_export():  # onnxruntime has no float64 Softplus
            width = width.clamp_min(0) + torch.log1p(torch.exp(-width.abs()))
        else:
            width = F.softplus(width)
        return F.log_softmax(logits, dim=-1), mean, width + MIN_WIDTH

    def terms(self, z: Tensor | None, share: Tensor | None = None) -> tuple[Tensor, ...]:
        r"""`mixture_terms` of the parameters for latent events `z` `(*, F)` (`share` as
        in `_parameters`); with one observable `z` may be `None`: they depend on the
        context alone."""
        # the first observable's parameters are one row for all events where the
        # context is one per batch (a fit), not one per event (training)
        per_event = self.c is not None and (
            torch.onnx.is_in_onnx_export()  # a graph takes a theta per event
            or (self.c.ndim > 1 and self.c.shape[-2] > 1)
        )
        first_fixed = self.features > 1 and z is not None and z.ndim > 1 and not per_event
        return mixture_terms(*self._parameters(z, share), self.edges, first_fixed)

    def log_prob(self, z: Tensor) -> Tensor:
        r"""log p(z | c) `(*,)` for latent events `z` `(*, F)`."""
        return mixture_log_prob(z, *self.terms(z))

    @torch.no_grad()
    def sample(self, shape: Size = ()) -> Tensor:
        r"""Draws observable by observable, each from its mixture given those drawn."""
        like = self.hyper[0].weight
        z = like.new_zeros(*shape, *self.batch_shape, self.features)
        for i in range(self.features):
            shape = (*z.shape[:-1], self.components)
            log_w, mean, width = (p[..., i, :].expand(shape) for p in self._parameters(z))
            g = torch.distributions.Categorical(logits=log_w).sample().unsqueeze(-1)
            mean, width = (p.gather(-1, g).squeeze(-1) for p in (mean, width))
            if self.edges is None:
                z[..., i] = mean + width * torch.randn_like(mean)
            else:
                low, high = self.edges[i]
                t = _truncated_normal((low - mean) / width, (high - mean) / width)
                z[..., i] = (mean + width * t).clamp(low, high)
        return z


class AutoregressiveMixture(LazyDistribution):
    r"""Autoregressive Gaussian mixture (MADE-MoG; Papamakarios et al. 2017, seed 001
    eq. 3): each observable's conditional density given the previous ones and the
    context is a mixture of `components` Gaussians whose weights, means and widths
    (softplus, at least `MIN_WIDTH`) come from one masked network (MADE). Where
    `support` gives an observable finite edges in latent space (`BoundedStandardize`
    with `finite_edges`), its Gaussians are truncated to them and renormalized, so the
    density stays finite on the edges instead of vanishing there.

    Calling it with a context `c` `(*, C)` returns the distribution p(z | c) over
    `(*, features)`, with `log_prob` and `sample`.

    Arguments:
        features: Number of observables.
        context: Number of context (theta) features.
        components: Gaussians per observable.
        hidden_features: Hidden layer sizes of the masked network.
        activation: Activation of the masked network.
        truncated: Truncate the Gaussians to the support buffers `low`, `high`
            `(features,)` (set them after adapting the preprocessing).

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
        truncated: bool = False,
    ) -> None:
        super().__init__()
        self.features, self.components, self.truncated = features, components, truncated
        if truncated:
            self.register_buffer("low", torch.full((features,), -math.inf))
            self.register_buffer("high", torch.full((features,), math.inf))
        order = torch.arange(features)
        adjacency = order[:, None] > order
        # an unconditional model gets a constant input in place of the context
        inputs = torch.ones(features, max(context, 1), dtype=bool)
        adjacency = torch.cat([adjacency, inputs], dim=1)
        adjacency = adjacency.repeat_interleave(3 * components, dim=0)
        self.hyper = MaskedMLP(adjacency, tuple(hidden_features), activation)

    def forward(self, c: Tensor | None = None) -> Distribution:
        # the edges as numbers once per context, not per chunk of events (a device sync)
        edges = None
        if self.truncated:
            edges = list(zip(self.low.tolist(), self.high.tolist(), strict=True))
        return _MixtureDistribution(self.hyper, c, self.features, self.components, edges)

    def share(self, z: Tensor) -> Tensor | None:
        r"""The events' part of the network's first layer for latent events `z` `(N, F)`,
        `(N, H)`: for events that stay fixed while the context changes (a fit), computed
        once and passed to `log_prob(z, share)`; `None` with one observable, whose
        mixture depends on the context alone."""
        if self.features == 1:
            return None
        first = self.hyper[0]
        return F.linear(z, (first.mask * first.weight)[:, : self.features])

    def context_share(self, c: Tensor | None) -> Tensor:
        r"""The context's part of the network's first layer, its bias included, for a
        context `c` `(*, C)` (`None`: unconditional), `(*, H)`: added to the events'
        part (`share`) it is the first layer's output before its activation."""
        first = self.hyper[0]
        c = first.weight.new_ones(1) if c is None else c
        return F.linear(c, (first.mask * first.weight)[:, self.features :], first.bias)
