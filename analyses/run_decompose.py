"""``actstore analyze decompose``: shared and unique parts of stored intrinsic/prompted vectors.

Reads the ``diff_means`` vectors of a vectors run (default: the latest exp-unexp run), pairs
intrinsic with prompted per (language, value, layer) and records, with the new run's id:
``shared``, ``intrinsic_unique`` (= +u), ``prompted_unique`` (= -u), ``int_only``,
``prompt_only`` per (value, layer), and ``mean_delta`` per layer (value NULL) with the share of
the deltas' energy it explains in ``meta``.

Uncertainty comes from the vectors run: its bootstrap over responses already resampled the
intrinsic and prompted vectors together, and recorded the 95% intervals of cos(intrinsic, prompted)
and of the two singular values in each vector's ``meta`` (``actstore analyze vectors --bootstrap
N``); they are carried into the table and into the meta of the recorded components, with the group
sizes (n_exp, n_unexp of each condition) and the split-half reliability of each vector.
"""

from __future__ import annotations

import json
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
    #: per (language, value, layer): group sizes and the vectors run's intervals (NaN if it had none)
    sizes: np.ndarray | None = None  # [N, V, 4] n_exp_int, n_unexp_int, n_exp_prompt, n_unexp_prompt
    cos_ci: np.ndarray | None = None  # [N, V, L, 2]
    sv_ci: np.ndarray | None = None  # [N, V, L, 2 (shared, unique), 2 (lo, hi)]
    reliability: np.ndarray | None = None  # [N, V, L, 2 (int, prompt)] split-half, Spearman-Brown

    def table(self):
        import pandas as pd

        cos = cosine(self.v_int, self.v_prompt)
        rows = []
        for n, lang in enumerate(self.languages):
            for i, v in enumerate(self.values):
                for j, layer in enumerate(self.layers):
                    s = self.parts.singular_values[n, i, j]
                    row = {"language": lang, "value": v, "layer": layer}
                    if self.sizes is not None:
                        row |= dict(zip(SIZE_COLUMNS, (int(x) for x in self.sizes[n, i])))
                    row |= {"cos_int_prompt": cos[n, i, j], "sv_shared": s[0], "sv_unique": s[1]}
                    if self.sv_ci is not None and self.cos_ci is not None and not np.isnan(self.sv_ci[n, i, j]).all():
                        row |= {"cos_lo": self.cos_ci[n, i, j, 0], "cos_hi": self.cos_ci[n, i, j, 1],
                                "sv_shared_lo": self.sv_ci[n, i, j, 0, 0], "sv_shared_hi": self.sv_ci[n, i, j, 0, 1],
                                "sv_unique_lo": self.sv_ci[n, i, j, 1, 0], "sv_unique_hi": self.sv_ci[n, i, j, 1, 1]}
                    if self.reliability is not None and not np.isnan(self.reliability[n, i, j]).all():
                        row |= {"rel_int": self.reliability[n, i, j, 0], "rel_prompt": self.reliability[n, i, j, 1]}
                    row |= {"int_only_norm": np.linalg.norm(self.parts.int_only[n, i, j]),
                            "prompt_only_norm": np.linalg.norm(self.parts.prompt_only[n, i, j]),
                            "mean_delta_share": self.delta_share[n, j]}
                    rows.append(row)
        return pd.DataFrame(rows)


SIZE_COLUMNS = ("n_exp_int", "n_unexp_int", "n_exp_prompt", "n_unexp_prompt")


