r"""`flowscan simulate`: Pythia 8 samples in the LHCO R&D schema, one file per process or
mass point, each with a metadata JSON beside it."""

from __future__ import annotations

__all__ = ["parse_grid", "run_simulate"]

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .runinfo import versions, write_json
from .toys.lhco import training_grid
from .toys.simulation import SimulationSettings, simulate

if TYPE_CHECKING:
    from distributed import Client


def _write(frame, meta: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
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
    client: Client | None = None,
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

    Returns:
        The files written.
    """
    settings = settings or SimulationSettings()
    if process not in ("qcd", "signal"):
        raise ValueError(f"--process is qcd or signal, got {process!r}")
    if process == "qcd" and (masses is not None or grid is not None):
        raise ValueError("QCD background has no masses: leave out --masses and --grid")
    if process == "signal" and (masses is None) == (grid is None):
        raise ValueError("the signal needs either --masses m_zprime,m_x,m_y or --grid")
    out = Path(out)
    if grid is None:
        if out.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"--out {out}: write an HDF5 file (.h5), the R&D file's format")
        frame, meta = simulate(events, masses, seed, settings, chunk_size, client, progress)
        _write(frame, meta, out)
        return [out]
    if out.suffix:
        raise ValueError(f"--out {out}: with --grid, name a folder (one file per mass point)")
    files = []
    for i, point in enumerate(grid):
        print(f"mass point {i + 1}/{len(grid)}: (m_Z', m_X, m_Y) = {tuple(point)} GeV")
        frame, meta = simulate(events, point, seed + i, settings, chunk_size, client, progress)
        path = out / ("signal_" + "_".join(f"{m:g}" for m in point) + ".h5")
        _write(frame, meta, path)
        files.append(path)
    return files


def parse_grid(text: str | None) -> list[tuple[float, float, float]]:
    r"""`--grid` values: `""` for seed 002's grid, or `"MZ;MX;MY"` with comma-separated
    masses in GeV per axis (e.g. `"3000,4000;500;100,200"`), crossed with seed 002's
    constraints m_Z' - m_X > 1000 and m_X - m_Y > 100."""
    if not text:
        return training_grid()
    axes = text.split(";")
    if len(axes) != 3:
        raise ValueError(f"--grid takes MZ;MX;MY (comma-separated GeV per axis), got {text!r}")
    points = training_grid(*([float(m) for m in axis.split(",")] for axis in axes))
    if not points:
        raise ValueError(f"--grid {text!r} has no point with m_Z' - m_X > 1000, m_X - m_Y > 100")
    return points
