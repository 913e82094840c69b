r"""The bad-input sweep: every case is one argv of the `flowscan` CLI (or one call of the
Python API) that a physicist plausibly gets wrong, with the exit code it must give and a
piece of the one-line message that must name the problem. No case may end in a
traceback (exit code 3, "internal error") or in a silent result. The fixtures are tiny
models and files, and no case starts a Dask cluster (an unreachable scheduler is given
a 0.2 s timeout), so the module runs in well under a minute."""

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import Flat

from flowscan import Constraint, parallel
from flowscan.cli import main
from flowscan.constraints import declared
from flowscan.exceptions import FitError, FlowscanError, InputError, ModelFileError
from flowscan.flows import Architecture, DensityModel, check_trained_range, torch_device, train
from flowscan.io import read_events
from flowscan.samples import MASS, BreitWigner, Exponential, lhco, resonances, training_set
from flowscan.scanner import (
    FitSettings,
    MixtureLikelihood,
    ParameterSpace,
    bayesopt_scan,
    global_search,
    gradient_scan,
    minuit_scan,
    write_likelihood,
    write_points,
)
from flowscan.stats import coverage, pseudo_experiments
from flowscan.variables import Variable

UNREACHABLE = "tcp://127.0.0.1:9"  # the discard port: nothing listens there


def _model(exact, role: str | None, seed: int) -> DensityModel:
    x, theta = training_set(exact, 2_000, seed=seed)
    model = DensityModel([MASS], exact.theta_vars, Architecture(hidden_features=(8, 8)), role=role)
    train(model, x, theta, epochs=1, batch_size=512, progress=False)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    r"""Tiny models of the toy and of LHCO, data files good and bad, by name."""
    d = tmp_path_factory.mktemp("sweep")
    paths = {}

    def put(name: str) -> str:
        paths[name] = str(d / name)
        return paths[name]

    _model(BreitWigner(), "signal", 1).save(put("sig.pt"))
    _model(Exponential(), "background", 2).save(put("bkg.pt"))
    _model(Exponential(), None, 3).save(put("norole.pt"))
    m = np.random.default_rng(0).uniform(MASS.low, MASS.high, 300)
    frames = {
        "toy.csv": pd.DataFrame({"m": m}),
        "two.csv": pd.DataFrame({"m": m, "x": m}),
        "tev.csv": pd.DataFrame({"m": m / 1000}),
        "nan.csv": pd.DataFrame({"m": np.r_[m[:-1], np.nan]}),
        "empty.csv": pd.DataFrame({"m": []}),
        "below.csv": pd.DataFrame({"m": np.r_[m, 50.0]}),
        "const.csv": pd.DataFrame({"m": m, "tau": 170.0}),
        "one.csv": pd.DataFrame({"m": m[:1]}),
        "nanw.csv": pd.DataFrame({"m": m, "tau": 170.0, "w": np.r_[np.nan, m[1:] / m[1:]]}),
        "zerow.csv": pd.DataFrame({"m": m, "w": 0.0}),
        "negw.csv": pd.DataFrame({"m": m, "w": -1.0}),
        "halfw.csv": pd.DataFrame({"m": m, "w": 0.5}),
    }
    for name, frame in frames.items():
        frame.to_csv(put(name), index=False)
    with open(put("text.csv"), "w") as f:
        f.write("m\n450.0\n500.0\nabc\n")
    # a signal rate: cross sections below 400 GeV only, and efficiency records at gamma 40
    pd.DataFrame({"m_pole": [300.0, 350.0, 400.0], "sigma_fb": [10.0, 5.0, 2.0]}).to_csv(
        put("xs.csv"), index=False
    )
    pd.DataFrame({"mass": [300.0, 700.0], "sigma_fb": [10.0, 1.0]}).to_csv(
        put("xsmass.csv"), index=False
    )
    for mass in (300, 500, 700):
        with open(put(f"eff{mass}.json"), "w") as f:
            json.dump({"masses": {"m_pole": mass, "gamma": 40.0}, "generated": 1000,
                       "passed": 800}, f)  # fmt: skip
        put(f"eff{mass}.csv")  # the events need not be there without --where
    with open(put("garbage.pt"), "wb") as f:
        f.write(b"not a model")
    put("m.onnx"), put("m.pt")  # outputs of export
    with open(put("garbage.h5"), "wb") as f:
        f.write(b"not HDF5")
    with open(put("notes.txt"), "w") as f:
        f.write("m\n450\n")
    with open(put("broken.toml"), "w") as f:
        f.write("[nuisances.tau\nkind = gaussian\n")
    with open(put("keys.toml"), "w") as f:
        f.write('[nuisances.tau]\nkind = "gaussian"\nsigma = 5.0\n')
    with open(put("unknown.toml"), "w") as f:
        f.write('[nuisances.jes]\nkind = "gaussian"\nwidth = 1.0\n')
    analyses = {  # an analysis file each with one thing wrong
        "true.toml": 'kind = "gaussian"\nwidth = true\nobserved = 170.0',
        "quoted.toml": 'kind = "gaussian"\nwidth = "5"\nobserved = 170.0',
        "zero.toml": 'kind = "gaussian"\nwidth = 0.0\nobserved = 170.0',
        "kind.toml": "kind = 5\nwidth = 5.0\nobserved = 170.0",
        "nanobs.toml": 'kind = "gaussian"\nwidth = 5.0\nobserved = nan',
        "infwidth.toml": 'kind = "gaussian"\nwidth = inf\nobserved = 170.0',
    }
    for name, table in analyses.items():
        with open(put(name), "w") as f:
            f.write(f"[nuisances.tau]\n{table}\n")
    biases = {"nobias.json": {"closure": []}, "jesbias.json": {"model_bias": {"jes": 1.0}},
              "negbias.json": {"model_bias": {"tau": -1.0}}}  # fmt: skip
    for name, record in biases.items():
        with open(put(name), "w") as f:
            json.dump(record, f)
    with open(put("flat.toml"), "w") as f:
        f.write("[nuisances]\ntau = 5.0\n")
    with open(put("extra.toml"), "w") as f:
        f.write('[signal]\nm_pole = 450.0\n[nuisances.tau]\nkind = "gaussian"\nwidth = 5.0\n')
    with open(put("binary.toml"), "wb") as f:
        f.write(b"\x80\x81\xfe\xff")
    (d / "analysis").mkdir()
    paths["analysis"] = str(d / "analysis")
    pd.DataFrame({"m": m.astype(complex)}).to_hdf(put("complex.h5"), key="df")
    pd.DataFrame({"m": m}).to_parquet(put("toy.parquet"))
    when = pd.Timestamp("2026-01-01") + pd.to_timedelta(m, unit="s")
    pd.DataFrame({"m": when}).to_parquet(put("dates.parquet"))
    pd.DataFrame({"m": pd.to_timedelta(m, unit="s")}).to_parquet(put("spans.parquet"))
    pd.DataFrame({"m": when}).to_hdf(put("dates.h5"), key="df")
    with open(put("a_file"), "w") as f:
        f.write("x")
    (d / "folder.h5").mkdir()
    paths["folder.h5"] = str(d / "folder.h5")
    torch.save({"weights": 1}, put("other.pt"))
    blob = torch.load(paths["sig.pt"], weights_only=True)
    torch.save(blob | {"version": 1}, put("v1.pt"))
    broken = {k: v.clone() for k, v in blob["state_dict"].items()}
    name = next(k for k, v in broken.items() if v.is_floating_point() and "hyper" in k)
    broken[name][0] = float("nan")
    torch.save(blob | {"state_dict": broken}, put("nan.pt"))
    torch.save(blob | {"config": {"flow": "mog"}}, put("header.pt"))

    # LHCO: a tiny background model and a tiny signal model of the masses.
    frame = lhco.pseudo_data(400, 40, (3500.0, 500.0, 100.0), seed=1)
    names = [v.name for v in lhco.OBSERVABLES]
    x = torch.tensor(lhco.features(frame)[names].to_numpy())
    qcd = DensityModel(
        lhco.OBSERVABLES, (), Architecture(hidden_features=(8, 8)), role="background"
    )
    train(qcd, x, epochs=1, batch_size=256, progress=False)
    qcd.save(put("qcd.pt"))
    xs, ms = lhco.training_set(5, seed=2)
    sig = DensityModel(
        lhco.OBSERVABLES, lhco.MASSES, Architecture(hidden_features=(8, 8)), role="signal"
    )
    train(sig, torch.tensor(xs), torch.tensor(ms), epochs=1, batch_size=256, progress=False)
    sig.save(put("zprime.pt"))
    frame.to_hdf(put("lhco.h5"), key="df")
    mev = frame.copy()
    for c in lhco.SCHEMA[:-1]:
        if not c.startswith("tau"):
            mev[c] *= 1000
    mev.to_hdf(put("mev.h5"), key="df")
    bad = {
        "tau1nan.h5": ("tau1j1", np.nan),
        "tau1zero.h5": ("tau1j1", 0.0),
        "tau2neg.h5": ("tau2j2", -0.1),
        "tau21big.h5": ("tau2j1", 10.0),
        "tau2zero.h5": ("tau2j1", 0.0),
        "mnegative.h5": ("mj1", -5.0),
        "pxinf.h5": ("pxj2", np.inf),
        "label.h5": ("label", 2),
    }
    for name, (column, value) in bad.items():
        broken = frame.copy()
        broken.loc[7, column] = value
        broken.to_hdf(put(name), key="df")
    tail = frame.copy()
    tail.loc[3, ["pzj1", "pzj2"]] = [9e4, -9e4]  # m_jj far beyond anything trained on
    tail.to_hdf(put("tail.h5"), key="df")

    import uproot  # ROOT files, written as an analysis would (TTrees)

    with uproot.recreate(put("jagged.root")) as f:
        f.mktree("events", {"m": "float64", "jet_m": "var * float64"})
        f["events"].extend({"m": m[:3], "jet_m": [[400.0, 100.0], [450.0], []]})
    with uproot.recreate(put("trees.root")) as f:
        for tree in ("signal", "background"):
            f.mktree(tree, {"m": "float64"})
            f[tree].extend({"m": m})
    with open(put("fake.root"), "w") as f:
        f.write("not ROOT")

    # saved likelihoods (scan --save-likelihood): one as written, three spoiled
    toy = torch.tensor(m[:, None])
    models = [DensityModel.load(paths[n]).for_fit() for n in ("sig.pt", "bkg.pt")]
    saved = write_likelihood(MixtureLikelihood(*models, toy), d / "saved")
    paths["saved.json"] = str(saved)
    edits = {  # a document each with one thing wrong
        "edited": lambda doc: doc["domains"][0]["axes"][2].update(max=650.0),  # m_pole
        "wide": lambda doc: doc["data"][0].update(entries=[[1.0, 2.0]] * 150),
        "textvalue": lambda doc: doc["domains"][0]["axes"][2].update(max="700"),
        "nomixture": lambda doc: doc["distributions"].pop(2),
        "nomisc": lambda doc: doc.update(misc=[]),
        "noaxes": lambda doc: doc["data"][0].pop("axes"),
        "scale": lambda doc: doc["misc"]["flowscan"].update(weight_scale=2.0),
        "twice": lambda doc: doc["domains"][0]["axes"].append(doc["domains"][0]["axes"][0]),
        "nofile": lambda doc: doc["distributions"][0].update(file=""),
    }
    for name in ("nomodel", "swapped", "graph", *edits):
        shutil.copytree(d / "saved", d / name)
        paths[f"{name}.json"] = str(d / name / "likelihood.json")
        if name in edits:
            document = json.loads(saved.read_text())
            edits[name](document)
            (d / name / "likelihood.json").write_text(json.dumps(document))
    (d / "nomodel" / "signal.pt").unlink()
    shutil.copy(d / "saved" / "background.pt", d / "swapped" / "signal.pt")
    shutil.copy(d / "saved" / "background.onnx", d / "graph" / "signal.onnx")
    return paths


