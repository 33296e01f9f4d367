"""Store.dask_array: lazy blocks over the stored chunks; reductions equal the in-process path."""

import pickle

import numpy as np
import pytest

import actstore

da = pytest.importorskip("dask.array")


def test_dask_reduction_equals_group_means(filled):
    with actstore.open(filled) as st:
        x = st.dask_array("resid_post", 1)
        meta = st.array_meta("resid_post", 1)
        assert x.shape == (st.n_rows, meta.width) and x.numblocks[0] == -(-st.n_rows // meta.chunk_rows)
        role = st.sql("SELECT role FROM tokens ORDER BY row").fetchnumpy()["role"]
        gm = st.group_means("resid_post", 1, "SELECT row, role FROM tokens")
        for label in gm.labels:
            mask = np.asarray(role == label)
            got = x[mask].astype("float64").mean(axis=0).compute()
            np.testing.assert_allclose(got, gm.mean(label, 1), rtol=1e-6, atol=1e-7)
        assert np.array_equal(x.compute(), st.read("resid_post", 1))
        assert np.array_equal(st.dask_array("resid_post", 1, pool="mean_response").compute(),
                              st.read("resid_post", 1, pool="mean_response"))


def test_dask_view_pickles_without_open_files(filled):
    with actstore.open(filled) as st:
        x = st.dask_array("mlp_act", 0, dtype="native")
        want = st.read("mlp_act", 0, dtype="native")
    y = pickle.loads(pickle.dumps(x))  # what a process or distributed scheduler does
    assert np.array_equal(y.compute(scheduler="sync"), want)
