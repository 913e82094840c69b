r"""`flowscan limits`: CLs upper limits on the signal yield over a grid of signal
parameters, from saved models and a data file."""

from __future__ import annotations

__all__ = ["parse_values", "run_limits"]

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .exceptions import FitError, InputError
from .flows import DensityModel
from .parallel import dask_client, map_tasks
from .runinfo import check_memory, run_folder, versions, write_json
from .scanner import (
    SIGMAS,
    MixtureLikelihood,
    ParameterSpace,
    check_model_pair,
    upper_limit,
    upper_limit_toys,
)
from .toys import read_events
from .variables import check_theta


def parse_values(text: str) -> tuple[str, list[float]]:
    r"""`"m_pole=300:700:9"` (9 values from 300 to 700), `"m_pole=300,450"` or
    `"gamma=40"` to a name and its values; raises `ValueError` on a malformed item."""
    name, sep, values = text.partition("=")
    try:
        if ":" in values:
            low, high, count = values.split(":")
            out = np.linspace(float(low), float(high), int(count)).tolist()
        else:
            out = [float(v) for v in values.split(",")]
    except ValueError:
        sep = ""
    if not sep or not name.strip() or not out or not np.isfinite(out).all():
        raise InputError(f"--at {text!r} is not name=low:high:count or name=v1,v2,...")
    return name.strip(), out


@dataclass(frozen=True)
class _LimitAt:
    r"""The upper limit at one point of signal parameters: a picklable task."""

    signal: DensityModel
    background: DensityModel
    x: Tensor
    start: tuple[tuple[str, float], ...]
    fixed: tuple[str, ...]
    cl: float
    method: str
    toys: int
    asimov_events: int
    seed: int

    def __call__(self, point: Mapping[str, float]) -> dict[str, float | str]:
        r"""The limits at `point`; a fit that fails there gives a row of NaN limits with
        status `"failed"` and the reason, instead of stopping the whole grid."""
        nll = MixtureLikelihood(
            self.signal, self.background, self.x, check_models=False, check_data=False
        )
        space = self.space(nll, point)
        try:
            return dict(point) | self._limits(nll, space) | {"status": "valid", "message": ""}
        except FitError as e:
            nan = {"n_sig_hat": np.nan, "observed": np.nan}
            nan |= {f"expected_{n:+g}": np.nan for n in SIGMAS}
            return dict(point) | nan | {"status": "failed", "message": str(e)}

    def space(self, nll: MixtureLikelihood, point: Mapping[str, float]) -> ParameterSpace:
        r"""The parameter space of the fits at `point`: the signal parameters there and
        `fixed` held, the rest started from `start` (n_sig at 0, n_bkg at N)."""
        start = {"n_sig": 0.0, "n_bkg": float(len(self.x))} | dict(self.start) | dict(point)
        values = [start.get(v.name, (v.low + v.high) / 2) for v in nll.theta_vars]
        return ParameterSpace(nll.theta_vars, values, [*point, *self.fixed])

    def _limits(self, nll: MixtureLikelihood, space: ParameterSpace) -> dict[str, float]:
        limit = upper_limit(
            nll, space, cl=self.cl, asimov_events=self.asimov_events, seed=self.seed
        )
        if self.method == "toys":
            low = 0.5 * min(limit.observed, limit.expected[0])
            high = min(1.6 * max(limit.observed, limit.expected[-1]), nll.theta_vars[0].high)
            grid = np.linspace(low, high, 10)
            limit = upper_limit_toys(
                nll, space, grid, self.toys, cl=self.cl, seed=self.seed, progress=False
            )
        expected = {f"expected_{n:+g}": v for n, v in zip(SIGMAS, limit.expected, strict=True)}
        return {"n_sig_hat": limit.n_sig_hat, "observed": limit.observed} | expected


