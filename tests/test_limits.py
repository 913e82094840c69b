import math

import numpy as np
import pytest
import torch
from conftest import Flat
from scipy import optimize, stats

from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import SIGMAS, asimov, upper_limit, upper_limit_toys


def _counting_nll(n: int, b: float) -> tuple[MixtureLikelihood, ParameterSpace]:
    r"""n events of a flat signal on a flat background of known size b: a counting
    experiment, NLL(mu) = mu + b - n log(mu + b)."""
    x = torch.linspace(MASS.low + 1, MASS.high - 1, n, dtype=torch.float64)[:, None]
    nll = MixtureLikelihood(Flat(), Flat(), x, max_yield=10 * (n + b) + 50)
    return nll, ParameterSpace(nll.theta_vars, start=[1.0, b], fixed=["n_bkg"])


def _closed_form_limits(n: int, b: float, alpha: float = 0.05) -> tuple[float, np.ndarray]:
    r"""Observed and expected asymptotic CLs limits of the counting experiment from CCGV:
    q~_mu in closed form (eq. 16), q_mu,A = 2 (mu - b ln(1 + mu / b)) (Asimov n = b), and
    CLs+b = 1 - Phi(sqrt q~), CLb = Phi(sqrt q_A - sqrt q~) for q~ <= q_A, else the
    Gaussian forms of eq. 66; expected: Phi(N - sqrt q_A) / Phi(N) = alpha (eq. 89)."""

    def nll(mu: float) -> float:
        return mu + b - n * math.log(mu + b)

    mu_hat = max(n - b, 0.0)

    def cls(mu: float) -> float:
        q = 2 * (nll(mu) - nll(mu_hat)) if mu > mu_hat else 0.0
        qa = 2 * (mu - b * math.log1p(mu / b))
        if q <= qa:
            sb, cl_b = stats.norm.sf(math.sqrt(q)), stats.norm.cdf(math.sqrt(qa) - math.sqrt(q))
        else:
            sb = stats.norm.sf((q + qa) / (2 * math.sqrt(qa)))
            cl_b = stats.norm.sf((q - qa) / (2 * math.sqrt(qa)))
        return sb / cl_b - alpha

    observed = optimize.brentq(cls, mu_hat + 1e-6, 10 * b, xtol=1e-10)
    expected = [
        optimize.brentq(
            lambda mu, k=k: (
                stats.norm.cdf(k - math.sqrt(2 * (mu - b * math.log1p(mu / b)))) / stats.norm.cdf(k)
                - alpha
            ),
            1e-6,
            10 * b,
            xtol=1e-10,
        )
        for k in SIGMAS
    ]
    return observed, np.array(expected)


@pytest.mark.parametrize("n", [100, 85, 125])
def test_asymptotic_cls_limit_of_a_counting_experiment_matches_the_closed_form(n):
    nll, space = _counting_nll(n, 100.0)
    limit = upper_limit(nll, space, asimov_events=1_000)
    observed, expected = _closed_form_limits(n, 100.0)
    assert limit.n_sig_hat == pytest.approx(max(n - 100, 0), abs=0.1)  # 0.01 sigma
    assert limit.observed == pytest.approx(observed, rel=2e-3)
    np.testing.assert_allclose(limit.expected, expected, rtol=2e-3)
    assert limit.method == "asymptotic" and limit.cl == 0.95


def test_toy_cls_of_a_small_counting_experiment_is_the_poisson_ratio():
    r"""With a known background the ordering by q~_mu is the ordering by n, so from toys
    CLs+b = P(n <= n_obs | mu + b) and CLb = P(n <= n_obs | b) (Read's counting CLs)."""
    n, b, mus, toys = 2, 3.0, [1.5, 3.0, 6.0], 300
    nll, space = _counting_nll(n, b)
    with pytest.warns(UserWarning, match=r"expected limit at \+2 sigma: CLs stays above"):
        limit = upper_limit_toys(nll, space, mus, toys, seed=1, progress=False)
    p_b = stats.poisson.cdf(n, b)
    for mu, cls_sb, cls_b, cls in limit.scan[:, :4]:
        p_sb = stats.poisson.cdf(n, mu + b)
        assert cls_sb == pytest.approx(p_sb, abs=4 * math.sqrt(p_sb * (1 - p_sb) / toys))
        assert cls_b == pytest.approx(p_b, abs=4 * math.sqrt(p_b * (1 - p_b) / toys))
        assert cls == pytest.approx(cls_sb / cls_b)
    poisson = optimize.brentq(lambda mu: stats.poisson.cdf(n, mu + b) / p_b - 0.05, 0.1, 20)
    assert limit.observed == pytest.approx(poisson, rel=0.15)
    assert np.isnan(limit.expected[-1])  # the +2 sigma band lies above the tested values


def test_weighted_asimov_sample_integrates_the_background():
    r"""The importance-weighted Asimov sample reproduces n_bkg and the background mean of
    the mass (closed form of the truncated exponential), to its Monte Carlo error."""
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), 0, 2_000, seed=5)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x)
    data = asimov(nll, np.array([0.0, 2_000.0, 450.0, 40.0, 180.0]), events=20_000, seed=2)
    w, m = data.weights.numpy(), data.x[:, 0].numpy()
    tau, lo, hi = 180.0, MASS.low, MASS.high
    mean = lo + tau - (hi - lo) / math.expm1((hi - lo) / tau)
    assert w.sum() == pytest.approx(2_000.0, rel=0.01)
    assert (w * m).sum() / w.sum() == pytest.approx(mean, rel=0.01)
    assert data.theta_vars[0].high == nll.theta_vars[0].high


