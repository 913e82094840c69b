r"""Pulls, constraints and impacts of the nuisance parameters of a fit, ranked as CMS
Combine and pyhf rank them."""

from __future__ import annotations

__all__ = ["pulls_and_impacts"]

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..exceptions import FitError, InputError
from ..scanner import MixtureLikelihood, ParameterSpace, ScanResult, minuit_scan


def pulls_and_impacts(
    nll: MixtureLikelihood,
    space: ParameterSpace,
    fit: ScanResult,
    pois: Sequence[str] | None = None,
) -> pd.DataFrame:
    r"""Per constrained parameter of `nll` that floats in `space`, from the fit `fit`:

    - `pull` = (nu_hat - nu_0) / sigma, nu_0 the global observable and sigma the
      constraint's width (`Constraint.pull`);
    - `constraint` = sigma_hat / sigma, the post-fit error (HESSE) over the pre-fit
      width: below 1 where the data measure the nuisance too;
    - per parameter of interest p (default: the floating parameters without a
      constraint), `<p>_up` and `<p>_down`, the shift of p_hat when the nuisance is
      fixed at nu_hat + sigma_hat and at nu_hat - sigma_hat and the rest refitted
      (Minuit from the fit): its impact.

    Rows are ranked by the largest |impact| on the first parameter of interest. Where the
    fit has a model error (an ensemble, `model_errors`), a last row `model` carries it as
    a symmetric impact (+-errors_model), so that the density models rank beside the
    nuisances.

    Raises `InputError` for a failed fit or unknown parameters of interest.
    """
    if fit.status == "failed":
        raise InputError("pulls and impacts need a fit that did not fail")
    names = nll.names
    constrained = [c for c in nll.constraints if space.floating[names.index(c.name)]]
    pois = [
        n for n in space.floating_names if n not in {c.name for c in nll.constraints}
    ] if pois is None else list(pois)  # fmt: skip
    unknown = sorted(set(pois) - set(space.floating_names))
    if unknown:
        raise InputError(f"parameters of interest {unknown} do not float; floating: "
                         f"{space.floating_names}")  # fmt: skip
    theta = np.asarray(fit.theta, dtype=np.float64)
    index = [names.index(p) for p in pois]
    rows = []
    for c in constrained:
        k = names.index(c.name)
        value, error = float(theta[k]), float(fit.errors[k])
        row = {"nuisance": c.name, "kind": c.kind, "value": value, "error": error,
               "pull": c.pull(value), "constraint": error / c.sigma(value)}  # fmt: skip
        low, high = space.bounds[k]
        for side, shifted in (("up", value + error), ("down", value - error)):
            if not np.isfinite(shifted):  # no usable error: no impact to measure
                row |= {f"{p}_{side}": np.nan for p in pois}
                continue
            start = theta.copy()
            start[k] = float(np.clip(shifted, low, high))
            refit = ParameterSpace(space.theta_vars, start, [*space.fixed_names, c.name])
            try:
                result = minuit_scan(nll, refit)
                shift = result.theta[index] - theta[index]
            except FitError:
                shift = np.full(len(index), np.nan)
            row |= {f"{p}_{side}": float(d) for p, d in zip(pois, shift, strict=True)}
        rows.append(row)
    table = pd.DataFrame(rows)
    if rows and pois:
        size = table[[f"{pois[0]}_up", f"{pois[0]}_down"]].abs().max(axis=1)
        table = table.iloc[np.argsort(-size.to_numpy(), kind="stable")].reset_index(drop=True)
    if fit.errors_model is not None:
        model = {"nuisance": "model", "kind": "ensemble"}
        for p, k in zip(pois, index, strict=True):
            model |= {
                f"{p}_up": float(fit.errors_model[k]),
                f"{p}_down": -float(fit.errors_model[k]),
            }
        table = pd.concat([table, pd.DataFrame([model])], ignore_index=True)
    return table
