import copy

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.flows.logistic import Logistic
from flowscan.flows.preprocessing import BoundedStandardize
from flowscan.samples import MASS, Exponential, training_set


def _integral(model: DensityModel, theta: torch.Tensor | None = None) -> float:
    r"""Integral of the density over the window by Simpson's rule on 400,001 points in
    t = logit((m - low) / width), where dm/dt = width * u * (1 - u): a logit-mapped
    density may be singular (but integrable) at the window edges, smooth in t."""
    t = torch.linspace(-60, 60, 400_001, dtype=torch.float64)
    u = torch.sigmoid(t)
    width = MASS.high - MASS.low
    m = (MASS.low + width * u).clamp(MASS.low, MASS.high)
    with torch.no_grad():
        p = model.log_prob(m[:, None], theta).exp() * width * u * (1 - u)
    return integrate.simpson(p.numpy(), x=t.numpy())


@pytest.mark.parametrize("theta", [(320.0, 25.0), (455.0, 33.0), (680.0, 75.0)])
def test_flow_log_prob_is_normalized_on_the_window(tiny_signal_flow, theta):
    model = copy.deepcopy(tiny_signal_flow).double()  # float64 so quad reaches its tolerance
    assert _integral(model, torch.tensor(theta, dtype=torch.float64)) == pytest.approx(
        1.0, abs=1e-4
    )


@pytest.mark.parametrize("finite_edges", [False, True])
def test_preprocessing_log_jacobian_matches_autograd_and_inverts(finite_edges):
    obs = [
        Variable("a", "", 0.0, 1.0),
        Variable("b", "", 2.0, None),
        Variable("c", "", None, 5.0),
        Variable("d"),
    ]
    pre = BoundedStandardize(obs, finite_edges=finite_edges)
    # with finite edges, points on them (a = 0 and 1, b = 2, c = 5) map and invert too
    edges = [[0.0, 2.0, 5.0, 0.0], [1.0, 2.0, 5.0, 0.0]] if finite_edges else []
    x = torch.tensor([[0.3, 2.5, 4.0, -1.0], [0.9, 10.0, -3.0, 2.0], *edges], dtype=torch.float64)
    pre.adapt(torch.tensor([[0.2, 3.0, 1.0, 0.0], [0.7, 8.0, 4.5, 3.0], [0.5, 2.2, 0.0, -2.0]]))
    pre = pre.double()
    t = pre()
    z, ladj = t.call_and_ladj(x)
    for row in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: t(v[None])[0], x[row])
        assert ladj[row].item() == pytest.approx(
            torch.linalg.slogdet(jac).logabsdet.item(), rel=1e-10
        )
    torch.testing.assert_close(t.inv(z), x)


