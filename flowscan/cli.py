r"""Command-line interface: `flowscan <command> ...`."""

from __future__ import annotations

__all__ = ["main"]

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> None:
    from .demo import DemoConfig, run_demo

    changes = {"seed": args.seed, "device": args.device}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    config = DemoConfig.quick(**changes) if args.quick else DemoConfig(**changes)
    run_demo(config, args.out, progress=not args.no_progress)


def _scan(args: argparse.Namespace) -> None:
    from .scan import METHODS, parse_start, run_scan

    methods = METHODS if args.method == "all" else [m for m in args.method.split(",") if m]
    run_scan(
        args.signal,
        args.background,
        args.data,
        args.n_sig,
        args.n_bkg,
        methods,
        columns=args.columns.split(",") if args.columns else None,
        start=parse_start(args.start),
        fixed=[f for f in (args.fix or "").split(",") if f],
        budget=args.budget,
        grid=args.grid,
        minos=args.minos,
        profiles=args.profiles,
        seed=args.seed,
        out=args.out,
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
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    scan = commands.add_parser(
        "scan",
        help="fit a data file with saved signal/background models, by one or more methods",
        description="Fits the mixture likelihood of saved signal and background models to "
        "a data file with each method, prints a table per method and writes scan.json and "
        "convergence.png.",
    )
    scan.add_argument("--signal", required=True, help="signal model file (DensityModel.save)")
    scan.add_argument("--background", required=True, help="background model file")
    scan.add_argument("--data", required=True, help="events: .csv, .parquet, .h5 or .hdf5")
    scan.add_argument("--columns", help="data columns of the observables, comma-separated")
    scan.add_argument("--n-sig", type=float, required=True, help="signal events in the data")
    scan.add_argument("--n-bkg", type=float, required=True, help="background events in the data")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""Entry point of the `flowscan` console script."""
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"flowscan {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
