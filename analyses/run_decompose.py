"""``actstore analyze decompose``: shared and unique parts of stored intrinsic/prompted vectors.

Reads the ``diff_means`` vectors of a vectors run (default: the latest exp-unexp run), pairs
intrinsic with prompted per (language, value, layer) and records, with the new run's id:
``shared``, ``intrinsic_unique`` (= +u), ``prompted_unique`` (= -u), ``int_only``,
``prompt_only`` per (value, layer), and ``mean_delta`` per layer (value NULL) with the share of
the deltas' energy it explains in ``meta``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses import decompose as dc
from analyses.recording import Recorder, latest_run, load_vectors, record, run_params
from analyses.run_vectors import need_both_conditions
from analyses.vectors import cosine

COMPONENTS = ("shared", "intrinsic_unique", "prompted_unique", "int_only", "prompt_only")


@dataclass(frozen=True)
class DecomposeSpec:
    run_id: int | None = None  # a vectors run; None = the latest one with the exp-unexp contrast
    record: bool = True

    def __post_init__(self) -> None:
        if self.run_id is not None and int(self.run_id) < 1:
            raise InputError(f"bad --run {self.run_id}; run ids start at 1")


@dataclass(frozen=True)
class DecomposeResult:
    source_run: int
    languages: tuple[str | None, ...]
    values: tuple[str, ...]
    layers: tuple[int, ...]
    v_int: np.ndarray  # [N, V, L, d] (N languages)
    v_prompt: np.ndarray  # [N, V, L, d]
    parts: dc.Decomposition  # arrays [N, V, L, ...]
    mean_delta: np.ndarray  # [N, L, d]
    delta_share: np.ndarray  # [N, L]
    site: str = "resid_post"
    pool: str = "mean_response"
    run_id: int | None = None

    def table(self):
        import pandas as pd

        cos = cosine(self.v_int, self.v_prompt)
        rows = []
        for n, lang in enumerate(self.languages):
            for i, v in enumerate(self.values):
                for j, layer in enumerate(self.layers):
                    s = self.parts.singular_values[n, i, j]
                    rows.append({"language": lang, "value": v, "layer": layer, "cos_int_prompt": cos[n, i, j],
                                 "sv_shared": s[0], "sv_unique": s[1],
                                 "int_only_norm": np.linalg.norm(self.parts.int_only[n, i, j]),
                                 "prompt_only_norm": np.linalg.norm(self.parts.prompt_only[n, i, j]),
                                 "mean_delta_share": self.delta_share[n, j]})
        return pd.DataFrame(rows)


def _pick_run(store: Store, run_id: int | None) -> int:
    if run_id is None:
        found = latest_run(store, "vectors", "json_extract_string(params, '$.contrast') = 'exp-unexp'")
        if found is None:
            raise InputError("no vectors run with the exp-unexp contrast in this store; run 'actstore analyze vectors' first")
        return found
    kind, params = run_params(store, run_id)
    if kind != "vectors" or params.get("contrast") != "exp-unexp":
        raise InputError(f"run {run_id} is a {kind} run ({params.get('contrast', 'no contrast')}); "
                         "pass a vectors run with the exp-unexp contrast")
    return run_id


def run(store: Store, spec: DecomposeSpec) -> DecomposeResult:
    src = _pick_run(store, spec.run_id)
    rows, vecs = load_vectors(store, "run_id = ? AND component = 'diff_means'", [src])
    need_both_conditions(rows, src, "decompose")
    index = {(r["language"], r["value"], r["condition"], r["layer"]): k for k, r in enumerate(rows)}
    langs = tuple(sorted({r["language"] for r in rows}, key=lambda x: x or ""))
    values = tuple(dict.fromkeys(r["value"] for r in rows))
    layers = tuple(sorted({r["layer"] for r in rows}))
    d = vecs.shape[1]
    v_int = np.zeros((len(langs), len(values), len(layers), d))
    v_prompt = np.zeros_like(v_int)
    for n, lang in enumerate(langs):
        for i, v in enumerate(values):
            for j, layer in enumerate(layers):
                try:
                    v_int[n, i, j] = vecs[index[(lang, v, "intrinsic", layer)]]
                    v_prompt[n, i, j] = vecs[index[(lang, v, "prompted", layer)]]
                except KeyError:
                    raise InputError(f"run {src} lacks the intrinsic or prompted vector of {v} at layer {layer}; "
                                     "re-run vectors with the exp-unexp contrast") from None
    parts = dc.decompose(v_int, v_prompt)
    delta, share = dc.mean_delta(v_int, v_prompt, value_axis=1)  # [N, L, d], [N, L]
    site, pool = rows[0]["site"], rows[0]["pool"]
    res = DecomposeResult(src, langs, values, layers, v_int, v_prompt, parts, delta, share, site, pool)
    if not spec.record:
        return res
    rec = Recorder()
    comps = {"shared": parts.shared, "intrinsic_unique": parts.unique, "prompted_unique": -parts.unique,
             "int_only": parts.int_only, "prompt_only": parts.prompt_only}
    for n, lang in enumerate(langs):
        for i, v in enumerate(values):
            for j, layer in enumerate(layers):
                sv = parts.singular_values[n, i, j]
                for comp in COMPONENTS:
                    rec.add_vector(comps[comp][n, i, j], name=f"{v}/{comp}/{site}.{layer}", value=v, condition=None,
                                   component=comp, site=site, layer=layer, pool=pool, language=lang,
                                   meta={"source_run": src, "singular_values": [float(sv[0]), float(sv[1])]})
        for j, layer in enumerate(layers):
            rec.add_vector(delta[n, j], name=f"mean_delta/{site}.{layer}", value=None, condition="prompted_minus_intrinsic",
                           component="mean_delta", site=site, layer=layer, pool=pool, language=lang,
                           meta={"source_run": src, "variance_share": float(share[n, j]), "n_values": len(values)})
    summary = {"source_run": src, "mean_delta_share_by_layer": {str(l): float(x) for l, x in zip(layers, share[0])}}
    run_id, _ = record(store, "decompose", {"source_run": src}, rec, summary)
    return replace(res, run_id=run_id)
