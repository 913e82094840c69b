import dataclasses

import numpy as np
import pytest
import torch
from conftest import scipy_mixture_nll
from iminuit import Minuit
from scipy import stats

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import (
    METHODS,
    MixtureLikelihood,
    ParameterSpace,
    bayesopt_scan,
    covariance,
    error_scale_hessian,
    gradient_scan,
    grid_scan,
    minuit_scan,
    random_scan,
)


def _optimizer(method: str, budget: int, grid: int):
    r"""The optimizer `method` on a given space (`fit` builds its space from the
    likelihood's ranges; these tests narrow them)."""
    return {
        "minuit": minuit_scan,
        "gradient": gradient_scan,
        "bayesopt": lambda nll, space: bayesopt_scan(nll, space, budget, seed=2),
        "grid": lambda nll, space: grid_scan(nll, space, grid),
        "random": lambda nll, space: random_scan(nll, space, budget, seed=2),
    }[method]

LO, HI = MASS.low, MASS.high


def _minuit_mle(
    x: np.ndarray,
    f: float,
    start: list[float],
    fix_gamma: bool = False,
    fix_tau: bool = False,
    fix_m0: bool = False,
) -> Minuit:
    r"""Independent reference: Minuit with numerical derivatives on the scipy
    closed-form mixture pdf."""

    def nll(m0: float, gamma: float, tau: float) -> float:
        return scipy_mixture_nll(x, np.array([m0, gamma, tau]), f)

    m = Minuit(nll, *start)
    m.fixed["m0"] = fix_m0
    m.fixed["gamma"] = fix_gamma
    m.fixed["tau"] = fix_tau
    m.errordef = Minuit.LIKELIHOOD
    m.limits = [(300, 700), (20, 80), (100, 300)]
    m.tol = 1e-4
    m.migrad()
    assert m.valid
    return m


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("optimizer", [gradient_scan, minuit_scan])
def test_optimizer_recovers_the_exact_mle(optimizer, seed):
    truth = torch.tensor([480.0, 35.0, 160.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], n_sig=1_000, n_bkg=20_000, seed=seed)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000)
    result = optimizer(nll, ParameterSpace(nll.theta_vars))
    ref = _minuit_mle(x[:, 0].numpy(), 1_000 / 21_000, truth.tolist())
    assert result.converged
    for value, reference, error in zip(result.theta, ref.values, ref.errors, strict=True):
        assert value == pytest.approx(reference, abs=0.05 * error)
    assert result.nll == pytest.approx(ref.fval, abs=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_the_exact_mle_in_one_dimension(method):
    x = pseudo_data(
        torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=300, n_bkg=3_000, seed=9
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 300, 3_000)
    window = dataclasses.replace(nll.theta_vars[0], low=400.0, high=500.0)
    space = ParameterSpace([window, *nll.theta_vars[1:]], [460.0, 40.0, 180.0], ["gamma", "tau"])
    budget = {"bayesopt": 30, "random": 512}.get(method, 0)
    result = _optimizer(method, budget, grid=201)(nll, space)
    ref = _minuit_mle(x[:, 0].numpy(), 300 / 3_300, [460.0, 40.0, 180.0], True, True)
    assert result.theta[0] == pytest.approx(ref.values["m0"], abs=0.1 * ref.errors["m0"])
    assert result.theta[1:].tolist() == [40.0, 180.0]
    assert 400.0 <= result.path[:, 0].min() and result.path[:, 0].max() <= 500.0


def test_gradient_scan_counts_and_bounds():
    x = pseudo_data(
        torch.tensor([350.0, 50.0]), torch.tensor([250.0]), n_sig=200, n_bkg=2_000, seed=3
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 200, 2_000)
    calls = []

    def counting(theta: torch.Tensor) -> torch.Tensor:
        calls.append(theta.detach().clone())
        return nll(theta)

    space = ParameterSpace(nll.theta_vars, start=[650.0, 75.0, 110.0])
    result = gradient_scan(counting, space, starts=0)
    assert result.nll_evals == result.grad_evals == len(calls)
    assert len(result.trace) == len(calls) and result.trace[-1][0] == len(calls)
    low = np.array([v.low for v in nll.theta_vars])
    high = np.array([v.high for v in nll.theta_vars])
    visited = torch.stack(calls).numpy()
    assert (visited >= low).all() and (visited <= high).all()
    np.testing.assert_allclose(result.path[0], [650.0, 75.0, 110.0])
    assert np.all(np.diff([nll(torch.as_tensor(p)).item() for p in result.path]) < 0)


def test_minuit_hesse_errors_match_the_autograd_hessian():
    truth = torch.tensor([520.0, 40.0, 200.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], n_sig=1_000, n_bkg=20_000, seed=4)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000)
    result = minuit_scan(nll, ParameterSpace(nll.theta_vars), minos=True)
    reference = np.sqrt(np.diag(covariance(nll, result.theta)))
    np.testing.assert_allclose(result.errors, reference, rtol=0.05)
    for name, error in zip(result.names, reference, strict=True):
        lower, upper = result.minos[name]
        assert lower < 0 < upper
        assert (upper - lower) / 2 == pytest.approx(error, rel=0.2)


