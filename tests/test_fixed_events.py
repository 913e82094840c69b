r"""The fit-time path (`FixedEvents` inside `MixtureLikelihood`) against the
straightforward evaluation, kept here as the reference: the model's own `log_prob` on
all events at each theta, and the mixture sum written out."""

import copy

import pytest
import torch

from flowscan import Variable
from flowscan.exceptions import InputError
from flowscan.flows import Architecture, DensityEnsemble, DensityModel, FixedEvents, train
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import MixtureLikelihood, ParameterSpace, gradient_scan, minuit_scan

X2 = [Variable("a", "GeV", 0.0, None), Variable("b", "", 0.0, 1.0)]
THETA = [Variable("t", "GeV", 1.0, 3.0)]
FAMILIES = [
    ("mog", None),
    ("mog", "logit"),
    ("mog", "response"),
    ("nsf", None),
    ("maf", None),
    ("realnvp", None),
    ("coupling-nsf", None),
]


def _events(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = 1 + 2 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    a = t[:, 0] * torch.distributions.Exponential(1.0).sample((n,)).double()
    b = torch.rand(n, generator=g, dtype=torch.float64) ** t[:, 0]
    return torch.stack([a.clamp_min(1e-3), b.clamp(1e-6, 1 - 1e-6)], 1), t


def _model(
    flow: str, preprocessing: str | None, conditional: bool, members: int = 1
) -> DensityModel | DensityEnsemble:
    out = []
    for k in range(members):
        torch.manual_seed(k)
        x, t = _events(600, seed=1)
        arch = Architecture(flow, 2, (8, 8), 4, 3, preprocessing)
        model = DensityModel(X2, THETA if conditional else (), arch, seed=1 + k)
        train(model, x, t if conditional else None, epochs=1, batch_size=200, progress=False)
        out.append(copy.deepcopy(model).double())  # float64: the paths round alike to ~1e-15
    return out[0] if members == 1 else DensityEnsemble(out)


def _reference(signal, background, x, theta, f_sig, weights=None):
    r"""NLL `(K,)`, written out from each model's own `log_prob` at each theta."""
    out = []
    for th in theta:
        ts, tb = th[: len(signal.theta_vars)], th[len(signal.theta_vars) :]
        lp_s = signal.log_prob(x, ts if ts.numel() else None).double()
        lp_b = background.log_prob(x, tb if tb.numel() else None).double()
        terms = torch.logaddexp(lp_s + torch.log(f_sig), lp_b + torch.log1p(-f_sig))
        out.append(-(terms if weights is None else weights * terms).sum())
    return torch.stack(out)


@pytest.mark.parametrize(("flow", "preprocessing"), FAMILIES)
@pytest.mark.parametrize(("weighted", "members"), [(False, 1), (True, 1), (True, 3)])
def test_the_fit_path_equals_the_straightforward_evaluation(
    flow, preprocessing, weighted, members
):
    signal = _model(flow, preprocessing, conditional=True, members=members)
    background = _model(flow, preprocessing, conditional=False, members=members)
    x, _ = _events(400, seed=2)
    weights = torch.linspace(0.5, 1.5, len(x), dtype=torch.float64) if weighted else None
    nll = MixtureLikelihood(
        signal, background, x, 40, 360, weights=weights, check_models=False, check_data=False
    )
    f_sig = torch.tensor(0.1, dtype=torch.float64)
    # simulation's weights enter in effective-event units (MixtureLikelihood.weight_scale)
    weights = None if weights is None else weights * weights.sum() / weights.square().sum()
    for theta in ([[1.7]], [[1.2], [2.0], [2.9]]):  # one theta, and a batch
        theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        ref = _reference(signal, background, x, theta, f_sig, weights)
        (g_ref,) = torch.autograd.grad(ref.sum(), theta)
        # per-event terms cancel near a minimum: the scale is the sum of their magnitudes
        scale = _per_event_gradients(signal, background, x, theta, f_sig, weights)
        scale = scale.abs().sum(dim=1)
        for pairs in (None, len(theta) * 37):  # the family's chunks, and 37-event chunks
            nll.chunk_pairs = pairs
            fast = nll(theta)
            # float64 sums of 400 terms: the two evaluation orders agree to ~1e-14 relative
            torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)
            (g_fast,) = torch.autograd.grad(fast.sum(), theta)
            assert ((g_fast - g_ref).abs() <= 1e-12 * scale).all()
            values, grads = nll.value_and_grad(theta.detach())
            torch.testing.assert_close(values, ref.detach(), rtol=1e-12, atol=0)
            assert ((grads - g_ref).abs() <= 1e-12 * scale).all()


