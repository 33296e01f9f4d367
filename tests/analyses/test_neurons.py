"""Value neurons: scores, classes, attribution, overlap; recovery of planted classes."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_down_proj

from actstore.errors import InputError
from analyses import neurons as nn
from analyses.decompose import shared_unique_axes


def _pair(seed: int = 0, d: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    s, u = q.T
    return 5 * s + 2 * u, 5 * s - 2 * u, s, u


def test_recovers_planted_classes() -> None:
    v_int, v_prompt, s, u = _pair()
    # The decomposition of this pair is exactly (s, u), signs included.
    sh, un, _ = shared_unique_axes(v_int, v_prompt)
    np.testing.assert_allclose(sh, s, atol=1e-10)
    np.testing.assert_allclose(un, u, atol=1e-10)
    pn = planted_down_proj(s, u, n_mlp=2000)
    cols = nn.score_neurons(pn.w, v_int, v_prompt)  # default: top 1% = 20 neurons
    assert len(cols["neuron"]) == 20
    for cls in nn.CLASSES:
        found = set(cols["neuron"][cols["class"] == cls].tolist())
        truth = set(np.flatnonzero(pn.truth == cls).tolist())
        tp = len(found & truth)
        assert tp / max(len(found), 1) >= 0.95, cls  # precision
        assert tp / len(truth) >= 0.95, cls  # recall


def test_scores_are_projection_norms_and_ranked() -> None:
    v_int, v_prompt, _, _ = _pair(1, d=16)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 300)).astype(np.float32)
    cols = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0)
    q = nn.span_basis(v_int, v_prompt)
    assert q.shape == (16, 2)
    expected = np.linalg.norm((q @ q.T) @ w.astype(np.float64), axis=0)
    np.testing.assert_allclose(cols["score"], expected[cols["neuron"]], rtol=1e-5)
    assert np.all(np.diff(cols["score"]) <= 0)
    np.testing.assert_array_equal(cols["rank"], np.arange(1, 301))
    np.testing.assert_allclose(np.hypot(cols["proj_shared"], cols["proj_unique"]), cols["score"], rtol=1e-6)
    rel = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0, relative=True)
    norms = np.linalg.norm(w.astype(np.float64), axis=0)
    np.testing.assert_allclose(rel["score"], expected[rel["neuron"]] / norms[rel["neuron"]], rtol=1e-5)
    assert rel["score"].max() <= 1 + 1e-6


def test_class_angles_and_threshold() -> None:
    c = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, -1.0], [1.0, 1.0], [-1.0, 0.0], [np.cos(0.5), np.sin(0.5)],
                  [0.0, 0.0]])
    names, angle = nn.classify(c)
    assert list(names) == ["shared", "intrinsic_unique", "prompted_unique", "unclassified", "unclassified",
                           "shared", "unclassified"]
    np.testing.assert_allclose(angle[:6], [0, 0, 0, 45, 90, np.degrees(0.5)])
    names, _ = nn.classify(c, max_angle=50)
    assert names[3] in ("shared", "intrinsic_unique")


def test_orient_flips_columns() -> None:
    v_int, v_prompt, s, u = _pair(2, d=8)
    w = np.stack([-s, u], axis=1)
    plain = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0)
    assert "unclassified" in plain["class"]  # -shared: a suppressor
    flipped = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0, orient=np.array([-1, 1]))
    assert sorted(flipped["class"]) == ["intrinsic_unique", "shared"]


def test_attribution() -> None:
    v_int, v_prompt, s, u = _pair(3, d=8)
    w = np.stack([2 * s, u, s + u], axis=1)
    delta = np.array([0.5, 3.0, -1.0])
    np.testing.assert_allclose(nn.attribution(delta, w, s), [1.0, 0.0, -1.0], atol=1e-12)
    both = nn.attribution(delta, w, np.stack([s, 10 * u]))
    np.testing.assert_allclose(both, [[1.0, 0.0, -1.0], [0.0, 3.0, -1.0]], atol=1e-12)
    cols = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0, delta_act=delta)
    np.testing.assert_allclose(cols["attribution"], delta[cols["neuron"]] * cols["proj_shared"])
    assert np.isnan(nn.score_neurons(w, v_int, v_prompt, top_frac=1.0)["attribution"]).all()
    with pytest.raises(InputError, match="expected \\[3\\]"):
        nn.score_neurons(w, v_int, v_prompt, delta_act=np.zeros(4))


def test_score_layer_rows_and_counts() -> None:
    v_int, v_prompt, s, u = _pair(4)
    pn = planted_down_proj(s, u, n_mlp=1000, n_per_class=(4, 3, 3))
    rows = nn.score_layer(pn.w, np.stack([v_int, v_prompt]), np.stack([v_prompt, v_int]),
                          ["power", "security"], layer=7)
    assert set(rows) == set(nn.COLUMNS)
    assert all(len(c) == 20 for c in rows.values())
    assert set(rows["layer"]) == {7}
    counts = nn.class_counts(rows)
    assert len(counts["count"]) == 2 * 4
    get = {(v, c): n for v, c, n in zip(counts["value"], counts["class"], counts["count"])}
    assert get[("power", "shared")] == 4
    # Swapping the two vectors swaps the unique classes.
    assert get[("power", "intrinsic_unique")] == get[("security", "prompted_unique")] == 3
    assert sum(get.values()) == 20


def test_jaccard_of_single_vector_top_sets() -> None:
    v_int, v_prompt, s, u = _pair(5)
    pn = planted_down_proj(s, u, n_mlp=2000)
    assert nn.jaccard(np.array([1, 2, 3]), np.array([2, 3, 4])) == 0.5
    assert nn.int_prompt_jaccard(pn.w, v_int, v_int) == 1.0
    j = nn.int_prompt_jaccard(pn.w, v_int, v_prompt)
    assert 0.0 < j < 1.0


def test_bad_shapes_and_fractions_are_clear_errors() -> None:
    v_int, v_prompt, _, _ = _pair(6, d=8)
    with pytest.raises(InputError, match="transpose"):
        nn.score_neurons(np.zeros((5, 8)), v_int, v_prompt)
    with pytest.raises(InputError, match="top fraction"):
        nn.score_neurons(np.zeros((8, 5)), v_int, v_prompt, top_frac=0.0)
    assert nn.n_keep(18944, 0.01) == 190 and nn.n_keep(10, 0.01) == 1


def test_class_count_plot(tmp_path) -> None:
    from analyses.plots import plot_class_counts

    p = plot_class_counts(np.array([[3, 1, 2], [0, 4, 1]]), [5, 6], tmp_path / "c.png")
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_parallel_vectors_score_on_the_line() -> None:
    rng = np.random.default_rng(7)
    v = rng.standard_normal(12)
    w = rng.standard_normal((12, 50))
    cols = nn.score_neurons(w, v, 2 * v, top_frac=1.0)
    expected = np.abs(w.T @ (v / np.linalg.norm(v)))
    np.testing.assert_allclose(cols["score"], expected[cols["neuron"]], rtol=1e-9)
    assert np.all(cols["proj_unique"] == 0)
    assert set(cols["class"]) <= {"shared", "unclassified"}


def test_layer_matrices_for_plots_and_overlap() -> None:
    v_int, v_prompt, s, u = _pair(8)
    pn = planted_down_proj(s, u, n_mlp=1000, n_per_class=(4, 3, 3))
    rows = nn.concat_columns([nn.score_layer(pn.w, v_int[None], v_prompt[None], ["power"], layer=k)
                              for k in (2, 5)])
    layers, counts = nn.class_count_matrix(rows)
    assert layers.tolist() == [2, 5] and counts.tolist() == [[4, 3, 3], [4, 3, 3]]
    j = nn.jaccard_rows(pn.w, v_int[None], v_prompt[None], ["power"], layer=2)
    assert j["jaccard"].shape == (1,) and 0 <= j["jaccard"][0] <= 1


def test_orientation_does_not_change_attribution() -> None:
    v_int, v_prompt, s, _ = _pair(9, d=8)
    w = np.stack([-s, 2 * s], axis=1)
    delta = np.array([-1.0, 0.5])
    plain = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0, delta_act=delta)
    flipped = nn.score_neurons(w, v_int, v_prompt, top_frac=1.0, delta_act=delta, orient=np.sign(delta))
    by_neuron = lambda c: dict(zip(c["neuron"].tolist(), c["attribution"].tolist()))
    assert by_neuron(plain) == pytest.approx(by_neuron(flipped))
    assert by_neuron(plain) == pytest.approx({0: 1.0, 1: 1.0})
    assert list(flipped["class"]) == ["shared", "shared"]


def test_random_plane_null_matches_random_pairs_and_flags_a_planted_overlap() -> None:
    from analyses import stats as sx
    from analyses.neurons import int_prompt_jaccard, random_plane_null

    rng = np.random.default_rng(0)
    d, m = 32, 600
    w = rng.standard_normal((d, m)) / np.sqrt(d)
    # null case: the "vectors" are themselves a random pair, so their overlap is typical of the null
    a, b = sx.random_pairs_like(rng.standard_normal(d), rng.standard_normal(d), 1, seed=99)
    null = random_plane_null(w, a[0], b[0], n=60, seed=1, top_frac=0.02)
    assert null["jaccard"].shape == (60,) and null["counts"].shape == (60, 4)
    assert (null["counts"].sum(axis=1) == 12).all()
    obs = int_prompt_jaccard(w, a[0], b[0], 0.02)
    assert sx.null_summary(null["jaccard"], obs)["p"] > 0.05
    # planted: columns of ordinary norm along the pair's bisector; both directions read them hardest,
    # random planes do not (loud columns would be picked by any direction: that is what the null is for)
    v1, v2 = rng.standard_normal(d), rng.standard_normal(d)
    u = v1 / np.linalg.norm(v1) + v2 / np.linalg.norm(v2)
    w[:, :12] = (u / np.linalg.norm(u))[:, None]
    obs = int_prompt_jaccard(w, v1, v2, 0.02)
    null = random_plane_null(w, v1, v2, n=60, seed=1, top_frac=0.02)
    assert obs > null["jaccard"].max() and sx.null_summary(null["jaccard"], obs)["p"] < 0.05