def test_minuit_hesse_errors_on_small_flows_match_the_exact_fit():
    # Default models (Gaussian mixtures) with 16x16 networks trained on 20k events for 10
    # epochs; gamma, which so small a model learns poorly, is held at the truth.
    models = []
    for i, density in enumerate([BreitWigner(), Exponential()]):
        x, theta = training_set(density, 20_000, seed=11 + i)
        model = DensityModel([MASS], density.theta_vars, Architecture(hidden_features=(16, 16)))
        train(model, x, theta, epochs=10, batch_size=256, progress=False)
        models.append(model.double())
    truth = [480.0, 35.0, 160.0]
    x = pseudo_data(torch.tensor(truth[:2]), torch.tensor(truth[2:]), 1_000, 20_000, seed=0)
    fits = [
        minuit_scan(nll, ParameterSpace(nll.theta_vars, truth, ["gamma"]))
        for nll in [
            MixtureLikelihood(*models, x, 1_000, 20_000),
            MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000),
        ]
    ]
    np.testing.assert_allclose(fits[0].errors[[0, 2]], fits[1].errors[[0, 2]], rtol=0.2)


def test_error_scale_hessian_sees_through_ripples_the_autograd_hessian_sees():
    # A quadratic NLL with errors (2, 0.5) and correlation 0.6, plus ripples of 1e-4 at
    # the 0.1 scale, as on a spline flow: at theta = (1, 2) they add 0.39 to each diagonal
    # element of the pointwise Hessian (0.39 and 6.25 without them).
    cov = np.array([[4.0, 0.6], [0.6, 0.25]])
    h = torch.as_tensor(np.linalg.inv(cov))

    def nll(theta: torch.Tensor) -> torch.Tensor:
        d = theta - torch.tensor([1.0, 2.0], dtype=theta.dtype)
        quadratic = 0.5 * torch.einsum("...i,ij,...j->...", d, h, d)
        return quadratic - 1e-4 * torch.cos(2 * torch.pi * theta / 0.1).sum(-1)

    def gradients(points: np.ndarray) -> np.ndarray:
        theta = torch.as_tensor(points).requires_grad_()
        return torch.autograd.grad(nll(theta).sum(), theta)[0].numpy()

    theta = np.array([1.0, 2.0])
    pointwise = np.linalg.inv(torch.autograd.functional.hessian(nll, torch.as_tensor(theta)))
    assert not np.allclose(pointwise, cov, rtol=0.2)
    bounds = np.array([[-10.0, 10.0], [1.5, 2.2]])  # the second cuts the +1 sigma step
    hessian, step = error_scale_hessian(gradients, theta, bounds)
    np.testing.assert_allclose(np.linalg.inv(hessian), cov, rtol=0.03, atol=0.003)
    np.testing.assert_allclose(step, 1 / np.sqrt(np.diag(np.linalg.inv(cov))), rtol=0.03)


