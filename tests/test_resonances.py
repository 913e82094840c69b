r"""The many-parameter resonance toy (issue 23): normalization, sampling, and the exact
MLE, against quadrature, scipy's truncated normal and an independent scipy fit."""

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from flowscan.samples import pseudo_data
from flowscan.samples.resonances import SPECTRA, FallingSpectra, Resonances, truth
from flowscan.scanner import (
    MixtureLikelihood,
    ParameterSpace,
    covariance,
    gradient_scan,
    minuit_scan,
)

HIGH = SPECTRA[0].high
F64 = torch.float64


def _thetas(dim: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(dim)
    points = [truth(dim)[:dim], rng.uniform(-1, 1, dim), np.ones(dim)]
    return [torch.tensor(p, dtype=F64) for p in points]


def _normalization(density, theta: torch.Tensor) -> float:
    r"""The integral of the density over the 6-D window, by 1-D quadrature per spectrum:
    a density p(x) = prod_f q_f(x_f) integrates to p(x*) prod_f I_f, with I_f the
    integral over x_f of p(x*, x_f replaced) / p(x*). Valid for product densities only,
    which `test_densities_factorize` checks."""
    anchor = torch.full((1, 6), 400.0, dtype=F64)
    log_anchor = density.log_prob(anchor, theta).item()
    total = log_anchor
    for f in range(6):

        def ratio(v: float, f: int = f) -> float:
            x = anchor.clone()
            x[0, f] = v
            return float(np.exp(density.log_prob(x, theta).item() - log_anchor))

        value, _ = integrate.quad(ratio, 0.0, HIGH, points=[200, 400, 600, 800], limit=400)
        total += np.log(value)
    return float(np.exp(total))


@pytest.mark.parametrize("dim", [2, 19])
def test_densities_factorize(dim):
    rng = np.random.default_rng(0)
    x, y = (torch.from_numpy(rng.uniform(0, HIGH, (50, 6))) for _ in range(2))
    mixed_x, mixed_y = x.clone(), y.clone()
    mixed_x[:, :3], mixed_y[:, :3] = y[:, :3], x[:, :3]
    for density, theta in ((Resonances(dim), _thetas(dim)[1]), (FallingSpectra(), [310.0])):
        theta = torch.as_tensor(theta, dtype=F64)
        joint = density.log_prob(x, theta) + density.log_prob(y, theta)
        swapped = density.log_prob(mixed_x, theta) + density.log_prob(mixed_y, theta)
        # float64 sums of six log terms of size ~10: rounding ~1e-14 absolute.
        np.testing.assert_allclose(joint.numpy(), swapped.numpy(), atol=1e-10)


@pytest.mark.parametrize("dim", [2, 8, 19])
def test_signal_integrates_to_one(dim):
    for theta in _thetas(dim):
        # quad's error per spectrum is below 1e-10 for these smooth peaks of width >= 17 GeV.
        assert _normalization(Resonances(dim), theta) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("tau", [200.0, 300.0, 500.0])
def test_background_integrates_to_one(tau):
    assert _normalization(FallingSpectra(), torch.tensor([tau], dtype=F64)) == pytest.approx(
        1.0, abs=1e-8
    )


def _marginal_cdf(signal: Resonances, theta: torch.Tensor, f: int):
    r"""Spectrum f's CDF from scipy's truncated normals at the toy's resonances."""
    mu, sigma, log_w = (t[f].numpy() for t in signal.features(theta))
    parts = [
        stats.truncnorm((0 - m) / s, (HIGH - m) / s, loc=m, scale=s)
        for m, s in zip(mu, sigma, strict=True)
    ]
    weights = np.exp(log_w)
    return lambda v: sum(w * p.cdf(v) for w, p in zip(weights, parts, strict=True))


@pytest.mark.parametrize("dim", [4, 19])
def test_signal_samples_match_the_density(dim):
    signal = Resonances(dim)
    theta = _thetas(dim)[1]
    x = signal.sample(20_000, theta, seed=5).numpy()
    for f in range(6):
        # Six KS tests per dimension, seeded: p > 1e-3 fails a correct sampler 0.6% of the time.
        assert stats.kstest(x[:, f], _marginal_cdf(signal, theta, f)).pvalue > 1e-3


def test_background_samples_match_the_density():
    x = FallingSpectra().sample(20_000, torch.tensor([300.0]), seed=6).numpy()
    for f in range(6):
        tau = 300.0 * (1 + 0.1 * f)
        reference = stats.truncexpon(b=HIGH / tau, scale=tau)
        assert stats.kstest(x[:, f], reference.cdf).pvalue > 1e-3


def _likelihood(dim: int, scale: int = 1, seed: int = 0) -> tuple[MixtureLikelihood, np.ndarray]:
    signal, background = Resonances(dim), FallingSpectra()
    t = truth(dim)
    n_sig, n_bkg = 5_000 * scale, 50_000 * scale
    x = pseudo_data(
        torch.tensor(t[:dim]),
        torch.tensor(t[dim:]),
        n_sig,
        n_bkg,
        seed,
        densities=(signal, background),
    )
    return MixtureLikelihood(signal, background, x, n_sig, n_bkg), np.array(t)


def test_exact_mle_recovers_the_truth_at_four_parameters():
    nll, t = _likelihood(4, scale=4)
    space = ParameterSpace(nll.theta_vars, t)
    fit = minuit_scan(nll, space)
    assert fit.valid
    delta = fit.theta - t
    chi2 = delta @ np.linalg.solve(covariance(nll, fit.theta), delta)
    # The MLE is Gaussian around the truth with HESSE's covariance: chi2 with 5 dof; seeded,
    # and the 99.9% quantile fails a correct fit once in a thousand data sets.
    assert chi2 < stats.chi2.ppf(0.999, df=len(t))


def test_gradient_and_minuit_reach_the_scipy_mle_at_eight_parameters():
    nll, t = _likelihood(8, seed=1)
    space = ParameterSpace(nll.theta_vars)  # from the box centre

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = nll.value_and_grad(torch.from_numpy(theta)[None])
        return float(value[0]), grad[0].numpy()

    options = {"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000}
    reference = optimize.minimize(
        fun, t, jac=True, method="L-BFGS-B", bounds=space.bounds, options=options
    )
    assert reference.success
    sigma = np.sqrt(np.diag(covariance(nll, reference.x)))
    for fit in (minuit_scan(nll, space), gradient_scan(nll, space, starts=15)):
        # Both stop within ~1e-4 of the minimum in NLL, i.e. ~0.015 sigma in theta.
        np.testing.assert_array_less(np.abs(fit.theta - reference.x) / sigma, 0.05)
        assert fit.nll == pytest.approx(reference.fun, abs=1e-3)
