"""``actstore analyze crosslingual``: value vectors per language and how they line up.

One streaming ``group_means`` call over groups split by the language of each record (so the
store is read once for all languages), then per condition: the cosine of the same value across
every pair of languages per layer, and the share of one language's vector inside the other's
value subspace (:mod:`analyses.crosslingual`). Without ``values`` it compares each (value, condition)
whose groups (expressed or not, in every language) each hold ``min_count`` responses, leaves the
others out (NaN in the arrays, no table row, named in ``skipped``) and takes each condition's
subspace from its kept values; values asked for by name must have every group. The per-language
vectors are recorded as ``diff_means`` rows with their ``language`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from actstore.errors import InputError
from actstore.site import SITE_KINDS
from actstore.store import Store
from analyses import crosslingual as xl
from analyses import groups as gq
from analyses import vectors as vx
from analyses.recording import Recorder, check_layers, check_vector_width, need_model, record
from analyses.run_vectors import POOL_OF, check_labels, group_means_full, resolve_values
from ingest.values import parse_value


@dataclass(frozen=True)
class CrosslingualSpec:
    site: str = "resid_post"
    layers: tuple[int, ...] | None = None
    tokens: str = "response_mean"  # response_mean | last_prompt
    judge: str | None = None
    languages: tuple[str, ...] | None = None  # None = every language with labels
    values: tuple[str, ...] | None = None
    min_count: int = 5
    record: bool = True

    def __post_init__(self) -> None:
        if self.site not in SITE_KINDS:
            raise InputError(f"unknown site {self.site!r}; use one of {', '.join(SITE_KINDS)}")
        if self.tokens not in POOL_OF:
            raise InputError(f"bad --tokens {self.tokens!r}; cross-lingual vectors use response_mean or last_prompt")
        if self.values is not None:
            object.__setattr__(self, "values", tuple(parse_value(v) for v in self.values))
        if self.languages is not None and len(set(self.languages)) < 2:
            raise InputError("cross-lingual comparison needs at least two languages")
        if int(self.min_count) < 1:
            raise InputError(f"--min-count must be at least 1, got {self.min_count}")


@dataclass(frozen=True)
class CrosslingualResult:
    languages: tuple[str, ...]
    values: tuple[str, ...]
    conditions: tuple[str, ...]
    layers: tuple[int, ...]
    vectors: np.ndarray  # [N, V, C, L, d]
    cos: np.ndarray  # [N, N, V, C, L]
    share: np.ndarray  # [N, N, V, C, L]: share of a's vector inside b's value subspace
    run_id: int | None = None
    skipped: tuple[str, ...] = ()  # values left out by default for too few responses in some group

    def table(self):
        import pandas as pd

        rows = []
        n = len(self.languages)
        for a in range(n):
            for b in range(a + 1, n):
                for i, v in enumerate(self.values):
                    for c, cond in enumerate(self.conditions):
                        for j, layer in enumerate(self.layers):
                            if np.isnan(self.cos[a, b, i, c, j]):
                                continue  # this (value, condition) was left out: too few responses
                            rows.append({"lang_a": self.languages[a], "lang_b": self.languages[b], "value": v,
                                         "condition": cond, "layer": layer, "cos": self.cos[a, b, i, c, j],
                                         "share_a_in_b": self.share[a, b, i, c, j],
                                         "share_b_in_a": self.share[b, a, i, c, j]})
        return pd.DataFrame(rows)


def run(store: Store, spec: CrosslingualSpec) -> CrosslingualResult:
    need_model(store)
    pool = POOL_OF[spec.tokens]
    layers = check_layers(store, spec.layers, spec.site, pool)
    check_vector_width(store, spec.site, layers[0], pool, spec.record)
    check_labels(store, spec.judge)
    values = resolve_values(store, spec.values, spec.judge)
    have = gq.languages(store)
    langs = tuple(spec.languages) if spec.languages else tuple(have)
    missing = [x for x in langs if x not in have]
    if missing:
        raise InputError(f"no labelled records in language {missing[0]!r}; languages here: {', '.join(have) or 'none'}")
    if len(langs) < 2:
        raise InputError(f"cross-lingual comparison needs labelled records in two languages; this store has: {', '.join(have) or 'none'}")
    groups = gq.exp_unexp(values, spec.judge, languages=langs)
    means, counts, _ = group_means_full(store, spec.site, layers, groups, pool)
    per_lang = len(groups.keys) // len(langs)  # keys are in language blocks
    names = [f"{v}:{c}:{lab}" for _, v, c, lab in groups.keys[:per_lang]]
    conds = vx.CONDITIONS
    # keep[v, c]: every group of (value, condition), expressed or not, in every language has min_count
    fewest = np.full((len(values), len(conds)), np.iinfo(np.int64).max, dtype=np.int64)
    for (_, kv, kc, _), n in zip(groups.keys, counts):
        if kv in values and kc in conds:
            i, c = values.index(kv), conds.index(kc)
            fewest[i, c] = min(fewest[i, c], int(n))
    keep = fewest >= spec.min_count
    skipped: tuple[str, ...] = ()
    if spec.values is None:  # by default, leave thin (value, condition) pairs out and say so
        skipped = tuple(f"{v}/{c}" for i, v in enumerate(values) for j, c in enumerate(conds) if not keep[i, j])
        rows = [bool(keep[i].any()) for i in range(len(values))]
        values, keep = tuple(v for v, k in zip(values, rows) if k), keep[rows]
        if not values:
            raise InputError(f"no value has {spec.min_count} or more responses in every group (expressed or not, "
                             f"of one condition) in each of {', '.join(langs)}; lower --min-count")
    else:
        keep[:] = True  # asked for by name: a thin group is an error, raised by contrast()
    vecs, npos, nneg = [], [], []
    for n, lang in enumerate(langs):
        sl = slice(n * per_lang, (n + 1) * per_lang)
        pos, neg = vx.exp_vs_unexp_index(names, values)
        labelled = [f"{lang}/{x}" for x in names]
        vec = np.full((len(values), len(conds), len(layers), means.shape[-1]), np.nan)
        vec[keep] = vx.contrast(means[sl], counts[sl], pos[keep], neg[keep], labelled, spec.min_count)
        vecs.append(vec)
        npos.append(counts[sl][pos])
        nneg.append(counts[sl][neg])
    arr = np.stack(vecs)  # [N, V, C, L, d]; NaN where (value, condition) was left out
    cos = np.full((len(langs), len(langs), len(values), len(conds), len(layers)), np.nan)
    share = np.full_like(cos, np.nan)
    for c in range(len(conds)):  # each condition over its own kept values (the span is theirs)
        kept = np.flatnonzero(keep[:, c])
        if kept.size:
            cos[:, :, kept, c] = xl.cross_cosine(arr[:, kept, c])
            share[:, :, kept, c] = xl.span_share(arr[:, kept, c])
    res = CrosslingualResult(langs, values, conds, tuple(layers), arr, cos, share, skipped=skipped)
    if not spec.record:
        return res
    rec = Recorder()
    for n, lang in enumerate(langs):
        for i, v in enumerate(values):
            for c, cond in enumerate(conds):
                if not keep[i, c]:
                    continue
                for j, layer in enumerate(layers):
                    rec.add_vector(arr[n, i, c, j], name=f"{lang}/{v}/{cond}/{spec.site}.{layer}", value=v,
                                   condition=cond, component="diff_means", site=spec.site, layer=layer, pool=pool,
                                   language=lang, n_pos=int(npos[n][i, c]), n_neg=int(nneg[n][i, c]),
                                   meta={"contrast": "exp-unexp", "judge": spec.judge})
    iu = np.triu_indices(len(langs), k=1)
    summary = {"mean_cos_by_layer": {str(l): float(np.nanmean(cos[iu][..., j])) for j, l in enumerate(layers)}}
    params = {"site": spec.site, "layers": list(layers), "tokens": spec.tokens, "judge": spec.judge,
              "languages": list(langs), "values": list(values), "skipped": list(skipped), "min_count": spec.min_count}
    run_id, _ = record(store, "crosslingual", params, rec, summary)
    return replace(res, run_id=run_id)
