"""How far a judge's labels can be trusted: its agreement with gold labels, per value and overall.

The library twin of ``actstore judge eval``. Gold labels come from Value Portrait's human-derived tags
(:func:`value_portrait_gold`) or from any judge's labels in a store (:func:`store_gold`, e.g. labels a
team imported from annotators, or a strong reference judge's). The judge under test labels the same
responses, and :func:`evaluate_labels` reports Cohen's kappa, precision and recall of its verdicts,
the ROC AUC of its scores and its abstentions, each with a bootstrap interval that resamples responses
(:mod:`ingest.judges.stats`).

Verdicts and thresholds. A judge's yes/no depends on a threshold on its score. ``method='judge'``
scores the verdicts the judge gave; ``method='crossfit'`` (the default for judges with graded scores)
chooses the kappa-maximising threshold on all folds but one and applies it to the held-out fold, folds
being whole queries, so the kappa reported is not fitted to the pairs it is measured on. The threshold
fitted on all pairs is recorded too: ``ingest label --threshold from-eval`` uses it. ``method='cv-head'``
(embedding judges): a logistic head (on the embedding, or on the ten zero-shot prototype scores) is
fitted on the training folds and scores the held-out fold. Besides the pooled ROC AUC, which also
rewards ranking frequent values above rare ones, every eval gives each value's AUC within folds and
their mean (``JudgeEval.fold_aucs``): 0.5 there is a judge that knows no more than the base rates.

Results go into the store's ``judge_evals`` table (:func:`record_eval`), so a store says how trustworthy
its labels are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from ingest.judges.base import JudgeItem, Label
from ingest.judges.stats import (
    Estimate,
    Metrics,
    best_threshold,
    crossfit_predictions,
    evaluate,
    group_folds,
    within_fold_aucs,
)
from ingest.values import VALUE_SLUGS, parse_value

CHUNK = 64  # responses per judge call


@dataclass(frozen=True)
class GoldSet:
    """Responses to judge and their gold labels. ``gold[(response_id, value)]``; ``group[response_id]``
    is the query a response answers (folds and nothing else use it)."""

    name: str
    items: tuple[JudgeItem, ...]
    gold: dict[tuple[str, str], bool] = field(hash=False)
    group: dict[str, str] = field(hash=False)


def value_portrait_gold(path: str | Path, values: Sequence[str] | None = None, threshold: float = 0.3,
                        limit: int | None = None) -> GoldSet:
    """Value Portrait's tagged responses: a value is expressed when its rho reaches ``threshold``.

    ``limit``: keep the responses of the first N queries (in file order)."""
    from ingest.prompts.value_portrait import load_value_portrait_tagged

    vals = tuple(parse_value(v) for v in values) if values else VALUE_SLUGS
    tagged = load_value_portrait_tagged(path, threshold=threshold)
    if limit is not None:
        keep = list(dict.fromkeys(t.query.query_id for t in tagged))[:limit]
        tagged = [t for t in tagged if t.query.query_id in set(keep)]
    items, gold, group = [], {}, {}
    for t in tagged:
        have = tuple(v for v in vals if v in t.scores)
        if not have:
            continue
        items.append(t.judge_item(have))
        group[t.response_id] = t.query.query_id
        for v in have:
            gold[(t.response_id, v)] = t.scores[v] >= threshold
    return GoldSet(f"value-portrait:{Path(path)}", tuple(items), gold, group)


def store_gold(store: Any, gold_judge: str, values: Sequence[str] | None = None, limit: int | None = None) -> GoldSet:
    """Gold labels = the labels of judge ``gold_judge`` in an open store (abstentions left out)."""
    vals = tuple(parse_value(v) for v in values) if values else VALUE_SLUGS
    rows = store.sql(
        "SELECT r.response_id, p.query_id, p.user_text, r.text, l.value, l.expressed "
        "FROM labels l JOIN responses r USING (response_id) JOIN prompts p USING (prompt_id) "
        "WHERE l.judge_id = ? AND l.expressed IS NOT NULL ORDER BY r.response_id, l.value", [gold_judge]).fetchall()
    if not rows:
        have = [r[0] for r in store.sql("SELECT DISTINCT judge_id FROM labels ORDER BY 1").fetchall()]
        raise InputError(f"no labels of judge {gold_judge!r} in the store; gold judges there: {', '.join(have) or 'none'}")
    by_resp: dict[str, dict[str, Any]] = {}
    gold: dict[tuple[str, str], bool] = {}
    for rid, qid, query, text, value, expressed in rows:
        v = parse_value(value)
        if v not in vals:
            continue
        entry = by_resp.setdefault(rid, {"q": qid or rid, "query": query, "text": text, "values": []})
        entry["values"].append(v)
        gold[(rid, v)] = bool(expressed)
    rids = list(by_resp)
    if limit is not None:
        queries = list(dict.fromkeys(by_resp[r]["q"] for r in rids))[:limit]
        rids = [r for r in rids if by_resp[r]["q"] in set(queries)]
        gold = {k: g for k, g in gold.items() if k[0] in set(rids)}
    items = tuple(JudgeItem(r, by_resp[r]["query"], by_resp[r]["text"], tuple(by_resp[r]["values"])) for r in rids)
    return GoldSet(f"labels:{gold_judge}", items, gold, {r: by_resp[r]["q"] for r in rids})


@dataclass(frozen=True)
class JudgeEval:
    """One evaluation: metrics per value and pooled over all pairs (``'all'``)."""

    judge_id: str
    gold: str
    method: str  # judge | crossfit | cv-head
    threshold: float | None  # fitted on all gold pairs (None for method 'judge' without scores)
    metrics: dict[str, Metrics] = field(hash=False)  # value slug or 'all' -> metrics
    params: dict[str, Any] = field(hash=False, default_factory=dict)
    #: per-value ROC AUC within folds, and 'mean' over values (see ingest.judges.stats.within_fold_aucs)
    fold_aucs: dict[str, Estimate] = field(hash=False, default_factory=dict)

    @property
    def value_auc(self) -> Estimate | None:
        """The mean over values of each value's ROC AUC within folds (0.5: no better than base rates)."""
        return self.fold_aucs.get("mean")

    def table(self) -> str:
        """A plain-text table, one line per value and the pooled line last."""
        head = f"{'value':<15} {'n':>5} {'pos':>4} {'abst':>4}  {'kappa [95% CI]':<24} {'precision':<24} " \
               f"{'recall':<24} {'ROC AUC':<24}"
        lines = [head]
        for v, m in self.metrics.items():
            lines.append(f"{v:<15} {m.n:>5} {m.n_pos:>4} {m.abstained:>4}  {m.kappa!s:<24} {m.precision!s:<24} "
                         f"{m.recall!s:<24} {m.auc!s:<24}")
        return "\n".join(lines)


