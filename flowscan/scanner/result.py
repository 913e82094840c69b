r"""The result every optimizer returns."""

from __future__ import annotations

__all__ = ["ScanResult"]

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class ScanResult:
    r"""Outcome of a parameter scan.

    Attributes:
        method: Optimizer name.
        names: Parameter names, length P.
        theta: Best parameters found, shape `(P,)`.
        nll: NLL at `theta`.
        nll_evals: NLL evaluations (each theta of a batch counts as one).
        grad_evals: Gradient evaluations, counted the same way.
        seconds: Wall time of the scan.
        converged: Whether the method's stopping rule was met (not just its budget).
        message: Why it stopped.
        path: Successive best points, shape `(S, P)`, the start first.
        trace: Rows `(nll_evals, seconds, best nll so far)` after each evaluation.
        errors: Standard errors `(P,)` where the method has them (0 for fixed ones).
        covariance: Covariance `(P, P)` where the method has it.
        minos: MINOS intervals, name -> (lower, upper) offsets, where asked for.
    """

    method: str
    names: list[str]
    theta: np.ndarray
    nll: float
    nll_evals: int
    grad_evals: int
    seconds: float
    converged: bool
    message: str
    path: np.ndarray = field(repr=False)
    trace: np.ndarray = field(repr=False)
    errors: np.ndarray | None = None
    covariance: np.ndarray | None = field(default=None, repr=False)
    minos: dict[str, tuple[float, float]] | None = None

    @property
    def values(self) -> dict[str, float]:
        r"""Best-fit parameters by name."""
        return dict(zip(self.names, map(float, self.theta), strict=True))

    def to_dict(self) -> dict:
        r"""JSON-ready dictionary (arrays as lists)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = v.tolist()
        return d
