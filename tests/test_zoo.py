import copy

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from flowscan import Variable
from flowscan.flows import FLOWS, Architecture, DensityModel, train
from flowscan.flows.mixture import AutoregressiveMixture, log_normal_mass
from flowscan.flows.model import QUANTILES
from flowscan.flows.preprocessing import (
    ALPHA,
    BETA,
    GAMMA,
    ResponseCurve,
    _latent_cdf,
    _latent_log_density,
)
from flowscan.samples import MASS, BreitWigner, training_set

ZOO = [(flow, "logit") for flow in FLOWS] + [("mog", "response"), ("mog", "truncated")]
OBSERVABLES = [Variable("m", "GeV", 100.0, 1000.0), Variable("r", "", 0.0, None)]
THETA = [Variable("a", "GeV", 0.0, 10.0)]


def _integral(model: DensityModel, theta: torch.Tensor, pieces: int = 2000) -> float:
    r"""Integral over the mass window by 16-point Gauss-Legendre on `pieces` intervals in
    t = logit((m - low) / width) over [-30, 30], split also at the knots of a response
    curve (where the density steps): the integrand is smooth on each interval."""
    lo, width = MASS.low, MASS.high - MASS.low
    breaks = np.linspace(-30, 30, pieces + 1)
    for step in model.preprocessing:
        if isinstance(step, ResponseCurve):
            k = (step.knots_x[0].numpy() - lo) / width
            k = k[(k > 0) & (k < 1)]
            breaks = np.union1d(breaks, np.log(k) - np.log1p(-k))
    nodes, weights = np.polynomial.legendre.leggauss(16)
    a, b = breaks[:-1, None], breaks[1:, None]
    t = torch.tensor(((a + b) / 2 + (b - a) / 2 * nodes).ravel())
    u = torch.sigmoid(t)
    with torch.no_grad():
        p = model.log_prob((lo + width * u)[:, None], theta).exp() * width * u * (1 - u)
    return float((p * torch.tensor(((b - a) / 2 * weights).ravel())).sum())


@pytest.mark.parametrize(("flow", "preprocessing"), ZOO)
def test_zoo_model(flow, preprocessing, tmp_path):
    # 2 observables, 1 parameter: shapes, gradients, save/load
    torch.manual_seed(0)
    x = torch.stack([100 + 900 * torch.rand(300), 3 * torch.rand(300)], dim=1)
    theta = 10 * torch.rand(300, 1)
    options = {"transforms": 2, "hidden_features": (16, 16), "components": 4}
    model = DensityModel(
        OBSERVABLES, THETA, Architecture(flow=flow, preprocessing=preprocessing, **options)
    )
    model.adapt(x, theta)
    t = torch.tensor([4.0], requires_grad=True)
    lp = model.log_prob(x[:7], t)
    assert lp.shape == (7,) and torch.isfinite(lp).all()
    assert model.log_prob(x[:7], torch.tensor([[1.0], [9.0]])[:, None]).shape == (2, 7)
    lp.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert t.grad.abs() > 0  # d log p / d theta, what gradient scans descend
    s = model.sample(50, torch.tensor([4.0]), seed=1)
    assert s.shape == (50, 2) and (s[:, 0] >= 100).all() and (s[:, 0] <= 1000).all()
    model.save(tmp_path / "m.pt")
    loaded = DensityModel.load(tmp_path / "m.pt")
    assert loaded.config == model.config
    assert torch.equal(loaded.log_prob(x[:7], t), model.log_prob(x[:7], t))

    # 1 observable, briefly trained: normalized on the window at several theta
    xs, thetas = training_set(BreitWigner(), 2_000, seed=11)
    model = DensityModel(
        [MASS],
        BreitWigner.theta_vars,
        Architecture(flow=flow, preprocessing=preprocessing, **options),
    )
    train(model, xs, thetas, epochs=3, batch_size=256, progress=False)
    model = copy.deepcopy(model).double()
    for theta in ([320.0, 25.0], [455.0, 33.0], [680.0, 75.0]):
        assert _integral(model, torch.tensor(theta, dtype=torch.float64)) == pytest.approx(
            1.0, abs=1e-4
        )


