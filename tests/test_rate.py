import json

import numpy as np
import pandas as pd
import pytest

from flowscan.exceptions import InputError
from flowscan.stats import CrossSection, Efficiency, SignalRate


def _falling(m: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    r"""A made-up cross section (fb) falling exponentially in each mass."""
    out = 500.0 * np.exp(-m / 400.0)
    return out if y is None else out * np.exp(-y / 100.0)


def test_a_cross_section_table_interpolates_an_exponential_exactly(tmp_path):
    # linear in log sigma between neighbours: exact for exp(-m / 400) (1e-12: float64
    # rounding of exp and log)
    m = np.arange(1000.0, 4001.0, 500.0)
    path = tmp_path / "xs.csv"
    pd.DataFrame({"m_zprime": m, "sigma_pb": _falling(m) / 1e3}).to_csv(path, index=False)
    xs = CrossSection.read(path, ["m_zprime"])
    between = np.array([[1250.0], [2999.0], [4000.0]])
    np.testing.assert_allclose(xs(between), _falling(between[:, 0]), rtol=1e-12)
    with pytest.raises(InputError, match="m_zprime = 4100 lies outside the cross-section table"):
        xs([4100.0])


def test_a_cross_section_grid_in_two_parameters_is_exact_too():
    x, y = np.meshgrid(np.linspace(1000, 3000, 5), np.linspace(100, 500, 4))
    points = np.column_stack([x.ravel(), y.ravel()])
    xs = CrossSection(["m_x", "m_y"], points, _falling(points[:, 0], points[:, 1]))
    inside = np.random.default_rng(0).uniform([1000, 100], [3000, 500], (50, 2))
    np.testing.assert_allclose(xs(inside), _falling(inside[:, 0], inside[:, 1]), rtol=1e-10)
    with pytest.raises(InputError, match="outside the cross-section table"):
        xs([3500.0, 200.0])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"m_zprime": [1.0, 2.0], "xsec": [1.0, 2.0]}), "one of ['sigma_fb'"),
        (pd.DataFrame({"m_zprime": [1.0, 2.0], "sigma_fb": [1.0, -2.0]}), "finite and positive"),
        (pd.DataFrame({"m_zprime": [1.0, 1.0], "sigma_fb": [1.0, 2.0]}), "a point twice"),
        (pd.DataFrame({"m_zprime": [1.0], "sigma_fb": [1.0]}), "give at least 2"),
    ],
)
def test_a_bad_cross_section_table_is_refused_by_name(tmp_path, frame, message):
    path = tmp_path / "xs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        CrossSection.read(path, ["m_zprime"])
    assert message in str(info.value)


def _logistic(t: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(0.3 + 0.8 * t - 0.5 * t**2)))


def test_the_smoothed_efficiency_covers_the_truth():
    # 9 simulated points of 5000 generated events, a true efficiency whose logit is
    # quadratic: over 400 simulations the truth between the points lies within the
    # fit's 1-sigma error in 0.683 of them (binomial sd of the fraction 0.023: 3 sd)
    m = np.linspace(1000.0, 3000.0, 9)
    truth = _logistic((m - 2000.0) / 1000.0)
    rng = np.random.default_rng(1)
    at = np.array([[1375.0], [2625.0]])
    expected = _logistic((at[:, 0] - 2000.0) / 1000.0)
    inside = []
    for _ in range(400):
        eff = Efficiency.fit(["m"], m[:, None], np.full(9, 5000), rng.binomial(5000, truth))
        value, error = eff(at)
        inside.append(np.abs(value - expected) <= error)
    assert np.mean(inside) == pytest.approx(0.683, abs=0.07)


def test_the_efficiency_reads_simulate_records_and_refuses_extrapolation(tmp_path):
    paths = []
    for k, (mz, passed) in enumerate([(3000.0, 400), (3500.0, 450), (4000.0, 480)]):
        path = tmp_path / f"signal_{k}.h5"
        record = {"masses": {"m_zprime": mz, "m_x": 500.0, "m_y": 100.0},
                  "generated": 1000, "passed": passed}  # fmt: skip
        (tmp_path / f"signal_{k}.json").write_text(json.dumps(record))
        paths.append(str(path))
    eff = Efficiency.read(paths, ["m_zprime"])
    # three points, a quadratic logit: the fit goes through each point's logit
    value, _ = eff([[3500.0]])
    assert value[0] == pytest.approx(450.5 / 1001, rel=1e-9)
    with pytest.raises(InputError, match="outside the simulated points"):
        eff([[4500.0]])
    with pytest.raises(InputError, match="no record of"):
        Efficiency.read([str(tmp_path / "missing.h5")], ["m_zprime"])


