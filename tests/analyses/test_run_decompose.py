"""Decomposition from stored vectors: planted shared and unique parts come back, and are recorded."""

from __future__ import annotations

import numpy as np
import pytest
import storebuild

import actstore
from actstore.errors import InputError
from analyses.recording import load_vectors
from analyses.run_decompose import COMPONENTS, DecomposeSpec, run
from analyses.vectors import cosine


@pytest.fixture
def analysed(tmp_path):
    src, truth = storebuild.cached(analysed=True)
    return storebuild.copy_of(src, tmp_path / "store"), truth


def test_shared_and_unique_parts_recovered_and_recorded(analysed) -> None:
    path, truth = analysed
    with actstore.open(path) as st:
        res = run(st, DecomposeSpec(run_id=1))
        assert res.source_run == 1 and res.languages == (None,)
        assert cosine(res.parts.shared[0], truth.shared).min() >= 0.99
        assert cosine(res.parts.unique[0], truth.unique).min() >= 0.99  # +u = intrinsic-unique
        rows, vecs = load_vectors(st, "run_id = ?", [res.run_id])
        comps = {r["component"] for r in rows}
        assert comps == set(COMPONENTS) | {"mean_delta"}
        by = {(r["component"], r["value"], r["layer"]): v for r, v in zip(rows, vecs)}
        np.testing.assert_allclose(by[("prompted_unique", "power", 1)], -by[("intrinsic_unique", "power", 1)])
        # int_only is orthogonal to v_prompt (Gram-Schmidt)
        s = list(res.values).index("power")
        assert abs(cosine(by[("int_only", "power", 1)], res.v_prompt[0, s, 1])) < 1e-5
        delta = [r for r in rows if r["component"] == "mean_delta"]
        assert len(delta) == 3 and all(r["value"] is None for r in delta)
    # Planted deltas are -2b*unique_s, with unrelated unique axes: no common shift, share about 1/V.
    assert np.all(res.delta_share < 0.3)


def test_decompose_needs_a_vectors_run(tmp_path) -> None:
    src, _ = storebuild.cached()
    path = storebuild.copy_of(src, tmp_path / "s")
    before = storebuild.snapshot(path)
    with actstore.open(path) as st, pytest.raises(InputError, match="no vectors run"):
        run(st, DecomposeSpec())
    with actstore.open(path) as st, pytest.raises(InputError, match="no run 9"):
        run(st, DecomposeSpec(run_id=9))
    assert storebuild.snapshot(path) == before


def test_group_sizes_and_bootstrap_intervals_from_the_vectors_run(analysed) -> None:
    import json

    path, _ = analysed
    with actstore.open(path) as st:
        res = run(st, DecomposeSpec(run_id=1))
        meta = json.loads(st.sql("SELECT meta FROM vectors WHERE run_id = ? AND component = 'shared' LIMIT 1",
                                 [res.run_id]).fetchall()[0][0])
    t = res.table()
    assert (t.n_exp_int == 128).all() and (t.n_unexp_prompt == 32).all()
    assert ((t.sv_shared_lo < t.sv_shared) & (t.sv_shared < t.sv_shared_hi)).mean() > 0.8
    assert (t.sv_shared_lo > t.sv_unique_hi).all() and (t.rel_int > 0.8).all()
    assert meta["n_exp_int"] == 128 and len(meta["sv_ci"]) == 2
