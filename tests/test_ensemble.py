r"""Ensembles of density models (`DensityEnsemble`, `train_ensemble`, `load_model`) and
the model error of a fit (`model_errors`)."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import integrate
from test_fixed_events import _events, _model

from flowscan.exceptions import InputError, ModelFileError
from flowscan.flows import (
    Architecture,
    DensityEnsemble,
    DensityModel,
    load_model,
    train_ensemble,
)
from flowscan.parallel import dask_client
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data, training_set
from flowscan.scanner import (
    MixtureLikelihood,
    ParameterSpace,
    ScanResult,
    minuit_scan,
    model_errors,
)

SMALL = Architecture(hidden_features=(8,), components=4)


def _trained(members: int, seed: int = 0, client=None) -> DensityEnsemble:
    x, t = training_set(BreitWigner(), 2000, seed=1)
    return train_ensemble(
        [MASS], BreitWigner.theta_vars, x, t, members=members, architecture=SMALL,
        role="signal", seed=seed, epochs=2, batch_size=256, client=client, progress=False,
    )  # fmt: skip


def test_an_ensemble_is_the_log_mean_density_of_its_members_and_integrates_to_one():
    ensemble = _trained(3).for_fit()
    theta = torch.tensor([480.0, 35.0], dtype=torch.float64)
    x = torch.linspace(101.0, 999.0, 50, dtype=torch.float64)[:, None]
    members = torch.stack([m.log_prob(x, theta) for m in ensemble.members])
    # float64 throughout: logsumexp of 3 terms against the same sum written out
    expected = torch.log(members.exp().mean(0))
    torch.testing.assert_close(ensemble.log_prob(x, theta), expected, rtol=1e-13, atol=0)

    def density(m: float) -> float:
        return math.exp(ensemble.log_prob(torch.tensor([[m]], dtype=torch.float64), theta))

    total, error = integrate.quad(density, MASS.low, MASS.high, points=[480.0], limit=200)
    # adaptive quadrature of a smooth float64 density: its own error estimate ~1e-9
    assert total == pytest.approx(1.0, abs=1e-6) and error < 1e-6


def test_an_ensemble_of_one_is_its_member():
    model = _trained(1).members[0]
    x = torch.tensor([[150.0], [470.0], [900.0]])
    theta = torch.tensor([500.0, 40.0])
    single = DensityEnsemble([model])
    # logsumexp of one term minus log 1: the same float32 number
    torch.testing.assert_close(single.log_prob(x, theta), model.log_prob(x, theta), rtol=0, atol=0)


def test_bootstrap_members_are_seeded_distinct_and_reproducible_on_any_number_of_workers():
    a, b, c = _trained(2, seed=4), _trained(2, seed=4), _trained(2, seed=5)
    with dask_client(2) as client:
        d = _trained(2, seed=4, client=client)
    for k in range(2):
        for name, value in a.members[k].state_dict().items():
            assert torch.equal(value, b.members[k].state_dict()[name]), name
            assert torch.equal(value, d.members[k].state_dict()[name]), name
    weights = [m.state_dict()["flow.base.hyper.0.weight"] for m in (*a.members, *c.members)]
    assert not torch.equal(weights[0], weights[1])  # members differ from each other
    assert not torch.equal(weights[0], weights[2])  # and with the seed
    assert a.members[0].history != a.members[1].history  # bootstrap replicas differ


def test_one_loader_reads_models_and_ensembles(tmp_path):
    ensemble = _trained(2)
    ensemble.save(tmp_path / "ensemble.pt")
    ensemble.members[0].save(tmp_path / "model.pt")
    loaded = load_model(tmp_path / "ensemble.pt")
    single = load_model(tmp_path / "model.pt")
    assert isinstance(loaded, DensityEnsemble) and isinstance(single, DensityModel)
    assert loaded.training == ensemble.training and loaded.role == "signal"
    x, theta = torch.tensor([[300.0], [520.0]]), torch.tensor([500.0, 40.0])
    torch.testing.assert_close(
        loaded.log_prob(x, theta), ensemble.log_prob(x, theta), rtol=0, atol=0
    )
    with pytest.raises(ModelFileError, match="ensemble of 2 models"):
        DensityModel.load(tmp_path / "ensemble.pt")
    (tmp_path / "broken.pt").write_bytes((tmp_path / "ensemble.pt").read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(tmp_path / "broken.pt")


def test_members_must_be_one_kind_of_model():
    x = DensityModel([MASS], BreitWigner.theta_vars)
    with pytest.raises(InputError, match="members may differ only in their training"):
        DensityEnsemble([x, DensityModel([MASS], Exponential.theta_vars)])
    with pytest.raises(InputError, match="at least one member"):
        DensityEnsemble([])


def test_the_fit_path_of_an_ensemble_equals_its_log_prob():
    members = [_model("mog", None, conditional=True) for _ in range(2)]
    with torch.no_grad():
        for p in members[1].parameters():
            p.mul_(1.1)  # a second, different member
    ensemble = DensityEnsemble(members)
    background = _model("mog", None, conditional=False)
    x, _ = _events(300, seed=3)
    nll = MixtureLikelihood(ensemble, background, x, 30, 270, check_models=False, check_data=False)
    theta = torch.tensor([[1.4], [2.5]], dtype=torch.float64)
    f = torch.tensor(0.1, dtype=torch.float64)
    for t, value in zip(theta, nll(theta), strict=True):
        lp = torch.logaddexp(
            ensemble.log_prob(x, t) + f.log(), background.log_prob(x) + (-f).log1p()
        )
        # float64 sums of 300 terms in two orders
        torch.testing.assert_close(value, -lp.sum(), rtol=1e-12, atol=0)


class _Shifted(BreitWigner):
    r"""The Breit-Wigner density with its pole moved by `shift` GeV: p(x | m - shift)."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def log_prob(self, x, theta):
        return super().log_prob(x, theta - torch.tensor([self.shift, 0.0], dtype=theta.dtype))


