"""``actstore analyze vectors``: difference-in-means value vectors from a store, recorded as catalog rows.

Library twin::

    from analyses.run_vectors import VectorsSpec, run
    res = run(actstore.open("runs/demo"), VectorsSpec(layers=(10, 11, 12)))
    res.vectors  # [V, C, L, d] float64; also rows of the store's `vectors` table (run res.run_id)

Default: the pooled ``mean_response`` arrays (one row per record), one streaming
``store.group_means`` call over a SQL group query (:mod:`analyses.groups`). Reads are O(records x d)
per layer and memory is O(groups x d) plus one chunk, whatever the store size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.site import SITE_KINDS
from actstore.store import Store
from analyses import groups as gq
from analyses import vectors as vx
from analyses.recording import Recorder, check_layers, check_vector_width, need_model, record
from ingest.values import parse_value

TOKEN_MODES = ("response_mean", "last_prompt")
CONDITION_CHOICES = ("intrinsic", "prompted", "both")
CONTRASTS = ("exp-unexp", "prompted-intrinsic")
POOL_OF = {"response_mean": "mean_response", "last_prompt": "last_prompt"}


@dataclass(frozen=True)
class VectorsSpec:
    """What to extract. ``tokens``: response_mean | last_prompt | ``sql:QUERY`` (first column = token
    row; reads the per-token arrays). ``contrast``: exp-unexp (the study's, within a condition) |
    prompted-intrinsic (R_exp of prompted minus R_exp of intrinsic) | ``sql:POS_QUERY;NEG_QUERY``
    (each query's first column = a record id). ``values`` None = every value the store has labels for.
    ``condition`` (exp-unexp only): intrinsic | prompted | both; None = the conditions the labelled
    records have (a Value Portrait import has only intrinsic ones), said in the result's ``note``."""

    site: str = "resid_post"
    layers: tuple[int, ...] | None = None
    tokens: str = "response_mean"
    contrast: str = "exp-unexp"
    judge: str | None = None
    language: str | None = None
    values: tuple[str, ...] | None = None
    min_count: int = 5
    condition: str | None = None
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
        if self.condition is not None and self.condition not in CONDITION_CHOICES:
            raise InputError(f"bad --condition {self.condition!r}; use intrinsic, prompted or both")
        if self.condition is not None and self.contrast != "exp-unexp":
            raise InputError(f"--condition applies to the exp-unexp contrast; the {self.contrast.split(':')[0]} "
                             "contrast sets its own groups: leave --condition out")
        if self.site not in SITE_KINDS:
            raise InputError(f"unknown site {self.site!r}; use one of {', '.join(SITE_KINDS)}")
        if self.tokens not in TOKEN_MODES and not (self.tokens.startswith("sql:") and self.tokens[4:].strip()):
            raise InputError(f"bad --tokens {self.tokens!r}; use response_mean, last_prompt or sql:QUERY")
        if self.contrast not in CONTRASTS:
            body = self.contrast[4:] if self.contrast.startswith("sql:") else ""
            if body.count(";") != 1 or not all(p.strip() for p in body.split(";")):
                raise InputError(f"bad --contrast {self.contrast!r}; use exp-unexp, prompted-intrinsic "
                                 "or sql:POS_QUERY;NEG_QUERY (two queries returning record ids)")
        if self.values is not None:
            if not self.values:
                raise InputError("no values given to extract vectors for; name at least one (--value), or "
                                 "leave the option out for every labelled value")
            object.__setattr__(self, "values", tuple(parse_value(v) for v in self.values))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
        if int(self.min_count) < 1:
            raise InputError(f"--min-count must be at least 1, got {self.min_count}")

    @property
    def pool(self) -> str:
        return POOL_OF.get(self.tokens, "token")

    @property
    def token_query(self) -> str | None:
        return self.tokens[4:] if self.tokens.startswith("sql:") else None

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("record", "plot")}


@dataclass(frozen=True)
class VectorsResult:
    values: tuple[str, ...]
    conditions: tuple[str, ...]
    layers: tuple[int, ...]
    vectors: np.ndarray  # [V, C, L, d] float64
    n_pos: np.ndarray  # [V, C]
    n_neg: np.ndarray  # [V, C]
    cos_int_prompt: np.ndarray | None  # [V, L] for the exp-unexp contrast
    run_id: int | None = None
    vector_ids: np.ndarray | None = None  # [V, C, L] ids in the `vectors` table
    plots: tuple[Path, ...] = field(default_factory=tuple)
    note: str | None = None  # which conditions were used, when the store chose them

    @property
    def norms(self) -> np.ndarray:
        return np.linalg.norm(self.vectors, axis=-1)  # [V, C, L]

    def table(self):
        import pandas as pd

        rows = []
        for i, v in enumerate(self.values):
            for c, cond in enumerate(self.conditions):
                for j, layer in enumerate(self.layers):
                    row = {"value": v, "condition": cond, "layer": layer, "n_pos": int(self.n_pos[i, c]),
                           "n_neg": int(self.n_neg[i, c]), "norm": float(self.norms[i, c, j])}
                    if self.cos_int_prompt is not None:
                        row["cos_int_prompt"] = float(self.cos_int_prompt[i, j])
                    if self.vector_ids is not None:
                        row["vector_id"] = int(self.vector_ids[i, c, j])
                    rows.append(row)
        return pd.DataFrame(rows)


def group_means_full(store: Store, site: str, layers: list[int], groups: gq.Groups, pool: str,
                     token_query: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Means ``[G, L, d]`` and counts ``[G]`` for every key of ``groups`` (empty groups: NaN, 0),
    and the keys as ``"value:condition:label"`` strings (language prefixed as ``lang/`` if set)."""
    if token_query is not None:
        groups = gq.on_tokens(groups, token_query)
    names = [(f"{lang}/" if lang else "") + f"{v}:{c}:{lab}" for lang, v, c, lab in groups.keys]
    width = store.array_meta(site, layers[0], pool).width
    means = np.full((len(groups.keys), len(layers), width), np.nan)
    counts = np.zeros(len(groups.keys), dtype=np.int64)
    n = store.sql(f"SELECT count(*) FROM ({groups.query})").fetchall()[0][0]
    if n == 0:
        return means, counts, names
    gm = store.group_means(site, layers, groups.query, pool=pool)
    idx = np.asarray(gm.labels, dtype=np.int64)
    means[idx], counts[idx] = gm.means, gm.counts
    return means, counts, names


def check_labels(store: Store, judge: str | None) -> None:
    where = f" WHERE judge_id = {gq.sql_str(judge)}" if judge is not None else ""
    if store.sql(f"SELECT count(*) FROM record_labels{where}").fetchall()[0][0] == 0:
        have = [r[0] for r in store.sql("SELECT DISTINCT judge_id FROM labels ORDER BY 1").fetchall()]
        if judge is not None and have:
            raise InputError(f"no labels by judge {judge!r} in this store; judges here: {', '.join(have)}")
        raise InputError("no labels for the stored records in this store; judge the responses first "
                         "(actstore ingest judge), or give two groups with --contrast sql:POS;NEG")
    judges = [r[0] for r in store.sql("SELECT DISTINCT judge_id FROM record_labels ORDER BY 1").fetchall()]
    if judge is None and len(judges) > 1:
        # Mixing judges would count a response once per judge, weighting it by how many judged it.
        raise InputError(f"this store has labels from {len(judges)} judges ({', '.join(judges)}); choose one with --judge")


def resolve_values(store: Store, spec_values: tuple[str, ...] | None, judge: str | None) -> tuple[str, ...]:
    have = gq.labelled_values(store, judge)
    if spec_values is None:
        return tuple(have)
    missing = [v for v in spec_values if v not in have]
    if missing:
        raise InputError(f"value {missing[0]!r} has no labels in this store; labelled values: {', '.join(have) or 'none'}")
    return spec_values


def labelled_conditions(store: Store, judge: str | None, language: str | None) -> tuple[str, ...]:
    """The study's conditions that the labelled records have, in the order of ``vx.CONDITIONS``."""
    where = [f"judge_id = {gq.sql_str(judge)}"] if judge is not None else []
    if language is not None:
        where.append(f"language = {gq.sql_str(language)}")
    sql = "SELECT DISTINCT condition FROM record_labels" + (" WHERE " + " AND ".join(where) if where else "")
    have = {r[0] for r in store.sql(sql).fetchall()}
    return tuple(c for c in vx.CONDITIONS if c in have)


def pick_conditions(store: Store, spec: VectorsSpec) -> tuple[tuple[str, ...], str | None]:
    """The conditions an exp-unexp run extracts, and a one-line note when the store chose them."""
    have = labelled_conditions(store, spec.judge, spec.language)
    if not have:
        raise InputError("no labelled records in the intrinsic or prompted condition; label the responses first")
    if spec.condition is None:
        if have == vx.CONDITIONS:
            return have, None
        why = " (imported responses, e.g. Value Portrait, are asked with no system prompt)" \
            if have == ("intrinsic",) else ""
        return have, (f"conditions: {', '.join(have)} only, the one this store's labelled records have{why}; "
                      "decompose and neurons need both")
    want = vx.CONDITIONS if spec.condition == "both" else (spec.condition,)
    missing = [c for c in want if c not in have]
    if missing:
        raise InputError(f"--condition {spec.condition}: this store has no labelled {missing[0]} records (it has "
                         f"{', '.join(have)}); use --condition {have[0] if len(have) == 1 else 'both'}, or ingest "
                         f"{missing[0]} responses first")
    return want, None


def need_both_conditions(rows: list[dict[str, Any]], run_id: int, step: str) -> None:
    """One line, naming the fix, when a vectors run lacks the intrinsic or the prompted vectors that
    ``step`` (decompose, neurons) pairs up."""
    have = tuple(c for c in vx.CONDITIONS if any(r["condition"] == c for r in rows))
    if have != vx.CONDITIONS:
        raise InputError(f"{step} pairs intrinsic with prompted vectors, and vectors run {run_id} has "
                         f"{' and '.join(have) or 'no'} vectors only; ingest prompted responses too "
                         "('actstore ingest run' with --templates-per-value 1 or more) and rerun "
                         "'actstore analyze vectors --condition both' (one condition: 'analyze structure "
                         "--component diff_means' works on it)")


def run(store: Store, spec: VectorsSpec) -> VectorsResult:
    """Extract, record (unless ``spec.record`` is False) and return value vectors."""
    need_model(store)
    layers = check_layers(store, spec.layers, spec.site, spec.pool)
    check_vector_width(store, spec.site, layers[0], spec.pool, spec.record)
    values: tuple[str, ...]
    conditions: tuple[str, ...]
    note = None
    if spec.contrast.startswith("sql:"):
        pos_q, neg_q = spec.contrast[4:].split(";")
        groups = gq.custom(pos_q, neg_q)
        values, conditions = ("custom",), ("sql",)
    else:
        check_labels(store, spec.judge)
        values = resolve_values(store, spec.values, spec.judge)
        if spec.contrast == "exp-unexp":
            conditions, note = pick_conditions(store, spec)
            groups = gq.exp_unexp(values, spec.judge, spec.language, conditions=conditions)
        else:
            if labelled_conditions(store, spec.judge, spec.language) != vx.CONDITIONS:
                raise InputError("the prompted-intrinsic contrast needs labelled records of both conditions; this "
                                 "store lacks one: use --contrast exp-unexp")
            groups, conditions = gq.prompted_intrinsic(values, spec.judge, spec.language), ("prompted_minus_intrinsic",)
    means, counts, names = group_means_full(store, spec.site, layers, groups, spec.pool, spec.token_query)

    if spec.contrast == "exp-unexp":
        pos, neg = vx.exp_vs_unexp_index(names, values, conditions)
    elif spec.contrast == "prompted-intrinsic":
        pos, neg = vx.prompted_minus_intrinsic_index(names, values)
    else:
        pos, neg = np.array([[0]]), np.array([[1]])
    vecs = vx.contrast(means, counts, pos, neg, names, spec.min_count)  # [V, C, L, d]
    both = spec.contrast == "exp-unexp" and len(conditions) == 2
    cos = vx.cosine(vecs[:, 0], vecs[:, 1]) if both else None
    res = VectorsResult(tuple(values), tuple(conditions), tuple(layers), vecs, counts[pos], counts[neg], cos,
                        note=note)

    plots: list[Path] = []
    if spec.plot:
        from analyses.plots import plot_cosine_by_layer, plot_norms_by_layer

        out = Path(spec.plot)
        if cos is not None:
            plots.append(plot_cosine_by_layer(cos, layers, out, values))
            out = out.with_name(out.stem + "_norms" + out.suffix)
        plots.append(plot_norms_by_layer(res.norms, layers, out, values, conditions))
    if not spec.record:
        return _replace(res, plots=tuple(plots))

    rec = Recorder()
    meta = {"contrast": spec.contrast, "tokens": spec.tokens, "judge": spec.judge}
    for i, v in enumerate(values):
        for c, cond in enumerate(conditions):
            for j, layer in enumerate(layers):
                rec.add_vector(vecs[i, c, j], name=f"{v}/{cond}/{spec.site}.{layer}",
                               value=None if v == "custom" else v, condition=cond, component="diff_means",
                               site=spec.site, layer=layer, pool=spec.pool, language=spec.language,
                               n_pos=int(counts[pos[i, c]]), n_neg=int(counts[neg[i, c]]), meta=meta)
    summary: dict[str, Any] = {"vectors": len(rec.vectors)}
    if cos is not None:
        summary["mean_cos_int_prompt_by_layer"] = {str(l): float(x) for l, x in zip(layers, cos.mean(axis=0))}
    # The group query makes "the rows it used" exact and re-runnable against this store.
    params = {**spec.params(), "values": list(values), "conditions": list(conditions), "layers": list(layers),
              "groups_sql": groups.query}
    run_id, ids = record(store, "vectors", params, rec, summary)
    return _replace(res, run_id=run_id, vector_ids=np.array(ids).reshape(vecs.shape[:3]), plots=tuple(plots))


def _replace(res: VectorsResult, **kw: Any) -> VectorsResult:
    from dataclasses import replace

    return replace(res, **kw)
