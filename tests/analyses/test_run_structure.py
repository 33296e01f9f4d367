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
from ingest.values import VALUE_SLUGS


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


def _survey(path, rng, values=VALUE_SLUGS, n=300) -> str:
    import json

    data = {f"p{i}": {"pvq": {v: float(x) for v, x in zip(values, rng.standard_normal(len(values)))}} for i in range(n)}
    path.write_text(json.dumps(data))
    return str(path)


def test_mantel_baselines_and_layer_correction(store, tmp_path) -> None:
    rng = np.random.default_rng(0)
    with actstore.open(store) as st:
        res = run(st, StructureSpec(n_perm=199, n_shuffle=10, record=False, human=_survey(tmp_path / "h.json", rng)))
    t = res.table()
    assert {"p_corrected", "r_theory", "p_theory_corr", "r_human", "p_human_corr"} <= set(t.columns)
    assert (t.p_corrected >= t.p_value - 1e-12).all() and (t.p_theory_corr >= t.p_theory - 1e-12).all()
    # the planted circle: significant against theory after the correction, far above every null
    assert res.r2_p_corrected[res.layer] < 0.01 and res.mantel_theory.p_corrected.max() < 0.01
    b = res.baselines
    shuffled = next(v for k, v in b.items() if k.startswith("labels shuffled"))
    random = next(v for k, v in b.items() if k.startswith("random directions"))
    model_r = b[f"model (layer {res.layer})"]["theory"]["r"]
    assert shuffled["theory"]["null_hi"] < model_r and random["theory"]["null_hi"] < model_r
    assert abs(random["theory"]["null_mean"]) < 0.1 and abs(shuffled["theory"]["null_mean"]) < 0.4
    # planted labels are independent (Hadamard columns): co-occurrence is zero, the model's part is all of it
    np.testing.assert_allclose(res.cooc, np.eye(10), atol=1e-9)
    assert b["model beyond co-occurrence (partial r)"]["theory"]["r"] == pytest.approx(model_r, abs=1e-6)
    # null case: survey scores drawn independently, so the human matrix is noise; the best layer is
    # not significant once its choice is corrected for
    assert res.mantel_human.p_corrected.min() > 0.05
    assert any("human" in s and "Mantel p" in s for s in res.sentences())
    assert "random directions" in res.baseline_table().source.str.cat()


def test_baselines_are_recorded_with_the_run(store, tmp_path) -> None:
    import json

    path = storebuild.copy_of(store, tmp_path / "s")
    with actstore.open(path) as st:
        res = run(st, StructureSpec(n_perm=50, n_shuffle=4, layer=1))
        summary = json.loads(st.sql("SELECT message FROM runs WHERE run_id = ?", [res.run_id]).fetchall()[0][0])
    assert not res.chosen and summary["mantel_theory"]["n_perm"] == 50
    assert any(k.startswith("labels shuffled") for k in summary["baselines"])
    assert len(summary["cooccurrence"]) == 10
