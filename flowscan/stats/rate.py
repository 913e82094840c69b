r"""The expected signal yield as a function of the signal parameters: n_sig(theta) =
sigma(theta) x L x eff(theta), the cross section from a table, the luminosity given, the
selection efficiency from the simulated grid, smoothed over theta with its uncertainty."""

from __future__ import annotations

__all__ = ["CrossSection", "Efficiency", "SignalRate"]

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import LinearNDInterpolator

from ..exceptions import InputError
from ..io import Derivation, read_events, read_table

_UNITS = {"sigma_fb": 1.0, "sigma_pb": 1e3}  # column -> fb


def _points(theta: np.ndarray | Sequence[float], names: Sequence[str]) -> np.ndarray:
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    if theta.shape[-1] != len(names) or not np.isfinite(theta).all():
        raise InputError(f"theta must be finite, shape (K, {len(names)}) for {list(names)}")
    return theta


def _named(theta: np.ndarray, names: Sequence[str]) -> str:
    return ", ".join(f"{n} = {v:g}" for n, v in zip(names, theta, strict=True))


@dataclass(frozen=True)
class CrossSection:
    r"""A signal cross section sigma(theta) in fb from a table of points, interpolated
    linearly in log sigma (exact for a cross section falling exponentially, close for a
    power law over a table's steps): along one parameter between its neighbours, over
    several on the Delaunay triangulation of the points. A theta outside the table (its
    range, or the points' convex hull) raises `InputError`: a cross section is not
    extrapolated.

    Arguments:
        names: The D signal parameters.
        points: The table's points `(K, D)`.
        sigma: The cross sections `(K,)`, fb, positive.

    Example:
        >>> xs = CrossSection(["m"], np.array([[1000.0], [2000.0]]), np.array([100.0, 1.0]))
        >>> float(xs([1500.0])[0])  # the geometric mean: linear in log sigma
        10.000000000000002
    """

    names: list[str]
    points: np.ndarray
    sigma: np.ndarray

    def __post_init__(self) -> None:
        points, sigma = np.asarray(self.points, dtype=float), np.asarray(self.sigma, dtype=float)
        if points.ndim != 2 or points.shape != (len(sigma), len(self.names)):
            raise InputError(f"a cross-section table needs a row per point of {self.names}")
        if not (np.isfinite(sigma).all() and (sigma > 0).all() and np.isfinite(points).all()):
            raise InputError("cross sections must be finite and positive, at finite points")
        if len(np.unique(points, axis=0)) < len(points):
            raise InputError("the cross-section table has a point twice: give each once")
        if len(points) < len(self.names) + 1:
            raise InputError(
                f"{len(points)} cross-section point(s) cannot be interpolated over "
                f"{self.names}: give at least {len(self.names) + 1}"
            )

    @classmethod
    def read(cls, path: str | os.PathLike, names: Sequence[str]) -> CrossSection:
        r"""The table of a file (`flowscan.io.read_table`: CSV, Parquet...): a column for
        each of the signal parameters `names` the cross section depends on (those it
        lacks, it does not depend on) and `sigma_fb` or `sigma_pb`, nothing else."""
        frame = read_table(path)
        units = [c for c in _UNITS if c in frame.columns]
        own = [n for n in names if n in frame.columns]
        other = [c for c in frame.columns if c not in (*names, *_UNITS)]
        if len(units) != 1 or not own or other:
            raise InputError(
                f"{path}: a cross-section table has a column for each parameter of "
                f"{list(names)} it depends on and one of {list(_UNITS)}, nothing else; it "
                f"has {list(frame.columns)}"
            )
        try:
            values = frame[[*own, units[0]]].to_numpy(dtype=np.float64)
        except ValueError:
            raise InputError(f"{path}: the cross-section table holds text, not numbers") from None
        try:
            return cls(own, values[:, :-1], values[:, -1] * _UNITS[units[0]])
        except InputError as e:
            raise InputError(f"{path}: {e}") from None

    def __call__(self, theta: np.ndarray | Sequence[float]) -> np.ndarray:
        r"""sigma at thetas `(K, D)` (or one `(D,)`), fb, `(K,)`."""
        theta = _points(theta, self.names)
        log_sigma = np.log(self.sigma)
        if len(self.names) == 1:
            order = np.argsort(self.points[:, 0])
            x = self.points[order, 0]
            inside = (theta[:, 0] >= x[0]) & (theta[:, 0] <= x[-1])
            values = np.interp(theta[:, 0], x, log_sigma[order])
        else:
            values = LinearNDInterpolator(self.points, log_sigma)(theta)
            inside = np.isfinite(values)
        if not inside.all():
            bad = theta[np.flatnonzero(~inside)[0]]
            low, high = self.points.min(0), self.points.max(0)
            raise InputError(
                f"{_named(bad, self.names)} lies outside the cross-section table (its points "
                f"span {_named(low, self.names)} to {_named(high, self.names)}, and their "
                "hull): add points there; a cross section is not extrapolated"
            )
        return np.exp(values)


