import pytest
import torch

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import lhco

# Ranges from the training data, as `flowscan train` sets them.
MASSES = [Variable(v.name, v.unit) for v in lhco.MASSES]


def test_a_tiny_conditional_flow_follows_the_zprime_mass():
    grid = lhco.training_grid((3000, 4000), (400, 600), (100, 200))
    x, theta = (torch.tensor(a) for a in lhco.training_set(500, grid))
    assert x.shape == (4000, 5) and theta[1500].tolist() == list(grid[3])
    model = DensityModel(lhco.OBSERVABLES, MASSES, Architecture(hidden_features=(16, 16)))
    train(model, x, theta, epochs=20, batch_size=256, lr=1e-2, progress=False)
    assert [v.low for v in model.theta_vars] == [3000.0, 400.0, 100.0]
    medians = []
    for m_zprime in (3000.0, 4000.0):
        samples = model.sample(2_000, torch.tensor([m_zprime, 500.0, 150.0]), seed=1)
        medians.append(samples[:, 0].median().item())
        generated = lhco.features(lhco.generate(2_000, (m_zprime, 500, 150), seed=9))
        assert medians[-1] == pytest.approx(generated["m_jj"].median(), rel=0.05)
    assert medians[1] - medians[0] > 600


def test_a_parameter_with_one_training_value_cannot_be_conditioned_on():
    x = torch.tensor(lhco.features(lhco.generate(200, (3500, 500, 100), seed=0)).to_numpy())
    theta = torch.tensor([[3500.0, 500.0, 100.0]]).expand(200, 3).clone()
    theta[:100, 0] = 4000.0  # m_zprime varies, m_x and m_y do not
    model = DensityModel(lhco.OBSERVABLES, MASSES)
    with pytest.raises(ValueError, match="m_x takes the single value 500 GeV"):
        train(model, x, theta, epochs=1, progress=False)
