r"""Two-sample metrics that compare a model's samples with a reference sample.

Every metric takes a sample `x` `(N, F)` (the model's) and a `reference` `(M, F)`, both
in observable units, and returns numbers whose value for two samples of one
distribution (the *null* value) is stated in its docstring; `compare` also computes
each on two independent reference samples, the noise floor a model is read against.

Weighted samples (simulation with generator weights and scale factors, negative ones
included) pass their event weights `(N,)` and `(M,)` as `weights=(x's, reference's)`,
`None` for an unweighted one. The metrics then use weighted empirical distributions,
and their null values the effective numbers of events (sum w)^2 / sum w^2. The HPDI
widths need a monotone cumulative distribution: with negative weights they are NaN.
"""

from __future__ import annotations

__all__ = [
    "Metric",
    "auc",
    "classifier_auc",
    "compare",
    "correlation_distance",
    "hpdi",
    "hpdi_error",
    "ks_test",
    "sliced_wasserstein",
    "wasserstein_1d",
]

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError

HPDI_LEVELS = (0.683, 0.954, 0.997)

Weights = tuple[np.ndarray | None, np.ndarray | None]


@dataclass(frozen=True)
class Metric:
    r"""A metric's value and the spread of that value (over sub-samples, random
    directions or a held-out split; see each metric)."""

    value: float
    spread: float


