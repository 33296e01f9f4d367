"""Value vectors across languages (DESIGN, "The job", step 7, last sentence).

Input everywhere: vectors per language stacked as ``[N, V, L, d]`` (N languages, V values,
L layers), in the order of a ``languages`` sequence the caller keeps.

- :func:`cross_cosine`: cosine of the *same* value between every pair of languages, per layer.
- :func:`span_share`: how much of language a's vector lies in language b's value subspace:
  ``||P_b v_a||^2 / ||v_a||^2`` where P_b projects on the span of b's V vectors at that layer.
  A random vector scores about ``rank / d`` (10/d for ten independent vectors), which is the
  level to compare with, not 0.
"""

from __future__ import annotations

import numpy as np

from actstore.errors import InputError
from analyses.vectors import unit


def _check(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 4:
        raise InputError(f"language vectors have shape {vectors.shape}; expected [languages, values, layers, d]")
    return vectors


def cross_cosine(vectors: np.ndarray) -> np.ndarray:
    """``[N, V, L, d]`` -> ``[N, N, V, L]``: cos(v[a, s, l], v[b, s, l])."""
    u = unit(_check(vectors))
    return np.einsum("avld,bvld->abvl", u, u)


def subspace_basis(vectors: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """Orthonormal basis ``[d, r]`` of the span of the rows of ``vectors [K, d]`` (r = numerical rank)."""
    u, s, _ = np.linalg.svd(np.asarray(vectors, dtype=np.float64).T, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    return u[:, s > rtol * s[0]]


def share_in_span(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``||P x||^2 / ||x||^2`` for ``x [..., d]`` and an orthonormal ``basis [d, r]``: ``[...]`` (0 for x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    num = np.sum((x @ basis) ** 2, axis=-1)
    den = np.sum(x**2, axis=-1)
    return np.divide(num, den, out=np.zeros_like(den), where=den > 0)


def span_share(vectors: np.ndarray) -> np.ndarray:
    """``[N, V, L, d]`` -> ``[N, N, V, L]``: share of v[a, s, l] inside span{v[b, :, l]}.

    Entry ``[a, b, s, l]`` reads "language a's vector for value s, inside language b's subspace
    at layer l"; the diagonal is 1.
    """
    vectors = _check(vectors)
    n, v, n_layers, _ = vectors.shape
    out = np.empty((n, n, v, n_layers))
    for b in range(n):
        for layer in range(n_layers):
            basis = subspace_basis(vectors[b, :, layer])
            out[:, b, :, layer] = share_in_span(vectors[:, :, layer], basis)
    return out
