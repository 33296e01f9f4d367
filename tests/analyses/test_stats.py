"""Each statistic of analyses.stats on planted data with a known answer, and on a null that must not come out significant."""

from __future__ import annotations

import numpy as np
import pytest

from actstore.errors import InputError
from analyses import stats as sx


def _sym(rng: np.random.Generator, v: int = 10) -> np.ndarray:
    m = rng.standard_normal((v, v))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    return m


def test_mantel_finds_shared_structure_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    truth = _sym(rng)
    related = truth + 0.3 * _sym(rng)
    res = sx.mantel(related, truth, n_perm=499, seed=1)
    assert res.r > 0.8 and res.p < 0.01 and res.n_pairs == 45
    nulls = [sx.mantel(_sym(rng), truth, n_perm=199, seed=k).p for k in range(20)]
    # independent matrices: p is uniform; 20 draws all below 0.05 is impossible in practice
    assert np.median(nulls) > 0.2
    assert sx.mantel(related, truth, n_perm=199, seed=1, method="spearman").p < 0.01
    with pytest.raises(InputError, match="square matrices"):
        sx.mantel(truth, truth[:5, :5])


def test_mantel_layers_corrects_the_choice_of_layer() -> None:
    rng = np.random.default_rng(2)
    target = _sym(rng)
    noise = np.stack([_sym(rng) for _ in range(12)])
    res = sx.mantel_layers(noise, target, n_perm=499, seed=0)
    # picking the best of 12 noise layers: uncorrected p can look small, corrected must not
    assert res.p_corrected[res.best] > 0.05
    assert np.all(res.p_corrected >= res.p - 1e-12)
    planted = noise.copy()
    planted[7] = target + 0.3 * _sym(rng)
    res = sx.mantel_layers(planted, target, n_perm=499, seed=0)
    assert res.best == 7 and res.p_corrected[7] < 0.01


def test_partial_mantel_separates_model_from_cooccurrence() -> None:
    rng = np.random.default_rng(3)
    cooc, own = _sym(rng), _sym(rng)
    human = cooc + own
    parrot = cooc + 0.2 * _sym(rng)  # the model only repeats what the labels' co-occurrence says
    pm = sx.partial_mantel(parrot, human, cooc, n_perm=499, seed=0)
    assert pm.r_ab > 0.5 and pm.p > 0.05  # high raw agreement, nothing beyond co-occurrence
    seer = own + 0.2 * _sym(rng)  # the model sees what co-occurrence does not
    pm = sx.partial_mantel(seer, human, cooc, n_perm=499, seed=0)
    assert pm.r > 0.5 and pm.p < 0.01
    x, y, z = rng.standard_normal((3, 500))
    assert np.corrcoef(x + z, y + z)[0, 1] > 0.4  # z makes x + z and y + z correlate ...
    assert abs(sx.partial_corr(x + z, y + z, z)) < 0.15  # ... and nothing is left once it is partialled out


def test_cooccurrence_matrix_recovers_planted_phi() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(4000) < 0.5
    b = np.where(rng.random(4000) < 0.8, a, ~a)  # agrees 80%: phi = 0.6
    c = rng.random(4000) < 0.5
    labels = np.stack([a, b, c], axis=1).astype(float)
    labels[:100, 2] = np.nan
    m = sx.cooccurrence_matrix(labels)
    assert abs(m[0, 1] - 0.6) < 0.05 and abs(m[0, 2]) < 0.05 and m[0, 0] == 1


def test_poisson_weights_are_chunk_independent_with_mean_and_variance_one() -> None:
    keys = np.arange(20_000)
    w = sx.poisson_weights(7, keys, 50)
    assert abs(w.mean() - 1) < 0.01 and abs(w.var() - 1) < 0.02
    np.testing.assert_array_equal(sx.poisson_weights(7, keys[5000:6000], 50), w[:, 5000:6000])
    assert not np.array_equal(sx.poisson_weights(8, keys[:100], 50), w[:, :100])
    m = sx.half_masks(7, keys, 4)
    assert abs(m.mean() - 0.5) < 0.01


def test_bootstrap_interval_covers_the_mean_with_the_right_width() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, 400)
    ci = sx.bootstrap_ci(x, np.mean, n_boot=400, seed=0)
    assert ci.lo < 3.0 < ci.hi
    assert abs((ci.hi - ci.lo) - 2 * 1.96 * 2.0 / 20) < 0.06


def test_split_half_reliability_signal_vs_noise() -> None:
    rng = np.random.default_rng(6)
    d, n = 64, 200
    direction = np.zeros(d)
    direction[0] = 1.0
    pos = rng.random(n) < 0.5
    x = rng.standard_normal((n, d)) + 2.0 * pos[:, None] * direction
    r, sb = sx.split_half(x, pos, n_splits=10, seed=0)
    assert sb > 0.8 and sb >= r
    r0, _ = sx.split_half(rng.standard_normal((n, d)), pos, n_splits=10, seed=0)
    assert abs(r0) < 0.2  # a vector of noise does not agree with itself
    few = np.zeros(n, bool)
    few[:3] = True
    r3, _ = sx.split_half(rng.standard_normal((n, d)) + 0.5 * few[:, None] * direction, few, n_splits=10, seed=0)
    assert r3 < 0.5  # three positives: visibly noise
    assert sx.spearman_brown(0.5) == pytest.approx(2 / 3)


def test_wilson_interval_known_values() -> None:
    lo, hi = sx.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = sx.wilson_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert np.isnan(sx.wilson_interval(0, 0)[0])
    iv = sx.rate_interval(0.9, 50)
    assert iv.lo < 0.9 < iv.hi and iv.n == 50 and iv.method == "wilson"


def test_subsample_repeat_removes_the_size_effect() -> None:
    rng = np.random.default_rng(8)

    def texts(n: int) -> list[list[int]]:
        return [list(rng.integers(0, 300, 10)) for _ in range(n)]

    def distinct(group: list[list[int]]) -> float:
        toks = [t for r in group for t in r]
        return len(set(toks)) / len(toks)

    small, big = texts(20), texts(200)  # one generator: equal diversity
    assert distinct(small) - distinct(big) > 0.2  # raw Distinct-1 favours the small group
    a = sx.subsample_repeat(small, 20, distinct, n_rep=10, seed=0)
    b = sx.subsample_repeat(big, 20, distinct, n_rep=30, seed=0)
    assert abs(a.estimate - b.estimate) < 0.05 and b.lo <= a.estimate <= b.hi + 0.05
    with pytest.raises(InputError, match="subsample size"):
        sx.subsample_indices(5, 6, 2)


def test_random_pairs_keep_norms_and_angle() -> None:
    a = np.array([3.0, 0, 0, 0, 0])
    b = np.array([1.0, 1.0, 0, 0, 0])
    x, y = sx.random_pairs_like(a, b, 50, seed=0)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 3.0)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.sqrt(2))
    np.testing.assert_allclose(np.sum(x * y, axis=1), a @ b, atol=1e-9)
    s = sx.null_summary(np.arange(100.0), 99.0)
    assert s["p"] == pytest.approx(2 / 101) and s["null_mean"] == pytest.approx(49.5)
