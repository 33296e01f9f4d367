"""Value vectors from the store vs recomputing them with forward passes over the same records.

    python benchmarks/bench_analyses.py --store demo-out/store [--model ingest/valueworld/checkpoint]

Side by side in one run: (a) ``analyze vectors`` (10 values x 2 conditions x all layers) reading the
pooled arrays of a store; (b) the same vectors recomputed the way a caching-free script would: a
teacher-forced forward pass over every record's stored tokens, the mean over response tokens at every
layer, then the same difference in means. Prints both times, the ratio (goal >= 100x), and checks that
the two give the same vectors. The ratio grows with the model: (b) scales with parameters, (a) does not.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True, help="a store with labels and pooled mean_response arrays")
    ap.add_argument("--model", default=None, help="its model directory (default: the store's model name)")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()

    import torch

    import actstore
    from actstore import Site
    from analyses import run_vectors
    from ingest.adapters import adapter_for
    from ingest.capture import Capturer
    from ingest.models import load_model

    st = actstore.open(args.store)
    layers = list(range(st.model.n_layers))
    spec = run_vectors.VectorsSpec(record=False, min_count=1)

    t0 = time.perf_counter()
    res = run_vectors.run(st, spec)
    t_store = time.perf_counter() - t0

    # (b): forward passes over the same records' stored tokens -> pooled means -> the same contrast
    model, _tok = load_model(args.model or st.model.name, dtype="float32")
    torch.set_num_threads(2)
    recs = st.sql("SELECT record_id, row_start, n_tokens, prompt_len FROM records ORDER BY record_id").fetchall()
    ids = st.sql('SELECT token_id FROM tokens ORDER BY "row"').fetchnumpy()["token_id"]
    t0 = time.perf_counter()
    pooled = np.zeros((len(recs), len(layers), st.model.d_model), dtype=np.float32)
    with torch.inference_mode(), Capturer(model, adapter_for(model), layers, ["resid_post"],
                                          pools=["mean_response"]) as cap:
        for b in range(0, len(recs), args.batch):
            chunk = recs[b:b + args.batch]
            width = max(r[2] for r in chunk)
            inp = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(inp)
            for i, (_, start, n, _) in enumerate(chunk):
                inp[i, :n], mask[i, :n] = ids[start:start + n], 1  # right padding
            out = cap.capture(inp, mask, np.array([r[3] for r in chunk]))
            for li, layer in enumerate(layers):
                pooled[b:b + len(chunk), li] = out.mean_response[Site("resid_post", layer)]
    t_forward = time.perf_counter() - t0
    # the same groups as (a), applied to the recomputed pooled means
    stored = np.stack([st.read("resid_post", layer, pool="mean_response") for layer in layers], axis=1)
    t0 = time.perf_counter()
    from analyses.groups import exp_unexp

    groups = exp_unexp(list(res.values))
    g = st.sql(groups.query).fetchnumpy()
    rows, gids = np.asarray(g["row"], dtype=np.int64), np.asarray(g["gid"], dtype=np.int64)
    n_g = len(groups.keys)
    sums = np.zeros((n_g, len(layers), pooled.shape[2]))
    np.add.at(sums, gids, pooled[rows].astype(np.float64))
    counts = np.bincount(gids, minlength=n_g)
    means = sums / np.maximum(counts, 1)[:, None, None]
    vecs = np.zeros_like(res.vectors)
    for vi, v in enumerate(res.values):
        for ci, c in enumerate(res.conditions):
            vecs[vi, ci] = means[groups.keys.index((None, v, c, "exp"))] - means[groups.keys.index((None, v, c, "unexp"))]
    t_forward += time.perf_counter() - t0
    st.close()

    print(f"records: {len(recs)}, layers: {len(layers)}, d_model: {stored.shape[2]}, model: {args.model or 'store model'}")
    print(f"(a) analyze vectors from the store      {t_store:8.2f} s")
    print(f"(b) forward passes + the same contrast   {t_forward:8.2f} s")
    print(f"ratio (b)/(a)                            {t_forward / t_store:8.1f}x   (goal >= 100x)")
    err = np.abs(pooled - stored).max()
    print(f"recomputed pooled means vs stored: max |diff| {err:.2e} (batch shapes differ, so not bit-exact)")
    cos = (vecs * res.vectors).sum(-1) / (np.linalg.norm(vecs, axis=-1) * np.linalg.norm(res.vectors, axis=-1))
    print(f"vectors, recomputed vs from the store: min cosine {np.nanmin(cos):.6f}")


if __name__ == "__main__":
    main()
