import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from flowscan.cli import main
from flowscan.flows import DensityModel, load_model
from flowscan.io import read_events
from flowscan.samples import lhco
from flowscan.scanner import FitSettings, MixtureLikelihood, ParameterSpace
from flowscan.stats import (
    CrossSection,
    Efficiency,
    SignalRate,
    pseudo_experiments,
    upper_limit,
)


def test_demo_quick_writes_a_well_formed_result(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "m_pole" in printed and "GeV" in printed

    result = json.loads((out / "result.json").read_text())
    names = ["m_pole", "gamma", "tau"]
    for key in ["truth", "fit_flow", "fit_exact"]:
        assert list(result[key]) == names
        assert all(math.isfinite(v) for v in result[key].values())
    ranges = {"m_pole": (300, 700), "gamma": (20, 80), "tau": (100, 300)}
    for name, (lo, hi) in ranges.items():
        assert lo <= result["fit_flow"][name] <= hi
        # The exact-density fit of 5.5k events lands within 5 sigma of the truth.
        pull = (result["fit_exact"][name] - result["truth"][name]) / result["errors_exact"][name]
        assert abs(pull) < 5
    assert result["nll_evals"]["flow"] > 0 and result["nll_evals"]["exact"] > 0
    # the spread over 2 members of each model: positive for the parameters not at a bound
    assert all(result["errors_model"][n] > 0 for n in ("m_pole", "tau"))
    assert result["seconds"]["total"] > 0

    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and "torch" in config["versions"]
    for name in ["fit.png", "landscape.png", "data.csv"]:
        assert (out / name).stat().st_size > 0
    signal = load_model(out / "signal.pt")  # an ensemble of 2 (--quick)
    assert len(signal) == 2 and signal.theta_vars[0].name == "m_pole"


def _scan_args(demo, out, *extra: str) -> list[str]:
    return [
        "scan", "--signal", str(demo / "signal.pt"), "--background", str(demo / "background.pt"),
        "--data", str(demo / "data.csv"), "--n-sig", "500", "--n-bkg", "5000", "--out", str(out),
        *extra,
    ]  # fmt: skip


def test_scan_adds_the_model_bias_of_a_closure_as_a_third_error(quick_demo, tmp_path, capsys):
    closure = tmp_path / "closure.json"
    closure.write_text(json.dumps({"model_bias": {"m_pole": 0.25, "tau": 0.5}}))
    out = tmp_path / "scan"
    args = _scan_args(quick_demo, out, "--method", "minuit", "--model-bias", str(closure))
    assert main(args) == 0
    assert "(bias)" in capsys.readouterr().out
    minuit = json.loads((out / "scan.json").read_text())["results"]["minuit"]
    # each parameter gets its own bias, in the likelihood's order; gamma has none
    assert minuit["names"] == ["m_pole", "gamma", "tau"]
    assert minuit["errors_bias"] == [0.25, 0.0, 0.5]


def test_scan_runs_every_method_on_the_demo_output(quick_demo, tmp_path, capsys):
    out = tmp_path / "scan"
    budgets = ["bayesopt.budget=12", "random.n=12", "grid.points=3", "minuit.strategy=1"]
    args = _scan_args(quick_demo, out, "--method", "all", *(f"--option={o}" for o in budgets))
    assert main(args) == 0
    assert "minuit: VALID, NLL =" in capsys.readouterr().out
    scan = json.loads((out / "scan.json").read_text())
    results = scan["results"]
    assert list(results) == ["minuit", "gradient", "bayesopt", "grid", "random"]
    assert results["grid"]["nll_evals"] == 27 and results["random"]["nll_evals"] == 12
    # The two gradient-based fits agree with each other and beat every sampled point.
    assert results["minuit"]["nll"] == pytest.approx(results["gradient"]["nll"], abs=1e-3)
    for method in ["bayesopt", "grid", "random"]:
        assert results[method]["nll"] >= results["gradient"]["nll"] - 1e-3
    assert scan["config"]["events"] == 5_500 and (out / "convergence.png").stat().st_size > 0
    # every result records the settings it was fitted with; they make the same settings again
    options = {"bayesopt": {"budget": 12}, "random": {"n": 12}, "grid": {"points": 3},
               "minuit": {"strategy": 1}}  # fmt: skip
    for method, result in results.items():
        assert FitSettings(**result["settings"]) == FitSettings(method, options=options)
    assert results["minuit"]["search"]["cells"] == 484


def test_scan_reports_bad_input(quick_demo, tmp_path, capsys):
    base = _scan_args(quick_demo, tmp_path)
    assert main([*base, "--method", "newton"]) == 2
    assert "unknown method(s) ['newton']" in capsys.readouterr().err
    assert main([*base, "--columns", "mass"]) == 2
    assert "missing columns ['mass']" in capsys.readouterr().err
    assert main([*base, "--start", "m_pole=900"]) == 2
    assert "start m_pole = 900 GeV is outside" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    base[2] = str(tmp_path / "bad.pt")  # the signal model
    assert main(base) == 2
    assert "not a readable flowscan model file" in capsys.readouterr().err


def test_scan_without_yields_fits_them(quick_demo, tmp_path, capsys):
    args = _scan_args(quick_demo, tmp_path, "--method", "minuit", "--fix", "gamma,tau")
    args = [a for i, a in enumerate(args) if a not in ("--n-sig", "--n-bkg")]
    args = [a for a in args if a not in ("500", "5000")]
    assert main(args) == 0
    fit = json.loads((tmp_path / "scan.json").read_text())["results"]["minuit"]
    values = dict(zip(fit["names"], fit["theta"], strict=True))
    # The extended maximum-likelihood yields add up to the number of events.
    assert values["n_sig"] + values["n_bkg"] == pytest.approx(5_500, abs=0.5)
    assert "n_sig" in capsys.readouterr().out


def test_scan_gives_the_global_significance_of_its_fit(quick_demo, tmp_path, capsys):
    r"""800 events of the demo's data, m_pole floating (gamma fixed): the fit's local q0
    is the Python API's discovery test, the data's q0 field its `q0_field`, each to the
    fits' tolerance (1e-4 in NLL each: 2e-3 in q0), the q0 tested the larger of the two,
    and Gross-Vitells' global p-value exceeds the local one."""
    from flowscan.stats import discovery, q0_field

    data = tmp_path / "data.csv"
    pd.read_csv(quick_demo / "data.csv").iloc[:800].to_csv(data, index=False)
    out = tmp_path / "out"
    args = [
        "scan", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"), "--data", str(data),
        "--method", "minuit", "--fix", "gamma", "--start", "gamma=33",
        "--global-significance", "3", "--lee-grid", "m_pole=300:700:9", "--jobs", "1",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "global, Gross-Vitells (3 fields)" in printed
    record = json.loads((out / "scan.json").read_text())
    lee = record["global_significance"]
    sig, bkg = (load_model(quick_demo / f).for_fit() for f in ("signal.pt", "background.pt"))
    nll = MixtureLikelihood(sig, bkg, read_events(data, ["m"]))
    theta = record["results"]["minuit"]["theta"]
    space = ParameterSpace(nll.theta_vars, theta, ["gamma"])
    assert lee["method"] == "minuit"
    assert lee["q0_fit"] == pytest.approx(discovery(nll, space).q0, abs=2e-3)
    field = pd.read_csv(out / "q0_field.csv")
    assert lee["q0"] == max(lee["q0_fit"], field["q0"].max())  # the larger of fit and grid
    assert list(field["m_pole"]) == [300.0, 350.0, 400.0, 450.0, 500.0, 550.0, 600.0, 650.0, 700.0]
    at = q0_field(nll, space, {"m_pole": [500.0], "gamma": [theta[3]]})[0, 0]
    assert field["q0"][4] == pytest.approx(at, abs=2e-3)
    assert len(lee["toys_q0"]) == 3 and lee["p_gross_vitells"] > lee["local_p"]
    assert (out / "q0_field.png").stat().st_size > 0


def test_limits_on_the_demo_models_equal_the_python_api(quick_demo, tmp_path, capsys):
    args = [
        "limits", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"), "--data", str(quick_demo / "data.csv"),
        "--at", "m_pole=420,520", "--at", "gamma=40", "--fix", "tau", "--start", "tau=170",
        "--asimov-events", "4000", "--jobs", "1",
        "--out", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    assert "95% CL upper limits on n_sig" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "limits.csv")
    assert list(table["m_pole"]) == [420, 520] and (tmp_path / "limits.png").stat().st_size > 0
    sig, bkg = (load_model(quick_demo / f).for_fit() for f in ("signal.pt", "background.pt"))
    nll = MixtureLikelihood(sig, bkg, read_events(quick_demo / "data.csv", ["m"]))
    space = ParameterSpace(nll.theta_vars, [0, 5_500, 520, 40, 170], ["m_pole", "gamma", "tau"])
    limit = upper_limit(nll, space, asimov_events=4_000)
    row = table.iloc[1]
    assert row["observed"] == pytest.approx(limit.observed, rel=1e-6)
    assert row["expected_+0"] == pytest.approx(limit.expected[2], rel=1e-6)
    assert row["expected_-2"] < row["expected_+0"] < row["expected_+2"]
    # the demo's models are ensembles of 2: each member's observed limit, with that
    # member in place of its ensemble, and their spread in quadrature
    members = {w: [row[f"observed_{w}_{k}"] for k in range(2)] for w in ("signal", "background")}
    member = upper_limit(nll.with_density("signal", sig.members[1]), space, asimov_events=4_000)
    assert members["signal"][1] == pytest.approx(member.observed, rel=1e-6)
    spread = np.sqrt(sum(np.var(v, ddof=1) for v in members.values()))
    assert row["observed_model_sd"] == pytest.approx(spread, rel=1e-12)


def test_limits_on_the_signal_strength_of_a_rate_draw_the_excluded_region(
    quick_demo, tmp_path, capsys
):
    r"""A made-up cross section falling with m_pole, 20/fb, and the toy's efficiency (the
    Breit-Wigner's fraction in the window, scipy's Cauchy) recorded at 6 simulated
    points: each row's predicted yield is sigma L eff, its limits those of the Python
    API on mu, and its verdict the limit against 1."""
    from scipy import stats as st

    xs = tmp_path / "xs.csv"
    m = np.linspace(300.0, 700.0, 5)
    pd.DataFrame({"m_pole": m, "sigma_fb": 40 * np.exp(-(m - 300) / 150)}).to_csv(xs, index=False)
    files = []
    for mass in (400.0, 500.0, 600.0):
        for gamma in (30.0, 50.0):
            window = st.cauchy(mass, gamma / 2)
            passed = round(10_000 * (window.cdf(1000.0) - window.cdf(100.0)))
            record = {"masses": {"m_pole": mass, "gamma": gamma}, "generated": 10_000,
                      "passed": passed}  # fmt: skip
            (tmp_path / f"sig_{mass:g}_{gamma:g}.json").write_text(json.dumps(record))
            files.append(str(tmp_path / f"sig_{mass:g}_{gamma:g}.h5"))
    out, data = tmp_path / "out", tmp_path / "data.csv"
    pd.read_csv(quick_demo / "data.csv").iloc[:1000].to_csv(data, index=False)
    args = [
        "limits", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"), "--data", str(data),
        "--at", "m_pole=420,520", "--at", "gamma=35,45", "--fix", "tau", "--start", "tau=170",
        "--asimov-events", "1000", "--jobs", "1", "--out", str(out), "--no-progress",
        "--xsec", str(xs), "--lumi", "20", "--efficiency", *files,
    ]  # fmt: skip
    assert main(args) == 0
    assert "95% CL upper limits on mu = n_sig / n_pred" in capsys.readouterr().out
    table = pd.read_csv(out / "limits.csv")
    row = table[(table["m_pole"] == 520) & (table["gamma"] == 45)].iloc[0]
    sigma = 40 * math.exp(-(520 - 300) / 150)  # log-linear between table points: exact
    assert row["sigma_fb"] == pytest.approx(sigma, rel=1e-9)
    window = st.cauchy(520, 45 / 2)  # the smoothed efficiency against the truth (1e-3:
    truth = window.cdf(1000.0) - window.cdf(100.0)  # 10k events a point, ~0.2% each)
    assert row["efficiency"] == pytest.approx(truth, abs=3e-3)
    assert row["n_pred"] == pytest.approx(sigma * 20 * row["efficiency"], rel=1e-9)
    sig, bkg = (load_model(quick_demo / f).for_fit() for f in ("signal.pt", "background.pt"))
    nll = MixtureLikelihood(sig, bkg, read_events(data, ["m"]))
    space = ParameterSpace(nll.theta_vars, [0, 1_000, 520, 45, 170], ["m_pole", "gamma", "tau"])
    rate = (row["n_pred"], row["n_pred_error"])
    limit = upper_limit(nll, space, asimov_events=1_000, rate=rate)
    assert 0 < row["n_pred_error"] < 0.05
    assert row["observed"] == pytest.approx(limit.observed, rel=1e-6)
    np.testing.assert_allclose(row[[f"expected_{n:+g}" for n in (-2, -1, 0, 1, 2)]].to_numpy(
        dtype=float), limit.expected, rtol=1e-6)  # fmt: skip
    assert (table["excluded"] == (table["observed"] < 1)).all()
    assert (table["expected_excluded"] == (table["expected_+0"] < 1)).all()
    assert (out / "exclusion_m_pole_gamma.png").stat().st_size > 0
    assert (out / "limits_gamma=35.png").stat().st_size > 0


def test_toys_drawn_from_one_member_are_fitted_with_the_others(quick_demo, tmp_path):
    args = [
        "toys", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"),
        "--truth", "n_sig=300,n_bkg=2000,m_pole=455,gamma=33,tau=170", "--fix", "gamma,tau",
        "--toys", "2", "--null-toys", "0", "--member", "1", "--jobs", "1",
        "--out", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    assert json.loads((tmp_path / "toys.json").read_text())["config"]["member"] == 1
    table = pd.read_csv(tmp_path / "toys.csv")
    # the same toys as drawn from member 1 alone and fitted with member 0 alone
    sig, bkg = (load_model(quick_demo / f).for_fit() for f in ("signal.pt", "background.pt"))
    again = pseudo_experiments(
        sig.members[0], bkg.members[0],
        {"n_sig": 300.0, "n_bkg": 2000.0, "m_pole": 455.0, "gamma": 33.0, "tau": 170.0}, 2,
        settings=FitSettings(fixed=["gamma", "tau"]), generator=(sig.members[1], bkg.members[1]),
        seed=0, progress=False,
    )  # fmt: skip
    for name in ("n_sig", "n_bkg", "m_pole"):
        np.testing.assert_allclose(table[name], again.table[name], rtol=1e-9)
    bad = [a if a != "1" or args[i - 1] != "--member" else "5" for i, a in enumerate(args)]
    assert main(bad) == 2  # members 0 to 1: a one-line error


def test_toys_on_the_demo_models(quick_demo, tmp_path, capsys):
    truth = {"n_sig": 300.0, "n_bkg": 2_000.0, "m_pole": 455.0, "gamma": 33.0, "tau": 170.0}
    args = [
        "toys", "--signal", str(quick_demo / "signal.pt"),
        "--background", str(quick_demo / "background.pt"),
        "--truth", ",".join(f"{k}={v}" for k, v in truth.items()), "--fix", "gamma,tau",
        "--toys", "3", "--null-toys", "3", "--seed", "4",
        "--jobs", "1", "--out", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    assert "pull mean" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "toys.csv")
    null = pd.read_csv(tmp_path / "null_toys.csv")
    assert len(table) == 3 and len(null) == 3 and (null["q0"] >= 0).all()
    saved = json.loads((tmp_path / "toys.json").read_text())
    assert set(saved["summary"]) == {"n_sig", "n_bkg", "m_pole"}
    assert saved["config"]["seed"] == 4 and "distributed" in saved["versions"]
    for name in ["pulls.png", "q0.png"]:
        assert (tmp_path / name).stat().st_size > 0
    # Toy 1 again, alone and in-process: the same events and fit.
    sig, bkg = (load_model(quick_demo / f).for_fit() for f in ("signal.pt", "background.pt"))
    again = pseudo_experiments(
        sig,
        bkg,
        truth,
        2,
        settings=FitSettings(fixed=["gamma", "tau"], seed=4),
        seed=4,
        progress=False,
    )
    assert again.table["events"][1] == table["events"][1]
    # The worker ran torch on one thread, this process on two: float64 reductions may
    # round differently (~1e-16), and MIGRAD stops anywhere within its EDM of 1e-4 in NLL,
    # ~0.01 standard deviations of the minimum.
    error = table["m_pole_error"][1]
    assert again.table["m_pole"][1] == pytest.approx(table["m_pole"][1], abs=0.01 * error)


def test_cli_reports_bad_arguments(capsys):
    with pytest.raises(SystemExit) as err:
        main(["demo", "--epochs", "many"])
    assert err.value.code == 2
    assert "argument --epochs: must be an integer, got 'many'" in capsys.readouterr().err


def test_generate_then_train_on_an_lhco_schema_file(tmp_path, capsys):
    data = tmp_path / "events.h5"
    args = ["generate", "--events", "3000", "--signal-events", "200", "--masses", "3500,500,100"]
    assert main([*args, "--out", str(data)]) == 0
    meta = json.loads(data.with_suffix(".json").read_text())
    assert meta["masses"] == {"m_zprime": 3500.0, "m_x": 500.0, "m_y": 100.0}
    out = tmp_path / "bkg"
    tiny = ["--epochs", "2", "--hidden", "8,8", "--no-progress"]
    assert (
        main(["train", "--data", str(data), "--where", "label == 0", "--out", str(out), *tiny]) == 0
    )
    assert "training on 3000 events" in capsys.readouterr().out
    model = DensityModel.load(out / "model.pt")
    assert [v.name for v in model.observables] == [
        "m_jj",
        "m_j1",
        "delta_m",
        "tau21_j1",
        "tau21_j2",
    ]
    assert not model.conditional and (out / "marginals.png").stat().st_size > 0
    history = json.loads((out / "train.json").read_text())["history"]
    assert len(history) == 2 and all(math.isfinite(h["val_loss"]) for h in history)

    # A tiny signal flow from the generator, then a scan of the R&D-schema file: the NLL
    # it reports is the mixture likelihood of the file's events at the fitted masses.
    sig = tmp_path / "sig"
    args = ["train", "--generate", "lhco-signal", "--events", "60", "--out", str(sig), *tiny]
    assert main(args) == 0
    scan = tmp_path / "scan"
    args = ["scan", "--signal", str(sig / "model.pt"), "--background", str(out / "model.pt")]
    args += ["--data", str(data), "--n-sig", "200", "--n-bkg", "3000", "--out", str(scan)]
    assert main([*args, "--method", "minuit,gradient"]) == 0
    fit = json.loads((scan / "scan.json").read_text())["results"]["minuit"]
    likelihood = MixtureLikelihood(
        DensityModel.load(sig / "model.pt").double(),
        DensityModel.load(out / "model.pt").double(),
        read_events(data, [v.name for v in model.observables], derive=lhco.FEATURES),
        200,
        3000,
    )
    theta = torch.tensor(fit["theta"], dtype=torch.float64)
    assert fit["nll"] == pytest.approx(likelihood(theta).item(), abs=1e-6)

    # Limits on the signal strength of a rate: a cross section over m_zprime, and the
    # efficiency of signal samples of the generator at 3 masses through an m_jj cut.
    files = []
    for mz in (3000, 3500, 4000):
        files.append(str(tmp_path / f"zprime_{mz}.h5"))
        args = ["generate", "--events", "0", "--signal-events", "300", "--seed", str(mz)]
        assert main([*args, "--masses", f"{mz},500,100", "--out", files[-1]]) == 0
    xs = tmp_path / "xs.csv"
    pd.DataFrame({"m_zprime": [3000.0, 4000.0], "sigma_fb": [2.0, 0.2]}).to_csv(xs, index=False)
    limits = tmp_path / "limits"
    args = ["limits", "--signal", str(sig / "model.pt"), "--background", str(out / "model.pt"),
            "--data", str(data), "--where", "m_jj > 2800", "--at", "m_zprime=3750",
            "--at", "m_x=500", "--at", "m_y=100", "--xsec", str(xs), "--lumi", "100",
            "--efficiency", *files, "--jobs", "1", "--no-progress",
            "--out", str(limits)]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(limits / "limits.csv")
    names = [v.name for v in lhco.MASSES]
    efficiency = Efficiency.read(files, names, "m_jj > 2800", lhco.FEATURES)
    rate = SignalRate(CrossSection.read(xs, names), 100.0, efficiency)
    n_pred, error = rate([[3750.0, 500.0, 100.0]])
    row = table.iloc[0]
    assert row["sigma_fb"] == pytest.approx(2.0 * 0.1**0.75, rel=1e-9)  # log-linear
    assert row["n_pred"] == pytest.approx(n_pred[0], rel=1e-9)
    events = read_events(data, [v.name for v in model.observables], "m_jj > 2800", lhco.FEATURES)
    nll = MixtureLikelihood(
        DensityModel.load(sig / "model.pt").for_fit(),
        DensityModel.load(out / "model.pt").for_fit(),
        events,
    )
    space = ParameterSpace(nll.theta_vars, [0.0, len(events), 3750.0, 500.0, 100.0], names)
    limit = upper_limit(nll, space, rate=(n_pred[0], error[0]))
    assert row["observed"] == pytest.approx(limit.observed, rel=1e-6)
    assert bool(row["excluded"]) == (limit.observed < 1)

    assert main(["train", "--data", str(data), "--where", "label == 7", *tiny]) == 2
    assert "no events pass 'label == 7'" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--context", "m_zprime", *tiny]) == 2
    assert "missing columns ['m_zprime']" in capsys.readouterr().err


def test_a_failed_fit_is_reported_in_the_table_the_json_and_the_exit_code(
    quick_demo, tmp_path, capsys, monkeypatch
):
    from flowscan.exceptions import FitError
    from flowscan.scanner import fitting

    def diverging(nll, space, **kwargs):
        raise FitError("the NLL is nan at m_pole = 455")

    monkeypatch.setitem(fitting._FUNCTIONS, "minuit", diverging)
    assert main(_scan_args(quick_demo, tmp_path, "--method", "minuit")) == 1
    assert "minuit: FAILED: no finite minimum; the NLL is nan" in capsys.readouterr().out
    result = json.loads((tmp_path / "scan.json").read_text())["results"]["minuit"]
    assert result["status"] == "failed" and result["theta"] == [None, None, None]


def test_two_methods_that_disagree_exit_1_and_record_both_minima(
    quick_demo, tmp_path, capsys, monkeypatch
):
    from dataclasses import replace

    from flowscan.scanner import ParameterSpace, fitting, minuit_scan

    def stuck(nll, space, **kwargs):
        r"""Minuit ending in a local minimum: m_pole held at 650 GeV, far from the
        demo's signal at 455 GeV (500 events on 5000)."""
        start = space.start.copy()
        start[space.names.index("m_pole")] = 650.0
        held = ParameterSpace(space.theta_vars, start, [*space.fixed_names, "m_pole"])
        return replace(minuit_scan(nll, held, **kwargs), fixed=space.fixed_names)

    monkeypatch.setitem(fitting._FUNCTIONS, "minuit", stuck)
    assert main(_scan_args(quick_demo, tmp_path)) == 1
    out = capsys.readouterr().out
    assert "minuit: LOCAL MINIMUM" in out and "gradient found a minimum" in out
    results = json.loads((tmp_path / "scan.json").read_text())["results"]
    minuit, gradient = results["minuit"], results["gradient"]
    assert minuit["status"] == "local minimum" and gradient["status"] != "local minimum"
    # each records the other's minimum, the gradient scan's lower by more than 0.5
    assert minuit["minima"][-1] == {"source": "gradient", "theta": gradient["theta"],
                                    "nll": gradient["nll"]}  # fmt: skip
    assert gradient["minima"][-1]["source"] == "minuit"
    assert gradient["minima"][-1]["nll"] == minuit["nll"] > gradient["nll"] + 0.5
    assert abs(gradient["theta"][gradient["names"].index("m_pole")] - 455) < 20


def test_debug_shows_the_traceback_and_an_internal_error_is_one_line(monkeypatch, capsys, tmp_path):
    from flowscan.studies import bump_hunt

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.chdir(tmp_path)  # the demo's default run folder
    monkeypatch.setattr(bump_hunt, "train_flows", broken)
    assert main(["demo"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (KeyError: 'a bug')" in err
    with pytest.raises(KeyError):
        main(["--debug", "demo"])


def test_a_root_file_fits_end_to_end_as_its_csv(quick_demo, tmp_path, capsys):
    uproot = pytest.importorskip("uproot")
    m = pd.read_csv(quick_demo / "data.csv")["m"].to_numpy()
    with uproot.recreate(tmp_path / "events.root") as f:
        f.mktree("Events", {"m": "float64"})
        f["Events"].extend({"m": m})
    fits = {}
    for name, data in [("csv", quick_demo / "data.csv"), ("root", tmp_path / "events.root")]:
        args = _scan_args(quick_demo, tmp_path / name, "--method", "minuit")
        args[args.index("--data") + 1] = str(data)
        assert main(args) == 0
        fits[name] = json.loads((tmp_path / name / "scan.json").read_text())["results"]["minuit"]
    # the same float64 events give the same deterministic fit, to the last digit
    assert fits["root"]["theta"] == fits["csv"]["theta"]
    assert fits["root"]["status"] == "valid"


def test_export_writes_a_graph_that_onnxruntime_evaluates_as_flowscan(quick_demo, tmp_path):
    r"""The demo's signal ensemble (trained, 2 members) exported: onnxruntime's log p of
    fresh events equals the model's (float64, 1e-9: `tests/test_export.py`)."""
    from flowscan.flows import evaluate_onnx

    out = tmp_path / "signal.onnx"
    assert main(["export", str(quick_demo / "signal.pt"), "--out", str(out), "--events",
                 "200"]) == 0  # fmt: skip
    model = load_model(quick_demo / "signal.pt").for_fit()
    theta = torch.tensor([[420.0, 31.0]], dtype=torch.float64).expand(300, 2)
    x = model.sample(300, theta[0], seed=5)
    np.testing.assert_allclose(evaluate_onnx(out, x, theta), model.log_prob(x, theta),
                               rtol=0, atol=1e-9)  # fmt: skip
