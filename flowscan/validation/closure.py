r"""Closure over theta: fits of pseudo-data drawn from a reference at known parameters,
with the models, and how far they land from the truth in units of their errors."""

from __future__ import annotations

__all__ = ["closure", "interpolation_error", "leave_out", "model_bias"]

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from dask.distributed import Client
from torch import Tensor
from tqdm.auto import tqdm

from ..constraints import declared
from ..exceptions import InputError
from ..flows import DensityEnsemble, DensityModel, train, train_ensemble
from ..samples import Sampler
from ..scanner import Density, FitSettings, MixtureLikelihood, fit


def closure(
    signal: Density,
    background: Density,
    reference: tuple[Sampler, Sampler],
    points: Tensor,
    background_theta: Sequence[float] = (),
    *,
    n_sig: int = 1_000,
    n_bkg: int = 10_000,
    datasets: int = 5,
    settings: FitSettings | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    r"""At each signal parameter point of `points` `(M, D)`, fits `datasets`
    pseudo-datasets of `n_sig` signal and `n_bkg` background events drawn from the
    `reference` samplers (signal at the point, background at `background_theta`) with
    the likelihood of `signal` and `background` (fixed fraction, the background
    parameters floating) by `fit` with `settings` (default `FitSettings()`: Minuit from
    the global search, from the centre of the box as a user would fit; the model error
    where a model is an ensemble). A fit that fails or is not valid counts in `datasets`
    but not in `valid`.
    Nuisances the models were trained on (`nuisances`) are constrained as in every fit
    (`flowscan.constraints.declared`), their global observables at the nominal values:
    points at a nominal nuisance value close; others show the constraint's pull.

    Returns a row per point and parameter (the signal's, then the background's own,
    whose truth is `background_theta`): the point, `parameter`, `truth`,
    `bias` (mean of fit - truth) and `spread` (its standard deviation over datasets),
    `stat`, `model` and `total` (mean errors: HESSE, the model error, their quadrature
    sum), `pull_stat`, `pull_total` (mean of (fit - truth) / error), `valid` (fits
    with a minimum inside the box), `datasets` and `warnings` (the fits' warnings, each
    once: a point in a gap of a model's training grid). Dataset d at point m is drawn
    from `numpy.random.SeedSequence((seed, m, d))` (its signal and background events from
    its first and second state), so any one can be redrawn and none shares a seed with a
    training set drawn from small seeds.
    """
    points = torch.as_tensor(points, dtype=torch.float64).reshape(len(points), -1)
    names = [v.name for v in signal.theta_vars]
    b_theta = torch.as_tensor(background_theta, dtype=torch.float64)
    # the background's own parameters follow the signal's, as in the likelihood
    own = [k for k, v in enumerate(background.theta_vars) if v.name not in names]
    fitted = names + [background.theta_vars[k].name for k in own]
    constraints = declared(signal, background)
    rows = []
    bar = tqdm(total=len(points) * datasets, desc="closure fits", disable=not progress)
    for m, theta in enumerate(points):
        fits = []
        for d in range(datasets):
            s_sig, s_bkg = (int(s) for s in np.random.SeedSequence((seed, m, d)).generate_state(2))
            events = reference[1].sample(n_bkg, b_theta if len(b_theta) else None, seed=s_bkg)
            x = torch.cat([reference[0].sample(n_sig, theta, seed=s_sig).double(), events.double()])
            nll = MixtureLikelihood(
                signal, background, x, n_sig, n_bkg, constraints=constraints, check_models=False
            )
            fits.append(fit(nll, settings))
            bar.update()
        truth = np.concatenate([theta.numpy(), b_theta.numpy()[own]])
        rows += _rows(names, fitted, truth, fits, datasets)
    bar.close()
    return pd.DataFrame(rows)


def _rows(
    point: list[str], names: list[str], truth: np.ndarray, fits: list, datasets: int
) -> list[dict]:
    r"""A row per parameter of `names` (the first D of the fits' parameters, truth
    `(D,)`); the columns `point` (the signal's) locate it."""
    valid = [f for f in fits if f.valid]
    d = len(names)
    nan = np.full((max(len(valid), 1), d), np.nan)
    fit = np.array([f.theta[:d] for f in valid]) if valid else nan
    stat = np.array([f.errors[:d] for f in valid]) if valid else nan
    model = (
        np.array([f.errors_model[:d] for f in valid])
        if valid and valid[0].errors_model is not None
        else np.where(np.isnan(stat), np.nan, 0.0)  # a single model has none
    )
    total = np.hypot(stat, model)
    out = []
    for j, name in enumerate(names):
        diff = fit[:, j] - truth[j]
        out.append(
            dict(zip(point, truth[: len(point)].tolist(), strict=True))
            | {
                "parameter": name,
                "truth": truth[j],
                "bias": diff.mean(),
                "spread": diff.std(ddof=1) if len(diff) > 1 else np.nan,
                "stat": stat[:, j].mean(),
                "model": model[:, j].mean(),
                "total": total[:, j].mean(),
                "pull_stat": (diff / stat[:, j]).mean(),
                "pull_total": (diff / total[:, j]).mean(),
                "valid": len(valid),
                "datasets": datasets,
                "warnings": "; ".join(dict.fromkeys(w for f in fits for w in f.warnings)),
            }
        )
    return out


def leave_out(
    model: DensityModel | DensityEnsemble,
    x: Tensor,
    theta: Tensor,
    name: str,
    value: float,
    *,
    client: Client | None = None,
    progress: bool = True,
    weights: Tensor | None = None,
    **options: float,
) -> DensityModel | DensityEnsemble:
    r"""`model` retrained on its training set `x` `(N, F)`, `theta` `(N, D)` without the
    events at the grid value `name` = `value`: the same architecture, role, trained
    parameter ranges and, for an ensemble, members and training settings
    (`DensityEnsemble.training`; `options`, e.g. `epochs=10`, override them; a single
    model trains with `train`'s defaults). Fits at the left-out value then measure how
    well the model interpolates across a gap of the grid (`closure`,
    `interpolation_error`); its `training_points` lack the value, so fits there get the
    training-grid warning (`MixtureLikelihood.grid_gaps`).

    Raises `InputError` if `name` is not a parameter of `model` or `value` is not one of
    its training grid values (a model trained on continuously drawn theta has none).
    `weights` `(N,)`: the training events' weights, where they are weighted.
    """
    names = [p.name for p in model.theta_vars]
    if name not in names:
        raise InputError(f"--leave-out {name}: the model's parameters are {names}")
    axis = names.index(name)
    points = model.training_points
    if points is None:
        raise InputError(
            f"the model was trained on continuously drawn {names}, not on a grid: there is "
            "no grid value to leave out"
        )
    values = sorted(set(points[:, axis].tolist()))
    if value not in values:
        raise InputError(f"--leave-out {name}={value:g}: the training grid has {name} in {values}")
    theta = torch.as_tensor(theta, dtype=torch.float64)
    keep = theta[:, axis] != value
    if keep.all() or not keep.any():
        raise InputError(
            f"the training set has {'no' if keep.all() else 'only'} events at {name}={value:g}"
        )
    x, theta = torch.as_tensor(x)[keep], theta[keep]
    weights = None if weights is None else torch.as_tensor(weights)[keep]
    if isinstance(model, DensityEnsemble):
        settings = {
            k: model.training[k]
            for k in ("members", "seed", "val_fraction", "epochs", "batch_size", "lr", "patience")
            if k in model.training
        }
        return train_ensemble(
            model.observables, model.theta_vars, x, theta, architecture=model.architecture,
            role=model.role, nuisances=model.nuisances, client=client, progress=progress,
            weights=weights, **(settings | options),
        )  # fmt: skip
    seed = model.config["seed"]
    retrained = DensityModel(
        model.observables, model.theta_vars, model.architecture, role=model.role, seed=seed,
        nuisances=model.nuisances,
    )  # fmt: skip
    train(retrained, x, theta, seed=seed, progress=progress, weights=weights, **options)
    return retrained


def interpolation_error(table: pd.DataFrame) -> pd.Series:
    r"""Per parameter, the error a model's interpolation adds, from a `closure` table
    at points of a left-out grid value (`leave_out`): the rms over points of the mean
    fit - truth, less in quadrature what the datasets' own spread puts into a mean of
    that many fits, sqrt(max(0, mean(bias^2) - mean(spread^2 / valid))). Zero where
    the model closes within its noise.

    Example:
        >>> t = pd.DataFrame({"parameter": ["m", "m"], "bias": [3.0, -4.0],
        ...                   "spread": [2.0, 2.0], "valid": [4, 4]})
        >>> float(interpolation_error(t)["m"])
        3.391164991562634
    """
    return _excess(table, 0.0).rename("interpolation")


def model_bias(table: pd.DataFrame) -> pd.Series:
    r"""Per parameter, the bias an ensemble's members share, from a `closure` table at
    trained points and the analysis's yields: the rms over points of the mean fit -
    truth, less in quadrature the datasets' noise in a mean of that many fits and the
    model error, which covers the ensemble's own draw of its training sample:
    sqrt(max(0, mean(bias^2 - spread^2 / valid - model^2))). Zero where the model error
    covers the closure. It is noisy: each point's bias^2 scatters by about
    sqrt(2) (model^2 + spread^2 / valid), so telling a bias of half the model error from
    none takes hundreds of points, or more datasets per point.

    Example:
        >>> t = pd.DataFrame({"parameter": ["m", "m"], "bias": [3.0, -4.0],
        ...                   "spread": [2.0, 2.0], "valid": [4, 4], "model": [1.0, 1.0]})
        >>> round(float(model_bias(t)["m"]), 6)  # sqrt((9 + 16) / 2 - 1 - 1)
        3.24037
    """
    return _excess(table, table["model"].fillna(0.0) ** 2).rename("model_bias")


def _excess(table: pd.DataFrame, covered: pd.Series | float) -> pd.Series:
    r"""sqrt(max(0, mean over points of bias^2 - spread^2 / valid - `covered`)), per
    parameter."""
    noise = table["spread"].fillna(0.0) ** 2 / table["valid"].clip(lower=1)
    excess = (table["bias"] ** 2 - noise - covered).groupby(table["parameter"], sort=False)
    return np.sqrt(excess.mean().clip(lower=0.0))
