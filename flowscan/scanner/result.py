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
        profiles: 1D profiles, name -> rows `(value, NLL - minimum)`, where asked for.
        contours: 2D confidence contours, "x,y" -> coverage ("0.68", "0.95") -> points
            `(C, 2)` on the contour, where asked for.
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
    profiles: dict[str, np.ndarray] | None = field(default=None, repr=False)
    contours: dict[str, dict[str, np.ndarray]] | None = field(default=None, repr=False)

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

    @classmethod
    def from_evaluations(
        cls,
        method: str,
        names: list[str],
        thetas: np.ndarray,
        values: np.ndarray,
        times: np.ndarray,
        message: str,
    ) -> ScanResult:
        r"""Result of a gradient-free scan from its evaluations in order: thetas `(K, P)`,
        NLL values `(K,)` (non-finite ones never count as best) and the seconds at which
        each was known `(K,)`. The path is the sequence of running-best points."""
        finite = np.where(np.isfinite(values), values, np.inf)
        if not np.isfinite(finite).any():
            raise FloatingPointError(f"{method}: the NLL is not finite at any evaluated point")
        best = np.minimum.accumulate(finite)
        improving = np.flatnonzero(np.r_[True, best[1:] < best[:-1]])
        k = int(np.argmin(finite))
        return cls(
            method=method,
            names=names,
            theta=thetas[k],
            nll=float(values[k]),
            nll_evals=len(values),
            grad_evals=0,
            seconds=float(times[-1]),
            converged=True,
            message=message,
            path=thetas[improving],
            trace=np.column_stack([np.arange(1, len(values) + 1), times, best]),
        )
