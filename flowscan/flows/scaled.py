r"""Nuisances with a known action on the observables, applied to the events exactly.

A jet energy scale multiplies m_jj by 1 + alpha s; a mass scale multiplies m. Where the
map is known, the density at s follows from the nominal one by the change of variables,

.. math:: p(x | \theta, s) = p_0(x / f(s) | \theta) \prod_j \frac{1}{f_j(s)} \Big/ Z(\theta, s),
    \quad f_j(s) = \prod_{\text{scales on } x_j} (1 + \alpha s),

with Z the nominal probability of the window mapped back, Z = P_0(W / f(s) | theta) (1
for supports a scale maps onto themselves: [0, inf), the real line). The density is
then exact in s by construction, and one model trained at the nominal serves every s,
instead of a model conditioned on s that has to learn the map.
"""

from __future__ import annotations

__all__ = ["Scale", "Scaled", "parse_scale"]

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..constraints import Constraint
from ..exceptions import InputError
from ..variables import Variable, bounds_tensor, check_events

# A scale nuisance in units of its 1-sigma variation, over +-3 sigma.
RANGE = 3.0
# Gauss-Legendre nodes per window edge, over the thin slab between the edge and its
# image (at most 6 alpha of the edge wide). A smooth nominal (the mixture, an affine
# flow) is integrated to float64 rounding; a spline flow is smooth between its knots
# only, and 128 nodes leave ~1e-8 of log Z (measured against 4096 nodes): ~1e-3 on the
# NLL of 1e5 events, below Minuit's tolerance.
NODES = 128


@dataclass(frozen=True)
class Scale:
    r"""A nuisance `name` that multiplies each of `observables` by 1 + `width` s, s in
    units of its 1-sigma variation over [-3, 3], constrained N(0, 1).

    Example:
        >>> jes = Scale("jes", 0.01, ("m_jj", "m_j1", "delta_m"))
        >>> jes.variable
        Variable(name='jes', unit='sigma', low=-3.0, high=3.0)
    """

    name: str
    width: float
    observables: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.width) and 0 < self.width < 1 / RANGE):
            raise InputError(
                f"scale {self.name}: the width is a relative 1-sigma shift in (0, 1/3), "
                f"e.g. 0.01 for 1%; got {self.width}"
            )
        if not self.observables:
            raise InputError(f"scale {self.name}: name the observables it multiplies")

    @property
    def variable(self) -> Variable:
        return Variable(self.name, "sigma", -RANGE, RANGE)

    @property
    def constraint(self) -> Constraint:
        return Constraint(self.name, "gaussian", 1.0)


def parse_scale(spec: str) -> Scale:
    r"""A `Scale` from `name:width:observable[+observable...]` (the `--scale` shorthand).

    Example:
        >>> parse_scale("jes:0.01:m_jj+m_j1+delta_m")
        Scale(name='jes', width=0.01, observables=('m_jj', 'm_j1', 'delta_m'))
    """
    parts = spec.split(":")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise InputError(
            f"--scale {spec!r}: write name:width:observable[+observable...], e.g. "
            "mass_scale:0.01:m or jes:0.01:m_jj+m_j1+delta_m"
        )
    try:
        width = float(parts[1])
    except ValueError:
        raise InputError(f"--scale {spec!r}: the width {parts[1]!r} is not a number") from None
    observables = parts[2].split("+")
    if len(set(observables)) < len(observables):
        raise InputError(f"--scale {spec!r}: name each observable once")
    return Scale(parts[0], width, tuple(observables))


