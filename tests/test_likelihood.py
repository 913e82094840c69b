import copy

import numpy as np
import pytest
import torch
from conftest import scipy_densities, scipy_mixture_nll

from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import MixtureLikelihood, ParameterSpace, minuit_scan

LO, HI = MASS.low, MASS.high
THETA = torch.tensor([450.0, 40.0, 180.0], dtype=torch.float64)


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return pseudo_data(THETA[:2], THETA[2:], n_sig=300, n_bkg=3_000, seed=7)


def test_nll_matches_scipy_closed_form(data):
    nll = MixtureLikelihood(BreitWigner(), Exponential(), data, 300, 3_000)
    for theta in [THETA, torch.tensor([520.0, 25.0, 140.0], dtype=torch.float64)]:
        ref = scipy_mixture_nll(data[:, 0].numpy(), theta.numpy(), 300 / 3_300)
        assert nll(theta).item() == pytest.approx(ref, rel=1e-12)


def test_extended_nll_matches_the_closed_form_on_three_events():
    x = torch.tensor([[300.0], [455.0], [800.0]], dtype=torch.float64)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, negative_signal=True)
    assert nll.names == ["n_sig", "n_bkg", "m_pole", "gamma", "tau"]
    assert nll.theta_vars[0].low == -nll.theta_vars[0].high
    ps, pb = scipy_densities(x[:, 0].numpy(), THETA.numpy())
    for n_sig, n_bkg in [(2.0, 5.0), (0.0, 3.0), (-0.1, 4.0)]:
        theta = torch.cat([torch.tensor([n_sig, n_bkg], dtype=torch.float64), THETA])
        ref = n_sig + n_bkg - np.log(n_sig * ps + n_bkg * pb).sum()
        assert nll(theta.requires_grad_()).item() == pytest.approx(ref, rel=1e-12)
        (grad,) = torch.autograd.grad(nll(theta), theta)
        dn_sig = 1 - (ps / (n_sig * ps + n_bkg * pb)).sum()
        assert grad[0].item() == pytest.approx(dn_sig, rel=1e-10)
    # At 455 GeV the signal density is 20x the background's: n_sig = -1 makes it negative.
    with pytest.raises(FloatingPointError, match="not positive on 1 event"):
        nll(torch.cat([torch.tensor([-1.0, 4.0], dtype=torch.float64), THETA]))


def test_extended_fit_yields_add_up_to_the_number_of_events(data):
    # With both yields free, the extended MLE has n_sig + n_bkg = N exactly.
    nll = MixtureLikelihood(BreitWigner(), Exponential(), data)
    start = [300.0, 3_000.0, *THETA.tolist()]
    fit = minuit_scan(nll, ParameterSpace(nll.theta_vars, start=start))
    assert fit.theta[0] + fit.theta[1] == pytest.approx(len(data), abs=0.05)
    # Its other parameters agree with the fixed-fraction fit at the fitted fraction.
    f = fit.theta[0] / len(data)
    n = len(data)
    fixed = MixtureLikelihood(BreitWigner(), Exponential(), data, f * n, (1 - f) * n)
    ref = minuit_scan(fixed, ParameterSpace(fixed.theta_vars, start=THETA.numpy()))
    np.testing.assert_allclose(fit.theta[2:], ref.theta, atol=0.02 * ref.errors.min())
    assert np.all(fit.errors[2:] >= ref.errors * 0.999)  # the free yield adds uncertainty


def test_nll_sums_in_float64_with_float32_flows(tiny_signal_flow, tiny_background_flow, data):
    nll = MixtureLikelihood(tiny_signal_flow, tiny_background_flow, data, 300, 3_000)
    value = nll(THETA)
    assert value.dtype == torch.float64
    # Reference: the same float32 per-event densities, mixed and summed in float64 by numpy.
    with torch.no_grad():
        ps = tiny_signal_flow.log_prob(data, THETA[:2]).double().exp().numpy()
        pb = tiny_background_flow.log_prob(data, THETA[2:]).double().exp().numpy()
    f = 300 / 3_300
    # The likelihood evaluates the events with theta batched as (1, 1, D), the reference
    # with (D,): float32 kernels may round each event differently by ~1e-7 relative, which
    # moves the sum of 3.3k terms by ~1e-9 relative; a float32 sum would be off by ~1e-7.
    assert value.item() == pytest.approx(-np.log(f * ps + (1 - f) * pb).sum(), rel=1e-8)


@pytest.mark.parametrize("kind", ["exact", "flow"])
def test_nll_gradient_matches_finite_differences(
    kind, tiny_signal_flow, tiny_background_flow, data
):
    if kind == "exact":
        sig, bkg = BreitWigner(), Exponential()
    else:  # float64 copies, so central differences with small steps are accurate
        sig, bkg = tiny_signal_flow.double(), tiny_background_flow.double()
    try:
        nll = MixtureLikelihood(sig, bkg, data, 300, 3_000)
        theta = THETA.clone().requires_grad_()
        nll(theta).backward()
        for i, h in enumerate([1e-3, 1e-3, 1e-3]):
            step = torch.zeros(3, dtype=torch.float64)
            step[i] = h
            fd = (nll(THETA + step) - nll(THETA - step)).item() / (2 * h)
            assert theta.grad[i].item() == pytest.approx(fd, rel=1e-5, abs=1e-5)
    finally:
        tiny_signal_flow.float()
        tiny_background_flow.float()


