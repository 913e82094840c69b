r"""`flowscan train`: a density model from data files or a built-in sampler."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import torch

from .. import plots
from ..constraints import Constraint, parse_nuisance
from ..exceptions import FitError, InputError
from ..flows import DensityModel, torch_device, train, train_ensemble
from ..flows.training import check_split
from ..io import check_memory, file_names, read_variations, run_folder, write_record
from ..parallel import dask_client
from ..samples import GENERATORS, MASS, SCALES, lhco, samplers, training_events
from ..variables import Variable
from ..weights import effective_events
from . import _options as o

# The old --generate values, which name the role too.
_ROLE_OF = {"lhco-signal": ("lhco", "signal"), "lhco-qcd": ("lhco", "background")}
_KNOWN = {v.name: v for v in [*lhco.OBSERVABLES, *lhco.MASSES, MASS]}


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = o.command(
        commands,
        "train",
        help="train a density model on data files or a built-in sampler",
        description="Trains a (conditional) normalizing flow or Gaussian mixture on events "
        "from data files or a built-in sampler and writes model.pt, train.json, "
        "training.png and marginals.png.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", nargs="+", help=f"{o.DATA}, read as one")
    source.add_argument(
        "--sampler",
        "--generate",
        dest="sampler",
        choices=[*GENERATORS, *_ROLE_OF],
        help="draw the training set: lhco (seed 002's mass grid for --role signal, QCD for "
        "background) or breit-wigner (theta uniform over the toy's ranges); lhco-signal "
        "and lhco-qcd name the role too (--generate is an alias)",
    )
    train.add_argument("--where", help='row selection of --data, e.g. "label == 0"')
    o.add_weight(train)
    train.add_argument(
        "--events",
        type=o.positive_int,
        default=10_000,
        help="drawn events (per mass point for the LHCO signal)",
    )
    train.add_argument(
        "--observables",
        help="observable columns, name or name:low:high, comma-separated "
        "(default: m_jj,m_j1,delta_m,tau21_j1,tau21_j2 with their LHCO bounds); with "
        "--sampler breit-wigner, m:LOW:HIGH draws the toy on that window",
    )
    train.add_argument(
        "--context",
        help="parameter columns to condition on, comma-separated (e.g. m_zprime,m_x,m_y)",
    )
    train.add_argument(
        "--role",
        choices=["signal", "background"],
        help="what the model describes, recorded in the file so that a scan refuses "
        "swapped models (default: from --sampler; none for --data)",
    )
    o.add_architecture(train)
    train.add_argument(
        "--epochs", type=o.positive_int, default=20, help="training epochs (default 20)"
    )
    train.add_argument(
        "--batch-size", type=o.positive_int, default=4096, help="minibatch size (default 4096)"
    )
    train.add_argument(
        "--lr", type=o.positive, default=1e-2, help="peak learning rate (default 1e-2)"
    )
    train.add_argument(
        "--ensemble",
        type=o.positive_int,
        default=1,
        metavar="K",
        help="train K models, each on its own bootstrap replica of the training events, "
        "and write them as one ensemble (its spread gives fits their model error; "
        "default 1: one model)",
    )
    train.add_argument(
        "--nuisance",
        action="append",
        default=[],
        metavar="NAME:KIND:WIDTH[:OBSERVED]",
        help="a nuisance the model is conditioned on, recorded in the file so that fits "
        "constrain it: with --sampler breit-wigner mass_scale:gaussian:ALPHA (masses scaled "
        "by 1 + ALPHA s), with --sampler lhco jes:gaussian:ALPHA and jms:gaussian:ALPHA (jet "
        "energy and mass scales), s in units of sigma over +-3, N(0, 1); with --data, a "
        "--context column, WIDTH in its units",
    )
    train.add_argument(
        "--nuisance-values",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="--data files are systematic variation samples: the value of the nuisance NAME "
        "each file stands for, in sigma, in the files' order (e.g. jes=0,1,-1 for nominal, "
        "up, down); the model is conditioned on it, interpolates between the values and "
        "records an N(0, 1) constraint (--nuisance NAME:gaussian:WIDTH for another); "
        "repeat for several nuisances",
    )
    o.add_dask(train)
    o.add_device(train)
    o.add_progress(train)
    train.set_defaults(func=run)


def _nuisance_values(args: argparse.Namespace) -> dict[str, list[float]]:
    r"""`--nuisance-values` NAME=V1,V2,... as each nuisance's value per file."""
    out = {}
    for text in args.nuisance_values:
        name, sep, values = text.partition("=")
        try:
            numbers = [float(v) for v in values.split(",")]
        except ValueError:
            sep = ""
        if not sep or not name or not all(map(math.isfinite, numbers)):
            raise InputError(f"--nuisance-values {text!r} is not NAME=V1,V2,... (numbers)")
        if name in out:
            raise InputError(f"--nuisance-values {name} given twice: give its values once")
        out[name] = numbers
    if out and args.data is None:
        raise InputError("--nuisance-values labels --data files (variation samples); give --data")
    return out


