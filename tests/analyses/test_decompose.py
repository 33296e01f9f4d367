"""Shared/unique decomposition: sign conventions, Gram-Schmidt, and recovery of planted parts."""

from __future__ import annotations

import numpy as np

from analyses import decompose as dc
from analyses import vectors as vx


def test_gram_schmidt_both_ways_are_orthogonal() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 16))
    ia, pb = dc.gram_schmidt(a, b)
    np.testing.assert_allclose(np.sum(ia * b, -1), 0, atol=1e-12)
    np.testing.assert_allclose(np.sum(pb * a, -1), 0, atol=1e-12)
    # What is removed is the part along the other vector only.
    np.testing.assert_allclose(vx.cosine(a - ia, b) ** 2, 1.0)


def test_axes_are_orthonormal_with_documented_signs() -> None:
    rng = np.random.default_rng(1)
    v_int, v_prompt = rng.standard_normal((2, 5, 3, 32))
    shared, unique, s = dc.shared_unique_axes(v_int, v_prompt)
    assert shared.shape == unique.shape == (5, 3, 32) and s.shape == (5, 3, 2)
    np.testing.assert_allclose(np.linalg.norm(shared, axis=-1), 1)
    np.testing.assert_allclose(np.linalg.norm(unique, axis=-1), 1)
    np.testing.assert_allclose(np.sum(shared * unique, -1), 0, atol=1e-12)
    assert np.all(np.sum(shared * (v_int + v_prompt), -1) >= 0)
    assert np.all(np.sum(unique * (v_int - v_prompt), -1) >= 0)
    assert np.all(s[..., 0] >= s[..., 1])
    # The two axes span the same plane as the two vectors.
    coords = dc.axis_coordinates(v_int, shared, unique)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=-1), np.linalg.norm(v_int, axis=-1))


def test_equal_norm_vectors_give_bisectors() -> None:
    t = np.radians(25.0)
    v_int = 2 * np.array([np.cos(t), np.sin(t), 0.0])
    v_prompt = 2 * np.array([np.cos(t), -np.sin(t), 0.0])
    shared, unique, s = dc.shared_unique_axes(v_int, v_prompt)
    np.testing.assert_allclose(shared, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(unique, [0, 1, 0], atol=1e-12)  # + = the intrinsic side
    np.testing.assert_allclose(s, [2 * np.sqrt(2) * np.cos(t), 2 * np.sqrt(2) * np.sin(t)])


def test_parallel_vectors_do_not_crash() -> None:
    v = np.array([1.0, 2.0, 0.0])
    d = dc.decompose(v, 3 * v)
    np.testing.assert_allclose(abs(vx.cosine(d.shared, v)), 1)
    assert d.singular_values[1] < 1e-10
    np.testing.assert_allclose(d.int_only, 0, atol=1e-12)


def test_recovers_planted_shared_and_unique(planted_vecs) -> None:
    pv = planted_vecs
    means, counts = vx.group_means(pv.acts, pv.group_ids, len(pv.groups))
    vecs = vx.value_vectors(means, counts, pv.groups)
    dec = dc.decompose(vecs[:, 0], vecs[:, 1])
    # Signed comparison: the sign rules must give +shared and +unique (intrinsic-unique) back.
    assert vx.cosine(dec.shared, pv.shared).min() >= 0.99
    assert vx.cosine(dec.unique, pv.unique).min() >= 0.99
    # Gram-Schmidt parts point where the planted geometry says.
    gs_int = dc.project_out(pv.v_int, pv.v_prompt)
    assert vx.cosine(dec.int_only, gs_int).min() >= 0.99


def test_mean_delta_and_its_share() -> None:
    rng = np.random.default_rng(3)
    d = 32
    common = rng.standard_normal(d)
    v_int = rng.standard_normal((10, 2, d))
    v_prompt = v_int + common  # every value shifts the same way
    delta, share = dc.mean_delta(v_int, v_prompt)
    assert delta.shape == (2, d) and share.shape == (2,)
    np.testing.assert_allclose(delta[0], common)
    np.testing.assert_allclose(share, 1.0)
    # Independent shifts: the mean explains little (about 1/V plus chance).
    _, share = dc.mean_delta(v_int, v_int + rng.standard_normal((10, 2, d)))
    assert np.all(share < 0.35)
