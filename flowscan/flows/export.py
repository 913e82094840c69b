r"""Density models as ONNX graphs of log p(x | theta), to be evaluated without flowscan
(onnxruntime, or RooFit's ONNX support), with the observables, parameters, units and
trained ranges in the file's metadata."""

from __future__ import annotations

__all__ = ["check_exportable", "evaluate_onnx", "export_onnx"]

import json
import math
import os
import threading
import warnings
from pathlib import Path
from unittest import mock

import torch
from torch import Tensor, nn
from torch.jit import TracerWarning
from zuko.transforms import CouplingTransform

from .. import __version__
from ..exceptions import ExportError
from .ensemble import DensityEnsemble
from .model import DensityModel

# The largest |log p(onnxruntime) - log p(flowscan)| accepted: float64 through a few
# hundred operations, and the graph's erfc (2e-13 relative), leave ~1e-13.
TOLERANCE = 1e-9
# One export at a time: it patches zuko's coupling merge for the trace.
_EXPORT = threading.Lock()


def _first(model: DensityModel | DensityEnsemble) -> DensityModel:
    r"""The model itself, or an ensemble's first member (which shares its description)."""
    return model.members[0] if isinstance(model, DensityEnsemble) else model


class _LogProb(nn.Module):
    r"""log p(x | theta) `(N,)` of a model or the mean density of an ensemble's members,
    for events `(N, F)` and parameters `(N, D)` (none if unconditional), unchecked: the
    preprocessing with its log-Jacobian, the context scaled over the trained range."""

    def __init__(self, model: DensityModel | DensityEnsemble) -> None:
        super().__init__()
        members = model.members if isinstance(model, DensityEnsemble) else [model]
        self.members = nn.ModuleList(members)
        for m in self.members:  # a graph has no checks: `context` scales theta alone
            m.allow_extrapolation = True

    def forward(self, x: Tensor, theta: Tensor | None = None) -> Tensor:
        terms = []
        for m in self.members:
            z, ladj = m.latent(x)
            terms.append(m.latent_log_prob(z, m.context(theta)) + ladj)
        if len(terms) == 1:
            return terms[0]
        return torch.stack(terms).logsumexp(0) - math.log(len(terms))


def _merge(self: CouplingTransform, x_a: Tensor, x_b: Tensor, shape: torch.Size) -> Tensor:
    r"""zuko's `CouplingTransform.merge` as a gather, not an assignment by index (which
    the ONNX exporter turns into an invalid graph)."""
    order = torch.cat([self.idx_a, self.idx_b]).argsort()
    return torch.cat([x_a, x_b], dim=-1)[..., order]


def check_exportable(model: DensityModel | DensityEnsemble) -> None:
    r"""Raises `ExportError` for a model that does not export (`preprocessing="response"`:
    its knots are searched per event)."""
    if _first(model).architecture.preprocessing == "response":
        raise ExportError(
            "preprocessing='response' does not export to ONNX (its knots are searched per "
            "event): retrain with the default preprocessing to export the model"
        )


def _variables(variables: list) -> str:
    return json.dumps([{"name": v.name, "unit": v.unit, "low": v.low, "high": v.high}
                       for v in variables])  # fmt: skip


