import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from flowscan.cli import main
from flowscan.samples import MASS, Exponential
from flowscan.stats import toy_seed


def _truncexpon(tau: float) -> stats.rv_continuous:
    return stats.truncexpon((MASS.high - MASS.low) / tau, loc=MASS.low, scale=tau)


def test_validate_on_the_exact_background(tiny_background_flow, tmp_path, capsys):
    tiny_background_flow.save(tmp_path / "bkg.pt")
    out = tmp_path / "val"
    args = ["validate", str(tmp_path / "bkg.pt"), "--reference", "breit-wigner"]
    args += ["--theta", "tau=150", "--theta", "tau=250", "--events", "3000"]
    assert main([*args, "--no-classifier", "--out", str(out)]) == 0
    assert "kl_divergence" in capsys.readouterr().out
    for name in ["marginals_0.png", "marginals_1.png", "theta_dependence.png"]:
        assert (out / name).stat().st_size > 0
    table = pd.read_csv(out / "validation.csv")
    assert sorted(table.tau.unique()) == [150, 250]
    record = json.loads((out / "validation.json").read_text())
    assert record["seed"] == 0 and record["config"]["thetas"] == [{"tau": 150}, {"tau": 250}]

    for k, tau in enumerate([150.0, 250.0]):
        rows = table[table.tau == tau].set_index("metric")
        # the held-out log-likelihood's floor is the exact density's (scipy's truncated
        # exponential) on the same reference events; the model's, the flow's own
        ref = Exponential().sample(3000, torch.tensor([tau]), toy_seed(0, 3 * k)).numpy()
        exact = _truncexpon(tau).logpdf(ref[:, 0])
        ll = rows.loc["mean_log_likelihood"]
        assert ll.floor == pytest.approx(exact.mean(), rel=1e-9)
        with torch.no_grad():
            flow = tiny_background_flow.log_prob(torch.tensor(ref).float(), torch.tensor([tau]))
        assert ll.value == pytest.approx(flow.double().mean().item(), rel=1e-6)
        kl = rows.loc["kl_divergence"]
        assert kl.value == pytest.approx(ll.floor - ll.value, abs=1e-6)


def test_validate_against_a_file_and_bad_input(tiny_background_flow, tmp_path, capsys):
    tiny_background_flow.save(tmp_path / "bkg.pt")
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame({"m": _truncexpon(t).rvs(2000, random_state=rng), "tau": t})
        for t in (130.0, 200.0)
    ]
    pd.concat(frames).to_csv(tmp_path / "ref.csv", index=False)
    out = tmp_path / "val"
    args = ["validate", str(tmp_path / "bkg.pt"), "--reference", str(tmp_path / "ref.csv")]
    assert main([*args, "--no-classifier", "--out", str(out)]) == 0
    table = pd.read_csv(out / "validation.csv")
    assert sorted(table.tau.unique()) == [130, 200]  # every point in the file
    assert "kl_divergence" not in set(table.metric)  # a file has no exact density

    for bad, message in [
        (["--theta", "m_pole=400"], "must give exactly ['tau']"),
        (["--theta", "tau=170"], "only 0 events at tau = 170 GeV"),
    ]:
        assert main([*args, *bad, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert main([*args[:2], "--reference", "lhco", "--out", str(out)]) == 2
    assert "this model has ['m'] given ['tau']" in capsys.readouterr().err
