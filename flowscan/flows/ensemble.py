r"""Ensembles of density models: K members of one architecture, each trained on its own
bootstrap replica of the training events, whose mean density is the model."""

from __future__ import annotations

__all__ = ["DensityEnsemble", "load_model", "train_ensemble"]

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..constraints import Constraint
from ..exceptions import InputError, ModelFileError
from ..parallel import map_tasks
from ..variables import Variable, check_events
from ..weights import check_weights, effective_events
from .architecture import Architecture
from .model import ENSEMBLE_FORMAT, DensityModel, read_model_file
from .training import check_split, train

if TYPE_CHECKING:
    from distributed import Client

# 1: members as `DensityModel.to_record` dictionaries, and how they were trained.
_VERSION = 1


class _MeanDensity(Distribution):
    r"""The mean of K distributions of one shape: log p = logsumexp_k log p_k - log K;
    a draw takes each event from a member chosen uniformly."""

    arg_constraints = {}
    has_rsample = False

    def __init__(self, members: Sequence[Distribution]) -> None:
        self.members = list(members)
        first = self.members[0]
        super().__init__(first.batch_shape, first.event_shape, validate_args=False)

    def log_prob(self, x: Tensor) -> Tensor:
        lp = torch.stack([d.log_prob(x) for d in self.members])
        return lp.logsumexp(0) - math.log(len(self.members))

    @torch.no_grad()
    def sample(self, shape: torch.Size = ()) -> Tensor:
        draws = torch.stack([d.sample(shape) for d in self.members])  # (K, *shape, F)
        k = torch.randint(len(self.members), draws.shape[1:-1], device=draws.device)
        index = k[None, ..., None].expand(1, *draws.shape[1:])
        return draws.gather(0, index)[0]


