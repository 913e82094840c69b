r"""Minuit fits (iminuit) fed the exact autograd gradient."""

from __future__ import annotations

__all__ = ["MinuitCost", "minuit_scan"]

import itertools
import time
from collections.abc import Callable

import numpy as np
import torch
from iminuit import Minuit
from torch import Tensor

from ..exceptions import FitError, InputError
from .result import ScanResult, fit_status
from .space import ParameterSpace
from .uncertainties import batch_gradients, error_scale_hessian

CL = (0.68, 0.95)  # contour levels: coverage probabilities for two parameters


class MinuitCost:
    r"""An iminuit cost function over the floating parameters of `space`.

    Calling it gives `nll(theta) - nll(start)` as a float, so Minuit works on O(1)
    numbers; `grad` is exact (autograd, float64) and `hessian` is the curvature at the
    scale of the errors (`error_scale_hessian`: one batch of 2Q gradients with the `steps`
    found before, or 3 batches from 1% of the ranges while `steps` is `None`).
    `errordef = 0.5` (a negative log-likelihood). A value computed with a gradient, and
    the last Hessian, are reused if Minuit asks for them at the same point. Minuit finds
    `hessian` by itself; pass `hessian=False` to MIGRAD from a start where the NLL may not
    be convex (Minuit2 seeds MIGRAD with it and fails on a matrix that is not positive
    definite). Counters:
    `nll_evals` (value only), `grad_evals` (value and gradient, each point of a batch
    counted).

    Example:
        >>> from flowscan.samples import BreitWigner, Exponential, pseudo_data
        >>> from flowscan.scanner import MixtureLikelihood, ParameterSpace
        >>> x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 100, 1000)
        >>> nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 100, 1000)
        >>> space = ParameterSpace(nll.theta_vars, [480.0, 50.0, 190.0])
        >>> cost = MinuitCost(nll, space)
        >>> m = Minuit(cost, *cost.start, grad=cost.grad, hessian=False, name=cost.names)
        >>> m.limits = space.bounds.tolist()
        >>> m.migrad().valid
        True
    """

    errordef = Minuit.LIKELIHOOD

    def __init__(self, nll: Callable[[Tensor], Tensor], space: ParameterSpace) -> None:
        self.nll, self.space = nll, space
        self.names = space.floating_names
        self.start = space.start[space.floating]
        self.nll_evals = self.grad_evals = 0
        self.t0 = time.perf_counter()
        self.trace: list[tuple[int, float, float]] = []
        self.offset = 0.0
        self.offset = self._value(self.start)
        self._last: tuple[np.ndarray, float] | None = None
        self._last_hessian: tuple[np.ndarray, np.ndarray] | None = None
        self.steps: np.ndarray | None = None

    def _theta(self, values: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64))

    def _record(self, value: float) -> None:
        best = min(value, self.trace[-1][2]) if self.trace else value
        self.trace.append((self.nll_evals + self.grad_evals, time.perf_counter() - self.t0, best))

    def _value(self, values: np.ndarray) -> float:
        with torch.no_grad():
            value = self.nll(self.space.full(self._theta(values))).item()
        if not np.isfinite(value):
            raise FitError(f"NLL is {value} at {dict(zip(self.names, values, strict=True))}")
        return value - self.offset

    def __call__(self, *values: float) -> float:
        x = np.asarray(values, dtype=np.float64)
        if self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1]
        self.nll_evals += 1
        value = self._value(x)
        self._record(value + self.offset)
        return value

    def _gradients(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""NLL `(K,)` and its gradient `(K, Q)` at floating values `(K, Q)`; through
        the likelihood's `value_and_grad` where it has one (it sizes the batches)."""
        value, g = batch_gradients(self.nll, self.space, values)
        self.grad_evals += len(values)
        self._record(value.min())
        return value, g

    def grad(self, *values: float) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        value, g = self._gradients(x[None])
        self._last = (x, value[0] - self.offset)
        return g[0]

    def hessian(self, *values: float) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if self._last_hessian is not None and np.array_equal(self._last_hessian[0], x):
            return self._last_hessian[1]
        hessian, self.steps = error_scale_hessian(
            lambda theta: self._gradients(theta)[1],
            x,
            self.space.floating_bounds,
            self.steps,
            passes=3 if self.steps is None else 1,
        )
        self._last_hessian = (x, hessian)
        return hessian


def minuit_scan(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    *,
    minos: bool = False,
    profiles: bool = False,
    tol: float = 0.1,
    strategy: int = 0,
) -> ScanResult:
    r"""MIGRAD with the exact gradient; HESSE errors from the curvature at the error
    scale; MINOS intervals, 1D profiles and 2D contours if asked.

    MIGRAD starts from `space.start` and finds the minimum of its basin: `fit` starts
    it from the global search's lowest minimum.

    Strategy 0 trusts the supplied gradient (no numerical checks or second-derivative
    estimates during MIGRAD); with `tol = 0.1`, Minuit's default, MIGRAD stops at an
    estimated distance to the minimum EDM < 0.002 x tol x errordef = 1e-4 in NLL units,
    ~0.01 standard deviations. Errors are for errordef 0.5 (68% intervals).

    HESSE gets `MinuitCost.hessian`, central differences of the exact gradient over +-1
    sigma, not the autograd Hessian at the point: a spline flow is only C1 in theta, and
    its NLL carries ripples of ~1e-4 at the 0.1 GeV scale that dominate the pointwise
    Hessian (on the demo's flows the autograd Hessian gives m_pole +- 1.19 GeV where the
    exact-density fit gives 2.41). MIGRAD runs without it: Minuit2 seeds MIGRAD with a
    supplied Hessian and fails if that is not positive definite at the start, so the
    Hessian goes to a second Minuit object at the minimum, which runs HESSE and MINOS. If
    it is not positive definite there either (a minimum at a bound), Minuit's numerical
    HESSE gives the errors and the message says they are not to be trusted.

    Arguments:
        minos: MINOS intervals for every floating parameter.
        profiles: `mnprofile` of each floating parameter over +-2.5 HESSE errors (17
            points) and `mncontour` of each pair at 68% and 95% (48 points each).

    Returns:
        A `ScanResult` with `errors` (HESSE), `covariance` (floating parameters, zero
        rows for fixed ones), with `minos=True` `minos` = name -> (lower, upper), and with
        `profiles=True` `profiles` = name -> `(17, 2)` rows (value, NLL - minimum) and
        `contours` = "x,y" -> {"0.68": `(48, 2)`, "0.95": `(48, 2)`}.
    """
    if strategy not in (0, 1, 2) or not tol > 0:
        raise InputError(f"Minuit needs strategy 0, 1 or 2 and tol > 0, got {strategy}, {tol}")
    t0 = time.perf_counter()
    cost = MinuitCost(nll, space)
    limits = [tuple(b) for b in space.floating_bounds]
    fit, failures = _migrad(cost, limits, strategy, tol)
    cost.steps = np.array(fit.errors)  # MIGRAD's error estimates: the scale to start from
    note = "" if not failures else f" (after {len(failures)} failed attempt(s): {failures[0]})"
    # On a bound Minuit's internal coordinates are singular (HESSE with a supplied
    # Hessian fails inside iminuit there), and the curvature across it means nothing.
    values = torch.tensor(np.array(fit.values), dtype=torch.float64)
    on_bound = fit_status(True, space.full(values).numpy(), space)[1]
    hessian = np.full((1, 1), np.nan) if on_bound else cost.hessian(*fit.values)
    if np.isfinite(hessian).all() and np.linalg.eigvalsh(hessian).min() > 0:
        m = Minuit(cost, *fit.values, grad=cost.grad, hessian=cost.hessian, name=cost.names)
        m.strategy, m.tol, m.limits = strategy, tol, limits
        m.hesse()
        if not m.valid:
            m.migrad()
            m.hesse()
    else:
        m = fit
        m.hesse()
        note += (
            "; the curvature at the minimum is not positive definite (a parameter at its "
            "bound, or a flat direction): errors are Minuit's numerical HESSE, forced "
            "positive definite, and not to be trusted"
        )
    valid = bool(m.valid) and np.isfinite(np.array(m.values)).all() and np.isfinite(m.fval)
    intervals = profile = contours = None
    if minos and valid:
        m.minos()
        intervals = {n: (m.merrors[n].lower, m.merrors[n].upper) for n in cost.names}
    elif minos:
        note += "; MINOS skipped: the minimum is invalid"
    if profiles and fit.valid:
        profile, contours = _profiles(fit, m, limits)
    elif profiles:
        note += "; profiles and contours skipped: the minimum is invalid"
    full = space.full(torch.tensor(np.array(m.values), dtype=torch.float64)).numpy()
    floating = np.flatnonzero(space.floating)
    errors = np.zeros(len(space.names))
    errors[floating] = np.array(m.errors)
    covariance = np.zeros((len(space.names),) * 2)
    if m.covariance is not None:
        covariance[np.ix_(floating, floating)] = np.array(m.covariance)
    status, at_bound = fit_status(valid, full, space)
    return ScanResult(
        method="minuit",
        names=space.names,
        theta=full,
        nll=m.fval + cost.offset,
        nll_evals=cost.nll_evals,
        grad_evals=cost.grad_evals,
        seconds=time.perf_counter() - t0,
        converged=valid,
        message=f"MIGRAD {'valid' if valid else 'invalid'} minimum, EDM = {m.fmin.edm:.2g}" + note,
        status=status,
        at_bound=at_bound,
        fixed=space.fixed_names,
        path=np.stack([space.start, full]),
        trace=np.array(cost.trace),
        errors=errors,
        covariance=covariance,
        minos=intervals,
        profiles=profile,
        contours=contours,
    )


def _migrad(
    cost: MinuitCost, limits: list[tuple[float, float]], strategy: int, tol: float
) -> tuple[Minuit, list[str]]:
    r"""MIGRAD from `cost.start`; if it fails (the NLL not finite on its way, a minimum
    that is not finite or not valid), again with strategy 1, which starts from a
    numerical second-derivative estimate instead of a unit matrix, then with strategy 1
    from the centre of the box. Returns the best valid attempt (else the best finite
    one) and the reasons of the failed attempts; raises `FitError` if none is finite.

    A start on a bound is moved 1e-3 of the range inside: Minuit's transform of a
    bounded parameter has zero slope at the bound, so its first step there is undefined
    (Minuit2 reports "Initial matrix not pos.def." and returns NaN)."""
    bounds = np.array(limits)
    low, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    start = np.clip(cost.start, low + 1e-3 * width, low + (1 - 1e-3) * width)
    attempts = [(start, strategy), (start, max(strategy, 1))]
    if not np.allclose(start, low + width / 2):
        attempts.append((low + width / 2, max(strategy, 1)))
    best, failures = None, []
    for values, level in attempts:
        fit = Minuit(cost, *values, grad=cost.grad, hessian=False, name=cost.names)
        fit.strategy, fit.tol, fit.limits = level, tol, limits
        fit.print_level = -1  # failures are retried and reported in the message
        try:
            fit.migrad()
        except FitError as e:
            failures.append(str(e))
            continue
        if not (np.isfinite(fit.fval) and np.isfinite(np.array(fit.values)).all()):
            failures.append(f"MIGRAD returned a minimum that is not finite (strategy {level})")
            continue
        if best is None or (fit.valid, -fit.fval) > (best.valid, -best.fval):
            best = fit
        if fit.valid:
            break
        failures.append(f"MIGRAD minimum invalid (strategy {level}, EDM = {fit.fmin.edm:.2g})")
    if best is None:
        raise FitError(
            f"MIGRAD found no finite minimum in {len(attempts)} attempts: {failures[-1]}"
        )
    return best, failures


def _profiles(
    fit: Minuit, errors: Minuit, limits: list[tuple[float, float]]
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    r"""`mnprofile` of each parameter over +-2.5 `errors` and `mncontour` of each pair
    (12 points, spline-interpolated to 48). They run on `fit`, the Minuit object without
    a Hessian: each of their many inner MIGRADs would otherwise call it (measured on the
    toy: a contour then takes 657 gradients instead of 51)."""
    profiles = {}
    for name, (lo, hi) in zip(fit.parameters, limits, strict=True):
        value, error = fit.values[name], errors.errors[name]
        bound = (max(lo, value - 2.5 * error), min(hi, value + 2.5 * error))
        x, y, _ = fit.mnprofile(name, size=17, bound=bound, use_simplex=False)
        profiles[name] = np.column_stack([x, y - fit.fval])
    contours = {
        f"{a},{b}": {
            f"{cl:.2f}": fit.mncontour(a, b, cl=cl, size=12, interpolated=48, use_simplex=False)
            for cl in CL
        }
        for a, b in itertools.combinations(fit.parameters, 2)
    }
    return profiles, contours
