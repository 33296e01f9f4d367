"""``actstore analyze structure``: the circumplex in the stored value vectors.

Takes one stored component per value (default the ``shared`` axes of the latest decompose run),
fits the circle at every layer (PCA to 2-D, scipy's orthogonal Procrustes onto the theoretical
circle, R^2 with a permutation p-value) and, at one layer, reports R^2 per higher-order group and
the agreement of the value-by-value cosine matrix with the theoretical circumplex and with human
inter-value correlations from a Value Portrait survey file.

Statistics a reviewer asks for (:mod:`analyses.stats`):

- **Mantel tests** of the cosine matrix against the theoretical circumplex and against the human
  matrix at every layer: the p-value permutes the value labels (the 45 pairs share values, so the
  parametric p of a Pearson r over them is too small);
- **the choice of layer corrected**: without ``layer`` the detail is given for the best-fitting
  layer, and its p-values (circle R^2, Mantel) are also given against the maximum over layers of
  each permutation (``p_corrected``), the chance that *some* layer fits that well by luck;
- **null baselines beside the model**, at the detail layer: random directions (V random unit
  vectors of the same width); labels shuffled within value (the same responses, each one's
  expressed/unexpressed label redrawn at random with its group's rate, the vectors rebuilt: what
  the response population alone gives); and the **label co-occurrence** matrix (the correlation of
  the judge's labels across the records of the groups used, no model at all), with the partial
  correlation of model vs human (and vs theory) given that co-occurrence.

The shuffle null and the co-occurrence need the vectors run behind the component (an exp-unexp run
over pooled arrays); they are skipped, and said so, otherwise.

Without ``component``: the shared axes when the store has them; a store with one condition only
(a Value Portrait import: intrinsic) cannot be decomposed, so there the ``diff_means`` vectors of its
condition are used, and the result's ``note`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses import decompose as dc
from analyses import groups as gq
from analyses import stats as st_
from analyses import structure as sx
from analyses.recording import Recorder, latest_run, load_vectors, record, run_params
from ingest.values import VALUE_SLUGS


@dataclass(frozen=True)
class StructureSpec:
    component: str | None = None  # None: shared if the store has it, else diff_means (see the module doc)
    condition: str | None = None  # for diff_means: intrinsic | prompted (default: intrinsic if stored)
    layer: int | None = None
    run_id: int | None = None  # the run holding the vectors; default: the latest holding the component
    language: str | None = None
    human: str | None = None  # path of human_pvq21_scores.json (or its folder)
    n_perm: int = st_.DEFAULT_PERMUTATIONS
    seed: int = 0
    n_shuffle: int = 20  # label-shuffle null: vector sets rebuilt with shuffled labels (0 = skip)
    n_random: int | None = None  # random-direction null draws (default: n_perm)
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
        if self.condition not in (None, "intrinsic", "prompted"):
            raise InputError(f"bad --condition {self.condition!r}; use intrinsic or prompted")
        if int(self.n_perm) < 1:
            raise InputError(f"--permutations must be at least 1, got {self.n_perm}")
        if int(self.n_shuffle) < 0 or (self.n_random is not None and int(self.n_random) < 1):
            raise InputError(f"--shuffles must be >= 0 and random draws >= 1, got {self.n_shuffle}, {self.n_random}")


@dataclass(frozen=True)
class StructureResult:
    source_run: int
    layer: int
    values: tuple[str, ...]
    per_layer: dict[int, tuple[float, float]]  # layer -> (R^2, p)
    fit: sx.CircumplexFit
    cosine: np.ndarray  # [V, V] at `layer`
    vs_theory: sx.MatrixAgreement
    vs_human: sx.MatrixAgreement | None
    n_participants: int | None
    chosen: bool  # True when the layer was picked as the best fit
    run_id: int | None = None
    plot: Path | None = None
    r2_p_corrected: dict[int, float] | None = None  # layer -> p against the max R^2 over layers
    mantel_theory: st_.LayerMantel | None = None  # over the layers of per_layer, in order
    mantel_human: st_.LayerMantel | None = None
    cooc: np.ndarray | None = None  # [V, V] label co-occurrence (phi), no model
    baselines: dict[str, dict] | None = None  # name -> {"theory": ..., "human": ...} at `layer`
    notes: tuple[str, ...] = ()
    component: str = "shared"
    condition: str | None = None
    note: str | None = None  # how the component was chosen, when the spec left it open

    def table(self):
        """Per layer: circle R^2 with its p (plain and corrected for the choice of layer), Mantel r and p."""
        import pandas as pd

        rows = []
        for k, (l, (r2, p)) in enumerate(self.per_layer.items()):
            row = {"layer": l, "r2": r2, "p_value": p}
            if self.r2_p_corrected is not None:
                row["p_corrected"] = self.r2_p_corrected[l]
            for name, m in (("theory", self.mantel_theory), ("human", self.mantel_human)):
                if m is not None:
                    row |= {f"r_{name}": m.r[k], f"p_{name}": m.p[k], f"p_{name}_corr": m.p_corrected[k]}
            rows.append(row)
        return pd.DataFrame(rows)

    def baseline_table(self):
        """At the detail layer: the model beside the nulls, r with theory and with the human matrix.

        Nulls are given as their mean and 95% range; ``p`` is the model's r against that null."""
        import pandas as pd

        rows = []
        for name, b in (self.baselines or {}).items():
            row: dict = {"source": name}
            for target in ("theory", "human"):
                x = b.get(target)
                if x is None:
                    continue
                if "null_mean" in x:
                    row[f"r_{target}"] = f"{x['null_mean']:.3f} [{x['null_lo']:.3f}, {x['null_hi']:.3f}]"
                    row[f"p_{target}"] = x["p"]
                else:
                    row[f"r_{target}"] = f"{x['r']:.3f}"
                    row[f"p_{target}"] = x.get("p")
            rows.append(row)
        return pd.DataFrame(rows)

    def sentences(self) -> list[str]:
        """The findings in words, with their p-values and baselines (for reports)."""
        return describe(self)


