r"""Pseudo-data by resampling a sample of simulated events."""

from __future__ import annotations

__all__ = ["Bootstrap"]

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..exceptions import InputError
from ..variables import Variable, check_events
from ..weights import check_weights


class Bootstrap:
    r"""Draws events from a fixed sample with replacement: pseudo-data from simulation,
    with no model in between (the `generator` of `pseudo_experiments`, the reference of
    `flowscan.validation.closure`).

    Arguments:
        events: The sample, shape `(N, F)`, in observable units.
        observables: Its F observables.
        theta: The parameters each event was simulated at, `(N, D)` (e.g. the masses of
            the files of `flowscan simulate --grid`), or `None` for a sample at one
            theta, which `sample` then ignores.
        theta_vars: The D parameters of `theta`.
        weights: Event weights `(N,)`, >= 0: an event is drawn with a probability in
            proportion to its weight, so the draws follow the weighted density
            unweighted. Negative weights are refused: a draw cannot carry a sign.

    Example:
        >>> events = torch.tensor([[1.0], [2.0], [3.0]])
        >>> sample = Bootstrap(events, [Variable("x")], torch.tensor([[5.0], [5.0], [7.0]]),
        ...                    [Variable("m")])
        >>> sample.sample(4, torch.tensor([7.0]), seed=0).flatten().tolist()
        [3.0, 3.0, 3.0, 3.0]
    """

    def __init__(
        self,
        events: Tensor,
        observables: Sequence[Variable],
        theta: Tensor | None = None,
        theta_vars: Sequence[Variable] = (),
        weights: Tensor | None = None,
    ) -> None:
        events = torch.as_tensor(events, dtype=torch.float64)
        check_events(events, observables)
        if weights is not None:
            weights = check_weights(weights, len(events))
            if (weights < 0).any():
                raise InputError(
                    f"{int((weights < 0).sum())} of {len(events)} weights are negative: "
                    "pseudo-data drawn from a sample follow its weights as probabilities; "
                    "fit weighted events directly (flowscan scan --weight) instead"
                )
        self.weights = weights
        self.events, self.observables = events, list(observables)
        self.theta = None if theta is None else torch.as_tensor(theta, dtype=torch.float64)
        self.theta_vars = list(theta_vars)
        if (self.theta is None) != (not self.theta_vars) or (
            self.theta is not None and self.theta.shape != (len(events), len(self.theta_vars))
        ):
            raise InputError(
                f"theta must have shape ({len(events)}, {len(self.theta_vars)}) for "
                f"{[p.name for p in self.theta_vars]}"
            )

    @property
    def points(self) -> Tensor | None:
        r"""The distinct parameter points of the sample, `(K, D)`, or `None`."""
        return None if self.theta is None else torch.unique(self.theta, dim=0)

    def sample(self, n: int, theta: Tensor | None = None, seed: int | None = None) -> Tensor:
        r"""`n` events drawn with replacement (in proportion to their weights, where
        weighted), `(n, F)` float64: from the events simulated at `theta` `(D,)`
        (exactly; `InputError` naming the sample's points if there are none), or from
        all of them for a sample at one theta."""
        events = self.events
        if self.theta is not None:
            at = (self.theta == torch.as_tensor(theta, dtype=torch.float64)).all(-1)
            if not at.any():
                names = [p.name for p in self.theta_vars]
                raise InputError(
                    f"the sample has no events at {names} = {torch.as_tensor(theta).tolist()}; "
                    f"it holds {self.points.tolist()}"
                )
            events = events[at]
            weights = None if self.weights is None else self.weights[at]
        else:
            weights = self.weights
        rng = np.random.default_rng(seed)
        if weights is None:
            rows = rng.integers(len(events), size=n)
        elif not weights.sum() > 0:
            raise InputError(f"the sample's weights at {torch.as_tensor(theta).tolist()} are 0")
        else:
            rows = rng.choice(len(events), size=n, p=(weights / weights.sum()).numpy())
        return events[torch.from_numpy(rows)]
