r"""Constraint terms and nuisance parameters shared by the signal and background
densities, against independent references: scipy densities and minimizers, and
closed forms."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import scipy_densities, scipy_mixture_nll
from iminuit import Minuit
from scipy import stats

from flowscan import Constraint, Variable
from flowscan.cli import main
from flowscan.constraints import parse_nuisance
from flowscan.exceptions import InputError
from flowscan.flows import DensityModel, load_model, train
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import FitSettings, MixtureLikelihood, ParameterSpace, minuit_scan
from flowscan.stats import pseudo_experiments, pulls_and_impacts

TAU = Constraint("tau", "gaussian", 5.0, 170.0)


def test_a_gaussian_constraint_on_tau_matches_an_independent_constrained_fit():
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([172.0]), 300, 3000, seed=4)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 300, 3000, constraints=[TAU])
    theta = torch.tensor([480.0, 40.0, 175.0], dtype=torch.float64)
    f, xs = 300 / 3300, x[:, 0].numpy()
    # the NLL is the mixture's plus (tau - 170)^2 / (2 5^2), to float64 rounding of 1e4
    expected = scipy_mixture_nll(xs, theta.numpy(), f) + 0.5 * ((175.0 - 170.0) / 5.0) ** 2
    assert float(nll(theta)) == pytest.approx(expected, rel=1e-10)
    fit = minuit_scan(nll, ParameterSpace(nll.theta_vars, [480.0, 40.0, 170.0]))

    def reference(m0: float, gamma: float, tau: float) -> float:
        return scipy_mixture_nll(xs, np.array([m0, gamma, tau]), f) + 0.5 * ((tau - 170) / 5) ** 2

    m = Minuit(reference, 480.0, 40.0, 170.0)
    m.errordef, m.tol, m.limits = Minuit.LIKELIHOOD, 1e-4, [(300, 700), (20, 80), (100, 300)]
    m.migrad()
    m.hesse()
    assert fit.valid and m.valid
    # MIGRAD stops at EDM ~ 1e-4 (tol 0.1): 0.02 errors apart at most; errors to 2%
    for k in range(3):
        assert fit.theta[k] == pytest.approx(m.values[k], abs=0.02 * m.errors[k])
        assert fit.errors[k] == pytest.approx(m.errors[k], rel=0.02)
    # the data measure tau to ~2.6 GeV here: the constraint (5 GeV) is pulled and narrowed
    assert 0.3 < fit.errors[2] / TAU.width < 0.9
    assert TAU.pull(fit.theta[2]) == pytest.approx((m.values[2] - 170.0) / 5.0, abs=0.01)


def test_a_lognormal_constraint_on_the_background_yield():
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([170.0]), 100, 1000, seed=5)
    rate = Constraint("n_bkg", "lognormal", 0.1, 1000.0)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, constraints=[rate])
    theta = torch.tensor([90.0, 1050.0, 480.0, 40.0, 170.0], dtype=torch.float64)
    bare = MixtureLikelihood(BreitWigner(), Exponential(), x)
    term = 0.5 * (np.log(1050 / 1000) / np.log(1.1)) ** 2
    # ln(1.05)^2 / (2 ln(1.1)^2), to float64 rounding of an NLL of ~1e4
    assert float(nll(theta) - bare(theta)) == pytest.approx(term, rel=1e-8)
    value, grad = nll.value_and_grad(theta[None])
    _, bare_grad = bare.value_and_grad(theta[None])
    # d/dn of the term: ln(n / 1000) / (n ln(1.1)^2)
    slope = np.log(1.05) / (1050 * np.log(1.1) ** 2)
    assert float(grad[0, 1] - bare_grad[0, 1]) == pytest.approx(slope, rel=1e-8)
    assert torch.equal(grad[0, [0, 2, 3, 4]], bare_grad[0, [0, 2, 3, 4]])


def test_a_mass_scale_shared_by_signal_and_background_is_one_parameter():
    alpha = 0.01
    signal, background = BreitWigner(mass_scale=alpha), Exponential(mass_scale=alpha)
    theta_sig = torch.tensor([480.0, 40.0, 1.5], dtype=torch.float64)
    x = torch.cat([signal.sample(200, theta_sig, seed=1),
                   background.sample(2000, torch.tensor([170.0, 1.5]), seed=2)])  # fmt: skip
    scale = Constraint("mass_scale", "gaussian", 1.0)
    nll = MixtureLikelihood(signal, background, x, 200, 2000, constraints=[scale])
    assert nll.names == ["m_pole", "gamma", "mass_scale", "tau"]
    theta = torch.tensor([480.0, 40.0, 1.5, 170.0], dtype=torch.float64)
    # scipy's densities at the scaled masses, and the N(0, 1) term of s = 1.5
    scaled = np.array([480.0, 40.0, 170.0]) * (1 + alpha * 1.5)
    expected = scipy_mixture_nll(x[:, 0].numpy(), scaled, 200 / 2200) + 0.5 * 1.5**2
    assert float(nll(theta)) == pytest.approx(expected, rel=1e-10)
    # the gradient in s sums both densities' dependence: against central differences
    _, grad = nll.value_and_grad(theta[None])
    h = 1e-4
    up, down = theta.clone(), theta.clone()
    up[2] += h
    down[2] -= h
    numeric = float(nll(up) - nll(down)) / (2 * h)
    # central differences of an NLL of ~1e4 in float64: ~1e-12 x 1e4 / 1e-4 = 1e-4 noise
    assert float(grad[0, 2]) == pytest.approx(numeric, rel=1e-5, abs=1e-3)


def test_the_mass_scale_densities_are_normalized_and_sample_as_they_say():
    signal = BreitWigner(mass_scale=0.02)
    theta = torch.tensor([500.0, 40.0, -2.0], dtype=torch.float64)
    grid = torch.linspace(MASS.low, MASS.high, 200_001, dtype=torch.float64)[:, None]
    density = signal.log_prob(grid, theta).exp()
    # trapezoid over 200k intervals of a density whose curvature peaks at ~1e-5 / GeV^3
    assert float(torch.trapezoid(density, grid[:, 0])) == pytest.approx(1.0, abs=1e-7)
    x = signal.sample(20_000, theta, seed=3)[:, 0].numpy()
    pole, width = 500.0 * 0.96, 40.0 * 0.96
    cauchy = stats.cauchy(pole, width / 2)
    lo, hi = cauchy.cdf(MASS.low), cauchy.cdf(MASS.high)
    p = stats.kstest(x, lambda m: (cauchy.cdf(m) - lo) / (hi - lo)).pvalue
    assert p > 1e-3  # a KS test of exact samples fails 1 time in 1000
    ps, _ = scipy_densities(grid[:5, 0].numpy(), np.array([pole, width, 170.0]))
    assert np.allclose(density[:5].numpy(), ps, rtol=1e-12)


def test_constraints_refuse_what_does_not_fit():
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([170.0]), 50, 500, seed=6)
    with pytest.raises(InputError, match="not a parameter of the likelihood"):
        MixtureLikelihood(BreitWigner(), Exponential(), x, 50, 500,
                          constraints=[Constraint("jes", "gaussian", 1.0)])  # fmt: skip
    with pytest.raises(InputError, match="log-normal constraint is for a positive parameter"):
        MixtureLikelihood(BreitWigner(), Exponential(), x, negative_signal=True,
                          constraints=[Constraint("n_sig", "lognormal", 0.1, 40.0)])  # fmt: skip
    with pytest.raises(InputError, match="a name appears twice"):
        MixtureLikelihood(BreitWigner(), Exponential(), x, 50, 500, constraints=[TAU, TAU])
    with pytest.raises(InputError, match="needs a positive observed value"):
        parse_nuisance("n_bkg:lognormal:0.1")
    with pytest.raises(InputError, match="name:kind:width"):
        parse_nuisance("tau:5")
    with pytest.raises(InputError, match="unknown kind"):
        parse_nuisance("tau:flat:5")
    with pytest.raises(InputError, match="width must be positive"):
        parse_nuisance("tau:gaussian:0:170")


def test_fluctuated_global_observables_follow_their_constraint():
    rng = np.random.default_rng(0)
    gauss = [TAU.fluctuated(172.0, rng).observed for _ in range(4000)]
    logn = [Constraint("n", "lognormal", 0.2, 1.0).fluctuated(900.0, rng).observed
            for _ in range(4000)]  # fmt: skip
    # 4000 draws: means to ~3 standard errors, KS against the exact laws
    assert np.mean(gauss) == pytest.approx(172.0, abs=3 * 5 / np.sqrt(4000))
    assert stats.kstest(gauss, stats.norm(172.0, 5.0).cdf).pvalue > 1e-3
    law = stats.lognorm(s=np.log(1.2), scale=900.0)
    assert stats.kstest(logn, law.cdf).pvalue > 1e-3


def test_impacts_are_the_shifts_of_refits_with_the_nuisance_fixed():
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([172.0]), 300, 3000, seed=4)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 300, 3000, constraints=[TAU])
    space = ParameterSpace(nll.theta_vars, [480.0, 40.0, 170.0])
    fit = minuit_scan(nll, space)
    table = pulls_and_impacts(nll, space, fit)
    assert list(table["nuisance"]) == ["tau"]
    row = table.iloc[0]
    assert row["pull"] == pytest.approx((fit.theta[2] - 170.0) / 5.0, rel=1e-12)
    assert row["constraint"] == pytest.approx(fit.errors[2] / 5.0, rel=1e-12)
    # independent refits: scipy densities, Minuit with numerical derivatives, tau fixed
    xs, f = x[:, 0].numpy(), 300 / 3300
    for side, sign in (("up", 1), ("down", -1)):
        tau = fit.theta[2] + sign * fit.errors[2]

        def reference(m0: float, gamma: float) -> float:
            return scipy_mixture_nll(xs, np.array([m0, gamma, tau]), f)  # noqa: B023

        m = Minuit(reference, *fit.theta[:2])
        m.errordef, m.tol, m.limits = Minuit.LIKELIHOOD, 1e-4, [(300, 700), (20, 80)]
        m.migrad()
        # each refit stops within ~0.01-0.02 sigma of its minimum (EDM)
        assert row[f"m_pole_{side}"] == pytest.approx(m.values[0] - fit.theta[0],
                                                       abs=0.03 * fit.errors[0])  # fmt: skip
        assert row[f"gamma_{side}"] == pytest.approx(m.values[1] - fit.theta[1],
                                                      abs=0.03 * fit.errors[1])  # fmt: skip


def test_toys_fluctuate_the_global_observables_and_their_pulls_are_standard():
    truth = {"n_sig": 50.0, "n_bkg": 250.0, "m_pole": 480.0, "gamma": 40.0, "tau": 170.0}
    toys = pseudo_experiments(BreitWigner(), Exponential(), truth, 60, constraints=[TAU],
                              settings=FitSettings(fixed=["gamma", "n_sig"]), seed=3,
                              progress=False)  # fmt: skip
    rng = np.random.default_rng([3, 7, 1])
    assert toys.table.loc[7, "global_tau"] == TAU.fluctuated(170.0, rng).observed
    # The data alone measure tau to ~11 GeV here, the constraint to 5: with the global
    # observable held at the truth the pulls of tau would have a width of ~0.45 (the
    # combined error over the data's); with it fluctuated, 1. 60 toys: the width to
    # +-0.09 (1 sigma), the mean to +-0.13.
    summary = toys.summary().loc["tau"]
    assert 0.75 < summary["pull_width"] < 1.25
    assert abs(summary["pull_mean"]) < 0.4


def test_train_and_scan_with_nuisances_write_pulls_and_impacts(tmp_path, capsys):
    small = ["--epochs", "2", "--hidden", "16,16", "--no-progress"]
    for role in ("signal", "background"):
        assert main(["train", "--sampler", "breit-wigner", "--role", role, "--events", "8000",
                     "--nuisance", "mass_scale:gaussian:0.01", "--out", str(tmp_path / role),
                     *small]) == 0  # fmt: skip
    model = load_model(tmp_path / "signal/model.pt")
    assert model.nuisances == [Constraint("mass_scale", "gaussian", 1.0, 0.0)]
    assert [v.name for v in model.theta_vars] == ["m_pole", "gamma", "mass_scale"]
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([170.0]), 300, 3000, seed=8)
    pd.DataFrame({"m": x[:, 0]}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "analysis.toml").write_text(
        '[nuisances.tau]\nkind = "gaussian"\nwidth = 5.0\nobserved = 170.0\n'
    )
    main(["scan", "--signal", str(tmp_path / "signal/model.pt"), "--background",
          str(tmp_path / "background/model.pt"), "--data", str(tmp_path / "data.csv"),
          "--n-sig", "300", "--n-bkg", "3000", "--method", "minuit", "--analysis",
          str(tmp_path / "analysis.toml"), "--out", str(tmp_path / "scan")])  # fmt: skip
    assert "nuisance parameters (pull" in capsys.readouterr().out
    saved = json.loads((tmp_path / "scan/scan.json").read_text())
    assert [c["name"] for c in saved["config"]["nuisances"]] == ["mass_scale", "tau"]
    fit = saved["results"]["minuit"]
    theta = dict(zip(fit["names"], fit["theta"], strict=True))
    errors = dict(zip(fit["names"], fit["errors"], strict=True))
    rows = {r["nuisance"]: r for r in saved["impacts"]}
    assert rows["tau"]["pull"] == pytest.approx((theta["tau"] - 170.0) / 5.0, rel=1e-12)
    assert rows["mass_scale"]["constraint"] == pytest.approx(errors["mass_scale"], rel=1e-12)
    assert set(rows["tau"]) >= {"m_pole_up", "m_pole_down", "gamma_up", "gamma_down"}
    assert (tmp_path / "scan/impacts.png").stat().st_size > 0


class _ShiftedGaussian:
    r"""N(x; mu + K nu, 1) on [-50, 50], nu a nuisance in units of its sigma: the data
    measure mu + K nu only, so the profiled error and the impact have closed forms."""

    K = 0.5
    observables = (Variable("x", "", -50.0, 50.0),)
    # Wide ranges: Minuit's HESSE works in its internal (sine) coordinates of bounded
    # parameters, which shrinks an error by ~0.2 (error / half-range)^2 (2% for nu over
    # +-3 sigma); over +-30 sigma that is 2e-4, below the tolerances here.
    theta_vars = (Variable("mu", "", -20.0, 20.0), Variable("nu", "sigma", -30.0, 30.0))

    def log_prob(self, x, theta):
        theta = torch.as_tensor(theta, dtype=x.dtype)
        mu, nu = theta[..., 0], theta[..., 1]
        return -0.5 * (x[..., 0] - mu - self.K * nu) ** 2 - 0.5 * np.log(2 * np.pi)


class _Flat:
    observables, theta_vars = _ShiftedGaussian.observables, ()

    def log_prob(self, x, theta):
        return torch.full(x.shape[:-1], -np.log(100.0), dtype=x.dtype)


def test_a_linear_nuisance_widens_the_error_and_impacts_by_their_closed_forms():
    n = 2000
    x = torch.from_numpy(np.random.default_rng(8).normal(1.0, 1.0, (n, 1)))
    nu = Constraint("nu", "gaussian", 1.0)
    # a background yield of 1e-9 events: the fraction is 1 to 5e-13, the NLL Gaussian
    nll = MixtureLikelihood(_ShiftedGaussian(), _Flat(), x, n, 1e-9, constraints=[nu])
    space = ParameterSpace(nll.theta_vars, [0.0, 0.0])
    fit = minuit_scan(nll, space)
    k, stat = _ShiftedGaussian.K, 1 / np.sqrt(n)
    # The NLL is quadratic: the data measure mu + K nu = mean(x), to ~1e-3 of their error
    # at MIGRAD's tolerance (EDM ~ 1e-4); along the constraint's direction nu_hat = 0 to
    # ~0.015 of its error, and HESSE's errors are exact.
    assert fit.theta[0] + k * fit.theta[1] == pytest.approx(x.mean().item(), abs=1e-3 * stat)
    assert fit.theta[1] == pytest.approx(0.0, abs=0.015)
    assert fit.errors[0] == pytest.approx(np.hypot(stat, k * 1.0), rel=1e-3)
    assert fit.errors[1] == pytest.approx(1.0, rel=1e-3)
    row = pulls_and_impacts(nll, space, fit, pois=["mu"]).iloc[0]
    # nu fixed at nu_hat +- sigma_hat (= +-1): mu_hat moves by -+K sigma_hat
    assert row["mu_up"] == pytest.approx(-k * fit.errors[1], abs=1e-3 * stat)
    assert row["mu_down"] == pytest.approx(k * fit.errors[1], abs=1e-3 * stat)


def test_a_model_conditioned_on_a_mass_scale_moves_as_the_exact_density():
    exact = BreitWigner(mass_scale=0.05)  # s = +-2: masses scaled by 1.1 and 0.9
    x, theta = exact.training_set(30_000, seed=9)
    model = DensityModel([MASS], exact.theta_vars, seed=9)
    train(model, x, theta, epochs=8, seed=9, progress=False)
    medians = {}
    for s in (-2.0, 2.0):
        point = torch.tensor([455.0, 33.0, s])
        medians[s] = model.sample(20_000, point, seed=1).double().median().item()
        reference = exact.sample(20_000, point, seed=2).median().item()
        # a 30k-event model's median sits within ~1% of the exact one (statistical 0.2%)
        assert medians[s] == pytest.approx(reference, rel=0.01)
    # the shift with s: the median scales by 1.1 / 0.9 between s = -2 and s = +2
    assert medians[2.0] / medians[-2.0] == pytest.approx(1.1 / 0.9, rel=0.015)
