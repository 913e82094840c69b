r"""Unbinned mixture likelihoods of signal and background densities."""

from __future__ import annotations

__all__ = ["Density", "MixtureLikelihood", "check_model_pair"]

import copy
import math
import warnings
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

from ..constraints import Constraint
from ..exceptions import FitError, FlowscanWarning, InputError, ModelFileError
from ..flows.ensemble import DensityEnsemble
from ..flows.fixed import FixedEnsemble, FixedEvents, FixedMembers
from ..flows.model import DensityModel, check_trained_range, model_device
from ..flows.training_grid import grid_gap
from ..variables import Variable, check_events
from ..weights import check_weights


class Density(Protocol):
    r"""What a likelihood needs of a density: a flow (`DensityModel`) or a closed form."""

    observables: list[Variable]
    theta_vars: list[Variable]

    def log_prob(self, x: Tensor, theta: Tensor) -> Tensor: ...


class MixtureLikelihood:
    r"""Negative log-likelihood of a signal plus background mixture.

    With yields `n_sig` and `n_bkg` given, the signal fraction `f_s = n_sig / (n_sig +
    n_bkg)` is fixed (seed 002) and theta = (theta_s, theta_b):

    .. math:: \mathrm{NLL}(\theta) = -\sum_i \log\left[f_s\, p_s(x_i | \theta_s)
        + (1 - f_s)\, p_b(x_i | \theta_b)\right].

    Without them the likelihood is extended: the yields are parameters, theta =
    (n_sig, n_bkg, theta_s, theta_b), and the Poisson term for the number of events enters
    (up to the constant log N!),

    .. math:: \mathrm{NLL} = n_\mathrm{sig} + n_\mathrm{bkg} - \sum_i \log\left[
        n_\mathrm{sig}\, p_s(x_i | \theta_s) + n_\mathrm{bkg}\, p_b(x_i | \theta_b)\right].

    Yields range over [0, N + 10 sqrt(N) + 10] for N events (with weights: N their sum,
    sqrt(N) sqrt(sum w^2) and 10 as many effective events); `negative_signal=True` lets
    `n_sig` go as far below 0 (for unbiased pseudo-experiments), and an NLL where the total
    density is not positive on every event raises `FloatingPointError`.

    Nuisance parameters: a parameter that the signal and the background density share
    by name (a jet energy scale that moves both) is one parameter of the likelihood
    (over the intersection of their ranges), and `constraints` (`Constraint`) add the
    terms of auxiliary measurements, a Gaussian or log-normal NLL term per constrained
    parameter.

    With `weights` each event's log term is multiplied by its weight, and N is their sum:
    a weighted sample stands in for a density. Simulated events with generator weights
    and scale factors (negative weights allowed; the sum must be positive): the NLL's
    data and Poisson terms are multiplied by `weight_scale` = sum w / sum w^2, which
    puts it in units of the effective events (sum w)^2 / sum w^2 whatever the weights'
    overall scale (sigma L / N_generated, say): the optimizers' tolerances and the
    constraint terms then meet the data's real information, the minimum and the yields
    are those of the weighted NLL, and a fit's errors are the sandwich's
    (`flowscan.scanner.sandwich`), since even so the curvature is not the information
    unequal weights carry. `asimov=True` says the weights are expected counts (the
    Asimov dataset of `upper_limit`), whose curvature is the expected information: no
    scale, and the errors stay HESSE's.
    `max_yield` replaces N + 10 sqrt(N) + 10, so pseudo-datasets can share the data's ranges.

    The events are checked against the models (`check_trained_range`: data whose bulk
    lies outside the training data are refused, tails beyond it warned about), given
    yields against the number of events (a warning beyond 5 sqrt(N)), and the models
    against each other: a signal and a background density that are the same model, or
    whose recorded roles (`DensityModel.role`) are swapped, raise `ModelFileError`
    unless `check_models=False`. `check_data=False` skips the checks of the events
    (for data drawn from the models themselves: pseudo-experiments, Asimov samples).

    Per-event terms are combined with a max-shifted sum and summed in float64, whatever
    dtype the densities run in, so the sum over 1e5 events keeps ~1e-9 relative
    precision. `nll` is a differentiable torch scalar; calling the likelihood is `nll`.

    Arguments:
        signal: Density with `log_prob(x, theta_sig)`.
        background: Density with `log_prob(x, theta_bkg)`.
        x: Observed events, shape `(N, F)`, in observable units.
        n_sig: Signal events assumed in the data; `None` (with `n_bkg`) for the extended form.
        n_bkg: Background events assumed in the data.
        negative_signal: Extended form only: allow `n_sig < 0`.
        weights: Event weights `(N,)`; all 1 if `None`.
        asimov: The weights are expected counts (an Asimov dataset), not simulation's.
        max_yield: Extended form only: upper bound of the yields, in events.
        check_models: Refuse the same model twice and swapped roles.
        check_data: Check the events against the models' training data, and the yields
            against the number of events.
        constraints: Constraint terms of parameters of the likelihood, by name.

    Example:
        >>> from flowscan.samples import BreitWigner, Exponential, pseudo_data
        >>> x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 100, 1000)
        >>> MixtureLikelihood(BreitWigner(), Exponential(), x, 100, 1000).names
        ['m_pole', 'gamma', 'tau']
        >>> MixtureLikelihood(BreitWigner(), Exponential(), x).names
        ['n_sig', 'n_bkg', 'm_pole', 'gamma', 'tau']
    """

    # Events are evaluated in chunks of each density's `chunk_pairs` theta-event pairs
    # (`FixedEvents`; `chunk_pairs` here overrides it): a fixed number, so results do not
    # depend on the machine's free memory.
    chunk_pairs: int | None = None

    def __init__(
        self,
        signal: Density,
        background: Density,
        x: Tensor,
        n_sig: float | None = None,
        n_bkg: float | None = None,
        *,
        negative_signal: bool = False,
        weights: Tensor | None = None,
        asimov: bool = False,
        max_yield: float | None = None,
        check_models: bool = True,
        check_data: bool = True,
        constraints: Sequence[Constraint] = (),
    ) -> None:
        if check_models:
            check_model_pair(signal, background)
        if [v.name for v in signal.observables] != [v.name for v in background.observables]:
            raise InputError(
                f"signal observables {[v.name for v in signal.observables]} differ from "
                f"background observables {[v.name for v in background.observables]}"
            )
        self.extended = n_sig is None and n_bkg is None
        if not self.extended:
            if n_sig is None or n_bkg is None:
                raise InputError("give both n_sig and n_bkg (fixed fraction) or neither (extended)")
            if not (n_sig >= 0 and n_bkg > 0 and math.isfinite(n_sig + n_bkg)):
                raise InputError(f"need n_sig >= 0 and n_bkg > 0, got n_sig={n_sig}, n_bkg={n_bkg}")
            if negative_signal or max_yield is not None:
                raise InputError(
                    "negative_signal and max_yield need the extended form (no n_sig, n_bkg)"
                )
        # the data go to the models' device (an exact density has none, and follows)
        devices = {model_device(m) for m in (signal, background) if isinstance(m, nn.Module)}
        if len(devices) > 1:
            raise InputError(
                f"the signal model is on {model_device(signal)} and the background model on "
                f"{model_device(background)}: move both to one device (.to(device))"
            )
        device = devices.pop() if devices else torch.device("cpu")
        x = torch.as_tensor(x, dtype=torch.float64).to(device)
        check_events(x, signal.observables)
        check_events(x, background.observables)
        if check_data:
            check_trained_range(x, signal, background)
        if weights is not None:
            weights = check_weights(weights, len(x), "the event weights").to(x.device)
        total, spread = (
            (len(x), math.sqrt(len(x)))
            if weights is None
            else (weights.sum().item(), weights.square().sum().sqrt().item())
        )
        if check_data and not self.extended and abs(n_sig + n_bkg - total) > 5 * spread:
            warnings.warn(
                f"n_sig + n_bkg = {n_sig + n_bkg:g} events, but the data hold {total:g} "
                f"(more than 5 sqrt(N) apart): only their ratio enters the fit "
                f"(f_sig = {n_sig / (n_sig + n_bkg):.4g}); check the yields",
                FlowscanWarning,
                stacklevel=2,
            )
        self.signal, self.background, self.x, self.weights = signal, background, x, weights
        self.asimov = asimov
        # simulation's weights: the NLL in units of the effective events (see above)
        self.weight_scale = 1.0 if weights is None or asimov else total / spread**2
        self._w = None if weights is None else weights * self.weight_scale
        self.negative_signal = negative_signal
        self.n_sig, self.n_bkg = n_sig, n_bkg  # the fixed fraction's yields, else None
        self.f_sig = None if self.extended else n_sig / (n_sig + n_bkg)
        yields = []
        if self.extended:  # N + 10 sqrt(N) + 10 in effective events, in the weights' units
            unit = 1 / self.weight_scale
            top = total + 10 * spread + 10 * unit if max_yield is None else max_yield
            if not top > 0:
                raise InputError(f"max_yield must be positive, got {max_yield}")
            low = -top if negative_signal else 0.0
            yields = [Variable("n_sig", "events", low, top), Variable("n_bkg", "events", 0.0, top)]
        self.theta_vars = _shared([*yields, *signal.theta_vars], background.theta_vars)
        names = self.names
        self._n_yields = len(yields)
        self._sig_index = torch.arange(len(yields), len(yields) + len(signal.theta_vars))
        self._bkg_index = torch.tensor(
            [names.index(v.name) for v in background.theta_vars], dtype=torch.long
        )
        self.constraints = self._checked(constraints)
        for c in self.constraints:
            v = self.theta_vars[self.names.index(c.name)]
            low, high = c.observed - 2 * c.width, c.observed + 2 * c.width
            short = (v.low is not None and v.low > low) or (v.high is not None and v.high < high)
            if c.kind == "gaussian" and short:
                warnings.warn(
                    f"nuisance {c.name} ranges over [{v.low:g}, {v.high:g}], narrower than +-2 "
                    f"sigma of its constraint ({c.observed:g} +- {c.width:g}): a fit, an error or "
                    "a toy's global observable beyond stops at the edge (a model trained on "
                    "variation samples at +-1: add samples at +-2)",
                    FlowscanWarning,
                    stacklevel=2,
                )
        self._events = {"signal": _fixed(signal, x), "background": _fixed(background, x)}
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.theta_vars]

    def _named(self, theta: Tensor) -> str:
        values = theta.detach().reshape(-1, len(self.names))[0].tolist()
        return ", ".join(f"{n} = {v:.6g}" for n, v in zip(self.names, values, strict=True))

    def nll(self, theta: Tensor) -> Tensor:
        r"""NLL at `theta` of shape `(P,)` (a float64 scalar) or a batch `(K, P)` (shape
        `(K,)`), constraint terms included, on theta's device (computed on the data's)."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        self._check(theta)
        on = theta.to(self.x.device)
        return (self.nll_split(*self.split(on)) + self.constraint_nll(on)).to(theta.device)

    def split(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""`theta` `(*, P)` as the signal's parameters `(*, D_s)`, the background's
        `(*, D_b)` (a shared parameter in both) and the yields `(*, 2)` (`None` for the
        fixed fraction): the arguments of `nll_split`."""
        theta = torch.as_tensor(theta)
        yields = theta[..., : self._n_yields] if self.extended else None
        sig, bkg = (i.to(theta.device) for i in (self._sig_index, self._bkg_index))
        return theta[..., sig], theta[..., bkg], yields

    def constraint_nll(self, theta: Tensor) -> Tensor:
        r"""The sum of the constraint terms at `theta` `(*, P)`, shape `(*)` (0 without
        constraints)."""
        names = self.names
        total = torch.zeros(theta.shape[:-1], dtype=theta.dtype, device=theta.device)
        for c in self.constraints:
            total = total + c.nll(theta[..., names.index(c.name)])
        return total

    def with_constraints(self, constraints: Sequence[Constraint]) -> MixtureLikelihood:
        r"""This likelihood with other constraint terms (e.g. the global observables of a
        pseudo-experiment), the work on the events shared."""
        other = copy.copy(self)
        other.constraints = self._checked(constraints)
        return other

    def _checked(self, constraints: Sequence[Constraint]) -> tuple[Constraint, ...]:
        names, out = self.names, tuple(constraints)
        for c in out:
            if not isinstance(c, Constraint):
                raise InputError(f"constraints are flowscan.scanner.Constraint, got {c!r}")
            if c.name not in names:
                raise InputError(
                    f"nuisance {c.name}: not a parameter of the likelihood; it has {names}"
                )
            v = self.theta_vars[names.index(c.name)]
            if c.kind == "lognormal" and not (v.low is not None and v.low >= 0):
                raise InputError(
                    f"nuisance {c.name}: a log-normal constraint is for a positive parameter "
                    f"(a yield, a rate), and {c.name} ranges over [{v.low}, {v.high}]"
                )
        if len({c.name for c in out}) < len(out):
            raise InputError("each parameter takes one constraint; a name appears twice")
        return out

    def _check(self, theta: Tensor) -> None:
        r"""Refuses a theta of the wrong shape, or not finite."""
        if theta.shape[-1:] != (len(self.theta_vars),) or theta.ndim > 2:
            raise InputError(
                f"theta must have shape (P,) or (K, P) with P = {len(self.theta_vars)} "
                f"for {self.names}, got {tuple(theta.shape)}"
            )
        if not torch.isfinite(theta).all():
            raise FitError(
                f"the NLL was asked for at a theta that is not finite, {self._named(theta)}: "
                "the optimizer diverged (try another start, or fix a parameter)"
            )

    def nll_split(
        self, theta_sig: Tensor, theta_bkg: Tensor, yields: Tensor | None = None
    ) -> Tensor:
        r"""NLL with `theta_sig` `(*, D_s)`, `theta_bkg` `(*, D_b)` and, for the extended
        form, `yields` `(*, 2)` = (n_sig, n_bkg) given apart, batch shapes `()` or `(K,)`.

        The densities are evaluated on the fixed events (`FixedEvents`: the events'
        share of the work was done once, at construction), each theta's share once per
        theta (`FixedEvents.terms`), then in chunks of events (each density's
        `chunk_pairs` theta-event pairs). With a gradient through a learned density,
        each chunk's backward pass follows its forward pass at once, its gradient with
        respect to the per-theta terms accumulated, and the sum goes back through the
        per-theta share once (`_ChunkedNLL`): memory stays that of one chunk, nothing is
        computed twice, and the result is a first derivative (no Hessian by autograd:
        use `error_scale_hessian`). Closed-form densities keep the whole graph.

        A `theta_sig` or `theta_bkg` that needs no gradient and is one value for the
        whole batch (or is empty: an unconditional density) has its per-event density
        computed once and cached: a fit of the yields at fixed masses, as in a limit,
        then costs no model evaluation at all."""
        if (yields is None) == self.extended:
            raise InputError("yields (n_sig, n_bkg) are needed exactly for the extended form")
        batched = theta_sig.ndim == 2
        if not batched:
            theta_sig, theta_bkg = theta_sig[None], theta_bkg[None]
            yields = None if yields is None else yields[None]
        cached = (
            self._cached_log_prob("signal", theta_sig),
            self._cached_log_prob("background", theta_bkg),
        )
        inputs = (theta_sig, theta_bkg, yields)
        learned = any(
            lp is None and getattr(e, "learned", True)
            for e, lp in zip(self._events.values(), cached, strict=True)
        )
        if (
            learned
            and torch.is_grad_enabled()
            and any(t.requires_grad for t in inputs if t is not None)
        ):
            nll = _ChunkedNLL.apply(self, cached, *inputs)
        else:
            nll, _ = self._chunks(inputs, cached, accumulate=False)
        if yields is not None:
            nll = nll + self.weight_scale * yields.sum(dim=-1)
        return nll if batched else nll[0]

    def _chunks(
        self,
        inputs: tuple[Tensor, Tensor, Tensor | None],
        cached: tuple[Tensor | None, Tensor | None],
        accumulate: bool,
    ) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        r"""The sum over chunks of events of `_nll` `(K,)` at `inputs` (theta_sig `(K,
        D_s)`, theta_bkg `(K, D_b)`, yields `(K, 2)` or `None`), the `cached` per-event
        log-densities `(N,)` in place of a density where given.

        `accumulate=False`: the sum, with its graph where gradients are enabled, and no
        gradients. `accumulate=True`: the sum without a graph, and its gradient with
        respect to each input that requires one (else `None`), each chunk's backward
        pass right after its forward pass, accumulated on the per-theta terms (cut from
        their graph) and propagated through them to the inputs once."""
        theta_sig, theta_bkg, yields = inputs
        k, n = len(theta_sig), len(self.x)
        live = [e for e, lp in zip(self._events.values(), cached, strict=True) if lp is None]
        pairs = self.chunk_pairs or min((e.chunk_pairs for e in live), default=2**16)
        step = max(1, pairs // k)
        terms = [
            () if lp is not None else events.terms(part)
            for events, part, lp in zip(self._events.values(), inputs[:2], cached, strict=True)
        ]
        outer = [*terms[0], *terms[1], *(() if yields is None else (yields,))]
        inner = [t.detach().requires_grad_(t.requires_grad) for t in outer] if accumulate else outer
        wants = [t for t in inner if t.requires_grad]
        sums = [torch.zeros_like(t) for t in wants]
        cut = len(terms[0])
        terms = [inner[:cut], inner[cut : cut + len(terms[1])]]
        y = None if yields is None else inner[-1]
        events = list(self._events.values())
        nll = 0.0
        for i in range(0, n, step):
            rows = slice(i, i + step)
            lp = [
                events[j].chunk(terms[j], rows) if cached[j] is None else cached[j][rows]
                for j in range(2)
            ]
            w = None if self._w is None else self._w[rows]
            part = self._nll(w, lp[0], lp[1], y, k)
            if accumulate and wants and part.requires_grad:  # f_sig = 0: none may enter
                # a term may not enter (f_sig = 0 leaves the signal out): no gradient
                grads = torch.autograd.grad(part.sum(), wants, allow_unused=True)
                for total, g in zip(sums, grads, strict=True):
                    if g is not None:
                        total += g
                part = part.detach()
            nll = nll + part
        if not accumulate:
            return nll, ()
        # the accumulated gradient through the per-theta share, once
        leaves = [t for t in inputs if t is not None and t.requires_grad]
        outs = [o for o, t in zip(outer, inner, strict=True) if t.requires_grad]
        grads = iter(
            torch.autograd.grad(outs, leaves, sums, allow_unused=True)
            if outs and leaves
            else [None] * len(leaves)
        )
        return nll, tuple(None if t is None or not t.requires_grad else next(grads) for t in inputs)

    def _nll(
        self,
        weights: Tensor | None,
        lp_s: Tensor,
        lp_b: Tensor,
        yields: Tensor | None,
        k: int,
    ) -> Tensor:
        r"""Sum over events of -log of the mixture density (times `weights` `(M,)` if
        given), `(K,)` for K thetas and yields `(K, 2)` or `None` (fixed fraction), from
        the log-densities of the events `lp_s`, `lp_b` (`(K, M)`, or `(M,)` cached)."""
        if yields is None:
            if self.f_sig == 0:
                lp_b = lp_b if weights is None else weights * lp_b
                return -lp_b.sum(dim=-1).expand(k)
            w_s, w_b = lp_s.new_tensor(self.f_sig), lp_s.new_tensor(1 - self.f_sig)
        else:
            w_s, w_b = yields[:, :1], yields[:, 1:]
        # log(w_s p_s + w_b p_b), shifted by the larger log-density; w_s may be negative.
        top = torch.maximum(lp_s, lp_b)
        total = w_s * (lp_s - top).exp() + w_b * (lp_b - top).exp()
        if not (total > 0).all():
            bad = int((~(total > 0)).sum(dim=-1).max())
            k = int((~(total > 0)).sum(dim=-1).argmax())
            if yields is None:
                raise FitError(f"the mixture density is not positive on {bad} event(s)")
            n_sig, n_bkg = yields[k].tolist()
            raise FitError(
                f"the total density n_sig p_s + n_bkg p_b is not positive on {bad} event(s) "
                f"at n_sig = {n_sig:.6g}, n_bkg = {n_bkg:.6g}: "
                + (
                    "both yields are 0"
                    if n_sig == 0 and n_bkg == 0
                    else "n_sig is too negative (bound it from below)"
                )
            )
        log_total = total.log() + top
        nll = -(log_total if weights is None else weights * log_total).sum(dim=-1)
        return nll.expand(k)  # (K,) also where both densities are cached

    __call__ = nll

    def log_densities(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        r"""The signal's and the background's log-densities on every event at thetas
        `(K, P)`, each `(K, N)` float64 on the data's device, without a gradient: what
        `from_log_densities` combines. A density whose parameters are one value for the
        whole batch is computed once (`nll_split`'s cache), so a batch over the signal
        parameters at fixed background parameters costs the signal model alone."""
        theta = torch.as_tensor(theta, dtype=torch.float64, device=self.x.device)
        self._check(theta)
        theta = theta.reshape(-1, len(self.names))
        out = []
        with torch.no_grad():
            for which, part in zip(("signal", "background"), self.split(theta)[:2], strict=True):
                cached = self._cached_log_prob(which, part)
                if cached is not None:
                    out.append(cached.expand(len(theta), -1))
                    continue
                events = self._events[which]
                terms, n = events.terms(part), len(self.x)
                step = max(1, (self.chunk_pairs or events.chunk_pairs) // len(theta))
                rows = [slice(i, i + step) for i in range(0, n, step)]
                out.append(torch.cat([events.chunk(terms, r) for r in rows], -1))
        return out[0], out[1]

    def from_log_densities(
        self, lp_s: Tensor, lp_b: Tensor, yields: Tensor | None = None
    ) -> Tensor:
        r"""The NLL `(K,)` from per-event log-densities `lp_s`, `lp_b` `(K, N)`
        (`log_densities`) and, for the extended form, `yields` `(K, 2)`; without the
        constraint terms."""
        if (yields is None) == self.extended:
            raise InputError("yields (n_sig, n_bkg) are needed exactly for the extended form")
        yields = None if yields is None else torch.as_tensor(yields).to(lp_s.device)
        nll = self._nll(self._w, lp_s, lp_b, yields, len(lp_s))
        return nll if yields is None else nll + self.weight_scale * yields.sum(dim=-1)

    def subset(self, rows: Tensor) -> MixtureLikelihood:
        r"""This likelihood on the events `rows` (indices), their weights scaled so that
        they sum to this likelihood's: its NLL estimates this one's, with the same
        parameters and ranges, at the cost of `len(rows)` events (the global search's
        coarse stages)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.x.device)
        if rows.ndim != 1 or not len(rows):
            raise InputError("a subset needs at least one event index")
        weights = torch.ones(len(self.x), dtype=torch.float64, device=self.x.device)
        weights = weights if self.weights is None else self.weights
        other = copy.copy(self)
        part = weights[rows].sum()
        if not part > 0:
            raise FitError(
                f"{len(rows)} events drawn for the global search have a weight sum of "
                f"{part.item():.4g}: too many negative weights for a coarse stage; raise the "
                "search's events (--option search.events=...)"
            )
        other.x, other.weights = self.x[rows], weights[rows] * (weights.sum() / part)
        other._w = other.weights * self.weight_scale
        other._events = {
            "signal": _fixed(self.signal, other.x),
            "background": _fixed(self.background, other.x),
        }
        other._cache = {}
        return other

    def value_and_grad(
        self, theta: Tensor, floating: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        r"""NLL `(K,)` and its gradient `(K, P)` at a batch of thetas `(K, P)`, with
        respect to the `floating` parameters (a boolean mask `(P,)`, all if `None`; the
        others get 0, and a density none of whose parameters float is computed once and
        cached, as in `nll_split`). One pass over the events for the whole batch, each
        chunk's backward pass right after its forward pass (`nll_split`): each NLL
        depends on its own theta only, so the gradient of their sum is theirs. Both on
        theta's device (computed on the data's)."""
        given = torch.as_tensor(theta, dtype=torch.float64)
        theta = given.to(self.x.device)
        self._check(theta)
        floating = torch.ones(theta.shape[-1], dtype=torch.bool) if floating is None else floating
        floating = torch.as_tensor(floating, dtype=torch.bool, device=theta.device)
        sig, bkg = (i.to(theta.device) for i in (self._sig_index, self._bkg_index))
        leaf = theta.detach().clone().requires_grad_(bool(floating.any()))
        # a density none of whose parameters float gets a theta without a graph: cached
        theta_sig, theta_bkg, yields = self.split(leaf)
        theta_sig = theta_sig if floating[sig].any() else theta_sig.detach()
        theta_bkg = theta_bkg if floating[bkg].any() else theta_bkg.detach()
        value = self.nll_split(theta_sig, theta_bkg, yields) + self.constraint_nll(leaf)
        if value.requires_grad:
            (grad,) = torch.autograd.grad(value.sum(), leaf)
        else:
            grad = torch.zeros_like(leaf)
        return value.detach().to(given.device), (grad * floating).to(given.device)

    def scores(self, theta: Tensor, chunk: int = 4096) -> Tensor:
        r"""Each event's score at `theta` `(P,)`: the gradient of the log of its mixture
        density, f_s p_s + (1 - f_s) p_b (or of its intensity n_sig p_s + n_bkg p_b,
        extended), with respect to every parameter, `(N, P)` float64 on the CPU,
        unweighted. What the weighted fit's sandwich covariance sums (`sandwich`).
        Computed with one theta per event, `chunk` events at a time, so that one
        backward pass gives every event's own gradient."""
        theta = torch.as_tensor(theta, dtype=torch.float64, device=self.x.device)
        self._check(theta)
        out = []
        for i in range(0, len(self.x), chunk):
            x = self.x[i : i + chunk]
            leaf = theta.expand(len(x), -1).clone().requires_grad_()
            theta_sig, theta_bkg, yields = self.split(leaf)
            lp = [
                density.log_prob(x, part if part.shape[-1] else None).double()
                for density, part in ((self.signal, theta_sig), (self.background, theta_bkg))
            ]
            if yields is None:
                w_s, w_b = self.f_sig, 1 - self.f_sig
            else:
                w_s, w_b = yields[:, 0], yields[:, 1]
            top = torch.maximum(*lp).detach()
            log_total = (w_s * (lp[0] - top).exp() + w_b * (lp[1] - top).exp()).log() + top
            (grad,) = torch.autograd.grad(log_total.sum(), leaf)
            out.append(grad.cpu())
        return torch.cat(out)

    def grid_gaps(self, theta: Sequence[float]) -> list[str]:
        r"""Why the densities' parameters at theta `(P,)` lie outside the training grid
        of a model that has one (`grid_gap`), one sentence per density; empty where
        they lie inside, or the models were trained on continuous theta."""
        theta_sig, theta_bkg, _ = self.split(torch.as_tensor(theta, dtype=torch.float64))
        out = []
        for which, part in (("signal", theta_sig), ("background", theta_bkg)):
            density = getattr(self, which)
            points = getattr(density, "training_points", None)
            d = len(density.theta_vars) if points is None else points.shape[1]  # scales: after
            gap = grid_gap(points, part.tolist()[:d], density.theta_vars[:d])
            if gap is not None:
                out.append(f"the {which} model: {gap}")
        return out

    def with_density(self, which: str, density: Density) -> MixtureLikelihood:
        r"""This likelihood with the `which` ("signal" or "background") density replaced by
        `density` (of the same observables and parameters, e.g. one member of an
        ensemble), unchecked: the other density's work on the events is shared."""
        other = copy.copy(self)
        setattr(other, which, density)
        other._events = {**self._events, which: _fixed(density, self.x)}
        other._cache = {k: v for k, v in self._cache.items() if k != which}
        return other

    def by_member(self, which: str) -> MixtureLikelihood:
        r"""This likelihood with the `which` ("signal" or "background") ensemble taken
        member by member (`FixedMembers`): at a batch of K thetas `(K, P)`, K its number
        of members, row k is the NLL with member k in place of the ensemble, the other
        density as it is. Every member's likelihood at its own theta in one pass (the
        model error's Newton steps, `model_errors`); the work on the events is shared."""
        density = getattr(self, which)
        if len(getattr(density, "members", ())) < 2:
            raise InputError(f"the {which} density is not an ensemble of several members")
        events = self._events[which]
        members = (
            events.members
            if isinstance(events, FixedEnsemble)
            else [_fixed(m, self.x) for m in density.members]
        )
        other = copy.copy(self)
        other._events = {**self._events, which: FixedMembers(members, bool(density.theta_vars))}
        other._cache = {k: v for k, v in self._cache.items() if k != which}
        return other

    def _cached_log_prob(self, which: str, theta: Tensor) -> Tensor | None:
        r"""The cached per-event log-density `(N,)` of the `which` ("signal" or
        "background") density where `nll_split` allows it, else `None` (computed chunk
        by chunk with the rest)."""
        d = theta.shape[-1]
        first = theta.reshape(-1, d)[0] if theta.numel() else theta.new_empty(d)
        if d and (theta.requires_grad or not (theta == first).all()):
            return None
        if isinstance(self._events[which], FixedMembers):  # one density per row
            return None
        cached = self._cache.get(which)
        if cached is None or not torch.equal(cached[0], first):
            events = self._events[which]
            step = self.chunk_pairs or events.chunk_pairs
            with torch.no_grad():
                lp = [
                    events.log_prob(first[None], slice(i, i + step)).reshape(-1)
                    for i in range(0, len(self.x), step)
                ]
            cached = self._cache[which] = (first.clone(), torch.cat(lp))
        return cached[1]


def _shared(first: list[Variable], second: Sequence[Variable]) -> list[Variable]:
    r"""`first` and the variables of `second` not in it by name; a variable in both
    ranges over the intersection of its two ranges."""
    out = list(first)
    for v in second:
        names = [u.name for u in out]
        if v.name not in names:
            out.append(v)
            continue
        k = names.index(v.name)
        u = out[k]
        lows = [b for b in (u.low, v.low) if b is not None]
        highs = [b for b in (u.high, v.high) if b is not None]
        low, high = max(lows, default=None), min(highs, default=None)
        if low is not None and high is not None and not low < high:
            raise InputError(
                f"the signal and background share {v.name}, but its ranges "
                f"[{u.low}, {u.high}] and [{v.low}, {v.high}] do not overlap"
            )
        out[k] = Variable(v.name, u.unit or v.unit, low, high)
    return out


class _Direct:
    r"""Any `Density` on fixed events, as `FixedEvents` gives a `DensityModel`: its
    `log_prob` on the events `rows` for thetas `(K, D)`, `(K, M)`. `learned`: whether
    it holds a network (a `Scaled` model), whose gradient goes chunk by chunk; a closed
    form keeps its whole graph (for the autograd Hessian of `covariance`)."""

    chunk_pairs = 2**16
    n_terms = 1

    def __init__(self, density: Density, x: Tensor) -> None:
        self.density, self.x = density, x
        self.learned = isinstance(density, nn.Module) and any(True for _ in density.parameters())

    def __len__(self) -> int:
        return len(self.x)

    def terms(self, theta: Tensor) -> tuple[Tensor]:
        return (theta,)

    def chunk(self, terms: tuple[Tensor], rows: slice) -> Tensor:
        return self.density.log_prob(self.x[rows], terms[0][:, None, :]).double()

    def log_prob(self, theta: Tensor, rows: slice = slice(None)) -> Tensor:
        return self.chunk(self.terms(theta), rows)


class _ChunkedNLL(torch.autograd.Function):
    r"""`MixtureLikelihood._chunks` with its gradient computed in the forward pass, chunk
    by chunk (`accumulate=True`), and handed back in the backward pass: the NLL `(K,)`
    of theta_sig `(K, D_s)`, theta_bkg `(K, D_b)` and yields `(K, 2)` or `None`."""

    @staticmethod
    def forward(ctx, nll, cached, theta_sig, theta_bkg, yields):  # noqa: ANN001, ANN205
        need = ctx.needs_input_grad[2:]
        inputs = [
            None if t is None else t.detach().requires_grad_(n)
            for t, n in zip((theta_sig, theta_bkg, yields), need, strict=True)
        ]
        with torch.enable_grad():
            value, grads = nll._chunks(inputs, cached, accumulate=True)
        ctx.save_for_backward(*grads)
        return value

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        if torch.is_grad_enabled():  # create_graph: a second derivative was asked for
            raise InputError(
                "the NLL through a learned density is differentiable once (its gradient is "
                "computed chunk by chunk); for its curvature use error_scale_hessian"
            )
        return None, None, *(None if g is None else grad[:, None] * g for g in ctx.saved_tensors)


def _fixed(density: Density, x: Tensor) -> FixedEvents | FixedEnsemble | _Direct:
    if isinstance(density, DensityEnsemble):
        return FixedEnsemble(density, x)
    return FixedEvents(density, x) if isinstance(density, DensityModel) else _Direct(density, x)


def check_model_pair(signal: Density, background: Density) -> None:
    r"""Raises `ModelFileError` if the two densities are one model, or their recorded
    roles are swapped."""
    for density, role in ((signal, "signal"), (background, "background")):
        recorded = getattr(density, "role", None)
        if recorded is not None and recorded != role:
            raise ModelFileError(
                f"the {role} model was trained as the {recorded} model: are the signal and "
                "background files swapped? (--no-model-check, or check_models=False, to "
                "use it so anyway)"
            )
    # a `Scaled` density compares by its nominal model
    signal, background = (getattr(d, "nominal", d) for d in (signal, background))
    same = signal is background
    learned = (DensityModel, DensityEnsemble)
    if isinstance(signal, learned) and isinstance(background, learned):
        a, b = signal.state_dict(), background.state_dict()
        same = same or (
            signal.config == background.config
            and a.keys() == b.keys()
            and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
        )
    if same:
        raise ModelFileError(
            "the signal and background densities are the same model: give the signal model "
            "and the background model (--no-model-check, or check_models=False, to fit so "
            "anyway)"
        )
