r"""One fit: the settings of every optimizer, the global search before a local one, and
the finished result with its model error and warnings."""

from __future__ import annotations

__all__ = [
    "LOCAL",
    "METHODS",
    "FitSettings",
    "compare_methods",
    "fit",
    "fit_methods",
    "parse_option",
]

import inspect
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..exceptions import FitError, InputError
from ..weights import effective_events
from .bayesopt import bayesopt_scan
from .gradient import gradient_scan
from .likelihood import MixtureLikelihood
from .minuit import minuit_scan
from .model_error import model_errors
from .result import DISTINCT_NLL, ScanResult
from .sampling import MAX_POINTS, grid_scan, random_scan
from .search import SAME_MINIMUM, Search, global_search
from .space import ParameterSpace
from .uncertainties import curvature_errors, sandwich

# The optimizers by name: the local ones start from the global search's best minimum;
# the others scan the box themselves, for comparison.
LOCAL = ("minuit", "gradient")
METHODS = (*LOCAL, "bayesopt", "grid", "random")
_FUNCTIONS = {
    "search": global_search,
    "minuit": minuit_scan,
    "gradient": gradient_scan,
    "bayesopt": bayesopt_scan,
    "grid": grid_scan,
    "random": random_scan,
}
# How the warnings on a signal parameter at a bound begin, after its name.
BOUND_REASON = "on a bound of the box"
# Bounds of the options that have them (others: integers >= 0, numbers > 0).
_RANGES = {
    "minuit.strategy": (0, 2),
    "gradient.starts": (0, MAX_POINTS),
    "gradient.descents": (1, None),
    "gradient.max_iter": (1, None),
    "search.points": (0, MAX_POINTS),
    "search.events": (1, None),
    "search.descents": (1, None),
    "bayesopt.budget": (1, None),
    "bayesopt.q": (1, None),
    "bayesopt.n_init": (1, None),
    "grid.points": (1, None),
    "grid.batch": (1, None),
    "random.n": (1, MAX_POINTS),
    "random.batch": (1, None),
}


def _defaults(section: str) -> dict[str, object]:
    r"""The options of `section` (a method or "search"): the keyword arguments of its
    function, with their defaults."""
    parameters = inspect.signature(_FUNCTIONS[section]).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not p.empty and p.name != "seed"}


def _value(section: str, name: str, value: object) -> bool | int | float:
    r"""`value` (a string from the command line, or a number) as the type of the option's
    default, checked against its range; `InputError` names the option otherwise."""
    default = _defaults(section)[name]
    key = f"{section}.{name}"
    kind = type(default) if default is not None else int
    text = str(value).strip().lower()
    try:
        if kind is bool:
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text in ("true", "1", "yes")
        number = float(text)
        if not math.isfinite(number) or (kind is int and not number.is_integer()):
            raise ValueError
    except ValueError:
        word = {bool: "true or false", int: "an integer"}.get(kind, "a number")
        raise InputError(f"option {key} must be {word}, got {value!r}") from None
    low, high = _RANGES.get(key, (0, None))
    if kind is int:
        number = int(number)
        if number < low or (high is not None and number > high):
            span = f">= {low}" if high is None else f"in {low}..{high}"
            raise InputError(f"option {key} must be an integer {span}, got {value!r}")
        return number
    if not number > 0:
        raise InputError(f"option {key} must be a positive number, got {value!r}")
    return number


def parse_option(text: str) -> tuple[str, str, bool | int | float]:
    r"""`"minuit.strategy=1"` to its section, name and value, checked (`--option`).

    Example:
        >>> parse_option("gradient.starts=63")
        ('gradient', 'starts', 63)
    """
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not value.strip():
        raise InputError(f"--option {text!r} is not SECTION.NAME=VALUE, e.g. minuit.strategy=1")
    if section not in _FUNCTIONS:
        raise InputError(
            f"--option {text!r}: no section {section!r}; sections are {list(_FUNCTIONS)}"
        )
    if name not in _defaults(section):
        known = list(_defaults(section))
        raise InputError(f"--option {text!r}: {section} has no option {name!r}; it has {known}")
    return section, name, _value(section, name, value)


