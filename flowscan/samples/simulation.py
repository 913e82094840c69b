r"""Pythia 8 + FastJet simulation of LHC Olympics-style dijet events (extra `mc`:
`pip install flowscan[mc]`).

Physics, for pp collisions at `ecm` (13 TeV):

- QCD dijets: Pythia's `HardQCD:all` (every 2 -> 2 QCD process) with `PhaseSpace:pTHatMin`
  = `pthat_min` (1 TeV: 40% of events pass the 1.2 TeV trigger, and a harder cut would
  bias the trigger turn-on).
- Signal Z' -> X Y, X -> q qbar, Y -> q qbar: the Z' is Pythia's `NewGaugeBoson` (`32`,
  `Zprime:gmZmode = 3`, Z' only), with a channel to H0 A0 (`35`, `36`, made available by
  `Higgs:useBSM`) playing X and Y; both decay to d, u, s, c, b pairs with equal
  branching ratios. The Z' quark channels stay open because Pythia sums them into the
  production cross section; a user hook vetoes, at process level (before showers, so
  cheaply), every event whose Z' did not decay to X Y. The Z' mass is drawn within
  m_Z' (1 +- `zprime_width`) (1%), where it is flat: with the added channel, Pythia
  8.317's running Z' width is not that of a Breit-Wigner (it peaks at thousands of GeV
  at the pole even with `doForceWidth`), and a wider window gave a Z' mass spread over
  the whole window, median 3.25 TeV for m_Z' = 3.5 TeV in 0.8-1.2 m_Z'. X and Y have
  `xy_width` GeV (1), forced, within +- 10 widths.
- Everything else is Pythia's default (Monash tune; ISR, FSR, multiparton interactions,
  hadronization and decays on); no pile-up and no detector.

Jets: anti-kT with radius R = `jet_radius` (1.0) on every final visible particle
(neutrinos excluded), by FastJet. Optional Gaussian jet energy smearing, a stated
stand-in for Delphes: each jet's four-momentum is scaled by 1 + N(0, `smearing`). An
event is kept if its leading jet has pT > `trigger_pt` (1.2 TeV, the LHCO trigger) and,
with `max_eta`, both leading jets have |eta| < `max_eta`.

N-subjettiness (Thaler and Van Tilburg, beta = 1) of each of the two leading jets,

.. math:: \tau_N = \frac{\sum_k p_{T,k} \min_a \Delta R_{k,a}}{\sum_k p_{T,k} R_0},
   \quad R_0 = R = 1.0,

over the jet's constituents k, with Delta R in rapidity and azimuth to the N axes a:
the jet's constituents reclustered with the exclusive kT algorithm into exactly N
subjets with winner-take-all pT recombination (fjcontrib's `WTA_KT_Axes`; no one-pass
minimization). With WTA, the N - 1 axes are among the N axes, so tau_3 <= tau_2 <=
tau_1 and tau21 lies in [0, 1] (E-scheme kT axes gave tau21 up to 1.2 on QCD jets).
tau_N = 0 for a jet with at most N constituents.

Output: a pandas table in the LHCO R&D schema (`lhco.SCHEMA`: `pxj1 ... tau3j2 label`,
GeV, j1/j2 ordered by pT) with, for the signal, the masses as columns `m_zprime`, `m_x`,
`m_y` (the context of `flowscan train`).

Parallel and reproducible: events are made in chunks of `chunk_size` passing events,
chunk k seeded from `(seed, k)`, so the events do not depend on the number of workers;
chunks run as tasks on Dask (`flowscan.parallel`).
"""

from __future__ import annotations

from ..exceptions import DependencyError, FlowscanError, InputError

__all__ = [
    "SimulationSettings",
    "check_masses",
    "chunk_seeds",
    "nsubjettiness",
    "require_mc",
    "simulate",
    "simulate_chunk",
]

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..parallel import map_tasks
from .lhco import MASSES, SCHEMA

if TYPE_CHECKING:
    from distributed import Client

PYTHIA_MAX_SEED = 900_000_000


