r"""Systematic uncertainties on the Breit-Wigner toy, with the exact likelihood as judge.

At the demo's yields (1k signal + 100k background events, truth m_pole = 455, gamma = 33,
tau = 170 GeV):

(a) a mass-scale nuisance m -> m (1 + alpha s), s ~ N(0, 1), on signal and background,
    for alpha = 0.5, 1 and 2%, applied to the events by its known map (`Scaled`): one
    signal and one background model trained at the nominal (s = 0) on a window wider
    by 3 alpha of the largest alpha on each side serve every alpha, and the pseudo-data
    (at s = 0) are fitted with the nuisance profiled through them and through the exact
    scaled densities. With tau free the data
    do not constrain s (a scaled exponential is another tau), so its pull stays 0 and
    it widens m_pole's error by about m_pole alpha: the table shows sqrt(total^2 -
    stat^2) beside m_pole alpha.
(b) tau as a Gaussian-constrained nuisance, 170 +- 5 GeV, instead of free (the 1%
    models at s = 0): the post-fit constraint sigma_hat / sigma.

Then, at alpha = 1%, pseudo-experiments with the global observable of s fluctuated
(`flowscan.stats.pseudo_experiments`): the coverage of m_pole's HESSE interval (the
parabolic profile interval: the nuisance floats) and the pull width, with the exact
densities (`--toys`) and with the models (`--model-toys`).

Run: `python benchmarks/bw_systematics.py [--train 200000] [--toys 300]
[--model-toys 100] [--jobs 2]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from flowscan import Constraint
from flowscan.flows import DensityModel, Scale, Scaled, train
from flowscan.parallel import dask_client
from flowscan.samples import MASS, BreitWigner, Exponential
from flowscan.scanner import FitSettings, MixtureLikelihood, fit
from flowscan.stats import pseudo_experiments

TRUTH = {"m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
N_SIG, N_BKG = 1_000, 100_000
SCALE = Constraint("mass_scale", "gaussian", 1.0)
TAU = Constraint("tau", "gaussian", 5.0, 170.0)


def _data(alpha: float, seed: int) -> torch.Tensor:
    signal, background = BreitWigner(alpha), Exponential(alpha)
    theta_s = [TRUTH["m_pole"], TRUTH["gamma"], *([0.0] if alpha else [])]
    theta_b = [TRUTH["tau"], *([0.0] if alpha else [])]
    return torch.cat(
        [
            signal.sample(N_SIG, torch.tensor(theta_s), seed=seed),
            background.sample(N_BKG, torch.tensor(theta_b), seed=seed + 1),
        ]
    )


def _fit(signal, background, x, constraints, fixed=()) -> object:
    nll = MixtureLikelihood(signal, background, x, N_SIG, N_BKG, constraints=constraints)
    held = {n: TRUTH.get(n, 0.0) for n in fixed}  # the others from the global search
    return nll, fit(nll, FitSettings(start=held, fixed=list(fixed)))


def _train(density, n: int, epochs: int, seed: int) -> DensityModel:
    x, theta = density.training_set(n, seed)
    model = DensityModel(density.observables, density.theta_vars, role=None, seed=seed)
    train(model, x, theta, epochs=epochs, seed=seed, progress=False)
    return model.for_fit()


def _wide(widest: float) -> tuple[float, float]:
    r"""The nominal window: the analysis window mapped back by every s in +-3 sigma of
    the largest alpha, rounded outwards to 0.1 GeV."""
    low, high = MASS.low / (1 + 3 * widest), MASS.high / (1 - 3 * widest)
    return np.floor(low * 10) / 10, np.ceil(high * 10) / 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_000, help="training events per model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--widths", default="0.005,0.01,0.02", help="alpha values")
    parser.add_argument("--toys", type=int, default=300, help="exact-density toys at 1%%")
    parser.add_argument("--model-toys", type=int, default=100, help="model toys at 1%%")
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the toys")
    args = parser.parse_args()
    t0 = time.perf_counter()
    widths = [float(w) for w in args.widths.split(",")]
    x0 = _data(0.0, seed=10)
    _, stat = _fit(BreitWigner(), Exponential(), x0, [])
    rows, models = [], {}
    t1 = time.perf_counter()
    wide = _wide(max(widths))
    nominal = (
        _train(BreitWigner(window=wide), args.train, args.epochs, seed=100),
        _train(Exponential(window=wide), args.train, args.epochs, seed=200),
    )
    print(f"nominal models on [{wide[0]}, {wide[1]}] GeV trained in "
          f"{time.perf_counter() - t1:.0f} s")  # fmt: skip
    for alpha in widths:
        scale = [Scale("mass_scale", alpha, ("m",))]
        signal, background = (Scaled(m, scale, window=[MASS]) for m in nominal)
        models[alpha] = (signal, background)
        x = _data(alpha, seed=10)  # the same events as x0: s = 0 scales nothing
        _, exact = _fit(BreitWigner(alpha), Exponential(alpha), x, [SCALE])
        _, model = _fit(signal, background, x, [SCALE])
        for j, name in enumerate(exact.names):
            rows.append(
                {
                    "alpha": alpha,
                    "parameter": name,
                    "exact": exact.theta[j],
                    "exact error": exact.errors[j],
                    "model": model.theta[j],
                    "model error": model.errors[j],
                    "(model - exact) / error": (model.theta[j] - exact.theta[j]) / exact.errors[j],
                    "model / exact error": model.errors[j] / exact.errors[j],
                    "valid": exact.valid and model.valid,
                }
            )
        widen = np.sqrt(max(exact.errors[0] ** 2 - stat.errors[0] ** 2, 0.0))
        print(
            f"alpha = {alpha:.1%}: m_pole error "
            f"stat only {stat.errors[0]:.2f} GeV, with the nuisance {exact.errors[0]:.2f} "
            f"(exact) and {model.errors[0]:.2f} (model): the nuisance adds "
            f"{widen:.2f} GeV in quadrature, m_pole alpha = {TRUTH['m_pole'] * alpha:.2f} GeV; "
            f"pull of s {SCALE.pull(exact.theta[2]):+.3f} (exact), "
            f"{SCALE.pull(model.theta[2]):+.3f} (model), constraint "
            f"{exact.errors[2]:.3f} / {model.errors[2]:.3f}"
        )
    table = pd.DataFrame(rows)
    print("\n(a) mass-scale nuisance, profiled: model fit against the exact fit")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    signal, background = models[0.01] if 0.01 in models else models[widths[0]]
    print("\n(b) tau constrained to 170 +- 5 GeV (mass_scale fixed at 0)")
    for label, (s, b) in {"exact": (BreitWigner(0.01), Exponential(0.01)),
                          "model": (signal, background)}.items():  # fmt: skip
        nll, fit = _fit(s, b, _data(0.01, seed=10), [TAU], fixed=["mass_scale"])
        k = nll.names.index("tau")
        print(
            f"  {label}: tau = {fit.theta[k]:.2f} +- {fit.errors[k]:.3f} GeV, pull "
            f"{TAU.pull(fit.theta[k]):+.3f}, constraint sigma_hat / sigma = "
            f"{fit.errors[k] / TAU.width:.4f}"
        )

    truth = {"n_sig": float(N_SIG), "n_bkg": float(N_BKG), **TRUTH, "mass_scale": 0.0}
    print("\ntoys at alpha = 1%, global observable of s fluctuated (HESSE intervals):")
    with dask_client(args.jobs) as client:
        for label, count, (s, b) in (
            ("exact", args.toys, (BreitWigner(0.01), Exponential(0.01))),
            ("model", args.model_toys, (signal, background)),
        ):
            if count == 0:
                continue
            t1 = time.perf_counter()
            toys = pseudo_experiments(
                s, b, truth, count, constraints=[SCALE], generator=(BreitWigner(0.01),
                Exponential(0.01)), seed=7, client=client, progress=False,
            )  # fmt: skip
            n = len(toys.valid)
            if n < 2:
                print(f"  {label}: {n} valid fits of {count}: no summary")
                continue
            summary = toys.summary()
            for name in ("m_pole", "mass_scale"):
                r = summary.loc[name]
                print(
                    f"  {label} ({n} valid of {count}, {time.perf_counter() - t1:.0f} s) {name}: "
                    f"coverage {r['hesse_coverage']:.3f} +- {r['hesse_coverage_error']:.3f} "
                    f"(target 0.683), pull width {r['pull_width']:.3f} +- "
                    f"{r['pull_width_error']:.3f}, mean {r['pull_mean']:+.3f} +- "
                    f"{r['pull_mean_error']:.3f}"
                )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
