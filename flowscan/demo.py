r"""The Breit-Wigner bump hunt end to end: train flows, fit pseudo-data, compare with
the exact likelihood (`flowscan demo`)."""

from __future__ import annotations

__all__ = ["DemoConfig", "fit_toy", "landscape", "run_demo", "train_toy_flows"]

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .exceptions import InputError
from .flows import DensityModel, torch_device, train
from .runinfo import run_folder, versions, write_json
from .scanner import MixtureLikelihood, ParameterSpace, ScanResult, covariance, gradient_scan
from .toys import MASS, BreitWigner, Exponential, pseudo_data, training_set


@dataclass
class DemoConfig:
    r"""Settings of the demo; the defaults finish in ~3 minutes on 2 CPU cores."""

    n_train: int = 200_000
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 3e-3
    flow: str = "mog"
    transforms: int = 4
    hidden_features: tuple[int, ...] = (64, 64)
    bins: int = 8
    components: int = 20
    preprocessing: str | None = None  # the model family's default
    truth: dict[str, float] = field(
        default_factory=lambda: {"m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
    )
    n_sig: int = 1_000
    n_bkg: int = 100_000
    grid: int = 16
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes) -> DemoConfig:
        r"""A version that runs in seconds (small samples and networks) and still fits
        sensibly: 20k training events per model, 20 epochs of 512 and 32 x 32 networks
        put the fit of 5.5k events within ~0.3 sigma of the exact-density fit."""
        base = {
            "n_train": 20_000,
            "epochs": 20,
            "batch_size": 512,
            "hidden_features": (32, 32),
            "n_sig": 500,
            "n_bkg": 5_000,
            "grid": 6,
        }
        return cls(**(base | changes))


def train_toy_flows(
    config: DemoConfig, progress: bool = True
) -> tuple[DensityModel, DensityModel, dict[str, float]]:
    r"""Trains the signal flow p(m | m_pole, gamma) and background flow p(m | tau) on
    training sets drawn as in seed 002. Returns both models and training seconds."""
    models, seconds = [], {}
    for i, (name, exact) in enumerate([("signal", BreitWigner()), ("background", Exponential())]):
        x, theta = training_set(exact, config.n_train, seed=config.seed + 1 + i)
        model = DensityModel(
            [MASS],
            exact.theta_vars,
            flow=config.flow,
            transforms=config.transforms,
            hidden_features=config.hidden_features,
            bins=config.bins,
            components=config.components,
            preprocessing=config.preprocessing,
            role=name,
            seed=config.seed + i,
        ).to(torch_device(config.device))
        t0 = time.perf_counter()
        if progress:
            print(f"training the {name} flow on {len(x)} events")
        train(
            model,
            x,
            theta,
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            seed=config.seed + i,
            progress=progress,
        )
        seconds[f"train_{name}"] = time.perf_counter() - t0
        models.append(model.eval())
    return models[0], models[1], seconds


def fit_toy(
    signal: DensityModel | BreitWigner,
    background: DensityModel | Exponential,
    x: Tensor,
    config: DemoConfig,
) -> tuple[MixtureLikelihood, ScanResult]:
    r"""Gradient scan of (m_pole, gamma, tau) on events `x`. Flows are evaluated in a
    float64 copy (see the README on precision); parameter bounds are the toy's ranges."""
    signal, background = (
        copy.deepcopy(d).for_fit() if isinstance(d, DensityModel) else d
        for d in (signal, background)
    )
    nll = MixtureLikelihood(signal, background, x.to(config.device), config.n_sig, config.n_bkg)
    space = ParameterSpace([*BreitWigner.theta_vars, *Exponential.theta_vars])
    return nll, gradient_scan(nll, space)


