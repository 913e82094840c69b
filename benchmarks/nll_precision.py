r"""Float32 versus float64 evaluation of the flows in the mixture NLL.

Takes the models and pseudo-data of a demo run, steps each parameter by 1e-3 GeV (41
steps around the flow fit) and prints how far the NLL strays from a parabola through
those points (the rounding jitter an optimizer sees at that scale), and the time per
NLL + gradient, for flows evaluated in float32 and in float64 (the sum is float64 in
both). Run: `python benchmarks/nll_precision.py runs/demo-<timestamp>`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from flowscan.flows import DensityModel
from flowscan.scanner import MixtureLikelihood


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `flowscan demo` output folder")
    args = parser.parse_args()
    result = json.loads((args.run / "result.json").read_text())
    config = json.loads((args.run / "config.json").read_text())["config"]
    x = torch.from_numpy(np.loadtxt(args.run / "data.csv", delimiter=",", skiprows=1)[:, None])
    names = list(result["fit_flow"])
    best = torch.tensor([result["fit_flow"][k] for k in names], dtype=torch.float64)
    steps = np.arange(-20, 21) * 1e-3

    print(f"{len(x)} events; NLL residual from a parabola over 41 steps of 1e-3 GeV")
    print(f"{'flows':<9}{'parameter':<11}{'rms':>10}{'max':>10}{'s per NLL+grad':>16}")
    for dtype in [torch.float32, torch.float64]:
        signal, background = (
            DensityModel.load(args.run / f"{n}.pt").to(dtype).requires_grad_(False)
            for n in ("signal", "background")
        )  # as `for_fit`, in either dtype
        nll = MixtureLikelihood(signal, background, x, config["n_sig"], config["n_bkg"])
        theta = best.clone().requires_grad_()
        torch.autograd.grad(nll(theta), theta)  # warm-up
        t0 = time.perf_counter()
        for _ in range(5):
            torch.autograd.grad(nll(theta), theta)
        seconds = (time.perf_counter() - t0) / 5
        for k, name in enumerate(names):
            with torch.no_grad():
                shift = torch.eye(len(names), dtype=torch.float64)[k]
                values = np.array([nll(best + shift * h).item() for h in steps])
            resid = values - np.polyval(np.polyfit(steps, values, 2), steps)
            label = str(dtype).removeprefix("torch.")
            print(
                f"{label:<9}{name:<11}{resid.std():>10.1e}{np.abs(resid).max():>10.1e}"
                f"{seconds:>16.3f}"
            )


if __name__ == "__main__":
    main()
