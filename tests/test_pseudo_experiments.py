import math

import numpy as np
import pandas as pd
import pytest
from conftest import Flat
from scipy import stats

from flowscan.parallel import dask_client
from flowscan.samples import BreitWigner, Exponential
from flowscan.scanner import FitSettings
from flowscan.stats import coverage, pseudo_experiments


def test_counting_toys_fit_the_closed_form_yield_error_and_q0():
    r"""Flat signal on a flat background of known size b: n_sig_hat = N - b; the HESSE
    error is sqrt(N - 1), as the gradient 1 - N / (mu + b) differenced over +-sqrt(N)
    (the error scale of `error_scale_hessian`) gives the curvature 1 / (N - 1); and
    q0 = 2 (N ln(N / b) - (N - b)) for N > b (CCGV eq. 97)."""
    b = 100.0
    toys = pseudo_experiments(
        Flat(), Flat(), {"n_sig": 20.0, "n_bkg": b}, 6, settings=FitSettings(fixed=["n_bkg"]),
        seed=3, progress=False,
    )
    t = toys.table
    assert t["valid"].all() and toys.floating == ["n_sig"]
    for row in t.itertuples():
        n = len(toys.dataset(row.toy))
        assert n == row.events
        assert row.n_sig == pytest.approx(n - b, abs=0.02 * math.sqrt(n))  # MIGRAD: EDM 1e-4
        assert row.n_sig_error == pytest.approx(math.sqrt(n - 1), rel=2e-3)
        q0 = 2 * (n * math.log(n / b) - (n - b)) if n > b else 0.0
        assert row.q0 == pytest.approx(q0, abs=2e-3)
    assert t["events"].std() > 0  # Poisson counts, not fixed ones
    np.testing.assert_allclose(toys.pulls("n_sig"), (t["n_sig"] - 20.0) / t["n_sig_error"])


def test_coverage_of_gaussian_means_is_68_percent():
    r"""Means of 25 draws from N(mu, 1) with their exact error 1/5: mean +- error covers mu
    with probability 2 Phi(1) - 1 = 0.6827."""
    rng = np.random.default_rng(7)
    means = rng.normal(3.0, 1.0, size=(4_000, 25)).mean(axis=1)
    p, error = coverage(means - 0.2, means + 0.2, 3.0)
    assert error == pytest.approx(math.sqrt(p * (1 - p) / 4_000))
    assert p == pytest.approx(2 * stats.norm.cdf(1) - 1, abs=3 * error)
    with pytest.raises(ValueError, match="equal 1D arrays"):
        coverage(means, means[:-1], 3.0)


def test_toys_on_two_dask_workers_equal_the_serial_ones():
    truth = {"n_sig": 80.0, "n_bkg": 800.0, "m_pole": 450.0, "gamma": 40.0, "tau": 180.0}
    args = (BreitWigner(), Exponential(), truth, 4)
    options = {"settings": FitSettings(fixed=["gamma", "tau"]), "seed": 5, "progress": False}
    serial = pseudo_experiments(*args, **options)
    with dask_client(jobs=2) as client:
        parallel = pseudo_experiments(*args, client=client, **options)
    pd.testing.assert_frame_equal(serial.table, parallel.table, check_exact=True)
    assert serial.table["valid"].all()
    summary = serial.summary()
    assert list(summary.index) == ["n_sig", "n_bkg", "m_pole"]


def test_bad_truth_is_refused():
    with pytest.raises(ValueError, match=r"missing \['n_bkg'\]"):
        pseudo_experiments(Flat(), Flat(), {"n_sig": 1.0}, 2, progress=False)
    with pytest.raises(ValueError, match="yields must be >= 0"):
        pseudo_experiments(Flat(), Flat(), {"n_sig": -1.0, "n_bkg": 5.0}, 2, progress=False)
