"""Store read/write speed against plain numpy on the same bytes, and the codec/chunk/shard choice.

    python benchmarks/bench_store.py [--rows 131072] [--width 1024]

Prints ratios measured side by side in one run (files in the page cache for both sides, as they
are when an analysis follows an ingest). Goals (issue 2): reads >= 0.5x numpy, gathers within 2x.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import actstore  # noqa: E402
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site  # noqa: E402
from common import activation_like, best_of, bf16_bits  # noqa: E402


def build(path: Path, data: np.ndarray, logical: str, codec: str = "none", shard_chunks: int = 1,
          batch_rows: int = 16384) -> float:
    """Write ``data`` as one per-token array in batches; returns seconds."""
    n, w = data.shape
    key = ArrayKey(Site("resid_post", 0))
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo("bench", logical, 1, w))
        st.declare_arrays([ArraySpec(key, w, logical, codec=codec, shard_chunks=shard_chunks)])
        t0 = time.perf_counter()  # appends and the final publish, not the one-time setup
        for lo in range(0, n, batch_rows):
            part = data[lo:lo + batch_rows]
            m = len(part)
            st.append(Batch(n_tokens=np.full(m // 64, 64), prompt_lens=np.full(m // 64, 8),
                            token_ids=np.zeros(m, np.int32), roles=np.full(m, 3, np.int8),
                            token_arrays={key: part}, key=str(lo)))
    return time.perf_counter() - t0


def appends(tmp: Path, xbf: np.ndarray, n_arrays: int, batch_rows: int) -> tuple[float, float, float]:
    """Many arrays, appends that are not chunk-aligned (ingest's shape): best-of-2 seconds of the
    store and of plain files, and the MiB written."""
    import os

    w = xbf.shape[1]
    part = xbf[:batch_rows - batch_rows % 8]
    m = len(part)
    n_batches = max(2, min(12, (256 << 20) // max(1, part.nbytes * n_arrays)))
    keys = [ArrayKey(Site("resid_post" if a % 2 == 0 else "mlp_act", a // 2)) for a in range(n_arrays)]

    def store() -> None:
        p = tmp / "appends"
        shutil.rmtree(p, ignore_errors=True)
        with actstore.open(p, read_only=False, create=True) as st:
            st.set_model(ModelInfo("bench", "bfloat16", n_arrays, w, w))
            st.declare_arrays([ArraySpec(k, w, "bfloat16") for k in keys])
            for b in range(n_batches):
                st.append(Batch(n_tokens=np.full(m // 8, 8), prompt_lens=np.full(m // 8, 2),
                                token_ids=np.zeros(m, np.int32), roles=np.full(m, 3, np.int8),
                                token_arrays={k: part for k in keys}, key=str(b)))

    def files() -> None:
        p = tmp / "appends-np"
        shutil.rmtree(p, ignore_errors=True)
        p.mkdir()
        for b in range(n_batches):
            for a in range(n_arrays):
                with open(p / f"{a}.bin", "ab") as f:
                    part.tofile(f)
                    f.flush()
                    os.fsync(f.fileno())

    t_store = best_of(store, 2)
    t_np = best_of(files, 2)
    return t_store, t_np, part.nbytes * n_arrays * n_batches / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrays", type=int, default=24, help="arrays in the ingest-shaped append test")
    ap.add_argument("--batch-rows", type=int, default=3000, help="rows per append in the ingest-shaped test")
    ap.add_argument("--rows", type=int, default=131072)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--gather", type=int, default=10000)
    args = ap.parse_args()
    n, w = args.rows - args.rows % 64, args.width
    import pandas  # noqa: F401  - pyarrow imports it on first use; keep that out of the timings
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    x32 = activation_like(n, w)
    xbf = bf16_bits(x32)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, n, size=args.gather)
    groups = rng.integers(-1, 20, size=n)
    print(f"data: {n} rows x {w}, bf16 ({xbf.nbytes / 2**20:.0f} MiB) and fp32 ({x32.nbytes / 2**20:.0f} MiB); "
          f"machine is shared: best of 3\n")

    print("== store vs numpy on the same bytes (uncompressed, unsharded: the default)")
    print(f"{'':26}{'store':>10}{'numpy':>10}{'ratio':>8}")
    for logical, data in (("bfloat16", xbf), ("float32", x32)):
        mb = data.nbytes / 2**20
        p = tmp / f"s-{logical}"
        t_store_w = build(p, data, logical)
        t_np_w = best_of(lambda: (data.tofile(tmp / "np.bin"), _fsync(tmp / "np.bin")), 1)
        st = actstore.open(p)
        t_store_r = best_of(lambda: st.read("resid_post", 0, dtype="native"))
        t_np_r = best_of(lambda: np.fromfile(tmp / "np.bin", dtype=data.dtype))
        mm = np.memmap(tmp / "np.bin", dtype=data.dtype, mode="r", shape=data.shape)
        t_store_g = best_of(lambda: st.read("resid_post", 0, rows, dtype="native"), 7)
        t_np_g = best_of(lambda: np.asarray(mm[rows]), 7)
        f32 = st.read("resid_post", 0)  # the in-memory array numpy gets for group means

        def np_group_means():
            out = np.zeros((20, w))
            for g in range(20):
                out[g] = f32[groups == g].mean(0, dtype=np.float64)
            return out

        t_store_gm = best_of(lambda: st.group_means("resid_post", 0, groups), 2)
        t_np_gm = best_of(np_group_means, 2)
        assert np.allclose(st.group_means("resid_post", 0, groups).means[:, 0], np_group_means())
        assert np.array_equal(st.read("resid_post", 0, rows, dtype="native"), data[rows])
        st.close()
        print(f"[{logical}] write MB/s      {mb / t_store_w:10.0f}{mb / t_np_w:10.0f}{t_np_w / t_store_w:8.2f}x"
              "   (store: batches of 16k rows, catalog commits, fsync; numpy: tofile + fsync)")
        print(f"[{logical}] read MB/s       {mb / t_store_r:10.0f}{mb / t_np_r:10.0f}{t_np_r / t_store_r:8.2f}x")
        print(f"[{logical}] gather {len(rows)} rows ms {t_store_g * 1e3:7.1f}{t_np_g * 1e3:10.1f}"
              f"{t_np_g / t_store_g:8.2f}x   (numpy: memmap fancy index)")
        print(f"[{logical}] group_means ms  {t_store_gm * 1e3:10.0f}{t_np_gm * 1e3:10.0f}{t_np_gm / t_store_gm:8.2f}x"
              "   (store streams from disk; numpy has the array in memory)")

    print(f"\n== ingest-shaped appends: {args.arrays} arrays (sites x layers), batches of {args.batch_rows} rows "
          "(not chunk-aligned), bf16")
    t_store_a, t_np_a, mb = appends(tmp, xbf, args.arrays, args.batch_rows)
    print(f"{'':26}{'store':>10}{'numpy':>10}{'ratio':>8}")
    print(f"append MB/s               {mb / t_store_a:10.0f}{mb / t_np_a:10.0f}{t_np_a / t_store_a:8.2f}x"
          "   (store: append + catalog commit; numpy: one file per array, append + fsync)")

    print("\n== codec and sharding choice (bf16 activation-like data; size relative to raw)")
    print(f"{'codec':<12}{'shards':>7}{'size':>8}{'write s':>9}{'read MB/s':>11}{'gather ms':>11}")
    mb = xbf.nbytes / 2**20
    for codec, shard in (("none", 1), ("blosc-lz4", 1), ("blosc-zstd", 1), ("zstd", 1), ("none", 16)):
        p = tmp / f"c-{codec}-{shard}"
        tw = build(p, xbf, "bfloat16", codec=codec, shard_chunks=shard)
        size = sum(f.stat().st_size for f in (p / "arrays").rglob("*") if f.is_file())
        st = actstore.open(p)
        tr = best_of(lambda: st.read("resid_post", 0, dtype="native"), 2)
        tg = best_of(lambda: st.read("resid_post", 0, rows, dtype="native"), 2)
        st.close()
        print(f"{codec:<12}{shard:>7}{size / xbf.nbytes:8.2f}{tw:9.1f}{mb / tr:11.0f}{tg * 1e3:11.1f}")
    shutil.rmtree(tmp, ignore_errors=True)


def _fsync(path: Path) -> None:
    import os

    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


if __name__ == "__main__":
    main()
