r"""A likelihood as one JSON document in the layout of the HEP Statistics Serialization
Standard (HS3 0.2): distributions, functions, data, likelihoods, domains, parameter
points and analyses, with the learned densities as ONNX graphs beside it.

Where it departs from the standard, and why:

- the signal and background densities are distributions of type `"onnx_dist"`, which
  HS3 does not define (it has no learned densities): `file` names the ONNX graph of log
  p(x | theta) (`flowscan.flows.export_onnx`), `observables` and `parameters` its inputs
  in order, and `flowscan_model` the flowscan model file, which `read_likelihood` fits
  with its gradient (onnxruntime has none);
- with weighted events, flowscan's NLL is the weighted one times sum w / sum w^2 (in
  effective events, `MixtureLikelihood`): `misc.flowscan.weight_scale`, which a reader
  of the standard alone would leave out (and so weigh the constraints differently);
- an unbounded side of a range is written as 1e30, RooFit's infinity (HS3 axes need a
  number);
- in `misc.flowscan`: units, which HS3 does not carry; the files' sha256, checked on
  reading; the log-normal constraints' widths as given (log1p and expm1 do not
  round-trip every digit).

Everything else is HS3: the extended likelihood is a `mixture_dist` with the yields as
coefficients and `extended: true`; the fixed fraction one with the coefficient `f_sig`
= n_sig / (n_sig + n_bkg), a `generic_function` of the constant yields; each constraint
is an auxiliary distribution of its global observable (a constant parameter
`<name>_observed`): a `gaussian_dist`, or a `lognormal_dist` whose location is the
`generic_function` log(<name>); the data are `unbinned`, with `weights` where weighted.
"""

from __future__ import annotations

__all__ = ["check_writable", "read_likelihood", "write_likelihood", "write_points"]

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..constraints import Constraint
from ..exceptions import FlowscanError, InputError
from ..flows.ensemble import DensityEnsemble, load_model
from ..flows.export import check_exportable, export_onnx
from ..flows.model import DensityModel
from .likelihood import MixtureLikelihood

HS3_VERSION = "0.2"
# The document's name in its folder, beside signal/background .onnx and .pt.
FILE = "likelihood.json"
ROLES = ("signal", "background")


# An unbounded side of a range, which HS3 writes as a number: RooFit's infinity.
INFINITY = 1e30


def _axes(variables: Sequence) -> list[dict]:
    return [{"name": v.name, "min": -INFINITY if v.low is None else v.low,
             "max": INFINITY if v.high is None else v.high} for v in variables]  # fmt: skip


def _point(name: str, values: dict[str, float], const: Sequence[str] = ()) -> dict:
    return {
        "name": name,
        "parameters": [
            {"name": n, "value": float(v)} | ({"const": True} if n in const else {})
            for n, v in values.items()
        ],
    }