def test_asimov_limits_do_not_depend_on_the_sample_drawn():
    r"""The Asimov sample is corrected to have its best fit at the background-only point,
    so its Monte Carlo noise stays at the per-mille level: the limits from two seeds of a
    2000-event sample agree to 1% (uncorrected, they moved by 40% at 5000 events)."""
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), 0, 3_000, seed=8)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x)
    space = ParameterSpace(nll.theta_vars, [0.0, 3_000.0, 450.0, 40.0, 200.0], ["m_pole", "gamma"])
    limits = [upper_limit(nll, space, asimov_events=2_000, seed=s) for s in (0, 1)]
    assert limits[0].observed == pytest.approx(limits[1].observed, rel=0.01)
    np.testing.assert_allclose(limits[0].expected, limits[1].expected, rtol=0.01)
    data = asimov(nll, np.array([0.0, 3_000.0, 450.0, 40.0, 180.0]), events=2_000, seed=0)
    w = data.weights.numpy()
    ps, pb = (
        d.log_prob(data.x, t).exp().numpy()
        for d, t in (
            (BreitWigner(), torch.tensor([450.0, 40.0])),
            (Exponential(), torch.tensor([180.0])),
        )
    )
    assert (w * ps / pb).sum() == pytest.approx(3_000.0, rel=1e-9)  # E_b[p_s / p_b] = 1
    assert w.sum() == pytest.approx(3_000.0, rel=1e-9)


def test_limits_refuse_what_they_cannot_do():
    nll, space = _counting_nll(100, 100.0)
    with pytest.raises(ValueError, match="n_sig is fixed"):
        upper_limit(nll, ParameterSpace(nll.theta_vars, [1.0, 100.0], ["n_sig"]))
    with pytest.raises(ValueError, match="increasing positive"):
        upper_limit_toys(nll, space, [5.0, 2.0], progress=False)
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), 0, 500, seed=5)
    bump = MixtureLikelihood(BreitWigner(), Exponential(), x)
    with pytest.raises(ValueError, match="fix the signal parameters"):
        upper_limit(bump, ParameterSpace(bump.theta_vars))


def _closed_form_mu_limit(n: int, b: float, rate: float, error: float) -> float:
    r"""The observed asymptotic CLs limit on mu of the counting experiment with n_sig =
    mu rate k^nu, k = 1 + error, nu ~ N(0, 1) profiled: q~_mu = min over nu of
    2 (NLL(mu rate k^nu) - NLL(n_hat)) + nu^2, on the data (n) and on the Asimov
    dataset (n = b), each minimum by scipy's bounded scalar minimizer."""

    def q(mu: float, seen: float) -> float:
        def nll(s: float) -> float:
            return s + b - seen * math.log(s + b)

        hat = max(seen - b, 0.0)
        if mu * rate <= hat:
            return 0.0
        total = lambda nu: 2 * (nll(mu * rate * (1 + error) ** nu) - nll(hat)) + nu**2  # noqa: E731
        return optimize.minimize_scalar(total, bounds=(-8, 0), method="bounded").fun

    def cls(mu: float) -> float:
        qo, qa = q(mu, n), q(mu, b)
        if qo <= qa:
            sb, cl_b = stats.norm.sf(math.sqrt(qo)), stats.norm.cdf(math.sqrt(qa) - math.sqrt(qo))
        else:
            sb = stats.norm.sf((qo + qa) / (2 * math.sqrt(qa)))
            cl_b = stats.norm.sf((qo - qa) / (2 * math.sqrt(qa)))
        return sb / cl_b - 0.05

    return optimize.brentq(cls, max(n - b, 0) / rate + 1e-6, 50 * b / rate, xtol=1e-10)


@pytest.mark.parametrize(("n", "error"), [(100, 0.2), (120, 0.5), (90, 0.0)])
def test_limit_on_the_signal_strength_profiles_the_rate_uncertainty(n, error):
    r"""The limit on mu = n_sig / n_pred with a log-normal rate uncertainty, against the
    counting experiment's closed form (nu profiled by scipy); with no uncertainty it is
    the limit on n_sig over n_pred. The tolerance is the n_sig limit's (the interpolated
    profile curves, 2e-3)."""
    nll, space = _counting_nll(n, 100.0)
    limit = upper_limit(nll, space, asimov_events=1_000, rate=(40.0, error))
    assert limit.observed == pytest.approx(_closed_form_mu_limit(n, 100.0, 40.0, error), rel=2e-3)
    assert limit.rate == (40.0, error) and (np.diff(limit.expected) > 0).all()
    plain = upper_limit(nll, space, asimov_events=1_000)
    if error == 0:
        assert limit.observed == pytest.approx(plain.observed / 40, rel=1e-6)
        np.testing.assert_allclose(limit.expected, plain.expected / 40, rtol=1e-6)
    else:  # an uncertain rate excludes less
        assert limit.observed > plain.observed / 40 * (1 + error / 20)
        assert (limit.expected > plain.expected / 40).all()