@dataclass(frozen=True)
class SimulationSettings:
    r"""Generator and reconstruction settings (GeV unless stated)."""

    ecm: float = 13_000.0
    pthat_min: float = 1_000.0  # QCD only
    jet_radius: float = 1.0
    trigger_pt: float = 1_200.0
    max_eta: float | None = None
    smearing: float = 0.0  # relative jet energy resolution
    jes: float = 0.0  # jet energy scale shift: four-momenta times 1 + jes, before the trigger
    jms: float = 0.0  # jet mass scale shift: masses times 1 + jms further
    zprime_width: float = 0.01  # half-width of the Z' mass window, fraction of m_Z'
    xy_width: float = 1.0


def require_mc():
    r"""The `pythia8mc` and `fastjet` modules; `DependencyError` without the `mc` extra."""
    try:
        import fastjet
        import pythia8mc
    except ImportError as e:
        raise DependencyError(
            f"the Pythia simulation needs the optional extra: pip install 'flowscan[mc]' ({e})"
        ) from None
    return pythia8mc, fastjet


def check_masses(masses: Sequence[float] | None) -> tuple[float, float, float] | None:
    r"""`(m_Z', m_X, m_Y)` in GeV as floats, `InputError` unless the decay is open."""
    if masses is None:
        return None
    if len(masses) != 3:
        raise InputError(f"masses are (m_Z', m_X, m_Y) in GeV, got {tuple(masses)}")
    mz, mx, my = (float(m) for m in masses)
    if not (mx > 0 and my > 0 and mz > mx + my and math.isfinite(mz)):
        raise InputError(
            f"need m_X, m_Y > 0 and m_Z' > m_X + m_Y for Z' -> X Y, got {tuple(masses)} GeV"
        )
    return mz, mx, my


def _commands(
    masses: tuple[float, float, float] | None, settings: SimulationSettings, seed: int
) -> list[str]:
    out = [
        f"Beams:eCM = {settings.ecm}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        "Print:quiet = on",
    ]
    if masses is None:
        return out + ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {settings.pthat_min}"]
    mz, mx, my = masses
    out += [
        "NewGaugeBoson:ffbar2gmZZprime = on",
        "Zprime:gmZmode = 3",
        f"32:m0 = {mz}",
        f"32:mWidth = {settings.zprime_width * mz}",
        "32:doForceWidth = on",
        f"32:mMin = {(1 - settings.zprime_width) * mz}",
        f"32:mMax = {(1 + settings.zprime_width) * mz}",
        "32:onMode = off",
        "32:onIfAny = 1 2 3 4 5",
        "32:addChannel = 1 20.0 100 35 36",
        "Higgs:useBSM = on",
    ]
    for pid, m in ((35, mx), (36, my)):
        width = settings.xy_width
        out += [
            f"{pid}:m0 = {m}",
            f"{pid}:mWidth = {width}",
            f"{pid}:doForceWidth = on",
            f"{pid}:mMin = {max(m - 10 * width, 0.1)}",
            f"{pid}:mMax = {m + 10 * width}",
            f"{pid}:oneChannel = 1 0.2 100 1 -1",
            *(f"{pid}:addChannel = 1 0.2 100 {q} -{q}" for q in (2, 3, 4, 5)),
        ]
    return out


def _generator(masses: tuple[float, float, float] | None, settings: SimulationSettings, seed: int):
    r"""An initialized Pythia and, for the signal, its Z' -> X Y hook (kept alive with it)."""
    pythia8mc, _ = require_mc()
    pythia = pythia8mc.Pythia("", False)
    for command in _commands(masses, settings, seed):
        if not pythia.readString(command):
            raise FlowscanError(f"Pythia rejected the setting {command!r}")
    hook = None
    if masses is not None:

        class ZprimeToXY(pythia8mc.UserHooks):
            def canVetoProcessLevel(self) -> bool:
                return True

            def doVetoProcessLevel(self, process) -> bool:
                ids = {process[i].idAbs() for i in range(process.size())}
                return not (35 in ids and 36 in ids)

        hook = ZprimeToXY()
        pythia.setUserHooksPtr(hook)
    if not pythia.init():
        raise FlowscanError(f"Pythia failed to initialize for masses {masses}")
    return pythia, hook