def check_writable(nll: MixtureLikelihood) -> None:
    r"""Raises `InputError` where `write_likelihood` cannot write `nll`: a density that
    is not a flowscan model or ensemble (an exact density has no ONNX graph; a `Scale`
    nuisance's window normalization has none yet) or an Asimov dataset (its weights are
    expected counts, which an HS3 reader would take for events' weights), and
    `ExportError` for a model that does not export (`check_exportable`)."""
    if nll.asimov:
        raise InputError("an Asimov likelihood is not saved: save the likelihood of the data")
    for role in ROLES:
        density = getattr(nll, role)
        if not isinstance(density, DensityModel | DensityEnsemble):
            raise InputError(
                f"the {role} density is a {type(density).__name__}: only flowscan models and "
                "ensembles are saved as a likelihood (an ONNX graph each); a --scale nuisance's "
                "window normalization has no graph yet"
            )
        check_exportable(density)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_likelihood(
    nll: MixtureLikelihood,
    folder: str | os.PathLike,
    points: dict[str, Sequence[float]] | None = None,
    fixed: Sequence[str] = (),
) -> Path:
    r"""Writes `nll` to `folder` as `likelihood.json` (HS3 0.2 in layout; the module
    docstring says where it departs), with each density as `signal.onnx` /
    `background.onnx` (`export_onnx`, checked to 1e-9) and `signal.pt` /
    `background.pt` (flowscan's model files in float64, for `read_likelihood`), their
    sha256 in `misc.flowscan.files`. `points` (`write_points`) are named parameter
    points `(P,)` in `nll.names`' order, e.g. `"init"` (the minimizer's start, `fixed`
    parameters held there) and `"best_fit"`. Returns the document's path.

    Raises `InputError` (`check_writable`) before anything is written."""
    check_writable(nll)
    _checked_points(points or {}, nll.names, fixed)  # before anything is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    distributions, files = [], {}
    for role in ROLES:
        density = getattr(nll, role).for_fit()  # float64, as fitted
        export_onnx(density, folder / f"{role}.onnx")
        density.save(folder / f"{role}.pt")
        files |= {f"{role}{s}": _sha256(folder / f"{role}{s}") for s in (".onnx", ".pt")}
        distributions.append({
            "name": role, "type": "onnx_dist", "file": f"{role}.onnx",
            "observables": [v.name for v in density.observables],
            "parameters": [v.name for v in density.theta_vars],
            "flowscan_model": f"{role}.pt",
        })  # fmt: skip
    functions, const = [], {}
    if nll.extended:
        coefficients = ["n_sig", "n_bkg"]
    else:  # the yields are constants; only their ratio enters
        const |= {"n_sig": nll.n_sig, "n_bkg": nll.n_bkg}
        functions.append({"name": "f_sig", "type": "generic_function",
                          "expression": "n_sig / (n_sig + n_bkg)"})  # fmt: skip
        coefficients = ["f_sig"]
    distributions.append({"name": "model", "type": "mixture_dist", "summands": list(ROLES),
                          "coefficients": coefficients, "extended": nll.extended})  # fmt: skip
    aux, widths = [], {}
    for c in nll.constraints:
        observed = f"{c.name}_observed"
        const[observed] = c.observed
        aux.append(f"{c.name}_constraint")
        if c.kind == "gaussian":
            distributions.append({"name": aux[-1], "type": "gaussian_dist", "x": observed,
                                  "mean": c.name, "sigma": c.width})  # fmt: skip
        else:  # ln(nu / observed)^2 / (2 ln(1 + width)^2): log-normal in the observed
            widths[c.name] = c.width  # log1p and expm1 do not round-trip every digit
            functions.append({"name": f"log_{c.name}", "type": "generic_function",
                              "expression": f"log({c.name})"})  # fmt: skip
            distributions.append({"name": aux[-1], "type": "lognormal_dist", "x": observed,
                                  "mu": f"log_{c.name}", "sigma": math.log1p(c.width)})  # fmt: skip
    data = {"name": "observed", "type": "unbinned", "axes": _axes(nll.signal.observables),
            "entries": nll.x.cpu().tolist()}  # fmt: skip
    if nll.weights is not None:
        data["weights"] = nll.weights.cpu().tolist()
    signal = {v.name for v in nll.signal.theta_vars} - {v.name for v in nll.background.theta_vars}
    signal -= {c.name for c in nll.constraints}
    document = {
        "metadata": {
            "hs3_version": HS3_VERSION,
            "packages": [{"name": "flowscan", "version": __version__}],
            "description": "unbinned mixture likelihood of learned signal and background "
            "densities (flowscan)",
        },
        "distributions": distributions,
        "functions": functions,
        "data": [data],
        "likelihoods": [
            {"name": "likelihood", "distributions": ["model"], "data": ["observed"]}
            | ({"aux_distributions": aux} if aux else {})
        ],
        "domains": [{"name": "domain", "type": "product_domain", "axes": _axes(nll.theta_vars)}],
        "parameter_points": [_point("constants", const, const=list(const))] if const else [],
        "analyses": [
            {
                "name": "analysis",
                "likelihood": "likelihood",
                "parameters_of_interest": [n for n in nll.names if n in signal or n == "n_sig"],
                "domains": ["domain"],
            }
        ],  # fmt: skip
        "misc": {
            "flowscan": {
                "version": __version__,
                "units": {v.name: v.unit for v in [*nll.signal.observables, *nll.theta_vars]},
                "negative_signal": nll.negative_signal,
                "weight_scale": nll.weight_scale,
                "lognormal_widths": widths,
                "files": files,
            }
        },
    }
    _set_points(document, points or {}, fixed)
    path = folder / FILE
    _dump(document, path)
    return path


