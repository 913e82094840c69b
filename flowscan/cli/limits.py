r"""`flowscan limits`: CLs upper limits on the signal yield over a grid of signal
parameters, from saved models and a data file; with a signal rate (cross section,
luminosity, efficiency), on its signal strength, and the excluded region."""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .. import plots
from ..constraints import Constraint
from ..exceptions import FitError, InputError
from ..flows import DensityModel
from ..io import check_memory, run_folder, write_record
from ..parallel import dask_client, map_tasks
from ..samples import lhco
from ..scanner import (
    FAILURES,
    FitSettings,
    MixtureLikelihood,
    ParameterSpace,
    check_model_pair,
    fit,
)
from ..stats import SIGMAS, CrossSection, Efficiency, SignalRate, upper_limit, upper_limit_toys
from ..variables import check_theta
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    limits = o.command(
        commands,
        "limits",
        help="CLs upper limits on the signal yield over a grid of signal parameters",
        description="Fits the extended likelihood of saved models to a data file and sets "
        "CLs upper limits on n_sig (test statistic q~_mu) at each point of a grid of signal "
        "parameters, with the expected +-1 and +-2 sigma band; writes limits.csv, "
        "limits.json and the limit curve limits.png. With --xsec, --lumi and "
        "--efficiency the limits are on the signal strength mu = n_sig / (sigma L eff) of "
        "the predicted yield (the efficiency's uncertainty a constrained nuisance), mu = 1 "
        "excluded below 1, and exclusion_<x>_<y>.png draws the excluded region over each "
        "pair of parameters.",
    )
    o.add_models(limits)
    o.add_data(limits, several=False)
    limits.add_argument(
        "--at",
        action="append",
        required=True,
        help="values of a signal parameter: name=low:high:count or name=v1,v2,...; "
        "repeat for each (e.g. --at m_pole=300:700:9 --at gamma=40)",
    )
    o.add_fit(limits, "starting values of the background parameters, e.g. tau=170")
    limits.add_argument(
        "--cl", type=o.fraction, default=0.95, help="confidence level (default 0.95)"
    )
    limits.add_argument(
        "--method",
        default="asymptotic",
        choices=["asymptotic", "toys"],
        help="asymptotic (default) or toys (small samples)",
    )
    limits.add_argument(
        "--toys",
        type=o.positive_int,
        default=500,
        help="toys per n_sig value and hypothesis (--method toys)",
    )
    limits.add_argument(
        "--asimov-events",
        type=o.positive_int,
        default=10_000,
        help="size of the weighted Asimov sample",
    )
    rate = limits.add_argument_group(
        "signal rate", "the predicted signal yield n_pred = sigma(theta) L eff(theta)"
    )
    rate.add_argument(
        "--xsec",
        help="cross-section table (CSV...): a column per signal parameter it depends on "
        "and sigma_fb or sigma_pb; interpolated, never extrapolated",
    )
    rate.add_argument("--lumi", type=o.positive, help="integrated luminosity, 1/fb")
    rate.add_argument(
        "--efficiency",
        nargs="+",
        help="signal event files of flowscan simulate or generate (--events 0) over the "
        "grid, their <file>.json records beside them; --where selects their events too",
    )
    o.add_progress(limits)
    o.add_nuisances(limits)
    o.add_dask(limits)
    limits.set_defaults(func=run)


