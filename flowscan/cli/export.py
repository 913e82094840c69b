r"""`flowscan export`: a saved model or ensemble as an ONNX graph of log p(x | theta),
checked by onnxruntime against flowscan."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import InputError
from ..flows import DensityEnsemble, export_onnx, load_model
from ..flows.export import TOLERANCE
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    export = o.command(
        commands,
        "export",
        out="the ONNX file to write (model.onnx)",
        help="a model as an ONNX graph of log p(x | theta), to use without flowscan",
        description="Writes a saved model or ensemble as an ONNX graph (float64 inputs x "
        "(N, F) and theta (N, D), output log_prob (N,)), the observables, parameters, units, "
        "trained ranges and role in its metadata, and checks it: onnxruntime against "
        "flowscan on events drawn from the model over the trained box.",
    )
    export.add_argument("model", help="model file (model.pt)")
    export.add_argument(
        "--events",
        type=o.positive_int,
        default=10_000,
        help="events of the check, drawn at up to 10 points over the trained box (default 10000)",
    )
    export.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Exports `args.model` to `args.out` (`export_onnx`: nothing is written where
    onnxruntime and flowscan differ by more than `TOLERANCE`), prints what was written
    and the check; returns the exit code."""
    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"--out {out}: name the ONNX file to write, e.g. model.onnx")
    model = load_model(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    points = min(10, args.events)
    difference = export_onnx(model, out, events=args.events, points=points, seed=args.seed)
    members = len(model.members) if isinstance(model, DensityEnsemble) else 1
    given = ", ".join(f"{v.name} [{v.low:g}, {v.high:g}] {v.unit}" for v in model.theta_vars)
    print(
        f"wrote {out}: log p({', '.join(v.name for v in model.observables)}"
        + (f" | {given}" if given else "")
        + f") of the {model.role or 'unlabelled'} model ({model.architecture.flow}, "
        f"{members} member{'s' * (members > 1)})"
    )
    print(
        f"onnxruntime agrees with flowscan: max |log p difference| {difference:.2g} over "
        f"{args.events} events at {points} points (tolerance {TOLERANCE:g})"
    )
    return 0
