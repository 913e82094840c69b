r"""Interpolation of the LHCO signal model to masses it was not trained at, with
ensembles: does the model error cover the miss, and does an interpolation error from
another left-out grid value?

Trains an ensemble of signal models on seed 002's training grid without the points at
one held-out value (default m_X = 750 GeV) and an ensemble of QCD models, then at a
trained mass point (the control), two points at the held-out value and one off the grid:

1. compares ensemble samples with generator samples, per observable: the two-sample KS
   statistic, beside the KS of two independent generator samples of equal size (the
   noise floor);
2. fits pseudo-data made there (10k signal + 100k QCD by default, as in seed 002) with Minuit on the
   ensembles, with the model error of `flowscan.scanner.model_errors`, and prints the
   masses against truth in units of the statistical and of the total error.

Then, for an interpolation error not fitted to the points it is tested on, trains a
second signal ensemble without another grid value (`--calibrate`, default m_X = 500
GeV), runs the closure (`flowscan.validation.closure`) at two points of that value and
takes `flowscan.validation.interpolation_error` of it, and prints the coverage at the
held-out points with and without it.

Run: `python benchmarks/lhco_interpolation.py [--events 7500] [--members 3]
[--background-model runs/lhco-bkg/model.pt]` (events per training point; about 45
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from scipy import stats

from flowscan import Variable
from flowscan.flows import Architecture, load_model, train_ensemble
from flowscan.parallel import dask_client
from flowscan.samples import lhco
from flowscan.scanner import MixtureLikelihood, fit
from flowscan.validation import closure, interpolation_error

NAMES = [v.name for v in lhco.OBSERVABLES]
MASS_NAMES = [v.name for v in lhco.MASSES]


def _value(text: str) -> tuple[int, float]:
    name, value = text.split("=")
    return MASS_NAMES.index(name), float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=7500, help="per training mass point")
    parser.add_argument("--background", type=int, default=200_000, help="QCD training events")
    parser.add_argument("--background-model", help="a trained QCD model or ensemble")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--members", type=int, default=3, help="members per ensemble")
    parser.add_argument("--flow", default="mog", help="signal model family, default sizes")
    parser.add_argument("--held-out", default="m_x=750", help="grid value left out, NAME=GeV")
    parser.add_argument(
        "--calibrate", default="m_x=500", help="grid value left out for the interpolation error"
    )
    parser.add_argument("--datasets", type=int, default=3, help="closure datasets per point")
    parser.add_argument("--compare", type=int, default=20_000, help="events per sample compared")
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    parser.add_argument("--n-sig", type=int, default=10_000, help="signal events per fit")
    parser.add_argument("--n-bkg", type=int, default=100_000, help="QCD events per fit")
    args = parser.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    x_all, theta_all = (torch.tensor(a) for a in lhco.training_set(args.events))
    architecture = Architecture(args.flow)
    masses = [Variable(v.name, v.unit) for v in lhco.MASSES]
    options = {"members": args.members, "epochs": args.epochs, "architecture": architecture}

    with dask_client(args.jobs) as client:

        def signal_without(axis: int, value: float):
            keep = theta_all[:, axis] != value
            return train_ensemble(
                lhco.OBSERVABLES, masses, x_all[keep], theta_all[keep], role="signal",
                client=client, progress=False, **options,
            )  # fmt: skip

        axis, held_out = _value(args.held_out)
        c_axis, c_value = _value(args.calibrate)
        signal = signal_without(axis, held_out)
        calibration = signal_without(c_axis, c_value)
        if args.background_model:
            background = load_model(args.background_model)
        else:
            qcd = lhco.Generator("qcd").sample(args.background, seed=1000)
            background = train_ensemble(
                lhco.OBSERVABLES, [], qcd, role="background", seed=1000, client=client,
                progress=False, **(options | {"architecture": None}),
            )  # fmt: skip
    print(
        f"trained {args.members}-member {args.flow} signal ensembles on the grid without "
        f"{args.held_out} and without {args.calibrate} GeV ({args.events} events per point) "
        f"and the QCD ensemble in {time.perf_counter() - t0:.0f} s"
    )

    def at(masses: tuple[float, float, float], a: int, v: float) -> tuple[float, ...]:
        return tuple(v if i == a else m for i, m in enumerate(masses))

    # A trained point first, as the control, then two held-out points and an off-grid one.
    tests = [(3500.0, 500.0, 100.0), at((3500.0, 500.0, 100.0), axis, held_out)]
    tests += [at((4000.0, 750.0, 300.0), axis, held_out), (3250.0, 650.0, 175.0)]

    print(f"\n{'masses (GeV)':<22}{'observable':<11}{'KS model':>9}{'KS floor':>10}")
    for i, point in enumerate(tests):
        generator = lhco.Generator("signal")
        reference = generator.sample(args.compare, torch.tensor(point), seed=5000 + i).numpy()
        twin = generator.sample(args.compare, torch.tensor(point), seed=6000 + i).numpy()
        sample = signal.sample(args.compare, torch.tensor(point), seed=i).double().numpy()
        for j, name in enumerate(NAMES):
            label = str(tuple(int(m) for m in point)) if j == 0 else ""
            print(
                f"{label:<22}{name:<11}"
                f"{stats.ks_2samp(sample[:, j], reference[:, j]).statistic:>9.4f}"
                f"{stats.ks_2samp(twin[:, j], reference[:, j]).statistic:>10.4f}"
            )

    signal, calibration, background = (m.double() for m in (signal, calibration, background))
    rows = []
    for i, point in enumerate(tests):
        data = lhco.pseudo_data(args.n_bkg, args.n_sig, point, seed=7000 + 3 * i)
        x = torch.tensor(lhco.features(data)[NAMES].to_numpy())
        nll = MixtureLikelihood(signal, background, x, args.n_sig, args.n_bkg)
        result = fit(nll)
        for j, name in enumerate(result.names):
            rows.append(
                {
                    "truth": str(tuple(int(m) for m in point)),
                    "held out": i in (1, 2),
                    "parameter": name,
                    "fit": result.theta[j],
                    "stat": result.errors[j],
                    "model": result.errors_model[j],
                    "fit - truth": result.theta[j] - point[j],
                    "seconds": result.seconds,
                    "status": result.status,
                }
            )
    table = pd.DataFrame(rows)
    table["/ stat"] = table["fit - truth"] / table["stat"]
    table["/ total"] = table["fit - truth"] / np.hypot(table["stat"], table["model"])

    points = torch.tensor([at((3500.0, 0, 100.0), c_axis, c_value)])
    points = torch.cat([points, torch.tensor([at((4000.0, 0, 300.0), c_axis, c_value)])])
    t1 = time.perf_counter()
    check = closure(
        calibration, background, (lhco.Generator("signal"), lhco.Generator("qcd")), points,
        n_sig=args.n_sig, n_bkg=args.n_bkg, datasets=args.datasets, seed=11, progress=False,
    )  # fmt: skip
    interpolation = interpolation_error(check)
    print(
        f"\nclosure of the ensemble without {args.calibrate} GeV at {args.calibrate} "
        f"({args.datasets} datasets per point, {time.perf_counter() - t1:.0f} s):"
    )
    shown = ["parameter", *MASS_NAMES, "bias", "spread", "stat", "model", "pull_total"]
    print(check[shown].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    errors = ", ".join(f"{k} {v:.2f}" for k, v in interpolation.items())
    print(f"interpolation error (GeV): {errors}")

    table["interpolation"] = table["parameter"].map(interpolation)
    total = np.sqrt(table["stat"] ** 2 + table["model"] ** 2 + table["interpolation"] ** 2)
    table["/ total + interp."] = table["fit - truth"] / total
    print(
        f"\nfits of {args.n_sig} signal + {args.n_bkg} QCD events with the ensembles "
        f"without {args.held_out} GeV:"
    )
    print(table.drop(columns="held out").to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    held = table[table["held out"]]
    print(f"\ncoverage at the {len(held)} held-out (point, parameter) cases: |fit - truth| <= 1 x")
    for column in ("/ stat", "/ total", "/ total + interp."):
        inside, rms = (held[column].abs() <= 1).mean(), np.sqrt((held[column] ** 2).mean())
        print(f"  {column[2:]:<18}{inside:.2f}  (rms pull {rms:.2f})")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
