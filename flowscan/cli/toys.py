r"""`flowscan toys`: pseudo-experiments on saved models, with pulls, coverage and the q0
distribution under background only."""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace

import numpy as np
from scipy import stats

from .. import plots
from ..exceptions import InputError
from ..flows import DensityEnsemble
from ..io import check_memory, run_folder, write_record
from ..parallel import dask_client
from ..samples import GENERATORS, SAMPLERS, SCALE_MAPS, Sampler, samplers
from ..scanner import Density
from ..stats import PseudoExperiments, check_truth, pseudo_experiments
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    toys = o.command(
        commands,
        "toys",
        help="pseudo-experiments: pulls, interval coverage and the q0 distribution",
        description="Draws pseudo-datasets from a truth, fits each with the extended "
        "likelihood of saved models as data are fitted (the global search, Minuit, HESSE, "
        "optionally MINOS), and reports pulls and "
        "68%% coverage per parameter; then background-only toys give the distribution of "
        "q0 against the asymptotic chi2. Writes toys.csv, null_toys.csv, toys.json, "
        "pulls.png and q0.png.",
    )
    o.add_models(toys)
    toys.add_argument(
        "--truth",
        required=True,
        help="every parameter's true value: n_sig,n_bkg (events) and the signal and "
        "background parameters, e.g. n_sig=1000,n_bkg=100000,m_pole=455,gamma=33,tau=170",
    )
    toys.add_argument(
        "--toys", type=o.positive_int, default=100, help="toys at the truth (default 100)"
    )
    toys.add_argument(
        "--null-toys", type=o.count, help="background-only toys for q0 (default: as --toys)"
    )
    o.add_fit(toys, "starting values of the fits (default: the centre of the box)")
    toys.add_argument(
        "--sampler",
        "--generator",
        dest="sampler",
        default="model",
        choices=SAMPLERS,
        help="what draws the toys: model (the saved models, default), breit-wigner (the "
        "toy's exact densities), lhco (the LHCO-style generator) or bootstrap (resampling "
        "--samples); --generator is an alias",
    )
    toys.add_argument("--samples", help="signal,background event files for --sampler bootstrap")
    toys.add_argument("--columns", help="columns of the observables in --samples")
    toys.add_argument(
        "--member",
        type=o.count,
        metavar="K",
        help="draw the toys from member K of each ensemble model and fit them with the "
        "ensemble of the other members: whether the model error covers the difference",
    )
    toys.add_argument("--minos", action="store_true", help="MINOS intervals and their coverage")
    o.add_nuisances(toys)
    o.add_progress(toys)
    o.add_dask(toys)
    toys.set_defaults(func=run)


def _member_and_the_others(k: int, *models: Density) -> tuple[list, list]:
    r"""Member `k` of each ensemble among `models` (a single model stays itself), and
    the ensembles of their other members."""
    if not any(len(getattr(m, "members", ())) > 1 for m in models):
        raise InputError("--member needs a model that is an ensemble (flowscan train --ensemble)")
    draw, fit = [], []
    for m in models:
        members = list(getattr(m, "members", ()))
        if len(members) < 2:
            draw.append(m)
            fit.append(m)
            continue
        if k >= len(members):
            raise InputError(f"--member {k}: the ensemble has members 0 to {len(members) - 1}")
        draw.append(members[k])
        fit.append(DensityEnsemble(members[:k] + members[k + 1 :]))
    return draw, fit