class DensityEnsemble(nn.Module):
    r"""The mean density p(x | theta) = (1/K) sum_k p_k(x | theta) of K `DensityModel`s
    of one architecture, observables, parameters and trained range (a normalized density
    in the observables' units), which differ only in their training: bootstrap replicas
    of one training set and weight seeds (`train_ensemble`).

    It has a `DensityModel`'s interface (`log_prob`, `sample`, calling it with theta,
    `save`, `for_fit`, `observables`, `theta_vars`, `role`, `support`), so it serves
    `MixtureLikelihood` and every optimizer unchanged; the members' spread is what
    `flowscan.scanner.model_errors` turns into the model error of a fit.

    Arguments:
        members: The K models.
        training: How they were trained (`train_ensemble` records it; saved with them).

    Example:
        >>> obs = [Variable("m", "GeV", 100.0, 1000.0)]
        >>> ensemble = DensityEnsemble([DensityModel(obs, seed=k) for k in range(3)])
        >>> x = torch.tensor([[300.0], [700.0]])
        >>> members = torch.stack([m.log_prob(x) for m in ensemble.members])
        >>> torch.allclose(ensemble.log_prob(x), members.logsumexp(0) - math.log(3))
        True
    """

    def __init__(self, members: Sequence[DensityModel], training: dict | None = None) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise InputError("an ensemble needs at least one member")
        first = members[0]

        def kind(m: DensityModel) -> dict:
            return {k: v for k, v in m.config.items() if k != "seed"}

        for k, m in enumerate(members[1:], 1):
            if kind(m) != kind(first) or not torch.equal(m.theta_range, first.theta_range):
                raise InputError(
                    f"ensemble member {k} differs from member 0 in its observables, "
                    "parameters, trained range, architecture or role: members may differ "
                    "only in their training"
                )
        self.members = nn.ModuleList(members)
        self.training = dict(training or {})
        self.observables, self.architecture = first.observables, first.architecture
        self.config = {**kind(first), "members": len(members)}

    def __len__(self) -> int:
        return len(self.members)

    @property
    def role(self) -> str | None:
        return self.members[0].role

    @property
    def theta_vars(self) -> list[Variable]:
        return self.members[0].theta_vars

    @property
    def nuisances(self) -> list[Constraint]:
        return self.members[0].nuisances

    @property
    def theta_range(self) -> Tensor:
        return self.members[0].theta_range

    @property
    def conditional(self) -> bool:
        return self.members[0].conditional

    @property
    def history(self) -> list[list[dict]]:
        r"""Each member's training history."""
        return [m.history for m in self.members]

    @property
    def allow_extrapolation(self) -> bool:
        return self.members[0].allow_extrapolation

    @allow_extrapolation.setter
    def allow_extrapolation(self, value: bool) -> None:
        for m in self.members:
            m.allow_extrapolation = value

    @property
    def support(self) -> Tensor:
        r"""The training quantiles `(F, L)` of the members' replicas: their mean, the
        smallest minimum and the largest maximum."""
        q = torch.stack([m.support for m in self.members])
        out = q.mean(0)
        out[:, 0], out[:, -1] = q[..., 0].min(0).values, q[..., -1].max(0).values
        return out

    @property
    def training_points(self) -> Tensor | None:
        r"""The members' training parameter points together (`None` if continuous)."""
        points = [m.training_points for m in self.members]
        if any(p is None for p in points):
            return None
        return torch.unique(torch.cat(points), dim=0)

    def context(self, theta: Tensor | None) -> Tensor | None:
        r"""The members' (common) flow context for theta `(*, D)`, checked."""
        return self.members[0].context(theta)

    def forward(self, theta: Tensor | None = None) -> Distribution:
        r"""The mean distribution p(x | theta) for theta `(*, D)`, unchecked x."""
        return _MeanDensity([m(theta) for m in self.members])

    # The single model's checked entry points, on the mean distribution of `forward`.
    log_prob = DensityModel.log_prob
    sample = DensityModel.sample

    def for_fit(self) -> DensityEnsemble:
        r"""A copy of the ensemble as fits use it (`DensityModel.for_fit` of each member)."""
        return DensityEnsemble([m.for_fit() for m in self.members], self.training)

    def save(self, path: str | os.PathLike) -> None:
        r"""Writes every member (`DensityModel.to_record`) and the training record to
        one file, which `load_model` reads."""
        torch.save(
            {
                "format": ENSEMBLE_FORMAT,
                "version": _VERSION,
                "training": self.training,
                "members": [m.to_record() for m in self.members],
            },
            path,
        )


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> DensityModel | DensityEnsemble:
    r"""The model or ensemble in a file written by `save` (every model-file version that
    `DensityModel.load` reads). Raises `ModelFileError` as `DensityModel.load` does."""
    blob = read_model_file(path, device)
    if blob.get("format") != ENSEMBLE_FORMAT:
        return DensityModel.from_record(blob, str(path)).to(device)
    if blob.get("version") != _VERSION or not isinstance(blob.get("members"), list):
        raise ModelFileError(
            f"{path} has ensemble-file version {blob.get('version')}, this flowscan reads "
            f"version {_VERSION}: retrain the ensemble with this flowscan"
        )
    members = [
        DensityModel.from_record(b, f"{path} (member {k})") for k, b in enumerate(blob["members"])
    ]
    try:
        return DensityEnsemble(members, blob.get("training")).to(device)
    except InputError as e:
        raise ModelFileError(f"{path}: {e}") from None