def test_minuit_profiles_and_contours_match_a_scipy_profile_likelihood():
    truth = torch.tensor([520.0, 40.0, 200.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], n_sig=1_000, n_bkg=20_000, seed=4)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000)
    space = ParameterSpace(nll.theta_vars, start=[520.0, 40.0, 200.0], fixed=["tau"])
    result = minuit_scan(nll, space, profiles=True)
    f = 1_000 / 21_000
    best = _minuit_mle(x[:, 0].numpy(), f, truth.tolist(), fix_tau=True)
    assert set(result.profiles) == {"m_pole", "gamma"}
    for value, dnll in result.profiles["m_pole"][::4]:
        ref = _minuit_mle(x[:, 0].numpy(), f, [value, 40.0, 200.0], fix_m0=True, fix_tau=True)
        assert dnll == pytest.approx(ref.fval - best.fval, abs=2e-3)
    (levels,) = result.contours.values()
    for cl, points in levels.items():
        threshold = stats.chi2.ppf(float(cl), 2) / 2
        for m0, gamma in points[::12]:
            assert scipy_mixture_nll(x[:, 0].numpy(), np.array([m0, gamma, 200.0]), f) - (
                best.fval
            ) == pytest.approx(threshold, abs=0.02)


def test_minuit_at_a_bound_with_negative_curvature_reports_untrusted_errors():
    # NLL = -a^2 / 2 + (b - 1)^2 / (2 * 0.25): the minimum in the box is at the bound
    # a = 2, where the curvature in a is -1; b = 1 +- 0.5.
    def nll(theta: torch.Tensor) -> torch.Tensor:
        a, b = theta[..., 0], theta[..., 1]
        return -0.5 * a**2 + 2 * (b - 1) ** 2

    space = ParameterSpace([Variable("a", "", -1.0, 2.0), Variable("b", "", 0.0, 3.0)])
    result = minuit_scan(nll, space)
    assert result.theta[0] == pytest.approx(2.0, abs=1e-4)
    assert result.theta[1] == pytest.approx(1.0, abs=0.01)  # MIGRAD's EDM: ~0.01 sigma
    assert result.errors[1] == pytest.approx(0.5, rel=0.05)
    assert "not positive definite" in result.message


@pytest.mark.parametrize("optimizer", [gradient_scan, minuit_scan])
def test_fixed_parameters_stay_at_their_start(optimizer):
    x = pseudo_data(
        torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=500, n_bkg=5_000, seed=5
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 500, 5_000)
    space = ParameterSpace(nll.theta_vars, start=[450.0, 40.0, 180.0], fixed=["gamma"])
    result = optimizer(nll, space)
    assert result.theta[1] == 40.0
    ref = _minuit_mle(x[:, 0].numpy(), 500 / 5_500, [450.0, 40.0, 180.0], fix_gamma=True)
    assert result.theta[0] == pytest.approx(ref.values["m0"], abs=0.05 * ref.errors["m0"])


