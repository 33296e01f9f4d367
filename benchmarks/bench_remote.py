"""Remote reading: bytes downloaded vs bytes touched, over a local HTTP server with Range support.

    python benchmarks/bench_remote.py [--rows 32768] [--width 2048]

Builds a bf16 store (4 KiB rows in 4 MiB chunks, the layout rule), serves it from 127.0.0.1
with the tests' static server (it counts body bytes) and prints, per query, the bytes the query
needed, the bytes that came over the wire, and what fetching whole chunks would have cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import actstore
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
from benchmarks.common import activation_like, bf16_bits
from tests.actstore.httpserver import StaticServer


def build(path: Path, n_rows: int, width: int) -> None:
    keys = [ArrayKey(Site("resid_post", layer)) for layer in range(2)]
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo("bench", "bfloat16", 2, width))
        st.declare_arrays([ArraySpec(k, width, "bfloat16") for k in keys])
        per = 4096
        for b in range(n_rows // per):
            nt = np.full(per // 256, 256)
            x = {k: bf16_bits(activation_like(per, width, seed=b * 2 + i)) for i, k in enumerate(keys)}
            st.append(Batch(n_tokens=nt, prompt_lens=nt // 4, token_ids=np.zeros(per, np.int32),
                            roles=np.repeat(np.array([[1] * 64 + [3] * 192]), len(nt), 0).ravel(),
                            token_arrays=x, key=f"b{b}"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--width", type=int, default=2048)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    os.environ["ACTSTORE_CACHE"] = str(tmp / "cache")
    build(tmp / "store", args.rows, args.width)
    with StaticServer(tmp) as srv:
        url = f"{srv.url}/store"
        t0 = time.perf_counter()
        rem = actstore.open(url)
        t_open = time.perf_counter() - t0
        print(f"store: {args.rows} rows x {args.width} bf16 per layer, 2 layers; "
              f"catalog {srv.body_bytes / 2**20:.1f} MiB fetched on first open ({t_open:.2f} s)")
        srv.reset_counts()
        actstore.open(url).close()
        print(f"second open: {len(srv.requests)} request(s) ({srv.requests[0][0]}), {srv.body_bytes} bytes")
        meta = rem.array_meta("resid_post", 0)
        chunk_bytes = meta.chunk_rows * meta.row_bytes
        rem.read("resid_post", 0, [0])  # zarr.json once
        loc = actstore.open(tmp / "store")
        rng = np.random.default_rng(0)
        rec = rem.sql("SELECT row_start, n_tokens, prompt_len FROM records WHERE record_id = 37").fetchall()[0]
        queries = {
            "gather 100 random rows": rng.choice(args.rows, 100, replace=False),
            "gather 10 random rows": rng.choice(args.rows, 10, replace=False),
            "one record's response tokens": np.arange(rec[0] + rec[2], rec[0] + rec[1]),
            "tokens of 8 records (role=response)": rem.sql(
                "SELECT row FROM tokens WHERE record_id IN (3, 50, 51, 90, 91, 92, 100, 120) AND role = 'response'"
            ).fetchnumpy()["row"],
        }
        print(f"\n{'query (one layer)':<38}{'touched':>10}{'fetched':>10}{'ratio':>7}{'req':>5}"
              f"{'whole chunks':>14}{'ms':>7}")
        for name, rows in queries.items():
            srv.reset_counts()
            t0 = time.perf_counter()
            got = rem.read("resid_post", 0, rows)
            ms = (time.perf_counter() - t0) * 1e3
            assert np.array_equal(got, loc.read("resid_post", 0, rows))
            touched = len(np.unique(rows)) * meta.row_bytes
            n_chunks = len(np.unique(np.asarray(rows) // meta.chunk_rows))
            print(f"{name:<38}{touched / 1024:9.0f}K{srv.body_bytes / 1024:9.0f}K"
                  f"{srv.body_bytes / touched:7.2f}{len(srv.requests):5d}{n_chunks * chunk_bytes / 1024:13.0f}K{ms:7.0f}")
        srv.reset_counts()
        t0 = time.perf_counter()
        gm = rem.group_means("resid_post", 0, "SELECT row, role FROM tokens")
        t_r = time.perf_counter() - t0
        t0 = time.perf_counter()
        gl = loc.group_means("resid_post", 0, "SELECT row, role FROM tokens")
        t_l = time.perf_counter() - t0
        assert np.array_equal(gm.means, gl.means)
        size = meta.n_rows * meta.row_bytes
        print(f"\ngroup_means over a whole layer: fetched {srv.body_bytes / 2**20:.1f} MiB of {size / 2**20:.1f} MiB; "
              f"{t_r:.2f} s remote vs {t_l:.2f} s local ({size / 2**20 / t_r:.0f} MB/s over loopback)")
        srv.reset_counts()
        from actstore.publish import Selection, pull

        rep = pull(url, tmp / "pulled", Selection(layers=(1,)))
        print(f"pull --layers 1: {srv.body_bytes / 2**20:.1f} MiB over the wire for {rep.arrays} array(s) "
              f"(store arrays total {2 * size / 2**20:.1f} MiB); verified {rep.chunks_verified} chunks")
        rem.close()
        loc.close()


if __name__ == "__main__":
    main()
