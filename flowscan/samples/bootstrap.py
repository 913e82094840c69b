r"""Pseudo-data by resampling a sample of simulated events."""

from __future__ import annotations

__all__ = ["Bootstrap"]

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..variables import Variable, check_events


class Bootstrap:
    r"""Draws events from a fixed sample with replacement: pseudo-data from simulation at
    one theta, with no model in between (the `generator` of `pseudo_experiments`).

    Arguments:
        events: The sample, shape `(N, F)`, in observable units.
        observables: Its F observables.
    """

    theta_vars: tuple[Variable, ...] = ()  # the sample's theta is fixed

    def __init__(self, events: Tensor, observables: Sequence[Variable]) -> None:
        events = torch.as_tensor(events, dtype=torch.float64)
        check_events(events, observables)
        self.events, self.observables = events, list(observables)

    def sample(self, n: int, theta: Tensor | None = None, seed: int | None = None) -> Tensor:
        r"""`n` events drawn with replacement, `(n, F)` float64. `theta` is ignored: the
        sample is at the theta it was simulated at."""
        rows = np.random.default_rng(seed).integers(len(self.events), size=n)
        return self.events[torch.from_numpy(rows)]