def test_parameter_space_maps_the_unit_box_and_checks_its_input():
    space = ParameterSpace(BreitWigner.theta_vars, fixed=["gamma"])
    assert space.floating_names == ["m_pole"] and space.start.tolist() == [500.0, 50.0]
    u = torch.tensor([[0.0], [0.25], [1.0]], dtype=torch.float64)
    torch.testing.assert_close(
        space.from_unit(u), torch.tensor([[300.0], [400.0], [700.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(space.to_unit(space.from_unit(u)), u)
    torch.testing.assert_close(space.full(torch.tensor([420.0])), torch.tensor([420.0, 50.0]))
    with pytest.raises(ValueError, match="start gamma = 90 GeV is outside"):
        ParameterSpace(BreitWigner.theta_vars, start=[400.0, 90.0])
    with pytest.raises(ValueError, match="cannot fix"):
        ParameterSpace(BreitWigner.theta_vars, fixed=["width"])
    with pytest.raises(ValueError, match="nothing to scan"):
        ParameterSpace(BreitWigner.theta_vars, fixed=["m_pole", "gamma"])
    with pytest.raises(ValueError, match="finite bounds"):
        ParameterSpace([Variable("mu")])
    with pytest.raises(ValueError, match="must be below"):
        Variable("tau", "GeV", 300.0, 100.0)


def test_grid_scan_finds_the_mle_to_its_spacing():
    x = pseudo_data(
        torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=500, n_bkg=5_000, seed=5
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 500, 5_000)
    space = ParameterSpace(nll.theta_vars, start=[450.0, 40.0, 180.0], fixed=["gamma", "tau"])
    result = grid_scan(nll, space, 401)  # 1 GeV spacing in m_pole
    ref = _minuit_mle(
        x[:, 0].numpy(), 500 / 5_500, [450.0, 40.0, 180.0], fix_gamma=True, fix_tau=True
    )
    assert result.nll_evals == 401 and result.grad_evals == 0
    assert result.theta[0] == pytest.approx(ref.values["m0"], abs=0.5 + 1e-9)
    assert result.nll == pytest.approx(nll(torch.as_tensor(result.theta)).item(), rel=1e-12)


def test_random_scan_reports_the_best_of_its_points_and_stays_in_the_box():
    x = pseudo_data(
        torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=200, n_bkg=2_000, seed=6
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 200, 2_000)
    calls = []

    def counting(theta: torch.Tensor) -> torch.Tensor:
        calls.append(theta.clone())
        return nll(theta)

    result = random_scan(counting, ParameterSpace(nll.theta_vars), 128, batch=48, seed=1)
    visited = torch.cat(calls)
    assert len(visited) == result.nll_evals == 128 and [len(c) for c in calls] == [48, 48, 32]
    singles = torch.stack([nll(t) for t in visited])
    assert result.nll == pytest.approx(singles.min().item(), rel=1e-12)
    np.testing.assert_allclose(
        result.trace[:, 2], np.minimum.accumulate(singles.numpy()), rtol=1e-12
    )
    bounds = np.array([[v.low, v.high] for v in nll.theta_vars])
    assert ((visited.numpy() >= bounds[:, 0]) & (visited.numpy() <= bounds[:, 1])).all()
    again = random_scan(nll, ParameterSpace(nll.theta_vars), 128, seed=1)
    np.testing.assert_array_equal(again.theta, result.theta)


def test_budgets_must_be_positive():
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=20, n_bkg=200, seed=6)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 20, 200)
    space = ParameterSpace(nll.theta_vars)
    with pytest.raises(ValueError, match="the budget must be 1 to"):
        random_scan(nll, space, 0)
    with pytest.raises(ValueError, match="positive number of grid points"):
        grid_scan(nll, space, [5, 0, 5])


def test_bayesopt_approaches_the_mle_in_one_dimension_within_its_budget():
    x = pseudo_data(
        torch.tensor([450.0, 40.0]), torch.tensor([180.0]), n_sig=500, n_bkg=5_000, seed=5
    )
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 500, 5_000)
    space = ParameterSpace(nll.theta_vars, start=[450.0, 40.0, 180.0], fixed=["gamma", "tau"])
    result = bayesopt_scan(nll, space, budget=20, q=2, seed=3)
    ref = _minuit_mle(
        x[:, 0].numpy(), 500 / 5_500, [450.0, 40.0, 180.0], fix_gamma=True, fix_tau=True
    )
    assert result.nll_evals == 20 and result.grad_evals == 0
    assert result.theta[0] == pytest.approx(ref.values["m0"], abs=0.5 * ref.errors["m0"])
    assert result.nll == pytest.approx(nll(torch.as_tensor(result.theta)).item(), rel=1e-12)
    again = bayesopt_scan(nll, space, budget=20, q=2, seed=3)
    np.testing.assert_array_equal(again.theta, result.theta)


def test_multistart_gradient_scan_counts_its_batch_and_finds_the_mle():
    truth = torch.tensor([620.0, 30.0, 140.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], n_sig=1_000, n_bkg=20_000, seed=8)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, 1_000, 20_000)
    calls = []

    def counting(theta: torch.Tensor) -> torch.Tensor:
        calls.append(theta.shape[0] if theta.ndim == 2 else 1)
        return nll(theta)

    space = ParameterSpace(nll.theta_vars, start=[310.0, 75.0, 290.0])
    result = gradient_scan(counting, space, starts=15)
    assert calls[0] == 16  # the start and 15 Sobol points in one batch
    assert set(calls[1:]) == {1}  # then L-BFGS from each of the best 4, one point at a time
    assert result.nll_evals == sum(calls) and result.grad_evals == len(calls) - 1
    assert "from the best 4 starts" in result.message
    ref = _minuit_mle(x[:, 0].numpy(), 1_000 / 21_000, truth.tolist())
    for value, reference, error in zip(result.theta, ref.values, ref.errors, strict=True):
        assert value == pytest.approx(reference, abs=0.05 * error)


