r"""`flowscan train`: a density model from a data file or a built-in generator."""

from __future__ import annotations

__all__ = ["GENERATORS", "parse_variables", "run_train"]

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .exceptions import FitError, InputError
from .flows import DensityModel, torch_device, train
from .runinfo import check_memory, file_names, run_folder, versions, write_json
from .toys import lhco, read_events
from .variables import Variable

GENERATORS = ["lhco-signal", "lhco-qcd"]
_KNOWN = {v.name: v for v in [*lhco.OBSERVABLES, *lhco.MASSES]}


def parse_variables(specs: Sequence[str], context: bool = False) -> list[Variable]:
    r"""Variables from `name` or `name:low:high` items (either bound may be empty).

    A bare name known to flowscan (the LHCO observables and masses) gets its unit and, for
    an observable, its bounds; an unknown one is unbounded. Context parameters take their
    range from the training data unless both bounds are given.
    """
    out = []
    for spec in specs:
        name, *bounds = spec.split(":")
        known = _KNOWN.get(name, Variable(name))
        if not bounds:
            out.append(Variable(name, known.unit) if context else known)
            continue
        if len(bounds) != 2:
            raise InputError(f"{spec!r}: write name or name:low:high (a bound may be empty)")
        try:
            low, high = (float(b) if b else None for b in bounds)
        except ValueError:
            raise InputError(f"{spec!r}: bounds must be numbers") from None
        out.append(Variable(name, known.unit, low, high))
    return out


def _generated(kind: str, events: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Observables `(N, 5)` and masses `(N, 3)` (`None` for QCD) from the LHCO generator;
    `events` per training-grid point for the signal."""
    if kind == "lhco-qcd":
        names = [v.name for v in lhco.OBSERVABLES]
        return lhco.features(lhco.generate(events, seed=seed))[names].to_numpy(), None
    return lhco.training_set(events, seed=seed)


def run_train(
    out: str | os.PathLike | None = None,
    *,
    data: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    where: str | None = None,
    generate: str | None = None,
    events: int = 10_000,
    observables: Sequence[str] | None = None,
    context: Sequence[str] = (),
    role: str | None = None,
    flow: str = "mog",
    transforms: int = 4,
    hidden_features: Sequence[int] = (64, 64),
    bins: int = 8,
    components: int = 20,
    preprocessing: str | None = None,
    epochs: int = 20,
    batch_size: int = 1024,
    lr: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> DensityModel:
    r"""Trains a `DensityModel` and writes to `out` (default `runs/train-<timestamp>/`):
    `model.pt`, `train.json` (settings, seed, versions, per-epoch losses), `training.png`
    (loss curves) and `marginals.png` (flow samples against the training data, one per
    training event's theta, with ratio panels).

    Arguments:
        data: CSV, Parquet or HDF5 table with the observable and context columns (an
            LHCO R&D-schema file offers the LHCO observables), or several read as one
            (e.g. the files of `flowscan simulate --grid`).
        where: Selection of `data` rows (`pandas.DataFrame.query`), e.g. `"label == 0"`.
        generate: Instead of `data`, one of `GENERATORS`: `lhco-signal` (seed 002's
            training grid, `events` per mass point) or `lhco-qcd` (`events` events).
        observables: `name` or `name:low:high` items (default: the LHCO observables).
        context: Conditioning parameters, same syntax; `m_zprime,m_x,m_y` for
            `lhco-signal` by default.
        role: `"signal"` or `"background"`, kept in the model file (`DensityModel.role`);
            by default from `generate` (`lhco-signal`, `lhco-qcd`), none for `data`.
        flow, transforms, hidden_features, bins, components, preprocessing: The
            model (see `DensityModel`).
        epochs, batch_size, lr: Training (see `train`).
    """
    from . import plots

    if (data is None) == (generate is None):
        raise InputError("give either a data file or a generator to train on")
    if generate is not None and generate not in GENERATORS:
        raise InputError(f"unknown generator {generate!r}; choose one of {GENERATORS}")
    if generate is not None:
        implied = "signal" if generate == "lhco-signal" else "background"
        if role not in (None, implied):
            raise InputError(f"--generate {generate} trains the {implied} model, not --role {role}")
        role = implied
    obs = parse_variables(observables or [v.name for v in lhco.OBSERVABLES])
    if generate == "lhco-signal" and not context:
        context = [v.name for v in lhco.MASSES]
    ctx = parse_variables(context, context=True)
    if generate is not None:
        if [v.name for v in obs] != [v.name for v in lhco.OBSERVABLES]:
            raise InputError(f"the LHCO generator makes {[v.name for v in lhco.OBSERVABLES]}")
        if generate == "lhco-qcd" and ctx:
            raise InputError("QCD background has no parameters: leave out --context")
        points = len(lhco.training_grid()) if generate == "lhco-signal" else 1
        check_memory(events * points, 2_000, "--events x mass points")
        x, theta = _generated(generate, events, seed)
        x, theta = torch.tensor(x), None if theta is None else torch.tensor(theta)
    else:
        x = read_events(data, [v.name for v in obs], where)
        theta = read_events(data, [v.name for v in ctx], where) if ctx else None
    echo(
        f"training on {len(x)} events of {[v.name for v in obs]}"
        + (f" conditional on {[v.name for v in ctx]}" if ctx else "")
    )
    model = DensityModel(
        obs,
        ctx,
        role=role,
        flow=flow,
        transforms=transforms,
        hidden_features=hidden_features,
        bins=bins,
        components=components,
        preprocessing=preprocessing,
        seed=seed,
    ).to(torch_device(device))
    out = run_folder(out, "train")
    history = train(
        model,
        x,
        theta,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=progress,
    )
    best = min(h["val_loss"] for h in history)
    if not math.isfinite(best):
        raise FitError("training diverged: the validation loss is not finite")
    model.save(out / "model.pt")
    config = {
        "data": None if data is None else file_names(data),
        "where": where,
        "generate": generate,
        "events": len(x),
        "observables": [v.to_dict() for v in obs],
        "context": [v.to_dict() for v in model.theta_vars],
        "flow": flow,
        "transforms": transforms,
        "hidden_features": list(hidden_features),
        "bins": bins,
        "components": components,
        "preprocessing": model.config["preprocessing"],
        "role": role,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
    }
    write_json(
        out / "train.json",
        {"config": config, "seed": seed, "versions": versions(), "history": history},
    )
    plots.plot_history(history, out / "training.png")
    shown = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:100_000]
    with torch.no_grad():
        if theta is None:
            samples = model().sample((len(shown),))
        else:
            samples = model(theta[shown].to(model.theta_range)).sample()
    plots.plot_marginals(
        x[shown].numpy(),
        samples.double().cpu().numpy(),
        obs,
        out / "marginals.png",
        labels=("training data", "model samples"),
    )
    echo(
        f"best validation loss {best:.4f} nats/event after {len(history)} epochs; wrote "
        f"{out}/ (model.pt, train.json, training.png, marginals.png)"
    )
    return model
