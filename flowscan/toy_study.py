r"""`flowscan toys`: pseudo-experiments on saved models, with pulls, coverage and the q0
distribution under background only."""

from __future__ import annotations

__all__ = ["GENERATORS", "run_toys"]

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from .exceptions import InputError
from .flows import DensityModel
from .parallel import dask_client
from .runinfo import check_memory, run_folder, versions, write_json
from .scanner import PseudoExperiments, Sampler, check_truth, pseudo_experiments
from .toys import Bootstrap, BreitWigner, Exponential, read_events

GENERATORS = ["model", "breit-wigner", "bootstrap"]


def _generator(
    kind: str,
    signal: DensityModel,
    samples: Sequence[str | os.PathLike] | None,
    columns: Sequence[str],
) -> tuple[Sampler, Sampler] | None:
    if kind not in GENERATORS:
        raise InputError(f"unknown generator {kind!r}; choose from {GENERATORS}")
    if (kind == "bootstrap") != bool(samples):
        raise InputError("--generator bootstrap needs --samples SIGNAL_FILE,BACKGROUND_FILE")
    if kind == "model":
        return None
    if kind == "breit-wigner":
        if [v.name for v in signal.theta_vars] != [v.name for v in BreitWigner.theta_vars]:
            raise InputError(
                "--generator breit-wigner draws the toy's exact densities: it needs models "
                f"of {[v.name for v in BreitWigner.theta_vars]}, such as the demo's"
            )
        return BreitWigner(), Exponential()
    files = list(samples)
    if len(files) != 2:
        raise InputError(f"--samples takes two files (signal, background), got {files}")
    return tuple(Bootstrap(read_events(f, columns), signal.observables) for f in files)


def run_toys(
    signal: str | os.PathLike,
    background: str | os.PathLike,
    truth: Mapping[str, float],
    toys: int = 100,
    *,
    null_toys: int | None = None,
    fixed: Sequence[str] = (),
    generator: str = "model",
    samples: Sequence[str | os.PathLike] | None = None,
    columns: Sequence[str] | None = None,
    minos: bool = False,
    seed: int = 0,
    jobs: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[PseudoExperiments, PseudoExperiments | None]:
    r"""Two ensembles of pseudo-experiments fitted with the extended likelihood of the
    saved models: `toys` at `truth`, for pulls and the coverage of HESSE (and MINOS)
    intervals; and `null_toys` (default `toys`) under background only (n_sig = 0, the
    signal parameters fixed at their truth), for the distribution of q0 against the
    asymptotic 1/2 delta(0) + 1/2 chi2(1). Writes to `out` (default
    `runs/toys-<timestamp>/`): `toys.csv`, `null_toys.csv` (a row per toy), `toys.json`
    (settings, seed, versions, summary), `pulls.png` and `q0.png`.

    Arguments:
        signal, background: Model files written by `DensityModel.save`.
        truth: Every parameter of the extended likelihood: `n_sig`, `n_bkg` (expected
            events), the signal and background parameters.
        fixed: Parameters held at their truth in the fits.
        generator: What draws the pseudo-data: `model` (the fitted models), `breit-wigner`
            (the toy's exact densities) or `bootstrap` (resampling `samples`).
        samples: Signal and background event files for `bootstrap`.
        columns: Their columns of the observables (default: the observables' names).
        minos: MINOS intervals in the `truth` ensemble.
        seed: Seed of the study; toy i of either ensemble can be redrawn alone.
        jobs, scheduler: Where the toys run (`dask_client`), once every input has been
            checked; `jobs=1` without a scheduler runs them here, in turn.
    """
    from . import plots

    sig, bkg = (DensityModel.load(p).for_fit() for p in (signal, background))
    columns = list(columns or [v.name for v in sig.observables])
    draw = _generator(generator, sig, samples, columns)
    null_toys = toys if null_toys is None else null_toys
    held = sorted({*fixed, *(v.name for v in sig.theta_vars)} - {"n_sig"})
    runs = [("truth", truth, toys, fixed, minos)]
    if null_toys > 0:
        runs.append(("null", {**truth, "n_sig": 0.0}, null_toys, held, False))
    for _, values, count, held_now, _ in runs:  # every input, before any worker starts
        check_truth(sig, bkg, values, count, held_now)
        check_memory(count, 2_000, "--toys")
    out = run_folder(out, "toys")
    results = {}
    with dask_client(jobs, scheduler) as client:
        for name, values, count, held_now, with_minos in runs:
            what = "at the truth" if name == "truth" else "under background only"
            echo(f"{count} pseudo-experiments {what} ...")
            results[name] = pseudo_experiments(
                sig,
                bkg,
                values,
                count,
                fixed=held_now,
                minos=with_minos,
                generator=draw,
                seed=seed,
                client=client,
                progress=progress,
            )
            echo(_failures(results[name]))
    main, null = results["truth"], results.get("null")
    summary = None
    if len(main.valid) < 2:
        echo(f"  only {len(main.valid)} of {toys} fits valid: no pulls (see toys.csv, message)")
    else:
        summary = main.summary()
        echo(_summary_table(main, summary))
    if null is not None and len(null.valid):
        echo(_q0_table(null))

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
    config = {
        "signal": str(signal),
        "background": str(background),
        "truth": dict(truth),
        "toys": toys,
        "null_toys": null_toys,
        "fixed": list(fixed),
        "generator": generator,
        "samples": [str(s) for s in samples or []],
        "columns": columns,
        "minos": minos,
        "seed": seed,
    }
    write_json(
        out / "toys.json",
        {
            "config": config,
            "versions": versions(),
            "summary": None if summary is None else summary.to_dict(orient="index"),
            "q0_tail": q0,
        },
    )
    echo(f"wrote {out}/ ({', '.join(files)})")
    return main, null


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