def test_response_preprocessing_is_for_the_mixture():
    with pytest.raises(ValueError, match="made for flow='mog'"):
        DensityModel([MASS], (), Architecture(flow="nsf", preprocessing="response"))
    with pytest.raises(ValueError, match="unknown flow 'glow'"):
        DensityModel([MASS], (), Architecture(flow="glow"))


def test_latent_target_is_seed_001_eq_1():
    def target(u):  # seed 001, eq. (1), unnormalized
        return special.expit(GAMMA - ALPHA * (u - BETA)) * special.expit(ALPHA * (u + BETA) + GAMMA)

    norm = integrate.quad(target, -np.inf, np.inf)[0]
    for u in (-5.0, -3.0, 0.0, 1.7, 3.2, 6.0):
        ut = torch.tensor(u, dtype=torch.float64)
        assert _latent_log_density(ut).exp().item() == pytest.approx(target(u) / norm, rel=1e-10)
        cdf = integrate.quad(target, -np.inf, u)[0] / norm
        assert _latent_cdf(ut).item() == pytest.approx(cdf, rel=1e-8, abs=1e-12)


def test_response_curve_jacobian_inverse_and_edges():
    obs = [Variable("a", "", 0.0, 1.0), Variable("b", "", 2.0, None), Variable("c", "", -1.0, 3.0)]
    rng = np.random.default_rng(0)
    train_x = np.stack(
        [rng.beta(2, 5, 5000), 2 + rng.exponential(size=5000), rng.normal(size=5000)]
    )
    curve = ResponseCurve(obs, fraction=0.8)
    curve.adapt(torch.tensor(train_x.T.clip(-1, 3)))
    curve = curve.double()
    t = curve()
    x = torch.tensor(
        [[0.3, 2.5, 0.1], [0.97, 10.0, -0.99], [1e-12, 3.0, 3 - 1e-12]], dtype=torch.float64
    )
    u, ladj = t.call_and_ladj(x)
    for row in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: t(v[None])[0], x[row])
        assert ladj[row].item() == pytest.approx(
            torch.linalg.slogdet(jac).logabsdet.item(), rel=1e-9
        )
    torch.testing.assert_close(t.inv(u), x, rtol=1e-9, atol=1e-15)
    assert torch.equal(u[:, 1], x[:, 1])  # open edge: passed through
    # flattened latent space: the training data spread over about [-3.5, 3.5] (c has
    # 16% of its events piled on its lower edge by the clip: the knots keep apart)
    latent = t(torch.tensor(train_x.T.clip(-1, 3)))[:, 0]
    assert latent.min() > -5 and latent.max() < 5 and latent.std() > 1.2


def test_mixture_density_is_normalized_and_sampling_matches_it():
    torch.manual_seed(3)
    mixture = AutoregressiveMixture(2, 1, components=3, hidden_features=(16,)).double()
    for p in mixture.parameters():  # a lumpy mixture, not the near-Gaussian initialization
        p.data.mul_(3)
    c = torch.tensor([0.4], dtype=torch.float64)
    d = mixture(c)
    g = torch.linspace(-25, 25, 1001, dtype=torch.float64)
    z = torch.cartesian_prod(g, g)
    with torch.no_grad():
        p = d.log_prob(z).exp().reshape(len(g), len(g))
    assert torch.trapezoid(torch.trapezoid(p, g), g).item() == pytest.approx(1.0, abs=1e-6)

    # samples: z0 against its mixture's CDF, z1 through its conditional CDF given z0
    # (probability integral transform), both by scipy's normal CDF, must be uniform
    torch.manual_seed(4)
    s = d.sample((20_000,))
    log_w, mean, width = (q.detach().numpy() for q in d._parameters(s))
    pit = (np.exp(log_w) * stats.norm.cdf(s.numpy()[..., None], mean, width)).sum(-1)
    for j in range(2):
        assert stats.kstest(pit[:, j], "uniform").pvalue > 0.01


