r"""`flowscan scan`: every optimizer on one likelihood from saved models and a data file."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import plots
from ..exceptions import FitError, InputError
from ..io import check_memory, run_folder, write_record
from ..parallel import dask_client
from ..scanner import (
    FAILURES,
    LOCAL,
    METHODS,
    FitSettings,
    MixtureLikelihood,
    ParameterSpace,
    ScanResult,
    fit_methods,
    read_likelihood,
    write_likelihood,
    write_points,
)
from ..scanner.hs3 import FILE
from ..stats import checked_grid, discovery, global_significance, pulls_and_impacts
from ..stats.hypotest import signal_parameters
from ..stats.look_elsewhere import THRESHOLDS
from ..weights import effective_events
from . import _options as o

# What --save-likelihood writes beside the document.
SAVED = ("signal.onnx", "background.onnx", "signal.pt", "background.pt")


def add_parser(commands: argparse._SubParsersAction) -> None:
    scan = o.command(
        commands,
        "scan",
        help="fit a data file with saved signal/background models, by one or more methods",
        description="Fits the mixture likelihood of saved signal and background models to "
        "a data file with each method, prints a table per method and writes scan.json and "
        "convergence.png.",
    )
    o.add_models(scan, required=False)
    o.add_data(scan, required=False)
    o.add_weight(scan)
    saved = scan.add_argument_group(
        "saved likelihood", "the likelihood as an HS3 JSON document with ONNX densities "
        "(docs/export.md)",
    )  # fmt: skip
    saved.add_argument(
        "--likelihood",
        metavar="FILE.json",
        help="fit the likelihood.json of scan --save-likelihood (its models, data, yields "
        "and constraints) in place of --signal, --background and --data",
    )
    saved.add_argument(
        "--save-likelihood",
        action="store_true",
        help="write the likelihood to --out: likelihood.json (HS3 layout; the fits' start "
        "and best fit as parameter points), the densities as signal/background .onnx and .pt",
    )
    scan.add_argument(
        "--n-sig",
        type=o.events,
        help="signal events in the data, fixing the fraction with --n-bkg; omit both to fit "
        "the yields (extended likelihood)",
    )
    scan.add_argument("--n-bkg", type=o.events, help="background events in the data")
    scan.add_argument(
        "--method",
        default="minuit,gradient",
        help=f"comma-separated methods of {', '.join(METHODS)}, or 'all' (default "
        "minuit,gradient: each from the global search's lowest minimum)",
    )
    o.add_fit(scan)
    scan.add_argument("--minos", action="store_true", help="MINOS intervals with minuit")
    scan.add_argument(
        "--profiles",
        action="store_true",
        help="1D profiles and 2D contours with minuit (profiles.png, contours.png)",
    )
    o.add_nuisances(scan)
    scan.add_argument(
        "--model-bias",
        metavar="CLOSURE_JSON",
        help="add the bias the ensembles' members share to every fit as a third error: "
        "the closure.json of flowscan closure on these ensembles at the analysis's yields",
    )
    lee = scan.add_argument_group(
        "global significance",
        "the look-elsewhere effect of the floating signal parameters (extended likelihood)",
    )
    lee.add_argument(
        "--global-significance",
        type=o.positive_int,
        metavar="TOYS",
        help="background-only pseudo-experiments, each fitted as the data (the first local "
        "--method): the global p-value of the local q0, and Gross-Vitells' from their q0 fields",
    )
    lee.add_argument(
        "--lee-grid",
        action="append",
        help="values of a floating signal parameter for the q0 fields, name=low:high:count "
        "(default its range in 41, 15 or 8 steps for 1, 2 or 3 parameters)",
    )
    lee.add_argument(
        "--lee-fields",
        type=o.count,
        help="toys that also give their q0 field (default all, at most 100; 0: the toys "
        "alone, no Gross-Vitells)",
    )
    lee.add_argument(
        "--lee-thresholds",
        help="the reference thresholds of q0 for the Euler characteristic, one per floating "
        f"signal parameter (default {','.join(map(str, THRESHOLDS))}, the first D)",
    )
    o.add_dask(scan)
    o.add_progress(scan)
    scan.add_argument(
        "--no-model-check",
        action="store_true",
        help="accept a signal model recorded as background (or the reverse) or the same "
        "model twice",
    )
    scan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Fits the data with each method (`fit`: the global search, then the method from
    its lowest minimum; the model error where a model is an ensemble, a warning where
    the fit lies in a gap of a model's training grid), checks the local methods against
    each other (`compare_methods`: a minimum above another's is a failure), prints a
    table per method (with `--weight`, errors corrected for the weights by the sandwich)
    and writes to `--out`: `scan.json` (the options, versions, and every
    result with its `FitSettings`), `convergence.png`, and with `--profiles`
    `profiles.png` and `contours.png`. With constrained nuisances (the models',
    `--analysis`, `--nuisance`), the Minuit fit's pulls, constraints and impacts
    (`pulls_and_impacts`) go to a table, `scan.json` and `impacts.png`. With
    `--global-significance TOYS` (extended likelihood), the local significance of the
    first local method's fit and its global one (`global_significance`: background-only toys,
    and Gross-Vitells from their q0 fields over `--lee-grid`) go to a table and
    `scan.json`, the data's q0 field to `q0_field.csv` and `q0_field.png`. With
    `--likelihood FILE.json` the likelihood is a saved one (`read_likelihood`); with
    `--save-likelihood` it is saved to `--out` before the fits (`write_likelihood`) and
    the best fit's start and minimum added after them. Returns the exit code."""
    methods = list(METHODS) if args.method == "all" else o.names(args.method)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise InputError(
            f"unknown method(s) {unknown or methods}; choose from {list(METHODS)} or 'all'"
        )
    flags = {k: True for k in ("minos", "profiles") if getattr(args, k)}
    settings = o.fit_settings(args, minuit=flags)
    nll = _likelihood(args)
    if args.global_significance and nll.weights is not None:
        raise InputError(
            "--global-significance compares the data with unweighted background-only "
            "toys, and these events are weighted (weighted simulation is no observed "
            "dataset): drop --weight"
        )
    x, weights, constraints = nll.x, nll.weights, nll.constraints
    space = settings.space(nll)
    q, width = int(space.floating.sum()), 24 * len(nll.names)
    if "grid" in methods:
        points = settings.keywords("grid")["points"]
        check_memory(float(points) ** q, width, f"grid.points={points} to the power {q}")
    for method, key in (("random", "n"), ("bayesopt", "budget")):
        if method in methods:
            check_memory(settings.keywords(method)[key], width, f"{method}.{key}")
    bias = None if args.model_bias is None else _model_bias(args.model_bias, nll.names)
    lee = _lee_settings(args, nll, space, methods) if args.global_significance else None
    out = run_folder(args.out, "scan")
    if args.save_likelihood:  # before the fits: a model that does not export stops it here
        saved = _save_likelihood(nll, out)

    print(f"fitting {o.event_count(len(x), weights)} by {', '.join(methods)} ...", flush=True)
    if weights is not None and (args.minos or args.profiles or constraints):
        print("note: MINOS intervals, profiles, contours and the impacts' refits are the "
              "weighted NLL's, not corrected for the weights as the errors are")  # fmt: skip
    results = fit_methods(nll, settings, methods)
    for result in results.values():
        if bias is not None and result.status != "failed":
            result.errors_bias = np.where(np.isin(nll.names, result.fixed), 0.0, bias)
        print(result.table(nll.theta_vars))
    config = o.record(args) | {
        "nuisances": [asdict(c) for c in constraints],
        "events": len(x),
        "effective_events": effective_events(weights, len(x)),
    }
    pois = [n for n in space.floating_names if n not in {c.name for c in constraints}]
    impacts = _impacts(nll, space, results.get("minuit"), pois)
    extra = {} if impacts is None else {"impacts": impacts.to_dict("records")}
    record = {m: r.to_dict() for m, r in results.items()}
    write_record(out / "scan.json", config, results=record, **extra)
    files = ["scan.json"]
    if impacts is not None and len(impacts):
        plots.plot_impacts(impacts, nll.theta_vars[nll.names.index(pois[0])], out / "impacts.png")
        files.append("impacts.png")
    traces = {m: r.trace for m, r in results.items() if len(r.trace)}
    if traces:
        plots.plot_convergence(traces, out / "convergence.png")
        files.append("convergence.png")
    minuit = results.get("minuit")
    if minuit is not None and minuit.profiles is not None:
        names = nll.names
        errors = dict(zip(names, minuit.errors.tolist(), strict=True))
        model = None
        if minuit.errors_model is not None:
            model = dict(zip(names, minuit.errors_model.tolist(), strict=True))
        plots.plot_profiles(
            minuit.profiles, nll.theta_vars, minuit.values, errors, out / "profiles.png",
            minuit.minos, model,
        )  # fmt: skip
        files.append("profiles.png")
        if minuit.contours:
            contours = out / "contours.png"
            plots.plot_contours(minuit.contours, nll.theta_vars, minuit.values, contours)
            files.append("contours.png")
    if args.global_significance:
        local = results[next(m for m in methods if m in LOCAL)]
        if local.status == "failed":
            raise FitError(f"no global significance without a fit: {local.message}")
        extra["global_significance"] = _global(args, nll, settings, local, lee, out, files)
        write_record(out / "scan.json", config, results=record, **extra)
    if args.save_likelihood:
        _save_points(saved, results, settings.fixed)
        files += [saved.name, *SAVED]
    print(f"wrote {out}/ ({', '.join(files)})")
    return o.exit_code([r.status for r in results.values()])


