r"""A saved likelihood (`flowscan scan --save-likelihood`) evaluated by onnxruntime,
as docs/examples/fit_without_flowscan.py does it, against flowscan's fit path, one
thread each, on the toy and on LHCO.

For each workload, `flowscan scan --method minuit --save-likelihood` writes the
likelihood and `flowscan scan --likelihood` refits it (the largest difference of the two
minima); then, on one thread:

- one NLL at a theta the last call did not see (every parameter moved by half an
  error, seeded): flowscan's `nll`, its `value_and_grad` (what Minuit and the gradient
  scan call), and the example's numpy + onnxruntime NLL; their largest difference;
- MIGRAD from the document's `init` point (the global search's minimum, where flowscan's
  Minuit starts): flowscan's `minuit_scan` (exact gradient, strategy 0) and the
  example's Minuit (finite differences, iminuit's default strategy 1); seconds, NLL
  evaluations, and the largest distance of the example's minimum from flowscan's in
  the example's errors.

Toy: `flowscan demo` (5-member ensembles of Gaussian mixtures, 101k events, fitted
extended); LHCO: the README's models (single mixtures) on runs/lhco-lee's 20060 events.

Run: `python benchmarks/onnx_likelihood.py [--demo DIR] [--lhco-models SIG BKG]
[--lhco-data FILE] [--out runs/onnx-likelihood]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from iminuit import Minuit

from flowscan.scanner import ParameterSpace, minuit_scan, read_likelihood

ROOT = Path(__file__).parents[1]
FLOWSCAN = str(Path(sys.executable).parent / "flowscan")


def _example():
    spec = importlib.util.spec_from_file_location(
        "fit_without_flowscan", ROOT / "docs" / "examples" / "fit_without_flowscan.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seconds(call, thetas: np.ndarray) -> tuple[float, list[float]]:
    start = time.perf_counter()
    values = [float(call(t)) for t in thetas]
    return (time.perf_counter() - start) / len(thetas), values


def _workload(name: str, scan: list[str], out: Path, example) -> dict:
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    argv = [FLOWSCAN, "scan", *scan, "--method", "minuit", "--save-likelihood", "--out",
            str(folder), "--no-progress"]  # fmt: skip
    subprocess.run(argv, check=True)
    document = folder / "likelihood.json"
    argv = [FLOWSCAN, "scan", "--likelihood", str(document), "--method", "minuit", "--out",
            str(folder / "refit"), "--no-progress"]  # fmt: skip
    subprocess.run(argv, check=True)
    nll = read_likelihood(document)
    fitted = json.loads((folder / "scan.json").read_text())["results"]["minuit"]
    refit = json.loads((folder / "refit" / "scan.json").read_text())["results"]["minuit"]
    best, errors = np.array(fitted["theta"]), np.array(fitted["errors"])
    points = {p["name"]: [q["value"] for q in p["parameters"]]
              for p in json.loads(document.read_text())["parameter_points"]}  # fmt: skip
    rng = np.random.default_rng(1)
    thetas = best + 0.5 * errors * rng.choice([-1.0, 1.0], size=(6, len(best)))
    box = np.array([(v.low, v.high) for v in nll.theta_vars])
    thetas = np.clip(thetas, box[:, 0], box[:, 1])
    ort_nll, names, bounds, _ = example.likelihood(document)
    as_theta = lambda t: torch.tensor(t, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        t_value, ours = _seconds(lambda t: nll.nll(as_theta(t)), thetas)
    t_grad, _ = _seconds(lambda t: nll.value_and_grad(as_theta(t)[None])[0][0], thetas)
    t_ort, theirs = _seconds(ort_nll, thetas)

    start = points["init"]
    clock = time.perf_counter()
    flowscan_fit = minuit_scan(nll, ParameterSpace(nll.theta_vars, start))
    t_fit = time.perf_counter() - clock
    minuit = Minuit(lambda t: ort_nll(np.asarray(t)), start, name=names)
    minuit.errordef, minuit.limits = Minuit.LIKELIHOOD, bounds
    clock = time.perf_counter()
    minuit.migrad()
    t_ort_fit = time.perf_counter() - clock
    offset = np.abs((np.array(minuit.values) - flowscan_fit.theta) / np.array(minuit.errors))
    return {
        "workload": name,
        "refit by --likelihood: max abs(theta difference)": float(
            np.max(np.abs(np.array(refit["theta"]) - fitted["theta"]))
        ),
        "events": len(nll.x),
        "parameters": len(names),
        "NLL s, flowscan": t_value,
        "NLL+gradient s, flowscan": t_grad,
        "NLL s, onnxruntime": t_ort,
        "onnxruntime / flowscan NLL": t_ort / t_value,
        "onnxruntime / flowscan NLL+gradient": t_ort / t_grad,
        "max abs(NLL difference)": float(np.max(np.abs(np.array(ours) - theirs))),
        "MIGRAD s, flowscan": t_fit,
        "MIGRAD evaluations, flowscan": (
            f"{flowscan_fit.nll_evals} + {flowscan_fit.grad_evals} grad"
        ),
        "MIGRAD s, onnxruntime": t_ort_fit,
        "MIGRAD evaluations, onnxruntime": minuit.nfcn,
        "valid, onnxruntime": minuit.valid,
        "max abs(theta difference) / error": float(offset.max()),
        "NLL at minimum, flowscan - onnxruntime": flowscan_fit.nll - minuit.fval,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", help="a flowscan demo output folder (default: run the demo)")
    parser.add_argument("--lhco-models", nargs=2, default=["runs/lhco-sig/model.pt",
                        "runs/lhco-bkg/model.pt"])  # fmt: skip
    parser.add_argument("--lhco-data", default="runs/lhco-lee/data.h5")
    parser.add_argument("--out", default="runs/onnx-likelihood")
    args = parser.parse_args()
    out = Path(args.out)
    demo = Path(args.demo) if args.demo else out / "demo"
    if not (demo / "signal.pt").exists():
        subprocess.run([FLOWSCAN, "demo", "--out", str(demo), "--no-progress"], check=True)
    torch.set_num_threads(1)
    example = _example()
    toy = ["--signal", str(demo / "signal.pt"), "--background", str(demo / "background.pt"),
           "--data", str(demo / "data.csv")]  # fmt: skip
    sig, bkg = args.lhco_models
    lhco = ["--signal", sig, "--background", bkg, "--data", args.lhco_data]
    rows = [_workload("toy", toy, out, example), _workload("LHCO", lhco, out, example)]
    table = pd.DataFrame(rows).set_index("workload").T
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
