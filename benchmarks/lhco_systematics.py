r"""Jet energy and jet mass scale nuisances on the LHCO dijets (fast generator).

Trains nominal signal and QCD ensembles (no nuisances) and applies the jet energy
scale (JES: every jet four-momentum scaled by 1 + 0.01 s_JES, so m_jj, m_j1 and
delta_m) and the jet mass scale (JMS: jet masses by 1 + 0.01 s_JMS further, so m_j1 and
delta_m) to the events by their known map (`flowscan.flows.Scaled`, with the
Jacobian; the supports start at 0, which a scale maps onto itself): both scales on the
signal, the JMS alone on QCD (the fast generator's QCD is scale-free, a pT^-8 power law
with jet masses in units of pT: a JES followed by the trigger leaves its shapes as they
are, `flowscan.samples.SCALE_MAPS`). The map leaves out the JMS's effect on m_jj (jet masses enter
the dijet energy: 2-4% of a JES's). Then:

1. the nominal pseudo-data (10k signal at m_Z', m_X, m_Y = 3500, 500, 100 GeV + 100k
   QCD, seed 002's yields) fitted by the scaled ensembles with both nuisances
   profiled under N(0, 1) constraints: the masses, their statistical errors (the
   nuisances fixed at their fitted values), total errors (profiled), model errors, and
   the pulls and impacts table (`flowscan.stats.pulls_and_impacts`), with the model
   error as a row of its own;
2. pseudo-data generated with both jet scales shifted by +1 sigma (the generator
   scales the jets before the trigger), fitted by the nominal ensembles, by the scaled
   ensembles with the nuisances fixed at 0, and with the nuisances profiled: each
   mass's miss in units of that fit's error (statistical for the first two, total for
   the last).

Run: `python benchmarks/lhco_systematics.py [--events 15000] [--members 3] [--jobs 2]`
(events per training mass point).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from flowscan.flows import Architecture, Scale, Scaled, train_ensemble
from flowscan.parallel import dask_client
from flowscan.samples import lhco
from flowscan.scanner import FitSettings, MixtureLikelihood, fit
from flowscan.stats import pulls_and_impacts

TRUTH = (3500.0, 500.0, 100.0)
MASS_NAMES = [v.name for v in lhco.MASSES]
WIDTH = 0.01  # relative 1-sigma of both jet scales
JES = Scale("jes", WIDTH, ("m_jj", "m_j1", "delta_m"))
JMS = Scale("jms", WIDTH, ("m_j1", "delta_m"))
NUISANCES = [JES.constraint, JMS.constraint]


def _data(n_sig: int, n_bkg: int, shift: float, seed: int) -> torch.Tensor:
    r"""Signal at `TRUTH` and QCD with both jet scales at `shift` sigma, `(N, 5)` GeV."""
    s = [shift, shift]
    signal = lhco.Generator("signal", WIDTH, WIDTH).sample(n_sig, torch.tensor([*TRUTH, *s]), seed)
    qcd = lhco.Generator("qcd", WIDTH, WIDTH).sample(n_bkg, torch.tensor(s), seed + 1)
    return torch.cat([signal, qcd])


def _fit(signal, background, x, n_sig, n_bkg, fixed=(), at=None):
    r"""`fit` (Minuit from the global search) with the model error, the nuisances started
    at 0 or at `at`'s values, where `fixed` ones stay; and its likelihood and space."""
    constraints = NUISANCES if "jes" in [v.name for v in signal.theta_vars] else []
    nll = MixtureLikelihood(signal, background, x, n_sig, n_bkg, constraints=constraints)
    start = {c.name: 0.0 for c in constraints} | (at or {})
    settings = FitSettings(start=start, fixed=list(fixed))
    return nll, settings.space(nll), fit(nll, settings)


