r"""Two-sample metrics that compare a model's samples with a reference sample.

Every metric takes a sample `x` `(N, F)` (the model's) and a `reference` `(M, F)`, both
in observable units, and returns numbers whose value for two samples of one
distribution (the *null* value) is stated in its docstring; `compare` also computes
each on two independent reference samples, the noise floor a model is read against.
"""

from __future__ import annotations

__all__ = [
    "Metric",
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


def ks_test(
    x: np.ndarray, reference: np.ndarray, subsamples: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Two-sample Kolmogorov-Smirnov test per observable (`scipy.stats.ks_2samp`),
    averaged over `subsamples` disjoint splits of both samples, as in seeds 003/004.

    Returns the mean KS statistic `(F,)`, the mean p-value `(F,)` and its standard error
    over the splits `(F,)`. Null values: mean p-value 0.5 (p is uniform for equal
    distributions), statistic ~ 0.87 sqrt((n + m) / (n m)) for splits of n and m events.
    """
    x, reference = _arrays(x, reference)
    rng = np.random.default_rng(seed)
    xs = np.array_split(rng.permutation(x), subsamples)
    rs = np.array_split(rng.permutation(reference), subsamples)
    result = stats.ks_2samp(
        np.stack([a[: len(xs[-1])] for a in xs]), np.stack([b[: len(rs[-1])] for b in rs]), axis=1
    )
    error = result.pvalue.std(0, ddof=1) / np.sqrt(subsamples) if subsamples > 1 else np.nan
    return result.statistic.mean(0), result.pvalue.mean(0), error


def _standardize(x: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = reference.mean(0), reference.std(0)
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std, (reference - mean) / std


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""1-Wasserstein distance between the rows of `a` `(K, N)` and `b` `(K, M)`: the
    integral of |F_a - F_b| over the merged sorted values, the algorithm of
    `scipy.stats.wasserstein_distance` applied to all `K` rows at once. Returns `(K,)`."""
    merged = np.concatenate([a, b], axis=1)
    order = np.argsort(merged, axis=1)
    values = np.take_along_axis(merged, order, axis=1)
    from_a = order < a.shape[1]
    cdf_gap = np.cumsum(from_a, axis=1) / a.shape[1] - np.cumsum(~from_a, axis=1) / b.shape[1]
    return (np.abs(cdf_gap[:, :-1]) * np.diff(values, axis=1)).sum(1)


def sliced_wasserstein(
    x: np.ndarray, reference: np.ndarray, directions: int = 100, seed: int = 0
) -> Metric:
    r"""Sliced 1-Wasserstein distance (seed 003): both samples are standardized with the
    reference's mean and std per observable, projected on `directions` random unit
    vectors (uniform on the sphere), and the 1D distances (`wasserstein_1d`) averaged.
    Returns the mean and its standard error over the directions, in reference standard
    deviations (with one observable every direction is +-1: the spread is 0). Null
    value: ~ 1/sqrt(N) (0 in the limit of infinite samples)."""
    x, reference = _standardize(*_arrays(x, reference))
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(directions, x.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    chunks = np.array_split(u, -(-directions // 16))  # 16 directions at a time
    w = np.concatenate([wasserstein_1d(d @ x.T, d @ reference.T) for d in chunks])
    spread = w.std(ddof=1) / np.sqrt(directions) if directions > 1 and x.shape[1] > 1 else 0.0
    return Metric(float(w.mean()), float(spread))


def correlation_distance(x: np.ndarray, reference: np.ndarray) -> float:
    r"""Frobenius norm of the difference of the two samples' Pearson correlation
    matrices (seed 004); 0 for one observable. Null value: ~ F / sqrt(N)."""
    x, reference = _arrays(x, reference)
    if x.shape[1] == 1:
        return 0.0
    return float(np.linalg.norm(np.corrcoef(x.T) - np.corrcoef(reference.T)))


def hpdi(x: np.ndarray, level: float) -> np.ndarray:
    r"""Highest-density (shortest) interval holding a fraction `level` of the sample,
    per observable: `(F, 2)` low and high edges, from the sorted sample."""
    x = np.sort(np.asarray(x, dtype=np.float64), axis=0)
    k = int(np.ceil(level * len(x)))
    if not 0 < k <= len(x):
        raise InputError(f"level must lie in (0, 1], got {level}")
    widths = x[k - 1 :] - x[: len(x) - k + 1]
    start = widths.argmin(axis=0)
    cols = np.arange(x.shape[1])
    return np.stack([x[start, cols], x[start + k - 1, cols]], axis=1)


def hpdi_error(
    x: np.ndarray, reference: np.ndarray, levels: Sequence[float] = HPDI_LEVELS
) -> np.ndarray:
    r"""Relative HPDI-width error (seeds 003/004): |w_x - w_ref| / w_ref of the shortest
    intervals at each level, shape `(len(levels), F)`. Null value: a few times
    1/sqrt(N), larger at 99.7% where few events set the edges."""
    x, reference = _arrays(x, reference)
    out = []
    for level in levels:
        wx, wr = (np.diff(hpdi(a, level), axis=1)[:, 0] for a in (x, reference))
        out.append(np.abs(wx - wr) / wr)
    return np.array(out)


def classifier_auc(
    x: np.ndarray, reference: np.ndarray, seed: int = 0, max_events: int = 200_000
) -> Metric:
    r"""Classifier two-sample test: gradient-boosted trees (scikit-learn's
    `HistGradientBoostingClassifier`) learn to tell `x` from `reference` on half of
    each (at most `max_events` per sample) and are scored on the other half. Returns the
    held-out ROC AUC and its standard error (Hanley & McNeil 1982). Null value 0.5: no
    classifier can tell samples of one distribution apart."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x, reference = _arrays(x, reference)
    rng = np.random.default_rng(seed)
    n = min(len(x), len(reference), max_events)
    x, reference = x[rng.permutation(len(x))[:n]], reference[rng.permutation(len(reference))[:n]]
    half = n // 2
    features = np.concatenate([x[:half], reference[:half]])
    labels = np.r_[np.ones(half), np.zeros(half)]
    test = np.concatenate([x[half:], reference[half:]])
    truth = np.r_[np.ones(n - half), np.zeros(n - half)]
    clf = HistGradientBoostingClassifier(random_state=seed, early_stopping=True)
    clf.fit(features, labels)
    auc = float(roc_auc_score(truth, clf.predict_proba(test)[:, 1]))
    m = n - half
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (m - 1) * (q1 - auc**2) + (m - 1) * (q2 - auc**2)) / m**2
    return Metric(auc, float(np.sqrt(max(var, 0.0))))


def _metrics(
    x: np.ndarray, reference: np.ndarray, names: Sequence[str], seed: int, classifier: bool
) -> list[tuple[str, str, float, float]]:
    rows = []
    stat, p, p_spread = ks_test(x, reference, seed=seed)
    for name, s, pv, ps in zip(names, stat, p, p_spread, strict=True):
        rows += [("ks_statistic", name, s, np.nan), ("ks_pvalue", name, pv, ps)]
    rows += [
        ("ks_pvalue_mean", "all", p.mean(), np.sqrt((p_spread**2).sum()) / len(p)),
        ("ks_pvalue_median", "all", np.median(p), np.nan),
    ]
    sw = sliced_wasserstein(x, reference, seed=seed)
    rows.append(("sliced_wasserstein", "all", sw.value, sw.spread))
    if x.shape[1] > 1:
        rows.append(("correlation_distance", "all", correlation_distance(x, reference), np.nan))
    for level, errors in zip(HPDI_LEVELS, hpdi_error(x, reference), strict=True):
        rows += [
            (f"hpdi_error_{level:g}", name, e, np.nan)
            for name, e in zip(names, errors, strict=True)
        ]
    if classifier:
        auc = classifier_auc(x, reference, seed=seed)
        rows.append(("classifier_auc", "all", auc.value, auc.spread))
    return rows


def compare(
    x: np.ndarray,
    reference: np.ndarray,
    reference_2: np.ndarray,
    names: Sequence[str],
    seed: int = 0,
    classifier: bool = True,
) -> pd.DataFrame:
    r"""Every metric for `x` against `reference`, and for an independent second sample
    `reference_2` of the reference distribution against `reference` (the noise floor).
    Give `x` and `reference_2` the same size so both rows share their noise.

    Returns a table with columns `metric`, `observable` (`"all"` for the combined ones),
    `value`, `spread` and `floor`, `floor_spread`.
    """
    model = _metrics(x, reference, names, seed, classifier)
    floor = _metrics(reference_2, reference, names, seed, classifier)
    table = pd.DataFrame(model, columns=["metric", "observable", "value", "spread"])
    table["floor"] = [r[2] for r in floor]
    table["floor_spread"] = [r[3] for r in floor]
    return table