def _source(store: Store, spec: StructureSpec) -> int:
    if spec.run_id is not None:
        return int(spec.run_id)
    comp = spec.component or ""
    where = f"run_id IN (SELECT run_id FROM vectors WHERE component = '{comp}')" \
        if comp.isidentifier() else "FALSE"
    for kind in ("decompose", "vectors", "crosslingual"):
        found = latest_run(store, kind, where)
        if found is not None:
            return found
    raise InputError(f"no stored {spec.component!r} vectors; run 'actstore analyze vectors' and 'decompose' first")


def _has(store: Store, component: str, run_id: int | None, condition: str | None = None) -> bool:
    where, params = "component = ?", list[object]([component])
    if run_id is not None:
        where, params = where + " AND run_id = ?", params + [int(run_id)]
    if condition is not None:
        where, params = where + " AND condition = ?", params + [condition]
    return bool(store.sql(f"SELECT count(*) FROM vectors WHERE {where}", params).fetchall()[0][0])


def resolve(store: Store, spec: StructureSpec) -> tuple[StructureSpec, str | None]:
    """Fill in the component (and the condition of diff_means) the spec leaves open; -> (spec, note)."""
    if spec.component is None:
        if _has(store, "shared", spec.run_id) or not _has(store, "diff_means", spec.run_id):
            return replace(spec, component="shared"), None
        spec = replace(spec, component="diff_means")
        cond = spec.condition or ("intrinsic" if _has(store, "diff_means", spec.run_id, "intrinsic") else "prompted")
        note = (f"no shared axes in this store (decompose needs both conditions): using the {cond} diff_means "
                "vectors; choose with --component")
        return replace(spec, condition=cond), note
    if spec.component == "diff_means" and spec.condition is None:
        return replace(spec, condition="intrinsic"), None
    return spec, None


