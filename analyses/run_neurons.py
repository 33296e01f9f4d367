"""``actstore analyze neurons``: value neurons from the stored down projections and vectors.

For each layer with a stored ``weight("mlp_down", l)`` and each value of a vectors run: the
study's static score and class (:func:`analyses.neurons.score_layer`), and, when the store holds
pooled ``mlp_act`` arrays of the vectors' pool, the activation-weighted attribution
``delta_act_i * proj_shared_i``. ``delta_act`` is R_exp minus R_unexp mean activation, averaged over
the two conditions (each condition's contrast weighs the same, as the vectors do). Rows go to
``neuron_scores`` with the run's id; the overlap statistics (class counts, Jaccard of the
intrinsic and prompted top sets) go into the run's summary and the result.

Each overlap figure comes with what random directions give (``n_random`` random pairs with the
same norms and the same angle between them, per value and layer, scored the same way:
:func:`analyses.neurons.random_plane_null`): the null's mean and 95% range and the real pair's
p-value (share of random pairs with as large a figure). A Jaccard of 0.4 means little if random
pairs at the same angle give 0.35.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses import groups as gq
from analyses import neurons as nr
from analyses import stats as sx
from analyses import vectors as vx
from analyses.recording import Recorder, latest_run, load_vectors, parse_frac, record, run_params
from analyses.run_vectors import group_means_full, need_both_conditions


@dataclass(frozen=True)
class NeuronsSpec:
    run_id: int | None = None  # vectors run (exp-unexp); None = the latest
    top: float | str = "1%"
    max_angle: float = nr.DEFAULT_MAX_ANGLE
    layers: tuple[int, ...] | None = None
    relative: bool = False
    attribution: bool = True
    n_random: int = 100  # random-direction pairs per value and layer for the null (0 = none)
    seed: int = 0
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
        if int(self.n_random) < 0:
            raise InputError(f"the number of random directions must be >= 0, got {self.n_random}")
        frac = parse_frac(self.top)
        nr.n_keep(1000, frac)  # validates the range
        object.__setattr__(self, "top", frac)
        if not 0 < float(self.max_angle) <= 90:
            raise InputError(f"--max-angle must be in (0, 90] degrees, got {self.max_angle}")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))


@dataclass(frozen=True)
class NeuronsResult:
    source_run: int
    values: tuple[str, ...]
    layers: tuple[int, ...]
    rows: dict[str, np.ndarray]  # neuron_scores columns (one row per kept neuron)
    counts: dict[str, np.ndarray]  # value, layer, class, count
    jaccard: dict[str, np.ndarray]  # value, layer, jaccard
    attribution: bool
    run_id: int | None = None
    plot: Path | None = None
    null: dict[str, np.ndarray] | None = None  # value, layer, <figure>_null / _lo / _hi / _p (random directions)

    def table(self):
        """Kept neurons per class for each (layer, value), with the Jaccard of the top sets, each beside
        the mean (and p) of random directions at the same angle."""
        import pandas as pd

        counts = pd.DataFrame({k: list(v) for k, v in self.counts.items()})
        wide = counts.pivot_table(index=["layer", "value"], columns="class", values="count", aggfunc="sum").reset_index()
        jac = pd.DataFrame({k: list(v) for k, v in self.jaccard.items()})
        out = wide.merge(jac, on=["layer", "value"])
        cols = ["layer", "value"]
        for c in (*nr.CLASSES, nr.UNCLASSIFIED, "jaccard"):
            cols += [c] + ([f"{c}_null", f"{c}_p"] if self.null is not None else [])
        if self.null is not None:
            out = out.merge(pd.DataFrame({k: list(v) for k, v in self.null.items()}), on=["layer", "value"])
        return out[[c for c in cols if c in out.columns]]


def source_vectors(store: Store, run_id: int | None) -> tuple[int, dict, tuple[str, ...], tuple[int, ...], np.ndarray, np.ndarray]:
    """(run id, its params, values, layers, v_int [V, L, d], v_prompt [V, L, d]) of a vectors run."""
    if run_id is None:
        run_id = latest_run(store, "vectors", "json_extract_string(params, '$.contrast') = 'exp-unexp'")
        if run_id is None:
            raise InputError("no vectors run with the exp-unexp contrast in this store; run 'actstore analyze vectors' first")
    kind, params = run_params(store, run_id)
    if kind != "vectors" or params.get("contrast") != "exp-unexp":
        raise InputError(f"run {run_id} is a {kind} run; pass a vectors run with the exp-unexp contrast")
    rows, vecs = load_vectors(store, "run_id = ? AND component = 'diff_means'", [run_id])
    need_both_conditions(rows, run_id, "neurons")
    index = {(r["value"], r["condition"], r["layer"]): k for k, r in enumerate(rows)}
    values = tuple(dict.fromkeys(r["value"] for r in rows))
    layers = tuple(sorted({r["layer"] for r in rows}))

    def take(cond: str) -> np.ndarray:  # [V, L, d]
        return np.stack([[vecs[index[(v, cond, l)]] for l in layers] for v in values]).astype(np.float64)

    return run_id, params, values, layers, take("intrinsic"), take("prompted")


def _delta_act(store: Store, params: dict, values: tuple[str, ...], layer: int) -> np.ndarray | None:
    """R_exp minus R_unexp mean MLP activation per value ``[V, d_mlp]``, or None if not stored."""
    pool = {"response_mean": "mean_response", "last_prompt": "last_prompt"}.get(params.get("tokens", ""))
    if pool is None or not any(m.site == "mlp_act" and m.layer == layer and m.pool == pool for m in store.arrays()):
        return None
    groups = gq.exp_unexp(values, params.get("judge"), params.get("language"))
    means, counts, names = group_means_full(store, "mlp_act", [layer], groups, pool)
    pos, neg = vx.exp_vs_unexp_index(names, values)
    return vx.contrast(means, counts, pos, neg, names, min_count=1)[:, :, 0].mean(axis=1)  # [V, n]


def run(store: Store, spec: NeuronsSpec) -> NeuronsResult:
    src, params, values, vlayers, v_int, v_prompt = source_vectors(store, spec.run_id)
    weighted = sorted(int(m.layer) for m in store.arrays()
                      if m.kind == "weight" and m.site == "mlp_down" and m.layer is not None)
    layers = spec.layers if spec.layers is not None else tuple(l for l in vlayers if l in weighted)
    for layer in layers:
        if layer not in vlayers:
            raise InputError(f"run {src} has no vectors at layer {layer}; its layers: {', '.join(map(str, vlayers))}")
        if layer not in weighted:
            raise InputError(f"the store has no mlp_down weight for layer {layer}; stored: {', '.join(map(str, weighted)) or 'none'}")
    if not layers:
        raise InputError("no layer has both vectors and a stored mlp_down weight; ingest with the down projections stored")
    parts, jac_parts, null_parts, any_attr = [], [], [], False
    for layer in layers:
        j = vlayers.index(layer)
        w = store.weight("mlp_down", layer)  # [d_model, d_mlp]: one layer in memory at a time
        delta = _delta_act(store, params, values, layer) if spec.attribution else None
        any_attr |= delta is not None
        rows = nr.score_layer(w, v_int[:, j], v_prompt[:, j], values, layer, top_frac=float(spec.top),
                              max_angle=spec.max_angle, relative=spec.relative, delta_act=delta)
        rows["method"] = np.array(["static+attribution" if delta is not None else "static"] * len(rows["neuron"]),
                                  dtype=object)
        parts.append(rows)
        jac_parts.append(nr.jaccard_rows(w, v_int[:, j], v_prompt[:, j], values, layer, float(spec.top)))
        if spec.n_random:
            null_parts.append(_null_rows(w, v_int[:, j], v_prompt[:, j], values, layer, rows, jac_parts[-1], spec))
        del w
    rows = nr.concat_columns(parts)
    jac = nr.concat_columns(jac_parts)
    counts = nr.class_counts(rows)
    plot = None
    if spec.plot:
        from analyses.plots import plot_class_counts

        lay, mat = nr.class_count_matrix(rows)
        plot = plot_class_counts(mat, lay.tolist(), spec.plot)
    null = nr.concat_columns(null_parts) if null_parts else None
    res = NeuronsResult(src, values, tuple(layers), rows, counts, jac, any_attr, plot=plot, null=null)
    if not spec.record:
        return res
    rec = Recorder(neuron_rows=rows)
    summary = {"source_run": src, "kept": len(rows["neuron"]),
               "jaccard": {f"{v}@{l}": float(x) for v, l, x in zip(jac["value"], jac["layer"], jac["jaccard"])}}
    if null is not None:
        summary["random_directions"] = {
            "n": spec.n_random, "seed": spec.seed, "method": "random pairs with the same norms and angle",
            "by": {f"{v}@{l}": {k: float(null[k][i]) for k in null if k not in ("value", "layer")}
                   for i, (v, l) in enumerate(zip(null["value"], null["layer"]))}}
    run_params_ = {"source_run": src, "top": spec.top, "max_angle": spec.max_angle, "layers": list(layers),
                   "relative": spec.relative, "attribution": any_attr, "n_random": spec.n_random, "seed": spec.seed}
    run_id, _ = record(store, "neurons", run_params_, rec, summary)
    return replace(res, run_id=run_id)


def _null_rows(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray, values: tuple[str, ...], layer: int,
               rows: dict[str, np.ndarray], jac: dict[str, np.ndarray], spec: NeuronsSpec) -> dict[str, np.ndarray]:
    """Per value at one layer: each overlap figure's random-direction null (mean, 95% range) and p."""
    figures = (*nr.CLASSES, nr.UNCLASSIFIED, "jaccard")
    out: dict[str, list] = {"value": [], "layer": []}
    for f in figures:
        for suffix in ("_null", "_null_lo", "_null_hi", "_p"):
            out[f + suffix] = []
    for i, v in enumerate(values):
        null = nr.random_plane_null(w, v_int[i], v_prompt[i], spec.n_random, spec.seed + 1000 * layer + i,
                                    top_frac=float(spec.top), max_angle=spec.max_angle, relative=spec.relative)
        sel = (rows["value"] == v) & (rows["layer"] == layer)
        observed = [float(np.sum(rows["class"][sel] == c)) for c in (*nr.CLASSES, nr.UNCLASSIFIED)]
        observed.append(float(jac["jaccard"][i]))
        samples = [null["counts"][:, k] for k in range(len(nr.CLASSES) + 1)] + [null["jaccard"]]
        out["value"].append(v)
        out["layer"].append(layer)
        for f, obs, smp in zip(figures, observed, samples):
            s = sx.null_summary(smp, obs)
            out[f + "_null"].append(s["null_mean"])
            out[f + "_null_lo"].append(s["null_lo"])
            out[f + "_null_hi"].append(s["null_hi"])
            out[f + "_p"].append(s["p"])
    return {k: np.array(v, dtype=object if k == "value" else np.float64 if k != "layer" else np.int64)
            for k, v in out.items()}


def describe(res: NeuronsResult) -> list[str]:
    """The overlap figures in words, against random directions at the same angle."""
    if res.null is None:
        return ["No random-direction baseline was drawn (--random 0)."]
    n = res.null
    jac = np.asarray(res.jaccard["jaccard"], dtype=float)
    above = int(np.sum(np.asarray(n["jaccard_p"], dtype=float) < 0.05))
    out = [(f"The intrinsic and prompted top sets overlap with Jaccard {jac.mean():.2f} on average (range "
            f"{jac.min():.2f}-{jac.max():.2f}); random direction pairs at the same angle give "
            f"{np.mean(n['jaccard_null']):.2f} on average; {above} of {len(jac)} (value, layer) overlaps are above "
            f"their null at p < 0.05.")]
    for cls in nr.CLASSES:
        p = np.asarray(n[f"{cls}_p"], dtype=float)
        out.append(f"{cls}: {int(np.sum(res.counts['count'][res.counts['class'] == cls]))} kept neurons in all "
                   f"vs {np.sum(n[f'{cls}_null']):.1f} expected from random planes; "
                   f"{int(np.sum(p < 0.05))} of {len(p)} (value, layer) counts above the null at p < 0.05.")
    return out
