"""Which features should the embedding judge's head see? Measured against Value Portrait's human tags.

    python benchmarks/bench_judge_heads.py --gold ../shared/data/value-portrait --threads 2
    python benchmarks/bench_judge_heads.py --gold ../shared/data/value-portrait --nested   # + l2 by nested CV

The responses are encoded once with all-MiniLM-L6-v2 (the ``embed`` judge's encoder); every variant
is then a per-value logistic head (:class:`ingest.judges.embed.EmbeddingHead`, L2 100) on other
features, fitted on 4 of 5 folds and scored on the 5th, folds being whole queries (the split
``judge eval`` uses, ``--seed``). Features tried:

- ``embedding``: the response's embedding (``judge eval --method cv-head``);
- ``centred``: the embedding minus the mean embedding of the other responses to the same query
  (Value Portrait's tags say which of a query's five responses people holding a value endorse,
  so what differs between a query's responses might matter more than its topic);
- ``query+response``: the embedding of the query and the response together;
- ``embedding+prototypes``: the embedding and the ten zero-shot prototype scores;
- ``prototypes``: the ten zero-shot prototype scores only (``--head-features prototypes``);
- ``centred prototypes``, ``prototypes+centred prototypes``: the same, query-centred.

With ``--nested``, ``embedding``, ``centred`` and ``prototypes`` are also fitted with each value's
L2 penalty chosen from 1-10,000 by an inner 4-fold split of the training folds (log loss), never
looking at the held-out fold.

Reported per variant: pooled Cohen's kappa (thresholds chosen out of fold), pooled ROC AUC, and
the mean per-value ROC AUC within folds (:func:`ingest.judges.stats.within_fold_aucs`), each with
a 95% interval from bootstrap replicates over responses. The pooled AUC rewards ranking frequent
values above rare ones: the value prior (each value's tag rate in the training folds; no text)
reaches 0.65 that way, and scores exactly 0.5 per value. Picking the best of these variants on
the same folds is itself a choice made on the data: read small differences as noise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.judge_eval import value_portrait_gold
from ingest.judges.embed import EmbeddingHead, EmbeddingJudge, Encoder, zero_shot_scores
from ingest.judges.stats import crossfit_predictions, evaluate, group_folds, within_fold_aucs
from ingest.values import VALUE_SLUGS

L2_GRID = (1.0, 10.0, 100.0, 1000.0, 10000.0)


def query_centred(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row minus the mean of the other rows of its group (a group of one is left as it is)."""
    out = np.array(x, np.float64, copy=True)
    for g in np.unique(groups):
        m = groups == g
        k = int(m.sum())
        if k > 1:
            out[m] = x[m] - (x[m].sum(0) - x[m]) / (k - 1)
    return out


def nested_l2(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> list[float]:
    """Per value, the L2 penalty with the least held-out log loss over an inner 4-fold split by group."""
    inner = group_folds(groups, 4, seed + 1)
    loss = np.zeros((len(L2_GRID), y.shape[1]))
    for i, l2 in enumerate(L2_GRID):
        for f in range(4):
            tr, te = inner != f, inner == f
            p = np.clip(EmbeddingHead.fit(x[tr], y[tr], VALUE_SLUGS, l2=l2).predict(x[te]), 1e-6, 1 - 1e-6)
            loss[i] -= (y[te] * np.log(p) + (1 - y[te]) * np.log(1 - p)).sum(0)
    return [L2_GRID[j] for j in loss.argmin(0)]


def out_of_fold(x: np.ndarray, y: np.ndarray, fold: np.ndarray, groups: np.ndarray, l2: float | None,
                seed: int) -> np.ndarray:
    """``[n, 10]`` probabilities, each fold scored by heads fitted on the others (``l2`` None: nested)."""
    probs = np.zeros(y.shape)
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        if l2 is not None:
            probs[te] = EmbeddingHead.fit(x[tr], y[tr], VALUE_SLUGS, l2=l2).predict(x[te])
            continue
        for k, pen in enumerate(nested_l2(x[tr], y[tr], groups[tr], seed)):
            probs[te, k] = EmbeddingHead.fit(x[tr], y[tr][:, [k]], [VALUE_SLUGS[k]], l2=pen).predict(x[te])[:, 0]
    return probs


def report(name: str, probs: np.ndarray, y: np.ndarray, fold: np.ndarray, rids: np.ndarray, n_boot: int,
           seed: int) -> None:
    n, k = y.shape
    s, g = probs.ravel(), y.ravel().astype(bool)
    clusters, folds = np.repeat(rids, k), np.repeat(fold, k)
    values = np.tile(np.array(VALUE_SLUGS), n)
    pred, _ = crossfit_predictions(s, g, folds)
    m = evaluate(g, pred, s, clusters, n_boot, 0.05, seed)
    per = within_fold_aucs(s, g, values, folds, clusters, n_boot, 0.05, seed)
    print(f"| {name} | {m.kappa} | {m.auc} | {per['mean']} | "
          + " ".join(f"{per[v].value:.2f}" for v in VALUE_SLUGS) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", required=True, help="Value Portrait directory or tagged_responses.json")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--l2", type=float, default=100.0)
    ap.add_argument("--nested", action="store_true", help="also choose each value's L2 by nested CV (slow)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the encoder")
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    gold = value_portrait_gold(a.gold)
    rids = np.array([it.response_id for it in gold.items])
    groups = np.array([gold.group[r] for r in rids])
    y = np.array([[gold.gold[(r, v)] for v in VALUE_SLUGS] for r in rids], np.float64)
    enc = Encoder()
    emb = enc.encode([it.response for it in gold.items])
    both = enc.encode([f"{it.query}\n\n{it.response}" for it in gold.items])
    zs = zero_shot_scores(emb, EmbeddingJudge(enc).prototypes())
    fold = group_folds(groups, a.folds, a.seed)

    prior = np.zeros(y.shape)
    for f in np.unique(fold):
        tr = fold != f
        prior[fold == f] = (y[tr].sum(0) + 0.5) / (tr.sum() + 1.0)
    print(f"{len(rids)} responses, {len(set(groups.tolist()))} queries, {a.folds} folds by query (seed {a.seed}), "
          f"L2 {a.l2:g}")
    print("| features | kappa | pooled AUC | mean per-value AUC | per-value AUC (circular order) |")
    print("| --- | --- | --- | --- | --- |")
    report("value prior (no text)", prior, y, fold, rids, a.bootstrap, a.seed)
    report("zero-shot scores (no head)", zs, y, fold, rids, a.bootstrap, a.seed)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "embedding": lambda: emb,
        "centred": lambda: query_centred(emb, groups),
        "query+response": lambda: both,
        "embedding+prototypes": lambda: np.hstack([emb, zs]),
        "prototypes": lambda: zs,
        "centred prototypes": lambda: query_centred(zs, groups),
        "prototypes+centred prototypes": lambda: np.hstack([zs, query_centred(zs, groups)]),
    }
    for name, feats in variants.items():
        report(f"{name}, L2 {a.l2:g}", out_of_fold(feats(), y, fold, groups, a.l2, a.seed), y, fold, rids,
               a.bootstrap, a.seed)
    if a.nested:
        for name in ("embedding", "centred", "prototypes"):
            report(f"{name}, L2 nested", out_of_fold(variants[name](), y, fold, groups, None, a.seed), y, fold,
                   rids, a.bootstrap, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
