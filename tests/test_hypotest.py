import math

import numpy as np
import pytest
import torch
from conftest import Flat, scipy_densities
from scipy import optimize, stats

from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import discovery


def _counting(n: int, b: float) -> float:
    r"""q0 of a counting experiment with n events and known background b (CCGV eq. 97)."""
    return 2 * (n * math.log(n / b) - (n - b)) if n > b else 0.0


@pytest.mark.parametrize("n", [130, 100, 85])
def test_q0_of_a_counting_experiment_matches_the_closed_form(n):
    x = torch.linspace(MASS.low + 1, MASS.high - 1, n, dtype=torch.float64)[:, None]
    nll = MixtureLikelihood(Flat(), Flat(), x)
    space = ParameterSpace(nll.theta_vars, start=[10.0, 100.0], fixed=["n_bkg"])
    result = discovery(nll, space)
    assert result.q0 == pytest.approx(_counting(n, 100.0), abs=1e-3)
    assert result.significance == pytest.approx(math.sqrt(_counting(n, 100.0)), abs=1e-3)
    assert result.p_value == pytest.approx(stats.norm.sf(result.significance), rel=1e-9)
    if n > 100:
        assert result.fit.values["n_sig"] == pytest.approx(n - 100, abs=0.05)


def test_q0_of_a_bump_matches_a_scipy_fit_of_the_yields():
    theta = torch.tensor([450.0, 40.0, 180.0], dtype=torch.float64)
    x = pseudo_data(theta[:2], theta[2:], n_sig=60, n_bkg=3_000, seed=3)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x)
    space = ParameterSpace(
        nll.theta_vars, start=[100.0, 3_000.0, *theta.tolist()], fixed=["m_pole", "gamma", "tau"]
    )
    result = discovery(nll, space)
    # Reference: the yields fitted by scipy on scipy's densities; the null fit has the
    # closed form n_bkg = N.
    ps, pb = scipy_densities(x[:, 0].numpy(), theta.numpy())

    def extended(y: np.ndarray) -> float:
        return y[0] + y[1] - np.log(y[0] * ps + y[1] * pb).sum()

    best = optimize.minimize(extended, [100.0, 3_000.0], bounds=[(0, None), (1, None)], tol=1e-12)
    q0 = 2 * (extended(np.array([0.0, len(x)])) - best.fun)
    assert result.q0 == pytest.approx(q0, abs=2e-3)
    assert result.fit.values["n_sig"] == pytest.approx(best.x[0], abs=0.1)
    with pytest.raises(ValueError, match="needs the extended likelihood"):
        discovery(MixtureLikelihood(BreitWigner(), Exponential(), x, 60, 3_000), space)


@pytest.mark.parametrize("n", [150, 200])
def test_discovery_from_a_start_on_the_yield_bound_matches_the_closed_form(n):
    # n_sig started at its bound 0: Minuit's first step there is undefined (the bounded
    # transform has zero slope), MIGRAD at strategy 0 fails, the retry must not
    x = torch.linspace(MASS.low + 1, MASS.high - 1, n, dtype=torch.float64)[:, None]
    nll = MixtureLikelihood(Flat(), Flat(), x)
    result = discovery(nll, ParameterSpace(nll.theta_vars, [0.0, 100.0], ["n_bkg"]))
    assert result.fit.status == "valid"
    assert result.significance == pytest.approx(math.sqrt(_counting(n, 100.0)), abs=1e-3)
    assert result.fit.values["n_sig"] == pytest.approx(n - 100, abs=0.05)
