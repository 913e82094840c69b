r"""`flowscan scan`: every optimizer on one likelihood from saved models and a data file."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import pandas as pd

from .. import plots
from ..exceptions import FitError, InputError
from ..io import check_memory, file_names, run_folder, write_record
from ..scanner import (
    METHODS,
    MixtureLikelihood,
    ParameterSpace,
    ScanResult,
    model_errors,
    optimizer,
)
from ..stats import pulls_and_impacts
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    scan = o.command(
        commands,
        "scan",
        help="fit a data file with saved signal/background models, by one or more methods",
        description="Fits the mixture likelihood of saved signal and background models to "
        "a data file with each method, prints a table per method and writes scan.json and "
        "convergence.png.",
    )
    o.add_models(scan)
    o.add_data(scan)
    scan.add_argument(
        "--n-sig",
        type=o.events,
        help="signal events in the data, fixing the fraction with --n-bkg; omit both to fit "
        "the yields (extended likelihood)",
    )
    scan.add_argument("--n-bkg", type=o.events, help="background events in the data")
    scan.add_argument(
        "--method", default="minuit,gradient", help="comma-separated methods or 'all'"
    )
    scan.add_argument("--start", help="starting values, e.g. m_pole=450,gamma=30")
    scan.add_argument("--fix", help="parameters held at their start, comma-separated")
    scan.add_argument(
        "--budget", type=o.positive_int, default=64, help="evaluations for bayesopt/random"
    )
    scan.add_argument("--grid", type=o.positive_int, default=11, help="grid points per parameter")
    scan.add_argument("--minos", action="store_true", help="MINOS intervals with minuit")
    scan.add_argument(
        "--profiles",
        action="store_true",
        help="1D profiles and 2D contours with minuit (profiles.png, contours.png)",
    )
    o.add_nuisances(scan)
    scan.add_argument(
        "--no-model-check",
        action="store_true",
        help="accept a signal model recorded as background (or the reverse) or the same "
        "model twice",
    )
    scan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Fits the data with each method and writes to `--out`: `scan.json` (settings,
    seed, versions, every result), `convergence.png`, and with `--profiles`
    `profiles.png` and `contours.png`. A method whose NLL was not finite gives a
    `"failed"` result (`ScanResult.failed`). Where a model is an ensemble, every fit
    gets its model error (`model_errors`), and a best fit in a gap of a model's training
    grid a warning (`MixtureLikelihood.coverage`). With constrained nuisances (the
    models', `--analysis`, `--nuisance`), the Minuit fit's pulls, constraints and
    impacts (`pulls_and_impacts`) go to a table, `scan.json` and `impacts.png`.
    Returns the exit code."""
    methods = list(METHODS) if args.method == "all" else o.names(args.method)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise InputError(
            f"unknown method(s) {unknown or methods}; choose from {list(METHODS)} or 'all'"
        )
    sig, bkg = o.load_models(args.signal, args.background)
    observables = [v.name for v in sig.observables]
    columns = o.names(args.columns) or observables
    if len(columns) != len(observables):
        raise InputError(
            f"--columns names {len(columns)} column(s) {columns} for the models' "
            f"{len(observables)} observable(s) {observables}"
        )
    x = o.read_data(args.data, columns, args.where)
    constraints = o.constraints(args, sig, bkg)
    nll = MixtureLikelihood(
        sig, bkg, x, args.n_sig, args.n_bkg, check_models=not args.no_model_check,
        constraints=constraints,
    )  # fmt: skip
    names = nll.names
    start = o.parse_start(args.start)
    bad = sorted(set(start) - set(names))
    if bad:
        raise InputError(f"--start names {bad} are not parameters; parameters are {names}")
    centre = [(v.low + v.high) / 2 for v in nll.theta_vars]
    fixed = o.names(args.fix)
    space = ParameterSpace(
        nll.theta_vars, [start.get(n, c) for n, c in zip(names, centre, strict=True)], fixed
    )
    q = int(space.floating.sum())
    if "grid" in methods:
        check_memory(float(args.grid) ** q, 24 * len(names), f"--grid {args.grid} to the power {q}")
    if {"random", "bayesopt"} & set(methods):
        check_memory(args.budget, 24 * len(names), "--budget")
    out = run_folder(args.out, "scan")

    results = {}
    for method in methods:
        print(f"running {method} ...")
        fit = optimizer(
            method,
            args.budget,
            args.grid,
            minos=args.minos,
            profiles=args.profiles,
            seed=args.seed,
        )
        t0 = time.perf_counter()
        try:
            results[method] = fit(nll, space)
        except FitError as e:
            results[method] = ScanResult.failed(method, space, str(e), time.perf_counter() - t0)
        try:
            model_errors(nll, results[method], space)
        except FitError as e:
            results[method].message += f"; {e}"
        if results[method].status != "failed":
            results[method].warnings += nll.coverage(results[method].theta)
        print(results[method].table(nll.theta_vars))
    config = {
        "signal": str(args.signal),
        "background": str(args.background),
        "data": file_names(args.data),
        "columns": columns,
        "where": args.where,
        "n_sig": args.n_sig,
        "n_bkg": args.n_bkg,
        "methods": methods,
        "start": dict(zip(names, space.start.tolist(), strict=True)),
        "fixed": fixed,
        "budget": args.budget,
        "grid": args.grid,
        "minos": args.minos,
        "profiles": args.profiles,
        "check_models": not args.no_model_check,
        "nuisances": [asdict(c) for c in constraints],
        "seed": args.seed,
        "events": len(x),
    }
    pois = [n for n in space.floating_names if n not in {c.name for c in constraints}]
    impacts = _impacts(nll, space, results.get("minuit"), pois)
    extra = {} if impacts is None else {"impacts": impacts.to_dict("records")}
    record = {m: r.to_dict() for m, r in results.items()}
    write_record(out / "scan.json", config, results=record, **extra)
    files = ["scan.json"]
    if impacts is not None and len(impacts):
        plots.plot_impacts(impacts, nll.theta_vars[names.index(pois[0])], out / "impacts.png")
        files.append("impacts.png")
    traces = {m: r.trace for m, r in results.items() if len(r.trace)}
    if traces:
        plots.plot_convergence(traces, out / "convergence.png")
        files.append("convergence.png")
    fit = results.get("minuit")
    if fit is not None and fit.profiles is not None:
        errors = dict(zip(names, fit.errors.tolist(), strict=True))
        model = None
        if fit.errors_model is not None:
            model = dict(zip(names, fit.errors_model.tolist(), strict=True))
        plots.plot_profiles(
            fit.profiles, nll.theta_vars, fit.values, errors, out / "profiles.png", fit.minos,
            model,
        )  # fmt: skip
        files.append("profiles.png")
        if fit.contours:
            plots.plot_contours(fit.contours, nll.theta_vars, fit.values, out / "contours.png")
            files.append("contours.png")
    print(f"wrote {out}/ ({', '.join(files)})")
    return o.exit_code([r.status for r in results.values()])


def _impacts(
    nll: MixtureLikelihood, space: ParameterSpace, fit: ScanResult | None, pois: list[str]
) -> pd.DataFrame | None:
    r"""The pulls and impacts of the constrained nuisances on the parameters of interest
    `pois` at the Minuit fit, printed; `None` without a Minuit fit that did not fail or
    without constrained nuisances."""
    if fit is None or fit.status == "failed" or not nll.constraints:
        return None
    table = pulls_and_impacts(nll, space, fit, pois)
    units = {v.name: f" ({v.unit})" for v in nll.theta_vars if v.unit}
    shown = table.drop(columns=["kind"]).rename(
        columns={
            f"{p}_{side}": f"{p}_{side}{units.get(p, '')}" for p in pois for side in ("up", "down")
        }
    )
    print("nuisance parameters (pull = (fit - observed) / width, constraint = error / width;")
    print(f"impacts: the shift of {', '.join(pois)} with the nuisance at +-1 post-fit sigma):")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:+.3g}"))
    return table
