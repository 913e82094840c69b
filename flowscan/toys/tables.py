r"""Reading events from tabular files (CSV, Parquet, HDF5) through pandas."""

from __future__ import annotations

__all__ = ["read_events"]

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

_READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".h5": pd.read_hdf,
    ".hdf5": pd.read_hdf,
}


def read_events(path: str | os.PathLike, columns: Sequence[str]) -> Tensor:
    r"""Events from a CSV, Parquet or HDF5 (pandas) table, `columns` in that order.

    Returns:
        float64 tensor of shape `(N, len(columns))`. Missing columns, a format that is
        not known, or a file pandas cannot read raise `ValueError` naming the problem.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unknown format {path.suffix!r}; use one of {sorted(_READERS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    try:
        frame = reader(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise ValueError(
            f"{path}: cannot be read as {path.suffix} ({type(e).__name__}: {e})"
        ) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing columns {missing}; it has {list(frame.columns)} "
            "(name the columns with --columns)"
        )
    return torch.tensor(frame[list(columns)].to_numpy(dtype="float64", copy=True))
