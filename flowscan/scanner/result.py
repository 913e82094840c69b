r"""The result every optimizer returns."""

from __future__ import annotations

__all__ = ["DISTINCT_NLL", "FAILURES", "STATUSES", "ScanResult", "fit_status", "model_warning"]

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import FitError

if TYPE_CHECKING:
    from ..variables import Variable
    from .space import ParameterSpace

# What a fit's `status` can be: a minimum inside the box; a minimum on a bound of the
# box (`at_bound` names the parameters); a minimum above one found elsewhere (by another
# method or descent, `compare_methods`); the method's stopping rule not met, or a curvature that
# is not positive definite; no finite NLL to stop at (`ScanResult.failed`). The last
# three are failures: exit code 1.
STATUSES = ("valid", "at bound", "local minimum", "invalid", "failed")
FAILURES = ("local minimum", "invalid", "failed")
# Two minima more than this apart in NLL are different answers (a quarter of a standard
# deviation in one parameter is 0.03).
DISTINCT_NLL = 0.5
# A parameter this close to a bound, as a fraction of its range, is at the bound.
AT_BOUND = 1e-3


def fit_status(converged: bool, theta: np.ndarray, space: ParameterSpace) -> tuple[str, list[str]]:
    r"""The `status` of a fit with best point `theta` `(P,)` in `space` whose stopping rule
    was met (`converged`) or not, and the floating parameters within `AT_BOUND` of their
    range of a bound. A point on a bound is `"at bound"` whether or not the stopping rule
    was met (MIGRAD's often is not there: the curvature across the bound is unknown).

    Example:
        >>> from flowscan.scanner import ParameterSpace
        >>> from flowscan.samples import BreitWigner
        >>> space = ParameterSpace(BreitWigner.theta_vars)
        >>> fit_status(True, np.array([450.0, 20.0]), space)
        ('at bound', ['gamma'])
    """
    theta = np.asarray(theta, dtype=float)
    if not np.isfinite(theta).all():
        return "invalid", []
    low, high = space.bounds[:, 0], space.bounds[:, 1]
    near = np.minimum(theta - low, high - theta) <= AT_BOUND * (high - low)
    at_bound = [n for n, f, b in zip(space.names, space.floating, near, strict=True) if f and b]
    if at_bound:  # also what makes a minimizer's stopping rule fail there
        return "at bound", at_bound
    return ("valid" if converged else "invalid"), []


