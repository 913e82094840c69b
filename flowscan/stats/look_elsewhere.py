r"""The look-elsewhere effect of a search whose signal parameters float: the global
significance of the largest local excess, from background-only pseudo-experiments (its
definition) and from the Euler characteristic of the excursion sets of the q0 field
(Gross and Vitells, EPJC 70 (2010) 525, upcrossings for one parameter; Vitells and
Gross, Astropart. Phys. 35 (2011) 230, several), which extrapolates from a few
pseudo-experiments at a low threshold to a high significance."""

from __future__ import annotations

__all__ = [
    "GlobalSignificance",
    "GrossVitells",
    "checked_grid",
    "euler_characteristic",
    "global_significance",
    "gross_vitells",
    "q0_field",
    "upcrossings",
]

import itertools
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import stats

from ..constraints import Constraint
from ..exceptions import FitError, InputError
from ..parallel import map_tasks
from ..scanner import Density, FitSettings, MixtureLikelihood, ParameterSpace, gradient_scan
from ..scanner import fit as fit_likelihood
from .hypotest import check_signal_yield, discovery, signal_parameters
from .profile import conditional_minimum
from .pseudo_experiments import pseudo_dataset, toy_seed

if TYPE_CHECKING:
    from distributed import Client

# The reference thresholds of q0 at which the Euler characteristic is counted, the first
# D of them for D floating signal parameters: low, where excursions are many.
THRESHOLDS = (0.5, 1.5, 2.5)


def _snake(shape: Sequence[int]) -> Iterator[tuple[int, ...]]:
    r"""The indices of a grid of `shape` in boustrophedon order: each step to a
    neighbour, so that every fit starts from the last one's minimum."""
    if len(shape) == 1:
        yield from ((i,) for i in range(shape[0]))
        return
    rest = list(_snake(shape[1:]))
    for i in range(shape[0]):
        yield from ((i, *r) for r in (rest[::-1] if i % 2 else rest))


def q0_field(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    grid: Mapping[str, Sequence[float]],
    *,
    tol: float = 1e-4,
) -> np.ndarray:
    r"""The discovery test statistic q0 at each point of a grid of the signal parameters:
    2 (NLL(n_sig = 0) - NLL(n_sig fitted)) where the fitted n_sig is positive, else 0,
    the other floating parameters of `space` profiled (L-BFGS, tolerance `tol` in NLL,
    each point started from its neighbour's minimum).

    Arguments:
        nll: An extended `MixtureLikelihood`.
        space: Its parameters; `n_sig` floating, the start of the background's.
        grid: Values of every signal parameter, by name, in any order of names.

    Returns:
        q0 of shape `(len(grid[name]) for name in grid)`.
    """
    check_signal_yield(nll, space, "a q0 field")
    names, signal = list(grid), signal_parameters(nll)
    if sorted(names) != sorted(signal):
        raise InputError(f"a q0 field needs values of the signal parameters {signal}, got {names}")
    held = [*space.fixed_names, *(n for n in signal if n not in space.fixed_names)]
    null = ParameterSpace(space.theta_vars, space.start, held)
    nll_0, theta = conditional_minimum(nll, null, {"n_sig": 0.0}, tol=tol)
    k_sig, k_bkg = space.names.index("n_sig"), space.names.index("n_bkg")
    theta[k_sig] = math.sqrt(theta[k_bkg])  # a 1-sigma excess: off the bound n_sig = 0
    shape = [len(grid[n]) for n in names]
    q0 = np.zeros(shape)
    for index in _snake(shape):
        for name, k in zip(names, index, strict=True):
            theta[space.names.index(name)] = grid[name][k]
        fit = gradient_scan(nll, ParameterSpace(space.theta_vars, theta, held), tol=tol)
        theta = fit.theta.copy()
        q0[index] = max(0.0, 2 * (nll_0 - fit.nll)) if theta[k_sig] > 0 else 0.0
        theta[k_sig] = max(theta[k_sig], math.sqrt(theta[k_bkg]))
    return q0


def upcrossings(q0: np.ndarray, threshold: float) -> int:
    r"""The number of upcrossings of `threshold` along a curve `(K,)`: steps from at or
    below it to above it.

    Example:
        >>> upcrossings(np.array([0.0, 2.0, 0.5, 3.0, 3.0, 0.0]), 1.0)
        2
    """
    q0 = np.asarray(q0, dtype=float)
    if q0.ndim != 1:
        raise InputError(f"upcrossings are counted along a curve (1D), got shape {q0.shape}")
    return int(np.sum((q0[:-1] <= threshold) & (q0[1:] > threshold)))


