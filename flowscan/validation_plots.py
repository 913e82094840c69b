r"""Plots of `flowscan validate`: a model's samples against a reference sample."""

from __future__ import annotations

__all__ = ["plot_pairs", "plot_theta_dependence"]

import os
from collections.abc import Sequence

import numpy as np

from .plots import _edges, _pyplot
from .variables import Variable


def _levels(h: np.ndarray, fractions: Sequence[float]) -> list[float]:
    r"""Histogram heights whose highest bins hold each fraction of the total, ascending."""
    flat = np.sort(h.ravel())[::-1]
    cumulative = np.cumsum(flat) / flat.sum()
    return sorted(flat[min(np.searchsorted(cumulative, f), len(flat) - 1)] for f in fractions)


def plot_pairs(
    reference: np.ndarray,
    model: np.ndarray,
    observables: Sequence[Variable],
    path: str | os.PathLike,
    title: str = "",
    bins: int = 25,
) -> None:
    r"""2D marginals of every pair of observables: the contours holding 68% and 95% of the
    reference (black) and of the model's samples (red, dashed); 1D marginals on the
    diagonal."""
    plt = _pyplot()
    f = len(observables)
    fig, axs = plt.subplots(f, f, figsize=(2.4 * f, 2.4 * f), squeeze=False)
    edges = [_edges(reference[:, j], bins) for j in range(f)]
    for i in range(f):
        for j in range(f):
            ax = axs[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(reference[:, j], edges[j], density=True, histtype="step", color="k")
                ax.hist(model[:, j], edges[j], density=True, histtype="step", color="tab:red")
                ax.set_yticks([])
            else:
                for sample, style in ((reference, "-"), (model, "--")):
                    h, _, _ = np.histogram2d(sample[:, j], sample[:, i], [edges[j], edges[i]])
                    centres = [(e[1:] + e[:-1]) / 2 for e in (edges[j], edges[i])]
                    color = "k" if sample is reference else "tab:red"
                    ax.contour(
                        *centres, h.T, _levels(h, (0.95, 0.68)), colors=color, linestyles=style
                    )
            if i == f - 1:
                ax.set_xlabel(observables[j].label, fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(observables[i].label, fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(title or "68%/95% contours: reference (black), model (red, dashed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _density(x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Fraction of the events `(N,)` in each bin, and its Poisson error."""
    h, _ = np.histogram(x, edges)
    return h / len(x), np.sqrt(h) / len(x)


def plot_theta_dependence(
    references: Sequence[np.ndarray],
    models: Sequence[np.ndarray],
    labels: Sequence[str],
    observables: Sequence[Variable],
    path: str | os.PathLike,
    bins: int = 30,
) -> None:
    r"""How each marginal moves with theta (seed 001, fig. 5): the histogram at each theta
    divided by the one at the first theta, for the reference (points) and the model
    (lines); one panel per observable."""
    plt = _pyplot()
    f = len(observables)
    fig, axs = plt.subplots(1, f, figsize=(3.8 * f, 3.4), squeeze=False)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(references)))
    for j, v in enumerate(observables):
        ax = axs[0, j]
        edges = _edges(references[0][:, j], bins)
        centres = (edges[1:] + edges[:-1]) / 2
        r0, m0 = (_density(s[:, j], edges)[0] for s in (references[0], models[0]))
        for k in range(1, len(references)):
            rk, ek = _density(references[k][:, j], edges)
            mk = _density(models[k][:, j], edges)[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                ax.errorbar(centres, rk / r0, ek / r0, fmt=".", ms=3, color=colors[k])
                ax.plot(centres, mk / m0, color=colors[k], label=labels[k])
        ax.axhline(1, color="grey", lw=0.5)
        ax.set_yscale("log")
        ax.set_xlabel(v.label)
        ax.set_ylabel("ratio to the first point")
    axs[0, 0].legend(fontsize=7, title="model (lines), reference (points)", title_fontsize=7)
    fig.suptitle(f"marginals relative to {labels[0]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
