r"""Where does the background models' shared bias in tau come from? Family, epochs or
training events, one at a time.

The calibration (`model_uncertainty.py`) and the demo find a bias of tau that every
member of an ensemble shares. Here single models of the toy background p(m | tau) are
trained, per variant and seed, on `training_set` (tau uniform over [100, 300] GeV, one
event per tau), and tau is fitted to background-only data of 1M events at five values
of tau (bounded 1D minimization, float64; `model_error_causes._fit_tau`), once with the
exact density. At 1M events the data's own noise (the exact fit's statistical error,
0.11-0.38 GeV) is small against the models' offsets: what is printed is each model's
(fit - exact fit) in units of that error, per tau. A bias that keeps its sign and size
across variants and seeds is neither capacity nor training length nor sample size.

Variants: the default mixture (20 Gaussians, 64 x 64, 20 epochs, 200k events); 60
epochs; 1M training events; the neural spline flow (`Architecture(flow="nsf")`).

Run: `python -u benchmarks/background_bias.py` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from model_error_causes import _fit_tau  # the causes benchmark's 1D fit

from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import Exponential, training_set

TAUS = (110.0, 140.0, 170.0, 220.0, 280.0)
VARIANTS = {
    "mixture, 20 epochs, 200k": (Architecture(), 20, 200_000),
    "mixture, 60 epochs, 200k": (Architecture(), 60, 200_000),
    "mixture, 20 epochs, 1M": (Architecture(), 20, 1_000_000),
    "spline flow, 20 epochs, 200k": (Architecture(flow="nsf"), 20, 200_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per variant")
    parser.add_argument("--events", type=int, default=1_000_000, help="data events per fit")
    args = parser.parse_args()
    torch.set_num_threads(2)
    exact = Exponential()
    data = {
        t: exact.sample(args.events, torch.tensor([t]), seed=777 + int(t)).double() for t in TAUS
    }
    reference = {t: _fit_tau(exact, data[t]) for t in TAUS}
    print("exact fits (GeV): " + ", ".join(
        f"tau {t:.0f}: {v[0]:.2f} +- {v[1]:.3f}" for t, v in reference.items()))  # fmt: skip
    rows = []
    for name, (architecture, epochs, n) in VARIANTS.items():
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            x, theta = training_set(exact, n, seed=1000 * seed)
            model = DensityModel(
                exact.observables, exact.theta_vars, architecture, role="background", seed=seed
            )
            train(model, x, theta, epochs=epochs, seed=seed, progress=False)
            model = model.for_fit()
            row = {"variant": name, "seed": seed}
            for t in TAUS:
                fitted, _ = _fit_tau(model, data[t])
                row[f"tau {t:.0f}"] = (fitted - reference[t][0]) / reference[t][1]
            rows.append(row)
            print(f"{name}, seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    print("\n(model fit - exact fit) / the exact fit's statistical error, "
          f"{args.events} events per fit:")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:+.1f}"))
    gev = {f"tau {t:.0f}": reference[t][1] for t in TAUS}
    offsets = table[list(gev)].mul(pd.Series(gev))
    print("\nmean over variants and seeds, GeV: " + ", ".join(
        f"{k}: {v:+.2f}" for k, v in offsets.mean().items()))  # fmt: skip


if __name__ == "__main__":
    main()