@dataclass
class FitSettings:
    r"""Everything that decides a fit, apart from the likelihood.

    Attributes:
        method: The optimizer, one of `METHODS`.
        start: Starting values by name, laid over the centre of the box.
        fixed: Parameters held at their start.
        seed: Of the search's subsample and cells, and of the optimizers that draw.
        options: Per section (`"search"` or a method) the keyword arguments of its
            function that differ from their defaults, e.g.
            `{"minuit": {"strategy": 1}, "search": {"points": 1024}}`: `global_search`
            (`points`, `events`, `descents`), `minuit_scan` (`tol`, `strategy`,
            `minos`, `profiles`), `gradient_scan` (`starts`, `descents`, `tol`,
            `max_iter`), `bayesopt_scan`, `grid_scan`, `random_scan`. Checked, and
            numbers given as text converted, on construction.

    Example:
        >>> s = FitSettings(start={"m_pole": 450.0}, options={"minuit": {"minos": "true"}})
        >>> s.keywords("minuit")
        {'minos': True, 'profiles': False, 'tol': 0.1, 'strategy': 0}
        >>> FitSettings(**asdict(s)) == s
        True
    """

    method: str = "minuit"
    start: dict[str, float] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    seed: int = 0
    options: dict[str, dict[str, bool | int | float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose from {list(METHODS)}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise InputError(f"the seed must be an integer >= 0, got {self.seed!r}")
        self.start = {str(k): float(v) for k, v in self.start.items()}
        bad = [k for k, v in self.start.items() if not math.isfinite(v)]
        if bad:
            raise InputError(f"the start of {bad} is not a finite number")
        self.fixed = list(self.fixed)
        options = {}
        for section, values in self.options.items():
            for name, value in values.items():
                parse_option(f"{section}.{name}=1")  # the section and name exist
                options.setdefault(section, {})[name] = _value(section, name, value)
        self.options = options

    @classmethod
    def at(cls, space: ParameterSpace, **changes) -> FitSettings:
        r"""Settings that start at `space.start` and hold its fixed parameters."""
        start = dict(zip(space.names, map(float, space.start), strict=True))
        return cls(start=start, fixed=space.fixed_names, **changes)

    def keywords(self, section: str) -> dict[str, object]:
        r"""The keyword arguments of `section`'s function: its defaults with `options`
        laid over them, and `seed` where it takes one."""
        out = _defaults(section) | self.options.get(section, {})
        if "seed" in inspect.signature(_FUNCTIONS[section]).parameters:
            out["seed"] = self.seed
        return out

    def space(self, nll: MixtureLikelihood) -> ParameterSpace:
        r"""The parameter space of `nll`: `start` laid over the centre of the box,
        `fixed` held."""
        names = nll.names
        unknown = sorted((set(self.start) | set(self.fixed)) - set(names))
        if unknown:
            raise InputError(f"{unknown} are not parameters of the fit; its parameters are {names}")
        centre = ParameterSpace(nll.theta_vars).start
        values = [self.start.get(n, c) for n, c in zip(names, centre, strict=True)]
        return ParameterSpace(nll.theta_vars, values, self.fixed)


def fit(
    nll: MixtureLikelihood, settings: FitSettings | None = None, *, search: Search | None = None
) -> ScanResult:
    r"""Fits `nll` as `settings` say (the defaults: `FitSettings()`), and returns the
    finished result.

    A local method (`LOCAL`: Minuit, the gradient scan) starts from the global search's
    lowest minimum (`global_search`): where several of the search's minima lie within its
    `margin` of the lowest, each is first descended on the full data (L-BFGS) and the
    lowest taken. The other distinct minima go to the result's `minima`, and one
    within `DISTINCT_NLL` of the reported one to its warnings (the data do not choose
    between them). A signal parameter on a bound gets a warning saying why: the lowest
    NLL over the whole box lies there (no signal inside the box), or, without a search,
    that a lower minimum may lie elsewhere. The gradient scan's errors come from the
    curvature at the scale of the errors (`curvature_errors`), as HESSE's do for Minuit.
    The other methods scan the box themselves.

    Where the events are weighted simulation (`MixtureLikelihood`'s weights, not an
    Asimov dataset), the errors and covariance are the sandwich's (`sandwich`; the
    weighted NLL's own in `ScanResult.weighted`). Then the model error where a density
    is an ensemble (`model_errors`), and a warning
    where the minimum lies in a gap of a model's training grid (`grid_gaps`). A fit whose
    NLL was not finite gives a `"failed"` result (`ScanResult.failed`), not an
    exception. Seconds and evaluations include the search's.

    Arguments:
        nll: The likelihood.
        settings: The method, start, fixed parameters, seed and options.
        search: The global search of `nll` with these settings, where the caller has
            it already (`fit_methods` runs one for all local methods); else it is run.

    Example:
        >>> import torch
        >>> from flowscan.samples import BreitWigner, Exponential, pseudo_data
        >>> x = pseudo_data(torch.tensor([620.0, 30.0]), torch.tensor([200.0]), 300, 3000)
        >>> nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 300, 3000)
        >>> result = fit(nll)
        >>> result.status, round(result.values["m_pole"], -1)
        ('valid', 620.0)
    """
    settings = FitSettings() if settings is None else settings
    space = settings.space(nll)
    method, t0 = settings.method, time.perf_counter()
    try:
        if method in LOCAL:
            if search is None:
                search = global_search(nll, space, **settings.keywords("search"))
            result = _local(nll, space, settings, search)
        else:
            result = _FUNCTIONS[method](nll, space, **settings.keywords(method))
    except FitError as e:
        result = ScanResult.failed(method, space, str(e), time.perf_counter() - t0)
    result = replace(result, settings=asdict(settings))
    if result.status == "failed":
        return result
    if getattr(nll, "weights", None) is not None and not nll.asimov:
        result = _weighted(nll, result, space)
    try:
        result = model_errors(nll, result, space)
    except FitError as e:
        result = replace(result, message=f"{result.message}; {e}")
    return replace(result, warnings=[*result.warnings, *nll.grid_gaps(result.theta)])


def _weighted(nll: MixtureLikelihood, result: ScanResult, space: ParameterSpace) -> ScanResult:
    r"""`result` with the sandwich's errors and covariance (`sandwich`) in place of the
    weighted NLL's curvature, where the method has a covariance. The constraint terms
    add their own curvature to the sandwich's middle: their information is not the
    events'."""
    w = nll.weights.cpu()
    record = {"events": len(w), "sum": float(w.sum()), "effective": effective_events(w)}
    if result.covariance is None or result.errors is None:
        return replace(result, weighted=record | {"errors_hesse": None, "covariance_hesse": None})
    index = np.flatnonzero(space.floating)
    theta = torch.as_tensor(result.theta, dtype=torch.float64)
    scores = nll.scores(theta).numpy()[:, index]
    constraints = torch.autograd.functional.hessian(nll.constraint_nll, theta).numpy()
    inner = result.covariance[np.ix_(index, index)]
    covariance = np.zeros_like(result.covariance)
    covariance[np.ix_(index, index)] = sandwich(
        inner, scores, (w * nll.weight_scale).numpy(), constraints[np.ix_(index, index)]
    )
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    return replace(
        result,
        errors=errors,
        covariance=covariance,
        weighted=record | {"errors_hesse": result.errors, "covariance_hesse": result.covariance},
    )


def fit_methods(
    nll: MixtureLikelihood, settings: FitSettings, methods: Sequence[str]
) -> dict[str, ScanResult]:
    r"""`fit` by each of `methods` (`settings.method` replaced), the local ones from one
    global search (its seconds counted in each), checked against each other
    (`compare_methods`)."""
    search, failure, t0 = None, None, time.perf_counter()
    if set(methods) & set(LOCAL):
        try:
            search = global_search(nll, settings.space(nll), **settings.keywords("search"))
        except FitError as e:
            failure = e
    results = {}
    for method in methods:
        each = replace(settings, method=method)
        if failure is not None and method in LOCAL:
            seconds = time.perf_counter() - t0
            failed = ScanResult.failed(method, each.space(nll), str(failure), seconds)
            results[method] = replace(failed, settings=asdict(each))
        else:
            results[method] = fit(nll, each, search=search)
    return compare_methods(results)


def _local(
    nll: MixtureLikelihood, space: ParameterSpace, settings: FitSettings, found: Search
) -> ScanResult:
    r"""A local method from the search's lowest minimum, the search's other minima in
    `minima`; see `fit`."""
    near = [i for i, v in enumerate(found.values) if v - found.values[0] <= found.margin]
    t0, refined, evals = time.perf_counter(), {}, [0, 0]
    if len(near) > 1:  # their order is not settled: descend each on the full data
        for i in near:
            try:
                end = gradient_scan(nll, _at(space, found.starts[i]), starts=0)
            except FitError:
                continue
            refined[i] = end
            evals[0] += end.nll_evals - end.grad_evals
            evals[1] += end.grad_evals
        if not refined:
            raise FitError(f"every one of {len(near)} descents from the search's minima failed")
    best = min(refined, key=lambda i: refined[i].nll) if refined else 0
    start = refined[best].theta if refined else found.starts[0]
    seconds = time.perf_counter() - t0
    result = _FUNCTIONS[settings.method](
        nll, _at(space, start), **settings.keywords(settings.method)
    )
    warnings = []
    if settings.method == "gradient":  # errors from the curvature, as HESSE's for Minuit
        t1 = time.perf_counter()
        curvature, gradients = curvature_errors(nll, space, result.theta)
        seconds += time.perf_counter() - t1
        evals[1] += gradients
        if curvature is None:  # inside the box a flat direction: not a minimum
            result = result if result.at_bound else replace(result, status="invalid")
            warnings.append(
                "no errors: the curvature at the minimum is not positive definite (a "
                "parameter at its bound, or a flat direction)"
            )
        else:
            result = replace(result, errors=curvature[0], covariance=curvature[1])
    minima = _minima(space, result, found, refined, best)
    lower = [m for m in minima if m["nll"] < result.nll - DISTINCT_NLL]
    close = [m for m in minima if abs(m["nll"] - result.nll) <= DISTINCT_NLL]
    status = result.status
    if lower:
        status = "local minimum"
        warnings.append(
            f"the fit ended {result.nll - lower[0]['nll']:.2f} above a minimum the search found "
            f"({lower[0]['source']}): it is not the lowest in the box"
        )
    for m in close:
        warnings.append(
            f"another minimum lies within {DISTINCT_NLL} of this one in NLL ({m['source']}): "
            "the data do not choose between them"
        )
    if not lower:  # else the warning above says why it is on a bound
        warnings += _bound_reasons(result, found)
    return replace(
        result,
        status=status,
        warnings=[*result.warnings, *warnings],
        minima=minima,
        seconds=result.seconds + found.seconds + seconds,
        nll_evals=result.nll_evals + found.nll_evals + evals[0],
        grad_evals=result.grad_evals + found.grad_evals + evals[1],
        search=_summary(found),
    )


def _at(space: ParameterSpace, theta: np.ndarray) -> ParameterSpace:
    return ParameterSpace(space.theta_vars, np.asarray(theta, dtype=float), space.fixed_names)


def _minima(
    space: ParameterSpace,
    result: ScanResult,
    found: Search,
    refined: dict[int, ScanResult],
    best: int,
) -> list[dict]:
    r"""The search's minima other than the one `result` started from (`best`) and
    ended in: refined on the full data where they were (those that ended in `result`'s
    minimum left out), else the ends of the search's descents."""
    width = space.bounds[space.floating, 1] - space.bounds[space.floating, 0]
    points = [result.theta]
    out = []
    for i, (theta, value) in enumerate(zip(found.starts, found.values, strict=True)):
        if i == best:
            continue
        source = f"search minimum {i + 1} of {len(found.starts)}"
        if i in refined:
            theta, value = refined[i].theta, refined[i].nll
            source += ", descended on the full data"
        elif found.margin > 1:
            source += f", at the minimum of the {found.events}-event subsample"
        scaled = np.asarray(theta)[space.floating] / width
        if any(np.abs(scaled - p[space.floating] / width).max() < SAME_MINIMUM for p in points):
            continue
        points.append(np.asarray(theta))
        out.append({"source": source, "theta": np.asarray(theta).tolist(), "nll": float(value)})
    return out


def _bound_reasons(result: ScanResult, found: Search) -> list[str]:
    r"""Why the signal parameters of `result` that lie on a bound are there, where no
    lower minimum was found elsewhere."""
    names = [n for n in result.at_bound if n in found.axes]
    if not names:
        return []
    where = f"{', '.join(names)} {BOUND_REASON}"
    if not found.cells:
        return [f"{where} after a local fit from the start alone: a lower minimum may lie "
                "elsewhere"]  # fmt: skip
    searched = f"the lowest NLL over the whole box ({found.cells} cells, {found.descents} descents)"
    inside = [n for n in found.axes if n not in names and n not in result.fixed]
    where += f", {', '.join(inside)} inside it" if inside else ""
    return [
        f"{where}: {searched} lies there, so the data hold no signal inside the box, or "
        f"one best described with {', '.join(names)} beyond the box's edge (widen the box "
        "there if the model allows it)"
    ]


def _summary(found: Search) -> dict:
    keep = ("axes", "cells", "events", "descents", "nll_evals", "grad_evals", "seconds")
    return {k: getattr(found, k) for k in keep} | {"summary": found.summary()}


def compare_methods(results: Mapping[str, ScanResult]) -> dict[str, ScanResult]:
    r"""`results` by method, the local methods' (`LOCAL`) checked against each other: a
    minimum more than `DISTINCT_NLL` above another method's is a local minimum (status
    `"local minimum"`, a failure, with a warning naming the lower one), and each of the
    two records the other's in its `minima`."""
    out = dict(results)
    local = [m for m in results if m in LOCAL and results[m].status != "failed"]
    if len(local) < 2:
        return out
    best = min(local, key=lambda m: results[m].nll)
    low = results[best]
    for method in local:
        high = results[method]
        gap = high.nll - low.nll
        if method == best or gap <= DISTINCT_NLL:
            continue
        where = ", ".join(f"{n} = {v:.4g}" for n, v in low.values.items() if n not in low.fixed)
        out[method] = replace(
            high,
            status="local minimum",
            warnings=[
                *(w for w in high.warnings if BOUND_REASON not in w),
                f"{best} found a minimum {gap:.2f} lower in NLL, at {where}: this fit ended "
                "in a local minimum, not the lowest in the box; report the lower one",
            ],
            minima=[*high.minima, _entry(low, best)],
        )
        out[best] = replace(out[best], minima=[*out[best].minima, _entry(high, method)])
    return out


def _entry(result: ScanResult, source: str) -> dict:
    return {"source": source, "theta": np.asarray(result.theta).tolist(), "nll": float(result.nll)}
