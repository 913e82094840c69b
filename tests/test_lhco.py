import numpy as np
import pandas as pd
import pytest
import torch

from flowscan.samples import lhco


def _four_vector_mass(frame: pd.DataFrame) -> np.ndarray:
    r"""Reference m_jj written out from E^2 - p^2 of the summed four-vectors."""
    e = np.zeros(len(frame))
    p = np.zeros((len(frame), 3))
    for j in (1, 2):
        pj = frame[[f"pxj{j}", f"pyj{j}", f"pzj{j}"]].to_numpy()
        e += np.sqrt(np.sum(pj**2, axis=1) + frame[f"mj{j}"].to_numpy() ** 2)
        p += pj
    return np.sqrt(e**2 - np.sum(p**2, axis=1))


def test_training_grid_is_seed_002s():
    grid = lhco.training_grid()
    assert len(grid) == 80
    assert all(z - x > 1000 and x - y > 100 for z, x, y in grid)
    assert (3500.0, 500.0, 100.0) in grid and (3000.0, 250.0, 150.0) not in grid


def test_signal_shapes_follow_the_masses():
    x = lhco.features(lhco.generate(20_000, (3500, 500, 100), seed=1))
    qcd = lhco.features(lhco.generate(20_000, seed=2))
    assert (x["delta_m"] >= 0).all() and x[["tau21_j1", "tau21_j2"]].stack().between(0, 1).all()
    # Peaks (modes of fine histograms) near the resonance masses; the underlying event
    # lifts the 100 GeV jet by up to 40 GeV (Pythia: mode ~ 115 GeV).
    for column, low, high in [("m_jj", 3400, 3600), ("m_j1", 100, 140), ("delta_m", 340, 440)]:
        counts, edges = np.histogram(x[column], bins=80, range=(0.3 * low, 1.5 * high))
        assert low < edges[np.argmax(counts)] < high, column
    # Two-prong signal jets have lower tau21 than QCD jets.
    assert x["tau21_j1"].mean() < qcd["tau21_j1"].mean() - 0.2
    # QCD: falling m_jj above a trigger turn-on, light jets with a long tail.
    counts, edges = np.histogram(qcd["m_jj"], bins=40, range=(2000, 6000))
    peak = np.argmax(counts)
    assert 2400 < edges[peak] < 3200 and counts[-1] < 0.03 * counts[peak]
    assert (
        100 < np.median(qcd["m_j1"]) < 200 and np.quantile(qcd["m_j1"] + qcd["delta_m"], 0.99) > 500
    )


def test_swapped_and_degenerate_masses_stay_ordered():
    swapped = lhco.features(lhco.generate(5_000, (3500, 100, 500), seed=3))
    ordered = lhco.features(lhco.generate(5_000, (3500, 500, 100), seed=4))
    for column in ("m_j1", "delta_m"):
        assert np.median(swapped[column]) == pytest.approx(np.median(ordered[column]), rel=0.05)
    degenerate = lhco.features(lhco.generate(5_000, (3500, 300, 300), seed=5))
    assert (degenerate["delta_m"] >= 0).all() and np.median(degenerate["delta_m"]) < 40


def test_generator_is_seeded_fast_and_triggered():
    a, b = (
        lhco.generate(1_000, (4000, 750, 150), seed=5),
        lhco.generate(1_000, (4000, 750, 150), seed=5),
    )
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(lhco.generate(1_000, (4000, 750, 150), seed=6))
    assert list(a.columns) == lhco.SCHEMA and (a["label"] == 1).all()
    pt1, pt2 = np.hypot(a["pxj1"], a["pyj1"]), np.hypot(a["pxj2"], a["pyj2"])
    assert (pt1 >= pt2).all() and (pt1 > lhco.TRIGGER_PT).all()
    with pytest.raises(ValueError, match="m_Z' > m_X \\+ m_Y"):
        lhco.generate(10, (1000, 600, 500))


