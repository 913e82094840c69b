r"""Conditional density models p(x | theta) built on zuko flows."""

from __future__ import annotations

__all__ = ["FLOWS", "PREPROCESSING", "SPLINE_BOUND", "DensityModel"]

import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import torch
import zuko
from torch import Tensor, nn
from torch.distributions import Distribution, Independent
from zuko.flows import MaskedAutoregressiveTransform
from zuko.lazy import LazyDistribution, LazyTransform, UnconditionalDistribution
from zuko.transforms import MonotonicRQSTransform

from ..variables import Variable, bounds_tensor, check_events, check_theta
from .logistic import Logistic
from .mixture import AutoregressiveMixture
from .preprocessing import BoundedStandardize, ResponseCurve

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


FLOWS = ("mog", "nsf", "maf", "realnvp", "coupling-nsf")
PREPROCESSING = ("logit", "response")


def _layers(
    flow: str,
    features: int,
    context: int,
    transforms: int,
    hidden_features: tuple[int, ...],
    bins: int,
    components: int,
) -> tuple[list[LazyTransform], LazyDistribution]:
    r"""The layers of a model after its preprocessing, and its base distribution."""
    if flow == "mog":
        return [], AutoregressiveMixture(features, context, components, hidden_features)
    kwargs = {"transforms": transforms, "hidden_features": hidden_features, "activation": nn.SiLU}
    shift = MaskedAutoregressiveTransform(
        features, context, hidden_features=hidden_features, activation=nn.SiLU
    )
    if flow == "nsf":
        core = zuko.flows.MAF(features, context, **_spline(bins), **kwargs)
    elif flow == "maf":
        core = zuko.flows.MAF(features, context, **kwargs)
    elif flow == "realnvp":
        core = zuko.flows.RealNVP(features, context, **kwargs)
    else:
        core = zuko.flows.NICE(features, context, **_spline(bins), **kwargs)
    zeros = torch.zeros(features)
    base = UnconditionalDistribution(_logistic, zeros, torch.ones_like(zeros), buffer=True)
    return [shift, *core.transform.transforms], base


