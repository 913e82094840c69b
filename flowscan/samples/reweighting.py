r"""Weighted samples with a known density, for testing weighted training and fits:
events drawn at one theta and reweighted by the exact density ratio to another, with
negative weights where asked for."""

from __future__ import annotations

__all__ = ["reweighted"]

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InputError


def reweighted(
    density, target: Tensor, source: Tensor, n: int, negative: float = 0.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    r"""`n` weighted events whose weighted density is `density` at `target`: drawn at
    `source` and weighted by the exact ratio p(x | target) / p(x | source) (an exact
    density with `log_prob` and `sample`, e.g. `BreitWigner`).

    With `negative` (a fraction below 0.5), that fraction of the events has weight -1:
    a share `1 - 2 negative` of the events is drawn and weighted as above, the rest are
    pairs drawn at `source` with weights +1 and -1, whose contributions cancel in
    expectation. The weighted density stays the target's, at the cost of effective
    events, as in an NLO generator's sample.

    Arguments:
        density: The exact density.
        target: Its parameters `(D,)`, or one row per event `(n, D)`.
        source: Where the events are drawn, the same shape.
        n: Number of events.
        negative: The fraction of events with weight -1, in [0, 0.5).
        seed: Seed of the draws and of the shuffle.

    Returns:
        Events `(n, F)` and weights `(n,)`, float64, event i at row i of per-event
        parameters; the kinds of events mixed in random order.

    Example:
        >>> from flowscan.samples import Exponential
        >>> x, w = reweighted(Exponential(), torch.tensor([250.0]), torch.tensor([150.0]),
        ...                   10_000, negative=0.2, seed=1)
        >>> round(float((w < 0).double().mean()), 2), round(float(w.sum()) / 6_000, 1)
        (0.2, 1.0)
    """
    if not 0 <= negative < 0.5:
        raise InputError(f"negative is a fraction of the events in [0, 0.5), got {negative}")
    target, source = (torch.as_tensor(t, dtype=torch.float64) for t in (target, source))
    k = round(negative * n)
    rng = np.random.default_rng(seed)
    place = torch.from_numpy(rng.permutation(n))  # where each block's events go
    base, pairs = place[: n - 2 * k], place[n - 2 * k :]

    def at(t: Tensor, rows: Tensor) -> Tensor:  # one theta, or each event's own
        return t if t.ndim == 1 else t[rows]

    x = torch.empty(n, len(density.observables), dtype=torch.float64)
    w = torch.empty(n, dtype=torch.float64)
    drawn = density.sample(len(base), at(source, base), seed=int(rng.integers(2**63))).double()
    ratio = density.log_prob(drawn, at(target, base)) - density.log_prob(drawn, at(source, base))
    x[base], w[base] = drawn, ratio.double().exp()
    x[pairs] = density.sample(2 * k, at(source, pairs), seed=int(rng.integers(2**63))).double()
    w[pairs] = torch.cat([torch.ones(k), -torch.ones(k)]).double()
    return x, w
