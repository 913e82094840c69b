import numpy as np
import pytest
from scipy import special, stats

from flowscan.validation.metrics import (
    auc,
    classifier_auc,
    compare,
    correlation_distance,
    hpdi,
    hpdi_error,
    ks_test,
    sliced_wasserstein,
    wasserstein_1d,
)


def gauss(n, dim=1, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, size=(n, dim))


def test_ks_matches_scipy_and_null():
    a, b = gauss(3000, 2, seed=1), gauss(4000, 2, shift=0.05, seed=2)
    statistic, _, _ = ks_test(a, b, subsamples=1)
    # one split keeps the first min(n, m) events of each permuted sample
    rng = np.random.default_rng(0)
    pa, pb = rng.permutation(a), rng.permutation(b)
    reference = [stats.ks_2samp(pa[:, j], pb[:, j]).statistic for j in range(2)]
    assert statistic == pytest.approx(reference, rel=1e-12)

    # equal distributions: p uniform, mean 0.5 within 3 standard errors
    _, p, error = ks_test(gauss(40_000, 3, seed=3), gauss(40_000, 3, seed=4), subsamples=40)
    assert np.all(np.abs(p - 0.5) < 3 * np.maximum(error, 0.29 / np.sqrt(40)))
    _, p, _ = ks_test(gauss(40_000, 1, shift=0.1, seed=5), gauss(40_000, 1, seed=6))
    assert p[0] < 1e-3


def test_wasserstein_1d_matches_scipy():
    a, b = gauss(700, 3, seed=1), gauss(500, 3, shift=0.3, scale=1.5, seed=2)
    reference = [stats.wasserstein_distance(a[:, j], b[:, j]) for j in range(3)]
    assert wasserstein_1d(a.T, b.T) == pytest.approx(reference, rel=1e-10)


def test_sliced_wasserstein_against_analytic_shift():
    # N(0, I) vs N(s, I) in 2D: W1 along unit u is |u . s|, and E|u . s| = |s| 2/pi
    s = np.array([0.3, 0.4])
    a, b = gauss(50_000, 2, seed=1) + s, gauss(50_000, 2, seed=2)
    sw = sliced_wasserstein(a, b, directions=200, seed=0)
    assert sw.value == pytest.approx(0.5 * 2 / np.pi, abs=4 * sw.spread + 0.01)
    # 1D: W1 between N(0, 1) and N(d, 1) is d (one direction, +-1)
    one = sliced_wasserstein(gauss(50_000, shift=0.2, seed=3), gauss(50_000, seed=4), 1)
    assert one.value == pytest.approx(0.2, abs=0.01)
    null = sliced_wasserstein(gauss(50_000, 2, seed=5), gauss(50_000, 2, seed=6))
    assert null.value < 0.02


def test_correlation_distance():
    rho = 0.6
    cov = [[1, rho], [rho, 1]]
    a = np.random.default_rng(0).multivariate_normal([0, 0], cov, size=200_000)
    assert correlation_distance(a, gauss(200_000, 2)) == pytest.approx(np.sqrt(2) * rho, abs=0.01)
    assert correlation_distance(gauss(200_000, 2, seed=1), gauss(200_000, 2, seed=2)) < 0.01


def test_hpdi_of_gaussian_and_width_error():
    x = gauss(400_000, 2)
    for level in (0.683, 0.954):
        edge = stats.norm.ppf(0.5 + level / 2)
        assert hpdi(x, level) == pytest.approx(np.array([[-edge, edge]] * 2), abs=0.02)
    errors = hpdi_error(gauss(400_000, 1, scale=1.1, seed=1), x[:, :1])
    assert errors[:, 0] == pytest.approx([0.1, 0.1, 0.1], abs=0.01)
    # a skewed sample's shortest interval is not the central one: exponential starts at 0
    e = np.random.default_rng(2).exponential(size=(400_000, 1))
    assert hpdi(e, 0.683)[0] == pytest.approx([0.0, -np.log(1 - 0.683)], abs=0.01)


def test_classifier_auc_null_and_optimal():
    null = classifier_auc(gauss(20_000, 2, seed=1), gauss(20_000, 2, seed=2))
    assert abs(null.value - 0.5) < 3 * null.spread
    # N(0, 1) vs N(d, 1): the Bayes-optimal AUC is Phi(d / sqrt 2)
    d = 0.5
    shifted = classifier_auc(gauss(20_000, shift=d, seed=3), gauss(20_000, seed=4))
    optimal = 0.5 * (1 + special.erf(d / 2))
    assert shifted.value == pytest.approx(optimal, abs=3 * shifted.spread + 0.005)