def _likelihood(args: argparse.Namespace) -> MixtureLikelihood:
    r"""The likelihood of `--likelihood`, or of the models and data the options name."""
    if args.likelihood:
        given = [
            option
            for option in ("--signal", "--background", "--data", "--columns", "--where",
                           "--weight", "--n-sig", "--n-bkg", "--nuisance", "--analysis",
                           "--scale", "--window")
            if getattr(args, option[2:].replace("-", "_"))
        ]  # fmt: skip
        if given:
            raise InputError(
                f"--likelihood holds the models, data, yields and constraints: drop {given}"
            )
        return read_likelihood(args.likelihood, check_models=not args.no_model_check)
    missing = [f"--{k}" for k in ("signal", "background", "data") if not getattr(args, k)]
    if missing:
        raise InputError(f"give {', '.join(missing)} (or --likelihood FILE.json)")
    sig, bkg = o.load_models(args)
    observables = [v.name for v in sig.observables]
    columns = o.names(args.columns) or observables
    if len(columns) != len(observables):
        raise InputError(
            f"--columns names {len(columns)} column(s) {columns} for the models' "
            f"{len(observables)} observable(s) {observables}"
        )
    x = o.read_data(args.data, columns, args.where)
    return MixtureLikelihood(
        sig, bkg, x, args.n_sig, args.n_bkg, check_models=not args.no_model_check,
        constraints=o.constraints(args, sig, bkg), weights=o.read_weights(args, args.data),
    )  # fmt: skip


