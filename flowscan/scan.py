r"""`flowscan scan`: every optimizer on one likelihood from saved models and a data file."""

from __future__ import annotations

__all__ = ["METHODS", "optimizer", "parse_start", "run_scan", "table"]

import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from .exceptions import FitError, InputError
from .flows import DensityModel
from .runinfo import check_memory, file_names, run_folder, versions, write_json
from .scanner import (
    MixtureLikelihood,
    ParameterSpace,
    ScanResult,
    bayesopt_scan,
    gradient_scan,
    grid_scan,
    minuit_scan,
    random_scan,
)
from .toys import read_events
from .variables import Variable

METHODS = ["minuit", "gradient", "bayesopt", "grid", "random"]


def optimizer(
    method: str,
    budget: int = 64,
    grid: int = 11,
    *,
    minos: bool = False,
    profiles: bool = False,
    seed: int = 0,
) -> Callable[[MixtureLikelihood, ParameterSpace], ScanResult]:
    r"""The `flowscan scan` settings of `method` (one of `METHODS`) as a function of the
    likelihood and the parameter space. `budget`: evaluations of `bayesopt` and `random`;
    `grid`: points per parameter; `minos`, `profiles`: for `minuit`; `seed`: of the Sobol
    starts of `gradient`, of `bayesopt` and of `random`."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {METHODS} or 'all'")
    return {
        "minuit": lambda nll, space: minuit_scan(nll, space, minos=minos, profiles=profiles),
        "gradient": lambda nll, space: gradient_scan(nll, space, starts=15, seed=seed),
        "bayesopt": lambda nll, space: bayesopt_scan(nll, space, budget, seed=seed),
        "grid": lambda nll, space: grid_scan(nll, space, grid),
        "random": lambda nll, space: random_scan(nll, space, budget, seed=seed),
    }[method]


def run_scan(
    signal: str | os.PathLike,
    background: str | os.PathLike,
    data: str | os.PathLike | Sequence[str | os.PathLike],
    n_sig: float | None,
    n_bkg: float | None,
    methods: Sequence[str] = ("minuit", "gradient"),
    *,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    start: dict[str, float] | None = None,
    fixed: Sequence[str] = (),
    budget: int = 64,
    grid: int = 11,
    minos: bool = False,
    profiles: bool = False,
    check_models: bool = True,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, ScanResult]:
    r"""Fits `data` with each method and writes `scan.json` and `convergence.png` to `out`
    (default `runs/scan-<timestamp>/`), and with `profiles` also `profiles.png` and
    `contours.png`.

    Arguments:
        signal, background: Model files written by `DensityModel.save`.
        data: CSV, Parquet or HDF5 table of events, or several read as one.
        n_sig, n_bkg: Yields fixing the signal fraction; `None` for both fits them (the
            extended likelihood, parameters `n_sig`, `n_bkg` first).
        methods: Any of `METHODS`.
        columns: Data columns of the observables, in model order (default: their names).
        where: Selection of data rows (`pandas.DataFrame.query`).
        start: Starting values by name (default: the centre of the trained ranges).
        fixed: Parameters held at their start.
        budget: Evaluations for `bayesopt` and `random`.
        grid: Grid points per floating parameter for `grid`.
        minos: MINOS intervals for `minuit`.
        profiles: 1D profiles and 2D contours of the NLL with `minuit` (minutes on flows).
        check_models: Refuse swapped or identical signal and background models.
        seed: Seed of the Sobol points, BO and random points.

    Returns:
        The result of each method; one whose NLL was not finite has status `"failed"`
        and NaN values (`ScanResult.failed`).
    """
    from . import plots

    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise InputError(f"unknown method(s) {unknown or methods}; choose from {METHODS} or 'all'")
    sig, bkg = (DensityModel.load(p).for_fit() for p in (signal, background))
    observables = [v.name for v in sig.observables]
    columns = list(columns or observables)
    if len(columns) != len(observables):
        raise InputError(
            f"--columns names {len(columns)} column(s) {columns} for the models' "
            f"{len(observables)} observable(s) {observables}"
        )
    x = read_events(data, columns, where)
    nll = MixtureLikelihood(sig, bkg, x, n_sig, n_bkg, check_models=check_models)
    names = nll.names
    start = start or {}
    bad = sorted(set(start) - set(names))
    if bad:
        raise InputError(f"--start names {bad} are not parameters; parameters are {names}")
    centre = [(v.low + v.high) / 2 for v in nll.theta_vars]
    space = ParameterSpace(
        nll.theta_vars, [start.get(n, c) for n, c in zip(names, centre, strict=True)], fixed
    )
    q = int(space.floating.sum())
    if "grid" in methods:
        check_memory(float(grid) ** q, 24 * len(names), f"--grid {grid} to the power {q}")
    if {"random", "bayesopt"} & set(methods):
        check_memory(budget, 24 * len(names), "--budget")
    out = run_folder(out, "scan")

    results = {}
    for method in methods:
        echo(f"running {method} ...")
        fit = optimizer(method, budget, grid, minos=minos, profiles=profiles, seed=seed)
        t0 = time.perf_counter()
        try:
            results[method] = fit(nll, space)
        except FitError as e:
            results[method] = ScanResult.failed(method, space, str(e), time.perf_counter() - t0)
        echo(table(results[method], nll.theta_vars))
    config = {
        "signal": str(signal),
        "background": str(background),
        "data": file_names(data),
        "columns": columns,
        "where": where,
        "n_sig": n_sig,
        "n_bkg": n_bkg,
        "methods": list(methods),
        "start": dict(zip(names, space.start.tolist(), strict=True)),
        "fixed": list(fixed),
        "budget": budget,
        "grid": grid,
        "minos": minos,
        "profiles": profiles,
        "check_models": check_models,
        "seed": seed,
        "events": len(x),
    }
    write_json(
        out / "scan.json",
        {
            "config": config,
            "versions": versions(),
            "results": {m: r.to_dict() for m, r in results.items()},
        },
    )
    files = ["scan.json"]
    traces = {m: r.trace for m, r in results.items() if len(r.trace)}
    if traces:
        plots.plot_convergence(traces, out / "convergence.png")
        files.append("convergence.png")
    fit = results.get("minuit")
    if fit is not None and fit.profiles is not None:
        errors = dict(zip(names, fit.errors.tolist(), strict=True))
        plots.plot_profiles(
            fit.profiles, nll.theta_vars, fit.values, errors, out / "profiles.png", fit.minos
        )
        files.append("profiles.png")
        if fit.contours:
            plots.plot_contours(fit.contours, nll.theta_vars, fit.values, out / "contours.png")
            files.append("contours.png")
    echo(f"wrote {out}/ ({', '.join(files)})")
    return results


def table(result: ScanResult, theta_vars: Sequence[Variable]) -> str:
    r"""A fit as text: a status line (NLL, evaluations, seconds, what the method said),
    then a row per parameter with its value, error (two significant digits) and unit,
    `(fixed)` for fixed ones and a flag where a parameter sits at a bound."""
    units = {v.name: v.unit for v in theta_vars}
    head = f"  {result.method}: {result.status.upper()}"
    if result.status == "failed":
        return f"{head}: no finite minimum; {result.message}"
    lines = [
        f"{head}, NLL = {result.nll:.3f}, {result.nll_evals} NLL and {result.grad_evals} "
        f"gradient evaluations, {result.seconds:.1f} s; {result.message}"
    ]
    if result.at_bound:
        lines.append(
            f"    at a bound of its range: {', '.join(result.at_bound)} (the minimum may lie "
            "beyond it; its error is not a 68% interval)"
        )
    for i, name in enumerate(result.names):
        value = result.theta[i]
        error = None if result.errors is None else result.errors[i]
        # Decimals that give the error two significant digits (6 significant digits without).
        digits = 5 - math.floor(math.log10(abs(value))) if value else 5
        if error is not None and np.isfinite(error) and error > 0:
            digits = 1 - math.floor(math.log10(error))
        digits = max(digits, 0)
        text = f"{value:>12.{digits}f}"
        if name in result.fixed:
            text += " (fixed)"
        elif error is not None:
            has_error = np.isfinite(error) and error > 0
            text += f" +- {error:.{digits}f}" if has_error else " (no error: curvature unusable)"
        if result.minos is not None and name in result.minos:
            lo, hi = result.minos[name]
            text += f" (MINOS {lo:+.{digits}f} / {hi:+.{digits}f})"
        flag = "  AT BOUND" if name in result.at_bound else ""
        lines.append(f"    {name:<10}{text} {units[name]}{flag}")
    return "\n".join(lines)


def parse_start(text: str | None) -> dict[str, float]:
    r"""`"m_pole=450,gamma=30"` to a dict; raises `ValueError` on a malformed item."""
    out = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise InputError(f"item {item!r} is not name=value")
        if name in out:
            raise InputError(f"{name} is given twice in {text!r}")
        out[name] = number
    return out
