r"""Figures: fitted spectra and NLL landscapes (matplotlib, Agg backend)."""

from __future__ import annotations

__all__ = ["plot_fit", "plot_landscape"]

import os
from collections.abc import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fit(
    x: np.ndarray,
    grid: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
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
        xlabel: Axis label with unit.
        path: Output PNG file.
    """
    plt = _pyplot()
    counts, edges = np.histogram(x, bins=bins, range=(grid[0], grid[-1]))
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
    top.set_ylabel(f"events / {width:.3g}")
    top.legend(fontsize=8)
    bottom.axhline(0, color="grey", lw=0.5)
    bottom.set_xlabel(xlabel)
    bottom.set_ylabel("data - background")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_landscape(
    axes: tuple[np.ndarray, np.ndarray],
    dnll: np.ndarray,
    grad: np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    trajectory: np.ndarray | None = None,
    truth: Sequence[float] | None = None,
    title: str = "",
) -> None:
    r"""Delta NLL over two parameters with the descent direction field and a path.

    Arguments:
        axes: Grid values of the two parameters, shapes `(A,)` and `(B,)`.
        dnll: NLL minus its minimum on the grid, shape `(B, A)`.
        grad: NLL gradient on the grid, shape `(B, A, 2)`, per unit of each parameter.
        labels: Axis labels with units.
        path: Output PNG file.
        trajectory: Optimizer path, shape `(S, 2)`.
        truth: True point.
    """
    plt = _pyplot()
    a, b = axes
    fig, ax = plt.subplots(figsize=(7, 5.5))
    decades = 10.0 ** np.arange(-1, np.ceil(np.log10(max(dnll.max(), 1.0))) + 1)
    levels = np.unique(np.concatenate([decades, 2 * decades, 5 * decades]))
    levels = levels[levels <= max(dnll.max(), 1.0) * 5]
    cs = ax.contourf(
        a, b, np.clip(dnll, levels[0], None), levels=levels, cmap="viridis_r", norm="log"
    )
    fig.colorbar(cs, ax=ax, label=r"$\Delta$NLL", ticks=decades, format="%g")
    ax.contour(a, b, dnll, levels=[0.5, 2.0], colors="white", linewidths=1)
    # Unit arrows along -grad in axis-normalized coordinates, drawn in data units.
    ra, rb = a[-1] - a[0], b[-1] - b[0]
    ga, gb = -grad[..., 0] * ra, -grad[..., 1] * rb
    norm = np.hypot(ga, gb) + 1e-300
    step = max(1, len(a) // 15)
    length = 0.6 * step / len(a)
    sl = (slice(None, None, step), slice(None, None, step))
    ax.quiver(
        a[::step],
        b[::step],
        (ga / norm * ra * length)[sl],
        (gb / norm * rb * length)[sl],
        color="k",
        alpha=0.5,
        angles="xy",
        scale_units="xy",
        scale=1,
        pivot="mid",
        width=0.003,
    )
    if trajectory is not None:
        ax.plot(
            trajectory[:, 0], trajectory[:, 1], "o-", color="tab:red", ms=3, label="optimizer path"
        )
        ax.plot(*trajectory[-1], "X", color="tab:red", ms=10, label="best fit")
    if truth is not None:
        ax.plot(*truth, "*", color="gold", mec="k", ms=14, label="truth")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title or r"NLL landscape, contours at $\Delta$NLL = 0.5, 2", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
