r"""The fast LHCO-style generator against Pythia 8 + FastJet, and a scan trained on Pythia.

1. Speed: selected events per second on one core (serial, in this process) and with a
   2-worker Dask cluster, for the signal at (3500, 500, 100) GeV and for QCD.
2. Comparison: at three signal mass points and for QCD, `--events` Pythia events in two
   halves and as many fast-generator events. Every validation metric of `flowscan
   validate` (KS p-value per observable, sliced Wasserstein, classifier AUC) for the
   fast generator against the first Pythia half, beside the second half against the
   first (the noise floor); the medians of the five observables; overlaid marginals
   (`marginals_<sample>.png`).
3. Scan: a signal model trained on a Pythia grid, 3 x 2 x 2 points (3000 events each)
   and 4 x 4 x 4 points (1500 each, 4 values per axis as seed 002's grid, the off-grid
   point halfway between grid values on every axis), and the same model trained on the
   fast generator at the same points; each fits the three masses (Minuit, HESSE;
   signal-only likelihood) to `--scan-events` Pythia events at an off-grid point.
   Printed: fit - truth in GeV and in HESSE errors.

Pythia events get the fast generator's stand-in detector (`SETTINGS`: each jet's
four-momentum smeared by 5%, both jets |eta| < 2.5). Pythia samples are written to `--out`
and reused when the script runs again. Run: `python benchmarks/mc_vs_fast.py` (about 35
minutes on 2 cores the first time, 3 minutes with the samples cached).
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowscan.flows import DensityModel, train
from flowscan.parallel import dask_client
from flowscan.plots import plot_marginals
from flowscan.samples import lhco
from flowscan.samples.simulation import SimulationSettings, simulate
from flowscan.scanner import ParameterSpace, minuit_scan
from flowscan.validation import compare

POINTS = {
    "signal 3500,500,100": (3500.0, 500.0, 100.0),
    "signal 3000,750,250": (3000.0, 750.0, 250.0),
    "signal 4500,1000,300": (4500.0, 1000.0, 300.0),
    "qcd": None,
}
OFF_GRID = (3700.0, 500.0, 150.0)
# name: (mass points, Pythia events per point, seed of the first point)
GRIDS = {
    "3 x 2 x 2": (lhco.training_grid((3000, 3500, 4000), (400, 600), (100, 200)), 3000, 10),
    "4 x 4 x 4": (
        lhco.training_grid((3100, 3500, 3900, 4300), (350, 450, 550, 650), (75, 125, 175, 225)),
        1500,
        1000,
    ),
}
NAMES = [v.name for v in lhco.OBSERVABLES]
# Pythia with the fast generator's stand-in detector: its jet resolution and |eta| cut.
SETTINGS = SimulationSettings(max_eta=lhco.MAX_ETA, smearing=lhco.JET_RESOLUTION)


def pythia(masses, events: int, seed: int, out: Path, client) -> pd.DataFrame:
    r"""Pythia events' observables, from `out` if simulated before."""
    tag = "qcd" if masses is None else "signal_" + "_".join(f"{m:g}" for m in masses)
    path = out / f"{tag}_seed{seed}_{events}_smear{SETTINGS.smearing:g}.h5"
    if not path.exists():
        frame, _ = simulate(events, masses, seed, SETTINGS, client=client, progress=False)
        out.mkdir(parents=True, exist_ok=True)
        frame.to_hdf(path, key="df", mode="w")
    return lhco.features(pd.read_hdf(path))


def speed(client, events: int) -> list[str]:
    rows = []
    for name, masses in (("signal 3500,500,100", POINTS["signal 3500,500,100"]), ("qcd", None)):
        t0 = time.perf_counter()
        serial, meta = simulate(events, masses, seed=99, chunk_size=events // 4, progress=False)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        parallel, _ = simulate(
            events, masses, seed=99, chunk_size=events // 4, client=client, progress=False
        )
        two = time.perf_counter() - t0
        assert serial.equals(parallel), "2 workers must reproduce the serial events"
        rows.append(
            f"| {name} | {events / one:.1f} | {meta['generated'] / one:.1f} | "
            f"{meta['efficiency']:.2f} | {events / two:.1f} | {one / two:.2f} |"
        )
    return rows


