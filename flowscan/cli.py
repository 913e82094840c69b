r"""Command-line interface: `flowscan <command> ...`.

Exit codes: 0 when every fit is valid (or at a bound, which the output says); 1 when a
fit is invalid or failed (results are still written, marked so); 2 for bad input (one
line on stderr naming the problem); 3 for an internal error (a bug: rerun with
`flowscan --debug ...` for the traceback and report it).
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import math
import sys
import traceback
import warnings
from collections.abc import Sequence

from .exceptions import FlowscanError, FlowscanWarning, InputError

EPILOG = (
    "exit codes: 0 every fit valid (or at a bound, as printed), 1 a fit invalid or failed, "
    "2 bad input, 3 internal error (rerun with --debug and report it)"
)


def _names(text: str | None) -> list[str]:
    r"""`"a,b"` to `["a", "b"]`; `None` or `""` to `[]`; a name given twice is refused."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{twice} given twice in {text!r}")
    return names


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        word = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {word}, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _yield(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of events >= 0, got {text}")
    return value


def _count_float(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


class _Once(argparse.Action):
    r"""Stores an option's value, refusing the option given twice (the last would win
    silently)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if getattr(namespace, f"_seen_{self.dest}", False):
            parser.error(f"argument {option_string}: given twice")
        setattr(namespace, f"_seen_{self.dest}", True)
        setattr(namespace, self.dest, values)


def _masses(text: str | None) -> list[float] | None:
    r"""`--masses m_zprime,m_x,m_y` (GeV) as three numbers, or `None`."""
    if text is None:
        return None
    try:
        masses = [float(m) for m in text.split(",")]
    except ValueError:
        masses = []
    if len(masses) != 3:
        raise InputError(f"--masses takes m_zprime,m_x,m_y in GeV, e.g. 3500,500,100; got {text!r}")
    return masses


def _exit_code(statuses: Sequence[str]) -> int:
    r"""1 if any fit is invalid or failed, else 0."""
    return int(any(s in ("invalid", "failed") for s in statuses))


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    changes = {"seed": args.seed, "device": args.device, "flow": args.flow}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    config = DemoConfig.quick(**changes) if args.quick else DemoConfig(**changes)
    result = run_demo(config, args.out, progress=not args.no_progress)
    return _exit_code([result["scan_flow"]["status"], result["scan_exact"]["status"]])


def _scan(args: argparse.Namespace) -> int:
    from .scan import METHODS, parse_start, run_scan

    methods = METHODS if args.method == "all" else _names(args.method)
    results = run_scan(
        args.signal,
        args.background,
        args.data,
        args.n_sig,
        args.n_bkg,
        methods,
        columns=_names(args.columns) or None,
        where=args.where,
        start=parse_start(args.start),
        fixed=_names(args.fix),
        budget=args.budget,
        grid=args.grid,
        minos=args.minos,
        profiles=args.profiles,
        check_models=not args.no_model_check,
        seed=args.seed,
        out=args.out,
    )
    return _exit_code([r.status for r in results.values()])


def _toys(args: argparse.Namespace) -> int:
    from .scan import parse_start
    from .toy_study import run_toys

    main, null = run_toys(
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
        jobs=args.jobs,
        scheduler=args.scheduler,
        out=args.out,
        progress=not args.no_progress,
    )
    # Some failed fits are part of a toy study (they are counted); all failed is not.
    return int(len(main.valid) == 0 or (null is not None and len(null.valid) == 0))


def _validate(args: argparse.Namespace) -> int:
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
    return 0


def _limits(args: argparse.Namespace) -> int:
    from .limit_scan import parse_values, run_limits
    from .scan import parse_start

    at = {}
    for text in args.at:
        name, values = parse_values(text)
        if name in at:
            raise InputError(f"--at {name} given twice: give its values in one --at")
        at[name] = values
    table = run_limits(
        args.signal,
        args.background,
        args.data,
        at,
        columns=_names(args.columns) or None,
        where=args.where,
        start=parse_start(args.start),
        fixed=_names(args.fix),
        cl=args.cl,
        method=args.method,
        toys=args.toys,
        asimov_events=args.asimov_events,
        seed=args.seed,
        jobs=args.jobs,
        scheduler=args.scheduler,
        out=args.out,
        progress=not args.no_progress,
    )
    return int(table["status"].eq("failed").all())


def _add_dask(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        help="worker processes of the local Dask cluster (default: all cores)",
    )
    parser.add_argument(
        "--scheduler", help="address of a Dask scheduler to run on instead, e.g. tcp://host:8786"
    )


def _generate(args: argparse.Namespace) -> int:
    from .runinfo import check_memory, output_file, versions, write_json
    from .toys import lhco

    masses = _masses(args.masses)
    if args.events + args.signal_events == 0:
        raise InputError("nothing to generate: give --events or --signal-events above 0")
    if args.signal_events and masses is None:
        raise InputError("--signal-events needs --masses m_zprime,m_x,m_y (GeV)")
    if masses is not None:
        lhco.generate(1, masses)  # checks the masses before the real work
    check_memory(args.events + args.signal_events, 2_000, "--events + --signal-events")
    out = output_file(args.out, (".h5", ".hdf5"))
    frame = lhco.pseudo_data(args.events, args.signal_events, masses, seed=args.seed)
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
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .production import parse_grid, run_simulate
    from .toys.simulation import SimulationSettings

    masses = _masses(args.masses)
    grid = parse_grid(args.grid) if args.grid is not None else None
    settings = SimulationSettings(max_eta=args.max_eta, smearing=args.smearing)
    run_simulate(
        args.process,
        args.events,
        args.out,
        masses=masses,
        grid=grid,
        seed=args.seed,
        settings=settings,
        chunk_size=args.chunk_size,
        jobs=args.jobs,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import run_train

    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        raise InputError(f"--hidden takes layer sizes like 64,64, got {args.hidden!r}") from None
    if not hidden or min(hidden) < 1:
        raise InputError(f"--hidden takes positive layer sizes like 64,64, got {args.hidden!r}")
    run_train(
        args.out,
        data=args.data,
        where=args.where,
        generate=args.generate,
        events=args.events,
        observables=_names(args.observables) or None,
        context=_names(args.context),
        role=args.role,
        flow=args.flow,
        transforms=args.transforms,
        hidden_features=hidden,
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
    return 0


def _command(commands, name: str, **kwargs) -> argparse.ArgumentParser:
    r"""A subcommand whose single-valued options refuse to be given twice."""
    parser = commands.add_parser(name, epilog=EPILOG, **kwargs)
    parser.register("action", None, _Once)  # the action of options that give none
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowscan",
        description="Signal-model parameter scans with conditional normalizing flows.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (for reports)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = _command(
        commands,
        "demo",
        help="Breit-Wigner bump hunt: train flows, fit pseudo-data, compare with the exact fit",
        description="Trains signal and background flows on the Breit-Wigner toy, fits "
        "pseudo-data by gradient descent with the flows and with the exact densities, "
        "prints the comparison and writes result.json, the models, config and plots.",
    )
    demo.add_argument("--out", help="output folder (default runs/demo-<timestamp>/)")
    demo.add_argument(
        "--quick", action="store_true", help="small models in seconds, to try the commands"
    )
    demo.add_argument("--epochs", type=_positive_int, help="training epochs per flow (default 20)")
    demo.add_argument(
        "--flow",
        default="mog",
        help="model family, as for train (default mog: Gaussian mixture)",
    )
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    generate = _command(
        commands,
        "generate",
        help="LHCO-style dijet events (fast generator) in the LHCO R&D file schema",
        description="Writes QCD background and, with --masses, Z' -> X Y signal events, "
        "labelled and shuffled, as an HDF5 table in the LHCO R&D schema, with a metadata "
        "JSON beside it.",
    )
    generate.add_argument("--events", type=_count, default=100_000, help="QCD events")
    generate.add_argument("--signal-events", type=_count, default=0, help="signal events")
    generate.add_argument("--masses", help="m_zprime,m_x,m_y in GeV, e.g. 3500,500,100")
    generate.add_argument("--out", required=True, help="output .h5 file")
    generate.set_defaults(func=_generate)

    sim = _command(
        commands,
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
    sim.add_argument(
        "--events", type=_positive_int, default=10_000, help="selected events (per mass point)"
    )
    sim.add_argument(
        "--max-eta", type=_positive, help="|eta| cut on both leading jets (default none)"
    )
    sim.add_argument(
        "--smearing",
        type=_count_float,
        default=0.0,
        help="Gaussian relative jet energy resolution, a stand-in for Delphes (default 0)",
    )
    sim.add_argument(
        "--chunk-size", type=_positive_int, default=500, help="events per task (default 500)"
    )
    sim.add_argument("--out", required=True, help="output .h5 file (a folder with --grid)")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_dask(sim)
    sim.set_defaults(func=_simulate)

    train = _command(
        commands,
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
        "--generate",
        choices=["lhco-signal", "lhco-qcd"],
        help="lhco-signal (seed 002's mass grid) or lhco-qcd (background)",
    )
    train.add_argument("--where", help='row selection of --data, e.g. "label == 0"')
    train.add_argument(
        "--events",
        type=_positive_int,
        default=10_000,
        help="generated events (per mass point for signal)",
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
        "--role",
        choices=["signal", "background"],
        help="what the model describes, recorded in the file so that a scan refuses "
        "swapped models (default: from --generate; none for --data)",
    )
    train.add_argument(
        "--flow",
        default="mog",
        help="mog (autoregressive Gaussian mixture, default), nsf (autoregressive splines), "
        "maf, realnvp or coupling-nsf",
    )
    train.add_argument(
        "--transforms", type=_positive_int, default=4, help="flow transforms (default 4)"
    )
    train.add_argument("--hidden", default="64,64", help="hidden layer sizes (default 64,64)")
    train.add_argument(
        "--bins", type=_positive_int, default=8, help="spline bins for nsf (default 8)"
    )
    train.add_argument(
        "--components",
        type=_positive_int,
        default=20,
        help="Gaussians per observable for mog (default 20)",
    )
    train.add_argument(
        "--preprocessing",
        help="truncated (mog's default: Gaussians cut at the edges, finite densities on "
        "them), logit (the flows' default and only choice) or, for mog, response (seed "
        "001's latent space for windows)",
    )
    train.add_argument(
        "--epochs", type=_positive_int, default=20, help="training epochs (default 20)"
    )
    train.add_argument("--batch-size", type=_positive_int, default=1024, help="minibatch size")
    train.add_argument("--lr", type=_positive, default=3e-3, help="learning rate (default 3e-3)")
    train.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    train.add_argument("--out", help="output folder (default runs/train-<timestamp>/)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    scan = _command(
        commands,
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
    scan.add_argument("--where", help='row selection of --data, e.g. "tau2j1 > 0"')
    scan.add_argument(
        "--n-sig",
        type=_yield,
        help="signal events in the data, fixing the fraction with --n-bkg; omit both to fit "
        "the yields (extended likelihood)",
    )
    scan.add_argument("--n-bkg", type=_yield, help="background events in the data")
    scan.add_argument(
        "--method", default="minuit,gradient", help="comma-separated methods or 'all'"
    )
    scan.add_argument("--start", help="starting values, e.g. m_pole=450,gamma=30")
    scan.add_argument("--fix", help="parameters held at their start, comma-separated")
    scan.add_argument(
        "--budget", type=_positive_int, default=64, help="evaluations for bayesopt/random"
    )
    scan.add_argument("--grid", type=_positive_int, default=11, help="grid points per parameter")
    scan.add_argument("--minos", action="store_true", help="MINOS intervals with minuit")
    scan.add_argument(
        "--profiles",
        action="store_true",
        help="1D profiles and 2D contours with minuit (profiles.png, contours.png)",
    )
    scan.add_argument(
        "--no-model-check",
        action="store_true",
        help="accept a signal model recorded as background (or the reverse) or the same "
        "model twice",
    )
    scan.add_argument("--out", help="output folder (default runs/scan-<timestamp>/)")
    scan.set_defaults(func=_scan)

    limits = _command(
        commands,
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
    limits.add_argument("--where", help='row selection of --data, e.g. "tau2j1 > 0"')
    limits.add_argument(
        "--at",
        action="append",
        required=True,
        help="values of a signal parameter: name=low:high:count or name=v1,v2,...; "
        "repeat for each (e.g. --at m_pole=300:700:9 --at gamma=40)",
    )
    limits.add_argument("--start", help="starting values of background parameters, e.g. tau=170")
    limits.add_argument("--fix", help="background parameters held at their start")
    limits.add_argument(
        "--cl", type=_fraction, default=0.95, help="confidence level (default 0.95)"
    )
    limits.add_argument(
        "--method",
        default="asymptotic",
        choices=["asymptotic", "toys"],
        help="asymptotic (default) or toys (small samples)",
    )
    limits.add_argument(
        "--toys",
        type=_positive_int,
        default=500,
        help="toys per n_sig value and hypothesis (--method toys)",
    )
    limits.add_argument(
        "--asimov-events",
        type=_positive_int,
        default=10_000,
        help="size of the weighted Asimov sample",
    )
    limits.add_argument("--out", help="output folder (default runs/limits-<timestamp>/)")
    limits.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_dask(limits)
    limits.set_defaults(func=_limits)

    toys = _command(
        commands,
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
    toys.add_argument(
        "--toys", type=_positive_int, default=100, help="toys at the truth (default 100)"
    )
    toys.add_argument(
        "--null-toys", type=_count, help="background-only toys for q0 (default: as --toys)"
    )
    toys.add_argument("--fix", help="parameters held at their truth in the fits")
    toys.add_argument(
        "--generator",
        default="model",
        choices=["model", "breit-wigner", "bootstrap"],
        help="what draws the toys: model (the saved models, default), breit-wigner (the "
        "toy's exact densities) or bootstrap (resampling --samples)",
    )
    toys.add_argument("--samples", help="signal,background event files for --generator bootstrap")
    toys.add_argument("--columns", help="columns of the observables in --samples")
    toys.add_argument("--minos", action="store_true", help="MINOS intervals and their coverage")
    toys.add_argument("--out", help="output folder (default runs/toys-<timestamp>/)")
    toys.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_dask(toys)
    toys.set_defaults(func=_toys)

    validate = _command(
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
        "--events",
        type=_positive_int,
        default=20_000,
        help="reference events per point (default 20000)",
    )
    validate.add_argument("--where", help='row selection of a reference file, e.g. "label == 1"')
    validate.add_argument(
        "--no-classifier", action="store_true", help="skip the classifier test (the slowest)"
    )
    validate.add_argument("--out", help="output folder (default runs/validate-<timestamp>/)")
    validate.set_defaults(func=_validate)
    return parser


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    r"""Entry point of the `flowscan` console script; returns the exit code (module
    docstring). Errors print one line, `flowscan <command>: error: ...`, and warnings
    one line each, `flowscan <command>: warning: ...`; `--debug` adds tracebacks."""
    args = _parser().parse_args(argv)
    prefix = f"flowscan {args.command}"

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        kind = "" if issubclass(category, FlowscanWarning) else f"{category.__name__}: "
        print(f"{prefix}: warning: {kind}{_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = show
        try:
            return args.func(args)
        except (FlowscanError, OSError) as e:
            if args.debug:
                traceback.print_exc()
            text = e if isinstance(e, FlowscanError) or not e.strerror else e.strerror
            where = getattr(e, "filename", None)
            where = f"{where}: " if where and where not in str(text) else ""
            print(f"{prefix}: error: {where}{_one_line(text)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prefix}: interrupted", file=sys.stderr)
            return 130
        except Exception as e:
            if args.debug:
                raise
            print(
                f"{prefix}: internal error ({type(e).__name__}: {_one_line(e)}); rerun with "
                "flowscan --debug ... for the traceback, and please report it",
                file=sys.stderr,
            )
            return 3


if __name__ == "__main__":
    sys.exit(main())
