r"""Is the model error calibrated? Ensemble fits against the exact likelihood on the toy.

For each training seed, trains a signal ensemble p(m | m_pole, gamma) and a background
ensemble p(m | tau) of `--members` members (`train_ensemble`, the demo's mixture, each
member on its own bootstrap replica of `--train` events), then at each of four thetas
that appear in no other benchmark draws one pseudo-dataset of `--n-sig` + `--n-bkg`
events and fits it (`flowscan.scanner.fit`: Minuit from the global search) three
times: with the exact densities (the judge), with the ensembles of the first 5 and of
all members (`model_errors` gives their model error), and with member 0 alone. For a
calibrated model error the pull

    t = (ensemble fit - exact fit) / errors_model

follows a Student t with K - 1 degrees of freedom (rms sqrt((K-1)/(K-3)): 1.41 at K = 5,
1.13 at K = 10; |t| <= 2 in 88% and 92% of cases). Cases of one seed share their
models, so the uncertainty of each summary is a bootstrap over seeds. Also printed: the
ensemble's and a single member's |fit - exact| in units of the statistical error.

Run: `python benchmarks/model_uncertainty.py` (defaults: 10 seeds, K = 10, 50k training
events per model, about 25 minutes on 2 cores; seed 002's 200k is `--train 200000`,
about 4x the training time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import stats

from flowscan.flows import Architecture, DensityEnsemble, train_ensemble
from flowscan.parallel import dask_client
from flowscan.samples import BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import MixtureLikelihood, fit

THETAS = ((420.0, 40.0, 150.0), (510.0, 50.0, 190.0), (380.0, 60.0, 230.0), (600.0, 45.0, 130.0))
NAMES = ("m_pole", "gamma", "tau")


def _ensembles(seed: int, args, client) -> tuple[DensityEnsemble, DensityEnsemble]:
    out = []
    for i, exact in enumerate((BreitWigner(), Exponential())):
        x, theta = training_set(exact, args.train, seed=1000 * seed + i)
        out.append(
            train_ensemble(
                exact.observables, exact.theta_vars, x, theta, members=args.members,
                architecture=Architecture(), role=("signal", "background")[i],
                seed=1000 * seed + 10 * i, epochs=args.epochs, client=client, progress=False,
            ).for_fit()
        )  # fmt: skip
    return out[0], out[1]


def _fit(signal, background, x, args):
    nll = MixtureLikelihood(signal, background, x, args.n_sig, args.n_bkg, check_models=False)
    return fit(nll)


def _summary(t: np.ndarray, seeds: np.ndarray, rng: np.random.Generator) -> tuple:
    r"""rms of t and the fraction with |t| <= 2, each with its bootstrap error over seeds."""

    def stat(sel):
        v = t[np.isin(seeds, sel)] if sel is not None else t
        return np.sqrt(np.mean(v**2)), np.mean(np.abs(v) <= 2)

    unique = np.unique(seeds)
    boot = np.array([stat(rng.choice(unique, len(unique))) for _ in range(1000)])
    return stat(None), boot.std(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="training seeds")
    parser.add_argument("--members", type=int, default=10, help="members per ensemble")
    parser.add_argument("--train", type=int, default=50_000, help="training events per model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-sig", type=int, default=1_000)
    parser.add_argument("--n-bkg", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = sorted({min(5, args.members), args.members})
    skipped = []  # cases where a fit is not valid (at a bound: no model error)
    rows = []  # seed, theta index, K, t (3,), |ens - exact| / stat (3,), |member - exact| / stat
    t0 = time.perf_counter()
    with dask_client(args.jobs) as client:
        for seed in range(args.seeds):
            signal, background = _ensembles(seed, args, client)
            for j, truth in enumerate(THETAS):
                x = pseudo_data(
                    torch.tensor(truth[:2]), torch.tensor(truth[2:]), args.n_sig, args.n_bkg,
                    seed=100 * seed + j,
                )  # fmt: skip
                exact = _fit(BreitWigner(), Exponential(), x, args)
                single = _fit(signal.members[0], background.members[0], x, args)
                for k in sizes:
                    fit = _fit(
                        DensityEnsemble(signal.members[:k]),
                        DensityEnsemble(background.members[:k]),
                        x, args,
                    )  # fmt: skip
                    if not (fit.valid and exact.valid and single.valid):
                        skipped.append((seed, j, k, fit.status, exact.status, single.status))
                        continue
                    rows.append(
                        (
                            seed, j, k, (fit.theta - exact.theta) / fit.errors_model,
                            np.abs(fit.theta - exact.theta) / exact.errors,
                            np.abs(single.theta - exact.theta) / exact.errors,
                            fit.errors_model / exact.errors,
                        )
                    )  # fmt: skip
            print(f"seed {seed} done after {time.perf_counter() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(0)
    print(
        f"\n{args.seeds} seeds x {len(THETAS)} thetas, {args.train} training events per "
        f"model, data {args.n_sig} + {args.n_bkg} events; t = (ensemble - exact) / "
        "errors_model; errors over seeds (bootstrap)"
    )
    print(
        f"  {'K':>3} {'parameter':<8} {'rms t':>13} {'Student':>8} {'|t| <= 2':>13} "
        f"{'Student':>8} {'model/stat':>11} {'|ens-exact|/stat':>17} {'|one-exact|/stat':>17}"
    )
    for k in sizes:
        sel = [r for r in rows if r[2] == k]
        seeds = np.array([r[0] for r in sel])
        student = stats.t(k - 1)
        rms_ref = np.sqrt((k - 1) / (k - 3)) if k > 3 else np.inf
        inside_ref = student.cdf(2) - student.cdf(-2)
        for p, name in enumerate(NAMES):
            t = np.array([r[3][p] for r in sel])
            (rms, inside), (d_rms, d_inside) = _summary(t, seeds, rng)
            ratio = np.mean([r[6][p] for r in sel])
            ens, one = np.mean([r[4][p] for r in sel]), np.mean([r[5][p] for r in sel])
            print(
                f"  {k:>3} {name:<8} {rms:>6.2f} +- {d_rms:<4.2f} {rms_ref:>8.2f} "
                f"{inside:>6.2f} +- {d_inside:<4.2f} {inside_ref:>8.2f} {ratio:>11.2f} "
                f"{ens:>17.2f} {one:>17.2f}"
            )
    for case in skipped:
        print("  left out, a fit not valid (seed, theta, K, ensemble, exact, member 0): ", case)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
