r"""Float32 versus float64 evaluation of the models in the mixture NLL.

Steps each parameter by 1e-3 GeV (41 steps around a point) and prints how far the NLL
strays from a parabola through those points (the rounding jitter an optimizer sees at
that scale), and the time per NLL + gradient (with respect to theta only, the models as
`for_fit` leaves them), for models evaluated in float32 and in float64 (the sum is
float64 in both). Two workloads:

- the toy: the models and pseudo-data of a demo run, around the flow fit:
  `python benchmarks/nll_precision.py runs/demo-<timestamp>`;
- LHCO: saved models and a data file, around given masses, e.g. the README's
  `python benchmarks/nll_precision.py --signal runs/lhco-sig/model.pt --background
  runs/lhco-bkg/model.pt --data runs/lhco-data/data.h5 --n-sig 10000 --n-bkg 100000
  --at 3500,500,100`.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from flowscan.flows import DensityModel
from flowscan.io import read_events
from flowscan.samples import lhco
from flowscan.scanner import MixtureLikelihood


def _inputs(args: argparse.Namespace) -> tuple[Path, Path, torch.Tensor, float, float, list, list]:
    r"""Model files, events, yields, the point and the parameter names."""
    if args.run is not None:
        result = json.loads((args.run / "result.json").read_text())
        config = json.loads((args.run / "config.json").read_text())["config"]
        x = read_events(args.run / "data.csv", ["m"])
        names = list(result["fit_flow"])
        point = [result["fit_flow"][k] for k in names]
        signal, background = args.run / "signal.pt", args.run / "background.pt"
        return signal, background, x, config["n_sig"], config["n_bkg"], point, names
    model = DensityModel.load(args.signal)
    columns = [v.name for v in model.observables]
    x = read_events(args.data, columns, derive=lhco.FEATURES)
    point = [float(v) for v in args.at.split(",")]
    names = [v.name for v in model.theta_vars]
    return args.signal, args.background, x, args.n_sig, args.n_bkg, point, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="a `flowscan demo` output folder")
    parser.add_argument("--signal", type=Path, help="signal model file (instead of a run)")
    parser.add_argument("--background", type=Path, help="background model file")
    parser.add_argument("--data", type=Path, help="events")
    parser.add_argument("--n-sig", type=float, help="signal events in the data")
    parser.add_argument("--n-bkg", type=float, help="background events in the data")
    parser.add_argument("--at", help="the signal parameters to step around, e.g. 3500,500,100")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # the models' extrapolation warnings
    signal_file, background_file, x, n_sig, n_bkg, point, names = _inputs(args)
    best = torch.tensor(point, dtype=torch.float64)
    steps = np.arange(-20, 21) * 1e-3

    print(f"{len(x)} events, {args.threads} thread(s); NLL residual from a parabola over 41")
    print("steps of 1e-3 GeV")
    print(f"{'models':<9}{'parameter':<11}{'rms':>10}{'max':>10}{'s per NLL+grad':>16}")
    for dtype in [torch.float32, torch.float64]:
        signal, background = (
            DensityModel.load(f).to(dtype).requires_grad_(False)
            for f in (signal_file, background_file)
        )  # as `for_fit`, in either dtype
        nll = MixtureLikelihood(signal, background, x, n_sig, n_bkg)
        d = len(best)
        theta = best.clone().requires_grad_()
        torch.autograd.grad(nll(theta), theta)  # warm-up
        t0 = time.perf_counter()
        for _ in range(3):
            torch.autograd.grad(nll(theta), theta)
        seconds = (time.perf_counter() - t0) / 3
        for k, name in enumerate(names):
            with torch.no_grad():
                shift = torch.eye(d, dtype=torch.float64)[k]
                values = np.array([nll(best + shift * h).item() for h in steps])
            resid = values - np.polyval(np.polyfit(steps, values, 2), steps)
            label = str(dtype).removeprefix("torch.")
            print(
                f"{label:<9}{name:<11}{resid.std():>10.1e}{np.abs(resid).max():>10.1e}"
                f"{seconds:>16.3f}"
            )


if __name__ == "__main__":
    main()