def _arrays(x: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, reference = (np.asarray(a, dtype=np.float64) for a in (x, reference))
    if x.ndim != 2 or reference.ndim != 2 or x.shape[1] != reference.shape[1]:
        raise InputError(
            f"samples must be (N, F) with the same F; got {x.shape} and {reference.shape}"
        )
    if len(x) < 2 or len(reference) < 2:
        raise InputError(f"need at least 2 events per sample, got {len(x)} and {len(reference)}")
    if not (np.isfinite(x).all() and np.isfinite(reference).all()):
        raise InputError("samples contain NaN or inf: remove or fix those events first")
    return x, reference


def _weights(weights: Weights, x: np.ndarray, reference: np.ndarray) -> Weights:
    r"""The two samples' weights as float64 arrays of their lengths (`None` stays)."""
    out = []
    for w, sample in zip(weights, (x, reference), strict=True):
        if w is not None:
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (len(sample),) or not np.isfinite(w).all() or not w.sum() > 0:
                raise InputError(
                    f"weights must be {len(sample)} finite numbers with a positive sum, one "
                    "per event"
                )
        out.append(w)
    return out[0], out[1]


def _effective(w: np.ndarray | None, n: int) -> float:
    return float(n) if w is None else float(w.sum() ** 2 / (w**2).sum())


def _cdf_gap(a: np.ndarray, b: np.ndarray, weights: Weights) -> tuple[np.ndarray, np.ndarray]:
    r"""The difference F_a - F_b of the (weighted) empirical distributions of the rows of
    `a` `(K, N)` and `b` `(K, M)` after each value of the merged sorted rows `(K, N + M)`,
    and those values."""
    wa, wb = (
        np.full(n, 1 / n) if w is None else w / w.sum()
        for w, n in zip(weights, (a.shape[1], b.shape[1]), strict=True)
    )
    merged = np.concatenate([a, b], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")
    steps = np.concatenate([wa, -wb])[order]
    return np.cumsum(steps, axis=1), np.take_along_axis(merged, order, axis=1)


def ks_test(
    x: np.ndarray,
    reference: np.ndarray,
    subsamples: int = 10,
    seed: int = 0,
    weights: Weights = (None, None),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Two-sample Kolmogorov-Smirnov test per observable (`scipy.stats.ks_2samp`),
    averaged over `subsamples` disjoint splits of both samples, as in seeds 003/004.
    Weighted, the statistic is the largest gap between the weighted empirical
    distributions and the p-value the asymptotic Kolmogorov distribution's at the
    effective numbers of events (as ROOT's `TH1::KolmogorovTest` does with weights).

    Returns the mean KS statistic `(F,)`, the mean p-value `(F,)` and its standard error
    over the splits `(F,)`. Null values: mean p-value 0.5 (p is uniform for equal
    distributions), statistic ~ 0.87 sqrt((n + m) / (n m)) for splits of n and m events.
    """
    x, reference = _arrays(x, reference)
    wx, wr = _weights(weights, x, reference)
    rng = np.random.default_rng(seed)
    orders = rng.permutation(len(x)), rng.permutation(len(reference))
    xs, rs = (np.array_split(order, subsamples) for order in orders)
    nx, nr = len(xs[-1]), len(rs[-1])
    a, b = np.stack([x[i[:nx]] for i in xs]), np.stack([reference[i[:nr]] for i in rs])
    if wx is None and wr is None:
        result = stats.ks_2samp(a, b, axis=1)
        statistic, pvalue = result.statistic, result.pvalue
    else:
        statistic, pvalue = np.empty((subsamples, x.shape[1])), np.empty((subsamples, x.shape[1]))
        for k, (i, j) in enumerate(zip(xs, rs, strict=True)):
            w = (None if wx is None else wx[i[:nx]], None if wr is None else wr[j[:nr]])
            if any(v is not None and not v.sum() > 0 for v in w):
                raise InputError(
                    f"a KS split of {nr} events has a weight sum <= 0 (negative weights): "
                    "give more events or fewer subsamples"
                )
            gap, values = _cdf_gap(a[k].T, b[k].T, w)
            # the gap between distinct values only: within a run of ties it is partial
            last = np.ones_like(values, dtype=bool)
            last[:, :-1] = values[:, 1:] != values[:, :-1]
            statistic[k] = np.where(last, np.abs(gap), 0.0).max(axis=1)
            na, nb = _effective(w[0], nx), _effective(w[1], nr)
            pvalue[k] = stats.kstwobign.sf(statistic[k] * np.sqrt(na * nb / (na + nb)))
    error = pvalue.std(0, ddof=1) / np.sqrt(subsamples) if subsamples > 1 else np.nan
    return statistic.mean(0), pvalue.mean(0), error


def _moments(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    r"""The (weighted) mean `(F,)` and covariance `(F, F)` of a sample `(N, F)`."""
    w = np.full(len(x), 1 / len(x)) if w is None else w / w.sum()
    mean = w @ x
    centred = x - mean
    return mean, (centred * w[:, None]).T @ centred


def _standardize(
    x: np.ndarray, reference: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    mean, cov = _moments(reference, w)
    std = np.sqrt(np.clip(np.diag(cov), 0, None))
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std, (reference - mean) / std


def wasserstein_1d(a: np.ndarray, b: np.ndarray, weights: Weights = (None, None)) -> np.ndarray:
    r"""1-Wasserstein distance between the rows of `a` `(K, N)` and `b` `(K, M)`: the
    integral of |F_a - F_b| over the merged sorted values, the algorithm of
    `scipy.stats.wasserstein_distance` applied to all `K` rows at once (with event
    weights `(N,)`, `(M,)` where given, the same for every row). Returns `(K,)`."""
    gap, values = _cdf_gap(a, b, weights)
    return (np.abs(gap[:, :-1]) * np.diff(values, axis=1)).sum(1)


def sliced_wasserstein(
    x: np.ndarray,
    reference: np.ndarray,
    directions: int = 100,
    seed: int = 0,
    weights: Weights = (None, None),
) -> Metric:
    r"""Sliced 1-Wasserstein distance (seed 003): both samples are standardized with the
    reference's mean and std per observable, projected on `directions` random unit
    vectors (uniform on the sphere), and the 1D distances (`wasserstein_1d`) averaged.
    Returns the mean and its standard error over the directions, in reference standard
    deviations (with one observable every direction is +-1: the spread is 0). Null
    value: ~ 1/sqrt(N) (0 in the limit of infinite samples)."""
    x, reference = _arrays(x, reference)
    weights = _weights(weights, x, reference)
    x, reference = _standardize(x, reference, weights[1])
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(directions, x.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    chunks = np.array_split(u, -(-directions // 16))  # 16 directions at a time
    w = np.concatenate([wasserstein_1d(d @ x.T, d @ reference.T, weights) for d in chunks])
    spread = w.std(ddof=1) / np.sqrt(directions) if directions > 1 and x.shape[1] > 1 else 0.0
    return Metric(float(w.mean()), float(spread))


def correlation_distance(
    x: np.ndarray, reference: np.ndarray, weights: Weights = (None, None)
) -> float:
    r"""Frobenius norm of the difference of the two samples' (weighted) Pearson
    correlation matrices (seed 004); 0 for one observable. Null value: ~ F / sqrt(N)."""
    x, reference = _arrays(x, reference)
    weights = _weights(weights, x, reference)
    if x.shape[1] == 1:
        return 0.0
    corr = []
    for sample, w in zip((x, reference), weights, strict=True):
        cov = _moments(sample, w)[1]
        std = np.sqrt(np.clip(np.diag(cov), 1e-300, None))  # negative weights: not below 0
        corr.append(cov / np.outer(std, std))
    return float(np.linalg.norm(corr[0] - corr[1]))


def hpdi(x: np.ndarray, level: float, weights: np.ndarray | None = None) -> np.ndarray:
    r"""Highest-density (shortest) interval holding a fraction `level` of the sample (of
    its weight, with non-negative event `weights` `(N,)`), per observable: `(F, 2)` low
    and high edges, from the sorted sample."""
    x = np.asarray(x, dtype=np.float64)
    if not 0 < level <= 1:
        raise InputError(f"level must lie in (0, 1], got {level}")
    if weights is not None and (np.shape(weights) != (len(x),) or (np.asarray(weights) < 0).any()):
        raise InputError(f"hpdi takes {len(x)} weights >= 0, one per event")
    out = []
    for column in x.T:
        order = np.argsort(column, kind="stable")
        values = column[order]
        w = np.ones(len(values)) if weights is None else np.asarray(weights)[order]
        cumulative = np.concatenate([[0.0], np.cumsum(w)])
        # the interval from event i holds events i..j-1: the first j whose weight reaches
        ends = np.searchsorted(cumulative, cumulative[:-1] + level * cumulative[-1] * (1 - 1e-12))
        inside = ends <= len(values)
        starts = np.flatnonzero(inside)
        widths = values[ends[inside] - 1] - values[starts]
        k = starts[widths.argmin()]
        out.append([values[k], values[ends[k] - 1]])
    return np.array(out)


def hpdi_error(
    x: np.ndarray,
    reference: np.ndarray,
    levels: Sequence[float] = HPDI_LEVELS,
    weights: Weights = (None, None),
) -> np.ndarray:
    r"""Relative HPDI-width error (seeds 003/004): |w_x - w_ref| / w_ref of the shortest
    intervals at each level, shape `(len(levels), F)`. Null value: a few times
    1/sqrt(N), larger at 99.7% where few events set the edges. NaN where a sample has
    negative weights (its cumulative distribution is not monotone: no shortest
    interval)."""
    x, reference = _arrays(x, reference)
    weights = _weights(weights, x, reference)
    if any(w is not None and (w < 0).any() for w in weights):
        return np.full((len(levels), x.shape[1]), np.nan)
    out = []
    for level in levels:
        wx, wr = (
            np.diff(hpdi(a, level, w), axis=1)[:, 0]
            for a, w in zip((x, reference), weights, strict=True)
        )
        out.append(np.abs(wx - wr) / wr)
    return np.array(out)


def auc(truth: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float:
    r"""The ROC AUC of `score` `(N,)` for the labels `truth` `(N,)` (1 and 0), with event
    `weights` `(N,)` (negative ones too): the weighted probability that a class-1 event
    scores above a class-0 event, ties counting half (the Mann-Whitney statistic).

    Example:
        >>> auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.4, 0.1]))
        0.875
    """
    w = np.ones(len(score)) if weights is None else np.asarray(weights, dtype=np.float64)
    values, index = np.unique(score, return_inverse=True)
    positive = np.bincount(index, w * (truth == 1), len(values))
    negative = np.bincount(index, w * (truth == 0), len(values))
    below = np.cumsum(negative) - negative  # class-0 weight at lower scores
    return float(positive @ (below + negative / 2) / (positive.sum() * negative.sum()))


def classifier_auc(
    x: np.ndarray,
    reference: np.ndarray,
    seed: int = 0,
    max_events: int = 200_000,
    weights: Weights = (None, None),
) -> Metric:
    r"""Classifier two-sample test: gradient-boosted trees (scikit-learn's
    `HistGradientBoostingClassifier`, trained with the event weights where given) learn
    to tell `x` from `reference` on half of each (at most `max_events` per sample) and
    are scored on the other half (`auc`, weighted). Returns the held-out ROC AUC and its
    standard error (Hanley & McNeil 1982, at the effective number of test events). Null
    value 0.5: no classifier can tell samples of one distribution apart."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, reference = _arrays(x, reference)
    weights = _weights(weights, x, reference)
    rng = np.random.default_rng(seed)
    n = min(len(x), len(reference), max_events)
    rows = rng.permutation(len(x))[:n], rng.permutation(len(reference))[:n]
    x, reference = x[rows[0]], reference[rows[1]]
    wx, wr = (np.ones(n) if w is None else w[r] for w, r in zip(weights, rows, strict=True))
    half = n // 2
    features = np.concatenate([x[:half], reference[:half]])
    labels = np.r_[np.ones(half), np.zeros(half)]
    test = np.concatenate([x[half:], reference[half:]])
    truth = np.r_[np.ones(n - half), np.zeros(n - half)]
    clf = HistGradientBoostingClassifier(random_state=seed, early_stopping=True)
    if not (wx[:half].sum() > 0 and wr[:half].sum() > 0):
        raise InputError("half of a weighted sample has a weight sum <= 0: give more events")
    # the classes weigh the same whatever the samples' total weights
    fit_weights = np.concatenate([wx[:half] / wx[:half].sum(), wr[:half] / wr[:half].sum()])
    clf.fit(features, labels, sample_weight=fit_weights * len(labels))
    test_weights = np.concatenate([wx[half:], wr[half:]])
    value = auc(truth, clf.predict_proba(test)[:, 1], test_weights)
    m = min(_effective(wx[half:], n - half), _effective(wr[half:], n - half))
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    var = (value * (1 - value) + (m - 1) * (q1 - value**2) + (m - 1) * (q2 - value**2)) / m**2
    return Metric(value, float(np.sqrt(max(var, 0.0))))


def _metrics(
    x: np.ndarray,
    reference: np.ndarray,
    names: Sequence[str],
    seed: int,
    classifier: bool,
    weights: Weights,
) -> list[tuple[str, str, float, float]]:
    rows = []
    stat, p, p_spread = ks_test(x, reference, seed=seed, weights=weights)
    for name, s, pv, ps in zip(names, stat, p, p_spread, strict=True):
        rows += [("ks_statistic", name, s, np.nan), ("ks_pvalue", name, pv, ps)]
    rows += [
        ("ks_pvalue_mean", "all", p.mean(), np.sqrt((p_spread**2).sum()) / len(p)),
        ("ks_pvalue_median", "all", np.median(p), np.nan),
    ]
    sw = sliced_wasserstein(x, reference, seed=seed, weights=weights)
    rows.append(("sliced_wasserstein", "all", sw.value, sw.spread))
    if x.shape[1] > 1:
        distance = correlation_distance(x, reference, weights)
        rows.append(("correlation_distance", "all", distance, np.nan))
    errors = hpdi_error(x, reference, weights=weights)
    for level, row in zip(HPDI_LEVELS, errors, strict=True):
        rows += [
            (f"hpdi_error_{level:g}", name, e, np.nan) for name, e in zip(names, row, strict=True)
        ]
    if classifier:
        value = classifier_auc(x, reference, seed=seed, weights=weights)
        rows.append(("classifier_auc", "all", value.value, value.spread))
    return rows


def compare(
    x: np.ndarray,
    reference: np.ndarray,
    reference_2: np.ndarray,
    names: Sequence[str],
    seed: int = 0,
    classifier: bool = True,
    weights: Weights = (None, None),
) -> pd.DataFrame:
    r"""Every metric for `x` against `reference`, and for an independent second sample
    `reference_2` of the reference distribution against `reference` (the noise floor).
    Give `x` and `reference_2` the same size so both rows share their noise. `weights`:
    the event weights of the two reference samples (`(N,)`, `(M,)`), where they are
    weighted; the model's samples are not.

    Returns a table with columns `metric`, `observable` (`"all"` for the combined ones),
    `value`, `spread` and `floor`, `floor_spread`.
    """
    model = _metrics(x, reference, names, seed, classifier, (None, weights[0]))
    floor = _metrics(reference_2, reference, names, seed, classifier, weights[::-1])
    table = pd.DataFrame(model, columns=["metric", "observable", "value", "spread"])
    table["floor"] = [r[2] for r in floor]
    table["floor_spread"] = [r[3] for r in floor]
    return table
