"""Value neurons from the stored down projections: planted classes, attribution, overlap, SQL."""

from __future__ import annotations

import numpy as np
import pytest
import storebuild

import actstore
from actstore.errors import InputError
from analyses.run_neurons import NeuronsSpec, run


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    src, truth = storebuild.cached(analysed=True)
    path = storebuild.copy_of(src, tmp_path_factory.mktemp("neurons") / "store")
    with actstore.open(path) as st:
        res = run(st, NeuronsSpec(plot=str(path.parent / "classes.png")))
    return path, truth, res


def test_planted_classes_found_with_high_precision_and_recall(result) -> None:
    _, truth, res = result
    rows = res.rows
    for (value, layer), planted in truth.neuron_class.items():
        sel = (rows["value"] == value) & (rows["layer"] == layer)
        found = {int(n): c for n, c in zip(rows["neuron"][sel], rows["class"][sel]) if c != "unclassified"}
        hits = sum(found.get(n) == c for n, c in planted.items())
        assert hits / max(len(found), 1) >= 0.95, (value, layer)
        assert hits / len(planted) >= 0.95, (value, layer)


def test_attribution_from_stored_mlp_act(result) -> None:
    _, truth, res = result
    assert res.attribution
    rows = res.rows
    shared = [n for n, c in truth.neuron_class[("benevolence", 1)].items() if c == "shared"]
    sel = (rows["value"] == "benevolence") & (rows["layer"] == 1) & np.isin(rows["neuron"], shared)
    # Planted neurons fire 1.0 more when the value is expressed and write along +shared.
    assert sel.sum() == len(shared) and (rows["attribution"][sel] > 0.5).all()


def test_rows_recorded_and_queryable(result) -> None:
    path, _, res = result
    with actstore.open(path) as st:
        n = st.sql("SELECT count(*) FROM neuron_scores WHERE run_id = ?", [res.run_id]).fetchall()[0][0]
        assert n == len(res.rows["neuron"]) == 10 * 3 * 10  # 1% of 1000 neurons, 10 values, 3 layers
        shared = st.sql("""SELECT a.layer, a.neuron FROM neuron_scores a JOIN neuron_scores b USING (run_id, layer, neuron)
            WHERE run_id = ? AND a.value = 'benevolence' AND b.value = 'universalism'
              AND a.class = 'shared' AND b.class = 'shared'""", [res.run_id]).fetchall()
        assert isinstance(shared, list)
    assert set(res.jaccard["value"]) == set(res.values) and ((res.jaccard["jaccard"] >= 0) & (res.jaccard["jaccard"] <= 1)).all()
    table = res.table()
    assert {"shared", "intrinsic_unique", "prompted_unique", "jaccard"} <= set(table.columns)
    assert res.plot is not None and res.plot.read_bytes()[:4] == b"\x89PNG"


def test_bad_neuron_options(tmp_path) -> None:
    src, _ = storebuild.cached(analysed=True)
    with pytest.raises(InputError, match="out of range"):
        NeuronsSpec(top="150%")
    with pytest.raises(InputError, match="bad fraction"):
        NeuronsSpec(top="lots")
    with actstore.open(src) as st, pytest.raises(InputError, match="no vectors at layer 5"):
        run(st, NeuronsSpec(layers=(5,), record=False))


def test_overlap_figures_beside_random_directions() -> None:
    path, _ = storebuild.cached(analysed=True)
    with actstore.open(path) as st:
        res = run(st, NeuronsSpec(record=False, n_random=40, layers=(1,)))
    t = res.table().set_index("value")
    assert {"jaccard_null", "jaccard_p", "shared_null", "shared_p"} <= set(t.columns)
    for v in storebuild.PLANTED_NEURON_VALUES:  # planted shared writers: overlap well above random planes
        assert t.loc[v, "jaccard"] > t.loc[v, "jaccard_null"] and t.loc[v, "jaccard_p"] < 0.05
    assert ((t.jaccard_null >= 0) & (t.jaccard_null < 0.3)).all()
