r"""Calibration of flow-based fits and limits on the Breit-Wigner toy, against the same
fits with the exact densities.

Draws `--toys` pseudo-experiments from the exact densities (Poisson yields around
`--truth`), fits each with the extended likelihood of the flows and of the exact
densities (Minuit, HESSE; every parameter floating), and prints per parameter the pull
mean and width with their standard errors, the 68% coverage of fit +- HESSE error
(MINOS with `--minos`), and the mean shift of the flow fit from the exact fit of the same
toy in units of the exact fit's error: the models' own bias, free of the toys'
fluctuations. Then sets the asymptotic CLs upper limit on n_sig at the truth's
m_pole and gamma (tau and n_bkg profiled) on `--limit-datasets` background-only
datasets, with flows and with exact densities, and prints the median observed and
expected limits and the mean flow / exact ratio.

Targets (issue 5): flow pulls with mean 0 +- 0.1 and width 1 +- 0.1, coverage 0.68 +-
0.05, limits within 5% of the exact ones. Run: `python benchmarks/bw_coverage.py`
(trains the demo's flows on `--train-events` each, 4M by default, in 1.5 minutes, unless
`--signal` and `--background` name model files; then about 5 minutes on 2 cores, 20
more with `--minos`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from flowscan.flows import Architecture, DensityModel
from flowscan.parallel import dask_client, map_tasks
from flowscan.samples import BreitWigner, Exponential
from flowscan.scanner import Density, MixtureLikelihood, ParameterSpace
from flowscan.stats import pseudo_dataset, pseudo_experiments, toy_seed, upper_limit
from flowscan.studies import bump_hunt


@dataclass(frozen=True)
class Limit:
    r"""Asymptotic limits with two density pairs on one background-only dataset."""

    pairs: tuple[tuple[Density, Density], ...]
    truth: tuple[float, ...]  # n_sig, n_bkg, m_pole, gamma, tau
    seed: int

    def __call__(self, i: int) -> list[float]:
        t = torch.tensor(self.truth, dtype=torch.float64)
        x = pseudo_dataset(
            BreitWigner(), Exponential(), 0.0, t[1].item(), t[2:4], t[4:], toy_seed(self.seed, i)
        )
        out = []
        for signal, background in self.pairs:
            nll = MixtureLikelihood(signal, background, x)
            start = [0.0, float(len(x)), *self.truth[2:]]
            limit = upper_limit(nll, ParameterSpace(nll.theta_vars, start, ["m_pole", "gamma"]))
            out += [limit.observed, limit.expected[2]]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", help="signal model file (default: train the demo's)")
    parser.add_argument("--background", help="background model file")
    parser.add_argument(
        "--truth",
        default="n_sig=400,n_bkg=10000,m_pole=455,gamma=33,tau=170",
        help="true parameters (expected yields in events, masses in GeV)",
    )
    parser.add_argument(
        "--train-events", type=int, default=4_000_000, help="training events per flow"
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=4096, help="training batch size")
    parser.add_argument("--flow", default="mog", help="model family of the trained flows")
    parser.add_argument("--toys", type=int, default=200)
    parser.add_argument("--limit-datasets", type=int, default=20)
    parser.add_argument("--minos", action="store_true")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = {k: float(v) for k, v in (item.split("=") for item in args.truth.split(","))}

    if args.signal and args.background:
        signal, background = (DensityModel.load(p) for p in (args.signal, args.background))
    else:
        t0 = time.perf_counter()
        config = bump_hunt.BumpHuntConfig(
            n_train=args.train_events,
            epochs=args.epochs,
            batch_size=args.batch_size,
            architecture=Architecture(args.flow),
            seed=args.seed,
        )
        signal, background, _ = bump_hunt.train_flows(config, progress=False)
        print(
            f"trained the demo's flows on {args.train_events} events each in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    flows = (signal.double(), background.double())
    exact = (BreitWigner(), Exponential())

    with dask_client(args.jobs) as client:
        studies = {}
        for label, (s, b) in [("flows", flows), ("exact", exact)]:
            t0 = time.perf_counter()
            studies[label] = pseudo_experiments(
                s, b, truth, args.toys, generator=exact, minos=args.minos, seed=args.seed,
                client=client,
            )  # fmt: skip
            print(f"{label}: {args.toys} toys in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        limits = np.array(
            map_tasks(
                Limit((flows, exact), tuple(truth.values()), args.seed + 1),
                range(args.limit_datasets),
                client,
                desc="limits",
            )
        )
        print(f"limits on {args.limit_datasets} datasets in {time.perf_counter() - t0:.0f} s")

    print(f"\ntruth {truth}; {args.toys} toys drawn from the exact densities\n")
    print("| parameter | fit with | valid | pull mean | pull width | HESSE coverage "
          "| flows - exact (σ) |" + (" MINOS coverage |" if args.minos else ""))  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if args.minos else ""))
    summaries = {k: v.summary() for k, v in studies.items()}
    both = studies["flows"].valid.merge(studies["exact"].valid, on="toy", suffixes=("", "_exact"))
    for name in studies["flows"].floating:
        shift = ((both[name] - both[f"{name}_exact"]) / both[f"{name}_error_exact"]).to_numpy()
        for label, study in studies.items():
            r = summaries[label].loc[name]
            paired = (
                f"{shift.mean():+.3f} ± {shift.std(ddof=1) / np.sqrt(len(shift)):.3f}"
                if label == "flows"
                else ""
            )
            row = (
                f"| {name} | {label} | {len(study.valid)} | "
                f"{r.pull_mean:+.3f} ± {r.pull_mean_error:.3f} | "
                f"{r.pull_width:.3f} ± {r.pull_width_error:.3f} | "
                f"{r.hesse_coverage:.3f} ± {r.hesse_coverage_error:.3f} | {paired} |"
            )
            if args.minos:
                row += f" {r.minos_coverage:.3f} ± {r.minos_coverage_error:.3f} |"
            print(row)

    obs_f, exp_f, obs_e, exp_e = limits.T
    ratio = obs_f / obs_e
    spread = ratio.std(ddof=1) / np.sqrt(len(ratio))
    print(
        f"\n95% CL upper limits on n_sig at m_pole = {truth['m_pole']:g} GeV, gamma = "
        f"{truth['gamma']:g} GeV, on {len(limits)} background-only datasets "
        f"(n_bkg = {truth['n_bkg']:g}):\n"
    )
    print("| densities | median observed | median expected (median of datasets) |")
    print("| --- | --- | --- |")
    print(f"| flows | {np.median(obs_f):.1f} | {np.median(exp_f):.1f} |")
    print(f"| exact | {np.median(obs_e):.1f} | {np.median(exp_e):.1f} |")
    print(
        f"\nobserved flow / exact: mean {ratio.mean():.4f} ± "
        f"{spread:.4f}, range {ratio.min():.4f}-{ratio.max():.4f}; "
        f"expected: mean {(exp_f / exp_e).mean():.4f}"
    )


if __name__ == "__main__":
    main()
