r"""What a density model is made of: its family and sizes, checked once."""

from __future__ import annotations

__all__ = ["FLOWS", "PREPROCESSING", "Architecture"]

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from ..exceptions import InputError

FLOWS = ("mog", "nsf", "maf", "realnvp", "coupling-nsf")
PREPROCESSING = ("truncated", "logit", "response")


@dataclass(frozen=True)
class Architecture:
    r"""The family and sizes of a `DensityModel`, validated on creation and kept in its
    file.

    Arguments:
        flow: `"mog"` (autoregressive Gaussian mixture, the default: as accurate as the
            spline flows or more, 4-5x faster to train; `benchmarks/model_zoo.py`),
            `"nsf"` (autoregressive rational-quadratic splines on [-10, 10]), `"maf"`
            (affine MAF), `"realnvp"` (affine coupling) or `"coupling-nsf"` (spline
            coupling).
        transforms: Number of flow transforms after the affine layer (flows only).
        hidden_features: Hidden layer sizes of each conditioner network.
        bins: Spline bins (`"nsf"` and `"coupling-nsf"`).
        components: Gaussians per observable (`"mog"`).
        preprocessing: `"truncated"` (`"mog"`'s default: observables keep a linear
            scale in a window, a log scale beyond a one-sided bound, and the Gaussians
            are cut at the edges, so the density is finite up to and on them), `"logit"`
            (logit/log map of the edges to infinity and standardization; the flows'
            default and only choice) or, for `"mog"`, `"response"` (seed 001's response
            curve on observables with a window). `None` is the family's default.

    Example:
        >>> Architecture("nsf", hidden_features=[32, 32])
        Architecture(flow='nsf', transforms=4, hidden_features=(32, 32), bins=8, components=20, preprocessing='logit')
    """  # noqa: E501

    flow: str = "mog"
    transforms: int = 4
    hidden_features: tuple[int, ...] = field(default=(64, 64))
    bins: int = 8
    components: int = 20
    preprocessing: str | None = None

    def __post_init__(self) -> None:
        if self.flow not in FLOWS:
            raise InputError(f"unknown flow {self.flow!r}; choose one of {list(FLOWS)}")
        hidden = tuple(self.hidden_features)
        if not hidden or not all(isinstance(h, int) and h >= 1 for h in hidden):
            raise InputError(f"hidden_features takes positive layer sizes like 64,64, got {hidden}")
        object.__setattr__(self, "hidden_features", hidden)
        for name in ("transforms", "bins", "components"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        preprocessing = self.preprocessing
        if preprocessing is None:
            preprocessing = "truncated" if self.flow == "mog" else "logit"
            object.__setattr__(self, "preprocessing", preprocessing)
        if preprocessing not in PREPROCESSING:
            raise InputError(
                f"unknown preprocessing {preprocessing!r}; choose one of {list(PREPROCESSING)}"
            )
        if preprocessing == "response" and self.flow != "mog":
            raise InputError(
                "preprocessing='response' is made for flow='mog' (seed 001): its latent tails "
                "fall like exp(4 u), faster than a flow's logistic base, so a flow would put "
                "density where no float x near the window edges reaches (0.1-0.5% of it for "
                "a briefly trained NSF); use preprocessing='logit' with flows"
            )
        if preprocessing == "truncated" and self.flow != "mog":
            raise InputError(
                "preprocessing='truncated' cuts the mixture's Gaussians at the edges; a flow "
                f"({self.flow!r}) needs its latent space to be the real line: use "
                "preprocessing='logit' with flows"
            )

    def to_dict(self) -> dict:
        r"""The fields as JSON-ready values (`hidden_features` as a list)."""
        return asdict(self) | {"hidden_features": list(self.hidden_features)}

    @classmethod
    def from_dict(cls, fields: Mapping) -> Architecture:
        r"""The inverse of `to_dict`; other keys (a model file's name, role, seed) are
        ignored."""
        return cls(**{k: fields[k] for k in cls.__dataclass_fields__ if k in fields})
