r"""The global significance of a scan over the pole: brute-force background-only
pseudo-experiments against Gross and Vitells' extrapolation, on the toy's exact
densities.

Background-only data: Poisson(`--events`) events of the toy's exponential at tau = 170
GeV. The search: the extended likelihood of the Breit-Wigner on the exponential, n_sig,
n_bkg and tau floating, m_pole floating over [300, 700] GeV, and gamma fixed at 30 GeV
(part 1) or floating over [20, 80] GeV (part 2). Every toy is fitted by the same global
search as a data fit (`discovery`), which gives the distribution of the largest local
q0 under background only: the global p-value of a local Z = 2, 3 and 3.5 is the
fraction of toys above Z^2, with its binomial error. Gross-Vitells: the q0 fields of
the first `--fields` toys over a grid (41 poles; with gamma floating 25 x 7), their mean
Euler characteristic at the reference thresholds (0.5, then 1.5), extrapolated to
each Z. For one parameter also the mean number of upcrossings counted on the fields at
q0 = 1, 2, 4 against its extrapolation exp(-(u - 0.5) / 2) N(0.5). Part 3 is part 1
with learned models (the default mixture, 200k training events each) in place of the
exact densities, the toys drawn from the learned background.

Part 4 is LHCO through the command line: `flowscan generate` makes 3000 QCD events and
4 signal events at (3500, 500, 100) GeV, and `flowscan scan --global-significance 100
--lee-fields 50` searches them over (m_Z', m_X, m_Y) with the README's learned models
(`--lhco-models`), its default grid (8 steps per mass, or `--lhco-steps`) and thresholds
(0.5, 1.5, 2.5); its table is printed as is, and its `scan.json` gives the comparison at
each local Z.

Run: `python -u benchmarks/look_elsewhere.py [--part 1|2|3|4] [--toys 3000] [--fields
100] [--lhco-steps 8 16 16]` (Dask on every core).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from flowscan.cli import main as flowscan
from flowscan.flows import DensityModel, train
from flowscan.parallel import dask_client
from flowscan.samples import BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import GrossVitells, global_significance, upcrossings

LOCAL_Z = (2.0, 3.0, 3.5)


def _learned() -> tuple[DensityModel, DensityModel]:
    r"""Single learned models of the toy (the default mixture, 200k events each)."""
    models = []
    for seed, (exact, role) in enumerate(
        ((BreitWigner(), "signal"), (Exponential(), "background"))
    ):
        x, theta = training_set(exact, 200_000, seed=seed + 1)
        model = DensityModel(exact.observables, exact.theta_vars, role=role, seed=seed + 1)
        train(model, x, theta, seed=seed + 1, progress=False)
        models.append(model.eval().for_fit())
    return models[0], models[1]


def run(part: int, args: argparse.Namespace, client) -> None:
    # the data are only the toys' template: background at tau = 170 GeV
    x = pseudo_data(torch.tensor([500.0, 30.0]), torch.tensor([170.0]), 0, args.events, seed=9)
    densities = _learned() if part == 3 else (BreitWigner(), Exponential())
    nll = MixtureLikelihood(*densities, x)
    fixed = ["gamma"] if part in (1, 3) else []
    space = ParameterSpace(nll.theta_vars, [1.0, len(x), 500.0, 30.0, 170.0], fixed)
    grid = {"m_pole": np.linspace(300.0, 700.0, 41)}
    if part == 2:
        grid = {"m_pole": np.linspace(300.0, 700.0, 25), "gamma": np.linspace(20.0, 80.0, 7)}
    t0 = time.perf_counter()
    result = global_significance(
        nll, space, 0.0, args.toys, grid=grid, fields=args.fields, seed=args.seed + part,
        client=client, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    valid = result.toys_q0[np.isfinite(result.toys_q0)]
    gv = result.gross_vitells
    print(
        f"\npart {part}: {'learned models' if part == 3 else 'exact densities'}, m_pole "
        "floating"
        + (", gamma floating" if part == 2 else " (gamma fixed at 30 GeV)")
        + f"; {len(valid)} of {args.toys} toys valid, {gv.fields} fields, {result.missed} "
        f"maxima the search missed; {seconds:.0f} s"
    )
    errors = np.sqrt(np.diag(gv.covariance))
    means = ", ".join(f"{m:.3f} +- {e:.3f}" for m, e in zip(gv.mean, errors, strict=True))
    print(f"  mean Euler characteristic at u = {gv.thresholds.tolist()}: {means}")
    _table(valid, gv)
    if part != 2:
        fields = result.fields
        n_ref = np.mean([upcrossings(f, 0.5) for f in fields])
        print("  upcrossings per field: counted against exp(-(u - 0.5) / 2) N(0.5)")
        for u in (1.0, 2.0, 4.0):
            counted = [upcrossings(f, u) for f in fields]
            error = np.std(counted, ddof=1) / math.sqrt(len(fields))
            print(
                f"    u = {u:g}: {np.mean(counted):.3f} +- {error:.3f} counted, "
                f"{n_ref * math.exp(-(u - 0.5) / 2):.3f} extrapolated"
            )


def _table(valid: np.ndarray, gv: GrossVitells) -> None:
    r"""Prints the toys' and Gross-Vitells' global p-values at each of `LOCAL_Z`, from
    the toys' largest q0 `valid` `(T,)`."""
    rows = []
    for z in LOCAL_Z:
        q0 = z * z
        hits = float(np.sum(valid >= q0))
        p = hits / len(valid)
        error = math.sqrt(p * (1 - p) / len(valid)) if hits else 1 / len(valid)
        p_gv, e_gv = gv.p_value(q0)
        rows.append({
            "local Z": z, "local p": stats.norm.sf(z), "toys p": p, "+-": error,
            "GV p": p_gv, "+- ": e_gv, "(toys - GV) / error": (p - p_gv) / math.hypot(error, e_gv),
            "global Z toys": stats.norm.isf(p) if p > 0 else math.inf,
            "global Z GV": stats.norm.isf(p_gv), "trials factor (GV)": p_gv / stats.norm.sf(z),
        })  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def lhco(args: argparse.Namespace) -> None:
    r"""Part 4: the LHCO search over three masses, by the command line."""
    signal, background = args.lhco_models
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data.h5", Path(tmp) / "scan"
        flowscan(["generate", "--events", "3000", "--signal-events", "4", "--masses",
                  "3500,500,100", "--seed", str(2100 + args.seed), "--out", str(data)])  # fmt: skip
        t0 = time.perf_counter()
        command = [
            "scan", "--signal", signal, "--background", background, "--data", str(data),
            "--global-significance", str(min(args.toys, 100)), "--lee-fields",
            str(min(args.fields, 50)), "--seed", str(args.seed), "--no-progress", "--out",
            str(out), *(["--jobs", str(args.jobs)] if args.jobs else []),
        ]  # fmt: skip
        if args.lhco_steps:  # else the command's default grid, 8 steps a mass
            ranges = {"m_zprime": (3000, 4500), "m_x": (250, 1000), "m_y": (50, 300)}
            for (name, (low, high)), steps in zip(ranges.items(), args.lhco_steps, strict=True):
                command += ["--lee-grid", f"{name}={low}:{high}:{steps}"]
        print("\npart 4: flowscan " + " ".join(command))
        if flowscan(command) != 0:
            raise SystemExit("part 4: the scan failed")
        record = json.loads((out / "scan.json").read_text())["global_significance"]
    print(f"part 4: {time.perf_counter() - t0:.0f} s")
    gv = record["gross_vitells"]
    if gv is None:
        raise SystemExit("part 4: fewer than 2 toys gave a q0 field: no Gross-Vitells")
    gv = GrossVitells(
        *(np.array(gv[k]) for k in ("thresholds", "mean_euler", "covariance", "coefficients",
                                    "coefficients_covariance")), gv["fields"],
    )  # fmt: skip
    valid = np.array(record["toys_q0"])
    _table(valid[np.isfinite(valid)], gv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=[1, 2, 3, 4], help="only this part")
    parser.add_argument("--toys", type=int, default=3_000, help="background-only toys")
    parser.add_argument("--fields", type=int, default=100, help="toys with a q0 field")
    parser.add_argument("--events", type=int, default=1_000, help="background events")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, help="Dask workers (default all cores)")
    parser.add_argument(
        "--lhco-models", nargs=2, default=["runs/lhco-sig/model.pt", "runs/lhco-bkg/model.pt"],
        metavar=("SIGNAL", "BACKGROUND"), help="part 4's models (the README's LHCO training)",
    )  # fmt: skip
    parser.add_argument(
        "--lhco-steps", nargs=3, type=int, metavar=("M_ZPRIME", "M_X", "M_Y"),
        help="part 4's grid: steps over each mass's range (default the command's, 8 each)",
    )  # fmt: skip
    args = parser.parse_args()
    parts = (1, 2, 3, 4) if args.part is None else (args.part,)
    with dask_client(args.jobs) as client:
        for part in (p for p in parts if p != 4):
            run(part, args, client)
    if 4 in parts:
        lhco(args)


if __name__ == "__main__":
    main()