def parse_variables(specs: Sequence[str], context: bool = False) -> list[Variable]:
    r"""Variables from `name` or `name:low:high` items (either bound may be empty).

    A bare name known to flowscan (the LHCO observables and masses) gets its unit and, for
    an observable, its bounds; an unknown one is unbounded. Context parameters take their
    range from the training data unless both bounds are given.
    """
    out = []
    for spec in specs:
        name, *bounds = spec.split(":")
        known = _KNOWN.get(name, Variable(name))
        if not bounds:
            out.append(Variable(name, known.unit) if context else known)
            continue
        if len(bounds) != 2:
            raise InputError(f"{spec!r}: write name or name:low:high (a bound may be empty)")
        try:
            low, high = (float(b) if b else None for b in bounds)
        except ValueError:
            raise InputError(f"{spec!r}: bounds must be numbers") from None
        out.append(Variable(name, known.unit, low, high))
    return out


def _sampled(args: argparse.Namespace) -> tuple:
    r"""The sampler's name, the role, the observables and parameters it implies, and its
    training set `(x, theta)`."""
    name, role = _ROLE_OF.get(args.sampler, (args.sampler, args.role))
    if role is None:
        raise InputError(f"--sampler {name} draws the signal or the background: give --role")
    if args.role not in (None, role):
        raise InputError(
            f"--sampler {args.sampler} trains the {role} model, not --role {args.role}"
        )
    sampler = samplers(name, scales=_scales(args, name)).get(role)
    names = [v.name for v in sampler.observables]
    obs = parse_variables(o.names(args.observables)) if args.observables else sampler.observables
    if [v.name for v in obs] != names:
        raise InputError(f"the {name} sampler makes {names}")
    if name == "breit-wigner" and obs != list(sampler.observables):  # the toy on another window
        window = (obs[0].low, obs[0].high)
        sampler = samplers(name, scales=_scales(args, name), window=window).get(role)
    if args.context and o.names(args.context) != [v.name for v in sampler.theta_vars]:
        raise InputError(
            f"the {name} {role} has "
            + (
                f"the parameters {[v.name for v in sampler.theta_vars]}"
                if sampler.theta_vars
                else "no parameters"
            )
            + ": leave out --context"
        )
    points = len(lhco.training_grid()) if (name, role) == ("lhco", "signal") else 1
    check_memory(args.events * points, 2_000, "--events x mass points")
    x, theta = training_events(sampler, args.events, args.seed)
    return name, role, list(obs), list(sampler.theta_vars), x, theta


def _scales(args: argparse.Namespace, name: str) -> dict[str, float]:
    r"""The relative widths of the generator's nuisances in `--nuisance` (NAME:gaussian:
    WIDTH, observed 0)."""
    specs = [parse_nuisance(spec) for spec in args.nuisance]
    allowed = SCALES.get(name, ())
    wrong = [
        c.name for c in specs if c.name not in allowed or (c.kind, c.observed) != ("gaussian", 0)
    ]
    if wrong:
        raise InputError(
            f"the {name} sampler draws the nuisances {[f'{n}:gaussian:WIDTH' for n in allowed]} "
            f"only, not {wrong}"
        )
    return {c.name: c.width for c in specs}


def _nuisances(args: argparse.Namespace, context: list[Variable]) -> list[Constraint]:
    r"""What the model records of `--nuisance`: N(0, 1) for a sampler's mass scale
    (the parameter is in units of sigma), the constraints as given for `--data`, and
    N(0, 1) for a nuisance of `--nuisance-values` that `--nuisance` does not name."""
    if args.sampler is not None:  # the generator's nuisances, in units of their sigma
        return [Constraint(parse_nuisance(spec).name, "gaussian", 1.0) for spec in args.nuisance]
    given = [parse_nuisance(spec) for spec in args.nuisance]
    missing = sorted({c.name for c in given} - {v.name for v in context})
    if missing:
        raise InputError(
            f"--nuisance {missing}: a nuisance of --data is one of the --context columns "
            "or of --nuisance-values"
        )
    named = {c.name for c in given}
    varied = [n.partition("=")[0] for n in args.nuisance_values]
    return given + [Constraint(n, "gaussian", 1.0) for n in varied if n not in named]


