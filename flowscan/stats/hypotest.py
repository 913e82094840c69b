r"""Hypothesis tests on the extended flow likelihood, following Cowan, Cranmer, Gross and
Vitells, *Asymptotic formulae for likelihood-based tests of new physics*, EPJC 71
(2011) 1554 (CCGV)."""

from __future__ import annotations

__all__ = ["Discovery", "discovery"]

import math
from dataclasses import dataclass, field

from scipy import stats

from ..exceptions import FitError, InputError
from ..scanner import FitSettings, MixtureLikelihood, ParameterSpace, ScanResult
from ..scanner import fit as fit_likelihood
from .profile import conditional_minimum


@dataclass
class Discovery:
    r"""Outcome of the discovery test.

    Attributes:
        q0: The test statistic (CCGV eq. 12).
        significance: Z = sqrt(q0), in standard deviations (CCGV eq. 53).
        p_value: 1 - Phi(Z), the background-only p-value.
        nll_null: NLL of the background-only fit (n_sig = 0).
        fit: The signal-plus-background fit.
    """

    q0: float
    significance: float
    p_value: float
    nll_null: float
    fit: ScanResult = field(repr=False)


def check_signal_yield(nll: MixtureLikelihood, space: ParameterSpace, test: str) -> None:
    r"""Raises `ValueError` unless `nll` is extended with `n_sig` floating in `space`, as
    `test` (a discovery test, an upper limit) needs."""
    if not nll.extended:
        raise InputError(
            f"{test} needs the extended likelihood: build MixtureLikelihood without n_sig and n_bkg"
        )
    if "n_sig" not in space.floating_names:
        raise InputError(f"n_sig is fixed: {test} is about it, so it must float")


def signal_parameters(nll: MixtureLikelihood) -> list[str]:
    r"""The names of the signal density's own parameters: those that drop out of the
    likelihood at n_sig = 0 (a parameter the signal shares with the background, or a
    nuisance with a constraint, stays, and is profiled)."""
    stays = {c.name for c in nll.constraints} | {v.name for v in nll.background.theta_vars}
    return [v.name for v in nll.signal.theta_vars if v.name not in stays]


def discovery(
    nll: MixtureLikelihood, space: ParameterSpace, fit: ScanResult | None = None
) -> Discovery:
    r"""Tests the background-only hypothesis n_sig = 0 with q0 = 2 (NLL(n_sig = 0) -
    NLL(best)) when the fitted n_sig is positive, else 0; the other floating parameters
    are profiled (`flowscan.scanner.fit` for the free fit: Minuit from the global search
    over the floating signal parameters; L-BFGS for the null fit, where the signal
    parameters drop out and are held, `signal_parameters`).

    With the signal parameters fixed in `space` this is the local significance at those
    masses. With them floating the significance is still local: the look-elsewhere
    effect (Gross and Vitells, EPJC 70 (2010) 525) makes the global one lower.

    Arguments:
        nll: An extended `MixtureLikelihood` (built without `n_sig`, `n_bkg`).
        space: Its parameters; `n_sig` must float.
        fit: The free fit of `nll` in `space`, if done already.
    """
    check_signal_yield(nll, space, "the discovery test")
    fit = fit if fit is not None else fit_likelihood(nll, FitSettings.at(space))
    if fit.status == "failed":
        raise FitError(f"the discovery test has no free fit: {fit.message}")
    held = signal_parameters(nll)
    null_space = ParameterSpace(space.theta_vars, fit.theta, [*space.fixed_names, *held])
    nll_null, _ = conditional_minimum(nll, null_space, {"n_sig": 0.0})
    q0 = max(0.0, 2 * (nll_null - fit.nll)) if fit.values["n_sig"] > 0 else 0.0
    z = math.sqrt(q0)
    p_value = float(stats.norm.sf(z))
    return Discovery(q0=q0, significance=z, p_value=p_value, nll_null=nll_null, fit=fit)
