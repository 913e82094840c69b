r"""Conditional density models p(x | theta) built on zuko flows."""

from __future__ import annotations

__all__ = [
    "QUANTILES",
    "ROLES",
    "SPLINE_BOUND",
    "DensityModel",
    "check_trained_range",
    "model_device",
    "read_model_file",
    "torch_device",
]

import copy
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import partial

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Distribution, Independent
from zuko.flows import MaskedAutoregressiveTransform
from zuko.lazy import LazyDistribution, LazyTransform, UnconditionalDistribution
from zuko.transforms import ComposedTransform, MonotonicRQSTransform

from ..constraints import Constraint
from ..exceptions import FlowscanWarning, InputError, ModelFileError, first_line
from ..variables import Variable, bounds_tensor, check_events, check_theta
from .architecture import Architecture
from .logistic import Logistic
from .mixture import AutoregressiveMixture
from .preprocessing import BoundedStandardize, ResponseCurve
from .training_grid import grid_points

SPLINE_BOUND = 10.0


def _spline(bins: int) -> dict:
    r"""Rational-quadratic splines on [-10, 10] instead of zuko's [-5, 5] (identity
    outside): the Breit-Wigner tails reach beyond 5 once the affine layer has given the
    peak unit width, and the wider domain cut the toy signal's KL from 0.0054 to 0.0006
    nats/event."""
    return {
        "univariate": partial(MonotonicRQSTransform, bound=SPLINE_BOUND),
        "shapes": [(bins,), (bins,), (bins - 1,)],
    }


ROLES = ("signal", "background")
# Levels of the training data's quantiles kept per observable (`DensityModel.support`).
QUANTILES = (0.0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999, 1.0)


def _layers(
    a: Architecture, features: int, context: int
) -> tuple[list[LazyTransform], LazyDistribution]:
    r"""The layers of a model after its preprocessing, and its base distribution."""
    hidden = a.hidden_features
    if a.flow == "mog":
        truncated = a.preprocessing == "truncated"
        return [], AutoregressiveMixture(
            features, context, a.components, hidden, truncated=truncated
        )
    kwargs = {"transforms": a.transforms, "hidden_features": hidden, "activation": nn.SiLU}
    shift = MaskedAutoregressiveTransform(
        features, context, hidden_features=hidden, activation=nn.SiLU
    )
    if a.flow == "nsf":
        core = zuko.flows.MAF(features, context, **_spline(a.bins), **kwargs)
    elif a.flow == "maf":
        core = zuko.flows.MAF(features, context, **kwargs)
    elif a.flow == "realnvp":
        core = zuko.flows.RealNVP(features, context, **kwargs)
    else:
        core = zuko.flows.NICE(features, context, **_spline(a.bins), **kwargs)
    zeros = torch.zeros(features)
    base = UnconditionalDistribution(_logistic, zeros, torch.ones_like(zeros), buffer=True)
    return [shift, *core.transform.transforms], base


_FORMAT = "flowscan.DensityModel"
ENSEMBLE_FORMAT = "flowscan.DensityEnsemble"
# 2: the preprocessing is kept only inside the flow (no duplicate weights); 3: the
# training data's quantiles (`support`) and the model's role; 4: the architecture as
# one entry (`Architecture.to_dict`); 5: the training parameter points of a grid
# (`training_points`). Versions 2 to 4 still load.
_VERSION = 5
_READS = (2, 3, 4, 5)


def _logistic(loc: Tensor, scale: Tensor) -> Distribution:
    return Independent(Logistic(loc, scale), 1)


