r"""LHC Olympics 2020 style dijet events: a fast generator, the R&D-file loader, and the
five ANODE/CATHODE observables.

Observables (`OBSERVABLES`), from the two leading large-R (R = 1.0) jets, in GeV:
`m_jj` the dijet invariant mass; `m_j1` the lighter jet's mass; `delta_m = m_j2 - m_j1 >= 0`
the heavier minus the lighter jet's mass (the underscores keep them apart from the
schema's pT-ordered `mj1`, `mj2`); `tau21_j1`, `tau21_j2` the N-subjettiness ratio
tau2 / tau1 of the lighter and of the heavier jet (in [0, 1]; 0 where tau1 = 0).

Files use the LHCO R&D feature schema: a pandas table with columns `pxj1 pyj1 pzj1 mj1
tau1j1 tau2j1 tau3j1 pxj2 pyj2 pzj2 mj2 tau1j2 tau2j2 tau3j2 label` (GeV, jets ordered by
pT, label 1 for signal). `features` turns such a table into the observables, computing
`m_jj` from the two jets' four-vectors with E = sqrt(p^2 + m^2); the generator writes the
same schema, so generated and real events go through one code path.

The generator (`generate`) is a parametrized stand-in for Pythia 8 + FastJet with a
Gaussian detector resolution, vectorized in numpy and seeded. Its shapes are tuned to
Pythia 8.317 (Monash; anti-kT R = 1.0 on all visible particles, WTA-kT N-subjettiness,
`flowscan simulate`) at 16 signal mass points and QCD (`benchmarks/mc_vs_fast.py`).
Every event passes the LHCO trigger, leading-jet pT > 1.2 TeV, and |eta| < 2.5 for both
jets (events are drawn until n pass). Shapes and numbers:

QCD dijets (label 0).
  - Leading-jet pT: a power law dN/dpT ~ pT^-8 above 1.2 TeV. The second jet balances
    it up to a radiation imbalance, pT2 = pT1 (1 - Gamma(shape 0.73, scale 0.12)),
    back to back in phi.
  - Rapidities: boost of the pair y_b ~ N(0, 0.47), separation |dy| ~ |N(0, 1.15)|.
  - Jet mass: log(m / pT) ~ N(log 0.14, 0.55) (`QCD_MASS_SCALE`; the underlying event
    and wide-angle radiation fill an R = 1.0 jet), 1.15 times heavier for the second
    jet (it radiated the imbalance), capped at 0.6 pT.
  - tau21: Beta with mean 0.59 - 0.13 z, z = standardized log(m / pT) clipped to
    [-1, 2] (heavier QCD jets look more two-pronged), concentration 8.

Signal Z' -> X Y, X -> qq, Y -> qq (label 1) at masses (m_Z', m_X, m_Y).
  - Z' produced with longitudinal boost y_b ~ N(0, 0.5) and no pT; decays isotropically in
    phi with dN/dcos(theta*) ~ 1 - cos^2(theta*) (spin 1 to two scalars); X and Y get the
    two-body momentum p* in the rest frame.
  - Containment: a resonance of mass m and transverse momentum pT decays to quarks with
    momentum fractions z, 1 - z (z uniform), Delta R = m / (pT sqrt(z (1 - z))) apart.
    The jet contains both if (0.7 + 0.3 max(z, 1 - z)) Delta R < R = 1.0: a reach
    between anti-kT's merging distance R and R / max(z, 1 - z) (the softer quark within
    R of the pT-weighted axis), whose weights match Pythia's contained fractions (0.16
    to 0.90 over 2m/pT = 0.45-1.16).
  - A contained jet has mass sqrt(m'^2 + d^2): m' = m (1 + N(0, 0.03)), times
    exp(-Exp(0.3)) for 8% of jets (radiation out of the cone); d^2 = (88 GeV)^2
    LogNormal(0, 1.2) the underlying event and initial-state radiation in the jet
    (`UE_MASS`), which lifts a 100 GeV jet to a median of ~130 GeV. Its two-prong tau21
    is Beta with mean 0.078 - 0.117 log(m / pT) (in [0.1, 0.6]) and concentration
    12 + 2.5 log(m / pT) (in [4, 12]): lighter, more boosted resonances look less
    two-pronged and spread wider.
  - An uncontained jet is the harder quark alone: pT max(z, 1 - z) pT, mass and tau21
    drawn as for a QCD jet of that pT; the lost quark gives m_jj its low tail.
  - Jet response to the resonance's pT: exp(N(0, 0.005)), times exp(-Exp(0.1)) for 20%
    of jets (radiation out of the cone) and exp(+Exp(0.08)) for 20% (initial-state
    radiation and underlying event in the cone).
  - Detector: each jet's four-momentum (pT and mass) is scaled by 1 + N(0, 0.05)
    (`JET_RESOLUTION`, as `flowscan simulate --smearing 0.05`), for both processes.

tau1 (needed to write the schema) is drawn as 0.15 (m/pT)^0.5 x LogNormal(0, 0.8) and
tau3 as tau2 x Beta(mean 0.75, concentration 12); only tau21 enters the observables.

Ordering: j1/j2 in files are by pT; the observables order jets by mass, so which of X
and Y is lighter follows from the reconstructed masses, and swapped or degenerate masses
(m_X near m_Y) stay correct.
"""