def euler_characteristic(excursion: np.ndarray) -> int:
    r"""The Euler characteristic of a set of grid points `(N_1, ..., N_D)` (boolean),
    as the union of the grid's cells whose corners all lie in it: vertices - edges +
    squares - cubes (a blob counts 1, a blob with a hole 0, a shell around a cavity 2;
    along a curve, the number of intervals).

    Example:
        >>> ring = np.ones((5, 5), dtype=bool)
        >>> ring[2, 2] = False
        >>> euler_characteristic(ring), euler_characteristic(~ring)
        (0, 1)
    """
    excursion = np.asarray(excursion, dtype=bool)
    chi = 0
    for k in range(excursion.ndim + 1):
        for axes in itertools.combinations(range(excursion.ndim), k):
            cells = excursion
            for a in axes:  # the cells spanned by these axes: every corner inside
                n = cells.shape[a]
                cells = cells.take(range(n - 1), axis=a) & cells.take(range(1, n), axis=a)
            chi += (-1) ** k * int(cells.sum())
    return chi


def _densities(u: float, dimensions: int) -> np.ndarray:
    r"""The Euler-characteristic densities of a chi^2 field with 1 degree of freedom,
    up to constants: e^(-u/2) times 1, sqrt(u), u - 1 for dimensions 1, 2, 3."""
    return math.exp(-u / 2) * np.array([1.0, math.sqrt(u), u - 1.0])[:dimensions]


@dataclass
class GrossVitells:
    r"""The expected Euler characteristic of the excursion set {q0 > u} over the
    scanned signal parameters, E[phi(u)] = Phi(-sqrt u) + sum_d N_d rho_d(u), from its
    mean over background-only q0 fields at D reference thresholds; at a high u it is
    the global p-value of q0 = u.

    Attributes:
        thresholds: The reference thresholds `(D,)`.
        mean: The mean Euler characteristic there `(D,)`.
        covariance: The covariance of those means `(D, D)` (over the fields).
        coefficients: N_d `(D,)` (for one parameter, N_1 e^(-u/2) is the mean number
            of upcrossings of u).
        fields: How many fields the means come from.
    """

    thresholds: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    coefficients: np.ndarray
    coefficients_covariance: np.ndarray = field(repr=False)
    fields: int

    def expected_euler(self, u: float) -> tuple[float, float]:
        r"""E[phi(u)] and its standard error (from the fields' Monte Carlo spread)."""
        g = _densities(u, len(self.coefficients))
        mean = float(stats.norm.sf(math.sqrt(max(u, 0.0))) + g @ self.coefficients)
        return mean, float(math.sqrt(max(g @ self.coefficients_covariance @ g, 0.0)))

    def p_value(self, q0: float) -> tuple[float, float]:
        r"""The global p-value of a local q0, E[phi(q0)] within [0, 1] (a bound where
        excursions are not rare), and its standard error."""
        p, error = self.expected_euler(q0)
        return min(max(p, 0.0), 1.0), error


def gross_vitells(fields: Sequence[np.ndarray], thresholds: Sequence[float]) -> GrossVitells:
    r"""`GrossVitells` from background-only q0 fields `(N_1, ..., N_D)` (`q0_field`)
    and D reference thresholds."""
    fields = [np.asarray(f, dtype=float) for f in fields]
    d = fields[0].ndim if fields else 0
    thresholds = np.asarray(thresholds, dtype=float)
    if len(fields) < 2 or any(f.shape != fields[0].shape for f in fields):
        raise InputError("give at least 2 background-only q0 fields of one shape")
    if not 1 <= d <= 3 or thresholds.shape != (d,) or len(set(thresholds)) < d:
        raise InputError(f"a field over {d} parameters needs {d} distinct thresholds (1 to 3)")
    counts = np.array([[euler_characteristic(f > u) for u in thresholds] for f in fields])
    mean = counts.mean(axis=0)
    covariance = np.atleast_2d(np.cov(counts, rowvar=False)) / len(fields)
    design = np.stack([_densities(u, d) for u in thresholds])
    inverse = np.linalg.inv(design)
    local = np.array([stats.norm.sf(math.sqrt(u)) for u in thresholds])
    coefficients = inverse @ (mean - local)
    return GrossVitells(
        thresholds, mean, covariance, coefficients, inverse @ covariance @ inverse.T, len(fields)
    )


