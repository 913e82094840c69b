r"""`flowscan validate`: a saved density model against a reference sample, every metric
read against its noise floor, with the plots to look at."""

from __future__ import annotations

__all__ = ["REFERENCES", "run_validate", "validation_table"]

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .exceptions import InputError
from .flows import DensityModel, compare
from .runinfo import check_memory, run_folder, versions, write_json
from .scanner import Sampler, toy_seed
from .toys import BreitWigner, Exponential, lhco, read_events
from .variables import check_theta

REFERENCES = ["breit-wigner", "lhco"]


def _generator(name: str, model: DensityModel) -> Sampler:
    names = [p.name for p in model.theta_vars]
    if name == "breit-wigner":
        for cls in (BreitWigner, Exponential):
            if names == [p.name for p in cls.theta_vars]:
                return cls()
        raise InputError(
            "the breit-wigner reference draws the toy's signal (m_pole, gamma) or background "
            f"(tau); this model is conditional on {names}"
        )
    observables = [v.name for v in lhco.OBSERVABLES]
    if [v.name for v in model.observables] != observables or names not in (
        [],
        [v.name for v in lhco.MASSES],
    ):
        raise InputError(
            f"the lhco reference makes {observables} for QCD (no parameters) or the signal "
            f"at {[v.name for v in lhco.MASSES]}; this model has "
            f"{[v.name for v in model.observables]} conditional on {names}"
        )
    return lhco.Generator()


def _file_points(
    path: str | os.PathLike, model: DensityModel, where: str | None
) -> tuple[Tensor, Tensor]:
    r"""The file's events `(N, F)` and their parameters `(N, D)`."""
    obs, pars = [v.name for v in model.observables], [p.name for p in model.theta_vars]
    table = read_events(path, obs + pars, where)
    return table[:, : len(obs)], table[:, len(obs) :]


def _theta_points(
    thetas: Sequence[Mapping[str, float]], model: DensityModel, file_theta: Tensor | None
) -> list[Tensor]:
    names = [p.name for p in model.theta_vars]
    if not model.conditional:
        if any(thetas):
            raise InputError("this model is unconditional: leave out --theta")
        return [torch.empty(0, dtype=torch.float64)]
    if not thetas:
        if file_theta is None:
            raise InputError(f"give the parameters to validate at: --theta {names[0]}=...,...")
        points = torch.unique(file_theta, dim=0)
        if len(points) > 10:
            raise InputError(
                f"the reference file has {len(points)} parameter points; choose some with --theta"
            )
        return list(points)
    points = []
    for theta in thetas:
        if sorted(theta) != sorted(names):
            raise InputError(f"--theta must give exactly {names}, got {sorted(theta)}")
        points.append(torch.tensor([theta[n] for n in names], dtype=torch.float64))
    return points


def _label(model: DensityModel, theta: Tensor) -> str:
    return ", ".join(
        f"{p.name} = {t:g} {p.unit}".strip()
        for p, t in zip(model.theta_vars, theta.tolist(), strict=True)
    )


def validation_table(
    model: DensityModel,
    sample: Tensor,
    reference: Tensor,
    reference_2: Tensor,
    theta: Tensor,
    exact: Sampler | None = None,
    seed: int = 0,
    classifier: bool = True,
) -> pd.DataFrame:
    r"""Every metric of `flowscan.flows.compare` for the model's `sample` `(M, F)` against
    `reference` `(N, F)`, with `reference_2` `(M, F)` against it as the noise floor; then
    the held-out mean log-likelihood of `reference` under the model (nats/event), with
    the exact density's as floor where `exact` has a `log_prob`, and then also the KL
    divergence estimate mean(log p_exact - log p_model) (null value 0), whose error is
    that of the paired difference. `theta` `(D,)` is where all were drawn (`(0,)` for an
    unconditional model)."""
    names = [v.name for v in model.observables]
    table = compare(
        sample.double().cpu().numpy(),
        reference.numpy(),
        reference_2.numpy(),
        names,
        seed,
        classifier,
    )
    with torch.no_grad():
        lp = model.log_prob(reference.to(model.theta_range), theta if theta.numel() else None)
    lp = lp.double().cpu().numpy()

    def row(metric: str, v: np.ndarray, floor: np.ndarray | None = None) -> dict:
        mean, spread = v.mean(), v.std(ddof=1) / np.sqrt(len(v))
        floor = (
            (np.nan, np.nan)
            if floor is None
            else (floor.mean(), floor.std(ddof=1) / np.sqrt(len(floor)))
        )
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
        rows = [row("mean_log_likelihood", lp, ex), row("kl_divergence", ex - lp, np.zeros(2))]
    else:
        rows = [row("mean_log_likelihood", lp)]
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