def _rapidity_phi(px, py, pz, e):
    pt = np.hypot(px, py)
    y = 0.5 * np.log(np.maximum(e + pz, 1e-12) / np.maximum(e - pz, 1e-12))
    return y, np.arctan2(py, px), pt


def nsubjettiness(constituents: np.ndarray, radius: float) -> np.ndarray:
    r"""tau_1, tau_2, tau_3 of one jet from its constituents `(K, 4)` (px, py, pz, E in
    GeV), with exclusive WTA-kT axes and R0 = `radius` (module docstring). Returns
    shape `(3,)`."""
    _, fastjet = require_mc()
    y, phi, pt = _rapidity_phi(*constituents.T)
    norm = pt.sum() * radius
    taus = np.zeros(3)
    if len(constituents) < 2 or norm <= 0:
        return taus
    particles = [fastjet.PseudoJet(*map(float, c)) for c in constituents]
    sequence = fastjet.ClusterSequence(
        particles,
        fastjet.JetDefinition(
            fastjet.kt_algorithm, fastjet.JetDefinition.max_allowable_R, fastjet.WTA_pt_scheme
        ),
    )
    for n in (1, 2, 3):
        if len(constituents) <= n:
            break
        axes = sequence.exclusive_jets(n)
        ay = np.array([a.rap() for a in axes])
        aphi = np.array([a.phi() for a in axes])
        dphi = np.abs(phi[:, None] - aphi[None, :]) % (2 * np.pi)
        dphi = np.minimum(dphi, 2 * np.pi - dphi)
        dr = np.sqrt((y[:, None] - ay[None, :]) ** 2 + dphi**2)
        taus[n - 1] = (pt * dr.min(axis=1)).sum() / norm
    return taus


def _visible(event) -> np.ndarray:
    r"""Final visible particles of a Pythia event record, `(K, 4)`: px, py, pz, E."""
    return np.array(
        [(p.px(), p.py(), p.pz(), p.e()) for p in event if p.isFinal() and p.isVisible()]
    ).reshape(-1, 4)


def _reconstruct(
    particles: np.ndarray, settings: SimulationSettings, rng: np.random.Generator
) -> list[float] | None:
    r"""The schema's 14 jet features of one event, or `None` if it fails the selection."""
    _, fastjet = require_mc()
    sequence = fastjet.ClusterSequence(
        [fastjet.PseudoJet(*map(float, p)) for p in particles],
        fastjet.JetDefinition(fastjet.antikt_algorithm, settings.jet_radius),
    )
    jets = fastjet.sorted_by_pt(sequence.inclusive_jets(0.0))[:2]
    if len(jets) < 2:
        return None
    scale = 1 + settings.smearing * rng.normal(size=2) if settings.smearing else np.ones(2)
    p4 = np.array([[j.px(), j.py(), j.pz(), j.E()] for j in jets]) * scale[:, None]
    p4 *= 1 + settings.jes
    order = np.argsort(-np.hypot(p4[:, 0], p4[:, 1]))
    p4, jets = p4[order], [jets[i] for i in order]
    pt = np.hypot(p4[:, 0], p4[:, 1])
    if pt[0] <= settings.trigger_pt:
        return None
    if settings.max_eta is not None:
        eta = np.arcsinh(p4[:, 2] / pt)
        if np.abs(eta).max() >= settings.max_eta:
            return None
    row = []
    for k, jet in enumerate(jets):
        constituents = np.array([(c.px(), c.py(), c.pz(), c.E()) for c in jet.constituents()])
        mass = math.sqrt(max(p4[k, 3] ** 2 - (p4[k, :3] ** 2).sum(), 0.0)) * (1 + settings.jms)
        row += [*p4[k, :3], mass, *nsubjettiness(constituents, settings.jet_radius)]
    return row


