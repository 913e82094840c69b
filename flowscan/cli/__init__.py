r"""Command-line interface: `flowscan <command> ...`, one module per command (its slice
of the parser, `add_parser`, and `run`, which calls the library), the options they share
in `_options`.

Exit codes: 0 when every fit is valid (or at a bound, which the output says); 1 when a
fit is invalid or failed (results are still written, marked so); 2 for bad input (one
line on stderr naming the problem); 3 for an internal error (a bug: rerun with
`flowscan --debug ...` for the traceback and report it).
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import sys
import traceback
import warnings
from collections.abc import Sequence

from ..exceptions import FlowscanError, FlowscanWarning
from . import (
    _options,
    closure,
    demo,
    export,
    generate,
    limits,
    scan,
    simulate,
    toys,
    train,
    validate,
)

# In the order `flowscan --help` lists them.
COMMANDS = (demo, generate, simulate, train, scan, limits, toys, validate, closure, export)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowscan",
        description="Signal-model parameter scans with conditional normalizing flows.",
        epilog=_options.EPILOG,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (for reports)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
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
