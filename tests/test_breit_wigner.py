import numpy as np
import pytest
import torch
from scipy import integrate, stats

from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data, training_set

LO, HI = MASS.low, MASS.high
THETAS_SIG = [(300.0, 20.0), (455.0, 33.0), (700.0, 80.0)]
THETAS_BKG = [(100.0,), (170.0,), (300.0,)]


def _pdf(density, theta):
    def f(m: float) -> float:
        x = torch.tensor([[m]], dtype=torch.float64)
        return density.log_prob(x, torch.tensor(theta)).exp().item()

    return f


def _scipy_signal(m0: float, gamma: float) -> tuple:
    d = stats.cauchy(loc=m0, scale=gamma / 2)
    return d, d.cdf(HI) - d.cdf(LO)


def _scipy_background(tau: float):
    return stats.truncexpon(b=(HI - LO) / tau, loc=LO, scale=tau)


@pytest.mark.parametrize("theta", THETAS_SIG)
def test_signal_log_prob_matches_scipy_and_integrates_to_one(theta):
    bw = BreitWigner()
    m = torch.linspace(LO, HI, 101, dtype=torch.float64)[:, None]
    d, z = _scipy_signal(*theta)
    np.testing.assert_allclose(
        bw.log_prob(m, torch.tensor(theta)).numpy(), d.logpdf(m[:, 0]) - np.log(z), rtol=1e-12
    )
    total, _ = integrate.quad(_pdf(bw, theta), LO, HI, points=[theta[0]], limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("theta", THETAS_BKG)
def test_background_log_prob_matches_scipy_and_integrates_to_one(theta):
    ex = Exponential()
    m = torch.linspace(LO, HI, 101, dtype=torch.float64)[:, None]
    np.testing.assert_allclose(
        ex.log_prob(m, torch.tensor(theta)).numpy(),
        _scipy_background(*theta).logpdf(m[:, 0]),
        rtol=1e-12,
    )
    assert integrate.quad(_pdf(ex, theta), LO, HI)[0] == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("theta", THETAS_SIG)
def test_signal_samples_pass_ks_test(theta):
    x = BreitWigner().sample(20_000, torch.tensor(theta), seed=3)[:, 0].numpy()
    d, z = _scipy_signal(*theta)
    assert stats.kstest(x, lambda v: (d.cdf(v) - d.cdf(LO)) / z).pvalue > 0.01


@pytest.mark.parametrize("theta", THETAS_BKG)
def test_background_samples_pass_ks_test(theta):
    x = Exponential().sample(20_000, torch.tensor(theta), seed=4)[:, 0].numpy()
    assert stats.kstest(x, _scipy_background(*theta).cdf).pvalue > 0.01


def test_sampling_is_seeded():
    t = torch.tensor([500.0, 40.0])
    assert torch.equal(BreitWigner().sample(100, t, seed=5), BreitWigner().sample(100, t, seed=5))
    assert not torch.equal(
        BreitWigner().sample(100, t, seed=5), BreitWigner().sample(100, t, seed=6)
    )


def test_training_set_is_uniform_over_ranges():
    x, theta = training_set(BreitWigner(), 20_000, seed=0)
    assert x.shape == (20_000, 1) and theta.shape == (20_000, 2)
    assert ((x >= LO) & (x <= HI)).all()
    for j, v in enumerate(BreitWigner.theta_vars):
        assert (
            stats.kstest(theta[:, j].numpy(), stats.uniform(v.low, v.high - v.low).cdf).pvalue
            > 0.01
        )


def test_pseudo_data_counts_and_mixture():
    x = pseudo_data(
        torch.tensor([500.0, 30.0]), torch.tensor([150.0]), n_sig=2_000, n_bkg=8_000, seed=1
    )
    assert x.shape == (10_000, 1)
    # Excess within +-gamma of the pole over the background expectation there is ~the signal.
    d, z = _scipy_signal(500.0, 30.0)
    b = _scipy_background(150.0)
    window = ((x[:, 0] > 470) & (x[:, 0] < 530)).sum().item()
    expected = 8_000 * (b.cdf(530) - b.cdf(470)) + 2_000 * (d.cdf(530) - d.cdf(470)) / z
    assert window == pytest.approx(expected, abs=4 * np.sqrt(expected))


@pytest.mark.parametrize(
    "theta", [torch.tensor([500.0]), torch.tensor([500.0, -1.0]), torch.tensor([np.nan, 30.0])]
)
def test_bad_theta_raises(theta):
    with pytest.raises(ValueError, match="theta|positive"):
        BreitWigner().log_prob(torch.tensor([[500.0]]), theta)