class _Members:
    r"""An ensemble of exact densities: what `model_errors` needs (`members`) and the
    log of their mean density."""

    observables, theta_vars = BreitWigner.observables, BreitWigner.theta_vars

    def __init__(self, members):
        self.members = members

    def log_prob(self, x, theta):
        lp = torch.stack([m.log_prob(x, theta) for m in self.members])
        return lp.logsumexp(0) - math.log(len(self.members))


def test_the_model_error_is_the_spread_of_the_members_minima():
    shifts = np.array([-1.5, 0.4, 2.0, -0.3])  # GeV, about the statistical error
    ensemble = _Members([_Shifted(s) for s in shifts])
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([180.0]), 2000, 8000, seed=9)
    nll = MixtureLikelihood(ensemble, Exponential(), x, 2000, 8000)
    space = ParameterSpace(nll.theta_vars, [480.0, 40.0, 180.0])
    result = model_errors(nll, minuit_scan(nll, space), space)
    # Member k is the exact density at m_pole - shift_k: its minimum is the exact fit's
    # m_pole + shift_k, and its gamma and tau are the exact fit's.
    exact = minuit_scan(MixtureLikelihood(BreitWigner(), Exponential(), x, 2000, 8000), space)
    minima, sigma = result.theta_members["signal"], exact.errors
    # one common minimum, shifted: Newton steps stop below 1e-4 sigma
    common = minima[:, 0] - shifts
    np.testing.assert_allclose(common, common.mean(), rtol=0, atol=2e-4 * sigma[0])
    np.testing.assert_allclose(minima[:, 1:] - minima[0, 1:], 0, atol=2e-4 * sigma[1:].min())
    # ... the exact fit's, to MIGRAD's precision (EDM < 1e-4: sqrt(2 EDM) = 0.014 sigma)
    assert common.mean() == pytest.approx(exact.theta[0], abs=0.02 * sigma[0])
    assert (np.abs(minima[0, 1:] - exact.theta[1:]) < 0.02 * sigma[1:]).all()
    assert result.errors_model[0] == pytest.approx(shifts.std(ddof=1), abs=2e-4 * sigma[0])
    assert result.errors_model[1:] == pytest.approx([0, 0], abs=2e-4 * sigma[1:].max())
    assert set(result.errors_model_by) == {"signal"}
    assert "(model)" in result.table(nll.theta_vars)


def test_a_parameter_at_a_bound_has_no_model_error():
    shifts = np.array([-1.5, 0.4, 2.0])
    ensemble = _Members([_Shifted(s) for s in shifts])
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([180.0]), 2000, 8000, seed=9)
    nll = MixtureLikelihood(ensemble, Exponential(), x, 2000, 8000)
    # the box ends at m_pole = 470 GeV, 10 GeV (~6 sigma) below the minimum
    bounded = [replace(nll.theta_vars[0], high=470.0), *nll.theta_vars[1:]]
    space = ParameterSpace(bounded, [460.0, 40.0, 180.0])
    result = model_errors(nll, minuit_scan(nll, space), space)
    assert result.at_bound == ["m_pole"]
    # members push m_pole beyond the bound and are clipped onto it: no spread to read
    assert np.isnan(result.errors_model[0]) and np.isfinite(result.errors_model[1:]).all()
    assert "(no model error: at a bound)" in result.table(nll.theta_vars)


def _result(errors, model) -> ScanResult:
    return ScanResult(
        "minuit", ["a", "b"], np.array([1.0, 2.0]), 0.0, 1, 1, 0.1, True, "ok",
        path=np.zeros((1, 2)), trace=np.zeros((0, 3)),
        errors=np.array(errors), errors_model=np.array(model),
    )  # fmt: skip


def test_the_warning_fires_when_and_only_when_the_model_error_exceeds_the_statistical():
    from flowscan import Variable

    theta_vars = [Variable("a", "GeV"), Variable("b", "GeV")]
    quiet = _result([0.5, 0.5], [0.49, 0.5]).table(theta_vars)
    loud = _result([0.5, 0.5], [0.2, 0.51]).table(theta_vars)
    assert "WARNING" not in quiet
    assert "model error exceeds the statistical error for b:" in loud
    assert _result([0.5, 0.5], [0.2, 0.51]).model_limited == ["b"]
