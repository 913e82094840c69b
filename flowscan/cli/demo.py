r"""`flowscan demo`: the Breit-Wigner bump hunt end to end (`flowscan.studies.bump_hunt`):
train, fit with the models and with the exact densities, compare, plot."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace

import numpy as np
import torch

from .. import plots
from ..exceptions import InputError
from ..flows import Architecture, torch_device
from ..io import run_folder, write_json, write_record
from ..samples import MASS, BreitWigner, Exponential, pseudo_data
from ..scanner import covariance, model_warning
from ..studies import bump_hunt
from ..studies.bump_hunt import BumpHuntConfig
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    demo = o.command(
        commands,
        "demo",
        help="Breit-Wigner bump hunt: train flows, fit pseudo-data, compare with the exact fit",
        description="Trains signal and background flows on the Breit-Wigner toy, fits "
        "pseudo-data by gradient descent with the flows and with the exact densities, "
        "prints the comparison and writes result.json, the models, config and plots.",
    )
    demo.add_argument(
        "--quick", action="store_true", help="small models in seconds, to try the commands"
    )
    demo.add_argument("--epochs", type=o.positive_int, help="training epochs per flow (default 20)")
    demo.add_argument(
        "--flow",
        default="mog",
        help="model family, as for train (default mog: Gaussian mixture)",
    )
    demo.add_argument(
        "--members",
        type=o.positive_int,
        help="ensemble members per model, whose spread gives the fit its model error "
        "(default 5, --quick 2; 1: a single model each, no model error)",
    )
    o.add_device(demo)
    o.add_progress(demo)
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Trains, fits with flows and with exact densities, and writes to `--out`:
    `result.json`, `config.json`, the model files, the pseudo-data (`data.csv`),
    `fit.png` and `landscape.png`. Returns the exit code."""
    # Ensembles of 5 on replicas of seed 002's 200k events (--quick: 2 of 20k), the box
    # closure's "seed 002" models (benchmarks/box_closure.py): with 4 of 50k, tau missed the
    # exact fit by more than 2 total errors at a quarter of the box's points. A 10 x 10 NLL map.
    base = BumpHuntConfig(members=5, n_train=200_000, grid=10)
    if args.quick:
        base = BumpHuntConfig.quick(members=2)
    changes = {"seed": args.seed, "device": args.device}
    if args.members is not None:
        changes["members"] = args.members
    changes["architecture"] = Architecture(
        args.flow, hidden_features=base.architecture.hidden_features
    )
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    config = replace(base, **changes)
    torch_device(config.device)  # before any work
    out = run_folder(args.out, "demo")
    write_record(out / "config.json", asdict(config))
    t_start = time.perf_counter()

    signal, background, seconds = bump_hunt.train_flows(config, not args.no_progress)
    signal.save(out / "signal.pt")
    background.save(out / "background.pt")

    names = list(config.truth)
    truth = torch.tensor([config.truth[k] for k in names], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], config.n_sig, config.n_bkg, seed=config.seed + 3)
    np.savetxt(out / "data.csv", x.numpy(), delimiter=",", header="m", comments="", fmt="%.6f")

    nll_flow, fit_flow = bump_hunt.fit(signal, background, x, config)
    nll_exact, fit_exact = bump_hunt.fit(BreitWigner(), Exponential(), x, config)
    try:
        errors = np.sqrt(np.diag(covariance(nll_exact, fit_exact.theta)))
    except InputError:  # not at a minimum inside the box: no error to divide by
        errors = np.full(len(fit_exact.theta), np.nan)
    seconds |= {"fit_flow": fit_flow.seconds, "fit_exact": fit_exact.seconds}

    units = [v.unit for v in nll_exact.theta_vars]
    model = fit_flow.errors_model
    rows = [
        f"{'parameter':<10}{'unit':<6}{'truth':>10}{'fit (flows) +- model':>24}"
        f"{'fit (exact) +- stat':>22}{'(flow-exact)/stat':>19}{'/total':>8}"
    ]
    for i, name in enumerate(names):
        diff = fit_flow.theta[i] - fit_exact.theta[i]
        total = errors[i] if model is None else np.hypot(errors[i], model[i])
        flows = f"{fit_flow.theta[i]:.2f}" + ("" if model is None else f" +- {model[i]:.2f}")
        exact = f"{fit_exact.theta[i]:.2f} +- {errors[i]:.2f}"
        rows.append(
            f"{name:<10}{units[i]:<6}{truth[i].item():>10.2f}{flows:>24}{exact:>22}"
            f"{diff / errors[i]:>19.2f}{diff / total:>8.2f}"
        )
    print("\n".join(rows))
    limited = (
        [] if model is None else [n for n, m, e in zip(names, model, errors, strict=True) if m > e]
    )
    if limited:
        print(model_warning(limited))
    for label, fit in (("flows", fit_flow), ("exact", fit_exact)):
        if not fit.valid:
            where = f" ({', '.join(fit.at_bound)} at a bound)" if fit.at_bound else ""
            print(f"the {label} fit is {fit.status.upper()}{where}: {fit.message}")
        for warning in fit.warnings:
            print(f"the {label} fit: WARNING: {warning}")
    print(
        f"NLL evaluations: flows {fit_flow.nll_evals}, exact {fit_exact.nll_evals}; "
        f"fit seconds: flows {fit_flow.seconds:.1f}, exact {fit_exact.seconds:.1f}"
    )

    edges = torch.linspace(MASS.low, MASS.high, 601, dtype=torch.float64)
    grid = ((edges[1:] + edges[:-1]) / 2)[:, None]
    plots.plot_fit(
        x[:, 0].numpy(),
        grid[:, 0].numpy(),
        {
            "flows": bump_hunt.spectrum(nll_flow, fit_flow.theta, grid),
            "exact": bump_hunt.spectrum(nll_exact, fit_exact.theta, grid),
        },
        MASS,
        out / "fit.png",
    )
    # Full range, and a zoom of +-4 sigma (exact-fit errors) around the flow minimum.
    full = [(v.low, v.high) for v in nll_flow.theta_vars[:2]]
    zoom = [
        (max(v.low, t - 4 * s), min(v.high, t + 4 * s))
        for v, t, s in zip(nll_flow.theta_vars[:2], fit_flow.theta, errors, strict=False)
    ]
    panels = []
    for ranges, size in [(full, config.grid), (zoom, max(3, config.grid * 3 // 4))]:
        axes, values, grads = bump_hunt.landscape(nll_flow, fit_flow.theta, ranges, size)
        panels.append((axes, values - fit_flow.nll, grads))
    plots.plot_landscape(
        panels,
        [v.label for v in nll_flow.theta_vars[:2]],
        out / "landscape.png",
        trajectory=fit_flow.path[:, :2],
        truth=truth[:2].tolist(),
        title=f"flow NLL at tau = {fit_flow.theta[2]:.1f} GeV and the path of the gradient scan",
    )
    seconds["total"] = time.perf_counter() - t_start
    result = {
        "truth": dict(zip(names, truth.tolist(), strict=True)),
        "fit_flow": fit_flow.values,
        "fit_exact": fit_exact.values,
        "errors_exact": dict(zip(names, errors.tolist(), strict=True)),
        "errors_model": None if model is None else dict(zip(names, model.tolist(), strict=True)),
        "units": dict(zip(names, units, strict=True)),
        "nll_evals": {"flow": fit_flow.nll_evals, "exact": fit_exact.nll_evals},
        "seconds": seconds,
        "scan_flow": fit_flow.to_dict(),
        "scan_exact": fit_exact.to_dict(),
    }
    write_json(out / "result.json", result)
    files = "result.json, config.json, signal.pt, background.pt, data.csv, fit.png, landscape.png"
    print(f"wrote {out}/ ({files})")
    return o.exit_code([fit_flow.status, fit_exact.status])
