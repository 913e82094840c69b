r"""`flowscan validate`: a saved density model against a reference sample, every metric
read against its noise floor, with the plots to look at."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .. import plots
from ..exceptions import InputError
from ..flows import DensityEnsemble, DensityModel, load_model
from ..io import check_memory, run_folder, write_record
from ..samples import GENERATORS, lhco, samplers
from ..stats import toy_seed
from ..validation import validation_table
from ..variables import check_theta
from ..weights import check_weights, effective_events
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    validate = o.command(
        commands,
        "validate",
        help="is a model good enough? every two-sample metric against its noise floor",
        description="Compares a saved model's samples with a reference sample at each "
        "parameter point: KS per observable, sliced Wasserstein, correlation distance, HPDI "
        "widths, a classifier AUC and the held-out log-likelihood, each beside its value for "
        "two reference samples (the noise floor). Writes validation.csv, validation.json, "
        "marginals_<k>.png, pairs_<k>.png and theta_dependence.png.",
    )
    validate.add_argument("model", help="model file (model.pt)")
    validate.add_argument(
        "--sampler",
        "--reference",
        dest="sampler",
        required=True,
        help="what draws the reference: breit-wigner (the toy's exact densities), lhco (the "
        "LHCO-style generator) or a file (.csv, .parquet, .h5, .root) with the observable "
        "and parameter columns (--reference is an alias)",
    )
    validate.add_argument(
        "--theta",
        action="append",
        default=[],
        help="a parameter point, e.g. m_pole=455,gamma=33; repeat for several (default for "
        "a file: every point in it)",
    )
    validate.add_argument(
        "--events",
        type=o.positive_int,
        default=20_000,
        help="reference events per point (default 20000)",
    )
    validate.add_argument("--where", help='row selection of a reference file, e.g. "label == 1"')
    validate.add_argument(
        "--weight",
        help="event weights of a reference file: a column or an expression of columns, e.g. "
        '"genWeight * sf" (the metrics are then weighted; HPDI widths need weights >= 0)',
    )
    validate.add_argument(
        "--no-classifier", action="store_true", help="skip the classifier test (the slowest)"
    )
    validate.set_defaults(func=run)


def _file_points(
    args: argparse.Namespace, model: DensityModel | DensityEnsemble
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""The reference file's events `(N, F)`, their parameters `(N, D)` and weights
    `(N,)` (`None` without `--weight`)."""
    obs, pars = [v.name for v in model.observables], [p.name for p in model.theta_vars]
    table = o.read_data(args.sampler, obs + pars, args.where)
    return table[:, : len(obs)], table[:, len(obs) :], o.read_weights(args, [args.sampler])


