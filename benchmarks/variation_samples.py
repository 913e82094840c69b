r"""A nuisance given only as variation samples, against the exact profiled fit.

The toy's mass scale m -> m (1 + alpha s) at alpha = 1% on signal and background, as an
analysis gets a systematic: a nominal sample (s = 0) and an up and a down sample (s =
+-1) per process, each `--train` events with theta uniform over the toy's ranges. The
models are trained on the three samples at once, conditioned on s through the value each
sample stands for (`flowscan.io.read_variations`; `flowscan train --nuisance-values
mass_scale=0,1,-1`), and fits constrain s by N(0, 1) as for any nuisance of a model.

Pseudo-data at the demo's yields (1k signal + 100k background, truth m_pole = 455, gamma
= 33, tau = 170 GeV) with s at 0 and at +0.5 (between the samples), `--datasets` each,
are fitted with s profiled through the models and through the exact scaled densities
(`BreitWigner(0.01)`, `Exponential(0.01)`: the judge). Per parameter: the model fit's
miss from the exact fit in exact total errors (target: within 0.3) and the ratio of
their total errors (HESSE with s floating; target: within 10%).

Run: `python -u benchmarks/variation_samples.py` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from flowscan import Constraint, Variable
from flowscan.flows import DensityModel, train
from flowscan.io import read_events, read_variations
from flowscan.samples import BreitWigner, Exponential, training_set
from flowscan.scanner import MixtureLikelihood, fit

ALPHA = 0.01
TRUTH = {"m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
N_SIG, N_BKG = 1_000, 100_000
SCALE = Constraint("mass_scale", "gaussian", 1.0)
VALUES = (0.0, 1.0, -1.0)  # nominal, up, down


def _variations(exact, n: int, seed: int, out: Path) -> list[Path]:
    r"""The nominal, up and down samples of `n` events each, theta uniform over the
    toy's ranges, written as one Parquet file each (m and the parameters' columns)."""
    paths = []
    for k, s in enumerate(VALUES):
        _, theta = training_set(type(exact)(), n, seed=seed + k)  # uniform, without s
        full = torch.cat([theta, torch.full((n, 1), s, dtype=torch.float64)], dim=1)
        x = exact.sample(n, full, seed=seed + 10 + k)
        names = [v.name for v in type(exact).theta_vars]
        frame = pd.DataFrame(torch.cat([x, theta], dim=1).numpy(), columns=["m", *names])
        paths.append(out / f"{type(exact).__name__}_{seed}_{s:+g}.parquet")
        frame.to_parquet(paths[-1])
    return paths


def _model(exact, n: int, epochs: int, seed: int, out: Path) -> DensityModel:
    r"""A model trained on the three samples as `flowscan train --data nominal up down
    --nuisance-values mass_scale=0,1,-1` reads them (`read_variations`)."""
    paths = _variations(exact, n, 1000 * seed, out)
    names = [v.name for v in type(exact).theta_vars]
    x, s = read_variations(paths, ["m"], {"mass_scale": list(VALUES)})
    theta = torch.cat([read_events(paths, names), s], dim=1)
    # s's range is the samples' values, [-1, 1]: the model interpolates, never extrapolates
    context = [*type(exact).theta_vars, Variable("mass_scale", "sigma", -1.0, 1.0)]
    model = DensityModel(exact.observables, context, seed=seed, nuisances=[SCALE])
    train(model, x, theta, epochs=epochs, seed=seed, progress=False)
    return model.for_fit()


def _data(s: float, seed: int) -> torch.Tensor:
    signal, background = BreitWigner(ALPHA), Exponential(ALPHA)
    theta_s = torch.tensor([TRUTH["m_pole"], TRUTH["gamma"], s])
    theta_b = torch.tensor([TRUTH["tau"], s])
    return torch.cat(
        [signal.sample(N_SIG, theta_s, seed=seed), background.sample(N_BKG, theta_b, seed=seed + 1)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_000, help="events per sample")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds")
    parser.add_argument("--datasets", type=int, default=2, help="pseudo-datasets per s")
    parser.add_argument("--out", default="runs/variation_samples")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        signal = _model(BreitWigner(ALPHA), args.train, args.epochs, seed, out)
        background = _model(Exponential(ALPHA), args.train, args.epochs, seed, out)
        print(f"seed {seed}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
        for s in (0.0, 0.5):
            for d in range(args.datasets):
                x = _data(s, 50_000 + 100 * seed + 10 * d + int(10 * s))
                results = {}
                for name, pair in (("exact", (BreitWigner(ALPHA), Exponential(ALPHA))),
                                   ("models", (signal, background))):  # fmt: skip
                    nll = MixtureLikelihood(*pair, x, N_SIG, N_BKG, constraints=[SCALE])
                    results[name] = fit(nll)
                exact, model = results["exact"], results["models"]
                for k, name in enumerate(exact.names):
                    rows.append({"seed": seed, "s": s, "dataset": d, "parameter": name,
                                 "status": model.status, "exact_status": exact.status,
                                 "exact": exact.theta[k], "model": model.theta[k],
                                 "exact_error": exact.errors[k],
                                 "model_error": model.errors[k]})  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(out / "variation_samples.csv", index=False)
    table["miss / exact error"] = (table["model"] - table["exact"]) / table["exact_error"]
    table["error ratio"] = table["model_error"] / table["exact_error"]
    valid = table[(table["status"] == "valid") & (table["exact_status"] == "valid")]
    fits = ["seed", "s", "dataset"]
    print(f"\n{valid.groupby(fits).ngroups} of {table.groupby(fits).ngroups} fits valid on both")
    summary = valid.groupby(["s", "parameter"], sort=False).agg(
        fits=("model", "size"),
        exact=("exact", "mean"),
        model=("model", "mean"),
        miss_mean=("miss / exact error", "mean"),
        miss_worst=("miss / exact error", lambda v: v.abs().max()),
        ratio_mean=("error ratio", "mean"),
        ratio_min=("error ratio", "min"),
        ratio_max=("error ratio", "max"),
    )
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
