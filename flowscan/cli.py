r"""Command-line interface: `flowscan <command> ...`."""

from __future__ import annotations

__all__ = ["main"]

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _names(text: str | None) -> list[str]:
    r"""`"a,b"` to `["a", "b"]`; `None` or `""` to `[]`."""
    return [n for n in (text or "").split(",") if n]


def _demo(args: argparse.Namespace) -> None:
    from .demo import DemoConfig, run_demo

    changes = {"seed": args.seed, "device": args.device, "flow": args.flow}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    config = DemoConfig.quick(**changes) if args.quick else DemoConfig(**changes)
    run_demo(config, args.out, progress=not args.no_progress)


def _scan(args: argparse.Namespace) -> None:
    from .scan import METHODS, parse_start, run_scan

    methods = METHODS if args.method == "all" else _names(args.method)
    run_scan(
        args.signal,
        args.background,
        args.data,
        args.n_sig,
        args.n_bkg,
        methods,
        columns=_names(args.columns) or None,
        start=parse_start(args.start),
        fixed=_names(args.fix),
        budget=args.budget,
        grid=args.grid,
        minos=args.minos,
        profiles=args.profiles,
        seed=args.seed,
        out=args.out,
    )


def _toys(args: argparse.Namespace) -> None:
    from .parallel import dask_client
    from .scan import parse_start
    from .toy_study import run_toys

    with dask_client(args.jobs, args.scheduler) as client:
        run_toys(
            args.signal,
            args.background,
            parse_start(args.truth),
            args.toys,
            null_toys=args.null_toys,
            fixed=_names(args.fix),
            generator=args.generator,
            samples=_names(args.samples) or None,
            columns=_names(args.columns) or None,
            minos=args.minos,
            seed=args.seed,
            client=client,
            out=args.out,
            progress=not args.no_progress,
        )


def _validate(args: argparse.Namespace) -> None:
    from .scan import parse_start
    from .validate import run_validate

    run_validate(
        args.model,
        args.reference,
        args.out,
        thetas=[parse_start(t) for t in args.theta],
        events=args.events,
        where=args.where,
        seed=args.seed,
        classifier=not args.no_classifier,
    )


def _limits(args: argparse.Namespace) -> None:
    from .limit_scan import parse_values, run_limits
    from .parallel import dask_client
    from .scan import parse_start

    at = dict(parse_values(a) for a in args.at)
    with dask_client(args.jobs, args.scheduler) as client:
        run_limits(
            args.signal,
            args.background,
            args.data,
            at,
            columns=_names(args.columns) or None,
            start=parse_start(args.start),
            fixed=_names(args.fix),
            cl=args.cl,
            method=args.method,
            toys=args.toys,
            asimov_events=args.asimov_events,
            seed=args.seed,
            client=client,
            out=args.out,
            progress=not args.no_progress,
        )


def _add_dask(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, help="worker processes of the local Dask cluster (default: all cores)"
    )
    parser.add_argument(
        "--scheduler", help="address of a Dask scheduler to run on instead, e.g. tcp://host:8786"
    )


def _generate(args: argparse.Namespace) -> None:
    from .runinfo import versions, write_json
    from .toys import lhco

    masses = [float(m) for m in args.masses.split(",")] if args.masses else None
    if masses is not None and len(masses) != 3:
        raise ValueError(f"--masses takes m_zprime,m_x,m_y in GeV, got {args.masses!r}")
    frame = lhco.pseudo_data(args.events, args.signal_events, masses, seed=args.seed)
    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"--out {out}: write an HDF5 file (.h5), the R&D file's format")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_hdf(out, key="df", mode="w")
    meta = {
        "generator": "flowscan.toys.lhco (fast LHCO-style generator)",
        "background_events": args.events,
        "signal_events": args.signal_events,
        "masses_GeV": dict(zip(["m_zprime", "m_x", "m_y"], masses or [], strict=False)),
        "seed": args.seed,
        "versions": versions(),
    }
    write_json(out.with_suffix(".json"), meta)
    print(f"wrote {out} ({len(frame)} events, LHCO R&D schema) and {out.with_suffix('.json')}")


