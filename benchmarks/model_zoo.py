r"""The model zoo: every density-model family trained with one budget, then validated and
used in a scan, on the Breit-Wigner toy and on LHCO-style dijets.

Families: `nsf`, `maf`, `realnvp`, `coupling-nsf` (with the logit preprocessing, a flow's
only one), `mog` (its default: Gaussians truncated at the window edges), `mog` on the
logit latent space and on seed 001's response-curve latent space. Every family gets the
same training events, epochs, batch size, learning rate and network widths (4 transforms
or 20 mixture components, 64x64 hidden layers, 8 spline bins).

Breit-Wigner toy (1 observable): the demo's signal p(m | m_pole, gamma) and background
p(m | tau) models on `--train-events` each. Printed per family: parameters, training
seconds, the held-out KL divergence mean(log p_exact - log p_model) (mnats/event), the
classifier AUC, sliced Wasserstein and mean KS p-value of 20k model events against 20k
exact ones (signal at m_pole = 455, gamma = 33 GeV; background at tau = 170 GeV); and the
scan bias: the extended fit of n_sig, n_bkg, m_pole, gamma, tau to a 1M-event sample of the
truth (400 signal : 10000 background) weighted down to 10.4k events, which removes the
statistical scatter, against the exact-density fit of the same sample and against the
truth, in units of the exact fit's standard deviation at 10.4k events.

LHCO-style (5 observables, conditional on m_Z', m_X, m_Y): the signal model trained on
seed 002's 80-point grid with `--lhco-events` per point. Printed: parameters, training
seconds, held-out mean log-likelihood, AUC, sliced Wasserstein and mean KS p-value at a
grid point (3500, 500, 100) and an off-grid point (3700, 600, 150) GeV, each against
20k generator events; and the scan bias of the three masses fitted to 50k signal events
at the off-grid point weighted down to 5k (signal-only likelihood), in units of the fit's
own standard deviation at 5k events.

Every metric with its noise floor is written to `<out>/metrics.csv`, the tables to
`<out>/tables.txt`, settings and versions to `<out>/zoo.json`.

Run: `python benchmarks/model_zoo.py` (about 15 minutes on 2 cores; `--workload bw` or
`lhco` for one half, `--families nsf,mog` for some).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowscan.flows import Architecture, DensityModel, train
from flowscan.io import versions, write_json
from flowscan.samples import BreitWigner, Exponential, lhco
from flowscan.scanner import MixtureLikelihood, ParameterSpace, covariance, gradient_scan
from flowscan.stats import pseudo_dataset, toy_seed
from flowscan.studies import bump_hunt
from flowscan.validation import validation_table

FAMILIES = ["nsf", "maf", "realnvp", "coupling-nsf", "mog", "mog+logit", "mog+response"]
BW_TRUTH = [400.0, 10_000.0, 455.0, 33.0, 170.0]  # n_sig, n_bkg, m_pole, gamma, tau
LHCO_POINTS = {"grid": (3500.0, 500.0, 100.0), "off-grid": (3700.0, 600.0, 150.0)}


def _family(name: str) -> Architecture:
    flow, _, pre = name.partition("+")
    return Architecture(flow, preprocessing=pre or None)  # None: the family's default


def _metrics(model, exact, theta, events: int, seed: int, tag: str) -> pd.DataFrame:
    theta = torch.tensor(theta, dtype=torch.float64)
    ref = exact.sample(events, theta, toy_seed(seed, 0))
    ref2 = exact.sample(events, theta, toy_seed(seed, 1))
    sample = model.sample(events, theta, seed=toy_seed(seed, 2))
    table = validation_table(model, sample, ref, ref2, theta, exact, seed)
    table.insert(0, "model", tag)
    return table


def _pick(table: pd.DataFrame, metric: str) -> float:
    return float(table.set_index("metric").loc[metric, "value"])


def _weighted_fit(signal, background, x: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    nll = MixtureLikelihood(signal, background, x, weights=weights)
    return np.asarray(gradient_scan(nll, ParameterSpace(nll.theta_vars, BW_TRUTH), tol=1e-7).theta)


def breit_wigner(families: list[str], args: argparse.Namespace) -> tuple[str, list[pd.DataFrame]]:
    m = args.bias_events
    x = pseudo_dataset(
        BreitWigner(),
        Exponential(),
        BW_TRUTH[0] * m / 1e4,
        BW_TRUTH[1] * m / 1e4,
        torch.tensor(BW_TRUTH[2:4]),
        torch.tensor(BW_TRUTH[4:]),
        args.seed,
    )
    w = torch.full((len(x),), 1e4 / m, dtype=torch.float64)
    exact = _weighted_fit(BreitWigner(), Exponential(), x, w)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, weights=w)
    sigma = np.sqrt(np.diag(covariance(nll, exact)))
    names = ["n_sig", "n_bkg", "m_pole", "gamma", "tau"]
    lines = [
        f"Breit-Wigner toy: {args.train_events} training events per model, {args.epochs} epochs",
        f"{'model':<14}{'params':>8}{'train s':>9}{'KL sig':>8}{'KL bkg':>8}{'AUC sig':>9}"
        f"{'AUC bkg':>9}{'SW sig':>8}{'SW bkg':>8}{'KS p sig':>9}{'KS p bkg':>9}  "
        + "  ".join(f"{n:>6}" for n in names)
        + "   (flow-exact)/sigma | (flow-truth)/sigma",
    ]
    tables = []
    for family in families:
        config = bump_hunt.BumpHuntConfig(
            n_train=args.train_events,
            epochs=args.epochs,
            seed=args.seed,
            architecture=_family(family),
        )
        signal, background, seconds = bump_hunt.train_flows(config, progress=False)
        sig = _metrics(signal, BreitWigner(), BW_TRUTH[2:4], args.events, args.seed, family)
        bkg = _metrics(background, Exponential(), BW_TRUTH[4:], args.events, args.seed, family)
        sig.insert(1, "density", "bw-signal")
        bkg.insert(1, "density", "bw-background")
        tables += [sig, bkg]
        fit = _weighted_fit(
            copy.deepcopy(signal).double(), copy.deepcopy(background).double(), x, w
        )
        params = sum(p.numel() for mod in (signal, background) for p in mod.parameters())
        cells = [_pick(t, k) for k in ("kl_divergence",) for t in (sig, bkg)]
        cells = [1e3 * c for c in cells]
        cells += [
            _pick(t, k)
            for k in ("classifier_auc", "sliced_wasserstein", "ks_pvalue_mean")
            for t in (sig, bkg)
        ]
        lines.append(
            f"{family:<14}{params:>8}{sum(seconds.values()):>9.0f}{cells[0]:>8.2f}{cells[1]:>8.2f}"
            f"{cells[2]:>9.4f}{cells[3]:>9.4f}{cells[4]:>8.4f}{cells[5]:>8.4f}{cells[6]:>9.3f}"
            f"{cells[7]:>9.3f}  "
            + "  ".join(f"{b:>6.2f}" for b in (fit - exact) / sigma)
            + " | "
            + "  ".join(f"{b:>6.2f}" for b in (fit - np.array(BW_TRUTH)) / sigma)
        )
        print(lines[-1], flush=True)
    lines.append(
        "exact fit - truth, in sigma: "
        + "  ".join(
            f"{n} {b:.2f}" for n, b in zip(names, (exact - np.array(BW_TRUTH)) / sigma, strict=True)
        )
        + f"; sigma at 10.4k events: {np.round(sigma, 2).tolist()}; KL in mnats/event"
    )
    return "\n".join(lines), tables


def _signal_nll(model: DensityModel, x: torch.Tensor, weights: torch.Tensor):
    def nll(theta: torch.Tensor) -> torch.Tensor:
        return -(weights * model.log_prob(x, theta)).sum()

    return nll


def lhco_signal(families: list[str], args: argparse.Namespace) -> tuple[str, list[pd.DataFrame]]:
    x, theta = lhco.training_set(args.lhco_events, seed=args.seed)
    x, theta = torch.tensor(x).float(), torch.tensor(theta).float()
    truth = torch.tensor(LHCO_POINTS["off-grid"], dtype=torch.float64)
    fit_x = lhco.Generator().sample(args.lhco_bias_events, truth, seed=toy_seed(args.seed, 9))
    fit_w = torch.full((len(fit_x),), 5_000 / len(fit_x), dtype=torch.float64)
    names = [v.name for v in lhco.MASSES]
    lines = [
        f"LHCO-style signal: {len(x)} training events (80 points), {args.lhco_epochs} epochs",
        f"{'model':<14}{'params':>8}{'train s':>9}"
        + "".join(
            f"{h + ' ' + p:>14}" for p in ("grid", "off") for h in ("LL", "AUC", "SW", "KS p")
        )
        + "  "
        + "  ".join(f"{n:>17}" for n in names)
        + "  fit - truth, GeV (in sigma)",
    ]
    tables = []
    for family in families:
        model = DensityModel(lhco.OBSERVABLES, lhco.MASSES, _family(family), seed=args.seed)
        t0 = time.perf_counter()
        train(model, x, theta, epochs=args.lhco_epochs, seed=args.seed, progress=False)
        seconds = time.perf_counter() - t0
        model.eval()
        cells = []
        for point, masses in LHCO_POINTS.items():
            t = _metrics(model, lhco.Generator(), masses, args.events, args.seed, family)
            t.insert(1, "density", f"lhco-signal {point}")
            tables.append(t)
            cells += [
                _pick(t, k)
                for k in (
                    "mean_log_likelihood",
                    "classifier_auc",
                    "sliced_wasserstein",
                    "ks_pvalue_mean",
                )
            ]
        nll = _signal_nll(copy.deepcopy(model).double(), fit_x, fit_w)
        fit = np.asarray(
            gradient_scan(nll, ParameterSpace(model.theta_vars, truth), tol=1e-6).theta
        )
        try:
            sigma = np.sqrt(np.diag(covariance(nll, fit)))
        except ValueError:  # a fit on a bound: no Hessian error
            sigma = np.full(len(fit), np.nan)
        params = sum(p.numel() for p in model.parameters())
        lines.append(
            f"{family:<14}{params:>8}{seconds:>9.0f}"
            + "".join(f"{c:>14.4g}" for c in cells)
            + "  "
            + "  ".join(
                f"{d:>+8.1f} ({d / e:+.2f})"
                for d, e in zip(fit - truth.numpy(), sigma, strict=True)
            )
        )
        print(lines[-1], flush=True)
    return "\n".join(lines), tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="bw,lhco", help="bw, lhco or both (default)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--train-events", type=int, default=200_000, help="toy, per model")
    parser.add_argument("--epochs", type=int, default=20, help="toy training epochs")
    parser.add_argument("--bias-events", type=int, default=1_000_000)
    parser.add_argument("--lhco-events", type=int, default=2_000, help="per grid point")
    parser.add_argument("--lhco-epochs", type=int, default=10)
    parser.add_argument("--lhco-bias-events", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=20_000, help="validation events per point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/zoo")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    families = args.families.split(",")
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {FAMILIES}")
    texts, tables = [], []
    for workload, run in (("bw", breit_wigner), ("lhco", lhco_signal)):
        if workload in args.workload.split(","):
            text, t = run(families, args)
            texts.append(text)
            tables += t
            print(text, flush=True)
    pd.concat(tables).to_csv(out / "metrics.csv", index=False)
    (out / "tables.txt").write_text("\n\n".join(texts) + "\n")
    write_json(out / "zoo.json", {"config": vars(args), "seed": args.seed, "versions": versions()})


if __name__ == "__main__":
    main()
