r"""Upper limits on the signal yield by the CLs method (A. L. Read, J. Phys. G 28 (2002)
2693) with the test statistic q~_mu of Cowan, Cranmer, Gross and Vitells, EPJC 71 (2011)
1554 (CCGV), secs. 3.7 and 5: from the asymptotic formulae with an Asimov dataset for the
expected band, or from the distributions of q~_mu in pseudo-experiments."""

from __future__ import annotations

__all__ = [
    "SIGMAS",
    "UpperLimit",
    "cls_asymptotic",
    "cls_expected",
    "upper_limit",
    "upper_limit_toys",
]

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import interpolate, optimize, stats

from ..constraints import Constraint
from ..exceptions import InputError
from ..parallel import map_tasks
from ..scanner import Density, MixtureLikelihood, ParameterSpace, gradient_scan
from .asimov import asimov
from .hypotest import check_signal_yield
from .profile import conditional_minimum
from .pseudo_experiments import pseudo_dataset, toy_seed

if TYPE_CHECKING:
    from distributed import Client

# The expected band: limits at these quantiles of the background-only hypothesis, in
# standard deviations (-2, -1, median, +1, +2; positive is a higher limit).
SIGMAS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])


@dataclass
class UpperLimit:
    r"""An upper limit on the signal yield at fixed signal parameters.

    Attributes:
        cl: Confidence level, e.g. 0.95.
        observed: Upper limit on n_sig from the data, in events.
        expected: Limits expected under background only at the quantiles `SIGMAS`,
            shape `(5,)`, in events.
        n_sig_hat: Best-fit n_sig (bounded below by 0 unless the likelihood allows
            negative signal).
        method: `"asymptotic"` or `"toys"`.
        scan: With toys, rows (n_sig, CLs+b, CLb, CLs, expected CLs at `SIGMAS`) at
            each tested n_sig, shape `(K, 9)`.
    """

    cl: float
    observed: float
    expected: np.ndarray
    n_sig_hat: float
    method: str
    scan: np.ndarray | None = field(default=None, repr=False)


def cls_asymptotic(q: float, q_asimov: float) -> float:
    r"""CLs = CLs+b / CLb of an observed q~_mu, given q_mu,A of the background-only Asimov
    dataset (CCGV eqs. 65-66; the q~_mu > q_mu,A branch included)."""
    if q_asimov <= 0:
        return 1.0
    sq, sa = math.sqrt(max(q, 0.0)), math.sqrt(q_asimov)
    t = sq - sa if sq <= sa else (q - q_asimov) / (2 * sa)
    return float(np.exp(stats.norm.logsf(t + sa) - stats.norm.logsf(t)))


def cls_expected(q_asimov: float, n_sigma: float) -> float:
    r"""CLs expected at `n_sigma` standard deviations of the background-only hypothesis:
    Phi(N - sqrt(q_mu,A)) / Phi(N) (CCGV eq. 89 before solving for mu)."""
    sa = math.sqrt(max(q_asimov, 0.0))
    return float(np.exp(stats.norm.logcdf(n_sigma - sa) - stats.norm.logcdf(n_sigma)))


def _check(nll: MixtureLikelihood, space: ParameterSpace) -> None:
    check_signal_yield(nll, space, "an upper limit on n_sig")
    nuisances = {c.name for c in nll.constraints}  # a nuisance the signal shares is profiled
    signal = {v.name for v in nll.signal.theta_vars} - nuisances
    floating = sorted(signal & set(space.floating_names))
    if floating:
        raise InputError(
            f"fix the signal parameters {floating}: a limit is set at given signal "
            "parameters (scan them with `flowscan limits` for a limit curve)"
        )


