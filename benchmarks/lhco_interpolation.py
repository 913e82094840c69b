r"""Interpolation of the LHCO signal flow to masses it was not trained at.

Trains the signal flow on seed 002's training grid without the points at one held-out
value (default m_X = 750 GeV; `--held-out m_zprime=4000` for another) and the QCD
background flow, then at a trained mass point (the control), two points at the held-out
value and one off the grid:

1. compares flow samples with generator samples, per observable: the two-sample KS
   statistic and the 1D Wasserstein distance (scipy), each beside the same number for
   two independent generator samples of equal size (the noise floor);
2. fits pseudo-data made there (10k signal + 100k QCD, as in seed 002) with Minuit on
   the flows and prints fitted masses against truth, in GeV and in HESSE errors.

Run: `python benchmarks/lhco_interpolation.py [--events 7500] [--flow mog:0:64,64]
[--background-model runs/lhco-bkg/model.pt]` (events per training point; about 15
minutes on 2 cores with a trained background flow).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from scipy import stats

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import lhco
from flowscan.scanner import MixtureLikelihood, ParameterSpace, minuit_scan

NAMES = [v.name for v in lhco.OBSERVABLES]


def _observables(frame: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(lhco.features(frame)[NAMES].to_numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=7500, help="per training mass point")
    parser.add_argument("--background", type=int, default=200_000, help="QCD training events")
    parser.add_argument("--background-model", help="a trained QCD flow (default: train one)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--flow", default="mog:0:64,64", help="signal model:transforms:hidden")
    parser.add_argument("--held-out", default="m_x=750", help="grid value left out, NAME=GeV")
    parser.add_argument("--compare", type=int, default=20_000, help="events per sample compared")
    args = parser.parse_args()
    torch.manual_seed(0)

    name, value = args.held_out.split("=")
    axis = [v.name for v in lhco.MASSES].index(name)
    held_out = float(value)
    grid = [m for m in lhco.training_grid() if m[axis] != held_out]

    def at(masses: tuple[float, float, float]) -> tuple[float, ...]:
        return tuple(held_out if i == axis else m for i, m in enumerate(masses))

    # A trained point first, as the control, then two held-out points and an off-grid one.
    tests = [(3500.0, 500.0, 100.0), at((3500.0, 500.0, 100.0)), at((4000.0, 750.0, 300.0))]
    tests.append((3250.0, 650.0, 175.0))
    t0 = time.perf_counter()
    x, theta = (torch.tensor(a) for a in lhco.training_set(args.events, grid))
    flow, transforms, hidden = args.flow.split(":")
    signal = DensityModel(
        lhco.OBSERVABLES,
        [Variable(v.name, v.unit) for v in lhco.MASSES],
        Architecture(
            flow=flow,
            transforms=int(transforms),
            hidden_features=[int(h) for h in hidden.split(",")],
        ),
    )
    train(signal, x, theta, epochs=args.epochs, progress=False)
    if args.background_model:
        background = DensityModel.load(args.background_model)
    else:
        background = DensityModel(lhco.OBSERVABLES, seed=1000)
        qcd = _observables(lhco.generate(args.background, seed=1000))
        train(background, qcd, epochs=args.epochs, seed=1000, progress=False)
    print(
        f"trained the {args.flow} signal flow on {len(grid)} mass points x {args.events} "
        f"events ({name} = {held_out:g} GeV held out) and the QCD flow in "
        f"{time.perf_counter() - t0:.0f} s"
    )

    print(
        f"\n{'masses (GeV)':<22}{'observable':<11}{'KS flow':>9}{'KS floor':>10}"
        f"{'W1 flow':>10}{'W1 floor':>10}"
    )
    for i, masses in enumerate(tests):
        reference = lhco.features(lhco.generate(args.compare, masses, seed=5000 + i))[NAMES]
        twin = lhco.features(lhco.generate(args.compare, masses, seed=6000 + i))[NAMES]
        flow = signal.sample(args.compare, torch.tensor(masses), seed=i).double().numpy()
        for j, name in enumerate(NAMES):
            ref, other = reference[name].to_numpy(), twin[name].to_numpy()
            label = str(tuple(int(m) for m in masses)) if j == 0 else ""
            print(
                f"{label:<22}{name:<11}{stats.ks_2samp(flow[:, j], ref).statistic:>9.4f}"
                f"{stats.ks_2samp(other, ref).statistic:>10.4f}"
                f"{stats.wasserstein_distance(flow[:, j], ref):>10.4g}"
                f"{stats.wasserstein_distance(other, ref):>10.4g}"
            )

    signal, background = signal.double(), background.double()
    print(
        f"\n{'truth (GeV)':<22}{'parameter':<11}{'fit':>9}{'error':>8}{'fit-truth':>11}"
        f"{'pull':>7}{'s/fit':>7}"
    )
    for i, masses in enumerate(tests):
        data = lhco.pseudo_data(100_000, 10_000, masses, seed=7000 + 3 * i)
        nll = MixtureLikelihood(signal, background, _observables(data), 10_000, 100_000)
        fit = minuit_scan(nll, ParameterSpace(nll.theta_vars))
        for j, name in enumerate(fit.names):
            label = str(tuple(int(m) for m in masses)) if j == 0 else ""
            seconds = f"{fit.seconds:.0f}" if j == 0 else ""
            pull = (fit.theta[j] - masses[j]) / fit.errors[j]
            print(
                f"{label:<22}{name:<11}{fit.theta[j]:>9.1f}{fit.errors[j]:>8.2f}"
                f"{fit.theta[j] - masses[j]:>+11.1f}{pull:>+7.1f}{seconds:>7}"
            )


if __name__ == "__main__":
    main()
