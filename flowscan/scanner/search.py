r"""The global search before every local fit: where in the parameter box the NLL's
lowest minimum lies."""

from __future__ import annotations

__all__ = ["Search", "global_search"]

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import qmc
from torch import Tensor

from ..exceptions import FitError, InputError
from .gradient import gradient_scan
from .likelihood import MixtureLikelihood
from .sampling import MAX_POINTS
from .space import ParameterSpace

# Cells evaluated per batch: 64 cells of 40k events keep two (64, 40k) float64 tensors of
# per-event log-densities, 41 MB.
CELL_BATCH = 64
# Two descents that end closer than this, as a fraction of every floating parameter's
# range, ended in one minimum.
SAME_MINIMUM = 0.01


@dataclass
class Search:
    r"""What `global_search` found: candidate minima, the lowest first.

    Attributes:
        starts: Candidate points `(C, P)` (the full theta): the ends of the descents
            from the best distinct cells, lowest NLL on the full data first.
        values: The NLL of the full data at them `(C,)`.
        margin: An NLL difference within which the order of two candidates is not
            settled by `values` (the descents ran on a subsample, whose minima lie
            about Q/2 (N/M - 1) above the full data's for Q floating parameters, M of N
            events): `1 + Q (N/M - 1)`, 1 on the full data.
        axes: The signal parameters the cells span.
        cells: The cells evaluated (0: no search, the start only).
        events: The events of the coarse stages (a seeded subsample of the data).
        descents: The local descents run.
        nll_evals: NLL evaluations (each cell counts one, at `events` events).
        grad_evals: Gradient evaluations of the descents (at `events` events).
        seconds: Wall time.
    """

    starts: np.ndarray
    values: np.ndarray
    margin: float
    axes: list[str]
    cells: int
    events: int
    descents: int
    nll_evals: int
    grad_evals: int
    seconds: float

    def summary(self) -> str:
        r"""One line saying what the search did."""
        if not self.cells:
            return "no search: a local fit from the start"
        return (
            f"search: {self.cells} cells over {' x '.join(self.axes)} on {self.events} events, "
            f"{self.descents} descents from its lowest valleys, "
            f"{len(self.starts)} distinct minima, {self.seconds:.1f} s"
        )