class DensityModel(nn.Module):
    r"""A normalized density p(x | theta) in the observables' own units.

    The observables are mapped onto the real line (`BoundedStandardize`, or seed 001's
    `ResponseCurve` for observables with a window followed by `BoundedStandardize`;
    log-Jacobians included), then modelled conditionally on theta scaled to [-1, 1]
    over the trained range. A flow has one conditional affine (location-scale) layer,
    which lets the following layers work on a centred, unit-width shape, then
    `transforms` layers of its family, on a standard logistic base (`Logistic` explains
    why not a Gaussian); the `"mog"` model is an `AutoregressiveMixture` directly on
    the preprocessed observables. Networks use SiLU activations, so the density is
    smooth in theta and its Hessian is meaningful (ReLU networks would make it
    piecewise linear). With no parameters the model is unconditional.

    Calling the model, `model(theta)`, returns the zuko distribution p(x | theta) with
    `log_prob(x)` and `sample(shape)`; `log_prob(x, theta)` and `sample(n, theta)` are
    the checked entry points.

    Arguments:
        observables: Observables x, with their hard bounds.
        theta_vars: Parameters theta; `low`/`high` left `None` are set from the
            training data by `adapt`.
        architecture: The family and sizes (default `Architecture()`: the mixture).
        role: `"signal"` or `"background"`: what the model describes, kept in its file
            so that a likelihood refuses swapped models; `None` if not said.
        seed: Seed of the weight initialization.

    After training, `support` `(F, len(QUANTILES))` holds the training data's quantiles
    of each observable, which `check_trained_range` compares data with, and
    `training_points` `(K, D)` the distinct training parameter points of a grid (`None`
    for continuously drawn theta), which fits are checked against (`grid_gap`).

    Example:
        >>> m = DensityModel([Variable("m", "GeV", 100.0, 1000.0)])
        >>> m.log_prob(torch.tensor([[500.0]])).shape
        torch.Size([1])
    """

    def __init__(
        self,
        observables: Sequence[Variable],
        theta_vars: Sequence[Variable] = (),
        architecture: Architecture | None = None,
        *,
        role: str | None = None,
        seed: int = 0,
        nuisances: Sequence[Constraint] = (),
    ) -> None:
        super().__init__()
        architecture = architecture or Architecture()
        if not isinstance(architecture, Architecture):
            raise InputError(f"architecture must be an Architecture, got {architecture!r}")
        if role not in (*ROLES, None):
            raise InputError(f"unknown role {role!r}; a model is one of {list(ROLES)} or None")
        if not observables:
            raise InputError("a density model needs at least one observable")
        self.observables = list(observables)
        self._theta_spec = list(theta_vars)
        self.architecture = architecture
        self.config = {
            "observables": [v.to_dict() for v in observables],
            "theta_vars": [p.to_dict() for p in theta_vars],
            "architecture": architecture.to_dict(),
            "role": role,
            "seed": seed,
            "nuisances": [asdict(c) for c in nuisances],
        }
        self.allow_extrapolation = False
        self.history: list[dict] = []
        self.training_points: Tensor | None = None

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            layers, base = _layers(architecture, len(observables), len(theta_vars))
        truncated = architecture.preprocessing == "truncated"
        self.preprocessing = [BoundedStandardize(self.observables, finite_edges=truncated)]
        if architecture.preprocessing == "response":
            response = ResponseCurve(self.observables)
            opened = [
                replace(v, low=None, high=None) if j in response.index else v
                for j, v in enumerate(self.observables)
            ]
            self.preprocessing = [response, BoundedStandardize(opened)]
        self.flow = zuko.flows.Flow([*self.preprocessing, *layers], base)
        ranges = bounds_tensor(theta_vars).float() if theta_vars else torch.empty(0, 2)
        self.register_buffer("theta_range", ranges)
        self.register_buffer("support", torch.full((len(observables), len(QUANTILES)), math.nan))

    @property
    def role(self) -> str | None:
        r"""`"signal"`, `"background"` or `None`: what the model was trained to describe."""
        return self.config["role"]

    @property
    def nuisances(self) -> list[Constraint]:
        r"""The constraints of the model's parameters that are nuisances (e.g. a mass
        scale in units of its 1-sigma variation, N(0, 1)): fits add their terms."""
        return [Constraint(**c) for c in self.config.get("nuisances", [])]

    @property
    def theta_vars(self) -> list[Variable]:
        r"""The parameters theta with their trained ranges."""
        return [
            replace(p, low=float(lo), high=float(hi))
            for p, (lo, hi) in zip(self._theta_spec, self.theta_range.tolist(), strict=True)
        ]

    @property
    def conditional(self) -> bool:
        return len(self._theta_spec) > 0

    @torch.no_grad()
    def adapt(self, x: Tensor, theta: Tensor | None = None) -> None:
        r"""Sets the preprocessing and `support` from training events `x` `(N, F)`, and
        any open parameter range and the `training_points` (`grid_points`) from the
        training parameters `theta` `(N, D)`."""
        levels = torch.tensor(QUANTILES, dtype=torch.float64, device=x.device)
        every = len(x) // 2**24 + 1  # torch.quantile takes at most 2**24 values
        self.support.copy_(torch.quantile(x.double()[::every].T, levels, dim=1).T)
        for step in self.preprocessing:
            step.adapt(x)
            x = step()(x)
        if self.architecture.preprocessing == "truncated":
            low, high = self.preprocessing[-1].latent_bounds()
            self.flow.base.low.copy_(low)
            self.flow.base.high.copy_(high)
        if self.conditional:
            self.training_points = grid_points(theta)
            lo, hi = theta.min(dim=0).values, theta.max(dim=0).values
            r = self.theta_range
            r[:, 0] = torch.where(torch.isfinite(r[:, 0]), r[:, 0], lo.to(r))
            r[:, 1] = torch.where(torch.isfinite(r[:, 1]), r[:, 1], hi.to(r))
            for p, (low, high) in zip(self._theta_spec, r.tolist(), strict=True):
                if not low < high:
                    raise InputError(
                        f"{p.name} takes the single value {low:g} {p.unit} in the training "
                        "data: a model cannot learn a dependence on it; leave it out of the "
                        "context or train on several values"
                    )

    def context(self, theta: Tensor | None) -> Tensor | None:
        r"""The flow context for theta `(*, D)`: theta checked against the trained range
        (unless `allow_extrapolation`) and scaled to [-1, 1] over it; `None` if unconditional."""
        if not self.conditional:
            if theta is not None and theta.numel() > 0:
                raise InputError("this model is unconditional: pass theta=None")
            return None
        if theta is None:
            names = [p.name for p in self._theta_spec]
            raise InputError(f"this model is conditional on {names}: pass theta")
        ref = self.theta_range
        if not isinstance(theta, Tensor):  # a tensor stays an input of a traced graph
            theta = torch.as_tensor(theta)
        theta = theta.to(device=ref.device)
        if not self.allow_extrapolation:
            check_theta(theta, self.theta_vars)
        theta = theta.to(ref.dtype)
        lo, hi = ref[:, 0], ref[:, 1]
        return 2 * (theta - lo) / (hi - lo) - 1

    def forward(self, theta: Tensor | None = None) -> Distribution:
        r"""Returns the distribution p(x | theta) for theta of shape `(*, D)` (unchecked
        x: use `log_prob` for validated events)."""
        return self.flow(self.context(theta))

    def log_prob(self, x: Tensor, theta: Tensor | None = None) -> Tensor:
        r"""Log-density of events `x` `(N, F)` in units of 1/prod(observable units).

        Arguments:
            x: Events, shape `(N, F)`, inside the observables' bounds.
            theta: Parameters, shape `(*, D)`, broadcast against the event batch:
                `(D,)` gives `(N,)`, `(N, D)` one theta per event, `(K, 1, D)` gives `(K, N)`.
        """
        x = torch.as_tensor(x)
        check_events(x, self.observables)
        x = x.to(self.theta_range)
        if theta is not None and torch.as_tensor(theta).ndim > 2:
            # zuko's affine layers need x to carry the batch dimensions of theta.
            batch = torch.broadcast_shapes(x.shape[:-1], torch.as_tensor(theta).shape[:-1])
            x = x.expand(*batch, x.shape[-1])
        return self(theta).log_prob(x)

    def latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Events `x` `(N, F)` through the preprocessing: latent events `(N, F)` in the
        model's dtype and the preprocessing's log-Jacobian `(N,)`, computed once for
        events that stay fixed (training, a fit). Unchecked: `check_events` first."""
        z = x.to(self.theta_range)
        ladj = torch.zeros_like(z[..., 0])  # not len(z): a traced graph takes any N
        for step in self.flow.transform.transforms[: len(self.preprocessing)]:
            z, term = step().call_and_ladj(z)
            ladj = ladj + term
        return z, ladj

    def latent_log_prob(self, z: Tensor, c: Tensor | None) -> Tensor:
        r"""log p of latent events `z` `(*, F)` (`latent`) given the context `c` `(*, C)`
        (`context`; `None` unconditional): the flow after its preprocessing, without the
        preprocessing's log-Jacobian, `(*,)`."""
        layers = self.flow.transform.transforms[len(self.preprocessing) :]
        if not layers:  # the mixture: its base is the whole model
            return self.flow.base(c).log_prob(z)
        y, ladj = ComposedTransform(*(t(c) for t in layers)).call_and_ladj(z)
        return self.flow.base(c).log_prob(y) + ladj

    def for_fit(self) -> DensityModel:
        r"""A copy of the model as fits use it: float64 (the README's "Precision of fits")
        and without weight gradients (a fit differentiates with respect to theta only).
        The model itself is left as it is, for its other users (training, sampling)."""
        return copy.deepcopy(self).double().requires_grad_(False)

    @torch.no_grad()
    def sample(self, n: int, theta: Tensor | None = None, seed: int | None = None) -> Tensor:
        r"""Draws `n` events at one theta `(D,)`; returns shape `(n, F)` in observable units."""
        with torch.random.fork_rng(devices=[] if self.theta_range.device.type == "cpu" else None):
            if seed is not None:
                torch.manual_seed(seed)
            return self(theta).sample((n,))

    def save(self, path: str | os.PathLike) -> None:
        r"""Writes weights, architecture, preprocessing, trained ranges and training
        history to one file."""
        torch.save(self.to_record(), path)

    def to_record(self) -> dict:
        r"""What `save` writes: format, version, config, weights (on the CPU), history."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config,
            "state_dict": {k: v.cpu() for k, v in self.state_dict().items()},
            "history": self.history,
            "training_points": self.training_points,
        }

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> DensityModel:
        r"""Rebuilds a model written by `save` (file versions 2 to 4; version 2 has no
        `support` and no role, versions 2 and 3 keep the architecture's fields flat).
        Raises `ModelFileError` for a file that is not a model, is corrupt, or holds
        weights that are not finite (`flowscan.flows.load_model` reads ensembles too)."""
        blob = read_model_file(path, device)
        if blob.get("format") == ENSEMBLE_FORMAT:
            raise ModelFileError(
                f"{path} holds an ensemble of {len(blob.get('members', []))} models: read it "
                "with flowscan.flows.load_model"
            )
        return cls.from_record(blob, str(path)).to(device)

    @classmethod
    def from_record(cls, blob: dict, path: str) -> DensityModel:
        r"""The model of a `to_record` dictionary read from `path` (checked as `load`
        says)."""
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ModelFileError(f"{path} is not a flowscan model file (no '{_FORMAT}' header)")
        if blob.get("version") not in _READS:
            raise ModelFileError(
                f"{path} has model-file version {blob.get('version')}, this flowscan reads "
                f"versions {list(_READS)}: retrain the model with this flowscan"
            )
        try:
            c = blob["config"]
            architecture = Architecture.from_dict(c["architecture"] if blob["version"] >= 4 else c)
            model = cls(
                [Variable(**v) for v in c["observables"]],
                [Variable(**p) for p in c["theta_vars"]],
                architecture,
                role=c.get("role"),
                seed=c["seed"],
                nuisances=[Constraint(**n) for n in c.get("nuisances", [])],
            )
            state = dict(blob["state_dict"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(
                f"{path}: the header does not describe a model ({type(e).__name__}: {e}); "
                "the file is damaged or was not written by flowscan"
            ) from None
        if blob["version"] == 2:
            state["support"] = model.support  # unknown: checks use the hard bounds only
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ModelFileError(
                f"{path}: weights do not match the stored architecture ({first_line(e)})"
            ) from None
        parameters = dict(model.named_parameters())
        bad = [  # buffers may hold +-inf (open edges), nothing may hold NaN
            name
            for name, t in state.items()
            if t.is_floating_point()
            and name != "support"
            and (t.isnan().any() or (name in parameters and t.isinf().any()))
        ]
        if bad:
            raise ModelFileError(
                f"{path}: {len(bad)} weight tensors are not finite (first {bad[0]}): the "
                "training diverged or the file is damaged; retrain the model"
            )
        model.history = blob.get("history", [])
        points = blob.get("training_points")  # versions 2-4: not known
        model.training_points = None if points is None else points.cpu()  # numpy's, always
        return model


def read_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    r"""The dictionary in a model file, with `ModelFileError` for one torch cannot read."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except Exception as e:
        raise ModelFileError(
            f"{path} is not a readable flowscan model file ({type(e).__name__}: "
            f"{first_line(e)}); it may be truncated or corrupt: retrain or copy it again"
        ) from None
    if not isinstance(blob, dict):
        raise ModelFileError(f"{path} is not a flowscan model file (no '{_FORMAT}' header)")
    return blob


def _known_support(density: object) -> Tensor | None:
    r"""The training quantiles of a model or ensemble that has them (file version 3)."""
    q = getattr(density, "support", None)  # a model or an ensemble
    return q if isinstance(q, Tensor) and torch.isfinite(q).all() else None


def check_trained_range(x: Tensor, signal: object | None, background: object) -> None:
    r"""Refuses events `x` `(N, F)` whose bulk lies outside what the models were trained
    on, and warns about tails beyond it.

    For each observable the median of the data must lie within the 1%-99% quantiles of
    the training data of the background model, or of the signal model (signal-rich
    data); otherwise the data are in other units or another column, and `InputError`
    says so. Without a background model's quantiles (an exact density, a version-2
    file) this is not checked: a signal model alone does not say where data sit. Events
    beyond the largest (smallest) training value of either model for an open-ended
    observable get a `FlowscanWarning` with their count: the models extrapolate there.
    """
    known = [q for q in map(_known_support, (signal, background)) if q is not None]
    if not known:
        return
    bulk = _known_support(background) is not None
    q = torch.stack(known).double().cpu()  # (M, F, L)
    x = torch.as_tensor(x).double().cpu()
    median = x.median(dim=0).values
    low, high = (
        q[..., QUANTILES.index(0.01)].min(0).values,
        q[..., QUANTILES.index(0.99)].max(0).values,
    )
    smallest, largest = q[..., 0].min(0).values, q[..., -1].max(0).values
    for j, v in enumerate(background.observables):
        unit = f" {v.unit}" if v.unit else ""
        if bulk and not low[j] <= median[j] <= high[j]:
            raise InputError(
                f"the data's median {v.name} = {median[j]:.4g}{unit} lies outside the "
                f"central 98% of the models' training data, [{low[j]:.4g}, {high[j]:.4g}]"
                f"{unit}: the data are in other units or the column is not {v.name} "
                "(check the units and --columns)"
            )
        for beyond, edge, word, open_ in (
            (x[:, j] > largest[j], largest[j], "above the largest", v.high is None),
            (x[:, j] < smallest[j], smallest[j], "below the smallest", v.low is None),
        ):
            if open_ and beyond.any():
                warnings.warn(
                    f"{int(beyond.sum())} of {len(x)} events have {v.name} {word} value "
                    f"the models were trained on ({edge:.4g}{unit}): the models extrapolate "
                    "there",
                    FlowscanWarning,
                    stacklevel=3,
                )


def model_device(model: object) -> torch.device:
    r"""The device a model's tensors are on: its first weight's (a `Scaled`'s are its
    nominal's), else its first buffer's, and the CPU for a model without any (the exact
    densities).

    Example:
        >>> from flowscan.samples import MASS, Exponential
        >>> model_device(DensityModel([MASS], Exponential.theta_vars))
        device(type='cpu')
    """
    if isinstance(model, nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            return t.device
    return torch.device("cpu")


def torch_device(name: str | torch.device) -> torch.device:
    r"""The torch device `name` (`"cpu"`, `"cuda"`, `"cuda:1"`, ...), refused with
    `InputError` if this machine or torch build does not have it.

    Example:
        >>> torch_device("cpu")
        device(type='cpu')
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r} is not a torch device; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"--device {name}: no CUDA device is available to torch {torch.__version__} on "
            "this machine; use --device cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {name}: flowscan runs on cpu or cuda")
    return device
