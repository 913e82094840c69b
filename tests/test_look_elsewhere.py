import math

import numpy as np
import pytest
import torch
from conftest import Flat
from scipy import stats

from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import (
    discovery,
    euler_characteristic,
    global_significance,
    gross_vitells,
    q0_field,
    upcrossings,
)


def test_upcrossings_and_intervals_of_a_curve():
    q = np.array([3.0, 0.0, 2.0, 2.0, 0.5, 4.0, 0.2, 1.0])
    assert upcrossings(q, 1.0) == 2  # 0 -> 2 and 0.5 -> 4; 0.2 -> 1.0 is not above
    # the excursion set {q > 1}: [0], [2, 3], [5]: three intervals, one at the left end
    assert euler_characteristic(q > 1.0) == 3 == upcrossings(q, 1.0) + (q[0] > 1.0)


def _disc(shape, centre, radius):
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


@pytest.mark.parametrize(
    ("excursion", "chi"),
    [
        (_disc((40, 40), (10, 10), 5) | _disc((40, 40), (28, 28), 6), 2),  # two blobs
        (_disc((40, 40), (20, 20), 12) & ~_disc((40, 40), (20, 20), 5), 0),  # an annulus
        (_disc((40, 40), (20, 20), 15) & ~_disc((40, 40), (12, 20), 3)
         & ~_disc((40, 40), (28, 20), 3), -1),  # a blob with two holes
        (_disc((20, 20, 20), (10, 10, 10), 6), 1),  # a ball
        (_disc((20, 20, 20), (10, 10, 10), 8) & ~_disc((20, 20, 20), (10, 10, 10), 4), 2),
        (np.zeros((5, 5, 5), dtype=bool), 0),
    ],
)  # fmt: skip
def test_euler_characteristic_of_known_shapes(excursion, chi):
    # the topology's: 1 per blob, -1 per hole, +1 per cavity (a shell: sphere, 2)
    assert euler_characteristic(excursion) == chi


def test_gross_vitells_reproduces_the_mean_euler_characteristic_at_its_thresholds():
    # E[phi(u)] = Phi(-sqrt u) + sum_d N_d rho_d(u) is fitted to the means at the D
    # thresholds: there it returns them (float64 linear algebra, 1e-12)
    rng = np.random.default_rng(3)
    x, y = np.meshgrid(np.linspace(0, 6, 30), np.linspace(0, 6, 30), indexing="ij")
    fields = []
    for _ in range(30):
        a, b, c = rng.normal(size=3)
        z = a * np.sin(x + c) + b * np.cos(1.3 * y - c)
        fields.append(np.where(z > 0, z**2, 0.0))
    gv = gross_vitells(fields, [0.5, 1.5])
    for u, mean in zip(gv.thresholds, gv.mean, strict=True):
        assert gv.p_value(u)[0] == pytest.approx(mean, rel=1e-12)
    counts = [euler_characteristic(f > 0.5) for f in fields]
    assert gv.mean[0] == pytest.approx(np.mean(counts), rel=1e-12)


def _counting(n: int, b: float):
    x = torch.linspace(MASS.low + 1, MASS.high - 1, n, dtype=torch.float64)[:, None]
    nll = MixtureLikelihood(Flat(), Flat(), x, max_yield=10 * (n + b) + 50)
    return nll, ParameterSpace(nll.theta_vars, start=[1.0, b])


def test_the_global_p_value_of_a_one_point_search_is_the_local_one():
    r"""A counting experiment (flat signal on flat background, n_bkg floating: nothing
    tells them apart, so the fit is the background's and q0 = 0): with no signal
    parameter to float, the toys' p-value is the local one, and so is Gross-Vitells'.
    With b fixed, q0 follows 1/2 chi^2_1 (one-sided) for n = 100 events: the toys'
    fraction above q0 = 1 is Phi(-1), within 3 binomial errors of 300 toys."""
    x = torch.linspace(MASS.low + 1, MASS.high - 1, 110, dtype=torch.float64)[:, None]
    nll = MixtureLikelihood(Flat(), Flat(), x, max_yield=2_000)
    space = ParameterSpace(nll.theta_vars, start=[1.0, 100.0], fixed=["n_bkg"])
    q0 = discovery(nll, space).q0
    assert q0 == pytest.approx(2 * (110 * math.log(1.1) - 10), rel=1e-4)  # closed form
    result = global_significance(nll, space, 1.0, toys=300, seed=4, progress=False)
    assert result.p_gv == result.local_p == pytest.approx(stats.norm.sf(1.0), rel=1e-12)
    assert abs(result.p_toys - result.local_p) < 3 * math.sqrt(result.local_p * 0.84 / 300)
    again = global_significance(nll, space, 1.0, toys=20, seed=4, progress=False)
    np.testing.assert_array_equal(again.toys_q0, result.toys_q0[:20])  # toy i: its own seed


def test_a_scan_over_the_pole_has_a_trials_factor():
    r"""The toy's exact densities, m_pole floating over [300, 700] GeV (gamma fixed at
    30): the q0 field of the data peaks where their fit does, the search finds every
    toy's maximum on the grid, and the global p-value of a local 3 sigma exceeds the
    local one by the scan's trials factor (several, for about 400 / 30 widths)."""
    x = pseudo_data(torch.tensor([500.0, 30.0]), torch.tensor([170.0]), 40, 1_000, seed=2)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x)
    space = ParameterSpace(nll.theta_vars, [10.0, 1_000.0, 450.0, 30.0, 170.0], ["gamma"])
    grid = {"m_pole": np.linspace(300.0, 700.0, 21)}
    field = q0_field(nll, space, grid | {"gamma": [30.0]})[:, 0]
    found = discovery(nll, space)
    best = found.fit.values["m_pole"]
    assert abs(best - grid["m_pole"][field.argmax()]) <= 10  # half the grid's step
    assert field.max() <= found.q0 + 2e-3  # no grid point above the search's maximum
    at_best = q0_field(nll, space, {"m_pole": [best], "gamma": [30.0]})[0, 0]
    assert at_best == pytest.approx(found.q0, abs=2e-3)  # both fits to 1e-4 in NLL
    result = global_significance(nll, space, 9.0, toys=4, grid=grid, seed=1, progress=False)
    assert result.missed == 0 and len(result.fields) == 4
    assert result.fields[0].shape == (21,)
    assert 2 < result.p_gv / result.local_p < 60
