r"""Seconds of an LHCO fit, stage by stage: the global search, MIGRAD + HESSE from its
minimum, and the model error of ensembles, for single models and for 3-member ensembles.

The README's LHCO data (100k QCD + 10k signal events of the fast generator at (3500,
500, 100) GeV, seed 2000), fixed yields, the three masses floating; the models as the
README's quick-start trains them (`flowscan train --sampler lhco ...`, `--ensemble 3` for
the ensembles). Each stage is timed on its own: `global_search` with its defaults,
`minuit_scan` from the search's lowest minimum (MIGRAD, then HESSE from central
differences of the exact gradient), `model_errors` (Newton steps of every member), with
the NLL and gradient evaluations, and the passes over the events of `value_and_grad`
the model error made.

Run: `python benchmarks/lhco_fit_time.py --single runs/lhco-sig/model.pt
runs/lhco-bkg/model.pt --ensembles runs/lhco-sig3/model.pt runs/lhco-bkg3/model.pt`
(2 threads by default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from flowscan.flows import load_model
from flowscan.samples import lhco
from flowscan.scanner import MixtureLikelihood, ParameterSpace, global_search, minuit_scan
from flowscan.scanner.model_error import model_errors


def _stages(signal: Path, background: Path, x: torch.Tensor) -> dict:
    nll = MixtureLikelihood(load_model(signal).for_fit(), load_model(background).for_fit(), x,
                            10_000, 100_000)  # fmt: skip
    space = ParameterSpace(nll.theta_vars)
    t0 = time.perf_counter()
    found = global_search(nll, space)
    t1 = time.perf_counter()
    result = minuit_scan(nll, ParameterSpace(nll.theta_vars, found.starts[0]))
    t2 = time.perf_counter()
    passes = [0]
    value_and_grad = MixtureLikelihood.value_and_grad

    def counted(self, theta, floating=None):
        passes[0] += 1
        return value_and_grad(self, theta, floating)

    MixtureLikelihood.value_and_grad = counted
    try:
        result = model_errors(nll, result, space)
    finally:
        MixtureLikelihood.value_and_grad = value_and_grad
    t3 = time.perf_counter()
    masses = ", ".join(f"{v:.1f}" for v in result.theta)
    return {
        "search s": t1 - t0,
        "MIGRAD + HESSE s": t2 - t1,
        "evaluations (NLL, gradient)": f"{result.nll_evals}, {result.grad_evals}",
        "model error s": t3 - t2,
        "model error passes": passes[0],
        "total s": t3 - t0,
        "masses GeV": masses,
        "status": result.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", nargs=2, type=Path, metavar=("SIGNAL", "BACKGROUND"))
    parser.add_argument("--ensembles", nargs=2, type=Path, metavar=("SIGNAL", "BACKGROUND"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame = lhco.pseudo_data(100_000, 10_000, (3500.0, 500.0, 100.0), seed=2000)
    names = [v.name for v in lhco.OBSERVABLES]
    x = torch.tensor(lhco.features(frame)[names].to_numpy())
    print(f"torch {torch.__version__}, {args.threads} thread(s), {len(x)} events")
    for label, paths in (("single models", args.single), ("3-member ensembles", args.ensembles)):
        if paths is None:
            continue
        row = _stages(*paths, x)
        print(f"{label}: " + "; ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
        ))  # fmt: skip


if __name__ == "__main__":
    main()
