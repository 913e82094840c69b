r"""Figures: fitted spectra, NLL landscapes, limit curves and pseudo-experiment
distributions (matplotlib, Agg backend)."""

from __future__ import annotations

__all__ = [
    "plot_contours",
    "plot_convergence",
    "plot_fit",
    "plot_history",
    "plot_landscape",
    "plot_limits",
    "plot_marginals",
    "plot_profiles",
    "plot_pulls",
    "plot_q0",
]

import os
import warnings
from collections.abc import Sequence

import numpy as np

from .variables import Variable


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    plt = _pyplot()
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
    plt = _pyplot()
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
    plt = _pyplot()
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
) -> None:
    r"""Profile NLL of each parameter with the HESSE parabola and MINOS interval.

    Arguments:
        profiles: Per parameter, rows `(value, NLL - minimum)`, shape `(S, 2)`.
        theta_vars: The parameters, for labels.
        best, errors: Best fit and HESSE error by name.
        path: Output PNG file.
        minos: MINOS (lower, upper) offsets by name.
    """
    plt = _pyplot()
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
    plt = _pyplot()
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


def plot_history(history: Sequence[dict], path: str | os.PathLike) -> None:
    r"""Training and validation loss (nats/event) per epoch, and the learning rate.

    Arguments:
        history: Records with `epoch`, `train_loss`, `val_loss`, `lr` (as `train` returns).
        path: Output PNG file.
    """
    plt = _pyplot()
    epoch = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epoch, [h["train_loss"] for h in history], "o-", ms=3, label="training")
    ax.plot(
        epoch, [h["val_loss"] for h in history], "o-", ms=3, label="validation (averaged weights)"
    )
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    ax.axvline(epoch[best], color="grey", ls=":", label=f"kept: epoch {epoch[best]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss = mean NLL (nats/event)")
    lr = ax.twinx()
    lr.plot(epoch, [h["lr"] for h in history], color="tab:grey", alpha=0.4)
    lr.set_ylabel("learning rate", color="tab:grey")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    return np.linspace(*np.quantile(reference, [0.001, 0.999]), bins + 1)


def _bootstrap_ratio(
    model: np.ndarray, reference: np.ndarray, edges: np.ndarray, replicas: int, seed: int
) -> np.ndarray:
    r"""16th and 84th percentiles `(2, bins)` of the model/reference histogram ratio over
    `replicas` Poisson bootstraps of both samples (each event weighted Poisson(1))."""
    rng = np.random.default_rng(seed)
    scale = len(reference) / len(model)
    im, ir = np.digitize(model, edges) - 1, np.digitize(reference, edges) - 1
    bins = len(edges) - 1
    im, ir = im[(im >= 0) & (im < bins)], ir[(ir >= 0) & (ir < bins)]
    ratios = []
    for _ in range(replicas):
        hm = np.bincount(im, rng.poisson(1.0, len(im)), minlength=bins)
        hr = np.bincount(ir, rng.poisson(1.0, len(ir)), minlength=bins)
        ratios.append(np.divide(hm * scale, hr, out=np.full(bins, np.nan), where=hr > 0))
    with warnings.catch_warnings():  # bins empty in every replica stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(np.array(ratios), [16, 84], axis=0)


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
) -> None:
    r"""1D marginals of the model's samples `(M, F)` against the reference `(N, F)` (in
    observable units; bins over the reference's central 99.8%), with a ratio panel whose
    band holds 68% of `replicas` Poisson bootstraps of the ratio."""
    plt = _pyplot()
    f = len(observables)
    fig, axs = plt.subplots(
        2, f, figsize=(3.6 * f, 4.6), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    for j, v in enumerate(observables):
        top, bottom = axs[0, j], axs[1, j]
        edges = _edges(reference[:, j], bins)
        centres = (edges[1:] + edges[:-1]) / 2
        hr, _ = np.histogram(reference[:, j], edges)
        hm, _ = np.histogram(model[:, j], edges)
        hm = hm * len(reference) / len(model)
        top.errorbar(centres, hr, np.sqrt(hr), fmt=".", color="k", ms=3, label=labels[0])
        top.stairs(hm, edges, color="tab:red", label=labels[1])
        top.set_yscale("log")
        top.set_ylabel("events / bin")
        low, high = _bootstrap_ratio(model[:, j], reference[:, j], edges, replicas, seed + j)
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


def plot_limits(
    x: np.ndarray,
    observed: np.ndarray,
    expected: np.ndarray,
    parameter: Variable,
    path: str | os.PathLike,
    cl: float = 0.95,
    title: str = "",
) -> None:
    r"""The limit curve: observed upper limits on n_sig against a signal parameter, with
    the expected median and its +-1 and +-2 sigma bands.

    Arguments:
        x: Values of `parameter`, shape `(K,)`, increasing.
        observed: Observed limits `(K,)`, in events.
        expected: Expected limits `(K, 5)` at -2, -1, 0, +1, +2 sigma.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.fill_between(x, expected[:, 0], expected[:, 4], color="#ffcc00", label="expected ±2σ")
    ax.fill_between(x, expected[:, 1], expected[:, 3], color="#00cc00", label="expected ±1σ")
    ax.plot(x, expected[:, 2], "k--", label="expected (median)")
    ax.plot(x, observed, "k.-", label="observed")
    ax.set_xlabel(parameter.label)
    ax.set_ylabel(f"{cl:.0%} CL upper limit on n_sig [events]")
    ax.set_ylim(bottom=0)
    ax.set_title(title or f"CLs upper limits (q̃_μ) against {parameter.name}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pulls(pulls: dict[str, np.ndarray], path: str | os.PathLike, bins: int = 20) -> None:
    r"""Histogram of each parameter's pulls (fit - truth) / error with the unit normal
    density they follow when fits are unbiased and errors are right."""
    from scipy import stats

    plt = _pyplot()
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

    plt = _pyplot()
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
