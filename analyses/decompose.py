"""Shared and unique parts of the intrinsic and prompted vectors (DESIGN, "The job", step 5).

Conventions (every function here follows them, batched over any leading axes):

- Gram-Schmidt both ways: ``int_only`` = v_int with its component along v_prompt removed;
  ``prompt_only`` = v_prompt with its component along v_int removed.
- SVD of the d-by-2 matrix ``[v_int, v_prompt]`` (raw vectors, not normalised, as the study
  writes it). ``shared`` = first left singular vector, signed so that ``shared . (v_int +
  v_prompt) >= 0``; ``unique`` = second left singular vector, signed so that ``unique . (v_int -
  v_prompt) >= 0``. Hence **+unique is the intrinsic-unique direction and -unique the
  prompted-unique one**. Both are unit vectors and together an orthonormal basis of
  span(v_int, v_prompt) when the two vectors are independent; when they are parallel the second
  axis is an arbitrary unit vector orthogonal to the first, and its singular value is 0. (When
  they are orthogonal and of equal norm the two singular values tie and the SVD picks no axis;
  the signs still follow the rules, but read such a pair through Gram-Schmidt instead.)
- Mean delta: the mean over values of ``v_prompt - v_int`` (the steering direction of step 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analyses.vectors import unit


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Arrays share the leading shape ``[...]`` of the inputs (e.g. ``[V, L]``); all float64."""

    shared: np.ndarray  # [..., d] unit
    unique: np.ndarray  # [..., d] unit; +unique = intrinsic-unique, -unique = prompted-unique
    singular_values: np.ndarray  # [..., 2], descending
    int_only: np.ndarray  # [..., d] v_int with v_prompt projected out
    prompt_only: np.ndarray  # [..., d] v_prompt with v_int projected out


def project_out(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` minus its projection on ``b``: ``[..., d]`` x ``[..., d]`` -> ``[..., d]`` float64.

    A zero ``b`` removes nothing.
    """
    a = np.asarray(a, dtype=np.float64)
    bh = unit(b)
    return a - np.sum(a * bh, axis=-1, keepdims=True) * bh


def gram_schmidt(v_int: np.ndarray, v_prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both orders: ``(v_int without v_prompt, v_prompt without v_int)``, each ``[..., d]``."""
    return project_out(v_int, v_prompt), project_out(v_prompt, v_int)


def shared_unique_axes(v_int: np.ndarray, v_prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(shared [..., d], unique [..., d], singular_values [..., 2])`` by the module's sign rules."""
    v_int = np.asarray(v_int, dtype=np.float64)
    v_prompt = np.asarray(v_prompt, dtype=np.float64)
    m = np.stack([v_int, v_prompt], axis=-1)  # [..., d, 2]
    u, s, _ = np.linalg.svd(m, full_matrices=False)  # u: [..., d, 2]
    shared, unique = u[..., 0], u[..., 1]
    # Singular vectors come with an arbitrary sign; fix it so that results are comparable
    # across values, layers and runs. A tie (dot = 0) keeps LAPACK's sign.
    s_sign = np.where(np.sum(shared * (v_int + v_prompt), axis=-1, keepdims=True) < 0, -1.0, 1.0)
    u_sign = np.where(np.sum(unique * (v_int - v_prompt), axis=-1, keepdims=True) < 0, -1.0, 1.0)
    return shared * s_sign, unique * u_sign, s


def decompose(v_int: np.ndarray, v_prompt: np.ndarray) -> Decomposition:
    """Gram-Schmidt and SVD parts of ``v_int``, ``v_prompt`` (both ``[..., d]``)."""
    shared, unique, s = shared_unique_axes(v_int, v_prompt)
    int_only, prompt_only = gram_schmidt(v_int, v_prompt)
    return Decomposition(shared, unique, s, int_only, prompt_only)


def axis_coordinates(x: np.ndarray, dec_shared: np.ndarray, dec_unique: np.ndarray) -> np.ndarray:
    """Coordinates of ``x [..., d]`` on (shared, unique): ``[..., 2]``."""
    x = np.asarray(x, dtype=np.float64)
    return np.stack([np.sum(x * dec_shared, axis=-1), np.sum(x * dec_unique, axis=-1)], axis=-1)


def mean_delta(v_int: np.ndarray, v_prompt: np.ndarray, value_axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the per-value deltas ``v_prompt - v_int`` and the share of their variance it explains.

    Inputs ``[V, ..., d]`` (values along ``value_axis``). Returns ``(delta [..., d], share [...])``.
    share = sum over values of (delta_s . m)^2 / sum over values of ||delta_s||^2, with m the unit
    mean delta: the fraction of the deltas' (uncentred) energy that lies along the one direction
    the study steers with. 1 means every value shifts the same way; about 1/V, no common shift.
    """
    deltas = np.asarray(v_prompt, dtype=np.float64) - np.asarray(v_int, dtype=np.float64)
    deltas = np.moveaxis(deltas, value_axis, 0)
    mean = deltas.mean(axis=0)
    along = np.sum(deltas * unit(mean)[None], axis=-1)  # [V, ...]
    total = np.sum(deltas**2, axis=(0, -1))
    share = np.divide(np.sum(along**2, axis=0), total, out=np.zeros_like(total), where=total > 0)
    return mean, share