from __future__ import annotations

__all__ = [
    "FEATURES",
    "MASSES",
    "JES",
    "JMS",
    "Generator",
    "OBSERVABLES",
    "SCHEMA",
    "check_schema",
    "features",
    "generate",
    "pseudo_data",
    "read_lhco",
    "scale_jets",
    "training_grid",
    "training_set",
]

import itertools
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..exceptions import InputError
from ..io import read_table
from ..variables import Variable

OBSERVABLES = [
    Variable("m_jj", "GeV", 0.0, None),
    Variable("m_j1", "GeV", 0.0, None),
    Variable("delta_m", "GeV", 0.0, None),
    Variable("tau21_j1", "", 0.0, 1.0),
    Variable("tau21_j2", "", 0.0, 1.0),
]
MASSES = [
    Variable("m_zprime", "GeV", 3000.0, 4500.0),
    Variable("m_x", "GeV", 250.0, 1000.0),
    Variable("m_y", "GeV", 50.0, 300.0),
]
SCHEMA = [f"{q}j{j}" for j in (1, 2) for q in ("px", "py", "pz", "m", "tau1", "tau2", "tau3")]
SCHEMA.append("label")

TRIGGER_PT = 1200.0  # GeV, leading jet
# The jet energy and jet mass scale nuisances of `Generator`, in units of their sigma.
JES = Variable("jes", "sigma", -3.0, 3.0)
JMS = Variable("jms", "sigma", -3.0, 3.0)
NUISANCE_CHUNK = 500  # training events per drawn nuisance value
MAX_ETA = 2.5
JET_RESOLUTION = 0.05
QCD_MASS_SCALE = 0.14  # median jet mass / pT of QCD jets
UE_MASS = 88.0  # GeV, median mass added to a resonance's jet (underlying event, ISR)
JET_RADIUS = 1.0


def training_grid(
    m_zprime: Sequence[float] = (3000, 3500, 4000, 4500),
    m_x: Sequence[float] = (250, 500, 750, 1000),
    m_y: Sequence[float] = (50, 100, 150, 200, 250, 300),
) -> list[tuple[float, float, float]]:
    r"""Seed 002's signal mass points (GeV) with m_Z' - m_X > 1000 and m_X - m_Y > 100
    (80 points with the defaults)."""
    return [
        (float(z), float(x), float(y))
        for z, x, y in itertools.product(m_zprime, m_x, m_y)
        if z - x > 1000 and x - y > 100
    ]


