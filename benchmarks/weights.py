r"""Weighted events against the exact answer: training on a reweighted sample, with and
without negative weights, and the sandwich errors of a fit to weighted events.

1. **Training.** Conditional signal models of the toy's Breit-Wigner p(m | m_pole,
   gamma) (the demo's mixture, `--train` events, `--seeds` seeds each), on
   - `target`: events drawn at each event's theta (`training_set`, the reference);
   - `reweighted`: drawn at m_pole + gamma / 4 with width 1.5 gamma and weighted by the
     exact density ratio to (m_pole, gamma) (`flowscan.samples.reweighted`);
   - `20% negative`: as `reweighted`, with 20% of the events at weight -1 and as many
     extra at +1 (the weighted density is still the target's).
   Per model: the KL divergence of the target from the model, mean(log p_exact -
   log p_model) on 100k fresh events at each of 5 box points; and fits of the same
   pseudo-data (1000 signal + 10k background events at `--points` box points, the box
   closure's sequence; the model's signal with the exact background, extended, from
   the default start) against the exact densities' fit: (model - exact) / the exact
   fit's statistical error.
2. **The sandwich.** `--toys` pseudo-experiments of 500 Breit-Wigner events at (500,
   40) GeV plus 5000 background events reweighted from tau = 150 to 250 GeV, 20% of them
   at weight -1 (expected background yield 3000), fitted with the exact densities
   (extended): the pulls (fit - truth) / error with the sandwich's errors (what `fit`
   reports for weighted events) and with the weighted NLL's own HESSE errors.

Run: `python -u benchmarks/weights.py --out runs/weights` (about 20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from model_uncertainty import box_points  # the box closure's points

from flowscan.flows import DensityModel, train
from flowscan.samples import BreitWigner, Exponential, pseudo_data, reweighted, training_set
from flowscan.scanner import MixtureLikelihood, fit
from flowscan.weights import effective_events

VARIANTS = {"target": None, "reweighted": 0.0, "20% negative": 0.2}
SIGNAL = ["m_pole", "gamma"]


def _training(variant: str, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    r"""Events, theta and weights (`None`) of a variant's training set."""
    bw = BreitWigner()
    x, theta = training_set(bw, n, seed=seed)
    negative = VARIANTS[variant]
    if negative is None:
        return x, theta, None
    source = torch.stack([theta[:, 0] + theta[:, 1] / 4, 1.5 * theta[:, 1]], dim=1)
    x, w = reweighted(bw, theta, source, n, negative, seed=seed + 1)
    return x, theta, w


def _kl(model, points: np.ndarray) -> list[float]:
    bw, out = BreitWigner(), []
    for j, point in enumerate(points):
        theta = torch.tensor(point[:2])
        x = bw.sample(100_000, theta, seed=90_000 + j)
        with torch.no_grad():
            out.append(float((bw.log_prob(x, theta) - model.log_prob(x, theta)).mean()))
    return out


def _fits(model, points: np.ndarray) -> list[dict]:
    rows = []
    for j, point in enumerate(points):
        x = pseudo_data(torch.tensor(point[:2]), torch.tensor(point[2:]), 1000, 10_000,
                        seed=70_000 + j)  # fmt: skip
        exact = fit(MixtureLikelihood(BreitWigner(), Exponential(), x))
        learned = fit(MixtureLikelihood(model, Exponential(), x))
        row = {"point": j, "status": learned.status, "exact_status": exact.status}
        for name in SIGNAL:
            k = exact.names.index(name)
            row[name] = (learned.theta[k] - exact.theta[k]) / exact.errors[k]
        rows.append(row)
    return rows


