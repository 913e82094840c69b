r"""A many-parameter toy: D signal parameters move twelve resonances in six spectra.

Issue 23's toy for seed 002's claim that gradient scans through flows scale to many
parameters (the pMSSM has 19), with the exact density known and sampled exactly.

**Observables.** F = 6 masses `x_1 ... x_6` in GeV, each in the window [0, 1000] GeV.
Six: with two resonances per spectrum they carry 30 feature parameters (below), enough
for D = 19 parameters to be identified with room to spare (four spectra would give 20,
a nearly square, ill-conditioned map), while staying close to the 5 observables of the
LHCO workload.

**Signal** at `theta = (theta_1, ..., theta_D)`, each dimensionless in [-1, 1]:
the spectra are independent given theta, spectrum f (0-based) a mixture of two
Gaussian resonances truncated to the window,

.. math:: p_s(x | \theta) = \prod_{f=0}^{5} \sum_{k=0}^{1} w_{fk}\,
    \frac{\phi((x_f - \mu_{fk}) / \sigma_{fk})}{\sigma_{fk} Z_{fk}}, \quad
    Z_{fk} = \Phi\Big(\frac{1000 - \mu_{fk}}{\sigma_{fk}}\Big)
    - \Phi\Big(\frac{-\mu_{fk}}{\sigma_{fk}}\Big),

whose 30 feature parameters come from theta by a fixed, smooth, nonlinear map through
the vector :math:`\eta = A_D \theta + B_D\,(\theta \odot \theta)` (30 components):

- positions :math:`\mu_{fk} = c_{fk} + 60\tanh\eta_{2f+k}` GeV with
  :math:`c_{f0} = 250 + 25 f` and :math:`c_{f1} = 600 + 25 f`: the low resonance stays
  in [190, 435] and the high one in [540, 785] GeV, so they never swap (no label
  switching);
- widths :math:`\sigma_{fk} = 25\,e^{0.4\tanh\eta_{12+2f+k}}` GeV, in [17, 37] GeV;
- weights :math:`w_{f0} = 1 - w_{f1} = \mathrm{sigmoid}(0.8\tanh\eta_{24+f})`, in [0.31, 0.69].

:math:`A_D = 1.2\,\hat A_{:, :D} / \sqrt{D}` and :math:`B_D = 0.3\,\hat B_{:, :D} / \sqrt{D}`
take the first D columns of two fixed 30 x 19 matrices (`A_HAT`, `B_HAT`, drawn once
from standard normals with seed 23), scaled so that eta has the same spread at every D.
Every parameter moves every feature (dense columns), and columns come in pairs of
correlation 0.9 (:math:`\hat A_{:, 2j+1} = 0.9 \hat A_{:, 2j} + 0.44 z`): parameters
2j and 2j + 1 (0-based) move the spectra in nearly the same way, the near-degenerate
directions of real spectra. The quadratic term makes the map nonlinear and breaks
theta -> -theta.

**Background**: falling exponentials, independent per spectrum, truncated to the window,
spectrum f with decay constant tau (1 + 0.1 f), `tau` in [200, 500] GeV.

**Defaults** (`N_SIG`, `N_BKG`, `truth(D)`): 5000 signal + 50000 background events;
truth theta_d = 0.6 sin(1.7 d + 0.5) (d = 1 ... D, inside the box, no two equal) and
tau = 300 GeV. At these yields every parameter is identified: the exact fit's errors
on theta are 0.005-0.006 at D = 2 and 0.035-0.09 at D = 19, for a box of width 2
(`docs/high_dim.md`; `benchmarks/high_dim.py` prints them).
"""

from __future__ import annotations

__all__ = ["DIMS", "FallingSpectra", "N_BKG", "N_SIG", "Resonances", "SPECTRA", "truth"]

import math

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InputError
from ..variables import Variable
from .breit_wigner import check_theta_shape, training_set

DIMS = (2, 4, 8, 12, 19)  # the D of issue 23's benchmark
MAX_DIM = 19
SPECTRA = tuple(Variable(f"x_{f + 1}", "GeV", 0.0, 1000.0) for f in range(6))
N_SIG, N_BKG = 5_000, 50_000


def _matrices() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(23)
    a = rng.standard_normal((30, MAX_DIM))
    a[:, 1::2] = 0.9 * a[:, 0:-1:2] + math.sqrt(1 - 0.9**2) * a[:, 1::2]
    return a, rng.standard_normal((30, MAX_DIM))


A_HAT, B_HAT = _matrices()
_CENTRES = np.array([[250.0 + 25 * f, 600.0 + 25 * f] for f in range(6)])  # GeV, (6, 2)
_HIGH = SPECTRA[0].high


def truth(dim: int) -> list[float]:
    r"""The default truth: theta_d = 0.6 sin(1.7 d + 0.5), d = 1 ... `dim`, then tau = 300
    GeV (the background's parameter), as one list of `dim + 1` values.

    Example:
        >>> [round(t, 3) for t in truth(2)]
        [0.485, -0.413, 300.0]
    """
    _check_dim(dim)
    return [0.6 * math.sin(1.7 * d + 0.5) for d in range(1, dim + 1)] + [300.0]


def _check_dim(dim: int) -> None:
    if not (isinstance(dim, int) and 1 <= dim <= MAX_DIM):
        raise InputError(f"the resonance toy has 1 to {MAX_DIM} parameters, not {dim}")


