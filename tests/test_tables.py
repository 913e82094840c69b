import numpy as np
import pandas as pd
import pytest
import torch

from flowscan.io import read_events


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".h5"])
def test_read_events_round_trips_each_format(tmp_path, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"m": rng.uniform(100, 1000, 50), "w": rng.random(50), "id": np.arange(50)}
    )
    path = tmp_path / f"events{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".parquet": lambda: frame.to_parquet(path),
        ".h5": lambda: frame.to_hdf(path, key="events"),
    }[suffix]()
    x = read_events(path, ["w", "m"])
    assert x.dtype == torch.float64 and x.shape == (50, 2)
    np.testing.assert_allclose(x.numpy(), frame[["w", "m"]].to_numpy(), rtol=1e-15)


def test_read_events_of_several_files_concatenates_them_in_order(tmp_path):
    rng = np.random.default_rng(1)
    frames = [
        pd.DataFrame({"m": rng.uniform(100, 1000, n), "label": i}) for i, n in enumerate((7, 5))
    ]
    paths = [tmp_path / "sig.csv", tmp_path / "bkg.parquet"]
    frames[0].to_csv(paths[0], index=False)
    frames[1].to_parquet(paths[1])
    x = read_events(paths, ["m", "label"], where="m > 300")
    expected = pd.concat(frames).query("m > 300")[["m", "label"]].to_numpy()
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-15)


def test_read_events_errors_name_the_problem(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame({"mass": [500.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing columns \['m'\]; it has \['mass'\]"):
        read_events(path, ["m"])
    with pytest.raises(ValueError, match="unknown format '.txt'"):
        read_events(tmp_path / "events.txt", ["m"])
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "nothing.csv", ["m"])
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="cannot be read as .parquet"):
        read_events(tmp_path / "broken.parquet", ["m"])
