r"""Bayesian optimization of the NLL with BoTorch, for comparison with gradient scans."""

from __future__ import annotations

__all__ = ["bayesopt_scan"]

import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from ..exceptions import InputError
from .result import ScanResult
from .space import ParameterSpace


def bayesopt_scan(
    nll: Callable[[Tensor], Tensor],
    space: ParameterSpace,
    budget: int = 64,
    *,
    q: int = 4,
    n_init: int | None = None,
    seed: int = 0,
) -> ScanResult:
    r"""Minimizes the NLL with a Gaussian-process surrogate on the unit box.

    A scrambled Sobol design of `n_init` points (default 2 x (Q + 1)) is evaluated as one
    batch; then, until `budget` evaluations are spent, a `SingleTaskGP` (inputs
    normalized, outcomes standardized) is fitted to -NLL, `qLogExpectedImprovement`
    proposes `q` points with `optimize_acqf` (one at a time, conditioned on those before:
    BoTorch's sequential greedy: 25 s against the joint optimization's 37 s for 60
    evaluations of the resonance toy at D = 4, q = 16, and a lower NLL), and they are
    evaluated as one batch.
    Seeded: the design, the acquisition's Monte Carlo samples and restarts.

    Arguments:
        nll: NLL of the full theta; called with batches `(K, P)`.
        space: Parameters, bounds and fixed parameters.
        budget: NLL evaluations in all.
        q: Points proposed per iteration.
        n_init: Size of the initial Sobol design.
        seed: Random seed.
    """
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    dims = int(space.floating.sum())
    n_init = 2 * (dims + 1) if n_init is None else n_init
    if budget < 1 or n_init < 1 or q < 1:
        raise InputError(f"budget, n_init and q must be positive, got {budget}, {n_init}, {q}")
    t0 = time.perf_counter()
    unit = torch.from_numpy(qmc.Sobol(dims, scramble=True, seed=seed).random(min(n_init, budget)))
    values, times = [], []

    def evaluate(u: Tensor) -> None:
        with torch.no_grad():
            values.extend(nll(space.full(space.from_unit(u))).tolist())
        times.extend([time.perf_counter() - t0] * len(u))

    evaluate(unit)
    box = torch.stack([torch.zeros(dims), torch.ones(dims)]).double()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        while len(values) < budget:
            y = -torch.tensor(values, dtype=torch.float64)[:, None]
            gp = SingleTaskGP(
                unit, y, input_transform=Normalize(d=dims), outcome_transform=Standardize(m=1)
            )
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            acquisition = qLogExpectedImprovement(gp, best_f=y.max())
            k = min(q, budget - len(values))
            candidates, _ = optimize_acqf(
                acquisition, box, q=k, num_restarts=8, raw_samples=256, sequential=True
            )
            evaluate(candidates)
            unit = torch.cat([unit, candidates.detach()])

    return ScanResult.from_evaluations(
        "bayesopt",
        space,
        space.full(space.from_unit(unit)).numpy(),
        np.array(values),
        np.array(times),
        f"budget of {budget} evaluations spent",
    )
