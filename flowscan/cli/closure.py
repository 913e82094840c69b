r"""`flowscan closure`: fits of pseudo-data drawn from a reference at known parameters,
with saved models, against the truth in units of the statistical, model and total
error."""

from __future__ import annotations

import argparse
import itertools

import torch

from .. import plots
from ..exceptions import InputError
from ..io import check_memory, run_folder, write_record
from ..samples import GENERATORS, samplers
from ..scanner import check_model_pair
from ..validation import closure
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
    parser.add_argument(
        "--sampler",
        required=True,
        choices=GENERATORS,
        help="what draws the pseudo-data: breit-wigner (the toy's exact densities) or lhco "
        "(the LHCO-style generator)",
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
    o.add_progress(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Closure fits at every point of the `--at` grid; writes to `--out`: `closure.csv`
    (a row per point and parameter, `flowscan.validation.closure`), `closure.json`
    (settings, seed, versions) and `closure.png` (the mean pull over each pair of
    parameters, the training grid in grey). Returns 1 if a point has no valid fit."""
    sig, bkg = o.load_models(args.signal, args.background)
    check_model_pair(sig, bkg)
    names = [v.name for v in sig.theta_vars]
    at = dict(o.parse_values(text) for text in args.at)
    if sorted(at) != sorted(names):
        raise InputError(f"--at needs values of exactly the signal parameters {names}")
    points = torch.tensor(list(itertools.product(*(at[n] for n in names))), dtype=torch.float64)
    check_theta(points, sig.theta_vars)
    given = o.parse_start(args.background_theta)
    b_names = [v.name for v in bkg.theta_vars]
    if sorted(given) != sorted(b_names):
        raise InputError(f"--background-theta needs exactly the background parameters {b_names}")
    b_theta = [given[n] for n in b_names]
    check_memory(args.n_sig + args.n_bkg, 2_000, "--n-sig + --n-bkg")
    reference = samplers(args.sampler)
    reference = (reference.like(sig), reference.like(bkg))
    out = run_folder(args.out, "closure")
    print(f"closure at {len(points)} point(s) of {names}, {args.datasets} datasets each ...")
    table = closure(
        sig, bkg, reference, points, b_theta, n_sig=args.n_sig, n_bkg=args.n_bkg,
        datasets=args.datasets, seed=args.seed, progress=not args.no_progress,
    )  # fmt: skip
    shown = ["parameter", *names, "bias", "spread", "stat", "model", "pull_stat", "pull_total"]
    print(table[[*shown, "valid"]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    table.to_csv(out / "closure.csv", index=False)
    config = {
        "signal": str(args.signal),
        "background": str(args.background),
        "sampler": args.sampler,
        "at": at,
        "background_theta": given,
        "n_sig": args.n_sig,
        "n_bkg": args.n_bkg,
        "datasets": args.datasets,
        "seed": args.seed,
    }
    write_record(out / "closure.json", config, closure=table.to_dict("records"))
    grid = getattr(sig, "training_points", None)
    plots.plot_closure(
        table, sig.theta_vars, out / "closure.png", None if grid is None else grid.numpy()
    )
    print(f"wrote {out}/ (closure.csv, closure.json, closure.png)")
    return int((table["valid"] == 0).any())
