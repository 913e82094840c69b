r"""Figures of statistics: CLs limit curves, pulls of pseudo-experiments, the q0
distribution, closure maps, and the pulls and impacts of nuisance parameters."""

from __future__ import annotations

__all__ = [
    "plot_closure",
    "plot_exclusion",
    "plot_impacts",
    "plot_limits",
    "plot_pulls",
    "plot_q0",
    "plot_q0_field",
]

import itertools
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..variables import Variable
from ._base import pyplot


def plot_limits(
    x: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    parameter: Variable,
    path: str | os.PathLike,
    cl: float = 0.95,
    title: str = "",
    strength: bool = False,
) -> None:
    r"""The limit curve: observed upper limits on n_sig against a signal parameter, with
    the expected median and its +-1 and +-2 sigma bands; with `strength`, limits on the
    signal strength mu of a predicted yield, excluded below the line mu = 1.

    Arguments:
        x: Values of `parameter`, shape `(K,)`, increasing.
        observed: Observed limits `(K,)`, in events (mu with `strength`).
        expected: Expected limits `(K, 5)` at -2, -1, 0, +1, +2 sigma.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.fill_between(x, expected[:, 0], expected[:, 4], color="#ffcc00", label="expected ±2σ")
    ax.fill_between(x, expected[:, 1], expected[:, 3], color="#00cc00", label="expected ±1σ")
    ax.plot(x, expected[:, 2], "k--", label="expected (median)")
    ax.plot(x, observed, "k.-", label="observed")
    ax.set_xlabel(parameter.label)
    if strength:
        ax.axhline(1.0, color="r", lw=1, label="μ = 1: excluded below")
        ax.set_yscale("log")
        ax.set_ylabel(f"{cl:.0%} CL upper limit on μ = n_sig / n_pred")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{cl:.0%} CL upper limit on n_sig [events]")
    ax.set_title(title or f"CLs upper limits (q̃_μ) against {parameter.name}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_exclusion(
    x: np.ndarray,
    y: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    parameters: tuple[Variable, Variable],
    path: str | os.PathLike,
    cl: float = 0.95,
    title: str = "",
) -> None:
    r"""The region of a parameter plane excluded at `cl` (the limit on the signal
    strength below 1), as physicists publish it: the observed contour with the excluded
    side shaded, the expected median contour dashed, and the contours of the expected
    limits at +-1 (green band) and +-2 sigma (yellow band); interpolated linearly in
    log mu over the grid.

    Arguments:
        x, y: Grid values of the two parameters, `(I,)` and `(J,)`, increasing.
        observed: Observed limits on mu, `(I, J)` (NaN where a fit failed).
        expected: Expected limits on mu `(I, J, 5)` at -2, -1, 0, +1, +2 sigma.
    """
    from matplotlib.patches import Patch

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    grid = np.meshgrid(x, y, indexing="ij")
    log = {k: np.ma.masked_invalid(np.log10(expected[..., k])) for k in range(5)}
    log_obs = np.ma.masked_invalid(np.log10(observed))

    def inside(z: np.ndarray, color: str, **kwargs) -> None:  # where mu's limit is below 1
        if z.count() and z.min() < 0:
            ax.contourf(*grid, z, levels=[z.min() - 1, 0], colors=[color], **kwargs)

    # the bands as the differences of nested regions: excluded at -2, -1, +1, +2 sigma
    for k, color in zip((0, 1, 3, 4), ("#ffcc00", "#00cc00", "#ffcc00", "white"), strict=True):
        inside(log[k], color)
    inside(log_obs, "none", hatches=["//"])
    for z, style in ((log[2], "--"), (log_obs, "-")):
        if z.count() and z.min() < 0 < z.max():
            ax.contour(*grid, z, levels=[0], colors="k", linestyles=style, linewidths=1.5)
    ax.plot(*(g.ravel() for g in grid), ".", color="0.6", ms=2)
    handles = [
        plt.Line2D([], [], color="k", label=f"observed: excluded at {cl:.0%} CL (hatched)"),
        plt.Line2D([], [], color="k", ls="--", label="expected (median)"),
        Patch(color="#00cc00", label="expected ±1σ"),
        Patch(color="#ffcc00", label="expected ±2σ"),
        plt.Line2D([], [], color="0.6", marker=".", ls="", label="points tested"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.set_xlabel(parameters[0].label)
    ax.set_ylabel(parameters[1].label)
    ax.set_title(title or f"excluded region in ({parameters[0].name}, {parameters[1].name})",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_q0_field(
    q0: np.ndarray,
    grid: dict[str, np.ndarray],
    parameters: Sequence[Variable],
    thresholds: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
) -> None:
    r"""The discovery test statistic q0 of the data over the scanned signal parameters,
    with the excursion sets {q0 > u} at the Gross-Vitells thresholds: a curve for one
    parameter, a map for two, and for three the map of the first two maximized over
    the third.

    Arguments:
        q0: The field, shape `(len(v) for v in grid.values())`.
        grid: The values of each parameter, in the field's axis order.
        parameters: Their variables, in that order.
    """
    plt = pyplot()
    names = list(grid)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if q0.ndim == 1:
        x = grid[names[0]]
        ax.plot(x, q0, "k.-", label="q0 of the data")
        for u in thresholds:
            ax.axhline(u, color="tab:red", lw=1, ls=":")
            ax.fill_between(x, u, q0, where=q0 > u, color="tab:red", alpha=0.15)
        ax.set_xlabel(parameters[0].label)
        ax.set_ylabel("q0")
        ax.legend(fontsize=8)
    else:
        field = q0 if q0.ndim == 2 else q0.max(axis=2)
        x, y = grid[names[0]], grid[names[1]]
        mesh = ax.pcolormesh(x, y, field.T, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label="q0" + (f" (max over {names[2]})" if q0.ndim == 3 else ""))
        if field.max() > min(thresholds):
            ax.contour(x, y, field.T, levels=sorted(thresholds), colors="w",
                       linestyles=":", linewidths=1)  # fmt: skip
        ax.set_xlabel(parameters[0].label)
        ax.set_ylabel(parameters[1].label)
    levels = ", ".join(f"{u:g}" for u in thresholds)
    ax.set_title(title or f"q0 over the scan, excursion sets at q0 > {levels}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pulls(pulls: dict[str, np.ndarray], path: str | os.PathLike, bins: int = 20) -> None:
    r"""Histogram of each parameter's pulls (fit - truth) / error with the unit normal
    density they follow when fits are unbiased and errors are right."""
    from scipy import stats

    plt = pyplot()
    fig, axes = plt.subplots(1, len(pulls), figsize=(3.6 * len(pulls), 3.4), squeeze=False)
    grid = np.linspace(-4, 4, 200)
    for ax, (name, p) in zip(axes[0], pulls.items(), strict=True):
        ax.hist(p, bins=bins, range=(-4, 4), density=True, histtype="step", color="k")
        ax.plot(grid, stats.norm.pdf(grid), "r-", label="N(0, 1)")
        sem = p.std(ddof=1) / np.sqrt(len(p))
        ax.set_title(
            f"{name}: mean {p.mean():+.2f} ± {sem:.2f}, width {p.std(ddof=1):.2f}", fontsize=9
        )
        ax.set_xlabel("(fit - truth) / error")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_q0(q0: np.ndarray, path: str | os.PathLike) -> None:
    r"""Survival function of the discovery statistic q0 in background-only
    pseudo-experiments against the asymptotic 1/2 delta(0) + 1/2 chi2(1) (CCGV eq. 49),
    with binomial error bars, and the local significance on the top axis."""
    from scipy import stats

    plt = pyplot()
    q0 = np.sort(np.asarray(q0))
    fig, ax = plt.subplots(figsize=(6, 4.2))
    grid = np.linspace(0, max(9.0, q0.max() * 1.05), 200)
    ax.plot(grid, 0.5 * stats.chi2.sf(grid, 1), "r-", label="asymptotic ½χ²(1)")
    levels = np.linspace(0, grid[-1], 30)
    sf = np.array([(q0 > t).mean() for t in levels])
    err = np.sqrt(sf * (1 - sf) / len(q0))
    seen = sf > 0
    ax.errorbar(
        levels[seen], sf[seen], err[seen], fmt="k.", label=f"{len(q0)} background-only toys"
    )
    ax.set_yscale("log")
    ax.set_xlim(0, grid[-1])
    ax.set_ylim(0.5 / len(q0), 1)
    ax.set_xlabel("q0")
    ax.set_ylabel("P(q0 > x)")
    top = ax.secondary_xaxis("top", functions=(np.sqrt, np.square))
    top.set_xticks(np.arange(0, np.sqrt(grid[-1]) + 0.01))
    top.set_xlabel("local significance √q0 [σ]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_closure(
    table: pd.DataFrame,
    theta_vars: Sequence[Variable],
    path: str | os.PathLike,
    training_points: np.ndarray | None = None,
) -> None:
    r"""Closure maps: for each pair of parameters (or the one parameter) a panel per
    fitted parameter, each tested point coloured by its mean pull (fit - truth) / total
    error (`flowscan.validation.closure`), the training grid's points in grey."""
    plt = pyplot()
    names = [v.name for v in theta_vars]
    pairs = list(itertools.combinations(range(len(names)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(
        len(pairs),
        len(names),
        figsize=(3.6 * len(names), 3.2 * len(pairs)),
        squeeze=False,
        constrained_layout=True,
    )
    for row, (i, j) in zip(axes, pairs, strict=True):
        for ax, name in zip(row, names, strict=True):
            part = table[table["parameter"] == name]
            y = part[names[j]] if i != j else np.zeros(len(part))
            if training_points is not None:
                ty = training_points[:, j] if i != j else np.zeros(len(training_points))
                ax.scatter(training_points[:, i], ty, s=6, c="lightgrey", label="training")
            dots = ax.scatter(
                part[names[i]], y, c=part["pull_total"], cmap="coolwarm", vmin=-3, vmax=3,
                s=60, edgecolors="k",
            )  # fmt: skip
            ax.set_xlabel(theta_vars[i].label)
            if i != j:
                ax.set_ylabel(theta_vars[j].label)
            ax.set_title(f"pull of {name}", fontsize=9)
    fig.colorbar(dots, ax=axes, label="mean (fit - truth) / total error")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_impacts(table: pd.DataFrame, poi: Variable, path: str | os.PathLike) -> None:
    r"""The pulls-and-impacts plot of `pulls_and_impacts`' `table`, ranked from the top:
    left, each nuisance's pull (nu_hat - nu_0) / sigma with its post-fit constraint as
    the error bar; right, the shift of the parameter of interest `poi` with the nuisance
    at +1 and -1 post-fit sigma (the model error's row as a grey band)."""
    plt = pyplot()
    rows = table.iloc[::-1]
    y = np.arange(len(rows))
    fig, (left, right) = plt.subplots(
        1, 2, sharey=True, figsize=(8, 1.4 + 0.42 * len(rows)), layout="constrained"
    )
    nuisance = rows["kind"] != "ensemble"
    left.axvspan(-1, 1, color="0.9")
    left.errorbar(rows["pull"][nuisance], y[nuisance], xerr=rows["constraint"][nuisance],
                  fmt="ko", ms=4)  # fmt: skip
    left.axvline(0, color="k", lw=0.5)
    left.set_xlabel("pull (nu_hat - nu_0) / sigma")
    left.set_yticks(y, rows["nuisance"])
    unit = f" ({poi.unit})" if poi.unit else ""
    up, down = rows[f"{poi.name}_up"], rows[f"{poi.name}_down"]
    colours = np.where(nuisance, "tab:red", "0.6")
    right.barh(y, up, color=colours, alpha=0.7, label="+1 sigma_hat")
    colours = np.where(nuisance, "tab:blue", "0.6")
    right.barh(y, down, color=colours, alpha=0.7, label="-1 sigma_hat")
    right.axvline(0, color="k", lw=0.5)
    right.set_xlabel(f"impact on {poi.name}{unit}")
    right.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=120)
    plt.close(fig)