def run(store: Store, spec: StructureSpec) -> StructureResult:
    spec, note = resolve(store, spec)
    assert spec.component is not None
    src = _source(store, spec)
    where, params = "run_id = ? AND component = ?", [src, spec.component]
    if spec.condition is not None:
        where, params = where + " AND condition = ?", params + [spec.condition]
    if spec.language is not None:
        where, params = where + " AND language = ?", params + [spec.language]
    rows, vecs = load_vectors(store, where, params)
    if not rows:
        raise InputError(f"run {src} has no {spec.component!r} vectors"
                         + (f" for condition {spec.condition}" if spec.condition else ""))
    langs = {r["language"] for r in rows}
    if len(langs) > 1:
        raise InputError(f"run {src} holds vectors in {len(langs)} languages; choose one with --language")
    index = {(r["value"], r["layer"]): k for k, r in enumerate(rows)}
    values = tuple(v for v in VALUE_SLUGS if any(key[0] == v for key in index))
    layers = sorted({r["layer"] for r in rows})
    if len(values) < 3:
        raise InputError(f"the circle needs at least 3 values; run {src} has {len(values)}")
    if spec.layer is not None and spec.layer not in layers:
        raise InputError(f"no {spec.component} vectors at layer {spec.layer}; layers: {', '.join(map(str, layers))}")
    at = {l: np.stack([vecs[index[(v, l)]] for v in values]).astype(np.float64) for l in layers
          if all((v, l) in index for v in values)}
    # One seed for every layer: each layer's permutations are the same label orders, so the max
    # over layers of each permutation's R^2 is the null of the best layer (max-statistic).
    fits = {l: sx.circumplex_fit(x, values, n_perm=spec.n_perm, seed=spec.seed) for l, x in at.items()}
    per_layer = {l: (f.r2, f.p_value) for l, f in fits.items()}
    max_r2 = np.max(np.stack([f.perm_r2 for f in fits.values()]), axis=0)
    r2_corr = {l: st_.empirical_p(f.r2, max_r2) for l, f in fits.items()}
    chosen = spec.layer is None
    layer = spec.layer if spec.layer is not None else max(fits, key=lambda l: fits[l].r2)
    if layer not in fits:
        raise InputError(f"layer {layer} lacks a vector for some value; layers with all values: {', '.join(map(str, fits))}")
    cos = sx.cosine_matrix(at[layer])
    theory_mat = sx.circumplex_similarity(sx.value_angles(values))
    theory = sx.compare_matrices(cos, theory_mat)
    human, n_part, hmat = None, None, None
    if spec.human:
        hmat, n_part = sx.load_human_correlations(spec.human, values)
        human = sx.compare_matrices(cos, hmat)
    mats = np.stack([sx.cosine_matrix(at[l]) for l in fits])
    m_theory = st_.mantel_layers(mats, theory_mat, spec.n_perm, spec.seed)
    m_human = st_.mantel_layers(mats, hmat, spec.n_perm, spec.seed) if hmat is not None else None
    targets = {"theory": theory_mat, **({"human": hmat} if hmat is not None else {})}
    k = list(fits).index(layer)
    baselines: dict[str, dict] = {f"model (layer {layer})": {
        "theory": {"r": float(m_theory.r[k]), "p": float(m_theory.p_corrected[k] if chosen else m_theory.p[k])},
        **({"human": {"r": float(m_human.r[k]), "p": float(m_human.p_corrected[k] if chosen else m_human.p[k])}}
           if m_human is not None else {})}}
    notes: list[str] = []
    cooc = None
    vec_run, vparams = _vectors_run(store, src)
    if vec_run is not None:
        cooc = _cooccurrence(store, vparams, values)
    if cooc is None:
        notes.append("label co-occurrence: no records labelled for two or more of these values (or no exp-unexp "
                     "vectors run behind them); baseline skipped")
    else:
        row: dict[str, dict] = {}
        for name, t in targets.items():
            m = st_.mantel(cooc, t, spec.n_perm, spec.seed)
            row[name] = {"r": m.r, "p": m.p}
        baselines["label co-occurrence (no model)"] = row
        row = {}
        for name, t in targets.items():
            pm = st_.partial_mantel(cos, t, cooc, spec.n_perm, spec.seed)
            row[name] = {"r": pm.r, "p": pm.p}
        baselines["model beyond co-occurrence (partial r)"] = row
    n_random = spec.n_random or spec.n_perm
    rand = _random_null(len(values), at[layer].shape[1], n_random, spec.seed)
    baselines[f"random directions (x{n_random})"] = {
        name: st_.null_summary(_r_with(rand, t), float(baselines[f"model (layer {layer})"][name]["r"]))
        for name, t in targets.items()}
    shuffled = None
    if spec.n_shuffle and vec_run is not None:
        shuffled = _shuffle_null(store, vparams, values, layer, spec, rows[0]["site"], rows[0]["pool"], notes)
    elif spec.n_shuffle:
        notes.append("labels shuffled within value: needs an exp-unexp vectors run over pooled arrays; skipped")
    if shuffled is not None:
        baselines[f"labels shuffled within value (x{spec.n_shuffle})"] = {
            name: st_.null_summary(_r_with(shuffled, t), float(baselines[f"model (layer {layer})"][name]["r"]))
            for name, t in targets.items()}
    plot = None
    if spec.plot:
        from analyses.plots import plot_circumplex

        plot = plot_circumplex(fits[layer].aligned, fits[layer].target, spec.plot, values,
                               title=f"{spec.component} vectors, layer {layer}: R^2 = {fits[layer].r2:.2f}",
                               explained=fits[layer].explained)
    res = StructureResult(src, layer, values, per_layer, fits[layer], cos, theory, human, n_part, chosen, plot=plot,
                          r2_p_corrected=r2_corr, mantel_theory=m_theory, mantel_human=m_human, cooc=cooc,
                          baselines=baselines, notes=tuple(notes),
                          component=spec.component, condition=spec.condition, note=note)
    if not spec.record:
        return res
    layer_list = list(fits)
    summary = {"layer": layer, "chosen": chosen, "r2": fits[layer].r2, "p_value": fits[layer].p_value,
               "p_corrected": r2_corr[layer], "r2_by_group": fits[layer].r2_by_group,
               "theory_pearson": theory.pearson, "human_pearson": human.pearson if human else None,
               "per_layer_r2": {str(l): r2 for l, (r2, _) in per_layer.items()},
               "per_layer_p_corrected": {str(l): p for l, p in r2_corr.items()},
               "mantel_theory": m_theory.as_dict(layer_list),
               "mantel_human": m_human.as_dict(layer_list) if m_human is not None else None,
               "baselines": baselines, "notes": notes,
               "cooccurrence": cooc.round(6).tolist() if cooc is not None else None}
    params_ = {"source_run": src, "component": spec.component, "condition": spec.condition, "layer": spec.layer,
               "language": spec.language, "human": spec.human, "n_perm": spec.n_perm, "seed": spec.seed,
               "n_shuffle": spec.n_shuffle, "n_random": n_random}
    run_id, _ = record(store, "structure", params_, Recorder(), summary)
    return replace(res, run_id=run_id)


