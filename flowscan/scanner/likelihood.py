r"""Unbinned mixture likelihoods of signal and background densities."""

from __future__ import annotations

__all__ = ["Density", "MixtureLikelihood"]

import math
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ..variables import Variable, check_events


class Density(Protocol):
    r"""What a likelihood needs of a density: a flow (`DensityModel`) or a closed form."""

    observables: list[Variable]
    theta_vars: list[Variable]

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor: ...


class MixtureLikelihood:
    r"""Negative log-likelihood of a signal plus background mixture with a fixed
    signal fraction `f_s = n_sig / (n_sig + n_bkg)` (seed 002),

    .. math:: \mathrm{NLL}(\theta) = -\sum_i \log\left[f_s\, p_s(x_i | \theta_s)
        + (1 - f_s)\, p_b(x_i | \theta_b)\right], \quad \theta = (\theta_s, \theta_b).

    Per-event terms are combined with `logaddexp` and summed in float64, whatever
    dtype the densities run in, so the sum over 1e5 events keeps ~1e-9 relative
    precision. `nll` is a differentiable torch scalar; calling the likelihood is `nll`.

    Arguments:
        signal: Density with `log_prob(x, theta_sig)`.
        background: Density with `log_prob(x, theta_bkg)`.
        x: Observed events, shape `(N, F)`, in observable units.
        n_sig: Signal events assumed in the data.
        n_bkg: Background events assumed in the data.

    Example:
        >>> from flowscan.toys import BreitWigner, Exponential, pseudo_data
        >>> x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 100, 1000)
        >>> nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 100, 1000)
        >>> nll.names
        ['m_pole', 'gamma', 'tau']
    """

    # Theta-event pairs evaluated at a time (see `nll_split`): a gradient through a
    # 5-observable NSF of 5 x 128 x 128 holds ~60 kB per pair, so ~4 GB at 2**16.
    max_elements: int = 2**16

    def __init__(
        self, signal: Density, background: Density, x: Tensor, n_sig: float, n_bkg: float
    ) -> None:
        if [v.name for v in signal.observables] != [v.name for v in background.observables]:
            raise ValueError(
                f"signal observables {[v.name for v in signal.observables]} differ from "
                f"background observables {[v.name for v in background.observables]}"
            )
        if not (n_sig >= 0 and n_bkg > 0 and math.isfinite(n_sig + n_bkg)):
            raise ValueError(f"need n_sig >= 0 and n_bkg > 0, got n_sig={n_sig}, n_bkg={n_bkg}")
        x = torch.as_tensor(x, dtype=torch.float64)
        check_events(x, signal.observables)
        check_events(x, background.observables)
        self.signal, self.background, self.x = signal, background, x
        self.f_sig = n_sig / (n_sig + n_bkg)
        self.theta_vars = [*signal.theta_vars, *background.theta_vars]
        self._n_sig_theta = len(signal.theta_vars)
        self._cache: tuple[Tensor, Tensor] | None = None

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.theta_vars]

    def nll(self, theta: Tensor) -> Tensor:
        r"""NLL at `theta` of shape `(P,)` (a float64 scalar) or a batch `(K, P)` (shape `(K,)`)."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        if theta.shape[-1:] != (len(self.theta_vars),) or theta.ndim > 2:
            raise ValueError(
                f"theta must have shape (P,) or (K, P) with P = {len(self.theta_vars)} "
                f"for {self.names}, got {tuple(theta.shape)}"
            )
        d = self._n_sig_theta
        return self.nll_split(theta[..., :d], theta[..., d:])

    def nll_split(self, theta_sig: Tensor, theta_bkg: Tensor) -> Tensor:
        r"""NLL with `theta_sig` `(*, D_s)` and `theta_bkg` `(*, D_b)` given apart, batch
        shapes `()` or `(K,)`.

        Memory is bounded by evaluating at most `max_elements` theta-event pairs at a
        time: a batch is split into groups of thetas, and each group's events into
        chunks. When there is more than one chunk and a gradient is wanted, each chunk is
        recomputed in the backward pass (`torch.utils.checkpoint`) instead of kept, so the
        gradient of 1e6 events costs one extra forward pass, not 1e6 events' activations.
        A `theta_bkg` that needs no gradient and is one value for the whole batch (or is
        empty: an unconditional background) has its per-event background density
        computed once and cached."""
        batched = theta_sig.ndim == 2
        if not batched:
            theta_sig, theta_bkg = theta_sig[None], theta_bkg[None]
        lp_b = self._background_log_prob(theta_bkg)
        group = max(1, self.max_elements // len(self.x))
        out = []
        for start in range(0, len(theta_sig), group):
            ts, tb = theta_sig[start : start + group, None], theta_bkg[start : start + group, None]
            step = max(1, self.max_elements // len(ts))
            chunks = [
                (self.x[i : i + step], None if lp_b is None else lp_b[..., i : i + step])
                for i in range(0, len(self.x), step)
            ]
            keep = len(chunks) == 1 or not torch.is_grad_enabled()
            out.append(
                sum(
                    self._nll(x, lp, ts, tb)
                    if keep
                    else checkpoint(self._nll, x, lp, ts, tb, use_reentrant=False)
                    for x, lp in chunks
                )
            )
        nll = torch.cat(out)
        return nll if batched else nll[0]

    def _nll(self, x: Tensor, lp_b: Tensor | None, theta_sig: Tensor, theta_bkg: Tensor) -> Tensor:
        r"""NLL `(K,)` of events `x` `(M, F)` at thetas `(K, 1, D)`; `lp_b` is the cached
        background log-density of these events `(M,)`, or `None` to compute it."""
        lp_s = self.signal.log_prob(x, theta_sig).double()
        if lp_b is None:
            lp_b = self.background.log_prob(x, theta_bkg).double()
        if self.f_sig == 0:
            return -lp_b.sum(dim=-1).expand(lp_s.shape[:-1])
        mix = torch.logaddexp(math.log(self.f_sig) + lp_s, math.log1p(-self.f_sig) + lp_b)
        return -mix.sum(dim=-1)

    __call__ = nll

    def _background_log_prob(self, theta_bkg: Tensor) -> Tensor | None:
        r"""The cached per-event background log-density `(N,)` where `nll_split` allows
        it, else `None` (computed with the signal, chunk by chunk)."""
        d = theta_bkg.shape[-1]
        first = theta_bkg.reshape(-1, d)[0] if theta_bkg.numel() else theta_bkg.new_empty(d)
        if d and (theta_bkg.requires_grad or not (theta_bkg == first).all()):
            return None
        if self._cache is None or not torch.equal(self._cache[0], first):
            with torch.no_grad():
                lp = [
                    self.background.log_prob(x, first).double()
                    for x in self.x.split(self.max_elements)
                ]
            self._cache = (first.clone(), torch.cat(lp))
        return self._cache[1]