def training_set(
    events: int, grid: Sequence[Sequence[float]] | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Signal training events: `events` at each mass point of `grid` (default
    `training_grid()`), point i drawn with seed `seed + i`. Returns the observables
    `(N, 5)` (`OBSERVABLES` order, GeV) and each event's masses `(N, 3)` (GeV)."""
    grid = training_grid() if grid is None else [tuple(map(float, m)) for m in grid]
    names = [v.name for v in OBSERVABLES]
    x = [features(generate(events, m, seed=seed + i))[names].to_numpy() for i, m in enumerate(grid)]
    return np.concatenate(x), np.repeat(np.asarray(grid), events, axis=0)


def _beta(
    rng: np.random.Generator, mean: np.ndarray, concentration: float | np.ndarray
) -> np.ndarray:
    return rng.beta(mean * concentration, (1 - mean) * concentration)


def _qcd_substructure(
    rng: np.random.Generator, pt: np.ndarray, scale: float = QCD_MASS_SCALE
) -> tuple[np.ndarray, np.ndarray]:
    r"""QCD-like (one-prong) jet mass and tau21 for jets of transverse momentum `pt`."""
    z = rng.normal(0.0, 1.0, pt.shape)
    mass = np.minimum(pt * scale * np.exp(0.55 * z), 0.6 * pt)
    tau21 = _beta(rng, 0.59 - 0.13 * np.clip(z, -1, 2), 8.0)
    return mass, tau21


def _resonance_jet(
    rng: np.random.Generator, m: float, pt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""pT, mass and tau21 of the jet from a resonance of mass `m` and transverse momentum
    `pt` decaying to two quarks (module docstring)."""
    z = rng.random(pt.shape)
    delta_r = m / (pt * np.sqrt(z * (1 - z)))
    contained = (0.7 + 0.3 * np.maximum(z, 1 - z)) * delta_r < JET_RADIUS
    response = np.exp(0.005 * rng.normal(size=pt.shape))
    response *= np.where(rng.random(pt.shape) < 0.2, np.exp(-rng.exponential(0.1, pt.shape)), 1)
    response *= np.where(rng.random(pt.shape) < 0.2, np.exp(rng.exponential(0.08, pt.shape)), 1)
    mass = m * (1 + 0.03 * rng.normal(size=pt.shape))
    fsr = rng.random(pt.shape) < 0.08
    mass = np.where(fsr, mass * np.exp(-rng.exponential(0.3, pt.shape)), mass)
    mass = np.sqrt(mass**2 + UE_MASS**2 * rng.lognormal(0.0, 1.2, pt.shape))
    log_rho = np.log(m / pt)
    tau21 = _beta(
        rng, np.clip(0.078 - 0.117 * log_rho, 0.1, 0.6), np.clip(12 + 2.5 * log_rho, 4, 12)
    )
    pt_out = np.where(contained, 1.0, np.maximum(z, 1 - z)) * pt * response
    qcd_mass, qcd_tau21 = _qcd_substructure(rng, pt_out)
    return pt_out, np.where(contained, mass, qcd_mass), np.where(contained, tau21, qcd_tau21)


def _two_body(
    rng: np.random.Generator, n: int, masses: tuple[float, float, float]
) -> tuple[np.ndarray, ...]:
    r"""pT and rapidity of X and Y from Z' decays: `(pt, y_x, y_y)`, each `(n,)`."""
    mz, mx, my = masses
    pstar = np.sqrt((mz**2 - (mx + my) ** 2) * (mz**2 - (mx - my) ** 2)) / (2 * mz)
    # dN/dcos ~ 1 - cos^2: its CDF (3c - c^3 + 2) / 4 = u inverted in closed form.
    cos = 2 * np.cos((np.arccos(1 - 2 * rng.random(n)) + 4 * np.pi) / 3)
    pt, pz = pstar * np.sqrt(1 - cos**2), pstar * cos
    boost = rng.normal(0.0, 0.5, n)
    rapidity = [
        boost + np.arctanh(s * pz / np.sqrt(pstar**2 + m**2)) for s, m in ((1, mx), (-1, my))
    ]
    return pt, rapidity[0], rapidity[1]


def _draw(
    rng: np.random.Generator,
    n: int,
    masses: tuple[float, float, float] | None,
    floor: float = TRIGGER_PT,
) -> pd.DataFrame:
    r"""n events before the trigger, in the schema; QCD from a leading-jet pT of `floor`."""
    if masses is None:
        pt1 = floor * rng.random(n) ** (-1 / 7)  # dN/dpT ~ pT^-8 above the floor
        pt2 = pt1 * (1 - np.minimum(rng.gamma(0.73, 0.12, n), 0.9))
        boost, dy = rng.normal(0.0, 0.47, n), np.abs(rng.normal(0.0, 1.15, n))
        y1, y2 = boost + dy / 2, boost - dy / 2
        m1, t1 = _qcd_substructure(rng, pt1)
        m2, t2 = _qcd_substructure(rng, pt2, QCD_MASS_SCALE * 1.15)
    else:
        pt, y1, y2 = _two_body(rng, n, masses)
        (pt1, m1, t1), (pt2, m2, t2) = (_resonance_jet(rng, m, pt) for m in masses[1:])
    phi = rng.uniform(-np.pi, np.pi, n)
    columns = {}
    for j, (pt, y, m, tau21, dphi) in enumerate(
        ((pt1, y1, m1, t1, 0.0), (pt2, y2, m2, t2, np.pi)), 1
    ):
        scale = 1 + JET_RESOLUTION * rng.normal(size=n)  # the whole four-momentum
        pt, m = pt * scale, m * scale
        # Rapidity y to pz for a jet of mass m: pz = mT sinh(y), mT = sqrt(pT^2 + m^2).
        pz = np.sqrt(pt**2 + m**2) * np.sinh(y)
        tau1 = 0.15 * np.sqrt(m / pt) * rng.lognormal(0.0, 0.8, n)
        tau2 = tau21 * tau1
        columns |= {
            f"pxj{j}": pt * np.cos(phi + dphi),
            f"pyj{j}": pt * np.sin(phi + dphi),
            f"pzj{j}": pz,
            f"mj{j}": m,
            f"tau1j{j}": tau1,
            f"tau2j{j}": tau2,
            f"tau3j{j}": tau2 * _beta(rng, np.full(n, 0.75), 12.0),
        }
    return pd.DataFrame(columns)


def _pt(frame: pd.DataFrame, j: int) -> np.ndarray:
    return np.hypot(frame[f"pxj{j}"], frame[f"pyj{j}"]).to_numpy()


def _eta(frame: pd.DataFrame, j: int) -> np.ndarray:
    return np.arcsinh(frame[f"pzj{j}"].to_numpy() / _pt(frame, j))


def scale_jets(frame: pd.DataFrame, jes: float = 0.0, jms: float = 0.0) -> pd.DataFrame:
    r"""Events in the schema with jet energy and jet mass scales applied: every jet's
    four-momentum (momentum and mass) scaled by 1 + `jes`, and its mass by 1 + `jms`
    further (relative shifts, e.g. 0.01 for +1% at +1 sigma of a 1% scale). The
    substructure (tau) is unchanged. Apply the analysis selection after scaling: a file
    cut at the trigger lacks the events a positive `jes` would lift over it, so on a
    pre-cut file only shifts that move events out of the selection are exact.

    Example:
        >>> frame = generate(2, seed=1)
        >>> scaled = scale_jets(frame, jes=0.01, jms=0.02)
        >>> bool(np.allclose(scaled["mj1"], frame["mj1"] * 1.01 * 1.02))
        True
        >>> bool(np.allclose(features(scaled)["m_jj"], features(frame)["m_jj"] * 1.01, rtol=1e-3))
        True
    """
    if not (-1 < jes < 1 and -1 < jms < 1):
        raise InputError(
            f"jet scales are relative shifts in (-1, 1), e.g. 0.02 for +2%; got jes={jes}, "
            f"jms={jms}"
        )
    out = frame.copy()
    for j in (1, 2):
        for c in (f"pxj{j}", f"pyj{j}", f"pzj{j}"):
            out[c] = frame[c] * (1 + jes)
        out[f"mj{j}"] = frame[f"mj{j}"] * (1 + jes) * (1 + jms)
    return out


def generate(
    n: int,
    masses: Sequence[float] | None = None,
    seed: int = 0,
    *,
    jes: float = 0.0,
    jms: float = 0.0,
) -> pd.DataFrame:
    r"""`n` triggered events in the LHCO R&D schema: QCD dijets if `masses` is `None`,
    else the signal Z' -> X Y at `masses = (m_Z', m_X, m_Y)` in GeV. Jets ordered by pT.

    `jes` and `jms` (relative shifts) scale the jets (`scale_jets`) before the trigger
    and the |eta| cut: QCD is then drawn from a leading-jet pT of 1.2 TeV / (1 + jes)
    for a positive `jes` (the looser preselection), so that the events the shift lifts
    over the trigger are there. With both 0 the events are those of the nominal
    generator, seed for seed. `frame.attrs["generated"]` counts the events drawn, the
    trigger's failures included: n over it is the trigger's efficiency."""
    if n < 1:
        raise InputError(f"need n >= 1 events, got {n}")
    label = 0
    if masses is not None:
        mz, mx, my = (float(m) for m in masses)
        if not (mx > 0 and my > 0 and mz > mx + my):
            raise InputError(
                f"need m_X, m_Y > 0 and m_Z' > m_X + m_Y for Z' -> X Y, got {tuple(masses)} GeV"
            )
        masses, label = (mz, mx, my), 1
    rng = np.random.default_rng(seed)
    floor = TRIGGER_PT / (1 + max(jes, 0.0))
    parts, passed, generated = [], 0, 0
    while passed < n:
        frame = _draw(rng, 2 * (n - passed) + 1000, masses, floor)
        if jes or jms:
            frame = scale_jets(frame, jes, jms)
        keep = (np.maximum(_pt(frame, 1), _pt(frame, 2)) > TRIGGER_PT) & (
            np.maximum(np.abs(_eta(frame, 1)), np.abs(_eta(frame, 2))) < MAX_ETA
        )
        kept = np.flatnonzero(keep)[: n - passed]
        # the draws up to the n-th passing event
        generated += int(kept[-1]) + 1 if len(kept) == n - passed else len(frame)
        parts.append(frame.iloc[kept])
        passed += len(kept)
    frame = pd.concat(parts, ignore_index=True)
    swap = _pt(frame, 2) > _pt(frame, 1)
    first = [c for c in frame.columns if c.endswith("j1")]
    second = [c[:-1] + "2" for c in first]
    frame.loc[swap, first + second] = frame.loc[swap, second + first].to_numpy()
    frame["label"] = label
    frame = frame.reset_index(drop=True)
    frame.attrs["generated"] = generated
    return frame


def pseudo_data(
    n_bkg: int, n_sig: int = 0, masses: Sequence[float] | None = None, seed: int = 0
) -> pd.DataFrame:
    r"""A labelled, shuffled mix like the R&D file: `n_bkg` QCD events and `n_sig` signal
    events at `masses = (m_Z', m_X, m_Y)` GeV, in the schema; `frame.attrs["generated"]`
    counts the events drawn for them (`generate`)."""
    if n_sig and masses is None:
        raise InputError("signal events need masses (m_Z', m_X, m_Y)")
    parts = [generate(n_bkg, seed=seed)] if n_bkg else []
    if n_sig:
        parts.append(generate(n_sig, masses, seed=seed + 1))
    if not parts:
        raise InputError("need n_bkg + n_sig >= 1 events")
    generated = sum(p.attrs["generated"] for p in parts)
    frame = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(seed + 2).permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs["generated"] = generated
    return frame


def features(frame: pd.DataFrame) -> pd.DataFrame:
    r"""The five observables (`OBSERVABLES` names, GeV) of events in the LHCO schema
    (tau21 NaN where tau1 <= 0; `check_schema` says which events are unusable)."""
    missing = [c for c in SCHEMA[:-1] if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing LHCO columns {missing}; the R&D schema is {SCHEMA} "
            f"(got {list(frame.columns)})"
        )
    p = {j: frame[[f"pxj{j}", f"pyj{j}", f"pzj{j}"]].to_numpy(dtype=np.float64) for j in (1, 2)}
    m = {j: frame[f"mj{j}"].to_numpy(dtype=np.float64) for j in (1, 2)}
    energy = sum(np.sqrt((p[j] ** 2).sum(axis=1) + m[j] ** 2) for j in (1, 2))
    mjj = np.sqrt(np.maximum(energy**2 - ((p[1] + p[2]) ** 2).sum(axis=1), 0.0))
    tau21 = {}
    for j in (1, 2):
        tau1 = frame[f"tau1j{j}"].to_numpy(dtype=np.float64)
        tau2 = frame[f"tau2j{j}"].to_numpy(dtype=np.float64)
        tau21[j] = np.divide(tau2, tau1, out=np.full_like(tau1, np.nan), where=tau1 > 0)
    lighter = m[1] <= m[2]
    return pd.DataFrame(
        {
            "m_jj": mjj,
            "m_j1": np.where(lighter, m[1], m[2]),
            "delta_m": np.abs(m[2] - m[1]),
            "tau21_j1": np.where(lighter, tau21[1], tau21[2]),
            "tau21_j2": np.where(lighter, tau21[2], tau21[1]),
        },
        index=frame.index,
    )


def check_schema(frame: pd.DataFrame) -> None:
    r"""Raises `InputError` naming the column, the count and the first row (the table's
    index) of values in an LHCO-schema table that give no usable observables: momenta or
    masses not finite, masses <= 0, tau1 <= 0, tau2 < 0, tau21 = tau2 / tau1 > 1, a
    label other than 0 or 1, and tau21 = 0 exactly.

    tau21 = 0 (tau2 = 0: a jet with too few constituents for two subjet axes) is
    physical, but it is a point mass that no continuous density can describe (its
    log-density would be that of a bin of width 0): such events are refused, to be
    selected out explicitly (`--where "tau2j1 > 0 and tau2j2 > 0"`) and counted apart.
    """

    def refuse(bad: np.ndarray, column: str, what: str, hint: str) -> None:
        if bad.any():
            row = frame.index[np.flatnonzero(bad)[0]]
            value = frame[column].loc[row] if column in frame else None
            shown = f": {value!r}" if value is not None else ""
            raise InputError(
                f"{int(bad.sum())} of {len(frame)} events have {column} {what} (first at row "
                f"{row}{shown}); {hint}"
            )

    for column in SCHEMA[:-1]:
        values = frame[column].to_numpy(dtype=np.float64)
        refuse(~np.isfinite(values), column, "not finite", "remove or fix those events")
    for j in (1, 2):
        mass = frame[f"mj{j}"].to_numpy(dtype=np.float64)
        tau1 = frame[f"tau1j{j}"].to_numpy(dtype=np.float64)
        tau2 = frame[f"tau2j{j}"].to_numpy(dtype=np.float64)
        refuse(mass <= 0, f"mj{j}", "<= 0", "jet masses are positive, in GeV")
        refuse(tau1 <= 0, f"tau1j{j}", "<= 0", "tau21 = tau2 / tau1 needs tau1 > 0")
        refuse(tau2 < 0, f"tau2j{j}", "< 0", "N-subjettiness is never negative")
        refuse(
            tau2 > tau1,
            f"tau2j{j}",
            "> tau1 (tau21 > 1)",
            "exclusive-kT axes in the E-scheme give tau21 > 1; recompute N-subjettiness "
            "with WTA axes or select the events",
        )
        refuse(
            tau2 == 0,
            f"tau2j{j}",
            "= 0 (tau21 = 0: too few constituents for two axes)",
            "a continuous density cannot describe that point mass: select those events "
            'out, e.g. --where "tau2j1 > 0 and tau2j2 > 0", and count them apart',
        )
    if "label" in frame:
        label = frame["label"].to_numpy()
        refuse(
            ~np.isin(label, (0, 1)),
            "label",
            "other than 0 or 1",
            "label is 1 for signal, 0 for background",
        )


def read_lhco(
    path: str | os.PathLike, mjj_window: tuple[float, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Signal and background observables from an LHCO R&D feature file.

    Arguments:
        path: Table in the R&D schema (`SCHEMA`; extra columns are ignored), HDF5 as
            published, or CSV/Parquet.
        mjj_window: Optional signal region `(low, high)` in GeV on m_jj.

    Returns:
        `(signal, background)` DataFrames of the five observables, split by `label`.
    """
    frame = read_table(path, FEATURES)
    missing = [c for c in SCHEMA if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing LHCO columns {missing}; the R&D schema is {SCHEMA} "
            f"(got {list(frame.columns)})"
        )
    check_schema(frame)
    if mjj_window is not None:
        low, high = mjj_window
        frame = frame[(frame["m_jj"] >= low) & (frame["m_jj"] <= high)]
    x = frame[[v.name for v in OBSERVABLES]]
    signal = frame["label"] == 1
    return x[signal].reset_index(drop=True), x[~signal].reset_index(drop=True)


class _Features:
    r"""The five observables of a table in the R&D schema, derived by `features` and
    checked by `check_schema` (a `flowscan.io.Derivation`)."""

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not set(SCHEMA[:-1]) <= set(frame.columns):
            return frame
        derived = features(frame)
        return frame.join(derived[[c for c in derived.columns if c not in frame.columns]])

    def check(self, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        derived = {v.name for v in OBSERVABLES} & set(columns)
        if derived and set(SCHEMA[:-1]) <= set(frame.columns):
            check_schema(frame)


FEATURES = _Features()


class Generator:
    r"""The generator as a sampler (like `BreitWigner`): the Z' -> X Y signal at
    `theta = (m_Z', m_X, m_Y)` GeV for `process="signal"`, QCD dijets (no parameters)
    for `process="qcd"`.

    With `jes` or `jms` (the relative 1-sigma of a jet energy or jet mass scale, e.g.
    0.01) theta gains the nuisance `jes` or `jms` in units of its sigma, over +-3
    (`JES`, `JMS`): events at s are generated with `generate(..., jes=jes s)`, the jets
    scaled before the trigger. Training sets then draw s uniformly, one value per chunk
    of `NUISANCE_CHUNK` events.

    Example:
        >>> [v.name for v in Generator("qcd", jes=0.01).theta_vars]
        ['jes']
    """

    observables = OBSERVABLES

    def __init__(self, process: str = "signal", jes: float = 0.0, jms: float = 0.0) -> None:
        if process not in ("signal", "qcd"):
            raise InputError(f"the LHCO generator makes signal or qcd, not {process!r}")
        if not (0 <= jes < 1 / 3 and 0 <= jms < 1 / 3):
            raise InputError(f"jet scale widths are relative sigmas in [0, 1/3): {jes}, {jms}")
        self.process, self.scales = process, {"jes": jes, "jms": jms}
        nuisances = [v for v in (JES, JMS) if self.scales[v.name]]
        self.theta_vars = [*(MASSES if process == "signal" else []), *nuisances]

    def _split(self, theta: Tensor | None) -> tuple[list[float] | None, dict[str, float]]:
        r"""The masses (`None` for QCD) and the jet-scale shifts of a theta `(D,)`."""
        values = [] if theta is None else [float(t) for t in torch.as_tensor(theta).reshape(-1)]
        if len(values) != len(self.theta_vars):
            names = [v.name for v in self.theta_vars]
            raise InputError(f"the LHCO {self.process} needs theta = {names}, got {values}")
        n_masses = 3 if self.process == "signal" else 0
        shifts = dict(
            zip([v.name for v in self.theta_vars[n_masses:]], values[n_masses:], strict=True)
        )
        shifts = {k: self.scales[k] * shifts.get(k, 0.0) for k in ("jes", "jms")}
        return (values[:3] if n_masses else None), shifts

    def sample(self, n: int, theta: Tensor | None = None, seed: int | None = None) -> Tensor:
        r"""`n` events' observables, float64 `(n, 5)` in `OBSERVABLES` order (GeV)."""
        masses, shifts = self._split(theta)
        frame = features(generate(n, masses, seed=0 if seed is None else seed, **shifts))
        return torch.tensor(frame[[v.name for v in OBSERVABLES]].to_numpy())

    def training_set(self, n: int, seed: int = 0) -> tuple[Tensor, Tensor | None]:
        r"""Signal: `n` events at each point of seed 002's mass grid (`training_set`),
        with their masses `(N, 3)`; QCD: `n` events and `None`. With jet-scale nuisances
        the events come in chunks of `NUISANCE_CHUNK`, each at its own uniformly drawn
        s, and theta carries s."""
        nuisances = self.theta_vars[3 if self.process == "signal" else 0 :]
        if not nuisances:
            if self.process == "qcd":
                return self.sample(n, None, seed), None
            x, theta = training_set(n, seed=seed)
            return torch.from_numpy(x), torch.from_numpy(theta)
        rng = np.random.default_rng(seed)
        points = training_grid() if self.process == "signal" else [()]
        xs, thetas = [], []
        for point in points:
            for size in np.diff([*range(0, n, NUISANCE_CHUNK), n]):
                s = rng.uniform(-3.0, 3.0, len(nuisances))
                theta = torch.tensor([*point, *s], dtype=torch.float64)
                xs.append(self.sample(int(size), theta, int(rng.integers(2**62))))
                thetas.append(theta.expand(int(size), -1))
        return torch.cat(xs), torch.cat(thetas)
