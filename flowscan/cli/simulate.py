r"""`flowscan simulate`: Pythia 8 samples in the LHCO R&D schema, one file per process or
mass point, each with a metadata JSON beside it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import InputError
from ..io import output_file, run_folder, write_events
from ..parallel import dask_client
from ..samples.lhco import training_grid
from ..samples.simulation import SimulationSettings, check_masses, require_mc, simulate
from . import _options as o


def add_parser(commands: argparse._SubParsersAction) -> None:
    sim = o.command(
        commands,
        "simulate",
        out="output .h5 file (a folder with --grid)",
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
        "--events", type=o.positive_int, default=10_000, help="selected events (per mass point)"
    )
    sim.add_argument(
        "--max-eta", type=o.positive, help="|eta| cut on both leading jets (default none)"
    )
    sim.add_argument(
        "--smearing",
        type=o.non_negative,
        default=0.0,
        help="Gaussian relative jet energy resolution, a stand-in for Delphes (default 0)",
    )
    sim.add_argument(
        "--jes",
        type=float,
        default=0.0,
        help="jet energy scale shift, relative: every jet four-momentum times 1 + JES before "
        "the trigger (e.g. 0.01 for +1 sigma of a 1%% scale; default 0)",
    )
    sim.add_argument(
        "--jms",
        type=float,
        default=0.0,
        help="jet mass scale shift, relative: jet masses times 1 + JMS further (default 0)",
    )
    sim.add_argument(
        "--chunk-size", type=o.positive_int, default=500, help="events per task (default 500)"
    )
    o.add_progress(sim)
    o.add_dask(sim)
    sim.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    r"""Simulates `--events` selected events of `--process` and writes them as HDF5 (key
    `df`, like the R&D file) with `<file>.json` (metadata, versions); with `--grid`, a
    file `signal_<mZ'>_<mX>_<mY>.h5` per mass point in the folder `--out`, point i
    seeded with `--seed` + i. The chunks run on Dask once every input has been
    checked."""
    masses, out = o.masses(args.masses), args.out
    process, events, seed, chunk_size = args.process, args.events, args.seed, args.chunk_size
    grid = parse_grid(args.grid) if args.grid is not None else None
    if not (-1 < args.jes < 1 and -1 < args.jms < 1):
        raise InputError(
            f"--jes and --jms are relative shifts in (-1, 1), e.g. 0.02 for +2%; got "
            f"{args.jes}, {args.jms}"
        )
    settings = SimulationSettings(
        max_eta=args.max_eta, smearing=args.smearing, jes=args.jes, jms=args.jms
    )
    if process == "qcd" and (masses is not None or grid is not None):
        raise InputError("QCD background has no masses: leave out --masses and --grid")
    if process == "signal" and (masses is None) == (grid is None):
        raise InputError("the signal needs either --masses m_zprime,m_x,m_y or --grid")
    points = [masses] if grid is None else list(grid)
    for point in points:
        check_masses(point)
    require_mc()
    if grid is None:
        paths = [output_file(out, (".h5", ".hdf5"))]
    else:
        if Path(out).suffix:
            raise InputError(f"--out {out}: with --grid, name a folder (one file per mass point)")
        folder = run_folder(out, "simulate")
        paths = [folder / ("signal_" + "_".join(f"{m:g}" for m in p) + ".h5") for p in grid]
    with dask_client(args.jobs, args.scheduler) as client:
        for i, (point, path) in enumerate(zip(points, paths, strict=True)):
            if grid is not None:
                print(f"mass point {i + 1}/{len(grid)}: (m_Z', m_X, m_Y) = {tuple(point)} GeV")
            frame, meta = simulate(
                events, point, seed + i, settings, chunk_size, client, not args.no_progress
            )
            write_events(frame, path, meta)
            print(
                f"wrote {path}: {meta['passed']} events passing of {meta['generated']} "
                f"generated ({meta['efficiency']:.1%}), and {path.with_suffix('.json').name}"
            )
    return 0


def parse_grid(text: str | None) -> list[tuple[float, float, float]]:
    r"""`--grid` values: `""` for seed 002's grid, or `"MZ;MX;MY"` with comma-separated
    masses in GeV per axis (e.g. `"3000,4000;500;100,200"`), crossed with seed 002's
    constraints m_Z' - m_X > 1000 and m_X - m_Y > 100."""
    if not text:
        return training_grid()
    axes = text.split(";")
    if len(axes) != 3:
        raise InputError(f"--grid takes MZ;MX;MY (comma-separated GeV per axis), got {text!r}")
    try:
        values = [[float(m) for m in axis.split(",")] for axis in axes]
    except ValueError:
        raise InputError(f"--grid takes MZ;MX;MY, each a number or comma-separated numbers "
                         f"in GeV, got {text!r}") from None  # fmt: skip
    points = training_grid(*values)
    if not points:
        raise InputError(f"--grid {text!r} has no point with m_Z' - m_X > 1000, m_X - m_Y > 100")
    return points
