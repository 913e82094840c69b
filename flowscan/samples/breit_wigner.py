r"""Breit-Wigner bump on a falling exponential: the toy of seed 002, with exact densities.

One observable, the reconstructed mass `m` in GeV, in the window [100, 1000] GeV.

Signal: a non-relativistic Breit-Wigner (Cauchy) line shape with pole mass `m_pole`
and full width `gamma`, truncated to the window and normalized on it,

.. math:: p_s(m | m_0, \Gamma) = \frac{1}{Z} \frac{\Gamma / 2\pi}{(m - m_0)^2 + \Gamma^2 / 4},
    \quad Z = \frac{1}{\pi} \left[\arctan\frac{m_{hi} - m_0}{\Gamma/2}
    - \arctan\frac{m_{lo} - m_0}{\Gamma/2}\right].

Background: an exponential with decay constant `tau` (GeV) truncated to the window,

.. math:: p_b(m | \tau) = \frac{e^{-(m - m_{lo})/\tau}}{\tau (1 - e^{-(m_{hi} - m_{lo})/\tau})}.

Parameter ranges (the training ranges of the flows): `m_pole` in [300, 700] GeV,
`gamma` in [20, 80] GeV, `tau` in [100, 300] GeV. Both densities sample by inverting
their closed-form CDFs, so sampling is exact and seeded.

A mass-scale nuisance (`mass_scale=alpha`, issue 22's case (a)): every mass is scaled,
m -> m (1 + alpha s), with s in units of its 1-sigma variation over [-3, 3] (the
parameter `mass_scale`, shared by signal and background), before the window cut. A
scaled Cauchy is a Cauchy with m_0 and Gamma scaled, and a scaled exponential an
exponential with tau scaled, so with events generated beyond the window (a looser
preselection) and the window re-applied after scaling, the densities stay exact:
p_s(m | m_0 (1 + alpha s), Gamma (1 + alpha s)) and p_b(m | tau (1 + alpha s)), each
truncated to the window. With tau free the scale of the background is another tau:
the data constrain s through the signal only.

`window=(low, high)` moves the window (GeV): a nominal sample on a window wider than the
analysis's, for a scale applied exactly to the observables (`flowscan.flows.Scaled`).
"""

from __future__ import annotations

from ..exceptions import InputError

__all__ = [
    "BreitWigner",
    "Exponential",
    "MASS",
    "pseudo_data",
    "training_set",
]

import math

import numpy as np
import torch
from torch import Tensor

from ..variables import Variable

MASS = Variable("m", "GeV", 100.0, 1000.0)
# The mass-scale nuisance in units of its 1-sigma variation, over +-3 sigma.
MASS_SCALE = Variable("mass_scale", "sigma", -3.0, 3.0)