def _scan(f, *extra: str, data: str = "toy.csv") -> list[str]:
    return ["scan", "--signal", f["sig.pt"], "--background", f["bkg.pt"], "--data", f[data], *extra]


def _lhco(f, data: str, *extra: str) -> list[str]:
    return ["scan", "--signal", f["zprime.pt"], "--background", f["qcd.pt"], "--data",
            f[data], "--n-sig", "40", "--n-bkg", "400", "--method", "grid", "--option",
            "grid.points=2", *extra]  # fmt: skip


def _closure(f, *extra, background="tau=170"):
    head = ["closure", "--signal", f["sig.pt"], "--background", f["bkg.pt"]]
    sampler = [] if "--sampler" in extra else ["--sampler", "breit-wigner"]
    theta = [] if background is None else ["--background-theta", background]
    return [*head, *sampler, *theta, *extra]


def _limits(f, *extra: str) -> list[str]:
    return ["limits", "--signal", f["sig.pt"], "--background", f["bkg.pt"], "--data", f["toy.csv"],
            "--jobs", "1", *extra]  # fmt: skip


def _rate(f, xs: str | None = None) -> list[str]:
    return ["--xsec", xs or f["xs.csv"], "--lumi", "10", "--efficiency",
            *(f[f"eff{m}.csv"] for m in (300, 500, 700))]  # fmt: skip


def _toys(f, truth: str = "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170", *extra: str):
    return ["toys", "--signal", f["sig.pt"], "--background", f["bkg.pt"], "--truth", truth,
            "--jobs", "1", *extra]  # fmt: skip


def _train(f, *extra: str) -> list[str]:
    return ["train", "--epochs", "1", "--hidden", "4", "--no-progress", *extra]


AT = ["--at", "m_pole=450", "--at", "gamma=40"]

