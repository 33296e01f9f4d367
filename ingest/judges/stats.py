"""Agreement statistics for judges against gold labels, with bootstrap intervals (numpy only).

Pure functions over arrays. Every metric takes optional per-pair *weights*, so that a bootstrap
replicate is just a weight vector (how many times each pair was drawn) and the B replicates run as one
``[B, n]`` matrix product instead of B Python loops.

The bootstrap resamples *clusters* (by default responses): the ten (response, value) pairs of one
response share its text and its judge call, so they are not independent, and resampling pairs would
give intervals that are too narrow. Intervals are percentile intervals.

Abstentions (``pred`` NaN: the judge's output could not be read) are left out of kappa, precision and
recall and counted; a NaN ``score`` is left out of the ROC AUC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from actstore.errors import InputError


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with a (1 - alpha) bootstrap percentile interval; NaN where undefined."""

    value: float
    lo: float
    hi: float

    def __str__(self) -> str:
        if np.isnan(self.value):
            return "n/a"
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


@dataclass(frozen=True, slots=True)
class Metrics:
    n: int  # pairs with a gold label
    n_pos: int  # gold positives
    n_pred_pos: int  # judged positive (non-abstained)
    abstained: int  # pairs the judge abstained on
    kappa: Estimate
    precision: Estimate
    recall: Estimate
    auc: Estimate

    @property
    def abstention_rate(self) -> float:
        return self.abstained / self.n if self.n else float("nan")


def _as_weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones((1, n)) if w is None else np.atleast_2d(np.asarray(w, np.float64))