def run(args: argparse.Namespace) -> int:
    r"""Two ensembles of pseudo-experiments fitted with the extended likelihood of the
    saved models: `--toys` at `--truth`, for pulls and the coverage of HESSE (and MINOS)
    intervals; and `--null-toys` (default as many) under background only (n_sig = 0,
    the signal parameters fixed at their truth), for the distribution of q0 against the
    asymptotic 1/2 delta(0) + 1/2 chi2(1). Writes to `--out`: `toys.csv`,
    `null_toys.csv` (a row per toy), `toys.json` (settings, seed, versions, summary),
    `pulls.png` and `q0.png`. Toy i of either ensemble can be redrawn alone from the
    seed. With `--member K` the toys are drawn from member K of each ensemble model and
    fitted with the ensemble of the others. Returns 1 if no fit of an ensemble is valid
    (some failures are part of a toy study: they are counted)."""
    truth, toys = o.parse_start(args.truth), args.toys
    settings = o.fit_settings(args, minuit={"minos": True} if args.minos else {})
    fixed = settings.fixed
    samples = o.names(args.samples)
    sig, bkg = o.load_models(args)
    columns = o.names(args.columns) or [v.name for v in sig.observables]
    if args.member is not None:
        if args.sampler != "model":
            raise InputError("--member draws from the models: leave out --sampler")
        draw, (sig, bkg) = _member_and_the_others(args.member, sig, bkg)
    elif args.sampler in GENERATORS:  # what it draws must be what is fitted
        draw = tuple(_generator(args.sampler, model, role) for model, role in
                     ((sig, "signal"), (bkg, "background")))  # fmt: skip
    else:
        draw = samplers(args.sampler, models=(sig, bkg), files=samples, columns=columns)
        draw = (draw.signal, draw.background)
    constraints = o.constraints(args, sig, bkg)
    null_toys = toys if args.null_toys is None else args.null_toys
    nuisances = {c.name for c in constraints}  # a nuisance the signal shares floats
    held = sorted({*fixed, *(v.name for v in sig.theta_vars)} - {"n_sig", *nuisances})
    runs = [("truth", truth, toys, settings)]
    if null_toys > 0:
        minuit = {k: v for k, v in settings.options.get("minuit", {}).items() if k != "minos"}
        null = replace(settings, fixed=held, options=settings.options | {"minuit": minuit})
        runs.append(("null", {**truth, "n_sig": 0.0}, null_toys, null))
    for _, values, count, run_settings in runs:  # every input, before any worker starts
        check_truth(sig, bkg, values, count, run_settings.fixed)
        check_memory(count, 2_000, "--toys")
        check_memory(values["n_sig"] + values["n_bkg"], 2_000, "the yields of --truth")
    out = run_folder(args.out, "toys")
    results = {}
    with dask_client(args.jobs, args.scheduler) as client:
        for name, values, count, run_settings in runs:
            what = "at the truth" if name == "truth" else "under background only"
            print(f"{count} pseudo-experiments {what} ...")
            results[name] = pseudo_experiments(
                sig,
                bkg,
                values,
                count,
                settings=run_settings,
                generator=draw,
                seed=args.seed,
                constraints=constraints,
                client=client,
                progress=not args.no_progress,
            )
            print(_failures(results[name]))
    main, null = results["truth"], results.get("null")
    summary = None
    if len(main.valid) < 2:
        print(f"  only {len(main.valid)} of {toys} fits valid: no pulls (see toys.csv, message)")
    else:
        summary = main.summary()
        print(_summary_table(main, summary))
    if null is not None and len(null.valid):
        print(_q0_table(null))

    main.table.to_csv(out / "toys.csv", index=False)
    files = ["toys.csv", "toys.json"]
    if summary is not None:
        plots.plot_pulls({n: main.pulls(n) for n in main.floating}, out / "pulls.png")
        files.append("pulls.png")
    q0 = {}
    if null is not None:
        null.table.to_csv(out / "null_toys.csv", index=False)
        files.append("null_toys.csv")
        if len(null.valid):
            plots.plot_q0(null.valid["q0"].to_numpy(), out / "q0.png")
            q0 = _q0_rows(null)
            files.append("q0.png")
    config = o.record(args) | {"nuisances": [asdict(c) for c in constraints]}
    write_record(
        out / "toys.json",
        config,
        settings={name: asdict(run_settings) for name, _, _, run_settings in runs},
        summary=None if summary is None else summary.to_dict(orient="index"),
        q0_tail=q0,
    )
    print(f"wrote {out}/ ({', '.join(files)})")
    return int(len(main.valid) == 0 or (null is not None and len(null.valid) == 0))