# (id, argv from the files, exit code, a piece of the message on stderr)
CASES = [
    # the command line itself
    ("no command", lambda f: [], 2, "required"),
    ("unknown command", lambda f: ["frobnicate"], 2, "invalid choice"),
    ("epochs zero", lambda f: ["demo", "--epochs", "0"], 2, "must be a positive integer"),
    ("epochs text", lambda f: ["demo", "--epochs", "many"], 2, "must be an integer, got 'many'"),
    ("seed text", lambda f: ["demo", "--seed", "x"], 2, "must be an integer, got 'x'"),
    ("negative seed", lambda f: ["demo", "--seed", "-1"], 2, "must be 0 or more"),
    ("option twice", lambda f: ["demo", "--seed", "1", "--seed", "2"], 2, "given twice"),
    ("no cuda", lambda f: ["demo", "--quick", "--device", "cuda", "--out", f["a_file"] + "x"], 2,
     "no CUDA device"),
    ("no such device", lambda f: ["demo", "--device", "tpu:0", "--out", f["a_file"] + "y"], 2,
     "not a torch device"),
    ("unknown flow", lambda f: ["demo", "--flow", "glow", "--out", f["a_file"] + "z"], 2,
     "unknown flow 'glow'"),
    ("demo out is a file", lambda f: ["demo", "--out", f["a_file"]], 2, "is an existing file"),
    ("demo out under a file", lambda f: ["demo", "--out", f["a_file"] + "/run"], 2,
     "cannot create the folder"),
    # generate
    ("generate negative", lambda f: ["generate", "--events", "-5", "--out", "x.h5"], 2,
     "must be 0 or more"),
    ("generate nothing", lambda f: ["generate", "--events", "0", "--out", "x.h5"], 2,
     "nothing to generate"),
    ("generate signal without masses", lambda f: ["generate", "--signal-events", "3", "--out",
     "x.h5"], 2, "needs --masses"),
    ("generate two masses", lambda f: ["generate", "--masses", "3500,500", "--out", "x.h5"], 2,
     "takes m_zprime,m_x,m_y"),
    ("generate text masses", lambda f: ["generate", "--masses", "a,b,c", "--out", "x.h5"], 2,
     "takes m_zprime,m_x,m_y"),
    ("generate closed decay", lambda f: ["generate", "--masses", "1000,800,300",
     "--signal-events", "5", "--out", "x.h5"], 2, "m_Z' > m_X + m_Y"),
    ("generate csv", lambda f: ["generate", "--events", "5", "--out", "x.csv"], 2,
     "name a .h5 or .hdf5 file"),
    ("generate into folder", lambda f: ["generate", "--events", "5", "--out", f["folder.h5"]], 2,
     "is a folder"),
    ("generate absurd", lambda f: ["generate", "--events", "10000000000000", "--out", "x.h5"], 2,
     "GB of memory"),
    # simulate
    ("simulate qcd masses", lambda f: ["simulate", "--process", "qcd", "--masses",
     "3500,500,100", "--out", "x.h5"], 2, "QCD background has no masses"),
    ("simulate signal nothing", lambda f: ["simulate", "--process", "signal", "--out", "x.h5"],
     2, "needs either --masses"),
    ("simulate closed decay", lambda f: ["simulate", "--process", "signal", "--masses",
     "1000,800,300", "--out", "x.h5"], 2, "m_Z' > m_X + m_Y"),
    ("simulate csv", lambda f: ["simulate", "--process", "qcd", "--out", "x.csv"], 2,
     "name a .h5 or .hdf5 file"),
    ("simulate zero", lambda f: ["simulate", "--process", "qcd", "--events", "0", "--out",
     "x.h5"], 2, "must be a positive integer"),
    ("simulate grid syntax", lambda f: ["simulate", "--process", "signal", "--grid", "1;2",
     "--out", "g"], 2, "takes MZ;MX;MY"),
    ("simulate empty grid", lambda f: ["simulate", "--process", "signal", "--grid",
     "3000;2500;100", "--out", "g"], 2, "has no point"),
    ("simulate smearing", lambda f: ["simulate", "--process", "qcd", "--smearing", "-1",
     "--out", "x.h5"], 2, "must be a number >= 0"),
    ("simulate process", lambda f: ["simulate", "--process", "ttbar", "--out", "x.h5"], 2,
     "invalid choice"),
    ("simulate scheduler", lambda f: ["simulate", "--process", "qcd", "--events", "1",
     "--scheduler", UNREACHABLE, "--out", f["a_file"] + ".h5"], 2, "cannot reach the Dask"),
    # train
    ("train no source", lambda f: _train(f), 2, "one of the arguments --data --sampler/--generate"),
    ("train weight column missing", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m", "--weight", "genWeight"), 2, "cannot compute the weight 'genWeight'"),
    ("train weight not finite", lambda f: _train(f, "--data", f["nanw.csv"], "--observables",
     "m", "--weight", "w"), 2, "1 NaN or inf value(s) (first at row 0)"),
    ("train weights all zero", lambda f: _train(f, "--data", f["zerow.csv"], "--observables",
     "m", "--weight", "w"), 2, "sum to 0 over 300 events"),
    ("train weights negative", lambda f: _train(f, "--data", f["negw.csv"], "--observables",
     "m", "--weight", "w"), 2, "sum to -300 over 300 events"),
    ("variations of other units", lambda f: _train(f, "--data", f["toy.csv"], f["tev.csv"],
     "--observables", "m", "--nuisance-values", "s=0,1"), 2,
     "the same observables in the same units as the nominal"),
    ("variations one value per file", lambda f: _train(f, "--data", f["toy.csv"], f["two.csv"],
     "--observables", "m", "--nuisance-values", "s=0,1,-1"), 2,
     "3 value(s) [0.0, 1.0, -1.0] for 2 files"),
    ("variations of one value", lambda f: _train(f, "--data", f["toy.csv"], f["two.csv"],
     "--observables", "m", "--nuisance-values", "s=0,0"), 2, "variations need at least two"),
    ("variation lacks the observable", lambda f: _train(f, "--data", f["two.csv"],
     f["toy.csv"], "--observables", "x", "--nuisance-values", "s=0,1"), 2,
     "missing columns ['x']"),
    ("variations malformed", lambda f: _train(f, "--data", f["toy.csv"], f["two.csv"],
     "--observables", "m", "--nuisance-values", "s=0,up"), 2, "is not NAME=V1,V2,..."),
    ("variations named twice", lambda f: _train(f, "--data", f["toy.csv"], f["two.csv"],
     "--observables", "m", "--nuisance-values", "s=0,1", "--nuisance-values", "s=1,0"), 2,
     "--nuisance-values s given twice"),
    ("variation is a context column", lambda f: _train(f, "--data", f["toy.csv"],
     f["two.csv"], "--observables", "m", "--context", "x", "--nuisance-values", "x=0,1"), 2,
     "are --context columns and --nuisance-values"),
    ("variations of a sampler", lambda f: _train(f, "--sampler", "breit-wigner", "--role",
     "signal", "--nuisance-values", "s=0,1"), 2, "--nuisance-values labels --data files"),
    ("train weight of a sampler", lambda f: _train(f, "--sampler", "breit-wigner", "--role",
     "signal", "--weight", "w"), 2, "--weight weights the events of --data files"),
    ("scan global with fixed yields", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--global-significance", "5"), 2, "needs the extended likelihood"),
    ("scan lee grid unknown", lambda f: _scan(f, "--global-significance", "5", "--lee-grid",
     "mass=1:2:3"), 2, "--lee-grid needs values of the floating signal parameters"),
    ("scan lee grid outside", lambda f: _scan(f, "--global-significance", "5", "--fix", "gamma",
     "--lee-grid", "m_pole=100:700:5"), 2,
     "--lee-grid m_pole = [100.0, 250.0] is outside [300.0, 700.0]"),
    ("scan lee thresholds", lambda f: _scan(f, "--global-significance", "5", "--fix", "gamma",
     "--lee-thresholds", "1,2"), 2, "--lee-thresholds: give 1 distinct positive threshold(s)"),
    ("scan lee thresholds repeated", lambda f: _scan(f, "--global-significance", "5",
     "--lee-thresholds", "1,1"), 2, "give 2 distinct positive threshold(s)"),
    ("scan lee grid decreasing", lambda f: _scan(f, "--global-significance", "5", "--fix",
     "gamma", "--lee-grid", "m_pole=600,400"), 2, "--lee-grid: the q0 field's grid of m_pole "
     "needs 2 or more increasing values"),
    ("scan lee grid one value", lambda f: _scan(f, "--global-significance", "5", "--fix",
     "gamma", "--lee-grid", "m_pole=500"), 2, "needs 2 or more increasing values"),
    ("scan lee grid without floating", lambda f: _scan(f, "--global-significance", "5", "--fix",
     "m_pole,gamma", "--lee-grid", "m_pole=300:700:5"), 2, "no signal parameter floats"),
    ("scan lee one field", lambda f: _scan(f, "--global-significance", "5", "--lee-fields",
     "1"), 2, "Gross-Vitells needs at least 2 q0 fields: --lee-fields >= 2"),
    ("scan lee one toy", lambda f: _scan(f, "--global-significance", "1", "--lee-fields",
     "5"), 2, "Gross-Vitells needs at least 2 q0 fields: --global-significance >= 2"),
    ("scan lee grid without fields", lambda f: _scan(f, "--global-significance", "5",
     "--lee-fields", "0", "--lee-grid", "m_pole=300:700:5"), 2,
     "--lee-grid and --lee-thresholds make q0 fields: --lee-fields 0"),
    ("scan global without local method", lambda f: _scan(f, "--global-significance", "5",
     "--method", "grid"), 2, "add one of ['minuit', 'gradient'] to --method"),
    ("scan lee thresholds text", lambda f: _scan(f, "--global-significance", "5",
     "--lee-thresholds", "1,x"), 2, "not numbers"),
    ("scan global weighted", lambda f: _scan(f, "--global-significance", "5", "--weight", "w",
     data="halfw.csv"), 2, "these events are weighted (weighted simulation is no observed "
     "dataset): drop --weight"),
    ("scan global zero toys", lambda f: _scan(f, "--global-significance", "0"), 2,
     "must be a positive integer"),
    ("scan weight column missing", lambda f: _scan(f, "--weight", "w"), 2,
     "cannot compute the weight 'w'"),
    ("scan weights all zero", lambda f: _scan(f, "--weight", "w", data="zerow.csv"), 2,
     "sum to 0 over 300 events"),
    ("train missing file", lambda f: _train(f, "--data", "nowhere.csv", "--observables", "m"),
     2, "no such data file"),
    ("train unknown format", lambda f: _train(f, "--data", f["notes.txt"], "--observables",
     "m"), 2, "unknown format '.txt'"),
    ("train empty", lambda f: _train(f, "--data", f["empty.csv"], "--observables", "m"), 2,
     "no events"),
    ("train corrupt h5", lambda f: _train(f, "--data", f["garbage.h5"], "--observables", "m"),
     2, "cannot be read as HDF5"),
    ("train bad where", lambda f: _train(f, "--data", f["toy.csv"], "--observables", "m",
     "--where", "m >"), 2, "cannot select"),
    ("train where keeps none", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m", "--where", "m > 5000"), 2, "no events pass"),
    ("train missing column", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "mass"), 2, "missing columns ['mass']"),
    ("train text column", lambda f: _train(f, "--data", f["text.csv"], "--observables", "m"),
     2, "holds 'abc' at row 2"),
    ("train nan", lambda f: _train(f, "--data", f["nan.csv"], "--observables",
     "m:100:1000"), 2, "NaN or inf"),
    ("train outside window", lambda f: _train(f, "--data", f["below.csv"], "--observables",
     "m:100:1000"), 2, "outside its support"),
    ("train reversed bounds", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m:1000:100"), 2, "must be below"),
    ("train text bounds", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m:a:b"), 2, "bounds must be numbers"),
    ("train one bound", lambda f: _train(f, "--data", f["toy.csv"], "--observables", "m:1"),
     2, "write name or name:low:high"),
    ("train constant context", lambda f: _train(f, "--data", f["const.csv"], "--observables",
     "m:100:1000", "--context", "tau"), 2, "takes the single value 170"),
    ("train hidden text", lambda f: ["train", "--generate", "lhco-qcd", "--hidden", "a,b"], 2,
     "--hidden takes"),
    ("train hidden zero", lambda f: ["train", "--generate", "lhco-qcd", "--hidden", "0"], 2,
     "positive layer sizes"),
    ("train unknown flow", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m:100:1000", "--flow", "glow"), 2, "unknown flow"),
    ("train flow truncated", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m:100:1000", "--flow", "nsf", "--preprocessing", "truncated"), 2, "real line"),
    ("train unknown preprocessing", lambda f: _train(f, "--data", f["toy.csv"],
     "--observables", "m:100:1000", "--preprocessing", "box"), 2, "unknown preprocessing"),
    ("train lr", lambda f: _train(f, "--generate", "lhco-qcd", "--lr", "-1"), 2,
     "must be a positive number"),
    ("train batch", lambda f: _train(f, "--generate", "lhco-qcd", "--batch-size", "0"), 2,
     "must be a positive integer"),
    ("train qcd context", lambda f: _train(f, "--generate", "lhco-qcd", "--context", "m_x"), 2,
     "the lhco background has no parameters"),
    ("train role clash", lambda f: _train(f, "--generate", "lhco-signal", "--role",
     "background"), 2, "trains the signal model"),
    ("train unknown role", lambda f: _train(f, "--generate", "lhco-qcd", "--role", "data"), 2,
     "invalid choice"),
    ("train generator observables", lambda f: _train(f, "--generate", "lhco-qcd",
     "--observables", "m_jj"), 2, "the lhco sampler makes"),
    ("train sampler without role", lambda f: _train(f, "--sampler", "lhco"), 2,
     "draws the signal or the background: give --role"),
    ("train sampler bootstrap", lambda f: _train(f, "--sampler", "bootstrap"), 2,
     "invalid choice: 'bootstrap'"),
    ("train absurd", lambda f: _train(f, "--generate", "lhco-signal", "--events",
     "100000000000"), 2, "GB of memory"),
    ("train out is a file", lambda f: _train(f, "--data", f["toy.csv"], "--observables",
     "m:100:1000", "--out", f["a_file"]), 2, "is an existing file"),
    ("train one event", lambda f: _train(f, "--data", f["one.csv"], "--observables",
     "m:100:1000"), 2, "a model needs at least 50"),
    ("train tau2 zero", lambda f: _train(f, "--data", f["tau2zero.h5"]), 2,
     "tau2j1 = 0 (tau21 = 0"),
    # scan: model files
    ("scan scale spec", lambda f: _scan(f, "--scale", "mass_scale:1%:m"), 2,
     "the width '1%' is not a number"),
    ("scan scale twice", lambda f: _scan(f, "--scale", "s:0.01:m", "--scale", "s:0.02:m"), 2,
     "given twice"),
    ("scan scale role", lambda f: _scan(f, "--scale", "s:0.01:m:qcd"), 2,
     "signal or background"),
    ("scan window alone", lambda f: _scan(f, "--window", "m:100:1000"), 2,
     "give --scale too"),
    ("scan model bias not JSON", lambda f: _scan(f, "--model-bias", f["keys.toml"]), 2,
     "not a closure.json (not JSON)"),
    ("scan model bias absent", lambda f: _scan(f, "--model-bias", f["nobias.json"]), 2,
     "holds no model_bias: write it with flowscan closure"),
    ("scan model bias of another parameter", lambda f: _scan(f, "--model-bias",
     f["jesbias.json"]), 2, "names ['jes']; the fit's parameters are"),
    ("scan model bias negative", lambda f: _scan(f, "--model-bias", f["negbias.json"]), 2,
     "each bias must be a number >= 0"),
    ("scan model bias missing file", lambda f: _scan(f, "--model-bias", "nowhere.json"), 2,
     "--model-bias nowhere.json: No such file"),
    ("scan window reversed", lambda f: _scan(f, "--scale", "s:0.01:m", "--window",
     "m:1000:100"), 2, "low must be below high"),
    ("scan scale on the model's own window", lambda f: _scan(f, "--scale", "s:0.01:m"), 2,
     "train the nominal on a window at least that wide"),
    ("scan missing model", lambda f: ["scan", "--signal", "nowhere.pt", "--background",
     f["bkg.pt"], "--data", f["toy.csv"]], 2, "no such model file"),
    ("scan corrupt model", lambda f: ["scan", "--signal", f["garbage.pt"], "--background",
     f["bkg.pt"], "--data", f["toy.csv"]], 2, "not a readable flowscan model file"),
    ("scan other pickle", lambda f: ["scan", "--signal", f["other.pt"], "--background",
     f["bkg.pt"], "--data", f["toy.csv"]], 2, "not a flowscan model file"),
    ("scan version 1", lambda f: ["scan", "--signal", f["v1.pt"], "--background", f["bkg.pt"],
     "--data", f["toy.csv"]], 2, "model-file version 1"),
    ("scan nan weights", lambda f: ["scan", "--signal", f["nan.pt"], "--background",
     f["bkg.pt"], "--data", f["toy.csv"]], 2, "not finite"),
    ("scan bad header", lambda f: ["scan", "--signal", f["header.pt"], "--background",
     f["bkg.pt"], "--data", f["toy.csv"]], 2, "header does not describe a model"),
    ("scan swapped", lambda f: ["scan", "--signal", f["bkg.pt"], "--background", f["sig.pt"],
     "--data", f["toy.csv"]], 2, "swapped"),
    ("scan same model", lambda f: ["scan", "--signal", f["norole.pt"], "--background",
     f["norole.pt"], "--data", f["toy.csv"]], 2, "same model"),
    ("scan model as data", lambda f: _scan(f, data="sig.pt"), 2, "unknown format '.pt'"),
    ("scan jagged root branch", lambda f: _scan(f, "--columns", "jet_m", data="jagged.root"), 2,
     "branches ['jet_m'] hold several values per event"),
    ("scan root with two trees", lambda f: _scan(f, data="trees.root"), 2,
     "holds 2 trees ['signal', 'background']: name one"),
    ("scan root tree not there", lambda f: _scan(f) [:-1] + [f["trees.root"] + ":data"], 2,
     "has no tree 'data'"),
    ("scan not a root file", lambda f: _scan(f, data="fake.root"), 2, "cannot be read as ROOT"),
    # scan: options
    ("scan unknown method", lambda f: _scan(f, "--method", "newton"), 2,
     "unknown method(s) ['newton']"),
    ("scan method twice", lambda f: _scan(f, "--method", "minuit,minuit"), 2, "given twice"),
    ("scan missing column", lambda f: _scan(f, "--columns", "mass"), 2, "missing columns"),
    ("scan column twice", lambda f: _scan(f, "--columns", "m,m"), 2, "given twice"),
    ("scan too many columns", lambda f: _scan(f, "--columns", "m,x", data="two.csv"), 2,
     "names 2 column(s)"),
    ("scan start outside", lambda f: _scan(f, "--start", "m_pole=900"), 2,
     "start m_pole = 900 GeV is outside"),
    ("scan start unknown", lambda f: _scan(f, "--start", "mass=450"), 2, "are not parameters"),
    ("scan start syntax", lambda f: _scan(f, "--start", "m_pole"), 2, "is not name=value"),
    ("scan start twice", lambda f: _scan(f, "--start", "m_pole=400,m_pole=500"), 2,
     "given twice"),
    ("scan start nan", lambda f: _scan(f, "--start", "m_pole=nan"), 2, "not a finite number"),
    ("scan start outside", lambda f: _scan(f, "--start", "m_pole=900"), 2, "is outside"),
    ("scan fix unknown", lambda f: _scan(f, "--fix", "mass"), 2,
     "['mass'] are not parameters of the fit"),
    ("scan fix all", lambda f: _scan(f, "--fix", "n_sig,n_bkg,m_pole,gamma,tau"), 2,
     "every parameter"),
    ("scan one yield", lambda f: _scan(f, "--n-sig", "10"), 2, "give both n_sig and n_bkg"),
    ("scan negative yield", lambda f: _scan(f, "--n-sig", "-5", "--n-bkg", "100"), 2,
     "must be a number of events >= 0"),
    ("scan nan yield", lambda f: _scan(f, "--n-sig", "nan", "--n-bkg", "100"), 2,
     "must be a number of events"),
    ("scan zero background", lambda f: _scan(f, "--n-sig", "0", "--n-bkg", "0"), 2,
     "n_bkg > 0"),
    ("scan budget", lambda f: _scan(f, "--option", "bayesopt.budget=0"), 2,
     "bayesopt.budget must be an integer >= 1"),
    ("scan grid", lambda f: _scan(f, "--option", "grid.points=0"), 2,
     "grid.points must be an integer >= 1"),
    ("scan absurd grid", lambda f: _scan(f, "--method", "grid", "--option",
     "grid.points=100000"), 2, "GB of memory"),
    ("scan absurd search", lambda f: _scan(f, "--option", "search.points=2000000"), 2,
     "search.points must be an integer in 0..1048576"),
    ("scan absurd starts", lambda f: _scan(f, "--option", "gradient.starts=2000000"), 2,
     "gradient.starts must be an integer in 0..1048576"),
    ("scan grid batch", lambda f: _scan(f, "--option", "grid.batch=0"), 2,
     "grid.batch must be an integer >= 1"),
    ("scan random batch", lambda f: _scan(f, "--option", "random.batch=0"), 2,
     "random.batch must be an integer >= 1"),
    ("scan option syntax", lambda f: _scan(f, "--option", "strategy=1"), 2,
     "is not SECTION.NAME=VALUE"),
    ("scan unknown option", lambda f: _scan(f, "--option", "minuit.stratgy=1"), 2,
     "minuit has no option 'stratgy'"),
    ("scan option type", lambda f: _scan(f, "--option", "minuit.strategy=fast"), 2,
     "minuit.strategy must be an integer"),
    ("scan search events", lambda f: _scan(f, "--option", "search.events=0"), 2,
     "search.events must be an integer >= 1"),
    ("scan start text", lambda f: _scan(f, "--start", "tau=abc"), 2,
     "tau='abc': the value is not a number"),
    ("scan out is a file", lambda f: _scan(f, "--out", f["a_file"]), 2, "is an existing file"),
    # scan: data
    ("scan missing data", lambda f: ["scan", "--signal", f["sig.pt"], "--background",
     f["bkg.pt"], "--data", "nowhere.csv"], 2, "no such data file"),
    ("scan TeV", lambda f: _scan(f, data="tev.csv"), 2, "outside its support"),
    ("scan nan data", lambda f: _scan(f, data="nan.csv"), 2, "NaN or inf"),
    ("scan empty data", lambda f: _scan(f, data="empty.csv"), 2, "no events"),
    ("scan text data", lambda f: _scan(f, data="text.csv"), 2, "not a number"),
    ("scan bad where", lambda f: _scan(f, "--where", "m >"), 2, "cannot select"),
    ("lhco MeV", lambda f: _lhco(f, "mev.h5"), 2, "median m_jj"),
    ("lhco swapped columns", lambda f: _lhco(f, "lhco.h5", "--columns",
     "m_j1,m_jj,delta_m,tau21_j1,tau21_j2"), 2, "median m_jj"),
    ("lhco tau1 nan", lambda f: _lhco(f, "tau1nan.h5"), 2, "tau1j1 not finite (first at row 7"),
    ("lhco tau1 zero", lambda f: _lhco(f, "tau1zero.h5"), 2, "tau1j1 <= 0 (first at row 7"),
    ("lhco tau2 negative", lambda f: _lhco(f, "tau2neg.h5"), 2, "tau2j2 < 0"),
    ("lhco tau21 above 1", lambda f: _lhco(f, "tau21big.h5"), 2, "tau21 > 1"),
    ("lhco tau2 zero", lambda f: _lhco(f, "tau2zero.h5"), 2, "tau2j1 = 0 (tau21 = 0"),
    ("lhco mass negative", lambda f: _lhco(f, "mnegative.h5"), 2, "mj1 <= 0"),
    ("lhco momentum inf", lambda f: _lhco(f, "pxinf.h5"), 2, "pxj2 not finite"),
    ("lhco label", lambda f: _lhco(f, "label.h5"), 2, "label other than 0 or 1"),
    ("lhco tau2 zero selected out", lambda f: _lhco(f, "tau2zero.h5", "--where",
     "tau2j1 > 0 and tau2j2 > 0"), 0, ""),
    ("lhco tail", lambda f: _lhco(f, "tail.h5"), 0, "events have m_jj above the largest value"),
    ("yields far from the data", lambda f: _scan(f, "--n-sig", "3000", "--n-bkg", "30000",
     "--method", "grid", "--option", "grid.points=2"), 0, "more than 5 sqrt(N) apart"),
    # limits
    ("limits empty range", lambda f: _limits(f, "--at", "m_pole=300:700:0", "--at",
     "gamma=40"), 2, "is not name=low:high:count"),
    ("limits outside", lambda f: _limits(f, "--at", "m_pole=900", "--at", "gamma=40"), 2,
     "m_pole = 900 GeV is outside the trained range"),
    ("limits missing parameter", lambda f: _limits(f, "--at", "m_pole=450"), 2,
     "missing ['gamma']"),
    ("limits parameter twice", lambda f: _limits(f, *AT, "--at", "m_pole=500"), 2,
     "given twice"),
    ("limits unknown parameter", lambda f: _limits(f, *AT, "--at", "mass=1"), 2,
     "unknown ['mass']"),
    ("limits fix signal", lambda f: _limits(f, *AT, "--fix", "m_pole"), 2,
     "only background parameters"),
    ("limits cl", lambda f: _limits(f, *AT, "--cl", "1.5"), 2, "strictly between 0 and 1"),
    ("limits method", lambda f: _limits(f, *AT, "--method", "bayes"), 2, "invalid choice"),
    ("limits start outside", lambda f: _limits(f, *AT, "--start", "tau=500"), 2, "is outside"),
    ("limits jobs", lambda f: _limits(f, *AT, "--jobs", "0"), 2, "must be a positive integer"),
    ("limits scheduler", lambda f: _limits(f, *AT, "--scheduler", UNREACHABLE), 2,
     "cannot reach the Dask scheduler"),
    ("limits absurd asimov", lambda f: _limits(f, *AT, "--asimov-events", "100000000000"), 2,
     "GB of memory"),
    ("limits swapped", lambda f: ["limits", "--signal", f["bkg.pt"], "--background",
     f["sig.pt"], "--data", f["toy.csv"], *AT], 2, "swapped"),
    # toys
    ("toys missing truth", lambda f: _toys(f, "n_sig=20"), 2, "missing"),
    ("toys truth outside", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=900,gamma=40,tau=170"),
     2, "m_pole = 900 GeV is outside the trained range"),
    ("toys negative yield", lambda f: _toys(f, "n_sig=-1,n_bkg=200,m_pole=450,gamma=40,tau=170"),
     2, "yields must be >= 0"),
    ("toys truth twice", lambda f: _toys(f, "n_sig=1,n_sig=2,n_bkg=200,m_pole=450,gamma=40,"
     "tau=170"), 2, "given twice"),
    ("toys truth text", lambda f: _toys(f, "n_sig=many"), 2, "the value is not a number"),
    ("toys bootstrap without samples", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,"
     "gamma=40,tau=170", "--generator", "bootstrap"), 2, "needs --samples"),
    ("toys lhco sampler for the toy", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,"
     "gamma=40,tau=170", "--sampler", "lhco"), 2, "this model has ['m'] given ['m_pole', 'gamma']"),
    ("toys one sample", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--generator", "bootstrap", "--samples", f["toy.csv"]), 2, "takes two files"),
    ("toys breit-wigner for lhco", lambda f: ["toys", "--signal", f["zprime.pt"],
     "--background", f["qcd.pt"], "--truth", "n_sig=1,n_bkg=1,m_zprime=3500,m_x=500,m_y=100",
     "--generator", "breit-wigner"], 2, "breit-wigner draws ['m'] given"),
    ("toys zero", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--toys", "0"), 2, "must be a positive integer"),
    ("toys fix unknown", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--fix", "mass"), 2, "cannot fix"),
    ("toys swapped", lambda f: ["toys", "--signal", f["bkg.pt"], "--background", f["sig.pt"],
     "--truth", "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170"], 2, "swapped"),
    ("toys scheduler", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--scheduler", UNREACHABLE), 2, "cannot reach the Dask scheduler"),
    ("toys absurd", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--toys", "1000000000000"), 2, "GB of memory"),
    ("toys member of a single model", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,"
     "gamma=40,tau=170", "--member", "0"), 2, "--member needs a model that is an ensemble"),
    ("train ensemble of none", lambda f: ["train", "--sampler", "breit-wigner", "--role",
     "signal", "--ensemble", "0"], 2, "must be a positive integer"),
    # closure
    ("closure weight of a sampler", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", "--weight", "w"), 2,
     "--weight weights the events of sample files"),
    ("closure parameter missing", lambda f: _closure(f, "--at", "m_pole=450"), 2,
     "needs values of exactly the signal parameters"),
    ("closure theta outside", lambda f: _closure(f, "--at", "m_pole=900", "--at", "gamma=40"),
     2, "outside the trained range"),
    ("closure background theta missing", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", background=None), 2, "needs exactly the background parameters ['tau']"),
    ("closure lhco for the toy", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", "--sampler", "lhco"), 2, "this model has ['m'] given"),
    ("closure no datasets", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--datasets", "0"), 2, "must be a positive integer"),
    ("closure swapped", lambda f: ["closure", "--signal", f["bkg.pt"], "--background",
     f["sig.pt"], "--sampler", "breit-wigner", "--at", "tau=170", "--background-theta",
     "m_pole=450,gamma=40"], 2, "swapped"),
    ("closure leave-out of continuous theta", lambda f: _closure(f, "--at", "m_pole=450",
     "--at", "gamma=40", "--leave-out", "m_pole=450", "--events", "200", "--jobs", "1"), 2,
     "trained on continuously drawn"),
    ("closure leave-out without a value", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", "--leave-out", "m_pole"), 2, "--leave-out takes one grid value, NAME=VALUE"),
    ("closure leave-out off the grid", lambda f: ["closure", "--signal", f["zprime.pt"],
     "--background", f["qcd.pt"], "--sampler", "lhco", "--at", "m_zprime=3500", "--at",
     "m_x=500", "--at", "m_y=100", "--leave-out", "m_x=600", "--events", "5", "--jobs", "1"],
     2, "the training grid has m_x in [250.0, 500.0, 750.0, 1000.0]"),
    ("closure signal samples alone", lambda f: ["closure", "--signal", f["zprime.pt"],
     "--background", f["qcd.pt"], "--signal-samples", f["lhco.h5"], "--at", "m_zprime=3500",
     "--at", "m_x=500", "--at", "m_y=100"], 2, "needs --background-samples"),
    ("closure samples without parameters", lambda f: ["closure", "--signal", f["zprime.pt"],
     "--background", f["qcd.pt"], "--signal-samples", f["lhco.h5"], "--background-samples",
     f["lhco.h5"], "--at", "m_zprime=3500", "--at", "m_x=500", "--at", "m_y=100"], 2,
     "missing columns ['m_zprime', 'm_x', 'm_y']"),
    ("closure background samples with a sampler", lambda f: _closure(f, "--at", "m_pole=450",
     "--at", "gamma=40", "--background-samples", f["toy.csv"]), 2,
     "--background-samples goes with --signal-samples"),
    # nuisances
    ("simulate jet scale", lambda f: ["simulate", "--process", "qcd", "--jes", "-1.5",
     "--out", "qcd.h5"], 2, "--jes and --jms are relative shifts in (-1, 1)"),
    ("simulate jet scale in percent", lambda f: ["simulate", "--process", "qcd", "--jes", "5",
     "--out", "qcd.h5"], 2, "e.g. 0.02 for +2%; got 5.0"),
    ("nuisance spec", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--nuisance",
     "tau:5"), 2, "write name:kind:width[:observed]"),
    ("nuisance unknown parameter", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--nuisance", "jes:gaussian:1"), 2, "nuisance jes: not a parameter of the likelihood"),
    ("nuisance unknown kind", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--nuisance", "tau:flat:5:170"), 2, "unknown kind 'flat'"),
    ("nuisance lognormal without observed", lambda f: _limits(f, *AT, "--nuisance",
     "n_bkg:lognormal:0.1"), 2, "needs a positive observed value"),
    ("nuisance lognormal on a shape", lambda f: _scan(f, "--nuisance",
     "n_sig:lognormal:0.1:30", "--n-sig", "30", "--n-bkg", "270"), 2,
     "nuisance n_sig: not a parameter"),
    ("analysis file missing", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--analysis", "nowhere.toml"), 2, "no such analysis file"),
    ("analysis file broken", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--analysis", f["broken.toml"]), 2, "not a TOML analysis file"),
    ("analysis file keys", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["keys.toml"]), 2, "takes kind, width and observed, got ['kind', 'sigma']"),
    ("analysis file unknown parameter", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,"
     "gamma=40,tau=170", "--analysis", f["unknown.toml"]), 2, "nuisance jes: not a parameter"),
    ("train nuisance the sampler lacks", lambda f: _train(f, "--sampler", "breit-wigner",
     "--role", "signal", "--events", "100", "--nuisance", "jes:gaussian:0.01"), 2,
     "draws the nuisances ['mass_scale:gaussian:WIDTH'] only, not ['jes']"),
    ("train mass scale too wide", lambda f: _train(f, "--sampler", "breit-wigner", "--role",
     "signal", "--events", "100", "--nuisance", "mass_scale:gaussian:0.5"), 2,
     "relative 1-sigma scale in [0, 1/3)"),
    ("train mass scale of lhco", lambda f: _train(f, "--sampler", "lhco", "--role",
     "background", "--events", "100", "--nuisance", "mass_scale:gaussian:0.01"), 2,
     "the lhco sampler draws the nuisances ['jes:gaussian:WIDTH', 'jms:gaussian:WIDTH']"),
    ("train nuisance not in context", lambda f: _train(f, "--data", f["const.csv"],
     "--observables", "m", "--context", "tau", "--nuisance", "jes:gaussian:1"), 2,
     "a nuisance of --data is one of the --context columns"),
    # negative seeds, refused by the one seed type of every command
    ("scan negative seed", lambda f: _scan(f, "--seed", "-1"), 2, "must be 0 or more"),
    ("limits xsec outside", lambda f: _limits(f, *AT, *_rate(f)), 2,
     "m_pole = 450 lies outside the cross-section table"),
    ("limits xsec columns", lambda f: _limits(f, *AT, *_rate(f, f["xsmass.csv"])), 2,
     "it has ['mass', 'sigma_fb']"),
    ("limits xsec without lumi", lambda f: _limits(f, *AT, "--xsec", f["xs.csv"]), 2,
     "give ['--lumi', '--efficiency']"),
    ("limits rate toys", lambda f: _limits(f, *AT, *_rate(f), "--method", "toys"), 2,
     "drop --method toys"),
    ("limits efficiency no record", lambda f: _limits(f, *AT, *_rate(f)[:4], "--efficiency",
     f["toy.csv"]), 2, "toy.json: no record of"),
    ("limits lumi zero", lambda f: _limits(f, *AT, *_rate(f)[:2], "--lumi", "0"), 2,
     "--lumi: must be a positive number, got 0"),
    ("limits negative seed", lambda f: _limits(f, *AT, "--seed", "-1"), 2, "must be 0 or more"),
    ("toys negative seed", lambda f: _toys(f, "n_sig=20,n_bkg=200,m_pole=450,gamma=40,tau=170",
     "--seed", "-1"), 2, "must be 0 or more"),
    ("validate negative seed", lambda f: ["validate", f["bkg.pt"], "--reference", "breit-wigner",
     "--seed", "-1"], 2, "must be 0 or more"),
    ("train negative seed", lambda f: _train(f, "--sampler", "breit-wigner", "--role", "signal",
     "--seed", "-1"), 2, "must be 0 or more"),
    ("generate negative seed", lambda f: ["generate", "--events", "5", "--seed", "-1", "--out",
     "x.h5"], 2, "must be 0 or more"),
    ("closure negative seed", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--seed", "-1"), 2, "must be 0 or more"),
    ("simulate negative seed", lambda f: ["simulate", "--process", "qcd", "--seed", "-3", "--out",
     "x.h5"], 2, "must be 0 or more"),
    # sizes that would not fit in memory
    ("toys absurd yields", lambda f: _toys(f, "n_sig=1,n_bkg=1e13,m_pole=450,gamma=40,tau=170"),
     2, "GB of memory"),
    ("closure absurd yields", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--n-bkg", "10000000000000"), 2, "GB of memory"),
    # what used to pass silently
    ("scan complex column", lambda f: _scan(f, data="complex.h5"), 2, "holds complex numbers"),
    ("scan dates column", lambda f: _scan(f, data="dates.parquet"), 2,
     "column m holds dates and times, not numbers"),
    ("scan dates column h5", lambda f: _scan(f, data="dates.h5"), 2,
     "column m holds dates and times, not numbers"),
    ("scan time spans column", lambda f: _scan(f, data="spans.parquet"), 2,
     "column m holds time spans, not numbers"),
    ("scan the same file twice", lambda f: _scan(f) + [f["toy.csv"]], 2,
     "given more than once"),
    ("scan the same file by two names", lambda f: _scan(f) + [f["toy.csv"].replace("/toy.csv",
     "/./toy.csv")], 2, "given more than once"),
    ("analysis width true", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["true.toml"]), 2, "width = True is not a number"),
    ("analysis width quoted", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--analysis", f["quoted.toml"]), 2, "width = '5' is not a number (write it without quotes"),
    ("limits value twice", lambda f: _limits(f, "--at", "m_pole=450,450", "--at", "gamma=40"), 2,
     "m_pole = [450.0] given twice"),
    ("closure value twice", lambda f: _closure(f, "--at", "m_pole=450,500,450", "--at",
     "gamma=40"), 2, "m_pole = [450.0] given twice"),
    ("closure parameter twice", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--at", "m_pole=500"), 2, "--at m_pole given twice"),
    ("train sampler few events", lambda f: _train(f, "--sampler", "breit-wigner", "--role",
     "signal", "--events", "3"), 2, "a model needs at least 50"),
    ("train ensemble few events", lambda f: _train(f, "--sampler", "breit-wigner", "--role",
     "signal", "--events", "5", "--ensemble", "2"), 2, "a model needs at least 50"),
    ("train context is an observable", lambda f: _train(f, "--data", f["const.csv"],
     "--observables", "m:100:1000", "--context", "m"), 2, "both observables and --context"),
    # messages that named the wrong problem
    ("analysis width zero", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["zero.toml"]), 2, "[nuisances.tau] nuisance tau: the width must be positive, got 0.0"),
    ("validate theta text", lambda f: ["validate", f["sig.pt"], "--reference", "breit-wigner",
     "--theta", "m_pole=abc,gamma=40"], 2, "m_pole='abc': the value is not a number"),
    ("analysis is a folder", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["analysis"]), 2, "is a folder: name the analysis file"),
    ("closure background truth outside", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", background="tau=1e6"), 2, "--background-theta, the background's truth"),
    # new: analysis files and nuisances
    ("analysis kind a number", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--analysis", f["kind.toml"]), 2, "kind is a string"),
    ("analysis observed nan", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--analysis", f["nanobs.toml"]), 2, "observed"),
    ("analysis width inf", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["infwidth.toml"]), 2, "the width must be positive, got inf"),
    ("analysis not a table", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["flat.toml"]), 2, "[nuisances.tau] takes kind, width and observed"),
    ("analysis other table", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["extra.toml"]), 2, "has [nuisances.NAME] tables, not ['signal']"),
    ("analysis binary", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--analysis",
     f["binary.toml"]), 2, "not a TOML analysis file"),
    ("nuisance twice", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--nuisance",
     "tau:gaussian:5:170", "--nuisance", "tau:gaussian:6:170"), 2,
     "--nuisance ['tau'] given twice"),
    ("nuisance negative width", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--nuisance", "tau:gaussian:-5:170"), 2, "the width must be positive, got -5.0"),
    ("nuisance text width", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270", "--nuisance",
     "tau:gaussian:abc:170"), 2, "'abc' is not a number"),
    ("nuisance observed outside", lambda f: _scan(f, "--n-sig", "30", "--n-bkg", "270",
     "--nuisance", "tau:gaussian:5:1000"), 2,
     "observed value 1000 GeV lies outside the models' range [100, 300] GeV"),
    # new: generate and simulate
    ("generate negative mass", lambda f: ["generate", "--masses", "3500,-500,100",
     "--signal-events", "5", "--out", "x.h5"], 2, "need m_X, m_Y > 0"),
    ("generate nan mass", lambda f: ["generate", "--masses", "nan,500,100", "--signal-events",
     "5", "--out", "x.h5"], 2, "got (nan, 500.0, 100.0) GeV"),
    ("generate negative signal", lambda f: ["generate", "--masses", "3500,500,100",
     "--signal-events", "-1", "--out", "x.h5"], 2, "must be 0 or more"),
    ("generate out under a file", lambda f: ["generate", "--events", "5", "--out",
     f["a_file"] + "/x.h5"], 2, "is an existing file"),
    ("simulate two masses", lambda f: ["simulate", "--process", "signal", "--masses",
     "3500,500", "--out", "x.h5"], 2, "takes m_zprime,m_x,m_y"),
    ("simulate into a folder", lambda f: ["simulate", "--process", "qcd", "--out",
     f["folder.h5"]], 2, "is a folder"),
    ("simulate smearing nan", lambda f: ["simulate", "--process", "qcd", "--smearing", "nan",
     "--out", "x.h5"], 2, "must be a number >= 0"),
    ("simulate jet mass scale", lambda f: ["simulate", "--process", "qcd", "--jms", "-2",
     "--out", "x.h5"], 2, "relative shifts in (-1, 1)"),
    ("simulate jet scale nan", lambda f: ["simulate", "--process", "qcd", "--jes", "nan",
     "--out", "x.h5"], 2, "--jes"),
    ("simulate grid text", lambda f: ["simulate", "--process", "signal", "--grid", "a;b;c",
     "--out", "g"], 2, "each a number or comma-separated numbers"),
    # new: closure and validate
    ("closure value text", lambda f: _closure(f, "--at", "m_pole=abc", "--at", "gamma=40"), 2,
     "is not name=low:high:count"),
    ("closure background truth text", lambda f: _closure(f, "--at", "m_pole=450", "--at",
     "gamma=40", background="tau=abc"), 2, "tau='abc': the value is not a number"),
    ("closure negative yield", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--n-sig", "-5"), 2, "--n-sig: must be a positive integer"),
    ("closure fix unknown", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--fix", "mass"), 2, "['mass']"),
    ("closure leave-out text", lambda f: _closure(f, "--at", "m_pole=450", "--at", "gamma=40",
     "--leave-out", "m_pole=abc"), 2, "--leave-out takes one grid value"),
    ("validate theta twice", lambda f: ["validate", f["sig.pt"], "--reference", "breit-wigner",
     "--theta", "m_pole=450,gamma=40,gamma=50"], 2, "given twice"),
    ("export corrupt model", lambda f: ["export", f["garbage.pt"], "--out", f["m.onnx"]], 2,
     "garbage.pt"),
    ("export out not onnx", lambda f: ["export", f["sig.pt"], "--out", f["m.pt"]], 2,
     "name the ONNX file to write, e.g. model.onnx"),
    ("export no out", lambda f: ["export", f["sig.pt"]], 2, "the following arguments are "
     "required: --out"),
    ("export zero events", lambda f: ["export", f["sig.pt"], "--out", f["m.onnx"], "--events",
     "0"], 2, "must be a positive integer"),
    # saved likelihoods
    ("likelihood and models", lambda f: ["scan", "--likelihood", f["saved.json"], "--signal",
     f["sig.pt"]], 2, "--likelihood holds the models, data, yields and constraints: drop "
     "['--signal']"),
    ("likelihood and yields", lambda f: ["scan", "--likelihood", f["saved.json"], "--n-sig",
     "5", "--n-bkg", "50"], 2, "drop ['--n-sig', '--n-bkg']"),
    ("scan without models", lambda f: ["scan", "--data", f["toy.csv"]], 2,
     "give --signal, --background (or --likelihood FILE.json)"),
    ("likelihood not JSON", lambda f: ["scan", "--likelihood", f["notes.txt"]], 2,
     "is not JSON: give the likelihood.json of scan --save-likelihood"),
    ("likelihood other JSON", lambda f: ["scan", "--likelihood", f["nobias.json"]], 2,
     "is not a likelihood saved by flowscan"),
    ("likelihood missing", lambda f: ["scan", "--likelihood", f["a_file"] + ".json"], 2,
     "No such file"),
    ("likelihood without its model", lambda f: ["scan", "--likelihood", f["nomodel.json"]], 2,
     "signal.pt"),
    ("likelihood models swapped", lambda f: ["scan", "--likelihood", f["swapped.json"]], 2,
     "signal.pt is not the file this likelihood was saved with (its sha256 differs)"),
    ("likelihood graph replaced", lambda f: ["scan", "--likelihood", f["graph.json"]], 2,
     "signal.onnx is not the file this likelihood was saved with"),
    ("likelihood domain edited", lambda f: ["scan", "--likelihood", f["edited.json"]], 2,
     "the document was edited or its model files replaced"),
    ("likelihood data too wide", lambda f: ["scan", "--likelihood", f["wide.json"]], 2,
     "the data's entries are not rows of 1 numbers (['m'])"),
    ("likelihood text bound", lambda f: ["scan", "--likelihood", f["textvalue.json"]], 2,
     "the domain's max of m_pole is '700', not a finite number"),
    ("likelihood no mixture", lambda f: ["scan", "--likelihood", f["nomixture.json"]], 2,
     "no distribution 'model'"),
    ("likelihood misc list", lambda f: ["scan", "--likelihood", f["nomisc.json"]], 2,
     "is not a likelihood saved by flowscan (no misc.flowscan)"),
    ("likelihood no axes", lambda f: ["scan", "--likelihood", f["noaxes.json"]], 2,
     "not a likelihood flowscan wrote (KeyError: 'axes')"),
    ("likelihood weight scale edited", lambda f: ["scan", "--likelihood", f["scale.json"]], 2,
     "its weight_scale 2.0 is not sum w / sum w^2 = 1.0 of its weights"),
    ("likelihood axis twice", lambda f: ["scan", "--likelihood", f["twice.json"]], 2,
     "the domain names a parameter twice"),
    ("likelihood no file name", lambda f: ["scan", "--likelihood", f["nofile.json"]], 2,
     "the signal distribution is not an onnx_dist of files beside the document"),
    ("save likelihood over its files", lambda f: _scan(f, "--save-likelihood", "--out",
     str(Path(f["saved.json"]).parent)), 2, "which already holds them: give another --out"),
    ("save likelihood with scale", lambda f: _scan(f, "--scale", "mass_scale:0.01:m",
     "--window", "m:200:900", "--where", "m > 210 and m < 890", "--save-likelihood"), 2,
     "only flowscan models and ensembles are saved"),
    ("validate corrupt model", lambda f: ["validate", f["garbage.pt"], "--reference",
     "breit-wigner"], 2, "not a readable flowscan model file"),
    ("validate reference without the column", lambda f: ["validate", f["bkg.pt"],
     "--reference", f["lhco.h5"]], 2, "missing columns ['m', 'tau']"),
    ("validate events negative", lambda f: ["validate", f["bkg.pt"], "--reference",
     "breit-wigner", "--events", "-5"], 2, "must be a positive integer"),
    # validate
    ("validate missing model", lambda f: ["validate", "nowhere.pt", "--reference",
     "breit-wigner"], 2, "no such model file"),
    ("validate missing reference", lambda f: ["validate", f["bkg.pt"], "--reference",
     "nowhere.csv"], 2, "no such data file"),
    ("validate breit-wigner for lhco", lambda f: ["validate", f["qcd.pt"], "--reference",
     "breit-wigner"], 2, "breit-wigner draws ['m'] given"),
    ("validate lhco for the toy", lambda f: ["validate", f["bkg.pt"], "--reference", "lhco",
     "--theta", "tau=170"], 2, "this model has ['m'] given ['tau']"),
    ("validate theta outside", lambda f: ["validate", f["sig.pt"], "--reference",
     "breit-wigner", "--theta", "m_pole=900,gamma=40"], 2, "outside the trained range"),
    ("validate theta missing", lambda f: ["validate", f["sig.pt"], "--reference",
     "breit-wigner", "--theta", "m_pole=450"], 2, "must give exactly"),
    ("validate unconditional theta", lambda f: ["validate", f["qcd.pt"], "--reference", "lhco",
     "--theta", "m_x=500"], 2, "unconditional"),
    ("validate events", lambda f: ["validate", f["bkg.pt"], "--reference", "breit-wigner",
     "--events", "0"], 2, "must be a positive integer"),
    ("validate weight of a sampler", lambda f: ["validate", f["bkg.pt"], "--reference",
     "breit-wigner", "--weight", "w"], 2, "--weight weights the events of a reference file"),
    ("validate weight not finite", lambda f: ["validate", f["norole.pt"], "--reference",
     f["nanw.csv"], "--weight", "w", "--theta", "tau=170"], 2, "NaN or inf"),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT", 0.2)
    monkeypatch.chdir(tmp_path)  # relative --out paths land in a fresh folder


@pytest.mark.parametrize(
    ("argv", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_command_line(files, argv, code, message, capsys):
    try:
        got = main(argv(files))
    except SystemExit as e:  # argparse refuses the command line itself
        got = e.code
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert got == code, err
    assert message in err
    if code == 2:  # one line naming the problem (argparse adds its usage line)
        assert len([line for line in err.splitlines() if "error" in line]) == 1, err


def _events(n: int = 50) -> torch.Tensor:
    return torch.linspace(MASS.low + 1, MASS.high - 1, n, dtype=torch.float64)[:, None]


API = [
    ("write asimov likelihood", lambda f: write_likelihood(MixtureLikelihood(
     *(DensityModel.load(f[n]).for_fit() for n in ("sig.pt", "bkg.pt")), _events(),
     weights=torch.ones(len(_events())), asimov=True), f["analysis"]), InputError,
     "an Asimov likelihood is not saved"),
    ("write exact densities", lambda f: write_likelihood(MixtureLikelihood(BreitWigner(),
     Exponential(), _events()), f["analysis"]), InputError, "the signal density is a "
     "BreitWigner: only flowscan models and ensembles are saved"),
    ("point not finite", lambda f: write_points(f["saved.json"], {"init": [1.0, math.nan]}),
     InputError, "parameter point 'init' needs 5 finite values"),
    ("one yield", lambda f: MixtureLikelihood(BreitWigner(), Exponential(), _events(), 10),
     InputError, "give both n_sig and n_bkg"),
    ("corrupt model", lambda f: DensityModel.load(f["garbage.pt"]), ModelFileError,
     "not a readable flowscan model file"),
    ("no observables", lambda f: DensityModel([]), InputError, "at least one observable"),
    ("unknown role", lambda f: DensityModel([MASS], role="data"), InputError, "unknown role"),
    ("events outside", lambda f: DensityModel.load(f["bkg.pt"]).log_prob(
     torch.tensor([[50.0]]), torch.tensor([170.0])), InputError, "outside its support"),
    ("theta nan", lambda f: DensityModel.load(f["bkg.pt"]).log_prob(_events(), torch.tensor(
     [math.nan])), InputError, "NaN or inf"),
    ("nll at nan", lambda f: MixtureLikelihood(BreitWigner(), Exponential(), _events(), 5, 45)(
     torch.tensor([450.0, math.nan, 170.0])), FitError, "not finite"),
    ("negative signal", lambda f: MixtureLikelihood(BreitWigner(), Exponential(),
     torch.tensor([[455.0]]), negative_signal=True)(torch.tensor([-1.0, 0.1, 455.0, 30.0,
     170.0])), FitError, "n_sig is too negative"),
    ("both yields zero", lambda f: MixtureLikelihood(BreitWigner(), Exponential(), _events())(
     torch.tensor([0.0, 0.0, 455.0, 30.0, 170.0])), FitError, "both yields are 0"),
    ("start outside", lambda f: ParameterSpace(BreitWigner.theta_vars, [900.0, 40.0]),
     InputError, "is outside"),
    ("reversed variable", lambda f: Variable("m", "GeV", 10.0, 1.0), InputError,
     "must be below"),
    ("training theta shape", lambda f: train(DensityModel([MASS], Exponential.theta_vars),
     _events(), torch.ones(3, 1), progress=False), InputError, "theta must have shape (50, 1)"),
    ("truth outside", lambda f: pseudo_experiments(BreitWigner(), Exponential(), {"n_sig": 1.0,
     "n_bkg": 1.0, "m_pole": 900.0, "gamma": 40.0, "tau": 170.0}, 2, progress=False),
     InputError, "outside the trained range"),
    ("same density twice", lambda f: MixtureLikelihood(*[DensityModel.load(f["norole.pt"])] * 2,
     _events()), ModelFileError, "same model"),
    ("generate nothing", lambda f: lhco.generate(0), InputError, "need n >= 1"),
    ("bad selection", lambda f: read_events(f["toy.csv"], ["m"], "m >"), InputError,
     "cannot select"),
    ("descents", lambda f: gradient_scan(Flat().log_prob, ParameterSpace(
     BreitWigner.theta_vars), descents=0), InputError, "needs descents >= 1"),
    ("minuit strategy", lambda f: minuit_scan(Flat().log_prob, ParameterSpace(
     BreitWigner.theta_vars), strategy=5), InputError, "strategy 0, 1 or 2"),
    ("search events", lambda f: global_search(MixtureLikelihood(BreitWigner(), Exponential(),
     _events(), 1, 10), ParameterSpace(BreitWigner.theta_vars + Exponential.theta_vars),
     events=0), InputError, "events >= 1"),
    ("members of no ensemble", lambda f: MixtureLikelihood(BreitWigner(), Exponential(),
     _events(), 1, 10).by_member("signal"), InputError, "not an ensemble of several members"),
    ("fit option", lambda f: FitSettings(options={"minuit": {"tol": 0}}), InputError,
     "minuit.tol must be a positive number"),
    ("negative starts", lambda f: gradient_scan(Flat().log_prob, ParameterSpace(
     BreitWigner.theta_vars), starts=-1), InputError, "starts must be 0 to"),
    ("bayesopt budget", lambda f: bayesopt_scan(Flat().log_prob, ParameterSpace(
     BreitWigner.theta_vars), 0), InputError, "must be positive"),
    ("coverage shapes", lambda f: coverage(np.ones(3), np.ones(2), 1.0), InputError,
     "equal 1D arrays"),
    ("unreachable scheduler", lambda f: parallel.dask_client(scheduler=UNREACHABLE,
     timeout=0.2).__enter__(), InputError, "cannot reach the Dask scheduler"),
    ("MeV against the models", lambda f: check_trained_range(1000 * read_events(f["lhco.h5"],
     [v.name for v in lhco.OBSERVABLES], derive=lhco.FEATURES), None,
     DensityModel.load(f["qcd.pt"])), InputError, "median m_jj"),
    ("cuda", lambda f: torch_device("cuda"), InputError, "no CUDA device"),
    ("resonance toy of 20", lambda f: resonances.Resonances(20), InputError,
     "1 to 19 parameters"),
    ("resonance theta shape", lambda f: resonances.Resonances(4).sample(3, torch.zeros(3)),
     InputError, "theta must have shape (*, 4)"),
    ("resonance theta nan", lambda f: resonances.Resonances(2).log_prob(torch.zeros(2, 6),
     torch.tensor([0.0, math.nan])), InputError, "must be finite"),
    ("declared twice", lambda f: declared(*[SimpleNamespace(nuisances=[Constraint("jes",
     "gaussian", w)]) for w in (1.0, 2.0)]), InputError, "declare the nuisance jes differently"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"), [c[1:] for c in API], ids=[c[0] for c in API]
)
def test_python_api(files, call, error, message):
    with pytest.raises(error) as info:
        call(files)
    assert isinstance(info.value, FlowscanError) and message in str(info.value)
