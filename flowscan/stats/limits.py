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
        observed: Upper limit on n_sig from the data, in events (on mu with `rate`).
        expected: Limits expected under background only at the quantiles `SIGMAS`,
            shape `(5,)`, in events (on mu with `rate`).
        n_sig_hat: Best-fit n_sig (bounded below by 0 unless the likelihood allows
            negative signal).
        method: `"asymptotic"` or `"toys"`.
        scan: With toys, rows (n_sig, CLs+b, CLb, CLs, expected CLs at `SIGMAS`) at
            each tested n_sig, shape `(K, 9)`.
        rate: Where the limits are on the signal strength mu = n_sig / n_pred: the
            predicted yield n_pred (events) and its relative uncertainty, profiled.
    """

    cl: float
    observed: float
    expected: np.ndarray
    n_sig_hat: float
    method: str
    scan: np.ndarray | None = field(default=None, repr=False)
    rate: tuple[float, float] | None = None


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


def _in_mu(q: Callable[[float], float], low: float, rate: float, log_k: float) -> Callable:
    r"""q~ as a function of mu = n_sig / `rate` from q~(n_sig) `q` (zero up to the
    fitted n_sig `low`, from a fit with n_sig and the other parameters profiled), with
    a log-normal rate uncertainty: n_sig = mu rate k^nu, nu constrained by N(0, 1),
    k = exp(`log_k`). Profiling nu is a minimum over n_sig of q~(n_sig) + nu(n_sig)^2,
    nu = ln(n_sig / (mu rate)) / `log_k`; it lies between the fitted n_sig and mu rate,
    where both terms fall towards each other. With `log_k` = 0, q~(mu rate)."""

    def q_mu(mu: float) -> float:
        centre = mu * rate
        if centre <= low:
            return 0.0
        if log_k == 0:
            return q(centre)
        # nu beyond sqrt(q~(mu rate)) costs more than the whole q~ it could save
        span = min(math.log(centre / low) if low > 0 else math.inf, log_k * math.sqrt(q(centre)))
        if span <= 0:
            return q(centre)

        def total(t: float) -> float:  # t = ln(mu rate / n_sig) >= 0
            return q(centre * math.exp(-t)) + (t / log_k) ** 2

        ts = np.linspace(0.0, span, 65)
        k = int(np.argmin([total(t) for t in ts]))
        best = optimize.minimize_scalar(
            total, bounds=(ts[max(k - 1, 0)], ts[min(k + 1, 64)]), method="bounded",
            options={"xatol": 1e-6 * span},
        )  # fmt: skip
        return float(min(best.fun, total(ts[k])))

    return q_mu


def upper_limit(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    *,
    cl: float = 0.95,
    asimov_events: int = 10_000,
    seed: int = 0,
    points: int = 13,
    tol: float = 1e-4,
    rate: tuple[float, float] | None = None,
) -> UpperLimit:
    r"""Asymptotic CLs upper limit on n_sig at the fixed signal parameters of `space`,
    with the expected band from the background-only Asimov dataset; with `rate`, on the
    signal strength mu = n_sig / n_pred of a predicted yield instead.

    q~_mu is measured on the data; q_mu,A on `asimov(nll, theta_0)`, with theta_0 the
    background-only fit to the data (n_sig = 0, the other floating parameters profiled).
    Both are computed on `points` values of n_sig over 5 sigma above the fitted n_sig
    (more until CLs falls below 1 - `cl`), and their square roots, smooth and nearly
    linear in n_sig, are interpolated (monotone cubic) in between: ~2 `points` profile
    fits in all. The limit is the n_sig where CLs = 1 - `cl`; the expected limits solve
    `cls_expected` = 1 - `cl` at each of `SIGMAS`.

    With `rate = (n_pred, error)` the signal yield is n_sig = mu n_pred (1 + error)^nu,
    the rate's relative uncertainty `error` a log-normal nuisance nu constrained by
    N(0, 1) (its global observable at 0 in data and Asimov alike), and q~_mu profiles nu
    too: over n_sig, on the same curves (`_in_mu`), no further fits. mu = 1 is excluded
    where the limit lies below 1.

    Arguments:
        nll: An extended `MixtureLikelihood` whose densities can `sample`.
        space: Its parameters: `n_sig` floating, the signal parameters fixed at the
            masses to test, the rest floating (profiled) or fixed.
        cl: Confidence level.
        asimov_events: Size of the weighted Asimov sample.
        seed: Seed of the Asimov sample.
        points: Values of n_sig per curve and extension.
        tol: NLL tolerance of each profile fit.
        rate: The predicted signal yield at these signal parameters, events, and its
            relative uncertainty; the limits are then on mu.
    """
    _check(nll, space)
    if not 0 < cl < 1:
        raise InputError(f"cl must lie in (0, 1), got {cl}")
    n_pred, error = (1.0, 0.0) if rate is None else rate
    if not (math.isfinite(n_pred) and n_pred > 0 and math.isfinite(error) and error >= 0):
        raise InputError(
            f"the predicted signal yield must be positive, its relative error >= 0: {rate}"
        )
    log_k = math.log1p(error)
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
        q_mu_obs = _in_mu(
            lambda n, r=root_obs: float(r(n)) ** 2 if n > low else 0.0, low, n_pred, log_k
        )
        q_mu_a = _in_mu(lambda n, r=root_a: float(r(n)) ** 2, 0.0, n_pred, log_k)

        def observed_cls(mu: float, q_mu_obs=q_mu_obs, q_mu_a=q_mu_a) -> float:
            return cls_asymptotic(q_mu_obs(mu), q_mu_a(mu))

        def expected_cls(mu: float, n: float, q_mu_a=q_mu_a) -> float:
            return cls_expected(q_mu_a(mu), n)

        end = high / n_pred  # mu: its profiled n_sig lies below mu n_pred
        if observed_cls(end) < alpha and expected_cls(end, SIGMAS[-1]) < alpha:
            break
    observed = _root(observed_cls, alpha, low / n_pred, end)
    expected = np.array([_root(lambda mu, n=n: expected_cls(mu, n), alpha, 0, end) for n in SIGMAS])
    return UpperLimit(cl, observed, expected, q_obs.mu_hat, "asymptotic", rate=rate)


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
