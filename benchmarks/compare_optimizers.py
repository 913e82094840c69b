r"""Every optimizer on the same flow likelihoods: evaluations and seconds to the minimum.

Trains the toy flows at the demo's settings (or loads them from a `flowscan demo` output
folder), draws pseudo-datasets at the demo's truth (1k signal + 100k background, seeds
0, 1, ...), and runs each method of `flowscan scan` on each (`flowscan.scanner.fit`:
Minuit and the gradient scan from the global search, which their evaluations include).
Per method it prints the median number of NLL evaluations (a gradient counts as one, each
theta of a batch as one) and seconds until the best NLL so far first came within 0.1 of
the best any method found on that dataset, the fraction of datasets where it got there,
and the median distance of its final theta from the exact-density MLE, max over the
parameters in units of the exact fit's errors (the flows' own bias is the floor: see the
`minuit` and `gradient` rows). It also prints how many points a regular grid would need
to reach the same 0.1 precision everywhere in the box, from the exact fit's errors.

Seed 002's claim, as the target to show: gradient and Minuit reach the minimum with at
least 10x fewer evaluations than BO and 100x fewer than a grid.

Run: `python benchmarks/compare_optimizers.py [--models runs/demo-<...>] [--datasets 10]`
(about 5 minutes per dataset on 2 cores with the default budgets).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from flowscan.flows import DensityModel
from flowscan.samples import BreitWigner, Exponential, pseudo_data
from flowscan.scanner import (
    METHODS,
    FitSettings,
    MixtureLikelihood,
    ParameterSpace,
    covariance,
    fit,
)
from flowscan.studies import bump_hunt

TARGET = 0.1  # NLL units above the best found


def _reach(trace: np.ndarray, best: float) -> tuple[float, float]:
    r"""Evaluations and seconds when `trace` (rows: evaluations, seconds, best so far)
    first came within `TARGET` of `best`; NaN if never."""
    hit = np.flatnonzero(trace[:, 2] <= best + TARGET)
    return (trace[hit[0], 0], trace[hit[0], 1]) if len(hit) else (np.nan, np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="a `flowscan demo` output folder")
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--budget", type=int, default=128, help="bayesopt evaluations")
    parser.add_argument("--random", type=int, default=512, help="random-scan evaluations")
    parser.add_argument("--grid", type=int, default=11, help="grid points per parameter")
    args = parser.parse_args()
    config = bump_hunt.BumpHuntConfig()
    if args.models:
        signal = DensityModel.load(args.models / "signal.pt")
        background = DensityModel.load(args.models / "background.pt")
    else:
        signal, background, seconds = bump_hunt.train_flows(config, progress=False)
        train_s = [seconds[f"train_{k}"] for k in ("signal", "background")]
        print(f"trained flows in {train_s[0]:.0f} s + {train_s[1]:.0f} s")
    signal, background = signal.double().eval(), background.double().eval()
    truth = torch.tensor(list(config.truth.values()), dtype=torch.float64)
    budgets = {"bayesopt": args.budget, "random": args.random}

    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
    grid_needed = []
    for seed in range(args.datasets):
        x = pseudo_data(truth[:2], truth[2:], config.n_sig, config.n_bkg, seed=100 + seed)
        exact_nll = MixtureLikelihood(BreitWigner(), Exponential(), x, config.n_sig, config.n_bkg)
        space = ParameterSpace(exact_nll.theta_vars)
        exact = fit(exact_nll)
        sigma = np.sqrt(np.diag(covariance(exact_nll, exact.theta)))
        # A grid within TARGET of any point of the box needs spacing d with
        # sum_i (d_i / 2 sigma_i)^2 / 2 <= TARGET, i.e. d_i = 2 sigma_i sqrt(2 TARGET / P).
        spacing = 2 * sigma * np.sqrt(2 * TARGET / len(sigma))
        grid_needed.append(np.prod(np.ceil(np.diff(space.bounds).ravel() / spacing) + 1))

        nll = MixtureLikelihood(signal, background, x, config.n_sig, config.n_bkg)
        results = {}
        for method in METHODS:
            options = {"bayesopt": {"budget": args.budget}, "random": {"n": args.random},
                       "grid": {"points": args.grid}}  # fmt: skip
            settings = FitSettings(method, seed=seed, options={method: options.get(method, {})})
            results[method] = fit(nll, settings)
        best = min(r.nll for r in results.values())
        line = [f"dataset {seed}: best NLL {best:.2f}"]
        for method, r in results.items():
            evals, seconds = _reach(r.trace, best)
            distance = np.max(np.abs(r.theta - exact.theta) / sigma)
            rows[method].append((evals, seconds, distance))
            line.append(f"{method} {r.nll - best:+.3f} in {r.seconds:.0f} s")
        print("; ".join(line), flush=True)

    print(
        f"\n{args.datasets} pseudo-datasets of {config.n_sig} signal + {config.n_bkg} "
        f"background events at {dict(config.truth)} GeV; target: within {TARGET} of the best"
    )
    print(
        f"{'method':<10}{'budget':>8}{'evals to target':>17}{'seconds':>9}{'reached':>9}"
        f"{'|theta - exact MLE| / sigma':>29}"
    )
    for method, values in rows.items():
        values = np.array(values)
        reached = np.isfinite(values[:, 0])
        evals, seconds = (
            np.median(values[reached, :2], axis=0) if reached.any() else (np.nan, np.nan)
        )
        budget = {"grid": args.grid**3, **budgets}.get(method, "-")
        print(
            f"{method:<10}{budget!s:>8}{evals:>17.0f}{seconds:>9.1f}{reached.mean():>9.0%}"
            f"{np.median(values[:, 2]):>29.2f}"
        )
    print(f"a grid reaching the target everywhere needs ~{np.median(grid_needed):.2g} points")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
