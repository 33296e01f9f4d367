"""The planted circle comes back from the stored shared axes."""

from __future__ import annotations

import numpy as np
import pytest
import storebuild
from conftest import VALUE_PORTRAIT

import actstore
from actstore.errors import InputError
from analyses.run_structure import StructureSpec, run
from analyses.structure import circular_order, same_cyclic_order


@pytest.fixture(scope="module")
def store():
    return storebuild.cached(analysed=True)[0]


def test_circular_order_recovered_with_high_r2(store) -> None:
    with actstore.open(store) as st:
        res = run(st, StructureSpec(n_perm=200, record=False, layer=1))
    assert res.layer == 1 and not res.chosen
    assert res.fit.r2 > 0.95 and res.fit.p_value < 0.01
    assert same_cyclic_order(circular_order(res.fit.aligned).tolist(), list(range(10)))
    assert all(r > 0.8 for r in res.fit.r2_by_group.values())
    assert res.vs_theory.pearson > 0.9
    assert set(res.per_layer) == {0, 1, 2}


def test_human_correlations_plot_and_record(store, tmp_path) -> None:
    path = storebuild.copy_of(store, tmp_path / "s")
    human = VALUE_PORTRAIT / "human_pvq21_scores.json"
    with actstore.open(path) as st:
        res = run(st, StructureSpec(n_perm=50, plot=str(tmp_path / "circle.png"),
                                    human=str(human) if human.is_file() else None))
        summary = st.sql("SELECT message FROM runs WHERE run_id = ?", [res.run_id]).fetchall()[0][0]
    assert res.chosen and res.plot.read_bytes()[:4] == b"\x89PNG"
    assert '"r2"' in summary
    if human.is_file():
        assert res.n_participants > 100 and -1 <= res.vs_human.pearson <= 1


def test_diff_means_component_and_errors(store) -> None:
    with actstore.open(store) as st:
        res = run(st, StructureSpec(component="diff_means", condition="prompted", n_perm=20, record=False))
        assert res.fit.r2 > 0.9  # 0.6-circle inside a*shared - b*unique still dominates the top two PCs
        with pytest.raises(InputError, match="no stored 'bogus' vectors"):
            run(st, StructureSpec(component="bogus", record=False))
        with pytest.raises(InputError, match="no shared vectors at layer 9"):
            run(st, StructureSpec(layer=9, record=False))
    with pytest.raises(InputError, match="bad --condition"):
        StructureSpec(condition="both")
    assert np.isfinite(res.cosine).all()
