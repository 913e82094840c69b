import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import scipy_densities

from flowscan.exceptions import InputError
from flowscan.flows import Architecture, DensityModel, train, train_ensemble
from flowscan.io import read_events, read_weights
from flowscan.samples import MASS, BreitWigner, Exponential, pseudo_data, reweighted
from flowscan.scanner import FitSettings, MixtureLikelihood, fit
from flowscan.weights import check_weights, effective_events

THETA = np.array([500.0, 40.0, 200.0])  # m_pole, gamma, tau (GeV)


def _reweighted(n: int, seed: int, negative: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Background events whose weighted density is the toy's exponential at tau = 250
    GeV, drawn at 150 GeV (`reweighted`)."""
    target, source = torch.tensor([250.0]), torch.tensor([150.0])
    return reweighted(Exponential(), target, source, n, negative, seed)


def test_check_weights_refuses_what_is_no_weight():
    with pytest.raises(InputError, match="2 NaN or inf value"):
        check_weights(torch.tensor([1.0, math.nan, math.inf]), 3)
    with pytest.raises(InputError, match="sum to 0 over 2 events"):
        check_weights(torch.zeros(2), 2)
    with pytest.raises(InputError, match="sum to -1"):
        check_weights(torch.tensor([1.0, -2.0]), 2)
    with pytest.raises(InputError, match="one number per event, 3"):
        check_weights(torch.ones(2), 3)


def test_effective_events_is_the_closed_form():
    w = torch.tensor([0.5, 2.0, -1.0, 3.0])
    assert effective_events(w) == pytest.approx(4.5**2 / 14.25, rel=1e-15)
    assert effective_events(None, 7) == 7.0


def test_read_weights_evaluates_an_expression_on_the_selected_rows(tmp_path):
    rng = np.random.default_rng(2)
    frames = [
        pd.DataFrame(
            {
                "m": rng.uniform(100, 1000, n),
                "genWeight": rng.choice([-1.0, 1.0], n) * 1.5,
                "sf": rng.uniform(0.9, 1.1, n),
            }
        )  # fmt: skip
        for n in (40, 30)
    ]
    paths = [tmp_path / "a.csv", tmp_path / "b.parquet"]
    frames[0].to_csv(paths[0], index=False)
    frames[1].to_parquet(paths[1])
    w = read_weights(paths, "genWeight * sf", where="m > 300")
    x = read_events(paths, ["m"], where="m > 300")
    expected = pd.concat(frames).query("m > 300")
    assert len(w) == len(x) == len(expected)
    np.testing.assert_allclose(w.numpy(), (expected["genWeight"] * expected["sf"]).to_numpy())


@pytest.mark.parametrize(
    ("column", "weight", "message"),
    [
        ([1.0, 2.0], "genWeight", "cannot compute the weight 'genWeight'"),
        ([1.0, math.inf], "w", "1 NaN or inf value(s) (first at row 1)"),
        ([0.0, 0.0], "w", "sum to 0 over 2 events"),
        (["a", "b"], "w", "is not a number per event"),
        ([1.0, 2.0], "2.0", "is not a number per event"),
    ],
)
def test_read_weights_refuses_bad_weights_by_name(tmp_path, column, weight, message):
    path = tmp_path / "events.csv"
    pd.DataFrame({"m": [300.0, 400.0], "w": column}).to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        read_weights(path, weight)
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_constant_weight_of_two_trains_the_same_model():
    # weights of 2 scale the loss sums by 2 and their normalization by 2: powers of two,
    # exact in floating point, so every step is the unweighted one to the bit
    x, theta = Exponential().training_set(2_000, seed=4)
    models = []
    for weights in (None, torch.full((len(x),), 2.0)):
        model = DensityModel([MASS], Exponential.theta_vars, Architecture(hidden_features=(8, 8)))
        train(model, x, theta, epochs=2, batch_size=256, progress=False, weights=weights)
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert models[0].history == models[1].history


def test_minibatches_of_negative_weight_sum_train():
    # 4-event minibatches of a sample with 40% negative weights: many have a weight sum
    # <= 0, which divides nothing (the loss is normalized by the mean weight)
    x, w = _reweighted(2_000, seed=18, negative=0.4)
    sums = torch.stack([b.sum() for b in w[:1600].split(4)])
    assert (sums <= 0).double().mean() > 0.2
    model = DensityModel([MASS], architecture=Architecture(hidden_features=(8, 8)))
    history = train(model, x, epochs=2, batch_size=4, progress=False, weights=w)
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in history)


@pytest.mark.parametrize("negative", [0.0, 0.2])
def test_weighted_training_learns_the_weighted_density(negative):
    # The target's KL divergence from the model, on fresh events of the exact target:
    # trained on the weighted events the model is the target's; trained as if
    # unweighted it is the source's (0.084 nats away, the exact KL of tau = 150 from 250
    # on the window). 0.01 nats: the fit of a 12-parameter mixture to ~10k effective events.
    exp = Exponential()
    x, w = _reweighted(20_000, seed=5, negative=negative)
    fresh = exp.sample(50_000, torch.tensor([250.0]), seed=6).double()
    exact = exp.log_prob(fresh, torch.tensor([250.0])).mean().item()
    kl = {}
    for name, weights in (("weighted", w), ("unweighted", None)):
        model = DensityModel([MASS], architecture=Architecture(hidden_features=(8, 8)), seed=1)
        train(model, x, epochs=15, batch_size=1024, progress=False, weights=weights, seed=1)
        with torch.no_grad():
            kl[name] = exact - model.for_fit().log_prob(fresh).mean().item()
    assert abs(kl["weighted"]) < 0.01, kl
    assert kl["unweighted"] > 0.05, kl


def test_an_ensemble_trains_on_weighted_replicas():
    x, w = _reweighted(3_000, seed=7, negative=0.2)
    ensemble = train_ensemble(
        [MASS], [], x, members=2, architecture=Architecture(hidden_features=(8, 8)), epochs=1,
        batch_size=512, progress=False, weights=w,
    )  # fmt: skip
    assert ensemble.training["effective_events"] == pytest.approx(effective_events(w), rel=1e-12)
    assert len(ensemble.members) == 2


def _mixture_log(x: np.ndarray, theta: np.ndarray, yields: np.ndarray | None, f: float):
    ps, pb = scipy_densities(x, theta)
    if yields is None:
        return np.log(f * ps + (1 - f) * pb)
    return np.log(yields[0] * ps + yields[1] * pb)


@pytest.mark.parametrize("extended", [False, True])
def test_scores_are_the_derivatives_of_each_events_log_density(extended):
    # central differences of scipy's densities in float64, step 1e-5 of each value:
    # truncation (h / (gamma / 2))^2 / 6 ~ 1e-8 relative at the peak (5 mGeV against a
    # 20 GeV half-width), rounding ~1e-16 / h below it
    x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 100, 900, seed=8)
    yields = np.array([120.0, 880.0]) if extended else None
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, *(() if extended else (100, 900)))
    theta = np.concatenate([yields, THETA]) if extended else THETA
    got = nll.scores(torch.tensor(theta)).numpy()
    xs = x.numpy()[:, 0]
    expected = np.empty_like(got)
    for j in range(len(theta)):
        h = 1e-5 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        split = (lambda t: (t[2:], t[:2])) if extended else (lambda t: (t, None))
        expected[:, j] = (
            _mixture_log(xs, *split(up), 0.1) - _mixture_log(xs, *split(down), 0.1)
        ) / (2 * h)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


def test_a_weighted_fit_has_the_sandwich_errors():
    # Pseudo-data of the toy whose background is reweighted simulation (20% negative
    # weights), fitted with the exact densities. Reference: the sandwich C D C with D
    # from per-event scores of scipy's densities by central differences (step 1e-5 of
    # each value: ~1e-8 relative) and C the fit's own HESSE covariance (of the NLL in
    # effective-event units: weights times sum w / sum w^2).
    xb, wb = _reweighted(4_000, seed=9, negative=0.2)
    xs = BreitWigner().sample(400, torch.tensor([500.0, 40.0]), seed=10).double()
    x, w = torch.cat([xs, xb]), torch.cat([torch.ones(400, dtype=torch.float64), wb])
    nll = MixtureLikelihood(BreitWigner(), Exponential(), x, weights=w)
    result = fit(nll, FitSettings())
    assert result.status == "valid"
    theta, xn, wn = result.theta, x.numpy()[:, 0], w.numpy()

    def per_event(t):  # log intensity of each event
        return _mixture_log(xn, t[2:], t[:2], 0.0)

    steps, eye = 1e-5 * np.abs(theta), np.eye(len(theta))
    scores = np.stack(
        [(per_event(theta + h * e) - per_event(theta - h * e)) / (2 * h)
         for h, e in zip(steps, eye, strict=True)], axis=1,
    )  # fmt: skip
    c = result.weighted["covariance_hesse"]  # of the NLL in effective-event units
    scaled = wn * wn.sum() / (wn**2).sum()
    expected = c @ ((scores * scaled[:, None] ** 2).T @ scores) @ c
    np.testing.assert_allclose(result.covariance, expected, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(result.errors, np.sqrt(np.diag(expected)), rtol=1e-5)
    assert result.weighted["effective"] == pytest.approx(effective_events(w), rel=1e-12)


def test_the_weights_overall_scale_changes_nothing_but_the_yields():
    # the NLL is fitted in effective-event units, so weights of sigma L / N_generated
    # (1e-3) or of 1e3 give the fit of weights near 1: the same masses and errors, the
    # yields times the scale. 1e-2 errors: Minuit's stopping rule (EDM < 1e-4, ~0.01
    # sigma) on paths that differ in the yields' units
    x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 300, 3000, seed=14)
    w = torch.from_numpy(np.random.default_rng(15).uniform(0.5, 1.5, len(x)))
    fits = {k: fit(MixtureLikelihood(BreitWigner(), Exponential(), x, weights=k * w))
            for k in (1e-3, 1.0, 1e3)}  # fmt: skip
    one = fits[1.0]
    for k, result in fits.items():
        assert result.status == "valid"
        scale = np.array([k, k, 1.0, 1.0, 1.0])
        np.testing.assert_allclose((result.theta - one.theta * scale) / (one.errors * scale), 0,
                                   atol=1e-2)  # fmt: skip
        np.testing.assert_allclose(result.errors / scale, one.errors, rtol=1e-2)


def test_a_constraint_keeps_its_information_in_the_sandwich():
    # a mass scale of 0.1% per sigma that the data hardly measure: its error is its
    # constraint's width, N(0, 1), with the sandwich as with HESSE; with weights of 1
    # the sandwich is HESSE to the asymptotic agreement of D with the curvature: D's
    # noise on the signal's parameters is ~sqrt(2 / 1000) ~ 4.5% in variance (1000
    # signal events), 10% allows 4 of it in the errors
    from flowscan import Constraint

    signal, background = BreitWigner(0.001), Exponential(0.001)
    x = torch.cat([signal.sample(1000, torch.tensor([500.0, 40.0, 0.0]), seed=16),
                   background.sample(5000, torch.tensor([200.0, 0.0]), seed=17)])  # fmt: skip
    constraint = [Constraint("mass_scale", "gaussian", 1.0)]
    weighted = fit(MixtureLikelihood(signal, background, x, weights=torch.ones(len(x)),
                                     constraints=constraint))  # fmt: skip
    plain = fit(MixtureLikelihood(signal, background, x, constraints=constraint))
    k = weighted.names.index("mass_scale")
    assert weighted.errors[k] == pytest.approx(1.0, rel=0.05)
    np.testing.assert_allclose(weighted.errors, plain.errors, rtol=0.1)


def test_an_asimov_likelihood_keeps_hesse_errors():
    x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 200, 2000, seed=11)
    w = torch.full((len(x),), 0.5, dtype=torch.float64)
    plain = fit(MixtureLikelihood(BreitWigner(), Exponential(), x, weights=w, asimov=True))
    assert plain.weighted is None
    weighted = fit(MixtureLikelihood(BreitWigner(), Exponential(), x, weights=w))
    # weights of 0.5 halve the information HESSE sees: its errors of the masses are
    # sqrt(2) too large; the sandwich takes the factor back out (to the asymptotic
    # D = H, ~1/sqrt(N) apart)
    ratio = weighted.errors[2:] / plain.errors[2:]
    np.testing.assert_allclose(ratio, 1 / math.sqrt(2), rtol=0.1)


def test_train_and_scan_read_weights_from_the_command_line(tmp_path, capsys):
    from flowscan.cli import main

    # background events weighted to tau = 250 GeV (20% negative), and toy signal events
    xb, wb = _reweighted(3_000, seed=12, negative=0.2)
    data = tmp_path / "weighted.csv"
    pd.DataFrame({"m": xb[:, 0].numpy(), "genWeight": wb.sign().numpy(), "sf": wb.abs().numpy()}
                 ).to_csv(data, index=False)  # fmt: skip
    tiny = ["--epochs", "2", "--hidden", "8,8", "--no-progress", "--observables", "m:100:1000"]
    out = tmp_path / "bkg"
    args = ["train", "--data", str(data), "--weight", "genWeight * sf", "--out", str(out)]
    assert main([*args, "--role", "background", *tiny]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["config"]["weight"] == "genWeight * sf"
    assert record["config"]["effective_events"] == pytest.approx(effective_events(wb), rel=1e-9)
    assert f"effective events {effective_events(wb):.6g}" in capsys.readouterr().out
    checked = tmp_path / "validate"
    assert main(["validate", str(out / "model.pt"), "--reference", str(data), "--weight",
                 "genWeight * sf", "--no-classifier", "--out", str(checked)]) == 0  # fmt: skip
    metrics = json.loads((checked / "validation.json").read_text())["metrics"]
    ks = [m for m in metrics if m["metric"] == "ks_pvalue"]
    assert len(ks) == 1 and 0 <= ks[0]["floor"] <= 1  # the weighted halves against each other
    assert "weighted events" in capsys.readouterr().out

    signal = tmp_path / "sig"
    sig = ["train", "--sampler", "breit-wigner", "--role", "signal", "--events", "2000"]
    assert main([*sig, "--out", str(signal), *tiny[:-2]]) == 0
    scan = tmp_path / "scan"
    assert main(["scan", "--signal", str(signal / "model.pt"), "--background",
                 str(out / "model.pt"), "--data", str(data), "--weight", "genWeight * sf",
                 "--method", "minuit", "--out", str(scan)]) in (0, 1)  # fmt: skip
    fitted = json.loads((scan / "scan.json").read_text())["results"]["minuit"]
    assert fitted["weighted"]["sum"] == pytest.approx(float(wb.sum()), rel=1e-9)
    assert "errors by the sandwich" in capsys.readouterr().out


def test_bootstrap_draws_in_proportion_to_the_weights():
    from flowscan.samples import Bootstrap

    events = torch.tensor([[300.0], [600.0], [900.0]])
    drawn = Bootstrap(events, [MASS], weights=torch.tensor([1.0, 3.0, 0.0])).sample(40_000, seed=1)
    share = (drawn[:, 0] == 600.0).double().mean().item()
    # binomial: 0.75 +- sqrt(0.75 * 0.25 / 40000) = 0.0022; 5 sigma
    assert share == pytest.approx(0.75, abs=0.011) and not (drawn[:, 0] == 900.0).any()
    with pytest.raises(InputError, match="1 of 3 weights are negative"):
        Bootstrap(events, [MASS], weights=torch.tensor([1.0, -1.0, 2.0]))


@pytest.mark.parametrize("negative", [0.0, 0.2])
def test_reweighted_events_follow_the_target_density(negative):
    # the weighted mean of m against scipy's truncated exponential at tau = 250 GeV,
    # within 5 standard errors of a weighted mean (sqrt(sum w^2 (m - mean)^2) / sum w)
    from scipy import stats

    x, w = _reweighted(200_000, seed=13, negative=negative)
    assert (w < 0).double().mean().item() == pytest.approx(negative, abs=1e-4)
    m = x[:, 0].numpy()
    target = stats.truncexpon(b=(MASS.high - MASS.low) / 250.0, loc=MASS.low, scale=250.0)
    wn = w.numpy()
    mean = wn @ m / wn.sum()
    error = np.sqrt(wn**2 @ (m - mean) ** 2) / wn.sum()
    assert abs(mean - target.mean()) < 5 * error