def _monomials(t: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    r"""The monomials of the columns of `t` `(K, D)` up to `degree`, `(K, M)`, 1 first,
    that the `points` `(P, D)` determine: a parameter with n distinct values among them
    enters with a power below n (two values of gamma fix a line in it, no parabola)."""
    distinct = [len(np.unique(points[:, k])) for k in range(points.shape[1])]
    powers = [
        p
        for k in range(degree + 1)
        for p in itertools.combinations_with_replacement(range(t.shape[1]), k)
        if all(p.count(j) < distinct[j] for j in set(p))
    ]
    return np.stack([np.prod(t[:, list(p)], axis=1) for p in powers], axis=1)


@dataclass(frozen=True)
class Efficiency:
    r"""The selection efficiency eff(theta) over the simulated grid, smoothed: a
    polynomial in theta (up to `degree`, every monomial of the parameters the points
    vary in; lower where the points are too few) fitted to logit(eff) by weighted least
    squares, each point weighted by its binomial precision n p (1 - p) (p from
    (passed + 1/2) / (generated + 1), so that 0 and all pass keep a finite logit). Its
    uncertainty at theta is the fit's (the delta method), scaled up by sqrt(chi^2 / ndf)
    where the polynomial fits the points worse than their binomial errors: a smooth
    function cannot follow them, and the error says so. Theta outside the simulated
    points' range (off the value of a parameter they all share) raises `InputError`.

    Build it with `fit` (counts in hand) or `read` (the `<file>.json` records of
    `flowscan simulate` or `flowscan generate`).
    """

    names: list[str]
    points: np.ndarray
    generated: np.ndarray
    passed: np.ndarray
    degree: int
    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: float
    ndf: int

    @classmethod
    def fit(
        cls,
        names: Sequence[str],
        points: np.ndarray,
        generated: np.ndarray,
        passed: np.ndarray,
        degree: int = 2,
    ) -> Efficiency:
        r"""The smoothed efficiency from the simulated points `(K, D)`, their generated
        and passing event counts `(K,)`."""
        points = _points(points, names)
        generated, passed = (np.asarray(a, dtype=np.float64) for a in (generated, passed))
        if generated.shape != (len(points),) or passed.shape != (len(points),):
            raise InputError("give the generated and passing events of every point")
        if not ((generated > 0).all() and (passed >= 0).all() and (passed <= generated).all()):
            raise InputError("each point needs generated > 0 and 0 <= passed <= generated")
        p = (passed + 0.5) / (generated + 1)
        t = cls._unit(points, points)  # the parameters the points vary in
        while degree > 0 and _monomials(t, degree, t).shape[1] > len(points):
            degree -= 1  # no more coefficients than points
        design = _monomials(t, degree, t)
        weight = generated * p * (1 - p)  # 1 / var(logit p)
        normal = design.T @ (design * weight[:, None])
        covariance = np.linalg.pinv(normal)
        coefficients = covariance @ (design.T @ (weight * np.log(p / (1 - p))))
        residual = np.log(p / (1 - p)) - design @ coefficients
        ndf = len(points) - design.shape[1]
        chi2 = float(weight @ residual**2)
        return cls(list(names), points, generated, passed, degree, coefficients, covariance,
                   chi2, ndf)  # fmt: skip

    @classmethod
    def read(
        cls,
        paths: Sequence[str | os.PathLike],
        names: Sequence[str],
        where: str | None = None,
        derive: Derivation | None = None,
    ) -> Efficiency:
        r"""The efficiency of signal event files of `flowscan simulate` or `flowscan
        generate --events 0` (their `<file>.json` records: the masses, GeV, and the
        events generated and passing), over `names` (keys of the records' masses:
        m_zprime, m_x, m_y). With `where` (and the columns `derive` adds), the events
        passing are those the file holds that pass it too, as an analysis selects
        them (`flowscan.io.read_events`)."""
        rows = []
        for path in paths:
            record_path = os.path.splitext(path)[0] + ".json"
            try:
                with open(record_path, encoding="utf-8") as f:
                    record = json.load(f)
                masses = record["masses"]
                row = [*(float(masses[n]) for n in names), record["generated"], record["passed"]]
            except OSError:
                raise InputError(
                    f"{record_path}: no record of {path}; the efficiency comes from the "
                    "<file>.json that flowscan simulate writes beside each file"
                ) from None
            except (KeyError, TypeError, ValueError):
                raise InputError(
                    f"{record_path}: not the record of a signal sample with masses "
                    f"{list(names)}, generated and passed events (flowscan simulate, or "
                    "flowscan generate --events 0 --signal-events N)"
                ) from None
            if where:
                frame = read_table(path, derive)
                row[-1] *= len(read_events(path, [frame.columns[0]], where, derive)) / len(frame)
            rows.append(row)
        table = np.array(rows, dtype=np.float64)
        return cls.fit(names, table[:, :-2], table[:, -2], table[:, -1])

    @staticmethod
    def _unit(theta: np.ndarray, points: np.ndarray) -> np.ndarray:
        r"""`theta` mapped to [-1, 1] over the points' range, in the parameters the
        points vary in (one held at a value is not fitted in)."""
        low, high = points.min(0), points.max(0)
        varied = high > low
        return 2 * (theta - low)[:, varied] / (high - low)[varied] - 1

    def __call__(self, theta: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        r"""The efficiency `(K,)` at thetas `(K, D)` (or one `(D,)`) and its
        uncertainty `(K,)`."""
        theta = _points(theta, self.names)
        low, high = self.points.min(0), self.points.max(0)
        outside = ((theta < low) | (theta > high)).any(axis=1)
        if outside.any():
            raise InputError(
                f"{_named(theta[np.flatnonzero(outside)[0]], self.names)} lies outside the "
                f"simulated points ({_named(low, self.names)} to {_named(high, self.names)}): "
                "simulate points there; an efficiency is not extrapolated"
            )
        unit = self._unit(self.points, self.points)
        design = _monomials(self._unit(theta, self.points), self.degree, unit)
        logit = design @ self.coefficients
        error = np.sqrt(np.einsum("km,mn,kn->k", design, self.covariance, design))
        error *= math.sqrt(max(1.0, self.chi2 / self.ndf)) if self.ndf > 0 else 1.0
        eff = 1 / (1 + np.exp(-logit))
        return eff, eff * (1 - eff) * error


@dataclass(frozen=True)
class SignalRate:
    r"""The expected signal yield n_sig(theta) = sigma(theta) L eff(theta), theta over
    the efficiency's parameters (the cross section's are some of them).

    Arguments:
        cross_section: sigma(theta), fb.
        luminosity: L, 1/fb.
        efficiency: eff(theta) with its uncertainty.
    """

    cross_section: CrossSection
    luminosity: float
    efficiency: Efficiency

    def __post_init__(self) -> None:
        if not (math.isfinite(self.luminosity) and self.luminosity > 0):
            raise InputError(f"the luminosity must be positive (1/fb), got {self.luminosity}")
        unknown = sorted(set(self.cross_section.names) - set(self.efficiency.names))
        if unknown:
            raise InputError(
                f"the cross section depends on {unknown}, which the efficiency is not over "
                f"({self.efficiency.names}): give both over the signal's parameters"
            )

    def __call__(self, theta: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        r"""n_sig `(K,)` at thetas `(K, D)` over `efficiency.names` and its relative
        uncertainty `(K,)` (the efficiency's)."""
        sigma, eff, error = self.terms(theta)
        return sigma * self.luminosity * eff, error

    def terms(
        self, theta: np.ndarray | Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""sigma (fb), eff and eff's relative uncertainty, `(K,)` each, at thetas
        `(K, D)` over `efficiency.names`."""
        theta = _points(theta, self.efficiency.names)
        eff, error = self.efficiency(theta)
        columns = [self.efficiency.names.index(n) for n in self.cross_section.names]
        return self.cross_section(theta[:, columns]), eff, error / eff
