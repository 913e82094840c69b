r"""The Breit-Wigner bump hunt (seed 002's toy): train signal and background models on
the exact densities, fit pseudo-data with them and with the exact likelihood, and map
the NLL around the minimum. `flowscan demo` runs it; the benchmarks build on it."""

from __future__ import annotations

__all__ = ["BumpHuntConfig", "fit", "landscape", "spectrum", "train_flows"]

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..flows import (
    Architecture,
    DensityEnsemble,
    DensityModel,
    torch_device,
    train,
    train_ensemble,
)
from ..parallel import dask_client
from ..samples import BreitWigner, Exponential, training_set
from ..scanner import FitSettings, MixtureLikelihood, ScanResult
from ..scanner import fit as fit_likelihood


@dataclass
class BumpHuntConfig:
    r"""Settings of the study; the defaults finish in ~3 minutes on 2 CPU cores."""

    n_train: int = 200_000
    epochs: int = 20
    batch_size: int = 4096
    lr: float = 1e-2
    architecture: Architecture = field(default_factory=Architecture)
    truth: dict[str, float] = field(
        default_factory=lambda: {"m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
    )
    n_sig: int = 1_000
    n_bkg: int = 100_000
    grid: int = 16
    members: int = 1
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def quick(cls, **changes) -> BumpHuntConfig:
        r"""A version that runs in seconds (small samples and networks) and still fits
        sensibly: 20k training events per model, 20 epochs of 512 and 32 x 32 networks
        put the fit of 5.5k events within ~0.3 sigma of the exact-density fit."""
        base = {
            "n_train": 20_000,
            "epochs": 20,
            "batch_size": 512,
            "architecture": Architecture(hidden_features=(32, 32)),
            "n_sig": 500,
            "n_bkg": 5_000,
            "grid": 6,
        }
        return cls(**(base | changes))


Model = DensityModel | DensityEnsemble


def train_flows(config: BumpHuntConfig, progress: bool = True) -> tuple[Model, Model, dict]:
    r"""Trains the signal flow p(m | m_pole, gamma) and background flow p(m | tau) on
    training sets drawn as in seed 002, each an ensemble (`train_ensemble`, members on a
    local Dask cluster) if `config.members` > 1. Returns both and the training seconds."""
    if config.members == 1:
        return _train_flows(config, progress, None)
    with dask_client(min(config.members, os.cpu_count() or 1)) as client:
        return _train_flows(config, progress, client)


def _train_flows(config: BumpHuntConfig, progress: bool, client) -> tuple[Model, Model, dict]:
    models, seconds = [], {}
    for i, (name, exact) in enumerate([("signal", BreitWigner()), ("background", Exponential())]):
        x, theta = training_set(exact, config.n_train, seed=config.seed + 1 + i)
        if config.members > 1:
            t0 = time.perf_counter()
            if progress:
                print(f"training {config.members} {name} flows on replicas of {len(x)} events")
            models.append(
                train_ensemble(
                    exact.observables, exact.theta_vars, x, theta, members=config.members,
                    architecture=config.architecture, role=name, seed=config.seed + 10 * i,
                    epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                    device=config.device, client=client, progress=progress,
                ).eval()
            )  # fmt: skip
            seconds[f"train_{name}"] = time.perf_counter() - t0
            continue
        model = DensityModel(
            exact.observables,
            exact.theta_vars,
            config.architecture,
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


def fit(
    signal: Model | BreitWigner,
    background: Model | Exponential,
    x: Tensor,
    config: BumpHuntConfig,
) -> tuple[MixtureLikelihood, ScanResult]:
    r"""The gradient scan of (m_pole, gamma, tau) on events `x` from the global search's
    lowest minimum (`flowscan.scanner.fit`), with the model error where a model is an
    ensemble. Flows are evaluated in a float64 copy (`for_fit`); parameter bounds are
    the toy's ranges."""
    signal, background = (d.for_fit() if isinstance(d, Model) else d for d in (signal, background))
    nll = MixtureLikelihood(signal, background, x.to(config.device), config.n_sig, config.n_bkg)
    return nll, fit_likelihood(nll, FitSettings("gradient", seed=config.seed))


def landscape(
    nll: MixtureLikelihood, theta: np.ndarray, ranges: Sequence[tuple[float, float]], size: int
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    r"""NLL and its autograd gradient over (m_pole, gamma) on a `size` x `size` grid over
    `ranges` (GeV), tau fixed at `theta[2]` (its background term is computed once).
    Returns the axes, NLL `(size, size)` and gradient `(size, size, 2)` in 1/GeV, rows
    along gamma; the grid is one batch of `MixtureLikelihood.value_and_grad`."""
    a, b = (np.linspace(lo, hi, size) for lo, hi in ranges)
    mass, width = np.meshgrid(a, b)  # rows along gamma
    points = np.repeat(np.asarray(theta, dtype=np.float64)[None], size * size, axis=0)
    points[:, 0], points[:, 1] = mass.ravel(), width.ravel()
    floating = torch.tensor([True, True] + [False] * (len(theta) - 2))
    values, grads = nll.value_and_grad(torch.as_tensor(points), floating)
    values = values.cpu().numpy().reshape(size, size)
    grads = grads[:, :2].cpu().numpy().reshape(size, size, 2)
    return (a, b), values, grads


def spectrum(
    nll: MixtureLikelihood, theta: np.ndarray, grid: Tensor
) -> tuple[np.ndarray, np.ndarray]:
    r"""Expected events per GeV, total and background, on masses `grid` `(G, 1)` GeV at
    the fitted `theta` of `nll`."""
    d, n = len(nll.signal.theta_vars), len(nll.x)
    t = torch.as_tensor(theta)
    with torch.no_grad():
        ps = nll.signal.log_prob(grid, t[:d]).exp().cpu().double()
        pb = nll.background.log_prob(grid, t[d:]).exp().cpu().double()
    bkg = n * (1 - nll.f_sig) * pb
    return (n * nll.f_sig * ps + bkg).numpy(), bkg.numpy()
