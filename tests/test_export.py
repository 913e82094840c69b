import json

import numpy as np
import onnx
import pytest
import torch

from flowscan.exceptions import ExportError
from flowscan.flows import (
    Architecture,
    DensityEnsemble,
    DensityModel,
    evaluate_onnx,
    export_onnx,
)
from flowscan.samples import BreitWigner, lhco, training_set

# float64 through the graph, with the mixture's erfc from elementary operations (2e-13
# relative): log p of the events agrees to ~1e-13; 1e-9 leaves room for other CPUs'
# vectorized exp and log, which differ by a few ulps
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def lhco_events():
    x, theta = lhco.training_set(150, grid=[(3500, 500, 100), (4000, 750, 250)], seed=1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(theta, dtype=torch.float32)


def _model(flow: str, events, seed: int = 3) -> DensityModel:
    r"""An untrained model adapted to the events: its numerics are a trained model's."""
    x, theta = events
    model = DensityModel(lhco.OBSERVABLES, lhco.MASSES, Architecture(flow), role="signal",
                         seed=seed)  # fmt: skip
    model.adapt(x, theta)
    return model


def _fresh(model, events: int, seed: int):
    r"""Events drawn from `model` at points over its trained box other than the check's."""
    box = model.theta_range.double()
    rng = np.random.default_rng(seed)
    thetas = box[:, 0] + (box[:, 1] - box[:, 0]) * torch.from_numpy(rng.random((4, len(box))))
    x = torch.cat([model.for_fit().sample(events // 4, t, seed=seed + k)
                   for k, t in enumerate(thetas)])  # fmt: skip
    return x, thetas.repeat_interleave(events // 4, dim=0)


@pytest.mark.parametrize("flow", ["mog", "maf", "nsf", "realnvp", "coupling-nsf"])
def test_every_family_exports_its_log_density(flow, lhco_events, tmp_path):
    model = _model(flow, lhco_events)
    path = tmp_path / "model.onnx"
    assert export_onnx(model, path, events=400, points=4) < TOLERANCE
    x, theta = _fresh(model, 600, seed=7)  # another number of events than traced
    reference = model.for_fit().log_prob(x, theta)
    np.testing.assert_allclose(evaluate_onnx(path, x, theta), reference, rtol=0, atol=TOLERANCE)


def test_an_ensemble_exports_its_mean_density_with_its_metadata(lhco_events, tmp_path):
    ensemble = DensityEnsemble([_model("mog", lhco_events, seed) for seed in (3, 4)])
    path = tmp_path / "ensemble.onnx"
    assert export_onnx(ensemble, path, events=400, points=4) < TOLERANCE
    x, theta = _fresh(ensemble, 400, seed=8)
    members = torch.stack([m.for_fit().log_prob(x, theta) for m in ensemble.members])
    mean = members.exp().mean(0).log()  # the mean density, by hand
    assert (members[0] - members[1]).abs().max() > 0.1  # the members differ (seeds)
    np.testing.assert_allclose(evaluate_onnx(path, x, theta), mean, rtol=0, atol=TOLERANCE)
    meta = {p.key: json.loads(p.value) for p in onnx.load(path).metadata_props}
    assert [v["name"] for v in meta["observables"]] == [v.name for v in lhco.OBSERVABLES]
    assert meta["observables"][0]["unit"] == "GeV"
    box = ensemble.theta_range.tolist()
    assert [[v["low"], v["high"]] for v in meta["parameters"]] == box  # the trained range
    assert meta["role"] == "signal" and meta["members"] == 2
    assert meta["architecture"]["flow"] == "mog"


def test_unconditional_and_one_observable_models(lhco_events, tmp_path):
    r"""The LHCO background (no parameters: the graph takes x alone) and the toy's
    one-observable mixture, truncated to its window, whose parameters depend on theta
    alone."""
    x, _ = lhco_events
    background = DensityModel(lhco.OBSERVABLES, role="background")
    background.adapt(x)
    path = tmp_path / "background.onnx"
    assert export_onnx(background, path, events=300, points=3) < TOLERANCE
    assert [i.name for i in onnx.load(path).graph.input] == ["x"]
    events = background.for_fit().sample(500, seed=2)
    np.testing.assert_allclose(
        evaluate_onnx(path, events), background.for_fit().log_prob(events), rtol=0,
        atol=TOLERANCE,
    )  # fmt: skip
    toy = DensityModel(BreitWigner().observables, BreitWigner().theta_vars)
    toy.adapt(*map(torch.as_tensor, training_set(BreitWigner(), 2000)))
    assert export_onnx(toy, tmp_path / "toy.onnx", events=500, points=5) < TOLERANCE


def test_a_graph_traced_on_one_event_takes_a_theta_per_event(lhco_events, tmp_path):
    r"""Traced on a single event (one theta), the mixture's first observable, whose
    truncation to its window depends on theta alone (tau21 in [0, 1], put first), still
    takes each event's theta in the graph."""
    order = [3, 0, 1, 2, 4]
    x, theta = lhco_events
    model = DensityModel([lhco.OBSERVABLES[k] for k in order], lhco.MASSES, seed=3)
    model.adapt(x[:, order], theta)
    path = tmp_path / "one.onnx"
    assert export_onnx(model, path, events=1, points=1) < TOLERANCE
    x, theta = _fresh(model, 400, seed=9)
    reference = model.for_fit().log_prob(x, theta)
    np.testing.assert_allclose(evaluate_onnx(path, x, theta), reference, rtol=0, atol=TOLERANCE)


def test_a_response_curve_is_refused_and_nothing_written(lhco_events, tmp_path):
    x, theta = lhco_events
    model = DensityModel(lhco.OBSERVABLES, lhco.MASSES, Architecture(preprocessing="response"))
    model.adapt(x, theta)
    with pytest.raises(ExportError, match="preprocessing='response' does not export"):
        export_onnx(model, tmp_path / "response.onnx", events=10)
    assert list(tmp_path.iterdir()) == []
