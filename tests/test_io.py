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


def test_read_events_from_a_root_tree_named_or_alone(tmp_path):
    uproot = pytest.importorskip("uproot")
    rng = np.random.default_rng(2)
    m, w = rng.uniform(100, 1000, 40), rng.random(40)
    with uproot.recreate(tmp_path / "one.root") as f:  # a TTree
        f.mktree("events", {"m": "float64", "w": "float32"})
        f["events"].extend({"m": m, "w": w.astype(np.float32)})
    x = read_events(tmp_path / "one.root", ["m", "w"], where="m > 500")
    keep = m > 500
    # float32 branch read back exactly: its float64 widening is exact
    np.testing.assert_array_equal(x.numpy(), np.stack([m, w.astype(np.float32)], 1)[keep])
    with uproot.recreate(tmp_path / "two.root") as f:  # RNTuples, uproot's default
        f["signal"] = {"m": m[:10]}
        f["background"] = {"m": m[10:]}
    x = read_events(f"{tmp_path / 'two.root'}:background", ["m"])
    np.testing.assert_array_equal(x[:, 0].numpy(), m[10:])
    # two trees of one file are two sets of events, not one file given twice
    both = read_events([f"{tmp_path / 'two.root'}:{t}" for t in ("signal", "background")], ["m"])
    np.testing.assert_array_equal(both[:, 0].numpy(), m)
    with pytest.raises(ValueError, match=r"holds 2 trees \['signal', 'background'\]: name one"):
        read_events(tmp_path / "two.root", ["m"])
    with pytest.raises(ValueError, match="has no tree 'data'; its trees are"):
        read_events(f"{tmp_path / 'two.root'}:data", ["m"])


def test_a_jagged_root_branch_is_refused_by_name(tmp_path):
    uproot = pytest.importorskip("uproot")
    awkward = pytest.importorskip("awkward")
    with uproot.recreate(tmp_path / "jets.root") as f:
        f.mktree("events", {"m_jj": "float64", "jet_pt": "var * float64"})
        f["events"].extend(
            {
                "m_jj": np.array([3000.0, 3500.0]),
                "jet_pt": awkward.Array([[1300.0, 900.0], [1400.0]]),
            }
        )
    np.testing.assert_array_equal(
        read_events(tmp_path / "jets.root", ["m_jj"])[:, 0].numpy(), [3000.0, 3500.0]
    )
    with pytest.raises(ValueError, match=r"branches \['jet_pt'\] hold several values per event"):
        read_events(tmp_path / "jets.root", ["m_jj", "jet_pt"])
    (tmp_path / "fake.root").write_text("not a ROOT file")
    with pytest.raises(ValueError, match="cannot be read as ROOT"):
        read_events(tmp_path / "fake.root", ["m"])
