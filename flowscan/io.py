r"""Files in and out: event tables (CSV, Parquet, HDF5, ROOT) in, events, run folders
and JSON records (configuration, seed, versions) out."""

from __future__ import annotations

__all__ = [
    "FORMATS",
    "Derivation",
    "check_memory",
    "file_names",
    "output_file",
    "read_analysis",
    "read_events",
    "read_table",
    "read_variations",
    "read_weights",
    "run_folder",
    "versions",
    "write_events",
    "write_json",
    "write_record",
]

import json
import os
import platform
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .constraints import Constraint
from .exceptions import DependencyError, InputError, first_line
from .weights import check_weights

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
    "uproot",
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


def write_record(path: str | os.PathLike, config: Mapping, **results: object) -> None:
    r"""The JSON a command writes beside its results: `{"config": config, "seed": ...,
    "versions": versions(), **results}`, the seed taken from `config`."""
    record = {"config": dict(config), "seed": config.get("seed"), "versions": versions()}
    write_json(path, record | results)


def write_events(frame: pd.DataFrame, path: str | os.PathLike, meta: Mapping) -> None:
    r"""Writes events as an HDF5 table (key `df`, as the LHCO R&D files) and `meta` with
    the versions as JSON beside it (`<file>.json`)."""
    path = Path(path)
    frame.to_hdf(path, key="df", mode="w")
    write_json(path.with_suffix(".json"), dict(meta) | {"versions": versions()})


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


