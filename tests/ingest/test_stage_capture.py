"""The capture stage's own machinery: store batches, the writer thread and reused host buffers.

Records are captured alone in their forward batches (``token_budget`` below every length), so the
bits of a record do not depend on its neighbours, and any difference between two stores is the
stage's doing: a buffer handed back too early, rows written from the wrong slice of a reused one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import actstore
from ingest.stage_capture import ArrayPlan, CaptureRecord, capture_records
from ingest.tokenize import RESPONSE, USER, TokenizedRecord


class _Tok:
    pad_token_id = 0


def _records(n: int, seed: int = 0) -> list[CaptureRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(3, 40))  # store batches of very different sizes
        plen = max(1, length // 3)
        roles = np.full(length, RESPONSE, np.int8)
        roles[:plen] = USER
        ids = rng.integers(1, 300, size=length).astype(np.int32)
        out.append(CaptureRecord(f"r{i:03d}", f"p{i:03d}", TokenizedRecord(ids, roles, plen, "")))
    return out


def _capture(root, model, records, arrays, batch_bytes, split=False):
    st = actstore.open(root, read_only=False, create=True)
    st.set_model(actstore.ModelInfo("tiny", arrays.dtype, model.config.num_hidden_layers, arrays.d_model,
                                    arrays.d_mlp))
    appends = []
    real, real_write = st.append, st.write_batch
    st.append = lambda batch, run_id=None: appends.append(batch.n_records) or real(batch, run_id=run_id)
    st.write_batch = lambda batch, **kw: appends.append(batch.n_records) or real_write(batch, **kw)
    try:
        capture_records(st, model, _Tok(), records, arrays, token_budget=2, batch_bytes=batch_bytes,
                        run_id=None, quiet=True, split=split)
        direct = sum(g.direct_bytes for g in st.arrays_io.groups)
    finally:
        st.close()
    return appends, direct


@pytest.mark.parametrize(("dtype", "split"), [("float32", False), ("bfloat16", False), ("float32", True),
                                             ("bfloat16", True)])
def test_many_store_batches_through_reused_buffers_equal_one_batch(tmp_path, make_tiny_model, dtype, split,
                                                                  monkeypatch) -> None:
    """``split``: each store batch written by the main thread between forward passes and committed
    by the writer thread beside the next (a CPU forward on every core), most of its bytes written
    by the commit with O_DIRECT straight from its buffers, which go back for reuse only then (the
    tiny model's spans are short: the direct-write minimum is lowered so they are deferred too)."""
    import actstore.arrays as arrays_mod

    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    monkeypatch.setattr(arrays_mod, "DIRECT_MIN", 512)
    torch.set_num_threads(1)
    model = make_tiny_model("llama", dtype=dtype)
    cfg = model.config
    arrays = ArrayPlan(tuple(range(cfg.num_hidden_layers)), ("resid_post", "mlp_act"), True,
                       ("mean_response", "last_prompt"), dtype, cfg.hidden_size, cfg.intermediate_size)
    records = _records(40)
    one, _ = _capture(tmp_path / "one", model, records, arrays, batch_bytes=1 << 30)
    # ~3 records a store batch: far more batches than the stage's three buffer sets, so every set
    # is reused several times, filled to different lengths (a stale tail must never be stored).
    many, direct = _capture(tmp_path / "many", model, records, arrays, batch_bytes=arrays.row_bytes() * 60,
                            split=split)
    assert len(one) == 1 and len(many) >= 8 and len(set(many)) > 1
    probe = tmp_path / "probe"
    probe.write_bytes(b"\0" * 4096)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_DIRECT))
        can_direct = arrays_mod.dio_alignment(probe) is not None
    except (OSError, AttributeError):
        can_direct = False
    assert (direct > 0) == (split and can_direct)  # deferred direct writes: the split schedule's only
    a, b = actstore.open(tmp_path / "one"), actstore.open(tmp_path / "many")
    try:
        assert a.n_rows == b.n_rows == sum(len(r.tokens.input_ids) for r in records)
        assert [m.name for m in a.arrays()] == [m.name for m in b.arrays()]
        order_a = a.sql("SELECT response_id, row_start, n_tokens FROM records ORDER BY response_id").fetchall()
        order_b = b.sql("SELECT response_id, row_start, n_tokens FROM records ORDER BY response_id").fetchall()
        rec_a = a.sql("SELECT record_id FROM records ORDER BY response_id").fetchnumpy()["record_id"]
        rec_b = b.sql("SELECT record_id FROM records ORDER BY response_id").fetchnumpy()["record_id"]
        for m in a.arrays():
            if m.kind != "activation":
                continue
            x = a.read(m.site, m.layer, pool=m.pool, dtype="native")
            y = b.read(m.site, m.layer, pool=m.pool, dtype="native")
            if m.pool == "token":
                for (_, s1, n1), (_, s2, n2) in zip(order_a, order_b, strict=True):
                    assert n1 == n2 and np.array_equal(x[s1:s1 + n1], y[s2:s2 + n2]), (m.name, s1, s2)
            else:
                assert np.array_equal(x[rec_a], y[rec_b]), m.name
    finally:
        a.close()
        b.close()


