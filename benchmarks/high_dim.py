r"""Seed 002's high-dimensional claim, measured: scans over D = 2 to 19 signal parameters
of the resonance toy (`flowscan.samples.resonances`), each against the exact likelihood.

For each D, pseudo-datasets at the toy's default yields and truth (5k signal + 50k
background events, seeded), all fits from the box centre, the target "within 0.5 of
the best NLL found on the dataset" (any method, the exact fit from the truth included):

1. **exact likelihood, Minuit and the gradient scan** (`--datasets`, default 10): NLL +
   gradient evaluations and seconds to the target, the fraction of datasets that got
   there, and the distance of the result from the exact MLE (Minuit from the truth):
   the largest per-parameter |difference| / exact error and the Mahalanobis distance;
2. **several minima**: the gradient scan with 0, 15, 63 and 255 Sobol starts (the best 4
   descended): on how many datasets its final NLL is within 0.5 of the best;
3. **Bayesian optimization, random (Sobol) points and the grid**, exact likelihood, on
   the first `--bo-datasets` (3) datasets: BoTorch's `SingleTaskGP`, whose default
   lengthscale prior scales with the dimension (Hvarfner, Hellsten and Nardi 2024,
   "Vanilla Bayesian optimization performs great in high dimensions": BoTorch's
   high-dimensional recipe since 0.12), with qLogEI in batches of `--q` (16); Sobol
   points; the grid where `--grid-budget` points give at least 3 per axis. Where a
   method misses the target its best NLL gap is printed, and the evaluations it would
   need are extrapolated as 1 / f, f the fraction of the box inside the exact fit's
   Delta NLL < 0.5 ellipsoid (the expected number of uniform points until one falls
   inside; a grid needs about as many);
4. **the learned likelihood** (`--train` events per D, `--members` per ensemble, one
   event per uniformly drawn theta, as in seed 002): Minuit and the gradient scan, both
   from one global search (`fit_methods`), on the first `--model-datasets` datasets,
   their distance from the exact MLE in exact errors, and the model error.
   `--skip-exact` runs this part alone (the exact MLE and its errors still fitted),
   `--yields` scales the yields of every dataset.

Prints one table per part and writes `high_dim.png` (evaluations to the target against D,
log scale) and `high_dim.json` beside it (`--out`).

Run: `python benchmarks/high_dim.py [--dims 2,4,8,12,19] [--datasets 10] [--train
1000000] [--skip-models | --skip-exact]`; docs/high_dim.md gives the commands of its
tables.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowscan import __version__
from flowscan.flows import train_ensemble
from flowscan.parallel import dask_client
from flowscan.samples import pseudo_data
from flowscan.samples.resonances import DIMS, N_BKG, N_SIG, FallingSpectra, Resonances, truth
from flowscan.scanner import (
    FitSettings,
    MixtureLikelihood,
    ParameterSpace,
    bayesopt_scan,
    covariance,
    fit,
    fit_methods,
    gradient_scan,
    grid_scan,
    minuit_scan,
    random_scan,
)

TARGET = 0.5  # NLL units above the best found
STARTS = (0, 15, 63, 255)


def _reach(trace: np.ndarray, best: float) -> tuple[float, float]:
    r"""Evaluations and seconds when `trace` (rows: evaluations, seconds, best so far)
    first came within `TARGET` of `best`; NaN if never."""
    hit = np.flatnonzero(trace[:, 2] <= best + TARGET)
    return (float(trace[hit[0], 0]), float(trace[hit[0], 1])) if len(hit) else (np.nan, np.nan)


def _box_fraction(cov: np.ndarray, bounds: np.ndarray) -> float:
    r"""The fraction of the box inside {2 Delta NLL = d^T C^-1 d < 1}: the volume of
    the ellipsoid, pi^(P/2) / Gamma(P/2 + 1) sqrt(det C), over the box's."""
    p = len(cov)
    log_ball = p / 2 * math.log(math.pi) - math.lgamma(p / 2 + 1)
    log_volume = log_ball + 0.5 * np.linalg.slogdet(cov)[1]
    return math.exp(log_volume - np.log(np.diff(bounds).ravel()).sum())


