r"""Is the model error calibrated over the whole box? Ensemble fits against the exact
likelihood on the toy.

For each training seed, trains a signal ensemble p(m | m_pole, gamma) and a background
ensemble p(m | tau) of `--members` members (`train_ensemble`, the demo's mixture, each
member on its own bootstrap replica of `--train` events, seed 002's 200k by default),
then at `--points` thetas of the box closure's sequence (`box_closure.py`: scrambled
Sobol over m_pole x gamma x tau, seed 2027; seed s takes the points 20 s to 20 s + 19,
so that ten seeds cover 200 points of the box) draws one pseudo-dataset of `--n-sig` +
`--n-bkg` events and fits it with the exact densities (`flowscan.scanner.fit` with its
defaults: the judge), then with the ensembles of the first 5 and of all members, and with
member 0 alone. To keep the cost of 10 seeds x 20 points in hours, the model fits start
at the exact fit's minimum (`"search": {"points": 0}`: Minuit from there): what is
measured is the distance between the two likelihoods' minima, not the global search,
which `box_closure.py` measures. For a calibrated model error the pull

    t = (ensemble fit - exact fit) / errors_model

follows a Student t with K - 1 degrees of freedom (rms sqrt((K-1)/(K-3)): 1.41 at K = 5,
1.13 at K = 10; |t| <= 2 in 88% and 92% of cases). Cases of one seed share their
models, so each summary's uncertainty is a bootstrap over seeds (not cases). Also
printed: the fraction of cases whose truth lies within 1 and 2 total errors of the
ensemble fit (the exact fit's HESSE error, as the ensemble fit's is not stored, and
the model error in quadrature; 68% and 95% for calibrated errors) beside the
exact fit's own (within 1 and 2 HESSE errors): the total error is judged against the
truth, as the model error is against the exact fit (the two fits share the data's
fluctuation). And the ensemble's and a single member's |fit - exact| in statistical
errors.

Rows go to `<out>/calibration.csv` after each seed; a rerun skips the seeds already
there, so a long run can be resumed, and `--report` prints the tables from the CSV.

Run: `python -u benchmarks/model_uncertainty.py --out runs/calibration` (10 seeds, K =
10, 200k training events per model, 1k + 10k data events: about 4 minutes per seed on 2
cores; `--n-bkg 100000`, the demo's yields, takes several times that).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.stats import qmc

from flowscan.flows import Architecture, DensityEnsemble, train_ensemble
from flowscan.parallel import dask_client
from flowscan.samples import BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import FitSettings, MixtureLikelihood, fit

NAMES = ("m_pole", "gamma", "tau")
THETA_VARS = [*BreitWigner.theta_vars, *Exponential.theta_vars]
BOX_SEED = 2027  # box_closure.py's points
PER_SEED = 20  # points per training seed, consecutive in the box closure's sequence


def box_points(seed: int, n: int) -> np.ndarray:
    r"""The points `(n, 3)` of training seed `seed`: the box closure's sequence from
    `PER_SEED * seed` on."""
    first = PER_SEED * seed
    bounds = np.array([[v.low, v.high] for v in THETA_VARS])
    sobol = qmc.Sobol(3, scramble=True, seed=BOX_SEED)
    unit = sobol.random_base2(math.ceil(math.log2(first + n)))[first : first + n]
    return bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])


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


def _fit(signal, background, x, args, start=None):
    nll = MixtureLikelihood(signal, background, x, check_models=False)  # extended
    if start is None:
        return fit(nll)
    settings = FitSettings(start=dict(zip(nll.names, start, strict=True)),
                           options={"search": {"points": 0}})  # fmt: skip
    return fit(nll, settings)


def _seed_rows(seed: int, args, client) -> list[dict]:
    t0 = time.perf_counter()
    signal, background = _ensembles(seed, args, client)
    trained = time.perf_counter() - t0
    sizes = sorted({min(5, args.members), args.members})
    rows = []
    for j, truth in enumerate(box_points(seed, args.points)):
        x = pseudo_data(torch.tensor(truth[:2]), torch.tensor(truth[2:]), args.n_sig,
                        args.n_bkg, seed=10_000 + 100 * seed + j)  # fmt: skip
        exact = _fit(BreitWigner(), Exponential(), x, args)
        single = _fit(signal.members[0], background.members[0], x, args, exact.theta)
        for k in sizes:
            ensembles = (DensityEnsemble(m.members[:k]) for m in (signal, background))
            result = _fit(*ensembles, x, args, exact.theta)
            row = {"seed": seed, "point": PER_SEED * seed + j, "K": k,
                   "exact status": exact.status, "status": result.status,
                   "member status": single.status}  # fmt: skip
            for p, name in enumerate(NAMES, start=2):  # after n_sig, n_bkg
                row |= {
                    f"{name} truth": truth[p - 2],
                    f"{name} exact": exact.theta[p],
                    f"{name} stat": exact.errors[p],
                    f"{name} ensemble": result.theta[p],
                    f"{name} model": result.errors_model[p],
                    f"{name} member": single.theta[p],
                }
            rows.append(row)
    print(f"seed {seed}: trained in {trained:.0f} s, {args.points} points fitted in "
          f"{time.perf_counter() - t0 - trained:.0f} s", flush=True)  # fmt: skip
    return rows


def by_seed(values: np.ndarray, seeds: np.ndarray, statistic, rng) -> tuple[float, float]:
    r"""`statistic(values)` and its bootstrap error over seeds (cases of a seed share
    their models)."""
    unique = np.unique(seeds)
    boot = [
        statistic(np.concatenate([values[seeds == s] for s in rng.choice(unique, len(unique))]))
        for _ in range(1000)
    ]
    return statistic(values), float(np.std(boot))


def report(table: pd.DataFrame) -> None:
    r"""The calibration tables from the rows of `calibration.csv`."""
    rng = np.random.default_rng(0)
    good = (table["status"] == "valid") & (table["exact status"] == "valid")
    seeds = table["seed"].nunique()
    print(f"\n{seeds} seeds, {table['point'].nunique()} points; {int((~good).sum())} of "
          f"{len(table)} cases left out (a fit not valid: at a bound, no model error)")  # fmt: skip
    print("t = (ensemble - exact) / model error; truth within 1 / 2 total (HESSE and model "
          "error in quadrature) of the ensemble fit, and within 1 / 2 HESSE errors of the "
          "exact fit; errors: bootstrap over seeds")  # fmt: skip
    head = (f"  {'K':>3} {'parameter':<8} {'cases':>5} {'rms t':>13} {'Student':>7} "
            f"{'|t| <= 2':>13} {'Student':>7} {'ens: 1 total':>13} {'2 total':>13} "
            f"{'exact: 1, 2':>11} {'model/stat':>10} {'|ens-exact|/stat':>16} "
            f"{'|one-exact|/stat':>16}")  # fmt: skip
    print(head)
    for k, rows in table[good].groupby("K"):
        student = stats.t(k - 1)
        rms_ref = np.sqrt((k - 1) / (k - 3)) if k > 3 else np.inf
        inside_ref = student.cdf(2) - student.cdf(-2)
        s = rows["seed"].to_numpy()
        for name in NAMES:
            diff = (rows[f"{name} ensemble"] - rows[f"{name} exact"]).to_numpy()
            model, stat = rows[f"{name} model"].to_numpy(), rows[f"{name} stat"].to_numpy()
            truth = rows[f"{name} truth"].to_numpy()
            t = diff / model
            d = np.abs(rows[f"{name} ensemble"].to_numpy() - truth) / np.hypot(stat, model)
            e = np.abs(rows[f"{name} exact"].to_numpy() - truth) / stat
            rms = by_seed(t, s, lambda v: np.sqrt(np.mean(v**2)), rng)
            inside = by_seed(t, s, lambda v: np.mean(np.abs(v) <= 2), rng)
            one = by_seed(d, s, lambda v: np.mean(v <= 1), rng)
            two = by_seed(d, s, lambda v: np.mean(v <= 2), rng)
            exact = f"{np.mean(e <= 1):.2f}, {np.mean(e <= 2):.2f}"
            member = np.abs(rows[f"{name} member"] - rows[f"{name} exact"]).to_numpy() / stat
            print(
                f"  {k:>3} {name:<8} {len(rows):>5} {rms[0]:>6.2f} +- {rms[1]:<4.2f} "
                f"{rms_ref:>7.2f} {inside[0]:>6.2f} +- {inside[1]:<4.2f} {inside_ref:>7.2f} "
                f"{one[0]:>6.2f} +- {one[1]:<4.2f} {two[0]:>6.2f} +- {two[1]:<4.2f} "
                f"{exact:>11} {np.median(model / stat):>10.2f} "
                f"{np.mean(np.abs(diff) / stat):>16.2f} {np.mean(member):>16.2f}"
            )
    for _, r in table[~good].iterrows():
        print(f"  left out: seed {r['seed']}, point {r['point']}, K = {r['K']}: ensemble "
              f"{r['status']}, exact {r['exact status']}")  # fmt: skip


def run_seeds(path: Path, args, seed_rows) -> None:
    r"""`seed_rows(seed, args, client)` for each of the `args.seeds` seeds not yet in
    the CSV `path`, its rows appended after each (a long run can be resumed); members on
    `args.jobs` Dask workers of one torch thread each."""
    torch.set_num_threads(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = set(pd.read_csv(path)["seed"]) if path.exists() else set()
    t0 = time.perf_counter()
    with dask_client(args.jobs) as client:
        for seed in range(args.seeds):
            if seed not in done:
                rows = seed_rows(seed, args, client)
                pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)
    print(f"total {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="training seeds")
    parser.add_argument("--members", type=int, default=10, help="members per ensemble")
    parser.add_argument("--train", type=int, default=200_000, help="training events per model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--points", type=int, default=PER_SEED, help="thetas per seed")
    parser.add_argument("--n-sig", type=int, default=1_000)
    parser.add_argument("--n-bkg", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    parser.add_argument("--out", type=Path, default=Path("runs/calibration"))
    parser.add_argument("--report", action="store_true", help="only print the tables")
    args = parser.parse_args()
    if not 1 <= args.points <= PER_SEED:
        parser.error(f"--points must be in 1..{PER_SEED} (the points of one seed)")
    path = args.out / "calibration.csv"
    if not args.report:
        run_seeds(path, args, _seed_rows)
    report(pd.read_csv(path))


if __name__ == "__main__":
    main()
