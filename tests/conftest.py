import math
import os

import numpy as np
import pytest
import torch
from scipy import stats

from flowscan.flows import Architecture, DensityModel, train
from flowscan.samples import MASS, BreitWigner, Exponential, training_set


@pytest.fixture(scope="session")
def tiny_signal_flow() -> DensityModel:
    r"""A small conditional model of the default family (the Gaussian mixture) trained
    for ten epochs on 5k Breit-Wigner events (float32)."""
    x, theta = training_set(BreitWigner(), 5_000, seed=11)
    model = DensityModel([MASS], BreitWigner.theta_vars, Architecture(hidden_features=(16, 16)))
    train(model, x, theta, epochs=10, batch_size=256, progress=False)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_background_flow() -> DensityModel:
    x, theta = training_set(Exponential(), 5_000, seed=12)
    model = DensityModel([MASS], Exponential.theta_vars, Architecture(hidden_features=(16, 16)))
    train(model, x, theta, epochs=10, batch_size=256, progress=False)
    return model.eval()


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    r"""The output folder of `flowscan demo --quick`: ensembles of 2 members per model."""
    from flowscan.cli import main

    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(autouse=True)
def _threads() -> None:
    # CI's 2 cores; OMP_NUM_THREADS=1 runs the suite single-threaded (reductions then
    # split differently: the tolerance proxy for another machine, README "Development").
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))


def scipy_densities(x: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Independent reference: the toy's signal and background densities (1/GeV) from
    scipy's Cauchy and truncated exponential, theta = (m_pole, gamma, tau) in GeV."""
    m0, gamma, tau = theta
    lo, hi = MASS.low, MASS.high
    cauchy = stats.cauchy(m0, gamma / 2)
    ps = cauchy.pdf(x) / (cauchy.cdf(hi) - cauchy.cdf(lo))
    pb = stats.truncexpon(b=(hi - lo) / tau, loc=lo, scale=tau).pdf(x)
    return ps, pb


def scipy_mixture_nll(x: np.ndarray, theta: np.ndarray, f: float) -> float:
    r"""The toy's mixture NLL from `scipy_densities` with signal fraction f."""
    ps, pb = scipy_densities(x, theta)
    return -np.sum(np.log(f * ps + (1 - f) * pb))


class Flat:
    r"""The uniform density on the toy's mass window: with flat signal and background the
    extended likelihood is a counting experiment."""

    observables = [MASS]
    theta_vars: list = []

    def log_prob(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        return torch.full(x.shape[:-1], -math.log(MASS.high - MASS.low), dtype=torch.float64)

    def sample(self, n: int, theta: torch.Tensor | None = None, seed: int | None = None):
        u = np.random.default_rng(seed).random((n, 1))
        return torch.from_numpy(MASS.low + (MASS.high - MASS.low) * u)
