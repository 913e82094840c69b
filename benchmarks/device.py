r"""One short run on a device (`--device cuda`, or `cpu` for comparison) that times what
scales flowscan: the LHCO NLL + gradient of 3-member ensembles over 1e6 events, training
throughput, and 200 pseudo-experiments of the toy.

1. **NLL + gradient**: 3-member ensembles of the default model (the Gaussian mixture,
   1 epoch each: the time does not depend on the weights) for the LHCO signal (three
   masses) and QCD (unconditional, its density cached once per dataset), float64, on
   `--events` (1e6) events of the fast generator (10% signal at (3500, 500, 100) GeV);
   best of 3 `value_and_grad` calls, and the NLL alone.
2. **Training**: events x epochs per second of `train` with its defaults (float32,
   minibatches of 4096) on the LHCO signal's quick-start set (7500 events at each of 80
   mass points), `--epochs` (2) epochs.
3. **Pseudo-experiments**: `--toys` (200) toys of the Breit-Wigner toy (extended
   likelihood, the demo's truth and yields, events drawn from the exact densities),
   each fitted with 1-member models of the demo's architecture and epochs (20) on the
   device (Minuit from the global search, HESSE), one after the other in this process.

Each part runs on its own: one that fails prints its error and the next runs. Prints
one table; `--out` writes it as JSON beside the versions and the device's name.

Run: `python benchmarks/device.py --device cuda` (a few minutes on a GPU);
`python benchmarks/device.py --device cpu --events 100000 --toys 5` checks it on a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from pathlib import Path

import torch

from flowscan import __version__
from flowscan.flows import DensityModel, train, train_ensemble
from flowscan.samples import BreitWigner, Exponential, lhco, training_set
from flowscan.scanner import FitSettings, MixtureLikelihood
from flowscan.stats import pseudo_experiments


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device: torch.device, repeat: int = 3) -> float:
    r"""Best wall seconds of `repeat` calls of `fn(i)`, after a warm-up."""
    fn(repeat)
    _sync(device)
    best = float("inf")
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _nll(device: torch.device, events: int) -> dict:
    names = [v.name for v in lhco.OBSERVABLES]
    xs, m = lhco.training_set(500, seed=1)
    signal = train_ensemble(lhco.OBSERVABLES, lhco.MASSES, torch.tensor(xs), torch.tensor(m),
                            members=3, role="signal", epochs=1, progress=False)  # fmt: skip
    qcd = torch.tensor(lhco.features(lhco.generate(40_000, seed=2))[names].to_numpy())
    background = train_ensemble(lhco.OBSERVABLES, (), qcd, members=3, role="background",
                                epochs=1, progress=False)  # fmt: skip
    n_sig = events // 10
    frame = lhco.pseudo_data(events - n_sig, n_sig, (3500.0, 500.0, 100.0), seed=2000)
    x = torch.tensor(lhco.features(frame)[names].to_numpy(), device=device)
    nll = MixtureLikelihood(signal.for_fit().to(device), background.for_fit().to(device), x,
                            n_sig, events - n_sig, check_data=False)  # fmt: skip
    masses = torch.tensor([[3500.0, 500.0, 100.0]], dtype=torch.float64, device=device)
    step = torch.tensor([[1.0, 0.5, 0.25]], dtype=torch.float64, device=device)

    def value(i: int) -> None:
        with torch.no_grad():
            nll(masses[0] + i * step[0])

    return {
        "events": len(x),
        "NLL s": _best(value, device),
        "NLL + gradient s": _best(lambda i: nll.value_and_grad(masses + i * step), device),
    }


def _training(device: torch.device, epochs: int) -> dict:
    x, m = lhco.training_set(7500, seed=1)
    model = DensityModel(lhco.OBSERVABLES, lhco.MASSES, seed=1).to(device)
    _sync(device)
    t0 = time.perf_counter()
    history = train(model, torch.tensor(x), torch.tensor(m), epochs=epochs, patience=epochs,
                    progress=False)  # fmt: skip
    _sync(device)
    seconds = time.perf_counter() - t0
    n = len(x) - max(1, int(0.2 * len(x)))
    return {
        "training events": n,
        "epochs": len(history),
        "training s": seconds,
        "events x epochs / s": n * len(history) / seconds,
        "validation loss": min(r["val_loss"] for r in history),
    }


def _toys(device: torch.device, toys: int) -> dict:
    models = []
    for i, exact in enumerate((BreitWigner(), Exponential())):
        x, t = training_set(exact, 50_000, seed=i)
        model = DensityModel(exact.observables, exact.theta_vars, seed=i)
        train(model, x, t, epochs=20, progress=False)  # the demo's epochs
        models.append(model.for_fit().to(device))
    truth = {"n_sig": 1000.0, "n_bkg": 100_000.0, "m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
    t0 = time.perf_counter()
    study = pseudo_experiments(*models, truth, toys, generator=(BreitWigner(), Exponential()),
                               settings=FitSettings(), seed=7, progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    table = study.table
    return {
        "toys": toys,
        "toys s": seconds,
        "s per toy": seconds / toys,
        "valid fits": int(table["valid"].astype(bool).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events of part 1")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of part 2")
    parser.add_argument("--toys", type=int, default=200, help="pseudo-experiments of part 3")
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"flowscan {__version__}, torch {torch.__version__}, {device} ({name}), "
          f"{torch.get_num_threads()} CPU thread(s)")  # fmt: skip
    row: dict[str, object] = {"device": str(device), "name": name}
    parts = (
        ("NLL + gradient, LHCO 3-member ensembles", lambda: _nll(device, args.events)),
        ("training, LHCO signal", lambda: _training(device, args.epochs)),
        ("pseudo-experiments, toy", lambda: _toys(device, args.toys)),
    )
    for label, part in parts:
        try:
            result = part()
        except Exception as e:  # a part that fails says so; the others still run
            print(f"{label}: FAILED: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
            row[label] = f"failed: {e}"
            continue
        row[label] = result
        cells = "; ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
        )
        print(f"{label}: {cells}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        versions = {"flowscan": __version__, "torch": torch.__version__}
        args.out.write_text(json.dumps({"versions": versions, **row}, indent=2))


if __name__ == "__main__":
    main()