def _masses(fit, label: str, error: str) -> list[dict]:
    r"""One row per mass: the fit, its `error` (HESSE: "stat" with the nuisances fixed,
    "total" with them profiled), the model error and the miss from the truth in units of
    the error and of the error and model error in quadrature."""
    rows = []
    for j, name in enumerate(MASS_NAMES):
        miss = fit.theta[j] - TRUTH[j]
        rows.append(
            {
                "fit": label,
                "parameter": name,
                "value": fit.theta[j],
                "error": error,
                "sigma": fit.errors[j],
                "model": fit.errors_model[j],
                "miss / sigma": miss / fit.errors[j],
                "miss / (sigma + model)": miss / np.hypot(fit.errors[j], fit.errors_model[j]),
                "status": fit.status,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=15_000, help="per training mass point")
    parser.add_argument("--background", type=int, default=400_000, help="QCD training events")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--members", type=int, default=3, help="members per ensemble")
    parser.add_argument("--jobs", type=int, default=2, help="Dask workers for the members")
    parser.add_argument("--n-sig", type=int, default=10_000, help="signal events per fit")
    parser.add_argument("--n-bkg", type=int, default=100_000, help="QCD events per fit")
    args = parser.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    options = {"members": args.members, "epochs": args.epochs, "progress": False}
    with dask_client(args.jobs) as client:
        signal = lhco.Generator("signal")
        x, theta = signal.training_set(args.events, seed=0)
        sig = train_ensemble(
            lhco.OBSERVABLES, signal.theta_vars, x, theta, role="signal", seed=0,
            architecture=Architecture("mog"), client=client, **options,
        )  # fmt: skip
        qcd = lhco.Generator("qcd")
        x, theta = qcd.training_set(args.background, seed=1000)
        bkg = train_ensemble(
            lhco.OBSERVABLES, qcd.theta_vars, x, theta, role="background", seed=1000,
            client=client, **options,
        )  # fmt: skip
    models = {"nominal": (sig.for_fit(), bkg.for_fit())}
    # the fast generator's QCD is scale-free: a JES leaves its shapes as they are
    models["scaled"] = (
        Scaled(models["nominal"][0], [JES, JMS]),
        Scaled(models["nominal"][1], [JMS]),
    )
    print(f"trained the nominal ensembles: {time.perf_counter() - t0:.0f} s")

    n_sig, n_bkg = args.n_sig, args.n_bkg
    x = _data(n_sig, n_bkg, 0.0, seed=2000)
    nll, space, total = _fit(*models["scaled"], x, n_sig, n_bkg)
    fitted = {n: total.theta[nll.names.index(n)] for n in ("jes", "jms")}
    _, _, stat = _fit(*models["scaled"], x, n_sig, n_bkg, fixed=list(fitted), at=fitted)
    rows = _masses(stat, "nuisances fixed at their fit", "stat") + _masses(
        total, "profiled", "total"
    )
    print(
        f"\n1. nominal pseudo-data ({n_sig} signal at {TRUTH} GeV + {n_bkg} QCD), scaled "
        f"ensembles, Minuit + HESSE ({total.seconds:.0f} s for the profiled fit):"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    impacts = pulls_and_impacts(nll, space, total, pois=MASS_NAMES)
    print("\npulls and impacts (GeV), ranked by the impact on m_zprime:")
    print(impacts.to_string(float_format=lambda v: f"{v:+.3f}"))
    for j, name in enumerate(MASS_NAMES):
        syst = np.sqrt(max(total.errors[j] ** 2 - stat.errors[j] ** 2, 0.0))
        print(f"  {name}: the jet scales add {syst:.2f} GeV in quadrature to {stat.errors[j]:.2f}")

    x = _data(n_sig, n_bkg, 1.0, seed=3000)
    _, _, nominal = _fit(*models["nominal"], x, n_sig, n_bkg)
    _, _, fixed = _fit(*models["scaled"], x, n_sig, n_bkg, fixed=["jes", "jms"])
    _, _, shifted = _fit(*models["scaled"], x, n_sig, n_bkg)
    rows = _masses(nominal, "nominal models", "stat")
    rows += _masses(fixed, "scaled, nuisances fixed at 0", "stat")
    rows += _masses(shifted, "scaled, profiled", "total")
    print("\n2. pseudo-data with JES and JMS at +1 sigma (+1%):")
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    k = nll.names.index("jes")
    print(
        f"  profiled: jes = {shifted.theta[k]:+.2f} +- {shifted.errors[k]:.2f}, jms = "
        f"{shifted.theta[k + 1]:+.2f} +- {shifted.errors[k + 1]:.2f} sigma (truth +1, +1)"
    )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
