r"""Figures of density models: training curves, marginals with ratio panels, pair plots
and the dependence on theta."""

from __future__ import annotations

__all__ = ["plot_history", "plot_marginals", "plot_pairs", "plot_theta_dependence"]

import os
import warnings
from collections.abc import Sequence

import numpy as np

from ..variables import Variable
from ._base import hist_edges, pyplot


def plot_history(histories: Sequence[Sequence[dict]], path: str | os.PathLike) -> None:
    r"""Training and validation loss (nats/event) per epoch, and the learning rate, of a
    model or of each member of an ensemble.

    Arguments:
        histories: One list of records per model (member), each record with `epoch`,
            `train_loss`, `val_loss`, `lr` (as `train` returns).
        path: Output PNG file.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    several = len(histories) > 1
    for k, history in enumerate(histories):
        epoch = [h["epoch"] for h in history]
        first = k == 0  # one legend entry per kind of line
        style = {"ms": 3, "lw": 1 if several else 1.5, "alpha": 0.7 if several else 1}
        for key, color, label in (
            ("train_loss", "tab:blue", "training"),
            ("val_loss", "tab:orange", "validation (averaged weights)"),
        ):
            ax.plot(epoch, [h[key] for h in history], "o-", color=color,
                    label=label if first else None, **style)  # fmt: skip
        best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
        ax.axvline(
            epoch[best],
            color="grey",
            ls=":",
            alpha=0.6,
            label=("kept: the best epochs" if several else f"kept: epoch {epoch[best]}")
            if first
            else None,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss = mean NLL (nats/event)")
    if several:
        ax.set_title(f"{len(histories)} ensemble members", fontsize=9)
    lr = ax.twinx()
    lr.plot(
        [h["epoch"] for h in histories[0]],
        [h["lr"] for h in histories[0]],
        color="tab:grey",
        alpha=0.4,
    )
    lr.set_ylabel("learning rate", color="tab:grey")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _bootstrap_ratio(
    model: np.ndarray,
    reference: np.ndarray,
    edges: np.ndarray,
    replicas: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    r"""16th and 84th percentiles `(2, bins)` of the model/reference histogram ratio over
    `replicas` Poisson bootstraps of both samples (each event weighted Poisson(1)). A
    bin's sum of n such weights is Poisson(n): drawn per bin, not per event. With
    reference `weights`, a bin's sum of Poisson(1) times w has mean sum w and variance
    sum w^2, drawn as a normal per bin."""
    rng = np.random.default_rng(seed)
    bins = len(edges) - 1
    hm = rng.poisson(np.histogram(model, edges)[0], (replicas, bins))
    if weights is None:
        hr, total = rng.poisson(np.histogram(reference, edges)[0], (replicas, bins)), len(reference)
    else:
        s, s2 = (np.histogram(reference, edges, weights=v)[0] for v in (weights, weights**2))
        hr, total = rng.normal(s, np.sqrt(s2), (replicas, bins)), weights.sum()
    ratios = np.divide(
        hm * total / len(model), hr, out=np.full((replicas, bins), np.nan), where=hr > 0
    )
    with warnings.catch_warnings():  # bins empty in every replica stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(ratios, [16, 84], axis=0)


def plot_marginals(
    reference: np.ndarray,
    model: np.ndarray,
    observables: Sequence[Variable],
    path: str | os.PathLike,
    title: str = "",
    labels: tuple[str, str] = ("reference", "model"),
    bins: int = 40,
    replicas: int = 100,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> None:
    r"""1D marginals of the model's samples `(M, F)` against the reference `(N, F)` (in
    observable units, with event `weights` `(N,)` if given; bins over the reference's
    central 99.8%), with a ratio panel whose band holds 68% of `replicas` Poisson
    bootstraps of the ratio."""
    plt = pyplot()
    f = len(observables)
    fig, axs = plt.subplots(
        2, f, figsize=(3.6 * f, 4.6), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    for j, v in enumerate(observables):
        top, bottom = axs[0, j], axs[1, j]
        edges = hist_edges(reference[:, j], bins)
        centres = (edges[1:] + edges[:-1]) / 2
        hr, _ = np.histogram(reference[:, j], edges, weights=weights)
        sumw2 = (
            hr if weights is None else np.histogram(reference[:, j], edges, weights=weights**2)[0]
        )
        hm, _ = np.histogram(model[:, j], edges)
        hm = hm * (len(reference) if weights is None else weights.sum()) / len(model)
        top.errorbar(centres, hr, np.sqrt(sumw2), fmt=".", color="k", ms=3, label=labels[0])
        top.stairs(hm, edges, color="tab:red", label=labels[1])
        top.set_yscale("log")
        top.set_ylabel("events / bin" if weights is None else "sum of weights / bin")
        low, high = _bootstrap_ratio(
            model[:, j], reference[:, j], edges, replicas, seed + j, weights
        )
        bottom.fill_between(centres, low, high, step="mid", color="tab:red", alpha=0.3, lw=0)
        ratio = np.divide(hm, hr, out=np.full(bins, np.nan), where=hr > 0)
        bottom.step(centres, ratio, where="mid", color="tab:red", lw=1)
        bottom.axhline(1, color="grey", lw=0.5)
        bottom.set_ylim(0.7, 1.3)
        bottom.set_xlabel(v.label)
        bottom.set_ylabel("model / ref.")
    axs[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    weights: np.ndarray | None = None,
) -> None:
    r"""2D marginals of every pair of observables: the contours holding 68% and 95% of the
    reference (black; of its event `weights` where given) and of the model's samples
    (red, dashed); 1D marginals on the diagonal."""
    plt = pyplot()
    f = len(observables)
    fig, axs = plt.subplots(f, f, figsize=(2.4 * f, 2.4 * f), squeeze=False)
    edges = [hist_edges(reference[:, j], bins) for j in range(f)]
    for i in range(f):
        for j in range(f):
            ax = axs[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(reference[:, j], edges[j], weights=weights, density=True,
                        histtype="step", color="k")  # fmt: skip
                ax.hist(model[:, j], edges[j], density=True, histtype="step", color="tab:red")
                ax.set_yticks([])
            else:
                for sample, style, w in ((reference, "-", weights), (model, "--", None)):
                    h, _, _ = np.histogram2d(
                        sample[:, j], sample[:, i], [edges[j], edges[i]], weights=w
                    )
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


def _density(
    x: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fraction of the events `(N,)` (of their `weights`) in each bin, and its Poisson
    error (sqrt(sum w^2))."""
    w = np.ones(len(x)) if weights is None else weights
    h, _ = np.histogram(x, edges, weights=w)
    h2, _ = np.histogram(x, edges, weights=w**2)
    return h / w.sum(), np.sqrt(h2) / w.sum()


def plot_theta_dependence(
    references: Sequence[np.ndarray],
    models: Sequence[np.ndarray],
    labels: Sequence[str],
    observables: Sequence[Variable],
    path: str | os.PathLike,
    bins: int = 30,
    weights: Sequence[np.ndarray | None] | None = None,
) -> None:
    r"""How each marginal moves with theta (seed 001, fig. 5): the histogram at each theta
    divided by the one at the first theta, for the reference (points, with its event
    `weights` per theta where given) and the model (lines); one panel per observable."""
    weights = [None] * len(references) if weights is None else list(weights)
    plt = pyplot()
    f = len(observables)
    fig, axs = plt.subplots(1, f, figsize=(3.8 * f, 3.4), squeeze=False)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(references)))
    for j, v in enumerate(observables):
        ax = axs[0, j]
        edges = hist_edges(references[0][:, j], bins)
        centres = (edges[1:] + edges[:-1]) / 2
        r0 = _density(references[0][:, j], edges, weights[0])[0]
        m0 = _density(models[0][:, j], edges)[0]
        for k in range(1, len(references)):
            rk, ek = _density(references[k][:, j], edges, weights[k])
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