def global_search(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    *,
    points: int = 512,
    events: int = 40_000,
    descents: int = 4,
    within: float = 25.0,
    seed: int = 0,
) -> Search:
    r"""Candidate minima of `nll` over the whole box of `space`, for a local fit to
    start from.

    Built on the likelihood's structure: a signal of a few percent on a large
    background is a narrow valley in the signal parameters, which no local search finds
    from far (one MIGRAD from the box centre, or from the best of 16 Sobol points, ends
    on a corner of the Breit-Wigner toy's box at a third to a half of the points drawn
    over it). So, on a seeded subsample of at most `events` events (weighted to the
    full data's sum, `MixtureLikelihood.subset`):

    1. the floating background parameters are fitted to the background alone (L-BFGS),
       the signal not yet placed;
    2. the NLL is evaluated on `points` cells over the floating signal parameters that
       the background does not share (a product grid of cell centres for up to 3 of
       them, `floor(points^(1/D))` per axis, else a scrambled Sobol set), and at the
       start, with the background there (its densities computed once for all cells,
       `MixtureLikelihood.log_densities`) and, in the extended form, the yields
       profiled (their sum is then the number of events, and the signal fraction
       maximizes a concave function: safeguarded Newton);
    3. L-BFGS descends, in every floating parameter, from the `descents` lowest cells
       that are local minima of the cells (no neighbour lower: one per valley of the
       coarse scan, so that a broad low region, a wide signal soaking up background at
       an edge, takes one descent, not all) and lie within `within` of the lowest cell's
       NLL (a cell lies above its valley's minimum by what half a cell and the
       background's offset cost: about 1-2 on the toy's subsample; a valley 25 above is
       ~7 standard deviations worse);
    4. the ends are evaluated on the full data, and ends within `SAME_MINIMUM` of each
       other merged.

    The cost is bounded: `points` + 1 cells and `descents` descents, each at `events`
    events, one background fit, and one batch on the full data. At the defaults
    the toy's narrowest signal (20 GeV wide) has 22 cells of 18 GeV along m_pole; the
    LHCO masses get 8 cells each. The subsample's `events`: at 20k, on the toy's 101k
    events, a wide signal whose minimum lies 0.57 below a valley at the box's edge was
    no valley of the cells, and the fit ended on the edge (docs/box_closure.md); at 40k
    every fit of the box closure (100 toy points, two sets of models; 20 LHCO points)
    ended at its global minimum, at 1.1-1.2 (toy) and 1.55 (LHCO) times the time of a
    fit at 20k. With no floating signal parameter apart from the
    background's, or `points=0`, there is nothing to search and the start, with the
    yields profiled there, is the one candidate.

    Arguments:
        nll: The likelihood.
        space: Its parameters, bounds, start and fixed parameters.
        points: Cells of the coarse scan; 0: no search.
        events: Most events of the coarse stages (all if the data hold fewer).
        descents: Most local descents, from the lowest valleys of the cells.
        within: NLL above the lowest cell within which a valley is descended.
        seed: Of the subsample and of the Sobol cells.

    Raises:
        FitError: If the NLL is not finite at any cell, or every descent failed.
    """
    if not 0 <= points <= MAX_POINTS or events < 1 or descents < 1 or not within > 0:
        raise InputError(
            f"the search needs points in 0..{MAX_POINTS}, events >= 1, descents >= 1 and "
            "within > 0, got "
            f"points={points}, events={events}, descents={descents}, within={within}"
        )
    t0 = time.perf_counter()
    background = {v.name for v in nll.background.theta_vars}
    axes = [
        v.name
        for v in nll.signal.theta_vars
        if v.name in space.floating_names and v.name not in background
    ]
    start = torch.as_tensor(space.start, dtype=torch.float64)
    if not points or not axes:  # the start alone, with the yields profiled there
        values, cells = _evaluate(nll, space, start[None], [0, 0])
        return Search(cells.numpy(), values, 1.0, axes, 0, len(nll.x), 0, 1, 0,
                      time.perf_counter() - t0)  # fmt: skip
    n = len(nll.x)
    sub = nll
    if n > events:
        rows = np.sort(np.random.default_rng(seed).choice(n, events, replace=False))
        sub = nll.subset(torch.from_numpy(rows))
    counts = [0, 0]  # NLL and gradient evaluations on the subsample

    start = _background_fit(sub, space, start, counts)
    cells, unit, width = _cells(space, axes, start, points, seed)
    values, cells = _evaluate(sub, space, cells, counts)
    chosen = _distinct(unit, values, descents, len(axes) <= 3, width)
    chosen = [c for c in chosen if values[c] <= values[chosen[0]] + within]
    ends = []
    for c in chosen:
        try:
            fit = gradient_scan(sub, ParameterSpace(space.theta_vars, cells[c], space.fixed_names),
                                starts=0, tol=0.05)  # fmt: skip
        except FitError:
            continue
        counts[0] += fit.nll_evals - fit.grad_evals
        counts[1] += fit.grad_evals
        ends.append(fit.theta)
    if not ends:
        raise FitError(f"every one of {len(chosen)} descents of the search failed")
    ends = torch.as_tensor(np.array(ends))
    with torch.no_grad():
        full = nll(ends).numpy()
    order = np.argsort(full)
    kept = _merge(space, ends.numpy()[order])
    q = int(space.floating.sum())
    return Search(
        starts=ends.numpy()[order][kept],
        values=full[order][kept],
        margin=1.0 + q * (n / len(sub.x) - 1.0),
        axes=axes,
        cells=len(cells) - 1,
        events=len(sub.x),
        descents=len(chosen),
        nll_evals=counts[0] + len(ends),
        grad_evals=counts[1],
        seconds=time.perf_counter() - t0,
    )


def _background_fit(
    sub: MixtureLikelihood, space: ParameterSpace, start: Tensor, counts: list[int]
) -> Tensor:
    r"""`start` with the floating parameters of the background density fitted to the
    background alone (signal fraction 0) on the events of `sub`."""
    names = [v.name for v in sub.background.theta_vars]
    floating = [n for n in names if n in space.floating_names]
    if not floating:
        return start
    alone = MixtureLikelihood(
        sub.signal, sub.background, sub.x, 0.0, 1.0, weights=sub.weights, check_models=False,
        check_data=False, constraints=[c for c in sub.constraints if c.name in names],
    )  # fmt: skip
    values = dict(zip(space.names, start.tolist(), strict=True))
    held = [n for n in alone.names if n not in floating]
    inner = ParameterSpace(alone.theta_vars, [values[n] for n in alone.names], held)
    fit = gradient_scan(alone, inner, starts=0, tol=0.05)
    counts[0] += fit.nll_evals - fit.grad_evals
    counts[1] += fit.grad_evals
    out = start.clone()
    for name in floating:
        out[space.names.index(name)] = float(fit.values[name])
    return out


def _cells(
    space: ParameterSpace, axes: list[str], start: Tensor, points: int, seed: int
) -> tuple[Tensor, np.ndarray, float]:
    r"""The start and `points` cells over `axes` (full thetas `(K + 1, P)`, the others
    at `start`), the cells' unit coordinates along `axes` `(K + 1, D)` and the cell
    width in them."""
    d = len(axes)
    if d <= 3:
        n = max(1, math.floor(points ** (1 / d) + 1e-9))
        centres = (np.arange(n) + 0.5) / n
        unit = np.stack(np.meshgrid(*[centres] * d, indexing="ij"), -1).reshape(-1, d)
        width = 1 / n
    else:
        unit = qmc.Sobol(d, scramble=True, seed=seed).random(points)
        width = points ** (-1 / d)
    columns = [space.names.index(a) for a in axes]
    bounds = space.bounds[columns]
    own = (start.numpy()[columns] - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])
    unit = np.vstack([own, unit])
    cells = start.repeat(len(unit), 1)
    cells[:, columns] = torch.from_numpy(bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0]))
    return cells, unit, width


