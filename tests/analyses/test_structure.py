"""Circumplex structure: PCA + Procrustes on planted circles, permutation baseline, matrix agreement."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_circle

from actstore.errors import InputError
from analyses import structure as st
from ingest.values import HIGHER_ORDER


def test_planted_circle_comes_back_in_order() -> None:
    axes = planted_circle(noise=0.03, seed=0)
    fit = st.circumplex_fit(axes, n_perm=1000, seed=0)
    assert fit.r2 > 0.95
    assert fit.p_value <= 0.005
    assert fit.perm_r2.shape == (1000,)
    assert set(fit.r2_by_group) == set(HIGHER_ORDER) and min(fit.r2_by_group.values()) > 0.9
    assert st.same_cyclic_order(st.circular_order(fit.coords), range(10))
    assert st.same_cyclic_order(st.circular_order(fit.aligned), range(10))
    assert fit.explained.sum() > 0.8


def test_random_placement_fits_badly() -> None:
    r2s, ps = [], []
    for seed in range(5):
        fit = st.circumplex_fit(planted_circle(random=True, seed=seed), n_perm=200, seed=seed)
        r2s.append(fit.r2)
        ps.append(fit.p_value)
    assert max(r2s) < 0.6 and np.mean(r2s) < 0.4
    assert np.median(ps) > 0.05


def test_shuffled_circle_is_not_in_order() -> None:
    axes = planted_circle(noise=0.03, seed=1)
    perm = np.array([0, 5, 2, 7, 4, 9, 6, 1, 8, 3])
    fit = st.circumplex_fit(axes[perm], n_perm=300)
    assert fit.r2 < 0.6 and not st.same_cyclic_order(st.circular_order(fit.coords), range(10))


def test_fit_is_invariant_to_reflection_rotation_scale() -> None:
    axes = planted_circle(noise=0.05, seed=2)
    base = st.circumplex_fit(axes, n_perm=10).r2
    flipped = axes.copy()
    flipped[:, :] = -3.0 * axes
    assert st.circumplex_fit(flipped, n_perm=10).r2 == pytest.approx(base)


def test_group_r2_definition() -> None:
    target = st.circle_positions(st.value_angles())
    r2, t, aligned = st.procrustes_r2(target, target)
    assert r2 == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in st.group_r2(t, aligned).values())
    bad = aligned.copy()
    bad[[5, 6, 7]] = 0.0  # conservation collapsed to the centre
    g = st.group_r2(t, bad)
    assert g["conservation"] == pytest.approx(0.0, abs=1e-9) and g["self_transcendence"] == pytest.approx(1.0)


def test_cosine_matrix_matches_theory_for_planted_circle() -> None:
    axes = planted_circle(noise=0.02, seed=3)
    cos = st.cosine_matrix(axes)
    assert cos.shape == (10, 10)
    np.testing.assert_allclose(np.diag(cos), 1.0)
    theory = st.circumplex_similarity(st.value_angles())
    agree = st.compare_matrices(cos, theory)
    assert agree.n_pairs == 45
    assert agree.pearson > 0.95 and agree.spearman > 0.9 and agree.pearson_p < 1e-10
    rnd = st.compare_matrices(st.cosine_matrix(planted_circle(random=True, seed=3)), theory)
    assert abs(rnd.pearson) < 0.5


def test_theory_matrix_and_helpers() -> None:
    t = st.circumplex_similarity(st.value_angles())
    assert t[0, 5] == pytest.approx(-1.0) and t[0, 1] == pytest.approx(np.cos(np.radians(36)))
    assert st.offdiag(np.arange(9).reshape(3, 3)).tolist() == [1, 2, 5]
    assert st.same_cyclic_order([3, 2, 1, 0, 9, 8, 7, 6, 5, 4], range(10))
    assert not st.same_cyclic_order([0, 2, 1, 3, 4, 5, 6, 7, 8, 9], range(10))


def test_human_correlations_from_value_portrait(value_portrait) -> None:
    corr, n = st.load_human_correlations(value_portrait)
    assert corr.shape == (10, 10) and n > 500
    np.testing.assert_allclose(np.diag(corr), 1.0)
    # People's value scores follow the circle: they agree with the theoretical similarity.
    agree = st.compare_matrices(corr, st.circumplex_similarity(st.value_angles()))
    assert agree.spearman > 0.5 and agree.spearman_p < 0.01
    # A directory works too.
    assert st.load_human_correlations(value_portrait.parent)[1] == n


def test_bad_inputs_are_clear_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="no survey file"):
        st.load_human_correlations(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text('{"P1": {"bfi": {}}}')
    with pytest.raises(InputError, match="0 participants"):
        st.load_human_correlations(tmp_path / "x.json")
    with pytest.raises(InputError, match="shape"):
        st.circumplex_fit(np.zeros((4, 8)))
    with pytest.raises(InputError, match="degenerate"):
        st.circumplex_fit(np.ones((10, 8)), n_perm=1)


def test_circumplex_plot(tmp_path) -> None:
    from analyses.plots import plot_circumplex

    fit = st.circumplex_fit(planted_circle(seed=4), n_perm=10)
    p = plot_circumplex(fit.aligned, fit.target, tmp_path / "circle.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
