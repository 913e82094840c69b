r"""Seconds per NLL and per NLL + gradient of the likelihood, against the exact densities,
a bare use of the same models, and the mixture's arithmetic alone.

Workloads (models of the default family, the Gaussian mixture, in float64 as fits use
them; 1 epoch of training only sets their preprocessing, the time does not depend on the
weights):
- toy: the demo's 1k signal + 100k background events; signal p(m | m_pole, gamma),
  background p(m | tau), all three floating. Rows: the exact Breit-Wigner + exponential;
  the models in `MixtureLikelihood` (the fit path); the bare models (`log_prob` of each
  on all events at theta, mixed and summed by hand, gradient with respect to theta
  only: what a user of the models without flowscan would write); the floor (the
  mixtures' arithmetic on the events alone, every per-theta term precomputed); and the
  demo's spline flows (`--flow nsf`) in the likelihood.
- lhco: 100k QCD + 10k signal events of the fast generator at (3500, 500, 100) GeV; the
  signal model on the three masses, the QCD model unconditional (its density is
  computed once per dataset). Rows: the likelihood and the bare models, single models
  and 3-member ensembles (`DensityEnsemble`) of each.
- resonances: the many-parameter toy at D = 19 (`flowscan.samples.resonances`), its
  default yields (5k signal + 50k background events at the truth), 3-member ensembles
  of the signal (19 parameters) and of the background (tau), all 20 floating. Rows:
  the exact densities and the ensembles in the likelihood; ratios to the exact ones.

Each cell is the best of `--repeat` calls at thetas that change from call to call (no
cached value is reused), with wall, user and system seconds (`resource.getrusage`) and
the ratio to the exact densities (toy) or to the bare models (lhco) measured in the same
run. Run once per thread count: `python benchmarks/nll_throughput.py --threads 1` and
`--threads 2`; `--workloads` picks some of toy, lhco, resonances.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from collections.abc import Callable

import torch

from flowscan.flows import Architecture, DensityModel, train, train_ensemble
from flowscan.flows.mixture import mixture_log_prob
from flowscan.samples import MASS, BreitWigner, Exponential, lhco, pseudo_data, training_set
from flowscan.samples.resonances import N_BKG, N_SIG, FallingSpectra, Resonances, truth
from flowscan.scanner import MixtureLikelihood

Clock = tuple[float, float, float]


def _clock(fn: Callable[[int], object], repeat: int) -> Clock:
    r"""Best (wall, user, system) seconds of `repeat` calls `fn(i)`, after a warm-up."""
    fn(repeat)
    best = None
    for i in range(repeat):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fn(i)
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        row = (wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime)
        best = row if best is None or row[0] < best[0] else best
    return best


def _value_and_grad(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, repeat: int):
    r"""Clocks of `f` alone (no gradient) and of `f` with its gradient in theta."""
    step = 1e-3 * theta.abs().clamp_min(1.0)

    def value(i: int) -> None:
        with torch.no_grad():
            f(theta + i * step)

    def grad(i: int) -> None:
        t = (theta + i * step).requires_grad_()
        torch.autograd.grad(f(t), t)

    return _clock(value, repeat), _clock(grad, repeat)


def _bare(signal: DensityModel, background: DensityModel, x, f_sig: float, d: int):
    r"""The NLL from each model's own `log_prob` on all events, mixed by hand."""

    def nll(theta: torch.Tensor) -> torch.Tensor:
        lp_s = signal.log_prob(x, theta[:d]).double()
        lp_b = background.log_prob(x, theta[d:] if background.conditional else None).double()
        total = torch.logaddexp(
            lp_s + torch.log(torch.tensor(f_sig)), lp_b + torch.log1p(-torch.tensor(f_sig))
        )
        return -total.sum()

    return nll


def _floor(signal: DensityModel, background: DensityModel, x, theta: torch.Tensor, rows: int):
    r"""The one-observable mixtures' arithmetic alone, in the likelihood's chunks of
    `rows` events: latent events and the per-theta terms (weights, means, widths,
    masses) precomputed, as leaves the gradient flows to."""
    terms, latent = [], []
    for model, t in ((signal, theta[:2]), (background, theta[2:])):
        z, _ = model.preprocessing[0]().call_and_ladj(x)
        with torch.no_grad():
            parts = model.flow.base(model.context(t)).terms(None)
        terms.append([p.clone().requires_grad_() for p in parts])
        latent.append(z)
    f_sig = torch.tensor(1000 / 101_000, dtype=torch.float64)

    def nll() -> torch.Tensor:
        out = 0.0
        for i in range(0, len(x), rows):
            lp_s = mixture_log_prob(latent[0][i : i + rows], *terms[0])
            lp_b = mixture_log_prob(latent[1][i : i + rows], *terms[1])
            out = out - torch.logaddexp(lp_s + f_sig.log(), lp_b + (-f_sig).log1p()).sum()
        return out

    def value(i: int) -> None:
        with torch.no_grad():
            nll()

    def grad(i: int) -> None:
        torch.autograd.grad(nll(), [*terms[0], *terms[1]])

    return value, grad


def _toy_models(flow: str) -> tuple[DensityModel, DensityModel]:
    models = []
    for i, exact in enumerate((BreitWigner(), Exponential())):
        x, t = training_set(exact, 20_000, seed=i)
        model = DensityModel([MASS], exact.theta_vars, Architecture(flow), seed=i)
        train(model, x, t, epochs=1, progress=False)
        models.append(model.for_fit())
    return models[0], models[1]


