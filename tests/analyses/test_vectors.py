"""Difference-in-means vectors: arithmetic, group tables, and recovery of planted vectors."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_vectors

from actstore.errors import InputError
from analyses import vectors as vx


def test_diff_in_means_is_float64_difference() -> None:
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = np.array([0.5, 4.0], dtype=np.float32)
    out = vx.diff_in_means(a, b)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.5, -2.0])


def test_group_sums_stream_like_one_pass() -> None:
    rng = np.random.default_rng(1)
    acts = rng.standard_normal((100, 2, 5)).astype(np.float32)
    ids = rng.integers(-1, 3, size=100)
    s1, c1 = vx.group_sums(acts[:40], ids[:40], 3)
    s2, c2 = vx.group_sums(acts[40:], ids[40:], 3)
    means = vx.means_from_sums(s1 + s2, c1 + c2)
    for g in range(3):
        np.testing.assert_allclose(means[g], acts[ids == g].astype(np.float64).mean(axis=0), rtol=1e-6)
    assert (c1 + c2).sum() == np.sum(ids >= 0)


def test_empty_group_mean_is_nan_and_contrast_refuses_it() -> None:
    means = vx.means_from_sums(np.ones((2, 1, 3)), np.array([2, 0]))
    assert np.isnan(means[1]).all()
    with pytest.raises(InputError, match=r"\('power', 'intrinsic', 'unexp'\) has 0 responses"):
        vx.contrast(means, np.array([2, 0]), np.array([0]), np.array([1]),
                    groups=[("power", "intrinsic", "exp"), ("power", "intrinsic", "unexp")])


def test_diff_in_means_pooled_matches_manual() -> None:
    rng = np.random.default_rng(2)
    acts = rng.standard_normal((50, 4))
    pos = rng.random(50) < 0.3
    np.testing.assert_allclose(vx.diff_in_means_pooled(acts, pos), acts[pos].mean(0) - acts[~pos].mean(0))
    with pytest.raises(InputError, match="both groups non-empty"):
        vx.diff_in_means_pooled(acts, np.zeros(50, bool))


def test_missing_group_names_the_key() -> None:
    groups = vx.groups_for(["power"], ["intrinsic"])
    with pytest.raises(InputError, match="no group .*'prompted'"):
        vx.exp_vs_unexp_index(groups, ["power"])


def test_index_tables_have_documented_shapes() -> None:
    groups = vx.groups_for()
    pos, neg = vx.exp_vs_unexp_index(groups)
    assert pos.shape == neg.shape == (10, 2)
    assert groups[pos[4, 1]] == ("power", "prompted", "exp")
    assert groups[neg[4, 1]] == ("power", "prompted", "unexp")
    p, n = vx.prompted_minus_intrinsic_index(groups)
    assert p.shape == (10, 1) and groups[n[0, 0]] == ("self_direction", "intrinsic", "exp")
    p, n = vx.pair_index(groups, [(("power", "prompted", "exp"), ("hedonism", "prompted", "exp"))])
    assert groups[p[0]][0] == "power" and groups[n[0]][0] == "hedonism"


def test_recovers_planted_vectors(planted_vecs) -> None:
    pv = planted_vecs
    means, counts = vx.group_means(pv.acts, pv.group_ids, len(pv.groups))
    assert means.shape == (40, 3, 64) and means.dtype == np.float64
    vecs = vx.value_vectors(means, counts, pv.groups)
    assert vecs.shape == (10, 2, 3, 64)
    cos = vx.cosine(vecs, pv.vectors)
    assert cos.min() >= 0.99, cos.min()


def test_condition_delta_and_other_contrasts(planted_vecs) -> None:
    pv = planted_vecs
    means, counts = vx.group_means(pv.acts, pv.group_ids, len(pv.groups))
    delta = vx.condition_delta(vx.value_vectors(means, counts, pv.groups))
    assert delta.shape == (10, 3, 64)
    # Planted: v_prompt - v_int = -2b * unique.
    assert vx.cosine(delta, -pv.unique).min() >= 0.98
    # Prompted-minus-intrinsic over activations keeps the per-condition offset the vectors cancel.
    pos, neg = vx.prompted_minus_intrinsic_index(pv.groups, label="unexp")
    assert vx.contrast(means, counts, pos, neg).shape == (10, 1, 3, 64)


def test_min_count_guards_thin_groups() -> None:
    pv = planted_vectors(d=8, n_layers=1, n_per_group=3, values=("power", "security"))
    means, counts = vx.group_means(pv.acts, pv.group_ids, len(pv.groups))
    with pytest.raises(InputError, match="fewer than 5"):
        vx.value_vectors(means, counts, pv.groups, values=pv.values, min_count=5)


def test_unit_and_cosine_handle_zero() -> None:
    assert np.all(vx.unit(np.zeros(3)) == 0)
    assert vx.cosine(np.zeros(3), np.ones(3)) == 0


def test_norm_plot_writes_png(tmp_path, planted_vecs) -> None:
    from analyses.plots import plot_cosine_by_layer, plot_norms_by_layer

    norms = np.linalg.norm(planted_vecs.vectors, axis=-1)  # [V, C, L]
    p = plot_norms_by_layer(norms, [0, 1, 2], tmp_path / "norms.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cos = vx.cosine(planted_vecs.v_int, planted_vecs.v_prompt)
    assert plot_cosine_by_layer(cos, [0, 1, 2], tmp_path / "cos.png").stat().st_size > 1000


def test_analyses_import_without_torch() -> None:
    """No pure analysis needs torch: import them all, and use one, with torch made unimportable.

    A meta-path finder refuses torch rather than ``sys.modules['torch'] = None``: scipy 1.17's
    array-API helpers take a ``None`` entry for an imported torch and crash on ``import scipy.stats``.
    """
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "sys.modules.pop('torch', None)\n"
        "import analyses.vectors, analyses.decompose, analyses.neurons, analyses.structure\n"
        "import analyses.crosslingual, analyses.logit_lens, analyses.plots\n"
        "import numpy as np\n"
        "analyses.structure.circumplex_fit(np.random.default_rng(0).standard_normal((10, 8)), n_perm=5)\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules), 'torch got imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_string_group_labels_work_like_keys(planted_vecs) -> None:
    pv = planted_vecs
    means, counts = vx.group_means(pv.acts, pv.group_ids, len(pv.groups))
    labels = [":".join(k) for k in pv.groups]
    np.testing.assert_array_equal(vx.value_vectors(means, counts, labels), vx.value_vectors(means, counts, pv.groups))
    assert vx.as_group_key(["power", "prompted", "exp"]) == ("power", "prompted", "exp")
    with pytest.raises(InputError, match="value:condition:label"):
        vx.as_group_key("power-prompted")