def fit_masses(model: DensityModel, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    r"""The three masses and their HESSE errors `(3,)`, `(3,)` from one MIGRAD of the
    signal-only NLL of signal events `x`, from the box centre.

    Not `flowscan.scanner.fit`, which fits a `MixtureLikelihood` and searches for a
    small signal's narrow valley on a large background: signal events alone have no
    background to hide a signal in (docs/simulation.md)."""
    model = copy.deepcopy(model).double().eval()

    def nll(theta: torch.Tensor) -> torch.Tensor:
        r"""Signal-only NLL at theta `(*, 3)`, shape `(*,)`."""
        flat = theta.reshape(-1, theta.shape[-1])
        out = torch.stack([-model.log_prob(x, t).sum() for t in flat])
        return out.reshape(theta.shape[:-1])

    result = minuit_scan(nll, ParameterSpace(model.theta_vars))
    return np.asarray(result.theta), np.asarray(result.errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="Pythia events per sample")
    parser.add_argument("--scan-events", type=int, default=2000)
    parser.add_argument("--speed-events", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mc_vs_fast")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with dask_client(2) as client:
        print("| sample | selected events/s, 1 core | generated events/s, 1 core | "
              "efficiency | selected events/s, 2 workers | speed-up |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- |")
        for row in speed(client, args.speed_events):
            print(row, flush=True)

        print(f"\n{args.events} Pythia events per sample (halves of {args.events // 2}) "
              f"against {args.events // 2} fast-generator events\n")  # fmt: skip
        print("| sample | KS p mean fast (floor) | sliced W. fast (floor) | AUC fast (floor) | "
              "medians Pythia / fast: " + ", ".join(NAMES) + " |")  # fmt: skip
        print("| --- | --- | --- | --- | --- |")
        half = args.events // 2
        for i, (name, masses) in enumerate(POINTS.items()):
            ref = pythia(masses, args.events, args.seed + i, out, client)[NAMES].to_numpy()
            fast = lhco.features(lhco.generate(half, masses, seed=args.seed + 100 + i))
            fast = fast[NAMES].to_numpy()
            table = compare(fast, ref[:half], ref[half:], NAMES, seed=args.seed)
            cells = table.set_index(["metric", "observable"])
            pick = {
                k: cells.loc[(k, "all")]
                for k in ("ks_pvalue_mean", "sliced_wasserstein", "classifier_auc")
            }
            medians = ", ".join(
                f"{a:.3g} / {b:.3g}"
                for a, b in zip(np.median(ref, 0), np.median(fast, 0), strict=True)
            )
            print(
                f"| {name} | "
                + " | ".join(f"{r.value:.3g} ({r.floor:.3g})" for r in pick.values())
                + f" | {medians} |",
                flush=True,
            )
            plot_marginals(
                ref, fast, lhco.OBSERVABLES, out / f"marginals_{name.replace(' ', '_')}.png",
                title=f"{name}: Pythia 8 + FastJet against the fast generator",
                labels=("Pythia 8", "fast generator"),
            )  # fmt: skip

        t0 = time.perf_counter()
        grids = {
            name: [
                pythia(m, events, args.seed + seed + k, out, client) for k, m in enumerate(points)
            ]
            for name, (points, events, seed) in GRIDS.items()
        }
        data = pythia(OFF_GRID, args.scan_events, args.seed + 50, out, client)
        print(f"\nPythia grids and off-grid data ready in {time.perf_counter() - t0:.0f} s")

    x_data = torch.tensor(data[NAMES].to_numpy())
    print(f"\nscan of {len(x_data)} Pythia signal events at {OFF_GRID} GeV (off the grid)\n")
    print("| grid | signal model trained on | train s | fit - truth GeV [HESSE errors]: "
          "m_zprime, m_x, m_y |")  # fmt: skip
    print("| --- | --- | --- | --- |")
    for name, (points, events, seed) in GRIDS.items():
        theta = torch.tensor(np.repeat(np.asarray(points), events, axis=0))
        fast = [
            lhco.generate(events, m, seed=args.seed + seed + 200 + k) for k, m in enumerate(points)
        ]
        samples = {
            "Pythia": np.concatenate([g[NAMES].to_numpy() for g in grids[name]]),
            "fast generator": np.concatenate([lhco.features(f)[NAMES].to_numpy() for f in fast]),
        }
        for label, x in samples.items():
            masses = [replace(v, low=None, high=None) for v in lhco.MASSES]  # the grid's box
            model = DensityModel(lhco.OBSERVABLES, masses, seed=args.seed)
            t0 = time.perf_counter()
            train(model, torch.tensor(x), theta, epochs=args.epochs, seed=args.seed, progress=False)
            seconds = time.perf_counter() - t0
            fit, err = fit_masses(model, x_data)
            cells = ", ".join(
                f"{d:+.1f} ± {e:.1f} [{d / e:+.1f}]"
                for d, e in zip(fit - np.array(OFF_GRID), err, strict=True)
            )
            print(
                f"| {name} ({events} per point) | {label} | {seconds:.0f} | {cells} |", flush=True
            )


if __name__ == "__main__":
    main()
