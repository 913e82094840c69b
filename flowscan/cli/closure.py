r"""`flowscan closure`: fits of pseudo-data drawn from a reference at known parameters,
with saved models, against the truth in units of the statistical, model and total
error."""

from __future__ import annotations

import argparse
import itertools
from dataclasses import asdict
from pathlib import Path

import torch

from .. import plots
from ..exceptions import InputError
from ..flows import DensityEnsemble
from ..io import check_memory, run_folder, write_record
from ..parallel import dask_client
from ..samples import GENERATORS, Bootstrap, Sampler, samplers, training_events
from ..scanner import Density, check_model_pair
from ..validation import closure, interpolation_error, leave_out, model_bias
from ..variables import check_theta
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = o.command(
        commands,
        "closure",
        help="closure over theta: fits of pseudo-data drawn at known parameters",
        description="Draws pseudo-datasets from a reference (signal at each point of --at, "
        "background at --background-theta), fits each with the saved models (Minuit, the "
        "background parameters floating, the model error of ensembles) and reports the mean "
        "and spread of fit - truth in units of the statistical, model and total error. "
        "Writes closure.csv, closure.json and closure.png.",
    )
    o.add_models(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--sampler",
        choices=GENERATORS,
        help="what draws the pseudo-data: breit-wigner (the toy's exact densities) or lhco "
        "(the LHCO-style generator)",
    )
    source.add_argument(
        "--signal-samples",
        nargs="+",
        metavar="FILE",
        help="or resample simulated signal events, e.g. the files of flowscan simulate --grid "
        "(with a column per signal parameter); --at must name points they hold",
    )
    parser.add_argument(
        "--background-samples",
        nargs="+",
        metavar="FILE",
        help="the simulated background events to resample, with --signal-samples",
    )
    parser.add_argument(
        "--weight",
        help="event weights of --signal-samples and --background-samples, a column or an "
        'expression of columns, e.g. "genWeight * sf" (>= 0: events are drawn in proportion '
        "to them)",
    )
    parser.add_argument(
        "--leave-out",
        metavar="NAME=VALUE",
        help="retrain the signal model (its architecture, members and settings) without the "
        "training events at one grid value, e.g. m_x=750, and test it there: the closure then "
        "gives the interpolation error across a gap of the grid",
    )
    parser.add_argument(
        "--events",
        type=o.positive_int,
        help="with --leave-out and --sampler: training events per mass point (default: as "
        "many as the ensemble was trained on, else 10000)",
    )
    parser.add_argument(
        "--epochs",
        type=o.positive_int,
        help="with --leave-out: training epochs (default: the ensemble's, else 20)",
    )
    parser.add_argument(
        "--at",
        action="append",
        required=True,
        help="signal parameter values, e.g. m_pole=350:650:4 (low:high:count) or "
        "m_pole=400,525; one --at per parameter, their grid is tested (include points "
        "between the training values)",
    )
    parser.add_argument(
        "--background-theta", help="the background parameters of the pseudo-data, e.g. tau=170"
    )
    parser.add_argument(
        "--n-sig", type=o.positive_int, default=1_000, help="signal events per dataset"
    )
    parser.add_argument(
        "--n-bkg", type=o.positive_int, default=10_000, help="background events per dataset"
    )
    parser.add_argument(
        "--datasets", type=o.positive_int, default=5, help="pseudo-datasets per point (default 5)"
    )
    o.add_fit(parser, "starting values of the fits (default: the centre of the box)")
    o.add_dask(parser)
    o.add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Closure fits at every point of the `--at` grid; writes to `--out`: `closure.csv`
    (a row per point and parameter, `flowscan.validation.closure`), `closure.json`
    (settings, seed, versions; with ensembles the bias their members share,
    `model_bias`, and with `--leave-out` the interpolation error instead) and
    `closure.png` (the mean pull over each pair of parameters, the training grid in
    grey); with `--leave-out`, the retrained signal model too. Returns 1 if a point has
    no valid fit."""
    settings = o.fit_settings(args)
    sig, bkg = o.load_models(args)
    check_model_pair(sig, bkg)
    names = [v.name for v in sig.theta_vars]
    at = o.parse_at(args.at)
    if sorted(at) != sorted(names):
        raise InputError(f"--at needs values of exactly the signal parameters {names}")
    points = torch.tensor(list(itertools.product(*(at[n] for n in names))), dtype=torch.float64)
    check_theta(points, sig.theta_vars)
    given = o.parse_start(args.background_theta)
    b_names = [v.name for v in bkg.theta_vars]
    if sorted(given) != sorted(b_names):
        raise InputError(f"--background-theta needs exactly the background parameters {b_names}")
    b_theta = [given[n] for n in b_names]
    if b_theta:
        try:
            check_theta(torch.tensor(b_theta, dtype=torch.float64), bkg.theta_vars)
        except InputError as e:
            raise InputError(f"--background-theta, the background's truth: {e}") from None
    unknown = sorted((set(settings.start) | set(settings.fixed)) - {*names, *b_names})
    if unknown:
        raise InputError(f"--start/--fix name {unknown}: the parameters are {[*names, *b_names]}")
    check_memory(args.n_sig + args.n_bkg, 2_000, "--n-sig + --n-bkg")
    reference = _reference(args, sig, bkg)
    for point in points if args.signal_samples else ():
        reference[0].sample(1, point)  # an InputError naming the files' points if absent
    out = run_folder(args.out, "closure")
    left_out = _leave_out(args, sig, reference[0], out) if args.leave_out else None
    if left_out is not None:
        sig = left_out[0]
    print(f"closure at {len(points)} point(s) of {names}, {args.datasets} datasets each ...")
    table = closure(
        sig, bkg, reference, points, b_theta, n_sig=args.n_sig, n_bkg=args.n_bkg,
        datasets=args.datasets, settings=settings, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    shown = ["parameter", *names, "bias", "spread", "stat", "model", "pull_stat", "pull_total"]
    print(table[[*shown, "valid"]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    table.to_csv(out / "closure.csv", index=False)
    results = {"closure": table.to_dict("records")}
    units = {v.name: f" {v.unit}" if v.unit else "" for v in (*sig.theta_vars, *bkg.theta_vars)}
    if left_out is None and (table["model"] > 0).any():  # ensembles at trained points
        bias = model_bias(table[table["valid"] > 1]).to_dict()
        results["model_bias"] = bias
        print(
            "bias shared by the ensembles' members (rms bias less the datasets' noise and "
            "the model error): " + ", ".join(f"{k} {v:.3g}{units[k]}" for k, v in bias.items())
        )
    if left_out is not None:
        name, value = left_out[1:]
        gap = table[(table[name] == value) & table["parameter"].isin(names)]  # the signal's
        if (gap["valid"] > 1).any():
            error = interpolation_error(gap[gap["valid"] > 1]).to_dict()
            results["interpolation_error"] = error
            print(
                f"interpolation error across the gap at {name} = {value:g} (rms bias less "
                "the datasets' noise): "
                + ", ".join(f"{k} {v:.3g}{units[k]}" for k, v in error.items())
            )
        else:
            print(
                f"no --at point at the left-out {name} = {value:g} has two valid fits or more: "
                "no interpolation error (add --at points there, or --datasets)"
            )
    write_record(out / "closure.json", o.record(args), settings=asdict(settings), **results)
    grid = getattr(sig, "training_points", None)
    plots.plot_closure(
        table, sig.theta_vars, out / "closure.png", None if grid is None else grid.numpy()
    )
    print(f"wrote {out}/ (closure.csv, closure.json, closure.png)")
    return int((table["valid"] == 0).any())


def _reference(args: argparse.Namespace, sig: Density, bkg: Density) -> tuple[Sampler, Sampler]:
    r"""The signal and background samplers of `--sampler`, or the `Bootstrap`s of
    `--signal-samples` (with their parameter columns) and `--background-samples`."""
    if args.sampler:
        if args.background_samples:
            raise InputError("--background-samples goes with --signal-samples, not --sampler")
        if args.weight:
            raise InputError("--weight weights the events of sample files, not of --sampler")
        named = samplers(args.sampler)
        return named.like(sig), named.like(bkg)
    if not args.background_samples:
        raise InputError("--signal-samples needs --background-samples (the background events)")
    if bkg.theta_vars:
        raise InputError(
            "a background model with parameters cannot be tested on a background file, "
            "which is at one (unknown) theta: use --sampler"
        )
    obs = [v.name for v in sig.observables]
    files = args.signal_samples
    signal = Bootstrap(
        o.read_data(files, obs),
        sig.observables,
        o.read_data(files, [v.name for v in sig.theta_vars]),
        sig.theta_vars,
        o.read_weights(args, files),
    )
    background = o.read_data(args.background_samples, obs)
    weights = o.read_weights(args, args.background_samples)
    return signal, Bootstrap(background, bkg.observables, weights=weights)


def _leave_out(
    args: argparse.Namespace, sig: Density, reference: Sampler, out: Path
) -> tuple[Density, str, float]:
    r"""The signal model retrained without the events at `--leave-out`, on the
    generator's training set or on the `--signal-samples`, saved beside the results."""
    name, _, text = args.leave_out.partition("=")
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"--leave-out takes one grid value, NAME=VALUE, got {args.leave_out!r}"
        ) from None
    training = sig.training if isinstance(sig, DensityEnsemble) else {}
    if args.signal_samples:
        if args.events:
            raise InputError("--events goes with --sampler: with --signal-samples the files train")
        x, theta, weights = reference.events, reference.theta, reference.weights
    else:
        points = 1 if sig.training_points is None else len(sig.training_points)
        per_point = training.get("events", 10_000 * points) // points
        x, theta = training_events(reference, args.events or per_point, training.get("seed", 0))
        weights = None
    options = {} if args.epochs is None else {"epochs": args.epochs}
    if not training:
        options = {"epochs": 20} | options
    print(f"retraining the signal model without {name} = {value:g} from "
          f"{o.event_count(len(x), weights)} ...")  # fmt: skip
    with dask_client(args.jobs, args.scheduler) as client:
        model = leave_out(
            sig, x, theta, name, value, client=client, progress=not args.no_progress,
            weights=weights, **options,
        )  # fmt: skip
    model.save(out / "signal_leave_out.pt")
    return model.for_fit(), name, value