def _per_event_gradients(signal, background, x, theta, f_sig, weights):
    r"""d(term_i)/d theta_k of every event's NLL term, `(K, N, D)`, in one backward pass
    (a copy of theta per event)."""
    t = theta.detach()[:, None, :].expand(-1, len(x), -1).clone().requires_grad_()
    lp_s = signal.log_prob(x, t).double()
    lp_b = background.log_prob(x).double()
    terms = -torch.logaddexp(lp_s + torch.log(f_sig), lp_b + torch.log1p(-f_sig))
    terms = terms if weights is None else weights * terms
    (grad,) = torch.autograd.grad(terms.sum(), t)
    return grad


def test_fixed_events_of_one_observable_and_the_exact_densities():
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), 100, 900, seed=3)
    exact = MixtureLikelihood(BreitWigner(), Exponential(), x)
    theta = torch.tensor([[100.0, 900.0, 450.0, 40.0, 180.0], [50.0, 950.0, 500.0, 30.0, 150.0]])
    theta = theta.double()
    lp = [
        BreitWigner().log_prob(x, theta[:, None, 2:4]),
        Exponential().log_prob(x, theta[:, None, 4:]),
    ]
    n_sig, n_bkg = theta[:, :1], theta[:, 1:2]
    ref = (
        n_sig[:, 0] + n_bkg[:, 0] - torch.logaddexp(n_sig.log() + lp[0], n_bkg.log() + lp[1]).sum(1)
    )
    torch.testing.assert_close(exact(theta), ref, rtol=1e-12, atol=0)
    xs, ts = training_set(Exponential(), 3000, seed=4)
    model = DensityModel([MASS], Exponential.theta_vars, Architecture(hidden_features=(8,)))
    train(model, xs, ts, epochs=1, progress=False)
    model = model.double()
    fixed = FixedEvents(model, x)
    tau = torch.tensor([[150.0], [200.0]], dtype=torch.float64)
    torch.testing.assert_close(
        fixed.log_prob(tau), model.log_prob(x, tau[:, None]).double(), rtol=1e-13, atol=0
    )
    torch.testing.assert_close(
        fixed.log_prob(tau, slice(10, 20)), fixed.log_prob(tau)[:, 10:20], rtol=0, atol=0
    )


def test_the_extended_form_chunked_equals_the_straightforward_evaluation():
    signal = _model("mog", None, conditional=True, members=2)
    background = _model("nsf", None, conditional=False)
    x, _ = _events(500, seed=5)
    nll = MixtureLikelihood(signal, background, x, check_models=False, check_data=False)
    nll.chunk_pairs = 2 * 37  # 37-event chunks for the 2 thetas
    theta = torch.tensor(
        [[40.0, 470.0, 1.5], [60.0, 430.0, 2.5]], dtype=torch.float64, requires_grad=True
    )
    lp_s = torch.stack([signal.log_prob(x, t[2:]).double() for t in theta])
    lp_b = background.log_prob(x).double()
    n_sig, n_bkg = theta[:, :1], theta[:, 1:2]
    terms = torch.logaddexp(n_sig.log() + lp_s, n_bkg.log() + lp_b)
    ref = n_sig[:, 0] + n_bkg[:, 0] - terms.sum(1)
    (g_ref,) = torch.autograd.grad(ref.sum(), theta)
    fast = nll(theta)
    # float64 sums of 500 terms: ~1e-14 relative apart; the gradient's per-event terms
    # are O(1) (1 / n and d log p / d t), so 1e-12 of their number bounds the rounding
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)
    (g_fast,) = torch.autograd.grad(fast.sum(), theta)
    torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=1e-12 * len(x))
    values, grads = nll.value_and_grad(theta.detach(), torch.tensor([False, True, True]))
    torch.testing.assert_close(values, ref.detach(), rtol=1e-12, atol=0)
    assert (grads[:, 0] == 0).all()
    torch.testing.assert_close(grads[:, 1:], g_ref[:, 1:], rtol=0, atol=1e-12 * len(x))