def _pairs(labels: Sequence[Label], gold: GoldSet) -> tuple[list[tuple[str, str]], dict[tuple[str, str], Label]]:
    by = {(lab.response_id, lab.value): lab for lab in labels}
    keys = [k for k in gold.gold if k in by]
    if not keys:
        raise InputError("the judge labelled none of the gold pairs; judge the same responses and values")
    return keys, by


def evaluate_labels(labels: Sequence[Label], gold: GoldSet, method: str = "crossfit", folds: int = 5,
                    n_boot: int = 1000, alpha: float = 0.05, seed: int = 0, judge_id: str | None = None,
                    scores: dict[tuple[str, str], float] | None = None) -> JudgeEval:
    """Agreement of ``labels`` with ``gold`` (see the module docstring for ``method``).

    ``scores`` (optional) replaces the labels' scores, e.g. out-of-fold head probabilities."""
    if method not in ("judge", "crossfit", "cv-head"):
        raise InputError(f"unknown eval method {method!r}; use judge, crossfit or cv-head")
    keys, by = _pairs(labels, gold)
    g = np.array([gold.gold[k] for k in keys])
    s = np.array([np.nan if (x := (scores[k] if scores is not None else by[k].score)) is None else float(x)
                  for k in keys])
    verdicts = [by[k].expressed for k in keys]
    pred = np.array([np.nan if e is None else float(e) for e in verdicts])
    groups = np.array([gold.group[k[0]] for k in keys])
    threshold = None
    n_folds = min(folds, len(set(groups.tolist())))  # small gold sets: fewer folds
    fold_of = group_folds(groups, n_folds, seed) if n_folds >= 2 else np.zeros(len(keys), int)
    if method != "judge":
        if np.isnan(s).all():
            raise InputError("this judge gives no scores, so no threshold can be chosen; use method 'judge'")
        pred, _ = crossfit_predictions(s, g, fold_of)
        # Abstentions stay abstentions whatever the threshold.
        pred[np.array([by[k].expressed is None for k in keys])] = np.nan
        threshold = best_threshold(s, g)
    clusters = np.array([k[0] for k in keys])
    values = np.array([k[1] for k in keys])
    metrics: dict[str, Metrics] = {}
    for v in VALUE_SLUGS:
        m = values == v
        if m.any():
            metrics[v] = evaluate(g[m], pred[m], s[m], clusters[m], n_boot, alpha, seed)
    metrics["all"] = evaluate(g, pred, s, clusters, n_boot, alpha, seed)
    fold_aucs = within_fold_aucs(s, g, values, fold_of, clusters, n_boot, alpha, seed)
    jid = judge_id or by[keys[0]].judge_id
    params = {"folds": folds if method != "judge" else None, "bootstrap": n_boot, "alpha": alpha, "seed": seed,
              "pairs": len(keys), "responses": len(set(clusters.tolist()))}
    return JudgeEval(jid, gold.name, method, threshold, metrics, params, fold_aucs)


