"""Value vectors from a planted store: recovery, token routes, contrasts, recording, bad input, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import storebuild

import actstore
from actstore.errors import InputError, QueryError
from analyses.run_vectors import VectorsSpec, run
from analyses.vectors import cosine
from ingest.values import VALUE_SLUGS


@pytest.fixture(scope="module")
def planted():
    return storebuild.cached()


@pytest.fixture
def fresh(planted, tmp_path):
    return storebuild.copy_of(planted[0], tmp_path / "store"), planted[1]


def test_vectors_recover_planted_and_are_recorded(fresh) -> None:
    path, truth = fresh
    with actstore.open(path) as st:
        res = run(st, VectorsSpec())
        assert res.values == VALUE_SLUGS and res.layers == (0, 1, 2)
        assert cosine(res.vectors[:, 0], truth.v_int).min() >= 0.99
        assert cosine(res.vectors[:, 1], truth.v_prompt).min() >= 0.99
        # Two languages x 4 samples x 32 queries intrinsic, half expressed; 2 x 32 prompted per value.
        assert (res.n_pos[:, 0] == 128).all() and (res.n_neg[:, 1] == 32).all()
        got = st.sql("SELECT count(*), min(n_pos), max(norm) FROM vectors WHERE run_id = ? AND component = 'diff_means'",
                     [res.run_id]).fetchall()[0]
        assert got[0] == 10 * 2 * 3 and got[1] == 32
        # The README's query: cosine(intrinsic, prompted) per layer, in SQL, equals the result's.
        rows = st.sql("""SELECT i.value, i.layer, array_cosine_similarity(i.vec, p.vec) AS cos
            FROM vectors i JOIN vectors p USING (run_id, value, layer, component)
            WHERE run_id = ? AND component = 'diff_means' AND i.condition = 'intrinsic' AND p.condition = 'prompted'
            ORDER BY i.value, i.layer""", [res.run_id]).fetchall()
        for value, layer, cos in rows:
            assert cos == pytest.approx(res.cos_int_prompt[VALUE_SLUGS.index(value), layer], abs=1e-5)
        kind, status = st.sql("SELECT kind, status FROM runs WHERE run_id = ?", [res.run_id]).fetchall()[0]
        assert (kind, status) == ("vectors", "done")


def test_token_rows_from_sql_give_the_pooled_vectors(planted) -> None:
    with actstore.open(planted[0]) as st:
        pooled = run(st, VectorsSpec(record=False, layers=(1,)))
        tok = run(st, VectorsSpec(record=False, layers=(1,), tokens="sql:SELECT row FROM tokens WHERE role = 'response'"))
    np.testing.assert_allclose(tok.vectors, pooled.vectors, atol=1e-4)
    assert (tok.n_pos == 4 * pooled.n_pos).all()  # four response tokens per record


def test_last_prompt_pool_and_language_filter(planted) -> None:
    path, truth = planted
    with actstore.open(path) as st:
        res = run(st, VectorsSpec(record=False, tokens="last_prompt", language="en", values=("Benevolence",)))
    s = VALUE_SLUGS.index("benevolence")
    assert res.values == ("benevolence",)
    assert cosine(res.vectors[0, 0], truth.v_int[s]).min() >= 0.98
    np.testing.assert_allclose(res.norms[0, 0], 0.5 * np.linalg.norm(truth.v_int[s], axis=-1), rtol=0.1)
    assert (res.n_pos[0, 0] == 64)


def test_other_contrasts(planted) -> None:
    path, _ = planted
    with actstore.open(path) as st:
        base = run(st, VectorsSpec(record=False, values=("benevolence",)))
        pmi = run(st, VectorsSpec(record=False, values=("benevolence",), contrast="prompted-intrinsic"))
        q = ("SELECT record_id FROM record_labels WHERE value = 'benevolence' AND condition = 'intrinsic' "
             "AND expressed = {}")
        sql = run(st, VectorsSpec(record=False, contrast=f"sql:{q.format('true')};{q.format('false')}"))
        pos = ("SELECT record_id FROM record_labels WHERE value = 'benevolence' AND expressed "
               "AND (condition = 'intrinsic' OR target_value = 'benevolence') AND condition = '{}'")
        same = run(st, VectorsSpec(record=False, contrast=f"sql:{pos.format('prompted')};{pos.format('intrinsic')}"))
    assert pmi.conditions == ("prompted_minus_intrinsic",) and pmi.vectors.shape == base.vectors[:, :1].shape
    np.testing.assert_allclose(pmi.vectors[0, 0], same.vectors[0, 0], atol=1e-9)
    np.testing.assert_allclose(sql.vectors[0, 0], base.vectors[0, 0], atol=1e-9)


def test_no_record_leaves_the_store_as_it_was(fresh) -> None:
    path, _ = fresh
    before = storebuild.snapshot(path)
    with actstore.open(path) as st:
        run(st, VectorsSpec(record=False))
    assert storebuild.snapshot(path) == before


@pytest.mark.parametrize("spec, error, match", [
    ({"values": ("kindness",)}, InputError, "unknown value"),
    ({"layers": (7,)}, InputError, "layer 7 out of range"),
    ({"tokens": "sql:SELECT nope FROM tokens"}, QueryError, "SQL error"),
    ({"contrast": "sql:SELECT 1"}, InputError, "two queries"),
    ({"min_count": 100}, InputError, "fewer than 100"),
    ({"judge": "gpt"}, InputError, "no labels by judge"),
    ({"site": "mlp_act"}, InputError, "vectors table holds d_model"),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(fresh, spec, error, match) -> None:
    path, _ = fresh
    before = storebuild.snapshot(path)
    with pytest.raises(error, match=match), actstore.open(path) as st:
        run(st, VectorsSpec(**spec))
    assert storebuild.snapshot(path) == before


def test_an_empty_value_list_is_refused_before_reading() -> None:
    with pytest.raises(InputError, match="no values given"):
        VectorsSpec(values=())


def test_store_without_labels(tmp_path) -> None:
    storebuild.build(tmp_path / "s", n_queries=16, int_samples=1, tokens=False, mlp=False, labels=False)
    with actstore.open(tmp_path / "s") as st, pytest.raises(InputError, match="no labels"):
        run(st, VectorsSpec())


def _peak(path) -> int:
    with actstore.open(path) as st:
        tracemalloc.start()
        # the bootstrap's replicate sums are bounded by BOOT_BYTES (set small below), not by the records
        run(st, VectorsSpec(record=False, n_boot=20, n_splits=4))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_memory_stays_flat_as_the_store_grows(tmp_path, monkeypatch) -> None:
    """4x the records: the arrays grow 4x, the peak of a vectors run must not (one chunk at a time)."""
    import analyses.run_vectors as rv

    monkeypatch.setattr(rv, "BOOT_BYTES", 256 << 10)
    kw = {"d": 256, "n_layers": 4, "int_samples": 1, "tokens": False, "mlp": False, "chunk_rows": 64}
    small = tmp_path / "small"
    large = tmp_path / "large"
    storebuild.build(small, n_queries=16, **kw)
    storebuild.build(large, n_queries=64, **kw)
    _peak(small)  # warm imports and caches
    p1, p4 = _peak(small), _peak(large)
    with actstore.open(large) as st:
        array_bytes = sum(m.n_rows * m.width * 4 for m in st.arrays() if m.pool == "mean_response")
    assert p4 < 1.5 * p1, (p1, p4)  # measured: 1.35 MB vs 1.36 MB
    assert p4 < array_bytes / 2, (p4, array_bytes)


def test_two_judges_need_a_choice(fresh) -> None:
    path, truth = fresh
    with actstore.open(path, read_only=False) as st:
        st.sql("INSERT INTO labels SELECT response_id, value, 'other', NOT expressed, NULL, NULL, NULL FROM labels")
    with actstore.open(path) as st:
        with pytest.raises(InputError, match="labels from 2 judges"):
            run(st, VectorsSpec(record=False))
        res = run(st, VectorsSpec(record=False, judge="planted", layers=(0,)))
        flipped = run(st, VectorsSpec(record=False, judge="other", layers=(0,)))
    assert cosine(res.vectors[:, 0, 0], truth.v_int[:, 0]).min() >= 0.99
    np.testing.assert_allclose(flipped.vectors, -res.vectors, atol=1e-9)


def test_bootstrap_replicates_equal_an_in_memory_weighted_mean(planted) -> None:
    from analyses import groups as gq
    from analyses import stats as sx
    from analyses.run_vectors import replicate_means

    path, _ = planted
    groups = gq.exp_unexp(("benevolence", "power"))
    gids = [0, 1, 3]
    with actstore.open(path) as st:
        boot, halves = replicate_means(st, "resid_post", 1, "mean_response", groups, gids, 7, 3, seed=5)
        member = st.sql(f"SELECT \"row\", gid FROM ({groups.query})").fetchnumpy()
        acts = st.read("resid_post", 1, pool="mean_response", dtype="float64")
    for k, g in enumerate(gids):
        rows = np.sort(member["row"][member["gid"] == g])
        keys = rows * len(groups.keys) + g
        w = sx.poisson_weights(5, keys, 7)
        np.testing.assert_allclose(boot[:, k], (w @ acts[rows]) / w.sum(1, keepdims=True), rtol=1e-10)
        h = sx.half_masks(5, keys, 3)
        np.testing.assert_allclose(halves[1, :, k], ((~h) @ acts[rows]) / (~h).sum(1, keepdims=True), rtol=1e-10)


def test_intervals_cover_the_planted_vectors_and_noise_is_unreliable(planted) -> None:
    path, truth = planted
    with actstore.open(path) as st:
        res = run(st, VectorsSpec(record=False, n_boot=60, n_splits=8, layers=(1,)))
        # English intrinsic responses with one label pattern (Hadamard row 0), split in two: they differ by noise only
        same = "SELECT record_id FROM records WHERE response_id IN ({})"
        ids = [", ".join(f"'en-q{q}-intrinsic-none-s0'" for q in qs) for qs in ((0, 8, 16, 24), (4, 12, 20, 28))]
        null = run(st, VectorsSpec(record=False, n_boot=60, n_splits=8, layers=(1,), min_count=1,
                                   contrast=f"sql:{same.format(ids[0])};{same.format(ids[1])}"))
    u = res.uncertainty
    # the planted v_int, v_prompt: their cosine lies inside nearly every bootstrap interval
    true_cos = cosine(truth.v_int[:, 1], truth.v_prompt[:, 1])
    inside = (u.cos_lo[:, 0] <= true_cos) & (true_cos <= u.cos_hi[:, 0])
    assert inside.mean() >= 0.8
    assert (u.norm_lo <= res.norms).mean() > 0.9 and (u.norm_lo < u.norm_hi).all()
    assert (u.sv_lo[..., 0] > u.sv_hi[..., 1]).all()  # shared singular value clearly above the unique one
    assert u.reliability.min() > 0.8
    table = res.table()
    assert {"n_pos", "n_neg", "norm_lo", "norm_hi", "cos_lo", "cos_hi", "reliability"} <= set(table.columns)
    # no direction, so no reliability (and four responses a side: visibly noise)
    assert (null.n_pos, null.n_neg) == ([[4]], [[4]])
    assert abs(float(null.uncertainty.half_r[0, 0, 0])) < 0.3


def test_uncertainty_is_recorded_in_vector_meta(fresh) -> None:
    import json

    path, _ = fresh
    with actstore.open(path) as st:
        res = run(st, VectorsSpec(n_boot=20, n_splits=4, layers=(0,), values=("power",), seed=3))
        meta = json.loads(st.sql("SELECT meta FROM vectors WHERE run_id = ? AND condition = 'intrinsic'",
                                 [res.run_id]).fetchall()[0][0])
        off = run(st, VectorsSpec(record=False, n_boot=0, n_splits=0, layers=(0,), values=("power",)))
    assert meta["n_boot"] == 20 and meta["seed"] == 3 and len(meta["norm_ci"]) == 2 and len(meta["sv_ci"]) == 2
    assert meta["reliability"] == pytest.approx(float(res.uncertainty.reliability[0, 0, 0]))
    assert off.uncertainty is None and "norm_lo" not in off.table().columns


def test_replicates_where_a_tiny_group_drew_nothing_are_dropped(planted) -> None:
    path, _ = planted
    one = "SELECT record_id FROM records WHERE response_id = 'en-q0-intrinsic-none-s0'"
    rest = "SELECT record_id FROM records WHERE response_id LIKE 'en-q1-intrinsic%'"
    with actstore.open(path) as st:
        res = run(st, VectorsSpec(record=False, n_boot=40, n_splits=6, layers=(1,), min_count=1,
                                  contrast=f"sql:{one};{rest}"))
    u = res.uncertainty
    # one positive response: ~37% of replicates give it no weight (NaN, dropped), the rest still give an interval
    assert np.isfinite(u.norm_lo).all() and u.norm_lo[0, 0, 0] <= u.norm_hi[0, 0, 0]
    assert np.isnan(u.half_r).all()  # a half without the positive response has no vector: no reliability