def test_batched_nll_equals_single_calls(data):
    nll = MixtureLikelihood(BreitWigner(), Exponential(), data, 300, 3_000)
    thetas = torch.tensor(
        [[450.0, 40.0, 180.0], [400.0, 60.0, 200.0], [600.0, 20.0, 120.0]], dtype=torch.float64
    )
    torch.testing.assert_close(
        nll(thetas), torch.stack([nll(t) for t in thetas]), rtol=1e-13, atol=0
    )
    nll.chunk_pairs = 3 * 100  # chunks of 100 events for the 3 thetas
    torch.testing.assert_close(
        nll(thetas), torch.stack([nll(t) for t in thetas]), rtol=1e-13, atol=0
    )


def test_event_chunks_give_the_same_nll_and_gradient(tiny_signal_flow, tiny_background_flow, data):
    nll = MixtureLikelihood(
        tiny_signal_flow.double(), tiny_background_flow.double(), data, 300, 3_000
    )
    try:
        whole = THETA.clone().requires_grad_()
        nll(whole).backward()
        nll.chunk_pairs = 1_000  # 4 event chunks
        chunked = THETA.clone().requires_grad_()
        value = nll(chunked)
        value.backward()
        assert value.item() == pytest.approx(nll(THETA).item(), rel=1e-13)
        torch.testing.assert_close(chunked.grad, whole.grad, rtol=1e-10, atol=0)
        batch = torch.stack([THETA, THETA + torch.tensor([10.0, 5.0, -10.0], dtype=THETA.dtype)])
        torch.testing.assert_close(
            nll(batch), torch.stack([nll(t) for t in batch]), rtol=1e-13, atol=0
        )
    finally:
        tiny_signal_flow.float()
        tiny_background_flow.float()


def test_cached_densities_give_the_same_nll_and_gradient(
    tiny_signal_flow, tiny_background_flow, data
):
    # float64 copies: the test is about the cache, and float32 models evaluated on chunks
    # of 10 events and on all at once round differently (2e-8 relative seen on one CPU);
    # float64 keeps every batching within ~1e-15 relative.
    signal, background = (
        copy.deepcopy(m).double() for m in (tiny_signal_flow, tiny_background_flow)
    )
    nll = MixtureLikelihood(BreitWigner(), background, data, 300, 3_000)
    sig = THETA[:2].clone().requires_grad_()
    cached = nll.nll_split(sig, THETA[2:])  # theta_bkg needs no gradient: cached
    assert torch.equal(nll._cache["background"][0], THETA[2:]) and "signal" not in nll._cache
    cached.backward()
    full = THETA.clone().requires_grad_()
    nll(full).backward()
    assert cached.item() == pytest.approx(nll(THETA).item(), rel=1e-14)
    torch.testing.assert_close(sig.grad, full.grad[:2], rtol=1e-12, atol=0)
    # Both cached (masses fixed, yields fitted): the same as computing both per chunk.
    flows = MixtureLikelihood(signal, background, data)
    yields = torch.tensor([300.0, 3_000.0], dtype=torch.float64, requires_grad=True)
    value = flows.nll_split(THETA[:2], THETA[2:], yields)
    assert set(flows._cache) == {"signal", "background"}
    value.backward()
    full = torch.cat([yields.detach(), THETA]).requires_grad_()
    other = full.detach().clone()
    other[2] += 1.0  # two signal thetas in one batch: computed per chunk, not cached
    with torch.no_grad():
        assert value.item() == pytest.approx(flows(torch.stack([full, other]))[0].item(), rel=1e-12)
    flows.chunk_pairs = 10  # chunked: nothing cached with a gradient through theta
    flows(full).backward()
    torch.testing.assert_close(yields.grad, full.grad[:2], rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.tensor([[500.0], [float("inf")]]), "NaN or inf"),
        (torch.tensor([[500.0], [1200.0]]), "outside its support"),
        (torch.empty(0, 1), "empty"),
        (torch.ones(5, 2) * 500, r"shape \(N, 1\)"),
    ],
)
def test_bad_data_raises(x, match):
    with pytest.raises(ValueError, match=match):
        MixtureLikelihood(BreitWigner(), Exponential(), x, 10, 100)


def test_bad_theta_and_yields_raise(data):
    nll = MixtureLikelihood(BreitWigner(), Exponential(), data, 300, 3_000)
    with pytest.raises(ValueError, match=r"shape \(P,\) or \(K, P\) with P = 3"):
        nll(torch.tensor([450.0, 40.0]))
    with pytest.raises(ValueError, match="n_bkg > 0"):
        MixtureLikelihood(BreitWigner(), Exponential(), data, 10, 0)


def test_flow_theta_out_of_range_raises(tiny_signal_flow, tiny_background_flow, data):
    nll = MixtureLikelihood(tiny_signal_flow, tiny_background_flow, data, 300, 3_000)
    with pytest.raises(ValueError, match="tau = 400 GeV is outside the trained range"):
        nll(torch.tensor([450.0, 40.0, 400.0]))


def test_models_on_different_devices_are_refused(tiny_signal_flow, tiny_background_flow, data):
    # "meta" stands in for a second device (this machine has no GPU): the data go to the
    # models' device, so the two models must share one
    signal = copy.deepcopy(tiny_signal_flow).to("meta")
    with pytest.raises(ValueError, match="signal model is on meta and the background model on cpu"):
        MixtureLikelihood(signal, tiny_background_flow, data, 300, 3_000)