class _Qtilde:
    r"""q~_mu of one likelihood as a function of mu = n_sig (CCGV eq. 16): 0 for mu below
    the fitted n_sig, else twice the NLL at mu above the minimum with n_sig >= 0; the
    other floating parameters are profiled (L-BFGS from `space.start`, tolerance `tol`
    in NLL). For an Asimov dataset (`asimov=True`) the minimum is n_sig = 0 at
    `space.start` by construction, and is not fitted."""

    def __init__(
        self, nll: MixtureLikelihood, space: ParameterSpace, tol: float, asimov: bool = False
    ) -> None:
        self.nll, self.space, self.tol = nll, space, tol
        self.values: dict[float, float] = {}
        self.minima: dict[float, np.ndarray] = {}
        if asimov:
            self.mu_hat, self.reference = 0.0, self.conditional(0.0)[0]
            return
        fit = gradient_scan(nll, space, starts=0, tol=tol)
        self.mu_hat, self.space = (
            fit.values["n_sig"],
            ParameterSpace(space.theta_vars, fit.theta, space.fixed_names),
        )
        self.reference = fit.nll if self.mu_hat >= 0 else self.conditional(0.0)[0]

    def conditional(self, mu: float) -> tuple[float, np.ndarray]:
        r"""The NLL minimized at n_sig = `mu`, and theta there; started from the
        minimum at the nearest n_sig done before."""
        if self.minima:
            near = min(self.minima, key=lambda m: abs(m - mu))
            space = ParameterSpace(self.space.theta_vars, self.minima[near], self.space.fixed_names)
        else:
            space = self.space
        value, theta = conditional_minimum(self.nll, space, {"n_sig": mu}, tol=self.tol)
        self.minima[mu] = theta
        return value, theta

    def __call__(self, mu: float) -> float:
        if mu <= self.mu_hat:
            return 0.0
        if mu not in self.values:
            self.values[mu] = max(0.0, 2 * (self.conditional(mu)[0] - self.reference))
        return self.values[mu]


def _root(f: Callable[[float], float], alpha: float, low: float, high: float) -> float:
    r"""The n_sig in [`low`, `high`] where the decreasing `f` (a CLs) crosses `alpha`."""
    return optimize.brentq(lambda mu: f(mu) - alpha, low, high, xtol=1e-9 * (high - low))


def upper_limit(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    *,
    cl: float = 0.95,
    asimov_events: int = 10_000,
    seed: int = 0,
    points: int = 13,
    tol: float = 1e-4,
) -> UpperLimit:
    r"""Asymptotic CLs upper limit on n_sig at the fixed signal parameters of `space`,
    with the expected band from the background-only Asimov dataset.

    q~_mu is measured on the data; q_mu,A on `asimov(nll, theta_0)`, with theta_0 the
    background-only fit to the data (n_sig = 0, the other floating parameters profiled).
    Both are computed on `points` values of n_sig over 5 sigma above the fitted n_sig
    (more until CLs falls below 1 - `cl`), and their square roots, smooth and nearly
    linear in n_sig, are interpolated (monotone cubic) in between: ~2 `points` profile
    fits in all. The limit is the n_sig where CLs = 1 - `cl`; the expected limits solve
    `cls_expected` = 1 - `cl` at each of `SIGMAS`.

    Arguments:
        nll: An extended `MixtureLikelihood` whose densities can `sample`.
        space: Its parameters: `n_sig` floating, the signal parameters fixed at the
            masses to test, the rest floating (profiled) or fixed.
        cl: Confidence level.
        asimov_events: Size of the weighted Asimov sample.
        seed: Seed of the Asimov sample.
        points: Values of n_sig per curve and extension.
        tol: NLL tolerance of each profile fit.
    """
    _check(nll, space)
    if not 0 < cl < 1:
        raise InputError(f"cl must lie in (0, 1), got {cl}")
    q_obs = _Qtilde(nll, space, tol)
    theta_0 = q_obs.conditional(0.0)[1]
    data_a = asimov(nll, theta_0, asimov_events, seed)
    q_a = _Qtilde(
        data_a, ParameterSpace(data_a.theta_vars, theta_0, space.fixed_names), tol, asimov=True
    )
    alpha, top = 1 - cl, nll.theta_vars[0].high
    mu_1 = math.sqrt(theta_0[1]) + 1
    sigma = mu_1 / math.sqrt(max(q_a(mu_1), 1e-12))  # of n_sig, roughly
    low, high = max(q_obs.mu_hat, 0.0), 0.0
    grid_a, grid_obs = [0.0], [low]
    while True:  # extend the grids until every CLs falls below alpha inside them
        if high >= top:
            raise InputError(
                f"CLs stays above {alpha:g} up to n_sig = {top:g}, the top of its range: "
                "the data cannot exclude any signal yield the likelihood allows"
            )
        high = min(top, low + 5 * sigma if high == 0 else low + 2 * (high - low))
        grid_a += np.linspace(grid_a[-1], high, points)[1:].tolist()
        grid_obs += np.linspace(grid_obs[-1], high, points)[1:].tolist()
        root_a = interpolate.PchipInterpolator(grid_a, [math.sqrt(q_a(m)) for m in grid_a])
        root_obs = interpolate.PchipInterpolator(grid_obs, [math.sqrt(q_obs(m)) for m in grid_obs])

        def observed_cls(mu: float, root_obs=root_obs, root_a=root_a) -> float:
            return cls_asymptotic(float(root_obs(mu)) ** 2, float(root_a(mu)) ** 2)

        def expected_cls(mu: float, n: float, root_a=root_a) -> float:
            return cls_expected(float(root_a(mu)) ** 2, n)

        if observed_cls(high) < alpha and expected_cls(high, SIGMAS[-1]) < alpha:
            break
    observed = _root(observed_cls, alpha, low, high)
    expected = np.array(
        [_root(lambda mu, n=n: expected_cls(mu, n), alpha, 0, high) for n in SIGMAS]
    )
    return UpperLimit(cl, observed, expected, q_obs.mu_hat, "asymptotic")