def _lhco_models() -> tuple[DensityModel, DensityModel]:
    names = [v.name for v in lhco.OBSERVABLES]
    x, m = lhco.training_set(1000, seed=1)
    signal = DensityModel(lhco.OBSERVABLES, lhco.MASSES, role="signal")
    train(signal, torch.tensor(x), torch.tensor(m), epochs=1, progress=False)
    qcd = torch.tensor(lhco.features(lhco.generate(50_000, seed=2))[names].to_numpy())
    background = DensityModel(lhco.OBSERVABLES, role="background", seed=1)
    train(background, qcd, epochs=1, progress=False)
    return signal.for_fit(), background.for_fit()


def _ensemble(density, x: torch.Tensor, theta: torch.Tensor | None, role: str):
    r"""A 3-member ensemble of the default architecture, 1 epoch each, float64."""
    ensemble = train_ensemble(
        density.observables, density.theta_vars, x, theta,
        members=3, role=role, epochs=1, progress=False,
    )  # fmt: skip
    return ensemble.for_fit()


def _toy(args, head: str) -> None:
    truth = torch.tensor([455.0, 33.0, 170.0], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], 1_000, 100_000, seed=3)
    print(f"toy: {len(x)} events, theta = (m_pole, gamma, tau); ratios to the exact densities")
    print(head)
    exact = _value_and_grad(
        MixtureLikelihood(BreitWigner(), Exponential(), x, 1000, 100_000), truth, args.repeat
    )
    _row("exact Breit-Wigner + exponential", exact, None)
    signal, background = _toy_models("mog")
    nll = MixtureLikelihood(signal, background, x, 1000, 100_000)
    _row("mixture models, fit path", _value_and_grad(nll, truth, args.repeat), exact)
    bare = _bare(signal, background, x, 1000 / 101_000, 2)
    _row("mixture models, bare", _value_and_grad(bare, truth, args.repeat), exact)
    rows = nll._events["signal"].chunk_pairs
    value, grad = _floor(signal, background, x, truth, rows)
    floor = (_clock(value, args.repeat), _clock(grad, args.repeat))
    _row("mixture arithmetic alone (floor)", floor, exact)
    nsf = MixtureLikelihood(*_toy_models("nsf"), x, 1000, 100_000)
    _row("spline flows (nsf), fit path", _value_and_grad(nsf, truth, args.repeat), exact)


def _lhco(args, head: str) -> None:
    frame = lhco.pseudo_data(100_000, 10_000, (3500.0, 500.0, 100.0), seed=2000)
    names = [v.name for v in lhco.OBSERVABLES]
    x = torch.tensor(lhco.features(frame)[names].to_numpy())
    masses = torch.tensor([3500.0, 500.0, 100.0], dtype=torch.float64)
    print(f"lhco: {len(x)} events, theta = (m_zprime, m_x, m_y); ratios to the bare models")
    print(head)
    signal, background = _lhco_models()
    bare = _value_and_grad(_bare(signal, background, x, 10 / 110, 3), masses, args.repeat)
    _row("mixture models, bare", bare, None)
    nll = MixtureLikelihood(signal, background, x, 10_000, 100_000)
    _row("mixture models, fit path", _value_and_grad(nll, masses, args.repeat), bare)
    xs, m = lhco.training_set(1000, seed=1)
    signal = _ensemble(signal, torch.tensor(xs), torch.tensor(m), "signal")
    qcd = torch.tensor(lhco.features(lhco.generate(50_000, seed=2))[names].to_numpy())
    background = _ensemble(background, qcd, None, "background")
    nll = MixtureLikelihood(signal, background, x, 10_000, 100_000)
    _row("3-member ensembles, fit path", _value_and_grad(nll, masses, args.repeat), bare)


def _resonances(args, head: str) -> None:
    dim = 19
    t = torch.tensor(truth(dim), dtype=torch.float64)
    densities = (Resonances(dim), FallingSpectra())
    x = pseudo_data(t[:dim], t[dim:], N_SIG, N_BKG, seed=19_000, densities=densities)
    print(f"resonances: D = {dim}, {len(x)} events, {len(t)} parameters floating; ratios to exact")
    print(head)
    exact = _value_and_grad(MixtureLikelihood(*densities, x, N_SIG, N_BKG), t, args.repeat)
    _row("exact densities", exact, None)
    models = [
        _ensemble(d, *d.training_set(20_000, seed=i), role)
        for i, (d, role) in enumerate(zip(densities, ("signal", "background"), strict=True))
    ]
    nll = MixtureLikelihood(*models, x, N_SIG, N_BKG)
    _row("3-member ensembles, fit path", _value_and_grad(nll, t, args.repeat), exact)


def _row(label: str, clocks: tuple[Clock, Clock], reference: tuple[Clock, Clock] | None):
    (v, g) = clocks
    ratio = (
        "" if reference is None else f"{v[0] / reference[0][0]:>8.1f}{g[0] / reference[1][0]:>8.1f}"
    )
    print(
        f"  {label:<34}{v[0]:>9.4f}{v[1]:>7.3f}{v[2]:>7.3f}"
        f"{g[0]:>11.4f}{g[1]:>7.3f}{g[2]:>7.3f}{ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeat", type=int, default=10, help="best of this many calls")
    parser.add_argument("--workloads", default="toy,lhco,resonances", help="comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # the models' extrapolation warnings
    print(f"torch {torch.__version__}, {args.threads} thread(s), float64 models")
    head = (
        f"  {'likelihood':<34}{'NLL s':>9}{'user':>7}{'sys':>7}"
        f"{'NLL+grad s':>11}{'user':>7}{'sys':>7}  ratio NLL, +grad"
    )

    workloads = {"toy": _toy, "lhco": _lhco, "resonances": _resonances}
    for name in args.workloads.split(","):
        workloads[name](args, head)


if __name__ == "__main__":
    main()