def export_onnx(
    model: DensityModel | DensityEnsemble,
    path: str | os.PathLike,
    *,
    events: int = 10_000,
    points: int = 10,
    seed: int = 0,
) -> float:
    r"""Writes `model` (in float64) to `path` as an ONNX graph (opset 17) with inputs
    `x` `(N, F)` and, if conditional, `theta` `(N, D)` (float64, in the observables' and
    parameters' units) and output `log_prob` `(N,)` in 1/prod(observable units). Events
    and parameters are not checked by the graph: keep them inside the `observables` and
    `parameters` ranges of its metadata (the trained ranges), which also holds the
    model's `role`, `architecture`, number of `members` and the `flowscan` version.

    The graph is checked before it is written: onnxruntime evaluates it on `events`
    events drawn from the model at `points` parameter points drawn uniformly over the
    trained box (seeded), against `model.log_prob` in float64. Not thread-safe with
    other uses of zuko's coupling flows (it patches their merge during the trace).

    Returns:
        The largest |log p(onnxruntime) - log p(flowscan)| there: ~1e-13 (the mixture's
        erfc is computed from elementary operations in the graph, to 2e-13 relative).

    Raises:
        ExportError: For `preprocessing="response"` (not exportable), or a graph that
            differs from the model by more than `TOLERANCE` (then nothing is written).

    Example:
        >>> import onnx, tempfile
        >>> from flowscan.samples import BreitWigner, training_set
        >>> model = DensityModel(BreitWigner().observables, BreitWigner().theta_vars)
        >>> model.adapt(*map(torch.as_tensor, training_set(BreitWigner(), 1000)))  # untrained
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     difference = export_onnx(model, f"{tmp}/model.onnx", events=100)
        ...     meta = {p.key: p.value for p in onnx.load(f"{tmp}/model.onnx").metadata_props}
        >>> [v["name"] for v in json.loads(meta["parameters"])], difference < 1e-9
        (['m_pole', 'gamma'], True)
    """
    import onnx

    check_exportable(model)
    fitted = model.for_fit().cpu()
    first = _first(fitted)
    box = first.theta_range
    rng = torch.Generator().manual_seed(seed)
    thetas = box[:, 0] + (box[:, 1] - box[:, 0]) * torch.rand(points, len(box), generator=rng,
                                                               dtype=box.dtype)  # fmt: skip
    counts = [events // points + (k < events % points) for k in range(points)]
    x = torch.cat([fitted.sample(n, t if first.conditional else None, seed=seed + k)
                   for k, (n, t) in enumerate(zip(counts, thetas, strict=True))])  # fmt: skip
    theta = torch.repeat_interleave(thetas, torch.tensor(counts), dim=0)
    inputs = (x,) if not first.conditional else (x, theta)
    names = ["x", "theta"][: len(inputs)]
    path, written = Path(path), Path(path).with_suffix(".onnx.partial")
    # the TorchScript exporter: the dynamo one writes Python floats as float32 constants.
    # Its warnings on the mixture's edges (model constants, read once), the splines' edge
    # pairs and unfolded slices are not the user's; any other warning of the trace is
    with _EXPORT, mock.patch.object(CouplingTransform, "merge", _merge), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Converting a tensor to a Python list", TracerWarning)
        # the splines' pair of bin edges, always 2
        warnings.filterwarnings("ignore", "Iterating over a tensor", TracerWarning, "zuko")
        warnings.filterwarnings(
            "ignore", ".*legacy TorchScript-based ONNX export", DeprecationWarning
        )
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        torch.onnx.export(
            _LogProb(fitted).eval(), tuple(i[:4] for i in inputs), written, dynamo=False,
            opset_version=17, input_names=names, output_names=["log_prob"],
            dynamic_axes={n: {0: "events"} for n in [*names, "log_prob"]},
        )  # fmt: skip
    graph = onnx.load(written)
    meta = {
        "observables": _variables(first.observables),
        "parameters": _variables(first.theta_vars),
        "role": json.dumps(first.role),
        "architecture": json.dumps(first.architecture.to_dict()),
        "members": json.dumps(len(fitted.members) if isinstance(fitted, DensityEnsemble) else 1),
        "flowscan": json.dumps(__version__),
    }
    onnx.helper.set_model_props(graph, meta)
    onnx.save(graph, written)
    reference = fitted.log_prob(*inputs) if first.conditional else fitted.log_prob(x)
    difference = float((evaluate_onnx(written, *inputs) - reference).abs().max())
    if not difference <= TOLERANCE:
        written.unlink()
        raise ExportError(
            f"the exported graph of {path.name} differs from the model by {difference:.2g} in "
            f"log p (more than {TOLERANCE:g}): nothing written; please report it"
        )
    written.replace(path)
    return difference


def evaluate_onnx(path: str | os.PathLike, x: Tensor, theta: Tensor | None = None) -> Tensor:
    r"""log p `(N,)` of an exported model (`export_onnx`) by onnxruntime (one thread) at
    events `x` `(N, F)` and parameters `theta` `(N, D)`, float64."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(os.fspath(path), options, ["CPUExecutionProvider"])
    feed = {"x": x.double().numpy()}
    if theta is not None:
        feed["theta"] = theta.double().numpy()
    return torch.from_numpy(session.run(None, feed)[0])
