r"""Event weights: generator weights (negative ones included, as NLO generators make
them) times scale factors, checked, and the number of unweighted events they are worth."""

from __future__ import annotations

__all__ = ["check_weights", "effective_events"]

import torch
from torch import Tensor

from .exceptions import InputError


def check_weights(weights: Tensor, events: int, what: str = "the weights") -> Tensor:
    r"""`weights` as a float64 tensor `(N,)`, N = `events`, checked: one finite number per
    event, whose sum is positive (a sample of negative total weight is no density).
    Negative weights are allowed. Raises `InputError` naming the problem.

    Example:
        >>> check_weights(torch.tensor([1.0, -0.5, 2.0]), 3)
        tensor([ 1.0000, -0.5000,  2.0000], dtype=torch.float64)
    """
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (events,):
        raise InputError(f"{what} must be one number per event, {events}; got {tuple(w.shape)}")
    bad = ~torch.isfinite(w)
    if bad.any():
        first = int(bad.nonzero()[0])
        raise InputError(
            f"{what} hold {int(bad.sum())} NaN or inf value(s) (first at row {first}): fix "
            "or remove those events"
        )
    if not w.sum() > 0:
        raise InputError(
            f"{what} sum to {w.sum().item():.6g} over {events} events: a weighted sample "
            "needs a positive total weight (is the weight column the right one?)"
        )
    return w


def effective_events(weights: Tensor | None, events: int | None = None) -> float:
    r"""The effective number of events (sum w)^2 / sum w^2 of `weights` `(N,)`: as many
    unweighted events have the same relative statistical precision. `None` (unweighted)
    gives `events`.

    Example:
        >>> effective_events(torch.tensor([1.0, 1.0, 1.0, 1.0]))
        4.0
        >>> effective_events(torch.tensor([1.0, 1.0, -1.0, 1.0]))  # a negative weight costs
        1.0
    """
    if weights is None:
        return float(events)
    w = torch.as_tensor(weights, dtype=torch.float64)
    return float(w.sum() ** 2 / (w**2).sum())
