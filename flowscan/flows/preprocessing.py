r"""Bijective maps of bounded observables onto the real line: a logit/log map with
standardization, and seed 001's response curve onto a flattened latent space."""

from __future__ import annotations

__all__ = ["BoundedStandardize", "ResponseCurve"]

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Transform, constraints
from zuko.lazy import LazyTransform

from ..exceptions import InputError
from ..variables import Variable, bounds_tensor


class _BoundedStandardizeTransform(Transform):
    r"""Per feature: `y = logit((x - low) / (high - low))` for a window, `y = log(x - low)`
    for a lower bound only, `y = -log(high - x)` for an upper bound only, `y = x` if
    open; then `z = (y - mean) / std`. With `offset` (finite edges) a window keeps
    `y = x` and a one-sided bound `y = log(x - low + offset)` (`-log(high - x + offset)`),
    so every edge maps to a finite `z`. `log_abs_det_jacobian` is summed over features."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(
        self, low: Tensor, high: Tensor, mean: Tensor, std: Tensor, offset: Tensor | None
    ) -> None:
        super().__init__()
        self.low, self.high, self.mean, self.std, self.offset = low, high, mean, std, offset

    def _unbounded(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns `y` and the elementwise log-Jacobian `log|dy/dx|`, shapes `(*, F)`."""
        tiny = torch.finfo(x.dtype).eps
        ys, ladjs = [], []
        for j in range(x.shape[-1]):
            xj, lo, hi = x[..., j], self.low[j], self.high[j]
            s = 0.0 if self.offset is None else self.offset[j]
            if math.isfinite(lo) and math.isfinite(hi) and self.offset is None:
                u = ((xj - lo) / (hi - lo)).clamp(tiny, 1 - tiny)
                ys.append(torch.log(u) - torch.log1p(-u))
                ladjs.append(-math.log(hi - lo) - torch.log(u) - torch.log1p(-u))
            elif math.isfinite(lo) and not math.isfinite(hi):
                d = (xj - lo + s).clamp_min(tiny)
                ys.append(torch.log(d))
                ladjs.append(-torch.log(d))
            elif math.isfinite(hi) and not math.isfinite(lo):
                d = (hi - xj + s).clamp_min(tiny)
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
            s = 0.0 if self.offset is None else self.offset[j]
            if math.isfinite(lo) and math.isfinite(hi) and self.offset is None:
                xs.append(lo + (hi - lo) * torch.sigmoid(yj))
            elif math.isfinite(lo) and not math.isfinite(hi):
                xs.append(lo - s + torch.exp(yj))
            elif math.isfinite(hi) and not math.isfinite(lo):
                xs.append(hi + s - torch.exp(-yj))
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
    set from training data by `adapt`. By default every edge is sent to infinity (logit
    of a window, log of the distance to a one-sided bound). With `finite_edges=True` a
    window keeps its linear scale and a one-sided bound maps by `log(x - low + offset)`,
    `offset` the training data's median distance to the bound (set by `adapt`), so each
    edge lands at a finite latent value (`latent_bounds`): the `"truncated"` model's
    Gaussians are cut there, which keeps the density finite up to and on the edges.

    Arguments:
        observables: The observables, whose `low`/`high` are hard edges (or `None`).
        finite_edges: Keep the edges at finite latent values.
    """

    def __init__(self, observables: list[Variable], finite_edges: bool = False) -> None:
        super().__init__()
        self.bounds = bounds_tensor(observables).tolist()
        self.finite_edges = finite_edges
        self.register_buffer("mean", torch.zeros(len(observables)))
        self.register_buffer("std", torch.ones(len(observables)))
        if finite_edges:
            self.register_buffer("offset", torch.ones(len(observables)))
        else:
            self.offset = None

    def forward(self, c: Tensor | None = None) -> Transform:
        low, high = zip(*self.bounds, strict=True)
        return _BoundedStandardizeTransform(low, high, self.mean, self.std, self.offset)

    def latent_bounds(self) -> tuple[Tensor, Tensor]:
        r"""The latent images of the observables' edges, `(F,)` each, +-inf where open
        (and everywhere without `finite_edges`)."""
        inf = torch.full_like(self.mean, math.inf)
        if not self.finite_edges:
            return -inf, inf
        edges = torch.tensor(self.bounds, dtype=self.mean.dtype, device=self.mean.device)
        z = self.forward()(edges.nan_to_num(0.0, 0.0, 0.0).T.contiguous())  # (2, F): lows, highs
        low = torch.where(torch.isfinite(edges[:, 0]), z[0], -inf)
        high = torch.where(torch.isfinite(edges[:, 1]), z[1], inf)
        return low, high

    @torch.no_grad()
    def adapt(self, x: Tensor) -> None:
        r"""Sets `mean`/`std` (and `offset`) from training events `x` of shape `(N, F)`."""
        x = x.to(self.mean)
        if self.finite_edges:
            for j, (lo, hi) in enumerate(self.bounds):
                if math.isfinite(lo) != math.isfinite(hi):
                    distance = x[:, j] - lo if math.isfinite(lo) else hi - x[:, j]
                    edge = lo if math.isfinite(lo) else hi
                    self.offset[j] = distance.median().clamp_min(1e-6 * (1 + abs(edge)))
        y, _ = self.forward()._unbounded(x)
        self.mean.copy_(y.mean(dim=0))
        self.std.copy_(y.std(dim=0).clamp_min(1e-6))


# Seed 001's latent target q_u(u) = sigma(a) sigma(K - a), a = ALPHA (u + BETA) + GAMMA:
# flat on about [-BETA, BETA] with logistic tails of scale 1/ALPHA.
ALPHA, BETA, GAMMA = 4.0, 3.0, 1.0
_K = 2 * (ALPHA * BETA + GAMMA)


def _latent_cdf(u: Tensor) -> Tensor:
    r"""`Q_u(u)`; `1 - Q_u(u) = Q_u(-u)` as the target is symmetric."""
    a = ALPHA * (u + BETA) + GAMMA
    return (F.softplus(a) - F.softplus(a - _K)) / _K


def _latent_quantile(p: Tensor, q: Tensor) -> Tensor:
    r"""`Q_u^{-1}(p)` given `p` and `q = 1 - p` (each accurate where it is small)."""
    a = torch.log(torch.expm1(p * _K)) - torch.log(-torch.expm1(-q * _K))
    return (a - GAMMA) / ALPHA - BETA


def _latent_log_density(u: Tensor) -> Tensor:
    a = ALPHA * (u + BETA) + GAMMA
    norm = math.log(ALPHA / _K) + math.log1p(-math.exp(-_K))
    return F.logsigmoid(a) + F.logsigmoid(_K - a) + norm


class _ResponseTransform(Transform):
    r"""`u = Q_u^{-1}(Q_x(x))` on the windowed features `index`, identity on the others;
    `Q_x` is piecewise linear through the knots `(knots_x, knots_q)` `(W, K)`, from
    `(low, 0)` to `(high, 1)`. Both `Q_x` and `1 - Q_x` are computed from the nearer
    edge, so events close to either window edge keep their precision."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, index: list[int], knots_x: Tensor, knots_q: Tensor) -> None:
        super().__init__()
        self.index, self.knots_x, self.knots_q = index, knots_x, knots_q

    def _segment(self, w: int, v: Tensor, knots: Tensor) -> tuple[Tensor, ...]:
        xp, qp = self.knots_x[w], self.knots_q[w]
        i = torch.searchsorted(knots, v.contiguous()).clamp(1, len(xp) - 1)
        slope = (qp[i] - qp[i - 1]) / (xp[i] - xp[i - 1])
        return xp[i - 1], xp[i], qp[i - 1], 1 - qp[i], slope

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        tiny = torch.finfo(x.dtype).tiny
        u, ladj = x.clone(), torch.zeros_like(x[..., 0])
        for w, j in enumerate(self.index):
            x0, x1, p0, q1, slope = self._segment(w, x[..., j], self.knots_x[w])
            p = (p0 + slope * (x[..., j] - x0)).clamp_min(tiny)
            q = (q1 + slope * (x1 - x[..., j])).clamp_min(tiny)
            u[..., j] = _latent_quantile(p, q)
            ladj = ladj + torch.log(slope) - _latent_log_density(u[..., j])
        return u, ladj

    def _call(self, x: Tensor) -> Tensor:
        return self.call_and_ladj(x)[0]

    def _inverse(self, u: Tensor) -> Tensor:
        x = u.clone()
        for w, j in enumerate(self.index):
            p, q = _latent_cdf(u[..., j]), _latent_cdf(-u[..., j])
            x0, x1, p0, q1, slope = self._segment(w, p, self.knots_q[w])
            x[..., j] = torch.where(p < 0.5, x0 + (p - p0) / slope, x1 - (q - q1) / slope)
        return x

    def log_abs_det_jacobian(self, x: Tensor, u: Tensor) -> Tensor:
        return self.call_and_ladj(x)[1]


