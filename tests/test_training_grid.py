r"""Where a model was trained in theta (`grid_points`, `grid_gap`) and the warning a
fit in a gap of the training grid gets."""

import itertools

import numpy as np
import torch

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel, train
from flowscan.flows.training_grid import grid_gap, grid_points
from flowscan.samples import MASS, BreitWigner, Exponential, lhco, pseudo_data, training_set
from flowscan.scanner import MixtureLikelihood

MASSES = lhco.MASSES


def test_the_lhco_grid_covers_its_cells_and_not_its_holes():
    grid = torch.tensor(lhco.training_grid())
    assert torch.equal(grid_points(grid.repeat(3, 1)), torch.unique(grid, dim=0))
    assert grid_gap(grid, [3250.0, 625.0, 75.0], MASSES) is None  # a full cell
    assert grid_gap(grid, [3500.0, 500.0, 100.0], MASSES) is None  # a grid point
    # beside a training point at a corner of the grid's region (this LHCO fit's minimum)
    assert grid_gap(grid, [3493.7, 499.5, 100.84], MASSES) is None
    # at m_x = 250 GeV the grid stops at m_y = 100 GeV, at 500 GeV at 300 GeV: the edge of
    # its region runs from (250, 100) to (500, 300), m_y = 140 at m_x = 300
    assert grid_gap(grid, [3250.0, 300.0, 135.0], MASSES) is None
    gap = grid_gap(grid, [3250.0, 300.0, 145.0], MASSES)
    assert "lies outside the region the training grid spans" in gap
    # lhco_interpolation's held-out value: without m_x = 750 the grid has a hole there
    held_out = grid[grid[:, 1] != 750.0]
    gap = grid_gap(held_out, [3500.0, 760.0, 100.0], MASSES)
    assert gap.startswith("m_x = 760 GeV lies between the training values 500 and 1000 GeV")
    assert grid_gap(held_out, [3500.0, 900.0, 100.0], MASSES) is not None


def test_every_point_of_a_product_grid_is_covered_and_nothing_beyond_it():
    values = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0])]
    grid = torch.tensor(list(itertools.product(*values)))
    names = [Variable("a"), Variable("b")]
    rng = np.random.default_rng(1)
    for t in rng.uniform([1, 10], [3, 20], size=(20, 2)):
        assert grid_gap(grid, t, names) is None
    assert "outside the training values [1, 3]" in grid_gap(grid, [3.5, 15.0], names)


def test_models_record_their_training_grid_and_a_fit_in_a_hole_is_warned(tmp_path):
    # a grid of m_pole without 500 GeV, two values of gamma
    t = torch.empty(4000, 2, dtype=torch.float64)
    t[:, 0] = torch.tensor([300.0, 400.0, 600.0, 700.0])[torch.arange(len(t)) % 4]
    t[:, 1] = torch.tensor([30.0, 50.0])[torch.arange(len(t)) // 4 % 2]
    x = BreitWigner().sample(len(t), t, seed=3)
    model = DensityModel([MASS], BreitWigner.theta_vars, Architecture(hidden_features=(8,)))
    train(model, x, t, epochs=1, progress=False)
    model.save(tmp_path / "m.pt")
    loaded = DensityModel.load(tmp_path / "m.pt")
    assert torch.equal(loaded.training_points, torch.unique(t.double(), dim=0))
    data = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([180.0]), 100, 1000, seed=4)
    nll = MixtureLikelihood(loaded, Exponential(), data, 100, 1000)
    (warning,) = nll.grid_gaps([500.0, 40.0, 180.0])
    assert warning.startswith("the signal model: m_pole = 500 GeV lies between the training")
    assert nll.grid_gaps([350.0, 40.0, 180.0]) == []
    continuous = DensityModel([MASS], Exponential.theta_vars, Architecture(hidden_features=(8,)))
    xb, tb = training_set(Exponential(), 3000, seed=5)
    train(continuous, xb, tb, epochs=1, progress=False)
    assert continuous.training_points is None  # 2400 distinct tau: continuous
