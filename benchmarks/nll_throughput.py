r"""Time per NLL and per NLL + gradient against a bare zuko `log_prob` + backward.

For 1e4, 1e5 and 1e6 events and batches of 1, 16 and 256 thetas, times
`MixtureLikelihood` (event checks, trained-range checks, chunking, float64 mixture sum)
and the bare zuko flows on the same events and contexts (`flow(context).log_prob(x)` of
signal and background, summed, and `backward`); the ratio bare / flowscan is flowscan's
overhead (1 = none). Two model pairs, untrained (the time does not depend on the weights):
the toy's (1 observable, NSF of the demo's size; signal on (m_pole, gamma), background
on tau; masses uniform in the window) and an LHCO-sized one (5 observables, NSF with 5
transforms of 128x128, signal on three masses, unconditional background; LHCO-style
QCD events). Also the toy's cached-background NLL
(tau fixed: the background density is computed once). Flows run in float64, as in fits.
Cells with more than `--max-pairs` theta-event pairs (a tenth of that for the
LHCO-sized flows) are skipped: time grows linearly beyond them, and the bare zuko
gradient, which keeps ~60 kB per pair for the LHCO-sized flow, does not fit in 24 GB at
1e6 LHCO events (flowscan's chunked one does).

Run: `python benchmarks/nll_throughput.py [--max-pairs 3e6]`.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import torch

from flowscan import Variable
from flowscan.flows import Architecture, DensityModel
from flowscan.samples import MASS, BreitWigner, Exponential, lhco
from flowscan.scanner import MixtureLikelihood


def _models(name: str) -> tuple[DensityModel, DensityModel]:
    if name == "toy":
        return (
            DensityModel([MASS], BreitWigner.theta_vars, Architecture(flow="nsf")),
            DensityModel([MASS], Exponential.theta_vars, Architecture(flow="nsf")),
        )
    size = {"flow": "nsf", "transforms": 5, "hidden_features": (128, 128)}
    return DensityModel(lhco.OBSERVABLES, lhco.MASSES, Architecture(**size)), DensityModel(
        lhco.OBSERVABLES, (), Architecture(**size)
    )


def _events(name: str, n: int, seed: int) -> torch.Tensor:
    r"""Toy masses uniform in the window, or LHCO-style QCD events."""
    if name == "toy":
        generator = torch.Generator().manual_seed(seed)
        return MASS.low + (MASS.high - MASS.low) * torch.rand(
            n, 1, generator=generator, dtype=torch.float64
        )
    names = [v.name for v in lhco.OBSERVABLES]
    return torch.tensor(lhco.features(lhco.generate(n, seed=seed))[names].to_numpy())


def _thetas(variables: list[Variable], k: int, generator: torch.Generator) -> torch.Tensor:
    low = torch.tensor([v.low for v in variables], dtype=torch.float64)
    high = torch.tensor([v.high for v in variables], dtype=torch.float64)
    return low + (high - low) * torch.rand(k, len(low), generator=generator, dtype=torch.float64)


def _seconds(fn: Callable[[], object], repeat: int = 3) -> float:
    r"""Best of `repeat` calls after a warm-up call (the first call of a size is slower)."""
    fn()
    return min(timeit.repeat(fn, repeat=repeat, number=1))


def _ours(nll: MixtureLikelihood, theta: torch.Tensor, grad: bool) -> Callable[[], None]:
    def run() -> None:
        t = theta.clone().requires_grad_(grad)
        value = nll(t)
        if grad:
            value.sum().backward()

    return run


def _bare(
    signal: DensityModel, background: DensityModel, x: torch.Tensor, theta: torch.Tensor, grad: bool
) -> Callable[[], None]:
    r"""The same work in bare zuko: contexts scaled, log_prob of both flows summed, and
    backward. Like `MixtureLikelihood`, the background density is computed once, outside
    the timing, where it cannot change: an unconditional background, or one theta and no
    gradient."""
    d, k = len(signal.theta_vars), len(theta)

    def context(model: DensityModel, t: torch.Tensor) -> torch.Tensor:
        lo, hi = model.theta_range[:, 0], model.theta_range[:, 1]
        return (2 * (t - lo) / (hi - lo) - 1)[:, None, :]

    xk = x.expand(k, *x.shape)
    if not background.conditional:
        with torch.no_grad():
            lp_b = background.flow().log_prob(x)
    elif k == 1 and not grad:
        lp_b = background.flow(context(background, theta[:, d:])).log_prob(xk)

    def run() -> None:
        t = theta.clone().requires_grad_(grad)
        lp = signal.flow(context(signal, t[:, :d])).log_prob(xk)
        if background.conditional and (k > 1 or grad):
            lp = lp + background.flow(context(background, t[:, d:])).log_prob(xk)
        else:
            lp = lp + lp_b
        if grad:
            lp.sum().backward()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pairs", type=float, default=3e6, help="skip bigger cells")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many calls")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64 flows")
    print(
        f"{'models':<7}{'events':>9}{'thetas':>7}{'NLL s':>10}{'bare s':>10}{'ratio':>7}"
        f"{'NLL+grad s':>12}{'bare s':>10}{'ratio':>7}{'cached bkg s':>14}"
    )
    for name in ["toy", "lhco"]:
        signal, background = (m.double().eval() for m in _models(name))
        for n in [10_000, 100_000, 1_000_000]:
            x = _events(name, n, seed=n)
            for model in (signal, background):
                model.preprocessing.adapt(x)  # standardized inputs, as after training
            nll = MixtureLikelihood(signal, background, x, 0.01 * n, n)
            for k in [1, 16, 256]:
                if k * n > args.max_pairs / (1 if name == "toy" else 10):
                    continue
                theta = _thetas(nll.theta_vars, k, generator)
                repeat = args.repeat if k * n < 1e6 else 1
                with torch.no_grad():
                    t_nll = _seconds(_ours(nll, theta, False), repeat)
                    t_bare = _seconds(_bare(signal, background, x, theta, False), repeat)
                t_grad = _seconds(_ours(nll, theta, True), repeat)
                t_bare_grad = _seconds(_bare(signal, background, x, theta, True), repeat)
                cached = ""
                if name == "toy":
                    fixed = theta.clone()
                    fixed[:, 2:] = theta[0, 2:]
                    with torch.no_grad():
                        nll(fixed)  # fills the cache
                        cached = f"{_seconds(_ours(nll, fixed, False), repeat):.3g}"
                print(
                    f"{name:<7}{n:>9}{k:>7}{t_nll:>10.3g}{t_bare:>10.3g}{t_bare / t_nll:>7.2f}"
                    f"{t_grad:>12.3g}{t_bare_grad:>10.3g}{t_bare_grad / t_grad:>7.2f}{cached:>14}"
                )


if __name__ == "__main__":
    main()