_PEAK_SCRIPT = r"""
import resource, sys, tempfile
import numpy as np, torch
torch.set_num_threads(1)
import transformers as tf
import actstore
from ingest.stage_capture import ArrayPlan, CaptureRecord, capture_records
from ingest.tokenize import RESPONSE, USER, TokenizedRecord

n_tokens, batch_bytes = int(sys.argv[1]), int(sys.argv[2])
cfg = tf.LlamaConfig(vocab_size=300, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
torch.manual_seed(0)
model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
arrays = ArrayPlan(tuple(range(4)), ("resid_post", "mlp_act"), True, ("mean_response", "last_prompt"),
                   "float32", 256, 1024)

class Tok:
    pad_token_id = 0

def records(total, tag):
    rng = np.random.default_rng(0)
    out, n = [], 0
    while n < total:
        k = int(rng.integers(20, 120))
        roles = np.full(k, RESPONSE, np.int8)
        roles[: k // 3] = USER
        out.append(CaptureRecord(f"{tag}{len(out):06d}", f"p{len(out):06d}",
                                 TokenizedRecord(rng.integers(1, 300, size=k).astype(np.int32), roles, k // 3, "")))
        n += k
    return out

def run(root, recs):
    st = actstore.open(root, read_only=False, create=True)
    st.set_model(actstore.ModelInfo("peak", "float32", 4, 256, 1024))
    capture_records(st, model, Tok(), recs, arrays, token_budget=512, batch_bytes=batch_bytes, run_id=None, quiet=True)
    st.close()

with tempfile.TemporaryDirectory() as d:
    run(d + "/warm", records(2 * batch_bytes // arrays.row_bytes(), "w"))  # imports, kernels, allocator
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    recs = records(n_tokens, "r")
    run(d + "/s", recs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak - base, arrays.row_bytes() * sum(len(r.tokens.input_ids) for r in recs))
"""


def test_peak_memory_is_the_same_at_1x_and_10x_records(tmp_path) -> None:
    """Ingest memory is bounded by the buffer, not the data: a capture of 10x the tokens (about
    200 MB of activations, 25x the buffer) peaks within a fraction of what keeping its extra
    activations would add. Each size runs in a fresh process (ru_maxrss only grows)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    batch_bytes = 8 << 20

    def peak(n_tokens: int) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(n_tokens), str(batch_bytes)], cwd=root,
                             capture_output=True, text=True, timeout=600, check=True)
        grew_kib, act_bytes = map(int, out.stdout.split()[-2:])
        return grew_kib * 1024, act_bytes

    grew_1x, act_1x = peak(1_000)
    grew_10x, act_10x = peak(10_000)
    assert act_10x > 9 * act_1x and act_10x > 20 * batch_bytes
    # Three store batches of buffers (~batch_bytes each) are allowed at either size; the 10x run's
    # extra ~180 MB of activations must not show up in its peak.
    assert grew_10x - grew_1x < 0.15 * (act_10x - act_1x), (grew_1x, grew_10x, act_1x, act_10x)


def test_writes_are_split_only_when_the_cpu_forward_has_every_core(make_tiny_model) -> None:
    from ingest.stage_capture import split_writes
    from ingest.threads import usable_cores

    model = make_tiny_model("llama", dtype="float32")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(usable_cores())
        assert split_writes(model)
        if usable_cores() > 1:  # spare cores: the writer thread overlaps the whole append
            torch.set_num_threads(usable_cores() - 1)
            assert not split_writes(model)
    finally:
        torch.set_num_threads(before)