def judge_all(judge: Any, gold: GoldSet, quiet: bool = True) -> list[Label]:
    """Run ``judge`` on every gold response, ``CHUNK`` responses per call, with a progress line."""
    from ingest.progress import Progress

    out: list[Label] = []
    with Progress("judge", len(gold.items), unit="responses", quiet=quiet) as progress:
        for i in range(0, len(gold.items), CHUNK):
            chunk = gold.items[i:i + CHUNK]
            out.extend(judge.judge(chunk))
            progress.update(len(chunk))
    return out


def cv_head_eval(encoder: Any, gold: GoldSet, folds: int = 5, l2: float = 100.0, n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0, quiet: bool = True,
                 features: str = "embedding") -> tuple[JudgeEval, Any]:
    """Cross-validated embedding head: per fold (whole queries), fit an :class:`EmbeddingHead` on the
    other folds and score this one; the metrics are over those out-of-fold scores only. Returns the
    eval and a head fitted on every gold response (what ``--save-head`` writes).

    ``features``: ``embedding`` or ``prototypes`` (the ten zero-shot scores; see
    :mod:`ingest.judges.embed`)."""
    from ingest.judges.embed import EmbeddingHead, EmbeddingJudge

    vals = [v for v in VALUE_SLUGS if any(k[1] == v for k in gold.gold)]
    rids = [it.response_id for it in gold.items]
    if not quiet:
        print(f"encoding {len(rids)} responses", flush=True)
    emb, y, protos = _head_data(encoder, gold, vals, features)
    fold_of = group_folds([gold.group[r] for r in rids], folds, seed)
    probs = np.zeros(y.shape)
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        # A pair without a gold label counts as a negative in training: Value Portrait has all ten.
        head = EmbeddingHead.fit(emb[train], y[train], vals, l2=l2, features=features, prototypes=protos)
        probs[test] = head.predict(emb[test])
    full = EmbeddingHead.fit(emb, y, vals, l2=l2, model=_model_ref(encoder), features=features, prototypes=protos)
    judge = EmbeddingJudge(encoder, full)
    scores = {(r, v): float(probs[i, j]) for i, r in enumerate(rids) for j, v in enumerate(vals)}
    # Verdicts: thresholds chosen out of fold, on the out-of-fold probabilities.
    labels = [Label(r, v, False, scores[(r, v)], judge.judge_id, "") for (r, v) in gold.gold]
    ev = evaluate_labels(labels, gold, "crossfit", folds, n_boot, alpha, seed, judge.judge_id)
    ev.params.update({"l2": l2, "head_folds": folds, "head_features": features})
    return JudgeEval(ev.judge_id, ev.gold, "cv-head", ev.threshold, ev.metrics, ev.params, ev.fold_aucs), full