def _distance(theta: np.ndarray, mle: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    delta = theta - mle
    worst = float(np.max(np.abs(delta) / np.sqrt(np.diag(cov))))
    return worst, float(np.sqrt(delta @ np.linalg.solve(cov, delta)))


def _datasets(dim: int, count: int, n_sig: int, n_bkg: int) -> list[torch.Tensor]:
    t = torch.tensor(truth(dim))
    densities = (Resonances(dim), FallingSpectra())
    return [
        pseudo_data(t[:dim], t[dim:], n_sig, n_bkg, seed=1000 * dim + i, densities=densities)
        for i in range(count)
    ]


def _row(dim: int, dataset: int, method: str, result, best: float, mle, cov) -> dict:
    evals, seconds = _reach(result.trace, best)
    worst, mahalanobis = _distance(result.theta, mle, cov)
    return {
        "D": dim,
        "dataset": dataset,
        "method": method,
        "evaluations": evals,
        "seconds": seconds,
        "reached": bool(np.isfinite(evals)),
        "gap": result.nll - best,
        "budget": result.nll_evals + result.grad_evals,
        "max |d| / sigma": worst,
        "mahalanobis": mahalanobis,
        "status": result.status,
    }


def _summary(rows: pd.DataFrame) -> pd.DataFrame:
    def one(group: pd.DataFrame) -> pd.Series:
        hit = group[group["reached"]]
        return pd.Series(
            {
                "datasets": len(group),
                "reached": group["reached"].mean(),
                "evaluations (median)": hit["evaluations"].median(),
                "seconds (median)": hit["seconds"].median(),
                "evaluations spent": group["budget"].median(),
                "best gap (median)": group["gap"].median(),
                "max |d| / sigma (median)": group["max |d| / sigma"].median(),
                "mahalanobis (median)": group["mahalanobis"].median(),
                "1/f (extrapolated need)": group["1/f"].median(),
            }
        )

    return rows.groupby(["D", "method"], sort=False).apply(one, include_groups=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", default=",".join(map(str, DIMS)))
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--bo-datasets", type=int, default=3)
    parser.add_argument("--bo-budget", type=int, default=500)
    parser.add_argument("--q", type=int, default=16, help="BO batch size")
    parser.add_argument("--random", type=int, default=20_000, help="Sobol points")
    parser.add_argument("--grid-budget", type=int, default=20_000, help="most grid points")
    parser.add_argument("--train", type=int, default=1_000_000, help="signal training events")
    parser.add_argument("--background", type=int, default=200_000, help="background events")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    parser.add_argument("--skip-models", action="store_true", help="exact likelihood only")
    parser.add_argument("--skip-exact", action="store_true", help="the learned likelihood only")
    parser.add_argument("--model-datasets", type=int, default=10, help="datasets for part 4")
    parser.add_argument("--yields", type=float, default=1.0, help="yields / the toy's defaults")
    parser.add_argument("--out", type=Path, default=Path("runs/high_dim"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dims = [int(d) for d in args.dims.split(",")]
    exact_rows, start_rows, model_rows, scales = [], [], [], []
    background_model = None
    for dim in dims:
        signal, background = Resonances(dim), FallingSpectra()
        count = args.model_datasets if args.skip_exact else args.datasets
        n_sig, n_bkg = round(args.yields * N_SIG), round(args.yields * N_BKG)
        datasets = _datasets(dim, count, n_sig, n_bkg)
        refs = []
        for i, x in enumerate(datasets):
            nll = MixtureLikelihood(signal, background, x, n_sig, n_bkg)
            space = ParameterSpace(nll.theta_vars)
            ref = fit(nll)  # the global search, then Minuit: the reference minimum
            cov = covariance(nll, ref.theta)
            errors = np.sqrt(np.diag(cov))[:dim]
            f_inv = 1 / _box_fraction(cov, space.bounds)
            scales.append({"D": dim, "dataset": i, "sigma min": errors.min(),
                           "sigma max": errors.max(), "1/f": f_inv})  # fmt: skip
            refs.append((ref, cov))
            if args.skip_exact:
                continue
            fits = {"minuit": minuit_scan(nll, space)}
            multi = {s: gradient_scan(nll, space, starts=s) for s in STARTS}
            fits["gradient"] = multi[15]
            if i < args.bo_datasets:
                fits["bayesopt"] = bayesopt_scan(nll, space, args.bo_budget, q=args.q, seed=i)
                fits["random"] = random_scan(nll, space, args.random, seed=i, batch=256)
                per_axis = int(args.grid_budget ** (1 / len(space.floating_names)))
                if per_axis >= 3:
                    fits["grid"] = grid_scan(nll, space, per_axis, batch=256)
            best = min(f.nll for f in [ref, *fits.values(), *multi.values()])
            for method, result in fits.items():
                row = _row(dim, i, method, result, best, ref.theta, cov)
                exact_rows.append(row | {"1/f": f_inv})
            for starts, result in multi.items():
                start_rows.append(_row(dim, i, f"{starts} starts", result, best, ref.theta, cov))
            print(
                f"D = {dim}, dataset {i}: best NLL {best:.2f}; "
                + ", ".join(f"{m} {f.nll - best:+.2f}" for m, f in fits.items())
                + f" ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )

        if args.skip_models:
            continue
        t1 = time.perf_counter()
        options = {"members": args.members, "epochs": args.epochs, "progress": False}
        with dask_client(args.jobs) as client:
            x, theta = signal.training_set(args.train, seed=dim)
            sig = train_ensemble(signal.observables, signal.theta_vars, x, theta,
                                 role="signal", seed=dim, client=client, **options)  # fmt: skip
            if background_model is None:
                x, theta = background.training_set(args.background, seed=7)
                background_model = train_ensemble(
                    background.observables, background.theta_vars, x, theta,
                    role="background", seed=7, client=client, **options,
                ).for_fit()  # fmt: skip
        sig = sig.for_fit()
        trained = time.perf_counter() - t1
        pairs = list(zip(datasets, refs, strict=True))[: args.model_datasets]
        for i, (x, (ref, cov)) in enumerate(pairs):
            nll = MixtureLikelihood(sig, background_model, x, n_sig, n_bkg)
            space = ParameterSpace(nll.theta_vars)
            # one global search for both methods (its seconds counted in each)
            fits = fit_methods(nll, FitSettings(), ("minuit", "gradient"))
            best = min(f.nll for f in fits.values())
            for method, result in fits.items():
                row = _row(dim, i, f"model {method}", result, best, ref.theta, cov)
                if result.status != "failed" and method == "minuit":
                    # parameters at a bound have no model error (NaN): the rest are judged
                    exact_err = np.sqrt(np.diag(cov))[:dim]
                    model_err = result.errors_model[:dim]
                    row["model / exact error (median)"] = float(np.nanmedian(model_err / exact_err))
                    delta = np.abs(result.theta - ref.theta)[:dim]
                    row["max |d| / total"] = float(
                        np.nanmax(delta / np.hypot(exact_err, model_err))
                    )
                    row["at bound"] = ",".join(result.at_bound)
                    row |= {
                        "theta": result.theta.tolist(),
                        "exact mle": ref.theta.tolist(),
                        "exact errors": exact_err.tolist(),
                        "model errors": model_err.tolist(),
                    }
                row["train events"], row["train s"] = args.train, trained
                model_rows.append(row)
                keys = (
                    "method",
                    "reached",
                    "max |d| / sigma",
                    "max |d| / total",
                    "status",
                    "at bound",
                )
                print(f"D = {dim}, dataset {i}, model fit: "
                      + ", ".join(f"{k} {row.get(k, '')}" for k in keys)
                      + f", model / exact error {row.get('model / exact error (median)', '')}"
                      + f", {result.seconds:.0f} s", flush=True)  # fmt: skip
        print(
            f"D = {dim}: models trained in {trained:.0f} s, fitted "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        # the rows so far, so a long run that is stopped still leaves its results
        _write(args, pd.DataFrame(exact_rows), pd.DataFrame(start_rows), model_rows,
               pd.DataFrame(scales))  # fmt: skip

    scales, exact = pd.DataFrame(scales), pd.DataFrame(exact_rows)
    starts = pd.DataFrame(start_rows)
    fmt = {"float_format": lambda v: f"{v:.3g}"}
    print("\nexact fit errors (min, max over theta) and the box fraction inside Delta NLL < 0.5:")
    print(scales.groupby("D")[["sigma min", "sigma max", "1/f"]].median().to_string(**fmt))
    if exact_rows:
        print(f"\n1, 3. exact likelihood, evaluations to within {TARGET} of the best NLL:")
        print(_summary(exact).to_string(**fmt))
        print("\n2. gradient multi-start: datasets reaching the global minimum (within 0.5)")
        table = starts.pivot_table(index="D", columns="method", values="reached", aggfunc="sum")
        print(table[[f"{s} starts" for s in STARTS]].to_string())
        _plot(exact, args.out / "high_dim.png")
    if model_rows:
        models = pd.DataFrame(model_rows)
        print(f"\n4. learned likelihood ({args.members}-member ensembles):")
        columns = [
            "evaluations", "seconds", "reached", "max |d| / sigma", "mahalanobis",
            "model / exact error (median)", "max |d| / total", "train events", "train s",
        ]  # fmt: skip
        print(models.groupby(["D", "method"], sort=False)[columns].median().to_string(**fmt))
    _write(args, exact, starts, model_rows, scales)
    print(
        f"wrote {args.out / 'high_dim.png'} and high_dim.json; "
        f"total {time.perf_counter() - t0:.0f} s"
    )


def _write(args, exact: pd.DataFrame, starts: pd.DataFrame, models: list, scales) -> None:
    record = {
        "config": vars(args) | {"out": str(args.out)},
        "versions": {
            "flowscan": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "exact": exact.to_dict("records"),
        "starts": starts.to_dict("records"),
        "models": models,
        "scales": scales.to_dict("records"),
    }
    (args.out / "high_dim.json").write_text(json.dumps(record, indent=1, default=float))


def _plot(exact: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, group in exact.groupby("method", sort=False):
        hit = group[group["reached"]].groupby("D")["evaluations"].median()
        if len(hit):
            ax.plot(hit.index, hit.values, "o-", label=f"{method} (measured)")
        missed = group[~group["reached"]].groupby("D")["1/f"].median().dropna()
        if len(missed):
            ax.plot(missed.index, missed.values, "x--", label=f"{method} (extrapolated 1/f)")
    ax.set(xlabel="signal parameters D", ylabel=f"evaluations to within {TARGET} of the best NLL",
           yscale="log", title="resonance toy, exact likelihood")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