def _simulate(args: argparse.Namespace) -> None:
    from .parallel import dask_client
    from .production import parse_grid, run_simulate
    from .toys.simulation import SimulationSettings

    masses = [float(m) for m in _names(args.masses)] or None
    grid = parse_grid(args.grid) if args.grid is not None else None
    settings = SimulationSettings(max_eta=args.max_eta, smearing=args.smearing)
    with dask_client(args.jobs, args.scheduler) as client:
        run_simulate(
            args.process,
            args.events,
            args.out,
            masses=masses,
            grid=grid,
            seed=args.seed,
            settings=settings,
            chunk_size=args.chunk_size,
            client=client,
            progress=not args.no_progress,
        )


def _train(args: argparse.Namespace) -> None:
    from .train import run_train

    run_train(
        args.out,
        data=args.data,
        where=args.where,
        generate=args.generate,
        events=args.events,
        observables=_names(args.observables) or None,
        context=_names(args.context),
        flow=args.flow,
        transforms=args.transforms,
        hidden_features=[int(h) for h in args.hidden.split(",")],
        bins=args.bins,
        components=args.components,
        preprocessing=args.preprocessing,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowscan",
        description="Signal-model parameter scans with conditional normalizing flows.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="Breit-Wigner bump hunt: train flows, fit pseudo-data, compare with the exact fit",
        description="Trains signal and background flows on the Breit-Wigner toy, fits "
        "pseudo-data by gradient descent with the flows and with the exact densities, "
        "prints the comparison and writes result.json, the models, config and plots.",
    )
    demo.add_argument("--out", help="output folder (default runs/demo-<timestamp>/)")
    demo.add_argument("--quick", action="store_true", help="tiny settings, for tests (seconds)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--epochs", type=int, help="training epochs per flow (default 20)")
    demo.add_argument(
        "--flow", default="mog", help="model family, as for train (default mog: Gaussian mixture)"
    )
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    generate = commands.add_parser(
        "generate",
        help="LHCO-style dijet events (fast generator) in the LHCO R&D file schema",
        description="Writes QCD background and, with --masses, Z' -> X Y signal events, "
        "labelled and shuffled, as an HDF5 table in the LHCO R&D schema, with a metadata "
        "JSON beside it.",
    )
    generate.add_argument("--events", type=int, default=100_000, help="QCD events")
    generate.add_argument("--signal-events", type=int, default=0, help="signal events")
    generate.add_argument("--masses", help="m_zprime,m_x,m_y in GeV, e.g. 3500,500,100")
    generate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    generate.add_argument("--out", required=True, help="output .h5 file")
    generate.set_defaults(func=_generate)

    sim = commands.add_parser(
        "simulate",
        help="Pythia 8 + FastJet events in the LHCO R&D schema (needs flowscan[mc])",
        description="Generates QCD dijets or the Z' -> X Y signal with Pythia 8, clusters "
        "anti-kT R = 1.0 jets with FastJet, keeps events whose leading jet has pT > 1.2 TeV, "
        "and writes the LHCO R&D features (with the masses for the signal) as HDF5 plus a "
        "metadata JSON. Chunks of events run in parallel on Dask; the events depend on "
        "--seed only, not on the workers.",
    )
    sim.add_argument("--process", required=True, choices=["qcd", "signal"])
    sim.add_argument("--masses", help="signal m_zprime,m_x,m_y in GeV, e.g. 3500,500,100")
    sim.add_argument(
        "--grid",
        nargs="?",
        const="",
        help="signal at seed 002's mass grid (80 points), or a subset MZ;MX;MY with "
        'comma-separated GeV per axis, e.g. "3000,4000;500;100,200"; --out is then a folder',
    )
    sim.add_argument("--events", type=int, default=10_000, help="selected events (per mass point)")
    sim.add_argument("--max-eta", type=float, help="|eta| cut on both leading jets (default none)")
    sim.add_argument(
        "--smearing",
        type=float,
        default=0.0,
        help="Gaussian relative jet energy resolution, a stand-in for Delphes (default 0)",
    )
    sim.add_argument("--chunk-size", type=int, default=500, help="events per task (default 500)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument("--out", required=True, help="output .h5 file (a folder with --grid)")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_dask(sim)
    sim.set_defaults(func=_simulate)

    train = commands.add_parser(
        "train",
        help="train a density model on a data file or a built-in generator",
        description="Trains a (conditional) normalizing flow on events from a data file or "
        "the LHCO-style generator and writes model.pt, train.json, training.png and "
        "marginals.png.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", nargs="+", help="events: .csv, .parquet, .h5 or .hdf5 files (read as one)"
    )
    source.add_argument(
        "--generate", help="lhco-signal (seed 002's mass grid) or lhco-qcd (background)"
    )
    train.add_argument("--where", help='row selection of --data, e.g. "label == 0"')
    train.add_argument(
        "--events", type=int, default=10_000, help="generated events (per mass point for signal)"
    )
    train.add_argument(
        "--observables",
        help="observable columns, name or name:low:high, comma-separated "
        "(default: m_jj,m_j1,delta_m,tau21_j1,tau21_j2 with their LHCO bounds)",
    )
    train.add_argument(
        "--context",
        help="parameter columns to condition on, comma-separated (e.g. m_zprime,m_x,m_y)",
    )
    train.add_argument(
        "--flow",
        default="mog",
        help="mog (autoregressive Gaussian mixture, default), nsf (autoregressive splines), "
        "maf, realnvp or coupling-nsf",
    )
    train.add_argument("--transforms", type=int, default=4, help="flow transforms (default 4)")
    train.add_argument("--hidden", default="64,64", help="hidden layer sizes (default 64,64)")
    train.add_argument("--bins", type=int, default=8, help="spline bins for nsf (default 8)")
    train.add_argument(
        "--components", type=int, default=20, help="Gaussians per observable for mog (default 20)"
    )
    train.add_argument(
        "--preprocessing",
        default="logit",
        help="logit (default) or, for mog, response (seed 001's latent space for windows)",
    )
    train.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    train.add_argument("--batch-size", type=int, default=1024, help="minibatch size")
    train.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    train.add_argument("--out", help="output folder (default runs/train-<timestamp>/)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    scan = commands.add_parser(
        "scan",
        help="fit a data file with saved signal/background models, by one or more methods",
        description="Fits the mixture likelihood of saved signal and background models to "
        "a data file with each method, prints a table per method and writes scan.json and "
        "convergence.png.",
    )
    scan.add_argument("--signal", required=True, help="signal model file (DensityModel.save)")
    scan.add_argument("--background", required=True, help="background model file")
    scan.add_argument(
        "--data", nargs="+", required=True, help="events: .csv, .parquet, .h5 or .hdf5 files"
    )
    scan.add_argument("--columns", help="data columns of the observables, comma-separated")
    scan.add_argument(
        "--n-sig",
        type=float,
        help="signal events in the data, fixing the fraction with --n-bkg; omit both to fit "
        "the yields (extended likelihood)",
    )
    scan.add_argument("--n-bkg", type=float, help="background events in the data")
    scan.add_argument(
        "--method", default="minuit,gradient", help="comma-separated methods or 'all'"
    )
    scan.add_argument("--start", help="starting values, e.g. m_pole=450,gamma=30")
    scan.add_argument("--fix", help="parameters held at their start, comma-separated")
    scan.add_argument("--budget", type=int, default=64, help="evaluations for bayesopt/random")
    scan.add_argument("--grid", type=int, default=11, help="grid points per parameter")
    scan.add_argument("--minos", action="store_true", help="MINOS intervals with minuit")
    scan.add_argument(
        "--profiles",
        action="store_true",
        help="1D profiles and 2D contours with minuit (profiles.png, contours.png)",
    )
    scan.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    scan.add_argument("--out", help="output folder (default runs/scan-<timestamp>/)")
    scan.set_defaults(func=_scan)

    limits = commands.add_parser(
        "limits",
        help="CLs upper limits on the signal yield over a grid of signal parameters",
        description="Fits the extended likelihood of saved models to a data file and sets "
        "CLs upper limits on n_sig (test statistic q~_mu) at each point of a grid of signal "
        "parameters, with the expected +-1 and +-2 sigma band; writes limits.csv, "
        "limits.json and the limit curve limits.png.",
    )
    limits.add_argument("--signal", required=True, help="signal model file")
    limits.add_argument("--background", required=True, help="background model file")
    limits.add_argument("--data", required=True, help="events: .csv, .parquet, .h5 or .hdf5")
    limits.add_argument("--columns", help="data columns of the observables, comma-separated")
    limits.add_argument(
        "--at",
        action="append",
        required=True,
        help="values of a signal parameter: name=low:high:count or name=v1,v2,...; "
        "repeat for each (e.g. --at m_pole=300:700:9 --at gamma=40)",
    )
    limits.add_argument("--start", help="starting values of background parameters, e.g. tau=170")
    limits.add_argument("--fix", help="background parameters held at their start")
    limits.add_argument("--cl", type=float, default=0.95, help="confidence level (default 0.95)")
    limits.add_argument(
        "--method", default="asymptotic", help="asymptotic (default) or toys (small samples)"
    )
    limits.add_argument(
        "--toys", type=int, default=500, help="toys per n_sig value and hypothesis (--method toys)"
    )
    limits.add_argument(
        "--asimov-events", type=int, default=10_000, help="size of the weighted Asimov sample"
    )
    limits.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    limits.add_argument("--out", help="output folder (default runs/limits-<timestamp>/)")
    limits.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_dask(limits)
    limits.set_defaults(func=_limits)

    toys = commands.add_parser(
        "toys",
        help="pseudo-experiments: pulls, interval coverage and the q0 distribution",
        description="Draws pseudo-datasets from a truth, fits each with the extended "
        "likelihood of saved models (Minuit, HESSE, optionally MINOS), and reports pulls and "
        "68%% coverage per parameter; then background-only toys give the distribution of "
        "q0 against the asymptotic chi2. Writes toys.csv, null_toys.csv, toys.json, "
        "pulls.png and q0.png.",
    )
    toys.add_argument("--signal", required=True, help="signal model file")
    toys.add_argument("--background", required=True, help="background model file")
    toys.add_argument(
        "--truth",
        required=True,
        help="every parameter's true value: n_sig,n_bkg (events) and the signal and "
        "background parameters, e.g. n_sig=1000,n_bkg=100000,m_pole=455,gamma=33,tau=170",
    )
    toys.add_argument("--toys", type=int, default=100, help="toys at the truth (default 100)")
    toys.add_argument(
        "--null-toys", type=int, help="background-only toys for q0 (default: as --toys)"
    )
    toys.add_argument("--fix", help="parameters held at their truth in the fits")
    toys.add_argument(
        "--generator",
        default="model",
        help="what draws the toys: model (the saved models, default), breit-wigner (the "
        "toy's exact densities) or bootstrap (resampling --samples)",
    )
    toys.add_argument("--samples", help="signal,background event files for --generator bootstrap")
    toys.add_argument("--columns", help="columns of the observables in --samples")
    toys.add_argument("--minos", action="store_true", help="MINOS intervals and their coverage")
    toys.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    toys.add_argument("--out", help="output folder (default runs/toys-<timestamp>/)")
    toys.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_dask(toys)
    toys.set_defaults(func=_toys)

    validate = commands.add_parser(
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
        "--reference",
        required=True,
        help="breit-wigner (the toy's exact densities), lhco (the LHCO-style generator) or a "
        "file (.csv, .parquet, .h5) with the observable and parameter columns",
    )
    validate.add_argument(
        "--theta",
        action="append",
        default=[],
        help="a parameter point, e.g. m_pole=455,gamma=33; repeat for several (default for "
        "a file: every point in it)",
    )
    validate.add_argument(
        "--events", type=int, default=20_000, help="reference events per point (default 20000)"
    )
    validate.add_argument("--where", help='row selection of a reference file, e.g. "label == 1"')
    validate.add_argument(
        "--no-classifier", action="store_true", help="skip the classifier test (the slowest)"
    )
    validate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    validate.add_argument("--out", help="output folder (default runs/validate-<timestamp>/)")
    validate.set_defaults(func=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""Entry point of the `flowscan` console script."""
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"flowscan {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