def _failures(toys: PseudoExperiments) -> str:
    r"""How many fits were valid, and the most common reasons of the others."""
    table, n = toys.table, len(toys.table)
    line = f"  {len(toys.valid)} of {n} fits valid"
    bad = table[~table["valid"].astype(bool)]
    if len(bad):
        counts = bad["status"].value_counts()
        line += "; " + ", ".join(f"{c} {s}" for s, c in counts.items())
        line += " (status and message per toy in the csv)"
    return line


def _summary_table(toys: PseudoExperiments, summary) -> str:
    n, valid = len(toys.table), len(toys.valid)
    lines = [
        f"  {valid} of {n} fits valid; pulls (fit - truth) / HESSE error, 68% coverage",
        f"    {'parameter':<10}{'truth':>12}{'pull mean':>16}{'pull width':>16}"
        f"{'HESSE cov.':>16}{'MINOS cov.':>16}",
    ]
    for name, r in summary.iterrows():
        minos = (
            f"{r.minos_coverage:.3f} ± {r.minos_coverage_error:.3f}"
            if np.isfinite(r.minos_coverage)
            else "-"
        )
        lines.append(
            f"    {name:<10}{toys.truth[name]:>12.6g}"
            f"{f'{r.pull_mean:+.3f} ± {r.pull_mean_error:.3f}':>16}"
            f"{f'{r.pull_width:.3f} ± {r.pull_width_error:.3f}':>16}"
            f"{f'{r.hesse_coverage:.3f} ± {r.hesse_coverage_error:.3f}':>16}{minos:>16}"
        )
    return "\n".join(lines)


def _q0_rows(null: PseudoExperiments) -> list[dict[str, float]]:
    r"""P(q0 > x) in the toys and asymptotically (1/2 chi2(1) tail) at x = 0, 1, 4, 9."""
    q0 = null.valid["q0"].to_numpy()
    rows = []
    for x in (0.0, 1.0, 4.0, 9.0):
        p = float((q0 > x).mean())
        rows.append(
            {
                "q0": x,
                "toys": p,
                "error": float(np.sqrt(max(p * (1 - p), 1 / len(q0)) / len(q0))),
                "asymptotic": float(0.5 * stats.chi2.sf(x, 1)),
            }
        )
    return rows


def _q0_table(null: PseudoExperiments) -> str:
    lines = [
        f"  q0 under background only ({len(null.valid)} valid fits of {len(null.table)})",
        f"    {'x':>4}{'P(q0 > x) toys':>22}{'asymptotic':>12}",
    ]
    for r in _q0_rows(null):
        toys = f"{r['toys']:.4f} ± {r['error']:.4f}"
        lines.append(f"    {r['q0']:>4g}{toys:>22}{r['asymptotic']:>12.4f}")
    return "\n".join(lines)


def _generator(name: str, model: Density, role: str) -> Sampler:
    r"""The generator `name`'s sampler of `role` with the `--scale` nuisances of `model`
    and its window; refused where a scale acts otherwise than the generator's does."""
    k = ("signal", "background").index(role)
    scales = getattr(model, "scales", ())
    for s in scales:
        acts = SCALE_MAPS[name].get(s.name, ((), ()))[k]
        if set(s.observables) != set(acts):
            raise InputError(
                f"--scale {s.name} on the {role} moves {list(s.observables)}, but the {name} "
                f"generator's moves {list(acts) or 'nothing'} of it: toys would not be drawn as "
                "they are fitted"
            )
    window = None  # the toy on the model's window; for another model, `like` says so
    (first, *rest) = model.observables
    if name == "breit-wigner" and not rest and None not in (first.low, first.high):
        window = (first.low, first.high)
    pair = samplers(name, scales={s.name: s.width for s in scales}, window=window)
    return pair.like(model)
