r"""The likelihood as an HS3 document: written and read by flowscan (`write_likelihood`,
`read_likelihood`, `scan --save-likelihood` and `--likelihood`), its standard parts read
by pyhs3, and fitted without flowscan by docs/examples/fit_without_flowscan.py in a venv
of numpy, onnxruntime and iminuit alone."""

import json
import math
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pydantic
import pyhs3
import pytest
import torch

from flowscan import Constraint
from flowscan.cli import main
from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import MASS, pseudo_data
from flowscan.scanner import (
    FitSettings,
    MixtureLikelihood,
    fit,
    read_likelihood,
    write_likelihood,
)

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "fit_without_flowscan.py"
STANDALONE = ROOT / ".venv-standalone"
# The per-event log p of an exported graph agrees with flowscan's to `export_onnx`'s
# 1e-9 (measured ~1e-13); summed over N events the NLLs agree to N 1e-9.
PER_EVENT = 1e-9


@pytest.fixture(scope="module")
def saved(quick_demo, tmp_path_factory) -> Path:
    r"""`scan --save-likelihood` on the quick demo's ensembles (2 members each) and data,
    extended, with a Gaussian constraint on tau and a log-normal one on n_bkg."""
    out = tmp_path_factory.mktemp("saved")
    argv = ["scan", "--signal", str(quick_demo / "signal.pt"), "--background",
            str(quick_demo / "background.pt"), "--data", str(quick_demo / "data.csv"),
            "--method", "minuit", "--nuisance", "tau:gaussian:5:170", "--nuisance",
            "n_bkg:lognormal:0.1:5000", "--save-likelihood", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_scan_refits_a_saved_likelihood_to_the_same_minimum(saved, tmp_path):
    out = tmp_path / "refit"
    argv = ["scan", "--likelihood", str(saved / "likelihood.json"), "--method", "minuit",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    first = json.loads((saved / "scan.json").read_text())["results"]["minuit"]
    again = json.loads((out / "scan.json").read_text())["results"]["minuit"]
    assert again["names"] == first["names"] == ["n_sig", "n_bkg", "m_pole", "gamma", "tau"]
    # the same models, events and constraints: the 1e-6 in every parameter
    np.testing.assert_allclose(again["theta"], first["theta"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(again["errors_model"], first["errors_model"], rtol=1e-6)
    assert [p["name"] for p in json.loads((saved / "likelihood.json").read_text())[
        "parameter_points"]] == ["init", "best_fit", "constants"]  # fmt: skip


def test_a_weighted_fixed_fraction_likelihood_round_trips(
    tiny_signal_flow, tiny_background_flow, tmp_path
):
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([170.0]), 200, 2000, seed=3)
    weights = torch.from_numpy(np.random.default_rng(4).uniform(0.5, 1.5, len(x)))
    models = (tiny_signal_flow.for_fit(), tiny_background_flow.for_fit())
    nll = MixtureLikelihood(*models, x, 200, 2000, weights=weights,
                            constraints=[Constraint("tau", "gaussian", 5.0, 170.0)])  # fmt: skip
    again = read_likelihood(write_likelihood(nll, tmp_path))
    assert again.names == nll.names and again.f_sig == nll.f_sig
    assert torch.equal(again.weights, nll.weights) and again.constraints == nll.constraints
    thetas = torch.tensor([[450.0, 40.0, 170.0], [320.0, 75.0, 290.0]], dtype=torch.float64)
    # the same float64 operations on the same numbers (JSON keeps every float's digits)
    np.testing.assert_allclose(again.nll(thetas), nll.nll(thetas), rtol=1e-15)


def test_negative_signal_and_an_unconditional_background_round_trip(tiny_signal_flow, tmp_path):
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([170.0]), 100, 2000, seed=7)
    background = DensityModel([MASS], (), Architecture(hidden_features=(8, 8)), role="background")
    train(background, x.float(), epochs=5, batch_size=256, progress=False)  # of the data
    rate = Constraint("n_bkg", "lognormal", 0.2, 2000.0)
    nll = MixtureLikelihood(tiny_signal_flow.for_fit(), background.for_fit(), x,
                            negative_signal=True, constraints=[rate])  # fmt: skip
    again = read_likelihood(write_likelihood(nll, tmp_path))
    assert again.constraints == (rate,)  # the width as given, not exp(log1p(0.2)) - 1
    assert again.negative_signal and again.theta_vars == nll.theta_vars
    thetas = torch.tensor([[-5.0, 2100.0, 450.0, 40.0], [80.0, 1900.0, 600.0, 70.0]],
                          dtype=torch.float64)  # fmt: skip
    np.testing.assert_allclose(again.nll(thetas), nll.nll(thetas), rtol=1e-15)  # as above


def _standard_parts(document: dict) -> dict:
    r"""The document without what HS3 does not define: the onnx_dist densities, the
    mixture of them, and the likelihood and analysis built on it."""
    learned = {"signal", "background", "model"}
    parts = {k: v for k, v in document.items() if k not in ("likelihoods", "analyses")}
    parts["distributions"] = [d for d in document["distributions"] if d["name"] not in learned]
    return parts


def test_pyhs3_reads_the_standard_parts_and_evaluates_the_constraints(saved):
    document = json.loads((saved / "likelihood.json").read_text())
    with pytest.raises(pydantic.ValidationError, match="Unknown distribution type 'onnx_dist'"):
        pyhs3.Workspace(**document)
    workspace = pyhs3.Workspace(**_standard_parts(document))
    nll = read_likelihood(saved / "likelihood.json")
    (data,) = workspace.data
    np.testing.assert_array_equal(np.array(data.entries), nll.x.numpy())
    (domain,) = workspace.domains
    assert [(a.name, a.min, a.max) for a in domain.axes] == [
        (v.name, v.low, v.high) for v in nll.theta_vars
    ]
    model = workspace.model(0, domain=0, parameter_set="constants", progress=False,
                            mode="FAST_COMPILE")  # fmt: skip
    # pyhs3's -log of each auxiliary distribution, differenced between two parameter
    # values (its normalization cancels), against flowscan's constraint term
    for c, (a, b) in zip(nll.constraints, ((160.0, 182.0), (4800.0, 5600.0)), strict=True):
        name = f"{c.name}_constraint"
        pyhs3_term = -(model.logpdf_unsafe(name, **{c.name: b}) -
                       model.logpdf_unsafe(name, **{c.name: a}))  # fmt: skip
        ours = c.nll(torch.tensor(b, dtype=torch.float64)) - c.nll(
            torch.tensor(a, dtype=torch.float64)
        )
        assert float(pyhs3_term) == pytest.approx(float(ours), rel=1e-12)


@pytest.fixture(scope="module")
def standalone() -> Path:
    r"""The python of a venv with numpy, onnxruntime and iminuit alone (the versions of
    this one's), made in .venv-standalone by pip (from the index or its cache) once per
    set of versions."""
    python, marker = STANDALONE / "bin" / "python", STANDALONE / ".installed"
    pins = [f"{p}=={version(p)}" for p in ("numpy", "onnxruntime", "iminuit")]
    if not marker.exists() or marker.read_text().split() != pins:  # pip: index or cache
        shutil.rmtree(STANDALONE, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", STANDALONE], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True)
        marker.write_text(" ".join(pins))
    return python


def _run_example(python: Path, document: Path, result: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([python, EXAMPLE, document, result], check=True, env=env, cwd=result.parent)
    return json.loads(result.read_text())


def test_the_standalone_example_lands_on_flowscans_minimum(saved, standalone, tmp_path):
    for module in ("torch", "flowscan"):  # the venv has neither
        found = subprocess.run([standalone, "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0
    result = _run_example(standalone, saved / "likelihood.json", tmp_path / "result.json")
    nll = read_likelihood(saved / "likelihood.json")
    best = json.loads((saved / "scan.json").read_text())["results"]["minuit"]
    assert result["names"] == best["names"] and result["valid"]
    # the same NLL at flowscan's minimum, from the ONNX graphs in numpy
    flowscan_nll = float(nll.nll(torch.tensor(best["theta"], dtype=torch.float64)))
    assert result["nll_best_fit"] == pytest.approx(flowscan_nll, abs=len(nll.x) * PER_EVENT)
    # Minuit from the analysis's init point, on finite differences, stops within its EDM
    # (2e-4 at the default tolerance): the minimum's NLL to 1e-3, each parameter within
    # 0.05 of its error (sqrt(2 EDM) = 0.02 errors, doubled for the numerical gradient)
    assert result["nll"] == pytest.approx(best["nll"], abs=1e-3)
    offsets = (np.array(result["values"]) - best["theta"]) / np.array(result["errors"])
    assert np.abs(offsets).max() < 0.05
    np.testing.assert_allclose(result["errors"], best["errors"], rtol=0.05)


def test_the_standalone_example_fits_a_weighted_fixed_fraction(
    tiny_signal_flow, tiny_background_flow, standalone, tmp_path
):
    x = pseudo_data(torch.tensor([450.0, 40.0]), torch.tensor([170.0]), 300, 3000, seed=5)
    weights = torch.from_numpy(np.random.default_rng(6).uniform(0.5, 1.5, len(x)))
    models = (tiny_signal_flow.for_fit(), tiny_background_flow.for_fit())
    nll = MixtureLikelihood(*models, x, 300, 3000, weights=weights,
                            constraints=[Constraint("tau", "gaussian", 5.0, 170.0)])  # fmt: skip
    result = fit(nll, FitSettings("minuit", start={"tau": 172.0}, fixed=["tau"]))
    points = {"init": result.path[0], "best_fit": result.theta}
    document = write_likelihood(nll, tmp_path, points, fixed=["tau"])
    out = _run_example(standalone, document, tmp_path / "result.json")
    assert out["values"][2] == 172.0  # held where flowscan held it
    assert out["nll_best_fit"] == pytest.approx(result.nll, abs=len(x) * PER_EVENT)
    assert out["nll"] == pytest.approx(result.nll, abs=1e-3)  # as above
    offsets = (np.array(out["values"]) - result.theta) / np.array(out["errors"])
    assert np.abs(offsets).max() < 0.05 and math.isfinite(out["nll"])
