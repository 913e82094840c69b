r"""Training throughput: events x epochs per second of `flowscan.flows.train` for the
default model (the Gaussian mixture) on each workload, and the validation loss it ends at.

Workloads (float32 training, the defaults of `train` unless `--batch-size`/`--lr` say
otherwise; early stopping off, `--epochs` epochs each, so every row trains as long):
- toy signal: p(m | m_pole, gamma), `--toy-events` (200k) events, theta drawn per event;
- LHCO signal: p(5 observables | m_zprime, m_x, m_y) on the fast generator's grid of 80
  mass points, `--lhco-per-point` (7500) events each: the README's quick-start set;
- LHCO QCD: the unconditional background, `--qcd-events` (200k) events;
- resonances D = 19: the many-parameter toy's signal, `--resonance-events` (200k).

Each row: training events (after the 20% validation split), epochs, wall seconds of
`train` (preprocessing set-up and per-epoch validation included), events x epochs per
second, and the best validation loss in nats/event. Timings on a shared machine vary by
~10%: compare rows of one run, or runs of one session.

Run: `python benchmarks/training_throughput.py [--threads 2] [--epochs 5]`; the same
command on an older checkout (`--batch-size 1024 --lr 3e-3`, its defaults) gives the
"before" of docs/throughput.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from flowscan.flows import DensityModel, train
from flowscan.samples import BreitWigner, lhco, training_set
from flowscan.samples.resonances import Resonances


def _toy(n: int) -> tuple:
    x, theta = training_set(BreitWigner(), n, seed=1)
    return BreitWigner.observables, BreitWigner.theta_vars, x, theta


def _lhco_signal(per_point: int) -> tuple:
    x, m = lhco.training_set(per_point, seed=1)
    return lhco.OBSERVABLES, lhco.MASSES, torch.tensor(x), torch.tensor(m)


def _qcd(n: int) -> tuple:
    names = [v.name for v in lhco.OBSERVABLES]
    x = torch.tensor(lhco.features(lhco.generate(n, seed=2))[names].to_numpy())
    return lhco.OBSERVABLES, (), x, None


def _resonances(n: int) -> tuple:
    density = Resonances(19)
    x, theta = density.training_set(n, seed=3)
    return density.observables, density.theta_vars, x, theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, help="default: train's")
    parser.add_argument("--lr", type=float, help="default: train's")
    parser.add_argument("--toy-events", type=int, default=200_000)
    parser.add_argument("--lhco-per-point", type=int, default=7500)
    parser.add_argument("--qcd-events", type=int, default=200_000)
    parser.add_argument("--resonance-events", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = {k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr)) if v}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {options or 'defaults'}")
    head = f"{'events':>9}{'epochs':>7}{'seconds':>9}{'ev x ep / s':>13}{'val':>10}"
    print(f"  {'workload':<22}{head}")
    workloads = {
        "toy signal": lambda: _toy(args.toy_events),
        "LHCO signal": lambda: _lhco_signal(args.lhco_per_point),
        "LHCO QCD": lambda: _qcd(args.qcd_events),
        "resonances D = 19": lambda: _resonances(args.resonance_events),
    }
    for name, data in workloads.items():
        observables, theta_vars, x, theta = data()
        model = DensityModel(observables, theta_vars, seed=1)
        t0 = time.perf_counter()
        history = train(
            model, x, theta, epochs=args.epochs, patience=args.epochs, progress=False, **options
        )
        wall = time.perf_counter() - t0
        n = len(x) - max(1, int(0.2 * len(x)))  # the training split
        rate = n * len(history) / wall
        best = min(r["val_loss"] for r in history)
        print(f"  {name:<22}{n:>9}{len(history):>7}{wall:>9.1f}{rate:>13.0f}{best:>10.4f}")


if __name__ == "__main__":
    main()
