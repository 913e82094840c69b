r"""Pseudo-experiments: datasets drawn from a known truth and fitted like data, to measure
pulls, the coverage of intervals and the distribution of test statistics."""

from __future__ import annotations

__all__ = [
    "PseudoExperiments",
    "check_truth",
    "coverage",
    "pseudo_dataset",
    "pseudo_experiments",
    "toy_seed",
]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..constraints import Constraint
from ..exceptions import FitError, InputError
from ..parallel import map_tasks
from ..samples import Sampler
from ..scanner import Density, FitSettings, MixtureLikelihood, check_model_pair, fit
from ..variables import check_theta
from .hypotest import discovery

if TYPE_CHECKING:
    from distributed import Client


def toy_seed(seed: int, toy: int) -> int:
    r"""The seed of pseudo-experiment `toy` of a study seeded `seed`: independent streams
    (numpy `SeedSequence([seed, toy])`), so any toy can be rerun alone."""
    return int(np.random.SeedSequence([seed, toy]).generate_state(1, np.uint64)[0] >> 1)


def pseudo_dataset(
    signal: Sampler,
    background: Sampler,
    n_sig: float,
    n_bkg: float,
    theta_sig: Tensor,
    theta_bkg: Tensor,
    seed: int,
) -> Tensor:
    r"""Poisson(`n_sig`) signal events at `theta_sig` `(D_s,)` followed by Poisson(`n_bkg`)
    background events at `theta_bkg` `(D_b,)`. Returns float64 events `(N, F)`."""
    if not (n_sig >= 0 and n_bkg >= 0):
        raise InputError(f"expected yields must be >= 0, got n_sig={n_sig}, n_bkg={n_bkg}")
    rng = np.random.default_rng(seed)
    counts = rng.poisson([n_sig, n_bkg])
    seeds = rng.integers(2**62, size=2)
    return torch.cat(
        [
            draw(sampler, int(n), torch.as_tensor(theta, dtype=torch.float64), int(s))
            for sampler, n, theta, s in zip(
                (signal, background), counts, (theta_sig, theta_bkg), seeds, strict=True
            )
        ]
    )


def draw(sampler: Sampler, n: int, theta: Tensor, seed: int) -> Tensor:
    r"""`n` float64 events `(n, F)` on the CPU from `sampler` at `theta` `(D,)` (`None`
    to the sampler when D = 0: an unconditional density); a likelihood moves them to its
    models' device."""
    if n == 0:
        return torch.empty(0, len(sampler.observables), dtype=torch.float64)
    return sampler.sample(n, theta if theta.numel() else None, seed).double().cpu()


