r"""A model's log-density on events that stay fixed for a whole fit."""

from __future__ import annotations

__all__ = ["FixedEnsemble", "FixedEvents", "FixedMembers"]

import math

import torch
from torch import Tensor

from ..exceptions import InputError
from ..variables import check_events
from .ensemble import DensityEnsemble
from .mixture import AutoregressiveMixture, mixture_log_prob
from .model import DensityModel


class FixedEvents:
    r"""log p(x_i | theta) of a `DensityModel` on fixed events `x`, for many theta.

    What depends on the events alone is computed once, here: the preprocessing and its
    log-Jacobian, and for the mixture the events' share of its network's first layer
    (with one observable the mixture depends on theta alone, and its network runs once
    per theta). `terms` computes what depends on theta alone, once per theta, and
    `chunk` the rest on a chunk of events, broadcast over them. Gradients flow to theta
    only: the events' share is a constant, and no weight gradient is asked for (the
    model is not modified).

    `chunk_pairs` is how many theta-event pairs to evaluate at a time (an estimate by
    family and size, fixed so that results do not depend on the machine).

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
        with torch.no_grad():
            z, self.ladj = model.latent(x)
            self.z = z
            base = model.flow.base
            self.mixture = isinstance(base, AutoregressiveMixture)
            self.share = base.share(z) if self.mixture else None
            # the mixture apart from the context, given its first layer's output (`terms`)
            self.distribution = base(None) if self.mixture else None
        # how many tensors `terms` returns: the one-observable mixture's three
        # (`mixture_terms`), the first layer's context share, a flow's context, or none
        self.n_terms = (
            3 if self.mixture and self.share is None else int(self.mixture or model.conditional)
        )
        a, f, size = model.architecture, len(self.observables), z.element_size()
        if self.mixture:
            # The widest intermediate per theta-event pair: the network's output, or with
            # one observable (the network runs per theta) the components. Chunks of about
            # 4 MB of it ran fastest (2**21-2**23 B, toy and LHCO, 1 and 2 threads).
            width = f * a.components if f == 1 else max(3 * f * a.components, *a.hidden_features)
            self.chunk_pairs = max(1, 2**22 // (size * width))
        else:
            # zuko's layers run many small operations per chunk: 2**16 pairs ran 2.4x
            # faster than 2**13 (the toy's spline flows, NLL alone)
            self.chunk_pairs = 2**16

    def __len__(self) -> int:
        return len(self.z)

    def terms(self, theta: Tensor | None = None) -> tuple[Tensor, ...]:
        r"""What the log-density needs of theta `(K, D)` (`None` or `(K, 0)` for an
        unconditional model), computed once per theta and checked against the trained
        range: the context `(K, 1, C)` of a flow; the context's share of the mixture's
        first layer `(K, 1, H)`; with one observable the mixture's terms themselves
        (`mixture_terms`, `(K, 1, 1, G)` each). `chunk` takes them."""
        c = None
        if self.model.conditional:
            c = self.model.context(theta)[:, None, :]  # (K, 1, C): broadcast over events
        elif theta is not None and theta.numel():
            self.model.context(theta)  # raises: an unconditional model takes no theta
        base = self.model.flow.base
        if self.mixture and self.share is None:  # one observable: terms per theta only
            return base(c).terms(None)
        if self.mixture:
            return (base.context_share(c),)
        return () if c is None else (c,)

    def chunk(self, terms: tuple[Tensor, ...], rows: slice) -> Tensor:
        r"""log p(x_i | theta) on the events `rows` from the `terms` of K thetas, in units
        of 1/prod(observable units), float64, `(K, M)` for M rows (`(M,)` for an
        unconditional model)."""
        z, ladj = self.z[rows], self.ladj[rows]
        if self.mixture:
            if self.share is not None:
                terms = self.distribution.terms(z, self.share[rows] + terms[0])
            return (mixture_log_prob(z, *terms) + ladj).double()
        c = terms[0] if terms else None
        if c is not None:
            z = z.expand(*c.shape[:-2], *z.shape)  # zuko's layers need z's batch shape
        return (self.model.latent_log_prob(z, c) + ladj).double()

    def log_prob(self, theta: Tensor | None = None, rows: slice = slice(None)) -> Tensor:
        r"""`chunk(terms(theta), rows)`: log p(x_i | theta) `(K, M)` (`(M,)` unconditional)."""
        return self.chunk(self.terms(theta), rows)


class FixedEnsemble:
    r"""`FixedEvents` of each member of a `DensityEnsemble`: the log of the members' mean
    density, `logsumexp_k log p_k(x_i | theta) - log K`, with the same interface; the
    `terms` are the members' in turn.

    `chunk_pairs` is the members' (each member's chunk is evaluated in turn)."""

    def __init__(self, ensemble: DensityEnsemble, x: Tensor) -> None:
        self.members = [FixedEvents(m, x) for m in ensemble.members]
        self.chunk_pairs = min(m.chunk_pairs for m in self.members)

    def __len__(self) -> int:
        return len(self.members[0])

    def terms(self, theta: Tensor | None = None) -> tuple[Tensor, ...]:
        r"""As `FixedEvents.terms`, every member's after the other."""
        return tuple(t for m in self.members for t in m.terms(theta))

    def chunk(self, terms: tuple[Tensor, ...], rows: slice) -> Tensor:
        r"""As `FixedEvents.chunk`, for the mean density."""
        lp = _member_chunks(self.members, terms, rows)
        return torch.stack(lp).logsumexp(0) - math.log(len(lp))

    def log_prob(self, theta: Tensor | None = None, rows: slice = slice(None)) -> Tensor:
        r"""`chunk(terms(theta), rows)`."""
        return self.chunk(self.terms(theta), rows)