def simulate_chunk(
    events: int,
    masses: Sequence[float] | None = None,
    seed: int = 1,
    settings: SimulationSettings | None = None,
) -> tuple[pd.DataFrame, int]:
    r"""Generates until `events` events pass the selection, with one Pythia seeded by
    `seed` (1 to 900,000,000). Returns the table in the LHCO schema (plus the masses
    for the signal) and the number of events generated."""
    if not 1 <= seed <= PYTHIA_MAX_SEED:
        raise InputError(f"Pythia seeds lie in [1, {PYTHIA_MAX_SEED}], got {seed}")
    masses, settings = check_masses(masses), settings or SimulationSettings()
    pythia, _hook = _generator(masses, settings, seed)
    rng = np.random.default_rng(seed)
    rows, generated, failed = [], 0, 0
    while len(rows) < events:
        if not pythia.next():
            failed += 1
            if failed > 1000:
                raise FlowscanError(f"Pythia failed {failed} events (seed {seed}); see its log")
            continue
        generated += 1
        row = _reconstruct(_visible(pythia.event), settings, rng)
        if row is not None:
            rows.append(row)
        elif generated >= 1000 and len(rows) < 1e-3 * generated:
            raise FlowscanError(
                f"{len(rows)} of {generated} generated events pass the selection (leading "
                f"jet pT > {settings.trigger_pt} GeV): the masses {masses} or settings "
                "cannot fill the trigger"
            )
    frame = pd.DataFrame(rows, columns=SCHEMA[:-1])
    frame["label"] = 0 if masses is None else 1
    if masses is not None:
        for variable, m in zip(MASSES, masses, strict=True):
            frame[variable.name] = m
    return frame, generated


@dataclass(frozen=True)
class _Chunk:
    masses: tuple[float, float, float] | None
    settings: SimulationSettings

    def __call__(self, task: tuple[int, int]) -> tuple[pd.DataFrame, int]:
        events, seed = task
        return simulate_chunk(events, self.masses, seed, self.settings)


def chunk_seeds(seed: int, chunks: int) -> list[int]:
    r"""Independent Pythia seeds of chunks 0..chunks-1, from `numpy`'s `SeedSequence`."""
    states = np.random.SeedSequence(seed).generate_state(chunks, dtype=np.uint64)
    return [int(s % PYTHIA_MAX_SEED) + 1 for s in states]


def simulate(
    events: int,
    masses: Sequence[float] | None = None,
    seed: int = 0,
    settings: SimulationSettings | None = None,
    chunk_size: int = 500,
    client: Client | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    r"""`events` selected events of QCD dijets (`masses=None`) or the signal at
    `masses = (m_Z', m_X, m_Y)` GeV, in chunks of `chunk_size` on the client's workers
    (here, one after the other, without one).

    Returns:
        The events (LHCO schema, j1/j2 by pT; for the signal also the masses) and a
        metadata record: process, masses, seed, chunk seeds, events generated and
        passing, Pythia and FastJet versions, settings.
    """
    if events < 1:
        raise InputError(f"need at least 1 event, got {events}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    masses, settings = check_masses(masses), settings or SimulationSettings()
    require_mc()
    sizes = [chunk_size] * (events // chunk_size) + (
        [events % chunk_size] if events % chunk_size else []
    )
    seeds = chunk_seeds(seed, len(sizes))
    results = map_tasks(
        _Chunk(masses, settings),
        list(zip(sizes, seeds, strict=True)),
        client,
        progress=progress,
        desc="events",
        sizes=sizes,
    )
    frame = pd.concat([r[0] for r in results], ignore_index=True)
    generated = sum(r[1] for r in results)
    meta = {
        "process": "qcd" if masses is None else "signal Z' -> X Y -> (q q)(q q)",
        "masses": None
        if masses is None
        else dict(zip([v.name for v in MASSES], masses, strict=True)),
        "seed": seed,
        "chunk_size": chunk_size,
        "chunk_seeds": seeds,
        "generated": generated,
        "passed": len(frame),
        "efficiency": len(frame) / generated,
        "generator": {"pythia8mc": version("pythia8mc"), "fastjet": version("fastjet")},
        "settings": asdict(settings),
    }
    return frame, meta
