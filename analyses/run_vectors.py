"""``actstore analyze vectors``: difference-in-means value vectors from a store, recorded as catalog rows.

Library twin::

    from analyses.run_vectors import VectorsSpec, run
    res = run(actstore.open("runs/demo"), VectorsSpec(layers=(10, 11, 12)))
    res.vectors  # [V, C, L, d] float64; also rows of the store's `vectors` table (run res.run_id)

Default: the pooled ``mean_response`` arrays (one row per record), one streaming
``store.group_means`` call over a SQL group query (:mod:`analyses.groups`). Reads are O(records x d)
per layer and memory is O(groups x d) plus one chunk, whatever the store size.

Uncertainty (pooled arrays only; ``--tokens sql:`` vectors get none): one more pass per layer over
the same rows gives, per vector, a Poisson bootstrap over responses (``n_boot`` replicates: each
response weighted by an independent Poisson(1) draw, see :mod:`analyses.stats`) and ``n_splits``
random split-halves. From them: a 95% percentile interval on the norm, on cos(intrinsic, prompted)
and on the two singular values of [v_int, v_prompt], and the split-half reliability (mean cosine
of the two half-vectors, stepped up with Spearman-Brown). Memory is O(replicates x groups x d) for
a batch of values at a time (at most :data:`BOOT_BYTES`), never O(records x d).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.site import SITE_KINDS
from actstore.store import Store
from analyses import groups as gq
from analyses import stats as sx
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
    n_boot: int = sx.DEFAULT_BOOTSTRAP  # bootstrap replicates over responses (0 = no intervals)
    n_splits: int = sx.DEFAULT_SPLITS  # random split-halves for the reliability (0 = none)
    seed: int = 0
    condition: str | None = None
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
        if int(self.n_boot) < 0 or int(self.n_splits) < 0:
            raise InputError(f"--bootstrap and the number of split-halves must be >= 0, got {self.n_boot}, {self.n_splits}")
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
    uncertainty: Uncertainty | None = None  # bootstrap intervals and split-half reliability
    skipped: tuple[str, ...] = ()  # values left out by default: a group with fewer than min_count responses
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
                    u = self.uncertainty
                    if u is not None:
                        row |= {"norm_lo": u.norm_lo[i, c, j], "norm_hi": u.norm_hi[i, c, j]}
                    if self.cos_int_prompt is not None:
                        row["cos_int_prompt"] = float(self.cos_int_prompt[i, j])
                        if u is not None and u.cos_lo is not None:
                            row |= {"cos_lo": u.cos_lo[i, j], "cos_hi": u.cos_hi[i, j]}
                    if u is not None:
                        row["reliability"] = u.reliability[i, c, j]
                    if self.vector_ids is not None:
                        row["vector_id"] = int(self.vector_ids[i, c, j])
                    rows.append(row)
        return pd.DataFrame(rows)


#: Most bytes the bootstrap replicate sums of one pass may take (values are batched to fit).
BOOT_BYTES = 64 << 20


@dataclass(frozen=True)
class Uncertainty:
    """Bootstrap intervals (95%, percentile) and split-half reliability of a set of vectors."""

    n_boot: int
    n_splits: int
    seed: int
    norm_lo: np.ndarray  # [V, C, L]
    norm_hi: np.ndarray
    half_r: np.ndarray  # [V, C, L] mean cosine of the two half-vectors
    reliability: np.ndarray  # [V, C, L] Spearman-Brown of half_r
    cos_lo: np.ndarray | None = None  # [V, L] cos(intrinsic, prompted), exp-unexp only
    cos_hi: np.ndarray | None = None
    sv_lo: np.ndarray | None = None  # [V, L, 2] singular values of [v_int, v_prompt]
    sv_hi: np.ndarray | None = None

    def meta(self, i: int, c: int, j: int) -> dict[str, Any]:
        """What one vector row records about itself (``vectors.meta``)."""
        out: dict[str, Any] = {"norm_ci": [_f(self.norm_lo[i, c, j]), _f(self.norm_hi[i, c, j])],
                               "split_half_r": _f(self.half_r[i, c, j]), "reliability": _f(self.reliability[i, c, j]),
                               "n_boot": self.n_boot, "n_splits": self.n_splits, "seed": self.seed}
        if self.cos_lo is not None and self.sv_lo is not None and self.sv_hi is not None:
            assert self.cos_hi is not None
            out["cos_int_prompt_ci"] = [_f(self.cos_lo[i, j]), _f(self.cos_hi[i, j])]
            out["sv_ci"] = [[_f(self.sv_lo[i, j, k]), _f(self.sv_hi[i, j, k])] for k in range(2)]
        return out


def _f(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


#: (record, group) pairs fetched per batch by the streaming weighted sums: the group index is never
#: held whole.
ENTRY_BATCH = 1 << 16


def weighted_sums(store: Store, site: str, layer: int, pool: str, query: str, n_slots: int, n_rep: int,
                  weights: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-replicate weighted sums of pooled activations, streamed: ``(sums [R, S, d], weight totals [R, S])``.

    ``query`` returns ``("row", slot)`` pairs (a record may be in several slots), ordered by row;
    ``weights(rows [m], slots [m]) -> [R, m]`` gives each pair's weight in each replicate. The pairs
    are fetched :data:`ENTRY_BATCH` at a time and their records' rows read chunk by chunk, so memory
    is the sums plus one batch, whatever the store size.
    """
    width = store.array_meta(site, layer, pool).width
    sums = np.zeros((n_rep, n_slots, width))
    tot = np.zeros((n_rep, n_slots))
    reader = store.sql(query).to_arrow_reader(ENTRY_BATCH)
    try:
        for batch in reader:
            rows = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
            slots = batch.column(1).to_numpy(zero_copy_only=False).astype(np.int64)
            if not len(rows):
                continue
            uniq, start = np.unique(rows, return_index=True)
            end = np.r_[start[1:], len(rows)]
            for blk_rows, x in store.blocks(site, layer, uniq, pool=pool):
                ui = np.searchsorted(uniq, blk_rows)
                lens = end[ui] - start[ui]
                entries = np.repeat(start[ui] - np.cumsum(np.r_[0, lens[:-1]]), lens) + np.arange(lens.sum())
                xe = np.repeat(x.astype(np.float64), lens, axis=0)  # one row per (record, slot) pair
                w = weights(rows[entries], slots[entries])
                se = slots[entries]
                for k in np.unique(se):
                    sel = se == k
                    sums[:, k] += w[:, sel] @ xe[sel]
                    tot[:, k] += w[:, sel].sum(axis=1)
    finally:
        reader.close()
    return sums, tot


