"""Property test: random batches round-trip exactly through write, reopen, read and group_means."""

import numpy as np
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actstore
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
from tests.actstore.synth import bf16_bits

DTYPES = ("float32", "float16", "bfloat16")


def _arr(rng, n, width, dtype):
    x = rng.standard_normal((n, width), dtype=np.float32) * 3
    if dtype == "bfloat16":
        return bf16_bits(x)
    return x.astype(dtype)


def _decoded(raw, dtype):
    if dtype == "bfloat16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(DTYPES),
    width=st.integers(1, 24),
    chunk_rows=st.integers(16, 40),
    codec=st.sampled_from(["none", "none", "blosc-lz4", "zstd"]),
    records=st.lists(st.lists(st.integers(1, 30), min_size=1, max_size=5), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_random_batches_round_trip(tmp_path_factory, dtype, width, chunk_rows, codec, records, seed):
    path = tmp_path_factory.mktemp("rt") / "s"
    rng = np.random.default_rng(seed)
    key = ArrayKey(Site("resid_post", 3))
    pkey = ArrayKey(Site("resid_post", 3), "last_prompt")
    sent, pooled, n_tok_all = [], [], []
    with actstore.open(path, read_only=False, create=True) as s:
        s.set_model(ModelInfo("m", dtype, 4, width))
        s.declare_arrays([ArraySpec(key, width, dtype, codec=codec, chunk_rows=chunk_rows),
                          ArraySpec(pkey, width, dtype, codec=codec, chunk_rows=chunk_rows)])
        for i, nts in enumerate(records):  # ragged records, one batch per list
            nt = np.array(nts)
            a, p = _arr(rng, int(nt.sum()), width, dtype), _arr(rng, len(nt), width, dtype)
            s.append(Batch(n_tokens=nt, prompt_lens=nt - 1, token_ids=np.zeros(int(nt.sum()), int),
                           roles=["response"] * int(nt.sum()), token_arrays={key: a}, record_arrays={pkey: p},
                           key=str(i)))
            sent.append(a), pooled.append(p), n_tok_all.extend(nts)
    want, want_p = np.concatenate(sent), np.concatenate(pooled)

    with actstore.open(path) as s:
        assert s.n_rows == len(want) and s.n_records == len(want_p)
        # bit-exact in the storage dtype, whole and gathered in random order with repeats
        assert np.array_equal(s.read("resid_post", 3, dtype="native").view(want.dtype), want)
        rows = rng.integers(0, len(want), size=min(50, 3 * len(want)))
        assert np.array_equal(s.read("resid_post", 3, rows, dtype="native").view(want.dtype), want[rows])
        assert np.array_equal(s.read("resid_post", 3, [len(want_p) - 1, 0], pool="last_prompt", dtype="native")
                              .view(want_p.dtype), want_p[[len(want_p) - 1, 0]])
        f32 = _decoded(want, dtype)
        assert np.array_equal(s.read("resid_post", 3), f32)
        # group means: per record and a random grouping, against numpy
        gm = s.group_means("resid_post", 3, "SELECT row, record_id FROM tokens")
        starts = np.concatenate([[0], np.cumsum(n_tok_all)[:-1]])
        ref = np.stack([f32[a:a + n].astype(np.float64).mean(0) for a, n in zip(starts, n_tok_all)])
        np.testing.assert_allclose(gm.means[:, 0], ref, rtol=1e-12, atol=1e-12)
        groups = rng.integers(-1, 3, size=len(want))
        if (groups >= 0).any():
            gm2 = s.group_means("resid_post", [3], groups)
            for gi, g in enumerate(gm2.labels):
                np.testing.assert_allclose(gm2.means[gi, 0], f32[groups == g].astype(np.float64).mean(0),
                                           rtol=1e-12, atol=1e-12)
                assert gm2.counts[gi] == (groups == g).sum()
        from actstore.verify import verify
        assert verify(s).ok
    # Zarr itself reads the same bytes: uncompressed chunks are written straight to their files
    # (appends continue partly filled chunks), and must stay what any Zarr v3 reader decodes.
    for name, w in (("token/resid_post/3", want), ("last_prompt/resid_post/3", want_p)):
        z = zarr.open_array(path / "arrays" / name, mode="r")
        assert z.shape[0] >= len(w) and np.array_equal(z[: len(w)], w)


def test_torch_output_is_bit_exact_bf16(filled):
    import torch

    from tests.actstore.conftest import expected

    want = expected(6)["token/resid_post/0"]
    with actstore.open(filled) as s:
        t = s.read("resid_post", 0, rows=[3, 1], dtype="torch")
    assert t.dtype == torch.bfloat16
    assert np.array_equal(t.view(torch.int16).numpy().view(np.uint16), want[[3, 1]])