def run_limits(
    signal: str | os.PathLike,
    background: str | os.PathLike,
    data: str | os.PathLike,
    at: Mapping[str, Sequence[float]],
    *,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    start: Mapping[str, float] | None = None,
    fixed: Sequence[str] = (),
    cl: float = 0.95,
    method: str = "asymptotic",
    toys: int = 500,
    asimov_events: int = 10_000,
    seed: int = 0,
    jobs: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    r"""CLs upper limits on n_sig (extended likelihood of the saved models) at every
    point of the grid `at` of signal parameters, with the expected band. Writes to `out`
    (default `runs/limits-<timestamp>/`): `limits.csv` (a row per point), `limits.json`
    (settings, seed, versions) and the limit curve `limits.png` against the first
    parameter with several values (one file per combination of any others).

    Arguments:
        signal, background: Model files written by `DensityModel.save`.
        data: CSV, Parquet or HDF5 table of events.
        at: Values of every signal parameter; the grid is their product.
        columns: Data columns of the observables (default: their names).
        where: Selection of data rows (`pandas.DataFrame.query`).
        start: Starting values of background parameters (default: range centres).
        fixed: Background parameters held at their start (the others are profiled).
        cl: Confidence level.
        method: `asymptotic` (`upper_limit`) or `toys` (`upper_limit_toys` on 10 n_sig
            values spanning the asymptotic limits and band).
        toys: Pseudo-experiments per n_sig value and hypothesis with `toys`.
        asimov_events: Size of the weighted Asimov sample.
        seed: Seed of the Asimov samples and toys.
        jobs, scheduler: Where the points are computed (`dask_client`), once every input
            has been checked; `jobs=1` without a scheduler computes them here, in turn.

    Returns:
        A row per point: the signal parameters, `n_sig_hat`, `observed`, the expected
        limits, `status` (`"valid"` or `"failed"`) and `message`.
    """
    from . import plots

    if method not in ("asymptotic", "toys"):
        raise InputError(f"unknown method {method!r}; choose asymptotic or toys")
    check_memory(asimov_events, 2_000, "--asimov-events")
    check_memory(toys, 1_000, "--toys")
    sig, bkg = (DensityModel.load(p).for_fit() for p in (signal, background))
    check_model_pair(sig, bkg)
    names = [v.name for v in sig.theta_vars]
    missing, unknown = sorted(set(names) - set(at)), sorted(set(at) - set(names))
    if missing or unknown:
        raise InputError(
            f"--at needs values of the signal parameters {names}: missing {missing}, "
            f"unknown {unknown}"
        )
    bkg_names = ["n_bkg", *(v.name for v in bkg.theta_vars)]
    bad = sorted((set(fixed) | set(start or {})) - set(bkg_names))
    if bad:
        raise InputError(f"{bad}: only background parameters {bkg_names} can be fixed or started")
    columns = list(columns or [v.name for v in sig.observables])
    x = read_events(data, columns, where)
    nll = MixtureLikelihood(sig, bkg, x)  # checks data and models once, before any worker
    if cl <= 0 or cl >= 1:
        raise InputError(f"the confidence level must lie between 0 and 1, got {cl}")
    grid = list(itertools.product(*(at[n] for n in names)))
    check_theta(torch.tensor(grid, dtype=torch.float64), sig.theta_vars)
    points = [dict(zip(names, p, strict=True)) for p in grid]
    task = _LimitAt(
        sig,
        bkg,
        x,
        tuple((start or {}).items()),
        tuple(fixed),
        cl,
        method,
        toys,
        asimov_events,
        seed,
    )
    for point in points:  # starts and bounds, before any worker
        task.space(nll, point)
    out = run_folder(out, "limits")
    echo(f"{method} CLs limits at {len(points)} point(s) of {names} on {len(x)} events ...")
    with dask_client(jobs, scheduler) as client:
        rows = map_tasks(task, points, client, progress=progress, desc="limits")
    table = pd.DataFrame(rows)
    failed = table[table["status"] == "failed"]
    units = {v.name: v.unit for v in sig.theta_vars}
    shown = table.drop(columns="message")
    echo(
        f"  {cl:.0%} CL upper limits on n_sig [events]\n"
        + shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    for row in failed.itertuples():
        echo(f"  FAILED at {', '.join(f'{n} = {getattr(row, n):g}' for n in names)}: {row.message}")
    if len(failed):
        echo(f"  {len(failed)} of {len(table)} points failed (status and message in limits.csv)")
    table.to_csv(out / "limits.csv", index=False)
    config = {
        "signal": str(signal),
        "background": str(background),
        "data": str(data),
        "where": where,
        "columns": columns,
        "at": {n: list(at[n]) for n in names},
        "units": units,
        "start": dict(start or {}),
        "fixed": list(fixed),
        "cl": cl,
        "method": method,
        "toys": toys,
        "asimov_events": asimov_events,
        "seed": seed,
        "events": len(x),
    }
    write_json(out / "limits.json", {"config": config, "versions": versions()})
    files = ["limits.csv", "limits.json"]
    varied = [n for n in names if len(at[n]) > 1]
    plotted = table[table["status"] != "failed"]  # the curves join the points with limits
    if varied:
        axis, others = varied[0], varied[1:]
        groups = plotted.groupby(others) if others else [((), plotted)]
        for key, rows in groups:
            key = key if isinstance(key, tuple) else (key,)
            held = {n: at[n][0] for n in names if len(at[n]) == 1} | dict(
                zip(others, key, strict=True)
            )
            label = ", ".join(f"{n} = {v:g} {units[n]}" for n, v in held.items())
            name = "limits" + "".join(f"_{n}={v:g}" for n, v in zip(others, key, strict=True))
            rows = rows.sort_values(axis)
            plots.plot_limits(
                rows[axis].to_numpy(),
                rows["observed"].to_numpy(),
                rows[[f"expected_{n:+g}" for n in SIGMAS]].to_numpy(),
                sig.theta_vars[names.index(axis)],
                out / f"{name}.png",
                cl,
                title=f"{method} CLs limits" + (f" at {label}" if label else ""),
            )
            files.append(f"{name}.png")
    echo(f"wrote {out}/ ({', '.join(files)})")
    return table
