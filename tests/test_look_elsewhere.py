import math

import numpy as np
import pytest
import torch
from conftest import Flat
from scipy import stats

from flowscan.exceptions import InputError
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data
from flowscan.scanner import MixtureLikelihood, ParameterSpace
from flowscan.stats import (
    GlobalSignificance,
    checked_grid,
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
        assert gv.expected_euler(u)[0] == pytest.approx(mean, rel=1e-12)
        assert gv.p_value(u)[0] == min(mean, 1.0)  # a p-value
    counts = [euler_characteristic(f > 0.5) for f in fields]
    assert gv.mean[0] == pytest.approx(np.mean(counts), rel=1e-12)


def test_the_global_p_value_of_a_one_point_search_is_the_local_one():
    r"""A counting experiment (flat signal on a flat background of b = 100 events,
    fixed): with no signal parameter to float, Gross-Vitells' p-value is the local
    one, and the toys' is too: q0 follows 1/2 chi^2_1 (one-sided), so the toys'
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
    # the q0 tested: the one given (9) or, where higher, the data's grid maximum
    assert result.q0 == pytest.approx(field.max(), abs=2e-3)
    assert 2 < result.gross_vitells.p_value(9.0)[0] / stats.norm.sf(3.0) < 60


def _pole_data(events: int = 400):
    x = pseudo_data(torch.tensor([500.0, 30.0]), torch.tensor([170.0]), 30, events, seed=5)
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x)
    return nll, ParameterSpace(nll.theta_vars, [10.0, float(events), 450.0, 30.0, 170.0])


def test_fields_over_two_parameters_follow_the_grid_order():
    r"""The q0 field over (m_pole, gamma) is the one over (gamma, m_pole) transposed
    (each point a fit to 1e-4 in NLL, warm-started from different neighbours: 2e-3 in
    q0), and `global_significance`'s fields, the data's and the toys', have the grid's
    axes in its order; an observed q0 below the data's grid maximum is raised to it."""
    nll, space = _pole_data()
    masses, widths = np.linspace(350.0, 650.0, 5), np.array([20.0, 40.0, 60.0])
    by_mass = q0_field(nll, space, {"m_pole": masses, "gamma": widths})
    by_width = q0_field(nll, space, {"gamma": widths, "m_pole": masses})
    assert by_mass.shape == (5, 3) and by_mass.max() > 1
    np.testing.assert_allclose(by_width.T, by_mass, atol=2e-3)
    grid = {"gamma": widths, "m_pole": masses}
    result = global_significance(nll, space, 0.0, toys=2, grid=grid, seed=2, progress=False)
    np.testing.assert_allclose(result.data_field, by_width, atol=2e-3)
    assert result.q0 == result.data_field.max()
    assert [f.shape for f in result.fields] == [(3, 5), (3, 5)]


def test_too_few_fields_leave_gross_vitells_out_with_a_warning(monkeypatch):
    r"""Where the toys' fields fail (here made to), their searches' q0 stand and so
    does the toys' p-value; the Gross-Vitells estimate is NaN, with a warning."""
    from flowscan.exceptions import FitError
    from flowscan.stats import look_elsewhere

    nll, space = _pole_data(200)
    space = ParameterSpace(nll.theta_vars, space.start, ["gamma"])
    field = look_elsewhere.q0_field
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the data's field, then the toys'
            raise FitError("made to fail")
        return field(*args, **kwargs)

    monkeypatch.setattr(look_elsewhere, "q0_field", failing)
    grid = {"m_pole": np.linspace(300.0, 700.0, 5)}
    with pytest.warns(UserWarning, match="only 0 pseudo-experiment"):
        result = global_significance(nll, space, 4.0, toys=3, grid=grid, progress=False)
    assert result.gross_vitells is None and math.isnan(result.p_gv)
    assert np.isfinite(result.toys_q0).all() and result.bound  # none reaches the data's
    assert result.table()[1]["p_value"] == "< 0.33" and result.table()[1]["Z"].startswith("> ")


def test_grids_and_thresholds_are_checked_and_bounds_reported():
    with pytest.raises(InputError, match="1 to 3 floating signal parameters, got 4"):
        checked_grid({n: [0.0, 1.0] for n in "abcd"})
    with pytest.raises(InputError, match="needs 2 or more increasing values"):
        checked_grid({"a": [0.0, 1.0], "b": [2.0, 1.0]})
    with pytest.raises(InputError, match="give 2 distinct positive threshold"):
        checked_grid({"a": [0.0, 1.0], "b": [1.0, 2.0]}, [1.0, 1.0])
    # no toy reaches a local q0 of 2000, whose p-value (1e-437) underflows: bounds
    result = GlobalSignificance(
        2000.0, 0.0, math.sqrt(2000.0), np.array([1.0, 3.0]), 0.0, 0.5, stats.norm.isf(0.5),
        None, math.nan, math.nan, math.nan, None, [], 0,
    )  # fmt: skip
    row = result.table()[1]
    assert result.bound and row["p_value"] == "< 0.5" and row["Z"] == "> 0.00"
    assert math.isnan(row["trials_factor"])
