r"""Which LHCO signal flow: accuracy against the cost of a fit, per architecture.

Trains each candidate signal flow (conditional on the three masses) on the same sample
of seed 002's training grid, and one QCD background flow (or loads one), then, per
candidate, prints:

- the best validation loss (mean -log p over the same held-out 20%, nats/event; a
  difference between two rows is their difference in KL divergence from the generator);
- seconds per NLL and per NLL + gradient over pseudo-data of 10k signal at
  (3500, 500, 100) GeV plus 100k QCD (flows in float64, as in fits; background cached);
- a Minuit fit of the three masses with HESSE from the global search, as `flowscan scan`
  runs it: seconds, evaluations, and fitted minus true masses in GeV and in HESSE errors.

Run: `python benchmarks/lhco_architecture.py [--events 7500] [--epochs 15]
[--background-model runs/lhco-bkg/model.pt]` (about 20 minutes on 2 cores with a trained
background flow).
"""

from __future__ import annotations

import argparse
import time
import timeit

import torch

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import lhco
from flowscan.scanner import MixtureLikelihood, fit

NAMES = [v.name for v in lhco.OBSERVABLES]
TRUTH = (3500.0, 500.0, 100.0)
CANDIDATES = ["mog:0:64,64", "maf:4:64,64", "nsf:4:64,64"]


def _gradient(nll: MixtureLikelihood, theta: torch.Tensor) -> None:
    nll(theta.clone().requires_grad_()).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=7500, help="per training mass point")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--candidates", nargs="+", default=CANDIDATES, help="model:transforms:hidden"
    )
    parser.add_argument("--background-model", help="a trained QCD flow (default: train one)")
    args = parser.parse_args()

    x, theta = (torch.tensor(a) for a in lhco.training_set(args.events, seed=0))
    if args.background_model:
        background = DensityModel.load(args.background_model)
    else:
        background = DensityModel(lhco.OBSERVABLES, seed=1000)
        qcd = lhco.features(lhco.generate(200_000, seed=1000))[NAMES].to_numpy()
        train(background, torch.tensor(qcd), epochs=args.epochs, seed=1000, progress=False)
    data = lhco.features(lhco.pseudo_data(100_000, 10_000, TRUTH, seed=2000))[NAMES]
    data = torch.tensor(data.to_numpy())
    truth = torch.tensor(TRUTH, dtype=torch.float64)
    print(
        f"{len(x)} signal training events ({args.events} per mass point), {args.epochs} epochs; "
        f"fits of 10k signal at {TRUTH} GeV + 100k QCD; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'flow':<16}{'train s':>8}{'val loss':>10}{'NLL s':>7}{'grad s':>7}{'fit s':>7}"
        f"{'evals':>8}   fit - truth (GeV) [pulls]"
    )
    for spec in args.candidates:
        flow, transforms, hidden = spec.split(":")
        signal = DensityModel(
            lhco.OBSERVABLES,
            [Variable(v.name, v.unit) for v in lhco.MASSES],
            Architecture(
                flow=flow,
                transforms=int(transforms),
                hidden_features=[int(h) for h in hidden.split(",")],
            ),
        )
        t0 = time.perf_counter()
        history = train(signal, x, theta, epochs=args.epochs, progress=False)
        seconds = time.perf_counter() - t0
        nll = MixtureLikelihood(signal.double(), background.double(), data, 10_000, 100_000)
        # Best of 3 after a warm-up call, which also fills the background cache; the NLL
        # alone at a new theta each call, as the signal's log-densities at a repeated
        # constant theta are cached.
        with torch.no_grad():
            nll(truth)
            t_nll = min(
                timeit.timeit(lambda nll=nll, i=i: nll(truth + 1e-3 * i), number=1)
                for i in range(1, 4)
            )
        _gradient(nll, truth)
        t_grad = min(timeit.repeat(lambda nll=nll: _gradient(nll, truth), repeat=3, number=1))
        result = fit(nll)
        diff = result.theta - truth.numpy()
        pulls = diff / result.errors
        shifts = ", ".join(f"{d:+.1f} [{p:+.1f}]" for d, p in zip(diff, pulls, strict=True))
        print(
            f"{spec:<16}{seconds:>8.0f}{min(h['val_loss'] for h in history):>10.4f}"
            f"{t_nll:>7.2f}{t_grad:>7.2f}{result.seconds:>7.0f}"
            f"{f'{result.nll_evals}+{result.grad_evals}':>8}   {shifts}",
            flush=True,
        )
    print("evals: NLL + gradient evaluations of the fit (the search, MIGRAD and HESSE)")


if __name__ == "__main__":
    main()
