"""Nuisances applied to the events by their known map (`Scaled`), against the toy's
exact scaled densities and closed forms."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats

from flowscan.cli import main
from flowscan.exceptions import InputError
from flowscan.flows import DensityEnsemble, DensityModel, Scale, Scaled, load_model
from flowscan.samples import SCALE_MAPS, BreitWigner, Exponential, lhco, pseudo_data, samplers
from flowscan.scanner import MixtureLikelihood
from flowscan.scanner.minuit import minuit_scan
from flowscan.scanner.space import ParameterSpace
from flowscan.variables import Variable

F64 = torch.float64
ALPHA = 0.01
SCALE = Scale("mass_scale", ALPHA, ("m",))
# [100, 1000] GeV / (1 -+ 3 alpha), rounded outwards to edges float32 cannot hold
WIDE = (97.05, 1031.05)
WINDOW = BreitWigner().observables


def _scaled(density_type, nominal=None):
    return Scaled(nominal or density_type(window=WIDE), [SCALE], window=WINDOW)


@pytest.mark.parametrize(
    ("density_type", "nominal_theta"),
    [
        (BreitWigner, [[320.0, 25.0], [500.0, 40.0], [690.0, 75.0]]),
        (Exponential, [[110.0], [170.0], [290.0]]),
    ],
)
def test_scaled_toy_equals_the_exact_scaled_density(density_type, nominal_theta):
    # The scaled nominal on the wider window is the toy's exact scaled density (every
    # parameter a mass): equal up to the Gauss-Legendre sum over the edge slabs and
    # float64 rounding, ~1e-15 relative; 1e-12 leaves room for the log of Z.
    exact = density_type(mass_scale=ALPHA)
    scaled = _scaled(density_type)
    x = torch.linspace(100.0, 1000.0, 301, dtype=F64)[:, None]
    s = torch.tensor([-3.0, -1.3, 0.0, 0.7, 3.0], dtype=F64)
    theta = torch.tensor(nominal_theta, dtype=F64)
    grid = torch.cat([theta.repeat_interleave(len(s), 0), s.repeat(len(theta))[:, None]], 1)
    got = scaled.log_prob(x, grid[:, None, :])
    assert got.shape == (len(grid), len(x))
    torch.testing.assert_close(got, exact.log_prob(x, grid[:, None, :]), rtol=1e-12, atol=0)
    # one theta per event, and one theta for all
    torch.testing.assert_close(
        scaled.log_prob(x[:15], grid), exact.log_prob(x[:15], grid), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        scaled.log_prob(x, grid[4]), exact.log_prob(x, grid[4]), rtol=1e-12, atol=0
    )


def test_two_scales_on_a_window_edge_compose():
    # f = (1 + 0.01 s_1)(1 + 0.005 s_2) is the toy's one scale at s = (f - 1) / 0.01;
    # the nominal reaches the window mapped back by every corner of (s_1, s_2).
    scales = [SCALE, Scale("second", 0.005, ("m",))]
    scaled = Scaled(BreitWigner(window=(95.6, 1046.7)), scales, window=WINDOW)
    x = torch.linspace(100.0, 1000.0, 101, dtype=F64)[:, None]
    for s1, s2 in ((1.0, 2.0), (-3.0, 3.0), (2.5, -1.5)):
        f = (1 + 0.01 * s1) * (1 + 0.005 * s2)
        got = scaled.log_prob(x, torch.tensor([470.0, 35.0, s1, s2], dtype=F64))
        want = BreitWigner(mass_scale=ALPHA).log_prob(
            x, torch.tensor([470.0, 35.0, (f - 1) / 0.01], dtype=F64)
        )
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


def test_scaled_model_is_normalized_on_the_window():
    # An untrained model on the wide window, scaled: the change of variables and Z
    # together give a density that integrates to 1 over the analysis window at every s
    # (scipy's adaptive quadrature, to its 1e-10 tolerance).
    model = DensityModel([Variable("m", "GeV", *WIDE)], BreitWigner.theta_vars, seed=3)
    model.adapt(*BreitWigner(window=WIDE).training_set(2000, seed=1))  # untrained otherwise
    scaled = Scaled(model.for_fit(), [SCALE], window=WINDOW)
    for s in (-3.0, -0.8, 2.5):
        theta = torch.tensor([450.0, 50.0, s], dtype=F64)

        def density(m, theta=theta):
            return scaled.log_prob(torch.tensor([[m]], dtype=F64), theta).exp().item()

        total, _ = integrate.quad(density, 100.0, 1000.0, limit=200, epsabs=1e-12, epsrel=1e-10)
        assert total == pytest.approx(1.0, abs=1e-8)


class _Exponentials:
    """Two independent exponentials on [0, inf) with rates theta (1/GeV): a closed form
    whose scaled density is known, Exp(rate / f)."""

    observables = (Variable("a", "GeV", 0.0, None), Variable("b", "GeV", 0.0, None))
    theta_vars = (Variable("rate_a", "1/GeV", 0.01, 1.0), Variable("rate_b", "1/GeV", 0.01, 1.0))

    def log_prob(self, x, theta):
        return (theta.log() - theta * x).sum(-1)


def test_scales_on_open_supports_against_closed_form():
    # Two scales on one observable multiply, a third acts on the other; a support from
    # 0 is mapped onto itself (Z = 1). Reference: scipy's exponential pdfs at the
    # scaled rates.
    scales = [Scale("jes", 0.02, ("a", "b")), Scale("jms", 0.05, ("a",))]
    scaled = Scaled(_Exponentials(), scales)
    assert [v.name for v in scaled.theta_vars] == ["rate_a", "rate_b", "jes", "jms"]
    x = torch.tensor([[0.5, 3.0], [12.0, 0.1], [40.0, 7.0]], dtype=F64)
    theta = torch.tensor([0.3, 0.05, 1.5, -2.0], dtype=F64)
    f_a, f_b = (1 + 0.02 * 1.5) * (1 - 0.05 * 2.0), 1 + 0.02 * 1.5
    want = stats.expon.logpdf(x[:, 0].numpy(), scale=f_a / 0.3) + stats.expon.logpdf(
        x[:, 1].numpy(), scale=f_b / 0.05
    )
    np.testing.assert_allclose(scaled.log_prob(x, theta).numpy(), want, rtol=1e-13)
    assert [c.name for c in scaled.nuisances] == ["jes", "jms"]


def test_scaled_likelihood_fits_as_the_exact_scaled_one():
    # The mixture NLL and its gradient with scaled densities against the exact scaled
    # toy (float64, 1e-10 relative: sums of 2k log-densities, each to ~1e-15); Minuit's
    # minimum and errors the same within its tolerance.
    theta = torch.tensor([500.0, 40.0, 170.0, 0.5], dtype=F64)
    exact = [BreitWigner(mass_scale=ALPHA), Exponential(mass_scale=ALPHA)]
    x = pseudo_data(theta[[0, 1, 3]], theta[2:], 300, 1700, seed=5, densities=exact)
    # without its constraint s is a flat direction (m_pole, gamma, tau scale with it)
    c = [SCALE.constraint]
    a = MixtureLikelihood(*exact, x, 300, 1700, constraints=c)
    b = MixtureLikelihood(_scaled(BreitWigner), _scaled(Exponential), x, 300, 1700, constraints=c)
    assert a.names == b.names == ["m_pole", "gamma", "mass_scale", "tau"]
    at = torch.tensor([[480.0, 35.0, 0.3, 180.0], [520.0, 60.0, -2.0, 150.0]], dtype=F64)
    va, ga = a.value_and_grad(at)
    vb, gb = b.value_and_grad(at)
    torch.testing.assert_close(vb, va, rtol=1e-10, atol=0)
    torch.testing.assert_close(gb, ga, rtol=1e-8, atol=1e-8)
    space = ParameterSpace(a.theta_vars, start=at[0])
    fa, fb = minuit_scan(a, space), minuit_scan(b, space)
    # equal NLLs to 1e-10 leave MIGRAD's paths equal up to its EDM stopping rule
    assert (np.abs(fb.theta - fa.theta) < 1e-4 * fa.errors).all()
    np.testing.assert_allclose(fb.errors, fa.errors, rtol=1e-3)


def test_scaled_ensemble_keeps_its_members():
    # An ensemble scaled member by member: its density the members' mean; the chunked
    # gradient through learned scaled densities against plain autograd; the members one
    # per row as each alone.
    obs = [Variable("m", "GeV", *WIDE)]
    x, theta = Exponential(window=WIDE).training_set(3000, seed=4)
    members = []
    for k in range(3):
        model = DensityModel(obs, Exponential.theta_vars, seed=k)
        model.adapt(x[k::3], theta[k::3])  # untrained, but on the data's scale
        members.append(model)
    scaled = Scaled(DensityEnsemble(members).for_fit(), [SCALE], window=WINDOW)
    x = torch.tensor([[150.0], [420.0], [990.0]], dtype=F64)
    at = torch.tensor([180.0, -1.0], dtype=F64)
    each = torch.stack([m.log_prob(x, at) for m in scaled.members])
    torch.testing.assert_close(
        scaled.log_prob(x, at), each.logsumexp(0) - np.log(3), rtol=1e-14, atol=0
    )

    data = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([170.0]), 100, 900, seed=2)
    nll = MixtureLikelihood(_scaled(BreitWigner), scaled, data, 100, 900)
    nll.chunk_pairs = 37  # many chunks
    at = torch.tensor([[500.0, 40.0, 0.2, 170.0]], dtype=F64, requires_grad=True)
    value, grad = nll.value_and_grad(at.detach())
    lp_s = nll.signal.log_prob(data, at[0, :3])
    lp_b = scaled.log_prob(data, at[0, [3, 2]])
    plain = -torch.logaddexp(lp_s + np.log(0.1), lp_b + np.log(0.9)).sum()
    (plain_grad,) = torch.autograd.grad(plain, at)
    # float64 sums over 1000 events in other orders: ~1e-15 relative each
    torch.testing.assert_close(value[0], plain.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, plain_grad, rtol=1e-9, atol=1e-9)

    # the members one per row (the model error's Newton steps) as each member alone
    rows = torch.tensor(
        [[500.0, 40.0, 0.2, 170.0], [480.0, 30.0, -1.0, 200.0], [520.0, 60.0, 2.0, 150.0]],
        dtype=F64,
    )
    by_member = nll.by_member("background").nll(rows)
    alone = [
        nll.with_density("background", m).nll(r) for m, r in zip(scaled.members, rows, strict=True)
    ]
    torch.testing.assert_close(by_member, torch.stack(alone), rtol=1e-12, atol=0)


def test_bad_scales_say_what_to_do():
    narrow = BreitWigner(window=(99.0, 1010.0))
    with pytest.raises(InputError, match=r"back onto \[97.087.*1030.9.*train the nominal"):
        Scaled(narrow, [SCALE], window=WINDOW)
    with pytest.raises(InputError, match="no observable"):
        Scale("jes", 0.01, ("m_jj",)) and Scaled(BreitWigner(), [Scale("jes", 0.01, ("m_jj",))])
    with pytest.raises(InputError, match="parameter of the nominal"):
        Scaled(BreitWigner(window=WIDE), [Scale("gamma", 0.01, ("m",))], window=WINDOW)
    with pytest.raises(InputError, match="relative 1-sigma"):
        Scale("jes", 0.5, ("m",))
    with pytest.raises(InputError, match="one-observable"):
        obs = (Variable("a", "GeV", 1.0, 10.0), Variable("b", "GeV", 0.0, None))
        wide = type(
            "Wide", (), {"observables": (Variable("a", "GeV", 0.5, 20.0), obs[1]), "theta_vars": ()}
        )
        Scaled(wide(), [Scale("jes", 0.01, ("a",))], window=obs)
    with pytest.raises(InputError, match="no scale moves it"):
        window = [_Exponentials.observables[0], Variable("b", "GeV", 0.0, 50.0)]
        Scaled(_Exponentials(), [Scale("jes", 0.01, ("a",))], window=window)
    with pytest.raises(InputError, match=r"mass_scale = 3.5 sigma is outside \[-3, 3\]"):
        _scaled(Exponential).log_prob(
            torch.tensor([[200.0]], dtype=F64), torch.tensor([170.0, 3.5], dtype=F64)
        )


def test_scaled_samples_follow_the_exact_scaled_law():
    # Nominal draws on the wide window, scaled and cut to the analysis window, against
    # the truncated Cauchy at m_pole f and gamma f (scipy): a KS test on 20k events,
    # seeded, so its p-value is one fixed number (a wrong f or cut gives p ~ 0).
    f = 1 + ALPHA * 2.5
    m = _scaled(BreitWigner).sample(20_000, torch.tensor([420.0, 60.0, 2.5]), seed=3)[:, 0]
    law = stats.cauchy(loc=420.0 * f, scale=30.0 * f)
    low, high = law.cdf(100.0), law.cdf(1000.0)
    p = stats.kstest(m.numpy(), lambda v: (law.cdf(v) - low) / (high - low)).pvalue
    assert m.min() >= 100.0 and m.max() <= 1000.0 and p > 0.01


def test_train_on_a_wide_window_and_scan_with_a_scale(tmp_path, capsys):
    # The CLI path: nominal models trained on the wide window (`--observables
    # m:LOW:HIGH`), a scan with `--scale` on the analysis window; its minimum NLL is the
    # Python API's at the same theta (float64 sums: 1e-9 relative).
    small = ["--epochs", "2", "--hidden", "16,16", "--no-progress", "--events", "8000"]
    for role in ("signal", "background"):
        window = f"m:{WIDE[0]}:{WIDE[1]}"
        assert main(["train", "--sampler", "breit-wigner", "--role", role, "--observables",
                     window, "--out", str(tmp_path / role), *small]) == 0  # fmt: skip
    models = [load_model(tmp_path / f"{role}/model.pt") for role in ("signal", "background")]
    assert models[0].observables == [Variable("m", "GeV", *WIDE)]
    assert models[1].support[0, 0] < 100.0  # drawn on the wide window, not [100, 1000]
    x = pseudo_data(torch.tensor([480.0, 40.0]), torch.tensor([170.0]), 300, 3000, seed=8)
    pd.DataFrame({"m": x[:, 0]}).to_csv(tmp_path / "data.csv", index=False)
    args = ["scan", "--signal", str(tmp_path / "signal/model.pt"), "--background",
            str(tmp_path / "background/model.pt"), "--data", str(tmp_path / "data.csv"),
            "--n-sig", "300", "--n-bkg", "3000", "--method", "minuit", "--out",
            str(tmp_path / "s"), "--scale", "mass_scale:0.01:m", "--window",
            "m:100:1000"]  # fmt: skip
    assert main(args) in (0, 1)
    saved = json.loads((tmp_path / "s/scan.json").read_text())
    fit = saved["results"]["minuit"]
    assert fit["names"] == ["m_pole", "gamma", "mass_scale", "tau"]
    assert [c["name"] for c in saved["config"]["nuisances"]] == ["mass_scale"]
    signal, background = (Scaled(m.for_fit(), [SCALE], window=WINDOW) for m in models)
    nll = MixtureLikelihood(signal, background, x, 300, 3000, constraints=[SCALE.constraint])
    assert nll(torch.tensor(fit["theta"], dtype=F64)).item() == pytest.approx(fit["nll"], rel=1e-9)
    # toys generated by the toy's sampler with the same scale (its global observable
    # fluctuated), fitted through the scaled models
    truth = "n_sig=300,n_bkg=3000,m_pole=480,gamma=40,tau=170,mass_scale=0"
    toys = ["toys", *args[1:5], "--truth", truth, "--fix", "gamma,tau", "--toys", "2",
            "--null-toys", "0", "--sampler", "breit-wigner", "--jobs", "1", "--no-progress",
            *args[-4:], "--out", str(tmp_path / "t")]  # fmt: skip
    assert main(toys) in (0, 1)
    table = pd.read_csv(tmp_path / "t/toys.csv")
    assert len(table) == 2 and table["global_mass_scale"].std() > 0
    # a window the nominal models do not cover, mapped back: a one-line error
    capsys.readouterr()
    wide = [a if a != "m:100:1000" else "m:90:1000" for a in args]
    assert main(wide) == 2
    assert "train the nominal on a window at least that wide" in capsys.readouterr().err


def test_the_lhco_generator_moves_the_observables_as_the_scale_maps_say():
    # SCALE_MAPS against the generator: signal at JES = +3 sigma of 1% (JMS 0) is the
    # nominal signal with m_jj, m_j1 and delta_m times 1.03 (two-sample KS on 20k
    # seeded events each, so a fixed p-value; a 3% shift gives p ~ 1e-30).
    theta = torch.tensor([3500.0, 500.0, 100.0, 3.0, 0.0])
    shifted = lhco.Generator("signal", 0.01, 0.01).sample(20_000, theta, seed=5)
    nominal = lhco.Generator("signal").sample(20_000, theta[:3], seed=6)
    moved = SCALE_MAPS["lhco"]["jes"][0]
    for j, v in enumerate(lhco.OBSERVABLES):
        factor = 1.03 if v.name in moved else 1.0
        assert stats.ks_2samp(shifted[:, j] / factor, nominal[:, j]).pvalue > 0.01, v.name


def test_toys_refuse_a_scale_the_generator_does_not_apply(tmp_path, capsys):
    # The fast generator's QCD is scale-free: a JES on the QCD model would be fitted but
    # not drawn, so toys refuse it; the JMS alone is drawn (SCALE_MAPS).
    paths = {"signal": tmp_path / "sig.pt", "background": tmp_path / "bkg.pt"}
    DensityModel(lhco.OBSERVABLES, lhco.MASSES, role="signal").save(paths["signal"])
    DensityModel(lhco.OBSERVABLES, (), role="background").save(paths["background"])
    truth = "n_sig=10,n_bkg=100,m_zprime=3500,m_x=500,m_y=100,jes=0"
    args = ["toys", "--signal", str(paths["signal"]), "--background", str(paths["background"]),
            "--truth", truth, "--sampler", "lhco", "--scale", "jes:0.01:m_jj+m_j1+delta_m",
            "--toys", "1", "--null-toys", "0", "--out", str(tmp_path / "t")]  # fmt: skip
    assert main(args) == 2
    assert "generator's moves nothing" in capsys.readouterr().err
    drawn = samplers("lhco", scales={"jms": 0.01}).background
    assert [v.name for v in drawn.theta_vars] == ["jms"]