def signal_rate(args: argparse.Namespace, names: list[str]) -> SignalRate | None:
    r"""The signal rate of `--xsec`, `--lumi` and `--efficiency` over the signal
    parameters `names`, or `None` where none of them is given."""
    given = {"--xsec": args.xsec, "--lumi": args.lumi, "--efficiency": args.efficiency}
    if not any(v is not None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise InputError(
            f"a signal rate needs --xsec, --lumi and --efficiency together: give {missing}"
        )
    if args.method == "toys":
        raise InputError(
            "limits on the signal strength of a rate are asymptotic: drop --method toys"
        )
    return SignalRate(
        CrossSection.read(args.xsec, names),
        args.lumi,
        Efficiency.read(args.efficiency, names, args.where, lhco.FEATURES),
    )


@dataclass(frozen=True)
class _LimitAt:
    r"""The upper limit at one point of signal parameters: a picklable task."""

    signal: DensityModel
    background: DensityModel
    x: Tensor
    settings: FitSettings
    cl: float
    method: str
    toys: int
    asimov_events: int
    seed: int
    constraints: tuple[Constraint, ...] = ()

    def __call__(
        self, item: tuple[Mapping[str, float], tuple[float, float] | None]
    ) -> dict[str, float | str]:
        r"""The limits at a point with its predicted signal yield and relative error
        (limits on the signal strength; on n_sig where `None`); a fit that fails there
        gives a row of NaN limits with status `"failed"` and the reason, instead of
        stopping the whole grid. The free fit at the point (`fit`: its model error and
        training-grid warnings) gives `n_sig_hat` and the row's `status`, and its
        warnings go to `message`."""
        point, rate = item
        nll = MixtureLikelihood(
            self.signal, self.background, self.x, check_models=False, check_data=False,
            constraints=self.constraints,
        )  # fmt: skip
        settings = self.at(point)
        result = fit(nll, settings)
        try:
            if result.status == "failed":
                raise FitError(result.message)
            space = replace(settings, start=result.values).space(nll)
            limits = self._limits(nll, space, rate)
        except FitError as e:
            nan = {"n_sig_hat": np.nan, "observed": np.nan}
            nan |= {f"expected_{n:+g}": np.nan for n in SIGMAS}
            return dict(point) | nan | {"status": "failed", "message": str(e)}
        if result.errors_model is not None:
            limits["n_sig_hat_model"] = float(result.errors_model[result.names.index("n_sig")])
        why = [result.message] if result.status in FAILURES else []
        status = {"status": result.status, "message": "; ".join([*why, *result.warnings])}
        return dict(point) | limits | status

    def at(self, point: Mapping[str, float]) -> FitSettings:
        r"""The settings of the fits at `point`: the signal parameters there and the
        settings' fixed ones held, the rest started from the settings' start (n_sig at
        0, n_bkg at N)."""
        start = {"n_sig": 0.0, "n_bkg": float(len(self.x))} | self.settings.start | dict(point)
        return replace(self.settings, start=start, fixed=[*point, *self.settings.fixed])

    def _limits(
        self, nll: MixtureLikelihood, space: ParameterSpace, rate: tuple[float, float] | None
    ) -> dict[str, float]:
        limit = upper_limit(
            nll, space, cl=self.cl, asimov_events=self.asimov_events, seed=self.seed, rate=rate
        )
        if self.method == "toys":
            low = 0.5 * min(limit.observed, limit.expected[0])
            high = min(1.6 * max(limit.observed, limit.expected[-1]), nll.theta_vars[0].high)
            grid = np.linspace(low, high, 10)
            limit = upper_limit_toys(
                nll, space, grid, self.toys, cl=self.cl, seed=self.seed, progress=False
            )
        expected = {f"expected_{n:+g}": v for n, v in zip(SIGMAS, limit.expected, strict=True)}
        members = self._member_limits(nll, space, rate)  # first its spread, beside `observed`
        head = {"n_sig_hat": limit.n_sig_hat, "observed": limit.observed}
        return (
            head
            | {k: v for k, v in members.items() if k == "observed_model_sd"}
            | expected
            | members
        )

    def _member_limits(
        self, nll: MixtureLikelihood, space: ParameterSpace, rate: tuple[float, float] | None
    ) -> dict[str, float]:
        r"""Where a model is an ensemble: the asymptotic observed limit with each of its
        members in its place (`observed_<signal|background>_<k>`), and their spread
        `observed_model_sd`, the quadrature sum over the ensembles of the members'
        standard deviation (ddof 1)."""
        out, variances = {}, []
        for which in ("signal", "background"):
            members = getattr(getattr(nll, which), "members", ())
            if len(members) < 2:
                continue
            limits = [
                upper_limit(
                    nll.with_density(which, m), space, cl=self.cl,
                    asimov_events=self.asimov_events, seed=self.seed, rate=rate,
                ).observed
                for m in members
            ]  # fmt: skip
            out |= {f"observed_{which}_{k}": v for k, v in enumerate(limits)}
            variances.append(np.var(limits, ddof=1))
        return {"observed_model_sd": math.sqrt(sum(variances))} | out if variances else {}


def run(args: argparse.Namespace) -> int:
    r"""CLs upper limits on n_sig (extended likelihood of the saved models) at every
    point of the grid `--at` of signal parameters, with the expected band, the other
    background parameters profiled. Writes to `--out`: `limits.csv` (a row per point:
    the signal parameters, `n_sig_hat`, `observed`, the expected limits, `status` and
    `message`; where a model is an ensemble also each member's observed limit and
    their spread `observed_model_sd`, printed beside `observed`), `limits.json`
    (settings, seed, versions) and the limit curve `limits.png` against the first
    parameter with several values (one file per combination of any others).
    `--method toys` runs `upper_limit_toys` on 10 n_sig values spanning the asymptotic
    limits and band.

    With a signal rate (`signal_rate`) the limits are on its signal strength mu, and the
    rows hold the cross section `sigma_fb`, the efficiency, the predicted yield `n_pred`
    and its relative error, and `excluded` (the observed limit below 1) and
    `expected_excluded` (the median's); `exclusion_<x>_<y>.png` draws the excluded
    region over each pair of parameters with several values (`plot_exclusion`; one file
    per combination of any others). The points run on Dask once every input has been
    checked. Returns 1 if the fit at any point failed (`FAILURES`; its row says why),
    else 0."""
    at = o.parse_at(args.at)
    settings = o.fit_settings(args, "gradient")
    start, fixed, cl, method = settings.start, settings.fixed, args.cl, args.method
    toys, asimov_events, seed = args.toys, args.asimov_events, args.seed
    check_memory(asimov_events, 2_000, "--asimov-events")
    check_memory(toys, 1_000, "--toys")
    sig, bkg = o.load_models(args)
    check_model_pair(sig, bkg)
    constraints = o.constraints(args, sig, bkg)
    nuisances = [c.name for c in constraints]
    names = [v.name for v in sig.theta_vars if v.name not in nuisances]  # a shared one floats
    missing, unknown = sorted(set(names) - set(at)), sorted(set(at) - set(names))
    if missing or unknown:
        raise InputError(
            f"--at needs values of the signal parameters {names}: missing {missing}, "
            f"unknown {unknown}"
        )
    bkg_names = ["n_bkg", *(v.name for v in bkg.theta_vars), *nuisances]
    bad = sorted((set(fixed) | set(start)) - set(bkg_names))
    if bad:
        raise InputError(f"{bad}: only background parameters {bkg_names} can be fixed or started")
    rate = signal_rate(args, names)
    columns = o.names(args.columns) or [v.name for v in sig.observables]
    x = o.read_data(args.data, columns, args.where)
    # checks data, models and constraints once, before any worker
    nll = MixtureLikelihood(sig, bkg, x, constraints=constraints)
    grid = list(itertools.product(*(at[n] for n in names)))
    poi_vars = [v for v in sig.theta_vars if v.name in names]
    check_theta(torch.tensor(grid, dtype=torch.float64), poi_vars)
    points = [dict(zip(names, p, strict=True)) for p in grid]
    predicted = _predicted(rate, np.array(grid)) if rate else None
    task = _LimitAt(
        sig,
        bkg,
        x,
        settings,
        cl,
        method,
        toys,
        asimov_events,
        seed,
        tuple(constraints),
    )
    for point in points:  # starts and bounds, before any worker
        task.at(point).space(nll)
    rates = [None] * len(points)
    if predicted is not None:
        rates = [(r["n_pred"], r["n_pred_error"]) for r in predicted]
    items = list(zip(points, rates, strict=True))
    out = run_folder(args.out, "limits")
    what = "mu = n_sig / n_pred" if rate else "n_sig"
    print(
        f"{method} CLs limits on {what} at {len(points)} point(s) of {names} on {len(x)} events ..."
    )
    with dask_client(args.jobs, args.scheduler) as client:
        rows = map_tasks(task, items, client, progress=not args.no_progress, desc="limits")
    if predicted is not None:  # the rate beside the point, the verdicts after the limits
        rows = [
            {k: r[k] for k in names} | p | {k: v for k, v in r.items() if k not in names}
            for r, p in zip(rows, predicted, strict=True)
        ]
        for r in rows:
            r["excluded"] = bool(r["observed"] < 1)
            r["expected_excluded"] = bool(r["expected_+0"] < 1)
    table = pd.DataFrame(rows)
    failed = table[table["status"].isin(FAILURES)]
    units = {v.name: v.unit for v in sig.theta_vars}
    shown = table.drop(
        columns=[c for c in table if c == "message" or "_signal_" in c or "_background_" in c]
    )
    unit = "mu = n_sig / n_pred (n_pred in events, sigma in fb)" if rate else "n_sig [events]"
    print(
        f"  {cl:.0%} CL upper limits on {unit}\n"
        + shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    )
    for row in failed.itertuples():
        where = ", ".join(f"{n} = {getattr(row, n):g}" for n in names)
        print(f"  {row.status.upper()} at {where}: {row.message}")
    if len(failed):
        print(f"  {len(failed)} of {len(table)} points failed (status and message in limits.csv)")
    if rate:
        done = table[table["status"] != "failed"]
        print(
            f"  mu = 1 excluded at {int(done['excluded'].sum())} of {len(done)} points "
            f"(expected: {int(done['expected_excluded'].sum())})"
        )
    table.to_csv(out / "limits.csv", index=False)
    config = o.record(args) | {"units": units, "nuisances": [asdict(c) for c in constraints]}
    if rate:
        config["rate"] = {"sigma": "fb", "luminosity": "1/fb", "n_pred": "events"}
    write_record(out / "limits.json", config, settings=asdict(settings))
    files = ["limits.csv", "limits.json"]
    varied = [n for n in names if len(at[n]) > 1]
    plotted = table[table["status"] != "failed"]  # the curves join the points with limits
    expected_columns = [f"expected_{n:+g}" for n in SIGMAS]
    if varied:
        axis = varied[0]
        for held, label, rows in _slices(plotted, names, at, [axis], units):
            name = "limits" + "".join(f"_{n}={v:g}" for n, v in held.items() if len(at[n]) > 1)
            rows = rows.sort_values(axis)
            plots.plot_limits(
                rows[axis].to_numpy(),
                rows["observed"].to_numpy(),
                rows[expected_columns].to_numpy(),
                sig.theta_vars[names.index(axis)],
                out / f"{name}.png",
                cl,
                title=f"{method} CLs limits" + (f" at {label}" if label else ""),
                strength=rate is not None,
            )
            files.append(f"{name}.png")
    for a, b in itertools.combinations(varied if rate else [], 2):
        for held, label, rows in _slices(table, names, at, [a, b], units):
            grid_a, grid_b = at[a], at[b]
            index = rows.set_index([a, b])
            cells = [(u, v) for u in grid_a for v in grid_b]
            limits = index.reindex(cells)  # failed points are NaN
            name = f"exclusion_{a}_{b}" + "".join(
                f"_{n}={v:g}" for n, v in held.items() if len(at[n]) > 1
            )
            plots.plot_exclusion(
                np.array(grid_a),
                np.array(grid_b),
                limits["observed"].to_numpy(dtype=float).reshape(len(grid_a), len(grid_b)),
                limits[expected_columns].to_numpy(dtype=float).reshape(len(grid_a), len(grid_b), 5),
                (sig.theta_vars[names.index(a)], sig.theta_vars[names.index(b)]),
                out / f"{name}.png",
                cl,
                title=f"excluded at {cl:.0%} CL (CLs)" + (f", {label}" if label else ""),
            )
            files.append(f"{name}.png")
    print(f"wrote {out}/ ({', '.join(files)})")
    return o.exit_code(table["status"])


def _predicted(rate: SignalRate, grid: np.ndarray) -> list[dict[str, float]]:
    r"""The cross section (fb), efficiency, predicted yield (events) and its relative
    error at each point of `grid` `(K, D)`: refused outside the rate's tables."""
    sigma, efficiency, error = rate.terms(grid)
    return [
        {"sigma_fb": s_k, "efficiency": e_k, "n_pred": s_k * rate.luminosity * e_k,
         "n_pred_error": r_k}
        for s_k, e_k, r_k in zip(sigma.tolist(), efficiency.tolist(), error.tolist(), strict=True)
    ]  # fmt: skip


def _slices(
    table: pd.DataFrame,
    names: list[str],
    at: dict[str, list[float]],
    shown: list[str],
    units: dict[str, str],
):
    r"""The rows of `table` per combination of the values of the parameters not
    `shown`: (their values, a label of them, the rows)."""
    others = [n for n in names if n not in shown]
    for values in itertools.product(*(at[n] for n in others)):
        held = dict(zip(others, values, strict=True))
        rows = table
        for n, v in held.items():
            rows = rows[rows[n] == v]
        label = ", ".join(f"{n} = {v:g} {units[n]}" for n, v in held.items())
        if len(rows):
            yield held, label, rows