def test_logistic_base_matches_scipy():
    z = torch.linspace(-30, 30, 61, dtype=torch.float64)
    d = Logistic(torch.tensor(0.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    np.testing.assert_allclose(
        d.log_prob(z).numpy(), stats.logistic(0.5, 2.0).logpdf(z.numpy()), rtol=1e-12
    )
    torch.manual_seed(0)
    assert stats.kstest(d.sample((20_000,)).numpy(), stats.logistic(0.5, 2.0).cdf).pvalue > 0.01


def test_save_load_round_trip_gives_identical_log_prob(tiny_signal_flow, tmp_path):
    tiny_signal_flow.save(tmp_path / "m.pt")
    loaded = DensityModel.load(tmp_path / "m.pt")
    x = torch.linspace(101, 999, 50)[:, None]
    theta = torch.tensor([450.0, 40.0])
    assert torch.equal(loaded.log_prob(x, theta), tiny_signal_flow.log_prob(x, theta))
    assert loaded.theta_vars == tiny_signal_flow.theta_vars
    assert loaded.history == tiny_signal_flow.history


def test_corrupt_or_foreign_model_file_is_a_clear_error(tiny_signal_flow, tmp_path):
    tiny_signal_flow.save(tmp_path / "m.pt")
    blob = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable flowscan model file"):
        DensityModel.load(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a flowscan model file"):
        DensityModel.load(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        DensityModel.load(tmp_path / "missing.pt")


def test_theta_outside_trained_range_is_an_error_unless_allowed(tiny_signal_flow):
    x = torch.tensor([[500.0]])
    with pytest.raises(ValueError, match="m_pole = 750 GeV is outside the trained range"):
        tiny_signal_flow.log_prob(x, torch.tensor([750.0, 40.0]))
    tiny_signal_flow.allow_extrapolation = True
    try:
        assert torch.isfinite(tiny_signal_flow.log_prob(x, torch.tensor([750.0, 40.0]))).all()
    finally:
        tiny_signal_flow.allow_extrapolation = False


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.tensor([[500.0], [float("nan")]]), "NaN or inf"),
        (torch.tensor([[50.0]]), "outside its support"),
        (torch.tensor([500.0]), r"shape \(N, 1\)"),
        (torch.empty(0, 1), "empty"),
    ],
)
def test_bad_events_raise(tiny_signal_flow, x, match):
    with pytest.raises(ValueError, match=match):
        tiny_signal_flow.log_prob(x, torch.tensor([450.0, 40.0]))


def test_wrong_theta_shape_raises(tiny_signal_flow):
    with pytest.raises(ValueError, match=r"shape \(\*, 2\)"):
        tiny_signal_flow.log_prob(torch.tensor([[500.0]]), torch.tensor([450.0]))


def test_log_prob_broadcasts_theta_batches(tiny_signal_flow):
    x = torch.linspace(150, 900, 7)[:, None]
    thetas = torch.tensor([[400.0, 30.0], [600.0, 60.0]])
    batched = tiny_signal_flow.log_prob(x, thetas[:, None, :])
    assert batched.shape == (2, 7)
    for k in range(2):
        torch.testing.assert_close(batched[k], tiny_signal_flow.log_prob(x, thetas[k]))


def test_one_theta_per_event_equals_each_event_alone():
    # two observables in windows: the truncated mixture's first observable has masses
    # that depend on theta alone; with one theta per event (training) they are per event
    obs = [Variable("a", "GeV", 0.0, 10.0), Variable("b", "GeV", 0.0, 10.0)]
    model = DensityModel(obs, [Variable("t", "", 0.0, 1.0)], Architecture(hidden_features=(8,)))
    g = torch.Generator().manual_seed(3)
    x, t = 10 * torch.rand(400, 2, generator=g), torch.rand(400, 1, generator=g)
    train(model, x, t, epochs=2, progress=False)
    model = model.for_fit()
    for p in model.flow.base.hyper.parameters():
        p.mul_(4)  # components near the edges: masses well below 1, varying with t
    x, t = x[:6].double(), t[:6].double()
    each = torch.stack([model.log_prob(x[i : i + 1], t[i])[0] for i in range(6)])
    # the same float64 operations on one event or six: equal to rounding (~1e-15)
    torch.testing.assert_close(model.log_prob(x, t), each, rtol=1e-12, atol=0)


def test_sample_in_window_moves_with_theta_and_is_seeded(tiny_signal_flow):
    a = tiny_signal_flow.sample(2_000, torch.tensor([350.0, 30.0]), seed=1)
    b = tiny_signal_flow.sample(2_000, torch.tensor([650.0, 30.0]), seed=1)
    assert a.shape == (2_000, 1) and ((a >= MASS.low) & (a <= MASS.high)).all()
    assert b.median() - a.median() > 100  # the learned peak follows m_pole
    assert torch.equal(a, tiny_signal_flow.sample(2_000, torch.tensor([350.0, 30.0]), seed=1))


@pytest.mark.parametrize("flow", ["nsf", "maf"])
def test_unconditional_model_through_the_same_class(flow, tmp_path):
    x = Exponential().sample(4_000, torch.tensor([150.0]), seed=2)
    model = DensityModel(
        [MASS], (), Architecture(flow=flow, transforms=2, hidden_features=(16, 16))
    )
    train(model, x, epochs=15, batch_size=64, lr=1e-2, progress=False)
    with pytest.raises(ValueError, match="unconditional"):
        model.log_prob(x, torch.tensor([1.0]))
    assert _integral(copy.deepcopy(model).double()) == pytest.approx(1.0, abs=1e-4)
    # Mean log-likelihood on the training events is close to the exact one.
    exact = Exponential().log_prob(x, torch.tensor([150.0])).mean()
    assert model.log_prob(x).double().mean().item() == pytest.approx(exact.item(), abs=0.03)
    model.save(tmp_path / "u.pt")
    assert DensityModel.load(tmp_path / "u.pt").sample(10).shape == (10, 1)


def test_training_is_reproducible():
    x, theta = training_set(Exponential(), 2_000, seed=0)
    runs = []
    for _ in range(2):
        model = DensityModel(
            [MASS], Exponential.theta_vars, Architecture(hidden_features=(8,)), seed=3
        )
        runs.append(train(model, x, theta, epochs=2, batch_size=256, seed=5, progress=False))
    assert runs[0] == runs[1]


def test_training_rejects_mismatched_theta():
    x, theta = training_set(Exponential(), 100, seed=0)
    model = DensityModel([MASS], Exponential.theta_vars, Architecture(hidden_features=(8,)))
    with pytest.raises(ValueError, match=r"theta must have shape \(100, 1\)"):
        train(model, x, theta[:50], epochs=1, progress=False)


def test_model_file_keeps_role_and_training_quantiles_and_version_2_still_loads(tmp_path):
    x, theta = training_set(Exponential(), 3_000, seed=5)
    model = DensityModel(
        [MASS], Exponential.theta_vars, Architecture(hidden_features=(8,)), role="background"
    )
    train(model, x, theta, epochs=1, progress=False)
    model.save(tmp_path / "v3.pt")
    loaded = DensityModel.load(tmp_path / "v3.pt")
    assert loaded.role == "background"
    levels = [0.0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0]
    np.testing.assert_allclose(loaded.support[0].numpy(), np.quantile(x.numpy(), levels), rtol=1e-6)
    # a version-2 file (no role, no quantiles; logit preprocessing, flowscan <= 0.1)
    old = DensityModel(
        [MASS], Exponential.theta_vars, Architecture(hidden_features=(8,), preprocessing="logit")
    )
    blob = {
        "format": "flowscan.DensityModel",
        "version": 2,
        "config": {  # the architecture's fields flat, as before version 4
            **{k: v for k, v in old.config.items() if k not in ("role", "architecture")},
            **old.architecture.to_dict(),
        },
        "state_dict": {k: v for k, v in old.state_dict().items() if k != "support"},
        "history": [],
    }
    torch.save(blob, tmp_path / "v2.pt")
    v2 = DensityModel.load(tmp_path / "v2.pt")
    assert v2.role is None and torch.isnan(v2.support).all()
    m = torch.tensor([[150.0], [700.0]])
    assert torch.equal(
        v2.log_prob(m, torch.tensor([170.0])), old.log_prob(m, torch.tensor([170.0]))
    )
