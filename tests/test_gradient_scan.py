import numpy as np
import pytest
import torch
from conftest import scipy_mixture_nll
from iminuit import Minuit

from flowscan.scanner import MixtureLikelihood, gradient_scan
from flowscan.toys import MASS, BreitWigner, Exponential, pseudo_data

LO, HI = MASS.low, MASS.high


def _minuit_mle(x: np.ndarray, f: float, start: list[float]) -> Minuit:
    r"""Independent reference: Minuit on the scipy closed-form mixture pdf."""

    def nll(m0: float, gamma: float, tau: float) -> float:
        return scipy_mixture_nll(x, np.array([m0, gamma, tau]), f)

    m = Minuit(nll, *start)
    m.errordef = Minuit.LIKELIHOOD
    m.limits = [(300, 700), (20, 80), (100, 300)]
    m.tol = 1e-4
    m.migrad()
    assert m.valid
    return m


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_scan_recovers_the_exact_mle(seed):
    truth = torch.tensor([480.0, 35.0, 160.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], n_sig=1_000, n_bkg=20_000, seed=seed)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000)
    result = gradient_scan(nll, nll.theta_vars)
    ref = _minuit_mle(x[:, 0].numpy(), 1_000 / 21_000, truth.tolist())
    assert result.converged
    for value, reference, error in zip(result.theta, ref.values, ref.errors, strict=True):
        assert value == pytest.approx(reference, abs=0.05 * error)
    assert result.nll == pytest.approx(ref.fval, abs=1e-3)


def test_gradient_scan_counts_and_bounds():
    x = pseudo_data(
        torch.tensor([350.0, 50.0]), torch.tensor([250.0]), n_sig=200, n_bkg=2_000, seed=3
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 200, 2_000)
    calls = []

    def counting(theta: torch.Tensor) -> torch.Tensor:
        calls.append(theta.detach().clone())
        return nll(theta)

    result = gradient_scan(counting, nll.theta_vars, start=torch.tensor([650.0, 75.0, 110.0]))
    assert result.nll_evals == result.grad_evals == len(calls)
    assert len(result.trace) == len(calls) and result.trace[-1][0] == len(calls)
    low = np.array([v.low for v in nll.theta_vars])
    high = np.array([v.high for v in nll.theta_vars])
    visited = torch.stack(calls).numpy()
    assert (visited >= low).all() and (visited <= high).all()
    np.testing.assert_allclose(result.path[0], [650.0, 75.0, 110.0])
    assert np.all(np.diff([nll(torch.as_tensor(p)).item() for p in result.path]) < 0)


def test_gradient_scan_rejects_a_start_outside_the_box():
    x = pseudo_data(torch.tensor([350.0, 50.0]), torch.tensor([250.0]), n_sig=20, n_bkg=200, seed=3)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 20, 200)
    with pytest.raises(ValueError, match="start gamma = 90 GeV is outside"):
        gradient_scan(nll, nll.theta_vars, start=torch.tensor([400.0, 90.0, 150.0]))
