r"""Closure over theta (`flowscan.validation.closure`, `flowscan closure`) with the exact
densities as models: their fits scatter around the truth by their statistical errors."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from flowscan import Constraint
from flowscan.cli import main
from flowscan.exceptions import InputError
from flowscan.flows import Architecture, load_model, train_ensemble
from flowscan.flows.training_grid import grid_gap
from flowscan.samples import MASS, Bootstrap, BreitWigner, Exponential
from flowscan.scanner import MixtureLikelihood, fit
from flowscan.validation import closure, interpolation_error, leave_out, model_bias

GRID = [(m, g) for m in (400.0, 425.0, 450.0, 475.0, 500.0) for g in (30.0, 50.0, 70.0)]


def _grid_events(per_point: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Toy signal events at each point of `GRID`, with their (m_pole, gamma)."""
    theta = torch.tensor(GRID).repeat_interleave(per_point, 0)
    return BreitWigner().sample(len(theta), theta, seed=seed), theta


def test_closure_of_the_exact_densities_scatters_by_their_errors():
    points = torch.tensor([[420.0, 40.0], [560.0, 60.0]])
    exact = (BreitWigner(), Exponential())
    table = closure(*exact, exact, points, [170.0], n_sig=500, n_bkg=3000, datasets=4,
                    seed=2, progress=False)  # fmt: skip
    assert list(table["parameter"]) == ["m_pole", "gamma", "tau"] * 2  # tau: the background's
    assert (table["valid"] == 4).all() and (table["model"] == 0).all()
    # the mean of 4 pulls of a calibrated fit has a standard deviation of 1/2
    assert (table["pull_stat"].abs() < 2.5).all()
    # dataset d at point m comes from SeedSequence((seed, m, d)): the table's bias, again
    fits = []
    for d in range(4):
        s_sig, s_bkg = (int(s) for s in np.random.SeedSequence((2, 1, d)).generate_state(2))
        x = torch.cat([exact[0].sample(500, points[1], seed=s_sig),
                       exact[1].sample(3000, torch.tensor([170.0]), seed=s_bkg)])  # fmt: skip
        nll = MixtureLikelihood(*exact, x, 500, 3000)
        fits.append(fit(nll).theta)
    bias = np.mean(fits, axis=0) - [*points[1].tolist(), 170.0]
    row = table.iloc[3:].set_index("parameter")
    # the same fits in the same order: float64 to the last digits
    assert row.loc["m_pole", "bias"] == pytest.approx(bias[0], rel=1e-9, abs=1e-9)
    assert row.loc["gamma", "bias"] == pytest.approx(bias[1], rel=1e-9, abs=1e-9)
    assert row.loc["tau", "bias"] == pytest.approx(bias[2], rel=1e-9, abs=1e-9)
    assert row.loc["tau", "m_pole"] == 560.0  # a background row is located at its point


