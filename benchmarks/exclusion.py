r"""The excluded region of a signal model over its parameters, from learned models and
from the exact densities.

Part 1, the toy. A made-up cross section falling with the pole mass,
sigma(m_pole) = 100 fb exp(-(m_pole - 300 GeV) / 150 GeV) (a table every 50 GeV,
interpolated in log sigma: exact for it), L = 10/fb, and the efficiency of the
Breit-Wigner's window [100, 1000] GeV "simulated" at 9 x 5 points of (m_pole, gamma)
with 20k events each (binomial draws of the exact fraction, smoothed by
`Efficiency.fit`; its error a constrained nuisance). The data: 100k background events
at tau = 170 GeV and 300 signal events at (m_pole, gamma) = (455, 33) GeV (about the
model's prediction there). At each point of a 9 x 5 grid over the whole box, the CLs
limit on mu = n_sig / n_pred (tau and n_bkg profiled) from single learned models (the
demo's mixture, trained on 200k events each) and from the exact densities: the table
of points where the two verdicts (excluded or not, observed and expected median)
differ, the limits' ratio, and the excluded region's edge along m_pole per gamma
(where log mu's limit crosses 0, interpolated linearly), learned against exact, in GeV.

Part 2, LHCO (fast generator). A made-up sigma(m_Z') = 1.5 fb exp(-(m_Z' - 3000 GeV) /
400 GeV), L = 100/fb, the efficiency of the trigger and |eta| cut from signal samples
of 5k events at 7 Z' masses (m_X, m_Y = 500, 100 GeV; `lhco.generate` counts the events
drawn, as `flowscan generate --events 0` records them), learned signal and QCD models
(mixtures), and data of 20k QCD events with the predicted signal at m_Z' = 3500 GeV
(mu = 1): the limits on mu along m_Z' (no exact densities: the table and the curve).

Run: `python -u benchmarks/exclusion.py [--part 1|2]` (part 1 about 15 minutes, part 2
about 10 on 2 cores); writes the tables and the plots to `--out`.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowscan import plots
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import BreitWigner, Exponential, lhco, pseudo_data, training_set
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import SIGMAS, CrossSection, Efficiency, SignalRate, upper_limit

EXPECTED = [f"expected_{n:+g}" for n in SIGMAS]


def _toy_rate(seed: int) -> SignalRate:
    r"""The toy's signal rate: sigma(m_pole) from its table, L = 10/fb, and the
    efficiency of 9 x 5 simulated points of 20k events (binomial draws)."""
    m = np.arange(300.0, 701.0, 50.0)
    xs = CrossSection(["m_pole"], m[:, None], 100.0 * np.exp(-(m - 300.0) / 150.0))
    points = np.array([(a, b) for a in m for b in np.linspace(20.0, 80.0, 5)])
    low, high = 100.0, 1000.0  # the exact fraction of the Cauchy in the window
    half = points[:, 1] / 2
    fraction = np.arctan((high - points[:, 0]) / half) - np.arctan((low - points[:, 0]) / half)
    passed = np.random.default_rng(seed).binomial(20_000, fraction / math.pi)
    names = [v.name for v in BreitWigner.theta_vars]
    eff = Efficiency.fit(names, points, np.full(len(points), 20_000), passed)
    return SignalRate(xs, 10.0, eff)


def _model(exact, role: str, seed: int, events: int, epochs: int) -> DensityModel:
    x, theta = training_set(exact, events, seed=seed)
    model = DensityModel(exact.observables, exact.theta_vars, role=role, seed=seed)
    train(model, x, theta, epochs=epochs, seed=seed, progress=False)
    return model.eval().for_fit()


def _limits(signal, background, x, rate: SignalRate, grid: np.ndarray, start: list[float]):
    r"""The limits on mu at each point of `grid` (m_pole, gamma), tau and n_bkg
    profiled from `start` (n_bkg, tau)."""
    nll = MixtureLikelihood(signal, background, x)
    n_pred, error = rate(grid)
    rows = []
    for point, n, e in zip(grid, n_pred, error, strict=True):
        space = ParameterSpace(nll.theta_vars, [0.0, start[0], *point, *start[1:]],
                               ["m_pole", "gamma"])  # fmt: skip
        limit = upper_limit(nll, space, rate=(float(n), float(e)))
        rows.append({"m_pole": point[0], "gamma": point[1], "n_pred": n, "n_pred_error": e,
                     "observed": limit.observed}
                    | dict(zip(EXPECTED, limit.expected, strict=True)))  # fmt: skip
    return pd.DataFrame(rows)


def _edges(table: pd.DataFrame, column: str) -> dict[float, str]:
    r"""Per gamma, the m_pole values where the limit on mu of `column` crosses 1 (the
    excluded region's edges along m_pole, log mu linear in between), and which side
    is excluded at the lowest mass."""
    out = {}
    for gamma, rows in table.groupby("gamma"):
        rows = rows.sort_values("m_pole")
        m, log = rows["m_pole"].to_numpy(), np.log(rows[column].to_numpy())
        edges = [
            m[j] - log[j] * (m[j + 1] - m[j]) / (log[j + 1] - log[j])
            for j in np.flatnonzero((log[:-1] < 0) != (log[1:] < 0))
        ]
        out[gamma] = ("excl. " if log[0] < 0 else "allowed ") + " | ".join(
            f"{e:.0f}" for e in edges
        )
    return out


def toy(args: argparse.Namespace, out: Path) -> None:
    t0 = time.perf_counter()
    rate = _toy_rate(seed=7)
    signal = _model(BreitWigner(), "signal", 1, args.events, args.epochs)
    background = _model(Exponential(), "background", 2, args.events, args.epochs)
    print(f"trained the signal and background models: {time.perf_counter() - t0:.0f} s")
    x = pseudo_data(torch.tensor([455.0, 33.0]), torch.tensor([170.0]), 300, 100_000, seed=11)
    m, g = np.linspace(300.0, 700.0, 9), np.linspace(20.0, 80.0, 5)
    grid = np.array([(a, b) for a in m for b in g])
    tables = {}
    pairs = {"exact": (BreitWigner(), Exponential()), "learned": (signal, background)}
    for name, pair in pairs.items():
        t0 = time.perf_counter()
        tables[name] = _limits(*pair, x, rate, grid, [100_300.0, 170.0])
        print(f"{name}: {len(grid)} limits in {time.perf_counter() - t0:.0f} s")
        tables[name].to_csv(out / f"toy_{name}.csv", index=False)
        plots.plot_exclusion(
            m, g,
            tables[name]["observed"].to_numpy().reshape(9, 5),
            tables[name][EXPECTED].to_numpy().reshape(9, 5, 5),
            BreitWigner.theta_vars, out / f"toy_exclusion_{name}.png",
            title=f"toy, {name} densities: sigma = 100 fb exp(-(m_pole - 300) / 150), 10/fb",
        )  # fmt: skip
    exact, learned = tables["exact"], tables["learned"]
    ratio = learned[["observed", "expected_+0"]] / exact[["observed", "expected_+0"]]
    print(
        "\nlearned / exact limit on mu over the 45 points: median, 5%, 95%, worst"
        + "".join(
            f"\n  {c:12s} {ratio[c].median():.3f}  {ratio[c].quantile(0.05):.3f}  "
            f"{ratio[c].quantile(0.95):.3f}  {ratio[c].iloc[(ratio[c] - 1).abs().argmax()]:.3f}"
            for c in ratio
        )
    )
    for column in ("observed", "expected_+0"):
        differ = (learned[column] < 1) != (exact[column] < 1)
        print(f"\n{column}: verdicts differ at {int(differ.sum())} of {len(grid)} points")
        if differ.any():
            shown = exact.loc[differ, ["m_pole", "gamma", "n_pred"]].assign(
                exact=exact.loc[differ, column], learned=learned.loc[differ, column]
            )
            print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    edges = pd.DataFrame(
        {f"{c} {w}": _edges(tables[w], c) for c in ("observed", *EXPECTED[1:4]) for w in tables}
    )
    edges.index.name = "gamma"
    print("\nthe excluded region along m_pole: at 300 GeV, then its edges (GeV):")
    print(edges.T.to_string())
    edges.to_csv(out / "toy_edges.csv")
    _overlay(tables, m, g, out / "toy_exclusion_overlay.png")


def _overlay(tables: dict[str, pd.DataFrame], m: np.ndarray, g: np.ndarray, path: Path) -> None:
    r"""The observed and expected (median, +-1 sigma) contours of mu = 1 from the
    learned models and the exact densities in one figure."""
    from flowscan.plots._base import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, color in (("exact", "tab:red"), ("learned", "k")):
        for column, style in (("observed", "-"), ("expected_+0", "--"), ("expected_-1", ":"),
                              ("expected_+1", ":")):  # fmt: skip
            z = np.log(tables[name][column].to_numpy().reshape(len(m), len(g)))
            ax.contour(m, g, z.T, levels=[0], colors=color, linestyles=style)
        ax.plot([], [], color=color, label=f"{name} densities")
    for column, style in (("observed", "-"), ("expected median", "--"), ("expected ±1σ", ":")):
        ax.plot([], [], color="0.5", ls=style, label=column)
    ax.set_xlabel("m_pole [GeV]")
    ax.set_ylabel("gamma [GeV]")
    ax.set_title("toy: mu = 1 excluded at 95% CL (CLs), learned models against exact densities",
                 fontsize=10)  # fmt: skip
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _lhco_rate(masses: np.ndarray, events: int) -> SignalRate:
    r"""LHCO's signal rate: sigma(m_Z') in a table, L = 100/fb, and the trigger's
    efficiency from `events` signal events generated at each of `masses` `(K, 3)`."""
    m = np.arange(2750.0, 4751.0, 250.0)
    xs = CrossSection(["m_zprime"], m[:, None], 1.5 * np.exp(-(m - 3000.0) / 400.0))
    drawn = [lhco.generate(events, p, seed=k).attrs["generated"] for k, p in enumerate(masses)]
    names = [v.name for v in lhco.MASSES]
    eff = Efficiency.fit(names, masses, np.array(drawn), np.full(len(masses), events))
    return SignalRate(xs, 100.0, eff)


def lhco_part(args: argparse.Namespace, out: Path) -> None:
    t0 = time.perf_counter()
    masses = np.array([(mz, 500.0, 100.0) for mz in np.arange(3000.0, 4501.0, 250.0)])
    rate = _lhco_rate(masses, 5_000)
    signal_gen, qcd_gen = lhco.Generator("signal"), lhco.Generator("qcd")
    x, theta = signal_gen.training_set(args.lhco_events, seed=0)
    sig = DensityModel(lhco.OBSERVABLES, signal_gen.theta_vars, Architecture("mog"),
                       role="signal", seed=0)  # fmt: skip
    train(sig, x, theta, epochs=15, seed=0, progress=False)
    x, theta = qcd_gen.training_set(400_000, seed=1000)
    bkg = DensityModel(lhco.OBSERVABLES, (), Architecture("mog"), role="background", seed=1000)
    train(bkg, x, None, epochs=15, seed=1000, progress=False)
    sig, bkg = sig.eval().for_fit(), bkg.eval().for_fit()
    print(f"trained the LHCO models: {time.perf_counter() - t0:.0f} s")
    n_inject = float(rate(masses[2])[0][0])  # mu = 1 at m_Z' = 3500 GeV
    data = torch.cat([
        signal_gen.sample(round(n_inject), torch.tensor(masses[2]), seed=2000),
        qcd_gen.sample(20_000, None, seed=2001),
    ])  # fmt: skip
    nll = MixtureLikelihood(sig, bkg, data)
    n_pred, error = rate(masses)
    rows = []
    t0 = time.perf_counter()
    for point, n, e in zip(masses, n_pred, error, strict=True):
        space = ParameterSpace(nll.theta_vars, [0.0, 20_000.0, *point], ["m_zprime", "m_x", "m_y"])
        plain = upper_limit(nll, space)
        limit = upper_limit(nll, space, rate=(float(n), float(e)))
        rows.append({"m_zprime": point[0], "sigma_fb": float(rate.cross_section([point[0]])[0]),
                     "efficiency": float(rate.efficiency(point)[0][0]), "n_pred": n,
                     "n_pred_error": e, "n_sig_observed": plain.observed,
                     "n_sig_expected": plain.expected[2], "observed": limit.observed}
                    | dict(zip(EXPECTED, limit.expected, strict=True)))  # fmt: skip
    table = pd.DataFrame(rows)
    print(f"\n{len(masses)} LHCO limits in {time.perf_counter() - t0:.0f} s; {round(n_inject)} "
          f"signal events injected at m_Z' = 3500 GeV (mu = 1) on 20000 QCD")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    table.to_csv(out / "lhco_limits.csv", index=False)
    plots.plot_limits(
        table["m_zprime"].to_numpy(), table["observed"].to_numpy(), table[EXPECTED].to_numpy(),
        lhco.MASSES[0], out / "lhco_limits.png", strength=True,
        title="LHCO, m_X = 500, m_Y = 100 GeV: sigma = 1.5 fb exp(-(m_Z' - 3000) / 400), 100/fb",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=[1, 2], help="only this part")
    parser.add_argument("--events", type=int, default=200_000, help="toy training events")
    parser.add_argument("--epochs", type=int, default=20, help="toy training epochs")
    parser.add_argument("--lhco-events", type=int, default=15_000, help="per LHCO mass point")
    parser.add_argument("--out", default="runs/exclusion", help="folder of tables and plots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if args.part in (None, 1):
        toy(args, out)
    if args.part in (None, 2):
        lhco_part(args, out)


if __name__ == "__main__":
    main()
