"""Top token contexts for a neuron and a vector, streamed chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest
import storebuild

import actstore
from actstore.errors import InputError, QueryError
from analyses.run_top_examples import TopExamplesSpec, run, top_k_stream


def test_top_k_stream_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    blocks = [(np.arange(i, i + 100), x[i:i + 100, None]) for i in range(0, 1000, 100)]
    rows, _ = top_k_stream(blocks, 7, lambda b: b[:, 0])
    np.testing.assert_array_equal(rows, np.argsort(-x)[:7])


def test_neuron_and_vector_examples() -> None:
    path, truth = storebuild.cached(analysed=True)
    with actstore.open(path) as st:
        res = run(st, TopExamplesSpec(neuron="1:7", k=10, record=False))
        assert set(res.rows) <= set(truth.hot_rows) and len(res.rows) == 10
        ex = res.examples[0]
        assert ex["token"] == "HOT" and "[[HOT]]" in ex["context"] and ex["target_value"] == "benevolence"
        vid = st.sql("SELECT vector_id FROM vectors WHERE name = 'benevolence/intrinsic/resid_post.1' "
                     "AND run_id = 1").fetchall()[0][0]
        res = run(st, TopExamplesSpec(vector_id=vid, k=len(truth.vector_rows), record=False))
        assert set(res.rows) == set(truth.vector_rows)
        res = run(st, TopExamplesSpec(neuron=(1, 7), k=5, where="role = 'response' AND language = 'es'", record=False))
        assert all(e["language"] == "es" for e in res.examples)


def test_top_examples_bad_input() -> None:
    path, _ = storebuild.cached(analysed=True)
    with pytest.raises(InputError, match="exactly one"):
        TopExamplesSpec()
    with pytest.raises(InputError, match="LAYER:INDEX"):
        TopExamplesSpec(neuron="7")
    with actstore.open(path) as st:
        with pytest.raises(InputError, match="neuron 5000 out of range"):
            run(st, TopExamplesSpec(neuron="1:5000", record=False))
        with pytest.raises(InputError, match="no vector 99999"):
            run(st, TopExamplesSpec(vector_id=99999, record=False))
        with pytest.raises(QueryError):
            run(st, TopExamplesSpec(neuron="1:7", where="nonsense ===", record=False))
        with pytest.raises(actstore.errors.UnknownArrayError):
            run(st, TopExamplesSpec(neuron="0:7", record=False))  # mlp_act stored per token at layer 1 only