def checked_grid(
    grid: Mapping[str, Sequence[float]], thresholds: Sequence[float] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    r"""A grid of the q0 fields and its Gross-Vitells thresholds, checked: 1 to 3
    parameters, each at 2 or more increasing values; D distinct positive thresholds
    (default the first D of `THRESHOLDS`). Raises `InputError` otherwise.

    Example:
        >>> grid, u = checked_grid({"m_pole": [300.0, 400.0, 500.0]})
        >>> u
        array([0.5])
    """
    grid = {n: np.asarray(v, dtype=float) for n, v in grid.items()}
    if not 1 <= len(grid) <= 3:
        raise InputError(
            f"Gross-Vitells covers 1 to 3 floating signal parameters, got {len(grid)} "
            f"{list(grid)}: fix some, or estimate by the toys alone"
        )
    for name, values in grid.items():
        if values.ndim != 1 or len(values) < 2 or not np.all(np.diff(values) > 0):
            raise InputError(f"the q0 field's grid of {name} needs 2 or more increasing values")
    d = len(grid)
    thresholds = np.asarray(THRESHOLDS[:d] if thresholds is None else thresholds, dtype=float)
    if (
        thresholds.shape != (d,)
        or len(set(thresholds.tolist())) < d
        or not np.all(np.isfinite(thresholds) & (thresholds > 0))
    ):
        raise InputError(
            f"give {d} distinct positive threshold(s) of q0, one per floating signal "
            f"parameter {list(grid)}, got {thresholds.tolist()}"
        )
    return grid, thresholds


def _z(p: float) -> float:
    return float(stats.norm.isf(p)) if 0 < p < 1 else (math.inf if p <= 0 else -math.inf)


def _z_error(p: float, error: float) -> float:
    r"""The standard error of Z = Phi^-1(1 - p) from that of p: dp / phi(Z)."""
    if not (0 < p < 1 and math.isfinite(error)):
        return math.nan
    return error / float(stats.norm.pdf(_z(p)))


@dataclass
class GlobalSignificance:
    r"""The local and global significance of the largest excess of a search.

    Attributes:
        q0: The observed local q0: the larger of the fit's and its grid's maximum.
        local_p, local_z: Its local p-value and significance.
        toys_q0: The largest q0 of each background-only pseudo-experiment `(T,)` (the
            same global search as the fit's; NaN where its fit failed).
        p_toys, p_toys_error: The fraction of them at or above `q0` and its binomial
            standard error (where none is: 0, and the error 1 / T).
        z_toys: The global significance from the toys; where no toy reaches `q0`
            (`bound`), that of p = 1 / T, a lower bound.
        gross_vitells: The Euler-characteristic estimate (`None` without a grid or with
            fewer than 2 fields).
        p_gv, p_gv_error, z_gv: Its global p-value, standard error and significance.
        data_field: The data's q0 field over the grid, axes in its order (`None`
            without).
        fields: The q0 fields of the toys whose fits succeeded, axes in the grid's order.
        missed: Toys whose grid holds a q0 above their global search's by more than
            0.01: maxima the search missed (a toy's q0 is the larger of the two, as the
            data's).
    """

    q0: float
    local_p: float
    local_z: float
    toys_q0: np.ndarray = field(repr=False)
    p_toys: float
    p_toys_error: float
    z_toys: float
    gross_vitells: GrossVitells | None
    p_gv: float
    p_gv_error: float
    z_gv: float
    data_field: np.ndarray | None = field(repr=False)
    fields: list[np.ndarray] = field(repr=False)
    missed: int

    @property
    def bound(self) -> bool:
        r"""No toy reached `q0`: `p_toys` is below 1 / T and `z_toys` a lower bound."""
        return self.p_toys == 0

    def table(self) -> list[dict[str, float | str]]:
        r"""Rows (estimate, p-value, its error, Z, its error, trials factor) for printing;
        a bound as text."""
        valid = int(np.isfinite(self.toys_q0).sum())
        rows = [("local", self.local_p, 0.0, self.local_z)]
        rows.append((f"global, {valid} toys", self.p_toys, self.p_toys_error, self.z_toys))
        if self.gross_vitells is not None:
            rows.append((f"global, Gross-Vitells ({self.gross_vitells.fields} fields)",
                         self.p_gv, self.p_gv_error, self.z_gv))  # fmt: skip
        out = []
        for k, (name, p, e, z) in enumerate(rows):
            trials = p / self.local_p if self.local_p > 0 else math.nan
            row = {"estimate": name, "p_value": p, "p_error": e, "Z": z,
                   "Z_error": _z_error(p, e) if e else 0.0, "trials_factor": trials}  # fmt: skip
            if k == 1 and self.bound:  # the toys' row: bounds
                row |= {"p_value": f"< {1 / valid:.2g}", "Z": f"> {z:.2f}", "Z_error": math.nan,
                        "trials_factor": f"< {1 / valid / self.local_p:.3g}"
                        if self.local_p > 0 else math.nan}  # fmt: skip
            out.append(row)
        return out


@dataclass(frozen=True)
class _NullToy:
    r"""One background-only pseudo-experiment: its largest q0 by the data's fit
    (`settings`), and its q0 field over `grid` for the first `fields` toys."""

    signal: Density
    background: Density
    negative_signal: bool
    max_yield: float
    names: tuple[str, ...]
    truth: tuple[float, ...]  # the background-only fit to the data, n_sig = 0
    fixed: tuple[str, ...]
    grid: tuple[tuple[str, tuple[float, ...]], ...]
    fields: int
    seed: int
    settings: FitSettings
    constraints: tuple[Constraint, ...] = ()

    def __call__(self, toy: int) -> dict[str, object]:
        truth = dict(zip(self.names, self.truth, strict=True))
        parts = [
            torch.tensor([truth[v.name] for v in d.theta_vars], dtype=torch.float64)
            for d in (self.signal, self.background)
        ]
        seed = toy_seed(self.seed, toy)
        x = pseudo_dataset(self.signal, self.background, 0.0, truth["n_bkg"], *parts, seed)
        rng = np.random.default_rng([self.seed, toy, 1])
        constraints = [c.fluctuated(truth[c.name], rng) for c in self.constraints]
        row: dict[str, object] = {"toy": toy, "events": len(x), "q0": math.nan, "field": None}
        if len(x) == 0:
            return row | {"q0": 0.0}
        nll = MixtureLikelihood(
            self.signal, self.background, x, negative_signal=self.negative_signal,
            max_yield=self.max_yield, check_models=False, check_data=False,
            constraints=constraints,
        )  # fmt: skip
        start = np.array(self.truth)
        if "n_bkg" not in self.fixed:  # a fixed one stays the truth's
            start[self.names.index("n_bkg")] = len(x)
        space = ParameterSpace(nll.theta_vars, start, self.fixed)
        settings = replace(
            self.settings, start=dict(zip(self.names, start.tolist(), strict=True)),
            fixed=list(self.fixed),
        )  # fmt: skip
        try:
            row["q0"] = discovery(nll, space, fit_likelihood(nll, settings)).q0
            if toy < self.fields:
                row["field"] = q0_field(nll, space, dict(self.grid))
        except FitError as e:
            row["message"] = str(e)
        return row


def global_significance(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    q0: float,
    toys: int = 100,
    *,
    settings: FitSettings | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    fields: int | None = None,
    thresholds: Sequence[float] | None = None,
    seed: int = 0,
    client: Client | None = None,
    progress: bool = True,
) -> GlobalSignificance:
    r"""The global significance of an observed local `q0` (`discovery` with the signal
    parameters floating in `space`) of the data of `nll`. Without floating signal
    parameters (one point) the global p-value is the local one, and the toys check it.

    Background-only pseudo-experiments are drawn from the likelihood's background
    density at the background-only fit to the data (n_sig = 0, the other floating
    parameters profiled; Poisson(n_bkg) events; the constraints' global observables
    fluctuated), and each is fitted as the data were (`settings`, `flowscan.scanner.fit`:
    the same global search and method): the global p-value is the fraction whose
    largest q0 reaches `q0`. With a `grid` of the signal parameters (`checked_grid`),
    the data's q0 field over it is computed, and q0 raised to its maximum where the fit
    missed one; the first `fields` toys also give theirs (`q0_field`), whose Euler
    characteristics at `thresholds` give the Gross-Vitells estimate, and whose maximum
    checks the search (`GlobalSignificance.missed`).

    Arguments:
        nll: An extended `MixtureLikelihood` of the data whose background can `sample`.
        space: Its parameters as the data's fit had them: `n_sig` and the signal
            parameters floating; the signal parameters not in `grid` at their values.
        q0: The observed local q0.
        toys: Background-only pseudo-experiments.
        settings: The data's fit (method, options, seed; start and fixed are each
            toy's); default `FitSettings()`.
        grid: Values of every floating signal parameter, by name.
        fields: How many toys give a field (default all; at least 2).
        thresholds: The D reference thresholds of q0.
        seed: Of the study; toy i has `toy_seed(seed, i)`.
        client: A Dask client (`dask_client`); here if `None`.
        progress: Show a progress bar.
    """
    check_signal_yield(nll, space, "the global significance")
    if not (math.isfinite(q0) and q0 >= 0):
        raise InputError(f"the observed q0 must be a number >= 0, got {q0}")
    if toys < 1:
        raise InputError(f"need at least 1 pseudo-experiment, got {toys}")
    names = signal_parameters(nll)
    signal = [n for n in names if n in space.floating_names]
    grid = dict(grid or {})
    if grid:
        if sorted(grid) != sorted(signal):
            raise InputError(f"the grid needs values of the floating signal parameters {signal}")
        grid, thresholds = checked_grid(grid, thresholds)
        fields = toys if fields is None else fields
        if not 2 <= fields <= toys:
            raise InputError(f"Gross-Vitells needs 2 to {toys} fields (the toys), got {fields}")
    held = [*space.fixed_names, *(n for n in names if n not in space.fixed_names)]
    _, truth = conditional_minimum(
        nll, ParameterSpace(space.theta_vars, space.start, held), {"n_sig": 0.0}
    )
    # the fixed signal parameters first, at their values: the fields' axes squeeze to
    # the grid's, in its order
    full = {n: [float(space.start[space.names.index(n)])] for n in names if n not in grid} | grid
    fixed_axes = tuple(range(len(full) - len(grid)))
    data_field = None
    if grid:
        data_field = np.squeeze(q0_field(nll, space, full), axis=fixed_axes)
        q0 = max(q0, float(data_field.max()))
    task = _NullToy(
        nll.signal, nll.background, nll.negative_signal, nll.theta_vars[0].high,
        tuple(nll.names), tuple(map(float, truth)), tuple(space.fixed_names),
        tuple((n, tuple(map(float, v))) for n, v in full.items()), fields if grid else 0,
        seed, settings or FitSettings(), nll.constraints,
    )  # fmt: skip
    rows = map_tasks(task, list(range(toys)), client, progress=progress, desc="null toys")
    maxima = np.array([r["q0"] for r in rows], dtype=float)
    mapped = [(r["toy"], np.squeeze(r["field"], axis=fixed_axes)) for r in rows
              if r["field"] is not None]  # fmt: skip
    missed = sum(m.max() > maxima[k] + 0.01 for k, m in mapped)
    for k, m in mapped:
        maxima[k] = max(maxima[k], m.max())
    valid = maxima[np.isfinite(maxima)]
    if len(valid) == 0:
        raise FitError("every background-only pseudo-experiment's fit failed")
    hits = float(np.sum(valid >= q0))
    p_toys = hits / len(valid)
    p_error = math.sqrt(p_toys * (1 - p_toys) / len(valid)) if hits else 1 / len(valid)
    local = float(stats.norm.sf(math.sqrt(q0)))
    # no floating signal parameter: one point, whose excursion set is there or not
    gv, p_gv, p_gv_error = None, (math.nan if signal else local), (math.nan if signal else 0.0)
    maps = [m for _, m in mapped]
    if grid and len(maps) < 2:
        warnings.warn(
            f"only {len(maps)} pseudo-experiment(s) gave a q0 field (the others' fits "
            "failed): no Gross-Vitells estimate", stacklevel=2,
        )  # fmt: skip
    elif grid:
        gv = gross_vitells(maps, thresholds)
        p_gv, p_gv_error = gv.p_value(q0)
    return GlobalSignificance(
        q0, local, math.sqrt(q0), maxima, p_toys, p_error, _z(p_toys if hits else 1 / len(valid)),
        gv, p_gv, p_gv_error, _z(p_gv) if math.isfinite(p_gv) else math.nan, data_field,
        maps, missed,
    )  # fmt: skip
