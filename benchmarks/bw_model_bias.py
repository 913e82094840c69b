r"""How a trained background model's bias on tau falls with its training-sample size.

For each training size and seed, trains the demo's background model p(m | tau) (on an
independent training sample per seed) and computes, by quadrature over the mass window
rather than with pseudo-data, the asymptotic bias of the tau fitted to data drawn from
the exact exponential at several true tau:

    bias(tau0) = E_exact[d/dtau log q(m | tau)] / I(tau0),  I = E_exact[(d/dtau log p)^2],

the first step of Newton's method from tau0 on the expected model NLL. It is printed in
units of the statistical error of tau with `--events` background events (10.4k, the
calibration benchmark's dataset: 2.1 GeV at tau = 170 GeV). Seed-to-seed scatter is the
training sample's and the optimizer's noise; what stays at a tau for every seed is the
model family's own error.

Run: `python benchmarks/bw_model_bias.py` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import torch

from flowscan.flows import DensityModel, train
from flowscan.samples import MASS, Exponential, training_set

TAUS = (110.0, 140.0, 170.0, 200.0, 230.0, 260.0, 290.0)
SETTINGS = {200_000: (1024, 20), 4_000_000: (4096, 10)}  # events: (batch size, epochs)


def scores(density, taus: torch.Tensor, m: torch.Tensor, step: float = 0.05) -> torch.Tensor:
    r"""d/dtau log p(m | tau) by central differences, shape `(len(taus), len(m))`."""
    with torch.no_grad():
        return torch.stack(
            [
                (
                    density.log_prob(m, (t + step).reshape(1))
                    - density.log_prob(m, (t - step).reshape(1))
                )
                / (2 * step)
                for t in taus
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,4000000", help="training events")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--events", type=float, default=10_400, help="events in the fitted data")
    args = parser.parse_args()

    exact = Exponential()
    taus = torch.tensor(TAUS, dtype=torch.float64)
    points = 100_000
    m = torch.linspace(MASS.low, MASS.high, points + 1, dtype=torch.float64)[:-1, None]
    dm = (MASS.high - MASS.low) / points
    m = m + dm / 2  # midpoint rule
    with torch.no_grad():
        p = torch.stack([exact.log_prob(m, t.reshape(1)).exp() for t in taus])
    info = (p * scores(exact, taus, m) ** 2).sum(-1) * dm
    sigma = (1 / (args.events * info)).sqrt()

    print(f"| training events | seed | train s | bias in sigma at {args.events:.0f} events: "
          + " ".join(f"tau={t:g}" for t in TAUS) + " |")  # fmt: skip
    print("| --- | --- | --- | --- |")
    for size in map(int, args.sizes.split(",")):
        batch, epochs = SETTINGS.get(size, (max(1024, size // 1000), 10))
        for seed in range(args.seeds):
            x, theta = training_set(exact, size, seed=1000 + seed)
            model = DensityModel([MASS], exact.theta_vars, seed=seed)
            t0 = time.perf_counter()
            # the documented runs' peak learning rate (the default before issue 34)
            train(model, x, theta, epochs=epochs, batch_size=batch, lr=3e-3, seed=seed,
                  progress=False)  # fmt: skip
            seconds = time.perf_counter() - t0
            model = model.double().eval()
            bias = (p * scores(model, taus, m)).sum(-1) * dm / info / sigma
            cells = " ".join(f"{b:+.2f}" for b in bias.tolist())
            print(f"| {size} (batch {batch}, {epochs} epochs) | {seed} | {seconds:.0f} | {cells} |")
    print(f"\nstatistical error of tau at {args.events:.0f} events: "
          + ", ".join(f"{s:.2f}" for s in sigma.tolist()) + " GeV")  # fmt: skip


if __name__ == "__main__":
    main()