@pytest.mark.parametrize("method", ["minuit", "gradient", "grid"])
def test_every_method_says_when_its_minimum_is_on_a_bound(method):
    # NLL = (a - 5)^2 / 2 + (b - 0.5)^2 / 2 on the box [0, 1]^2: the minimum in the box is
    # at a = 1, on its bound, with b = 0.5 inside (the grid has points on the bounds;
    # random and BO points need not come within 1e-3 of them)
    def nll(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * (theta[..., 0] - 5) ** 2 + 0.5 * (theta[..., 1] - 0.5) ** 2

    space = ParameterSpace([Variable("a", "", 0.0, 1.0), Variable("b", "", 0.0, 1.0)])
    result = _optimizer(method, budget=24, grid=5)(nll, space)
    assert result.status == "at bound" and result.at_bound == ["a"] and not result.valid
    assert result.theta[0] == pytest.approx(1.0, abs=1e-3)
    inside = ParameterSpace([Variable("a", "", 0.0, 10.0), Variable("b", "", 0.0, 1.0)])
    result = _optimizer(method, budget=24, grid=5)(nll, inside)
    assert result.status == "valid" and result.at_bound == []


def test_minuit_retries_then_fails_where_the_nll_is_never_finite():
    # finite only at the start: every MIGRAD attempt (strategy 0, 1, then from the box
    # centre) steps into NaN, and the fit is a FitError, not a NaN result
    def nll(theta: torch.Tensor) -> torch.Tensor:
        a = theta[..., 0]
        return torch.where(a == 0.25, a, torch.full_like(a, float("nan")))

    space = ParameterSpace([Variable("a", "", 0.0, 1.0)], [0.25])
    with pytest.raises(FloatingPointError, match="no finite minimum in 3 attempts"):
        minuit_scan(nll, space)


def test_scan_table_marks_fixed_missing_errors_bounds_and_failures():
    from flowscan.scanner import ScanResult

    space = ParameterSpace(
        [Variable("a", "GeV", 0.0, 1.0), Variable("b", "GeV", 0.0, 1.0), Variable("c", "", 0, 1)],
        fixed=["c"],
    )
    result = ScanResult.from_evaluations(
        "grid", space, np.array([[1.0, 0.5, 0.5]]), np.array([1.0]), np.array([0.1]), "one point"
    )
    result.errors = np.array([0.1, 0.0, 0.0])
    text = result.table(space.theta_vars).splitlines()
    assert "AT BOUND" in text[0] and "at a bound of its range: a" in text[1]
    assert text[2].endswith("AT BOUND") and "+- 0.10" in text[2]
    assert "no error" in text[3] and "(fixed)" in text[4] and "AT BOUND" not in text[3]
    failed = ScanResult.failed("minuit", space, "MIGRAD found no finite minimum", 1.0)
    assert failed.table(space.theta_vars) == (
        "  minuit: FAILED: no finite minimum; MIGRAD found no finite minimum"
    )
    assert failed.status == "failed" and np.isnan(failed.theta).all()
