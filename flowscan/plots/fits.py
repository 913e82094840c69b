r"""Figures of fits: the fitted spectrum, NLL landscapes, optimizer convergence, profiles
and contours."""

from __future__ import annotations

__all__ = ["plot_contours", "plot_convergence", "plot_fit", "plot_landscape", "plot_profiles"]

import os
from collections.abc import Sequence

import numpy as np

from ..variables import Variable
from ._base import pyplot


def plot_fit(
    x: np.ndarray,
    grid: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    observable: Variable,
    path: str | os.PathLike,
    bins: int = 90,
) -> None:
    r"""Data histogram with fitted total and background densities, and the
    background-subtracted data with the fitted signal below.

    Arguments:
        x: Observed values, shape `(N,)`.
        grid: Points where the curves are given, shape `(G,)`.
        curves: Per fit label, `(total, background)` expected events per unit of x,
            each shape `(G,)`.
        observable: The observable, whose bounds give the histogram range.
        path: Output PNG file.
    """
    plt = pyplot()
    counts, edges = np.histogram(x, bins=bins, range=(observable.low, observable.high))
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    top.errorbar(centres, counts, np.sqrt(counts), fmt="k.", label=f"data ({len(x)} events)")
    sub = None
    for (label, (total, bkg)), style in zip(curves.items(), ["-", "--", ":"], strict=False):
        line = top.plot(grid, total * width, style, label=f"{label}: signal + background")[0]
        top.plot(
            grid,
            bkg * width,
            style,
            color=line.get_color(),
            alpha=0.5,
            label=f"{label}: background",
        )
        bkg_at = np.interp(centres, grid, bkg * width)
        if sub is None:
            sub = counts - bkg_at
            bottom.errorbar(centres, sub, np.sqrt(counts), fmt="k.", label="data - background fit")
        bottom.plot(
            grid, (total - bkg) * width, style, color=line.get_color(), label=f"{label}: signal"
        )
    top.set_yscale("log")
    top.set_ylabel(f"events / {width:.3g} {observable.unit}")
    top.legend(fontsize=8)
    bottom.axhline(0, color="grey", lw=0.5)
    bottom.set_xlabel(observable.label)
    bottom.set_ylabel("data - background")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_landscape(
    panels: Sequence[tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]],
    labels: Sequence[str],
    path: str | os.PathLike,
    trajectory: np.ndarray | None = None,
    truth: Sequence[float] | None = None,
    title: str = "",
) -> None:
    r"""Delta NLL over two parameters with the descent direction field and a path, one
    panel per grid (e.g. the full range and a zoom on the minimum).

    Arguments:
        panels: Per panel `(axes, dnll, grad)`: grid values of the two parameters,
            shapes `(A,)` and `(B,)`; NLL minus its minimum, `(B, A)`; NLL gradient,
            `(B, A, 2)`, per unit of each parameter.
        labels: Axis labels with units.
        path: Output PNG file.
        trajectory: Optimizer path, shape `(S, 2)`.
        truth: True point.
        title: Figure title.
    """
    plt = pyplot()
    fig, axs = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.5), squeeze=False)
    for ax, (axes, dnll, grad) in zip(axs[0], panels, strict=True):
        _draw_landscape(fig, ax, axes, dnll, grad)
        if trajectory is not None:
            ax.plot(*trajectory.T, "o-", color="tab:red", ms=3, label="optimizer path")
            ax.plot(*trajectory[-1], "X", color="tab:red", ms=10, label="best fit")
        if truth is not None:
            ax.plot(*truth, "*", color="gold", mec="k", ms=14, label="truth")
        ax.set_xlim(axes[0][0], axes[0][-1])
        ax.set_ylim(axes[1][0], axes[1][-1])
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
    axs[0, 0].legend(fontsize=8, loc="upper right")
    fig.suptitle(
        title + "\n" + r"white contours: $\Delta$NLL = 1.15, 3.0 (68%, 95% for 2 parameters)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _draw_landscape(fig, ax, axes, dnll: np.ndarray, grad: np.ndarray) -> None:
    a, b = axes
    top = max(dnll.max(), 1.0)
    decades = 10.0 ** np.arange(-1, np.ceil(np.log10(top)) + 1)
    levels = np.unique(np.concatenate([decades, 2 * decades, 5 * decades]))
    levels = levels[levels <= top * 5]
    cs = ax.contourf(
        a, b, np.clip(dnll, levels[0], None), levels=levels, cmap="viridis_r", norm="log"
    )
    fig.colorbar(cs, ax=ax, label=r"$\Delta$NLL", ticks=decades, format="%g")
    ax.contour(a, b, dnll, levels=[1.15, 3.0], colors="white", linewidths=1)
    # Unit arrows along -grad in axis-normalized coordinates, drawn in data units.
    ra, rb = a[-1] - a[0], b[-1] - b[0]
    ga, gb = -grad[..., 0] * ra, -grad[..., 1] * rb
    norm = np.hypot(ga, gb) + 1e-300
    length = 0.6 / len(a)
    ax.quiver(
        a,
        b,
        ga / norm * ra * length,
        gb / norm * rb * length,
        color="k",
        alpha=0.5,
        angles="xy",
        scale_units="xy",
        scale=1,
        pivot="mid",
        width=0.003,
    )


def plot_convergence(traces: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    r"""Best NLL so far, minus the best any method found, against NLL evaluations and
    against seconds, one line per method.

    Arguments:
        traces: Per method, rows `(evaluations, seconds, best NLL so far)`, shape `(T, 3)`.
        path: Output PNG file.
    """
    plt = pyplot()
    floor = min(t[:, 2].min() for t in traces.values())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for method, trace in traces.items():
        excess = np.maximum(trace[:, 2] - floor, 1e-4)
        axes[0].step(trace[:, 0], excess, where="post", label=method)
        axes[1].step(trace[:, 1], excess, where="post", label=method)
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("NLL evaluations (a gradient counts as one)")
    axes[1].set_xlabel("seconds")
    axes[0].set_ylabel("best NLL so far - best found (floor 1e-4)")
    for ax in axes:
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_profiles(
    profiles: dict[str, np.ndarray],
    theta_vars: Sequence[Variable],
    best: dict[str, float],
    errors: dict[str, float],
    path: str | os.PathLike,
    minos: dict[str, tuple[float, float]] | None = None,
    errors_model: dict[str, float] | None = None,
) -> None:
    r"""Profile NLL of each parameter with the HESSE parabola, the MINOS interval and,
    for ensembles, the model error (a band of +-1 model error around the best fit, and
    the parabola of the statistical and model errors in quadrature).

    Arguments:
        profiles: Per parameter, rows `(value, NLL - minimum)`, shape `(S, 2)`.
        theta_vars: The parameters, for labels.
        best, errors: Best fit and HESSE error by name.
        path: Output PNG file.
        minos: MINOS (lower, upper) offsets by name.
        errors_model: The model error by name (`ScanResult.errors_model`).
    """
    plt = pyplot()
    labels = {v.name: v.label for v in theta_vars}
    fig, axs = plt.subplots(1, len(profiles), figsize=(4.2 * len(profiles), 3.8), squeeze=False)
    for ax, (name, rows) in zip(axs[0], profiles.items(), strict=True):
        ax.plot(rows[:, 0], rows[:, 1], "o-", ms=3, label="profile (mnprofile)")
        ax.plot(
            rows[:, 0],
            0.5 * ((rows[:, 0] - best[name]) / errors[name]) ** 2,
            "--",
            label=f"HESSE parabola, +- {errors[name]:.3g}",
        )
        if minos is not None and name in minos:
            lo, hi = minos[name]
            ax.axvspan(
                best[name] + lo,
                best[name] + hi,
                color="tab:green",
                alpha=0.15,
                label=f"MINOS {lo:+.3g} / {hi:+.3g}",
            )
        if errors_model is not None and name in errors_model:
            model = errors_model[name]
            total = np.hypot(errors[name], model)
            ax.axvspan(best[name] - model, best[name] + model, color="tab:orange", alpha=0.15,
                       label=f"model error +- {model:.3g}")  # fmt: skip
            ax.plot(rows[:, 0], 0.5 * ((rows[:, 0] - best[name]) / total) ** 2, ":",
                    color="tab:red", label=f"stat (+) model, +- {total:.3g}")  # fmt: skip
        for level in (0.5, 2.0):
            ax.axhline(level, color="grey", lw=0.5, ls=":")
        ax.set_xlabel(labels[name])
        ax.set_ylabel(r"$\Delta$NLL (others profiled)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_contours(
    contours: dict[str, dict[str, np.ndarray]],
    theta_vars: Sequence[Variable],
    best: dict[str, float],
    path: str | os.PathLike,
) -> None:
    r"""Confidence regions of each parameter pair, others profiled.

    Arguments:
        contours: Per pair "x,y", per coverage ("0.68", ...), points `(C, 2)`.
        theta_vars: The parameters, for labels.
        best: Best fit by name.
        path: Output PNG file.
    """
    plt = pyplot()
    labels = {v.name: v.label for v in theta_vars}
    fig, axs = plt.subplots(1, len(contours), figsize=(4.5 * len(contours), 4.2), squeeze=False)
    for ax, (pair, levels) in zip(axs[0], contours.items(), strict=True):
        a, b = pair.split(",")
        for cl, points in levels.items():
            closed = np.vstack([points, points[:1]])
            ax.plot(*closed.T, "-", label=f"{float(cl):.0%} (mncontour)")
        ax.plot(best[a], best[b], "X", color="k", label="best fit")
        ax.set_xlabel(labels[a])
        ax.set_ylabel(labels[b])
    handles, names = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