def _vectors_run(store: Store, src: int) -> tuple[int | None, dict]:
    """The exp-unexp vectors run behind ``src`` (itself, or a decompose run's source), with its params."""
    kind, params = run_params(store, src)
    if kind == "decompose" and params.get("source_run") is not None:
        src = int(params["source_run"])
        kind, params = run_params(store, src)
    if kind != "vectors" or params.get("contrast") != "exp-unexp":
        return None, {}
    return src, params


def _cooccurrence(store: Store, vparams: dict, values: tuple[str, ...]) -> np.ndarray | None:
    """Phi correlation of the labels of each value pair over the records of the vectors' groups (no model).

    Aggregated in SQL (one row per value pair), so memory does not grow with the records."""
    groups = gq.exp_unexp(values, vparams.get("judge"), vparams.get("language"))
    where = ""
    if vparams.get("judge") is not None:
        where += f" AND judge_id = {gq.sql_str(vparams['judge'])}"
    if vparams.get("language") is not None:
        where += f" AND language = {gq.sql_str(vparams['language'])}"
    listed = ", ".join(gq.sql_str(v) for v in values)
    rows = store.sql(f"""WITH grp AS (SELECT DISTINCT "row" FROM ({groups.query})),
l AS (SELECT record_id, {gq.norm_sql('value')} AS value, expressed::DOUBLE AS x FROM record_labels
      WHERE record_id IN (SELECT "row" FROM grp) AND {gq.norm_sql('value')} IN ({listed}){where})
SELECT a.value, b.value, coalesce(corr(a.x, b.x), 0), count(*) FROM l a JOIN l b
  ON a.record_id = b.record_id AND a.value < b.value GROUP BY ALL""").fetchall()
    if not rows or max(int(r[3]) for r in rows) < 3:
        return None
    idx = {v: i for i, v in enumerate(values)}
    out = np.eye(len(values))
    for a, b, r, n in rows:
        if int(n) >= 3 and np.isfinite(r):
            out[idx[a], idx[b]] = out[idx[b], idx[a]] = round(float(r), 12)  # exact zeros stay zeros
    return out


def _random_null(n_values: int, d: int, n: int, seed: int) -> np.ndarray:
    """Cosine matrices ``[n, V, V]`` of V random unit vectors in R^d (16 draws at a time: never n x V x d)."""
    out = np.empty((n, n_values, n_values))
    rng = np.random.default_rng(seed + 17)
    for s in range(0, n, 16):
        k = min(16, n - s)
        x = rng.standard_normal((k, n_values, d))
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        out[s:s + k] = x @ np.swapaxes(x, 1, 2)
    return out


