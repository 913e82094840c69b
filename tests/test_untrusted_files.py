r"""Opening a file runs no code from it. Each test writes a booby-trapped file of one
format flowscan opens: its payload, if anything unpickled it, would create the file
`marker`. flowscan reads it (or refuses it, naming the problem), and `marker` never
appears. Where a common reader does run the payload (pandas' `read_hdf`), the test shows
that first, so that the trap is known to be armed."""

import pickle
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from flowscan.exceptions import InputError, ModelFileError
from flowscan.flows import load_model
from flowscan.io import read_events


class Payload:
    r"""Unpickles to `open(marker, "w")`: a file created by code the data carried."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "ran-code-from-the-file"


def _m(n: int = 20) -> np.ndarray:
    return np.linspace(200.0, 900.0, n)


def test_hdf5_pickled_column_is_refused_unopened(tmp_path, marker):
    path = tmp_path / "data.h5"
    frame = pd.DataFrame({"m": _m(), "note": [Payload(marker)] * 20})
    with warnings.catch_warnings():  # pandas warns that it pickles the column
        warnings.simplefilter("ignore")
        frame.to_hdf(path, key="df")
    pd.read_hdf(path)  # pandas unpickles the column: the trap is armed
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError, match=r"columns \['note'\] are stored as pickled Python"):
        read_events(path, ["m"])
    assert not marker.exists()


def test_hdf5_pickled_attribute_is_never_decoded(tmp_path, marker):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["m"] = _m()
        f["m"].attrs["note"] = np.void(pickle.dumps(Payload(marker)))
        f.attrs["pandas_version"] = np.void(pickle.dumps(Payload(marker)))
    x = read_events(path, ["m"])
    assert torch.equal(x[:, 0], torch.from_numpy(_m()))
    assert not marker.exists()


def test_hdf5_table_format_is_refused_with_the_rewrite(tmp_path, marker):
    path = tmp_path / "data.h5"
    pd.DataFrame({"m": _m()}).to_hdf(path, key="df", format="table")
    with pytest.raises(InputError, match="the 'table' format.*format='fixed'"):
        read_events(path, ["m"])


def test_parquet_payload_bytes_are_data_not_code(tmp_path, marker):
    path = tmp_path / "data.parquet"
    blob = pickle.dumps(Payload(marker))
    # a column of pickled bytes, and the pyarrow extension type whose metadata older
    # pyarrow unpickled on reading (CVE-2023-47248)
    field = pa.field("note", pa.binary(), metadata={
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": blob,
    })  # fmt: skip
    table = pa.table([pa.array(_m()), pa.array([blob] * 20)],
                     schema=pa.schema([pa.field("m", pa.float64()), field]))  # fmt: skip
    pq.write_table(table, path)
    assert torch.equal(read_events(path, ["m"])[:, 0], torch.from_numpy(_m()))
    with pytest.raises(InputError, match="column note holds .* not a number"):
        read_events(path, ["note"])
    assert not marker.exists()


def test_root_payload_bytes_are_data_not_code(tmp_path, marker):
    import awkward as ak
    import uproot

    path = tmp_path / "data.root"
    blob = np.frombuffer(pickle.dumps(Payload(marker)), dtype=np.uint8)
    with uproot.recreate(path) as f:
        f["events"] = {"m": _m(3), "note": ak.Array([blob.tolist()] * 3)}
    assert torch.equal(read_events(path, ["m"])[:, 0], torch.from_numpy(_m(3)))
    with pytest.raises(InputError, match="hold several values per event"):
        read_events(path, ["note"])
    assert not marker.exists()


def test_csv_payload_text_is_data_not_code(tmp_path, marker):
    path = tmp_path / "data.csv"
    text = pickle.dumps(Payload(marker), protocol=0).decode("latin-1").replace("\n", " ")
    pd.DataFrame({"m": [text, "450.0"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="not a number"):
        read_events(path, ["m"])
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_model_file_payload_is_refused_unopened(tmp_path, marker, how):
    path = tmp_path / "model.pt"
    if how == "pickle":
        path.write_bytes(pickle.dumps(Payload(marker)))
    else:
        torch.save({"config": Payload(marker)}, path)
    with pytest.raises(ModelFileError, match="model file"):
        load_model(path)
    assert not marker.exists()