def test_compare_reads_model_against_noise_floor():
    ref, ref2 = gauss(20_000, 2, seed=1), gauss(20_000, 2, seed=2)
    table = compare(gauss(20_000, 2, shift=0.2, seed=3), ref, ref2, ["a", "b"])
    row = table.set_index("metric").loc["sliced_wasserstein"]
    assert row.value > 5 * row.floor
    auc = table.set_index("metric").loc["classifier_auc"]
    assert auc.value > 0.5 + 5 * auc.spread and abs(auc.floor - 0.5) < 3 * auc.floor_spread


def test_bad_samples_are_rejected():
    with pytest.raises(ValueError, match="same F"):
        sliced_wasserstein(gauss(10, 2), gauss(10, 3))
    with pytest.raises(ValueError, match="NaN"):
        ks_test(np.full((10, 1), np.nan), gauss(10))


def _negative_weighted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    r"""A sample whose weighted density is the unit normal, 20% of it weight -1: n
    normal events at +1, and n/4 more at +1 and n/4 at -1 from a wider normal."""
    rng = np.random.default_rng(seed)
    k = n // 4
    x = np.concatenate([rng.normal(size=n), rng.normal(0, 3, 2 * k)])[:, None]
    return x, np.r_[np.ones(n + k), -np.ones(k)]


def test_auc_is_sklearns_with_ties_and_weights():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 500)
    score = np.round(rng.normal(truth * 0.5, 1.0), 1)  # rounded: many ties
    w = rng.uniform(0.2, 3.0, 500)
    assert auc(truth, score) == pytest.approx(roc_auc_score(truth, score), rel=1e-12)
    assert auc(truth, score, w) == pytest.approx(
        roc_auc_score(truth, score, sample_weight=w), rel=1e-12
    )


def test_integer_weights_are_repeated_events():
    # an event of weight k is k copies of it: the KS statistic, the HPDI and the
    # 1-Wasserstein distance of the weighted sample are those of the copies (scipy's)
    rng = np.random.default_rng(1)
    x, ref = rng.normal(size=(300, 1)), rng.normal(0.2, 1.0, size=(400, 1))
    k = rng.integers(1, 4, 400)
    copies = np.repeat(ref, k, axis=0)
    statistic, _, _ = ks_test(x, ref, subsamples=1, weights=(None, k.astype(float)))
    expected = stats.ks_2samp(x[:, 0], copies[:, 0]).statistic  # one split: all events
    assert statistic[0] == pytest.approx(expected, rel=1e-12)
    w1 = wasserstein_1d(x.T, ref.T, (None, k.astype(float)))[0]
    assert w1 == pytest.approx(stats.wasserstein_distance(x[:, 0], copies[:, 0]), rel=1e-10)
    np.testing.assert_allclose(hpdi(ref, 0.683, k.astype(float)), hpdi(copies, 0.683))


def test_weighted_correlation_is_numpys():
    rng = np.random.default_rng(2)
    a = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 2000)
    b = rng.normal(size=(2000, 2))
    w = rng.uniform(0.1, 2.0, 2000)
    expected = np.linalg.norm(np.corrcoef(b.T) - np.cov(a.T, aweights=w) / np.outer(
        *[np.sqrt(np.diag(np.cov(a.T, aweights=w)))] * 2))  # fmt: skip
    assert correlation_distance(b, a, (None, w)) == pytest.approx(expected, rel=1e-10)


def test_negative_weights_describe_their_weighted_density():
    # the weighted sample is the unit normal: indistinguishable from unit-normal events
    # (the KS p-value near its null 0.5, the sliced distance at its 1/sqrt(N) floor),
    # and far from a normal of width 1.2, as the unweighted events would be
    ref, w = _negative_weighted(40_000, seed=3)
    same = gauss(40_000, seed=4)
    other = gauss(40_000, scale=1.2, seed=5)
    _, p_same, _ = ks_test(same, ref, 1, weights=(None, w))
    _, p_other, _ = ks_test(other, ref, 1, weights=(None, w))
    _, p_unweighted, _ = ks_test(same, ref, 1)
    assert p_same[0] > 0.1 and p_other[0] < 1e-6 and p_unweighted[0] < 1e-6
    assert sliced_wasserstein(same, ref, weights=(None, w)).value < 0.02
    assert np.isnan(hpdi_error(same, ref, weights=(None, w))).all()


def test_weighted_ks_of_tied_values_is_scipys():
    # a quantized observable: weights of 1 give scipy's statistic, ties and all
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 20, (2000, 1)), rng.integers(0, 21, (2000, 1))
    statistic, _, _ = ks_test(a, b, subsamples=1, weights=(np.ones(2000), np.ones(2000)))
    assert statistic[0] == pytest.approx(stats.ks_2samp(a[:, 0], b[:, 0]).statistic, rel=1e-12)