def _dump(document: dict, path: Path) -> None:
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def write_points(
    path: str | os.PathLike, points: dict[str, Sequence[float]], fixed: Sequence[str] = ()
) -> None:
    r"""Puts the named parameter `points` `(P,)` (in the domain's order) into the
    document at `path`, replacing those of their names; the analysis starts at
    `"init"` where given, with the `fixed` parameters constant there."""
    path = Path(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    _set_points(document, points, fixed)
    _dump(document, path)


def _checked_points(
    points: dict[str, Sequence[float]], names: list[str], fixed: Sequence[str]
) -> dict[str, list[float]]:
    r"""`points` as lists of floats, refused unless each has a finite value per name
    and `fixed` are among `names`."""
    out = {key: [float(v) for v in values] for key, values in points.items()}
    for key, values in out.items():
        if len(values) != len(names) or not all(map(math.isfinite, values)):
            raise InputError(f"parameter point {key!r} needs {len(names)} finite values for "
                             f"{names}, got {values}")  # fmt: skip
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise InputError(f"fixed parameters {unknown} are not among {names}")
    return out


def _set_points(document: dict, points: dict[str, Sequence[float]], fixed: Sequence[str]) -> None:
    r"""`write_points` on the `document` itself."""
    names = [a["name"] for a in document["domains"][0]["axes"]]
    points = _checked_points(points, names, fixed)
    kept = [p for p in document["parameter_points"] if p["name"] not in points]
    document["parameter_points"] = [
        _point(k, dict(zip(names, v, strict=True)), fixed if k == "init" else ())
        for k, v in points.items()
    ] + kept
    if "init" in points:
        document["analyses"][0]["init"] = "init"


def _named(items: object, name: str, what: str) -> dict:
    r"""The one object named `name` in the list `items`."""
    found = [i for i in items if i["name"] == name]
    if len(found) != 1:
        raise InputError(f"{'no' if not found else 'more than one'} {what} {name!r}")
    return found[0]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{what} is {value!r}, not a finite number")
    return float(value)


def read_likelihood(
    path: str | os.PathLike, *, check_models: bool = True, device: str | torch.device = "cpu"
) -> MixtureLikelihood:
    r"""The `MixtureLikelihood` of a document that `write_likelihood` wrote: its
    densities from the `flowscan_model` files beside it (on `device`), its data, yields
    or fraction, constraints and domain.

    Raises `InputError` for a document that is not such a likelihood (a line naming
    what is wrong), files beside it that are not those it was saved with (sha256), or a
    domain that is not the models' ranges (edited), and `ModelFileError` for the models'
    files (`load_model`).

    Example:
        >>> import tempfile
        >>> from flowscan.samples import BreitWigner, Exponential, training_set
        >>> from flowscan.samples import pseudo_data
        >>> models = []
        >>> for sampler, role in ((BreitWigner(), "signal"), (Exponential(), "background")):
        ...     model = DensityModel(sampler.observables, sampler.theta_vars, role=role)
        ...     model.adapt(*map(torch.as_tensor, training_set(sampler, 1000)))  # untrained
        ...     models.append(model.for_fit())
        >>> x = pseudo_data(torch.tensor([500.0, 40.0]), torch.tensor([200.0]), 50, 500)
        >>> tau = Constraint("tau", "gaussian", 5.0, 170.0)
        >>> nll = MixtureLikelihood(*models, x, constraints=[tau])
        >>> theta = torch.tensor([50.0, 500.0, 500.0, 40.0, 200.0], dtype=torch.float64)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     again = read_likelihood(write_likelihood(nll, tmp))
        >>> again.names, float(again.nll(theta) - nll.nll(theta))
        (['n_sig', 'n_bkg', 'm_pole', 'gamma', 'tau'], 0.0)
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"--likelihood {path}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path} is not JSON: give the likelihood.json of scan "
                         "--save-likelihood") from None  # fmt: skip
    misc = document.get("misc") if isinstance(document, dict) else None
    if not isinstance(misc, dict) or not isinstance(misc.get("flowscan"), dict):
        raise InputError(f"{path} is not a likelihood saved by flowscan (no misc.flowscan)")
    try:
        densities, x, yields, options, bounds, scale = _parts(document, path.parent, device)
        nll = MixtureLikelihood(*densities, x, *yields, check_models=check_models, **options)
    except FlowscanError as e:
        raise type(e)(f"{path}: {e}") from None
    except OSError as e:
        raise InputError(f"{path}: {e.filename}: {e.strerror}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise InputError(
            f"{path}: not a likelihood flowscan wrote ({type(e).__name__}: {e}); write it "
            "again with scan --save-likelihood"
        ) from None
    ranges = {v.name: (v.low, v.high) for v in nll.theta_vars}
    if ranges != bounds:
        raise InputError(
            f"{path}: its domain {bounds} is not the models' parameter ranges {ranges}: the "
            "document was edited or its model files replaced"
        )
    # the weights' scale as computed from them, to float64 rounding
    if not math.isclose(scale, nll.weight_scale, rel_tol=1e-12):
        raise InputError(
            f"{path}: its weight_scale {scale} is not sum w / sum w^2 = {nll.weight_scale} of "
            "its weights: the document was edited"
        )
    return nll


def _parts(document: dict, folder: Path, device: str | torch.device) -> tuple:
    r"""What `read_likelihood` builds the likelihood from: the densities, the events,
    the yields (or `None`s), the other options of `MixtureLikelihood`, the domain, and
    the recorded weight scale."""
    flowscan = document["misc"]["flowscan"]
    distributions = document["distributions"]
    densities = []
    for role in ROLES:
        entry = _named(distributions, role, "distribution")
        file, model = entry["file"], entry["flowscan_model"]
        if entry["type"] != "onnx_dist" or any(not f or Path(f).name != f for f in (file, model)):
            raise InputError(f"the {role} distribution is not an onnx_dist of files beside "
                             "the document")  # fmt: skip
        for name in (file, model):
            if _sha256(folder / name) != flowscan["files"][name]:
                raise InputError(f"{name} is not the file this likelihood was saved with "
                                 "(its sha256 differs): save the likelihood again")  # fmt: skip
        density = load_model(folder / model, device).for_fit()
        if entry["parameters"] != [v.name for v in density.theta_vars]:
            raise InputError(
                f"the {role} distribution's parameters {entry['parameters']} are not those "
                f"of {model}, {[v.name for v in density.theta_vars]}"
            )
        densities.append(density)
    mixture = _named(distributions, "model", "distribution")
    extended = mixture["extended"]
    coefficients = ["n_sig", "n_bkg"] if extended is True else ["f_sig"]
    if mixture["summands"] != list(ROLES) or mixture["coefficients"] != coefficients:
        raise InputError(f"the mixture is not of {list(ROLES)} with coefficients {coefficients}")
    constants = {
        p["name"]: _number(p["value"], f"parameter {p['name']}")
        for point in document["parameter_points"]
        for p in point["parameters"]
        if p.get("const") and point["name"] == "constants"
    }
    yields = (None, None) if extended is True else (constants["n_sig"], constants["n_bkg"])
    (likelihood,) = document["likelihoods"]
    aux = likelihood.get("aux_distributions", [])
    other = {d["name"] for d in distributions} - {*ROLES, "model", *aux}
    if other:
        raise InputError(f"distributions {sorted(other)} are not part of the likelihood")
    constraints = []
    for name in aux:
        entry = _named(distributions, name, "distribution")
        kind = {"gaussian_dist": "gaussian", "lognormal_dist": "lognormal"}.get(entry["type"])
        parameter = name.removesuffix("_constraint")
        location = entry["mean"] if kind == "gaussian" else entry["mu"]
        if kind is None or location != (parameter if kind == "gaussian" else f"log_{parameter}"):
            raise InputError(f"distribution {name!r} is not a constraint flowscan writes")
        sigma = _number(entry["sigma"], f"the sigma of {name}")
        width = sigma if kind == "gaussian" else flowscan["lognormal_widths"][parameter]
        if kind == "lognormal" and not math.isclose(math.log1p(width), sigma, rel_tol=1e-12):
            raise InputError(f"the sigma of {name} is not log(1 + {width}) of misc.flowscan")
        constraints.append(Constraint(parameter, kind, width, constants[f"{parameter}_observed"]))
    (data,) = document["data"]
    observables = [a["name"] for a in data["axes"]]
    if observables != [v.name for v in densities[0].observables]:
        raise InputError(f"the data's axes {observables} are not the models' "
                         f"observables {[v.name for v in densities[0].observables]}")  # fmt: skip
    x = torch.from_numpy(np.array(data["entries"], dtype=np.float64))
    if x.ndim != 2 or x.shape[1] != len(observables):
        raise InputError(f"the data's entries are not rows of {len(observables)} numbers "
                         f"({observables})")  # fmt: skip
    weights = data.get("weights")
    if weights is not None:
        weights = torch.from_numpy(np.array(weights, dtype=np.float64))
    (domain,) = document["domains"]
    names = [a["name"] for a in domain["axes"]]
    if len(set(names)) < len(names):
        raise InputError(f"the domain names a parameter twice: {names}")
    bounds = {
        a["name"]: tuple(
            None if abs(b) >= INFINITY else b
            for b in (_number(a[k], f"the domain's {k} of {a['name']}") for k in ("min", "max"))
        )  # fmt: skip
        for a in domain["axes"]
    }
    negative = flowscan["negative_signal"]
    if not isinstance(negative, bool):
        raise InputError(f"misc.flowscan.negative_signal is {negative!r}, not true or false")
    options = {
        "weights": weights, "constraints": constraints,
        "negative_signal": extended is True and negative is True,
        "max_yield": bounds["n_sig"][1] if extended is True else None,
    }  # fmt: skip
    scale = _number(flowscan["weight_scale"], "misc.flowscan.weight_scale")
    return densities, x, yields, options, bounds, scale
