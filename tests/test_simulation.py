import sys

import numpy as np
import pandas as pd
import pytest

from flowscan.cli import main
from flowscan.parallel import dask_client
from flowscan.samples import lhco
from flowscan.samples.simulation import nsubjettiness, simulate

MASSES = (3500.0, 500.0, 100.0)


def _massless(pt: float, y: float, phi: float) -> list[float]:
    return [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y), pt * np.cosh(y)]


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)
    with pytest.raises(ImportError, match=r"flowscan\[mc\]"):
        simulate(10, MASSES)


def test_simulate_rejects_bad_requests(tmp_path, capsys):
    assert main(["simulate", "--process", "signal", "--out", str(tmp_path / "s.h5")]) == 2
    assert "--masses" in capsys.readouterr().err
    out = str(tmp_path / "q.h5")
    assert main(["simulate", "--process", "qcd", "--masses", "3500,500,100", "--out", out]) == 2
    assert "no masses" in capsys.readouterr().err
    with pytest.raises(ValueError, match="m_Z' > m_X \\+ m_Y"):
        simulate(10, (500.0, 400.0, 200.0))


def test_nsubjettiness_matches_the_closed_form():
    # A (pT 100) at (y, phi) = (0, 0), B (50) at (0.5, 0), C (10) at (0, 0.3). kT merges
    # A and C first (smallest min(pT^2) dR^2), the WTA axis stays on A; then B joins.
    # tau1 = (50 * 0.5 + 10 * 0.3) / 160, tau2 = 10 * 0.3 / 160, tau3 = 0 (3 particles).
    pytest.importorskip("fastjet", reason="needs pip install 'flowscan[mc]'")
    jet = np.array([_massless(100, 0, 0), _massless(50, 0.5, 0), _massless(10, 0, 0.3)])
    np.testing.assert_allclose(nsubjettiness(jet, 1.0), [28 / 160, 3 / 160, 0.0], atol=1e-9)


@pytest.fixture(scope="module")
def signal_file(tmp_path_factory):
    pytest.importorskip("pythia8mc", reason="needs pip install 'flowscan[mc]'")
    path = tmp_path_factory.mktemp("sim") / "signal.h5"
    args = ["simulate", "--process", "signal", "--masses", "3500,500,100", "--events", "48"]
    assert (
        main([*args, "--chunk-size", "16", "--seed", "3", "--out", str(path), "--jobs", "1"]) == 0
    )
    return path


def test_signal_events_in_the_lhco_schema_peak_at_the_masses(signal_file):
    signal, background = lhco.read_lhco(signal_file)
    assert len(signal) == 48 and len(background) == 0
    frame = pd.read_hdf(signal_file)
    assert list(frame.columns[: len(lhco.SCHEMA)]) == lhco.SCHEMA
    pt = np.hypot(frame[["pxj1", "pxj2"]].to_numpy(), frame[["pyj1", "pyj2"]].to_numpy())
    assert (pt[:, 0] >= pt[:, 1]).all() and (pt[:, 0] > 1200).all()
    # m_jj within the 10% resolution and radiation losses of m_Z'; the heavier jet near
    # m_X; the lighter one near m_Y, which the underlying event in an R = 1 jet raises
    # by tens of GeV; two-prong jets have small tau21.
    assert abs(signal["m_jj"].median() / MASSES[0] - 1) < 0.1
    heavier = signal["m_j1"] + signal["delta_m"]
    assert abs(heavier.median() / MASSES[1] - 1) < 0.1
    assert MASSES[2] - 20 < signal["m_j1"].median() < MASSES[2] + 60
    for tau21 in (signal["tau21_j1"], signal["tau21_j2"]):
        assert ((tau21 >= 0) & (tau21 <= 1)).all()
    assert signal["tau21_j2"].median() < 0.5


def test_two_workers_give_the_events_of_one(signal_file):
    serial = pd.read_hdf(signal_file)
    with dask_client(jobs=2) as client:
        parallel, meta = simulate(48, MASSES, seed=3, chunk_size=16, client=client, progress=False)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert meta["passed"] == 48 and meta["generated"] >= 48 and len(meta["chunk_seeds"]) == 3


def test_train_reads_simulated_grid_files(signal_file, tmp_path):
    other = tmp_path / "other.h5"
    args = ["simulate", "--process", "signal", "--masses", "3000,400,80", "--events", "48"]
    assert main([*args, "--chunk-size", "48", "--out", str(other), "--jobs", "1"]) == 0
    out = tmp_path / "model"
    train = ["train", "--data", str(signal_file), str(other), "--context", "m_zprime,m_x,m_y"]
    assert main([*train, "--epochs", "2", "--hidden", "8,8", "--out", str(out)]) == 0
    from flowscan.flows import DensityModel

    model = DensityModel.load(out / "model.pt")
    assert [v.name for v in model.theta_vars] == ["m_zprime", "m_x", "m_y"]
    assert model.theta_range[:, 0].tolist() == [3000.0, 400.0, 80.0]


def test_simulated_jet_scales_scale_the_reconstructed_jets(tmp_path):
    pytest.importorskip("pythia8mc", reason="needs pip install 'flowscan[mc]'")
    args = ["simulate", "--process", "signal", "--masses", "3500,500,100", "--events", "16",
            "--chunk-size", "16", "--seed", "3", "--jobs", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "nominal.h5")]) == 0
    assert main([*args, "--jes", "0.02", "--jms", "0.01", "--out", str(tmp_path / "up.h5")]) == 0
    nominal, up = (pd.read_hdf(tmp_path / f"{name}.h5", "df") for name in ("nominal", "up"))
    # The same Pythia events with their jets scaled (momenta by 1.02, masses by 1.02 x
    # 1.01), matched by their unscaled substructure; the trigger is applied after the
    # scaling, so an event just below it nominally may pass shifted up.
    both = nominal.merge(up, on=["tau1j1", "tau2j1"], suffixes=("", "_up"))
    assert len(both) >= 14
    for j in (1, 2):
        np.testing.assert_allclose(both[f"pxj{j}_up"], 1.02 * both[f"pxj{j}"], rtol=1e-12)
        # a mass from E^2 - p^2 loses ~1e-6 of its digits to the cancellation
        np.testing.assert_allclose(both[f"mj{j}_up"], 1.0302 * both[f"mj{j}"], rtol=1e-9)
    assert (up["label"] == 1).all() and len(up) == 16
