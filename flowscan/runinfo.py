r"""What a run writes beside its results: configuration, seed and versions."""

from __future__ import annotations

__all__ = ["file_names", "versions", "write_json"]

import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

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


def write_json(path: str | os.PathLike, data: dict) -> None:
    r"""Writes `data` as indented JSON (numpy arrays as lists)."""
    Path(path).write_text(json.dumps(data, indent=2, default=_default) + "\n")
