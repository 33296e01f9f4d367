"""``actstore analyze neurons``: value neurons from the stored down projections and vectors.

For each layer with a stored ``weight("mlp_down", l)`` and each value of a vectors run: the
study's static score and class (:func:`analyses.neurons.score_layer`), and, when the store holds
pooled ``mlp_act`` arrays of the vectors' pool, the activation-weighted attribution
``delta_act_i * proj_shared_i``. ``delta_act`` is R_exp minus R_unexp mean activation, averaged over
the two conditions (each condition's contrast weighs the same, as the vectors do). Rows go to
``neuron_scores`` with the run's id; the overlap statistics (class counts, Jaccard of the
intrinsic and prompted top sets) go into the run's summary and the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses import groups as gq
from analyses import neurons as nr
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
    record: bool = True
    plot: str | None = None

    def __post_init__(self) -> None:
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

    def table(self):
        """Kept neurons per class for each (layer, value), with the Jaccard of the top sets."""
        import pandas as pd

        counts = pd.DataFrame({k: list(v) for k, v in self.counts.items()})
        wide = counts.pivot_table(index=["layer", "value"], columns="class", values="count", aggfunc="sum").reset_index()
        jac = pd.DataFrame({k: list(v) for k, v in self.jaccard.items()})
        out = wide.merge(jac, on=["layer", "value"])
        cols = ["layer", "value", *nr.CLASSES, nr.UNCLASSIFIED, "jaccard"]
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
    parts, jac_parts, any_attr = [], [], False
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
        del w
    rows = nr.concat_columns(parts)
    jac = nr.concat_columns(jac_parts)
    counts = nr.class_counts(rows)
    plot = None
    if spec.plot:
        from analyses.plots import plot_class_counts

        lay, mat = nr.class_count_matrix(rows)
        plot = plot_class_counts(mat, lay.tolist(), spec.plot)
    res = NeuronsResult(src, values, tuple(layers), rows, counts, jac, any_attr, plot=plot)
    if not spec.record:
        return res
    rec = Recorder(neuron_rows=rows)
    summary = {"source_run": src, "kept": len(rows["neuron"]),
               "jaccard": {f"{v}@{l}": float(x) for v, l, x in zip(jac["value"], jac["layer"], jac["jaccard"])}}
    run_params_ = {"source_run": src, "top": spec.top, "max_angle": spec.max_angle, "layers": list(layers),
                   "relative": spec.relative, "attribution": any_attr}
    run_id, _ = record(store, "neurons", run_params_, rec, summary)
    return replace(res, run_id=run_id)