def run(args: argparse.Namespace) -> int:
    r"""Trains a `DensityModel` (with `--ensemble K`, a `DensityEnsemble` of K, as K
    Dask tasks) and writes to `--out`: `model.pt`, `train.json` (settings, seed,
    versions, per-epoch losses, per member), `training.png` (loss curves) and
    `marginals.png` (model samples against the training data, one per training
    event's theta, with ratio panels)."""
    architecture = o.architecture(args)
    variations = _nuisance_values(args)
    if args.sampler is not None:
        sampler, role, obs, ctx, x, theta = _sampled(args)
        ctx = [Variable(p.name, p.unit) for p in ctx]  # the range is the training set's
    else:
        sampler, role = None, args.role
        obs = parse_variables(o.names(args.observables) or [v.name for v in lhco.OBSERVABLES])
        ctx = parse_variables(o.names(args.context), context=True)
        clash = sorted(set(variations) & {v.name for v in ctx})
        if clash:
            raise InputError(
                f"{clash} are --context columns and --nuisance-values: the files give a "
                "nuisance's value, or a column does; name it once"
            )
        columns = [v.name for v in obs]
        if variations:
            x, values = read_variations(args.data, columns, variations, args.where, lhco.FEATURES)
            for name, given in variations.items():
                print(f"variation samples of {name}: {sorted(set(given))} sigma")
        else:
            x = o.read_data(args.data, columns, args.where)
        theta = o.read_data(args.data, [v.name for v in ctx], args.where) if ctx else None
        if variations:
            theta = values if theta is None else torch.cat([theta, values], dim=1)
            ctx = [*ctx, *(Variable(name, "sigma") for name in variations)]
    weights = o.read_weights(args, args.data)
    both = sorted({v.name for v in obs} & {v.name for v in ctx})
    if both:
        raise InputError(
            f"{both} are both observables and --context: a model of a quantity conditional "
            "on itself; name each column once"
        )
    check_split(len(x))  # before a Dask cluster starts for an ensemble
    nuisances = _nuisances(args, ctx)
    print(
        f"training on {o.event_count(len(x), weights)} of {[v.name for v in obs]}"
        + (f" conditional on {[v.name for v in ctx]}" if ctx else "")
    )
    device = torch_device(args.device)
    out = run_folder(args.out, "train")
    options = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    if args.ensemble == 1:
        model = DensityModel(
            obs, ctx, architecture, role=role, seed=args.seed, nuisances=nuisances
        ).to(device)
        train(
            model, x, theta, seed=args.seed, progress=not args.no_progress, weights=weights,
            **options,
        )  # fmt: skip
        histories = [model.history]
    else:
        print(f"{args.ensemble} ensemble members, each on a bootstrap replica")
        with dask_client(min(args.jobs or args.ensemble, args.ensemble), args.scheduler) as client:
            model = train_ensemble(
                obs,
                ctx,
                x,
                theta,
                members=args.ensemble,
                architecture=architecture,
                role=role,
                nuisances=nuisances,
                seed=args.seed,
                device=device,
                client=client,
                progress=not args.no_progress,
                weights=weights,
                **options,
            )
        histories = model.history
    losses = [min(h["val_loss"] for h in history) for history in histories]
    if not all(map(math.isfinite, losses)):
        raise FitError("training diverged: the validation loss is not finite")
    best = min(losses)
    history = histories[0] if args.ensemble == 1 else histories
    model.save(out / "model.pt")
    config = {
        "data": None if args.data is None else file_names(args.data),
        "where": args.where,
        "weight": args.weight,
        "sampler": sampler,
        "events": len(x),
        "effective_events": effective_events(weights, len(x)),
        "observables": [v.to_dict() for v in obs],
        "context": [v.to_dict() for v in model.theta_vars],
        "architecture": architecture.to_dict(),
        "role": role,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "ensemble": args.ensemble,
        "nuisances": args.nuisance,
        "nuisance_values": variations,
        "seed": args.seed,
    }
    write_record(out / "train.json", config, history=history)
    plots.plot_history(histories, out / "training.png")
    shown = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))[:100_000]
    with torch.no_grad():
        if theta is None:
            samples = model().sample((len(shown),))
        else:
            samples = model(theta[shown].to(model.theta_range)).sample()
    plots.plot_marginals(
        x[shown].numpy(),
        samples.double().cpu().numpy(),
        obs,
        out / "marginals.png",
        labels=("training data", "model samples"),
        weights=None if weights is None else weights[shown].numpy(),
    )
    print(
        f"best validation loss {best:.4f} nats/event after "
        f"{'/'.join(str(len(h)) for h in histories)} epochs; wrote "
        f"{out}/ (model.pt, train.json, training.png, marginals.png)"
    )
    return 0
