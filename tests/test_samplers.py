import pytest
import torch

from flowscan.cli import main
from flowscan.flows import DensityModel
from flowscan.samples import Exponential, lhco, samplers, training_events, training_set


def test_the_registry_draws_what_the_samplers_draw_and_matches_models():
    toy = samplers("breit-wigner")
    x, theta = training_events(toy.get("background"), 500, seed=4)
    x_ref, theta_ref = training_set(Exponential(), 500, seed=4)
    assert torch.equal(x, x_ref) and torch.equal(theta, theta_ref)
    model = DensityModel(Exponential.observables, Exponential.theta_vars)
    assert toy.like(model) is toy.background
    qcd = samplers("lhco").get("background")
    x, theta = training_events(qcd, 300, seed=1)
    names = [v.name for v in lhco.OBSERVABLES]
    reference = lhco.features(lhco.generate(300, seed=1))[names].to_numpy()
    assert theta is None and torch.equal(x, torch.tensor(reference))
    with pytest.raises(ValueError, match="this model has"):
        samplers("lhco").like(model)
    with pytest.raises(ValueError, match=r"the LHCO qcd needs theta = \[\]"):
        qcd.sample(10, torch.tensor([3500.0, 500.0, 100.0]))
    with pytest.raises(ValueError, match="unknown sampler 'pythia'"):
        samplers("pythia")


def test_old_option_names_are_aliases_of_sampler(tmp_path):
    tiny = ["--events", "400", "--epochs", "1", "--hidden", "8", "--no-progress"]
    assert main(["train", "--generate", "lhco-qcd", *tiny, "--out", str(tmp_path / "a")]) == 0
    new = ["train", "--sampler", "lhco", "--role", "background", *tiny]
    assert main([*new, "--out", str(tmp_path / "b")]) == 0
    a, b = (DensityModel.load(tmp_path / k / "model.pt") for k in "ab")
    assert a.role == b.role == "background"
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    toy = ["train", "--sampler", "breit-wigner", "--role", "background", *tiny]
    assert main([*toy, "--out", str(tmp_path / "c")]) == 0
    model = DensityModel.load(tmp_path / "c" / "model.pt")
    assert [v.name for v in model.theta_vars] == ["tau"]
    _, theta = training_set(Exponential(), 400, seed=0)  # what --seed 0 drew
    # the trained range is the drawn one, kept as float32 (the model's buffer dtype)
    expected = [theta.min().float().item(), theta.max().float().item()]
    assert [model.theta_vars[0].low, model.theta_vars[0].high] == expected