def _evaluate(
    sub: MixtureLikelihood, space: ParameterSpace, cells: Tensor, counts: list[int]
) -> tuple[np.ndarray, Tensor]:
    r"""The NLL of `sub` at the cells `(K, P)`, in the extended form with the yields
    profiled where both float (the cells returned with them); computed on the data's
    device, returned on the CPU."""
    profile = sub.extended and {"n_sig", "n_bkg"} <= set(space.floating_names)
    values, out = [], []
    for batch in cells.to(sub.x.device).split(CELL_BATCH):
        lp_s, lp_b = sub.log_densities(batch)
        yields = None
        if sub.extended:
            yields = batch[:, :2].clone()
            if profile:
                total = sub.x.new_tensor(len(sub.x)) if sub.weights is None else sub.weights.sum()
                f = _signal_fraction(lp_s, lp_b, sub.weights)
                yields = torch.stack([f * total, (1 - f) * total], -1)
                high = torch.as_tensor(space.bounds[:2, 1], device=yields.device)
                yields = torch.minimum(yields, high)
            batch = batch.clone()
            batch[:, :2] = yields
        value = sub.from_log_densities(lp_s, lp_b, yields) + sub.constraint_nll(batch)
        values.append(value.nan_to_num(nan=math.inf))
        out.append(batch)
    counts[0] += len(cells)
    values = torch.cat(values).cpu().numpy()
    if not np.isfinite(values).any():
        raise FitError(f"the NLL is not finite at any of the search's {len(cells)} cells")
    return values, torch.cat(out).cpu()


def _signal_fraction(lp_s: Tensor, lp_b: Tensor, weights: Tensor | None) -> Tensor:
    r"""The signal fraction f in [0, 1] `(K,)` that maximizes
    L(f) = sum_i w_i log(f p_s(x_i) + (1 - f) p_b(x_i)) for per-event log-densities
    `(K, N)`: the profile of the extended likelihood's yields, whose sum is then
    sum_i w_i. L is concave: f = 0 where L'(0) <= 0, else Newton from 0, kept inside the
    bracket of L''s root (bisection where a step would leave it), until the Newton
    decrement L'^2 / |L''| (twice the NLL still to gain) is below 1e-6 everywhere."""
    top = torch.maximum(lp_s, lp_b)
    a, b = (lp_s - top).exp(), (lp_b - top).exp()
    w = 1.0 if weights is None else weights
    low, high = (torch.full((len(a),), v, dtype=a.dtype, device=a.device) for v in (0.0, 1.0))
    f = low.clone()
    for _ in range(50):
        density = (f[:, None] * a + (1 - f[:, None]) * b).clamp_min(1e-300)
        ratio = (a - b) / density
        slope, curve = (w * ratio).sum(-1), (w * ratio**2).sum(-1).clamp_min(1e-300)
        done = (slope**2 / curve < 1e-6) | ((f == 0) & (slope <= 0))
        if done.all():
            break
        low, high = torch.where(slope > 0, f, low), torch.where(slope > 0, high, f)
        step = f + slope / curve
        step = torch.where((step > low) & (step < high), step, (low + high) / 2)
        f = torch.where(done, f, step)
    return f


def _distinct(unit: np.ndarray, values: np.ndarray, k: int, grid: bool, width: float) -> list[int]:
    r"""The indices of the `k` lowest cells that are local minima of the cells: no
    neighbour lower. Neighbours of a product grid's cell (unit coordinates `(K, D)`,
    cell `width`) are the cells around it, within 1.5 widths (Chebyshev); of a Sobol
    set's point its 2 D nearest points."""
    tree = cKDTree(unit)
    if grid:
        neighbours = tree.query_ball_point(unit, 1.5 * width, p=np.inf)
    else:
        neighbours = tree.query(unit, min(2 * unit.shape[1], len(unit) - 1) + 1)[1]
    minima = [
        i
        for i in np.argsort(values)
        if np.isfinite(values[i]) and all(values[i] <= values[j] for j in neighbours[i])
    ]
    return [int(i) for i in minima[:k]]


def _merge(space: ParameterSpace, ends: np.ndarray) -> list[int]:
    r"""The indices of `ends` `(C, P)` (lowest NLL first) that are distinct minima: an
    end within `SAME_MINIMUM` of the range of every floating parameter of a lower one
    is the same minimum."""
    width = space.bounds[:, 1] - space.bounds[:, 0]
    scaled = ends[:, space.floating] / width[space.floating]
    kept: list[int] = []
    for i, point in enumerate(scaled):
        if all(np.abs(point - scaled[j]).max() >= SAME_MINIMUM for j in kept):
            kept.append(i)
    return kept