def test_no_weight_gradient_accumulates_during_a_fit():
    xs, ts = training_set(BreitWigner(), 3000, seed=6)
    signal = DensityModel([MASS], BreitWigner.theta_vars, Architecture(hidden_features=(8,)))
    train(signal, xs, ts, epochs=1, progress=False)
    signal = signal.double()  # not for_fit: its weights still require grad
    signal.zero_grad(set_to_none=True)  # what training left
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([180.0]), 200, 1800, seed=7)
    nll = MixtureLikelihood(signal, Exponential(), x, 200, 1800, check_models=False)
    space = ParameterSpace(nll.theta_vars, [450.0, 40.0, 180.0])
    gradient_scan(nll, space)
    minuit_scan(nll, space)
    assert all(p.requires_grad and p.grad is None for p in signal.parameters())


def test_for_fit_is_a_float64_copy_that_leaves_the_model_as_it_was():
    model = DensityModel([MASS], BreitWigner.theta_vars, Architecture(hidden_features=(8,)))
    fit = model.for_fit()
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float64 and not p.requires_grad for p in fit.parameters())
    x, theta = torch.tensor([[300.0], [520.0]]), torch.tensor([500.0, 40.0])
    # the float32 model against its float64 copy: float32 rounding of a small network
    torch.testing.assert_close(
        fit.log_prob(x.double(), theta.double()),
        model.log_prob(x, theta).double(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_value_and_grad_of_a_batch_equals_each_theta_alone():
    signal = _model("mog", None, conditional=True)
    background = _model("mog", None, conditional=False)
    x, _ = _events(300, seed=8)
    nll = MixtureLikelihood(signal, background, x, 30, 270, check_models=False, check_data=False)
    theta = torch.tensor([[1.2], [1.9], [2.6]], dtype=torch.float64)
    values, grads = nll.value_and_grad(theta)
    for value, grad, t in zip(values, grads, theta, strict=True):
        t = t.clone().requires_grad_()
        one = nll(t)
        # one theta per chunk, or three: the same float64 terms, summed in other groups
        torch.testing.assert_close(value, one.detach(), rtol=1e-13, atol=0)
        torch.testing.assert_close(grad, torch.autograd.grad(one, t)[0], rtol=1e-12, atol=0)


def test_the_members_one_per_theta_equal_each_members_likelihood():
    signal = _model("mog", None, conditional=True, members=3)
    background = _model("nsf", None, conditional=False, members=3)
    x, _ = _events(300, seed=9)
    nll = MixtureLikelihood(signal, background, x, 30, 270, check_models=False, check_data=False)
    theta = torch.tensor([[1.3], [2.1], [2.7]], dtype=torch.float64)
    for which, density in (("signal", signal), ("background", background)):
        values, grads = nll.by_member(which).value_and_grad(theta)
        for k, member in enumerate(density.members):
            t = theta[k].clone().requires_grad_()
            one = nll.with_density(which, member)(t)
            # the same float64 terms, evaluated in other batches: ~1e-15 relative
            torch.testing.assert_close(values[k], one.detach(), rtol=1e-12, atol=0)
            (grad,) = torch.autograd.grad(one, t)
            torch.testing.assert_close(grads[k], grad, rtol=1e-10, atol=1e-12)


def test_a_second_derivative_through_a_learned_density_is_refused():
    signal = _model("mog", None, conditional=True)
    background = _model("mog", None, conditional=False)
    x, _ = _events(200, seed=10)
    nll = MixtureLikelihood(signal, background, x, 20, 180, check_models=False, check_data=False)
    theta = torch.tensor([1.7], dtype=torch.float64, requires_grad=True)
    with pytest.raises(InputError, match="differentiable once"):
        torch.autograd.functional.hessian(nll, theta.detach())
    # no signal (f_sig = 0) and a cached background: the gradient is 0, not an error
    none = MixtureLikelihood(signal, background, x, 0, 200, check_models=False, check_data=False)
    values, grads = none.value_and_grad(theta.detach()[None])
    assert (grads == 0).all()
    reference = -background.log_prob(x).double().sum()
    torch.testing.assert_close(values[0], reference, rtol=1e-12, atol=0)
