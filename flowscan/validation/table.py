r"""A model against a reference sample: every metric beside its noise floor, and the
held-out likelihood."""

from __future__ import annotations

__all__ = ["validation_table"]

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..flows import DensityModel
from ..samples import Sampler
from .metrics import compare


def validation_table(
    model: DensityModel,
    sample: Tensor,
    reference: Tensor,
    reference_2: Tensor,
    theta: Tensor,
    exact: Sampler | None = None,
    seed: int = 0,
    classifier: bool = True,
    weights: tuple[Tensor | None, Tensor | None] = (None, None),
) -> pd.DataFrame:
    r"""Every metric of `compare` for the model's `sample` `(M, F)` against
    `reference` `(N, F)`, with `reference_2` `(M, F)` against it as the noise floor; then
    the held-out mean log-likelihood of `reference` under the model (nats/event), with
    the exact density's as floor where `exact` has a `log_prob`, and then also the KL
    divergence estimate mean(log p_exact - log p_model) (null value 0), whose error is
    that of the paired difference. `theta` `(D,)` is where all were drawn (`(0,)` for an
    unconditional model). `weights`: the event weights of `reference` and
    `reference_2` where they are weighted (the means are then weighted means, their
    errors those of a ratio of sums)."""
    names = [v.name for v in model.observables]
    w_ref, w_ref2 = (None if w is None else w.double().cpu().numpy() for w in weights)
    table = compare(
        sample.double().cpu().numpy(),
        reference.numpy(),
        reference_2.numpy(),
        names,
        seed,
        classifier,
        (w_ref, w_ref2),
    )
    with torch.no_grad():
        lp = model.log_prob(reference.to(model.theta_range), theta if theta.numel() else None)
    lp = lp.double().cpu().numpy()

    def row(metric: str, v: np.ndarray, floor: np.ndarray | None = None) -> dict:
        mean, spread = _mean(v, w_ref)
        floor = (np.nan, np.nan) if floor is None else _mean(floor, w_ref)
        return dict(
            metric=metric,
            observable="all",
            value=mean,
            spread=spread,
            floor=floor[0],
            floor_spread=floor[1],
        )

    if hasattr(exact, "log_prob"):
        ex = exact.log_prob(reference, theta).numpy()
        rows = [
            row("mean_log_likelihood", lp, ex),
            row("kl_divergence", ex - lp, np.zeros_like(lp)),
        ]
    else:
        rows = [row("mean_log_likelihood", lp)]
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


def _mean(v: np.ndarray, w: np.ndarray | None) -> tuple[float, float]:
    r"""The (weighted) mean of `v` `(N,)` and its standard error: for weights, that of
    the ratio sum w v / sum w, sqrt(sum w^2 (v - mean)^2) / sum w."""
    if w is None:
        return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))
    mean = float(w @ v / w.sum())
    return mean, float(np.sqrt(w**2 @ (v - mean) ** 2) / w.sum())
