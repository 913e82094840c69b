r"""Closure over theta (`flowscan.validation.closure`, `flowscan closure`) with the exact
densities as models: their fits scatter around the truth by their statistical errors."""

import json

import numpy as np
import pytest
import torch

from flowscan.cli import main
from flowscan.samples import BreitWigner, Exponential
from flowscan.scanner import MixtureLikelihood, ParameterSpace, minuit_scan
from flowscan.validation import closure


def test_closure_of_the_exact_densities_scatters_by_their_errors():
    points = torch.tensor([[420.0, 40.0], [560.0, 60.0]])
    exact = (BreitWigner(), Exponential())
    table = closure(*exact, exact, points, [170.0], n_sig=500, n_bkg=3000, datasets=4,
                    seed=2, progress=False)  # fmt: skip
    assert list(table["parameter"]) == ["m_pole", "gamma"] * 2
    assert (table["valid"] == 4).all() and (table["model"] == 0).all()
    # the mean of 4 pulls of a calibrated fit has a standard deviation of 1/2
    assert (table["pull_stat"].abs() < 2.5).all()
    # dataset d at point m comes from seed `seed + 1000 m + d`: the table's bias, again
    fits = []
    for d in range(4):
        s = 2 + 1000 * 1 + d
        x = torch.cat([exact[0].sample(500, points[1], seed=2 * s),
                       exact[1].sample(3000, torch.tensor([170.0]), seed=2 * s + 1)])  # fmt: skip
        nll = MixtureLikelihood(*exact, x, 500, 3000)
        fits.append(minuit_scan(nll, ParameterSpace(nll.theta_vars, [560.0, 60.0, 170.0])).theta)
    bias = np.mean(fits, axis=0)[:2] - points[1].numpy()
    row = table.iloc[2:].set_index("parameter")
    # the same fits in the same order: float64 to the last digits
    assert row.loc["m_pole", "bias"] == pytest.approx(bias[0], rel=1e-9, abs=1e-9)
    assert row.loc["gamma", "bias"] == pytest.approx(bias[1], rel=1e-9, abs=1e-9)


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
    assert len(rows) == 4 and all(r["model"] > 0 for r in rows)  # ensembles of 2 members
    assert (tmp_path / "closure.png").stat().st_size > 0