def _r_with(mats: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson r over the off-diagonal pairs of each of ``mats [n, V, V]`` with ``target``."""
    a = st_.offdiag(mats)
    a = a - a.mean(axis=1, keepdims=True)
    b = st_.offdiag(target) - st_.offdiag(target).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a @ b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b))


def _shuffle_null(store: Store, vparams: dict, values: tuple[str, ...], layer: int, spec: StructureSpec,
                  site: str, pool: str, notes: list[str]) -> np.ndarray | None:
    """Cosine matrices ``[K, V, V]`` of the component rebuilt with labels shuffled within each value.

    For each (value, condition), every response's expressed/unexpressed label is redrawn at random
    with the group's own rate of expression (a hash of seed, shuffle and response: one streaming
    pass at one layer over the pooled arrays, memory O(K x V x d))."""
    from analyses.run_vectors import weighted_sums

    if pool not in ("mean_response", "last_prompt") or str(vparams.get("tokens", "")).startswith("sql:"):
        notes.append("labels shuffled within value: the vectors were built from token rows; skipped")
        return None
    try:
        store.array_meta(site, layer, pool)
    except Exception:  # noqa: BLE001 - the array is not in this store: say so, do not fail the run
        notes.append(f"labels shuffled within value: no {site} layer {layer} {pool} array; skipped")
        return None
    groups = gq.exp_unexp(values, vparams.get("judge"), vparams.get("language"))
    # keys are (value, condition, label) in order: gid // 2 is the (value, condition) slot, gid % 2 the label
    counts = np.zeros(len(groups.keys))
    for gid, n in store.sql(f"SELECT gid, count(*) FROM ({groups.query}) GROUP BY gid").fetchall():
        counts[int(gid)] = n
    n_slots = len(groups.keys) // 2
    n_exp, n_all = counts[0::2], counts[0::2] + counts[1::2]
    rate = np.divide(n_exp, n_all, out=np.zeros(n_slots), where=n_all > 0)
    K = int(spec.n_shuffle)

    def weights(rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        u = st_.hash_uniform(spec.seed, rows * n_slots + slots, K, stream=3)
        return np.vstack([u < rate[slots][None, :], np.ones((1, len(rows)))])

    query = f'SELECT "row", gid // 2 AS slot FROM ({groups.query}) ORDER BY "row", slot'
    sums, tot = weighted_sums(store, site, layer, pool, query, n_slots, K + 1, weights)
    s1, n1, t, n = sums[:K], tot[:K], sums[K], tot[K]
    with np.errstate(invalid="ignore", divide="ignore"):
        vec = s1 / n1[..., None] - (t[None] - s1) / (n[None, :, None] - n1[..., None])  # [K, S, d]
    vec = vec.reshape(K, len(values), 2, -1)
    v_int, v_prompt = vec[:, :, 0], vec[:, :, 1]
    comp = spec.component
    if comp == "diff_means":
        x = v_int if spec.condition != "prompted" else v_prompt
    else:
        parts = dc.decompose(np.nan_to_num(v_int), np.nan_to_num(v_prompt))
        x = {"shared": parts.shared, "intrinsic_unique": parts.unique, "prompted_unique": -parts.unique,
             "int_only": parts.int_only, "prompt_only": parts.prompt_only}.get(comp or "")
        if x is None:
            notes.append(f"labels shuffled within value: no null for component {comp!r}; skipped")
            return None
    return np.stack([sx.cosine_matrix(np.nan_to_num(x[k])) for k in range(K)])


def describe(res: StructureResult) -> list[str]:
    """Sentences stating the structure findings with their p-values and baselines."""
    out = []
    l, fit = res.layer, res.fit
    how = (f"the best of {len(res.per_layer)} layers (p = {fit.p_value:.3g} at that layer, "
           f"{res.r2_p_corrected[l]:.3g} corrected for choosing it among all layers)"
           if res.chosen and res.r2_p_corrected else f"the layer asked for (permutation p = {fit.p_value:.3g})")
    out.append(f"The circumplex fit reaches R^2 = {fit.r2:.2f} at layer {l}, {how}.")
    b = res.baselines or {}
    model = next((v for k, v in b.items() if k.startswith("model (")), {})
    for target, word in (("theory", "the theoretical circumplex"), ("human", "the human inter-value correlations")):
        if target not in model:
            continue
        text = f"Against {word}, the value-by-value cosines correlate r = {model[target]['r']:.2f} "                f"(Mantel p = {model[target]['p']:.3g}{', corrected for the layer choice' if res.chosen else ''})"
        extra = []
        for name, vals in b.items():
            x = vals.get(target)
            if x is None or name.startswith("model ("):
                continue
            if name.startswith("label co-occurrence"):
                extra.append(f"the labels' co-occurrence alone, with no model, gives r = {x['r']:.2f}")
            elif name.startswith("model beyond"):
                extra.append(f"the model's part beyond that co-occurrence is a partial r = {x['r']:.2f} (p = {x['p']:.3g})")
            else:
                extra.append(f"{name.split(' (x')[0]} give r = {x['null_mean']:.2f} "
                             f"[{x['null_lo']:.2f}, {x['null_hi']:.2f}] (the model's p against them {x['p']:.3g})")
        out.append(text + ("; " + "; ".join(extra) if extra else "") + ".")
    out += [n[0].upper() + n[1:] + "." for n in res.notes]
    return out
