r"""A model's log-density on events that stay fixed for a whole fit."""

from __future__ import annotations

__all__ = ["FixedEnsemble", "FixedEvents"]

import math
from collections.abc import Callable

import torch
from torch import Tensor
from zuko.transforms import ComposedTransform

from ..variables import check_events
from .ensemble import DensityEnsemble
from .mixture import AutoregressiveMixture, mixture_log_prob
from .model import DensityModel


class FixedEvents:
    r"""log p(x_i | theta) of a `DensityModel` on fixed events `x`, for many theta.

    What depends on the events alone is computed once, here: the preprocessing and its
    log-Jacobian, and for the mixture the events' share of its network's first layer
    (with one observable the mixture depends on theta alone, and its network runs once
    per theta). `log_prob` computes the rest, what depends on theta once per theta,
    broadcast over the events. Gradients flow to theta only: the events' share is a
    constant, and no weight gradient is asked for (the model is not modified).

    `chunk_pairs` is how many theta-event pairs to evaluate at a time, `graph_bytes` the
    memory a gradient's graph keeps per pair (both estimates, by family and size, fixed
    so that results do not depend on the machine).

    Arguments:
        model: The model, in the dtype fits evaluate it in (`DensityModel.for_fit`).
        x: Events `(N, F)` in observable units, inside the observables' bounds.

    Example:
        >>> from flowscan.samples import MASS, Exponential
        >>> model = DensityModel([MASS], Exponential.theta_vars).for_fit()
        >>> x = torch.tensor([[150.0], [420.0]], dtype=torch.float64)
        >>> fixed = FixedEvents(model, x)
        >>> theta = torch.tensor([[170.0], [200.0]], dtype=torch.float64)
        >>> torch.allclose(fixed.log_prob(theta), model.log_prob(x, theta[:, None]))
        True
    """

    def __init__(self, model: DensityModel, x: Tensor) -> None:
        x = torch.as_tensor(x)
        check_events(x, model.observables)
        self.model, self.observables = model, model.observables
        self.theta_vars = model.theta_vars
        steps = model.flow.transform.transforms
        n_pre = len(model.preprocessing)
        with torch.no_grad():
            z = x.to(model.theta_range)
            ladj = z.new_zeros(len(z))
            for step in steps[:n_pre]:
                z, term = step().call_and_ladj(z)
                ladj = ladj + term
            self.z, self.ladj = z, ladj
            base = model.flow.base
            self.mixture = isinstance(base, AutoregressiveMixture)
            self.share = base.share(z) if self.mixture else None
        self.layers = steps[n_pre:]
        a, f, size = model.architecture, len(self.observables), z.element_size()
        if self.mixture:
            # The widest intermediate per theta-event pair: the network's output, or with
            # one observable (the network runs per theta) the components. Chunks of about
            # 4 MB of it ran fastest (2**21-2**23 B, toy and LHCO, 1 and 2 threads).
            width = f * a.components if f == 1 else max(3 * f * a.components, *a.hidden_features)
            self.chunk_pairs = max(1, 2**22 // (size * width))
            # measured: 13.6 kB per pair kept for the 5-observable mixture (width 300)
            self.graph_bytes = 6 * size * width
        else:
            # zuko's layers run many small operations per chunk: 2**16 pairs ran 2.4x
            # faster than 2**13 (the toy's spline flows, NLL alone)
            self.chunk_pairs = 2**16
            # ~60 kB per pair kept by a 5-observable NSF of 5 x 128 x 128
            self.graph_bytes = 8 * size * (a.transforms + 1) * max(a.hidden_features)

    def __len__(self) -> int:
        return len(self.z)

    def at(self, theta: Tensor | None = None) -> Callable[[slice], Tensor]:
        r"""The log-density at theta `(K, D)` (`None` or `(K, 0)` for an unconditional
        model, checked against the trained range) as a function of the events `rows`:
        what depends on theta alone is computed here, once. The function returns
        log p(x_i | theta) in units of 1/prod(observable units), float64, `(K, M)` for M
        rows (`(M,)` for an unconditional model)."""
        c = None
        if self.model.conditional:
            c = self.model.context(theta)[:, None, :]  # (K, 1, C): broadcast over events
        elif theta is not None and theta.numel():
            self.model.context(theta)  # raises: an unconditional model takes no theta
        base = self.model.flow.base(c)
        if self.mixture and self.share is None:  # one observable: terms per theta only
            terms = base.terms(None)
            return lambda rows: (mixture_log_prob(self.z[rows], *terms) + self.ladj[rows]).double()
        if self.mixture:
            return lambda rows: (
                mixture_log_prob(self.z[rows], *base.terms(self.z[rows], self.share[rows]))
                + self.ladj[rows]
            ).double()
        transform = ComposedTransform(*(t(c) for t in self.layers))

        def log_prob(rows: slice) -> Tensor:
            z = self.z[rows]
            if c is not None:
                z = z.expand(*c.shape[:-2], *z.shape)  # zuko's layers need z's batch shape
            y, term = transform.call_and_ladj(z)
            return (base.log_prob(y) + term + self.ladj[rows]).double()

        return log_prob

    def log_prob(self, theta: Tensor | None = None, rows: slice = slice(None)) -> Tensor:
        r"""`at(theta)(rows)`: log p(x_i | theta) `(K, M)` (`(M,)` unconditional)."""
        return self.at(theta)(rows)


class FixedEnsemble:
    r"""`FixedEvents` of each member of a `DensityEnsemble`: the log of the members' mean
    density, `logsumexp_k log p_k(x_i | theta) - log K`, with the same interface.

    `chunk_pairs` is the members' (each member's chunk is evaluated in turn), and
    `graph_bytes` the sum of theirs (a gradient keeps every member's graph)."""

    def __init__(self, ensemble: DensityEnsemble, x: Tensor) -> None:
        self.members = [FixedEvents(m, x) for m in ensemble.members]
        self.chunk_pairs = min(m.chunk_pairs for m in self.members)
        self.graph_bytes = sum(m.graph_bytes for m in self.members)

    def __len__(self) -> int:
        return len(self.members[0])

    def at(self, theta: Tensor | None = None) -> Callable[[slice], Tensor]:
        r"""As `FixedEvents.at`, for the mean density."""
        members = [m.at(theta) for m in self.members]
        log_k = math.log(len(members))
        return lambda rows: torch.stack([f(rows) for f in members]).logsumexp(0) - log_k

    def log_prob(self, theta: Tensor | None = None, rows: slice = slice(None)) -> Tensor:
        r"""`at(theta)(rows)`."""
        return self.at(theta)(rows)
