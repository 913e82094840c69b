import json
import math

import pytest

from flowscan.cli import main
from flowscan.flows import DensityModel


def test_demo_quick_writes_a_well_formed_result(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "m_pole" in printed and "GeV" in printed

    result = json.loads((out / "result.json").read_text())
    names = ["m_pole", "gamma", "tau"]
    for key in ["truth", "fit_flow", "fit_exact"]:
        assert list(result[key]) == names
        assert all(math.isfinite(v) for v in result[key].values())
    ranges = {"m_pole": (300, 700), "gamma": (20, 80), "tau": (100, 300)}
    for name, (lo, hi) in ranges.items():
        assert lo <= result["fit_flow"][name] <= hi
        # The exact-density fit of 5.5k events lands within 5 sigma of the truth.
        pull = (result["fit_exact"][name] - result["truth"][name]) / result["errors_exact"][name]
        assert abs(pull) < 5
    assert result["nll_evals"]["flow"] > 0 and result["nll_evals"]["exact"] > 0
    assert result["seconds"]["total"] > 0

    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and "torch" in config["versions"]
    for name in ["fit.png", "landscape.png", "data.csv"]:
        assert (out / name).stat().st_size > 0
    assert DensityModel.load(out / "signal.pt").theta_vars[0].name == "m_pole"


def test_cli_reports_bad_arguments(capsys):
    with pytest.raises(SystemExit) as err:
        main(["demo", "--epochs", "many"])
    assert err.value.code == 2
    assert "invalid int value" in capsys.readouterr().err