def model_warning(names: Sequence[str]) -> str:
    r"""What tables print for parameters `names` whose model error exceeds their
    statistical error."""
    return (
        f"WARNING: the model error exceeds the statistical error for {', '.join(names)}: "
        "the density models, not the data, limit the fit there; train on more events, on "
        "a denser theta grid, or with more ensemble members"
    )


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
        status: `"valid"`, `"at bound"`, `"invalid"` or `"failed"` (`STATUSES`,
            `fit_status`); what tables, JSON and exit codes report.
        at_bound: Floating parameters at a bound of their range (status `"at bound"`).
        fixed: Parameters held at their start value.
        path: Successive best points, shape `(S, P)`, the start first.
        trace: Rows `(nll_evals, seconds, best nll so far)` after each evaluation.
        errors: Standard errors `(P,)` where the method has them (0 for fixed ones).
        covariance: Covariance `(P, P)` where the method has it.
        errors_model: Model errors `(P,)` where the densities are ensembles
            (`model_errors`): the spread of the fit over their members.
        covariance_model: Model covariance `(P, P)` (rank at most K - 1).
        errors_model_by: The signal's and the background's shares of `errors_model`,
            "signal"/"background" -> `(P,)` (their quadrature sum is `errors_model`).
        theta_members: Each member's minimum, "signal"/"background" -> `(K, P)`.
        errors_bias: The bias the ensembles' members share `(P,)`, beyond the model
            error (`flowscan.validation.model_bias`, from a closure at the analysis's
            yields; `flowscan scan --model-bias`): a third error, 0 for parameters it
            does not name; `None` where none was given.
        weighted: Where the events are weighted simulation (`MixtureLikelihood`'s
            weights, not an Asimov dataset): `events`, the `sum` of the weights, the
            `effective` number of events (sum w)^2 / sum w^2, and `errors_hesse` and
            `covariance_hesse`, the weighted NLL's own curvature errors `(P,)` and
            covariance `(P, P)`, which `errors` and `covariance` (the sandwich's,
            `flowscan.scanner.sandwich`) replace.
        warnings: What makes the fit less trustworthy than its errors say (a best fit
            in a gap of a model's training grid, `MixtureLikelihood.grid_gaps`; a
            signal parameter on a bound, and why; another minimum as low).
        minima: Other minima found, each `{"source": ..., "theta": (P,), "nll": ...}`:
            the ends of other descents of the search (`fit`) or other methods'
            (`compare_methods`).
        search: What the global search before the fit did (`Search`: cells, events,
            descents, evaluations, seconds), where one ran.
        settings: The `FitSettings` of the fit (`dataclasses.asdict`), where `fit` ran it.
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
    status: str = "valid"
    at_bound: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    errors: np.ndarray | None = None
    covariance: np.ndarray | None = field(default=None, repr=False)
    errors_model: np.ndarray | None = None
    covariance_model: np.ndarray | None = field(default=None, repr=False)
    errors_model_by: dict[str, np.ndarray] | None = field(default=None, repr=False)
    theta_members: dict[str, np.ndarray] | None = field(default=None, repr=False)
    errors_bias: np.ndarray | None = None
    weighted: dict | None = None
    warnings: list[str] = field(default_factory=list)
    minima: list[dict] = field(default_factory=list)
    search: dict | None = None
    settings: dict | None = None
    minos: dict[str, tuple[float, float]] | None = None
    profiles: dict[str, np.ndarray] | None = field(default=None, repr=False)
    contours: dict[str, dict[str, np.ndarray]] | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        r"""Whether the fit found a minimum inside the parameter box."""
        return self.status == "valid"

    @property
    def model_limited(self) -> list[str]:
        r"""The floating parameters whose model error exceeds their statistical error:
        the density models, not the data, limit them."""
        if self.errors_model is None or self.errors is None:
            return []
        return [
            n
            for n, stat, model in zip(self.names, self.errors, self.errors_model, strict=True)
            if n not in self.fixed and model > stat
        ]

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
    def failed(cls, method: str, space: ParameterSpace, message: str, seconds: float) -> ScanResult:
        r"""The record of a fit that raised `FitError`: status `"failed"`, NaN values."""
        nan = np.full(len(space.names), np.nan)
        return cls(
            method=method,
            names=space.names,
            theta=nan,
            nll=np.nan,
            nll_evals=0,
            grad_evals=0,
            seconds=seconds,
            converged=False,
            message=message,
            path=nan[None],
            trace=np.empty((0, 3)),
            status="failed",
            fixed=space.fixed_names,
        )

    @classmethod
    def from_evaluations(
        cls,
        method: str,
        space: ParameterSpace,
        thetas: np.ndarray,
        values: np.ndarray,
        times: np.ndarray,
        message: str,
    ) -> ScanResult:
        r"""Result of a gradient-free scan of `space` from its evaluations in order: thetas
        `(K, P)`, NLL values `(K,)` (non-finite ones never count as best) and the seconds at which
        each was known `(K,)`. The path is the sequence of running-best points."""
        finite = np.where(np.isfinite(values), values, np.inf)
        if not np.isfinite(finite).any():
            raise FitError(f"{method}: the NLL is not finite at any evaluated point")
        best = np.minimum.accumulate(finite)
        improving = np.flatnonzero(np.r_[True, best[1:] < best[:-1]])
        k = int(np.argmin(finite))
        status, at_bound = fit_status(True, thetas[k], space)
        return cls(
            method=method,
            names=space.names,
            theta=thetas[k],
            nll=float(values[k]),
            nll_evals=len(values),
            grad_evals=0,
            seconds=float(times[-1]),
            converged=True,
            message=message,
            path=thetas[improving],
            trace=np.column_stack([np.arange(1, len(values) + 1), times, best]),
            status=status,
            at_bound=at_bound,
            fixed=space.fixed_names,
        )

    def table(self, theta_vars: Sequence[Variable]) -> str:
        r"""The fit as text: a status line (NLL, evaluations, seconds, what the method
        said), then a row per parameter of `theta_vars` with its value, error (two
        significant digits; `value +- stat +- model` where the fit has a model error,
        `+- bias` after it where it has a bias term)
        and unit, `(fixed)` for fixed ones, a flag where a parameter sits at a bound,
        and a warning where the model error exceeds the statistical error."""
        units = {v.name: v.unit for v in theta_vars}
        head = f"  {self.method}: {self.status.upper()}"
        if self.status == "failed":
            return f"{head}: no finite minimum; {self.message}"
        lines = [
            f"{head}, NLL = {self.nll:.3f}, {self.nll_evals} NLL and {self.grad_evals} "
            f"gradient evaluations, {self.seconds:.1f} s; {self.message}"
        ]
        if self.search is not None:
            lines.append(f"    {self.search['summary']}")
        if self.weighted is not None:
            w = self.weighted
            lines.append(
                f"    weighted events: {w['events']}, sum of weights {w['sum']:.6g}, effective "
                f"{w['effective']:.6g}; errors by the sandwich (corrected for the weights)"
            )
        if self.at_bound:
            lines.append(
                f"    at a bound of its range: {', '.join(self.at_bound)} (the minimum may lie "
                "beyond it; its error is not a 68% interval)"
            )
        for i, name in enumerate(self.names):
            value = self.theta[i]
            error = None if self.errors is None else self.errors[i]
            model = None if self.errors_model is None else self.errors_model[i]
            # Decimals that give the error two significant digits (6 significant digits without).
            digits = 5 - math.floor(math.log10(abs(value))) if value else 5
            shown = [e for e in (error, model) if e is not None and np.isfinite(e) and e > 0]
            if shown:  # the statistical error's, or the model error's without one
                digits = 1 - math.floor(math.log10(shown[0]))
            digits = max(digits, 0)
            text = f"{value:>12.{digits}f}"
            if name in self.fixed:
                text += " (fixed)"
            else:
                if error is not None:
                    has_error = np.isfinite(error) and error > 0
                    text += (
                        f" +- {error:.{digits}f}"
                        if has_error
                        else " (no error: curvature unusable)"
                    )
                if model is not None:
                    stat = " (stat)" if error is not None and has_error else ""
                    text += (
                        f"{stat} +- {model:.{digits}f} (model)"
                        if np.isfinite(model)
                        else f"{stat} (no model error: at a bound)"
                    )
                if self.errors_bias is not None and self.errors_bias[i] > 0:
                    text += f" +- {self.errors_bias[i]:.{digits}f} (bias)"
            if self.minos is not None and name in self.minos:
                lo, hi = self.minos[name]
                text += f" (MINOS {lo:+.{digits}f} / {hi:+.{digits}f})"
            flag = "  AT BOUND" if name in self.at_bound else ""
            lines.append(f"    {name:<10}{text} {units[name]}{flag}")
        for other in self.minima:
            where = ", ".join(
                f"{n} = {v:.4g}"
                for n, v in zip(self.names, other["theta"], strict=True)
                if n not in self.fixed
            )
            above = other["nll"] - self.nll
            lines.append(f"    another minimum ({other['source']}), NLL {above:+.2f}: {where}")
        if self.model_limited:
            lines.append(f"    {model_warning(self.model_limited)}")
        lines.extend(f"    WARNING: {w}" for w in self.warnings)
        return "\n".join(lines)