def test_normal_mass_keeps_its_precision_in_both_tails():
    alpha = np.array([-1.0, 30.0, -40.0, -3.0, 8.0, -1e4])
    beta = np.array([1.0, 31.0, -39.5, 2.5, 1e4, 1e4])
    # scipy's log_ndtr, with the interval mirrored into the lower tail by hand
    lo, hi = np.where(alpha + beta > 0, -beta, alpha), np.where(alpha + beta > 0, -alpha, beta)
    ref = special.log_ndtr(hi) + np.log1p(-np.exp(special.log_ndtr(lo) - special.log_ndtr(hi)))
    got = log_normal_mass(torch.tensor(alpha), torch.tensor(beta)).numpy()
    # 1e-12: erfc-based log Phi, ~4e-13 relative near 30 sigma; atol: beyond 30 sigma
    # log Phi is taken as log Phi(30) = -4.9e-198, where scipy's underflows to -0
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-197)
    assert got[0] == pytest.approx(np.log(stats.norm.cdf(1) - stats.norm.cdf(-1)), rel=1e-14)


def test_truncated_mixture_is_normalized_and_sampling_matches_scipy():
    torch.manual_seed(5)
    mixture = AutoregressiveMixture(2, 1, components=3, hidden_features=(16,), truncated=True)
    mixture = mixture.double()
    for p in mixture.parameters():
        p.data.mul_(3)
    mixture.low.copy_(torch.tensor([-1.0, -np.inf], dtype=torch.float64))
    mixture.high.copy_(torch.tensor([2.0, 0.5], dtype=torch.float64))
    d = mixture(torch.tensor([0.4], dtype=torch.float64))
    nodes, weights = np.polynomial.legendre.leggauss(200)
    z0 = torch.tensor(0.5 + 1.5 * nodes)  # [-1, 2]
    z1 = torch.tensor(np.concatenate([-12.5 + 12.5 * nodes, 0.25 + 0.25 * nodes]))  # [-25, 0.5]
    w0, w1 = 1.5 * weights, np.concatenate([12.5 * weights, 0.25 * weights])
    z = torch.cartesian_prod(z0, z1)
    with torch.no_grad():
        p = d.log_prob(z).exp().reshape(len(z0), len(z1)).numpy()
    assert w0 @ p @ w1 == pytest.approx(1.0, abs=1e-6)
    # finite on the edges, zero beyond: the support is the box
    with torch.no_grad():
        edge = d.log_prob(torch.tensor([[-1.0, 0.5], [2.0, -3.0]], dtype=torch.float64))
    assert torch.isfinite(edge).all()

    # samples inside the box, and uniform under scipy's truncated-normal mixture CDF
    torch.manual_seed(6)
    s = d.sample((20_000,))
    assert (s[:, 0] >= -1).all() and (s[:, 0] <= 2).all() and (s[:, 1] <= 0.5).all()
    log_w, mean, width = (q.detach().numpy() for q in d._parameters(s))
    low, high = np.array([-1.0, -np.inf])[:, None], np.array([2.0, 0.5])[:, None]
    a, b = (low - mean) / width, (high - mean) / width
    cdf = stats.truncnorm.cdf(s.numpy()[..., None], a, b, mean, width)
    pit = (np.exp(log_w) * cdf).sum(-1)
    for j in range(2):
        assert stats.kstest(pit[:, j], "uniform").pvalue > 0.01


def test_truncated_model_is_finite_on_the_edges_and_keeps_its_training_quantiles():
    x = torch.tensor([[100.0], [400.0], [1000.0], [250.0]], dtype=torch.float64)
    model = DensityModel([MASS], (), Architecture(components=3, hidden_features=(8,)))
    assert model.architecture.preprocessing == "truncated"
    xs = torch.linspace(100, 1000, 1001, dtype=torch.float64)[:, None]
    model.adapt(xs)
    np.testing.assert_allclose(model.support[0].numpy(), np.quantile(xs.numpy(), QUANTILES))
    low, high = model.flow.base.low.item(), model.flow.base.high.item()
    mean, std = model.preprocessing[0].mean.item(), model.preprocessing[0].std.item()
    assert (low, high) == pytest.approx(((100 - mean) / std, (1000 - mean) / std), rel=1e-6)
    with torch.no_grad():
        assert torch.isfinite(model.log_prob(x)).all()


