"""``actstore analyze structure``: the circumplex in the stored value vectors.

Takes one stored component per value (default the ``shared`` axes of the latest decompose run),
fits the circle at every layer (PCA to 2-D, scipy's orthogonal Procrustes onto the theoretical
circle, R^2 with a permutation p-value) and, at one layer, reports R^2 per higher-order group and
the agreement of the value-by-value cosine matrix with the theoretical circumplex and with human
inter-value correlations from a Value Portrait survey file.

Without ``layer`` the detail is given for the best-fitting layer; its p-value is then not
corrected for having chosen the layer (the per-layer table shows every layer's).

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
from analyses import structure as sx
from analyses.recording import Recorder, latest_run, load_vectors, record
from ingest.values import VALUE_SLUGS


@dataclass(frozen=True)
class StructureSpec:
    component: str | None = None  # None: shared if the store has it, else diff_means (see the module doc)
    condition: str | None = None  # for diff_means: intrinsic | prompted (default: intrinsic if stored)
    layer: int | None = None
    run_id: int | None = None  # the run holding the vectors; default: the latest holding the component
    language: str | None = None
    human: str | None = None  # path of human_pvq21_scores.json (or its folder)
    n_perm: int = 1000
    seed: int = 0
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
        if self.condition not in (None, "intrinsic", "prompted"):
            raise InputError(f"bad --condition {self.condition!r}; use intrinsic or prompted")
        if int(self.n_perm) < 1:
            raise InputError(f"--n-perm must be at least 1, got {self.n_perm}")


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
    component: str = "shared"
    condition: str | None = None
    note: str | None = None  # how the component was chosen, when the spec left it open

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"layer": l, "r2": r2, "p_value": p} for l, (r2, p) in self.per_layer.items()])


def _source(store: Store, spec: StructureSpec) -> int:
    if spec.run_id is not None:
        return int(spec.run_id)
    where = f"run_id IN (SELECT run_id FROM vectors WHERE component = '{spec.component}')" \
        if spec.component.isidentifier() else "FALSE"
    for kind in ("decompose", "vectors", "crosslingual"):
        found = latest_run(store, kind, where)
        if found is not None:
            return found
    raise InputError(f"no stored {spec.component!r} vectors; run 'actstore analyze vectors' and 'decompose' first")


def _has(store: Store, component: str, run_id: int | None, condition: str | None = None) -> bool:
    where, params = "component = ?", [component]
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
    fits = {l: sx.circumplex_fit(x, values, n_perm=spec.n_perm, seed=spec.seed) for l, x in at.items()}
    per_layer = {l: (f.r2, f.p_value) for l, f in fits.items()}
    chosen = spec.layer is None
    layer = spec.layer if spec.layer is not None else max(fits, key=lambda l: fits[l].r2)
    if layer not in fits:
        raise InputError(f"layer {layer} lacks a vector for some value; layers with all values: {', '.join(map(str, fits))}")
    cos = sx.cosine_matrix(at[layer])
    theory = sx.compare_matrices(cos, sx.circumplex_similarity(sx.value_angles(values)))
    human, n_part = None, None
    if spec.human:
        hmat, n_part = sx.load_human_correlations(spec.human, values)
        human = sx.compare_matrices(cos, hmat)
    plot = None
    if spec.plot:
        from analyses.plots import plot_circumplex

        plot = plot_circumplex(fits[layer].aligned, fits[layer].target, spec.plot, values,
                               title=f"{spec.component} vectors, layer {layer}: R^2 = {fits[layer].r2:.2f}")
    res = StructureResult(src, layer, values, per_layer, fits[layer], cos, theory, human, n_part, chosen, plot=plot,
                          component=spec.component, condition=spec.condition, note=note)
    if not spec.record:
        return res
    summary = {"layer": layer, "r2": fits[layer].r2, "p_value": fits[layer].p_value,
               "r2_by_group": fits[layer].r2_by_group, "theory_pearson": theory.pearson,
               "human_pearson": human.pearson if human else None,
               "per_layer_r2": {str(l): r2 for l, (r2, _) in per_layer.items()}}
    params_ = {"source_run": src, "component": spec.component, "condition": spec.condition, "layer": spec.layer,
               "language": spec.language, "human": spec.human, "n_perm": spec.n_perm, "seed": spec.seed}
    run_id, _ = record(store, "structure", params_, Recorder(), summary)
    return replace(res, run_id=run_id)