def _save_likelihood(nll: MixtureLikelihood, out: Path) -> Path:
    r"""`write_likelihood` to `out`, refused where a file of its would be overwritten
    (the models given, say); returns the document's path."""
    taken = [f for f in (FILE, *SAVED) if (out / f).exists()]
    if taken:
        raise InputError(
            f"--save-likelihood writes {taken} to {out}, which already holds them: give "
            "another --out"
        )
    print("saving the likelihood (each density exported to ONNX and checked) ...", flush=True)
    return write_likelihood(nll, out)


def _save_points(path: Path, results: dict[str, ScanResult], fixed: Sequence[str]) -> None:
    r"""The start (`init`, `fixed` held) and minimum (`best_fit`) of the local method's
    fit of lowest NLL that did not fail (not invalid, not a local minimum) into the
    saved likelihood at `path`; none without such a fit."""
    fits = [r for m, r in results.items() if m in LOCAL and r.status not in FAILURES]
    best = min(fits, key=lambda r: r.nll, default=None)
    if best is not None:
        write_points(path, {"init": best.path[0], "best_fit": best.theta}, fixed)


def _lee_grid(args: argparse.Namespace, nll: MixtureLikelihood, space: ParameterSpace) -> dict:
    r"""The grid of the q0 fields: `--lee-grid`, or each floating signal parameter's
    range in 41, 15 or 8 steps for 1, 2 or 3 of them; none without a floating signal
    parameter or with `--lee-fields 0`."""
    signal = [
        nll.theta_vars[nll.names.index(n)]
        for n in signal_parameters(nll)
        if n in space.floating_names
    ]
    if not signal or args.lee_fields == 0:
        if args.lee_grid or args.lee_thresholds:
            why = "--lee-fields 0" if signal else "no signal parameter floats"
            raise InputError(f"--lee-grid and --lee-thresholds make q0 fields: {why}")
        return {}
    if len(signal) > 3:
        raise InputError(
            f"Gross-Vitells covers 1 to 3 floating signal parameters, here {len(signal)} "
            f"{[v.name for v in signal]}: --fix some, or --lee-fields 0 for the toys alone"
        )
    if not args.lee_grid:
        steps = {1: 41, 2: 15, 3: 8}[len(signal)]
        return {v.name: np.linspace(v.low, v.high, steps) for v in signal}
    grid = o.parse_at(args.lee_grid)
    if sorted(grid) != sorted(v.name for v in signal):
        raise InputError(
            f"--lee-grid needs values of the floating signal parameters "
            f"{[v.name for v in signal]}, got {sorted(grid)}"
        )
    for v in signal:
        outside = [g for g in grid[v.name] if not v.low <= g <= v.high]
        if outside:
            raise InputError(f"--lee-grid {v.name} = {outside} is outside [{v.low}, {v.high}]")
    return {v.name: np.array(grid[v.name]) for v in signal}


