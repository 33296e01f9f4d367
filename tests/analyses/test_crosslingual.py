"""Cross-lingual comparison: same-value cosines and subspace shares."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_languages

from actstore.errors import InputError
from analyses import crosslingual as xl


def test_cross_cosine_shapes_and_planted_similarity() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((10, 3, 64))
    langs = planted_languages(base, n_languages=3, drift=0.1)
    cos = xl.cross_cosine(langs)
    assert cos.shape == (3, 3, 10, 3)
    np.testing.assert_allclose(cos[[0, 1, 2], [0, 1, 2]], 1.0)
    np.testing.assert_allclose(cos, cos.transpose(1, 0, 2, 3))
    assert cos.min() > 0.98


def test_span_share_planted_vs_unrelated() -> None:
    rng = np.random.default_rng(1)
    d = 64
    base = rng.standard_normal((10, 2, d))
    related = planted_languages(base, n_languages=2, drift=0.1)
    unrelated = rng.standard_normal((1, 10, 2, d))
    share = xl.span_share(np.concatenate([related, unrelated]))
    assert share.shape == (3, 3, 10, 2)
    np.testing.assert_allclose(share[[0, 1, 2], [0, 1, 2]], 1.0)
    assert share[0, 1].min() > 0.97 and share[1, 0].min() > 0.97
    # An unrelated language: about rank/d = 10/64 of the vector by chance.
    assert 0.03 < share[0, 2].mean() < 0.35


def test_share_in_span_exact() -> None:
    e = np.eye(4)
    basis = xl.subspace_basis(np.stack([e[0], 2 * e[0], e[1]]))
    assert basis.shape == (4, 2)  # rank 2: the parallel row adds nothing
    np.testing.assert_allclose(xl.share_in_span(np.array([1.0, 1.0, 1.0, 1.0]), basis), 0.5)
    assert xl.share_in_span(np.zeros(4), basis) == 0.0


def test_bad_shape_is_clear_error() -> None:
    with pytest.raises(InputError, match="languages, values, layers, d"):
        xl.cross_cosine(np.zeros((10, 3, 8)))
