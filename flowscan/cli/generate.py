r"""`flowscan generate`: LHCO-style dijet events from the fast generator, in the LHCO R&D
file schema."""

from __future__ import annotations

import argparse

from ..exceptions import InputError
from ..io import check_memory, output_file, write_events
from ..samples import lhco
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    generate = o.command(
        commands,
        "generate",
        out="output .h5 file",
        help="LHCO-style dijet events (fast generator) in the LHCO R&D file schema",
        description="Writes QCD background and, with --masses, Z' -> X Y signal events, "
        "labelled and shuffled, as an HDF5 table in the LHCO R&D schema, with a metadata "
        "JSON beside it.",
    )
    generate.add_argument("--events", type=o.count, default=100_000, help="QCD events")
    generate.add_argument("--signal-events", type=o.count, default=0, help="signal events")
    generate.add_argument("--masses", help="m_zprime,m_x,m_y in GeV, e.g. 3500,500,100")
    generate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Writes `--events` QCD and `--signal-events` signal events at `--masses` to the
    HDF5 file `--out` (key `df`) and the metadata to `<file>.json`: the masses (GeV),
    and for a signal sample (`--events 0`) the events generated and passing the
    trigger, as `flowscan simulate` records them (`Efficiency.read`)."""
    masses = o.masses(args.masses)
    if args.events + args.signal_events == 0:
        raise InputError("nothing to generate: give --events or --signal-events above 0")
    if args.signal_events and masses is None:
        raise InputError("--signal-events needs --masses m_zprime,m_x,m_y (GeV)")
    if masses is not None:
        lhco.generate(1, masses)  # checks the masses before the real work
    check_memory(args.events + args.signal_events, 2_000, "--events + --signal-events")
    out = output_file(args.out, (".h5", ".hdf5"))
    frame = lhco.pseudo_data(args.events, args.signal_events, masses, seed=args.seed)
    meta = {
        "generator": "flowscan.samples.lhco (fast LHCO-style generator)",
        "background_events": args.events,
        "signal_events": args.signal_events,
        "masses": dict(zip(["m_zprime", "m_x", "m_y"], masses or [], strict=False)),
        "seed": args.seed,
    }
    if args.events == 0:  # a signal sample: its efficiency, as flowscan simulate's record
        meta |= {"generated": frame.attrs["generated"], "passed": len(frame)}
        meta["efficiency"] = len(frame) / meta["generated"]
    write_events(frame, out, meta)
    print(f"wrote {out} ({len(frame)} events, LHCO R&D schema) and {out.with_suffix('.json')}")
    return 0