def _lee_settings(
    args: argparse.Namespace, nll: MixtureLikelihood, space: ParameterSpace, methods: list[str]
) -> tuple[dict, np.ndarray | None, int | None]:
    r"""The grid, thresholds and number of fields of `--global-significance`, checked
    before any fit."""
    if not nll.extended:
        raise InputError(
            "--global-significance needs the extended likelihood: omit --n-sig and --n-bkg"
        )
    if not set(methods) & set(LOCAL):
        raise InputError(
            f"--global-significance tests the fit of a local method: add one of {list(LOCAL)} "
            "to --method"
        )
    grid = _lee_grid(args, nll, space)
    if not grid:
        return {}, None, None
    thresholds = None
    if args.lee_thresholds:
        try:
            thresholds = [float(u) for u in args.lee_thresholds.split(",")]
        except ValueError:
            raise InputError(f"--lee-thresholds {args.lee_thresholds!r}: not numbers") from None
    for option, given in (("--lee-grid", None), ("--lee-thresholds", thresholds)):
        try:  # the grid alone first, then its thresholds
            grid, used = checked_grid(grid, given)
        except InputError as e:
            raise InputError(f"{option}: {e}") from None
    toys = args.global_significance
    fields = min(toys, args.lee_fields or 100)
    if fields < 2:
        option = "--lee-fields" if fields == args.lee_fields else "--global-significance"
        raise InputError(
            f"Gross-Vitells needs at least 2 q0 fields: {option} >= 2 (or --lee-fields 0)"
        )
    return grid, used, fields