def _theta_points(
    thetas: Sequence[Mapping[str, float]],
    model: DensityModel | DensityEnsemble,
    file_theta: Tensor | None,
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


def _label(model: DensityModel | DensityEnsemble, theta: Tensor) -> str:
    return ", ".join(
        f"{p.name} = {t:g} {p.unit}".strip()
        for p, t in zip(model.theta_vars, theta.tolist(), strict=True)
    )


def run(args: argparse.Namespace) -> int:
    r"""Validates a saved model against a reference at each parameter point and writes to
    `--out`: `validation.csv` and `validation.json` (every metric of
    `flowscan.validation.compare` and the held-out mean log-likelihood, each with its
    noise floor; settings, seed, versions), and per point `marginals_<k>.png` and, for
    several observables, `pairs_<k>.png`; for several points of a conditional model
    `theta_dependence.png`.

    The reference is drawn by a sampler, `--events` per point and as many again for the
    noise floor, or read from a file, split in two halves; `--theta` points default to
    every point in the file (at most 10).
    """
    model_path, reference, events, where = args.model, args.sampler, args.events, args.where
    seed, classifier = args.seed, not args.no_classifier
    thetas = [o.parse_start(t) for t in args.theta]
    check_memory(events, 400 * len(lhco.OBSERVABLES), "--events")
    model = load_model(model_path).eval()
    generator = samplers(reference).like(model) if reference in GENERATORS else None
    if generator is not None and args.weight is not None:
        raise InputError(f"--weight weights the events of a reference file, not of {reference}")
    file_x, file_theta, file_w = (None,) * 3 if generator else _file_points(args, model)
    points = _theta_points(thetas, model, file_theta)
    for theta in points:
        if theta.numel():
            check_theta(theta, model.theta_vars)
    out = run_folder(args.out, "validate")

    tables, references, reference_weights, samples, labels = [], [], [], [], []
    for k, theta in enumerate(points):
        t = theta if theta.numel() else None
        w = w2 = None
        if generator is not None:
            ref = generator.sample(events, t, toy_seed(seed, 3 * k))
            ref2 = generator.sample(events, t, toy_seed(seed, 3 * k + 1))
        else:
            rows = torch.ones(len(file_x), dtype=bool)
            if t is not None:
                rows = torch.isclose(file_theta, theta, rtol=1e-9).all(dim=1)
            order = torch.randperm(int(rows.sum()), generator=torch.Generator().manual_seed(seed))
            x = file_x[rows][order][: 2 * events]
            if len(x) < 100:
                raise InputError(
                    f"{reference}: only {len(x)} events at {_label(model, theta)}; need 100"
                )
            ref, ref2 = x[: len(x) // 2], x[len(x) // 2 :]
            if file_w is not None:
                weights = file_w[rows][order][: 2 * events]
                w, w2 = (check_weights(v, len(v), f"{reference}: a half's weights")
                         for v in (weights[: len(x) // 2], weights[len(x) // 2 :]))  # fmt: skip
        label = _label(model, theta) if t is not None else "unconditional"
        print(f"[{k + 1}/{len(points)}] {label}: {o.event_count(len(ref), w)} + "
              f"{o.event_count(len(ref2), w2)} of the reference")  # fmt: skip
        # as many model events as the floor's sample is worth, so both rows share their noise
        size = len(ref2) if w2 is None else max(2, round(effective_events(w2)))
        sample = model.sample(size, t, seed=toy_seed(seed, 3 * k + 2)).double().cpu()
        table = validation_table(
            model, sample, ref, ref2, theta, generator, seed, classifier, (w, w2)
        )
        for p, value in zip(model.theta_vars, theta.tolist(), strict=True):
            table.insert(table.columns.get_loc("metric"), p.name, value)
        tables.append(table)
        references.append(ref.numpy())
        reference_weights.append(None if w is None else w.numpy())
        samples.append(sample.numpy())
        labels.append(label)
        plots.plot_marginals(
            ref.numpy(),
            sample.numpy(),
            model.observables,
            out / f"marginals_{k}.png",
            label,
            seed=seed,
            weights=None if w is None else w.numpy(),
        )
        if len(model.observables) > 1:
            plots.plot_pairs(
                ref.numpy(), sample.numpy(), model.observables, out / f"pairs_{k}.png", label,
                weights=None if w is None else w.numpy(),
            )  # fmt: skip
        print(_summary(table))
    if len(points) > 1:
        plots.plot_theta_dependence(
            references, samples, labels, model.observables, out / "theta_dependence.png",
            weights=reference_weights,
        )  # fmt: skip
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
        "weight": args.weight,
        "classifier": classifier,
        "seed": seed,
    }
    write_record(out / "validation.json", config, metrics=result.to_dict("records"))
    print(f"wrote {out}/validation.csv, validation.json and plots")
    return 0


def _summary(table: pd.DataFrame) -> str:
    r"""The combined metrics and the per-observable KS p-values, value against floor."""
    keep = (table.observable == "all") | (table.metric == "ks_pvalue")
    lines = [f"  {'metric':<22} {'observable':<12} {'model':>20} {'noise floor':>20}"]
    for r in table[keep].itertuples():
        v = f"{r.value:.4g}" + (f" +- {r.spread:.2g}" if np.isfinite(r.spread) else "")
        f = f"{r.floor:.4g}" + (f" +- {r.floor_spread:.2g}" if np.isfinite(r.floor_spread) else "")
        lines.append(f"  {r.metric:<22} {r.observable:<12} {v:>20} {f:>20}")
    return "\n".join(lines)