def test_the_signal_rate_is_sigma_times_luminosity_times_efficiency():
    m = np.linspace(1000.0, 3000.0, 5)[:, None]
    xs = CrossSection(["m"], m, _falling(m[:, 0]))
    eff = Efficiency.fit(["m"], m, np.full(5, 10_000), np.full(5, 2_500))
    rate = SignalRate(xs, 140.0, eff)
    n, relative = rate([[2000.0]])
    assert n[0] == pytest.approx(_falling(np.array(2000.0)) * 140.0 * 2500.5 / 10001, rel=1e-9)
    assert 0 < relative[0] < 0.02  # 2500 of 10000 per point: ~2% per point, less when smoothed
    with pytest.raises(InputError, match="luminosity must be positive"):
        SignalRate(xs, 0.0, eff)


def test_the_rate_of_generated_signal_files_with_a_selection(tmp_path):
    r"""Signal samples of `flowscan generate --events 0` at three Z' masses (m_X, m_Y
    held): their records give the trigger's efficiency, `where` the analysis's cut on
    the events kept; a cross section over m_zprime alone does not depend on the others.
    Three points and a quadratic logit: the fit passes through each point (1e-9:
    float64 least squares)."""
    from flowscan.cli import main
    from flowscan.io import read_table
    from flowscan.samples import lhco

    paths, expected = [], []
    for mz in (3000.0, 3500.0, 4000.0):
        path = tmp_path / f"signal_{mz:g}.h5"
        args = ["generate", "--events", "0", "--signal-events", "400", "--masses"]
        assert main([*args, f"{mz:g},500,100", "--seed", "3", "--out", str(path)]) == 0
        record = json.loads(path.with_suffix(".json").read_text())
        frame = read_table(path, lhco.FEATURES)
        kept = (frame["m_jj"] > 3200).mean()
        assert record["passed"] == len(frame) == 400 and record["generated"] > 400
        expected.append((400 * kept + 0.5) / (record["generated"] + 1))
        paths.append(str(path))
    names = ["m_zprime", "m_x", "m_y"]
    eff = Efficiency.read(paths, names, where="m_jj > 3200", derive=lhco.FEATURES)
    points = np.array([[mz, 500.0, 100.0] for mz in (3000.0, 3500.0, 4000.0)])
    np.testing.assert_allclose(eff(points)[0], expected, rtol=1e-9)
    assert expected[0] < 0.5 < expected[2]  # the cut removes most of the 3 TeV signal
    with pytest.raises(InputError, match="m_x = 600, m_y = 100 lies outside the simulated points"):
        eff([3500.0, 600.0, 100.0])
    table = tmp_path / "xs.csv"
    pd.DataFrame({"m_zprime": [3000.0, 4000.0], "sigma_fb": [10.0, 1.0]}).to_csv(table)
    with pytest.raises(InputError, match="nothing else; it has \\['Unnamed: 0'"):
        CrossSection.read(table, names)
    pd.DataFrame({"m_zprime": [3000.0, 4000.0], "sigma_fb": [10.0, 1.0]}).to_csv(table, index=False)
    rate = SignalRate(CrossSection.read(table, names), 2.0, eff)
    n, _ = rate(points)
    np.testing.assert_allclose(n, np.array([10.0, 10**0.5, 1.0]) * 2.0 * expected, rtol=1e-9)


def test_a_parameter_at_two_values_enters_the_efficiency_linearly():
    r"""3 x 2 simulated points, a logit quadratic in m and linear in g: the fit recovers
    it between the two values of g, where a parabola in g (that two values cannot fix)
    would not. 1e9 events a point: the counts' rounding moves the logit by ~1e-8."""
    points = np.array([(m, g) for m in (400.0, 500.0, 600.0) for g in (30.0, 50.0)])

    def truth(p: np.ndarray) -> np.ndarray:
        t, u = (p[:, 0] - 500.0) / 100.0, (p[:, 1] - 40.0) / 10.0
        return 1 / (1 + np.exp(-(0.5 * t + 1.5 * u - 0.6 * t * t - 1.0)))

    passed = np.round(truth(points) * 1e9)
    eff = Efficiency.fit(["m", "g"], points, np.full(6, 1e9), passed)
    inside = np.array([[450.0, 35.0], [520.0, 45.0], [580.0, 41.0]])
    np.testing.assert_allclose(eff(inside)[0], truth(inside), rtol=1e-6)
