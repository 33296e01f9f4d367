"""ingest.judges.stats on planted data with known answers, including a chance-level null case."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from actstore.errors import InputError
from ingest.judges import stats


def _brute_auc(score, gold) -> float:
    pos = [s for s, g in zip(score, gold) if g]
    neg = [s for s, g in zip(score, gold) if not g]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_kappa_precision_recall_by_hand() -> None:
    # tp=3, fp=1, fn=2, tn=4 (n=10): po=0.7, pe=(4*5 + 6*5)/100=0.5, kappa=0.4
    gold = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    pred = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    c = stats.confusion(np.array(pred), np.array(gold))[0]
    assert c.tolist() == [3, 1, 2, 4]
    assert stats.kappa_from(c) == pytest.approx(0.4)
    assert stats.precision_from(c) == pytest.approx(0.75) and stats.recall_from(c) == pytest.approx(0.6)
    assert stats.cohen_kappa(gold, gold) == pytest.approx(1.0)
    assert stats.cohen_kappa(gold, [1 - g for g in gold]) == pytest.approx(-1.0)
    assert np.isnan(stats.cohen_kappa([1, 1], [1, 1]))  # chance agreement 1: undefined


def test_auc_matches_pairwise_count_with_ties_and_weights() -> None:
    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 60).astype(float)  # many ties
    gold = rng.random(60) < 0.3
    assert stats.roc_auc(score, gold)[0] == pytest.approx(_brute_auc(score, gold))
    # Integer weights are the same as repeating pairs.
    w = rng.integers(0, 3, 60)
    rep = np.repeat(np.arange(60), w)
    assert stats.roc_auc(score, gold, w[None])[0] == pytest.approx(_brute_auc(score[rep], gold[rep]))
    assert stats.roc_auc([1.0, 2.0], [False, True])[0] == 1.0
    assert np.isnan(stats.roc_auc([1.0, 2.0], [True, True])[0])


def test_bootstrap_weights_resample_whole_clusters() -> None:
    clusters = np.repeat(np.arange(20), 3)
    w = stats.bootstrap_weights(clusters, 50, seed=3)
    assert w.shape == (50, 60) and (w.sum(1) == 60).all()
    assert (w.reshape(50, 20, 3) == w.reshape(50, 20, 3)[:, :, :1]).all()  # members share their weight


def test_planted_signal_is_found_and_null_is_chance() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    gold = rng.random(n) < 0.2
    clusters = np.arange(n) // 10
    good = gold + rng.normal(0, 0.7, n)
    m = stats.evaluate(gold, good > 0.5, good, clusters, n_boot=300)
    assert m.auc.lo > 0.75 and m.kappa.lo > 0.3 and m.n_pos == gold.sum()
    # Null: scores independent of gold. The intervals contain chance (0.5 AUC, 0 kappa).
    noise = rng.normal(0, 1, n)
    null = stats.evaluate(gold, noise > 0.8, noise, clusters, n_boot=300)
    assert null.auc.lo < 0.5 < null.auc.hi and null.kappa.lo < 0 < null.kappa.hi
    assert abs(null.auc.value - 0.5) < 0.05


def test_abstentions_are_counted_and_left_out() -> None:
    gold = [True, False, True, False]
    m = stats.evaluate(gold, [True, False, None, float("nan")], [0.9, 0.1, None, 0.5], n_boot=0)
    assert m.abstained == 2 and m.abstention_rate == 0.5
    assert m.kappa.value == pytest.approx(1.0)  # the two answered pairs are right
    assert m.auc.value == pytest.approx(1.0)  # 0.9 > 0.1 and 0.5 (the NaN score is left out)
    with pytest.raises(InputError, match="verdicts for 4 gold"):
        stats.evaluate(gold, [True], None)


def test_threshold_choice_and_crossfit() -> None:
    rng = np.random.default_rng(2)
    gold = rng.random(1000) < 0.3
    score = gold * 1.0 + rng.normal(0, 0.3, 1000)
    t = stats.best_threshold(score, gold)
    assert 0.2 < t < 0.8
    folds = stats.group_folds(np.arange(1000) // 5, 5)
    assert all(len(set(folds[i:i + 5])) == 1 for i in range(0, 1000, 5))  # groups stay whole
    pred, used = stats.crossfit_predictions(score, gold, folds)
    for f in range(5):  # each fold gets the threshold chosen without it
        assert (used[folds == f] == stats.best_threshold(score[folds != f], gold[folds != f])).all()
    assert stats.cohen_kappa(pred > 0.5, gold) > 0.7
    with pytest.raises(InputError, match="folds"):
        stats.group_folds([1, 1, 2], 3)