class Scaled(nn.Module):
    r"""The density `nominal` (a `DensityModel`, a `DensityEnsemble` or a closed form)
    with the scale nuisances `scales` applied to the events: parameters theta `(*, D +
    S)`, the nominal's D and then one per scale.

    An ensemble stays one: each member is scaled (`members`), their mean is the density,
    and its model error covers the members' spread at every s.

    Arguments:
        nominal: The density at s = 0, trained on a support that holds the window
            mapped back for every s in [-3, 3]: W / f(s).
        scales: The nuisances.
        window: The observables of the data (their bounds the analysis window); by
            default the nominal's. A finite window edge of a scaled observable needs the
            nominal density beyond it (train the nominal on a window wider by 3 alpha on
            each side), and a one-observable density (Z takes its marginal).

    Example:
        >>> from flowscan.samples import BreitWigner
        >>> scale = Scale("mass_scale", 0.01, ("m",))
        >>> wide = BreitWigner(window=(97.0, 1031.0))  # the window / (1 +- 0.03)
        >>> scaled = Scaled(wide, [scale], window=BreitWigner().observables)
        >>> m = torch.tensor([[505.0]], dtype=torch.float64)
        >>> theta = torch.tensor([500.0, 40.0, 1.0], dtype=torch.float64)
        >>> exact = BreitWigner(mass_scale=0.01).log_prob(m, theta)
        >>> bool(torch.allclose(scaled.log_prob(m, theta), exact, rtol=1e-12))
        True
    """

    def __init__(
        self,
        nominal: object,
        scales: Sequence[Scale],
        window: Sequence[Variable] | None = None,
    ) -> None:
        super().__init__()
        self.nominal, self.scales = nominal, tuple(scales)
        self.observables = list(window or nominal.observables)
        names = [v.name for v in nominal.observables]
        if [v.name for v in self.observables] != names:
            raise InputError(f"the window's observables must be the nominal's, {names}")
        taken = {v.name for v in nominal.theta_vars}
        powers = np.zeros((len(self.scales), len(names)))  # which scale multiplies what
        for k, scale in enumerate(self.scales):
            unknown = sorted(set(scale.observables) - set(names))
            if unknown:
                raise InputError(f"scale {scale.name}: no observable {unknown} in {names}")
            if scale.name in taken:
                raise InputError(
                    f"{scale.name} is a parameter of the nominal density already: a scale "
                    "applied to the events needs a model trained at the nominal only"
                )
            taken.add(scale.name)
            powers[k, [names.index(o) for o in scale.observables]] = 1
        self.register_buffer("powers", torch.from_numpy(powers))
        self.register_buffer(
            "widths", torch.tensor([s.width for s in self.scales], dtype=torch.float64)
        )
        self._edges = self._check_window()
        # an ensemble's members, scaled once (a plain tuple: the nominal holds the weights)
        members = list(getattr(nominal, "members", []))
        self._members = (
            tuple(Scaled(m, scales, self.observables) for m in members) if len(members) > 1 else ()
        )

    def _check_window(self) -> list[int]:
        r"""The scaled observables whose window needs the nominal's mass beyond an edge;
        `InputError` where the nominal does not reach W / f(s) over the whole range of s."""
        edges = []
        for j, (data, nom) in enumerate(
            zip(self.observables, self.nominal.observables, strict=True)
        ):
            if not self.powers[:, j].any():
                if (data.low, data.high) != (nom.low, nom.high):
                    raise InputError(
                        f"{data.name}: no scale moves it, so its window is the nominal's, "
                        f"[{nom.low}, {nom.high}] {data.unit} (a narrower one needs a model "
                        "trained on it)"
                    )
                continue
            factors = _factors(self.widths[self.powers[:, j] > 0].tolist())
            # a scale maps an open edge or 0 onto itself; a finite edge onto edge / f
            lo, hi = (
                None if e in (None, 0) else [e / f for f in factors] for e in (data.low, data.high)
            )
            need = (data.low if lo is None else min(lo), data.high if hi is None else max(hi))
            low_ok = (
                nom.low == need[0] if lo is None else nom.low is not None and nom.low <= need[0]
            )
            high_ok = (
                nom.high == need[1] if hi is None else nom.high is not None and nom.high >= need[1]
            )
            if not (low_ok and high_ok):
                raise InputError(
                    f"{data.name}: the nominal density covers [{nom.low}, {nom.high}] "
                    f"{data.unit}, but the scales over +-{RANGE:g} sigma map the window "
                    f"[{data.low}, {data.high}] back onto [{need[0]:.6g}, {need[1]:.6g}]: "
                    "train the nominal on a window at least that wide"
                )
            if lo is None and hi is None:
                continue
            if len(self.observables) > 1:
                raise InputError(
                    f"{data.name}: a scale on an observable with a finite window edge needs "
                    "the nominal's marginal of it (a one-observable density); leave the edge "
                    "open or at 0"
                )
            edges.append(j)
        return edges

    @property
    def theta_vars(self) -> list[Variable]:
        return [*self.nominal.theta_vars, *(s.variable for s in self.scales)]

    @property
    def nuisances(self) -> list[Constraint]:
        return [*getattr(self.nominal, "nuisances", []), *(s.constraint for s in self.scales)]

    @property
    def role(self) -> str | None:
        return getattr(self.nominal, "role", None)

    @property
    def support(self) -> Tensor | None:
        return getattr(self.nominal, "support", None)

    @property
    def training_points(self) -> Tensor | None:
        r"""The nominal's training grid `(K, D)` over its parameters (the scales'
        parameters are continuous), or `None`."""
        return getattr(self.nominal, "training_points", None)

    @property
    def members(self) -> list[Scaled]:
        r"""Each member of an ensemble, scaled; `[]` for a single density."""
        return list(self._members)

    def for_fit(self) -> Scaled:
        r"""The nominal as fits use it (`DensityModel.for_fit`), scaled."""
        nominal = self.nominal.for_fit() if hasattr(self.nominal, "for_fit") else self.nominal
        return Scaled(nominal, self.scales, self.observables)

    def _check_scales(self, theta: Tensor) -> None:
        d = len(self.nominal.theta_vars)
        if theta.shape[-1:] != (len(self.theta_vars),):
            names = [v.name for v in self.theta_vars]
            raise InputError(f"theta must have shape (*, {len(names)}) for {names}")
        s = theta.detach()[..., d:].reshape(-1, len(self.scales))
        outside = ~(s.abs() <= RANGE)  # NaN too
        if outside.any():
            k = int(outside.any(0).nonzero()[0])
            raise InputError(
                f"{self.scales[k].name} = {s[outside.any(1), k][0].item():.6g} sigma is outside "
                f"[-{RANGE:g}, {RANGE:g}], the range the scaled window was checked for"
            )

    @torch.no_grad()
    def sample(self, n: int, theta: Tensor, seed: int | None = None) -> Tensor:
        r"""Draws `n` events at one theta `(D + S,)`: the nominal's at theta's first D,
        scaled by f(s), those outside the window drawn again (an ensemble: each event
        from a member drawn at random, as its density is the members' mean). Returns
        `(n, F)` on the CPU."""
        theta = torch.as_tensor(theta, dtype=torch.float64).cpu()
        self._check_scales(theta)
        rng = np.random.default_rng(seed)
        members = self.members
        if members:
            counts = rng.multinomial(n, [1 / len(members)] * len(members))
            seeds = rng.integers(2**63, size=len(members))
            x = torch.cat(
                [
                    m.sample(int(c), theta, int(k))
                    for m, c, k in zip(members, counts, seeds, strict=True)
                ]
            )
            return x[torch.from_numpy(rng.permutation(n))]
        d = len(self.nominal.theta_vars)
        theta0 = theta[:d] if d else None
        factor = torch.exp(torch.log1p(theta[d:] * self.widths.cpu()) @ self.powers.cpu())
        bounds = bounds_tensor(self.observables)
        kept, total = [], 0
        while total < n:
            x = self.nominal.sample(n, theta0, seed=int(rng.integers(2**63))).double().cpu()
            x = x * factor
            x = x[((x >= bounds[:, 0]) & (x <= bounds[:, 1])).all(-1)]
            kept.append(x)
            total += len(x)
        return torch.cat(kept)[:n]

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        r"""log p(x | theta, s) of events `x` `(N, F)` in the window, theta `(*, D + S)`
        broadcast against the events as `DensityModel.log_prob` does (`(K, 1, D + S)`
        gives `(K, N)`), in 1/prod(observable units)."""
        check_events(x, self.observables)
        theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        self._check_scales(theta)  # the nominal's parameters: the nominal checks them
        members = self.members
        if members:
            k = len(members)
            each = torch.stack([m.log_prob(x, theta) for m in members])
            return each.logsumexp(0) - math.log(k)
        d = len(self.nominal.theta_vars)
        theta0, s = theta[..., :d], theta[..., d:]
        # log f_j(s) (*, F): the sum of log(1 + alpha s) over the scales on x_j
        log_f = torch.log1p(s * self.widths.to(s)) @ self.powers.to(s)
        log_p = self._nominal(x * torch.exp(-log_f), theta0) - log_f.sum(-1)
        for j in self._edges:
            log_p = log_p - self._log_mass(theta0, log_f[..., j], j)
        return log_p

    def _nominal(self, x0: Tensor, theta0: Tensor) -> Tensor:
        r"""The nominal's log-density at events `x0` `(*, F)` mapped back (inside its
        support by `_check_window`), theta0 `(*, D)` broadcast against them."""
        nominal = self.nominal
        if not isinstance(nominal, nn.Module):  # a closed form
            return nominal.log_prob(x0, theta0)
        ref = nominal.theta_range  # a DensityModel: x0 carries theta's batch dimensions
        shape = torch.broadcast_shapes(x0.shape[:-1], theta0.shape[:-1])
        context = theta0.to(ref) if theta0.shape[-1] else None
        return nominal(context).log_prob(x0.to(ref).expand(*shape, x0.shape[-1])).to(x0)

    def _log_mass(self, theta0: Tensor, log_f: Tensor, j: int) -> Tensor:
        r"""log Z = log P_0(W / f | theta) of the one observable `(*,)` at log f `(*,)`:
        1 less the nominal's mass on the slabs between its support's edges and the
        window's images (Gauss-Legendre)."""
        nodes, weights = np.polynomial.legendre.leggauss(NODES)
        t, w = log_f.new_tensor(nodes), log_f.new_tensor(weights)
        data, nom = self.observables[j], self.nominal.observables[j]
        shrink = torch.exp(-log_f)
        slabs = [
            (a, b)
            for edge, a, b in (
                (data.low, nom.low, data.low * shrink if data.low else None),
                (data.high, data.high * shrink if data.high else None, nom.high),
            )
            if edge not in (None, 0)  # a scale maps these edges onto themselves
        ]
        outside = 0.0
        for a, b in slabs:
            a, b = torch.broadcast_tensors(
                *(torch.as_tensor(e, dtype=log_f.dtype, device=log_f.device) for e in (a, b))
            )
            half, mid = (b - a)[..., None] / 2, (a + b)[..., None] / 2
            points = (mid + half * t)[..., None]  # (*, NODES, 1)
            density = self._nominal(points, theta0[..., None, :]).exp()
            outside = outside + half[..., 0] * (w * density).sum(-1)
        return torch.log1p(-outside)


def _factors(widths: list[float]) -> list[float]:
    r"""The extreme values of prod_k (1 + alpha_k s_k) over s_k in [-3, 3]: every corner."""
    corners = [1.0]
    for width in widths:
        corners = [c * (1 + sign * RANGE * width) for c in corners for sign in (-1, 1)]
    return corners