def coverage(lower: np.ndarray, upper: np.ndarray, truth: float) -> tuple[float, float]:
    r"""Fraction of the intervals `[lower, upper]` `(T,)` that contain `truth`, and its
    binomial standard error sqrt(p (1 - p) / T)."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if lower.shape != upper.shape or lower.ndim != 1 or len(lower) == 0:
        raise InputError("give lower and upper ends of one or more intervals, as equal 1D arrays")
    p = float(np.mean((lower <= truth) & (truth <= upper)))
    return p, float(np.sqrt(p * (1 - p) / len(lower)))


@dataclass(frozen=True)
class _Toy:
    r"""One pseudo-experiment as a picklable task: draw with `generator`, fit with the
    extended likelihood of `signal` and `background`."""

    signal: Density
    background: Density
    generator: tuple[Sampler, Sampler]
    truth: dict[str, float]  # every parameter of the extended likelihood, by name
    settings: FitSettings  # its fixed parameters held at their truth
    negative_signal: bool
    seed: int
    constraints: tuple[Constraint, ...] = ()

    def dataset(self, toy: int) -> Tensor:
        theta = [
            torch.tensor([self.truth[v.name] for v in d.theta_vars], dtype=torch.float64)
            for d in (self.signal, self.background)
        ]
        n_sig, n_bkg = self.truth["n_sig"], self.truth["n_bkg"]
        return pseudo_dataset(*self.generator, n_sig, n_bkg, *theta, toy_seed(self.seed, toy))

    def global_observables(self, toy: int) -> tuple[Constraint, ...]:
        r"""The constraints of toy `toy`, each global observable drawn around the truth
        of its parameter (its own stream, apart from the events')."""
        rng = np.random.default_rng([self.seed, toy, 1])
        return tuple(c.fluctuated(self.truth[c.name], rng) for c in self.constraints)

    def __call__(self, toy: int) -> dict[str, float]:
        x = self.dataset(toy)
        row = {"toy": toy, "events": len(x)}
        constraints = self.global_observables(toy)
        row |= {f"global_{c.name}": c.observed for c in constraints}
        nll = MixtureLikelihood(
            self.signal,
            self.background,
            x,
            negative_signal=self.negative_signal,
            check_models=False,  # checked once, by pseudo_experiments
            check_data=False,  # drawn from the truth's samplers
            constraints=constraints,
        )
        held = {n: self.truth[n] for n in self.settings.fixed}
        settings = replace(self.settings, start=self.settings.start | held)
        result = fit(nll, settings)
        if result.status == "failed":
            return row | {"valid": False, "status": "failed", "message": result.message}
        space = settings.space(nll)
        try:
            q0 = discovery(nll, space, result).q0 if "n_sig" in space.floating_names else np.nan
        except FitError as e:
            return row | {"valid": False, "status": "failed", "message": str(e)}
        row |= {
            "valid": result.valid,
            "status": result.status + "".join(f" {n}" for n in result.at_bound),
            "message": result.message,
            "warnings": "; ".join(result.warnings),
            "nll": result.nll,
            "q0": q0,
        }
        for name in space.floating_names:
            k = space.names.index(name)
            row |= {name: result.theta[k]}
            if result.errors is not None:
                row |= {f"{name}_error": result.errors[k]}
            if result.errors_model is not None:
                row |= {f"{name}_model": result.errors_model[k]}
            if result.minos is not None:
                lo, hi = result.minos[name]
                value = result.theta[k]
                row |= {f"{name}_lower": value + lo, f"{name}_upper": value + hi}
        return row


@dataclass
class PseudoExperiments:
    r"""Fits of pseudo-datasets drawn from a known truth.

    Attributes:
        truth: Every parameter's true value, by name (yields in events).
        floating: The fitted parameters.
        table: One row per toy: `toy`, `events`, `valid` (a valid minimum with positive
            definite curvature, inside the parameter box), `status` (`ScanResult.status`,
            the parameters at a bound after it, or `"failed"`), `message`, `warnings`
            (the fit's, e.g. a minimum in a gap of a model's training grid), `nll`, `q0`
            (the discovery test statistic; NaN with `n_sig` fixed), and per floating
            parameter its value, `<name>_error` (HESSE), `<name>_model` (the model
            error, with ensembles) and with MINOS `<name>_lower`, `<name>_upper`
            (interval ends).
    """

    truth: dict[str, float]
    floating: list[str]
    table: pd.DataFrame
    _toy: _Toy = field(repr=False)

    def dataset(self, toy: int) -> Tensor:
        r"""The events of pseudo-experiment `toy` again, `(N, F)`."""
        return self._toy.dataset(toy)

    @property
    def valid(self) -> pd.DataFrame:
        r"""The rows of toys whose fit is valid."""
        return self.table[self.table["valid"].astype(bool)]

    def pulls(self, name: str) -> np.ndarray:
        r"""(fit - truth) / HESSE error of `name` over the valid toys."""
        t = self.valid
        return ((t[name] - self.truth[name]) / t[f"{name}_error"]).to_numpy()

    def summary(self) -> pd.DataFrame:
        r"""Per floating parameter: pull mean and width with their standard errors, and
        the coverage of the HESSE (fit +- error) and MINOS intervals with binomial errors
        (MINOS columns NaN without MINOS)."""
        t, rows = self.valid, {}
        if len(t) < 2:
            raise InputError(f"{len(t)} valid fits out of {len(self.table)}: too few to summarize")
        for name in self.floating:
            pull, truth, n = self.pulls(name), self.truth[name], len(t)
            width = pull.std(ddof=1)
            value, error = t[name].to_numpy(), t[f"{name}_error"].to_numpy()
            hesse = coverage(value - error, value + error, truth)
            minos = (
                coverage(t[f"{name}_lower"], t[f"{name}_upper"], truth)
                if f"{name}_lower" in t
                else (np.nan, np.nan)
            )
            rows[name] = {
                "pull_mean": pull.mean(),
                "pull_mean_error": width / np.sqrt(n),
                "pull_width": width,
                "pull_width_error": width / np.sqrt(2 * (n - 1)),
                "hesse_coverage": hesse[0],
                "hesse_coverage_error": hesse[1],
                "minos_coverage": minos[0],
                "minos_coverage_error": minos[1],
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def check_truth(
    signal: Density,
    background: Density,
    truth: Mapping[str, float],
    toys: int,
    fixed: Sequence[str] = (),
) -> list[str]:
    r"""Raises `InputError` unless `truth` gives every parameter of the extended
    likelihood a finite value (yields >= 0, the others inside the models' ranges),
    `fixed` names parameters and `toys >= 1`; checks the models as a pair
    (`check_model_pair`). Returns the parameter names in likelihood order (a parameter
    the two densities share once)."""
    check_model_pair(signal, background)
    names = ["n_sig", "n_bkg"]
    for v in [*signal.theta_vars, *background.theta_vars]:
        if v.name not in names:
            names.append(v.name)
    missing, unknown = sorted(set(names) - set(truth)), sorted(set(truth) - set(names))
    if missing or unknown:
        raise InputError(
            f"truth needs exactly the parameters {names}: missing {missing}, unknown {unknown}"
        )
    bad = sorted(set(fixed) - set(names))
    if bad:
        raise InputError(f"cannot fix {bad}: parameters are {names}")
    if toys < 1:
        raise InputError(f"run at least one pseudo-experiment, got {toys}")
    if not all(np.isfinite(truth[n]) for n in names):
        raise InputError(f"every truth value must be a finite number, got {dict(truth)}")
    if not (truth["n_sig"] >= 0 and truth["n_bkg"] >= 0):
        raise InputError(
            f"expected yields must be >= 0, got n_sig={truth['n_sig']}, n_bkg={truth['n_bkg']}"
        )
    for density in (signal, background):
        values = [truth[v.name] for v in density.theta_vars]
        if values:
            check_theta(torch.tensor(values, dtype=torch.float64), density.theta_vars)
    return names


def pseudo_experiments(
    signal: Density,
    background: Density,
    truth: Mapping[str, float],
    toys: int,
    *,
    settings: FitSettings | None = None,
    generator: tuple[Sampler, Sampler] | None = None,
    negative_signal: bool = True,
    seed: int = 0,
    constraints: Sequence[Constraint] = (),
    client: Client | None = None,
    progress: bool = True,
) -> PseudoExperiments:
    r"""Draws `toys` pseudo-datasets from `truth` and fits each with the extended
    likelihood of `signal` and `background` as data are fitted (`fit` with `settings`,
    default `FitSettings()`: Minuit from the global search, HESSE errors, the model error
    of ensembles), with the discovery statistic q0 where `n_sig` floats.

    Each toy has Poisson(n_sig) signal and Poisson(n_bkg) background events and its own
    seed `toy_seed(seed, toy)`, so the results do not depend on how the toys are spread
    over workers, and `PseudoExperiments.dataset(toy)` redraws any one of them.

    Arguments:
        signal, background: The densities fitted, e.g. flows, in float64.
        truth: A value for each parameter of the extended likelihood, by name: `n_sig`,
            `n_bkg` (expected events), then the signal and background parameters.
        toys: Number of pseudo-experiments.
        settings: How each toy is fitted (method, start, options such as
            `{"minuit": {"minos": True}}` for MINOS intervals); its `fixed` parameters
            are held at their true values.
        generator: Signal and background samplers of the truth (a closed-form toy, a
            `Bootstrap` of simulated events); the fitted densities if `None`.
        negative_signal: Let the fitted n_sig go below 0, so its pulls are not cut at 0.
        seed: Seed of the study.
        constraints: Constraint terms of nuisance parameters. Each toy draws its global
            observables around the truth of their parameters (`Constraint.fluctuated`,
            recorded as `global_<name>` in the table) as well as its events, and is
            fitted with them (Cowan, Cranmer, Gross and Vitells; pyhf).
        client: A Dask client (`dask_client`) to run the toys on; here, in turn, if `None`.
        progress: Show a progress bar.
    """
    settings = FitSettings() if settings is None else settings
    fixed = settings.fixed
    names = check_truth(signal, background, truth, toys, fixed)
    for c in constraints:
        if c.name not in names:
            raise InputError(
                f"nuisance {c.name}: not a parameter of the likelihood; it has {names}"
            )
    toy = _Toy(
        signal=signal,
        background=background,
        generator=generator or (signal, background),
        truth={n: float(truth[n]) for n in names},
        settings=settings,
        negative_signal=negative_signal,
        seed=seed,
        constraints=tuple(constraints),
    )
    rows = map_tasks(toy, range(toys), client, progress=progress, desc="pseudo-experiments")
    return PseudoExperiments(
        truth={n: float(truth[n]) for n in names},
        floating=[n for n in names if n not in fixed],
        table=pd.DataFrame(rows),
        _toy=toy,
    )
