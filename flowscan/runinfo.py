r"""What a run writes beside its results: configuration, seed and versions."""

from __future__ import annotations

__all__ = ["check_memory", "file_names", "output_file", "run_folder", "versions", "write_json"]

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .exceptions import InputError

_PACKAGES = [
    "flowscan",
    "torch",
    "zuko",
    "numpy",
    "scipy",
    "iminuit",
    "botorch",
    "pandas",
    "distributed",
]


def versions() -> dict[str, str]:
    r"""Versions of Python, the platform and the packages a result depends on."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def file_names(files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    r"""One file or several as a list of names, for a run's JSON."""
    return (
        [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else list(map(os.fspath, files))
    )


def _default(o: object) -> object:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def _finite(o: object) -> object:
    r"""`o` with every non-finite float replaced by `None` (JSON has no NaN)."""
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def write_json(path: str | os.PathLike, data: dict) -> None:
    r"""Writes `data` as indented JSON (numpy arrays as lists, NaN and inf as null)."""
    text = json.dumps(_finite(data), indent=2, default=_default, allow_nan=False)
    Path(path).write_text(text + "\n")


def run_folder(out: str | os.PathLike | None, command: str) -> Path:
    r"""The folder a command writes to, `out` or `runs/<command>-<timestamp>/`, created
    now: a bad `--out` (an existing file, a folder that cannot be made or written to)
    fails before the work, not after it."""
    out = Path(out or f"runs/{command}-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is an existing file: name a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create the folder ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out {out}: the folder is not writable; name another with --out")
    return out


def output_file(out: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    r"""A file a command will write, checked before the work: one of `suffixes`, not a
    folder, in a folder that can be made and written to (made now)."""
    out = Path(out)
    if out.suffix.lower() not in suffixes:
        raise InputError(f"--out {out}: name a {' or '.join(suffixes)} file")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: name a file")
    run_folder(out.parent, "")
    return out


def check_memory(count: float, nbytes: float, what: str) -> None:
    r"""Raises `InputError` if `count` items of about `nbytes` bytes each would take more
    than half of this machine's memory: an absurd size fails at once, not by swapping."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if count * nbytes > total / 2:
        raise InputError(
            f"{what} = {count:.3g} would need about {count * nbytes / 1e9:.3g} GB of memory; "
            f"this machine has {total / 1e9:.3g} GB"
        )