def replicate_means(store: Store, site: str, layer: int, pool: str, groups: gq.Groups, gids: list[int],
                    n_boot: int, n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-bootstrap and split-half group means of ``gids`` at one layer, in one streaming pass.

    Returns ``(boot [n_boot, g, d], halves [2, n_splits, g, d])`` float64 (NaN where a replicate
    has no weight). Weights are hashed from (seed, record, group id), so they are the same at every
    layer and whatever the chunking.
    """
    g, n_keys = len(gids), len(groups.keys)
    n_rep = n_boot + 2 * n_splits
    remap = " ".join(f"WHEN {gid} THEN {k}" for k, gid in enumerate(gids))
    query = (f'SELECT "row", CASE gid {remap} END AS slot FROM ({groups.query}) '
             f'WHERE gid IN ({", ".join(map(str, gids))}) ORDER BY "row", slot')
    gid_of = np.asarray(gids, dtype=np.int64)

    def weights(rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        keys = rows * n_keys + gid_of[slots]
        w = np.empty((n_rep, len(rows)))
        w[:n_boot] = sx.poisson_weights(seed, keys, n_boot)
        if n_splits:
            h = sx.half_masks(seed, keys, n_splits)
            w[n_boot:n_boot + n_splits], w[n_boot + n_splits:] = h, ~h
        return w

    sums, tot = weighted_sums(store, site, layer, pool, query, g, n_rep, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums /= tot[:, :, None]  # in place: the replicate sums are the biggest thing held
    return sums[:n_boot], sums[n_boot:].reshape(2, n_splits, g, sums.shape[-1])


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine, NaN where a replicate is NaN (vx.cosine would call it 0)."""
    bad = ~(np.isfinite(a).all(axis=-1) & np.isfinite(b).all(axis=-1))
    out = vx.cosine(np.nan_to_num(a), np.nan_to_num(b))
    out[bad] = np.nan
    return out


def uncertainty(store: Store, spec: VectorsSpec, layers: list[int], groups: gq.Groups, pos: np.ndarray,
                neg: np.ndarray, exp_unexp: bool) -> Uncertainty | None:
    """Bootstrap intervals and split-half reliability for the vectors ``means[pos] - means[neg]`` ([V, C])."""
    if spec.token_query is not None or (spec.n_boot == 0 and spec.n_splits == 0):
        return None
    V, C, L = pos.shape[0], pos.shape[1], len(layers)
    def nan(*shape: int) -> np.ndarray:
        return np.full(shape, np.nan)

    norm_lo, norm_hi, half_r = nan(V, C, L), nan(V, C, L), nan(V, C, L)
    cos_lo, cos_hi, sv_lo, sv_hi = nan(V, L), nan(V, L), nan(V, L, 2), nan(V, L, 2)
    width = store.array_meta(spec.site, layers[0], spec.pool).width
    n_rep = spec.n_boot + 2 * spec.n_splits
    per_value = 2 * C * n_rep * width * 8
    step = max(1, BOOT_BYTES // max(per_value, 1))
    for v0 in range(0, V, step):
        vs = list(range(v0, min(V, v0 + step)))
        gids = sorted({int(x) for x in np.concatenate([pos[vs].ravel(), neg[vs].ravel()])})
        at = {gid: k for k, gid in enumerate(gids)}
        for j, layer in enumerate(layers):
            boot, halves = replicate_means(store, spec.site, layer, spec.pool, groups, gids, spec.n_boot,
                                           spec.n_splits, spec.seed)
            for i in vs:
                reps = [boot[:, at[int(pos[i, c])]] - boot[:, at[int(neg[i, c])]] for c in range(C)]  # [B, d] each
                if spec.n_boot:
                    for c in range(C):
                        norm_lo[i, c, j], norm_hi[i, c, j] = sx.percentile_ci(np.linalg.norm(reps[c], axis=1))
                    if exp_unexp:
                        cos_lo[i, j], cos_hi[i, j] = sx.percentile_ci(_cos(reps[0], reps[1]))
                        # a replicate where a small group drew no weight is NaN: dropped, as the percentiles do
                        ok = np.isfinite(reps[0]).all(axis=1) & np.isfinite(reps[1]).all(axis=1)
                        if ok.any():
                            sv = np.linalg.svd(np.stack([reps[0][ok], reps[1][ok]], axis=-1), compute_uv=False)
                            sv_lo[i, j], sv_hi[i, j] = sx.percentile_ci(sv)  # [B', 2] -> [2], [2]
                if spec.n_splits:
                    for c in range(C):
                        a = halves[0][:, at[int(pos[i, c])]] - halves[0][:, at[int(neg[i, c])]]
                        b = halves[1][:, at[int(pos[i, c])]] - halves[1][:, at[int(neg[i, c])]]
                        r = _cos(a, b)
                        half_r[i, c, j] = np.nanmean(r) if np.isfinite(r).any() else np.nan
            del boot, halves
    return Uncertainty(spec.n_boot, spec.n_splits, spec.seed, norm_lo, norm_hi, half_r,
                       np.asarray(sx.spearman_brown(half_r)), cos_lo if exp_unexp else None,
                       cos_hi if exp_unexp else None, sv_lo if exp_unexp else None, sv_hi if exp_unexp else None)


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
    skipped: tuple[str, ...] = ()
    if spec.values is None and not spec.contrast.startswith("sql:"):
        # By default, values with a thin group are left out (and named) rather than failing the run;
        # values asked for by name must have every group (contrast() raises).
        ok = ((counts[pos] >= spec.min_count) & (counts[neg] >= spec.min_count)).all(axis=1)
        if ok.any() and not ok.all():
            skipped = tuple(v for v, k in zip(values, ok) if not k)
            values, pos, neg = tuple(v for v, k in zip(values, ok) if k), pos[ok], neg[ok]
    vecs = vx.contrast(means, counts, pos, neg, names, spec.min_count)  # [V, C, L, d]
    both = spec.contrast == "exp-unexp" and len(conditions) == 2
    cos = vx.cosine(vecs[:, 0], vecs[:, 1]) if both else None
    unc = uncertainty(store, spec, layers, groups, pos, neg, both)
    res = VectorsResult(tuple(values), tuple(conditions), tuple(layers), vecs, counts[pos], counts[neg], cos,
                        uncertainty=unc, skipped=skipped, note=note)

    plots: list[Path] = []
    if spec.plot:
        from analyses.plots import plot_cosine_by_layer, plot_norms_by_layer

        out = Path(spec.plot)
        used = np.concatenate([counts[pos].ravel(), counts[neg].ravel()])
        n = (int(used.min()), int(used.max()))
        if cos is not None:
            plots.append(plot_cosine_by_layer(cos, layers, out, values, n=n))
            out = out.with_name(out.stem + "_norms" + out.suffix)
        plots.append(plot_norms_by_layer(res.norms, layers, out, values, conditions, n=n))
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
                               n_pos=int(counts[pos[i, c]]), n_neg=int(counts[neg[i, c]]),
                               meta=meta | (unc.meta(i, c, j) if unc is not None else {}))
    summary: dict[str, Any] = {"vectors": len(rec.vectors)}
    if unc is not None:
        summary["min_reliability"] = _f(np.nanmin(unc.reliability)) if np.isfinite(unc.reliability).any() else None
        summary["uncertainty"] = {"n_boot": unc.n_boot, "n_splits": unc.n_splits, "seed": unc.seed,
                                  "method": "Poisson bootstrap over responses, 95% percentile; split-half cosine, "
                                            "Spearman-Brown"}
    if cos is not None:
        summary["mean_cos_int_prompt_by_layer"] = {str(l): float(x) for l, x in zip(layers, cos.mean(axis=0))}
    # The group query makes "the rows it used" exact and re-runnable against this store.
    params = {**spec.params(), "values": list(values), "skipped": list(skipped), "conditions": list(conditions),
              "layers": list(layers), "groups_sql": groups.query}
    run_id, ids = record(store, "vectors", params, rec, summary)
    return _replace(res, run_id=run_id, vector_ids=np.array(ids).reshape(vecs.shape[:3]), plots=tuple(plots))


def _replace(res: VectorsResult, **kw: Any) -> VectorsResult:
    from dataclasses import replace

    return replace(res, **kw)


def describe(res: VectorsResult, layer: int | None = None, unreliable: float = 0.5) -> list[str]:
    """The vectors' findings in words at one layer (default: the middle one), with group sizes,
    bootstrap intervals and split-half reliability; vectors below ``unreliable`` are named as noise."""
    j = len(res.layers) // 2 if layer is None else res.layers.index(layer)
    lay = res.layers[j]
    out = []
    u = res.uncertainty
    if res.cos_int_prompt is not None:
        parts = []
        for i, v in enumerate(res.values):
            ci = ""
            if u is not None and u.cos_lo is not None and u.cos_hi is not None:
                ci = f" [{u.cos_lo[i, j]:.2f}, {u.cos_hi[i, j]:.2f}]"
            parts.append(f"{v} {res.cos_int_prompt[i, j]:.2f}{ci} (n_exp/n_unexp {res.n_pos[i, 0]}/{res.n_neg[i, 0]} "
                         f"intrinsic, {res.n_pos[i, 1]}/{res.n_neg[i, 1]} prompted)")
        out.append(f"At layer {lay}, cos(intrinsic, prompted) per value"
                   + (f" with 95% bootstrap intervals over responses ({u.n_boot} replicates)" if u and u.n_boot else "")
                   + ": " + "; ".join(parts) + ".")
    if u is not None and u.n_splits:
        rel = u.reliability[:, :, j]
        weak = [f"{res.values[i]}/{res.conditions[c]} "
                f"({'no half had both groups' if np.isnan(rel[i, c]) else f'{rel[i, c]:.2f}'}, "
                f"n_exp/n_unexp {res.n_pos[i, c]}/{res.n_neg[i, c]})"
                for i in range(rel.shape[0]) for c in range(rel.shape[1]) if not rel[i, c] >= unreliable]
        span = (f"from {np.nanmin(rel):.2f} to {np.nanmax(rel):.2f}" if np.isfinite(rel).any() else "undefined")
        out.append(f"Split-half reliability (Spearman-Brown, {u.n_splits} random halves) at layer {lay} ranges {span}"
                   + (f"; below {unreliable} and so mostly noise: {', '.join(weak)}." if weak else
                      f"; every vector is above {unreliable}."))
    return out