def confusion(pred: np.ndarray, gold: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted ``[B, 4]`` counts (tp, fp, fn, tn) for boolean ``pred`` and ``gold`` of length n,
    under weight rows ``w`` ``[B, n]`` (None: one row of ones)."""
    p, g = np.asarray(pred, bool), np.asarray(gold, bool)
    cols = np.stack([p & g, p & ~g, ~p & g, ~p & ~g], axis=1).astype(np.float64)  # [n, 4]
    return _as_weights(w, len(p)) @ cols


def kappa_from(c: np.ndarray) -> np.ndarray:
    """Cohen's kappa from ``[..., 4]`` confusion counts; NaN where chance agreement is 1."""
    tp, fp, fn, tn = np.moveaxis(np.asarray(c, np.float64), -1, 0)
    n = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        po = (tp + tn) / n
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def precision_from(c: np.ndarray) -> np.ndarray:
    tp, fp = np.asarray(c, np.float64)[..., 0], np.asarray(c, np.float64)[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fp > 0, tp / (tp + fp), np.nan)


def recall_from(c: np.ndarray) -> np.ndarray:
    tp, fn = np.asarray(c, np.float64)[..., 0], np.asarray(c, np.float64)[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp + fn > 0, tp / (tp + fn), np.nan)


def cohen_kappa(pred: Sequence[bool], gold: Sequence[bool]) -> float:
    return float(kappa_from(confusion(np.asarray(pred), np.asarray(gold)))[0])


def roc_auc(score: np.ndarray, gold: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted ROC AUC, ``[B]``: the probability that a random positive scores above a random
    negative, ties counting one half (the Mann-Whitney statistic). NaN without both classes."""
    s = np.asarray(score, np.float64)
    g = np.asarray(gold, bool)
    W = _as_weights(w, len(s))
    order = np.argsort(s, kind="stable")
    s, g, W = s[order], g[order], W[:, order]
    # Tie groups: pairs with equal scores share a group; a positive beats the negatives of lower
    # groups and ties with half of those in its own.
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    group = np.cumsum(np.r_[0, (np.diff(s) != 0).astype(int)])
    wneg = W * ~g
    wpos = W * g
    neg_by_group = np.add.reduceat(wneg, starts, axis=1) if len(s) else np.zeros((W.shape[0], 0))
    neg_below = np.cumsum(neg_by_group, axis=1) - neg_by_group  # negatives in lower groups
    beaten = neg_below[:, group] + 0.5 * neg_by_group[:, group]
    num = (wpos * beaten).sum(1)
    den = wpos.sum(1) * wneg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _ci(point: float, reps: np.ndarray, alpha: float) -> Estimate:
    reps = reps[~np.isnan(reps)]
    if np.isnan(point) or not len(reps):
        return Estimate(float(point), float("nan"), float("nan"))
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(point), float(lo), float(hi))


def bootstrap_weights(clusters: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """``[n_boot, n]`` weights: per replicate, how many times each element's cluster was drawn when
    drawing as many clusters as there are, with replacement."""
    _, idx = np.unique(np.asarray(clusters), return_inverse=True)
    k = int(idx.max()) + 1 if len(idx) else 0
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot) if k else np.zeros((n_boot, 0))
    return draws[:, idx].astype(np.float64)


def evaluate(gold: ArrayLike, pred: Sequence[float | bool | None] | np.ndarray,
             score: Sequence[float | None] | np.ndarray | None = None, clusters: ArrayLike | None = None, n_boot: int = 1000, alpha: float = 0.05,
             seed: int = 0) -> Metrics:
    """Kappa, precision and recall of ``pred`` and ROC AUC of ``score`` against ``gold``.

    ``pred``: True/False, or None/NaN for an abstention. ``score``: higher = more expressed (None/NaN
    = no score). ``clusters``: the unit the bootstrap resamples (e.g. response ids; default each pair).
    """
    g = np.asarray(gold, bool)
    n = len(g)
    p = np.array([np.nan if x is None else float(x) for x in pred], np.float64)
    if len(p) != n:
        raise InputError(f"{len(p)} verdicts for {n} gold labels; pass one per pair")
    s = (np.array([np.nan if x is None else float(x) for x in score], np.float64) if score is not None
         else np.full(n, np.nan))
    if len(s) != n:
        raise InputError(f"{len(s)} scores for {n} gold labels; pass one per pair")
    if n_boot < 0 or not 0 < alpha < 1:
        raise InputError(f"n_boot={n_boot}, alpha={alpha}: need n_boot >= 0 and 0 < alpha < 1")
    cl = np.asarray(clusters) if clusters is not None else np.arange(n)
    W = bootstrap_weights(cl, n_boot, seed) if n_boot else np.zeros((0, n))
    ok = ~np.isnan(p)
    c_all = confusion(p[ok] > 0.5, g[ok], np.vstack([np.ones(n), W])[:, ok])
    ks, ps, rs = kappa_from(c_all), precision_from(c_all), recall_from(c_all)
    has = ~np.isnan(s)
    aucs = roc_auc(s[has], g[has], np.vstack([np.ones(n), W])[:, has]) if has.any() else np.full(n_boot + 1, np.nan)
    return Metrics(
        n=n, n_pos=int(g.sum()), n_pred_pos=int((p[ok] > 0.5).sum()), abstained=int((~ok).sum()),
        kappa=_ci(ks[0], ks[1:], alpha), precision=_ci(ps[0], ps[1:], alpha),
        recall=_ci(rs[0], rs[1:], alpha), auc=_ci(aucs[0], aucs[1:], alpha),
    )


def within_fold_aucs(score: ArrayLike, gold: ArrayLike, values: ArrayLike, folds: ArrayLike,
                     clusters: ArrayLike | None = None, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> dict[str, Estimate]:
    """Each value's ROC AUC counting only (positive, negative) comparisons within one fold, and
    ``'mean'``, their mean over values; bootstrap intervals (``clusters`` resampled, as in
    :func:`evaluate`).

    What a judge knows *about a value* beyond its base rate: a pooled AUC also rewards ranking frequent
    values above rare ones (a text-free prior of tag rates reaches 0.65 on Value Portrait), and a
    per-value AUC over out-of-fold scores mixes the folds' intercepts (a constant prior then scores
    below 0.5). Within folds, a text-free prior scores exactly 0.5. NaN scores are left out."""
    import warnings

    s = np.asarray(score, np.float64)
    g = np.asarray(gold, bool)
    v, f = np.asarray(values), np.asarray(folds)
    cl = np.asarray(clusters) if clusters is not None else np.arange(len(s))
    W = np.vstack([np.ones(len(s)), bootstrap_weights(cl, n_boot, seed) if n_boot else np.zeros((0, len(s)))])
    reps: dict[str, np.ndarray] = {}
    for value in dict.fromkeys(v.tolist()):
        num = np.zeros(W.shape[0])
        den = np.zeros(W.shape[0])
        for fold in np.unique(f):
            m = (v == value) & (f == fold) & ~np.isnan(s)
            d = (W[:, m] * g[m]).sum(1) * (W[:, m] * ~g[m]).sum(1)
            num += np.nan_to_num(roc_auc(s[m], g[m], W[:, m]) * d)
            den += d
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[str(value)] = np.where(den > 0, num / den, np.nan)
    out = {k: _ci(r[0], r[1:], alpha) for k, r in reps.items()}
    if reps:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate where no value has both classes
            mean = np.nanmean(np.stack(list(reps.values())), axis=0)
        out["mean"] = _ci(mean[0], mean[1:], alpha)
    else:
        out["mean"] = Estimate(float("nan"), float("nan"), float("nan"))
    return out


def best_threshold(score: np.ndarray, gold: np.ndarray, max_candidates: int = 200) -> float:
    """The threshold t (expressed = score >= t) that maximises Cohen's kappa on these pairs.

    Candidates are score quantiles; NaN scores are ignored. Fitted on gold labels: the kappa it
    reaches on the same pairs is optimistic; :func:`crossfit_predictions` gives an honest one."""
    s = np.asarray(score, np.float64)
    g = np.asarray(gold, bool)
    keep = ~np.isnan(s)
    s, g = s[keep], g[keep]
    if not len(s):
        raise InputError("no scores to choose a threshold from; the judge gave no scores")
    cands = np.unique(np.quantile(s, np.linspace(0, 1, max_candidates + 1), method="lower"))  # data values
    preds = s[None, :] >= cands[:, None]  # [C, n]
    g_f = g.astype(np.float64)
    tp = preds @ g_f
    fp = preds.sum(1) - tp
    fn = g_f.sum() - tp
    tn = len(s) - tp - fp - fn
    k = np.nan_to_num(kappa_from(np.stack([tp, fp, fn, tn], axis=1)), nan=-np.inf)
    return float(cands[int(np.argmax(k))])


def crossfit_predictions(score: np.ndarray, gold: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts from thresholds chosen out of fold: for each fold, the :func:`best_threshold` of the
    other folds is applied to it. Returns (pred as 0/1 with NaN where the score is NaN, per-pair
    threshold used)."""
    s = np.asarray(score, np.float64)
    g = np.asarray(gold, bool)
    f = np.asarray(folds)
    pred = np.full(len(s), np.nan)
    used = np.full(len(s), np.nan)
    for fold in np.unique(f):
        test = f == fold
        t = best_threshold(s[~test], g[~test])
        used[test] = t
        pred[test] = np.where(np.isnan(s[test]), np.nan, (s[test] >= t).astype(float))
    return pred, used


def group_folds(groups: ArrayLike, k: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) per element, whole groups per fold (e.g. all responses to one query),
    groups shuffled with ``seed`` and dealt round-robin."""
    uniq, idx = np.unique(np.asarray(groups), return_inverse=True)
    if k < 2 or k > len(uniq):
        raise InputError(f"{k} folds for {len(uniq)} groups; use 2 <= folds <= the number of groups")
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_group = np.empty(len(uniq), int)
    fold_of_group[perm] = np.arange(len(uniq)) % k
    return fold_of_group[idx]