def _ci(meta: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
    got = meta.get(key)
    if got is None:
        return np.full(shape, np.nan)
    return np.array(got, dtype=np.float64).reshape(shape)  # None entries become NaN


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
    N, V, L = len(langs), len(values), len(layers)
    sizes = np.zeros((N, V, 4), dtype=np.int64)
    cos_ci, sv_ci, rel = np.full((N, V, L, 2), np.nan), np.full((N, V, L, 2, 2), np.nan), np.full((N, V, L, 2), np.nan)
    for n, lang in enumerate(langs):
        for i, v in enumerate(values):
            for j, layer in enumerate(layers):
                try:
                    ki, kp = index[(lang, v, "intrinsic", layer)], index[(lang, v, "prompted", layer)]
                    v_int[n, i, j] = vecs[ki]
                    v_prompt[n, i, j] = vecs[kp]
                    sizes[n, i] = [rows[ki]["n_pos"] or 0, rows[ki]["n_neg"] or 0, rows[kp]["n_pos"] or 0,
                                   rows[kp]["n_neg"] or 0]
                    mi, mp = (json.loads(rows[k]["meta"] or "{}") for k in (ki, kp))
                    cos_ci[n, i, j] = _ci(mi, "cos_int_prompt_ci", (2,))
                    sv_ci[n, i, j] = _ci(mi, "sv_ci", (2, 2))
                    rel[n, i, j] = [mi.get("reliability", np.nan) or np.nan, mp.get("reliability", np.nan) or np.nan]
                except KeyError:
                    raise InputError(f"run {src} lacks the intrinsic or prompted vector of {v} at layer {layer}; "
                                     "re-run vectors with the exp-unexp contrast") from None
    parts = dc.decompose(v_int, v_prompt)
    delta, share = dc.mean_delta(v_int, v_prompt, value_axis=1)  # [N, L, d], [N, L]
    site, pool = rows[0]["site"], rows[0]["pool"]
    res = DecomposeResult(src, langs, values, layers, v_int, v_prompt, parts, delta, share, site, pool,
                          sizes=sizes, cos_ci=cos_ci, sv_ci=sv_ci, reliability=rel)
    if not spec.record:
        return res
    rec = Recorder()
    comps = {"shared": parts.shared, "intrinsic_unique": parts.unique, "prompted_unique": -parts.unique,
             "int_only": parts.int_only, "prompt_only": parts.prompt_only}
    for n, lang in enumerate(langs):
        for i, v in enumerate(values):
            for j, layer in enumerate(layers):
                sv = parts.singular_values[n, i, j]
                meta = {"source_run": src, "singular_values": [float(sv[0]), float(sv[1])],
                        **dict(zip(SIZE_COLUMNS, (int(x) for x in sizes[n, i])))}
                if not np.isnan(sv_ci[n, i, j]).all():
                    meta["sv_ci"] = sv_ci[n, i, j].tolist()
                    meta["cos_int_prompt_ci"] = cos_ci[n, i, j].tolist()
                for comp in COMPONENTS:
                    rec.add_vector(comps[comp][n, i, j], name=f"{v}/{comp}/{site}.{layer}", value=v, condition=None,
                                   component=comp, site=site, layer=layer, pool=pool, language=lang, meta=meta)
        for j, layer in enumerate(layers):
            rec.add_vector(delta[n, j], name=f"mean_delta/{site}.{layer}", value=None, condition="prompted_minus_intrinsic",
                           component="mean_delta", site=site, layer=layer, pool=pool, language=lang,
                           meta={"source_run": src, "variance_share": float(share[n, j]), "n_values": len(values)})
    summary = {"source_run": src, "mean_delta_share_by_layer": {str(l): float(x) for l, x in zip(layers, share[0])}}
    run_id, _ = record(store, "decompose", {"source_run": src}, rec, summary)
    return replace(res, run_id=run_id)


def describe(res: DecomposeResult, layer: int | None = None) -> list[str]:
    """The shared/unique split in words at one layer (default: the middle one), with the vectors
    run's bootstrap intervals on the two singular values."""
    j = len(res.layers) // 2 if layer is None else res.layers.index(layer)
    sv = res.parts.singular_values[0, :, j]
    share = sv[:, 0] ** 2 / np.maximum(sv[:, 0] ** 2 + sv[:, 1] ** 2, 1e-300)
    out = [(f"At layer {res.layers[j]} the shared axis carries {share.min():.0%}-{share.max():.0%} of the two "
            f"vectors' energy (sv_shared^2 / (sv_shared^2 + sv_unique^2)) across {len(res.values)} values.")]
    if res.sv_ci is not None and not np.isnan(res.sv_ci[0, :, j]).all():
        ci = res.sv_ci[0, :, j]
        apart = [v for i, v in enumerate(res.values) if ci[i, 0, 0] > ci[i, 1, 1]]
        out.append(f"The bootstrap intervals of the shared and the unique singular value are apart for "
                   f"{len(apart)} of {len(res.values)} values"
                   + (f" (not for: {', '.join(v for v in res.values if v not in apart)})" if len(apart) < len(res.values)
                      else "") + ".")
    else:
        out.append("No bootstrap intervals: the vectors run had none (actstore analyze vectors --bootstrap N).")
    return out