def _global(
    args: argparse.Namespace,
    nll: MixtureLikelihood,
    settings: FitSettings,
    local: ScanResult,
    lee: tuple[dict, np.ndarray | None, int | None],
    out: Path,
    files: list[str],
) -> dict:
    r"""The local and global significance of the fit `local` (`global_significance`,
    each toy fitted by its `settings`), printed; the data's q0 field over the grid to
    `q0_field.csv` and `q0_field.png`; returns the record for `scan.json`."""
    grid, thresholds, fields = lee
    toys = args.global_significance
    space = ParameterSpace(nll.theta_vars, local.theta, local.fixed)
    found = discovery(nll, space, local)
    print(f"local significance at the {local.method} fit: q0 = {found.q0:.3f}, "
          f"Z = {found.significance:.2f}")  # fmt: skip
    print(
        f"{toys} background-only pseudo-experiments, each fitted by {local.method}"
        + (f", {fields} with their q0 field over {list(grid)}" if grid else "")
        + " ..."
    )
    with dask_client(args.jobs, args.scheduler) as client:
        result = global_significance(
            nll, space, found.q0, toys, settings=_toy_settings(settings, local.method),
            grid=grid or None, fields=fields, thresholds=thresholds, seed=args.seed,
            client=client, progress=not args.no_progress,
        )  # fmt: skip
    if result.q0 > found.q0 + 0.01:
        print(f"  the fit missed the largest q0 on the grid, {result.q0:.3f}: the global "
              "significance is that of the grid's")  # fmt: skip
    print(pd.DataFrame(result.table()).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if result.missed:
        print(f"  the global search missed the grid's maximum in {result.missed} toy(s)")
    failed = int(np.isnan(result.toys_q0).sum())
    if failed:
        print(f"  {failed} of {toys} pseudo-experiments' fits failed (left out)")
    if grid:
        columns = np.meshgrid(*grid.values(), indexing="ij")
        table = pd.DataFrame({n: c.ravel() for n, c in zip(grid, columns, strict=True)})
        table["q0"] = result.data_field.ravel()
        table.to_csv(out / "q0_field.csv", index=False)
        variables = [nll.theta_vars[nll.names.index(n)] for n in grid]
        plots.plot_q0_field(result.data_field, grid, variables, thresholds, out / "q0_field.png")
        files += ["q0_field.csv", "q0_field.png"]
    gv = result.gross_vitells
    return {
        "method": local.method, "q0_fit": found.q0, "q0": result.q0, "local_p": result.local_p,
        "local_z": result.local_z, "p_toys": result.p_toys,
        "p_toys_error": result.p_toys_error, "z_toys": result.z_toys,
        "z_toys_is_lower_bound": result.bound, "p_gross_vitells": result.p_gv,
        "p_gross_vitells_error": result.p_gv_error, "z_gross_vitells": result.z_gv,
        "missed": result.missed, "failed_toys": failed, "toys_q0": result.toys_q0.tolist(),
        "grid": {n: list(map(float, v)) for n, v in grid.items()},
        "gross_vitells": None if gv is None else {
            "thresholds": gv.thresholds.tolist(), "mean_euler": gv.mean.tolist(),
            "covariance": gv.covariance.tolist(), "coefficients": gv.coefficients.tolist(),
            "coefficients_covariance": gv.coefficients_covariance.tolist(), "fields": gv.fields,
        },
    }  # fmt: skip


def _toy_settings(settings: FitSettings, method: str) -> FitSettings:
    r"""The data fit's `settings` for its pseudo-experiments: `method`, without MINOS
    and profiles (the toys need the minimum alone)."""
    options = dict(settings.options)
    minuit = {k: v for k, v in options.get("minuit", {}).items() if k not in ("minos", "profiles")}
    options["minuit"] = minuit
    return replace(settings, method=method, options=options)


def _model_bias(path: str, names: list[str]) -> np.ndarray:
    r"""The `model_bias` of a closure.json (`flowscan closure`) for the parameters
    `names` `(P,)`, 0 for those it does not name; refused with `InputError` if the
    file is not one or names another parameter."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except OSError as e:
        raise InputError(f"--model-bias {path}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"--model-bias {path}: not a closure.json (not JSON)") from None
    bias = record.get("model_bias") if isinstance(record, dict) else None
    if not isinstance(bias, dict):
        raise InputError(
            f"--model-bias {path} holds no model_bias: write it with flowscan closure on "
            "the ensembles, without --leave-out"
        )
    unknown = sorted(set(bias) - set(names))
    if unknown:
        raise InputError(f"--model-bias {path} names {unknown}; the fit's parameters are {names}")
    values = [bias.get(n, 0.0) for n in names]
    ok = [isinstance(v, int | float) and not isinstance(v, bool) for v in values]
    if not all(ok) or not all(math.isfinite(v) and v >= 0 for v in values):
        raise InputError(f"--model-bias {path}: each bias must be a number >= 0, got {bias}")
    return np.array(values, dtype=float)


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