def train_ensemble(
    observables: Sequence[Variable],
    theta_vars: Sequence[Variable],
    x: Tensor,
    theta: Tensor | None = None,
    *,
    members: int = 5,
    architecture: Architecture | None = None,
    role: str | None = None,
    nuisances: Sequence[Constraint] = (),
    seed: int = 0,
    val_fraction: float = 0.2,
    epochs: int = 40,
    batch_size: int = 4096,
    lr: float = 1e-2,
    patience: int = 8,
    threads: int = 1,
    device: str | torch.device = "cpu",
    client: Client | None = None,
    progress: bool = True,
    weights: Tensor | None = None,
) -> DensityEnsemble:
    r"""Trains an ensemble of `members` models on events `x` `(N, F)` with parameters
    `theta` `(N, D)` (`None`: unconditional) and, optionally, event `weights` `(N,)`.

    The events are split once into a training part and a validation part
    (`val_fraction`); member k trains (`train`) on its own bootstrap replica of the
    training part (as many events, drawn with replacement) from its own weight seed,
    and early-stops on the common validation part. Open parameter ranges are set from
    the whole training set first, so that every member has the same trained range.
    Members are independent tasks (`map_tasks`, on `client`'s workers if given), each
    on `threads` torch threads: the ensemble is the same for a seed whatever the number
    of workers. The split and the replicas are drawn from
    `numpy.random.SeedSequence(seed)`; member k's weights and minibatches from seed + k.

    Weighted events are resampled with their weights (a replica holds each event as
    many times as drawn, each time with its weight: the weighted bootstrap), and every
    member trains on the weighted loss (`train`).
    """
    x = torch.as_tensor(x)
    check_events(x, observables)
    w = None if weights is None else check_weights(weights, len(x), "the weights")
    if members < 1:
        raise InputError(f"an ensemble needs at least one member, got {members}")
    if theta is not None:
        theta = torch.as_tensor(theta)
        lo, hi = theta.min(0).values.tolist(), theta.max(0).values.tolist()
        theta_vars = [
            replace(
                p, low=lo[j] if p.low is None else p.low, high=hi[j] if p.high is None else p.high
            )
            for j, p in enumerate(theta_vars)
        ]
    states = np.random.SeedSequence(seed).generate_state(members + 1)
    split = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(states[-1])))
    n_val = check_split(len(x), val_fraction)  # each member trains on a replica of the rest
    val, trn = split[:n_val], split[n_val:]
    data = {
        "x": x[trn],
        "theta": None if theta is None else theta[trn],
        "weights": None if w is None else w[trn],
        "validation": tuple(None if t is None else t[val] for t in (x, theta, w)),
    }
    model = (list(observables), list(theta_vars), architecture, role, list(nuisances))
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience}
    tasks = [
        {
            "model": model,
            "replica_seed": int(states[k]),
            "seed": seed + k,
            "options": options,
            "threads": threads,
            "device": str(device),
        }
        for k in range(members)
    ]
    records = map_tasks(
        _train_member, tasks, client, progress=progress, desc="ensemble members", shared=data
    )
    training = {
        "members": members,
        "seed": seed,
        "val_fraction": val_fraction,
        "bootstrap": True,
        "events": len(x),
        "validation_events": n_val,
        "effective_events": effective_events(w, len(x)),
        "threads": threads,
        **options,
    }
    models = [DensityModel.from_record(r, f"member {k}") for k, r in enumerate(records)]
    return DensityEnsemble(models, training).to(device)


def _train_member(
    task: dict,
    x: Tensor,
    theta: Tensor | None,
    weights: Tensor | None,
    validation: tuple[Tensor | None, ...],
) -> dict:
    r"""One member of `train_ensemble`: its bootstrap replica of the training part `x`,
    `theta`, `weights` (as many events, drawn with replacement), trained on
    `task["threads"]` torch threads; returns its `DensityModel.to_record`."""
    observables, theta_vars, architecture, role, nuisances = task["model"]
    generator = torch.Generator().manual_seed(task["replica_seed"])
    replica = torch.randint(len(x), (len(x),), generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(task["threads"])
    try:
        model = DensityModel(
            observables, theta_vars, architecture, role=role, seed=task["seed"], nuisances=nuisances
        )
        model = model.to(task["device"])
        train(
            model,
            x[replica],
            None if theta is None else theta[replica],
            validation=validation,
            weights=None if weights is None else weights[replica],
            seed=task["seed"],
            progress=False,
            **task["options"],
        )
        return model.to_record()
    finally:
        torch.set_num_threads(threads)
