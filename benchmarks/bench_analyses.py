"""Value vectors from the store vs recomputing them with forward passes over the same records.

    python benchmarks/bench_analyses.py                          # default: random Llama, hidden 768, 12 layers
    python benchmarks/bench_analyses.py --preset qwen2.5-0.5b    # Qwen2.5-0.5B's body (896 x 24): ~4x slower
    python benchmarks/bench_analyses.py --store demo-out/store --model ingest/valueworld/checkpoint

Side by side in one run: (a) ``analyze vectors`` (``analyses.run_vectors.run``: 10 values x 2
conditions x all layers) reading the pooled ``mean_response`` arrays of a store; (b) the same
vectors recomputed the way a caching-free script would: a teacher-forced forward pass over every
record's stored tokens (the ``tokens`` table, so exactly the same ids), the mean over response
tokens at every layer (``ingest.capture.Capturer``, the hooks ingest uses), then the same
difference in means over the same SQL groups. Prints both times, the ratio (goal >= 100x), and
checks that both give the same pooled means and vectors (exit status 1 if not).

Default (no ``--store``): the store is built first, as setup that is timed and printed but is not
part of the ratio (it is the one-off cost the store amortises):

1. a randomly initialised Hugging Face model of a real model's shape (``--preset``; no download:
   the value world's locally trained tokenizer, so the vocabulary is 2,988 tokens: that only
   changes the embedding lookup, which neither side spends time on), saved to a local directory;
2. the value world's own questions and value-priority system prompts (``prompts="valueworld"``,
   ``--queries`` per language, en and es, 10 prompted prompts and ``--intrinsic-samples``
   intrinsic responses per question), with value-world answers written as given responses (the
   corpus' phrase pools: a random model's own samples would express nothing, leaving the groups
   empty); prompted answers lead with their target value except every fourth question;
3. the real ingest stages: ``ingest.pipeline.label`` (the lexicon judge) and
   ``ingest.pipeline.capture`` (all layers, ``resid_post``, the ``mean_response`` pool).

(b) does not count loading the model (it favours the forward side). The ratio grows with the
model: (b) scales with the parameters, (a) with records x layers x d_model only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKENIZER = ROOT / "ingest" / "valueworld" / "checkpoint"
PRESETS = {
    # name: (family, hidden, intermediate, layers, heads, kv_heads)
    # A GPT-2-small / BERT-base sized body with a 3x gated MLP: fits the 5-minute default on 2 cores.
    "llama-768x12": ("llama", 768, 2304, 12, 12, 12),
    # Qwen2.5-0.5B-Instruct's shape (config.json of the hub checkpoint) but the local vocabulary.
    "qwen2.5-0.5b": ("qwen2", 896, 4864, 24, 14, 2),
}


def build_model(preset: str, out: Path) -> None:
    """A random model of ``preset``'s shape with the value world's tokenizer, saved at ``out``."""
    import torch
    import transformers as tf

    family, hidden, inter, layers, heads, kv = PRESETS[preset]
    tok = tf.AutoTokenizer.from_pretrained(TOKENIZER)
    cls = tf.LlamaConfig if family == "llama" else tf.Qwen2Config
    cfg = cls(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
              num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=1024,
              tie_word_embeddings=True, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
              eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def given_responses(prompts, intrinsic_samples: int, seed: int = 0) -> list[dict]:
    """Value-world answers for ``prompts`` (rows of the ``responses`` table, source ``given``)."""
    from ingest.generate import response_id
    from ingest.values import VALUE_SLUGS
    from ingest.valueworld import corpus

    rng = random.Random(seed)
    cfg = corpus.CorpusConfig()
    qindex = {q: i for i, q in enumerate(dict.fromkeys(p.query_id for p in prompts))}
    rows = []
    for p in prompts:
        q = qindex[p.query_id]
        for k in range(intrinsic_samples if p.condition == "intrinsic" else 1):
            if p.condition == "intrinsic":  # the leading value rotates: every value leads some answers
                lead = VALUE_SLUGS[(q * intrinsic_samples + k) % len(VALUE_SLUGS)]
            elif q % 4 != 3:
                lead = p.target_value
            else:  # every fourth question: another value leads (1-9 places further round the list)
                lead = VALUE_SLUGS[(VALUE_SLUGS.index(p.target_value) + 1 + q % 9) % len(VALUE_SLUGS)]
            text = corpus.value_answer(rng, p.language, corpus.expressed_values(rng, lead, cfg))
            rows.append({"response_id": response_id(p.prompt_id, k), "prompt_id": p.prompt_id, "sample_idx": k,
                         "text": text, "source": "given"})
    return rows


def build_store(root: Path, preset: str, queries: int, intrinsic_samples: int) -> tuple[Path, Path, dict[str, float]]:
    """Setup: model, prompts and given responses, then the real label and capture stages."""
    import pandas as pd
    import transformers as tf

    import actstore
    from ingest import pipeline
    from ingest.config import IngestConfig

    times: dict[str, float] = {}
    model_dir, store = root / "model", root / "store"
    t0 = time.perf_counter()
    build_model(preset, model_dir)
    times["model (random init + save)"] = time.perf_counter() - t0

    cfg = IngestConfig(store=str(store), model=str(model_dir), dtype="float32", prompts="valueworld",
                       max_queries=queries, templates_per_value=1, intrinsic_samples=intrinsic_samples,
                       judge="lexicon", layers="all", sites=("resid_post",), per_token=False,
                       pools=("mean_response",), weights=(), quiet=True)
    t0 = time.perf_counter()
    prompts = pipeline.prompt_set(cfg)
    tok = tf.AutoTokenizer.from_pretrained(model_dir)
    with actstore.open(store, read_only=False, create=True) as st:
        st.insert("prompts", pipeline.prompt_rows(prompts, tok))
        st.insert("responses", pd.DataFrame(given_responses(prompts, intrinsic_samples)))
    pipeline.label(cfg)
    times["prompts, given responses, lexicon labels"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipeline.capture(cfg)  # loads the model from model_dir: counted here
    times["capture stage (load model, forward passes, write)"] = time.perf_counter() - t0
    return store, model_dir, times


def forward_side(st, model_path: str, layers: list[int], groups, values, conditions, batch: int):
    """(b): forward passes over the stored tokens -> pooled means -> the same contrast.
    Returns (pooled [R, L, d], vectors [V, C, L, d], seconds, tokens, parameters)."""
    import torch

    from actstore import Site
    from ingest.adapters import adapter_for
    from ingest.capture import Capturer
    from ingest.models import load_model

    model, _tok = load_model(model_path, dtype="float32")
    recs = st.sql("SELECT record_id, row_start, n_tokens, prompt_len FROM records ORDER BY record_id").fetchall()
    ids = st.sql('SELECT token_id FROM tokens ORDER BY "row"').fetchnumpy()["token_id"]
    order = sorted(range(len(recs)), key=lambda i: recs[i][2])  # batches of similar length: little padding
    t0 = time.perf_counter()
    pooled = np.zeros((len(recs), len(layers), st.model.d_model), dtype=np.float32)
    with torch.inference_mode(), Capturer(model, adapter_for(model), layers, ["resid_post"],
                                          pools=["mean_response"]) as cap:
        for b in range(0, len(order), batch):
            chunk = [recs[i] for i in order[b:b + batch]]
            width = max(r[2] for r in chunk)
            inp = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(inp)
            for i, (_, start, n, _) in enumerate(chunk):
                inp[i, :n], mask[i, :n] = ids[start:start + n], 1  # right padding
            out = cap.capture(inp, mask, np.array([r[3] for r in chunk]))
            rec_ids = [r[0] for r in chunk]
            for li, layer in enumerate(layers):
                pooled[rec_ids, li] = np.asarray(out.mean_response[Site("resid_post", layer)])
    # the same groups as (a), applied to the recomputed pooled means
    g = st.sql(groups.query).fetchnumpy()
    rows, gids = np.asarray(g["row"], dtype=np.int64), np.asarray(g["gid"], dtype=np.int64)
    n_g = len(groups.keys)
    sums = np.zeros((n_g, len(layers), pooled.shape[2]))
    np.add.at(sums, gids, pooled[rows].astype(np.float64))
    counts = np.bincount(gids, minlength=n_g)
    means = sums / np.maximum(counts, 1)[:, None, None]
    vecs = np.zeros((len(values), len(conditions), len(layers), pooled.shape[2]))
    for vi, v in enumerate(values):
        for ci, c in enumerate(conditions):
            vecs[vi, ci] = means[groups.keys.index((None, v, c, "exp"))] - means[groups.keys.index((None, v, c, "unexp"))]
    seconds = time.perf_counter() - t0
    return pooled, vecs, seconds, int(sum(r[2] for r in recs)), sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="an existing store with labels and pooled mean_response "
                                                  "arrays (default: build one from --preset)")
    ap.add_argument("--model", default=None, help="with --store: its model directory (default: the store's model name)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="llama-768x12")
    ap.add_argument("--queries", type=int, default=8, help="value-world questions per language (en, es)")
    ap.add_argument("--intrinsic-samples", type=int, default=4, help="intrinsic responses per question")
    ap.add_argument("--dir", default=None, help="where to build the model and store (default: a temp dir, removed)")
    ap.add_argument("--batch", type=int, default=32, help="records per forward batch on side (b)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of side (a); the median counts")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    import actstore
    from analyses import run_vectors
    from analyses.groups import exp_unexp

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = None
    setup: dict[str, float] = {}
    if args.store:
        store, model_path, what = Path(args.store), args.model, f"store {args.store}"
    else:
        root = Path(args.dir) if args.dir else Path(tmp := tempfile.mkdtemp(prefix="bench-analyses-"))
        if args.dir and (root / "store").exists():
            sys.exit(f"error: {root / 'store'} exists; pass a new --dir")
        family, hidden, inter, n_layers, heads, kv = PRESETS[args.preset]
        print(f"setup: random {family} {args.preset} (hidden {hidden}, {n_layers} layers, d_mlp {inter}, "
              f"{heads} heads / {kv} kv), {args.queries} questions x 2 languages ...", flush=True)
        store_path, model_dir, setup = build_store(root, args.preset, args.queries, args.intrinsic_samples)
        store, model_path, what = store_path, str(model_dir), f"random {args.preset}"
    try:
        st = actstore.open(store)
        model_path = model_path or st.model.name
        layers = list(range(st.model.n_layers))
        spec = run_vectors.VectorsSpec(record=False, min_count=1)
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            res = run_vectors.run(st, spec)
            times.append(time.perf_counter() - t0)
        t_store = float(np.median(times))
        groups = exp_unexp(list(res.values))
        pooled, vecs, t_forward, n_tokens, n_params = forward_side(st, model_path, layers, groups, res.values,
                                                         res.conditions, args.batch)
        stored = np.stack([st.read("resid_post", layer, pool="mean_response") for layer in layers], axis=1)
        st.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"records: {stored.shape[0]}, tokens: {n_tokens}, layers: {len(layers)}, d_model: {stored.shape[2]}, "
          f"model: {what} ({n_params / 1e6:.1f}M parameters), torch threads: {torch.get_num_threads()}")
    if setup:
        print(f"setup (one-off, not in the ratio): {sum(setup.values()):.1f} s")
        for k, v in setup.items():
            print(f"    {k:52s} {v:7.1f} s")
    print(f"groups: n_pos {int(res.n_pos.min())}-{int(res.n_pos.max())}, n_neg {int(res.n_neg.min())}-{int(res.n_neg.max())} "
          f"responses per (value, condition)")
    print(f"(a) analyze vectors from the store      {t_store:8.3f} s   (median of {len(times)}: "
          f"{min(times):.3f}-{max(times):.3f} s)")
    print(f"(b) forward passes + the same contrast   {t_forward:8.2f} s   ({n_tokens / t_forward:.0f} tokens/s)")
    print(f"ratio (b)/(a)                            {t_forward / t_store:8.1f}x   (goal >= 100x)")
    err = float(np.abs(pooled - stored).max())
    scale = float(np.abs(stored).max())
    cos = (vecs * res.vectors).sum(-1) / (np.linalg.norm(vecs, axis=-1) * np.linalg.norm(res.vectors, axis=-1))
    verr = float(np.abs(vecs - res.vectors).max() / np.abs(res.vectors).max())
    print(f"pooled means, recomputed vs stored: max |diff| {err:.2e} (of max |value| {scale:.2f}; batches differ, "
          "so not bit-exact)")
    print(f"vectors, recomputed vs from the store: min cosine {np.nanmin(cos):.6f}, max |diff| / max |v| {verr:.1e}")
    same = err <= 1e-4 * max(scale, 1.0) and np.nanmin(cos) > 0.9999 and not np.isnan(cos).any()
    print("same vectors: " + ("yes" if same else "NO"))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
