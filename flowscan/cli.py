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
