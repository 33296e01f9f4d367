"""A *store* with planted truth, written through the Store write API (no model, no torch).

What is planted, per layer l (each layer its own random orthonormal basis of R^d):

- value vectors ``v_int = a*shared + b*unique`` and ``v_prompt = a*shared - b*unique`` with
  ``shared ⟂ unique`` and a > b, so the SVD of [v_int, v_prompt] gives back exactly ``shared``
  and ``+unique`` (see planted.py);
- the ten shared axes on a circle: ``shared_s = 0.6*(cos θ_s p0 + sin θ_s p1) + 0.8*r_s`` with
  θ_s the circumplex angle and r_s private directions, so PCA's first two components are the circle;
- records in two languages and both conditions. Intrinsic responses carry a label for every
  value, taken from columns of a 16x16 Hadamard matrix: each value is expressed by exactly half
  of every 16 records and any two values are independent, so the other values' vectors cancel
  exactly in each difference in means. Prompted responses (target s) are labelled for s only,
  half expressed. A per-(language, condition, target) offset, common to R_exp and R_unexp,
  must cancel in the contrast;
- the pooled ``mean_response`` arrays are exactly the mean of the per-token response rows
  (token deviations sum to zero per record), so the ``--tokens sql:`` route gives the same vectors;
- ``mlp_down`` columns planted along +shared, +unique and -unique of PLANTED_NEURON_VALUES, and
  pooled ``mlp_act`` that rises with the value's label on those neurons;
- one hot neuron (HOT_NEURON) firing on HOT_TOKEN rows, and prompt tokens whose residual points
  along benevolence's intrinsic vector (for top-examples);
- an unembedding where token ``"help"`` reads benevolence's shared axis at the last layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.linalg import hadamard

import actstore
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
from analyses.neurons import CLASS_ANGLES_DEG, CLASSES
from ingest.values import BY_SLUG, VALUE_SLUGS

PLANTED_NEURON_VALUES = ("benevolence", "security")
NEURONS_PER_CLASS = (4, 3, 3)  # 10 = 1% of D_MLP: exactly the default top set
HOT_LAYER, HOT_NEURON = 1, 7
HOT_TOKEN = "HOT"
PROMPT_LEN, RESPONSE_LEN = 3, 4
WORDS = [f"w{i}" for i in range(40)] + ["help", HOT_TOKEN, "care", "order", "rule", "fun", "win", "power", "safe", "kind"]


@dataclass
class Truth:
    path: Path
    d: int
    n_layers: int
    d_mlp: int
    languages: tuple[str, ...]
    shared: np.ndarray  # [V, L, d]
    unique: np.ndarray  # [V, L, d]
    v_int: np.ndarray  # [V, L, d]
    v_prompt: np.ndarray  # [V, L, d]
    neuron_class: dict[tuple[str, int], dict[int, str]] = field(default_factory=dict)
    hot_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vector_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_records: int = 0


def _basis(rng: np.random.Generator, d: int, k: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return q.T  # [k, d]


def build(path: Path, *, n_queries: int = 32, int_samples: int = 4, d: int = 64, n_layers: int = 3,
          d_mlp: int = 1000, languages: tuple[str, ...] = ("en", "es"), a: float = 6.0, b: float = 3.0,
          noise: float = 0.25, tokens: bool = True, mlp: bool = True, chunk_rows: int | None = 256,
          labels: bool = True, n_words: int = 40, seed: int = 0) -> Truth:
    """Write a planted store at ``path`` and return the truth. ``n_queries`` scales its size;
    ``n_words`` (at most 40) is how many of the plain words ``w0..`` the token ids are drawn from
    (fewer words: the responses' distinct n-grams saturate in a small store)."""
    if not 1 <= n_words <= 40:
        raise ValueError(f"n_words must be in 1..40, got {n_words}")
    rng = np.random.default_rng(seed)
    V = len(VALUE_SLUGS)
    shared = np.zeros((V, n_layers, d))
    unique = np.zeros((V, n_layers, d))
    theta = np.radians([BY_SLUG[v].angle_deg for v in VALUE_SLUGS])
    for layer in range(n_layers):
        q = _basis(rng, d, 2 + 2 * V)
        circle = np.cos(theta)[:, None] * q[0] + np.sin(theta)[:, None] * q[1]
        shared[:, layer] = 0.6 * circle + 0.8 * q[2:2 + V]
        unique[:, layer] = q[2 + V:]
    v_int, v_prompt = a * shared + b * unique, a * shared - b * unique
    truth = Truth(Path(path), d, n_layers, d_mlp, tuple(languages), shared, unique, v_int, v_prompt)

    base = rng.standard_normal((n_layers, d)) * 3.0
    lang_off = {lang: rng.standard_normal((n_layers, d)) for lang in languages}
    cond_off = {(c, s): rng.standard_normal((n_layers, d)) * 2.0
                for c in ("intrinsic", "prompted") for s in list(VALUE_SLUGS) + [None]}

    # Down projections with planted classes (the rest random, norm about 1).
    w_down = rng.standard_normal((n_layers, d, d_mlp)) / np.sqrt(d)
    slots = rng.permutation(d_mlp)
    planted_neurons: dict[str, list[int]] = {}
    pos = 0
    for value in PLANTED_NEURON_VALUES:
        s = VALUE_SLUGS.index(value)
        planted_neurons[value] = []
        for cls, centre, count in zip(CLASSES, CLASS_ANGLES_DEG, NEURONS_PER_CLASS):
            for col in slots[pos:pos + count]:
                planted_neurons[value].append(int(col))
                for layer in range(n_layers):
                    t = np.radians(centre + rng.uniform(-12, 12))
                    w_down[layer, :, col] = rng.uniform(1.5, 2.0) * (np.cos(t) * shared[s, layer] + np.sin(t) * unique[s, layer]) \
                        + rng.standard_normal(d) * 0.05 / np.sqrt(d)
                    truth.neuron_class.setdefault((value, layer), {})[int(col)] = cls
            pos += count

    # Records: (prompt, response, language, condition, target, {value: expressed}).
    had = hadamard(16) > 0
    recs = []
    for lang in languages:
        for q in range(n_queries):
            for k in range(int_samples):
                j = q * int_samples + k
                recs.append((lang, "intrinsic", None, f"{lang}-q{q}", k,
                             {v: bool(had[j % 16, i + 1]) for i, v in enumerate(VALUE_SLUGS)}))
            for v in VALUE_SLUGS:
                recs.append((lang, "prompted", v, f"{lang}-q{q}", 0, {v: q % 2 == 0}))
    truth.n_records = len(recs)

    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo(name="planted", dtype="float32", n_layers=n_layers, d_model=d, d_mlp=d_mlp,
                               vocab_size=len(WORDS), family="planted"), vocab=WORDS)
        specs = [ArraySpec(ArrayKey(Site("resid_post", l), "mean_response"), d, "float32", chunk_rows=chunk_rows)
                 for l in range(n_layers)]
        specs += [ArraySpec(ArrayKey(Site("resid_post", l), "last_prompt"), d, "float32", chunk_rows=chunk_rows)
                  for l in range(n_layers)]
        if mlp:
            specs += [ArraySpec(ArrayKey(Site("mlp_act", l), "mean_response"), d_mlp, "float32", chunk_rows=chunk_rows)
                      for l in range(n_layers)]
        if tokens:
            specs += [ArraySpec(ArrayKey(Site("resid_post", l)), d, "float32", chunk_rows=512) for l in range(n_layers)]
            specs += [ArraySpec(ArrayKey(Site("mlp_act", HOT_LAYER)), d_mlp, "float16", chunk_rows=512)]
        st.declare_arrays(specs)
        prompts, responses, label_rows = [], [], {"response_id": [], "value": [], "judge_id": [], "expressed": []}
        seen_prompts = set()
        hot_rows, vec_rows = [], []
        batch_size = 256
        hot_id, help_id = WORDS.index(HOT_TOKEN), WORDS.index("help")
        row0 = 0
        for start in range(0, len(recs), batch_size):
            chunk = recs[start:start + batch_size]
            n = len(chunk)
            nt = PROMPT_LEN + RESPONSE_LEN
            pooled = np.zeros((n_layers, n, d))
            last = np.zeros((n_layers, n, d))
            mlp_pooled = np.abs(rng.standard_normal((n_layers, n, d_mlp))) * 0.1
            rids, pids = [], []
            for i, (lang, cond, target, qid, k, lab) in enumerate(chunk):
                pid = f"{qid}-{cond}-{target or 'none'}"
                rid = f"{pid}-s{k}"
                rids.append(rid)
                pids.append(pid)
                if pid not in seen_prompts:
                    seen_prompts.add(pid)
                    prompts.append({"prompt_id": pid, "query_id": qid, "condition": cond, "target_value": target,
                                    "language": lang, "user_text": f"question {qid}"})
                mean = base + lang_off[lang] + cond_off[(cond, target)]
                for v, e in lab.items():
                    s = VALUE_SLUGS.index(v)
                    if e:
                        mean = mean + (v_int[s] if cond == "intrinsic" else v_prompt[s])
                        if v in planted_neurons:
                            mlp_pooled[:, i, planted_neurons[v]] += 1.0
                    if labels:
                        for key, val in (("response_id", rid), ("value", v), ("judge_id", "planted"), ("expressed", e)):
                            label_rows[key].append(val)
                pooled[:, i] = mean + rng.standard_normal((n_layers, d)) * noise
                last[:, i] = 0.5 * (mean - base) + base + rng.standard_normal((n_layers, d)) * noise
            token_ids = rng.integers(0, n_words, size=(n, nt))
            roles = np.array(["user"] * PROMPT_LEN + ["response"] * RESPONSE_LEN)
            tok_arrays = {}
            if tokens:
                dev = rng.standard_normal((n_layers, n, RESPONSE_LEN, d)) * 0.5
                dev -= dev.mean(axis=2, keepdims=True)  # response tokens average exactly to the pooled row
                resp = pooled[:, :, None, :] + dev
                prm = rng.standard_normal((n_layers, n, PROMPT_LEN, d)) + base[:, None, None, :]
                prm[:, :, -1] = last
                for i, (lang, cond, target, qid, k, lab) in enumerate(chunk):
                    # A few prompt tokens whose residual points hard along benevolence's v_int.
                    if cond == "intrinsic" and qid.endswith("q1") and k == 0:
                        prm[:, i, 0] += 40.0 * v_int[VALUE_SLUGS.index("benevolence")] / np.linalg.norm(
                            v_int[VALUE_SLUGS.index("benevolence")], axis=-1, keepdims=True)
                        vec_rows.append(row0 + i * nt)
                    if cond == "prompted" and target == "benevolence" and lab["benevolence"]:
                        token_ids[i, PROMPT_LEN + 1] = hot_id
                        hot_rows.append(row0 + i * nt + PROMPT_LEN + 1)
                    if cond == "intrinsic" and lab["benevolence"]:
                        token_ids[i, PROMPT_LEN] = help_id
                per_tok = np.concatenate([prm, resp], axis=2).reshape(n_layers, n * nt, d)
                for layer in range(n_layers):
                    tok_arrays[ArrayKey(Site("resid_post", layer))] = per_tok[layer].astype(np.float32)
                act = np.abs(rng.standard_normal((n * nt, d_mlp))).astype(np.float16) * np.float16(0.5)
                flat_ids = token_ids.reshape(-1)
                hot = np.flatnonzero(flat_ids == hot_id)
                act[hot, HOT_NEURON] = np.float16(8.0) + rng.uniform(0, 1, size=len(hot)).astype(np.float16)
                tok_arrays[ArrayKey(Site("mlp_act", HOT_LAYER))] = act
            rec_arrays = {}
            for layer in range(n_layers):
                rec_arrays[ArrayKey(Site("resid_post", layer), "mean_response")] = pooled[layer].astype(np.float32)
                rec_arrays[ArrayKey(Site("resid_post", layer), "last_prompt")] = last[layer].astype(np.float32)
                if mlp:
                    rec_arrays[ArrayKey(Site("mlp_act", layer), "mean_response")] = mlp_pooled[layer].astype(np.float32)
            st.append(Batch(n_tokens=np.full(n, nt), prompt_lens=np.full(n, PROMPT_LEN),
                            token_ids=token_ids.reshape(-1), roles=np.tile(roles, n),
                            token_arrays=tok_arrays, record_arrays=rec_arrays,
                            response_ids=rids, prompt_ids=pids, key=f"b{start}"))
            for i, rid in enumerate(rids):
                words = [WORDS[t] for t in token_ids[i, PROMPT_LEN:]]
                responses.append({"response_id": rid, "prompt_id": pids[i], "sample_idx": 0, "text": " ".join(words)})
            row0 += n * nt
        import pandas as pd

        st.insert("prompts", pd.DataFrame(prompts))
        st.insert("responses", pd.DataFrame(responses))
        if labels:
            st.insert("labels", label_rows)
        unembed = rng.standard_normal((len(WORDS), d)) * 0.1
        unembed[help_id] = 5.0 * shared[VALUE_SLUGS.index("benevolence"), n_layers - 1]
        st.put_weight("unembed", None, unembed.astype(np.float32), "float32")
        st.put_weight("final_norm", None, np.ones((1, d), np.float32), "float32")
        for layer in range(n_layers):
            st.put_weight("mlp_down", layer, w_down[layer].astype(np.float32), "float32")
        st.flush()
    truth.hot_rows = np.array(hot_rows, dtype=np.int64)
    truth.vector_rows = np.array(vec_rows, dtype=np.int64)
    return truth


# --- cached copies for tests: build once per process, hand each test its own copy ---------------

_CACHE: dict[tuple, tuple[Path, Truth]] = {}


def cached(analysed: bool = False, **kw) -> tuple[Path, Truth]:
    """A planted store built once per test process (``analysed``: with a vectors run (1) and a
    decompose run (2) recorded). Treat it as read-only; use :func:`copy_of` to write."""
    import atexit
    import shutil
    import tempfile

    key = (analysed, tuple(sorted(kw.items())))
    if key not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix="actstore-planted-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        truth = build(root / "store", **kw)
        if analysed:
            from analyses import run_decompose, run_vectors

            with actstore.open(root / "store") as st:
                run_vectors.run(st, run_vectors.VectorsSpec())
                run_decompose.run(st, run_decompose.DecomposeSpec())
        _CACHE[key] = (root / "store", truth)
    return _CACHE[key]


def copy_of(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def snapshot(path: Path) -> dict[str, int]:
    """Row counts of the tables an analysis may write: equal before and after = store unchanged."""
    with actstore.open(path) as st:
        return {t: st.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("runs", "vectors", "neuron_scores", "labels", "records")}