class Derivation(Protocol):
    r"""Columns a file format implies but does not store (the LHCO observables of the
    R&D schema, `flowscan.samples.lhco.FEATURES`), passed to `read_table` and
    `read_events`."""

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        r"""`frame` with the derived columns added where it has what they come from."""

    def check(self, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        r"""Raises `InputError` naming the rows of `frame` that give no usable value of
        the derived `columns` asked for."""


def _split_tree(path: str | os.PathLike) -> tuple[Path, str | None]:
    r"""`"events.root:tree"` to the file and the tree's name; other paths unchanged."""
    text = os.fspath(path)
    head, sep, tree = text.rpartition(".root:")
    return (Path(head + ".root"), tree) if sep else (Path(text), None)


_TREES = ("TTree", "ROOT::RNTuple")  # what ROOT files hold events in


def _read_root(path: Path, tree: str | None) -> pd.DataFrame:
    r"""The one-value-per-event branches (fields) of a TTree (or RNTuple) as columns;
    the names of the jagged (per-object) or multi-valued ones in
    `frame.attrs["jagged"]`."""
    try:
        import uproot
    except ImportError:
        raise DependencyError("reading ROOT files needs uproot: pip install uproot") from None
    try:
        file = uproot.open(path)
    except Exception as e:  # uproot raises many types for files that are not ROOT
        raise InputError(f"{path}: cannot be read as ROOT ({type(e).__name__}: {e})") from None
    with file:
        trees = [k.split(";")[0] for k, c in file.classnames().items() if c in _TREES]
        trees = list(dict.fromkeys(trees))
        if tree is None:
            if len(trees) != 1:
                raise InputError(
                    f"{path} holds {len(trees)} trees {trees}: name one, as {path}:TREE"
                )
            tree = trees[0]
        if tree not in trees:
            raise InputError(f"{path} has no tree {tree!r}; its trees are {trees}")
        try:
            arrays = file[tree].arrays(library="np")
        except Exception as e:
            raise InputError(f"{path}:{tree}: cannot read its branches ({e})") from None
    flat = {k: v for k, v in arrays.items() if v.dtype != object and v.ndim == 1}
    frame = pd.DataFrame(flat)
    frame.attrs["jagged"] = sorted(set(arrays) - set(flat))
    return frame


def _text(value: object) -> str | None:
    r"""An HDF5 attribute that is a string (bytes or str), else `None`."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def _read_hdf(path: Path) -> pd.DataFrame:
    r"""A table of an HDF5 file, read by h5py, which unpickles nothing: a pandas frame
    in the fixed format (`DataFrame.to_hdf`'s default, as the LHCO R&D files and `flowscan
    generate` write it), or the file's top-level one-dimensional numeric datasets of one
    length, a column each. pandas stores a column of Python objects (and the metadata of
    its table format) as pickles, which run code when unpickled: such a file is refused
    before anything of it is decoded, naming the columns."""
    import h5py

    try:
        file = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: cannot be read as HDF5 ({first_line(e)})") from None
    with file:
        frames = [k for k, g in file.items() if _text(g.attrs.get("pandas_type")) is not None]
        if len(frames) > 1:
            raise InputError(f"{path} holds {len(frames)} pandas tables {frames}: keep one a file")
        if not frames:
            columns = {
                k: d[()]
                for k, d in file.items()
                if isinstance(d, h5py.Dataset) and d.ndim == 1 and d.dtype.kind in "biufc"
            }
            if not columns or len({len(v) for v in columns.values()}) > 1:
                raise InputError(
                    f"{path}: neither a pandas table nor one-dimensional numeric datasets of "
                    "one length (a column each): write it with DataFrame.to_hdf or as Parquet"
                )
            return pd.DataFrame(columns)
        group = file[frames[0]]
        kind = _text(group.attrs["pandas_type"])
        if kind == "frame_table":
            raise InputError(
                f"{path}: a pandas table in the 'table' format, whose metadata are pickled "
                "Python objects that flowscan does not unpickle (unpickling runs code): "
                f"rewrite it with DataFrame.to_hdf(path, key={frames[0]!r}, format='fixed'), "
                "or as Parquet or CSV"
            )
        if kind != "frame":
            raise InputError(f"{path}: a pandas {kind}, not a table of columns (a DataFrame)")
        columns = {}
        for k in range(int(group.attrs["nblocks"])):
            names = [_text(n) for n in group[f"block{k}_items"][()]]
            values = group[f"block{k}_values"]
            if values.dtype.kind == "O":  # pandas' pickles, in variable-length bytes
                raise InputError(
                    f"{path}: columns {names} are stored as pickled Python objects, which "
                    "flowscan does not unpickle (unpickling runs code from the file): write "
                    "them as numbers (frame[columns].astype(float)), or leave them out, and "
                    "save the table again"
                )
            if values.dtype.kind not in "biufc":  # complex: refused by name in read_events
                raise InputError(f"{path}: columns {names} hold {values.dtype}, not numbers")
            data = values[()]
            data = data.T if values.attrs.get("transposed", 0) else data
            stored = _text(values.attrs.get("value_type")) or ""
            if stored.startswith(("datetime64", "timedelta64")):  # int64 ticks: refused by
                data = data.astype(stored)  # name in read_events, not read as numbers
            columns.update(zip(names, data, strict=True))
        order = [_text(n) for n in group["axis0"][()]]
        return pd.DataFrame({n: columns[n] for n in order if n in columns})


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".h5": _read_hdf,
    ".hdf5": _read_hdf,
}
FORMATS = (*_READERS, ".root")


def read_table(path: str | os.PathLike, derive: Derivation | None = None) -> pd.DataFrame:
    r"""A table of events: CSV or Parquet through pandas (pyarrow), HDF5 through h5py
    (`_read_hdf`: pandas' fixed format or plain numeric datasets), or a ROOT TTree (or
    RNTuple) through uproot (`file.root` with one tree, or `file.root:tree`;
    one-value-per-event branches become columns), with the columns of `derive` added.
    None of them runs code from the file: nothing is unpickled. An unknown format or a
    file that cannot be read raises `InputError`. Event weights are read by
    `read_weights`."""
    file, tree = _split_tree(path)
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{file}: unknown format {file.suffix!r}; use one of {list(FORMATS)}")
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such data file")
    if suffix == ".root":
        frame = _read_root(file, tree)
    elif suffix in (".h5", ".hdf5"):
        frame = _read_hdf(file)
    else:
        try:
            frame = _READERS[suffix](file)
        except Exception as e:  # pandas raises many types for unreadable files
            raise InputError(
                f"{file}: cannot be read as {file.suffix} ({type(e).__name__}: {e})"
            ) from None
    return frame if derive is None else derive.derive(frame)


def read_events(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    columns: Sequence[str],
    where: str | None = None,
    derive: Derivation | None = None,
) -> Tensor:
    r"""Events from a table (`read_table`), `columns` in that order.

    Arguments:
        path: CSV, Parquet, HDF5 or ROOT file (`file.root:tree`), or several read as one
            (e.g. a signal and a background file, or the files of `flowscan simulate
            --grid`).
        columns: Columns to return.
        where: Optional `pandas.DataFrame.query` selection, e.g. `"label == 0"`.
        derive: Columns the format implies (`flowscan.samples.lhco.FEATURES`), checked
            on the selected rows when asked for.

    Returns:
        float64 tensor of shape `(N, len(columns))`. Missing columns, text in a column, a
        jagged ROOT branch, a bad selection or one that keeps no event raise `InputError`
        naming the problem.
    """
    if not isinstance(path, (str, os.PathLike)):
        _once(path)
        return torch.cat([read_events(p, columns, where, derive) for p in path])
    frame = _selected(path, where, derive)
    jagged = [c for c in columns if c in frame.attrs.get("jagged", ())]
    if jagged:
        raise InputError(
            f"{path}: branches {jagged} hold several values per event (jagged or arrays); "
            "flowscan reads one value per event: write the one you mean (e.g. the leading "
            "jet's) to a branch of its own"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing columns {missing}; it has {list(frame.columns)} "
            "(name the columns with --columns)"
        )
    for column in columns:
        kind = frame[column].dtype.kind
        if kind == "c":
            raise InputError(
                f"{path}: column {column} holds complex numbers; an observable is real: "
                "write its real value (or its modulus) to the file"
            )
        if kind in "mM":
            what = "dates and times" if kind == "M" else "time spans"
            raise InputError(
                f"{path}: column {column} holds {what}, not numbers; write the observable "
                "as a number in its unit to the file"
            )
        values = pd.to_numeric(frame[column], errors="coerce")
        text = values.isna() & frame[column].notna()
        if text.any() or frame[column].dtype == bool:
            row = frame.index[text.to_numpy()][0] if text.any() else frame.index[0]
            raise InputError(
                f"{path}: column {column} holds {frame[column].loc[row]!r} at row {row}, "
                "not a number"
            )
    if derive is not None:
        try:
            derive.check(frame, columns)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
    return torch.tensor(frame[list(columns)].to_numpy(dtype="float64", copy=True))


def _once(paths: Sequence[str | os.PathLike]) -> None:
    r"""Refuses a file given twice among `paths` (its events would count twice)."""
    keys = [(f.resolve(), tree) for f, tree in map(_split_tree, paths)]
    twice = sorted({os.fspath(p) for p, k in zip(paths, keys, strict=True) if keys.count(k) > 1})
    if twice:
        raise InputError(
            f"{twice} given more than once: each event would count as many times; give "
            "each file once"
        )


def _selected(
    path: str | os.PathLike, where: str | None, derive: Derivation | None
) -> pd.DataFrame:
    r"""The table of `path` (`read_table`), the rows of `where` selected."""
    frame = read_table(path, derive)
    if where:
        try:
            frame = frame.query(where)
        except Exception as e:  # pandas raises many types for a bad expression
            raise InputError(f"{path}: cannot select {where!r} ({type(e).__name__}: {e})") from None
        if frame.empty:
            raise InputError(f"{path}: no events pass {where!r}")
    return frame


def read_weights(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    weight: str,
    where: str | None = None,
    derive: Derivation | None = None,
) -> Tensor:
    r"""The event weights of a table, one per event `read_events` returns from the same
    file(s) and selection: the column or the expression of columns `weight` (e.g.
    `"genWeight * sf"`, `pandas.DataFrame.eval`'s arithmetic on columns), float64
    `(N,)`, checked by `flowscan.weights.check_weights` (finite per file, a positive
    sum over all; negative weights are allowed). A missing column or an expression that
    is not one number per event raises `InputError` naming it."""
    if isinstance(path, (str, os.PathLike)):
        w, what = _weights(path, weight, where, derive), f"{path}: the weights {weight!r}"
    else:
        _once(path)
        w = torch.cat([_weights(p, weight, where, derive) for p in path])
        what = f"the weights {weight!r} of {file_names(path)}"
    return check_weights(w, len(w), what)


def _weights(
    path: str | os.PathLike, weight: str, where: str | None, derive: Derivation | None
) -> Tensor:
    r"""`read_weights` of one file, each finite (the sum is checked by the caller)."""
    frame = _selected(path, where, derive)
    try:
        values = frame[weight] if weight in frame.columns else frame.eval(weight)
    except Exception as e:  # pandas raises many types for a bad expression
        raise InputError(
            f"{path}: cannot compute the weight {weight!r} ({type(e).__name__}: {e}); the "
            f"file has columns {list(frame.columns)}"
        ) from None
    if not isinstance(values, pd.Series) or values.dtype.kind not in "biuf":
        raise InputError(
            f"{path}: the weight {weight!r} is not a number per event; give a numeric "
            "column or an arithmetic expression of columns"
        )
    w = torch.tensor(values.to_numpy(dtype="float64", copy=True))
    bad = ~torch.isfinite(w)
    if bad.any():
        raise InputError(
            f"{path}: the weights {weight!r} hold {int(bad.sum())} NaN or inf value(s) (first "
            f"at row {frame.index[int(bad.nonzero()[0])]}): fix or remove those events"
        )
    return w


def read_variations(
    paths: Sequence[str | os.PathLike],
    columns: Sequence[str],
    values: Mapping[str, Sequence[float]],
    where: str | None = None,
    derive: Derivation | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Systematic variation samples as one training set: the events of `columns` of
    each file (`read_events`) and, per event, the value of every nuisance in `values`
    that its file stands for (e.g. a nominal, an up and a down sample:
    `{"jes": [0, 1, -1]}`, one value per file, in units of the nuisance's sigma).

    Returns:
        Events `(N, F)` and the nuisances' values `(N, V)`, float64, V = len(values),
        the files in order. Raises `InputError` where a nuisance has not one value per
        file or fewer than two distinct ones, and where a file's median of an
        observable lies more than 3 interquartile ranges from the nominal's (the file
        whose values are all 0, else the first) or its interquartile range differs by
        more than a factor 3: other units, or another quantity.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    _once(paths)
    for name, given in values.items():
        if len(given) != len(paths):
            raise InputError(
                f"nuisance {name}: {len(given)} value(s) {list(given)} for {len(paths)} files; "
                "give one value per file, in the files' order"
            )
        if len(set(given)) < 2:
            raise InputError(
                f"nuisance {name}: the files stand for one value {given[0]:g}; variations "
                "need at least two (a nominal and an up or down sample)"
            )
    parts = [read_events(p, columns, where, derive) for p in paths]
    nominal = next((k for k in range(len(paths)) if all(v[k] == 0 for v in values.values())), 0)
    q = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    low, middle, high = parts[nominal].quantile(q, dim=0)
    for path, part in zip(paths, parts, strict=True):
        lo, mid, hi = part.quantile(q, dim=0)
        for j, column in enumerate(columns):
            # a variation moves an observable and its spread by a fraction of the spread
            spread, nominal_spread = hi[j] - lo[j], high[j] - low[j]
            if abs(mid[j] - middle[j]) > 3 * nominal_spread or not (
                nominal_spread / 3 <= spread <= 3 * nominal_spread
            ):
                raise InputError(
                    f"{path}: {column} has median {mid[j].item():.6g} and interquartile "
                    f"range {spread.item():.6g} against {middle[j].item():.6g} and "
                    f"{nominal_spread.item():.6g} in the nominal {paths[nominal]}: a "
                    "variation sample holds the same observables in the same units as the "
                    "nominal"
                )
    nuisances = torch.cat([
        torch.tensor([[values[n][k] for n in values]], dtype=torch.float64).expand(len(part), -1)
        for k, part in enumerate(parts)
    ])  # fmt: skip
    return torch.cat(parts), nuisances


def read_analysis(path: str | os.PathLike) -> list[Constraint]:
    r"""The nuisance parameters an analysis file (TOML) declares, one table each:

    .. code-block:: toml

        [nuisances.tau]       # a measured parameter: 170 +- 5 GeV
        kind = "gaussian"
        width = 5.0
        observed = 170.0

        [nuisances.n_bkg]     # a 10% background-rate uncertainty
        kind = "lognormal"
        width = 0.1
        observed = 10000

    `observed` (the global observable) defaults to 0, a nuisance in units of its 1-sigma
    variation. A missing file, bad TOML, other tables or keys, or a bad value raise
    `InputError` naming them.
    """
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{file} is a folder: name the analysis file (TOML) in it")
    if not file.is_file():
        raise InputError(f"{file}: no such analysis file")
    try:
        config = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{file}: not a TOML analysis file ({e})") from None
    extra = sorted(set(config) - {"nuisances"})
    if extra or not isinstance(config.get("nuisances", {}), dict):
        raise InputError(f"{file}: an analysis file has [nuisances.NAME] tables, not {extra}")
    out = []
    for name, table in config.get("nuisances", {}).items():
        keys = set(table) if isinstance(table, dict) else {"?"}
        if not keys <= {"kind", "width", "observed"} or not {"kind", "width"} <= keys:
            raise InputError(
                f"{file}: [nuisances.{name}] takes kind, width and observed, got {sorted(keys)}"
            )
        values = {"width": table["width"], "observed": table.get("observed", 0.0)}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    f"{file}: [nuisances.{name}] {key} = {value!r} is not a number (write "
                    f"it without quotes, e.g. {key} = 5.0)"
                )
        if not isinstance(table["kind"], str):
            raise InputError(f'{file}: [nuisances.{name}] kind is a string, e.g. "gaussian"')
        try:
            out.append(Constraint(name, table["kind"], float(values["width"]),
                                  float(values["observed"])))  # fmt: skip
        except InputError as e:
            raise InputError(f"{file}: [nuisances.{name}] {e}") from None
    return out