@dataclass(frozen=True)
class _ToyQtilde:
    r"""q~_mu on pseudo-datasets drawn from the likelihood's own densities: a picklable
    task over a range of toys of one (mu, hypothesis) pair."""

    signal: Density
    background: Density
    negative_signal: bool
    max_yield: float
    fixed: tuple[str, ...]
    mus: tuple[float, ...]
    thetas: tuple[tuple[float, ...], ...]  # the truth of pair 2k (s+b at mus[k]) and 2k+1 (b)
    tol: float
    seed: int
    names: tuple[str, ...]  # of the likelihood's parameters, the order of thetas
    constraints: tuple[Constraint, ...] = ()

    def __call__(self, item: tuple[int, int, int]) -> np.ndarray:
        pair, start, stop = item
        mu, theta = self.mus[pair // 2], torch.tensor(self.thetas[pair], dtype=torch.float64)
        truth = dict(zip(self.names, theta.tolist(), strict=True))
        parts = [
            torch.tensor([truth[v.name] for v in d.theta_vars], dtype=torch.float64)
            for d in (self.signal, self.background)
        ]
        out = []
        for toy in range(start, stop):
            seed = toy_seed(self.seed, (pair << 32) + toy)
            x = pseudo_dataset(
                self.signal, self.background, truth["n_sig"], truth["n_bkg"], *parts, seed
            )
            # the global observables around the nuisances' conditional values
            rng = np.random.default_rng([seed, 1])
            constraints = [c.fluctuated(truth[c.name], rng) for c in self.constraints]
            if len(x) == 0:  # NLL = n_sig + n_bkg: q~_mu = 2 mu exactly
                out.append(2 * mu)
                continue
            nll = MixtureLikelihood(
                self.signal,
                self.background,
                x,
                negative_signal=self.negative_signal,
                max_yield=self.max_yield,
                check_models=False,
                check_data=False,
                constraints=constraints,
            )
            space = ParameterSpace(nll.theta_vars, theta.numpy(), self.fixed)
            out.append(_Qtilde(nll, space, self.tol)(mu))
        return np.array(out)


def upper_limit_toys(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    values: Sequence[float],
    toys: int = 500,
    *,
    cl: float = 0.95,
    seed: int = 0,
    tol: float = 1e-4,
    client: Client | None = None,
    progress: bool = True,
) -> UpperLimit:
    r"""CLs upper limit on n_sig from pseudo-experiments, for small samples where the
    asymptotic formulae do not hold.

    At each n_sig = mu in `values`, `toys` pseudo-datasets are drawn from the likelihood's
    densities under signal plus background (yields and nuisance parameters from the fit
    to the data at n_sig = mu) and as many under background only (the fit at n_sig = 0),
    and q~_mu is computed on each as on the data. CLs+b and CLb are the fractions of
    them with q~_mu at or above the data's (within 2 `tol`, so that the ties of a
    discrete experiment count; CLb is floored at 1/`toys`), CLs = CLs+b / CLb. The
    expected CLs at N standard deviations puts the background-only quantile Phi(-N) of
    q~_mu in place of the data's. Each limit interpolates log CLs linearly between the
    values around 1 - `cl`.

    Arguments:
        nll, space: As for `upper_limit`.
        values: Increasing n_sig to test, spanning the limits (e.g. around the
            asymptotic ones).
        toys: Pseudo-experiments per value and hypothesis.
        cl, seed, tol: Confidence level, seed of the study, NLL tolerance of each fit.
        client: A Dask client (`dask_client`) to run the toys on; here if `None`.
        progress: Show a progress bar.
    """
    _check(nll, space)
    mus = np.asarray(values, dtype=float)
    if mus.ndim != 1 or len(mus) < 2 or not (np.diff(mus) > 0).all() or mus[0] <= 0:
        raise InputError("give at least 2 increasing positive n_sig values to test")
    if toys < 10:
        raise InputError(f"CLs from fewer than 10 toys per point is meaningless, got {toys}")
    q_obs = _Qtilde(nll, space, tol)
    theta_0 = q_obs.conditional(0.0)[1]
    thetas = []
    for mu in mus:
        thetas += [tuple(q_obs.conditional(mu)[1]), tuple(theta_0)]
    task = _ToyQtilde(
        nll.signal,
        nll.background,
        nll.negative_signal,
        nll.theta_vars[0].high,
        tuple(space.fixed_names),
        tuple(mus.tolist()),
        tuple(thetas),
        tol,
        seed,
        tuple(nll.names),
        nll.constraints,
    )
    chunk = 25
    items = [
        (p, a, min(a + chunk, toys)) for p in range(len(thetas)) for a in range(0, toys, chunk)
    ]
    parts = map_tasks(task, items, client, progress=progress, desc="CLs pseudo-experiments")
    q = np.concatenate(parts).reshape(len(mus), 2, toys)
    scan = np.zeros((len(mus), 4 + len(SIGMAS)))
    for k, mu in enumerate(mus):
        sb, b = q[k]

        def tails(value: float, sb: np.ndarray = sb, b: np.ndarray = b) -> tuple[float, float]:
            return np.mean(sb >= value - 2 * tol), max(np.mean(b >= value - 2 * tol), 1 / toys)

        p_sb, p_b = tails(q_obs(mu))
        expected = [np.divide(*tails(v)) for v in np.quantile(b, stats.norm.cdf(-SIGMAS))]
        scan[k] = [mu, p_sb, p_b, p_sb / p_b, *expected]
    alpha = 1 - cl
    observed = _crossing(mus, scan[:, 3], alpha)
    expected = []
    for n, column in zip(SIGMAS, scan[:, 4:].T, strict=True):
        try:
            expected.append(_crossing(mus, column, alpha))
        except ValueError as e:
            warnings.warn(f"expected limit at {n:+g} sigma: {e}", stacklevel=2)
            expected.append(np.nan)
    return UpperLimit(cl, observed, np.array(expected), q_obs.mu_hat, "toys", scan)


def _crossing(mus: np.ndarray, cls: np.ndarray, alpha: float) -> float:
    r"""Where CLs at the increasing `mus` first falls below `alpha`, interpolating
    log CLs linearly."""
    below = np.flatnonzero(cls < alpha)
    if len(below) == 0:
        raise InputError(f"CLs stays above {alpha:g} up to n_sig = {mus[-1]:g}: test higher values")
    j = below[0]
    if j == 0:
        raise InputError(f"CLs is below {alpha:g} already at n_sig = {mus[0]:g}: test lower values")
    y = np.log(np.maximum(cls[j - 1 : j + 1], 1e-300))
    return float(np.interp(np.log(alpha), y[::-1], mus[j - 1 : j + 1][::-1]))
