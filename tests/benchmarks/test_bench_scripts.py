"""Smoke tests that keep the peer and growth benchmarks runnable (tiny sizes, no SAELens).

* bench_growth: the whole script in-process at 1x and 2x of a few value-world queries, with a lexicon
  whose phrases are the model's stock openers, so that every value has both labels at 1x and the
  three analyses run.
* bench_peers: the actstore and naive contenders' code (and actstore's --writes-only path) on a tiny
  GPT-2, read back with the script's own readers: actstore's stored activations equal the plain
  forward pass's, bit for bit.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_growth_in_process(tmp_path: Path, one_thread) -> None:
    growth = _load("bench_growth")
    phrases = tmp_path / "phrases.json"
    phrases.write_text(json.dumps({"benevolence": ["thanks", "good question"],
                                   "power": ["thinking", "here is", "it depends"]}))
    res = growth.main(["--queries", "2", "--factor", "2", "--samples", "2", "--intrinsic-samples", "2",
                       "--values", "benevolence,power",
                       "--judge", f"lexicon:{phrases}", "--max-new-tokens", "10", "--layers", "0",
                       "--in-process", "--dir", str(tmp_path)])
    assert res["ingest 1x"]["records"] == 12 and res["ingest 2x"]["records"] == 24
    assert res["capture 1x"]["usable_values"], "no value with both labels: the analyses did not run"
    for what in growth.ANALYSES:
        assert res[f"{what} 2x"]["vectors" if what != "neurons" else "neuron_rows"] > 0


def test_peers_actstore_matches_plain_forward(tmp_path: Path, one_thread) -> None:
    import numpy as np

    peers = _load("bench_peers")
    args = argparse.Namespace(vocab=64, ctx=16, d_model=32, layers=2, heads=4, dtype="bfloat16", seqs=8, layer=0,
                              batch=4, buffer_tokens=64, threads=1, codec="none")
    spec = peers.build_inputs(args, tmp_path)
    peers.work_actstore(spec, tmp_path / "actstore")
    peers.work_naive(spec, tmp_path / "naive")
    ref_ids, ref = peers.read_naive(tmp_path / "naive")
    ids, got = peers.read_actstore(tmp_path / "actstore", 0)
    tokens = np.load(spec["tokens"]).reshape(-1)
    assert np.array_equal(ref_ids, tokens) and np.array_equal(ids, tokens)
    assert peers.compare(ref, got, "bfloat16")["verdict"] == "bit-exact"
    # --writes-only: the same activations through Store.append
    peers.write_actstore({**spec, "computed": str(tmp_path / "naive")}, tmp_path / "appended")
    ids, got = peers.read_actstore(tmp_path / "appended", 0)
    assert np.array_equal(ids, tokens) and peers.compare(ref, got, "bfloat16")["verdict"] == "bit-exact"
    # --codec: compressed arrays hold the same numbers
    peers.write_actstore({**spec, "computed": str(tmp_path / "naive"), "codec": "blosc-zstd"}, tmp_path / "zstd")
    ids, got = peers.read_actstore(tmp_path / "zstd", 0)
    assert np.array_equal(ids, tokens) and peers.compare(ref, got, "bfloat16")["verdict"] == "bit-exact"


def test_ingest_bench_runs_both_dtypes(tmp_path: Path, one_thread) -> None:
    """bench_ingest on a tiny model: every side runs for both dtypes, the write path alone writes
    exactly the bytes that ingest wrote, and every figure it reports is a real measurement."""
    bench = _load("bench_ingest")
    res = bench.main(["--preset", "tiny", "--dtype", "float32,bfloat16", "--tokens", "600", "--repeat", "1",
                      "--buffer-mb", "1", "--threads", "1", "--dir", str(tmp_path)])
    assert [r["dtype"] for r in res] == ["float32", "bfloat16"]
    for r in res:
        assert r["bare_s"] > 0 and r["ingest_s"] > 0 and r["write_s"] > 0 and r["disk"] > 0
        assert r["tokens"] >= 600 and r["bytes"] > 0
        assert r["ratio_direct"] > 0 and r["write_direct_s"] > 0  # the ACTSTORE_DIRECT_IO=1 sides ran
        assert r["ratio_page_cache"] > 0  # the ACTSTORE_DIRECT_IO=0 side ran
        assert r["ratio_alt"] > 0 and r["split"] in (True, False)  # the other writer schedule ran
        assert r["write_appends_fraction"] > r["write_fraction"] > 0  # declare + close take time
        assert r["long_fraction"] > 0  # the long store (4x the batches) was written
        assert r["raw_s"] > 0 and r["ratio_raw"] == r["raw_s"] / r["bare_s"]  # the bare + raw writes side ran
    # bf16 stores half the per-token bytes of fp32 (pooled means stay fp32): the byte counts are real
    assert res[1]["bytes"] < res[0]["bytes"]
    assert list(tmp_path.iterdir()) == [], "the benchmark left files behind"