class ResponseCurve(LazyTransform):
    r"""Seed 001's map of bounded observables onto a flattened latent space.

    For each observable with a window [low, high] the response curve
    `Q_x(x) = f D(x) + (1 - f) (x - low) / (high - low)` mixes the training data's
    cumulative distribution `D` (piecewise linear through `knots` quantiles and as many
    evenly spaced points, so `Q_x` is exactly invertible with a piecewise-constant
    Jacobian) with a linear map, and `u = Q_u^{-1}(Q_x(x))` where `Q_u` is the
    cumulative of the target `q_u(u) = sigma(a) sigma(K - a)`, `a = 4 (u + 3) + 1`,
    `K = 26` (seed 001, eq. 1, alpha = 4, beta = 3, gamma = 1): flat on about [-3, 3]
    with smooth tails, so peaks are spread out and the window edges sent to infinity.
    Observables with an open edge pass through unchanged. `fraction` is f; the knots
    are set from training data by `adapt`.

    Arguments:
        observables: The observables with their bounds.
        fraction: Weight f of the data's cumulative in the response curve.
        knots: Quantile knots (the curve has `2 knots` in all).
    """

    def __init__(self, observables: list[Variable], fraction: float = 0.8, knots: int = 128):
        super().__init__()
        if not 0 <= fraction < 1:
            raise InputError(f"fraction must lie in [0, 1), got {fraction}")
        bounds = bounds_tensor(observables)
        self.index = [j for j, (lo, hi) in enumerate(bounds.tolist()) if math.isfinite(lo + hi)]
        self.fraction, self.knots = fraction, knots
        grid = torch.linspace(0, 1, 2 * knots)
        window = bounds[self.index].float()
        knots_x = window[:, :1] + grid * (window[:, 1:] - window[:, :1])
        self.register_buffer("knots_x", knots_x)
        self.register_buffer("knots_q", grid.expand_as(knots_x).clone())

    def forward(self, c: Tensor | None = None) -> Transform:
        return _ResponseTransform(self.index, self.knots_x, self.knots_q)

    @torch.no_grad()
    def adapt(self, x: Tensor) -> None:
        r"""Sets the knots from training events `x` `(N, F)`."""
        x = x.detach().cpu()  # the knots are computed on the CPU, then moved to the model's device
        levels = torch.linspace(0, 1, self.knots + 1, dtype=torch.float64)[1:-1]
        for w, j in enumerate(self.index):
            xj = x[:, j].to(torch.float64).sort().values
            lo, hi = self.knots_x[w, 0].item(), self.knots_x[w, -1].item()
            grid = torch.linspace(lo, hi, self.knots + 1, dtype=torch.float64)
            knots = torch.cat([grid, torch.quantile(xj, levels)]).sort().values
            # distinct knots, at least 1e-6 of the window apart (events piled on one value)
            step = 1e-6 * (hi - lo) * torch.arange(len(knots), dtype=torch.float64)
            knots = torch.cummax(knots - step, 0).values + step
            cdf = torch.searchsorted(xj, knots, right=True) / len(xj)
            cdf[0], cdf[-1] = 0.0, 1.0
            q = self.fraction * cdf + (1 - self.fraction) * (knots - lo) / (hi - lo)
            self.knots_x[w] = knots.to(self.knots_x)
            self.knots_q[w] = (q / q[-1]).to(self.knots_q)