def test_truncated_model_on_a_half_line_is_normalized():
    # a lower bound only (m_jj, delta_m): log(x - low + offset) in latent space, cut at
    # log(offset); trained briefly on a shifted half-normal
    torch.manual_seed(0)
    data = 3000 + 500 * torch.randn(5000, 1, dtype=torch.float64).abs()
    model = DensityModel(
        [Variable("r", "GeV", 0.0, None)], (), Architecture(hidden_features=(16, 16), components=4)
    )
    train(model, data, epochs=10, batch_size=256, lr=1e-2, progress=False)
    model = model.double()
    assert torch.isfinite(model.flow.base.low).all() and model.flow.base.high.isinf().all()

    def density(r: float) -> float:
        with torch.no_grad():
            return model.log_prob(torch.tensor([[r]], dtype=torch.float64)).exp().item()

    pieces = [0, 2500, 3000, 3500, 4500, 6000, 1e5]
    total = sum(
        integrate.quad(density, a, b, limit=200)[0]
        for a, b in zip(pieces, pieces[1:], strict=False)
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_fast_log_ndtr_matches_scipy_over_both_tails():
    from scipy import special

    from flowscan.flows.mixture import _log_ndtr

    t = torch.linspace(-45.0, 45.0, 20001, dtype=torch.float64, requires_grad=True)
    reference = torch.from_numpy(special.log_ndtr(t.detach().numpy()))
    value = _log_ndtr(t)
    # erfc-based in float64: ~1e-16 relative in the bulk, ~4e-13 near 30 sigma
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=1e-15)
    (grad,) = torch.autograd.grad(value.sum(), t)
    pdf = torch.exp(-0.5 * t.detach() ** 2 - reference) / (2 * torch.pi) ** 0.5
    torch.testing.assert_close(grad, pdf, rtol=1e-9, atol=1e-15)  # d log Phi / dt
    low = _log_ndtr(torch.linspace(-20.0, 20.0, 4001))  # float32: erfc stays normal
    assert torch.isfinite(low).all()


def test_normal_mass_of_narrow_windows_and_far_tails_against_mpmath():
    mpmath = pytest.importorskip("mpmath")  # installed with torch (sympy)
    mpmath.mp.dps = 400  # Phi(-36) ~ 1e-284: hundreds of digits keep the difference
    ends = [(-5e-4, 5e-4), (2.0, 2.001), (-5.0, -4.999), (-30.5, -29.9), (-29.99, -29.0)]
    ends += [(0.3, 9.0), (-2.0, 40.0), (-31.0, -20.0), (35.0, 36.0)]
    alpha, beta = (
        torch.tensor(e, dtype=torch.float64, requires_grad=True) for e in zip(*ends, strict=True)
    )
    got = log_normal_mass(alpha, beta)
    (d_alpha, d_beta) = torch.autograd.grad(got.sum(), (alpha, beta))
    for i, (a, b) in enumerate(ends):
        mass = mpmath.ncdf(b) - mpmath.ncdf(a)
        # the erfc difference: ~1e-14 relative where the window is 1e-3 widths narrow,
        # ~1e-16 elsewhere; 1e-12 leaves room for any libm's erfc
        assert got[i].item() == pytest.approx(float(mpmath.log(mass)), rel=1e-12)
        # d/d beta log mass = pdf(beta) / mass, d/d alpha = -pdf(alpha) / mass
        assert d_beta[i].item() == pytest.approx(float(mpmath.npdf(b) / mass), rel=1e-9)
        assert d_alpha[i].item() == pytest.approx(float(-mpmath.npdf(a) / mass), rel=1e-9)