def test_loader_reads_the_rd_schema(tmp_path):
    frame = pd.concat(
        [lhco.generate(300, (3500, 500, 100), seed=7), lhco.generate(700, seed=8)],
        ignore_index=True,
    )
    frame["extra"] = 1.0
    path = tmp_path / "events_anomalydetection.h5"
    frame.to_hdf(path, key="df", mode="w")
    signal, background = lhco.read_lhco(path)
    assert (len(signal), len(background)) == (300, 700)
    mjj = _four_vector_mass(frame)
    np.testing.assert_allclose(signal["m_jj"], mjj[:300], rtol=1e-12)
    np.testing.assert_allclose(background["m_jj"], mjj[300:], rtol=1e-12)
    m1, m2 = frame["mj1"].to_numpy(), frame["mj2"].to_numpy()
    np.testing.assert_allclose(signal["m_j1"], np.minimum(m1, m2)[:300])
    np.testing.assert_allclose(signal["delta_m"], np.abs(m1 - m2)[:300])
    tau21 = frame[["tau2j1", "tau2j2"]].to_numpy() / frame[["tau1j1", "tau1j2"]].to_numpy()
    lighter = np.where(m1 <= m2, tau21[:, 0], tau21[:, 1])
    np.testing.assert_allclose(signal["tau21_j1"], lighter[:300], rtol=1e-15)
    windowed, _ = lhco.read_lhco(path, mjj_window=(3300, 3700))
    assert windowed["m_jj"].between(3300, 3700).all() and 0 < len(windowed) < 300

    # tau1 = 0 has no tau21: the observable is NaN, and the file is refused naming the row
    frame.loc[5, "tau1j1"] = 0.0
    assert np.isnan(lhco.features(frame).loc[5, ["tau21_j1", "tau21_j2"]]).any()
    frame.to_hdf(tmp_path / "zero.h5", key="df", mode="w")
    with pytest.raises(ValueError, match=r"1 of 1000 events have tau1j1 <= 0 \(first at row 5"):
        lhco.read_lhco(tmp_path / "zero.h5")
    frame.drop(columns=["tau2j2"]).to_hdf(tmp_path / "bad.h5", key="df", mode="w")
    with pytest.raises(ValueError, match=r"missing LHCO columns \['tau2j2'\]"):
        lhco.read_lhco(tmp_path / "bad.h5")


def test_jet_energy_scale_moves_the_signal_and_leaves_the_scale_free_qcd():
    nominal = lhco.generate(300, seed=4)
    # no shift: the nominal events, seed for seed
    pd.testing.assert_frame_equal(lhco.generate(300, seed=4, jes=0.0, jms=0.0), nominal)
    # The generator's QCD is scale-free (a pT^-8 power law, masses in units of pT): drawn
    # from the trigger / 1.03 and scaled by 1.03 it is the nominal sample itself, to
    # float64 rounding. A JES changes the QCD rate here, not its shape.
    up = lhco.generate(300, seed=4, jes=0.03)
    np.testing.assert_allclose(up.drop(columns="label"), nominal.drop(columns="label"),
                               rtol=1e-12)  # fmt: skip
    # the signal's masses move: 3% on m_jj and the jet masses (a 3.5 TeV Z' is above the
    # trigger, so the cut takes the same events; medians of 4000 events agree to 0.1%)
    masses = (3500.0, 500.0, 100.0)
    sig = lhco.features(lhco.generate(4000, masses, seed=5))
    shifted = lhco.features(lhco.generate(4000, masses, seed=5, jes=0.03, jms=0.02))
    assert shifted["m_jj"].median() / sig["m_jj"].median() == pytest.approx(1.03, rel=2e-3)
    ratio = shifted["delta_m"].median() / sig["delta_m"].median()
    assert ratio == pytest.approx(1.03 * 1.02, rel=2e-3)
    # the selection is re-applied after the scaling
    frame = lhco.generate(500, seed=7, jes=-0.05)
    pt = [np.hypot(frame[f"pxj{j}"], frame[f"pyj{j}"]) for j in (1, 2)]
    assert (np.maximum(*pt) > lhco.TRIGGER_PT).all()


def test_the_generator_draws_jet_scale_nuisances_in_units_of_sigma():
    qcd = lhco.Generator("qcd", jes=0.01, jms=0.02)
    assert [v.name for v in qcd.theta_vars] == ["jes", "jms"]
    names = [v.name for v in lhco.OBSERVABLES]
    # s = (1.5, -2) sigma: jes = +1.5%, jms = -4%
    x = qcd.sample(50, torch.tensor([1.5, -2.0]), seed=3)
    frame = lhco.generate(50, seed=3, jes=0.015, jms=-0.04)
    torch.testing.assert_close(x, torch.tensor(lhco.features(frame)[names].to_numpy()))
    x, theta = qcd.training_set(1200, seed=1)
    # chunks of NUISANCE_CHUNK events, each at one s drawn over +-3 sigma
    assert x.shape == (1200, 5) and theta.shape == (1200, 2)
    assert len(torch.unique(theta, dim=0)) == 3 and (theta.abs() <= 3).all()
    signal = lhco.Generator("signal", jes=0.01)
    assert [v.name for v in signal.theta_vars] == ["m_zprime", "m_x", "m_y", "jes"]
