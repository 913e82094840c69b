r"""Why was the model error too small for the background's tau? One experiment per cause,
on background-only fits of tau, where the first calibration (50k training events) found
the largest undercoverage (`model_uncertainty.py`) and a fit costs milliseconds.

For each training seed, `--members` models of the toy background p(m | tau) (the
demo's mixture, `--train` events each) are trained in each of four ways:

- `bootstrap`: `train_ensemble` as it is: one split into training and validation
  parts, each member on its own bootstrap replica of the training part, every member
  early-stopped on the same validation part;
- `own-split`: as `bootstrap`, but each member splits the sample its own way (cause 1:
  the common validation split);
- `independent`: each member on its own sample of `--train` events drawn afresh from
  the exact density, split its own way (cause 2: the bootstrap against the sampling
  variance it stands for; an ensemble that no analysis can afford, but the definition
  of what the spread should be);
- `capacity`: as `bootstrap` with a larger mixture (`--capacity`, 40 components and
  128 x 128 hidden units by default) (cause 3: the family's bias).

At `--points` values of tau (the box closure's sequence), background-only data of
`--n-bkg` events are drawn and tau fitted (bounded 1D minimization of the NLL, float64)
with the exact density (the judge, and its statistical error from the NLL's curvature)
and with each member. Per variant, with s the members' spread (standard deviation):

- s / stat, and, for `own-split` and `capacity`, s against `bootstrap`'s at the same
  point and seed;
- t = (ensemble mean - exact) / s, the model error's pull (Student t with K - 1
  degrees of freedom if calibrated: rms 1.13 at K = 10);
- for `independent` only, where the members are independent draws of the estimator:
  t_mean = (mean - exact) / (s / sqrt(K)), also Student t if the family has no
  bias shared by all members; its excess over that is the shared bias, b^2 =
  mean((mean - exact)^2) - mean(s^2) / K, printed in units of s.

Errors: bootstrap over seeds. Rows go to `<out>/causes.csv` after each seed (resumable).

Run: `python -u benchmarks/model_error_causes.py --out runs/causes` (5 seeds, K = 10,
200k events, 20 points; about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from model_uncertainty import box_points, by_seed, run_seeds  # the calibration benchmark's
from scipy import optimize, stats

from flowscan.flows import Architecture, DensityModel, train, train_ensemble
from flowscan.parallel import map_tasks
from flowscan.samples import Exponential, training_set

VARIANTS = ("bootstrap", "own-split", "independent", "capacity")
TAU = Exponential.theta_vars[0]


def _member(task: dict) -> dict:
    r"""One member of the `own-split` or `independent` variant: its own sample (drawn
    afresh, or the seed's common one) split its own way, trained; its record."""
    torch.set_num_threads(1)
    exact = Exponential()
    x, theta = training_set(exact, task["train"], seed=task["sample_seed"])
    rng = np.random.default_rng(task["seed"])
    if task["bootstrap"]:  # own split of the common sample, a replica of its training part
        order = rng.permutation(len(x))
        n_val = len(x) // 5
        val, trn = order[:n_val], order[n_val:]
        trn = trn[rng.integers(len(trn), size=len(trn))]
        validation = (x[val], theta[val])
        x, theta = x[trn], theta[trn]
    else:
        validation = None  # train's own split, from its seed
    model = DensityModel(exact.observables, exact.theta_vars, role="background", seed=task["seed"])
    train(model, x, theta, epochs=task["epochs"], seed=task["seed"], validation=validation,
          progress=False)  # fmt: skip
    return model.to_record()


def _members(variant: str, seed: int, args, client) -> list[DensityModel]:
    exact = Exponential()
    base = 1000 * seed
    if variant in ("bootstrap", "capacity"):
        x, theta = training_set(exact, args.train, seed=base)
        architecture = Architecture() if variant == "bootstrap" else args.capacity
        ensemble = train_ensemble(
            exact.observables, exact.theta_vars, x, theta, members=args.members,
            architecture=architecture, role="background", seed=base, epochs=args.epochs,
            client=client, progress=False,
        )  # fmt: skip
        return [m.for_fit() for m in ensemble.members]
    tasks = [
        {
            "train": args.train,
            "sample_seed": base if variant == "own-split" else base + 1 + k,
            "bootstrap": variant == "own-split",
            "seed": base + 100 + k,
            "epochs": args.epochs,
        }
        for k in range(args.members)
    ]
    records = map_tasks(_member, tasks, client, progress=False)
    return [DensityModel.from_record(r, f"member {k}").for_fit() for k, r in enumerate(records)]


def _fit_tau(density, x: torch.Tensor) -> tuple[float, float]:
    r"""The tau that minimizes -sum log p(x | tau) over the box, and the statistical
    error 1 / sqrt(NLL'') there (central second difference, step 0.05 GeV, at least a
    step inside the box)."""

    def nll(tau: float) -> float:
        theta = torch.full((1, 1), tau, dtype=torch.float64)
        with torch.no_grad():
            return -float(density.log_prob(x, theta).sum())

    best = optimize.minimize_scalar(
        nll, bounds=(TAU.low, TAU.high), method="bounded", options={"xatol": 1e-4}
    )
    h = 0.05
    c = min(max(best.x, TAU.low + h), TAU.high - h)  # inside the box
    curvature = (nll(c + h) - 2 * nll(c) + nll(c - h)) / h**2
    return float(best.x), 1 / math.sqrt(curvature) if curvature > 0 else math.nan


def _seed_rows(seed: int, args, client) -> list[dict]:
    exact = Exponential()
    rows = []
    for variant in args.variants:
        t0 = time.perf_counter()
        members = _members(variant, seed, args, client)
        trained = time.perf_counter() - t0
        for j, tau in enumerate(box_points(0, args.points)[:, 2]):
            x = exact.sample(args.n_bkg, torch.tensor([tau]), seed=50_000 + 100 * seed + j)
            x = x.double()
            tau_exact, stat = _fit_tau(exact, x)
            fitted = [_fit_tau(m, x)[0] for m in members]
            rows.append(
                {"seed": seed, "variant": variant, "point": j, "truth": tau,
                 "exact": tau_exact, "stat": stat}
                | {f"member {k}": v for k, v in enumerate(fitted)}
            )  # fmt: skip
        print(f"seed {seed} {variant}: trained in {trained:.0f} s, fitted in "
              f"{time.perf_counter() - t0 - trained:.0f} s", flush=True)  # fmt: skip
    return rows


def _shared_bias(diff: np.ndarray, spread: np.ndarray, k: int) -> float:
    r"""The rms bias b shared by independent members, in units of their rms spread:
    b^2 = mean(diff^2) - mean(spread^2) / k, with its sign (negative: no bias seen)."""
    b2 = np.mean(diff**2) - np.mean(spread**2) / k
    return math.copysign(math.sqrt(abs(b2)), b2) / float(np.sqrt(np.mean(spread**2)))


def report(table: pd.DataFrame) -> None:
    r"""The table of `causes.csv`, one row per variant."""
    rng = np.random.default_rng(0)
    columns = [c for c in table.columns if c.startswith("member ")]
    k = len(columns)
    rms_ref = math.sqrt((k - 1) / (k - 3))
    inside_ref = stats.t(k - 1).cdf(2) - stats.t(k - 1).cdf(-2)
    rms = lambda v: float(np.sqrt(np.mean(v**2)))  # noqa: E731
    base = table[table["variant"] == "bootstrap"].set_index(["seed", "point"])
    print(f"\n{table['seed'].nunique()} seeds x {table['point'].nunique()} points, K = {k}; "
          f"Student t({k - 1}): rms {rms_ref:.2f}, |t| <= 2 in {inside_ref:.2f}; errors: "
          "bootstrap over seeds")  # fmt: skip
    print(f"  {'variant':<12} {'s / stat':>8} {'s / bootstrap s':>15} {'rms t':>13} "
          f"{'|t| <= 2':>13} {'rms t_mean':>13} {'bias / s':>13}")  # fmt: skip
    for variant in VARIANTS:
        rows = table[table["variant"] == variant]
        if rows.empty:
            continue
        members = rows[columns].to_numpy()
        spread, mean = members.std(axis=1, ddof=1), members.mean(axis=1)
        diff, seeds = mean - rows["exact"].to_numpy(), rows["seed"].to_numpy()
        t = diff / spread
        r = by_seed(t, seeds, rms, rng)
        inside = by_seed(t, seeds, lambda v: float(np.mean(np.abs(v) <= 2)), rng)
        ratio = "-"
        if variant != "bootstrap" and not base.empty:
            other = base.loc[list(zip(rows["seed"], rows["point"], strict=True)), columns]
            q = by_seed(spread / other.to_numpy().std(axis=1, ddof=1), seeds, np.median, rng)
            ratio = f"{q[0]:.2f} +- {q[1]:.2f}"
        t_mean = bias = "-"
        if variant == "independent":
            tm = by_seed(t * math.sqrt(k), seeds, rms, rng)
            t_mean = f"{tm[0]:.2f} +- {tm[1]:.2f}"
            pairs = np.stack([diff, spread], axis=1)
            b = by_seed(pairs, seeds, lambda v: _shared_bias(v[:, 0], v[:, 1], k), rng)
            bias = f"{b[0]:+.2f} +- {b[1]:.2f}"
        print(f"  {variant:<12} {np.median(spread / rows['stat']):>8.2f} {ratio:>15} "
              f"{r[0]:>6.2f} +- {r[1]:<4.2f} {inside[0]:>6.2f} +- {inside[1]:<4.2f} "
              f"{t_mean:>13} {bias:>13}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds")
    parser.add_argument("--members", type=int, default=10, help="models per variant and seed")
    parser.add_argument("--train", type=int, default=200_000, help="training events per model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--points", type=int, default=20, help="values of tau")
    parser.add_argument("--n-bkg", type=int, default=10_000, help="events per dataset")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    parser.add_argument("--out", type=Path, default=Path("runs/causes"))
    parser.add_argument("--report", action="store_true", help="only print the table")
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    if not set(args.variants) <= set(VARIANTS) or args.members < 4:
        parser.error(f"--variants from {VARIANTS}, and --members at least 4")
    args.capacity = Architecture(components=40, hidden_features=(128, 128))
    path = args.out / "causes.csv"
    if not args.report:
        run_seeds(path, args, _seed_rows)
    report(pd.read_csv(path))


if __name__ == "__main__":
    main()