def run_validate(
    model_path: str | os.PathLike,
    reference: str,
    out: str | os.PathLike | None = None,
    *,
    thetas: Sequence[Mapping[str, float]] = (),
    events: int = 20_000,
    where: str | None = None,
    seed: int = 0,
    classifier: bool = True,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    r"""Validates a saved model against a reference at each parameter point and writes to
    `out` (default `runs/validate-<timestamp>/`): `validation.csv` and `validation.json`
    (every metric of `flowscan.flows.compare` and the held-out mean log-likelihood, each
    with its noise floor; settings, seed, versions), and per point `marginals_<k>.png`
    and, for several observables, `pairs_<k>.png`; for several points of a conditional
    model `theta_dependence.png`.

    Arguments:
        model_path: A file written by `DensityModel.save`.
        reference: `"breit-wigner"` (the toy's exact signal or background, chosen by the
            model's parameters), `"lhco"` (the LHCO-style generator), or a table file
            (CSV, Parquet, HDF5) with the observable and parameter columns.
        thetas: Parameter points, e.g. `[{"m_pole": 455, "gamma": 33}]`, held out of
            training or not; for a file, default every point in it (at most 10).
        events: Reference events per point; the model draws as many, and a second
            reference sample as many again sets the noise floor (a file is split in two
            halves instead).
        where: Row selection of a reference file (`pandas.DataFrame.query`).
        seed: Seed of every draw, sub-sample and classifier.
        classifier: Run the classifier two-sample test (the slowest metric).

    Returns:
        The table, one row per point, metric and observable.
    """
    from .plots import plot_marginals
    from .validation_plots import plot_pairs, plot_theta_dependence

    check_memory(events, 400 * len(lhco.OBSERVABLES), "--events")
    model = DensityModel.load(model_path).eval()
    generator = _generator(reference, model) if reference in REFERENCES else None
    file_x, file_theta = (None, None) if generator else _file_points(reference, model, where)
    points = _theta_points(thetas, model, file_theta)
    for theta in points:
        if theta.numel():
            check_theta(theta, model.theta_vars)
    out = run_folder(out, "validate")

    tables, references, samples, labels = [], [], [], []
    for k, theta in enumerate(points):
        t = theta if theta.numel() else None
        if generator is not None:
            ref = generator.sample(events, t, toy_seed(seed, 3 * k))
            ref2 = generator.sample(events, t, toy_seed(seed, 3 * k + 1))
        else:
            rows = torch.ones(len(file_x), dtype=bool)
            if t is not None:
                rows = torch.isclose(file_theta, theta, rtol=1e-9).all(dim=1)
            x = file_x[rows][
                torch.randperm(int(rows.sum()), generator=torch.Generator().manual_seed(seed))
            ]
            if len(x) < 100:
                raise InputError(
                    f"{reference}: only {len(x)} events at {_label(model, theta)}; need 100"
                )
            x = x[: 2 * events]
            ref, ref2 = x[: len(x) // 2], x[len(x) // 2 :]
        label = _label(model, theta) if t is not None else "unconditional"
        echo(f"[{k + 1}/{len(points)}] {label}: {len(ref)} + {len(ref2)} reference events")
        sample = model.sample(len(ref2), t, seed=toy_seed(seed, 3 * k + 2)).double().cpu()
        table = validation_table(model, sample, ref, ref2, theta, generator, seed, classifier)
        for p, value in zip(model.theta_vars, theta.tolist(), strict=True):
            table.insert(table.columns.get_loc("metric"), p.name, value)
        tables.append(table)
        references.append(ref.numpy())
        samples.append(sample.numpy())
        labels.append(label)
        plot_marginals(
            ref.numpy(),
            sample.numpy(),
            model.observables,
            out / f"marginals_{k}.png",
            label,
            seed=seed,
        )
        if len(model.observables) > 1:
            plot_pairs(
                ref.numpy(), sample.numpy(), model.observables, out / f"pairs_{k}.png", label
            )
        echo(_summary(table))
    if len(points) > 1:
        plot_theta_dependence(
            references, samples, labels, model.observables, out / "theta_dependence.png"
        )
    result = pd.concat(tables, ignore_index=True)
    result.to_csv(out / "validation.csv", index=False)
    config = {
        "model": str(model_path),
        "model_config": model.config,
        "reference": str(reference),
        "thetas": [
            dict(zip([p.name for p in model.theta_vars], p.tolist(), strict=True)) for p in points
        ],
        "events": events,
        "where": where,
        "classifier": classifier,
    }
    write_json(
        out / "validation.json",
        {
            "config": config,
            "seed": seed,
            "versions": versions(),
            "metrics": result.to_dict("records"),
        },
    )
    echo(f"wrote {out}/validation.csv, validation.json and plots")
    return result


def _summary(table: pd.DataFrame) -> str:
    r"""The combined metrics and the per-observable KS p-values, value against floor."""
    keep = (table.observable == "all") | (table.metric == "ks_pvalue")
    lines = [f"  {'metric':<22} {'observable':<12} {'model':>20} {'noise floor':>20}"]
    for r in table[keep].itertuples():
        v = f"{r.value:.4g}" + (f" +- {r.spread:.2g}" if np.isfinite(r.spread) else "")
        f = f"{r.floor:.4g}" + (f" +- {r.floor_spread:.2g}" if np.isfinite(r.floor_spread) else "")
        lines.append(f"  {r.metric:<22} {r.observable:<12} {v:>20} {f:>20}")
    return "\n".join(lines)
