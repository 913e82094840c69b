r"""What the commands share: option types that refuse bad values, the options every
command has (seed, out, device, progress, Dask), and the parsing of parameter lists."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from torch import Tensor

from .. import io
from ..constraints import Constraint, declared, parse_nuisance
from ..exceptions import InputError
from ..flows import Architecture, DensityEnsemble, DensityModel, Scaled, load_model, parse_scale
from ..io import FORMATS, read_analysis, read_events
from ..samples import lhco
from ..scanner import FAILURES, FitSettings, parse_option
from ..variables import Variable
from ..weights import effective_events

EPILOG = (
    "exit codes: 0 every fit valid (or at a bound, as printed), 1 a fit invalid or failed, "
    "2 bad input, 3 internal error (rerun with --debug and report it)"
)
DATA = f"events: {', '.join(FORMATS)} files (file.root:tree for one of several trees)"


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        word = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {word}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def events(text: str) -> float:
    r"""A yield: a finite number of events >= 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of events >= 0, got {text}")
    return value


def non_negative(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


class _Once(argparse.Action):
    r"""Stores an option's value, refusing the option given twice (the last would win
    silently)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if getattr(namespace, f"_seen_{self.dest}", False):
            parser.error(f"argument {option_string}: given twice")
        setattr(namespace, f"_seen_{self.dest}", True)
        setattr(namespace, self.dest, values)


def command(
    commands: argparse._SubParsersAction,
    name: str,
    out: str | None = None,
    **kwargs,
) -> argparse.ArgumentParser:
    r"""A subcommand with `--seed` and `--out` (help `out`, required if given, else a
    folder defaulting to `runs/<name>-<timestamp>/`), whose single-valued options refuse
    to be given twice."""
    parser = commands.add_parser(name, epilog=EPILOG, **kwargs)
    parser.register("action", None, _Once)  # the action of options that give none
    parser.add_argument("--seed", type=count, default=0, help="random seed >= 0 (default 0)")
    if out is None:
        parser.add_argument("--out", help=f"output folder (default runs/{name}-<timestamp>/)")
    else:
        parser.add_argument("--out", required=True, help=out)
    return parser


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")


def add_dask(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=positive_int,
        help="worker processes of the local Dask cluster (default: all cores)",
    )
    parser.add_argument(
        "--scheduler", help="address of a Dask scheduler to run on instead, e.g. tcp://host:8786"
    )


def add_models(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--signal", required=required, help="signal model or ensemble file (flowscan train)"
    )
    parser.add_argument("--background", required=required, help="background model or ensemble file")


def add_data(parser: argparse.ArgumentParser, several: bool = True, required: bool = True) -> None:
    r"""`--data` (several files read as one if `several`), `--columns` and `--where`."""
    parser.add_argument("--data", required=required, nargs="+" if several else None, help=DATA)
    parser.add_argument("--columns", help="data columns of the observables, comma-separated")
    parser.add_argument("--where", help='row selection of --data, e.g. "tau2j1 > 0"')


def add_weight(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weight",
        help="event weights of --data: a column or an expression of columns, e.g. "
        '"genWeight * sf" (negative weights allowed; default: every event counts once)',
    )


def read_weights(args: argparse.Namespace, files: Sequence[str] | None) -> Tensor | None:
    r"""The `--weight` of `files` (read as `read_data` reads their events), or `None`."""
    if args.weight is None:
        return None
    if files is None:
        raise InputError("--weight weights the events of --data files; give --data")
    return io.read_weights(files, args.weight, getattr(args, "where", None), derive=lhco.FEATURES)


def event_count(events: int, weights: Tensor | None) -> str:
    r"""`"N events"`, with the sum of the weights and the effective number of events
    (sum w)^2 / sum w^2 where the events are weighted."""
    if weights is None:
        return f"{events} events"
    return (
        f"{events} weighted events (sum of weights {weights.sum().item():.6g}, effective "
        f"events {effective_events(weights):.6g})"
    )


def add_architecture(parser: argparse.ArgumentParser) -> None:
    r"""The fields of `Architecture`, with its defaults."""
    a = Architecture()
    parser.add_argument(
        "--flow",
        default=a.flow,
        help="mog (autoregressive Gaussian mixture, default), nsf (autoregressive splines), "
        "maf, realnvp or coupling-nsf",
    )
    parser.add_argument(
        "--transforms", type=positive_int, default=a.transforms, help="flow transforms (default 4)"
    )
    parser.add_argument(
        "--hidden",
        default=",".join(map(str, a.hidden_features)),
        help="hidden layer sizes (default 64,64)",
    )
    parser.add_argument(
        "--bins", type=positive_int, default=a.bins, help="spline bins for nsf (default 8)"
    )
    parser.add_argument(
        "--components",
        type=positive_int,
        default=a.components,
        help="Gaussians per observable for mog (default 20)",
    )
    parser.add_argument(
        "--preprocessing",
        help="truncated (mog's default: Gaussians cut at the edges, finite densities on "
        "them), logit (the flows' default and only choice) or, for mog, response (seed "
        "001's latent space for windows)",
    )


def architecture(args: argparse.Namespace) -> Architecture:
    r"""The `Architecture` of the `add_architecture` options."""
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        raise InputError(f"--hidden takes layer sizes like 64,64, got {args.hidden!r}") from None
    return Architecture(
        args.flow, args.transforms, hidden, args.bins, args.components, args.preprocessing
    )


def names(text: str | None) -> list[str]:
    r"""`"a,b"` to `["a", "b"]`; `None` or `""` to `[]`; a name given twice is refused."""
    out = [n.strip() for n in (text or "").split(",") if n.strip()]
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise InputError(f"{twice} given twice in {text!r}")
    return out


def masses(text: str | None) -> list[float] | None:
    r"""`--masses m_zprime,m_x,m_y` (GeV) as three numbers, or `None`."""
    if text is None:
        return None
    try:
        values = [float(m) for m in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise InputError(f"--masses takes m_zprime,m_x,m_y in GeV, e.g. 3500,500,100; got {text!r}")
    return values


def parse_start(text: str | None) -> dict[str, float]:
    r"""`"m_pole=450,gamma=30"` to a dict; a malformed item raises `InputError`."""
    out = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"item {item!r} is not name=value")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{name}={value.strip()!r}: the value is not a number") from None
        if not math.isfinite(number):
            raise InputError(f"{name}={value.strip()}: the value is not a finite number")
        if name in out:
            raise InputError(f"{name} is given twice in {text!r}")
        out[name] = number
    return out


def _parse_values(text: str) -> tuple[str, list[float]]:
    r"""`"m_pole=300:700:9"` (9 values from 300 to 700), `"m_pole=300,450"` or
    `"gamma=40"` to a name and its values; a malformed item raises `InputError`."""
    name, sep, values = text.partition("=")
    try:
        if ":" in values:
            low, high, number = values.split(":")
            out = np.linspace(float(low), float(high), int(number)).tolist()
        else:
            out = [float(v) for v in values.split(",")]
    except ValueError:
        sep = ""
    if not sep or not name.strip() or not out or not np.isfinite(out).all():
        raise InputError(f"--at {text!r} is not name=low:high:count or name=v1,v2,...")
    twice = sorted({v for v in out if out.count(v) > 1})
    if twice:
        raise InputError(f"--at {text}: {name.strip()} = {twice} given twice; give each value once")
    return name.strip(), out


def parse_at(texts: Sequence[str]) -> dict[str, list[float]]:
    r"""The `--at` options, each `"m_pole=300:700:9"` (9 values from 300 to 700),
    `"m_pole=300,450"` or `"gamma=40"`, to a dict of each name's values; a malformed
    item, a name or a value given twice raise `InputError`.

    Example:
        >>> parse_at(["m_pole=300:700:3", "gamma=40"])
        {'m_pole': [300.0, 500.0, 700.0], 'gamma': [40.0]}
    """
    at = {}
    for text in texts:
        name, values = _parse_values(text)
        if name in at:
            raise InputError(f"--at {name} given twice: give its values in one --at")
        at[name] = values
    return at


def read_data(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    columns: Sequence[str],
    where: str | None = None,
) -> Tensor:
    r"""Events of `columns` from data files, the LHCO observables derived from the R&D
    schema."""
    return read_events(files, columns, where, derive=lhco.FEATURES)


def load_models(args: argparse.Namespace) -> list[DensityModel | DensityEnsemble | Scaled]:
    r"""The models or ensembles of `--signal` and `--background` as fits use them
    (`for_fit`), with the `--scale` nuisances applied to the events on the `--window`."""
    models = [load_model(p).for_fit() for p in (args.signal, args.background)]
    specs = getattr(args, "scale", [])
    if not specs:
        if getattr(args, "window", []):
            raise InputError("--window is the analysis window of --scale: give --scale too")
        return models
    roles = ("signal", "background")
    scales = {role: [] for role in roles}
    for spec in specs:
        head, _, role = spec.rpartition(":") if spec.count(":") == 3 else (spec, "", "")
        if role not in ("", *roles):
            raise InputError(f"--scale {spec!r}: the model it acts on is signal or background")
        for r in (role,) if role else roles:
            scales[r].append(parse_scale(head))
    for role, given in scales.items():
        twice = sorted({s.name for s in given if [t.name for t in given].count(s.name) > 1})
        if twice:
            raise InputError(f"--scale {twice} given twice for the {role}: give each once")
    window = _window(args.window, models[1].observables)
    return [
        Scaled(m, scales[role], window) if scales[role] else m
        for m, role in zip(models, roles, strict=True)
    ]


def _window(specs: Sequence[str], observables: Sequence[Variable]) -> list[Variable]:
    r"""`observables` with the bounds of `--window` OBS:LOW:HIGH."""
    out = {v.name: v for v in observables}
    for spec in specs:
        parts = spec.split(":")
        try:
            name, low, high = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise InputError(
                f"--window {spec!r}: write observable:low:high, e.g. m:100:1000"
            ) from None
        if len(parts) != 3 or name not in out:
            raise InputError(
                f"--window {spec!r}: write observable:low:high, the observable one of {list(out)}"
            )
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InputError(f"--window {spec!r}: low must be below high, both finite")
        out[name] = replace(out[name], low=low, high=high)
    return list(out.values())


def exit_code(statuses: Sequence[str]) -> int:
    r"""1 if any fit failed (`FAILURES`: a local minimum, invalid, failed), else 0."""
    return int(any(s in FAILURES for s in statuses))


def add_fit(parser: argparse.ArgumentParser, start: str = "starting values") -> None:
    r"""The options of `FitSettings` that every fitting command has: `--start`, `--fix`
    and `--option`."""
    parser.add_argument("--start", help=f"{start}, e.g. m_pole=450,gamma=30")
    parser.add_argument("--fix", help="parameters held at their start, comma-separated")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="a setting of the global search or an optimizer, e.g. search.points=1024, "
        "search.events=50000, minuit.strategy=1, minuit.tol=0.01, gradient.starts=63, "
        "bayesopt.budget=128, grid.points=21, random.n=512; repeatable "
        "(docs/optimizers.md lists them)",
    )


def fit_settings(args: argparse.Namespace, method: str = "minuit", **options) -> FitSettings:
    r"""The `FitSettings` of a command's `add_fit` options (and its `--seed`), with
    `options` (e.g. `minuit={"minos": True}`) under `--option`."""
    sections: dict[str, dict] = {k: dict(v) for k, v in options.items()}
    for text in args.option:
        section, name, value = parse_option(text)
        sections.setdefault(section, {})[name] = value
    return FitSettings(method, parse_start(args.start), names(args.fix), args.seed, sections)


def record(args: argparse.Namespace) -> dict:
    r"""A command's options as given, for the JSON record beside its results."""
    return {k: v for k, v in vars(args).items() if k != "func" and not k.startswith("_")}


def add_nuisances(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nuisance",
        action="append",
        default=[],
        metavar="NAME:KIND:WIDTH[:OBSERVED]",
        help="a constrained parameter: kind gaussian (width in its units) or lognormal "
        "(relative width, for a yield), observed = the auxiliary measurement (default 0), "
        "e.g. tau:gaussian:5:170 or n_bkg:lognormal:0.1:10000; repeatable; the models' own "
        "nuisances (e.g. mass_scale, N(0, 1)) are added without it",
    )
    parser.add_argument(
        "--analysis", help="a TOML analysis file of [nuisances.NAME] tables (docs/systematics.md)"
    )
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="NAME:WIDTH:OBS[+OBS...][:ROLE]",
        help="a nuisance applied to the events by its known map: each OBS multiplied by 1 + "
        "WIDTH s, s in sigma, N(0, 1), over +-3 (e.g. mass_scale:0.01:m, "
        "jes:0.01:m_jj+m_j1+delta_m:signal), on both models (or the ROLE's: signal, "
        "background), trained at the nominal; repeatable",
    )
    parser.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="OBS:LOW:HIGH",
        help="with --scale: the data's window of an observable whose models were trained on "
        "a wider one, e.g. m:100:1000 (default: the models' own)",
    )


def constraints(args: argparse.Namespace, *models: object) -> list[Constraint]:
    r"""The constraint terms of a fit: the nuisances the `models` declare, then those
    of `--analysis`, then `--nuisance` (a later one replaces an earlier of its name)."""
    given = read_analysis(args.analysis) if args.analysis else []
    options = [parse_nuisance(spec) for spec in args.nuisance]
    twice = sorted({c.name for c in options if [d.name for d in options].count(c.name) > 1})
    if twice:
        raise InputError(f"--nuisance {twice} given twice: give each nuisance once")
    given += options
    ranges = {v.name: v for m in models for v in getattr(m, "theta_vars", ())}
    for c in given:
        v = ranges.get(c.name)
        inside = v is None or None in (v.low, v.high) or v.low <= c.observed <= v.high
        if c.kind == "gaussian" and not inside:
            raise InputError(
                f"nuisance {c.name}: the observed value {c.observed:g} {v.unit} lies outside "
                f"the models' range [{v.low:g}, {v.high:g}] {v.unit} (a unit or a typo?)"
            )
    return list(({c.name: c for c in declared(*models)} | {c.name: c for c in given}).values())