def _head_data(encoder: Any, gold: GoldSet, vals: Sequence[str],
               features: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Embeddings of the gold responses, their ``[n, values]`` 0/1 labels (a pair without a gold label
    counts as a negative: Value Portrait has all ten) and, for a ``prototypes`` head, the prototypes."""
    from ingest.judges.embed import EmbeddingJudge

    rids = [it.response_id for it in gold.items]
    emb = encoder.encode([it.response for it in gold.items])
    protos = EmbeddingJudge(encoder).prototypes() if features == "prototypes" else None
    y = np.array([[gold.gold.get((r, v), False) for v in vals] for r in rids], np.float64)
    return emb, y, protos


def fit_head(encoder: Any, gold: GoldSet, l2: float = 100.0, features: str = "embedding") -> Any:
    """An :class:`~ingest.judges.embed.EmbeddingHead` fitted on every gold response: what
    ``judge eval --save-head`` writes (and how the packaged ``embed:value-portrait`` head was made)."""
    from ingest.judges.embed import EmbeddingHead

    vals = [v for v in VALUE_SLUGS if any(k[1] == v for k in gold.gold)]
    emb, y, protos = _head_data(encoder, gold, vals, features)
    return EmbeddingHead.fit(emb, y, vals, l2=l2, model=_model_ref(encoder), features=features, prototypes=protos)


def head_provenance(ev: JudgeEval, gold: str, command: str | None = None) -> dict[str, Any]:
    """What ``--save-head`` writes beside a head (``HEAD.json``): the gold data (with its source
    commit and licence where a Value Portrait README/LICENSE says them), the command that rebuilds
    the head, and its *cross-validated* agreement (pooled kappa and AUC, mean per-value AUC within
    folds, each with its interval)."""
    import re

    def est(e: Any) -> list[float | None]:
        return [None if np.isnan(x) else round(float(x), 4) for x in (e.value, e.lo, e.hi)]

    m = ev.metrics["all"]
    out: dict[str, Any] = {
        "judge_id": ev.judge_id, "gold": ev.gold, "method": ev.method, "threshold": ev.threshold,
        "params": {k: v for k, v in ev.params.items() if k != "eval_id"},
        "cross_validated": {"pairs": m.n, "tagged": m.n_pos, "kappa": est(m.kappa), "auc": est(m.auc),
                            "mean_value_auc": est(ev.value_auc) if ev.value_auc is not None else None,
                            "per_value_auc_within_folds": {v: est(x) for v, x in ev.fold_aucs.items() if v != "mean"}},
        "command": command,
    }
    src = Path(gold.removeprefix("value-portrait:"))
    src = src if src.is_dir() else src.parent
    readme, lic = src / "README.md", src / "LICENSE"
    if not gold.startswith("labels:") and lic.is_file():
        text = lic.read_text(encoding="utf-8", errors="replace")
        out["dataset"] = {"name": "Value Portrait (tagged_responses.json, human tags rho >= 0.3)",
                          "license": text.splitlines()[0].strip() if text.strip() else None,
                          "copyright": next((ln.strip() for ln in text.splitlines() if "Copyright" in ln), None)}
        if readme.is_file():
            r = readme.read_text(encoding="utf-8", errors="replace")
            if c := re.search(r"\b([0-9a-f]{40})\b", r):
                out["dataset"]["commit"] = c.group(1)
            if rep := re.search(r"repository ([\w.-]+/[\w.-]+)", r):
                out["dataset"]["repository"] = rep.group(1)
    return out


def _model_ref(encoder: Any) -> str:
    """What a saved head records as its encoder: "" for the packaged model, else its directory."""
    from ingest.judges.embed import packaged_model_dir

    d = getattr(encoder, "model_dir", None)
    return "" if d is None or d == packaged_model_dir() else str(d)


# -- the catalog --------------------------------------------------------------------------------

def record_eval(store: Any, ev: JudgeEval, run_id: int | None = None) -> int:
    """Write ``ev`` into an open writable store's ``judge_evals`` (one row per value and 'all');
    returns its ``eval_id``."""
    eval_id = int(store.sql("SELECT coalesce(max(eval_id) + 1, 1) FROM judge_evals").fetchall()[0][0])
    now = datetime.now(UTC).replace(tzinfo=None)
    cols: dict[str, list[Any]] = {k: [] for k in (
        "eval_id", "value", "judge_id", "gold", "method", "n", "n_pos", "n_pred_pos", "abstained", "threshold",
        *[f"{m}{s}" for m in ("kappa", "precision", "recall", "auc") for s in ("", "_lo", "_hi")],
        "params", "run_id", "created_at")}

    def num(x: float) -> float | None:
        return None if x is None or np.isnan(x) else float(x)

    for value, m in ev.metrics.items():
        row = {"eval_id": eval_id, "value": value, "judge_id": ev.judge_id, "gold": ev.gold, "method": ev.method,
               "n": m.n, "n_pos": m.n_pos, "n_pred_pos": m.n_pred_pos, "abstained": m.abstained,
               "threshold": ev.threshold, "params": json.dumps(ev.params), "run_id": run_id, "created_at": now}
        for name in ("kappa", "precision", "recall", "auc"):
            est = getattr(m, name)
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = num(est.value), num(est.lo), num(est.hi)
        for k, col in cols.items():
            col.append(row[k])
    store.insert("judge_evals", cols)
    return eval_id


def recorded_threshold(store: Any, judge_id: str) -> float:
    """The threshold of the latest eval of ``judge_id`` recorded in an open store."""
    rows = store.sql("SELECT threshold FROM judge_evals WHERE judge_id = ? AND value = 'all' AND threshold IS NOT NULL "
                     "ORDER BY eval_id DESC LIMIT 1", [judge_id]).fetchall()
    if not rows:
        raise InputError(f"the store has no judge eval of {judge_id!r} with a threshold; run 'actstore judge eval "
                         "STORE --judge SPEC' first, or pass --threshold NUMBER")
    return float(rows[0][0])


def with_threshold(judge: Any, threshold: float) -> Any:
    """Set a judge's score threshold and mark its id (``@t=``), so labels made with another threshold
    never mix with these in one ``judge_id``."""
    from ingest.judges.lexicon import LexiconJudge

    if isinstance(judge, LexiconJudge):
        judge.min_hits = max(1, int(np.ceil(threshold)))
    elif hasattr(judge, "threshold"):
        judge.threshold = float(threshold)
    else:
        raise InputError(f"judge {judge.judge_id!r} has no score threshold to set; drop --threshold")
    judge.judge_id = f"{judge.judge_id}@t={float(threshold):g}"
    return judge


# -- the command's library twin ------------------------------------------------------------------

def run_eval(judge_spec: str, gold: str, *, store: str | None = None, values: Sequence[str] | None = None,
             method: str | None = None, folds: int = 5, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
             limit: int | None = None, threads: int | None = None, device: str = "cpu", l2: float = 100.0,
             save_head: str | None = None, record: bool = True, quiet: bool = True,
             head_features: str = "embedding", command: str | None = None) -> JudgeEval:
    """Evaluate judge ``judge_spec`` (as ``--judge`` takes it) against ``gold``: a Value Portrait
    directory or file (``value-portrait:PATH`` or just PATH), or ``labels:JUDGE_ID`` (gold labels in
    ``store``). With ``store``, the result is recorded in its ``judge_evals`` (unless ``record`` is off).

    ``method``: judge | crossfit | cv-head (default: cv-head with ``save_head``, else crossfit when the
    judge gives scores, else judge). ``head_features`` (cv-head): ``embedding`` or ``prototypes``.
    ``save_head``: also writes ``HEAD.json`` beside it (:func:`head_provenance`, with ``command``)."""
    import actstore
    from ingest.config import IngestConfig, parse_judge
    from ingest.pipeline import make_judge

    spec = parse_judge(judge_spec)
    if store is not None and not Path(store, "catalog.duckdb").exists():
        raise InputError(f"no store at {store}; pass an existing store (or none, to record nothing)")
    if spec.kind in ("embed", "hf"):
        from ingest.threads import configure

        configure(threads)  # None: the shared default (ingest.threads)
    if gold.startswith("labels:"):
        if store is None:
            raise InputError("gold labels:JUDGE_ID are read from a store; pass STORE")
        with actstore.open(store) as st:
            gs = store_gold(st, gold.removeprefix("labels:"), values, limit)
    else:
        gs = value_portrait_gold(gold.removeprefix("value-portrait:"), values, limit=limit)
    if method is None:
        method = "cv-head" if save_head else None
    if method == "cv-head" or save_head:
        if spec.kind != "embed" or (spec.target or "").endswith(".npz"):
            raise InputError("cv-head trains an embedding head: use --judge embed or embed:MODEL_DIR")
        from ingest.judges.embed import Encoder

        ev, head = cv_head_eval(Encoder(spec.target, device=device), gs, folds, l2, n_boot, alpha, seed, quiet,
                                head_features)
        if save_head:
            head.save(save_head)
            ev.params["spec"] = judge_spec
            meta = head_provenance(ev, gold, command)
            Path(save_head).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    else:
        judge = make_judge(IngestConfig(store=store or ".", judge=judge_spec, device=device, quiet=True))
        labels = judge_all(judge, gs, quiet)
        if method is None:
            method = "crossfit" if any(lab.score is not None for lab in labels) else "judge"
        ev = evaluate_labels(labels, gs, method, folds, n_boot, alpha, seed, judge.judge_id)
    ev.params["spec"] = judge_spec
    if store is not None and record:
        with actstore.open(store, read_only=False) as st:
            run_id = st.begin_run("judge:eval", {"judge": judge_spec, "gold": gold, **ev.params})
            eid = record_eval(st, ev, run_id)
            st.end_run(run_id)
        ev.params["eval_id"] = eid
    return ev


__all__ = ["GoldSet", "JudgeEval", "cv_head_eval", "evaluate_labels", "fit_head", "head_provenance", "judge_all",
           "record_eval", "recorded_threshold", "run_eval", "store_gold", "value_portrait_gold", "with_threshold"]
