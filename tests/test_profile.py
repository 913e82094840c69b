import numpy as np
import pytest
import torch

from flowscan import Variable
from flowscan.scanner import ParameterSpace, minuit_scan
from flowscan.stats import profile_likelihood, wilks_threshold

# A quadratic NLL in (a, b, c) with errors (2, 0.5, 1) and correlations: the profile of
# any subset is the quadratic form of that subset's block of the covariance.
COV = np.array([[4.0, 0.6, -0.6], [0.6, 0.25, 0.05], [-0.6, 0.05, 1.0]])
BEST = np.array([1.0, 2.0, -1.0])
SPACE = ParameterSpace(
    [Variable("a", "", -10.0, 10.0), Variable("b", "", 0.0, 4.0), Variable("c", "", -6.0, 4.0)]
)


def _nll(theta: torch.Tensor) -> torch.Tensor:
    d = theta - torch.as_tensor(BEST)
    return 0.5 * torch.einsum("...i,ij,...j->...", d, torch.as_tensor(np.linalg.inv(COV)), d)


# A quadratic has one minimum: one MIGRAD finds it.
MINIMUM = minuit_scan(_nll, SPACE)


def test_wilks_thresholds_are_the_chi2_quantiles():
    assert wilks_threshold(0.6827, 1) == pytest.approx(0.5, abs=1e-4)
    assert wilks_threshold(0.95, 2) == pytest.approx(2.9957, abs=1e-4)


def test_1d_profile_of_a_quadratic_gives_the_closed_form_interval():
    profile = profile_likelihood(_nll, SPACE, {"a": np.linspace(-5.0, 7.0, 25)}, minimum=MINIMUM)
    expected = 0.5 * (profile.grid[0] - 1.0) ** 2 / COV[0, 0]
    np.testing.assert_allclose(profile.dnll, expected, atol=1e-4)
    # The other parameters sit at their conditional means, b = 2 + 0.15 (a - 1).
    np.testing.assert_allclose(profile.theta[:, 1], 2 + 0.15 * (profile.grid[0] - 1), atol=1e-2)
    lo, hi = profile.interval(0.6827)
    assert (lo, hi) == pytest.approx((-1.0, 3.0), abs=0.02)  # +-2, one sigma
    with pytest.raises(ValueError, match="scan a wider range"):
        profile.interval(0.9999)


def test_2d_profile_of_a_quadratic_matches_its_covariance_block():
    grid = {"a": np.linspace(-3.0, 5.0, 5), "b": np.linspace(1.0, 3.0, 5)}
    profile = profile_likelihood(_nll, SPACE, grid, minimum=MINIMUM)
    a, b = np.meshgrid(*profile.grid, indexing="ij")
    d = np.stack([a - 1.0, b - 2.0], axis=-1)
    expected = 0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(COV[:2, :2]), d)
    np.testing.assert_allclose(profile.dnll, expected, atol=1e-3)


def test_profile_checks_its_scan():
    with pytest.raises(ValueError, match=r"\['d'\] are not floating"):
        profile_likelihood(_nll, SPACE, {"d": [0.0, 1.0]}, minimum=MINIMUM)
    with pytest.raises(ValueError, match="leave the range"):
        profile_likelihood(_nll, SPACE, {"b": [1.0, 5.0]}, minimum=MINIMUM)
    with pytest.raises(ValueError, match="one or two"):
        profile_likelihood(_nll, SPACE, {"a": [0, 1], "b": [1, 2], "c": [0, 1]}, minimum=MINIMUM)
