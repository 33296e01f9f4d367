"""Logit lens on a vector: top tokens, entropy, final-norm handling."""

from __future__ import annotations

import numpy as np
import pytest

from actstore.errors import InputError
from analyses import logit_lens as ll


def test_top_promoted_and_suppressed() -> None:
    rng = np.random.default_rng(0)
    u = rng.standard_normal((500, 16)).astype(np.float32)
    v = rng.standard_normal(16)
    r = ll.readout(v, u, k=5)
    full = u.astype(np.float64) @ v
    order = np.argsort(-full)
    np.testing.assert_array_equal(r.promoted_ids, order[:5])
    np.testing.assert_array_equal(r.suppressed_ids, order[::-1][:5])
    np.testing.assert_allclose(r.promoted_logits, full[order[:5]], rtol=1e-5)
    assert np.all(np.diff(r.promoted_logits) <= 0) and np.all(np.diff(r.suppressed_logits) >= 0)


def test_batched_vectors() -> None:
    rng = np.random.default_rng(1)
    u = rng.standard_normal((300, 8))
    v = rng.standard_normal((4, 3, 8))
    r = ll.readout(v, u, k=7)
    assert r.promoted_ids.shape == (4, 3, 7) and r.entropy.shape == (4, 3)
    one = ll.readout(v[2, 1], u, k=7)
    np.testing.assert_array_equal(r.promoted_ids[2, 1], one.promoted_ids)


def test_entropy_bounds() -> None:
    assert ll.entropy(np.zeros(100)) == pytest.approx(np.log(100))
    assert ll.entropy(np.array([1e4, 0.0, 0.0])) == pytest.approx(0.0, abs=1e-9)


def test_final_norm_is_rmsnorm_style() -> None:
    rng = np.random.default_rng(2)
    u = rng.standard_normal((50, 6))
    v = rng.standard_normal(6)
    g = rng.uniform(0.5, 2.0, 6)
    expected = u @ (g * v / np.sqrt(np.mean(v**2) + 1e-6))
    np.testing.assert_allclose(ll.logits(v, u, norm_weight=g), expected, rtol=1e-5)
    # With the norm, length no longer matters (up to eps); without it, entropy falls as v grows.
    a = ll.readout(v, u, norm_weight=g).entropy
    b = ll.readout(10 * v, u, norm_weight=g).entropy
    assert a == pytest.approx(b, rel=1e-4)
    assert ll.readout(10 * v, u).entropy < ll.readout(v, u).entropy


def test_shape_errors() -> None:
    with pytest.raises(InputError, match="expected \\[vocab, 6\\]"):
        ll.logits(np.zeros(6), np.zeros((6, 50)))
    with pytest.raises(InputError, match="final-norm weight"):
        ll.logits(np.zeros(6), np.zeros((50, 6)), norm_weight=np.ones(5))
