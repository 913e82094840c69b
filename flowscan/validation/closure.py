r"""Closure over theta: fits of pseudo-data drawn from a reference at known parameters,
with the models, and how far they land from the truth in units of their errors."""

from __future__ import annotations

__all__ = ["closure"]

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..exceptions import FitError
from ..samples import Sampler
from ..scanner import Density, MixtureLikelihood, ParameterSpace, minuit_scan, model_errors


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
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    r"""At each signal parameter point of `points` `(M, D)`, fits `datasets`
    pseudo-datasets of `n_sig` signal and `n_bkg` background events drawn from the
    `reference` samplers (signal at the point, background at `background_theta`) with
    the likelihood of `signal` and `background` (fixed fraction; Minuit from the truth,
    the background parameters floating, `model_errors` where a model is an ensemble).

    Returns a row per point and signal parameter: the point, `parameter`, `truth`,
    `bias` (mean of fit - truth) and `spread` (its standard deviation over datasets),
    `stat`, `model` and `total` (mean errors: HESSE, the model error, their quadrature
    sum), `pull_stat`, `pull_total` (mean of (fit - truth) / error), `valid` (fits
    with a minimum inside the box) and `datasets`. Dataset d at point m is drawn from
    seed `seed + 1000 m + d`, so any one can be redrawn.
    """
    points = torch.as_tensor(points, dtype=torch.float64).reshape(len(points), -1)
    names = [v.name for v in signal.theta_vars]
    b_theta = torch.as_tensor(background_theta, dtype=torch.float64)
    rows = []
    bar = tqdm(total=len(points) * datasets, desc="closure fits", disable=not progress)
    for m, theta in enumerate(points):
        fits = []
        for d in range(datasets):
            s = seed + 1000 * m + d
            x = torch.cat(
                [
                    reference[0].sample(n_sig, theta, seed=2 * s).double(),
                    reference[1]
                    .sample(n_bkg, b_theta if len(b_theta) else None, seed=2 * s + 1)
                    .double(),
                ]
            )
            nll = MixtureLikelihood(signal, background, x, n_sig, n_bkg, check_models=False)
            space = ParameterSpace(nll.theta_vars, [*theta.tolist(), *b_theta.tolist()])
            try:
                fits.append(model_errors(nll, minuit_scan(nll, space), space))
            except FitError:
                pass
            bar.update()
        rows += _rows(names, theta.numpy(), fits, datasets)
    bar.close()
    return pd.DataFrame(rows)


def _rows(names: list[str], truth: np.ndarray, fits: list, datasets: int) -> list[dict]:
    valid = [f for f in fits if f.valid]
    d = len(names)
    nan = np.full((max(len(valid), 1), d), np.nan)
    fit = np.array([f.theta[:d] for f in valid]) if valid else nan
    stat = np.array([f.errors[:d] for f in valid]) if valid else nan
    model = (
        np.array([f.errors_model[:d] for f in valid])
        if valid and valid[0].errors_model is not None
        else np.zeros_like(stat)
    )
    total = np.hypot(stat, model)
    out = []
    for j, name in enumerate(names):
        diff = fit[:, j] - truth[j]
        out.append(
            dict(zip(names, truth.tolist(), strict=True))
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
            }
        )
    return out