def training(args, out: Path) -> None:
    points = box_points(0, args.points)
    kl_rows, fit_rows = [], []
    for variant in VARIANTS:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            x, theta, w = _training(variant, args.train, 1000 * seed)
            bw = BreitWigner()
            model = DensityModel(bw.observables, bw.theta_vars, role="signal", seed=seed)
            train(model, x, theta, epochs=args.epochs, seed=seed, progress=False, weights=w)
            model = model.for_fit()
            trained = time.perf_counter() - t0
            kl = _kl(model, points[:5])
            kl_rows.append({"variant": variant, "seed": seed,
                            "effective": effective_events(w, len(x)), "kl": np.mean(kl),
                            "kl_max": np.max(kl)})  # fmt: skip
            fit_rows += [r | {"variant": variant, "seed": seed} for r in _fits(model, points)]
            print(f"{variant}, seed {seed}: trained in {trained:.0f} s, fitted in "
                  f"{time.perf_counter() - t0 - trained:.0f} s", flush=True)  # fmt: skip
    kl, fits = pd.DataFrame(kl_rows), pd.DataFrame(fit_rows)
    kl.to_csv(out / "weights_kl.csv", index=False)
    fits.to_csv(out / "weights_fits.csv", index=False)
    valid = fits[(fits["status"] == "valid") & (fits["exact_status"] == "valid")]
    rms = lambda v: float(np.sqrt(np.mean(v**2)))  # noqa: E731
    table = []
    for variant in VARIANTS:
        k, f = kl[kl["variant"] == variant], valid[valid["variant"] == variant]
        table.append({"training set": variant, "effective events": k["effective"].mean(),
                      "KL (nats)": k["kl"].mean(), "worst KL": k["kl_max"].max(),
                      "valid fits": f"{len(f)}/{len(fits[fits['variant'] == variant])}"}
                     | {f"rms {n} / stat": rms(f[n]) for n in SIGNAL})  # fmt: skip
    print(f"\ntraining: {args.train} events, {args.seeds} seeds, {args.points} fit points")
    print(pd.DataFrame(table).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def sandwich(args, out: Path) -> None:
    bw, exp = BreitWigner(), Exponential()
    truth = np.array([500.0, 3000.0, 500.0, 40.0, 250.0])
    rows = []
    t0 = time.perf_counter()
    for toy in range(args.toys):
        signal = bw.sample(500, torch.tensor([500.0, 40.0]), seed=10_000 + toy)
        background, w = reweighted(exp, torch.tensor([250.0]), torch.tensor([150.0]), 5000,
                                   negative=0.2, seed=20_000 + toy)  # fmt: skip
        x = torch.cat([signal, background])
        weights = torch.cat([torch.ones(500, dtype=torch.float64), w])
        result = fit(MixtureLikelihood(bw, exp, x, weights=weights))
        if result.status != "valid":
            rows.append({"toy": toy, "status": result.status})
            continue
        row = {"toy": toy, "status": result.status}
        for k, name in enumerate(result.names):
            miss = result.theta[k] - truth[k]
            row[f"{name} sandwich"] = miss / result.errors[k]
            row[f"{name} hesse"] = miss / result.weighted["errors_hesse"][k]
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "weights_sandwich.csv", index=False)
    valid = table[table["status"] == "valid"]
    print(f"\nsandwich: {len(valid)}/{len(table)} valid toys in {time.perf_counter() - t0:.0f} s;"
          " pulls (fit - truth) / error")  # fmt: skip
    summary = []
    for name in ("n_sig", "n_bkg", "m_pole", "gamma", "tau"):
        for kind in ("sandwich", "hesse"):
            p = valid[f"{name} {kind}"].to_numpy()
            summary.append({"parameter": name, "errors": kind, "mean": p.mean(),
                            "rms": np.sqrt(np.mean(p**2)), "|pull| <= 1": np.mean(np.abs(p) <= 1),
                            "|pull| <= 2": np.mean(np.abs(p) <= 2)})  # fmt: skip
    print(pd.DataFrame(summary).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_000, help="training events per model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2, help="models per training set (0: skip)")
    parser.add_argument("--points", type=int, default=20, help="box points fitted per model")
    parser.add_argument("--toys", type=int, default=200, help="weighted toys (0: skip)")
    parser.add_argument("--out", default="runs/weights")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    if args.toys:
        sandwich(args, out)
    if args.seeds:
        training(args, out)


if __name__ == "__main__":
    main()
