r"""`flowscan simulate`: Pythia 8 samples in the LHCO R&D schema, one file per process or
mass point, each with a metadata JSON beside it."""

from __future__ import annotations

__all__ = ["parse_grid", "run_simulate"]

import os
from collections.abc import Sequence
from pathlib import Path

from .exceptions import InputError
from .parallel import dask_client
from .runinfo import output_file, run_folder, versions, write_json
from .toys.lhco import training_grid
from .toys.simulation import SimulationSettings, check_masses, require_mc, simulate


def _write(frame, meta: dict, out: Path) -> None:
    frame.to_hdf(out, key="df", mode="w")
    write_json(out.with_suffix(".json"), meta | {"versions": versions()})
    print(
        f"wrote {out}: {meta['passed']} events passing of {meta['generated']} generated "
        f"({meta['efficiency']:.1%}), and {out.with_suffix('.json').name}"
    )


def run_simulate(
    process: str,
    events: int,
    out: str | os.PathLike,
    masses: Sequence[float] | None = None,
    grid: Sequence[Sequence[float]] | None = None,
    seed: int = 0,
    settings: SimulationSettings | None = None,
    chunk_size: int = 500,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> list[Path]:
    r"""Simulates `events` selected events of `process` (`"qcd"` or `"signal"`) and writes
    them as HDF5 (key `df`, like the R&D file) with `<file>.json` (metadata, versions).

    Arguments:
        out: The `.h5` file; with `grid`, a folder that gets `signal_<mZ'>_<mX>_<mY>.h5`
            per point.
        masses: `(m_Z', m_X, m_Y)` in GeV of the signal.
        settings: Generator and jet settings (default `SimulationSettings()`).
        grid: Instead of `masses`, signal mass points (`lhco.training_grid()` is seed
            002's); point i is seeded with `seed + i`.
        jobs, scheduler: Where the chunks run (`dask_client`), once every input has been
            checked.

    Returns:
        The files written.
    """
    settings = settings or SimulationSettings()
    if process not in ("qcd", "signal"):
        raise InputError(f"--process is qcd or signal, got {process!r}")
    if process == "qcd" and (masses is not None or grid is not None):
        raise InputError("QCD background has no masses: leave out --masses and --grid")
    if process == "signal" and (masses is None) == (grid is None):
        raise InputError("the signal needs either --masses m_zprime,m_x,m_y or --grid")
    if events < 1 or chunk_size < 1:
        raise InputError(f"need events >= 1 and chunk_size >= 1, got {events}, {chunk_size}")
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
    with dask_client(jobs, scheduler) as client:
        for i, (point, path) in enumerate(zip(points, paths, strict=True)):
            if grid is not None:
                print(f"mass point {i + 1}/{len(grid)}: (m_Z', m_X, m_Y) = {tuple(point)} GeV")
            frame, meta = simulate(events, point, seed + i, settings, chunk_size, client, progress)
            _write(frame, meta, path)
    return paths


def parse_grid(text: str | None) -> list[tuple[float, float, float]]:
    r"""`--grid` values: `""` for seed 002's grid, or `"MZ;MX;MY"` with comma-separated
    masses in GeV per axis (e.g. `"3000,4000;500;100,200"`), crossed with seed 002's
    constraints m_Z' - m_X > 1000 and m_X - m_Y > 100."""
    if not text:
        return training_grid()
    axes = text.split(";")
    if len(axes) != 3:
        raise InputError(f"--grid takes MZ;MX;MY (comma-separated GeV per axis), got {text!r}")
    points = training_grid(*([float(m) for m in axis.split(",")] for axis in axes))
    if not points:
        raise InputError(f"--grid {text!r} has no point with m_Z' - m_X > 1000, m_X - m_Y > 100")
    return points
