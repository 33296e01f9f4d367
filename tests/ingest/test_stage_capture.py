"""The capture stage's own machinery: store batches, the writer thread and reused host buffers.

Records are captured alone in their forward batches (``token_budget`` below every length), so the
bits of a record do not depend on its neighbours, and any difference between two stores is the
stage's doing: a buffer handed back too early, rows written from the wrong slice of a reused one.
"""

from __future__ import annotations

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


def _capture(root, model, records, arrays, batch_bytes):
    st = actstore.open(root, read_only=False, create=True)
    st.set_model(actstore.ModelInfo("tiny", arrays.dtype, model.config.num_hidden_layers, arrays.d_model,
                                    arrays.d_mlp))
    appends = []
    real = st.append
    st.append = lambda batch, run_id=None: appends.append(batch.n_records) or real(batch, run_id=run_id)
    try:
        capture_records(st, model, _Tok(), records, arrays, token_budget=2, batch_bytes=batch_bytes,
                        run_id=None, quiet=True)
    finally:
        st.close()
    return appends


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_many_store_batches_through_reused_buffers_equal_one_batch(tmp_path, make_tiny_model, dtype) -> None:
    torch.set_num_threads(1)
    model = make_tiny_model("llama", dtype=dtype)
    cfg = model.config
    arrays = ArrayPlan(tuple(range(cfg.num_hidden_layers)), ("resid_post", "mlp_act"), True,
                       ("mean_response", "last_prompt"), dtype, cfg.hidden_size, cfg.intermediate_size)
    records = _records(40)
    one = _capture(tmp_path / "one", model, records, arrays, batch_bytes=1 << 30)
    # ~3 records a store batch: far more batches than the stage's three buffer sets, so every set
    # is reused several times, filled to different lengths (a stale tail must never be stored).
    many = _capture(tmp_path / "many", model, records, arrays, batch_bytes=arrays.row_bytes() * 60)
    assert len(one) == 1 and len(many) >= 8 and len(set(many)) > 1
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