_FORMAT = "flowscan.DensityModel"
_VERSION = 2  # 2: the preprocessing is kept only inside the flow (no duplicate weights)


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
        flow: `"mog"` (autoregressive Gaussian mixture, the default: as accurate as
            the spline flows or more, 4-5x faster to train; `benchmarks/model_zoo.py`),
            `"nsf"` (autoregressive rational-quadratic splines on [-10, 10]), `"maf"`
            (affine MAF), `"realnvp"` (affine coupling) or `"coupling-nsf"` (spline
            coupling).
        transforms: Number of flow transforms after the affine layer (flows only).
        hidden_features: Hidden layer sizes of each conditioner network.
        bins: Spline bins (`"nsf"` and `"coupling-nsf"`).
        components: Gaussians per observable (`"mog"`).
        preprocessing: `"logit"` (logit/log map and standardization, the default) or,
            for `"mog"`, `"response"` (seed 001's response curve on observables with a
            window).
        seed: Seed of the weight initialization.

    Example:
        >>> m = DensityModel([Variable("m", "GeV", 100.0, 1000.0)])
        >>> m.log_prob(torch.tensor([[500.0]])).shape
        torch.Size([1])
    """

    def __init__(
        self,
        observables: Sequence[Variable],
        theta_vars: Sequence[Variable] = (),
        flow: str = "mog",
        transforms: int = 4,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
        components: int = 20,
        preprocessing: str = "logit",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}; choose one of {list(FLOWS)}")
        if preprocessing not in PREPROCESSING:
            raise ValueError(
                f"unknown preprocessing {preprocessing!r}; choose one of {list(PREPROCESSING)}"
            )
        if preprocessing == "response" and flow != "mog":
            raise ValueError(
                "preprocessing='response' is made for flow='mog' (seed 001): its latent tails "
                "fall like exp(4 u), faster than a flow's logistic base, so a flow would put "
                "density where no float x near the window edges reaches (0.1-0.5% of it for "
                "a briefly trained NSF); use preprocessing='logit' with flows"
            )
        if not observables:
            raise ValueError("a density model needs at least one observable")
        self.observables = list(observables)
        self._theta_spec = list(theta_vars)
        self.config = {
            "observables": [v.to_dict() for v in observables],
            "theta_vars": [p.to_dict() for p in theta_vars],
            "flow": flow,
            "transforms": transforms,
            "hidden_features": list(hidden_features),
            "bins": bins,
            "components": components,
            "preprocessing": preprocessing,
            "seed": seed,
        }
        self.allow_extrapolation = False
        self.history: list[dict] = []

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            layers, base = _layers(
                flow,
                len(observables),
                len(theta_vars),
                transforms,
                tuple(hidden_features),
                bins,
                components,
            )
        self.preprocessing = [BoundedStandardize(self.observables)]
        if preprocessing == "response":
            response = ResponseCurve(self.observables)
            opened = [
                replace(v, low=None, high=None) if j in response.index else v
                for j, v in enumerate(self.observables)
            ]
            self.preprocessing = [response, BoundedStandardize(opened)]
        self.flow = zuko.flows.Flow([*self.preprocessing, *layers], base)
        ranges = bounds_tensor(theta_vars).float() if theta_vars else torch.empty(0, 2)
        self.register_buffer("theta_range", ranges)

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
        r"""Sets the preprocessing from training events `x` `(N, F)` and any open
        parameter range from the training parameters `theta` `(N, D)`."""
        for step in self.preprocessing:
            step.adapt(x)
            x = step()(x)
        if self.conditional:
            lo, hi = theta.min(dim=0).values, theta.max(dim=0).values
            r = self.theta_range
            r[:, 0] = torch.where(torch.isfinite(r[:, 0]), r[:, 0], lo.to(r))
            r[:, 1] = torch.where(torch.isfinite(r[:, 1]), r[:, 1], hi.to(r))
            for p, (low, high) in zip(self._theta_spec, r.tolist(), strict=True):
                if not low < high:
                    raise ValueError(
                        f"{p.name} takes the single value {low:g} {p.unit} in the training "
                        "data: a model cannot learn a dependence on it; leave it out of the "
                        "context or train on several values"
                    )

    def context(self, theta: Tensor | None) -> Tensor | None:
        r"""The flow context for theta `(*, D)`: theta checked against the trained range
        (unless `allow_extrapolation`) and scaled to [-1, 1] over it; `None` if unconditional."""
        if not self.conditional:
            if theta is not None and theta.numel() > 0:
                raise ValueError("this model is unconditional: pass theta=None")
            return None
        if theta is None:
            names = [p.name for p in self._theta_spec]
            raise ValueError(f"this model is conditional on {names}: pass theta")
        ref = self.theta_range
        theta = torch.as_tensor(theta).to(device=ref.device)
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
        torch.save(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "config": self.config,
                "state_dict": {k: v.cpu() for k, v in self.state_dict().items()},
                "history": self.history,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> DensityModel:
        r"""Rebuilds a model written by `save`; raises `ValueError` for a file that is not one."""
        try:
            blob = torch.load(path, map_location=device, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise ValueError(
                f"{path} is not a readable flowscan model file ({type(e).__name__}: {e}); "
                "it may be truncated or corrupt: retrain or copy it again"
            ) from None
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a flowscan model file (no '{_FORMAT}' header)")
        if blob.get("version") != _VERSION:
            raise ValueError(
                f"{path} has model-file version {blob.get('version')}, "
                f"this flowscan reads version {_VERSION}"
            )
        c = blob["config"]
        model = cls(
            [Variable(**v) for v in c["observables"]],
            [Variable(**p) for p in c["theta_vars"]],
            flow=c["flow"],
            transforms=c["transforms"],
            hidden_features=c["hidden_features"],
            bins=c["bins"],
            components=c["components"],
            preprocessing=c["preprocessing"],
            seed=c["seed"],
        )
        try:
            model.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not match the stored architecture: {e}") from None
        model.history = blob.get("history", [])
        return model.to(device)