def _log_window(mu: Tensor, sigma: Tensor) -> Tensor:
    r"""log Z: the log probability of N(mu, sigma) inside [0, 1000] GeV, stable in the
    tails (log(Phi(b) - Phi(a)) as log Phi(b) + log1p(-Phi(a) / Phi(b)))."""
    low, high = torch.special.log_ndtr(-mu / sigma), torch.special.log_ndtr((_HIGH - mu) / sigma)
    return high + torch.log1p(-torch.exp(low - high))


class _Spectra:
    r"""Shared interface: `log_prob(x, theta)` with events `(N, 6)` and theta `(*, D)`
    whose batch shapes broadcast (`(D,)` gives `(N,)`, `(K, 1, D)` gives `(K, N)`), in
    the dtype of `x`; `sample(n, theta, seed)` float64 `(n, 6)` at one theta `(D,)` or
    one per event `(n, D)`; `training_set(n, seed)` theta uniform over the box, one
    event each."""

    observables = SPECTRA
    theta_vars: tuple[Variable, ...] = ()

    def training_set(self, n: int = 1_000_000, seed: int = 0) -> tuple[Tensor, Tensor]:
        return training_set(self, n, seed)

    def _check(self, theta: Tensor) -> None:
        names = check_theta_shape(theta, self.theta_vars)
        if not torch.isfinite(theta).all():
            raise InputError(f"{names} must be finite")


class Resonances(_Spectra):
    r"""The signal: two truncated Gaussian resonances in each of six spectra, moved by
    `dim` parameters `theta_1 ... theta_dim` (dimensionless, [-1, 1]).

    Example:
        >>> signal = Resonances(4)
        >>> theta = torch.tensor(truth(4)[:4], dtype=torch.float64)
        >>> x = signal.sample(3, theta, seed=1)
        >>> x.shape, signal.log_prob(x, theta).shape
        (torch.Size([3, 6]), torch.Size([3]))
    """

    def __init__(self, dim: int) -> None:
        _check_dim(dim)
        self.dim = dim
        self.theta_vars = tuple(Variable(f"theta_{d + 1}", "", -1.0, 1.0) for d in range(dim))
        scale = 1 / math.sqrt(dim)
        self._a = torch.from_numpy(1.2 * scale * A_HAT[:, :dim])
        self._b = torch.from_numpy(0.3 * scale * B_HAT[:, :dim])

    def features(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""The resonances at `theta` `(*, D)`: positions and widths `(*, 6, 2)` in GeV
        and log weights `(*, 6, 2)` (spectrum, resonance)."""
        a, b = self._a.to(theta), self._b.to(theta)
        eta = torch.tanh(theta @ a.T + (theta**2) @ b.T)  # (*, 30)
        centres = torch.as_tensor(_CENTRES, dtype=theta.dtype, device=theta.device)
        mu = centres + 60.0 * eta[..., :12].unflatten(-1, (6, 2))
        sigma = 25.0 * torch.exp(0.4 * eta[..., 12:24].unflatten(-1, (6, 2)))
        w = torch.sigmoid(0.8 * eta[..., 24:30])
        return mu, sigma, torch.stack([torch.log(w), torch.log1p(-w)], -1)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        self._check(theta)
        mu, sigma, log_w = self.features(theta)
        z = (x[..., :, None] - mu) / sigma
        per_feature = log_w - 0.5 * z**2 - torch.log(sigma) - _log_window(mu, sigma)
        return (torch.logsumexp(per_feature, -1) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, n: int, theta: Tensor, seed: int | None = None) -> Tensor:
        theta = torch.as_tensor(theta, dtype=torch.float64)
        self._check(theta)
        mu, sigma, log_w = (t.expand(n, 6, 2) for t in self.features(theta))
        rng = np.random.default_rng(seed)
        pick = (torch.from_numpy(rng.random((n, 6))) > log_w[..., 0].exp()).long()[..., None]
        mu, sigma = mu.gather(-1, pick)[..., 0], sigma.gather(-1, pick)[..., 0]
        # The inverse CDF of the truncated normal, between the window's CDF values.
        low = torch.special.ndtr(-mu / sigma)
        high = torch.special.ndtr((_HIGH - mu) / sigma)
        v = low + torch.from_numpy(rng.random((n, 6))) * (high - low)
        return (mu + sigma * torch.special.ndtri(v)).clamp(0.0, _HIGH)


class FallingSpectra(_Spectra):
    r"""The background: in spectrum f a falling exponential with decay constant
    tau (1 + 0.1 f), truncated to the window; `theta = (tau,)` in GeV, [200, 500].

    Example:
        >>> x = FallingSpectra().sample(4, torch.tensor([300.0]), seed=2)
        >>> bool(((x >= 0) & (x <= 1000)).all())
        True
    """

    theta_vars = (Variable("tau", "GeV", 200.0, 500.0),)
    _STRETCH = 1.0 + 0.1 * np.arange(6)

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor:
        theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        self._check(theta)
        if not (theta > 0).all():
            raise InputError("tau must be positive")
        tau = theta * torch.as_tensor(self._STRETCH, dtype=x.dtype, device=x.device)
        return (-x / tau - torch.log(tau) - torch.log(-torch.expm1(-_HIGH / tau))).sum(-1)

    def sample(self, n: int, theta: Tensor, seed: int | None = None) -> Tensor:
        theta = torch.as_tensor(theta, dtype=torch.float64)
        self._check(theta)
        tau = theta * torch.from_numpy(self._STRETCH)
        u = torch.from_numpy(np.random.default_rng(seed).random((n, 6)))
        return (-tau * torch.log1p(u * torch.expm1(-_HIGH / tau))).clamp(0.0, _HIGH)
