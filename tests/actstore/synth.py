"""Deterministic synthetic batches for store tests (no model needed)."""

from __future__ import annotations

import numpy as np

from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site

WIDTH = {"resid_post": 12, "mlp_act": 20}
LAYERS = (0, 1)
MODEL = ModelInfo(name="synthetic", dtype="bfloat16", n_layers=2, d_model=12, d_mlp=20, vocab_size=50)


def keys() -> list[ArrayKey]:
    return [ArrayKey(Site(k, l)) for k in WIDTH for l in LAYERS]


POOLED = ArrayKey(Site("resid_post", 1), "mean_response")


def specs(chunk_rows: int = 32, codec: str = "none") -> list[ArraySpec]:
    out = [ArraySpec(k, WIDTH[k.site.kind], "bfloat16", codec=codec, chunk_rows=chunk_rows) for k in keys()]
    return out + [ArraySpec(POOLED, WIDTH["resid_post"], "float32", chunk_rows=8)]


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits by truncation (valid, finite numbers)."""
    return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def batch(i: int, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed * 100_003 + i)
    n_rec = int(rng.integers(1, 5))
    nt = rng.integers(1, 40, size=n_rec)
    n = int(nt.sum())
    tok = {k: bf16_bits(rng.standard_normal((n, WIDTH[k.site.kind]), dtype=np.float32)) for k in keys()}
    rec = {POOLED: rng.standard_normal((n_rec, WIDTH["resid_post"])).astype(np.float32)}
    roles = rng.integers(0, 4, size=n)
    return Batch(n_tokens=nt, prompt_lens=nt // 2, token_ids=rng.integers(0, 50, size=n), roles=roles,
                 token_arrays=tok, record_arrays=rec, response_ids=[f"b{i}r{j}" for j in range(n_rec)],
                 key=f"batch-{i}")


def write(store, upto: int, seed: int = 0) -> None:
    """Set up the store if new and append batches 0..upto-1, skipping committed ones (resume)."""
    if store.model is None:
        store.set_model(MODEL, vocab=[f"tok{i}" for i in range(50)])
    store.declare_arrays(specs())
    done = store.committed_keys()
    for i in range(upto):
        if f"batch-{i}" not in done:
            store.append(batch(i, seed))