def landscape(
    nll: MixtureLikelihood, theta: np.ndarray, ranges: Sequence[tuple[float, float]], size: int
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    r"""NLL and its autograd gradient over (m_pole, gamma) on a `size` x `size` grid over
    `ranges` (GeV), tau fixed at `theta[2]` (its background term is computed once).
    Returns the axes, NLL `(size, size)` and gradient `(size, size, 2)` in 1/GeV, rows
    along gamma. One theta per call: batching thetas is slower on CPU here, as the spline
    backward pass is memory-bound."""
    a, b = (np.linspace(lo, hi, size) for lo, hi in ranges)
    fixed = torch.as_tensor(theta[2:], device=nll.x.device, dtype=torch.float64)
    values, grads = np.empty((size, size)), np.empty((size, size, 2))
    for i, j in np.ndindex(size, size):
        point = torch.tensor([a[j], b[i]], device=nll.x.device, dtype=torch.float64)
        point.requires_grad_()
        value = nll.nll_split(point, fixed)
        (grad,) = torch.autograd.grad(value, point)
        values[i, j], grads[i, j] = value.item(), grad.cpu().numpy()
    return (a, b), values, grads


def _curves(
    nll: MixtureLikelihood, theta: np.ndarray, grid: Tensor
) -> tuple[np.ndarray, np.ndarray]:
    r"""Expected events per GeV, total and background, on `grid` `(G, 1)`."""
    d, n = len(nll.signal.theta_vars), len(nll.x)
    t = torch.as_tensor(theta)
    with torch.no_grad():
        ps = nll.signal.log_prob(grid, t[:d]).exp().cpu().double()
        pb = nll.background.log_prob(grid, t[d:]).exp().cpu().double()
    bkg = n * (1 - nll.f_sig) * pb
    return (n * nll.f_sig * ps + bkg).numpy(), bkg.numpy()


def run_demo(
    config: DemoConfig,
    out: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict:
    r"""Trains, fits with flows and with exact densities, and writes to `out` (default
    `runs/demo-<timestamp>/`): `result.json`, `config.json`, the model files, the
    pseudo-data (`data.csv`), `fit.png` and `landscape.png`. Returns `result.json`'s content."""
    from . import plots

    out = run_folder(out, "demo")
    write_json(
        out / "config.json", {"config": asdict(config), "seed": config.seed, "versions": versions()}
    )
    t_start = time.perf_counter()

    signal, background, seconds = train_toy_flows(config, progress)
    signal.save(out / "signal.pt")
    background.save(out / "background.pt")

    names = list(config.truth)
    truth = torch.tensor([config.truth[k] for k in names], dtype=torch.float64)
    x = pseudo_data(truth[:2], truth[2:], config.n_sig, config.n_bkg, seed=config.seed + 3)
    np.savetxt(out / "data.csv", x.numpy(), delimiter=",", header="m", comments="", fmt="%.6f")

    nll_flow, fit_flow = fit_toy(signal, background, x, config)
    nll_exact, fit_exact = fit_toy(BreitWigner(), Exponential(), x, config)
    try:
        errors = np.sqrt(np.diag(covariance(nll_exact, fit_exact.theta)))
    except InputError:  # not at a minimum inside the box: no error to divide by
        errors = np.full(len(fit_exact.theta), np.nan)
    seconds |= {"fit_flow": fit_flow.seconds, "fit_exact": fit_exact.seconds}

    units = [v.unit for v in nll_exact.theta_vars]
    rows = [
        f"{'parameter':<10}{'unit':<6}{'truth':>10}{'fit (flows)':>14}{'fit (exact)':>20}"
        f"{'(flow-exact)/sigma':>20}"
    ]
    for i, name in enumerate(names):
        pull = (fit_flow.theta[i] - fit_exact.theta[i]) / errors[i]
        exact = f"{fit_exact.theta[i]:.2f} +- {errors[i]:.2f}"
        rows.append(
            f"{name:<10}{units[i]:<6}{truth[i].item():>10.2f}{fit_flow.theta[i]:>14.2f}{exact:>20}{pull:>20.2f}"
        )
    echo("\n".join(rows))
    for label, fit in (("flows", fit_flow), ("exact", fit_exact)):
        if not fit.valid:
            where = f" ({', '.join(fit.at_bound)} at a bound)" if fit.at_bound else ""
            echo(f"the {label} fit is {fit.status.upper()}{where}: {fit.message}")
    echo(
        f"NLL evaluations: flows {fit_flow.nll_evals}, exact {fit_exact.nll_evals}; "
        f"fit seconds: flows {fit_flow.seconds:.1f}, exact {fit_exact.seconds:.1f}"
    )

    edges = torch.linspace(MASS.low, MASS.high, 601, dtype=torch.float64)
    grid = ((edges[1:] + edges[:-1]) / 2)[:, None]
    plots.plot_fit(
        x[:, 0].numpy(),
        grid[:, 0].numpy(),
        {
            "flows": _curves(nll_flow, fit_flow.theta, grid),
            "exact": _curves(nll_exact, fit_exact.theta, grid),
        },
        MASS,
        out / "fit.png",
    )
    # Full range, and a zoom of +-4 sigma (exact-fit errors) around the flow minimum.
    full = [(v.low, v.high) for v in nll_flow.theta_vars[:2]]
    zoom = [
        (max(v.low, t - 4 * s), min(v.high, t + 4 * s))
        for v, t, s in zip(nll_flow.theta_vars[:2], fit_flow.theta, errors, strict=False)
    ]
    panels = []
    for ranges, size in [(full, config.grid), (zoom, max(3, config.grid * 3 // 4))]:
        axes, values, grads = landscape(nll_flow, fit_flow.theta, ranges, size)
        panels.append((axes, values - fit_flow.nll, grads))
    plots.plot_landscape(
        panels,
        [v.label for v in nll_flow.theta_vars[:2]],
        out / "landscape.png",
        trajectory=fit_flow.path[:, :2],
        truth=truth[:2].tolist(),
        title=f"flow NLL at tau = {fit_flow.theta[2]:.1f} GeV and the path of the gradient scan",
    )
    seconds["total"] = time.perf_counter() - t_start
    result = {
        "truth": dict(zip(names, truth.tolist(), strict=True)),
        "fit_flow": fit_flow.values,
        "fit_exact": fit_exact.values,
        "errors_exact": dict(zip(names, errors.tolist(), strict=True)),
        "units": dict(zip(names, units, strict=True)),
        "nll_evals": {"flow": fit_flow.nll_evals, "exact": fit_exact.nll_evals},
        "seconds": seconds,
        "scan_flow": fit_flow.to_dict(),
        "scan_exact": fit_exact.to_dict(),
    }
    write_json(out / "result.json", result)
    files = "result.json, config.json, signal.pt, background.pt, data.csv, fit.png, landscape.png"
    echo(f"wrote {out}/ ({files})")
    return result
