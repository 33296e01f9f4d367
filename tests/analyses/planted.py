"""Synthetic data with planted truth, for testing analyses (and for anyone who wants to reuse it).

Every generator is seeded and returns both the data an analysis would see and the truth it should
recover:

- :func:`planted_vectors`: pooled activations ``[n, L, d]`` of responses in (value, condition,
  label) groups, where R_exp responses are shifted by a known vector
  ``v_int = a*shared + b*unique`` (intrinsic) or ``v_prompt = a*shared - b*unique`` (prompted),
  on top of a per-layer base, a per-(value, condition) offset shared by exp and unexp (a topic or
  system prompt effect that the within-condition contrast must cancel) and Gaussian noise. With
  ``a > b`` and shared orthogonal to unique, the SVD of [v_int, v_prompt] has exactly ``shared``
  and ``unique`` as left singular vectors (M M^T = 2a^2 s s^T + 2b^2 u u^T).
- :func:`planted_down_proj`: a down projection whose columns are planted along +shared,
  +unique (intrinsic-unique) and -unique (prompted-unique), among random columns.
- :func:`planted_circle`: ten shared axes on a circle at their circumplex angles, or at random.
- :func:`planted_languages`: one value-vector set seen through several languages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analyses.neurons import CLASS_ANGLES_DEG, CLASSES
from analyses.vectors import CONDITIONS, EXP, GroupKey, groups_for
from ingest.values import BY_SLUG, VALUE_SLUGS


def orthonormal(rng: np.random.Generator, d: int, k: int) -> np.ndarray:
    """``k`` random orthonormal vectors as rows: ``[k, d]``."""
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return q.T


@dataclass(frozen=True)
class PlantedVectors:
    values: tuple[str, ...]
    groups: list[GroupKey]
    acts: np.ndarray  # [n, L, d] float32 pooled activations
    group_ids: np.ndarray  # [n] index into groups
    shared: np.ndarray  # [V, L, d] unit, planted shared axis
    unique: np.ndarray  # [V, L, d] unit, orthogonal to shared; +unique = intrinsic-unique
    v_int: np.ndarray  # [V, L, d] planted intrinsic vector
    v_prompt: np.ndarray  # [V, L, d] planted prompted vector

    @property
    def vectors(self) -> np.ndarray:
        """Planted vectors in the ``[V, C, L, d]`` layout of :func:`analyses.vectors.value_vectors`."""
        return np.stack([self.v_int, self.v_prompt], axis=1)


def planted_vectors(d: int = 64, n_layers: int = 3, n_per_group: int = 800, a: float = 6.0, b: float = 3.0,
                    noise: float = 1.0, offset: float = 3.0, seed: int = 0,
                    values: tuple[str, ...] = VALUE_SLUGS) -> PlantedVectors:
    """Pooled activations with planted value vectors (see the module doc). float32, like a store."""
    rng = np.random.default_rng(seed)
    n_values = len(values)
    axes = np.stack([np.stack([orthonormal(rng, d, 2) for _ in range(n_layers)]) for _ in range(n_values)])
    shared, unique = axes[:, :, 0], axes[:, :, 1]  # [V, L, d]
    v_int, v_prompt = a * shared + b * unique, a * shared - b * unique
    groups = groups_for(values, CONDITIONS)
    base = rng.standard_normal((n_layers, d)) * offset
    # One offset per (value, condition), common to its exp and unexp groups.
    offsets = {(v, c): rng.standard_normal((n_layers, d)) * offset for v in values for c in CONDITIONS}
    acts, ids = [], []
    for g, (value, condition, label) in enumerate(groups):
        s = values.index(value)
        mean = base + offsets[(value, condition)]
        if label == EXP:
            mean += v_int[s] if condition == "intrinsic" else v_prompt[s]
        acts.append(mean[None] + rng.standard_normal((n_per_group, n_layers, d)) * noise)
        ids.append(np.full(n_per_group, g))
    acts_arr = np.concatenate(acts).astype(np.float32)
    ids_arr = np.concatenate(ids)
    return PlantedVectors(tuple(values), groups, acts_arr, ids_arr, shared, unique, v_int, v_prompt)


@dataclass(frozen=True)
class PlantedNeurons:
    w: np.ndarray  # [d, n] down projection, float32
    truth: np.ndarray  # [n] object: a class name from analyses.neurons.CLASSES, or "" for a random column
    shared: np.ndarray  # [d]
    unique: np.ndarray  # [d]


def planted_down_proj(shared: np.ndarray, unique: np.ndarray, n_mlp: int = 2000,
                      n_per_class: tuple[int, int, int] = (7, 7, 6), spread_deg: float = 12.0,
                      off_plane: float = 0.05, seed: int = 0) -> PlantedNeurons:
    """Columns planted at their class angle (+-``spread_deg``) in the (shared, unique) plane, with
    in-plane length 1-2 and a little off-plane noise; the other columns are random with norm about 1,
    so their in-plane part is about sqrt(2/d) and the planted ones rank first."""
    rng = np.random.default_rng(seed)
    d = shared.shape[0]
    w = rng.standard_normal((d, n_mlp)) / np.sqrt(d)
    truth = np.array([""] * n_mlp, dtype=object)
    slots = rng.permutation(n_mlp)
    start = 0
    for cls, centre, count in zip(CLASSES, CLASS_ANGLES_DEG, n_per_class):
        for col in slots[start: start + count]:
            theta = np.radians(centre + rng.uniform(-spread_deg, spread_deg))
            length = rng.uniform(1.0, 2.0)
            w[:, col] = length * (np.cos(theta) * shared + np.sin(theta) * unique) \
                + rng.standard_normal(d) * off_plane / np.sqrt(d)
            truth[col] = cls
        start += count
    return PlantedNeurons(w.astype(np.float32), truth, shared, unique)


def planted_circle(d: int = 64, noise: float = 0.03, seed: int = 0, random: bool = False,
                   values: tuple[str, ...] = VALUE_SLUGS) -> np.ndarray:
    """Ten shared axes ``[V, d]``: on a circle in a random 2-D subspace at their circumplex angles,
    plus isotropic noise (sd ``noise`` per dimension); with ``random=True``, random unit vectors."""
    rng = np.random.default_rng(seed)
    if random:
        x = rng.standard_normal((len(values), d))
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    plane = orthonormal(rng, d, 2)
    theta = np.radians([BY_SLUG[v].angle_deg for v in values])
    on_circle = np.cos(theta)[:, None] * plane[0] + np.sin(theta)[:, None] * plane[1]
    return on_circle + rng.standard_normal((len(values), d)) * noise


def planted_languages(base: np.ndarray, n_languages: int = 3, drift: float = 0.1,
                      seed: int = 0) -> np.ndarray:
    """``base [V, L, d]`` seen in several languages: ``[N, V, L, d]``, language 0 = base, the others
    base plus Gaussian drift of relative size ``drift`` per vector."""
    rng = np.random.default_rng(seed)
    out = [base]
    scale = np.linalg.norm(base, axis=-1, keepdims=True) / np.sqrt(base.shape[-1])
    for _ in range(n_languages - 1):
        out.append(base + rng.standard_normal(base.shape) * scale * drift)
    return np.stack(out)
