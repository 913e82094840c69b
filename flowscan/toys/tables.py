r"""Reading events from tabular files (CSV, Parquet, HDF5) through pandas."""

from __future__ import annotations

from ..exceptions import InputError

__all__ = ["read_events", "read_table"]

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from . import lhco

_READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".h5": pd.read_hdf,
    ".hdf5": pd.read_hdf,
}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    r"""A CSV, Parquet or HDF5 table through pandas. A table in the LHCO R&D schema
    (`lhco.SCHEMA`) gains the five LHCO observables (`lhco.features`) as columns.
    An unknown format or a file pandas cannot read raises `ValueError`."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: unknown format {path.suffix!r}; use one of {sorted(_READERS)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data file")
    try:
        frame = reader(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise InputError(
            f"{path}: cannot be read as {path.suffix} ({type(e).__name__}: {e})"
        ) from None
    if set(lhco.SCHEMA[:-1]) <= set(frame.columns):
        derived = lhco.features(frame)
        frame = frame.join(derived[[c for c in derived.columns if c not in frame.columns]])
    return frame


def read_events(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    columns: Sequence[str],
    where: str | None = None,
) -> Tensor:
    r"""Events from a table (`read_table`), `columns` in that order.

    Arguments:
        path: CSV, Parquet or HDF5 file, or several read as one (e.g. a signal and a
            background file, or the files of `flowscan simulate --grid`).
        columns: Columns to return.
        where: Optional `pandas.DataFrame.query` selection, e.g. `"label == 0"`.

    Returns:
        float64 tensor of shape `(N, len(columns))`. Missing columns, a bad selection or
        one that keeps no event raise `ValueError` naming the problem.
    """
    if not isinstance(path, (str, os.PathLike)):
        return torch.cat([read_events(p, columns, where) for p in path])
    frame = read_table(path)
    if where:
        try:
            frame = frame.query(where)
        except Exception as e:  # pandas raises many types for a bad expression
            raise InputError(f"{path}: cannot select {where!r} ({type(e).__name__}: {e})") from None
        if frame.empty:
            raise InputError(f"{path}: no events pass {where!r}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing columns {missing}; it has {list(frame.columns)} "
            "(name the columns with --columns)"
        )
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        text = values.isna() & frame[column].notna()
        if text.any() or frame[column].dtype == bool:
            row = frame.index[text.to_numpy()][0] if text.any() else frame.index[0]
            raise InputError(
                f"{path}: column {column} holds {frame[column].loc[row]!r} at row {row}, "
                "not a number"
            )
    derived = {v.name for v in lhco.OBSERVABLES} & set(columns)
    if set(lhco.SCHEMA[:-1]) <= set(frame.columns) and derived:  # observables of the schema
        try:
            lhco.check_schema(frame)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
    return torch.tensor(frame[list(columns)].to_numpy(dtype="float64", copy=True))