class _ExactDensity:
    r"""Shared interface of the toy's closed-form densities.

    `log_prob(x, theta)` takes events of shape `(N, 1)` and parameters of shape `(*, D)`,
    whose batch shapes broadcast (`(D,)` gives `(N,)`, `(K, 1, D)` gives `(K, N)`).
    Computations run in the dtype of `x` (float64 for tests and fits).
    """

    observables: tuple[Variable, ...] = (MASS,)
    theta_vars: tuple[Variable, ...] = ()  # the nominal parameters; mass_scale adds one

    def __init__(
        self, mass_scale: float = 0.0, window: tuple[float, float] = (MASS.low, MASS.high)
    ) -> None:
        if not (math.isfinite(mass_scale) and 0 <= mass_scale < 1 / 3):
            raise InputError(f"mass_scale is a relative 1-sigma scale in [0, 1/3): {mass_scale}")
        low, high = window
        if not (0 < low < high < math.inf):
            raise InputError(f"the mass window must be 0 < low < high GeV, got {window}")
        self.mass_scale = mass_scale
        self.observables = (Variable(MASS.name, MASS.unit, float(low), float(high)),)
        if mass_scale:
            self.theta_vars = (*type(self).theta_vars, MASS_SCALE)

    def _physical(self, theta: Tensor) -> list[Tensor]:
        r"""The parameters of the density with the mass scale applied to each (every
        parameter of the toy is a mass or a mass scale)."""
        values = list(theta.unbind(-1))
        if not self.mass_scale:
            return values
        factor = 1 + self.mass_scale * values.pop()
        return [v * factor for v in values]

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        self._check(theta)
        return self._log_prob(x[..., 0], *self._physical(theta))

    def sample(self, n: int, theta: Tensor, seed: int | None = None) -> Tensor:
        r"""Draws `n` events at one `theta` of shape `(D,)` or one theta per event,
        shape `(n, D)`. Returns float64 events of shape `(n, 1)`."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        self._check(theta)
        u = torch.from_numpy(np.random.default_rng(seed).random(n))
        return self._icdf(u, *self._physical(theta)).unsqueeze(-1)

    def training_set(self, n: int = 200_000, seed: int = 0) -> tuple[Tensor, Tensor]:
        r"""`training_set(self, n, seed)`: theta uniform over the ranges, an event each."""
        return training_set(self, n, seed)

    def _check(self, theta: Tensor) -> None:
        names = check_theta_shape(theta, self.theta_vars)
        masses = theta[..., : len(type(self).theta_vars)]
        if not (torch.isfinite(theta).all() and (masses > 0).all()):
            raise InputError(f"{names} must be finite, and the masses positive")


class BreitWigner(_ExactDensity):
    r"""Truncated Breit-Wigner signal, `theta_sig = (m_pole, gamma)` in GeV.

    Example:
        >>> bw = BreitWigner()
        >>> x = bw.sample(5, torch.tensor([500.0, 40.0]), seed=1)
        >>> bw.log_prob(x, torch.tensor([500.0, 40.0])).shape
        torch.Size([5])
        >>> scaled = BreitWigner(mass_scale=0.01)  # m -> m (1 + 0.01 s)
        >>> [v.name for v in scaled.theta_vars]
        ['m_pole', 'gamma', 'mass_scale']
        >>> m, f64 = torch.tensor([[505.0]], dtype=torch.float64), torch.float64
        >>> torch.allclose(scaled.log_prob(m, torch.tensor([500.0, 40.0, 1.0], dtype=f64)),
        ...                bw.log_prob(m, torch.tensor([505.0, 40.4], dtype=f64)), rtol=1e-14)
        True
    """

    theta_vars = (Variable("m_pole", "GeV", 300.0, 700.0), Variable("gamma", "GeV", 20.0, 80.0))

    def _edges(self, m0: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
        window = self.observables[0]
        return (
            torch.atan((window.low - m0) / (gamma / 2)),
            torch.atan((window.high - m0) / (gamma / 2)),
        )

    def _log_prob(self, m: Tensor, m0: Tensor, gamma: Tensor) -> Tensor:
        a, b = self._edges(m0, gamma)
        half = gamma / 2
        return (
            torch.log(half / math.pi)
            - torch.log((m - m0) ** 2 + half**2)
            - torch.log((b - a) / math.pi)
        )

    def _icdf(self, u: Tensor, m0: Tensor, gamma: Tensor) -> Tensor:
        a, b = self._edges(m0, gamma)
        window = self.observables[0]
        return (m0 + gamma / 2 * torch.tan(a + u * (b - a))).clamp(window.low, window.high)


class Exponential(_ExactDensity):
    r"""Truncated falling exponential background, `theta_bkg = (tau,)` in GeV."""

    theta_vars = (Variable("tau", "GeV", 100.0, 300.0),)

    def _log_prob(self, m: Tensor, tau: Tensor) -> Tensor:
        window = self.observables[0]
        span = window.high - window.low
        return -(m - window.low) / tau - torch.log(tau) - torch.log1p(-torch.exp(-span / tau))

    def _icdf(self, u: Tensor, tau: Tensor) -> Tensor:
        window = self.observables[0]
        span = window.high - window.low
        m = window.low - tau * torch.log1p(-u * -torch.expm1(-span / tau))
        return m.clamp(window.low, window.high)


def check_theta_shape(theta: Tensor, theta_vars: tuple[Variable, ...]) -> list[str]:
    r"""Raises `InputError` unless `theta` has shape `(*, len(theta_vars))`; returns the
    parameters' names."""
    names = [v.name for v in theta_vars]
    if theta.shape[-1:] != (len(names),):
        raise InputError(
            f"theta must have shape (*, {len(names)}) for {names}, got {tuple(theta.shape)}"
        )
    return names


def training_set(density, n: int = 200_000, seed: int = 0) -> tuple[Tensor, Tensor]:
    r"""Training sample as in seed 002: theta uniform over the documented ranges of
    `density` (a toy density: `BreitWigner`, `Exponential`, `resonances.Resonances`...),
    one event per draw.

    Returns:
        Events `x` of shape `(n, F)` and parameters `theta` of shape `(n, D)`, float64.
    """
    rng = np.random.default_rng(seed)
    low = np.array([p.low for p in density.theta_vars])
    high = np.array([p.high for p in density.theta_vars])
    theta = torch.from_numpy(rng.uniform(low, high, size=(n, len(low))))
    x = density.sample(n, theta, seed=int(rng.integers(2**63)))
    return x, theta


def pseudo_data(
    theta_sig: Tensor,
    theta_bkg: Tensor,
    n_sig: int = 1_000,
    n_bkg: int = 100_000,
    seed: int = 0,
    *,
    densities: tuple | None = None,
) -> Tensor:
    r"""Pseudo-data: exactly `n_sig` signal plus `n_bkg` background events at one theta,
    shuffled. `densities`: the signal and background toy densities (default
    `BreitWigner()`, `Exponential()`). Returns float64 events of shape
    `(n_sig + n_bkg, F)`."""
    signal, background = densities or (BreitWigner(), Exponential())
    rng = np.random.default_rng(seed)
    s, b = (int(i) for i in rng.integers(2**63, size=2))
    x = torch.cat([signal.sample(n_sig, theta_sig, s), background.sample(n_bkg, theta_bkg, b)])
    return x[torch.from_numpy(rng.permutation(len(x)))]