def test_the_closure_command_on_the_demo_ensembles(quick_demo, tmp_path, capsys):
    args = [
        "closure", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"), "--sampler", "breit-wigner",
        "--at", "m_pole=420,520", "--at", "gamma=45", "--background-theta", "tau=170",
        "--n-sig", "500", "--n-bkg", "3000", "--datasets", "2", "--out", str(tmp_path),
        "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    assert "pull_total" in capsys.readouterr().out
    saved = json.loads((tmp_path / "closure.json").read_text())
    rows = saved["closure"]
    assert len(rows) == 6 and all(r["model"] > 0 for r in rows)  # ensembles of 2 members
    # the members' shared bias, by model_bias on the rows written beside it
    expected = model_bias(pd.DataFrame(rows)).to_dict()
    assert set(expected) == {"m_pole", "gamma", "tau"}
    assert saved["model_bias"] == pytest.approx(expected)
    assert (tmp_path / "closure.png").stat().st_size > 0


def test_leave_out_retrains_the_ensemble_without_one_grid_value():
    x, theta = _grid_events(200, seed=3)
    small = Architecture(hidden_features=(8, 8), components=3)
    ensemble = train_ensemble([MASS], BreitWigner.theta_vars, x, theta, members=2,
                              architecture=small, role="signal", epochs=2, batch_size=256,
                              progress=False)  # fmt: skip
    retrained = leave_out(ensemble, x, theta, "m_pole", 450.0, epochs=1, progress=False)
    assert len(retrained.members) == 2 and retrained.role == "signal"
    # the ensemble's settings, but the one given
    assert retrained.training["epochs"] == 1 and retrained.training["batch_size"] == 256
    # 12 of the 15 grid points remain, none at m_pole = 450; the trained range stays
    assert sorted(map(tuple, retrained.training_points.tolist())) == [
        p for p in GRID if p[0] != 450.0
    ]
    assert torch.equal(retrained.theta_range, ensemble.theta_range)
    # 50 GeV between 425 and 475 is two grid spacings: the hole is found
    assert grid_gap(retrained.training_points, [450.0, 40.0], retrained.theta_vars)
    assert grid_gap(ensemble.training_points, [450.0, 40.0], ensemble.theta_vars) is None
    with pytest.raises(InputError, match=r"the training grid has m_pole in \[400.0, 425.0"):
        leave_out(ensemble, x, theta, "m_pole", 460.0)
    with pytest.raises(InputError, match="the model's parameters are"):
        leave_out(ensemble, x, theta, "tau", 170.0)


def test_bootstrap_at_points_draws_only_the_events_of_a_point():
    x, theta = _grid_events(50, seed=4)
    sample = Bootstrap(x, [MASS], theta, BreitWigner.theta_vars)
    drawn = sample.sample(500, torch.tensor([450.0, 70.0]), seed=1)
    at = x[(theta == torch.tensor([450.0, 70.0])).all(-1)]
    assert torch.isin(drawn, at).all() and len(torch.unique(drawn)) > 30
    assert len(sample.points) == len(GRID)
    with pytest.raises(InputError, match="no events at"):
        sample.sample(5, torch.tensor([460.0, 70.0]))


def test_closure_command_with_files_and_a_left_out_value(tmp_path, capsys):
    x, theta = _grid_events(1000, seed=5)
    frame = pd.DataFrame({"m": x[:, 0], "m_pole": theta[:, 0], "gamma": theta[:, 1]})
    frame.to_csv(tmp_path / "signal.csv", index=False)
    bkg = Exponential().sample(4000, torch.tensor([170.0]), seed=6)
    pd.DataFrame({"m": bkg[:, 0]}).to_csv(tmp_path / "qcd.csv", index=False)
    common = ["--epochs", "20", "--jobs", "1", "--no-progress"]
    assert main(["train", "--data", str(tmp_path / "signal.csv"), "--observables", "m",
                 "--context", "m_pole,gamma", "--role", "signal", "--ensemble", "2",
                 "--out", str(tmp_path / "sig"), *common]) == 0  # fmt: skip
    assert main(["train", "--data", str(tmp_path / "qcd.csv"), "--observables", "m",
                 "--role", "background", "--out", str(tmp_path / "bkg"), *common]) == 0  # fmt: skip
    args = [
        "closure", "--signal", str(tmp_path / "sig/model.pt"),
        "--background", str(tmp_path / "bkg/model.pt"),
        "--signal-samples", str(tmp_path / "signal.csv"),
        "--background-samples", str(tmp_path / "qcd.csv"),
        "--leave-out", "m_pole=450", "--at", "m_pole=425,450",
        "--at", "gamma=50", "--n-sig", "1000", "--n-bkg", "2000", "--datasets", "3",
        "--jobs", "1", "--out", str(tmp_path / "closure"), "--no-progress",
    ]  # fmt: skip
    main(args)  # 1 if a point has no valid fit: tiny models may end on a bound
    printed = capsys.readouterr().out
    assert "retraining the signal model without m_pole = 450 from 15000 events" in printed
    assert "interpolation error across the gap at m_pole = 450" in printed, printed
    saved = json.loads((tmp_path / "closure/closure.json").read_text())
    table = pd.read_csv(tmp_path / "closure/closure.csv")
    expected = interpolation_error(table[table["m_pole"] == 450.0]).to_dict()
    assert (table["valid"] > 1).all(), printed  # else a NaN spread: nothing to compare
    # from the same table (CSV keeps 17 digits): equal to float64 rounding
    assert saved["interpolation_error"] == pytest.approx(expected, rel=1e-12)
    retrained = load_model(tmp_path / "closure/signal_leave_out.pt")
    assert 450.0 not in retrained.training_points[:, 0].tolist()
    assert len(retrained.members) == 2 and retrained.training["epochs"] == 20


class _Declaring:
    r"""An exact density that declares a nuisance, as a model trained on it does."""

    def __init__(self, density, nuisances):
        self.density, self.nuisances = density, nuisances
        self.observables, self.theta_vars = density.observables, density.theta_vars

    def log_prob(self, x, theta):
        return self.density.log_prob(x, theta)


def test_closure_constrains_the_nuisances_the_models_declare():
    scale = [Constraint("mass_scale", "gaussian", 1.0)]
    models = (_Declaring(BreitWigner(0.01), scale), _Declaring(Exponential(0.01), scale))
    reference = (BreitWigner(0.01), Exponential(0.01))
    points = torch.tensor([[455.0, 33.0, 0.0]])
    table = closure(*models, reference, points, [170.0, 0.0], n_sig=1000, n_bkg=20_000, datasets=2,
                    seed=3, progress=False).set_index("parameter")  # fmt: skip
    # With tau free the data do not measure the mass scale (a scaled exponential is another
    # tau): its error is the constraint's, 1 sigma, up to what the signal adds (the exact
    # fit at the demo's yields: 0.98). Unconstrained it would run to a bound of +-3.
    assert table.loc["mass_scale", "stat"] == pytest.approx(1.0, abs=0.1)
    assert (table["valid"] == 2).all()


@pytest.mark.parametrize("shared", [0.0, 1.5])
def test_model_bias_recovers_a_known_shared_bias(shared):
    # a closure table built to measure: at each of 4000 points the mean of 4 fits is
    # off the truth by the shared bias, the ensemble's own draw (N(0, model^2), what the
    # model error covers) and the datasets' noise (N(0, spread^2 / 4))
    rng = np.random.default_rng(7)
    n, model, spread = 4000, 1.0, 2.0
    bias = shared + rng.normal(0, model, n) + rng.normal(0, spread / 2, n)
    table = pd.DataFrame({"parameter": "m", "bias": bias, "spread": spread, "valid": 4,
                          "model": model})  # fmt: skip
    # bias^2 has variance 4 b^2 s^2 + 2 s^4 (s^2 = 2 here): the mean over 4000 points is
    # known to 0.08 (b = 1.5) and 0.045 (b = 0); 3 of those in bias^2 are 0.08 in b at
    # b = 1.5 and sqrt(0.135) = 0.37 at 0
    assert model_bias(table)["m"] == pytest.approx(shared, abs=0.1 if shared else 0.37)
    # with the model error left out of the subtraction, the same rows read as larger
    assert interpolation_error(table)["m"] > model_bias(table)["m"]