class FixedMembers:
    r"""The members of an ensemble on fixed events, one per theta: row k of a batch of
    thetas `(K, D)`, K the number of members, is member k's log p_k(x_i | theta_k), with
    the interface of `FixedEvents`. A likelihood with it in place of its ensemble
    (`MixtureLikelihood.by_member`) evaluates every member's likelihood, each at its own
    theta, in one pass over the events (the model error's Newton steps). Unconditional
    members are evaluated once, on their first use.

    Arguments:
        members: Each member on the events (`FixedEvents`, or anything with `terms`,
            `chunk`, `n_terms`, `chunk_pairs` and `log_prob`).
        conditional: Whether the members take a theta.

    Example:
        >>> from flowscan.samples import MASS, Exponential
        >>> ensemble = DensityEnsemble(
        ...     [DensityModel([MASS], Exponential.theta_vars, seed=k) for k in range(2)]
        ... ).for_fit()
        >>> x = torch.tensor([[150.0], [420.0]], dtype=torch.float64)
        >>> fixed = FixedMembers(FixedEnsemble(ensemble, x).members, conditional=True)
        >>> tau = torch.tensor([[170.0], [200.0]], dtype=torch.float64)
        >>> each = [m.log_prob(x, t) for m, t in zip(ensemble.members, tau)]
        >>> torch.allclose(fixed.log_prob(tau), torch.stack(each))
        True
    """

    def __init__(self, members: list[FixedEvents], conditional: bool) -> None:
        self.members, self.conditional = members, conditional
        # each member evaluates its own row only: K rows make one member's chunk
        self.chunk_pairs = len(members) * min(m.chunk_pairs for m in members)
        self._fixed: Tensor | None = None  # unconditional members' log-densities (K, N)

    def terms(self, theta: Tensor) -> tuple[Tensor, ...]:
        r"""Each member's `terms` at its own row of theta `(K, D)`."""
        if len(theta) != len(self.members):
            raise InputError(f"one theta per member: {len(self.members)} rows, got {len(theta)}")
        pairs = zip(self.members, theta, strict=True)
        return tuple(t for m, row in pairs for t in m.terms(row[None]))

    def chunk(self, terms: tuple[Tensor, ...], rows: slice) -> Tensor:
        r"""log p_k(x_i | theta_k) on the events `rows`, `(K, M)`."""
        if not self.conditional:
            if self._fixed is None:
                self._fixed = torch.stack([self._whole(m) for m in self.members])
            return self._fixed[:, rows]
        return torch.cat(_member_chunks(self.members, terms, rows))

    def log_prob(self, theta: Tensor, rows: slice = slice(None)) -> Tensor:
        r"""`chunk(terms(theta), rows)`."""
        return self.chunk(self.terms(theta), rows)

    def _whole(self, member: FixedEvents) -> Tensor:
        r"""An unconditional member's log-density on every event `(N,)`, chunk by chunk."""
        none, step = torch.empty(1, 0), self.chunk_pairs
        with torch.no_grad():
            parts = [member.log_prob(none, slice(i, i + step)) for i in range(0, len(member), step)]
        return torch.cat([p.reshape(-1) for p in parts])


def _member_chunks(
    members: list[FixedEvents], terms: tuple[Tensor, ...], rows: slice
) -> list[Tensor]:
    r"""Each member's `chunk` on the events `rows`, from `terms`: the members' `terms`
    one after the other (`n_terms` each)."""
    out, start = [], 0
    for member in members:
        out.append(member.chunk(terms[start : start + member.n_terms], rows))
        start += member.n_terms
    return out
