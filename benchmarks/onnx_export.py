r"""Models exported as ONNX graphs (`flowscan export`): onnxruntime against flowscan on
1e5 events spread over the trained box, for every family, an ensemble and the README's
trained LHCO models, with the seconds of one evaluation of log p on those events by each
(one thread).

Every family is built on the LHCO observables and masses and adapted to 600 grid events,
untrained (the graph's numerics are a trained model's; the README's models are trained).
`export_onnx` draws the events from the model at 10 points uniform over the trained box
and returns the largest |log p(onnxruntime) - log p(flowscan)|; the timings evaluate
those events once more in each (float64; flowscan's `log_prob`, not the fit path's
cached terms).

Run: `python benchmarks/onnx_export.py [--events 100000] [--models runs/lhco-sig/model.pt
runs/lhco-bkg/model.pt]`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from flowscan.flows import (
    FLOWS,
    Architecture,
    DensityEnsemble,
    DensityModel,
    evaluate_onnx,
    export_onnx,
    load_model,
)
from flowscan.samples import lhco


def _models(paths: list[str]) -> dict[str, DensityModel | DensityEnsemble]:
    x, theta = (torch.tensor(a, dtype=torch.float32) for a in lhco.training_set(
        300, grid=[(3500, 500, 100), (4000, 750, 250)], seed=1))  # fmt: skip
    models = {}
    for flow in FLOWS:
        models[f"{flow}, untrained"] = DensityModel(lhco.OBSERVABLES, lhco.MASSES,
                                                    Architecture(flow), role="signal")  # fmt: skip
        models[f"{flow}, untrained"].adapt(x, theta)
    members = [DensityModel(lhco.OBSERVABLES, lhco.MASSES, seed=s) for s in range(3)]
    for m in members:
        m.adapt(x, theta)
    models["mog ensemble of 3, untrained"] = DensityEnsemble(members)
    for path in paths:
        if Path(path).exists():
            models[path] = load_model(path)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--models", nargs="*", default=["runs/lhco-sig/model.pt", "runs/lhco-bkg/model.pt"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in _models(args.models).items():
            path = Path(tmp) / "model.onnx"
            t0 = time.perf_counter()
            difference = export_onnx(model, path, events=args.events)
            seconds = time.perf_counter() - t0
            fitted = model.for_fit()
            box = fitted.theta_range
            x = fitted.sample(args.events, box.mean(-1) if fitted.conditional else None, seed=1)
            theta = box.mean(-1).expand(len(x), -1) if fitted.conditional else None
            t0 = time.perf_counter()
            with torch.no_grad():
                fitted.log_prob(x, theta) if theta is not None else fitted.log_prob(x)
            t_torch = time.perf_counter() - t0
            t0 = time.perf_counter()
            evaluate_onnx(path, x, theta)
            t_onnx = time.perf_counter() - t0
            rows.append({
                "model": name, "max |d log p|": difference, "export + check s": seconds,
                "flowscan s": t_torch, "onnxruntime s": t_onnx, "ratio": t_onnx / t_torch,
                "MB": path.stat().st_size / 1e6,
            })  # fmt: skip
            print(rows[-1], flush=True)
    print(f"\n{args.events} events over the trained box, float64, one thread:")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
